//! The pure-Rust provider: p256 for ECDH and ECDSA, aes-gcm for AES-256-GCM. no_std.

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{AeadInOut, Nonce},
};
use p256::{
    ecdh::diffie_hellman,
    ecdsa::{
        self,
        signature::{Signer, Verifier},
    },
};

use super::{CryptoError, CryptoProvider, KeyPair, TAG_LEN, VerifyingKey};
use crate::{NodeKey, wire::Signature};

/// The RustCrypto provider (p256 0.14, aes-gcm 0.11).
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

impl CryptoProvider for RustCrypto {
    type AeadKey = Aes256Gcm;

    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn aead_key(&self, key: &[u8; 32]) -> Aes256Gcm {
        Aes256Gcm::new(key.into())
    }

    fn seal(&self, key: &Aes256Gcm, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> [u8; 16] {
        let nonce = Nonce::<Aes256Gcm>::from(*nonce);
        // Only fails for inputs over 64 GiB, which no whispurr buffer reaches.
        let tag = key
            .encrypt_inout_detached(&nonce, aad, in_out.into())
            .unwrap_or_default();
        tag.into()
    }

    fn open(
        &self,
        key: &Aes256Gcm,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let nonce = Nonce::<Aes256Gcm>::from(*nonce);
        key.decrypt_inout_detached(&nonce, aad, in_out.into(), &(*tag).into())
            .map_err(|_| CryptoError::Decrypt)
    }

    fn ecdh(&self, secret: &KeyPair, peer: &NodeKey) -> Result<[u8; 32], CryptoError> {
        let point = peer
            .public_key()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = diffie_hellman(secret.scalar(), point.as_affine());
        let mut out = [0u8; 32];
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }

    fn sign(&self, key: &KeyPair, msg: &[u8]) -> Signature {
        let sig: ecdsa::Signature = key.signing_key().sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        Signature(out)
    }

    fn verify(&self, key: &VerifyingKey, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        let sig = ecdsa::Signature::from_slice(&sig.0).map_err(|_| CryptoError::BadSignature)?;
        ecdsa::VerifyingKey::from(key.point())
            .verify(msg, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}
