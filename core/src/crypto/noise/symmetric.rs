//! SymmetricState (Noise §5.2): the chaining key, the handshake hash and a CipherState.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CipherState, HASHLEN};
use crate::crypto::{CryptoError, CryptoProvider, TAG_LEN};

/// Noise SymmetricState with SHA-256.
#[derive(Clone)]
pub struct SymmetricState<P: CryptoProvider> {
    ck: Zeroizing<[u8; HASHLEN]>,
    h: [u8; HASHLEN],
    cipher: CipherState<P>,
}

/// Noise's `HKDF(ck, ikm, n)` for n = 2: RFC 5869 HKDF with salt `ck` and empty info.
pub(crate) fn hkdf2(ck: &[u8; HASHLEN], ikm: &[u8]) -> Zeroizing<[u8; 2 * HASHLEN]> {
    let mut out = Zeroizing::new([0u8; 2 * HASHLEN]);
    Hkdf::<Sha256>::new(Some(ck), ikm)
        .expand(&[], &mut out[..])
        .unwrap_or_else(|_| unreachable!("64 bytes is within HKDF-SHA256's limit"));
    out
}

impl<P: CryptoProvider> SymmetricState<P> {
    /// `InitializeSymmetric(protocol_name)`.
    pub fn new(provider: P, protocol_name: &[u8]) -> Self {
        let mut h = [0u8; HASHLEN];
        if protocol_name.len() <= HASHLEN {
            h[..protocol_name.len()].copy_from_slice(protocol_name);
        } else {
            h.copy_from_slice(&Sha256::digest(protocol_name));
        }
        SymmetricState {
            ck: Zeroizing::new(h),
            h,
            cipher: CipherState::empty(provider),
        }
    }

    /// `MixKey(ikm)`.
    pub fn mix_key(&mut self, ikm: &[u8]) {
        let out = hkdf2(&self.ck, ikm);
        self.ck.copy_from_slice(&out[..HASHLEN]);
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&out[HASHLEN..]);
        self.cipher.initialize_key(&k);
    }

    /// `MixHash(data)`.
    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    /// The handshake hash `h`.
    pub fn handshake_hash(&self) -> &[u8; HASHLEN] {
        &self.h
    }

    /// Whether the cipher has a key yet.
    pub fn has_key(&self) -> bool {
        self.cipher.has_key()
    }

    /// `EncryptAndHash`: encrypts `buf[..len]` in place (appending a tag once keyed) and mixes
    /// the ciphertext into `h`. Returns the ciphertext length.
    pub fn encrypt_and_hash(&mut self, buf: &mut [u8], len: usize) -> Result<usize, CryptoError> {
        let n = self.cipher.encrypt_with_ad(&self.h, buf, len)?;
        self.mix_hash(&buf[..n]);
        Ok(n)
    }

    /// `DecryptAndHash`: decrypts `buf` in place and mixes the ciphertext into `h`. Returns the
    /// plaintext length. On failure `h` is unchanged.
    pub fn decrypt_and_hash(&mut self, buf: &mut [u8]) -> Result<usize, CryptoError> {
        let next_h: [u8; HASHLEN] = Sha256::new()
            .chain_update(self.h)
            .chain_update(&*buf)
            .finalize()
            .into();
        let n = self.cipher.decrypt_with_ad(&self.h, buf)?;
        self.h = next_h;
        Ok(n)
    }

    /// Bytes `encrypt_and_hash` adds to a plaintext right now.
    pub fn overhead(&self) -> usize {
        if self.has_key() { TAG_LEN } else { 0 }
    }

    /// `Split()`: the initiator-to-responder and responder-to-initiator CipherStates.
    pub fn split(&self) -> (CipherState<P>, CipherState<P>) {
        let out = hkdf2(&self.ck, &[]);
        let provider = self.cipher_provider();
        let mut c1 = CipherState::empty(provider.clone());
        let mut c2 = CipherState::empty(provider);
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&out[..HASHLEN]);
        c1.initialize_key(&k);
        k.copy_from_slice(&out[HASHLEN..]);
        c2.initialize_key(&k);
        (c1, c2)
    }

    fn cipher_provider(&self) -> P {
        self.cipher.provider().clone()
    }
}
