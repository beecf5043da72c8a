//! A WebRTC data-channel link, usable on its own: one peer connection carrying one reliable,
//! ordered data channel, with the signalling left to the caller.
//!
//! The whispurr engine does the signalling. It tells the adapter to open a link to a peer with a
//! role (offerer or answerer); the adapter starts a [`DirectChannel`], forwards every local
//! [`WebRtcSignal`] the channel emits to the engine, and hands every remote one the engine
//! delivers to [`DirectChannel::handle_signal`]. Once [`DirectChannel::opened`] resolves, records
//! go out with [`DirectChannel::send`] and come in with [`DirectChannel::recv`], one data-channel
//! message per record.
//!
//! # The protocol, in brief
//!
//! - The data channel is pre-negotiated (`negotiated` id 0 on both sides), so no in-band DCEP
//!   open/ack round trip is needed once SCTP is up.
//! - The offerer sends its offer as soon as it starts; the answerer creates its answer when it
//!   receives the offer. Both trickle their candidates and then [`WebRtcSignal::EndOfCandidates`].
//! - Remote candidates that arrive before the remote description are queued (at most
//!   [`MAX_QUEUED_CANDIDATES`]) and applied once it is set.
//! - **Both sides say READY before either is open.** A message sent the moment one side's
//!   channel opens can reach the other side before its own channel has opened, and the
//!   `webrtc` crate drops it (measured: the first record of the link's handshake vanished in
//!   about two runs of three). So each side, once its channel is open, sends a one-byte
//!   [`READY`] every setup tick until it has received the peer's, and sends one more when it
//!   does; [`DirectChannel::opened`] resolves only when the channel is open *and* the peer's
//!   READY has arrived, so every record is sent to a peer whose channel is open. READYs are
//!   never delivered; a record is never one byte long (the smallest is a 16-byte AEAD tag).
//! - A received message larger than [`WebRtcConfig::max_message_size`] closes the link.
//! - If the channel is not open by [`WebRtcConfig::open_timeout`], the link closes and
//!   [`DirectChannel::opened`] returns [`WebRtcError::OpenTimeout`].
//!
//! # Runtime
//!
//! Nothing here names an async runtime: the `webrtc` crate's runtime is passed in explicitly
//! (see [`Runtime::webrtc`](crate::runtime::Runtime::webrtc)), the background task that pumps the
//! channel's events is spawned on it, and every channel is a `futures` channel.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::BytesMut;
use futures::{
    FutureExt, SinkExt, StreamExt,
    channel::{mpsc, oneshot},
    future::Shared,
    lock::Mutex,
};
use rtc::ice::mdns::MulticastDnsMode;
use webrtc::{
    data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit},
    peer_connection::{
        PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
        RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionIceEvent,
        RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder, StatsSelector,
    },
};
use whispurr_core::wire::WebRtcSignal;

/// How many remote candidates are held while waiting for the remote description; more is an
/// error ([`WebRtcError::TooManyCandidates`]).
pub const MAX_QUEUED_CANDIDATES: usize = 64;

/// How many received messages wait for [`DirectChannel::recv`] before the link stops taking
/// more from the peer (SCTP flow control then throttles the sender).
const INBOUND_QUEUE: usize = 64;

/// The one-byte message each side sends once its channel is open (see the module docs).
pub const READY: u8 = 0xA5;

/// How often READY is repeated when no setup wake interval is configured.
const READY_INTERVAL: Duration = Duration::from_millis(10);

/// The data channel's SCTP stream id, the same on both sides.
const CHANNEL_ID: u16 = 0;

/// How long [`DirectChannel::close`] waits for the peer to acknowledge the channel's reset
/// before tearing the connection down anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The least time a candidate pair is probed before ICE gives it up, whatever the check
/// interval (the `webrtc` crate's default is 7 checks at 200 ms, 1.4 s).
const MIN_PAIR_PROBE_TIME: Duration = Duration::from_millis(1400);

