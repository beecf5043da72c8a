//! Resonance: intent-based routing. `attune` announces an intent's key (never the intent) to
//! peers and joins it at relays; resonance messages travel only along peers that announced the
//! key, sealed under a content key derived from the intent, so only attuned nodes can read them.

use alloc::{string::String, vec::Vec};

use rand_core::CryptoRng;

use super::{
    Attunement, DropCause, Engine, Event, PayloadKind, SendError, links::Class,
    seen::Kind as SeenKind,
};
use crate::{
    NodeKey, Timestamp,
    crypto::{
        CryptoProvider,
        resonance::{RESONANCE_OVERHEAD, open_resonance, seal_resonance},
    },
    derive::{ResonanceContentKey, ResonanceKey},
    wire::{Announce, List, Message, MessageId, Resonance},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
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
        if !self.remember(now, &route, SeenKind::Resonance) {
            return Err(SendError::TooManyInFlight);
        }
        if self.push(now, &targets, msg, Class::Own) == 0 {
            return Err(SendError::NoRoute);
        }
        self.stats.messages_sent += 1;
        Ok(route.id)
    }

    pub(crate) fn on_resonance(&mut self, now: Timestamp, from: NodeKey, r: Resonance<'_>) {
        let message = Message::Resonance(r);
        if !self.admit(now, &message) || !self.remember(now, &r.route, SeenKind::Resonance) {
            return;
        }
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
}
