//! Broadcasts: signed or anonymous messages to every node. De-duplication, TTL and hop
//! checks ([`admit`](Engine::admit), shared with resonance and extension messages), signature
//! checks (once per message, after de-duplication), local delivery, and forwarding as
//! `Config::gossip` says: along the broadcast tree, or flooded to `Config::fanout` neighbours.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    BroadcastAuth, DropCause, Engine, Event, LinkId, PayloadKind, SendError,
    links::Class,
    seen::{Kind as SeenKind, Refusal},
};
use crate::{
    NodeKey, Timestamp,
    crypto::{
        CryptoProvider, VerifyingKey,
        sign::{bind_broadcast_id, broadcast_id_bound, sign_broadcast, verify_broadcast},
    },
    wire::{Broadcast, Message, MessageId, Route},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    pub(crate) fn new_route(&mut self, now: Timestamp) -> Route {
        Route {
            id: self.new_id(),
            timestamp: now.as_millis(),
            ttl_ms: u32::try_from(self.config.default_ttl.as_millis()).unwrap_or(u32::MAX),
            hops: 1,
            hop_limit: self.config.default_hop_limit,
        }
    }

    /// Neighbours to flood a message to: those other than `except` and kept by `want`, or a
    /// uniform random `Config::fanout` of them.
    pub(crate) fn targets(
        &mut self,
        except: &[NodeKey],
        want: impl Fn(&super::peers::Peer) -> bool,
    ) -> Vec<NodeKey> {
        let mut c: Vec<NodeKey> = self
            .neighbours()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !except.contains(k))
            .filter(|k| self.peers.get(k).is_some_and(&want))
            .collect();
        let fanout = self.config.fanout;
        if c.len() > fanout {
            // Partial Fisher-Yates: a uniform random subset of `fanout`.
            for i in 0..fanout {
                let j = i + (self.rng.next_u64() % (c.len() - i) as u64) as usize;
                c.swap(i, j);
            }
            c.truncate(fanout);
        }
        c
    }

    /// Sends `message` to each target; returns how many accepted it.
    pub(crate) fn push(
        &mut self,
        now: Timestamp,
        targets: &[NodeKey],
        message: Message<'_>,
        class: Class,
    ) -> usize {
        let mut sent = 0;
        for key in targets {
            if let Some(link) = self.path_to(key)
                && self.send_on(now, link, message, class).is_ok()
            {
                sent += 1;
            }
        }
        self.flush_tunnels(now);
        sent
    }

    /// Sends a broadcast on to the neighbours other than `except`, as `Config::gossip` says:
    /// along the broadcast tree, or flooded. Returns how many neighbours got the full message
    /// and how many only an announcement (IHAVE).
    pub(crate) fn spread(
        &mut self,
        now: Timestamp,
        b: &Broadcast<'_>,
        except: &[NodeKey],
        class: Class,
    ) -> (usize, usize) {
        if self.tree.is_some() {
            return self.tree_push(now, b, except, class);
        }
        let targets = self.targets(except, |_| true);
        (self.push(now, &targets, Message::Broadcast(*b), class), 0)
    }

    /// Broadcasts `payload` to every node, authenticated as configured; it is also delivered
    /// locally. Fails with `NoRoute` when no neighbour could take it.
    pub fn broadcast(&mut self, now: Timestamp, payload: &[u8]) -> Result<MessageId, SendError> {
        let auth = self.config.broadcast_auth;
        self.broadcast_with(now, payload, auth)
    }

    /// [`broadcast`](Self::broadcast) with an explicit authentication mode.
    pub fn broadcast_with(
        &mut self,
        now: Timestamp,
        payload: &[u8],
        auth: BroadcastAuth,
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        if payload.len() > self.max_payload(PayloadKind::Broadcast) {
            return Err(SendError::TooLarge(payload.len()));
        }
        let mut route = self.new_route(now);
        let me = *self.identity.node_id().key();
        let bound_to = (auth == BroadcastAuth::Signed).then_some(&me);
        route.id = bind_broadcast_id(route.id, bound_to);
        let stem = auth == BroadcastAuth::Anonymous && self.config.stem.is_some();
        if stem {
            // Stamped to the second, and marked for the stem (see `stem.rs`).
            route.timestamp -= route.timestamp % 1000;
            route.hops = 0;
        }
        let (origin, signature) = match auth {
            BroadcastAuth::Anonymous => (None, None),
            BroadcastAuth::Signed => {
                let me = *self.identity.node_id();
                let sig = sign_broadcast(
                    &self.provider,
                    self.identity.key_pair(),
                    &me,
                    &route,
                    payload,
                );
                (Some(me), Some(sig))
            }
        };
        let b = Broadcast {
            route,
            origin,
            payload,
            signature,
        };
        if self.neighbours().is_empty() {
            return Err(SendError::NoRoute);
        }
        let kind = match auth {
            BroadcastAuth::Signed => SeenKind::Signed,
            BroadcastAuth::Anonymous => SeenKind::Anonymous,
        };
        // Recorded first: an echo of our own broadcast must find it.
        if !self.remember(now, &route, kind) {
            return Err(SendError::TooManyInFlight);
        }
        let sent = if stem && self.stem_own(now, &b) {
            true
        } else {
            let b = Broadcast {
                route: Route { hops: 1, ..route },
                ..b
            };
            let (full, announced) = self.spread(now, &b, &[], Class::Own);
            full + announced > 0
        };
        if !sent {
            return Err(SendError::QueueFull);
        }
        self.stats.messages_sent += 1;
        self.push_event(Event::Broadcast {
            id: route.id,
            origin,
            hops: 0,
            payload: payload.to_vec(),
        });
        Ok(route.id)
    }

    /// Checks time, hop and de-duplication rules for a gossiped message. Returns `true` if it is
    /// new.
    pub(crate) fn admit(&mut self, now: Timestamp, message: &Message<'_>) -> bool {
        self.stats.gossip_received += 1;
        if message.validate_at(now, &self.config.limits).is_err() {
            self.stats.drop(DropCause::Invalid);
            return false;
        }
        let Some(route) = message.route() else {
            return false;
        };
        if self.seen.get(&route.id).is_some() {
            self.stats.duplicates += 1;
            self.stats.drop(DropCause::Duplicate);
            return false;
        }
        true
    }

    /// Delivers an accepted broadcast to the application.
    pub(crate) fn deliver_broadcast(&mut self, now: Timestamp, b: &Broadcast<'_>) {
        self.note_latency(now, &b.route);
        self.push_event(Event::Broadcast {
            id: b.route.id,
            origin: b.origin,
            hops: b.route.hops,
            payload: b.payload.to_vec(),
        });
    }

    /// Checks a broadcast's signature. The origin's verifying key is cached (at most
    /// `max_peers` of them) only once a signature made with it verified, so forged origins
    /// cannot push real keys out of the cache.
    fn verify(
        &mut self,
        origin: &crate::NodeId,
        b: &Broadcast<'_>,
        sig: &crate::wire::Signature,
    ) -> bool {
        self.stats.signatures_verified += 1;
        let (key, cached) = match self.verifying_keys.get(origin.key()) {
            Some(k) => (*k, true),
            None => match VerifyingKey::from_node_key(origin.key()) {
                Ok(k) => (k, false),
                Err(_) => return false,
            },
        };
        if verify_broadcast(&self.provider, &key, origin, &b.route, b.payload, sig).is_err() {
            return false;
        }
        if !cached {
            if self.verifying_keys.len() >= self.config.max_peers {
                self.verifying_keys.pop_first();
            }
            self.verifying_keys.insert(*origin.key(), key);
        }
        true
    }

    /// How long the seen set must keep `route`'s id: while the message could be accepted
    /// (validation accepts it up to and including its expiry).
    pub(crate) fn seen_until(&self, route: &Route) -> Timestamp {
        route
            .expires_at(&self.config.limits)
            .saturating_add(core::time::Duration::from_millis(1))
    }

    /// Records an accepted routed message for as long as it is valid. `false`,
    /// counted, when it cannot be recorded: a duplicate, or a kind whose share of the set is full
    /// of messages still valid (then it must not be accepted: it could come again).
    pub(crate) fn remember(&mut self, now: Timestamp, route: &Route, kind: SeenKind) -> bool {
        match self
            .seen
            .insert(now, route.id, kind, self.seen_until(route))
        {
            Ok(()) => true,
            Err(Refusal::Known) => {
                self.stats.duplicates += 1;
                self.stats.drop(DropCause::Duplicate);
                false
            }
            Err(Refusal::Full) => {
                self.stats.drop(DropCause::Refused);
                false
            }
        }
    }

    /// A routed message was delivered to the application: counts it and its one-way latency
    /// (origin timestamp to now; clocks are not synchronised, so this is indicative).
    pub(crate) fn note_latency(&mut self, now: Timestamp, route: &Route) {
        self.stats.messages_delivered += 1;
        self.stats.latency_sum_ms += now.as_millis().saturating_sub(route.timestamp);
        self.stats.latency_samples += 1;
    }

    pub(crate) fn on_broadcast(
        &mut self,
        now: Timestamp,
        link: LinkId,
        from: NodeKey,
        b: Broadcast<'_>,
    ) {
        if b.route.hops == 0 && b.origin.is_none() && self.stem_came_home(now, &b.route.id) {
            return;
        }
        let message = Message::Broadcast(b);
        let duplicate = self.seen.get(&b.route.id).is_some();
        if duplicate
            && b.route.hops > 0
            && self.stem_awaited(&b.route.id)
            && message.validate_at(now, &self.config.limits).is_ok()
        {
            // Our own anonymous broadcast, diffused by another node, comes back.
            self.stem_back(now, from, &b);
            return;
        }
        if !self.admit(now, &message) {
            if duplicate && !self.stem_returned(&b.route.id) {
                self.tree_duplicate(now, from, &b.route.id);
            }
            return;
        }
        if !broadcast_id_bound(&b.route.id, b.origin.as_ref().map(|o| o.key())) {
            // An id that is not its kind's and origin's: a copy trying to take another
            // message's id. Honest nodes check before they forward, so the sender is hostile.
            self.stats.drop(DropCause::Invalid);
            self.fail_link(now, link);
            return;
        }
        let kind = match (b.origin, b.signature) {
            (Some(origin), Some(sig)) => {
                // Verified once per id that is not yet taken: after de-duplication.
                if !self.verify(&origin, &b, &sig) {
                    // A copy that fails verification claims nothing: its id is not recorded,
                    // so the genuine copy still wins. And honest nodes forward only what they
                    // verified, so the neighbour that sent it is hostile (or broken): the link
                    // goes, and each forgery costs its sender a link.
                    self.stats.drop(DropCause::BadSignature);
                    self.fail_link(now, link);
                    return;
                }
                SeenKind::Signed
            }
            _ if !self.config.accept_anonymous => {
                // Not recorded either: an anonymous copy cannot take a signed id here.
                self.stats.drop(DropCause::Refused);
                return;
            }
            _ => SeenKind::Anonymous,
        };
        if kind == SeenKind::Anonymous && b.route.hops == 0 {
            // In its stem (see `stem.rs`): relayed, not yet accepted or delivered.
            self.stem_relay(now, from, &b);
            return;
        }
        if !self.remember(now, &b.route, kind) {
            return;
        }
        self.deliver_broadcast(now, &b);
        self.forward_first_copy(now, from, &b);
    }

    /// Passes on the first copy of broadcast `b`, received from `from`: its link joins the
    /// tree, and it is spread to the others unless the hop limit stops it here.
    pub(crate) fn forward_first_copy(&mut self, now: Timestamp, from: NodeKey, b: &Broadcast<'_>) {
        self.tree_parent(now, from, &b.route.id);
        let mut fwd = *b;
        fwd.route.hops = fwd.route.hops.saturating_add(1);
        if b.route.hops < b.route.effective_hop_limit(&self.config.limits) {
            let except = [from, b.origin.map(|o| *o.key()).unwrap_or(from)];
            let (n, _) = self.spread(now, &fwd, &except, Class::Forward);
            self.stats.messages_forwarded += n as u64;
        } else {
            // Stopped by the hop limit: not spread, but the tree must know it came.
            self.tree_stopped(now, &fwd, from);
        }
    }
}
