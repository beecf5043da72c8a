//! Replays the committed seed corpora of the cargo-fuzz targets in `fuzz/corpus/` on stable Rust,
//! so CI guards every target without nightly.
//!
//! `cargo test -p whispurr-core --test fuzz_seeds -- --ignored regenerate` rewrites the generated
//! seeds (one valid frame per message type) after a wire-format change.

mod common;

use std::{fs, path::PathBuf};

use whispurr_core::wire::{Frame, Limits, Message, Signal, WebRtcSignal};

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
    assert!(valid >= 23, "only {valid} seeds are valid frames");
}

#[test]
fn engine_seeds() {
    let seeds = seeds("engine");
    assert!(seeds.len() >= 5, "found {}", seeds.len());
    for (name, bytes) in &seeds {
        let run = std::panic::catch_unwind(|| whispurr_core::fuzz::engine(bytes));
        assert!(run.is_ok(), "seed {name} panicked");
    }
}

/// Engine seeds: sequences of steps (see `whispurr_core::fuzz::engine`) that reach the
/// interesting states: valid frames of each kind, commands, time passing, link churn.
fn engine_sequences() -> Vec<(String, Vec<u8>)> {
    fn step(out: &mut Vec<u8>, op: u8, arg: &[u8]) {
        out.push(op);
        out.push(arg.len() as u8);
        out.extend_from_slice(arg);
    }
    let payload: Vec<u8> = (0..24u8).collect();
    let mut all = Vec::new();
    for (name, message) in common::samples::all(&payload) {
        let mut buf = vec![0u8; 1024];
        let n = Frame::new(message).encode(&mut buf).unwrap();
        if n > 255 {
            continue;
        }
        let mut seq = Vec::new();
        step(&mut seq, 0, &buf[..n]);
        step(&mut seq, 2, &[0xe8, 0x03]); // 10 s
        all.push((format!("seed-frame-{name}"), seq));
    }
    // Signals addressed to the target's engine by its peer: an offer opens a WebRTC link, the
    // candidates follow it.
    let (me, peer) = whispurr_core::fuzz::handshake_identities();
    let mut signals = Vec::new();
    for signal in [
        WebRtcSignal::Offer {
            sdp: "v=0\r\ns=-\r\nt=0 0\r\n",
        },
        WebRtcSignal::Candidate {
            candidate: "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host",
            sdp_mid: Some("0"),
            sdp_mline_index: Some(0),
            username_fragment: None,
        },
        WebRtcSignal::EndOfCandidates,
    ] {
        let message = Message::Signal(Signal {
            target: *me.node_id().key(),
            origin: *peer.node_id(),
            signal,
        });
        let mut buf = vec![0u8; 1024];
        let n = Frame::new(message).encode(&mut buf).unwrap();
        step(&mut signals, 0, &buf[..n]);
    }
    step(&mut signals, 2, &[0xe8, 0x03]);
    all.push(("seed-signals".into(), signals));
    let mut commands = Vec::new();
    step(&mut commands, 3, b"\x00hello everyone");
    step(&mut commands, 3, b"\x01whisper");
    step(&mut commands, 3, b"\x02chess");
    step(&mut commands, 3, b"\x03chess");
    step(&mut commands, 3, b"\x05private");
    step(&mut commands, 3, b"\x03private");
    step(&mut commands, 2, &[0xff, 0xff]);
    step(&mut commands, 3, b"\x04chess");
    all.push(("seed-commands".into(), commands));
    let mut churn = Vec::new();
    step(&mut churn, 1, &[0xde, 0xad, 0xbe, 0xef]);
    step(&mut churn, 4, &[]);
    step(&mut churn, 2, &[0x10, 0x27]);
    step(&mut churn, 5, &[]);
    all.push(("seed-churn".into(), churn));
    all
}

#[test]
fn handshake_seeds() {
    let seeds = seeds("handshake");
    assert!(seeds.len() >= 4, "found {}", seeds.len());
    for (name, bytes) in &seeds {
        let run = std::panic::catch_unwind(|| whispurr_core::fuzz::handshake(bytes));
        assert!(run.is_ok(), "seed {name} panicked");
    }
}

