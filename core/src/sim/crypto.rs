//! A crypto provider for simulation only. Key agreement is replaced by a hash of the two public
//! keys — symmetric, deterministic and about 25× cheaper than P-256 ECDH — so thousands of
//! simulated handshakes cost milliseconds instead of seconds. It is **not secure** (anyone who
//! knows both public keys can compute the "shared secret") and exists only behind the `sim`
//! feature. Everything else (AEAD, signatures, key generation) is the real RustCrypto code.

use sha2::{Digest, Sha256};

use crate::{
    NodeKey,
    crypto::{CryptoError, CryptoProvider, KeyPair, RustCrypto, TAG_LEN, VerifyingKey},
    wire::Signature,
};

/// The simulation provider (see the module docs: insecure by design).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimCrypto;

impl CryptoProvider for SimCrypto {
    type AeadKey = <RustCrypto as CryptoProvider>::AeadKey;

    fn name(&self) -> &'static str {
        "sim"
    }

    fn aead_key(&self, key: &[u8; 32]) -> Self::AeadKey {
        RustCrypto.aead_key(key)
    }

    fn seal(
        &self,
        key: &Self::AeadKey,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> [u8; TAG_LEN] {
        RustCrypto.seal(key, nonce, aad, in_out)
    }

    fn open(
        &self,
        key: &Self::AeadKey,
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        RustCrypto.open(key, nonce, aad, in_out, tag)
    }

    fn ecdh(&self, secret: &KeyPair, peer: &NodeKey) -> Result<[u8; 32], CryptoError> {
        let (a, b) = (secret.public().0, peer.0);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Ok(Sha256::new()
            .chain_update(b"whispurr sim dh")
            .chain_update(lo)
            .chain_update(hi)
            .finalize()
            .into())
    }

    fn sign(&self, key: &KeyPair, msg: &[u8]) -> Signature {
        RustCrypto.sign(key, msg)
    }

    fn verify(&self, key: &VerifyingKey, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        RustCrypto.verify(key, msg, sig)
    }
}
