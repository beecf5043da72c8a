//! # whispurr-tokio
//!
//! The tokio adapter of whispurr. The engine in [`whispurr_core`] makes every decision; this crate
//! owns what the engine must not touch: the clock, sockets, timers and tasks. Today it supplies the
//! clock reading the engine's inputs carry; the node handle, WebSocket and WebRTC transports and
//! the relay server arrive with the engine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use whispurr_core as core;

/// Reads the system wall clock as the [`Timestamp`](whispurr_core::Timestamp) every engine input
/// carries.
pub fn now() -> whispurr_core::Timestamp {
    std::time::SystemTime::now().into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_reading_is_after_2024() {
        // 2024-01-01T00:00:00Z; a clock before that is misconfigured, not merely skewed.
        assert!(super::now().as_secs() > 1_704_067_200);
    }
}
