//! The node's task: it owns the engine and is the only place that calls it. It waits on three
//! things — commands from [`Node`] handles, events from link tasks, the engine's next
//! deadline — feeds each to the engine, then drains the engine's outputs: actions become link
//! tasks (connect, close, signal), records go to their link's writer, events go to the
//! application's [`Events`] stream.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::{Duration, SystemTime},
};

use futures::{
    StreamExt,
    channel::{mpsc, oneshot},
    future::{AbortHandle, Abortable, poll_fn},
};
use rand::rngs::StdRng;
use whispurr_core::{
    Identity, Timestamp,
    crypto::Ring,
    engine::{Action, Addr, CAP_WEBRTC, Engine, Event, LinkId, PayloadKind, Transmit},
};

use crate::{
    Events, Node, NodeBuilder, NodeEngine, NodeStats, Result,
    link::{LinkEvent, LinkHandle, NodeIncoming, Queued, Reporter, new_link},
    node::Command,
    runtime::Runtime,
    stats::{Transport, WireCounters},
    webrtc::WebRtcConfig,
    ws::{WsHeaders, ws_config},
};

/// Time allowed for an accepted connection's WebSocket handshake.
pub(crate) const WS_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// Accepted connections whose WebSocket handshake may run at once on a node's listener.
const MAX_HANDSHAKES: usize = 64;
/// Sends held back while the engine is congested; beyond them, commands wait in their channel
/// (and the application's calls with them).
const MAX_DEFERRED: usize = 256;
/// How long shutdown waits for the goodbyes to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The wall clock, as the engine's inputs carry it.
pub fn now() -> Timestamp {
    SystemTime::now().into()
}

/// What a command sees: the engine and the time, plus the task's own state.
pub(crate) struct Ctx<'a> {
    pub engine: &'a mut NodeEngine,
    pub now: Timestamp,
    wire: &'a WireCounters,
    shutdown: &'a mut Option<oneshot::Sender<()>>,
    killed: &'a mut bool,
    links: &'a mut HashMap<LinkId, LinkHandle>,
}

impl Ctx<'_> {
    pub(crate) fn stats(&self) -> NodeStats {
        NodeStats {
            engine: self.engine.stats(),
            relay: self.wire.read(Transport::Relay),
            websocket: self.wire.read(Transport::WebSocket),
            webrtc: self.wire.read(Transport::WebRtc),
            webrtc_failed: self.wire.webrtc_failures(),
        }
    }

    pub(crate) fn shutdown(&mut self, done: oneshot::Sender<()>) {
        self.engine.shutdown(self.now);
        *self.shutdown = Some(done);
    }

    /// Drops every link on `transport` without a word, as a network failure would; the link
    /// tasks then report them down. Returns how many.
    pub(crate) fn break_transport(&mut self, transport: Transport) -> usize {
        let before = self.links.len();
        self.links.retain(|_, l| l.transport != transport);
        before - self.links.len()
    }

    pub(crate) fn kill(&mut self, done: oneshot::Sender<()>) {
        *self.killed = true;
        *self.shutdown = Some(done);
    }
}

struct Task<R: Runtime> {
    rt: R,
    engine: NodeEngine,
    links: HashMap<LinkId, LinkHandle>,
    reporter: Reporter<LinkId, NodeIncoming>,
    link_events: mpsc::Receiver<LinkEvent<LinkId, NodeIncoming>>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// An event the application had no room for yet.
    held: Option<Event>,
    /// Sends waiting for the engine's congestion to clear, in order.
    deferred: std::collections::VecDeque<Command>,
    webrtc: Option<Arc<WebRtcConfig>>,
    headers: WsHeaders,
    wire: Arc<WireCounters>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Stopped without goodbyes ([`Node::kill`]).
    killed: bool,
    listener: Option<AbortHandle>,
    /// Every writer holds a clone; when all are gone, every socket is closed.
    writers: Option<mpsc::Sender<()>>,
    writers_done: mpsc::Receiver<()>,
}

