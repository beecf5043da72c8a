//! The de-duplication set: the ids of the messages accepted, for as long as they are valid.
//!
//! An entry lives exactly as long as its message could be accepted again: until the message's
//! own expiry (its timestamp plus its time to live, both as validated), not for a fixed time
//! from when it arrived — a message stamped ahead of our clock stays valid longer, and so does
//! its entry. Entries are never evicted early: a full set refuses new ids instead, so an
//! accepted message can never be accepted again while it is valid. Each kind of message has
//! its own share, so a flood of free anonymous broadcasts cannot crowd out signed broadcasts or
//! whispers.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::{Timestamp, wire::MessageId};

/// The kinds of message that share nothing but the id space: each has its own cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Whisper,
    Signed,
    Anonymous,
    Resonance,
    Extension,
}

const KINDS: usize = 5;

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
}

/// Why an id could not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Already known (a duplicate).
    Known,
    /// The kind's share is full of messages still valid.
    Full,
}

/// The de-duplication set.
#[derive(Debug)]
pub(crate) struct SeenSet {
    map: BTreeMap<MessageId, (Kind, Timestamp)>,
    /// Entries by expiry.
    by_expiry: BTreeSet<(Timestamp, MessageId)>,
    counts: [usize; KINDS],
    cap: usize,
}

impl SeenSet {
    /// A set of at most `cap` ids of each kind.
    pub fn new(cap: usize) -> Self {
        SeenSet {
            map: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            counts: [0; KINDS],
            cap: cap.max(1),
        }
    }

    /// The kind recorded for `id`, if it is remembered (the message was accepted).
    pub fn get(&self, id: &MessageId) -> Option<Kind> {
        self.map.get(id).map(|(kind, _)| *kind)
    }

    /// Records `id` of `kind` until `until` (the message's expiry). `Err(Known)` for a
    /// duplicate, `Err(Full)` when the kind's share holds `cap` ids that are all still valid.
    pub fn insert(
        &mut self,
        now: Timestamp,
        id: MessageId,
        kind: Kind,
        until: Timestamp,
    ) -> Result<(), Refusal> {
        self.expire(now);
        if self.map.contains_key(&id) {
            return Err(Refusal::Known);
        }
        if self.counts[kind.index()] >= self.cap {
            return Err(Refusal::Full);
        }
        let until = until.max(now);
        self.map.insert(id, (kind, until));
        self.by_expiry.insert((until, id));
        self.counts[kind.index()] += 1;
        Ok(())
    }

    /// Forgets ids whose messages have expired.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(until, id)) = self.by_expiry.first() {
            if until > now {
                break;
            }
            self.by_expiry.pop_first();
            if let Some((kind, _)) = self.map.remove(&id) {
                self.counts[kind.index()] -= 1;
            }
        }
    }

    /// Ids remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    #[test]
    fn entries_live_as_long_as_their_message_and_are_never_evicted() {
        let mut s = SeenSet::new(2);
        let t = Timestamp::from_secs(100);
        let later = |s| t.saturating_add(Duration::from_secs(s));
        let id = |b| MessageId([b; 16]);
        assert_eq!(s.insert(t, id(1), Kind::Signed, later(60)), Ok(()));
        assert_eq!(
            s.insert(t, id(1), Kind::Signed, later(60)),
            Err(Refusal::Known)
        );
        assert_eq!(s.insert(t, id(2), Kind::Signed, later(90)), Ok(()));
        // Full of valid entries: refused, nothing evicted.
        assert_eq!(
            s.insert(t, id(3), Kind::Signed, later(10)),
            Err(Refusal::Full)
        );
        // Another kind has its own share.
        assert_eq!(s.insert(t, id(4), Kind::Anonymous, later(10)), Ok(()));
        assert_eq!(s.get(&id(1)), Some(Kind::Signed));
        // Each entry goes when its message expires, not before.
        s.expire(later(59));
        assert_eq!(s.get(&id(4)), None, "expired at 10 s");
        assert_eq!(s.len(), 2);
        s.expire(later(60));
        assert_eq!(s.get(&id(1)), None);
        assert_eq!(s.get(&id(2)), Some(Kind::Signed));
        assert_eq!(s.insert(later(60), id(3), Kind::Signed, later(70)), Ok(()));
        s.expire(later(90));
        assert_eq!(s.len(), 0);
    }
}
