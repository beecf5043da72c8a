//! Ephemeral node identities.
//!
//! A node is its P-256 key pair. The [`NodeKey`] is the 32-byte x-coordinate of the public key;
//! the key pair is normalised so that the public point has an even y-coordinate, which makes the
//! x-coordinate alone determine the key (`0x02 || x` is its SEC1 compressed form). A [`NodeId`]
//! adds a coarse creation time, and its text form is `<64 lowercase hex>:<timestamp hex>` with the
//! timestamp in seconds since the Unix epoch. Whoever knows a node ID can encrypt to it and verify
//! its signatures: no directory is needed.
//!
//! The creation time is rounded down to [`DEFAULT_ID_GRANULARITY`] so that an ID does not reveal
//! when exactly a node started.

use core::{fmt, str::FromStr, time::Duration};

use p256::PublicKey;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{
    Timestamp,
    crypto::KeyPair,
    hex::{lower_hex_value, write_hex},
    time::duration_millis,
};

/// Creation times in node IDs are rounded down to this granularity (one hour) by default.
pub const DEFAULT_ID_GRANULARITY: Duration = Duration::from_secs(3600);

/// The 32-byte x-coordinate of a node's P-256 public key (whose y-coordinate is even).
///
/// This is what routing, encryption and verification use; it is the node's address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey(pub [u8; 32]);

impl NodeKey {
    /// Recovers the public key: the P-256 point with this x-coordinate and even y.
    ///
    /// Fails with [`NodeIdError::NotOnCurve`] when no such point exists.
    pub fn public_key(&self) -> Result<PublicKey, NodeIdError> {
        let mut sec1 = [0u8; 33];
        sec1[0] = 0x02;
        sec1[1..].copy_from_slice(&self.0);
        PublicKey::from_sec1_bytes(&sec1).map_err(|_| NodeIdError::NotOnCurve)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(")?;
        write_hex(f, &self.0[..6])?;
        f.write_str("…)")
    }
}

/// A node's identity as others see it: its [`NodeKey`] and its creation time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId {
    key: NodeKey,
    created_secs: u64,
}

impl NodeId {
    /// Builds an ID from its parts without checking that `key` is on the curve.
    ///
    /// Use [`NodeId::validate`] (or parse the text form, which validates) before trusting it.
    pub const fn from_parts(key: NodeKey, created_secs: u64) -> Self {
        NodeId { key, created_secs }
    }

    /// The key part: the node's address.
    pub const fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The creation time, in seconds since the Unix epoch.
    pub const fn created_secs(&self) -> u64 {
        self.created_secs
    }

    /// The creation time as a [`Timestamp`].
    pub const fn created(&self) -> Timestamp {
        Timestamp::from_secs(self.created_secs)
    }

    /// How old the identity is at `now` (zero if it claims to be from the future).
    pub fn age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.created())
    }

    /// Recovers the public key from the ID.
    pub fn public_key(&self) -> Result<PublicKey, NodeIdError> {
        self.key.public_key()
    }

    /// Checks that the key part is a valid P-256 x-coordinate.
    pub fn validate(&self) -> Result<(), NodeIdError> {
        self.public_key().map(|_| ())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.key.0)?;
        write!(f, ":{:x}", self.created_secs)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeId(")?;
        write_hex(f, &self.key.0[..6])?;
        write!(f, "…:{:x})", self.created_secs)
    }
}