/// A STUN or TURN server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceServer {
    /// The server's URLs (`stun:host:port`, `turn:host:port?transport=udp`).
    pub urls: Vec<String>,
    /// The TURN username; empty for STUN.
    pub username: String,
    /// The TURN credential; empty for STUN.
    pub credential: String,
}

/// How a [`DirectChannel`] sets up its peer connection.
///
/// # Defaults, and what they cost
///
/// The defaults open a link on loopback in **56 ms** (median; p90 57 ms) and then cost each
/// peer about **1.2 STUN packets a second**. Measured with
/// `cargo run -p whispurr-tokio --example webrtc_open -- --check-ms C --keepalive-ms K
/// --wake-ms W`: 20 pairs on 127.0.0.1 opened one after another on a shared 2-core machine,
/// "open" timed from starting the pair until both sides are open (the pair's traffic can run
/// on WebRTC), the packet rate being the STUN requests and responses each peer sent over a 5 s
/// idle window afterwards (ICE candidate-pair statistics).
///
/// | check | keepalive | setup wake | open, median | p90 | STUN pkts/s per peer |
/// |---:|---:|---:|---:|---:|---:|
/// | 200 ms | 2 s | off | 404 ms | 405 ms | 1.5 |
/// | 200 ms | 2 s | 10 ms | 213 ms | 215 ms | 1.5 |
/// | 100 ms | 2 s | off | 304 ms | 306 ms | 1.5 |
/// | 100 ms | 2 s | 10 ms | 112 ms | 114 ms | 1.4 |
/// | 50 ms | 2 s | off | 254 ms | 255 ms | 1.5 |
/// | **50 ms** | **2 s** | **10 ms** | **56 ms** | **57 ms** | **1.2** |
/// | 50 ms | 2 s | 20 ms | 64 ms | 66 ms | 1.3 |
/// | 50 ms | 2 s | 50 ms | 103 ms | 108 ms | 1.7 |
/// | 25 ms | 2 s | 10 ms | 34 ms | 35 ms | 1.2 |
/// | 10 ms | 2 s | off | 214 ms | 219 ms | 1.5 |
/// | 10 ms | 2 s | 10 ms | 23 ms | 24 ms | 1.2 |
/// | 10 ms | 10 ms | off | 24 ms | 28 ms | 267 |
/// | 50 ms | 50 ms | 10 ms | 56 ms | 57 ms | 59 |
/// | 50 ms | 100 ms | 10 ms | 56 ms | 59 ms | 30 |
/// | 50 ms | 200 ms | 10 ms | 56 ms | 58 ms | 15 |
/// | 50 ms | 5 s | 10 ms | 57 ms | 60 ms | 0.6 |
///
/// Two things set the open time. The ICE check interval paces the connectivity checks, so ICE
/// connects about one interval after both descriptions are in. Then DTLS and SCTP each need a
/// round trip whose first packet, in `webrtc` 0.21, is queued while the connection's driver
/// handles its own events and only flushed when the driver next wakes — by default on the ICE
/// agent's next tick, 200 ms later, whatever the intervals below. A permanently short
/// keepalive hides that (10 ms: 24 ms to open) at a price of ~270 packets a second per peer
/// for the life of the link. [`setup_wake_interval`](Self::setup_wake_interval) wakes the
/// driver instead, only until the channel opens, which takes the same ~200 ms off at no
/// steady cost. The check interval costs nothing once connected: it paces checks only while
/// ICE is checking (50 ms is RFC 8445's default pacing). The keepalive interval is paid for the
/// life of the connection; 2 s (the `webrtc` crate's own) stays well inside ICE's 5 s
/// disconnected timeout, which 5 s would not. Independently of all three, the ICE agent's timer
/// wakes each peer connection every 200 ms while connected (5 wake-ups a second, no packets).
#[derive(Clone, Debug)]
pub struct WebRtcConfig {
    /// STUN and TURN servers; empty by default (host candidates only).
    pub ice_servers: Vec<IceServer>,
    /// The address the peer connection's UDP socket binds (port chosen by the system).
    /// Default `0.0.0.0`: one socket per non-loopback interface. Use `127.0.0.1` for loopback
    /// tests, with [`loopback_candidates`](Self::loopback_candidates) on.
    pub bind: IpAddr,
    /// Whether loopback addresses become host candidates (tests, two peers on one host).
    /// Default `false`.
    pub loopback_candidates: bool,
    /// Whether remote mDNS (`.local`) candidates are resolved. Default `false`: local
    /// candidates always carry IP addresses, and mDNS would add a multicast socket per link.
    pub mdns: bool,
    /// The pause between ICE connectivity checks while connecting. Default 50 ms. The number
    /// of checks per candidate pair is scaled so a pair is still probed for at least 1.4 s.
    pub ice_check_interval: Duration,
    /// How often an idle connected link sends an ICE consent check (and so how often the peer
    /// answers one). Default 2 s, the `webrtc` crate's own.
    pub keepalive_interval: Duration,
    /// How often the peer connection's driver is woken while the channel is not yet open, so
    /// the DTLS and SCTP handshake packets it queued go out at once; `None` turns this off.
    /// Default 10 ms, only until the channel opens.
    pub setup_wake_interval: Option<Duration>,
    /// The most bytes [`DirectChannel::send`] lets wait unacknowledged before it blocks.
    /// Default 64 KiB: without a limit, bursts overflow the UDP receive buffer and SCTP stalls
    /// for seconds.
    pub send_buffer_limit: usize,
    /// How long the channel may take to open before the link gives up. Default 10 s.
    pub open_timeout: Duration,
    /// The largest message accepted from the peer; a larger one closes the link. Default
    /// 65,535 bytes, whispurr's largest record.
    pub max_message_size: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            loopback_candidates: false,
            mdns: false,
            ice_check_interval: Duration::from_millis(50),
            keepalive_interval: Duration::from_secs(2),
            setup_wake_interval: Some(Duration::from_millis(10)),
            send_buffer_limit: 64 * 1024,
            open_timeout: Duration::from_secs(10),
            max_message_size: 65_535,
        }
    }
}

