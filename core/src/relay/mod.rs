//! The relay server as a sans-IO state machine.
//!
//! A [`Relay`] authenticates clients, forwards opaque frames between node IDs, offers rendezvous
//! (who else is in a namespace), enforces frame-size, queue and rate limits, and stores nothing:
//! no offline queues, and a client's namespace memberships vanish with it.
//!
//! **Registration is the handshake.** The relay is always the responder of the XX link
//! handshake ([`Conn`]); the client's static key is its node key and the crypto layer checks that
//! the node ID it claims is that key. So a client can only ever be registered under an ID whose
//! secret key it holds, and every frame it sends afterwards is attributed to that key: a RELAY
//! frame names only its *target*, and the relay writes the proven source in. A second connection
//! proving the same key replaces the first (closed with [`CloseReason::Replaced`]), so reconnects
//! just work.
//!
//! **What a registered client may send:**
//!
//! | frame | the relay |
//! |---|---|
//! | `RELAY { peer: target }` | forwards `RELAY { peer: source, stage, payload }` to the target, or answers `UNREACHABLE { peer: target }` |
//! | `JOIN { namespace, leave }` | adds or removes the membership; a refused JOIN is answered with an `ERROR` ([`error_code`]) |
//! | `LOOKUP { namespace }` | answers `FOUND` with up to [`RelayConfig::max_found`] other members to a client that joined the namespace; anyone else gets an `ERROR` ([`error_code::NOT_JOINED`]), counted in [`RelayStats::lookup_refused`] |
//! | `PING` | answers `PONG` with the same id and time |
//! | `GOODBYE` | closes the client |
//! | anything else | counts it in [`RelayStats::unexpected`] and ignores it |
//!
//! **Rendezvous without a directory.** A namespace is an opaque 32-byte name; the relay knows
//! nothing of intents. Engines name an intent's namespace by a value derived from the intent's
//! secret and the relay's own key (one Argon2id evaluation per guess of a phrase, and a
//! different name at every relay), and every engine joins the public global namespace
//! ([`global_namespace`](crate::derive::global_namespace)) — the "everyone" rendezvous, open in
//! that its name is known to all, under the same rule as any other: who looks is listed too.
//! So the relay learns which of its clients share a namespace and how many each joined, never
//! what they stand for, and a client learns the members of a namespace only by becoming one.
//!
//! **Loss is the ends' business.** A forward that does not fit the target's send queue
//! ([`RelayConfig::max_queue_bytes`]) is dropped and counted ([`RelayStats::queue_full`]), as is
//! a reply that does not fit the asker's queue. The sender is not told: the end-to-end layer's
//! acknowledgements and retransmissions handle loss, and telling it would let a slow reader make
//! the relay amplify traffic back to senders.
//!
//! **Bad input.** A record larger than [`RelayConfig::max_record`], a record that fails to
//! decrypt, a failed handshake or a frame that fails to decode or validate closes that client
//! and raises [`RelayAction::Close`] with the cause; nothing returns `Err` for hostile bytes.
//! Frames over a client's token-bucket rate limit are dropped and counted; a client that stays
//! over it (more than [`RelayConfig::rate_limit_close_after`] refusals without its bucket ever
//! filling up again) is closed with [`CloseReason::RateLimited`]. Idle registered clients are
//! closed after [`RelayConfig::idle_timeout`] (clients keep the link alive with PING), and
//! connections that do not finish the handshake after [`RelayConfig::handshake_timeout`].
//!
//! **Bounded.** Connections are capped by [`RelayConfig::max_clients`], send queues in bytes,
//! namespaces per client, members per namespace and namespaces in total. A closed client's slot
//! is held until its [`RelayAction::Close`] has been polled, which bounds the action queue; the
//! event queue is capped at `max_clients`. Iteration is over ordered maps, so a run is reproducible from
//! its inputs and the RNG seed.
//!
//! # Driving it
//!
//! The adapter owns the sockets and the clock. On a new connection it calls
//! [`handle_incoming`](Relay::handle_incoming) (closing the socket on `Err(Full)`); for each
//! received record (one WebSocket binary message) [`handle_data`](Relay::handle_data); when a
//! socket ends [`handle_link_down`](Relay::handle_link_down). After every input it drains
//! [`poll_transmit`](Relay::poll_transmit) (send each record on its client's socket) and
//! [`poll_action`](Relay::poll_action) (close the socket on [`RelayAction::Close`], as for the
//! engine's `Action::Close`: every accepted connection ends with exactly one) and
//! [`poll_event`](Relay::poll_event) (registrations, to log), then sleeps until
//! [`poll_timeout`](Relay::poll_timeout) or the next input, calling
//! [`handle_timeout`](Relay::handle_timeout) when the deadline passes.
//!
//! Here two simulated clients, each a [`Conn::initiator`], talk through a relay:
//!
//! ```
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! use whispurr_core::{
//!     Identity, Timestamp,
//!     conn::{Conn, Received},
//!     crypto::RustCrypto,
//!     relay::{ClientId, Relay, RelayAction, RelayConfig, RelayEvent},
//!     wire::{self, Frame, Limits, Message, RelayStage},
//! };
//!
//! type Clients = Vec<(ClientId, Conn<RustCrypto>)>;
//!
//! /// One round of the adapter's loop, until nothing moves. Returns the frames each client got.
//! fn pump(relay: &mut Relay<RustCrypto, ChaCha20Rng>, clients: &mut Clients, now: Timestamp)
//!     -> Vec<(usize, Vec<u8>)>
//! {
//!     let mut got = Vec::new();
//!     loop {
//!         let mut busy = false;
//!         // Records arriving from the clients' sockets, handed in owned.
//!         for (id, conn) in clients.iter_mut() {
//!             while let Some(record) = conn.pop_record() {
//!                 relay.handle_data(now, *id, record).expect("known client");
//!                 busy = true;
//!             }
//!         }
//!         // Records to write to the clients' sockets, handed out owned.
//!         while let Some(mut t) = relay.poll_transmit(now) {
//!             let i = clients.iter().position(|(id, _)| *id == t.client).unwrap();
//!             if let Ok(Received::Frame(n)) = clients[i].1.handle_data(now, &mut t.record) {
//!                 got.push((i, t.record[..n].to_vec()));
//!             }
//!             busy = true;
//!         }
//!         // Actions: a real adapter closes the socket on `Close`.
//!         while let Some(RelayAction::Close { client, .. }) = relay.poll_action() {
//!             println!("close {client}");
//!             busy = true;
//!         }
//!         // Events, to log.
//!         while let Some(event) = relay.poll_event() {
//!             let RelayEvent::Registered { client, node } = event;
//!             println!("{client} is {node}");
//!             busy = true;
//!         }
//!         if !busy {
//!             return got;
//!         }
//!     }
//! }
//!
//! let now = Timestamp::from_millis(1_764_000_000_000);
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let config = RelayConfig::default();
//! let relay_id = Identity::generate(&mut rng, now);
//! let mut relay = Relay::new(relay_id, config, RustCrypto, ChaCha20Rng::seed_from_u64(2));
//!
//! let alice = Identity::generate(&mut rng, now);
//! let bob = Identity::generate(&mut rng, now);
//! let mut clients: Clients = Vec::new();
//! for me in [&alice, &bob] {
//!     // Each client dials the relay it expects, and the relay accepts the connection.
//!     let relay_key = Some(*relay.node_id().key());
//!     let conn = Conn::initiator(
//!         RustCrypto, me, relay_key, config.link, 1 << 20, config.max_record, now, &mut rng,
//!     );
//!     clients.push((relay.handle_incoming(now)?, conn));
//! }
//! pump(&mut relay, &mut clients, now); // handshakes: both clients are now registered
//! assert_eq!(relay.stats().registered, 2);
//!
//! // Alice asks the relay to deliver to Bob's key.
//! let to_bob = Frame::new(Message::Relay(wire::Relay {
//!     peer: *bob.node_id().key(),
//!     stage: RelayStage::Sealed,
//!     payload: b"sealed to bob",
//! }));
//! clients[0].1.queue_frame(&to_bob, 0, false)?;
//! let got = pump(&mut relay, &mut clients, now);
//!
//! // Bob receives it with Alice's proven key as the source.
//! assert_eq!(got.len(), 1);
//! let (to, bytes) = &got[0];
//! assert_eq!(*to, 1);
//! let Message::Relay(r) = Frame::decode(bytes, &Limits::default())?.message else {
//!     panic!("expected RELAY");
//! };
//! assert_eq!(r.peer, *alice.node_id().key());
//! assert_eq!(r.payload, b"sealed to bob");
//!
//! // The timer half of the loop: sleep until `poll_timeout`, then `handle_timeout`.
//! let deadline = relay.poll_timeout().expect("idle timeouts are pending");
//! relay.handle_timeout(deadline);
//! assert_eq!(relay.stats().idle_timeouts, 2);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod config;
mod event;
mod namespace;
pub(crate) mod rate;
mod stats;

use alloc::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    vec::Vec,
};
use core::ops::Bound;

