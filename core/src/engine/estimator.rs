//! A smoothed mean and mean deviation of durations, the estimator of TCP's retransmission
//! timeout (RFC 6298): the link heartbeat measures round trips with it, the broadcast tree how
//! late tree copies come after their announcement.

use core::time::Duration;

/// A smoothed mean and mean deviation of duration samples, in milliseconds.
///
/// The first sample sets the mean to it and the deviation to half of it; each later sample `x`
/// moves the deviation by β = 1/4 towards `|mean - x|`, then the mean by α = 1/8 towards `x`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimator {
    mean: Option<f64>,
    dev: f64,
}

impl Estimator {
    /// Takes one sample into account.
    pub fn sample(&mut self, x: Duration) {
        let x = x.as_secs_f64() * 1000.0;
        match self.mean {
            None => {
                self.mean = Some(x);
                self.dev = x / 2.0;
            }
            Some(m) => {
                self.dev = 0.75 * self.dev + 0.25 * (m - x).abs();
                self.mean = Some(0.875 * m + 0.125 * x);
            }
        }
    }

    /// The smoothed mean in ms, once there is a sample.
    pub fn mean_ms(&self) -> Option<f64> {
        self.mean
    }

    /// The smoothed mean deviation in ms (0 before the first sample).
    pub fn deviation_ms(&self) -> f64 {
        self.dev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_then_smoothing() {
        let mut e = Estimator::default();
        assert_eq!((e.mean_ms(), e.deviation_ms()), (None, 0.0));
        e.sample(Duration::from_millis(100));
        assert_eq!((e.mean_ms(), e.deviation_ms()), (Some(100.0), 50.0));
        e.sample(Duration::from_millis(200));
        // dev = 0.75·50 + 0.25·100, mean = 0.875·100 + 0.125·200.
        assert_eq!((e.mean_ms(), e.deviation_ms()), (Some(112.5), 62.5));
    }
}
