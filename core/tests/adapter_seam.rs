//! The seam an async adapter plugs into: per-link backpressure (a link that is not drained
//! holds back only itself, within its byte cap, and its losses are counted and reported), and
//! the frame budget (the largest payload of every kind arrives over every path, with padding on
//! and off).

mod common;

use std::time::Duration;

use common::net::{Net, START};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use whispurr_core::{
    Identity, Timestamp,
    conn::{Conn, Received},
    crypto::{RustCrypto, link::LinkConfig},
    engine::{
        BroadcastAuth, CAP_WEBRTC, Config, DropCause, Engine, Event, Extension, ExtensionContext,
        ExtensionMessage, LinkId, Obfuscation, PathKind, PayloadKind, SendError,
    },
    wire::{Frame, Limits, Message, MessageType},
};

type Node = Engine<RustCrypto, ChaCha20Rng>;

/// A peer on an inbound link of the engine, speaking through a real `Conn`.
struct Peer {
    conn: Conn<RustCrypto>,
    link: LinkId,
    /// Frames received from the engine.
    frames: Vec<Vec<u8>>,
}

fn connect(engine: &mut Node, seed: u64) -> Peer {
    let (_, conn, link) = common::net::raw_peer(engine, seed);
    Peer {
        conn,
        link,
        frames: Vec::new(),
    }
}

/// Moves records both ways until quiet, each record to the peer of its link.
fn pump(engine: &mut Node, peers: &mut [Peer], now: Timestamp) {
    for _ in 0..1_000 {
        let mut moved = false;
        for p in peers.iter_mut() {
            while let Some(r) = p.conn.pop_record() {
                moved = true;
                engine.handle_data(now, p.link, r).unwrap();
            }
        }
        while let Some(mut t) = engine.poll_transmit(now) {
            moved = true;
            let p = peers.iter_mut().find(|p| p.link == t.link).unwrap();
            if let Ok(Received::Frame(n)) = p.conn.handle_data(now, &mut t.record) {
                p.frames.push(t.record[..n].to_vec());
            }
        }
        if !moved {
            return;
        }
    }
    panic!("did not settle");
}

fn broadcasts(frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(
                Frame::decode(f, &Limits::default()).map(|f| f.message),
                Ok(Message::Broadcast(_))
            )
        })
        .count()
}

#[test]
fn a_link_that_is_not_drained_holds_back_only_itself() {
    let cap = 16 * 1024;
    let mut engine = Node::new(
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(1), START),
        Config {
            max_queue_bytes: cap,
            broadcast_auth: BroadcastAuth::Anonymous,
            // Every broadcast to both peers at once (no stem to one of them).
            stem: None,
            ..Config::default()
        },
        RustCrypto,
        ChaCha20Rng::seed_from_u64(2),
        START,
    );
    let mut peers = vec![connect(&mut engine, 10), connect(&mut engine, 11)];
    pump(&mut engine, &mut peers, START);
    assert!(peers.iter().all(|p| p.conn.is_established()));
    while engine.poll_event().is_some() {}
    let (fast, slow) = (peers[0].link, peers[1].link);

    // The adapter's writer for the slow link is full from now on.
    engine.handle_blocked(START, slow).unwrap();
    let sent = 200;
    for k in 0..sent {
        engine.broadcast(START, &[k as u8; 1_000]).unwrap();
        pump(&mut engine, &mut peers, START);
    }
    assert_eq!(
        broadcasts(&peers[0].frames),
        sent,
        "the drained link delivered everything"
    );
    assert_eq!(
        broadcasts(&peers[1].frames),
        0,
        "nothing was written to the blocked link"
    );

    // The application heard of every copy that could not be queued for the slow peer.
    let not_sent = std::iter::from_fn(|| engine.poll_event())
        .filter(|e| {
            matches!(
                e,
                Event::NotSent {
                    cause: DropCause::QueueFull,
                    ..
                }
            )
        })
        .count();
    let stats = engine.stats();
    assert!(not_sent > 0);
    assert_eq!(
        stats.dropped_queue_full, not_sent as u64,
        "counted by cause"
    );

    // What waited for the slow link never exceeded its cap, and it all goes once it drains.
    engine.handle_writable(START, slow).unwrap();
    let mut held = 0;
    while let Some(mut record) = engine.poll_transmit_on(START, slow) {
        held += record.len();
        if let Ok(Received::Frame(n)) = peers[1].conn.handle_data(START, &mut record) {
            peers[1].frames.push(record[..n].to_vec());
        }
    }
    assert!(held <= cap, "{held} bytes held for a link capped at {cap}");
    assert!(held > cap / 2, "the queue was really in use: {held}");
    assert_eq!(broadcasts(&peers[1].frames) + not_sent, sent);
    assert_eq!(engine.poll_transmit_on(START, fast), None);
}

/// Echoes every payload it receives as an application event.
struct Sink;

