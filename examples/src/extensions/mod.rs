//! Three example [`Extension`](whispurr_core::engine::Extension)s: application protocols that
//! ride on the engine's extension message types (DESIGN.md §5 "Extensions").
//!
//! - [`FileSync`]: chunked file transfer to one peer, with a SHA-256 integrity check,
//!   out-of-order reassembly and a completion acknowledgement.
//! - [`MiningSignal`]: proof-of-work backed "work signals" announced to everyone; each node keeps
//!   the best signal per job in a bounded table.
//! - [`Dreamspace`]: a tiny replicated key-value space with last-writer-wins merging.
//!
//! Each one is a plain state machine driven through an
//! [`ExtensionContext`](whispurr_core::engine::ExtensionContext): it never reads a clock, never
//! touches the network and never panics on what arrives. Payloads are `postcard`-encoded enums;
//! anything that does not decode exactly is counted and ignored, and every table an extension
//! keeps has a configurable cap.
//!
//! Public methods that send take `&mut ExtensionContext`, so inside an engine they are called as
//! `engine.with_extension::<FileSync, _>(now, |ext, ctx| ext.offer(ctx, peer, "a.txt", data))`;
//! in tests they are driven by hand with [`ExtensionContext::new`](whispurr_core::engine::ExtensionContext::new).

pub mod dreamspace;
pub mod file_sync;
pub mod mining_signal;

pub use dreamspace::{DreamChanged, DreamConfig, DreamError, DreamStats, Dreamspace, Stamp};
pub use file_sync::{
    FileDelivered, FileDeliveryFailed, FileReceived, FileRejected, FileSync, FileSyncConfig,
    FileSyncError, FileSyncStats, RejectReason, TransferId,
};
pub use mining_signal::{
    MiningConfig, MiningError, MiningSignal, MiningSignalSeen, MiningStats, SignalRecord,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Encodes a wire message; `None` only if `postcard` refuses the value (it cannot for the
/// plain enums used here, but the caller handles it rather than panicking).
pub(crate) fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    postcard::to_allocvec(value).ok()
}

/// Decodes a wire message that must fill `bytes` exactly: trailing bytes make it malformed.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}
