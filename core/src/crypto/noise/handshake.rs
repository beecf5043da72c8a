//! HandshakeState (Noise §5.3): runs a [`HandshakePattern`] message by message, writing into and
//! reading from caller-owned buffers, and splits into two CipherStates at the end.
//!
//! Any error is fatal: the handshake must be abandoned (its state is no longer meaningful).

use alloc::format;
use core::fmt;

use rand_core::CryptoRng;

use super::{CipherState, DHLEN, Dh, HandshakePattern, MAX_MESSAGE_LEN, SymmetricState, Token};
use crate::crypto::{CryptoError, CryptoProvider, TAG_LEN};

/// Noise HandshakeState for the AESGCM cipher and SHA256 hash.
pub struct HandshakeState<D: Dh, P: CryptoProvider> {
    dh: D,
    sym: SymmetricState<P>,
    pattern: HandshakePattern,
    initiator: bool,
    s: Option<D::Secret>,
    e: Option<D::Secret>,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
    index: usize,
}

impl<D: Dh, P: CryptoProvider> fmt::Debug for HandshakeState<D, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeState")
            .field("pattern", &self.pattern.name)
            .field("initiator", &self.initiator)
            .field("message", &self.index)
            .finish_non_exhaustive()
    }
}

/// The two CipherStates of a finished handshake, oriented for this side.
#[derive(Debug)]
pub struct Split<P: CryptoProvider> {
    /// Encrypts what this side sends.
    pub send: CipherState<P>,
    /// Decrypts what this side receives.
    pub recv: CipherState<P>,
}

