//! Traffic-analysis resistance policies: padding to size buckets, send jitter and cover
//! traffic timing. Pure functions of the configuration and the engine's RNG.

use core::time::Duration;

use rand_core::CryptoRng;

use super::Obfuscation;
use super::budget::relay_room;
use crate::{Timestamp, crypto::TAG_LEN};

/// The frame length to pad a frame of `len` bytes to (0 = no padding), so that the record a
/// transport link carries lands exactly on a bucket: buckets are record sizes, the 16-byte tag
/// is accounted for and, for a frame sent through a relay tunnel (`tunnelled`), so is the RELAY
/// frame that carries its record (the relay link then pads that frame the last byte or two to
/// the bucket). Buckets whose frame would exceed `max_frame`, the largest frame the link may
/// send, are skipped: beyond the largest bucket that fits, frames go unpadded.
pub fn pad_target(ob: &Obfuscation, len: usize, max_frame: usize, tunnelled: bool) -> usize {
    ob.padding_buckets
        .iter()
        .map(|&b| {
            let frame = b.saturating_sub(TAG_LEN);
            if tunnelled {
                relay_room(frame).saturating_sub(TAG_LEN)
            } else {
                frame
            }
        })
        .filter(|&f| f <= max_frame)
        .find(|&f| f >= len)
        .filter(|&f| f > len)
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
        let max = 65_519;
        assert_eq!(pad_target(&ob, 10, max, false), 112);
        assert_eq!(pad_target(&ob, 112, max, false), 0, "already on a bucket");
        assert_eq!(pad_target(&ob, 113, max, false), 240);
        assert_eq!(
            pad_target(&ob, 65_510, max, false),
            0,
            "beyond the largest bucket"
        );
        assert_eq!(pad_target(&Obfuscation::off(), 10, max, false), 0);
        assert_eq!(
            pad_target(&ob, 10, 100, false),
            0,
            "no bucket fits the link"
        );
    }

    #[test]
    fn tunnelled_frames_land_on_a_bucket_once_relayed() {
        let ob = Obfuscation::standard();
        let budget = super::super::budget::Budget::new(&crate::wire::Limits::DEFAULT);
        let max = budget.tunnel_record - TAG_LEN;
        for len in [1, 100, 200, 1_000, 5_000, 40_000] {
            let f = pad_target(&ob, len, max, true);
            assert!(f >= len, "{len} padded to {f}");
            let outer = super::super::budget::relay_frame_len(f + TAG_LEN) + TAG_LEN;
            let bucket = *ob.padding_buckets.iter().find(|&&b| b >= outer).unwrap();
            assert!(
                bucket - outer <= 1,
                "{len}: outer record {outer}, bucket {bucket}"
            );
        }
    }
}
