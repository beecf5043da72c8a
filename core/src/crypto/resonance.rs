//! RESONANCE payload encryption: AES-256-GCM under the intent's [`ResonanceContentKey`], so only
//! nodes that know the intent can read a resonance message or vouch for its fields.
//!
//! The nonce is the first 12 bytes of the random 16-byte message id (ids are unique per
//! message; a 96-bit random nonce is safe far beyond any message count a key will see). The
//! associated data binds **every field the origin sets**: the whole id, the timestamp, the time
//! to live, the hop limit and the strength. Only the hop count (which each forwarder raises)
//! and the per-link tag (which each forwarder derives again) are left out. A forwarder that
//! raises the strength, stretches the time to live or moves the timestamp breaks the tag, and
//! the copy is neither delivered nor forwarded.

use super::{CryptoError, CryptoProvider, TAG_LEN, provider::split_tag};
use crate::{derive::ResonanceContentKey, wire::Route};

/// Bytes encryption adds to a resonance payload.
pub const RESONANCE_OVERHEAD: usize = TAG_LEN;

const LABEL: &[u8; 20] = b"whispurr/1 resonance";
const AAD_LEN: usize = LABEL.len() + 16 + 8 + 4 + 1 + 4;

fn nonce_and_aad(route: &Route, strength: f32) -> ([u8; 12], [u8; AAD_LEN]) {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&route.id.0[..12]);
    let mut aad = [0u8; AAD_LEN];
    let fields = [
        &LABEL[..],
        &route.id.0,
        &route.timestamp.to_be_bytes(),
        &route.ttl_ms.to_be_bytes(),
        &[route.hop_limit],
        &strength.to_bits().to_be_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        aad[at..at + f.len()].copy_from_slice(f);
        at += f.len();
    }
    (nonce, aad)
}

/// Encrypts `buf[..len]` in place and appends the tag; returns `len + 16`. `route` and
/// `strength` are the values the message will carry (the hop count is not bound).
pub fn seal_resonance<P: CryptoProvider>(
    provider: &P,
    content_key: &ResonanceContentKey,
    route: &Route,
    strength: f32,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, CryptoError> {
    let out = buf
        .get_mut(..len + TAG_LEN)
        .ok_or(CryptoError::BufferTooSmall)?;
    let (nonce, aad) = nonce_and_aad(route, strength);
    let (plain, tag_out) = out.split_at_mut(len);
    let aead = provider.aead_key(content_key.as_bytes());
    let tag = provider.seal(&aead, &nonce, &aad, plain);
    tag_out.copy_from_slice(&tag);
    Ok(len + TAG_LEN)
}

/// Decrypts a resonance payload in place; returns the plaintext length. Fails with
/// [`CryptoError::Decrypt`] for a wrong intent or any change to the payload or to a bound
/// field.
pub fn open_resonance<P: CryptoProvider>(
    provider: &P,
    content_key: &ResonanceContentKey,
    route: &Route,
    strength: f32,
    buf: &mut [u8],
) -> Result<usize, CryptoError> {
    let (cipher, tag) = split_tag(buf)?;
    let len = cipher.len();
    let (nonce, aad) = nonce_and_aad(route, strength);
    let aead = provider.aead_key(content_key.as_bytes());
    provider.open(&aead, &nonce, &aad, cipher, tag)?;
    Ok(len)
}
