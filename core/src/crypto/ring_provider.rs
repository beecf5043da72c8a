//! The ring provider (std): ring's P-256 ECDSA verification and AES-256-GCM, the operations on
//! the receive hot path (≈38 µs against ≈145 µs for a verify on this project's machines).
//!
//! Two operations stay on RustCrypto, for reasons of ring's API rather than speed:
//! - **Signing**: ring's ECDSA signer draws its nonce from ring's own sealed `SecureRandom`,
//!   which is the OS random source, and the core never reads one. RustCrypto signs
//!   deterministically (RFC 6979), and signing happens once per own publish, not per receive.
//! - **ECDH**: ring only offers single-use ephemeral agreement; Noise needs static-key DH and
//!   reuses the ephemeral key (`ee` and `es`), so key agreement cannot go through ring.

use ring::{aead, signature};

use super::{CryptoError, CryptoProvider, KeyPair, RustCrypto, TAG_LEN, VerifyingKey};
use crate::{NodeKey, wire::Signature};

/// The ring provider.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ring;

/// An expanded ring AES-256-GCM key.
#[derive(Clone)]
pub struct RingAeadKey(aead::LessSafeKey);

impl CryptoProvider for Ring {
    type AeadKey = RingAeadKey;

    fn name(&self) -> &'static str {
        "ring"
    }

    fn aead_key(&self, key: &[u8; 32]) -> RingAeadKey {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is valid for AES-256-GCM"));
        RingAeadKey(aead::LessSafeKey::new(unbound))
    }

    fn seal(&self, key: &RingAeadKey, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> [u8; 16] {
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        let mut out = [0u8; TAG_LEN];
        // ring only fails for inputs beyond AES-GCM's length limit (64 GiB).
        if let Ok(tag) = key
            .0
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), in_out)
        {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    fn open(
        &self,
        key: &RingAeadKey,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        let tag = aead::Tag::from(*tag);
        key.0
            .open_in_place_separate_tag(nonce, aead::Aad::from(aad), tag, in_out, 0..)
            .map(|_| ())
            .map_err(|_| CryptoError::Decrypt)
    }

    fn ecdh(&self, secret: &KeyPair, peer: &NodeKey) -> Result<[u8; 32], CryptoError> {
        RustCrypto.ecdh(secret, peer)
    }

    fn sign(&self, key: &KeyPair, msg: &[u8]) -> Signature {
        RustCrypto.sign(key, msg)
    }

    fn verify(&self, key: &VerifyingKey, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            key.sec1_uncompressed(),
        )
        .verify(msg, &sig.0)
        .map_err(|_| CryptoError::BadSignature)
    }
}
