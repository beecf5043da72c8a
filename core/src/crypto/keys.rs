//! P-256 key material in the form whispurr uses: key pairs normalised to even y (so the 32-byte
//! x-coordinate alone names the public key), and verifying keys recovered from a [`NodeKey`].

use core::fmt;

use p256::{
    NonZeroScalar, PublicKey,
    ecdsa::SigningKey,
    elliptic_curve::{Generate, point::AffineCoordinates, sec1::ToSec1Point},
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::CryptoError;
use crate::NodeKey;

/// A P-256 key pair whose public point has an even y-coordinate. The secret is zeroized on drop
/// and never shown by `Debug`.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
    public: NodeKey,
}

impl KeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_scalar(NonZeroScalar::generate_from_rng(rng))
    }

    /// The key pair of a 32-byte secret scalar, normalised to even y (the secret may be negated).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Result<Self, CryptoError> {
        let scalar: Option<NonZeroScalar> = NonZeroScalar::from_repr((*secret).into()).into();
        scalar
            .map(Self::from_scalar)
            .ok_or(CryptoError::InvalidPublicKey)
    }

    fn from_scalar(scalar: NonZeroScalar) -> Self {
        // One scalar multiplication, and a second only for the half of keys with odd y.
        let mut signing = SigningKey::from(scalar);
        if bool::from(signing.verifying_key().as_affine().y_is_odd()) {
            signing = SigningKey::from(-scalar);
        }
        let mut x = [0u8; 32];
        x.copy_from_slice(&signing.verifying_key().as_affine().x());
        KeyPair {
            signing,
            public: NodeKey(x),
        }
    }

    /// The public key's x-coordinate.
    pub fn public(&self) -> &NodeKey {
        &self.public
    }

    /// The secret scalar in big-endian bytes.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.signing.to_bytes());
        out
    }

    /// The secret as a scalar, for ECDH.
    pub(crate) fn scalar(&self) -> &NonZeroScalar {
        self.signing.as_nonzero_scalar()
    }

    /// The ECDSA signing key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The full public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.signing.verifying_key())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A public key ready for signature verification: the point recovered from a [`NodeKey`] once
/// (a square root), plus its uncompressed SEC1 encoding for providers that want bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey {
    key: NodeKey,
    point: PublicKey,
    sec1: [u8; 65],
}

impl VerifyingKey {
    /// Recovers the verifying key of `key`; fails if no curve point has that x-coordinate.
    pub fn from_node_key(key: &NodeKey) -> Result<Self, CryptoError> {
        let point = key
            .public_key()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let encoded = point.as_affine().to_sec1_point(false);
        let mut sec1 = [0u8; 65];
        sec1.copy_from_slice(encoded.as_bytes());
        Ok(VerifyingKey {
            key: *key,
            point,
            sec1,
        })
    }

    /// The node key.
    pub fn node_key(&self) -> &NodeKey {
        &self.key
    }

    /// The point.
    pub fn point(&self) -> &PublicKey {
        &self.point
    }

    /// Uncompressed SEC1 bytes (`0x04 || x || y`).
    pub fn sec1_uncompressed(&self) -> &[u8; 65] {
        &self.sec1
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({:?})", self.key)
    }
}
