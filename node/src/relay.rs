//! The relay server: the core's [`Relay`] state machine behind a WebSocket listener.
//!
//! One task owns the relay and is the only place that calls it, exactly like a node's task.
//! In front of it the listener enforces what the state machine cannot see — addresses:
//! connections per source address (open or in their WebSocket handshake), connections per
//! source that have not yet registered, and a deadline on the WebSocket handshake (the relay's
//! own Noise handshake has its deadline inside the state machine,
//! [`RelayConfig::handshake_timeout`]).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::Poll,
    time::Duration,
};

use futures::{
    SinkExt, StreamExt,
    channel::{mpsc, oneshot},
    future::{AbortHandle, Abortable, poll_fn},
};
use rand::rngs::StdRng;
use whispurr_core::{
    Identity, NodeId, Timestamp,
    crypto::Ring,
    relay::{
        ClientId, RateLimit, Relay, RelayAction, RelayConfig, RelayEvent, RelayStats, TokenBucket,
    },
};

use crate::{
    Error, Result,
    link::{LinkEvent, LinkHandle, Reporter, new_link},
    runtime::{HandshakeCheck, Runtime, WsStream},
    stats::{Transport, WireCounters},
    task::{Deadline, now, with_deadline},
    ws::ws_config,
};

/// Caps the listener applies per source address, before the relay state machine sees a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Connections from one address, open or in their handshake. Default 64.
    pub max_connections: usize,
    /// Connections from one address that have not registered (completed the relay's
    /// handshake) yet. Default 8: a source cannot hold `max_clients` with idle sockets.
    pub max_unregistered: usize,
    /// Time allowed for the WebSocket handshake. Default 5 s.
    pub ws_handshake: Duration,
    /// New connections one address may open: a token bucket, checked before the relay
    /// generates a key or runs a handshake for it. Default 20 per second, bursts of 40.
    pub connect_rate: RateLimit,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_connections: 64,
            max_unregistered: 8,
            ws_handshake: Duration::from_secs(5),
            connect_rate: RateLimit {
                per_second: 20,
                burst: 40,
            },
        }
    }
}

/// Builds and starts a [`RelayServer`] on runtime `R`. `whispurr_tokio::relay()` gives one for
/// tokio.
pub struct RelayBuilder<R: Runtime> {
    runtime: R,
    listen: SocketAddr,
    identity: Option<Identity>,
    config: RelayConfig,
    limits: SourceLimits,
    path: Option<String>,
}

impl<R: Runtime> RelayBuilder<R> {
    /// A relay on `127.0.0.1:0` (a free port) with default settings.
    pub fn new(runtime: R) -> Self {
        RelayBuilder {
            runtime,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            identity: None,
            config: RelayConfig::default(),
            limits: SourceLimits::default(),
            path: None,
        }
    }

    /// Listens on `addr`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Runs as `identity` instead of a fresh one.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The relay state machine's settings (client caps, rate limits, timeouts).
    pub fn config(mut self, config: RelayConfig) -> Self {
        self.config = config;
        self
    }

