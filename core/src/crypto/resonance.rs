//! RESONANCE payload encryption: AES-256-GCM under the intent's
//! [`ResonanceContentKey`], so only nodes that know the intent can read a resonance message,
//! while forwarders route on the public [`ResonanceKey`] alone.
//!
//! The nonce is the first 12 bytes of the random 16-byte message id (ids are unique per
//! message; a 96-bit random nonce is safe far beyond any message count a key will see). The
//! associated data binds the resonance key and the whole id.

use super::{CryptoError, CryptoProvider, TAG_LEN, provider::split_tag};
use crate::{
    derive::{ResonanceContentKey, ResonanceKey},
    wire::MessageId,
};

/// Bytes encryption adds to a resonance payload.
pub const RESONANCE_OVERHEAD: usize = TAG_LEN;

fn nonce_and_aad(key: &ResonanceKey, id: &MessageId) -> ([u8; 12], [u8; 68]) {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&id.0[..12]);
    let mut aad = [0u8; 68];
    aad[..20].copy_from_slice(b"whispurr/1 resonance");
    aad[20..52].copy_from_slice(&key.0);
    aad[52..].copy_from_slice(&id.0);
    (nonce, aad)
}

/// Encrypts `buf[..len]` in place and appends the tag; returns `len + 16`.
pub fn seal_resonance<P: CryptoProvider>(
    provider: &P,
    content_key: &ResonanceContentKey,
    key: &ResonanceKey,
    id: &MessageId,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, CryptoError> {
    let out = buf
        .get_mut(..len + TAG_LEN)
        .ok_or(CryptoError::BufferTooSmall)?;
    let (nonce, aad) = nonce_and_aad(key, id);
    let (plain, tag_out) = out.split_at_mut(len);
    let aead = provider.aead_key(content_key.as_bytes());
    let tag = provider.seal(&aead, &nonce, &aad, plain);
    tag_out.copy_from_slice(&tag);
    Ok(len + TAG_LEN)
}

/// Decrypts a resonance payload in place; returns the plaintext length. Fails with
/// [`CryptoError::Decrypt`] for a wrong intent or any tampering.
pub fn open_resonance<P: CryptoProvider>(
    provider: &P,
    content_key: &ResonanceContentKey,
    key: &ResonanceKey,
    id: &MessageId,
    buf: &mut [u8],
) -> Result<usize, CryptoError> {
    let (cipher, tag) = split_tag(buf)?;
    let len = cipher.len();
    let (nonce, aad) = nonce_and_aad(key, id);
    let aead = provider.aead_key(content_key.as_bytes());
    provider.open(&aead, &nonce, &aad, cipher, tag)?;
    Ok(len)
}
