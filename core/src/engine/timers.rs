//! The engine's deadlines in one ordered structure, so that
//! [`poll_timeout`](super::Engine::poll_timeout) is a look at its first entry instead of a scan
//! of every link, whisper and peer.
//!
//! Entries are never later than the deadline they stand for, but may be earlier: an input that
//! brings a deadline forward arms it here (O(log n)); one that pushes it back (a record
//! received, a ping answered) leaves the entry as it is, and the timer fires early, finds nothing
//! due and is set right. [`handle_timeout`](super::Engine::handle_timeout) rebuilds the table
//! exactly after the timers have run, which is also when entries of links and whispers that are
//! gone disappear. The protocol layers keep their own deadlines (`membership_deadline`,
//! `tree_deadline`), as do the two engine-wide intervals.

use alloc::collections::{BTreeMap, BTreeSet};

use super::LinkId;
use crate::{NodeKey, Timestamp, wire::MessageId};

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A link's heartbeat, dead-link check, handshake timeout, jitter hold or cover frame.
    Link(LinkId),
    /// A whisper's next retry (or its failure).
    Whisper(MessageId),
    /// The next direct-path attempt to a peer.
    Direct(NodeKey),
    /// The earliest relay reconnect.
    Reconnect,
    /// The fail-safe of an own anonymous broadcast in its stem.
    Stem(MessageId),
}

/// Deadlines, earliest first; one entry per timer.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_time: BTreeSet<(Timestamp, Timer)>,
    by_timer: BTreeMap<Timer, Timestamp>,
}

impl Timers {
    /// Arms `timer` at `at`, unless it is already armed at or before `at`.
    pub fn arm(&mut self, timer: Timer, at: Timestamp) {
        if let Some(old) = self.by_timer.get(&timer).copied() {
            if old <= at {
                return;
            }
            self.by_time.remove(&(old, timer));
        }
        self.by_timer.insert(timer, at);
        self.by_time.insert((at, timer));
    }

    /// Forgets `timer` (its link, whisper or peer is gone).
    pub fn remove(&mut self, timer: Timer) {
        if let Some(at) = self.by_timer.remove(&timer) {
            self.by_time.remove(&(at, timer));
        }
    }

    /// Forgets every timer.
    pub fn clear(&mut self) {
        self.by_time.clear();
        self.by_timer.clear();
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// How many timers are armed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_timer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_only_ever_moves_earlier_until_removed() {
        let mut t = Timers::default();
        let at = |ms| Timestamp::from_millis(ms);
        t.arm(Timer::Link(LinkId(1)), at(50));
        t.arm(Timer::Reconnect, at(70));
        assert_eq!(t.next(), Some(at(50)));
        t.arm(Timer::Link(LinkId(1)), at(90));
        assert_eq!(
            t.next(),
            Some(at(50)),
            "a later deadline leaves the entry early"
        );
        t.arm(Timer::Link(LinkId(1)), at(10));
        assert_eq!(t.next(), Some(at(10)));
        assert_eq!(t.len(), 2, "one entry per timer");
        t.remove(Timer::Link(LinkId(1)));
        assert_eq!(t.next(), Some(at(70)));
        t.clear();
        assert_eq!(t.next(), None);
    }
}
