//! The link handshake and the transport session it ends in.
//!
//! Every link (peer↔peer, node↔relay) runs `Noise_XX_P256_AESGCM_SHA256` with the node's identity
//! key as its static key:
//!
//! ```text
//! initiator                                   responder
//!   -> e                                       (32 bytes)
//!   <- e, ee, s, es, {payload_r}               (32 + 48 + payload + 16)
//!   -> s, se, {payload_i}                      (48 + payload + 16)
//! ```
//!
//! Each payload is a [`HandshakePayload`]: the sender's full node ID, protocol version and
//! capabilities. The static key proven by the handshake must equal the key in the claimed node
//! ID, otherwise the link fails with [`CryptoError::NodeIdMismatch`]; an initiator that dialled a
//! specific node also fails with [`CryptoError::UnexpectedPeer`] if someone else answers.
//!
//! The [`Session`] has one key per direction and implicit 64-bit counter nonces, so the link
//! must be ordered and reliable (WebSocket, reliable ordered data channels): a replayed,
//! reordered, dropped, truncated or tampered record fails to decrypt, and the link is closed.
//! Both sides rekey (Noise `Rekey`) after every [`LinkConfig::rekey_interval`] records in each
//! direction.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use super::{
    CryptoError, CryptoProvider, TAG_LEN,
    noise::{CipherState, HandshakePattern, HandshakeState, P256},
};
use crate::{Identity, NodeId, NodeKey, wire::Version};

/// The prologue that binds every link handshake to this protocol.
const PROLOGUE: &[u8] = b"whispurr/1 link";

/// Largest handshake message: 32 + 48 + payload (≤ 64) + 16.
pub const MAX_HANDSHAKE_LEN: usize = 256;

/// Link settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Capability bits announced in the handshake.
    pub capabilities: u64,
    /// Records per direction between rekeys. Default 2^20.
    pub rekey_interval: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            capabilities: 0,
            rekey_interval: 1 << 20,
        }
    }
}

/// What each side proves about itself inside the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakePayload {
    /// The sender's node ID (its key must be the handshake's static key).
    pub node_id: NodeId,
    /// Protocol version, major and minor.
    pub version: (u8, u8),
    /// Capability bits.
    pub capabilities: u64,
}

/// What the handshake established about the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's authenticated node ID.
    pub node_id: NodeId,
    /// The peer's protocol version.
    pub version: Version,
    /// The peer's capability bits.
    pub capabilities: u64,
    /// The handshake hash: a channel binding both sides share.
    pub handshake_hash: [u8; 32],
}

/// One side of a link handshake. Sans-IO: feed it the peer's messages with
/// [`read_message`](Self::read_message), send what [`write_message`](Self::write_message)
/// produces, and call [`finish`](Self::finish) once [`is_finished`](Self::is_finished).
#[derive(Debug)]
pub struct LinkHandshake<P: CryptoProvider> {
    hs: HandshakeState<P256<P>, P>,
    me: NodeId,
    expected: Option<NodeKey>,
    config: LinkConfig,
    peer: Option<HandshakePayload>,
}

impl<P: CryptoProvider> LinkHandshake<P> {
    /// The dialling side. With `expected`, the handshake fails unless that node answers.
    pub fn initiator<R: CryptoRng + ?Sized>(
        provider: P,
        identity: &Identity,
        expected: Option<NodeKey>,
        config: LinkConfig,
        rng: &mut R,
    ) -> Self {
        Self::new(provider, identity, true, expected, config, rng)
    }

    /// The answering side.
    pub fn responder<R: CryptoRng + ?Sized>(
        provider: P,
        identity: &Identity,
        config: LinkConfig,
        rng: &mut R,
    ) -> Self {
        Self::new(provider, identity, false, None, config, rng)
    }

    fn new<R: CryptoRng + ?Sized>(
        provider: P,
        identity: &Identity,
        initiator: bool,
        expected: Option<NodeKey>,
        config: LinkConfig,
        rng: &mut R,
    ) -> Self {
        let hs = HandshakeState::new(
            P256(provider.clone()),
            provider,
            HandshakePattern::XX,
            initiator,
            PROLOGUE,
            Some(identity.key_pair().clone()),
            None,
            rng,
        )
        .unwrap_or_else(|_| unreachable!("XX with a static key has every key it needs"));
        LinkHandshake {
            hs,
            me: *identity.node_id(),
            expected,
            config,
            peer: None,
        }
    }

    /// Whether the next message is ours to write.
    pub fn wants_to_write(&self) -> bool {
        self.hs.is_my_turn()
    }

