//! A tour of whispurr's foundation, in one process and without any I/O: ephemeral identities,
//! intents and whisper tags, and every wire message type encoded, measured, decoded and
//! validated. Run: `cargo run -p whispurr-examples --example wire_tour`.

use std::time::SystemTime;

use rand::SeedableRng;
use whispurr_core::{
    Identity, NodeId, Timestamp,
    crypto::RustCrypto,
    derive::{Intent, IntentKdf, WhisperTag},
    engine::{Config, Engine, PayloadKind},
    wire::{Frame, HEADER_LEN, Limits, Message},
};
use whispurr_examples::samples;

fn main() {
    // The caller owns the clock and the randomness; the core only receives values.
    let now = Timestamp::from(SystemTime::now());
    let mut rng = rand::rng();

    println!("== identities (ephemeral P-256, ID = x-coordinate + coarse creation time)");
    for name in ["alice", "bob", "carol"] {
        let me = Identity::generate(&mut rng, now);
        let text = me.node_id().to_string();
        let parsed: NodeId = text.parse().expect("own ID parses");
        assert_eq!(&parsed, me.node_id());
        println!(
            "{name:>6}: {text}  (age {} s, key recovers: {})",
            me.node_id().age(now).as_secs(),
            parsed.public_key().is_ok()
        );
    }

    println!("\n== derivations (Argon2id for intent phrases, then HKDF-SHA256, domain-separated)");
    let kdf = IntentKdf::default();
    let started = std::time::Instant::now();
    let chess = Intent::phrase("chess", &kdf).expect("default parameters are valid");
    println!(
        "intent \"chess\": Argon2id ({} KiB, {} passes) in {:.1?}; then, all that leaves a node:",
        kdf.memory_kib,
        kdf.iterations,
        started.elapsed()
    );
    let (a, b) = (
        Identity::generate(&mut rng, now),
        Identity::generate(&mut rng, now),
    );
    let key = chess.resonance_key();
    for (link, binding) in [("link 1", [1u8; 32]), ("link 2", [2u8; 32])] {
        println!(
            "  announced on {link}:        {}",
            hex(&key.announcement(&binding, a.node_id().key()).0)
        );
    }
    println!(
        "  namespace at relay {}: {}",
        &b.node_id().to_string()[..8],
        hex(&chess.rendezvous_key().namespace(b.node_id().key()))
    );
    println!(
        "whisper tag of \"chat\":    {}",
        hex(&WhisperTag::from_category("chat").0)
    );

    println!("\n== wire frames with a 256-byte payload (header {HEADER_LEN} bytes)");
    println!("{:<20} {:>6} {:>9}", "type", "bytes", "overhead");
    let payload = [0xa5u8; 256];
    let limits = Limits::default();
    let mut buf = vec![0u8; 2048];
    for (name, message) in samples::all(&payload) {
        let frame = Frame::new(message);
        let n = frame.encode(&mut buf).expect("fits");
        let back = Frame::decode(&buf[..n], &limits).expect("decodes");
        assert_eq!(back, frame);
        let at = Timestamp::from_millis(samples::NOW_MS);
        back.message
            .validate_at(at, &limits)
            .expect("valid at its own time");
        // What the message carries for its sender: the payload, or a signal's SDP/candidate.
        let carried = match message {
            Message::Signal(s) => s.signal.text_len(),
            _ if message.route().is_some() => payload.len(),
            _ => 0,
        };
        println!("{name:<20} {n:>6} {:>9}", n - carried);
    }
    println!("\nall frames round-tripped and validated");

    println!(
        "\n== the frame budget (frame limit {} bytes; every path, padding on or off)",
        limits.max_frame_size
    );
    let engine = Engine::new(
        Identity::generate(&mut rng, now),
        Config::default(),
        RustCrypto,
        rand::rngs::StdRng::from_rng(&mut rng),
        now,
    );
    for kind in [
        PayloadKind::Whisper,
        PayloadKind::Broadcast,
        PayloadKind::Resonance,
        PayloadKind::Extension,
    ] {
        println!(
            "largest {:<10} payload: {:>6} bytes",
            format!("{kind:?}").to_lowercase(),
            engine.max_payload(kind)
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