/// Why a node ID (text or bytes) is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// There is no `:` between the key and the timestamp.
    #[error("node ID has no ':' between key and timestamp")]
    MissingSeparator,
    /// The key part does not have exactly 64 characters.
    #[error("key part is {0} characters long, expected 64 hex digits")]
    KeyLength(usize),
    /// The key part has a character that is not a lowercase hex digit.
    #[error("key part has a character that is not lowercase hex at index {0}")]
    KeyNotHex(usize),
    /// The timestamp part is empty.
    #[error("timestamp part is empty")]
    EmptyTimestamp,
    /// The timestamp part has a character that is not a lowercase hex digit.
    #[error("timestamp part has a character that is not lowercase hex at index {0}")]
    TimestampNotHex(usize),
    /// The timestamp has a leading zero (the text form is canonical).
    #[error("timestamp has a leading zero")]
    TimestampLeadingZero,
    /// The timestamp does not fit in 64 bits.
    #[error("timestamp does not fit in 64 bits")]
    TimestampOverflow,
    /// No P-256 point has this x-coordinate.
    #[error("key is not the x-coordinate of a P-256 point")]
    NotOnCurve,
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    /// Parses and validates `<64 lowercase hex>:<timestamp hex>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key_hex, ts_hex) = s.split_once(':').ok_or(NodeIdError::MissingSeparator)?;
        if key_hex.len() != 64 {
            return Err(NodeIdError::KeyLength(key_hex.len()));
        }
        let mut key = [0u8; 32];
        let kb = key_hex.as_bytes();
        for (i, out) in key.iter_mut().enumerate() {
            let hi = lower_hex_value(kb[2 * i]).ok_or(NodeIdError::KeyNotHex(2 * i))?;
            let lo = lower_hex_value(kb[2 * i + 1]).ok_or(NodeIdError::KeyNotHex(2 * i + 1))?;
            *out = (hi << 4) | lo;
        }
        let tb = ts_hex.as_bytes();
        if tb.is_empty() {
            return Err(NodeIdError::EmptyTimestamp);
        }
        let mut created: u64 = 0;
        for (i, &c) in tb.iter().enumerate() {
            let v = lower_hex_value(c).ok_or(NodeIdError::TimestampNotHex(i))?;
            if i == 0 && v == 0 && tb.len() > 1 {
                return Err(NodeIdError::TimestampLeadingZero);
            }
            created = created
                .checked_mul(16)
                .map(|c| c | u64::from(v))
                .ok_or(NodeIdError::TimestampOverflow)?;
        }
        let id = NodeId::from_parts(NodeKey(key), created);
        id.validate()?;
        Ok(id)
    }
}

/// A node's own key pair and ID. The secret never appears in `Debug` output and is zeroized on
/// drop.
#[derive(Clone)]
pub struct Identity {
    keys: KeyPair,
    id: NodeId,
}

