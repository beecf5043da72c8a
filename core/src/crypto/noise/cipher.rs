//! CipherState (Noise §5.1): a key and a 64-bit counter nonce, AES-256-GCM with the nonce
//! encoded as 32 zero bits followed by the big-endian counter.

use core::fmt;

use super::{
    super::{CryptoError, CryptoProvider, TAG_LEN, provider::split_tag},
    MAX_MESSAGE_LEN,
};

/// Noise CipherState over a provider's AES-256-GCM.
#[derive(Clone)]
pub struct CipherState<P: CryptoProvider> {
    provider: P,
    key: Option<P::AeadKey>,
    n: u64,
}

impl<P: CryptoProvider> fmt::Debug for CipherState<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CipherState")
            .field("has_key", &self.key.is_some())
            .field("n", &self.n)
            .finish()
    }
}

fn nonce_bytes(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    nonce
}

impl<P: CryptoProvider> CipherState<P> {
    /// An empty CipherState (no key: encryption is the identity).
    pub fn empty(provider: P) -> Self {
        CipherState {
            provider,
            key: None,
            n: 0,
        }
    }

    /// `InitializeKey(k)`: sets the key and resets the nonce.
    pub fn initialize_key(&mut self, key: &[u8; 32]) {
        self.key = Some(self.provider.aead_key(key));
        self.n = 0;
    }

    /// The provider this state encrypts with.
    pub(crate) fn provider(&self) -> &P {
        &self.provider
    }

    /// `HasKey()`.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The next nonce.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// `SetNonce(n)`.
    pub fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    /// `EncryptWithAd`: encrypts `buf[..len]` in place and appends the tag, returning
    /// `len + 16`. Without a key the plaintext is left as is and `len` is returned.
    pub fn encrypt_with_ad(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, CryptoError> {
        if len + TAG_LEN > MAX_MESSAGE_LEN {
            return Err(CryptoError::MessageTooLarge(len + TAG_LEN));
        }
        let Some(key) = &self.key else {
            return if len <= buf.len() {
                Ok(len)
            } else {
                Err(CryptoError::BufferTooSmall)
            };
        };
        if self.n == u64::MAX {
            return Err(CryptoError::NonceExhausted);
        }
        let out = buf
            .get_mut(..len + TAG_LEN)
            .ok_or(CryptoError::BufferTooSmall)?;
        let (plain, tag_out) = out.split_at_mut(len);
        let tag = self.provider.seal(key, &nonce_bytes(self.n), ad, plain);
        tag_out.copy_from_slice(&tag);
        self.n += 1;
        Ok(len + TAG_LEN)
    }

    /// `DecryptWithAd`: authenticates and decrypts `buf` (ciphertext and tag) in place, returning
    /// the plaintext length. On failure the nonce does not advance.
    pub fn decrypt_with_ad(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<usize, CryptoError> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(CryptoError::MessageTooLarge(buf.len()));
        }
        let Some(key) = &self.key else {
            return Ok(buf.len());
        };
        if self.n == u64::MAX {
            return Err(CryptoError::NonceExhausted);
        }
        let (cipher, tag) = split_tag(buf)?;
        let len = cipher.len();
        self.provider
            .open(key, &nonce_bytes(self.n), ad, cipher, tag)?;
        self.n += 1;
        Ok(len)
    }

    /// `Rekey()`: the new key is the first 32 bytes of encrypting 32 zero bytes with nonce
    /// 2^64−1. The nonce is not reset.
    pub fn rekey(&mut self) {
        if let Some(key) = &self.key {
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            let _tag = self
                .provider
                .seal(key, &nonce_bytes(u64::MAX), &[], &mut k[..]);
            self.key = Some(self.provider.aead_key(&k));
        }
    }
}
