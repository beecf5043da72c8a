//! Whispers: private messages to one node, over its session when there is one, otherwise sealed
//! end to end (one-way Noise X) through a relay. Acknowledged, retransmitted a bounded number
//! of times with exponential backoff, and always reported: delivered or failed.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    DropCause, Engine, Event, LinkId, SendError, WhisperFailure,
    links::Class,
    seen::{Kind as SeenKind, Refusal},
    timers::Timer,
};
use crate::{
    NodeKey, Timestamp,
    crypto::{CryptoProvider, seal},
    derive::WhisperTag,
    wire::{Ack, Frame, Message, MessageId, Relay, RelayStage, Route, Whisper},
};

/// A whisper awaiting its acknowledgement.
#[derive(Debug)]
pub(crate) struct PendingWhisper {
    pub to: NodeKey,
    pub route: Route,
    pub tag: Option<WhisperTag>,
    pub payload: Vec<u8>,
    pub attempts: u8,
    pub next_try: Timestamp,
    pub routed: bool,
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Sends a whisper to `to`. Returns its id; [`Event::WhisperDelivered`] or
    /// [`Event::WhisperFailed`] follows.
    pub fn whisper(
        &mut self,
        now: Timestamp,
        to: NodeKey,
        tag: Option<&str>,
        payload: &[u8],
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        if payload.len() > self.max_payload(super::PayloadKind::Whisper) {
            return Err(SendError::TooLarge(payload.len()));
        }
        if self.pending.len() >= self.config.max_pending_whispers {
            return Err(SendError::TooManyPending);
        }
        if self.path_to(&to).is_none() && self.relay_link(None).is_none() {
            return Err(SendError::NoRoute);
        }
        // Whispers go to their recipient directly and are never forwarded.
        let route = Route {
            hop_limit: 1,
            ..self.new_route(now)
        };
        let mut pending = PendingWhisper {
            to,
            route,
            tag: tag.map(WhisperTag::from_category),
            payload: payload.to_vec(),
            attempts: 0,
            next_try: now,
            routed: false,
        };
        self.try_whisper(now, &mut pending);
        self.stats.messages_sent += 1;
        self.timers.arm(Timer::Whisper(route.id), pending.next_try);
        self.pending.insert(route.id, pending);
        Ok(route.id)
    }

    /// One send attempt; schedules the next.
    fn try_whisper(&mut self, now: Timestamp, p: &mut PendingWhisper) {
        p.attempts += 1;
        let backoff = self
            .config
            .whisper_retry
            .saturating_mul(1 << (p.attempts - 1).min(8));
        p.next_try = now.saturating_add(backoff);
        let msg = Message::Whisper(Whisper {
            route: p.route,
            target: p.to,
            tag: p.tag,
            payload: &p.payload,
        });
        p.routed = self.send_private(now, p.to, msg, None, Class::Own);
        if p.attempts > 1 {
            self.stats.whisper_retries += 1;
        }
    }

    /// Sends a private message to `to`: over its session, else sealed through a relay. Returns
    /// whether it left.
    fn send_private(
        &mut self,
        now: Timestamp,
        to: NodeKey,
        message: Message<'_>,
        relay_hint: Option<LinkId>,
        class: Class,
    ) -> bool {
        if let Some(link) = self.path_to(&to) {
            let ok = self.send_on(now, link, message, class).is_ok();
            self.flush_tunnels(now);
            return ok;
        }
        let hint = relay_hint.or_else(|| self.peers.get(&to).and_then(|p| p.relay));
        let Some(relay) = self.relay_link(hint) else {
            return false;
        };
        let frame = Frame::new(message);
        let mut plain = alloc::vec![0u8; frame.encoded_len()];
        let Ok(n) = frame.encode(&mut plain) else {
            return false;
        };
        // The frame, its id included, is all inside the box: the relay sees no id.
        let mut sealed = alloc::vec![0u8; n + seal::SEAL_OVERHEAD];
        let Ok(len) = seal::seal(
            &self.provider,
            &mut self.rng,
            self.identity.key_pair(),
            &to,
            &plain[..n],
            &mut sealed,
        ) else {
            return false;
        };
        sealed.truncate(len);
        let relayed = Message::Relay(Relay {
            peer: to,
            stage: RelayStage::Sealed,
            payload: &sealed,
        });
        self.send_on(now, relay, relayed, class).is_ok()
    }

