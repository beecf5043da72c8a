//! Hostile bytes through the link handshake and sealed-whisper opener (see
//! `whispurr_core::fuzz::handshake`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| whispurr_core::fuzz::handshake(data));
