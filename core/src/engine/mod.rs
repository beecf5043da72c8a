//! The sans-IO engine: one per node. It owns the identity, links, sessions, peers, gossip,
//! resonance, heartbeat, obfuscation, extensions and statistics, and does no I/O at all.
//!
//! # The drive loop
//!
//! Inputs carry `now`. Feed the engine with `handle_*` (link up, bytes received, link down,
//! signaling, timeout) and commands (`add_relay`, `whisper`, `broadcast`, `attune`,
//! `resonate`, …); after each input drain every output until it is empty:
//! [`poll_action`](Engine::poll_action) (open or close a transport, hand a WebRTC signal over),
//! [`poll_transmit`](Engine::poll_transmit) (a record to write, into your buffer) and
//! [`poll_event`](Engine::poll_event) (what the application should know). Then sleep until
//! [`poll_timeout`](Engine::poll_timeout) or the next input, and call
//! [`handle_timeout`](Engine::handle_timeout) when it passes.
//!
//! ```
//! use whispurr_core::{Identity, Timestamp, crypto::RustCrypto, engine::{Config, Engine}};
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! let now = Timestamp::from_secs(1_764_000_000);
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let identity = Identity::generate(&mut rng, now);
//! let mut engine = Engine::new(identity, Config::default(), RustCrypto, rng, now);
//! engine.add_relay(now, "ws://127.0.0.1:9000/whispurr").unwrap();
//! let mut buf = vec![0u8; 70_000];
//! loop {
//!     while let Some(action) = engine.poll_action() {
//!         // Action::Connect { link, addr } → open a socket, later call
//!         // engine.handle_link_up(now, link) or engine.handle_link_down(now, link).
//!         let _ = action;
//!     }
//!     while let Some(t) = engine.poll_transmit(now, &mut buf) {
//!         // write buf[..t.len] as one message on link t.link
//!         let _ = t;
//!     }
//!     while let Some(event) = engine.poll_event() {
//!         println!("{event:?}");
//!     }
//!     // Wait for a socket message (→ engine.handle_data(now, link, &mut bytes)) or until
//!     // engine.poll_timeout(), then engine.handle_timeout(now).
//!     break;
//! }
//! ```
//!
//! # Paths
//!
//! Every link runs the XX handshake. Peers are found at relays (rendezvous namespaces) and
//! reached at once through an end-to-end session tunnelled via the relay; in the background the
//! engine asks the adapter for a direct WebRTC link (signals travel end-to-end encrypted through
//! the tunnel) and moves traffic to it when it comes up, back to the relay when it fails.

mod config;
mod dispatch;
mod event;
mod extension;
mod gossip;
mod links;
mod membership;
mod obfuscation;
mod peers;
mod quality;
mod seen;
mod stats;
mod tree;
mod whisper;

use alloc::{
    boxed::Box,
    collections::{BTreeMap, VecDeque},
    string::String,
    vec::Vec,
};

pub use config::{BroadcastAuth, Config, MembershipConfig, Obfuscation};
pub use event::{
    Action, Addr, DownReason, EngineError, Event, LinkId, PathKind, SendError, Transmit,
    WhisperFailure,
};
pub use extension::{Extension, ExtensionContext, ExtensionMessage, Outgoing};
pub use gossip::{Flood, GossipStrategy};
pub use peers::{CAP_WEBRTC, MAX_KEYS_PER_PEER, PATH_HYSTERESIS};
pub use quality::{PendingPing, Quality};
use rand_core::CryptoRng;
pub use seen::{SeenSet, Verdict};
pub use stats::{DropCause, Stats};
pub use tree::TreeConfig;

/// The typed WebRTC signal of [`Action::Signal`] and [`Engine::handle_signal`] (defined in
/// [`wire::signal`](crate::wire::signal), with its compatibility rule).
pub use crate::wire::WebRtcSignal;

use self::{links::LinkEntry, peers::Peer, whisper::PendingWhisper};
use crate::{
    Identity, NodeId, NodeKey, Timestamp,
    conn::Received,
    crypto::{CryptoProvider, VerifyingKey},
    derive::{ResonanceContentKey, ResonanceKey},
    wire::{Frame, MessageId, MessageType, WireError},
};