/// Full handshakes between the fuzz target's side and a genuine peer, so the seeds reach the
/// deepest states (a finished handshake and an opened record).
fn handshake_transcripts() -> Vec<(&'static str, Vec<u8>)> {
    use whispurr_core::crypto::{
        RustCrypto,
        link::{LinkConfig, LinkHandshake},
    };
    use whispurr_core::fuzz::{FuzzRng, handshake_identities};
    let (me, peer) = handshake_identities();
    let cfg = LinkConfig::default();
    let mut m = [[0u8; 256]; 3];
    let mut lens = [0usize; 3];

    // The target as initiator.
    let mut init = LinkHandshake::initiator(RustCrypto, &me, None, cfg, &mut FuzzRng::new(3));
    let mut resp = LinkHandshake::responder(RustCrypto, &peer, cfg, &mut FuzzRng::new(77));
    lens[0] = init.write_message(&mut m[0]).unwrap();
    resp.read_message(&m[0][..lens[0]]).unwrap();
    lens[1] = resp.write_message(&mut m[1]).unwrap();
    init.read_message(&m[1][..lens[1]]).unwrap();
    lens[2] = init.write_message(&mut m[2]).unwrap();
    resp.read_message(&m[2][..lens[2]]).unwrap();
    let (mut session, _) = resp.finish().unwrap();
    let mut record = b"hello\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let n = session.seal(&mut record, 5).unwrap();
    let mut as_initiator = vec![1, lens[1] as u8];
    as_initiator.extend_from_slice(&m[1][..lens[1]]);
    as_initiator.extend_from_slice(&record[..n]);

    // The target as responder.
    let mut init = LinkHandshake::initiator(RustCrypto, &peer, None, cfg, &mut FuzzRng::new(78));
    let mut resp = LinkHandshake::responder(RustCrypto, &me, cfg, &mut FuzzRng::new(3));
    lens[0] = init.write_message(&mut m[0]).unwrap();
    resp.read_message(&m[0][..lens[0]]).unwrap();
    lens[1] = resp.write_message(&mut m[1]).unwrap();
    init.read_message(&m[1][..lens[1]]).unwrap();
    lens[2] = init.write_message(&mut m[2]).unwrap();
    let mut as_responder = vec![0, lens[0] as u8];
    as_responder.extend_from_slice(&m[0][..lens[0]]);
    as_responder.extend_from_slice(&m[2][..lens[2]]);

    vec![
        ("seed-initiator-full", as_initiator),
        ("seed-responder-full", as_responder),
        ("seed-empty", vec![]),
        ("seed-short", vec![0, 32, 1, 2, 3]),
    ]
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
    let dir = corpus("engine");
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in engine_sequences() {
        fs::write(dir.join(name), bytes).unwrap();
    }
    let dir = corpus("handshake");
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in handshake_transcripts() {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn handshake_transcripts_reach_a_session() {
    // The full transcripts must really complete (else the seeds only exercise the first step).
    use whispurr_core::crypto::{
        RustCrypto,
        link::{LinkConfig, LinkHandshake, MAX_HANDSHAKE_LEN},
    };
    use whispurr_core::fuzz::{FuzzRng, handshake_identities};
    let (me, _) = handshake_identities();
    let seed = &handshake_transcripts()[0].1;
    let len = usize::from(seed[1]);
    let mut hs = LinkHandshake::initiator(
        RustCrypto,
        &me,
        None,
        LinkConfig::default(),
        &mut FuzzRng::new(3),
    );
    let mut out = [0u8; MAX_HANDSHAKE_LEN];
    hs.write_message(&mut out).unwrap();
    hs.read_message(&seed[2..2 + len]).unwrap();
    hs.write_message(&mut out).unwrap();
    let (mut session, _) = hs.finish().unwrap();
    let mut record = seed[2 + len..].to_vec();
    let n = session.open(&mut record).unwrap();
    assert_eq!(&record[..n], b"hello");
}
