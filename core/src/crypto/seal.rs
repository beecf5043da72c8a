//! Sealed whispers: end-to-end encryption to a node ID for messages that travel through relays
//! or other peers. One Noise `X` message (`Noise_X_P256_AESGCM_SHA256`):
//!
//! ```text
//! e (32) | encrypted sender static key (32 + 16) | encrypted plaintext (n + 16)
//! ```
//!
//! Intermediaries see only ciphertext: the whole frame is the plaintext, message id included,
//! so a relay carrying the box learns no id it could match against anything (nor lift the box
//! into another message). The recipient learns the sender's key and knows it is authentic (the
//! `ss` DH proves it). X has no replay protection of its own: the receiver's seen-set of message
//! ids provides it.

use rand_core::CryptoRng;

use super::{
    CryptoError, CryptoProvider, KeyPair,
    noise::{HandshakePattern, HandshakeState, P256},
};
use crate::NodeKey;

/// Bytes a sealed box adds to its plaintext: 32 + 48 + 16.
pub const SEAL_OVERHEAD: usize = 96;

/// Domain separation of sealed boxes from every other use of the Noise state objects.
const PROLOGUE: &[u8] = b"whispurr/1 sealed";

/// Seals `plaintext` from `sender` to `recipient` into `out`; returns the sealed length
/// (`plaintext.len() + SEAL_OVERHEAD`).
pub fn seal<P: CryptoProvider, R: CryptoRng + ?Sized>(
    provider: &P,
    rng: &mut R,
    sender: &KeyPair,
    recipient: &NodeKey,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let mut hs = HandshakeState::new(
        P256(provider.clone()),
        provider.clone(),
        HandshakePattern::X,
        true,
        PROLOGUE,
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
    sealed: &[u8],
    out: &mut [u8],
) -> Result<(NodeKey, usize), CryptoError> {
    let mut hs = HandshakeState::new_one_way_responder(
        P256(provider.clone()),
        provider.clone(),
        HandshakePattern::X,
        PROLOGUE,
        recipient.clone(),
    )?;
    let n = hs.read_message(sealed, out)?;
    let sender = hs.remote_static().ok_or(CryptoError::MissingKey)?;
    Ok((NodeKey(*sender), n))
}