use rand_core::CryptoRng;

use self::namespace::{JoinError, Namespaces};
pub use self::{
    config::RelayConfig,
    event::{ClientId, CloseReason, RelayAction, RelayError, RelayEvent, Transmit},
    rate::{RateLimit, TokenBucket},
    stats::RelayStats,
};
use crate::{
    Identity, NodeId, NodeKey, Timestamp,
    conn::{Conn, ConnError, QueueError, Received},
    crypto::CryptoProvider,
    wire::{
        ErrorMsg, Flags, Found, Frame, Join, List, Lookup, Message, Ping, Pong, Relay as RelayMsg,
        Unreachable,
    },
};

/// Codes of the ERROR messages the relay sends when it refuses a JOIN or a LOOKUP.
pub mod error_code {
    /// The client is already in [`RelayConfig::max_namespaces_per_client`](super::RelayConfig)
    /// namespaces.
    pub const TOO_MANY_JOINED: u16 = 0x0101;
    /// The namespace has [`RelayConfig::max_members_per_namespace`](super::RelayConfig) members.
    pub const NAMESPACE_FULL: u16 = 0x0102;
    /// The relay tracks [`RelayConfig::max_namespaces`](super::RelayConfig) namespaces.
    pub const TOO_MANY_NAMESPACES: u16 = 0x0103;
    /// A LOOKUP of a namespace the client has not joined (members are listed to members only).
    pub const NOT_JOINED: u16 = 0x0104;
}

