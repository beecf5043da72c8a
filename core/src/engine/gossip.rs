//! Broadcast, resonance and extension messages: de-duplication, signature checks (once per
//! message, after de-duplication), local delivery, and forwarding chosen by a
//! [`GossipStrategy`].

use alloc::{string::String, vec::Vec};

use rand_core::CryptoRng;

use super::{
    Attunement, BroadcastAuth, DropCause, Engine, Event, PayloadKind, SendError,
    extension::{ExtensionContext, ExtensionMessage, Outgoing},
    links::Class,
    seen::Verdict,
};
use crate::{
    NodeKey, Timestamp,
    crypto::{
        CryptoProvider, VerifyingKey,
        resonance::{RESONANCE_OVERHEAD, open_resonance, seal_resonance},
        sign::{sign_broadcast, verify_broadcast},
    },
    derive::{ResonanceContentKey, ResonanceKey},
    wire::{
        Announce, Broadcast, Extension as ExtBody, List, Message, MessageId, MessageType,
        Resonance, Route,
    },
};

/// Chooses the neighbours a message is pushed to. The seam where a broadcast tree will plug in.
/// `Send`, so that an engine holding it can be owned by an async runtime's task.
pub trait GossipStrategy: Send {
    /// Keeps in `candidates` the neighbours that should receive a copy (the sender is already
    /// excluded). `random` yields fresh random numbers.
    fn select(
        &mut self,
        candidates: &mut Vec<NodeKey>,
        fanout: usize,
        random: &mut dyn FnMut() -> u64,
    );
}

/// Flooding: every neighbour, or a random `fanout` of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flood;

