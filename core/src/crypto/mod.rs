//! Cryptography: authenticated links, sealed whispers, signed broadcasts, resonance content.
//!
//! - [`provider`]: every public-key and AEAD operation goes through [`CryptoProvider`], with a
//!   pure-Rust [`RustCrypto`] implementation (no_std, the default) and, with the `ring` feature,
//!   `Ring` (`ring_provider::Ring`) for std targets.
//! - [`noise`]: the Noise protocol framework's state objects (CipherState, SymmetricState,
//!   HandshakeState), generic over the DH function and checked against the published cacophony
//!   vectors; whispurr runs them on P-256 with AES-256-GCM and SHA-256.
//! - [`link`]: the link handshake (Noise XX) that binds a link to the peer's node ID, and the
//!   transport [`Session`](link::Session) it ends in (per-direction keys, counter nonces, rekey).
//! - [`seal`]: end-to-end whispers for nodes without a direct link (one-way Noise X).
//! - [`sign`]: ECDSA P-256 origin signatures of broadcasts.
//! - [`resonance`]: RESONANCE payloads encrypted under the intent's content key.

mod error;
mod keys;
pub mod link;
pub mod noise;
pub mod provider;
pub mod resonance;
#[cfg(feature = "ring")]
pub mod ring_provider;
mod rustcrypto;
pub mod seal;
pub mod sign;

pub use error::CryptoError;
pub use keys::{KeyPair, VerifyingKey};
pub use noise::MAX_MESSAGE_LEN;
pub use provider::{CryptoProvider, TAG_LEN};
#[cfg(feature = "ring")]
pub use ring_provider::Ring;
pub use rustcrypto::RustCrypto;
