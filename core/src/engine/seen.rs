//! A bounded, time-aware de-duplication set of message ids. Entries expire after a fixed
//! time; when full, the oldest entry is evicted (and the eviction counted by the caller).

use alloc::collections::{BTreeMap, VecDeque};

use crate::{Timestamp, wire::MessageId};

/// What the set remembers about an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted (delivered or forwarded).
    Accepted,
    /// Rejected (e.g. a bad signature): later copies are dropped without verifying again.
    Rejected,
}

/// The de-duplication set.
#[derive(Debug)]
pub(crate) struct SeenSet {
    map: BTreeMap<MessageId, Verdict>,
    order: VecDeque<(Timestamp, MessageId)>,
    cap: usize,
    ttl: core::time::Duration,
    /// Entries evicted before their time because the set was full.
    pub evicted: u64,
}

impl SeenSet {
    /// A set of at most `cap` ids remembered for `ttl`.
    pub fn new(cap: usize, ttl: core::time::Duration) -> Self {
        SeenSet {
            map: BTreeMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            ttl,
            evicted: 0,
        }
    }

    /// The verdict recorded for `id`, if it is remembered.
    pub fn get(&self, id: &MessageId) -> Option<Verdict> {
        self.map.get(id).copied()
    }

    /// Records `id` (first sighting) and returns `true`, or returns `false` if it was known.
    pub fn insert(&mut self, now: Timestamp, id: MessageId, verdict: Verdict) -> bool {
        self.expire(now);
        if self.map.contains_key(&id) {
            return false;
        }
        if self.map.len() >= self.cap
            && let Some((_, old)) = self.order.pop_front()
        {
            self.map.remove(&old);
            self.evicted += 1;
        }
        self.map.insert(id, verdict);
        self.order.push_back((now, id));
        true
    }

    /// Forgets ids older than the TTL.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some((t, id)) = self.order.front().copied() {
            if now.saturating_duration_since(t) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.map.remove(&id);
        }
    }

    /// Ids remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    #[test]
    fn caps_and_expires() {
        let mut s = SeenSet::new(2, Duration::from_secs(10));
        let t = Timestamp::from_secs(100);
        assert!(s.insert(t, MessageId([1; 16]), Verdict::Accepted));
        assert!(!s.insert(t, MessageId([1; 16]), Verdict::Accepted));
        assert!(s.insert(t, MessageId([2; 16]), Verdict::Accepted));
        assert!(s.insert(t, MessageId([3; 16]), Verdict::Rejected));
        assert_eq!(s.len(), 2);
        assert_eq!(s.evicted, 1);
        assert_eq!(s.get(&MessageId([1; 16])), None);
        assert_eq!(s.get(&MessageId([3; 16])), Some(Verdict::Rejected));
        s.expire(t.saturating_add(Duration::from_secs(10)));
        assert!(s.is_empty());
    }
}