impl WebRtcConfig {
    /// The defaults, for two peers on one host: bound to 127.0.0.1 with loopback candidates.
    pub fn loopback() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            loopback_candidates: true,
            ..Self::default()
        }
    }
}

/// Why a [`DirectChannel`] operation failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The `webrtc` crate reported an error (bad SDP, socket failure, …).
    #[error("webrtc: {0}")]
    WebRtc(Arc<webrtc::error::Error>),
    /// The channel did not open within [`WebRtcConfig::open_timeout`].
    #[error("the data channel did not open in time")]
    OpenTimeout,
    /// The peer connection failed (ICE or DTLS).
    #[error("the peer connection failed")]
    Failed,
    /// The link is closed (by either side, or after an error).
    #[error("the link is closed")]
    Closed,
    /// The peer sent a message larger than [`WebRtcConfig::max_message_size`]; the link is
    /// closed.
    #[error("received a {len}-byte message, above the {max}-byte limit")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A signal that does not fit this side's role (an offer to the offerer, an answer to the
    /// answerer, a second description).
    #[error("unexpected {0} signal")]
    UnexpectedSignal(&'static str),
    /// More than [`MAX_QUEUED_CANDIDATES`] candidates arrived before the remote description.
    #[error("too many candidates before the remote description")]
    TooManyCandidates,
}

impl From<webrtc::error::Error> for WebRtcError {
    fn from(error: webrtc::error::Error) -> Self {
        match error {
            webrtc::error::Error::ErrDataChannelClosed => WebRtcError::Closed,
            error => WebRtcError::WebRtc(Arc::new(error)),
        }
    }
}

/// What the connection's event handler tells the pump task.
enum Control {
    /// The peer connection failed.
    Failed,
    /// The peer connection closed, or the link is being closed locally.
    Close,
}

/// Remote candidates held until the remote description is set.
struct RemoteState {
    /// Whether the remote description has been set.
    described: bool,
    /// Candidates received before it, in arrival order.
    queued: Vec<RTCIceCandidateInit>,
}

