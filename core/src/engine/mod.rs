//! The sans-IO engine: one per node. It owns the identity, links, sessions, peers, gossip,
//! resonance, heartbeat, obfuscation, extensions and statistics, and does no I/O at all.
//!
//! # The drive loop
//!
//! **After every input or command, drain the outputs until they are all empty; then sleep until
//! [`poll_timeout`](Engine::poll_timeout) or the next input.** That is the whole rule.
//!
//! - *Inputs* carry `now`: [`handle_link_up`](Engine::handle_link_up),
//!   [`handle_data`](Engine::handle_data), [`handle_link_down`](Engine::handle_link_down),
//!   [`handle_incoming`](Engine::handle_incoming), [`handle_signal`](Engine::handle_signal),
//!   [`handle_blocked`](Engine::handle_blocked) / [`handle_writable`](Engine::handle_writable),
//!   [`handle_timeout`](Engine::handle_timeout). *Commands* too: `add_relay`, `connect_peer`,
//!   `whisper`, `broadcast`, `attune` / `attune_secret`, `resonate`, `send_extension`,
//!   `shutdown`, ….
//! - *Outputs*: [`poll_action`](Engine::poll_action) (open or close a transport, hand a WebRTC
//!   signal over), [`poll_transmit`](Engine::poll_transmit) (a sealed record for a link, owned)
//!   and [`poll_event`](Engine::poll_event) (what the application should know).
//!   [`drain`] takes all three in the right order, repeatedly, until nothing is left.
//! - Handling an event may issue commands (a reply to a whisper, say): they are inputs too, so
//!   drain again after them.
//! - **Time** never fails an input: a `now` earlier than the latest one seen is taken as the
//!   latest one (a wall clock stepped back by NTP does no harm).
//!
//! The contract with the adapter:
//!
//! - **Links are reliable, ordered and keep message boundaries** (a WebSocket, a reliable
//!   ordered WebRTC data channel). Each record from `poll_transmit` is written as one message,
//!   in the order given; each message received is handed to `handle_data` whole. Sessions use
//!   implicit counter nonces, so a lost, reordered or merged record fails the link.
//! - **Order of calls for a link.** The engine allocates every [`LinkId`]: it asks for outbound
//!   links with [`Action::Connect`], to be answered by `handle_link_up` or `handle_link_down`;
//!   an inbound transport is announced with `handle_incoming`, which returns its id. Records
//!   then flow both ways. [`Action::Close`] means the engine has *already forgotten* the link:
//!   close the transport, and drop anything still arriving on it (a late `handle_data` returns
//!   `Err(UnknownLink)`, nothing worse). `handle_link_down` reports a transport that ended on
//!   its own. Every transport link ends with exactly one `Action::Close`, whoever ended it.
//! - **Backpressure.** Records wait in the engine, in each link's queue, capped by
//!   `Config::max_queue_bytes`; under pressure new frames are shed by class (cover traffic,
//!   announcements, forwards, own messages; control last) and every drop is counted in
//!   [`Stats`]. An adapter never needs a buffer of its own: when a link's writer is full, call
//!   [`handle_blocked`](Engine::handle_blocked) and `poll_transmit` passes that link over until
//!   [`handle_writable`](Engine::handle_writable); or pull per link with
//!   [`poll_transmit_on`](Engine::poll_transmit_on). One slow link holds back only itself.
//! - **Errors.** Hostile bytes never panic and never return `Err`: they close the link and raise
//!   events. `Err` is for API misuse (an unknown link, an oversized payload, a full table).
//!
//! ```
//! use whispurr_core::{Identity, Timestamp, crypto::RustCrypto, engine::{Action, Config, Engine}};
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! let now = Timestamp::from_secs(1_764_000_000);
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let identity = Identity::generate(&mut rng, now);
//! let mut engine = Engine::new(identity, Config::default(), RustCrypto, rng, now);
//! engine.add_relay(now, "ws://127.0.0.1:9000/whispurr").unwrap();
//! loop {
//!     // Drain: until every output is empty.
//!     loop {
//!         let mut busy = false;
//!         while let Some(action) = engine.poll_action() {
//!             busy = true;
//!             // Action::Connect { link, addr } → open a socket, then call
//!             // engine.handle_link_up(now, link) or engine.handle_link_down(now, link).
//!             // Action::Close { link } → close it; the engine has forgotten the link.
//!             if let Action::Connect { link, .. } = action {
//!                 engine.handle_link_up(now, link).unwrap();
//!             }
//!         }
//!         while let Some(t) = engine.poll_transmit(now) {
//!             busy = true;
//!             // Write t.record (owned) as one message on link t.link.
//!             let _ = t;
//!         }
//!         while let Some(event) = engine.poll_event() {
//!             busy = true;
//!             // Commands issued here are inputs too: the outer loop drains again.
//!             println!("{event:?}");
//!         }
//!         if !busy {
//!             break;
//!         }
//!     }
//!     // Sleep until a socket message (→ engine.handle_data(now, link, bytes)) or until
//!     // engine.poll_timeout(), then engine.handle_timeout(now); and drain again.
//!     break;
//! }
//! ```
//!
//! # The frame budget
//!
//! Every payload limit comes from one place ([`Engine::max_payload`]), derived from
//! `Config::limits`: a payload the engine accepts fits every path the message can take — a
//! direct link, a tunnel through a relay, sealed through a relay — with padding on or off, and no
//! record ever exceeds Noise's 65,535-byte message limit. A record is never refused after it was
//! sealed.
//!
//! # Layers
//!
//! The engine composes small modules, each named for its job:
//!
//! - **protocols that stand alone** (own their state, typed inputs and outputs, tested without
//!   an engine): `plumtree` (the epidemic broadcast tree), `hyparview` (partial-view
//!   membership), `seen` (de-duplication), `timers` (the deadline table), `estimator`,
//!   `budget` (the frame budget), `obfuscation` (padding, jitter and cover policies);
//! - **glue to links and peers**: `tree` and `membership` translate engine happenings into
//!   those protocols' inputs and their outputs into frames;
//! - **links and paths**: `links` (the link table, queues, transmit path, heartbeats), `peers`
//!   (the peer table and the path each peer takes), `direct` (the WebRTC upgrade), `tunnels`
//!   (relays, rendezvous and end-to-end tunnels), `exchange` (peer exchange), `dispatch`
//!   (received frames to their handler), `quality`;
//! - **messages**: `broadcast`, `stem` (anonymous broadcasts' stem phase), `resonance`,
//!   `whisper`, `hosting` (extensions), with `extension` the trait extensions implement;
//! - **the surface**: `config`, `event`, `stats`, `drive` ([`drain`]).
//!
//! Four files pass 500 lines, each one concern: this one is the `Engine` type and its public
//! inputs (a fifth of it these docs); `links.rs` is the link table with everything
//! a link has (queue, transmit path, padding, jitter, heartbeat, close) — splitting it would
//! scatter one object's invariants; `plumtree.rs` and `hyparview.rs` are each one protocol's
//! state machine, read top to bottom like the paper, their tests in a file of their own.
//!
//! # Paths
//!
//! Every link runs the XX handshake. Peers are found at relays (rendezvous namespaces) and
//! reached at once through an end-to-end session tunnelled via the relay; in the background the
//! engine asks the adapter for a direct WebRTC link (signals travel end-to-end encrypted through
//! the tunnel) and moves traffic to it when it comes up, back to the relay when it fails.

