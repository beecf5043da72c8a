//! Broadcasts: signed or anonymous messages to every node. De-duplication, TTL and hop
//! checks ([`admit`](Engine::admit), shared with resonance and extension messages), signature
//! checks (once per message, after de-duplication), local delivery, and forwarding as
//! `Config::gossip` says: along the broadcast tree, or flooded to `Config::fanout` neighbours.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    BroadcastAuth, DropCause, Engine, Event, PayloadKind, SendError, links::Class, seen::Verdict,
};
use crate::{
    NodeKey, Timestamp,
    crypto::{
        CryptoProvider, VerifyingKey,
        sign::{sign_broadcast, verify_broadcast},
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
    fn spread(
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
        let route = self.new_route(now);
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
        let (full, announced) = self.spread(now, &b, &[], Class::Own);
        if full + announced == 0 {
            return Err(SendError::QueueFull);
        }
        self.seen.insert(now, route.id, Verdict::Accepted);
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

    pub(crate) fn note_latency(&mut self, now: Timestamp, route: &Route) {
        self.stats.messages_delivered += 1;
        self.stats.latency_sum_ms += now.as_millis().saturating_sub(route.timestamp);
        self.stats.latency_samples += 1;
    }

    pub(crate) fn on_broadcast(&mut self, now: Timestamp, from: NodeKey, b: Broadcast<'_>) {
        let message = Message::Broadcast(b);
        let duplicate = self.seen.get(&b.route.id).is_some();
        if !self.admit(now, &message) {
            if duplicate {
                self.tree_duplicate(now, from, &b.route.id);
            }
            return;
        }
        // Verify at most once: the id is recorded whatever the outcome.
        if let (Some(origin), Some(sig)) = (b.origin, b.signature) {
            let key = match self.verifying_keys.get(origin.key()) {
                Some(k) => Ok(*k),
                None => VerifyingKey::from_node_key(origin.key()),
            };
            let ok = key.is_ok_and(|k| {
                if self.verifying_keys.len() >= self.config.max_peers {
                    self.verifying_keys.pop_first();
                }
                self.verifying_keys.insert(*origin.key(), k);
                verify_broadcast(&self.provider, &k, &origin, &b.route, b.payload, &sig).is_ok()
            });
            self.stats.signatures_verified += 1;
            if !ok {
                self.seen.insert(now, b.route.id, Verdict::Rejected);
                self.stats.drop(DropCause::BadSignature);
                return;
            }
        }
        self.seen.insert(now, b.route.id, Verdict::Accepted);
        self.note_latency(now, &b.route);
        self.push_event(Event::Broadcast {
            id: b.route.id,
            origin: b.origin,
            hops: b.route.hops,
            payload: b.payload.to_vec(),
        });
        self.tree_parent(now, from, &b.route.id);
        if b.route.hops < b.route.effective_hop_limit(&self.config.limits) {
            let mut fwd = b;
            fwd.route.hops += 1;
            let except = [from, b.origin.map(|o| *o.key()).unwrap_or(from)];
            let (n, _) = self.spread(now, &fwd, &except, Class::Forward);
            self.stats.messages_forwarded += n as u64;
        }
    }
}
