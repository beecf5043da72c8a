//! Shared pieces of the whispurr example programs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// One sample message of every type, the same set the core's tests and codec benchmark use.
#[path = "../../core/tests/common/samples.rs"]
pub mod samples;

pub mod demo;
pub mod extensions;