pub(crate) async fn start<R: Runtime>(b: NodeBuilder<R>) -> Result<(Node, Events)> {
    let now = now();
    let mut rng: StdRng = rand::make_rng();
    let identity = b
        .identity
        .unwrap_or_else(|| Identity::generate(&mut rng, now));
    let mut config = b.config;
    let listener = match b.listen {
        Some(addr) => {
            let l = b.runtime.bind(addr).await?;
            let local = R::local_addr(&l)?;
            config.listen_addr.get_or_insert(format!("ws://{local}"));
            Some((l, local))
        }
        None => None,
    };
    if b.webrtc.is_some() {
        config.link.capabilities |= CAP_WEBRTC;
    } else {
        config.link.capabilities &= !CAP_WEBRTC;
        config.try_direct = false;
    }
    let mut engine = Engine::new(identity, config, Ring, rng, now);
    for ext in b.extensions {
        engine.register_extension(now, ext)?;
    }
    for phrase in &b.intents {
        engine.attune(now, phrase)?;
    }
    for url in &b.relays {
        engine.add_relay(now, url)?;
    }
    for url in &b.peers {
        engine.connect_peer(now, url)?;
    }
    let (link_tx, link_events) = mpsc::channel(256);
    let (commands_tx, commands) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(b.events);
    let (writers, writers_done) = mpsc::channel(1);
    let wire = Arc::new(WireCounters::default());
    let reporter = Reporter {
        events: link_tx,
        wire: wire.clone(),
    };
    let listen = listener.as_ref().map(|(_, a)| *a);
    let listener = listener.map(|(l, _)| {
        let (abort, reg) = AbortHandle::new_pair();
        let rt = b.runtime.clone();
        let events = reporter.events.clone();
        b.runtime.spawn(async move {
            let _ = Abortable::new(accept_loop(rt, l, events), reg).await;
        });
        abort
    });
    let max_payload = [
        PayloadKind::Whisper,
        PayloadKind::Broadcast,
        PayloadKind::Resonance,
        PayloadKind::Extension,
    ]
    .map(|k| engine.max_payload(k));
    let node = Node {
        id: *engine.node_id(),
        listen,
        commands: commands_tx,
        max_payload,
    };
    let task = Task {
        rt: b.runtime.clone(),
        engine,
        links: HashMap::new(),
        reporter,
        link_events,
        commands,
        events: events_tx,
        held: None,
        deferred: Default::default(),
        webrtc: b.webrtc.map(Arc::new),
        headers: b.headers,
        wire,
        shutdown: None,
        killed: false,
        listener,
        writers: Some(writers),
        writers_done,
    };
    b.runtime.spawn(task.run());
    Ok((node, Events { rx: events_rx }))
}

/// Accepts direct WebSocket links from other nodes; each handshake runs in its own task under a
/// deadline, at most [`MAX_HANDSHAKES`] at once.
// The handshake check's error type is tungstenite's HTTP response, as its `Callback` wants.
#[allow(clippy::result_large_err)]
async fn accept_loop<R: Runtime>(
    rt: R,
    mut listener: R::Listener,
    events: mpsc::Sender<LinkEvent<LinkId, NodeIncoming>>,
) {
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let (tcp, from) = match R::accept(&mut listener).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                rt.sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if busy.fetch_add(1, std::sync::atomic::Ordering::AcqRel) >= MAX_HANDSHAKES {
            busy.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            tracing::debug!(%from, "too many handshakes in flight; connection dropped");
            continue;
        }
        let (rt2, mut events, busy) = (rt.clone(), events.clone(), busy.clone());
        rt.spawn(async move {
            let check: crate::runtime::HandshakeCheck = Box::new(|_, response| Ok(response));
            let shake = rt2.ws_accept(tcp, ws_config(), check);
            let ws = with_deadline(&rt2, WS_HANDSHAKE_DEADLINE, shake).await;
            busy.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            if let Some(Ok(ws)) = ws {
                use futures::SinkExt;
                let _ = events.send(LinkEvent::Incoming((ws, from))).await;
            }
        });
    }
}

/// `future`'s output, or `None` if `deadline` passes first, on runtime `rt`.
pub async fn with_deadline<R: Runtime, F: Future>(
    rt: &R,
    deadline: Duration,
    future: F,
) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    let sleep = std::pin::pin!(rt.sleep(deadline));
    match futures::future::select(future, sleep).await {
        futures::future::Either::Left((out, _)) => Some(out),
        futures::future::Either::Right(_) => None,
    }
}