/// An intent this node is attuned to.
pub(crate) struct Attunement {
    pub intent: String,
    pub content: ResonanceContentKey,
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
    pub(crate) strategy: Box<dyn GossipStrategy>,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) reconnects: Vec<(Timestamp, String)>,
    pub(crate) reconnect_attempts: BTreeMap<String, u32>,
    pub(crate) stats: Stats,
    pub(crate) shut_down: bool,
    pub(crate) view: Option<membership::View>,
    pub(crate) tree: Option<tree::TreeState>,
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// A new engine for `identity`.
    pub fn new(identity: Identity, config: Config, provider: P, rng: R, now: Timestamp) -> Self {
        let seen = SeenSet::new(config.max_seen, config.seen_ttl);
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
            strategy: Box::new(Flood),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            reconnects: Vec::new(),
            reconnect_attempts: BTreeMap::new(),
            stats: Stats::default(),
            shut_down: false,
            view: config.membership.map(|m| membership::View::new(m, now)),
            tree: config.broadcast_tree.map(tree::TreeState::new),
            config,
        }
    }

    /// This node's ID.
    pub fn node_id(&self) -> &NodeId {
        self.identity.node_id()
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

    /// Replaces the broadcast strategy (default: [`Flood`]).
    pub fn set_gossip_strategy(&mut self, strategy: Box<dyn GossipStrategy>) {
        self.strategy = strategy;
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
        if self.events.len() >= self.config.max_events {
            self.events.pop_front();
            self.stats.drop(DropCause::EventOverflow);
        }
        self.events.push_back(event);
    }

    /// The next thing the adapter must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut t = self.link_deadline();
        let mut at = |x: Timestamp| t = Some(t.map_or(x, |t: Timestamp| t.min(x)));
        for (when, _) in &self.reconnects {
            at(*when);
        }
        for p in self.pending.values() {
            at(p.next_try);
        }
        for p in self.peers.values() {
            if let Some(d) = p.next_direct_try {
                at(d);
            }
        }
        if !self.extensions.is_empty() {
            at(self.next_tick);
        }
        if self
            .links
            .values()
            .any(|l| matches!(l.kind, links::LinkKind::Relay { .. }))
        {
            at(self.next_lookup);
        }
        if let Some(m) = self.membership_deadline() {
            at(m);
        }
        if let Some(g) = self.tree_deadline() {
            at(g);
        }
        t
    }

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
        self.membership_timers(now);
        self.tree_timers(now);
        let due: Vec<String> = {
            let (due, later): (Vec<_>, Vec<_>) =
                self.reconnects.drain(..).partition(|(t, _)| *t <= now);
            self.reconnects = later;
            due.into_iter().map(|(_, a)| a).collect()
        };
        for addr in due {
            let _ = self.connect_relay(now, addr);
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
    }

    /// Connects to a relay server; reconnects with exponential backoff whenever it drops.
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

    /// Opens a direct WebSocket link to a peer listening at `addr`.
    pub fn connect_peer(&mut self, now: Timestamp, addr: &str) -> Result<LinkId, EngineError> {
        let now = self.advance(now);
        let addr = Addr::Peer(String::from(addr));
        let link = self.alloc_link(now, links::LinkKind::Direct { addr: addr.clone() }, None)?;
        self.push_action(Action::Connect { link, addr });
        Ok(link)
    }

    /// The adapter accepted an inbound transport connection; returns its link id.
    pub fn handle_incoming(&mut self, now: Timestamp) -> Result<LinkId, EngineError> {
        let now = self.advance(now);
        let conn = self.new_responder(now);
        self.alloc_link(now, links::LinkKind::Inbound, Some(conn))
    }

    /// A transport link the engine asked for is up.
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

    /// A transport link failed or closed.
    pub fn handle_link_down(&mut self, now: Timestamp, link: LinkId) -> Result<(), EngineError> {
        let now = self.advance(now);
        if !self.links.contains_key(&link) {
            return Err(EngineError::UnknownLink(link));
        }
        self.close_link(now, link, DownReason::LinkLost);
        Ok(())
    }

    /// One message received on a transport link. Decrypted in place. Hostile bytes close the
    /// link and are counted; they never return `Err`.
    pub fn handle_data(
        &mut self,
        now: Timestamp,
        link: LinkId,
        data: &mut [u8],
    ) -> Result<(), EngineError> {
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
            Ok(Received::Established(info)) => self.link_established(now, link, info),
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
            let is_ext = matches!(
                t,
                MessageType::FileSync
                    | MessageType::MiningSignal
                    | MessageType::Dreamspace
                    | MessageType::Custom(_)
            );
            if !is_ext {
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