mod broadcast;
mod budget;
mod config;
mod direct;
mod dispatch;
mod drive;
mod estimator;
mod event;
mod exchange;
mod extension;
mod hosting;
mod hyparview;
mod links;
mod membership;
mod obfuscation;
mod peers;
mod plumtree;
mod quality;
mod resonance;
mod seen;
mod stats;
mod stem;
mod timers;
mod tree;
mod tunnels;
mod whisper;

use alloc::{
    boxed::Box,
    collections::{BTreeMap, VecDeque},
    string::String,
    vec::Vec,
};

pub use budget::PayloadKind;
pub use config::{BroadcastAuth, Config, Gossip, MembershipConfig, Obfuscation};
pub use drive::{Output, drain};
pub use estimator::Estimator;
pub use event::{
    Action, Addr, DownReason, EngineError, Event, LinkId, PathKind, SendError, Transmit,
    WhisperFailure,
};
pub use extension::{Extension, ExtensionContext, ExtensionMessage, Outgoing};
pub use peers::{CAP_WEBRTC, MAX_KEYS_PER_PEER, PATH_HYSTERESIS, PeerStatus};
pub use plumtree::TreeConfig;
pub use quality::Quality;
use rand_core::CryptoRng;
pub use stats::{DropCause, Stats};
pub use stem::StemConfig;