    /// The per-source caps of the listener.
    pub fn source_limits(mut self, limits: SourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Accepts WebSocket upgrades only on this path (e.g. `/chat`); others are answered 404.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Binds the listener and starts the relay's task.
    pub async fn start(self) -> Result<RelayServer> {
        let now = now();
        let mut rng: StdRng = rand::make_rng();
        let identity = self
            .identity
            .unwrap_or_else(|| Identity::generate(&mut rng, now));
        let relay = Relay::new(identity, self.config, Ring, rng);
        let id = *relay.node_id();
        let listener = self.runtime.bind(self.listen).await?;
        let addr = R::local_addr(&listener)?;
        let (link_tx, link_events) = mpsc::channel(256);
        let (commands_tx, commands) = mpsc::channel(16);
        let reporter = Reporter {
            events: link_tx,
            wire: Arc::new(WireCounters::default()),
        };
        let sources = Arc::new(Mutex::new(HashMap::new()));
        let refused = Arc::new(Refused::default());
        let (abort, reg) = AbortHandle::new_pair();
        let accept = accept_loop(
            self.runtime.clone(),
            listener,
            reporter.events.clone(),
            Listener {
                sources,
                limits: self.limits,
                path: self.path.map(Arc::<str>::from),
                refused: refused.clone(),
            },
        );
        self.runtime.spawn(async move {
            let _ = Abortable::new(accept, reg).await;
        });
        let (writers, writers_done) = mpsc::channel(1);
        let task = RelayTask {
            rt: self.runtime.clone(),
            relay,
            clients: HashMap::new(),
            unregistered: HashMap::new(),
            limits: self.limits,
            reporter,
            link_events,
            commands,
            listener: Some(abort),
            writers: Some(writers),
            writers_done,
            refused_unregistered: 0,
            refused,
        };
        self.runtime.spawn(task.run());
        Ok(RelayServer {
            id,
            addr,
            commands: commands_tx,
        })
    }
}

/// A running relay server. Cheap to clone. Dropping every handle shuts it down.
#[derive(Clone, Debug)]
pub struct RelayServer {
    id: NodeId,
    addr: SocketAddr,
    commands: mpsc::Sender<RelayCommand>,
}

/// A relay server's statistics: the state machine's and the listener's.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayServerStats {
    /// The relay state machine's counters.
    pub relay: RelayStats,
    /// Connections refused because their source held `max_unregistered` unregistered ones.
    pub refused_unregistered: u64,
    /// Connections refused because their source held `max_connections` already.
    pub refused_connections: u64,
    /// Connections refused because their source opened them faster than `connect_rate`.
    pub refused_rate: u64,
}

enum RelayCommand {
    Stats(oneshot::Sender<RelayServerStats>),
    Shutdown(oneshot::Sender<()>),
}

impl RelayServer {
    /// The relay's node ID.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL nodes connect to: `ws://addr`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The relay's statistics.
    pub async fn stats(&self) -> Result<RelayServerStats> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .clone()
            .send(RelayCommand::Stats(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Stops accepting, closes every client and ends the task.
    pub async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .clone()
            .send(RelayCommand::Shutdown(tx))
            .await
            .map_err(|_| Error::Closed)?;
        let _ = rx.await;
        Ok(())
    }
}

type Sources = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Counts a connection against its source address while it lives.
pub(crate) struct SourceGuard {
    sources: Sources,
    ip: IpAddr,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut s = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = s.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.ip);
            }
        }
    }
}

/// Most source addresses whose connect rate is remembered; past it the memory starts afresh
/// (an attacker with that many addresses gains a burst each, no more).
const MAX_RATE_SOURCES: usize = 4096;

/// What the accept loop enforces, and where it counts refusals.
struct Listener {
    sources: Sources,
    limits: SourceLimits,
    path: Option<Arc<str>>,
    refused: Arc<Refused>,
}

