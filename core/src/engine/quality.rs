//! Heartbeat bookkeeping and link quality: RTT moving average, jitter, loss and a score.

use core::time::Duration;

use super::Estimator;
use crate::Timestamp;

/// Quality of one link (a path to a peer or a relay).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    /// Round-trip times: their smoothed mean (α = 1/8) is [`rtt_ms`](Self::rtt_ms), their
    /// smoothed mean deviation (β = 1/4) is [`jitter_ms`](Self::jitter_ms).
    pub rtt: Estimator,
    /// PINGs sent.
    pub pings_sent: u64,
    /// PONGs received for them.
    pub pongs_received: u64,
}

impl Quality {
    /// Records a round-trip sample.
    pub fn sample(&mut self, rtt: Duration) {
        self.rtt.sample(rtt);
        self.pongs_received += 1;
    }

    /// Smoothed round-trip time in ms (EWMA, α = 1/8), once measured.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.rtt.mean_ms()
    }

    /// Smoothed RTT variation in ms (EWMA, β = 1/4): the jitter.
    pub fn jitter_ms(&self) -> f64 {
        self.rtt.deviation_ms()
    }

    /// Fraction of PINGs without a PONG (the one in flight excluded).
    pub fn loss(&self) -> f64 {
        let answered = self.pongs_received as f64;
        let asked = self.pings_sent.saturating_sub(1).max(self.pongs_received) as f64;
        if asked == 0.0 {
            0.0
        } else {
            1.0 - answered / asked
        }
    }

    /// A score in `[0, 1]`: 1 is a perfect link. Halves at 200 ms of RTT+jitter, scaled by
    /// delivery ratio. Unmeasured links score 0.5.
    pub fn score(&self) -> f64 {
        let Some(rtt) = self.rtt_ms() else {
            return 0.5;
        };
        let latency = 1.0 / (1.0 + (rtt + self.jitter_ms()) / 200.0);
        latency * (1.0 - self.loss())
    }
}

/// An outstanding PING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingPing {
    /// Its id.
    pub id: u64,
    /// When it was sent.
    pub sent: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_jitter_loss_and_score() {
        let mut q = Quality::default();
        assert_eq!(q.score(), 0.5);
        q.pings_sent = 1;
        q.sample(Duration::from_millis(100));
        assert_eq!(q.rtt_ms(), Some(100.0));
        q.pings_sent = 2;
        q.sample(Duration::from_millis(200));
        assert!((q.rtt_ms().unwrap() - 112.5).abs() < 1e-9);
        assert!(q.jitter_ms() > 0.0);
        assert_eq!(q.loss(), 0.0);
        let good = q.score();
        q.pings_sent = 6; // three unanswered, one in flight
        assert!((q.loss() - 0.6).abs() < 1e-9, "{}", q.loss());
        assert!(q.score() < good);
    }
}