impl Identity {
    /// Makes a fresh identity, its creation time `now` rounded down to
    /// [`DEFAULT_ID_GRANULARITY`].
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, now: Timestamp) -> Self {
        Self::generate_with_granularity(rng, now, DEFAULT_ID_GRANULARITY)
    }

    /// Makes a fresh identity, its creation time rounded down to `granularity` (at least one
    /// second).
    pub fn generate_with_granularity<R: CryptoRng + ?Sized>(
        rng: &mut R,
        now: Timestamp,
        granularity: Duration,
    ) -> Self {
        let step = (duration_millis(granularity) / 1000).max(1);
        let created = now.as_secs() / step * step;
        Self::from_key_pair(KeyPair::generate(rng), created)
    }

    /// Restores an identity from a 32-byte secret scalar (for applications that ask to persist
    /// one). The scalar is normalised to even y, so the result may differ from the input; store
    /// [`Identity::secret_bytes`] to get back the same identity.
    pub fn from_secret_bytes(secret: &[u8; 32], created_secs: u64) -> Result<Self, KeyError> {
        let keys = KeyPair::from_secret_bytes(secret).map_err(|_| KeyError::InvalidScalar)?;
        Ok(Self::from_key_pair(keys, created_secs))
    }

    /// An identity from a key pair and a creation time.
    pub fn from_key_pair(keys: KeyPair, created_secs: u64) -> Self {
        let id = NodeId::from_parts(*keys.public(), created_secs);
        Identity { keys, id }
    }

    /// This node's ID.
    pub fn node_id(&self) -> &NodeId {
        &self.id
    }

    /// This node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The secret scalar, for applications that persist their identity on purpose.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.keys.secret_bytes()
    }

    /// The key pair, for the crypto layer.
    pub fn key_pair(&self) -> &KeyPair {
        &self.keys
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why key material could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a scalar in `[1, n)`.
    #[error("secret is not a valid P-256 scalar")]
    InvalidScalar,
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use p256::elliptic_curve::point::AffineCoordinates;
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(42)
    }

    const NOW: Timestamp = Timestamp::from_millis(1_764_000_123_456);

    #[test]
    fn generated_keys_have_even_y_and_round_trip() {
        let mut rng = rng();
        for _ in 0..32 {
            let me = Identity::generate(&mut rng, NOW);
            let pk = me.public_key();
            assert!(!bool::from(pk.as_affine().y_is_odd()));
            assert_eq!(me.node_id().public_key().unwrap(), pk);
            let text = me.node_id().to_string();
            assert_eq!(text.len(), 64 + 1 + 8);
            assert_eq!(text.parse::<NodeId>().unwrap(), *me.node_id());
        }
    }

    #[test]
    fn creation_time_is_coarse() {
        let me = Identity::generate(&mut rng(), NOW);
        assert_eq!(me.node_id().created_secs() % 3600, 0);
        assert!(me.node_id().created_secs() <= NOW.as_secs());
        assert!(me.node_id().age(NOW) < Duration::from_secs(3600));
        let fine = Identity::generate_with_granularity(&mut rng(), NOW, Duration::ZERO);
        assert_eq!(fine.node_id().created_secs(), NOW.as_secs());
    }

    #[test]
    fn secret_round_trips_and_is_redacted() {
        let me = Identity::generate(&mut rng(), NOW);
        let again = Identity::from_secret_bytes(&me.secret_bytes(), me.node_id().created_secs());
        assert_eq!(again.unwrap().node_id(), me.node_id());
        let dbg = alloc::format!("{me:?}");
        assert!(dbg.contains("redacted"));
        let secret_hex = NodeKey(*me.secret_bytes()).to_string();
        assert!(!dbg.contains(&secret_hex[..16]));
        assert_eq!(
            Identity::from_secret_bytes(&[0u8; 32], 0).unwrap_err(),
            KeyError::InvalidScalar
        );
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let good = Identity::generate(&mut rng(), NOW).node_id().to_string();
        let key = &good[..64];
        let cases: &[(&str, NodeIdError)] = &[
            ("abc", NodeIdError::MissingSeparator),
            ("abcd:1", NodeIdError::KeyLength(4)),
            (&alloc::format!("{}:", key), NodeIdError::EmptyTimestamp),
            (
                &alloc::format!("{}:01", key),
                NodeIdError::TimestampLeadingZero,
            ),
            (
                &alloc::format!("{}:1g", key),
                NodeIdError::TimestampNotHex(1),
            ),
            (
                &alloc::format!("{}:1A", key),
                NodeIdError::TimestampNotHex(1),
            ),
            (
                &alloc::format!("{}:1{}", key, "0".repeat(16)),
                NodeIdError::TimestampOverflow,
            ),
            (
                &alloc::format!("{}:0", key.to_uppercase()),
                NodeIdError::KeyNotHex(first_letter(key)),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<NodeId>().unwrap_err(), *want, "{text}");
        }
        assert!(alloc::format!("{}:0", key).parse::<NodeId>().is_ok());
    }

    fn first_letter(hex: &str) -> usize {
        hex.bytes().position(|c| c.is_ascii_alphabetic()).unwrap()
    }

    #[test]
    fn x_not_on_curve_is_rejected() {
        // Find an x with no point on the curve by walking small values; about half fail.
        let bad = (0u8..=255)
            .map(|b| {
                let mut x = [0u8; 32];
                x[31] = b;
                NodeKey(x)
            })
            .find(|k| k.public_key().is_err())
            .unwrap();
        let text = alloc::format!("{}:1", bad);
        assert_eq!(text.parse::<NodeId>().unwrap_err(), NodeIdError::NotOnCurve);
        assert_eq!(
            NodeId::from_parts(bad, 1).validate(),
            Err(NodeIdError::NotOnCurve)
        );
    }
}
