//! # whispurr-node
//!
//! The runtime-neutral async half of whispurr: a [`Node`] (the engine of
//! [`whispurr_core`] in one task, real WebSocket and WebRTC links around it) and a
//! [`RelayServer`] (the core's relay state machine behind a WebSocket listener). Everything
//! here is written once against the small [`Runtime`](runtime::Runtime) trait; `whispurr-tokio`
//! and `whispurr-smol` implement it and re-export this crate.
//!
//! ## Shape
//!
//! - **One task owns the engine** (`task.rs`). It waits on commands from [`Node`] handles,
//!   events from link tasks and the engine's next deadline; feeds each to the engine; then
//!   drains the engine's actions (open, close, signal), records (to their link's writer) and
//!   events (to [`Events`]). Decisions stay in the engine: this crate moves bytes.
//! - **Link tasks only move bytes** (`link.rs`): a writer per link drains a short bounded
//!   queue onto the socket, a reader hands each message to the engine task. A full writer
//!   blocks only its own link, through the engine's `handle_blocked` / `handle_writable`.
//! - **Paths**: a node meets peers at its relays and talks at once through end-to-end
//!   sessions tunnelled through them; the engine then asks for a WebRTC data channel
//!   ([`webrtc`]), signalled through the tunnel, and moves traffic to it; when it fails,
//!   traffic falls back to the tunnel. The application sees one peer throughout.
//! - **Relay server** (`relay.rs`): per-source caps and a handshake deadline in front of
//!   the state machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod error;
mod link;
mod node;
pub mod relay;
pub mod runtime;
#[cfg(feature = "scenarios")]
pub mod scenarios;
mod stats;
mod task;
pub mod webrtc;
pub mod ws;

pub use builder::NodeBuilder;
pub use error::{Error, Result};
pub use node::{Events, Node, NodeEngine};
pub use relay::{RelayBuilder, RelayServer, RelayServerStats, SourceLimits};
pub use stats::{NodeStats, Transport, WireCount};
pub use task::{now, with_deadline};
pub use whispurr_core;