impl<D: Dh, P: CryptoProvider> HandshakeState<D, P> {
    /// `Initialize`: a handshake of `pattern` in the given role with the `prologue`, our static
    /// key `s` (if the pattern sends one) and the peer's static key `rs` (if known in advance).
    /// The ephemeral key, if this role sends one, is generated from `rng` now.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: CryptoRng + ?Sized>(
        dh: D,
        provider: P,
        pattern: HandshakePattern,
        initiator: bool,
        prologue: &[u8],
        s: Option<D::Secret>,
        rs: Option<[u8; DHLEN]>,
        rng: &mut R,
    ) -> Result<Self, CryptoError> {
        let e = sends(&pattern, initiator, Token::E).then(|| dh.generate(rng));
        Self::init(dh, provider, pattern, initiator, prologue, s, rs, e)
    }

    /// `Initialize` for the receiving side of a one-way pattern (N, X), which has no ephemeral
    /// key and so needs no randomness.
    pub fn new_one_way_responder(
        dh: D,
        provider: P,
        pattern: HandshakePattern,
        prologue: &[u8],
        s: D::Secret,
    ) -> Result<Self, CryptoError> {
        if !pattern.is_one_way() {
            return Err(CryptoError::OutOfOrder);
        }
        Self::init(dh, provider, pattern, false, prologue, Some(s), None, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn init(
        dh: D,
        provider: P,
        pattern: HandshakePattern,
        initiator: bool,
        prologue: &[u8],
        s: Option<D::Secret>,
        rs: Option<[u8; DHLEN]>,
        e: Option<D::Secret>,
    ) -> Result<Self, CryptoError> {
        let name = format!("Noise_{}_{}_AESGCM_SHA256", pattern.name, D::NAME);
        let mut sym = SymmetricState::new(provider, name.as_bytes());
        sym.mix_hash(prologue);
        if pattern.responder_static_known {
            let key = if initiator {
                rs.ok_or(CryptoError::MissingKey)?
            } else {
                dh.public(s.as_ref().ok_or(CryptoError::MissingKey)?)
            };
            sym.mix_hash(&key);
        }
        if sends(&pattern, initiator, Token::S) && s.is_none() {
            return Err(CryptoError::MissingKey);
        }
        Ok(HandshakeState {
            dh,
            sym,
            pattern,
            initiator,
            s,
            e,
            rs,
            re: None,
            index: 0,
        })
    }

    /// Replaces the ephemeral key before the first message. Only for reproducing published test
    /// vectors: a fixed ephemeral key destroys forward secrecy.
    #[doc(hidden)]
    pub fn set_ephemeral_for_test_vectors(&mut self, e: D::Secret) {
        self.e = Some(e);
    }

    /// Whether the next message is ours to write.
    pub fn is_my_turn(&self) -> bool {
        !self.is_finished() && self.index.is_multiple_of(2) == self.initiator
    }

    /// How many handshake messages have been written or read.
    pub fn message_index(&self) -> usize {
        self.index
    }

    /// Whether every message of the pattern has been written or read.
    pub fn is_finished(&self) -> bool {
        self.index >= self.pattern.messages.len()
    }

    /// The peer's static public key, once received (or given in advance).
    pub fn remote_static(&self) -> Option<&[u8; DHLEN]> {
        self.rs.as_ref()
    }

    /// The handshake hash `h` (a channel binding once finished).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        self.sym.handshake_hash()
    }

    fn mix_dh(&mut self, token: Token) -> Result<(), CryptoError> {
        let missing = CryptoError::MissingKey;
        let (mine, theirs) = match (token, self.initiator) {
            (Token::EE, _) => (self.e.as_ref(), self.re.as_ref()),
            (Token::ES, true) | (Token::SE, false) => (self.e.as_ref(), self.rs.as_ref()),
            (Token::ES, false) | (Token::SE, true) => (self.s.as_ref(), self.re.as_ref()),
            (Token::SS, _) => (self.s.as_ref(), self.rs.as_ref()),
            (Token::E | Token::S, _) => return Ok(()),
        };
        let shared =
            zeroize::Zeroizing::new(self.dh.dh(mine.ok_or(missing)?, theirs.ok_or(missing)?)?);
        self.sym.mix_key(&shared[..]);
        Ok(())
    }

    /// `WriteMessage`: writes the next handshake message carrying `payload` into `out` and
    /// returns its length.
    pub fn write_message(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        if !self.is_my_turn() {
            return Err(CryptoError::OutOfOrder);
        }
        let mut pos = 0;
        for &token in self.pattern.messages[self.index] {
            match token {
                Token::E => {
                    let e = self.e.as_ref().ok_or(CryptoError::MissingKey)?;
                    let public = self.dh.public(e);
                    put(out, pos, &public)?;
                    self.sym.mix_hash(&public);
                    pos += DHLEN;
                }
                Token::S => {
                    let s = self.s.as_ref().ok_or(CryptoError::MissingKey)?;
                    let public = self.dh.public(s);
                    put(out, pos, &public)?;
                    pos += self.sym.encrypt_and_hash(&mut out[pos..], DHLEN)?;
                }
                dh => self.mix_dh(dh)?,
            }
        }
        put(out, pos, payload)?;
        pos += self.sym.encrypt_and_hash(&mut out[pos..], payload.len())?;
        if pos > MAX_MESSAGE_LEN {
            return Err(CryptoError::BufferTooSmall);
        }
        self.index += 1;
        Ok(pos)
    }

    /// `ReadMessage`: reads the peer's next handshake message and writes its payload into
    /// `payload_out`, returning the payload length.
    pub fn read_message(
        &mut self,
        message: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        if self.is_finished() || self.is_my_turn() {
            return Err(CryptoError::OutOfOrder);
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(CryptoError::BufferTooSmall);
        }
        let mut pos = 0;
        for &token in self.pattern.messages[self.index] {
            match token {
                Token::E => {
                    let re: [u8; DHLEN] = take(message, pos, DHLEN)?
                        .try_into()
                        .map_err(|_| CryptoError::Truncated)?;
                    self.sym.mix_hash(&re);
                    self.re = Some(re);
                    pos += DHLEN;
                }
                Token::S => {
                    let len = DHLEN + self.sym.overhead();
                    let mut tmp = [0u8; DHLEN + TAG_LEN];
                    tmp[..len].copy_from_slice(take(message, pos, len)?);
                    self.sym.decrypt_and_hash(&mut tmp[..len])?;
                    let mut rs = [0u8; DHLEN];
                    rs.copy_from_slice(&tmp[..DHLEN]);
                    self.rs = Some(rs);
                    pos += len;
                }
                dh => self.mix_dh(dh)?,
            }
        }
        let rest = &message[pos..];
        if rest.len() < self.sym.overhead() {
            return Err(CryptoError::Truncated);
        }
        let buf = payload_out
            .get_mut(..rest.len())
            .ok_or(CryptoError::BufferTooSmall)?;
        buf.copy_from_slice(rest);
        let n = self.sym.decrypt_and_hash(buf)?;
        self.index += 1;
        Ok(n)
    }

    /// `Split()`, oriented for this side. Fails until the handshake is finished.
    pub fn split(&self) -> Result<Split<P>, CryptoError> {
        if !self.is_finished() {
            return Err(CryptoError::OutOfOrder);
        }
        let (c1, c2) = self.sym.split();
        Ok(if self.initiator {
            Split { send: c1, recv: c2 }
        } else {
            Split { send: c2, recv: c1 }
        })
    }
}

fn put(out: &mut [u8], pos: usize, data: &[u8]) -> Result<(), CryptoError> {
    out.get_mut(pos..pos + data.len())
        .ok_or(CryptoError::BufferTooSmall)?
        .copy_from_slice(data);
    Ok(())
}

fn take(message: &[u8], pos: usize, len: usize) -> Result<&[u8], CryptoError> {
    message.get(pos..pos + len).ok_or(CryptoError::Truncated)
}

/// Whether the given role writes `token` in some message of `pattern`.
fn sends(pattern: &HandshakePattern, initiator: bool, token: Token) -> bool {
    pattern
        .messages
        .iter()
        .enumerate()
        .any(|(i, m)| i.is_multiple_of(2) == initiator && m.contains(&token))
}
