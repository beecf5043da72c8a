//! Helpers shared by the integration tests.
pub mod net;
pub mod samples;