/// One connection and what the relay knows about it.
struct Client<P: CryptoProvider> {
    conn: Conn<P>,
    /// The proven node ID, once the handshake is done.
    node: Option<NodeId>,
    bucket: TokenBucket,
    /// Namespaces joined (at most `max_namespaces_per_client`).
    namespaces: BTreeSet<[u8; 32]>,
    /// The deadline recorded in `Relay::deadlines`: never later than the real one.
    deadline: Timestamp,
}

/// The relay state machine (see the module docs).
pub struct Relay<P: CryptoProvider, R: CryptoRng> {
    identity: Identity,
    config: RelayConfig,
    provider: P,
    rng: R,
    /// The latest `now` seen; time never goes backwards inside the relay.
    now: Timestamp,
    next_id: u64,
    clients: BTreeMap<ClientId, Client<P>>,
    by_key: BTreeMap<NodeKey, ClientId>,
    namespaces: Namespaces,
    /// Handshake and idle deadlines, refreshed lazily in `handle_timeout`.
    deadlines: BTreeSet<(Timestamp, ClientId)>,
    /// Clients with records to send; served round-robin after `cursor`.
    ready: BTreeSet<ClientId>,
    cursor: Option<ClientId>,
    /// `Close` actions not yet polled: their slots still count against `max_clients`.
    actions: VecDeque<RelayAction>,
    /// Capped at `max_clients`: beyond it the oldest are dropped (and counted).
    events: VecDeque<RelayEvent>,
    stats: RelayStats,
}