impl Extension for Sink {
    fn name(&self) -> &'static str {
        "sink"
    }
    fn message_types(&self) -> Vec<MessageType> {
        vec![MessageType::Custom(0x91)]
    }
    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>) {
        ctx.emit(msg.payload.to_vec());
    }
}

/// What node `to` received of each kind.
#[derive(Debug, Default, PartialEq)]
struct Got {
    whisper: Option<Vec<u8>>,
    broadcast: Option<Vec<u8>>,
    resonance: Option<Vec<u8>>,
    extension: Option<Vec<u8>>,
}

fn got(events: Vec<Event>) -> Got {
    let mut g = Got::default();
    for e in events {
        match e {
            Event::Whisper { payload, .. } => g.whisper = Some(payload),
            Event::Broadcast { payload, hops, .. } if hops > 0 => g.broadcast = Some(payload),
            Event::Resonance { payload, .. } => g.resonance = Some(payload),
            Event::Extension {
                extension: "sink",
                event,
            } => g.extension = event.downcast_ref::<Vec<u8>>().cloned(),
            _ => {}
        }
    }
    g
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Direct,
    Tunnel,
    Sealed,
}

fn max_payloads_arrive(path: Path, obfuscation: Obfuscation) {
    let mut net = Net::new(2, |_| Config {
        obfuscation: obfuscation.clone(),
        auto_connect: path != Path::Sealed,
        try_direct: path == Path::Direct,
        link: LinkConfig {
            capabilities: if path == Path::Direct { CAP_WEBRTC } else { 0 },
            ..LinkConfig::default()
        },
        ..Config::default()
    });
    net.connect_all();
    let now = net.now;
    for i in 0..2 {
        // A shared intent would open a session: the sealed path is for nodes without one.
        if path != Path::Sealed {
            net.nodes[i].attune(now, "budget").unwrap();
        }
        net.nodes[i]
            .register_extension(now, Box::new(Sink))
            .unwrap();
    }
    net.run_for(2 * Duration::from_secs(1), Duration::from_millis(10));
    let ev = net.take(0);
    let expected = match path {
        Path::Direct => Some(PathKind::Direct),
        Path::Tunnel => Some(PathKind::Relayed),
        Path::Sealed => None,
    };
    let path_now = ev.iter().rev().find_map(|e| match e {
        Event::PeerUp { path, .. } => Some(*path),
        _ => None,
    });
    assert_eq!(path_now, expected, "{path:?}: {ev:?}");
    net.take(1);

    let to = net.key(1);
    let max = |k| net.nodes[0].max_payload(k);
    let (w, b, r, x) = (
        vec![1u8; max(PayloadKind::Whisper)],
        vec![2u8; max(PayloadKind::Broadcast)],
        vec![3u8; max(PayloadKind::Resonance)],
        vec![4u8; max(PayloadKind::Extension)],
    );
    let a = &mut net.nodes[0];
    // One byte more is refused before anything is sealed.
    assert_eq!(
        a.whisper(now, to, Some("tag"), &[0; 1][..].repeat(w.len() + 1)),
        Err(SendError::TooLarge(w.len() + 1))
    );
    a.whisper(now, to, Some("tag"), &w).unwrap();
    if path != Path::Sealed {
        a.broadcast(now, &b).unwrap();
        a.resonate(now, "budget", 1.0, &r).unwrap();
        a.send_extension(now, MessageType::Custom(0x91), Some(to), &x)
            .unwrap();
    }
    net.run_for(2 * Duration::from_secs(1), Duration::from_millis(10));
    let g = got(net.take(1));
    assert_eq!(g.whisper.as_ref(), Some(&w), "{path:?}: whisper");
    if path != Path::Sealed {
        assert_eq!(g.broadcast.as_ref(), Some(&b), "{path:?}: broadcast");
        assert_eq!(g.resonance.as_ref(), Some(&r), "{path:?}: resonance");
        assert_eq!(g.extension.as_ref(), Some(&x), "{path:?}: extension");
    }
    assert!(
        net.take(0)
            .iter()
            .any(|e| matches!(e, Event::WhisperDelivered { .. })),
        "{path:?}: whisper acknowledged"
    );
    for i in 0..2 {
        let s = net.nodes[i].stats();
        assert_eq!(s.dropped_too_large, 0, "{path:?} node {i}");
        assert_eq!(s.dropped_queue_full, 0, "{path:?} node {i}");
        assert_eq!(s.dropped_invalid, 0, "{path:?} node {i}");
        assert_eq!(s.links_failed, 0, "{path:?} node {i}");
    }
}

#[test]
fn the_largest_payload_of_every_kind_arrives_on_every_path() {
    for path in [Path::Direct, Path::Tunnel, Path::Sealed] {
        max_payloads_arrive(path, Obfuscation::off());
    }
}

#[test]
fn the_largest_payload_of_every_kind_arrives_on_every_path_with_padding() {
    for path in [Path::Direct, Path::Tunnel, Path::Sealed] {
        max_payloads_arrive(path, Obfuscation::standard());
    }
}
