//! # whispurr-node
//!
//! The runtime-neutral async half of whispurr (work in progress).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod runtime;
pub mod webrtc;
