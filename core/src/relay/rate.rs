//! The per-client rate limit: a token bucket refilled lazily from the caller's `now`.
//!
//! Tokens are counted in thousandths so that any rate in messages per second refills by a whole
//! number of milli-tokens per millisecond: no floating point, no timer, no drift.

use crate::{Timestamp, time::duration_millis};

/// Milli-tokens one frame costs.
const COST: u64 = 1000;

/// A token-bucket rate limit on the frames one client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate: tokens added per second (one frame costs one token).
    pub per_second: u32,
    /// Bucket size: the most frames accepted back to back after a quiet period. A client starts
    /// with a full bucket. Zero refuses every frame.
    pub burst: u32,
}

impl RateLimit {
    /// 1000 frames per second, bursts of up to 2000.
    pub const DEFAULT: RateLimit = RateLimit {
        per_second: 1000,
        burst: 2000,
    };

    fn capacity(&self) -> u64 {
        u64::from(self.burst) * COST
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One client's bucket, plus the frames it has had refused since its bucket was last full.
///
/// The relay keeps one per client. A relay server may keep a second one per client in its
/// reader, with the same [`RateLimit`], and read a client's next message only when
/// [`wait`](Self::wait) says a token is there: the client is then slowed by TCP backpressure
/// instead of having frames dropped (which breaks its end-to-end sessions). The reader's
/// bucket is never fuller than the relay's, which takes its tokens later.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    milli: u64,
    last: Timestamp,
    strikes: u32,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(limit: &RateLimit, now: Timestamp) -> Self {
        TokenBucket {
            milli: limit.capacity(),
            last: now,
            strikes: 0,
        }
    }

    /// Takes one token at `now`; `false` if the bucket is empty (the frame must be dropped).
    ///
    /// A bucket found full again forgives earlier refusals: only a client that stays over the
    /// limit keeps accumulating `strikes`.
    pub fn take(&mut self, limit: &RateLimit, now: Timestamp) -> bool {
        let elapsed = duration_millis(now.saturating_duration_since(self.last));
        self.last = self.last.max(now);
        let cap = limit.capacity();
        let refill = elapsed.saturating_mul(u64::from(limit.per_second));
        self.milli = self.milli.saturating_add(refill).min(cap);
        if self.milli == cap {
            self.strikes = 0;
        }
        if self.milli >= COST {
            self.milli -= COST;
            true
        } else {
            self.strikes = self.strikes.saturating_add(1);
            false
        }
    }

    /// Takes a token at `now` if there is one (`None`); otherwise how long until there is,
    /// without taking anything or counting a refusal.
    pub fn wait(&mut self, limit: &RateLimit, now: Timestamp) -> Option<core::time::Duration> {
        let elapsed = duration_millis(now.saturating_duration_since(self.last));
        let have = self
            .milli
            .saturating_add(elapsed.saturating_mul(u64::from(limit.per_second)))
            .min(limit.capacity());
        if have >= COST {
            let taken = self.take(limit, now);
            debug_assert!(taken);
            return None;
        }
        if limit.per_second == 0 {
            return Some(core::time::Duration::from_secs(3600));
        }
        let missing = COST - have;
        let ms = missing.div_ceil(u64::from(limit.per_second));
        Some(core::time::Duration::from_millis(ms.max(1)))
    }

    /// Frames refused since the bucket was last full.
    pub(super) fn strikes(&self) -> u32 {
        self.strikes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_says_how_long_until_a_token_and_takes_it_when_there() {
        let limit = RateLimit {
            per_second: 100,
            burst: 2,
        };
        let t0 = Timestamp::from_secs(1_000);
        let mut b = TokenBucket::full(&limit, t0);
        assert_eq!(b.wait(&limit, t0), None);
        assert_eq!(b.wait(&limit, t0), None);
        // Empty: one token per 10 ms; nothing is taken or counted while waiting.
        assert_eq!(
            b.wait(&limit, t0),
            Some(core::time::Duration::from_millis(10))
        );
        assert_eq!(b.strikes(), 0);
        let t1 = t0.saturating_add(core::time::Duration::from_millis(4));
        assert_eq!(
            b.wait(&limit, t1),
            Some(core::time::Duration::from_millis(6))
        );
        let t2 = t0.saturating_add(core::time::Duration::from_millis(10));
        assert_eq!(b.wait(&limit, t2), None);
        assert!(b.wait(&limit, t2).is_some());
    }

    const T0: Timestamp = Timestamp::from_millis(1_000_000);

    #[test]
    fn burst_then_refill() {
        let limit = RateLimit {
            per_second: 10,
            burst: 3,
        };
        let mut b = TokenBucket::full(&limit, T0);
        assert!((0..3).all(|_| b.take(&limit, T0)));
        assert!(!b.take(&limit, T0));
        assert_eq!(b.strikes(), 1);
        // 10 per second: one token per 100 ms.
        let t = Timestamp::from_millis(T0.as_millis() + 99);
        assert!(!b.take(&limit, t));
        let t = Timestamp::from_millis(T0.as_millis() + 100);
        assert!(b.take(&limit, t));
        assert!(!b.take(&limit, t));
        assert_eq!(b.strikes(), 3);
        // Quiet long enough to fill up: strikes are forgiven.
        let t = Timestamp::from_millis(T0.as_millis() + 10_000);
        assert!(b.take(&limit, t));
        assert_eq!(b.strikes(), 0);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let limit = RateLimit {
            per_second: 1000,
            burst: 1,
        };
        let mut b = TokenBucket::full(&limit, T0);
        assert!(b.take(&limit, T0));
        assert!(!b.take(&limit, Timestamp::from_millis(1)));
        assert!(!b.take(&limit, T0));
        assert!(b.take(&limit, Timestamp::from_millis(T0.as_millis() + 1)));
    }

    #[test]
    fn zero_burst_refuses_everything() {
        let limit = RateLimit {
            per_second: 1000,
            burst: 0,
        };
        let mut b = TokenBucket::full(&limit, T0);
        assert!(!b.take(&limit, Timestamp::from_millis(u64::MAX)));
    }
}