/// A WebRTC link to one peer: one peer connection with one pre-negotiated, reliable, ordered
/// data channel. Cheap to clone; every clone is the same link (a reader task and a writer task
/// can each hold one). The link closes when [`close`](Self::close) is called, when either side
/// fails, or when the last clone is dropped.
#[derive(Clone)]
pub struct DirectChannel {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<dyn webrtc::runtime::Runtime>,
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    offerer: bool,
    signals: mpsc::UnboundedSender<WebRtcSignal>,
    remote: Mutex<RemoteState>,
    opened: Shared<oneshot::Receiver<Result<(), WebRtcError>>>,
    inbound: Mutex<mpsc::Receiver<Vec<u8>>>,
    control: mpsc::UnboundedSender<Control>,
    /// The pump has ended (or close has begun): no more sends.
    closed: Arc<AtomicBool>,
    /// Completes once the pump has torn the connection down.
    finished: Shared<oneshot::Receiver<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: nobody can read or write, so stop the pump, which closes
        // the connection. A pump that already ended ignores it.
        let _ = self.control.unbounded_send(Control::Close);
    }
}

/// Forwards the connection's events: local candidates to the caller, failures to the pump.
struct Handler {
    signals: mpsc::UnboundedSender<WebRtcSignal>,
    control: mpsc::UnboundedSender<Control>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.signals.unbounded_send(WebRtcSignal::Candidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                });
            }
            Err(error) => tracing::debug!(%error, "unencodable local candidate skipped"),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.signals.unbounded_send(WebRtcSignal::EndOfCandidates);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let control = match state {
            RTCPeerConnectionState::Failed => Control::Failed,
            RTCPeerConnectionState::Closed => Control::Close,
            _ => return,
        };
        let _ = self.control.unbounded_send(control);
    }
}

