//! Sequences of inputs against a whole engine (see `whispurr_core::fuzz::engine`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| whispurr_core::fuzz::engine(data));