impl<P: CryptoProvider, R: CryptoRng> core::fmt::Debug for Relay<P, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Relay")
            .field("node_id", self.identity.node_id())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<P: CryptoProvider, R: CryptoRng> Relay<P, R> {
    /// A relay with its own identity (clients may pin its key), configuration, crypto provider
    /// and random source (ephemeral handshake keys, rendezvous sampling).
    pub fn new(identity: Identity, config: RelayConfig, provider: P, rng: R) -> Self {
        Relay {
            identity,
            config,
            provider,
            rng,
            now: Timestamp::ZERO,
            next_id: 0,
            clients: BTreeMap::new(),
            by_key: BTreeMap::new(),
            namespaces: Namespaces::default(),
            deadlines: BTreeSet::new(),
            ready: BTreeSet::new(),
            cursor: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: RelayStats::default(),
        }
    }

    /// The relay's node ID, which clients may pin when they dial it.
    pub fn node_id(&self) -> &NodeId {
        self.identity.node_id()
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Statistics so far.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }

    /// The node ID a client proved, once registered.
    pub fn client_node(&self, client: ClientId) -> Option<&NodeId> {
        self.clients.get(&client)?.node.as_ref()
    }

    /// The client registered under `key`, if any.
    pub fn client_by_key(&self, key: &NodeKey) -> Option<ClientId> {
        self.by_key.get(key).copied()
    }

    /// Time never goes backwards inside the relay: an adapter's wall clock may step back (NTP),
    /// and refusing input for that would only hurt clients.
    fn clock(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    /// The adapter accepted a connection. `Err(Full)` when [`RelayConfig::max_clients`] are
    /// held; the adapter then closes the transport.
    pub fn handle_incoming(&mut self, now: Timestamp) -> Result<ClientId, RelayError> {
        let now = self.clock(now);
        if self.clients.len() + self.actions.len() >= self.config.max_clients {
            self.stats.rejected_full += 1;
            return Err(RelayError::Full);
        }
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let conn = Conn::responder(
            self.provider.clone(),
            &self.identity,
            self.config.link,
            self.config.max_queue_bytes,
            self.config.max_record,
            now,
            &mut self.rng,
        );
        let deadline = now.saturating_add(self.config.handshake_timeout);
        self.clients.insert(
            id,
            Client {
                conn,
                node: None,
                bucket: TokenBucket::full(&self.config.rate, now),
                namespaces: BTreeSet::new(),
                deadline,
            },
        );
        self.deadlines.insert((deadline, id));
        self.stats.clients += 1;
        self.stats.connections += 1;
        Ok(id)
    }

    /// One record received from `client` (one transport message). `data` is decrypted in
    /// place. Hostile bytes close the client and raise [`RelayAction::Close`]; data for a client
    /// the relay has already closed is ignored. `Err` only for a handle never issued.
    pub fn handle_data(
        &mut self,
        now: Timestamp,
        client: ClientId,
        mut data: impl AsMut<[u8]>,
    ) -> Result<(), RelayError> {
        let data = data.as_mut();
        let now = self.clock(now);
        let Some(c) = self.clients.get_mut(&client) else {
            return if client.0 < self.next_id {
                Ok(())
            } else {
                Err(RelayError::UnknownClient(client))
            };
        };
        self.stats.bytes_received += data.len() as u64;
        let was_established = c.conn.is_established();
        match c.conn.handle_data(now, data) {
            Ok(Received::Handshaking) => self.mark_ready(client),
            Ok(Received::Established(info)) => {
                self.mark_ready(client);
                self.register(client, info.node_id, now);
            }
            Ok(Received::Frame(len)) => self.on_frame(now, client, &data[..len]),
            Err(ConnError::TooLarge(n)) => {
                self.stats.oversized += 1;
                self.close(client, CloseReason::Oversized(n));
            }
            Err(ConnError::Crypto(e)) if was_established => {
                self.stats.decrypt_failures += 1;
                self.close(client, CloseReason::Decrypt(e));
            }
            Err(ConnError::Crypto(e)) => {
                self.stats.handshake_failures += 1;
                self.close(client, CloseReason::HandshakeFailed(e));
            }
            // The relay removes clients as it closes them, so a live one is never closed.
            Err(ConnError::Closed) => self.close(client, CloseReason::Disconnected),
        }
        Ok(())
    }

    /// The adapter's transport for `client` ended. The relay forgets the client and raises
    /// [`RelayAction::Close`] with [`CloseReason::Disconnected`]; unknown or already closed
    /// handles are ignored.
    pub fn handle_link_down(&mut self, now: Timestamp, client: ClientId) {
        self.clock(now);
        self.close(client, CloseReason::Disconnected);
    }

    /// Closes clients whose handshake or idle deadline has passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.clock(now);
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(c) = self.clients.get_mut(&id) else {
                continue;
            };
            let real = Self::deadline_of(&self.config, &c.conn);
            if real > now {
                // Traffic arrived since the entry was recorded: push it back.
                c.deadline = real;
                self.deadlines.insert((real, id));
            } else if c.conn.is_established() {
                self.stats.idle_timeouts += 1;
                self.close(id, CloseReason::IdleTimeout);
            } else {
                self.stats.handshake_timeouts += 1;
                self.close(id, CloseReason::HandshakeTimeout);
            }
        }
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work, if any. It may come
    /// early (a client was active since); calling then is harmless.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The next record to send, moved out of its client's queue (no copy), serving clients with
    /// queued records in turn; write it as one message on `Transmit::client`'s transport. Call
    /// after every input until it returns `None` (the same rule as the engine's).
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        self.clock(now);
        while !self.ready.is_empty() {
            let after = self.cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let id = self
                .ready
                .range((after, Bound::Unbounded))
                .next()
                .or_else(|| self.ready.first())
                .copied()?;
            self.cursor = Some(id);
            let Some(c) = self.clients.get_mut(&id) else {
                self.ready.remove(&id);
                continue;
            };
            let Some(record) = c.conn.pop_record() else {
                self.ready.remove(&id);
                continue;
            };
            if c.conn.queued_bytes() == 0 {
                self.ready.remove(&id);
            }
            self.stats.bytes_sent += record.len() as u64;
            return Some(Transmit { client: id, record });
        }
        None
    }

    /// The next thing the adapter must do (close a transport), oldest first. Call after every
    /// input until it returns `None`; a closed client's slot counts against `max_clients` until
    /// its `Close` has been polled, which bounds this queue.
    pub fn poll_action(&mut self) -> Option<RelayAction> {
        self.actions.pop_front()
    }

    /// The next event, oldest first. At most `max_clients` are held; older ones are dropped
    /// and counted in [`RelayStats::events_dropped`].
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    fn deadline_of(config: &RelayConfig, conn: &Conn<P>) -> Timestamp {
        if conn.is_established() {
            conn.last_recv.saturating_add(config.idle_timeout)
        } else {
            conn.opened_at.saturating_add(config.handshake_timeout)
        }
    }

    fn mark_ready(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get(&id)
            && c.conn.queued_bytes() > 0
        {
            self.ready.insert(id);
        }
    }

    fn register(&mut self, id: ClientId, node: NodeId, now: Timestamp) {
        let key = *node.key();
        if let Some(&old) = self.by_key.get(&key)
            && old != id
        {
            self.stats.replaced += 1;
            self.close(old, CloseReason::Replaced);
        }
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        c.node = Some(node);
        // The deadline switches from handshake to idle: replace the entry (it may move earlier).
        self.deadlines.remove(&(c.deadline, id));
        c.deadline = now.saturating_add(self.config.idle_timeout);
        self.deadlines.insert((c.deadline, id));
        self.by_key.insert(key, id);
        self.stats.registered += 1;
        self.stats.registrations += 1;
        if self.events.len() >= self.config.max_clients {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events
            .push_back(RelayEvent::Registered { client: id, node });
    }

    /// Forgets a client, asking the adapter to close it. Unknown handles are ignored.
    fn close(&mut self, id: ClientId, reason: CloseReason) {
        let Some(mut c) = self.clients.remove(&id) else {
            return;
        };
        c.conn.close();
        self.ready.remove(&id);
        self.deadlines.remove(&(c.deadline, id));
        for ns in &c.namespaces {
            self.namespaces.leave(ns, id);
        }
        self.stats.namespaces = self.namespaces.len();
        if let Some(node) = c.node {
            if self.by_key.get(node.key()) == Some(&id) {
                self.by_key.remove(node.key());
            }
            self.stats.registered -= 1;
        }
        self.stats.clients -= 1;
        self.actions.push_back(RelayAction::Close {
            client: id,
            node: c.node,
            reason,
        });
    }

    /// A decrypted frame from a registered client.
    fn on_frame(&mut self, now: Timestamp, id: ClientId, bytes: &[u8]) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(source) = c.node else {
            return;
        };
        if !c.bucket.take(&self.config.rate, now) {
            self.stats.rate_limited += 1;
            if let Some(max) = self.config.rate_limit_close_after
                && c.bucket.strikes() >= max
            {
                self.stats.rate_limit_closes += 1;
                self.close(id, CloseReason::RateLimited);
            }
            return;
        }
        let frame = match Frame::decode(bytes, &self.config.limits) {
            Ok(f) => f,
            Err(e) => {
                self.stats.malformed += 1;
                self.close(id, CloseReason::Malformed(e));
                return;
            }
        };
        match frame.message {
            Message::Relay(r) => {
                // Keep the sender's padding on the second hop, so the size an observer sees
                // there is the size it chose.
                let pad_to = if frame.flags.contains(Flags::PADDED) {
                    bytes.len()
                } else {
                    0
                };
                self.forward(id, *source.key(), r, pad_to);
            }
            Message::Join(j) => self.join(id, source, j),
            Message::Lookup(l) => self.lookup(id, l),
            Message::Ping(Ping { id: ping, sent_at }) => {
                self.stats.pings += 1;
                self.reply(id, Message::Pong(Pong { id: ping, sent_at }));
            }
            Message::Goodbye(_) => {
                self.stats.goodbyes += 1;
                self.close(id, CloseReason::Goodbye);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    fn forward(&mut self, from: ClientId, source: NodeKey, msg: RelayMsg<'_>, pad_to: usize) {
        let Some(target) = self.by_key.get(&msg.peer).copied() else {
            self.stats.unreachable += 1;
            self.reply(from, Message::Unreachable(Unreachable { peer: msg.peer }));
            return;
        };
        let frame = Frame::new(Message::Relay(RelayMsg {
            peer: source,
            stage: msg.stage,
            payload: msg.payload,
        }));
        if self.send(target, &frame, pad_to) {
            self.stats.forwarded_frames += 1;
            self.stats.forwarded_bytes += msg.payload.len() as u64;
        }
    }

    fn join(&mut self, id: ClientId, node: NodeId, msg: Join) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if msg.leave {
            if c.namespaces.remove(&msg.namespace) {
                self.namespaces.leave(&msg.namespace, id);
                self.stats.namespaces = self.namespaces.len();
            }
            return;
        }
        if c.namespaces.contains(&msg.namespace) {
            return;
        }
        let refused = if c.namespaces.len() >= self.config.max_namespaces_per_client {
            Some((error_code::TOO_MANY_JOINED, "too many namespaces joined"))
        } else {
            match self.namespaces.join(
                msg.namespace,
                id,
                node,
                self.config.max_namespaces,
                self.config.max_members_per_namespace,
            ) {
                Ok(()) => {
                    c.namespaces.insert(msg.namespace);
                    None
                }
                Err(JoinError::NamespaceFull) => {
                    Some((error_code::NAMESPACE_FULL, "namespace full"))
                }
                Err(JoinError::TooManyNamespaces) => Some((
                    error_code::TOO_MANY_NAMESPACES,
                    "relay namespace table full",
                )),
            }
        };
        self.stats.namespaces = self.namespaces.len();
        if let Some((code, detail)) = refused {
            self.stats.join_rejected += 1;
            self.reply(
                id,
                Message::Error(ErrorMsg {
                    code,
                    about: None,
                    detail,
                }),
            );
        }
    }

    fn lookup(&mut self, id: ClientId, msg: Lookup) {
        let joined = self
            .clients
            .get(&id)
            .is_some_and(|c| c.namespaces.contains(&msg.namespace));
        if !joined {
            // Members are listed only to members: a client cannot probe namespaces it is not
            // in (a guessed intent's, say) without showing itself in them.
            self.stats.lookup_refused += 1;
            self.reply(
                id,
                Message::Error(ErrorMsg {
                    code: error_code::NOT_JOINED,
                    about: None,
                    detail: "lookup of a namespace not joined",
                }),
            );
            return;
        }
        self.stats.lookups += 1;
        let cap = self.config.max_found.min(self.config.limits.max_list_len);
        let raw: Vec<u8> = self
            .namespaces
            .found(&msg.namespace, id, cap, &mut self.rng);
        self.reply(
            id,
            Message::Found(Found {
                namespace: msg.namespace,
                peers: List::from_raw(&raw),
            }),
        );
    }

    fn reply(&mut self, to: ClientId, message: Message<'_>) {
        self.send(to, &Frame::new(message), 0);
    }

    /// Queues a frame for a client under its byte cap; `true` if queued.
    fn send(&mut self, to: ClientId, frame: &Frame<'_>, pad_to: usize) -> bool {
        let Some(c) = self.clients.get_mut(&to) else {
            return false;
        };
        match c.conn.queue_frame(frame, pad_to, false) {
            Ok(_) => {
                self.ready.insert(to);
                true
            }
            Err(QueueError::Full) => {
                self.stats.queue_full += 1;
                false
            }
            // Nonces used up, or a frame this relay built does not encode: the link is unusable.
            Err(_) => {
                self.close(to, CloseReason::SendFailed);
                false
            }
        }
    }
}