/// The sleep until a state machine's next deadline, re-armed only when the deadline moves.
pub(crate) struct Deadline {
    at: Option<Timestamp>,
    sleep: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Deadline {
    pub(crate) fn new() -> Self {
        Deadline {
            at: None,
            sleep: None,
        }
    }

    /// Sleeps until `at` (none: never) from now on.
    pub(crate) fn set<R: Runtime>(&mut self, rt: &R, at: Option<Timestamp>) {
        if self.sleep.is_some() && self.at == at {
            return;
        }
        self.at = at;
        self.sleep = at.map(|d| {
            let s: Pin<Box<dyn Future<Output = ()> + Send>> =
                Box::pin(rt.sleep(d.saturating_duration_since(now())));
            s
        });
    }

    /// Ready once when the deadline has passed (then disarmed until the next `set`).
    pub(crate) fn poll(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        match self.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                self.sleep = None;
                self.at = None;
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }
}

/// What woke the task.
enum Wake {
    Command(Option<Command>),
    Link(LinkEvent<LinkId, NodeIncoming>),
    EventRoom,
    Timer,
}

impl<R: Runtime> Task<R> {
    async fn run(mut self) {
        let mut deadline = Deadline::new();
        let mut turn = 0usize;
        loop {
            if self.killed {
                break;
            }
            self.drive();
            if self.shutdown.is_some() {
                break;
            }
            deadline.set(&self.rt, self.engine.poll_timeout());
            let held = self.held.is_some();
            let room = self.deferred.len() < MAX_DEFERRED;
            // The three sources take turns at being asked first, so that a flood on one (a
            // burst of records, a loop of sends) never starves the others, timers included.
            let first = turn;
            turn = (turn + 1) % 3;
            let wake = poll_fn(|cx| {
                for i in 0..3 {
                    match (first + i) % 3 {
                        0 => {
                            if let Poll::Ready(Some(e)) = self.link_events.poll_next_unpin(cx) {
                                return Poll::Ready(Wake::Link(e));
                            }
                        }
                        1 => {
                            if room && let Poll::Ready(c) = self.commands.poll_next_unpin(cx) {
                                return Poll::Ready(Wake::Command(c));
                            }
                        }
                        _ => {
                            if deadline.poll(cx).is_ready() {
                                return Poll::Ready(Wake::Timer);
                            }
                        }
                    }
                }
                if held && self.events.poll_ready(cx).is_ready() {
                    return Poll::Ready(Wake::EventRoom);
                }
                Poll::Pending
            })
            .await;
            let now = now();
            match wake {
                Wake::Command(Some(command)) => {
                    if command.send && (!self.deferred.is_empty() || self.engine.is_congested()) {
                        self.deferred.push_back(command);
                    } else {
                        self.run_command(now, command);
                    }
                }
                Wake::Command(None) => {
                    // Every handle is gone: nobody can use the node any more.
                    self.engine.shutdown(now);
                    let (tx, _) = oneshot::channel();
                    self.shutdown = Some(tx);
                }
                Wake::Link(e) => self.on_link_event(now, e),
                Wake::EventRoom => {
                    if let Some(e) = self.held.take() {
                        self.deliver(e);
                    }
                }
                Wake::Timer => self.engine.handle_timeout(now),
            }
        }
        self.finish().await;
    }

    fn run_command(&mut self, now: Timestamp, command: Command) {
        let mut ctx = Ctx {
            engine: &mut self.engine,
            now,
            wire: &self.wire,
            shutdown: &mut self.shutdown,
            killed: &mut self.killed,
            links: &mut self.links,
        };
        (command.run)(&mut ctx);
    }

    /// Runs the sends held back while the engine was congested, as long as it is not.
    fn run_deferred(&mut self) -> bool {
        let mut ran = false;
        // Nothing held back is the common case: no scan of the links for it.
        while !self.deferred.is_empty() && self.shutdown.is_none() && !self.engine.is_congested() {
            let Some(command) = self.deferred.pop_front() else {
                break;
            };
            self.run_command(now(), command);
            ran = true;
        }
        ran
    }

