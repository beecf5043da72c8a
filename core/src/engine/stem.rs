//! The stem phase of anonymous broadcasts, after Dandelion++ (Fanti et al., 2018): a neighbour
//! must not be able to tell an anonymous broadcast's origin from a forwarder.
//!
//! Without it the origin would be the one neighbour that sends the message with hop count 1 and
//! a fresh millisecond timestamp. With it:
//!
//! - the origin stamps the message to the second, not the millisecond, and hands it, marked as
//!   *stem* (hop count 0), to **one** random neighbour;
//! - a node that receives a stem message, with probability `fluff`, starts the broadcast itself
//!   (accepts and delivers it, and spreads it with hop count 1 to all its neighbours as if it
//!   were its own: they cannot tell it from an origin), or else passes the stem on to one random
//!   neighbour other than the sender. Stem relays keep the id apart from the de-duplication set
//!   (a small set of their own, as Dandelion's stempool), so the diffused copy, when it reaches
//!   them, is accepted, delivered and forwarded like any other; a stem that loops back, or finds
//!   no other neighbour, is diffused at once;
//! - the origin keeps the message for `fail_safe`; if no copy of it has come back by then (a
//!   stem node dropped it), it spreads it itself. A stem that loops back to its origin is not
//!   such a copy (no node has delivered it): the origin diffuses it at once.
//!
//! What holds: the diffusing node's neighbours see an origin-like node that usually is not the
//! origin; a stem node cannot tell whether its predecessor is the origin or another stem node
//! (the stem continues with probability `1 − fluff`). What does not: the first stem node is the
//! origin's neighbour and, with probability `fluff`, only one hop away; a crowd of colluding
//! neighbours (or a global observer of the links) can still narrow the origin down, and the
//! fail-safe, when it fires, spreads from the origin itself. Signed broadcasts name their origin
//! anyway and take no stem.

use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;

use super::{Engine, LinkId, links::Class, timers::Timer};
use crate::{
    NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Broadcast, Message, MessageId, Route},
};

/// Stem settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StemConfig {
    /// Probability that a stem node starts the diffusion rather than extend the stem. The stem
    /// is `1 / fluff` hops long on average: 0.5 adds about two hops of latency.
    pub fluff: f64,
    /// How long the origin waits for a copy to come back before spreading it itself.
    pub fail_safe: Duration,
    /// Own anonymous broadcasts awaiting their fail-safe; beyond it new ones skip the stem.
    pub max_pending: usize,
}

impl Default for StemConfig {
    fn default() -> Self {
        StemConfig {
            fluff: 0.5,
            fail_safe: Duration::from_secs(2),
            max_pending: 256,
        }
    }
}

/// An own anonymous broadcast sent into the stem, kept until a copy comes back.
#[derive(Debug)]
pub(crate) struct PendingStem {
    pub deadline: Timestamp,
    pub route: Route,
    pub payload: Vec<u8>,
    /// A copy (or an announcement) came back: the diffusion is under way.
    pub returned: bool,
    /// A full copy came back and, with the broadcast tree, was passed on along it.
    pub back: bool,
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// One random neighbour other than `except`, with its link.
    fn stem_target(&mut self, except: Option<NodeKey>) -> Option<(NodeKey, LinkId)> {
        let candidates: Vec<(NodeKey, LinkId)> = self
            .neighbours()
            .into_iter()
            .filter(|(k, _)| Some(*k) != except && !self.is_probe(k))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let i = (self.rng.next_u64() % candidates.len() as u64) as usize;
        Some(candidates[i])
    }

    /// Sends an own anonymous broadcast (hop count 0) into the stem. `false` if it cannot take
    /// the stem (no neighbour, too many pending): the caller spreads it as usual.
    pub(crate) fn stem_own(&mut self, now: Timestamp, b: &Broadcast<'_>) -> bool {
        let Some(cfg) = self.config.stem else {
            return false;
        };
        if self.stems.len() >= cfg.max_pending {
            return false;
        }
        let Some((_, link)) = self.stem_target(None) else {
            return false;
        };
        if self
            .send_on(now, link, Message::Broadcast(*b), Class::Own)
            .is_err()
        {
            return false;
        }
        self.flush_tunnels(now);
        let deadline = now.saturating_add(cfg.fail_safe);
        self.stems.insert(
            b.route.id,
            PendingStem {
                deadline,
                route: b.route,
                payload: b.payload.to_vec(),
                returned: false,
                back: false,
            },
        );
        self.timers.arm(Timer::Stem(b.route.id), deadline);
        true
    }