impl DirectChannel {
    /// Starts a peer connection with one pre-negotiated (negotiated id 0), reliable, ordered
    /// data channel, and the task that pumps its events (spawned on `runtime`).
    ///
    /// Local signals go out on `signals`, in the order the peer must apply them: the offerer's
    /// offer at once (the answerer's answer when [`handle_signal`](Self::handle_signal) gets
    /// the offer), then trickled candidates, then [`WebRtcSignal::EndOfCandidates`].
    /// `offerer` must be `true` on exactly one side.
    ///
    /// # Errors
    ///
    /// [`WebRtcError::WebRtc`] if the connection cannot be built (a socket cannot be bound, an
    /// ICE server URL is malformed) or the offer cannot be created.
    pub async fn start(
        runtime: Arc<dyn webrtc::runtime::Runtime>,
        config: &WebRtcConfig,
        offerer: bool,
        signals: mpsc::UnboundedSender<WebRtcSignal>,
    ) -> Result<Self, WebRtcError> {
        let check = config.ice_check_interval.max(Duration::from_millis(1));
        let checks = MIN_PAIR_PROBE_TIME
            .as_millis()
            .div_ceil(check.as_millis())
            .max(7);
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(check), Some(checks.min(u16::MAX.into()) as u16))
            .with_ice_timeouts(None, None, Some(config.keepalive_interval))
            .with_include_loopback_candidate(config.loopback_candidates)
            .with_multicast_dns_mode(if config.mdns {
                MulticastDnsMode::QueryOnly
            } else {
                MulticastDnsMode::Disabled
            })
            .build();
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|server| RTCIceServer {
                urls: server.urls.clone(),
                username: server.username.clone(),
                credential: server.credential.clone(),
            })
            .collect();
        let (control_tx, control_rx) = mpsc::unbounded();
        let handler = Handler {
            signals: signals.clone(),
            control: control_tx.clone(),
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .build(),
            )
            .with_setting_engine(settings)
            .with_runtime(runtime.clone())
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec![SocketAddr::new(config.bind, 0)])
            .with_data_channel_send_buffer_limit(config.send_buffer_limit)
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let dc = match pc
            .create_data_channel(
                "whispurr",
                Some(RTCDataChannelInit {
                    ordered: true,
                    negotiated: Some(CHANNEL_ID),
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(dc) => dc,
            Err(error) => {
                let _ = pc.close().await;
                return Err(error.into());
            }
        };

        let (opened_tx, opened_rx) = oneshot::channel();
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (finished_tx, finished_rx) = oneshot::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let pump = Pump {
            runtime: runtime.clone(),
            pc: pc.clone(),
            dc: dc.clone(),
            control: control_rx,
            opened: Some(opened_tx),
            inbound: inbound_tx,
            closed: closed.clone(),
            max_message_size: config.max_message_size,
            open_timeout: config.open_timeout,
            setup_wake_interval: config.setup_wake_interval,
        };
        runtime
            .spawn(Box::pin(async move {
                pump.run().await;
                let _ = finished_tx.send(());
            }))
            .detach();

        let channel = DirectChannel {
            inner: Arc::new(Inner {
                runtime,
                pc,
                dc,
                offerer,
                signals,
                remote: Mutex::new(RemoteState {
                    described: false,
                    queued: Vec::new(),
                }),
                opened: opened_rx.shared(),
                inbound: Mutex::new(inbound_rx),
                control: control_tx,
                closed,
                finished: finished_rx.shared(),
            }),
        };
        if offerer {
            let offer = channel.inner.pc.create_offer(None).await?;
            // Sent before it is applied: applying it starts gathering, and every candidate
            // must reach the peer after the description it belongs to.
            let _ = channel.inner.signals.unbounded_send(WebRtcSignal::Offer {
                sdp: offer.sdp.clone(),
            });
            channel.inner.pc.set_local_description(offer).await?;
        }
        Ok(channel)
    }

    /// Applies a signal from the peer: its offer (answerer only; the answer goes out on the
    /// signal sender at once), its answer (offerer only), a candidate (queued if it comes
    /// before the description) or its end of candidates (nothing to do). Call it with the
    /// peer's signals in the order the peer emitted them.
    ///
    /// # Errors
    ///
    /// [`WebRtcError::UnexpectedSignal`] for a description that does not fit the role,
    /// [`WebRtcError::TooManyCandidates`] when the queue is full, and
    /// [`WebRtcError::WebRtc`] for a description or candidate the `webrtc` crate rejects.
    pub async fn handle_signal(&self, signal: WebRtcSignal) -> Result<(), WebRtcError> {
        let inner = &self.inner;
        match signal {
            WebRtcSignal::Offer { sdp } => {
                if inner.offerer {
                    return Err(WebRtcError::UnexpectedSignal("offer"));
                }
                let mut remote = inner.remote.lock().await;
                if remote.described {
                    return Err(WebRtcError::UnexpectedSignal("offer"));
                }
                inner
                    .pc
                    .set_remote_description(RTCSessionDescription::offer(sdp)?)
                    .await?;
                self.described(&mut remote).await?;
                let answer = inner.pc.create_answer(None).await?;
                // Sent before it is applied, for the same reason as the offer.
                let _ = inner.signals.unbounded_send(WebRtcSignal::Answer {
                    sdp: answer.sdp.clone(),
                });
                inner.pc.set_local_description(answer).await?;
            }
            WebRtcSignal::Answer { sdp } => {
                if !inner.offerer {
                    return Err(WebRtcError::UnexpectedSignal("answer"));
                }
                let mut remote = inner.remote.lock().await;
                if remote.described {
                    return Err(WebRtcError::UnexpectedSignal("answer"));
                }
                inner
                    .pc
                    .set_remote_description(RTCSessionDescription::answer(sdp)?)
                    .await?;
                self.described(&mut remote).await?;
            }
            WebRtcSignal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => {
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    username_fragment,
                    ..Default::default()
                };
                let mut remote = inner.remote.lock().await;
                if remote.described {
                    drop(remote);
                    inner.pc.add_ice_candidate(init).await?;
                } else if remote.queued.len() < MAX_QUEUED_CANDIDATES {
                    remote.queued.push(init);
                } else {
                    return Err(WebRtcError::TooManyCandidates);
                }
            }
            // The crate has no way to say it, and needs none: ICE keeps checking the pairs
            // it has until one works or they all fail.
            WebRtcSignal::EndOfCandidates => {}
        }
        Ok(())
    }

    /// Marks the remote description as set and applies the candidates queued before it.
    async fn described(&self, remote: &mut RemoteState) -> Result<(), WebRtcError> {
        remote.described = true;
        for init in std::mem::take(&mut remote.queued) {
            self.inner.pc.add_ice_candidate(init).await?;
        }
        Ok(())
    }

    /// Completes when the data channel is open.
    ///
    /// # Errors
    ///
    /// [`WebRtcError::OpenTimeout`] if it did not open within
    /// [`WebRtcConfig::open_timeout`], [`WebRtcError::Failed`] if the connection failed, and
    /// [`WebRtcError::Closed`] if the link was closed first.
    pub async fn opened(&self) -> Result<(), WebRtcError> {
        self.inner
            .opened
            .clone()
            .await
            .unwrap_or(Err(WebRtcError::Closed))
    }

    /// Sends one record as one message. Waits for the channel to open, then while more than
    /// [`WebRtcConfig::send_buffer_limit`] bytes wait unacknowledged. Returns once the record
    /// is queued, not when the peer has it.
    ///
    /// # Errors
    ///
    /// What [`opened`](Self::opened) returns if the channel never opened,
    /// [`WebRtcError::Closed`] once the link is closed, and [`WebRtcError::WebRtc`] for a
    /// record above the negotiated SCTP message size (64 KiB).
    pub async fn send(&self, record: &[u8]) -> Result<(), WebRtcError> {
        self.opened().await?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(WebRtcError::Closed);
        }
        self.inner.dc.send(BytesMut::from(record)).await?;
        Ok(())
    }

    /// The next message from the peer, in order; `None` once the link is closed or failed
    /// and every message received before has been returned.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        self.inner.inbound.lock().await.next().await
    }

    /// Closes the link: resets the data channel (so the peer's [`recv`](Self::recv) ends),
    /// waits up to 2 s for the peer to acknowledge, then closes the peer connection. Returns
    /// once the connection is down. Calling it again, or on a failed link, does nothing more.
    pub async fn close(&self) {
        let _ = self.inner.control.unbounded_send(Control::Close);
        let _ = self.inner.finished.clone().await;
    }

    /// How many STUN requests and responses this side has sent so far, over all candidate
    /// pairs: connectivity checks while connecting, consent checks and their answers after.
    /// For measuring what a configuration costs an idle link.
    pub async fn stun_packets_sent(&self) -> u64 {
        self.inner
            .pc
            .get_stats(self.inner.runtime.now(), StatsSelector::None)
            .await
            .candidate_pairs()
            .map(|pair| pair.requests_sent + pair.responses_sent)
            .sum()
    }
}