    /// After shutdown: every socket closes once its writer has written what it holds.
    async fn finish(mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
        if self.killed {
            // As if the process died: writers stop now, with whatever they held.
            for (_, mut link) in self.links.drain() {
                link.kill();
            }
        }
        self.links.clear();
        self.writers = None;
        let rt = self.rt.clone();
        let wait = async { while self.writers_done.next().await.is_some() {} };
        if with_deadline(&rt, SHUTDOWN_GRACE, wait).await.is_none() {
            tracing::debug!("shutdown: some sockets did not drain in time");
        }
        if let Some(done) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    /// Drains the engine: actions, records, events, until nothing moves.
    fn drive(&mut self) {
        let now = now();
        loop {
            let mut moved = false;
            while let Some(a) = self.engine.poll_action() {
                moved = true;
                self.act(now, a);
            }
            while let Some(t) = self.engine.poll_transmit(now) {
                moved = true;
                self.transmit(now, t);
            }
            while self.held.is_none() {
                let Some(e) = self.engine.poll_event() else {
                    break;
                };
                moved = true;
                self.deliver(e);
            }
            if !moved && !self.run_deferred() {
                break;
            }
        }
    }

    fn deliver(&mut self, event: Event) {
        // Disconnected: the application dropped its Events; nothing to tell.
        if let Err(e) = self.events.try_send(event)
            && e.is_full()
        {
            self.held = Some(e.into_inner());
        }
    }

    fn transmit(&mut self, now: Timestamp, t: Transmit) {
        let Some(h) = self.links.get_mut(&t.link) else {
            return;
        };
        if let Queued::Blocked = h.send(t.record) {
            let _ = self.engine.handle_blocked(now, t.link);
        }
    }

    fn spawn_link(
        &mut self,
        link: LinkId,
        transport: Transport,
    ) -> crate::link::LinkTask<LinkId, NodeIncoming> {
        let token = self.writer_token();
        let (handle, task) = new_link(link, transport, self.reporter.clone(), None, token);
        self.links.insert(link, handle);
        task
    }

    fn writer_token(&self) -> mpsc::Sender<()> {
        self.writers
            .clone()
            .expect("links are opened before shutdown only")
    }

    fn act(&mut self, now: Timestamp, action: Action) {
        tracing::trace!(?action, "action");
        match action {
            Action::Connect { link, addr } => {
                let (url, transport) = match addr {
                    Addr::Relay(url) => (url, Transport::Relay),
                    Addr::Peer(url) => (url, Transport::WebSocket),
                    Addr::WebRtc { offerer, .. } => {
                        self.open_webrtc(now, link, offerer);
                        return;
                    }
                };
                match self.headers.request(&url) {
                    Ok(request) => {
                        let task = self.spawn_link(link, transport);
                        self.rt.spawn(task.connect_ws(self.rt.clone(), request));
                    }
                    Err(e) => {
                        tracing::warn!(%url, error = %e, "bad WebSocket URL");
                        let _ = self.engine.handle_link_down(now, link);
                    }
                }
            }
            Action::Close { link } => {
                self.links.remove(&link);
            }
            Action::Signal { link, signal } => {
                if let Some(s) = self.links.get(&link).and_then(|h| h.signals.as_ref()) {
                    let _ = s.unbounded_send(signal);
                }
            }
        }
    }

    fn open_webrtc(&mut self, now: Timestamp, link: LinkId, offerer: bool) {
        let Some(config) = self.webrtc.clone() else {
            let _ = self.engine.handle_link_down(now, link);
            return;
        };
        let (signals, remote) = mpsc::unbounded();
        let token = self.writer_token();
        let (handle, task) = new_link(
            link,
            Transport::WebRtc,
            self.reporter.clone(),
            Some(signals),
            token,
        );
        self.links.insert(link, handle);
        self.rt
            .spawn(task.run_webrtc(self.rt.clone(), config, offerer, remote));
    }

    fn on_link_event(&mut self, now: Timestamp, event: LinkEvent<LinkId, NodeIncoming>) {
        match &event {
            LinkEvent::Data(l, d) => tracing::trace!(link = ?l, len = d.len(), "data"),
            LinkEvent::Opened(l) => tracing::trace!(link = ?l, "opened"),
            LinkEvent::Failed(l) => tracing::trace!(link = ?l, "failed"),
            LinkEvent::Down(l) => tracing::trace!(link = ?l, "down"),
            _ => {}
        }
        match event {
            LinkEvent::Opened(link) => {
                let _ = self.engine.handle_link_up(now, link);
            }
            LinkEvent::Failed(link) | LinkEvent::Down(link) => {
                if self.engine.handle_link_down(now, link).is_err() {
                    self.links.remove(&link);
                }
            }
            LinkEvent::Data(link, data) => {
                let _ = self.engine.handle_data(now, link, data);
            }
            LinkEvent::Writable(link) => {
                if let Some(h) = self.links.get_mut(&link)
                    && h.unblock()
                {
                    let _ = self.engine.handle_writable(now, link);
                }
            }
            LinkEvent::Signal(link, signal) => {
                if let Err(e) = self.engine.handle_signal(now, link, &signal) {
                    tracing::debug!(?link, error = %e, "local signal not sent");
                }
            }
            LinkEvent::Incoming((ws, from)) => match self.engine.handle_incoming(now) {
                Ok(link) => {
                    tracing::debug!(?link, %from, "incoming link");
                    let task = self.spawn_link(link, Transport::WebSocket);
                    let rt = self.rt.clone();
                    self.rt.spawn(async move { task.run_ws(&rt, ws).await });
                }
                Err(e) => tracing::debug!(%from, error = %e, "incoming link refused"),
            },
        }
    }
}