impl GossipStrategy for Flood {
    fn select(
        &mut self,
        candidates: &mut Vec<NodeKey>,
        fanout: usize,
        random: &mut dyn FnMut() -> u64,
    ) {
        if candidates.len() <= fanout {
            return;
        }
        // Partial Fisher-Yates: a uniform random subset of `fanout`.
        for i in 0..fanout {
            let j = i + (random() % (candidates.len() - i) as u64) as usize;
            candidates.swap(i, j);
        }
        candidates.truncate(fanout);
    }
}

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

    /// Neighbours to push a message to, other than `except`, filtered by `want`.
    fn targets(
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
        let rng = &mut self.rng;
        let mut random = || rng.next_u64();
        self.strategy.select(&mut c, fanout, &mut random);
        c
    }

    /// Sends `message` to each target; returns how many accepted it.
    fn push(
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

    /// Sends a broadcast on to the neighbours other than `except`: along the broadcast tree when
    /// it is on, else flooded through the gossip strategy. Returns how many neighbours got the
    /// full message and how many only an announcement (IHAVE).
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
    fn admit(&mut self, now: Timestamp, message: &Message<'_>) -> bool {
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

    fn note_latency(&mut self, now: Timestamp, route: &Route) {
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

    /// Attunes to `intent`: its resonance key is announced to peers and joined at relays, so
    /// nodes with the same intent find each other.
    pub fn attune(&mut self, now: Timestamp, intent: &str) -> Result<ResonanceKey, SendError> {
        let now = self.advance(now);
        let key = ResonanceKey::from_intent(intent);
        if self.attuned.len() >= self.config.limits.max_list_len && !self.attuned.contains_key(&key)
        {
            return Err(SendError::TooLarge(self.attuned.len() + 1));
        }
        self.attuned.insert(
            key,
            Attunement {
                intent: String::from(intent),
                content: ResonanceContentKey::from_intent(intent),
            },
        );
        self.announce_all(now);
        self.rendezvous(now, key.0, false);
        Ok(key)
    }

    /// Stops resonating with `intent`.
    pub fn detune(&mut self, now: Timestamp, intent: &str) -> Result<(), SendError> {
        let now = self.advance(now);
        let key = ResonanceKey::from_intent(intent);
        if self.attuned.remove(&key).is_none() {
            return Err(SendError::NotAttuned);
        }
        self.announce_all(now);
        self.rendezvous(now, key.0, true);
        Ok(())
    }

    fn announce_all(&mut self, now: Timestamp) {
        let links: Vec<_> = self.neighbours().into_iter().map(|(_, l)| l).collect();
        for link in links {
            self.send_announce(now, link);
        }
        self.flush_tunnels(now);
    }

    /// Sends our resonance keys to one peer link.
    pub(crate) fn send_announce(&mut self, now: Timestamp, link: super::LinkId) {
        let raw: Vec<u8> = self.attuned.keys().flat_map(|k| k.0).collect();
        let msg = Message::Announce(Announce {
            keys: List::from_raw(&raw),
        });
        let _ = self.send_on(now, link, msg, Class::Lazy);
    }

    /// Sends `payload` to the nodes attuned to `intent`, encrypted so only they can read it.
    pub fn resonate(
        &mut self,
        now: Timestamp,
        intent: &str,
        strength: f32,
        payload: &[u8],
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        if payload.len() > self.max_payload(PayloadKind::Resonance) {
            return Err(SendError::TooLarge(payload.len()));
        }
        let key = ResonanceKey::from_intent(intent);
        let content = ResonanceContentKey::from_intent(intent);
        let route = self.new_route(now);
        let mut sealed = Vec::with_capacity(payload.len() + RESONANCE_OVERHEAD);
        sealed.extend_from_slice(payload);
        sealed.resize(payload.len() + RESONANCE_OVERHEAD, 0);
        seal_resonance(
            &self.provider,
            &content,
            &key,
            &route.id,
            &mut sealed,
            payload.len(),
        )
        .map_err(|_| SendError::TooLarge(payload.len()))?;
        let targets = self.targets(&[], |p| p.keys.contains(&key));
        let msg = Message::Resonance(Resonance {
            route,
            key,
            strength: strength.clamp(0.0, 1.0),
            payload: &sealed,
        });
        if self.push(now, &targets, msg, Class::Own) == 0 {
            return Err(SendError::NoRoute);
        }
        self.seen.insert(now, route.id, Verdict::Accepted);
        self.stats.messages_sent += 1;
        Ok(route.id)
    }

    pub(crate) fn on_resonance(&mut self, now: Timestamp, from: NodeKey, r: Resonance<'_>) {
        let message = Message::Resonance(r);
        if !self.admit(now, &message) {
            return;
        }
        self.seen.insert(now, r.route.id, Verdict::Accepted);
        match self.attuned.get(&r.key) {
            Some(att) if r.strength >= self.config.min_strength => {
                let mut buf = r.payload.to_vec();
                match open_resonance(&self.provider, &att.content, &r.key, &r.route.id, &mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        let intent = att.intent.clone();
                        self.note_latency(now, &r.route);
                        self.push_event(Event::Resonance {
                            id: r.route.id,
                            intent,
                            strength: r.strength,
                            payload: buf,
                        });
                    }
                    Err(_) => self.stats.drop(DropCause::NotResonant),
                }
            }
            _ => self.stats.drop(DropCause::NotResonant),
        }
        // Travel on along the overlay of nodes attuned to the key.
        if r.route.hops < r.route.effective_hop_limit(&self.config.limits) {
            let mut fwd = r;
            fwd.route.hops += 1;
            let key = r.key;
            let targets = self.targets(&[from], |p| p.keys.contains(&key));
            let n = self.push(now, &targets, Message::Resonance(fwd), Class::Forward);
            self.stats.messages_forwarded += n as u64;
        }
    }

    /// Sends an extension message of `kind` to `target` (through its path) or to every node
    /// (gossiped with de-duplication).
    pub fn send_extension(
        &mut self,
        now: Timestamp,
        kind: MessageType,
        target: Option<NodeKey>,
        payload: &[u8],
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        if !self.ext_types.contains_key(&kind) {
            return Err(SendError::UnknownExtension);
        }
        if payload.len() > self.max_payload(PayloadKind::Extension) {
            return Err(SendError::TooLarge(payload.len()));
        }
        let route = self.new_route(now);
        let body = ExtBody {
            route,
            target,
            payload,
        };
        let message = match kind {
            MessageType::FileSync => Message::FileSync(body),
            MessageType::MiningSignal => Message::MiningSignal(body),
            MessageType::Dreamspace => Message::Dreamspace(body),
            MessageType::Custom(c) => Message::Custom(c, body),
            _ => return Err(SendError::UnknownExtension),
        };
        let targets = match target {
            Some(t) => {
                if self.path_to(&t).is_none() {
                    return Err(SendError::NoRoute);
                }
                alloc::vec![t]
            }
            None => self.targets(&[], |_| true),
        };
        if self.push(now, &targets, message, Class::Own) == 0 {
            return Err(SendError::NoRoute);
        }
        self.seen.insert(now, route.id, Verdict::Accepted);
        self.stats.messages_sent += 1;
        Ok(route.id)
    }

    pub(crate) fn on_extension(
        &mut self,
        now: Timestamp,
        from: NodeKey,
        kind: MessageType,
        e: ExtBody<'_>,
    ) {
        let message = match kind {
            MessageType::FileSync => Message::FileSync(e),
            MessageType::MiningSignal => Message::MiningSignal(e),
            MessageType::Dreamspace => Message::Dreamspace(e),
            MessageType::Custom(c) => Message::Custom(c, e),
            _ => return,
        };
        if !self.admit(now, &message) {
            return;
        }
        self.seen.insert(now, e.route.id, Verdict::Accepted);
        let me = *self.identity.node_id().key();
        if e.target.is_none_or(|t| t == me) {
            match self.ext_types.get(&kind).copied() {
                Some(index) => {
                    self.stats.messages_delivered += 1;
                    let msg = ExtensionMessage {
                        kind,
                        from,
                        target: e.target,
                        payload: e.payload,
                    };
                    self.run_one_extension(now, index, |ext, ctx| ext.handle_message(ctx, msg));
                }
                None => self.stats.drop(DropCause::Unhandled),
            }
        }
        if e.target.is_none() && e.route.hops < e.route.effective_hop_limit(&self.config.limits) {
            let mut fwd = e;
            fwd.route.hops += 1;
            let msg = match message {
                Message::FileSync(_) => Message::FileSync(fwd),
                Message::MiningSignal(_) => Message::MiningSignal(fwd),
                Message::Dreamspace(_) => Message::Dreamspace(fwd),
                Message::Custom(c, _) => Message::Custom(c, fwd),
                _ => return,
            };
            let targets = self.targets(&[from], |_| true);
            let n = self.push(now, &targets, msg, Class::Forward);
            self.stats.messages_forwarded += n as u64;
        }
    }

    /// Runs `f` on extension `index` with a context, then sends what it queued and raises its
    /// events.
    pub(crate) fn run_one_extension(
        &mut self,
        now: Timestamp,
        index: usize,
        f: impl FnOnce(&mut dyn super::Extension, &mut ExtensionContext<'_>),
    ) {
        let peers: Vec<NodeKey> = self.neighbours().into_iter().map(|(k, _)| k).collect();
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let local = *self.identity.node_id();
        let max_payload = self.max_payload(PayloadKind::Extension);
        let Some(ext) = self.extensions.get_mut(index) else {
            return;
        };
        let name = ext.name();
        {
            let mut ctx = ExtensionContext::new(
                name,
                now,
                local,
                &peers,
                max_payload,
                &mut outgoing,
                &mut events,
            );
            f(ext.as_mut(), &mut ctx);
        }
        for e in events {
            self.push_event(e);
        }
        for o in outgoing {
            if self
                .send_extension(now, o.kind, o.target, &o.payload)
                .is_err()
            {
                self.stats.drop(DropCause::NoRoute);
            }
        }
    }

    /// Runs `f` on every extension.
    pub(crate) fn run_extensions(
        &mut self,
        now: Timestamp,
        f: impl Fn(&mut dyn super::Extension, &mut ExtensionContext<'_>),
    ) {
        for i in 0..self.extensions.len() {
            self.run_one_extension(now, i, &f);
        }
    }
}