    /// Whether all three messages have passed.
    pub fn is_finished(&self) -> bool {
        self.hs.is_finished()
    }

    /// Writes our next handshake message into `out` (at least [`MAX_HANDSHAKE_LEN`] bytes)
    /// and returns its length.
    pub fn write_message(&mut self, out: &mut [u8]) -> Result<usize, CryptoError> {
        let mut payload = [0u8; 64];
        // The first message travels before any key exists: it carries no payload.
        let len = if self.hs.is_my_turn() && self.hs.message_index() > 0 {
            let ours = HandshakePayload {
                node_id: self.me,
                version: (Version::CURRENT.major(), Version::CURRENT.minor()),
                capabilities: self.config.capabilities,
            };
            postcard::to_slice(&ours, &mut payload)
                .map_err(|_| CryptoError::BufferTooSmall)?
                .len()
        } else {
            0
        };
        self.hs.write_message(&payload[..len], out)
    }

    /// Reads the peer's next handshake message, checking its identity claims.
    pub fn read_message(&mut self, message: &[u8]) -> Result<(), CryptoError> {
        let mut payload = [0u8; MAX_HANDSHAKE_LEN];
        let n = self.hs.read_message(message, &mut payload)?;
        if self.hs.remote_static().is_none() {
            // Message 1 carries only the ephemeral key, in the clear.
            return if n == 0 {
                Ok(())
            } else {
                Err(CryptoError::BadPayload)
            };
        }
        let theirs: HandshakePayload =
            postcard::from_bytes(&payload[..n]).map_err(|_| CryptoError::BadPayload)?;
        let proven = self.hs.remote_static().ok_or(CryptoError::MissingKey)?;
        if theirs.node_id.key().0 != *proven {
            return Err(CryptoError::NodeIdMismatch);
        }
        if let Some(expected) = self.expected
            && expected != *theirs.node_id.key()
        {
            return Err(CryptoError::UnexpectedPeer);
        }
        let (major, minor) = theirs.version;
        if major > 15 || minor > 15 || !Version::new(major, minor).is_compatible(Version::CURRENT) {
            return Err(CryptoError::IncompatibleVersion(major, minor));
        }
        self.peer = Some(theirs);
        Ok(())
    }

    /// The transport session and what was learned about the peer.
    pub fn finish(self) -> Result<(Session<P>, PeerInfo), CryptoError> {
        let peer = self.peer.ok_or(CryptoError::OutOfOrder)?;
        let split = self.hs.split()?;
        let info = PeerInfo {
            node_id: peer.node_id,
            version: Version::new(peer.version.0, peer.version.1),
            capabilities: peer.capabilities,
            handshake_hash: *self.hs.handshake_hash(),
        };
        Ok((
            Session {
                send: split.send,
                recv: split.recv,
                rekey_interval: self.config.rekey_interval.max(1),
            },
            info,
        ))
    }
}

/// An established link's transport encryption.
#[derive(Debug)]
pub struct Session<P: CryptoProvider> {
    send: CipherState<P>,
    recv: CipherState<P>,
    rekey_interval: u64,
}

impl<P: CryptoProvider> Session<P> {
    /// Bytes a sealed record adds to its plaintext.
    pub const OVERHEAD: usize = TAG_LEN;

    /// Encrypts `buf[..len]` in place and appends the tag; returns the record length
    /// (`len + 16`). `buf` must have room for it.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, CryptoError> {
        let n = self.send.encrypt_with_ad(&[], buf, len)?;
        if self.send.nonce().is_multiple_of(self.rekey_interval) {
            self.send.rekey();
        }
        Ok(n)
    }

    /// Authenticates and decrypts a record in place; returns the plaintext length (the
    /// plaintext is `buf[..n]`). Any failure means the link must be closed.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<usize, CryptoError> {
        let n = self.recv.decrypt_with_ad(&[], buf)?;
        if self.recv.nonce().is_multiple_of(self.rekey_interval) {
            self.recv.rekey();
        }
        Ok(n)
    }

    /// Records sealed so far (the next send nonce).
    pub fn sent(&self) -> u64 {
        self.send.nonce()
    }

    /// Records opened so far (the next receive nonce).
    pub fn received(&self) -> u64 {
        self.recv.nonce()
    }

    /// Moves both nonces (tests of nonce exhaustion and rekeying).
    #[doc(hidden)]
    pub fn set_nonces_for_tests(&mut self, send: u64, recv: u64) {
        self.send.set_nonce(send);
        self.recv.set_nonce(recv);
    }
}