    /// A sealed box arrived through a relay from `from`.
    pub(crate) fn on_sealed(&mut self, now: Timestamp, from: NodeKey, payload: &[u8]) {
        let mut plain = alloc::vec![0u8; payload.len()];
        let Ok((sender, n)) = seal::open(
            &self.provider,
            self.identity.key_pair(),
            payload,
            &mut plain,
        ) else {
            self.stats.drop(DropCause::Invalid);
            return;
        };
        if sender != from {
            self.stats.drop(DropCause::Invalid);
            return;
        }
        let limits = self.config.limits;
        let Ok(frame) = Frame::decode(&plain[..n], &limits) else {
            self.stats.drop(DropCause::Invalid);
            return;
        };
        match frame.message {
            Message::Whisper(w) => self.on_whisper(now, sender, None, w),
            Message::Ack(a) => self.on_ack(sender, a.id),
            _ => self.stats.drop(DropCause::Unhandled),
        }
    }

    /// A whisper from `from` (over `link`, or sealed when `None`).
    pub(crate) fn on_whisper(
        &mut self,
        now: Timestamp,
        from: NodeKey,
        link: Option<LinkId>,
        w: Whisper<'_>,
    ) {
        if w.target != *self.identity.node_id().key() {
            self.stats.drop(DropCause::NoRoute);
            return;
        }
        if Message::Whisper(w)
            .validate_at(now, &self.config.limits)
            .is_err()
        {
            self.stats.drop(DropCause::Invalid);
            return;
        }
        let until = self.seen_until(&w.route);
        let first = match self.seen.insert(now, w.route.id, SeenKind::Whisper, until) {
            Ok(()) => true,
            Err(Refusal::Known) => false,
            Err(Refusal::Full) => {
                // Cannot be remembered, so it must not be accepted (it could come again);
                // unacknowledged, the sender retries later.
                self.stats.drop(DropCause::Refused);
                return;
            }
        };
        // Acknowledge every copy: the sender may have missed an earlier acknowledgement.
        let ack = Message::Ack(Ack { id: w.route.id });
        let relay = self.peers.get(&from).and_then(|p| p.relay);
        match link {
            Some(l) if self.links.contains_key(&l) => {
                let _ = self.send_on(now, l, ack, Class::Control);
                self.flush_tunnels(now);
            }
            _ => {
                self.send_private(now, from, ack, relay, Class::Control);
            }
        }
        if !first {
            self.stats.duplicates += 1;
            self.stats.drop(DropCause::Duplicate);
            return;
        }
        self.note_latency(now, &w.route);
        self.push_event(Event::Whisper {
            id: w.route.id,
            from,
            tag: w.tag,
            payload: w.payload.to_vec(),
        });
    }

    /// An acknowledgement from `from`, authenticated (by its session or its sealed box). Only
    /// the addressee's counts: anyone else's is dropped, so no relay or peer can fake a
    /// delivery.
    pub(crate) fn on_ack(&mut self, from: NodeKey, id: MessageId) {
        match self.pending.get(&id) {
            Some(p) if p.to == from => {}
            Some(_) => {
                self.stats.drop(DropCause::Invalid);
                return;
            }
            None => return,
        }
        if self.pending.remove(&id).is_some() {
            self.timers.remove(Timer::Whisper(id));
            self.stats.whispers_delivered += 1;
            self.push_event(Event::WhisperDelivered { id });
        }
    }

    /// The relay says `peer` is not connected: retry sooner is pointless, keep the schedule.
    pub(crate) fn whisper_unreachable(&mut self, _now: Timestamp, peer: NodeKey) {
        for p in self.pending.values_mut() {
            if p.to == peer {
                p.routed = false;
            }
        }
    }

    /// Retransmissions and failures.
    pub(crate) fn whisper_timers(&mut self, now: Timestamp) {
        let due: Vec<MessageId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_try <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut p) = self.pending.remove(&id) else {
                continue;
            };
            if p.attempts >= self.config.whisper_attempts {
                let reason = if p.routed {
                    WhisperFailure::NoAck
                } else {
                    WhisperFailure::NoRoute
                };
                self.stats.whispers_failed += 1;
                self.push_event(Event::WhisperFailed { id, reason });
                continue;
            }
            self.try_whisper(now, &mut p);
            self.pending.insert(id, p);
        }
    }
}
