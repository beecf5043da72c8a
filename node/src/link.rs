//! Link tasks: they only move bytes. Each link has a writer task draining a short bounded
//! queue onto its socket, and a reader task handing every received message to the engine task.
//! The engine's own per-link queue is the real buffer: when a writer's queue is full the engine
//! task tells the engine (`handle_blocked`), and the writer says when it has room again
//! (`LinkEvent::Writable`), so one slow socket holds back only its own link.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{
    SinkExt, StreamExt,
    channel::mpsc,
    future::{AbortHandle, Abortable},
    stream::{SplitSink, SplitStream},
};
use tungstenite::Message;
use whispurr_core::{
    engine::WebRtcSignal,
    relay::{RateLimit, TokenBucket},
};

use crate::{
    runtime::{Runtime, WsStream},
    stats::{Transport, WireCounters},
    webrtc::DirectChannel,
};

/// Records a writer may hold before the engine task must wait (the engine keeps the rest).
pub(crate) const WRITE_QUEUE: usize = 16;

/// What link tasks and the listener tell the task that owns the state machine. `I` names a
/// link (the engine's `LinkId`, the relay's `ClientId`); `In` is what the listener hands over.
pub(crate) enum LinkEvent<I, In> {
    /// An outgoing connection is up.
    Opened(I),
    /// An outgoing connection could not be made.
    Failed(I),
    /// One message from the peer.
    Data(I, Vec<u8>),
    /// The socket closed or failed.
    Down(I),
    /// A blocked writer has room again.
    Writable(I),
    /// A local WebRTC signal for the remote peer.
    Signal(I, WebRtcSignal),
    /// The listener accepted a WebSocket.
    Incoming(In),
}

/// A WebSocket a node's listener accepted, and where it came from.
pub(crate) type NodeIncoming = (WsStream, SocketAddr);

/// A link name: copied into every event.
pub(crate) trait Id: Copy + Send + Sync + std::fmt::Debug + 'static {}
impl<T: Copy + Send + Sync + std::fmt::Debug + 'static> Id for T {}

/// The engine task's handle on one link.
pub(crate) struct LinkHandle {
    pub transport: Transport,
    writer: mpsc::Sender<Vec<u8>>,
    /// A record the writer had no room for (at most one: the link is then blocked).
    stalled: Option<Vec<u8>>,
    /// Records waiting behind `stalled` (the relay's only; see `send_or_hold`).
    held: std::collections::VecDeque<Vec<u8>>,
    held_bytes: usize,
    blocked: Arc<AtomicBool>,
    reader: AbortHandle,
    writer_abort: AbortHandle,
    /// Remote signals for a WebRTC link's peer connection.
    pub signals: Option<mpsc::UnboundedSender<WebRtcSignal>>,
}

/// Whether a record went to the writer or the link is blocked.
pub(crate) enum Queued {
    Sent,
    Blocked,
}

impl LinkHandle {
    /// Hands `record` to the writer. `Blocked` when its queue is full: the record waits here
    /// and the caller must tell the engine the link is blocked.
    pub fn send(&mut self, record: Vec<u8>) -> Queued {
        debug_assert!(self.stalled.is_none());
        match self.writer.try_send(record) {
            Ok(()) => Queued::Sent,
            Err(e) if e.is_full() => {
                // Set the flag before the second try: the writer either sees it after taking a
                // record (and reports Writable), or made room we can use now.
                self.blocked.store(true, Ordering::Release);
                match self.writer.try_send(e.into_inner()) {
                    Ok(()) => {
                        self.blocked.store(false, Ordering::Release);
                        Queued::Sent
                    }
                    Err(e) => {
                        self.stalled = Some(e.into_inner());
                        Queued::Blocked
                    }
                }
            }
            // The writer is gone: the reader reports the link down.
            Err(_) => Queued::Sent,
        }
    }

    /// After `Writable`: sends the stalled record, then any held ones. `true` when the link
    /// can take more.
    pub fn unblock(&mut self) -> bool {
        if let Some(r) = self.stalled.take()
            && let Queued::Blocked = self.send(r)
        {
            return false;
        }
        while let Some(r) = self.held.pop_front() {
            self.held_bytes -= r.len();
            if let Queued::Blocked = self.send(r) {
                return false;
            }
        }
        true
    }

    /// For a state machine that cannot be told a link is blocked (the relay): holds records
    /// behind a blocked writer, up to `cap` bytes. `false` when over the cap: the peer reads
    /// too slowly and its link must close.
    pub fn send_or_hold(&mut self, record: Vec<u8>, cap: usize) -> bool {
        if self.stalled.is_none() {
            // Sent, or stalled as the one record a blocked writer may leave behind.
            let _ = self.send(record);
            return true;
        }
        self.held_bytes += record.len();
        self.held.push_back(record);
        self.held_bytes <= cap
    }
}

