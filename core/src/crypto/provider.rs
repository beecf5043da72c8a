//! The crypto provider: the one seam every public-key and AEAD operation goes through, in the
//! spirit of rustls's `CryptoProvider`. Hashing (SHA-256, HKDF) is not behind it: it is cheap and
//! the same everywhere.
//!
//! Two implementations ship: [`RustCrypto`](super::RustCrypto) (p256 + aes-gcm, no_std, the
//! core's default) and, with the `ring` feature, `Ring`. They interoperate byte for
//! byte: keys, shared secrets, signatures and ciphertexts are the same formats.

use super::{CryptoError, KeyPair, VerifyingKey};
use crate::{NodeKey, wire::Signature};

/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

/// Public-key and AEAD operations.
pub trait CryptoProvider: Clone {
    /// An AES-256-GCM key, expanded once and reused for every message.
    type AeadKey: Clone;

    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;

    /// Expands a 32-byte AES-256-GCM key.
    fn aead_key(&self, key: &[u8; 32]) -> Self::AeadKey;

    /// Encrypts `in_out` in place and returns the tag.
    fn seal(
        &self,
        key: &Self::AeadKey,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> [u8; TAG_LEN];

    /// Decrypts `in_out` in place if `tag` authenticates it (and leaves garbage otherwise).
    fn open(
        &self,
        key: &Self::AeadKey,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;

    /// P-256 ECDH: the x-coordinate of `secret · peer`, where `peer` is given by its
    /// x-coordinate (either y gives the same result).
    fn ecdh(&self, secret: &KeyPair, peer: &NodeKey) -> Result<[u8; 32], CryptoError>;

    /// ECDSA P-256 with SHA-256 over `msg`, fixed-size `r || s`. Deterministic (RFC 6979):
    /// signing needs no randomness, so no provider reaches for an OS random source.
    fn sign(&self, key: &KeyPair, msg: &[u8]) -> Signature;

    /// Verifies an ECDSA P-256 / SHA-256 signature.
    fn verify(&self, key: &VerifyingKey, msg: &[u8], sig: &Signature) -> Result<(), CryptoError>;
}

/// Splits an AEAD message into ciphertext and its trailing tag.
pub(crate) fn split_tag(buf: &mut [u8]) -> Result<(&mut [u8], &[u8; TAG_LEN]), CryptoError> {
    let len = buf
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::Truncated)?;
    let (cipher, tag) = buf.split_at_mut(len);
    let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| CryptoError::Truncated)?;
    Ok((cipher, tag))
}