// The handshake check's error type is tungstenite's HTTP response, as its `Callback` wants.
#[allow(clippy::result_large_err)]
async fn accept_loop<R: Runtime>(
    rt: R,
    mut listener: R::Listener,
    events: mpsc::Sender<LinkEvent<ClientId, RelayIncoming>>,
    l: Listener,
) {
    let Listener {
        sources,
        limits,
        path,
        refused,
    } = l;
    let mut rates: HashMap<IpAddr, TokenBucket> = HashMap::new();
    loop {
        let (tcp, from) = match R::accept(&mut listener).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "relay accept failed");
                rt.sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if rates.len() >= MAX_RATE_SOURCES && !rates.contains_key(&from.ip()) {
            rates.clear();
        }
        let now = crate::now();
        let bucket = rates
            .entry(from.ip())
            .or_insert_with(|| TokenBucket::full(&limits.connect_rate, now));
        if !bucket.take(&limits.connect_rate, now) {
            refused.rate.fetch_add(1, Relaxed);
            tracing::debug!(%from, "source over its connect rate");
            continue;
        }
        let guard = {
            let mut s = sources.lock().unwrap_or_else(|p| p.into_inner());
            let n = s.entry(from.ip()).or_insert(0);
            if *n >= limits.max_connections {
                refused.connections.fetch_add(1, Relaxed);
                tracing::debug!(%from, "source over its connection cap");
                continue;
            }
            *n += 1;
            SourceGuard {
                sources: sources.clone(),
                ip: from.ip(),
            }
        };
        let (rt2, mut events, path) = (rt.clone(), events.clone(), path.clone());
        rt.spawn(async move {
            let check: HandshakeCheck = Box::new(move |request, response| match &path {
                Some(p) if request.uri().path() != &**p => {
                    let mut refusal = tungstenite::handshake::server::ErrorResponse::new(None);
                    *refusal.status_mut() = tungstenite::http::StatusCode::NOT_FOUND;
                    Err(refusal)
                }
                _ => Ok(response),
            });
            let shake = rt2.ws_accept(tcp, ws_config(), check);
            if let Some(Ok(ws)) = with_deadline(&rt2, limits.ws_handshake, shake).await {
                let _ = events
                    .send(LinkEvent::Incoming(RelayIncoming { ws, from, guard }))
                    .await;
            }
        });
    }
}

/// A WebSocket accepted by the relay's listener, with the guard counting it against its source.
pub(crate) struct RelayIncoming {
    ws: WsStream,
    from: SocketAddr,
    guard: SourceGuard,
}

struct Client {
    link: LinkHandle,
    ip: IpAddr,
    registered: bool,
}

struct RelayTask<R: Runtime> {
    rt: R,
    relay: Relay<Ring, StdRng>,
    clients: HashMap<ClientId, Client>,
    unregistered: HashMap<IpAddr, usize>,
    limits: SourceLimits,
    reporter: Reporter<ClientId, RelayIncoming>,
    link_events: mpsc::Receiver<LinkEvent<ClientId, RelayIncoming>>,
    commands: mpsc::Receiver<RelayCommand>,
    listener: Option<AbortHandle>,
    writers: Option<mpsc::Sender<()>>,
    writers_done: mpsc::Receiver<()>,
    refused_unregistered: u64,
    refused: Arc<Refused>,
}

/// What the listener refused, counted for the stats.
#[derive(Debug, Default)]
struct Refused {
    connections: AtomicU64,
    rate: AtomicU64,
}

enum Wake {
    Command(Option<RelayCommand>),
    Link(LinkEvent<ClientId, RelayIncoming>),
    Timer,
}