    /// A valid stem message (anonymous, hop count 0, not yet accepted here) from `from`:
    /// extend the stem, or start the diffusion.
    pub(crate) fn stem_relay(&mut self, now: Timestamp, from: NodeKey, b: &Broadcast<'_>) {
        let fluff = self.config.stem.map_or(1.0, |c| c.fluff);
        let draw = f64::from(self.rng.next_u32()) / f64::from(u32::MAX);
        let looped = self.stem_relayed.contains_key(&b.route.id);
        if !looped
            && draw >= fluff
            && let Some((_, link)) = self.stem_target(Some(from))
            && self
                .send_on(now, link, Message::Broadcast(*b), Class::Forward)
                .is_ok()
        {
            let cap = self.config.stem.map_or(0, |c| c.max_pending);
            while self.stem_relayed.len() >= cap.max(1) {
                self.stem_relayed.pop_first();
            }
            self.stem_relayed.insert(b.route.id, now);
            self.stats.messages_forwarded += 1;
            self.flush_tunnels(now);
            return;
        }
        // Diffuse: accepted here as from an origin, delivered, and spread to every neighbour
        // (the stem sender included: it holds the id only as a stem relay, or is the origin).
        self.stem_relayed.remove(&b.route.id);
        let mut fluffed = *b;
        fluffed.route.hops = 1;
        if !self.remember(now, &fluffed.route, super::seen::Kind::Anonymous) {
            return;
        }
        self.deliver_broadcast(now, &fluffed);
        let (n, _) = self.spread(now, &fluffed, &[], Class::Forward);
        self.stats.messages_forwarded += n as u64;
    }

    /// A stem message (anonymous, hop count 0) for `id` reached us: if `id` is our own
    /// broadcast still in its fail-safe window, the stem looped back to its origin through stem
    /// relays that hold it only as such. It is diffused at once, as a stem relay diffuses a
    /// loop: had it been taken for a copy, nobody would ever deliver it (the stem relays hold
    /// it apart from their seen sets, our seen set takes it for a duplicate, and the fail-safe
    /// would believe the diffusion under way). What is spread is our own copy, whatever came
    /// in. Returns whether `id` was ours (the message is then handled).
    pub(crate) fn stem_came_home(&mut self, now: Timestamp, id: &MessageId) -> bool {
        let Some(s) = self.stems.get_mut(id) else {
            return false;
        };
        if s.returned {
            // Already diffusing: a stray stem copy.
            return true;
        }
        s.returned = true;
        let route = Route { hops: 1, ..s.route };
        let payload = s.payload.clone();
        self.stats.stem_loops += 1;
        let b = Broadcast {
            route,
            origin: None,
            payload: &payload,
            signature: None,
        };
        self.spread(now, &b, &[], Class::Own);
        true
    }

    /// A copy of `id` came back (or was announced). Returns whether `id` is an own broadcast
    /// in its fail-safe window whose diffused copy has not come back yet: such copies are not
    /// duplicates in the tree's sense (the origin had it before the diffusion started), so
    /// they must not prune tree links.
    pub(crate) fn stem_returned(&mut self, id: &MessageId) -> bool {
        match self.stems.get_mut(id) {
            Some(s) => {
                s.returned = true;
                !s.back
            }
            None => false,
        }
    }

    /// Whether `id` is an own broadcast, diffused by another node, that the broadcast tree
    /// still awaits here: the origin is a node of the tree like any other, which its
    /// neighbours may count on for the broadcast, so it takes the diffused copy (grafting it
    /// if it is only announced) and passes it on along the tree.
    pub(crate) fn stem_awaited(&self, id: &MessageId) -> bool {
        self.tree.is_some() && self.stems.get(id).is_some_and(|s| !s.back)
    }

    /// The diffused copy of an own stem broadcast came back from `from` (see
    /// [`stem_awaited`](Self::stem_awaited)): the first copy in the tree's sense. It was
    /// delivered when it was sent, so it is only passed on, as any node passes on a first copy:
    /// the origin's neighbours cannot tell it from one.
    pub(crate) fn stem_back(&mut self, now: Timestamp, from: NodeKey, b: &Broadcast<'_>) {
        if let Some(s) = self.stems.get_mut(&b.route.id) {
            s.returned = true;
            s.back = true;
        }
        self.forward_first_copy(now, from, b);
    }

    /// Fail-safes: own stem messages that never came back are spread by their origin.
    pub(crate) fn stem_timers(&mut self, now: Timestamp) {
        let due: Vec<MessageId> = self
            .stems
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(s) = self.stems.remove(&id) else {
                continue;
            };
            if s.returned {
                continue;
            }
            self.stats.stem_fail_safes += 1;
            let b = Broadcast {
                route: Route { hops: 1, ..s.route },
                origin: None,
                payload: &s.payload,
                signature: None,
            };
            self.spread(now, &b, &[], Class::Own);
        }
    }
}