/// The task that owns the data channel's event stream: it reports the opening, forwards
/// messages to [`DirectChannel::recv`], enforces the open timeout and the message-size limit,
/// wakes the connection's driver while setting up, and tears the connection down at the end.
struct Pump {
    runtime: Arc<dyn webrtc::runtime::Runtime>,
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    control: mpsc::UnboundedReceiver<Control>,
    opened: Option<oneshot::Sender<Result<(), WebRtcError>>>,
    inbound: mpsc::Sender<Vec<u8>>,
    closed: Arc<AtomicBool>,
    max_message_size: usize,
    open_timeout: Duration,
    setup_wake_interval: Option<Duration>,
}

/// Why the pump stopped.
enum End {
    /// Closed locally, or the peer closed the channel or connection.
    Closed,
    /// The link failed; [`DirectChannel::opened`] reports this error if it was still waiting.
    Error(WebRtcError),
}

impl Pump {
    async fn run(mut self) {
        let end = self.pump().await;
        self.closed.store(true, Ordering::Release);
        let error = match end {
            End::Closed => WebRtcError::Closed,
            End::Error(error) => {
                tracing::debug!(%error, "webrtc link failed");
                error
            }
        };
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Err(error));
        }
        // Ends the caller's `recv` once the messages already queued are read.
        self.inbound.close_channel();
        self.shut_down().await;
    }

    /// Runs until the link ends, and says why.
    async fn pump(&mut self) -> End {
        let deadline = self.runtime.sleep(self.open_timeout).fuse();
        futures::pin_mut!(deadline);
        // Our channel is open; the peer's READY has arrived.
        let (mut open, mut peer_ready) = (false, false);
        loop {
            let tick = match self.setup_wake_interval {
                Some(interval) => Some(interval),
                None if open && !peer_ready => Some(READY_INTERVAL),
                None => None,
            };
            let wake = match (self.opened.is_some(), tick) {
                (true, Some(interval)) => self.runtime.sleep(interval),
                _ => Box::pin(futures::future::pending()),
            };
            let event = futures::select! {
                event = self.dc.poll().fuse() => event,
                control = self.control.next() => {
                    return match control {
                        Some(Control::Failed) => End::Error(WebRtcError::Failed),
                        Some(Control::Close) | None => End::Closed,
                    };
                }
                () = &mut deadline => {
                    if self.opened.is_some() {
                        return End::Error(WebRtcError::OpenTimeout);
                    }
                    continue;
                }
                () = wake.fuse() => {
                    // Any command that posts to the driver makes it run its loop once more,
                    // flushing the handshake packets it queued while handling its own events;
                    // this one changes nothing (the threshold is already 0). A call that only
                    // locks the connection's state, such as `get_stats`, posts nothing and does
                    // not help: measured, it opens in 254 ms, as with no wake at all.
                    let _ = self.dc.set_buffered_amount_low_threshold(0).await;
                    if open && !peer_ready {
                        self.say_ready().await;
                    }
                    continue;
                }
            };
            match event {
                Some(DataChannelEvent::OnOpen) => {
                    open = true;
                    self.say_ready().await;
                    if peer_ready && let Some(opened) = self.opened.take() {
                        let _ = opened.send(Ok(()));
                    }
                }
                Some(DataChannelEvent::OnMessage(message)) if message.data[..] == [READY] => {
                    if !peer_ready {
                        peer_ready = true;
                        if open {
                            // The peer is open now: this one cannot be lost.
                            self.say_ready().await;
                            if let Some(opened) = self.opened.take() {
                                let _ = opened.send(Ok(()));
                            }
                        }
                    }
                }
                Some(DataChannelEvent::OnMessage(message)) => {
                    let len = message.data.len();
                    if len > self.max_message_size {
                        return End::Error(WebRtcError::MessageTooLarge {
                            len,
                            max: self.max_message_size,
                        });
                    }
                    let message = Vec::from(message.data);
                    // Wait for room, but stay closable while waiting.
                    futures::select! {
                        sent = self.inbound.send(message).fuse() => {
                            if sent.is_err() {
                                return End::Closed;
                            }
                        }
                        control = self.control.next() => {
                            return match control {
                                Some(Control::Failed) => End::Error(WebRtcError::Failed),
                                Some(Control::Close) | None => End::Closed,
                            };
                        }
                    }
                }
                Some(DataChannelEvent::OnClose) | None => return End::Closed,
                Some(_) => {}
            }
        }
    }

    async fn say_ready(&self) {
        let _ = self.dc.try_send(BytesMut::from(&[READY][..])).await;
    }

    /// Resets the channel, gives the peer a moment to acknowledge it (so its side closes
    /// too), then closes the connection.
    async fn shut_down(&mut self) {
        if self.dc.close().await.is_ok() {
            let grace = self.runtime.sleep(CLOSE_GRACE).fuse();
            futures::pin_mut!(grace);
            loop {
                let mut wake = self.runtime.sleep(Duration::from_millis(10)).fuse();
                futures::select! {
                    event = self.dc.poll().fuse() => match event {
                        Some(DataChannelEvent::OnClose) | None => break,
                        Some(_) => {}
                    },
                    () = &mut grace => break,
                    () = wake => {
                        let _ = self.dc.set_buffered_amount_low_threshold(0).await;
                    }
                }
            }
        }
        let _ = self.pc.close().await;
    }
}
