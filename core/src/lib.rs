//! # whispurr-core
//!
//! The sans-IO heart of whispurr, a privacy-first peer-to-peer messaging layer. This crate never
//! touches a socket, a clock, an OS random source or a thread: time comes in as a [`Timestamp`]
//! value and randomness as a [`rand_core::CryptoRng`] handed in by the caller. That keeps every
//! decision deterministic and testable, and lets the same code run under tokio, smol, a simulator,
//! a fuzzer or a microcontroller.
//!
//! What is here today:
//!
//! - [`identity`]: ephemeral P-256 node identities. A [`NodeId`] *is* the public key (its
//!   x-coordinate, normalised to even y) plus a coarse creation time; text form
//!   `<64 lowercase hex>:<timestamp hex>`.
//! - [`crypto`]: the crypto provider seam (RustCrypto by default, `ring` with the `ring`
//!   feature), the Noise state objects (checked against the cacophony vectors), the XX link
//!   handshake bound to node IDs and its transport session, sealed whispers (Noise X), broadcast
//!   signatures and resonance payload encryption.
//! - [`engine`]: the [`Engine`](engine::Engine), one node's state machine; its module docs
//!   show the complete drive loop.
//! - [`relay`]: the [`Relay`](relay::Relay) server's state machine.
//! - [`conn`]: one authenticated connection (handshake, session, bounded send queue), shared by
//!   both.
//! - [`derive`](mod@derive): intents (a phrase through Argon2id, or a 32-byte secret) and the
//!   keys, per-link blindings and per-relay namespaces derived from them; whisper tags.
//! - [`wire`]: the versioned binary wire format: a 5-byte fixed header and postcard bodies,
//!   borrowed decoding, a frame-size limit checked before any decoding, typed validation errors.
//! - `fuzz` (feature `fuzz`): entry points for the cargo-fuzz targets in `fuzz/` (their seed
//!   corpora are replayed by `cargo test`).
//!
//! ```
//! use whispurr_core::{identity::Identity, wire::{Frame, Limits, Message, Ping}, Timestamp};
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::seed_from_u64(7);
//! let now = Timestamp::from_millis(1_764_000_000_000);
//! let me = Identity::generate(&mut rng, now);
//! let text = me.node_id().to_string();
//! assert_eq!(text.parse::<whispurr_core::NodeId>().unwrap(), *me.node_id());
//!
//! let frame = Frame::new(Message::Ping(Ping { id: 1, sent_at: now.as_millis() }));
//! let mut buf = [0u8; 64];
//! let n = frame.encode(&mut buf).unwrap();
//! let back = Frame::decode(&buf[..n], &Limits::default()).unwrap();
//! assert_eq!(back, frame);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod conn;
pub mod crypto;
pub mod derive;
pub mod engine;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod hex;
pub mod identity;
pub mod relay;
#[cfg(feature = "sim")]
pub mod sim;
mod time;
pub mod wire;

pub use identity::{Identity, NodeId, NodeKey};
pub use time::Timestamp;
