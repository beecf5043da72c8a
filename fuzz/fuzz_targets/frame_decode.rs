//! Arbitrary bytes through the frame decoder (see `whispurr_core::fuzz::frame_decode`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| whispurr_core::fuzz::frame_decode(data));