impl LinkHandle {
    /// Stops the writer too, without writing what it holds (a simulated crash).
    pub fn kill(&mut self) {
        self.writer_abort.abort();
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        // The writer drains what it holds and closes the socket; the reader stops now.
        self.reader.abort();
    }
}

/// Everything a link task needs to report back.
pub(crate) struct Reporter<I, In> {
    pub events: mpsc::Sender<LinkEvent<I, In>>,
    pub wire: Arc<WireCounters>,
}

impl<I, In> Clone for Reporter<I, In> {
    fn clone(&self) -> Self {
        Reporter {
            events: self.events.clone(),
            wire: self.wire.clone(),
        }
    }
}

impl<I, In> Reporter<I, In> {
    async fn report(&mut self, e: LinkEvent<I, In>) {
        let _ = self.events.send(e).await;
    }
}

/// A new link's writer queue, blocked flag and reader abort handle; the task side of it.
pub(crate) struct LinkTask<I, In> {
    pub link: I,
    pub transport: Transport,
    pub records: mpsc::Receiver<Vec<u8>>,
    pub blocked: Arc<AtomicBool>,
    pub abort: futures::future::AbortRegistration,
    pub writer_abort: futures::future::AbortRegistration,
    pub reporter: Reporter<I, In>,
    /// Held by the writer until it has closed its socket.
    pub alive: mpsc::Sender<()>,
    /// Read no faster than this (the relay's per-client rate, so that it never drops).
    pub pace: Option<RateLimit>,
}

/// Creates a link's handle and the task side it is wired to.
pub(crate) fn new_link<I: Id, In: Send + 'static>(
    link: I,
    transport: Transport,
    reporter: Reporter<I, In>,
    signals: Option<mpsc::UnboundedSender<WebRtcSignal>>,
    alive: mpsc::Sender<()>,
) -> (LinkHandle, LinkTask<I, In>) {
    let (writer, records) = mpsc::channel(WRITE_QUEUE);
    let blocked = Arc::new(AtomicBool::new(false));
    let (reader, abort) = AbortHandle::new_pair();
    let (writer_abort, writer_reg) = AbortHandle::new_pair();
    let handle = LinkHandle {
        transport,
        writer,
        stalled: None,
        held: Default::default(),
        held_bytes: 0,
        blocked: blocked.clone(),
        reader,
        writer_abort,
        signals,
    };
    let task = LinkTask {
        link,
        transport,
        records,
        blocked,
        abort,
        writer_abort: writer_reg,
        reporter,
        alive,
        pace: None,
    };
    (handle, task)
}