impl<R: Runtime> RelayTask<R> {
    async fn run(mut self) {
        let mut deadline = Deadline::new();
        let mut turn = false;
        let mut done = None;
        loop {
            self.drive();
            deadline.set(&self.rt, self.relay.poll_timeout());
            // The timer is asked first every other turn, so a flood of client data never
            // starves the handshake and idle deadlines.
            let timer_first = turn;
            turn = !turn;
            let wake = poll_fn(|cx| {
                if timer_first && deadline.poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                if let Poll::Ready(Some(e)) = self.link_events.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Link(e));
                }
                if let Poll::Ready(c) = self.commands.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Command(c));
                }
                if !timer_first && deadline.poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                Poll::Pending
            })
            .await;
            let now = now();
            match wake {
                Wake::Command(Some(RelayCommand::Stats(tx))) => {
                    let _ = tx.send(RelayServerStats {
                        relay: self.relay.stats().clone(),
                        refused_unregistered: self.refused_unregistered,
                        refused_connections: self.refused.connections.load(Relaxed),
                        refused_rate: self.refused.rate.load(Relaxed),
                    });
                }
                Wake::Command(Some(RelayCommand::Shutdown(tx))) => {
                    done = Some(tx);
                    break;
                }
                Wake::Command(None) => break,
                Wake::Timer => self.relay.handle_timeout(now),
                Wake::Link(e) => self.on_link_event(now, e),
            }
        }
        if let Some(l) = self.listener.take() {
            l.abort();
        }
        self.clients.clear();
        self.writers = None;
        let rt = self.rt.clone();
        let wait = async { while self.writers_done.next().await.is_some() {} };
        let _ = with_deadline(&rt, Duration::from_secs(2), wait).await;
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }

    fn drive(&mut self) {
        let now = now();
        loop {
            let mut moved = false;
            while let Some(RelayAction::Close { client, reason, .. }) = self.relay.poll_action() {
                moved = true;
                tracing::debug!(%client, ?reason, "relay closes client");
                self.forget(client);
            }
            while let Some(t) = self.relay.poll_transmit(now) {
                moved = true;
                let cap = self.relay.config().max_queue_bytes;
                if let Some(c) = self.clients.get_mut(&t.client)
                    && !c.link.send_or_hold(t.record, cap)
                {
                    // A client that reads too slowly is closed, not fed forever: a relay must
                    // not be held back, or grow, because of one client.
                    tracing::debug!(client = %t.client, "client reads too slowly; closed");
                    self.relay.handle_link_down(now, t.client);
                }
            }
            while let Some(RelayEvent::Registered { client, .. }) = self.relay.poll_event() {
                moved = true;
                if let Some(c) = self.clients.get_mut(&client)
                    && !c.registered
                {
                    c.registered = true;
                    Self::uncount(&mut self.unregistered, c.ip);
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn uncount(unregistered: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
        if let Some(n) = unregistered.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                unregistered.remove(&ip);
            }
        }
    }

    fn forget(&mut self, client: ClientId) {
        if let Some(c) = self.clients.remove(&client)
            && !c.registered
        {
            Self::uncount(&mut self.unregistered, c.ip);
        }
    }

    fn on_link_event(&mut self, now: Timestamp, event: LinkEvent<ClientId, RelayIncoming>) {
        match event {
            LinkEvent::Data(client, data) => {
                let _ = self.relay.handle_data(now, client, data);
            }
            LinkEvent::Down(client) | LinkEvent::Failed(client) => {
                self.relay.handle_link_down(now, client);
            }
            LinkEvent::Incoming(incoming) => self.accept(now, incoming),
            LinkEvent::Writable(client) => {
                if let Some(c) = self.clients.get_mut(&client) {
                    c.link.unblock();
                }
            }
            LinkEvent::Opened(_) | LinkEvent::Signal(..) => {}
        }
    }

    fn accept(&mut self, now: Timestamp, incoming: RelayIncoming) {
        let RelayIncoming { ws, from, guard } = incoming;
        let ip = from.ip();
        let waiting = self.unregistered.get(&ip).copied().unwrap_or(0);
        if waiting >= self.limits.max_unregistered {
            self.refused_unregistered += 1;
            tracing::debug!(%from, "source holds too many unregistered connections");
            return;
        }
        let Ok(client) = self.relay.handle_incoming(now) else {
            return;
        };
        let Some(token) = self.writers.clone() else {
            return;
        };
        *self.unregistered.entry(ip).or_insert(0) += 1;
        let (handle, mut task) =
            new_link(client, Transport::Relay, self.reporter.clone(), None, token);
        // Read each client no faster than the relay's rate limit lets its frames through: an
        // honest burst is slowed by TCP backpressure instead of losing frames (a lost frame
        // breaks the client's end-to-end sessions). The reader's bucket holds half the burst:
        // the relay takes its tokens later than the reader does, and while its bucket is full
        // that delay costs it refill; half a burst covers `burst / 2 / per_second` of delay
        // (one second with the defaults).
        let rate = self.relay.config().rate;
        task.pace = Some(whispurr_core::relay::RateLimit {
            per_second: rate.per_second,
            burst: (rate.burst / 2).max(1),
        });
        self.clients.insert(
            client,
            Client {
                link: handle,
                ip,
                registered: false,
            },
        );
        let rt = self.rt.clone();
        self.rt.spawn(async move {
            let _guard = guard;
            task.run_ws(&rt, ws).await;
        });
    }
}
