//! The Noise protocol framework (revision 34) state objects, generic over the DH function:
//! [`CipherState`], [`SymmetricState`] and [`HandshakeState`], with the AESGCM cipher and SHA256
//! hash. whispurr runs them on P-256 ([`P256`]); the tests run them on X25519 against the
//! published cacophony vectors, which is how we know the state machine is right.
//!
//! P-256 public keys are 32-byte x-coordinates of points with even y, and the DH output is the
//! x-coordinate of the shared point, so `DHLEN` is 32 for every DH here.

mod cipher;
mod handshake;
mod pattern;
mod symmetric;

use rand_core::CryptoRng;

pub use cipher::CipherState;
pub use handshake::{HandshakeState, Split};
pub use pattern::{HandshakePattern, Token};
pub use symmetric::SymmetricState;

use super::{CryptoError, CryptoProvider, KeyPair};
use crate::NodeKey;

/// Length of public keys and DH outputs.
pub const DHLEN: usize = 32;
/// Length of a SHA-256 hash.
pub const HASHLEN: usize = 32;
/// Largest Noise message, handshake or transport (Noise §3). A conformant peer refuses anything
/// larger, so nothing larger is ever sealed or opened: transport messages are checked in
/// [`CipherState`], handshake messages in [`HandshakeState`].
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// A Diffie-Hellman function for Noise.
pub trait Dh {
    /// A private key (zeroized on drop by the implementation).
    type Secret: Clone;

    /// The name in protocol names, e.g. `"25519"` or `"P256"`.
    const NAME: &'static str;

    /// Generates a key pair.
    fn generate<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Self::Secret;

    /// A private key from 32 bytes (fixed keys for tests and persisted identities).
    fn secret_from_bytes(&self, bytes: &[u8; 32]) -> Result<Self::Secret, CryptoError>;

    /// The public key of `secret`.
    fn public(&self, secret: &Self::Secret) -> [u8; DHLEN];

    /// `DH(secret, public)`; fails on an invalid public key.
    fn dh(&self, secret: &Self::Secret, public: &[u8; DHLEN]) -> Result<[u8; DHLEN], CryptoError>;
}

/// P-256 DH through a [`CryptoProvider`]. Key pairs are normalised to even y, public keys are
/// x-coordinates.
#[derive(Clone, Copy, Debug, Default)]
pub struct P256<P>(pub P);

impl<P: CryptoProvider> Dh for P256<P> {
    type Secret = KeyPair;
    const NAME: &'static str = "P256";

    fn generate<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> KeyPair {
        KeyPair::generate(rng)
    }

    fn secret_from_bytes(&self, bytes: &[u8; 32]) -> Result<KeyPair, CryptoError> {
        KeyPair::from_secret_bytes(bytes)
    }

    fn public(&self, secret: &KeyPair) -> [u8; DHLEN] {
        secret.public().0
    }

    fn dh(&self, secret: &KeyPair, public: &[u8; DHLEN]) -> Result<[u8; DHLEN], CryptoError> {
        self.0.ecdh(secret, &NodeKey(*public))
    }
}
