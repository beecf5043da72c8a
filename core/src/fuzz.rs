//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is a one-line call into a
//! function here, so the same code also runs under `cargo test`, which replays the committed seed
//! corpora on stable Rust.
//!
//! The functions panic only when an invariant of whispurr itself is broken (for example a decoded
//! frame that does not re-encode to an equivalent frame): that is what the fuzzer looks for.

use crate::{
    Timestamp,
    wire::{Frame, Limits},
};

/// Decodes arbitrary bytes as a frame; every accepted frame must validate without panicking and
/// re-encode to bytes that decode to the same frame.
pub fn frame_decode(data: &[u8]) {
    let limits = Limits::default();
    let Ok(frame) = Frame::decode(data, &limits) else {
        return;
    };
    let _ = frame
        .message
        .validate_at(Timestamp::from_millis(1_764_000_000_000), &limits);
    let mut buf = alloc::vec![0u8; data.len() + 16];
    let n = frame
        .encode(&mut buf)
        .unwrap_or_else(|e| panic!("decoded frame failed to re-encode: {e}"));
    let again = Frame::decode(&buf[..n], &limits)
        .unwrap_or_else(|e| panic!("re-encoded frame failed to decode: {e}"));
    assert_eq!(
        again.message, frame.message,
        "round trip changed the message"
    );
}
