//! Replays the committed seed corpora of the cargo-fuzz targets in `fuzz/corpus/` on stable Rust,
//! so CI guards every target without nightly.
//!
//! `cargo test -p whispurr-core --test fuzz_seeds -- --ignored regenerate` rewrites the generated
//! seeds (one valid frame per message type) after a wire-format change.

mod common;

use std::{fs, path::PathBuf};

use whispurr_core::wire::{Frame, Limits};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn frame_decode_seeds() {
    let seeds = seeds("frame_decode");
    assert!(
        seeds.len() >= 14,
        "expected a seed per message type, found {}",
        seeds.len()
    );
    let mut valid = 0;
    for (name, bytes) in &seeds {
        let decoded = std::panic::catch_unwind(|| whispurr_core::fuzz::frame_decode(bytes));
        assert!(decoded.is_ok(), "seed {name} panicked");
        valid += usize::from(Frame::decode(bytes, &Limits::default()).is_ok());
    }
    assert!(valid >= 14, "only {valid} seeds are valid frames");
}

#[test]
#[ignore = "writes the generated seeds into fuzz/corpus; run by hand after a format change"]
fn regenerate() {
    let dir = corpus("frame_decode");
    fs::create_dir_all(&dir).unwrap();
    let payload: Vec<u8> = (0..24u8).collect();
    for (name, message) in common::samples::all(&payload) {
        let mut buf = vec![0u8; 1024];
        let n = Frame::new(message).encode(&mut buf).unwrap();
        fs::write(dir.join(format!("seed-{name}")), &buf[..n]).unwrap();
        let n = Frame::new(message).encode_padded(&mut buf, n + 7).unwrap();
        if name == "ping" {
            fs::write(dir.join("seed-ping-padded"), &buf[..n]).unwrap();
        }
    }
}