impl<I: Id, In: Send + 'static> LinkTask<I, In> {
    /// Runs a WebSocket link that is already open: a writer task, and the reader here.
    pub async fn run_ws<R: Runtime>(self, rt: &R, ws: WsStream) {
        let (sink, stream) = ws.split();
        let LinkTask {
            link,
            transport,
            records,
            blocked,
            abort,
            writer_abort,
            reporter,
            alive,
            pace,
        } = self;
        let writer = write_ws(
            sink,
            alive,
            records,
            blocked,
            reporter.clone(),
            link,
            transport,
        );
        rt.spawn(async move {
            let _ = Abortable::new(writer, writer_abort).await;
        });
        let mut r = reporter.clone();
        let read = read_ws(rt, stream, reporter, link, transport, pace);
        let _ = Abortable::new(read, abort).await;
        // Aborted (the engine closed the link) or ended: either way the engine hears of it
        // once; a Down for a link it already forgot is ignored.
        r.report(LinkEvent::Down(link)).await;
    }

    /// Connects a WebSocket to `request` and runs it; `Failed` if it cannot be opened.
    pub async fn connect_ws<R: Runtime>(
        self,
        rt: R,
        request: tungstenite::handshake::client::Request,
    ) {
        let mut reporter = self.reporter.clone();
        let link = self.link;
        match rt.ws_connect(request, crate::ws::ws_config()).await {
            Ok(ws) => {
                reporter.report(LinkEvent::Opened(link)).await;
                self.run_ws(&rt, ws).await;
            }
            Err(e) => {
                tracing::debug!(?link, error = %e, "websocket connect failed");
                reporter.report(LinkEvent::Failed(link)).await;
            }
        }
    }

    /// Opens a WebRTC data channel (signals go out as `LinkEvent::Signal`, remote ones come in
    /// on `remote`) and runs it; `Failed` if it does not open.
    pub async fn run_webrtc<R: Runtime>(
        self,
        rt: R,
        config: Arc<crate::webrtc::WebRtcConfig>,
        offerer: bool,
        mut remote: mpsc::UnboundedReceiver<WebRtcSignal>,
    ) {
        let LinkTask {
            link,
            transport,
            records,
            blocked,
            abort,
            writer_abort,
            reporter,
            alive,
            pace: _,
        } = self;
        let mut rep = reporter.clone();
        let (local_tx, mut local_rx) = mpsc::unbounded();
        let mut fwd = reporter.clone();
        rt.spawn(async move {
            while let Some(s) = local_rx.next().await {
                fwd.report(LinkEvent::Signal(link, s)).await;
            }
        });
        let run = async move {
            let channel = match DirectChannel::start(rt.webrtc(), &config, offerer, local_tx).await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(?link, error = %e, "webrtc start failed");
                    return false;
                }
            };
            let ch = channel.clone();
            rt.spawn(async move {
                while let Some(s) = remote.next().await {
                    if ch.handle_signal(s).await.is_err() {
                        break;
                    }
                }
            });
            let writer = write_webrtc(
                channel.clone(),
                alive,
                records,
                blocked,
                reporter.clone(),
                link,
                transport,
            );
            rt.spawn(async move {
                let _ = Abortable::new(writer, writer_abort).await;
            });
            if let Err(e) = channel.opened().await {
                tracing::debug!(?link, error = %e, "webrtc channel did not open");
                channel.close().await;
                return false;
            }
            tracing::debug!(?link, "webrtc channel open");
            let mut r = reporter.clone();
            r.report(LinkEvent::Opened(link)).await;
            while let Some(record) = channel.recv().await {
                r.wire.received(transport, record.len());
                r.report(LinkEvent::Data(link, record)).await;
            }
            true
        };
        match Abortable::new(run, abort).await {
            Ok(false) => {
                rep.wire.webrtc_failed();
                rep.report(LinkEvent::Failed(link)).await;
            }
            _ => rep.report(LinkEvent::Down(link)).await,
        }
    }
}

async fn read_ws<R: Runtime, I: Id, In>(
    rt: &R,
    mut stream: SplitStream<WsStream>,
    mut reporter: Reporter<I, In>,
    link: I,
    transport: Transport,
    pace: Option<RateLimit>,
) {
    let mut bucket = pace.map(|limit| TokenBucket::full(&limit, crate::now()));
    loop {
        if let (Some(limit), Some(bucket)) = (&pace, bucket.as_mut()) {
            while let Some(wait) = bucket.wait(limit, crate::now()) {
                rt.sleep(wait).await;
            }
        }
        let Some(message) = stream.next().await else {
            break;
        };
        match message {
            Ok(Message::Binary(b)) => {
                reporter.wire.received(transport, b.len());
                reporter.report(LinkEvent::Data(link, b.into())).await;
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            // Text is not whispurr's; a close ends the link.
            Ok(Message::Text(_) | Message::Close(_)) => break,
            Err(e) => {
                tracing::debug!(?link, error = %e, "websocket read failed");
                break;
            }
        }
    }
}

async fn write_ws<I: Id, In>(
    mut sink: SplitSink<WsStream, Message>,
    _alive: mpsc::Sender<()>,
    mut records: mpsc::Receiver<Vec<u8>>,
    blocked: Arc<AtomicBool>,
    mut reporter: Reporter<I, In>,
    link: I,
    transport: Transport,
) {
    'run: while let Some(record) = records.next().await {
        let mut next = Some(record);
        // Feed what is queued, then flush once.
        while let Some(record) = next.take() {
            let len = record.len();
            if sink.feed(Message::Binary(record.into())).await.is_err() {
                break 'run;
            }
            reporter.wire.sent(transport, len);
            if blocked.swap(false, Ordering::AcqRel) {
                reporter.report(LinkEvent::Writable(link)).await;
            }
            next = records.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}

async fn write_webrtc<I: Id, In>(
    channel: DirectChannel,
    _alive: mpsc::Sender<()>,
    mut records: mpsc::Receiver<Vec<u8>>,
    blocked: Arc<AtomicBool>,
    mut reporter: Reporter<I, In>,
    link: I,
    transport: Transport,
) {
    while let Some(record) = records.next().await {
        if let Err(e) = channel.send(&record).await {
            tracing::debug!(?link, error = %e, "webrtc send failed");
            break;
        }
        tracing::trace!(?link, len = record.len(), "webrtc sent");
        reporter.wire.sent(transport, record.len());
        if blocked.swap(false, Ordering::AcqRel) {
            reporter.report(LinkEvent::Writable(link)).await;
        }
    }
    channel.close().await;
}
