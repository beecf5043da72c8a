//! Sealed whispers: end-to-end encryption to a node ID for messages that travel through relays
//! or other peers. One Noise `X` message (`Noise_X_P256_AESGCM_SHA256`):
//!
//! ```text
//! e (32) | encrypted sender static key (32 + 16) | encrypted plaintext (n + 16)
//! ```
//!
//! Intermediaries see only ciphertext; the recipient learns the sender's key and knows it is
//! authentic (the `ss` DH proves it). The outer message id is bound into the prologue, so a
//! sealed box cannot be lifted into another message. X has no replay protection of its own:
//! the receiver's seen-set of message ids provides it.

use rand_core::CryptoRng;

use super::{
    CryptoError, CryptoProvider, KeyPair,
    noise::{HandshakePattern, HandshakeState, P256},
};
use crate::{NodeKey, wire::MessageId};

/// Bytes a sealed box adds to its plaintext: 32 + 48 + 16.
pub const SEAL_OVERHEAD: usize = 96;

fn prologue(id: &MessageId) -> [u8; 36] {
    let mut p = [0u8; 36];
    p[..20].copy_from_slice(b"whispurr/1 whisper  ");
    p[20..].copy_from_slice(&id.0);
    p
}

/// Seals `plaintext` from `sender` to `recipient` for message `id` into `out`; returns the
/// sealed length (`plaintext.len() + SEAL_OVERHEAD`).
pub fn seal<P: CryptoProvider, R: CryptoRng + ?Sized>(
    provider: &P,
    rng: &mut R,
    sender: &KeyPair,
    recipient: &NodeKey,
    id: &MessageId,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let mut hs = HandshakeState::new(
        P256(provider.clone()),
        provider.clone(),
        HandshakePattern::X,
        true,
        &prologue(id),
        Some(sender.clone()),
        Some(recipient.0),
        rng,
    )?;
    hs.write_message(plaintext, out)
}

/// Opens a sealed box addressed to `recipient`; writes the plaintext into `out` and returns the
/// sender's key and the plaintext length.
pub fn open<P: CryptoProvider>(
    provider: &P,
    recipient: &KeyPair,
    id: &MessageId,
    sealed: &[u8],
    out: &mut [u8],
) -> Result<(NodeKey, usize), CryptoError> {
    let mut hs = HandshakeState::new_one_way_responder(
        P256(provider.clone()),
        provider.clone(),
        HandshakePattern::X,
        &prologue(id),
        recipient.clone(),
    )?;
    let n = hs.read_message(sealed, out)?;
    let sender = hs.remote_static().ok_or(CryptoError::MissingKey)?;
    Ok((NodeKey(*sender), n))
}