/// The typed WebRTC signal of [`Action::Signal`] and [`Engine::handle_signal`] (defined in
/// [`wire::signal`](crate::wire::signal), with its compatibility rule).
pub use crate::wire::WebRtcSignal;

use self::{links::LinkEntry, peers::Peer, seen::SeenSet, whisper::PendingWhisper};
use crate::{
    Identity, NodeId, NodeKey, Timestamp,
    conn::Received,
    crypto::{CryptoProvider, VerifyingKey},
    derive::{RendezvousKey, ResonanceContentKey, ResonanceKey},
    wire::{Frame, MessageId, MessageType, WireError},
};

/// An intent this node is attuned to (keyed by its [`ResonanceKey`] in `Engine::attuned`).
pub(crate) struct Attunement {
    /// The local name: the phrase, or the name given with a secret.
    pub name: String,
    pub content: ResonanceContentKey,
    pub rendezvous: RendezvousKey,
}

/// The engine. `P` is the crypto provider, `R` the caller's CSPRNG.
pub struct Engine<P: CryptoProvider, R: CryptoRng> {
    pub(crate) identity: Identity,
    pub(crate) config: Config,
    pub(crate) provider: P,
    pub(crate) rng: R,
    pub(crate) now: Timestamp,
    pub(crate) links: BTreeMap<LinkId, LinkEntry<P>>,
    pub(crate) next_link: u64,
    pub(crate) transmit_cursor: LinkId,
    pub(crate) peers: BTreeMap<NodeKey, Peer>,
    pub(crate) pending_tunnels: BTreeMap<LinkId, NodeKey>,
    pub(crate) verifying_keys: BTreeMap<NodeKey, VerifyingKey>,
    pub(crate) seen: SeenSet,
    pub(crate) pending: BTreeMap<MessageId, PendingWhisper>,
    pub(crate) attuned: BTreeMap<ResonanceKey, Attunement>,
    pub(crate) extensions: Vec<Box<dyn Extension>>,
    pub(crate) ext_types: BTreeMap<MessageType, usize>,
    pub(crate) next_tick: Timestamp,
    pub(crate) next_lookup: Timestamp,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) events: VecDeque<Event>,
    /// Payload bytes held in `events`.
    pub(crate) event_bytes: usize,
    pub(crate) reconnects: Vec<(Timestamp, String)>,
    pub(crate) reconnect_attempts: BTreeMap<String, u32>,
    pub(crate) stats: Stats,
    pub(crate) shut_down: bool,
    pub(crate) view: Option<hyparview::State<LinkId>>,
    pub(crate) tree: Option<plumtree::PlumTree>,
    pub(crate) budget: budget::Budget,
    pub(crate) timers: timers::Timers,
    /// Own anonymous broadcasts in their stem, until a copy comes back (capped).
    pub(crate) stems: BTreeMap<MessageId, stem::PendingStem>,
    /// Ids this node relayed in a stem (capped at `stem.max_pending`; a forgotten one at worst
    /// diffuses a looping stem at once):
    /// kept apart from `seen` so the diffused copy is still accepted here.
    pub(crate) stem_relayed: BTreeMap<MessageId, Timestamp>,
    /// Relay links in `links` (whether to look namespaces up).
    pub(crate) relay_links: usize,
    /// Tunnel handshakes other nodes may still start now (`Config::inbound_tunnel_rate`).
    pub(crate) inbound_tunnel_bucket: crate::relay::rate::TokenBucket,
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// A new engine for `identity`.
    pub fn new(identity: Identity, config: Config, provider: P, rng: R, now: Timestamp) -> Self {
        let seen = SeenSet::new(config.max_seen);
        let view = membership::new_view(&config, *identity.node_id(), now);
        let budget = budget::Budget::new(&config.limits);
        Engine {
            identity,
            provider,
            rng,
            now,
            links: BTreeMap::new(),
            next_link: 1,
            transmit_cursor: LinkId(0),
            peers: BTreeMap::new(),
            pending_tunnels: BTreeMap::new(),
            verifying_keys: BTreeMap::new(),
            seen,
            pending: BTreeMap::new(),
            attuned: BTreeMap::new(),
            extensions: Vec::new(),
            ext_types: BTreeMap::new(),
            next_tick: now.saturating_add(config.tick_interval),
            next_lookup: now.saturating_add(config.lookup_interval),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            event_bytes: 0,
            reconnects: Vec::new(),
            reconnect_attempts: BTreeMap::new(),
            stats: Stats::default(),
            shut_down: false,
            view,
            tree: match config.gossip {
                Gossip::Flood => None,
                Gossip::Tree(cfg) => Some(plumtree::PlumTree::new(cfg, budget.ihave_batch)),
            },
            budget,
            timers: timers::Timers::default(),
            stems: BTreeMap::new(),
            stem_relayed: BTreeMap::new(),
            relay_links: 0,
            inbound_tunnel_bucket: crate::relay::rate::TokenBucket::full(
                &config.inbound_tunnel_rate,
                now,
            ),
            config,
        }
    }

    /// This node's ID.
    pub fn node_id(&self) -> &NodeId {
        self.identity.node_id()
    }

    /// The largest application payload of `kind` this engine accepts: one that fits every path
    /// the message may take (a direct link, a relay tunnel, sealed through a relay) with
    /// obfuscation on or off. Derived from `Config::limits` (see the frame budget in the
    /// crate docs); larger payloads are refused with [`SendError::TooLarge`].
    pub fn max_payload(&self, kind: PayloadKind) -> usize {
        self.budget.max_payload(kind)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Statistics so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.peers = self
            .peers
            .values()
            .filter(|p| self.best_path(p).is_some())
            .count();
        s.relays = self
            .links
            .values()
            .filter(|l| matches!(l.kind, links::LinkKind::Relay { .. }) && l.is_established())
            .count();
        s
    }

    /// Keys of the peers with an established path now.
    pub fn neighbour_keys(&self) -> Vec<NodeKey> {
        self.neighbours().into_iter().map(|(k, _)| k).collect()
    }

    /// Peers known by ID (with or without a path; bounded by `max_peers`).
    pub fn known_peers(&self) -> usize {
        self.peers.len()
    }

    /// Moves the engine's clock to `now`. Time never goes backwards inside the engine: a `now`
    /// earlier than the latest one seen (a wall clock stepped back by NTP, two threads reading
    /// the clock in a race) is taken as the latest one, the same rule as the relay's. Every
    /// input and command goes through here first and uses the returned time.
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    pub(crate) fn push_action(&mut self, action: Action) {
        // Signals are the only actions a peer can cause at will: cap them with the events.
        if matches!(action, Action::Signal { .. })
            && self
                .actions
                .iter()
                .filter(|a| matches!(a, Action::Signal { .. }))
                .count()
                >= self.config.max_events
        {
            self.stats.drop(DropCause::EventOverflow);
            return;
        }
        self.actions.push_back(action);
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        self.event_bytes += event.payload_len();
        self.events.push_back(event);
        while self.events.len() > self.config.max_events
            || (self.event_bytes > self.config.max_event_bytes && self.events.len() > 1)
        {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.event_bytes -= old.payload_len();
            self.stats.drop(DropCause::EventOverflow);
        }
    }

    /// The next thing the adapter must do: open a transport ([`Action::Connect`]), close one
    /// ([`Action::Close`]: the engine has already forgotten the link) or hand a WebRTC signal to
    /// a peer connection. Call after every input and command until it returns `None` (see
    /// [`drain`]).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next application event. Call after every input and command until it returns
    /// `None`; events are capped by `Config::max_events` (beyond, the oldest are dropped and
    /// counted). Commands issued while handling an event are inputs: drain again after them.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        self.event_bytes -= event.payload_len();
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. It may come early
    /// (a deadline moved later since it was armed); calling then is harmless. Cheap: the first
    /// entry of the timer table and a few engine-wide deadlines, no scan.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.shut_down {
            return None;
        }
        let relays = (self.relay_links > 0).then_some(self.next_lookup);
        let ticks = (!self.extensions.is_empty()).then_some(self.next_tick);
        [
            self.timers.next(),
            relays,
            ticks,
            self.membership_deadline(),
            self.tree_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Call when [`poll_timeout`](Self::poll_timeout)'s deadline has passed (calling early is
    /// harmless), then drain the outputs.
    ///
    /// Timers: heartbeats, dead links, handshake timeouts, whisper retries, reconnects,
    /// direct-path retries, cover traffic, extension ticks.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.advance(now);
        if self.shut_down {
            return;
        }
        self.link_timers(now);
        self.whisper_timers(now);
        self.direct_timers(now);
        self.stem_timers(now);
        self.membership_timers(now);
        self.tree_timers(now);
        let due: Vec<String> = {
            let (due, later): (Vec<_>, Vec<_>) =
                self.reconnects.drain(..).partition(|(t, _)| *t <= now);
            self.reconnects = later;
            due.into_iter().map(|(_, a)| a).collect()
        };
        for addr in due {
            // No link slot now (the table is full): try again later, with backoff, rather
            // than lose the relay for good.
            if self.connect_relay(now, addr.clone()).is_err() {
                self.schedule_reconnect(now, addr);
            }
        }
        if now >= self.next_lookup {
            self.next_lookup = now.saturating_add(self.config.lookup_interval);
            self.lookup_all(now);
        }
        if !self.extensions.is_empty() && now >= self.next_tick {
            self.next_tick = now.saturating_add(self.config.tick_interval);
            self.run_extensions(now, |ext, ctx| ext.tick(ctx));
        }
        self.seen.expire(now);
        self.rearm_all();
    }

    /// Connects to a relay server; reconnects with exponential backoff whenever it drops. An
    /// [`Action::Connect`] with [`Addr::Relay`] follows; answer it with
    /// [`handle_link_up`](Self::handle_link_up) or [`handle_link_down`](Self::handle_link_down).
    pub fn add_relay(&mut self, now: Timestamp, addr: &str) -> Result<LinkId, EngineError> {
        let now = self.advance(now);
        self.connect_relay(now, String::from(addr))
    }

    fn connect_relay(&mut self, now: Timestamp, addr: String) -> Result<LinkId, EngineError> {
        let link = self.alloc_link(now, links::LinkKind::Relay { addr: addr.clone() }, None)?;
        self.push_action(Action::Connect {
            link,
            addr: Addr::Relay(addr),
        });
        Ok(link)
    }

    /// Opens a direct WebSocket link to a peer listening at `addr`. An [`Action::Connect`] with
    /// [`Addr::Peer`] follows, to be answered like any other.
    pub fn connect_peer(&mut self, now: Timestamp, addr: &str) -> Result<LinkId, EngineError> {
        let now = self.advance(now);
        let addr = Addr::Peer(String::from(addr));
        let link = self.alloc_link(now, links::LinkKind::Direct { addr: addr.clone() }, None)?;
        self.push_action(Action::Connect { link, addr });
        Ok(link)
    }

    /// The adapter accepted an inbound transport connection; returns the link id to use for its
    /// data. The peer speaks first (it runs the handshake as initiator). `Err(TooManyLinks)`
    /// when `max_links` are open: close the transport.
    pub fn handle_incoming(&mut self, now: Timestamp) -> Result<LinkId, EngineError> {
        let now = self.advance(now);
        let conn = self.new_responder(now);
        self.alloc_link(now, links::LinkKind::Inbound, Some(conn))
    }

    /// A transport link the engine asked for with [`Action::Connect`] is up: the handshake
    /// starts (its first record is ready for [`poll_transmit`](Self::poll_transmit)). Data
    /// arriving before this call counts as the link being up.
    pub fn handle_link_up(&mut self, now: Timestamp, link: LinkId) -> Result<(), EngineError> {
        let now = self.advance(now);
        let entry = self
            .links
            .get(&link)
            .ok_or(EngineError::UnknownLink(link))?;
        if entry.conn.is_some() {
            return Ok(());
        }
        let conn = match &entry.kind {
            links::LinkKind::Direct {
                addr: Addr::WebRtc { peer, offerer },
            } if *offerer => self.new_initiator(now, Some(*peer)),
            links::LinkKind::Direct {
                addr: Addr::WebRtc { .. },
            } => self.new_responder(now),
            _ => self.new_initiator(now, None),
        };
        if let Some(entry) = self.links.get_mut(&link) {
            entry.conn = Some(conn);
            entry.opened = now;
        }
        Ok(())
    }

    /// A transport link failed or closed on its own (not after [`Action::Close`], which the
    /// engine already knows about). Paths, peers and tunnels over it go down and are reported;
    /// relay links reconnect with backoff. `Err(UnknownLink)` if the engine has already
    /// forgotten it.
    pub fn handle_link_down(&mut self, now: Timestamp, link: LinkId) -> Result<(), EngineError> {
        let now = self.advance(now);
        if !self.links.contains_key(&link) {
            return Err(EngineError::UnknownLink(link));
        }
        self.close_link(now, link, DownReason::LinkLost);
        Ok(())
    }

    /// One message received on a transport link, exactly as the peer's adapter wrote it (links
    /// keep message boundaries). Decrypted in place, so it comes in owned or mutably borrowed:
    /// a `Vec<u8>` from a WebSocket or data-channel message, a `&mut [u8]` of a read buffer —
    /// no copy either way. Hostile bytes close the link (an [`Action::Close`] and events
    /// follow) and are counted; they never return `Err`. `Err(UnknownLink)` for a link the
    /// engine never issued or has already closed: after `Action::Close`, late data for it is
    /// dropped by the adapter, or refused here.
    pub fn handle_data(
        &mut self,
        now: Timestamp,
        link: LinkId,
        mut data: impl AsMut<[u8]>,
    ) -> Result<(), EngineError> {
        let data = data.as_mut();
        let now = self.advance(now);
        let entry = self
            .links
            .get_mut(&link)
            .ok_or(EngineError::UnknownLink(link))?;
        let Some(conn) = entry.conn.as_mut() else {
            // Bytes before the adapter said the link is up: treat as up.
            self.handle_link_up(now, link)?;
            return self.handle_data(now, link, data);
        };
        self.stats.bytes_received += data.len() as u64;
        let received = conn.handle_data(now, data);
        self.on_record(now, link, received, data);
        self.flush_tunnels(now);
        Ok(())
    }

    /// What a link's connection made of one record (a transport link's or a tunnel's): a
    /// handshake step, an established session, or a frame to decode and dispatch. Anything else
    /// fails the link.
    pub(crate) fn on_record(
        &mut self,
        now: Timestamp,
        link: LinkId,
        received: Result<Received, crate::conn::ConnError>,
        data: &[u8],
    ) {
        match received {
            Ok(Received::Handshaking) => {}
            Ok(Received::Established(info)) => {
                self.link_established(now, link, info);
                // Its deadline is now the heartbeat's, no longer the handshake's.
                self.arm_link(link);
            }
            Ok(Received::Frame(len)) => {
                self.stats.frames_received += 1;
                let limits = self.config.limits;
                match Frame::decode(&data[..len], &limits) {
                    Ok(frame) => self.dispatch(now, link, frame.message),
                    // A newer minor's kind of signal: not ours to understand, not hostile.
                    Err(WireError::UnknownSignal { .. }) => self.stats.drop(DropCause::Unhandled),
                    Err(_) => {
                        self.stats.drop(DropCause::Invalid);
                        self.fail_link(now, link);
                    }
                }
            }
            Err(_) => self.fail_link(now, link),
        }
    }

    /// Closes a link whose peer sent hostile or broken bytes, and counts it.
    pub(crate) fn fail_link(&mut self, now: Timestamp, link: LinkId) {
        self.stats.links_failed += 1;
        self.close_link(now, link, DownReason::ProtocolError);
    }

    /// A WebRTC signal produced by `link`'s peer connection (its offer or answer, a local ICE
    /// candidate, the end of candidates) for the remote peer; the engine sends it end-to-end
    /// encrypted through the relay tunnel. Owned or borrowed text alike.
    ///
    /// Fails with [`SendError::TooLarge`] when its text is longer than
    /// [`Limits::max_signal_len`](crate::wire::Limits::max_signal_len) (the peer would refuse
    /// it), and with [`SendError::NoRoute`] when `link` is not a WebRTC link or the tunnel is down.
    pub fn handle_signal<S: AsRef<str>>(
        &mut self,
        now: Timestamp,
        link: LinkId,
        signal: &WebRtcSignal<S>,
    ) -> Result<(), SendError> {
        let now = self.advance(now);
        let peer = match self.links.get(&link).map(|l| &l.kind) {
            Some(links::LinkKind::Direct {
                addr: Addr::WebRtc { peer, .. },
            }) => *peer,
            _ => return Err(SendError::NoRoute),
        };
        let len = signal.text_len();
        if len > self.config.limits.max_signal_len {
            return Err(SendError::TooLarge(len));
        }
        self.send_signal(now, peer, signal.as_deref())
    }

    /// Registers an extension for its message types and calls its `init`.
    pub fn register_extension(
        &mut self,
        now: Timestamp,
        extension: Box<dyn Extension>,
    ) -> Result<(), EngineError> {
        let now = self.advance(now);
        let types = extension.message_types();
        for t in &types {
            if !t.is_extension() {
                return Err(EngineError::NotExtensionType(*t));
            }
            if self.ext_types.contains_key(t) {
                return Err(EngineError::DuplicateExtension(*t));
            }
        }
        let index = self.extensions.len();
        for t in types {
            self.ext_types.insert(t, index);
        }
        self.extensions.push(extension);
        self.run_one_extension(now, index, |ext, ctx| ext.init(ctx));
        Ok(())
    }

    /// Runs `f` with the registered extension of type `T` and a context to act through.
    pub fn with_extension<T: Extension, O>(
        &mut self,
        now: Timestamp,
        f: impl FnOnce(&mut T, &mut ExtensionContext<'_>) -> O,
    ) -> Option<O> {
        let now = self.advance(now);
        let index = self
            .extensions
            .iter()
            .position(|e| (e.as_ref() as &dyn core::any::Any).is::<T>())?;
        let mut out = None;
        self.run_one_extension(now, index, |ext, ctx| {
            let any: &mut dyn core::any::Any = ext;
            if let Some(t) = any.downcast_mut::<T>() {
                out = Some(f(t, ctx));
            }
        });
        out
    }

    /// Says goodbye on every link, shuts extensions down and stops all timers.
    pub fn shutdown(&mut self, now: Timestamp) {
        let now = self.advance(now);
        if self.shut_down {
            return;
        }
        self.run_extensions(now, |ext, ctx| ext.shutdown(ctx));
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in &ids {
            let bye = crate::wire::Message::Goodbye(crate::wire::Goodbye {
                code: 0,
                reason: "shutdown",
            });
            let _ = self.send_on(now, *id, bye, links::Class::Control);
        }
        self.flush_tunnels(now);
        self.shut_down = true;
        self.reconnects.clear();
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// A fresh random message id.
    pub(crate) fn new_id(&mut self) -> MessageId {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        MessageId(id)
    }
}
