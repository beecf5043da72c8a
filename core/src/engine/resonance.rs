//! Resonance: messages for the nodes attuned to an intent, travelling among those nodes only.
//!
//! - **Attuning** derives the intent's secret once (Argon2id for a phrase, nothing for a
//!   secret: see [`derive::Intent`](crate::derive::Intent)) and keeps the keys it derives; the
//!   application then names the intent by its local name, and `resonate` and `detune` never
//!   pay the KDF again.
//! - **Announcing.** Each neighbour is told the intents we are attuned to as our keys blinded
//!   for *its* link and *our* node key. It recognises an entry only if it is attuned to the
//!   same intent; what it cannot recognise it cannot compare with what other neighbours saw.
//!   A node that matches a new shared intent in an announcement answers with its own, so both
//!   ends learn the match whichever attuned first.
//! - **Meeting** at relays: each intent has its own namespace at each relay (see
//!   [`tunnels`](super::tunnels)); nodes met there get a tunnel, then announce as above.
//! - **Resonating.** A message is sealed under the intent's content key, its route fields and
//!   strength authenticated with it; each copy carries the intent's key blinded for the link it
//!   takes. A receiver accepts a tag only from a neighbour that announced the intent to it, opens
//!   the payload before anything else (a copy that fails takes no id, is neither delivered nor
//!   forwarded, and costs its sender the link), then delivers it and forwards it to the other
//!   neighbours that announced the intent, with a tag derived again for each link.
//!
//! The consequence of blinding: only attuned nodes recognise an intent, so only attuned nodes
//! forward its messages. Two attuned nodes meet directly (a tunnel through a relay, or a direct
//! link), never through unattuned peers in between.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    Attunement, DropCause, Engine, Event, LinkId, PayloadKind, SendError, links::Class,
    peers::MAX_KEYS_PER_PEER, seen::Kind as SeenKind,
};
use crate::{
    NodeKey, Timestamp,
    crypto::{
        CryptoProvider,
        resonance::{RESONANCE_OVERHEAD, open_resonance, seal_resonance},
    },
    derive::{Intent, ResonanceKey},
    wire::{Announce, List, Message, MessageId, Resonance, Route},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Attunes to the intent named by `phrase`: its secret is derived with Argon2id at the cost
    /// of [`Config::intent_kdf`](super::Config::intent_kdf) (the one expensive step, paid here
    /// once), then it is announced to neighbours and joined at relays, so nodes attuned to the
    /// same phrase find each other. The phrase is the intent's local name for
    /// [`resonate`](Self::resonate) and [`detune`](Self::detune).
    ///
    /// A phrase is a low-entropy secret: a dictionary guess now costs one Argon2id evaluation,
    /// but a popular word is still guessable by a determined attacker, who could then take part
    /// like any attuned node. When the intent must not be guessed, attune with a random secret
    /// ([`attune_secret`](Self::attune_secret)).
    ///
    /// A name already attuned is left as it is (nothing is derived again); detune it first to
    /// change it. Fails with [`SendError::TooLarge`] when `limits.max_list_len` intents are
    /// attuned, and [`SendError::Intent`] when the derivation fails.
    pub fn attune(&mut self, now: Timestamp, phrase: &str) -> Result<(), SendError> {
        if self.attuned_key(phrase).is_some() {
            self.advance(now);
            return Ok(());
        }
        if self.attuned.len() >= self.config.limits.max_list_len {
            return Err(SendError::TooLarge(self.attuned.len() + 1));
        }
        let intent = Intent::phrase(phrase, &self.config.intent_kdf).map_err(SendError::Intent)?;
        self.stats.intent_derivations += 1;
        self.attune_intent(now, intent)
    }

    /// Attunes to the intent whose secret is `secret` (32 random bytes shared out of band),
    /// named `name` locally. No KDF is run, and there is nothing to guess: this is the way to
    /// an intent that must stay secret. Same rules as [`attune_intent`](Self::attune_intent).
    pub fn attune_secret(
        &mut self,
        now: Timestamp,
        name: &str,
        secret: [u8; 32],
    ) -> Result<(), SendError> {
        self.attune_intent(now, Intent::secret(name, secret))
    }

    /// Attunes to an intent made beforehand ([`Intent::phrase`] with parameters of the
    /// application's choice, or [`Intent::secret`]); nothing is derived here. If its name is
    /// attuned to another intent, that one is replaced; the same intent under another name is
    /// renamed.
    pub fn attune_intent(&mut self, now: Timestamp, intent: Intent) -> Result<(), SendError> {
        let now = self.advance(now);
        let key = intent.resonance_key();
        let previous = self.attuned_key(intent.name());
        if previous == Some(key) {
            return Ok(());
        }
        if previous.is_none()
            && !self.attuned.contains_key(&key)
            && self.attuned.len() >= self.config.limits.max_list_len
        {
            return Err(SendError::TooLarge(self.attuned.len() + 1));
        }
        if let Some(old) = previous {
            self.forget(now, old);
        }
        let rendezvous = intent.rendezvous_key();
        self.attuned.insert(
            key,
            Attunement {
                name: intent.name().into(),
                content: intent.content_key(),
                rendezvous: rendezvous.clone(),
            },
        );
        self.announce_all(now);
        self.rendezvous(now, &rendezvous, false);
        Ok(())
    }

    /// Stops resonating with the intent named `name` (no KDF is run).
    pub fn detune(&mut self, now: Timestamp, name: &str) -> Result<(), SendError> {
        let now = self.advance(now);
        let key = self.attuned_key(name).ok_or(SendError::NotAttuned)?;
        self.forget(now, key);
        self.announce_all(now);
        Ok(())
    }

    /// Drops an attunement: from the table, from what peers share with us, and from the relays.
    fn forget(&mut self, now: Timestamp, key: ResonanceKey) {
        let Some(att) = self.attuned.remove(&key) else {
            return;
        };
        for p in self.peers.values_mut() {
            p.keys.retain(|k| *k != key);
        }
        self.rendezvous(now, &att.rendezvous, true);
    }

    /// The key of the intent attuned under `name`.
    fn attuned_key(&self, name: &str) -> Option<ResonanceKey> {
        self.attuned
            .iter()
            .find(|(_, a)| a.name == name)
            .map(|(k, _)| *k)
    }

    /// The per-link binding of `link`: its session's handshake hash, the same at both ends and
    /// unique to that session.
    pub(crate) fn link_binding(&self, link: LinkId) -> Option<[u8; 32]> {
        let info = self.links.get(&link)?.conn.as_ref()?.peer()?;
        Some(info.handshake_hash)
    }

    fn announce_all(&mut self, now: Timestamp) {
        let links: Vec<_> = self.neighbours().into_iter().map(|(_, l)| l).collect();
        for link in links {
            self.send_announce(now, link);
        }
        self.flush_tunnels(now);
    }

    /// Sends one peer link our attuned intents, blinded for that link.
    pub(crate) fn send_announce(&mut self, now: Timestamp, link: LinkId) {
        let Some(binding) = self.link_binding(link) else {
            return;
        };
        let me = *self.identity.node_id().key();
        let raw: Vec<u8> = self
            .attuned
            .keys()
            .flat_map(|k| k.announcement(&binding, &me).0)
            .collect();
        let msg = Message::Announce(Announce {
            blinded: List::from_raw(&raw),
        });
        let _ = self.send_on(now, link, msg, Class::Lazy);
    }

    /// A neighbour's announcement: the intents we share with it are those of ours whose
    /// blinding for this link and this sender it lists. If that finds one we did not know it
    /// shared, it may not know we do either: we announce back.
    pub(crate) fn on_announce(
        &mut self,
        now: Timestamp,
        link: LinkId,
        from: NodeKey,
        a: Announce<'_>,
    ) {
        let Some(binding) = self.link_binding(link) else {
            return;
        };
        let mut shared: heapless::Vec<ResonanceKey, MAX_KEYS_PER_PEER> = heapless::Vec::new();
        for key in self.attuned.keys() {
            let mine = key.announcement(&binding, &from).0;
            if a.blinded.keys().any(|e| e == mine) && shared.push(*key).is_err() {
                break;
            }
        }
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let news = shared.iter().any(|k| !p.keys.contains(k));
        p.keys = shared;
        if news {
            self.send_announce(now, link);
        }
    }

    /// Sends `payload` to the nodes attuned to the intent named `intent`, encrypted so only
    /// they can read it, with `strength` (clamped to `[0, 1]`) authenticated along with it.
    /// Fails with [`SendError::NotAttuned`] unless attuned to it (no KDF is run here), and
    /// [`SendError::NoRoute`] when no neighbour announced the intent.
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
        let key = self.attuned_key(intent).ok_or(SendError::NotAttuned)?;
        let strength = strength.clamp(0.0, 1.0);
        let route = self.new_route(now);
        let mut sealed = Vec::with_capacity(payload.len() + RESONANCE_OVERHEAD);
        sealed.extend_from_slice(payload);
        sealed.resize(payload.len() + RESONANCE_OVERHEAD, 0);
        let content = &self.attuned[&key].content;
        seal_resonance(
            &self.provider,
            content,
            &route,
            strength,
            &mut sealed,
            payload.len(),
        )
        .map_err(|_| SendError::TooLarge(payload.len()))?;
        let targets = self.targets(&[], |p| p.keys.contains(&key));
        if !self.remember(now, &route, SeenKind::Resonance) {
            return Err(SendError::TooManyInFlight);
        }
        let sent = self.send_resonance(now, &targets, key, route, strength, &sealed, Class::Own);
        if sent == 0 {
            return Err(SendError::NoRoute);
        }
        self.stats.messages_sent += 1;
        Ok(route.id)
    }

    /// Sends one copy to each target, tagged for the link it takes; returns how many went.
    #[allow(clippy::too_many_arguments)]
    fn send_resonance(
        &mut self,
        now: Timestamp,
        targets: &[NodeKey],
        key: ResonanceKey,
        route: Route,
        strength: f32,
        payload: &[u8],
        class: Class,
    ) -> usize {
        let me = *self.identity.node_id().key();
        let mut sent = 0;
        for peer in targets {
            let Some(link) = self.path_to(peer) else {
                continue;
            };
            let Some(binding) = self.link_binding(link) else {
                continue;
            };
            let msg = Message::Resonance(Resonance {
                route,
                tag: key.tag(&binding, &me),
                strength,
                payload,
            });
            if self.send_on(now, link, msg, class).is_ok() {
                sent += 1;
            }
        }
        self.flush_tunnels(now);
        sent
    }

    pub(crate) fn on_resonance(
        &mut self,
        now: Timestamp,
        link: LinkId,
        from: NodeKey,
        r: Resonance<'_>,
    ) {
        if !self.admit(now, &Message::Resonance(r)) {
            return;
        }
        // Only an intent this neighbour announced to us, blinded for this link and by it.
        let key = self.link_binding(link).and_then(|binding| {
            let p = self.peers.get(&from)?;
            p.keys
                .iter()
                .copied()
                .find(|k| k.tag(&binding, &from) == r.tag)
        });
        let Some((key, att)) = key.and_then(|k| Some((k, self.attuned.get(&k)?))) else {
            self.stats.drop(DropCause::NotResonant);
            return;
        };
        let name = att.name.clone();
        let mut buf = r.payload.to_vec();
        if open_resonance(&self.provider, &att.content, &r.route, r.strength, &mut buf).is_err() {
            // A copy that fails claims nothing: its id is not recorded, so the genuine copy
            // still wins. The neighbour proved it knows the intent and honest nodes forward
            // only what they opened, so it changed the message (or made it up): the link goes.
            self.stats.drop(DropCause::Tampered);
            self.fail_link(now, link);
            return;
        }
        buf.truncate(buf.len() - RESONANCE_OVERHEAD);
        if !self.remember(now, &r.route, SeenKind::Resonance) {
            return;
        }
        if r.strength >= self.config.min_strength {
            self.note_latency(now, &r.route);
            self.push_event(Event::Resonance {
                id: r.route.id,
                intent: name,
                strength: r.strength,
                payload: buf,
            });
        } else {
            self.stats.drop(DropCause::NotResonant);
        }
        // On to the other neighbours that announced the intent, tagged again per link.
        if r.route.hops < r.route.effective_hop_limit(&self.config.limits) {
            let mut route = r.route;
            route.hops += 1;
            let targets = self.targets(&[from], |p| p.keys.contains(&key));
            let n = self.send_resonance(
                now,
                &targets,
                key,
                route,
                r.strength,
                r.payload,
                Class::Forward,
            );
            self.stats.messages_forwarded += n as u64;
        }
    }
}
