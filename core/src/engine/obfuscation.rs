//! Traffic-analysis resistance policies: padding to size buckets, send jitter and cover
//! traffic timing. Pure functions of the configuration and the engine's RNG.

use core::time::Duration;

use rand_core::CryptoRng;

use super::Obfuscation;
use crate::{Timestamp, crypto::TAG_LEN};

/// The frame length to pad a frame of `len` bytes to (0 = no padding). Buckets are record
/// sizes: the 16-byte tag is accounted for, so sealed records land exactly on a bucket.
pub fn pad_target(ob: &Obfuscation, len: usize) -> usize {
    ob.padding_buckets
        .iter()
        .map(|b| b.saturating_sub(TAG_LEN))
        .find(|&b| b >= len)
        .filter(|&b| b > len)
        .unwrap_or(0)
}

/// A uniformly random delay in `[0, max]` at millisecond resolution.
pub fn random_delay<R: CryptoRng + ?Sized>(rng: &mut R, max: Duration) -> Duration {
    let ms = max.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rng.next_u64() % (ms + 1))
}

/// When to send the next cover frame: `now` plus a random delay in `[mean/2, 3·mean/2]`.
pub fn next_cover<R: CryptoRng + ?Sized>(rng: &mut R, now: Timestamp, mean: Duration) -> Timestamp {
    now.saturating_add(mean / 2)
        .saturating_add(random_delay(rng, mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_account_for_the_tag() {
        let ob = Obfuscation::standard();
        assert_eq!(pad_target(&ob, 10), 112);
        assert_eq!(pad_target(&ob, 112), 0, "already on a bucket");
        assert_eq!(pad_target(&ob, 113), 240);
        assert_eq!(pad_target(&ob, 70_000), 0, "beyond the largest bucket");
        assert_eq!(pad_target(&Obfuscation::off(), 10), 0);
    }
}
