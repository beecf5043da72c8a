//! Every engine limit hit, hostile input on every kind of link, and obfuscation measured.

mod common;

use std::time::Duration;

use common::net::{Net, START};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use whispurr_core::{
    Identity, NodeKey, Timestamp,
    conn::{Conn, Received},
    crypto::RustCrypto,
    engine::{
        Action, Addr, CAP_WEBRTC, Config, DownReason, Engine, EngineError, Event, Gossip, LinkId,
        Obfuscation, SendError, TreeConfig, WebRtcSignal,
    },
    wire::{Broadcast, Frame, Limits, List, Message, MessageId, Ping, Route, Signal, Tree},
};

const SEC: Duration = Duration::from_secs(1);
const MS100: Duration = Duration::from_millis(100);

type Node = Engine<RustCrypto, ChaCha20Rng>;

fn node(seed: u64, config: Config) -> Node {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let id = Identity::generate(&mut rng, START);
    Engine::new(id, config, RustCrypto, rng, START)
}

/// A hand-driven peer connected to `engine` over an inbound link: real handshake, then the test
/// can send any frame (or any bytes) it likes.
struct RawPeer {
    identity: Identity,
    conn: Conn<RustCrypto>,
    link: LinkId,
}

impl RawPeer {
    fn connect(engine: &mut Node, seed: u64) -> Self {
        Self::connect_with(engine, seed, 0)
    }

    /// A raw peer announcing `capabilities`.
    fn connect_with(engine: &mut Node, seed: u64, capabilities: u64) -> Self {
        let (identity, conn, link) = common::net::raw_peer_with(engine, seed, capabilities);
        let mut peer = RawPeer {
            identity,
            conn,
            link,
        };
        peer.pump(engine);
        assert!(peer.conn.is_established());
        peer
    }

    /// Moves records both ways until quiet; returns frames the engine sent us, re-encoded.
    fn pump(&mut self, engine: &mut Node) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for _ in 0..100 {
            let mut moved = false;
            while let Some(r) = self.conn.pop_record() {
                moved = true;
                let _ = engine.handle_data(START, self.link, r);
            }
            while let Some(mut t) = engine.poll_transmit(START) {
                moved = true;
                if t.link != self.link {
                    continue;
                }
                if let Ok(Received::Frame(n)) = self.conn.handle_data(START, &mut t.record) {
                    frames.push(t.record[..n].to_vec());
                }
            }
            if !moved {
                break;
            }
        }
        frames
    }

    /// Sends `message`; returns the frames the engine sent back meanwhile.
    fn send(&mut self, engine: &mut Node, message: Message<'_>) -> Vec<Vec<u8>> {
        self.conn
            .queue_frame(&Frame::new(message), 0, true)
            .unwrap();
        self.pump(engine)
    }
}

fn events(engine: &mut Node) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// The route of an anonymous broadcast (its id bound to the anonymous kind).
fn route(id: u8) -> Route {
    Route {
        id: whispurr_core::crypto::sign::bind_broadcast_id(MessageId([id; 16]), None),
        timestamp: START.as_millis(),
        ttl_ms: 60_000,
        hops: 1,
        hop_limit: 4,
    }
}

#[test]
fn garbage_before_the_handshake_closes_the_link() {
    let mut engine = node(1, Config::default());
    let link = engine.handle_incoming(START).unwrap();
    engine.handle_data(START, link, &mut [0xffu8; 7]).unwrap();
    assert_eq!(engine.stats().links_failed, 1);
    assert!(
        matches!(engine.poll_action(), Some(whispurr_core::engine::Action::Close { link: l }) if l == link)
    );
    // The link is gone: more bytes on it are API misuse, reported as such.
    assert_eq!(
        engine.handle_data(START, link, &mut [1u8; 3]),
        Err(EngineError::UnknownLink(link))
    );
}

#[test]
fn tampered_record_after_the_handshake_closes_the_link() {
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    events(&mut engine);
    peer.conn
        .queue_frame(
            &Frame::new(Message::Ping(whispurr_core::wire::Ping {
                id: 1,
                sent_at: 0,
            })),
            0,
            true,
        )
        .unwrap();
    let mut record = peer.conn.pop_record().unwrap();
    record[3] ^= 1;
    engine.handle_data(START, peer.link, &mut record).unwrap();
    assert_eq!(engine.stats().links_failed, 1);
    let ev = events(&mut engine);
    assert!(
        ev.iter().any(|e| matches!(e, Event::PeerDown { .. })),
        "{ev:?}"
    );
}

#[test]
fn oversized_record_closes_the_link() {
    let mut engine = node(1, Config::default());
    let peer = RawPeer::connect(&mut engine, 2);
    let mut huge = vec![0u8; 70_000];
    engine.handle_data(START, peer.link, &mut huge).unwrap();
    assert_eq!(engine.stats().links_failed, 1);
}

#[test]
fn a_valid_record_holding_an_invalid_frame_closes_the_link() {
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    // A frame that fails to decode (origin without signature) inside a genuine record.
    let payload = [1u8; 4];
    peer.send(
        &mut engine,
        Message::Broadcast(Broadcast {
            route: route(9),
            origin: Some(*peer.identity.node_id()),
            payload: &payload,
            signature: None,
        }),
    );
    assert_eq!(engine.stats().links_failed, 1);
    assert_eq!(engine.stats().dropped_invalid, 1);
}

#[test]
fn expired_and_future_gossip_is_dropped_without_closing() {
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    let mut old = route(5);
    old.timestamp -= 120_000;
    let mut future = route(6);
    future.timestamp += 120_000;
    for r in [old, future] {
        peer.send(
            &mut engine,
            Message::Broadcast(Broadcast {
                route: r,
                origin: None,
                payload: b"x",
                signature: None,
            }),
        );
    }
    assert_eq!(engine.stats().dropped_invalid, 2);
    assert_eq!(engine.stats().links_failed, 0);
}

#[test]
fn relay_only_frames_from_a_peer_are_counted_not_obeyed() {
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    peer.send(
        &mut engine,
        Message::Unreachable(whispurr_core::wire::Unreachable {
            peer: NodeKey([1; 32]),
        }),
    );
    assert_eq!(engine.stats().dropped_unhandled, 1);
    assert_eq!(engine.stats().links_failed, 0);
}

/// A SIGNAL from `peer` to `engine`.
fn signal_to<'a>(engine: &Node, peer: &RawPeer, signal: WebRtcSignal<&'a str>) -> Message<'a> {
    Message::Signal(Signal {
        target: *engine.node_id().key(),
        origin: *peer.identity.node_id(),
        signal,
    })
}

/// An engine that may answer WebRTC offers, and a WebRTC-capable raw peer whose key is the
/// smaller (so it is the one that offers).
fn webrtc_pair() -> (Node, RawPeer) {
    let config = Config {
        link: whispurr_core::crypto::link::LinkConfig {
            capabilities: CAP_WEBRTC,
            ..Default::default()
        },
        ..Config::default()
    };
    let mut engine = node(1, config);
    let peer = (2..)
        .map(|seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            (seed, Identity::generate(&mut rng, START))
        })
        .find(|(_, id)| id.node_id().key() < engine.node_id().key())
        .map(|(seed, _)| seed)
        .unwrap();
    let peer = RawPeer::connect_with(&mut engine, peer, CAP_WEBRTC);
    (engine, peer)
}

#[test]
fn an_offer_opens_an_answering_webrtc_link_and_the_next_signals_follow_it() {
    let (mut engine, mut peer) = webrtc_pair();
    while engine.poll_action().is_some() {}
    let sdp = "v=0\r\ns=-\r\n";
    let offer = signal_to(&engine, &peer, WebRtcSignal::Offer { sdp });
    peer.send(&mut engine, offer);
    let actions: Vec<Action> = std::iter::from_fn(|| engine.poll_action()).collect();
    let [
        Action::Connect {
            link,
            addr:
                Addr::WebRtc {
                    peer: key,
                    offerer: false,
                },
        },
        Action::Signal { link: to, signal },
    ] = &actions[..]
    else {
        panic!("{actions:?}");
    };
    assert_eq!(key, peer.identity.node_id().key());
    assert_eq!(to, link);
    assert_eq!(*signal, WebRtcSignal::Offer { sdp: sdp.into() });
    let candidate = WebRtcSignal::Candidate {
        candidate: "candidate:1 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active",
        sdp_mid: None,
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    let message = signal_to(&engine, &peer, candidate);
    peer.send(&mut engine, message);
    assert_eq!(
        engine.poll_action(),
        Some(Action::Signal {
            link: *link,
            signal: candidate.into()
        })
    );
    assert_eq!(engine.poll_action(), None);
}

#[test]
fn only_an_offer_opens_a_webrtc_link() {
    let (mut engine, mut peer) = webrtc_pair();
    while engine.poll_action().is_some() {}
    for signal in [
        WebRtcSignal::Answer { sdp: "v=0" },
        WebRtcSignal::EndOfCandidates,
    ] {
        let message = signal_to(&engine, &peer, signal);
        peer.send(&mut engine, message);
    }
    assert_eq!(engine.poll_action(), None);
    assert_eq!(engine.stats().dropped_unhandled, 2);
    assert_eq!(engine.stats().links_failed, 0);
}

#[test]
fn an_over_long_signal_fails_the_link() {
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    let sdp = "a".repeat(Limits::default().max_signal_len + 1);
    let offer = signal_to(&engine, &peer, WebRtcSignal::Offer { sdp: &sdp });
    peer.send(&mut engine, offer);
    assert_eq!(engine.stats().dropped_invalid, 1);
    assert_eq!(engine.stats().links_failed, 1);
    assert!(
        !std::iter::from_fn(|| engine.poll_action()).any(|a| matches!(a, Action::Signal { .. }))
    );
}

#[test]
fn a_malformed_signal_fails_the_link_and_a_newer_minors_is_only_dropped() {
    // The frame of an end-of-candidates signal, with its variant index (the last byte) changed.
    let frame = |engine: &Node, peer: &RawPeer, version: u8, variant: u8| {
        let message = signal_to(engine, peer, WebRtcSignal::EndOfCandidates);
        let mut buf = vec![0u8; 256];
        let n = Frame::new(message).encode(&mut buf).unwrap();
        buf.truncate(n);
        buf[0] = version;
        buf[n - 1] = variant;
        buf
    };
    // From a newer minor: a kind of signal this version does not know. Dropped, link kept.
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    while engine.poll_action().is_some() {}
    peer.conn
        .queue_plaintext(&frame(&engine, &peer, 0x11, 9))
        .unwrap();
    peer.pump(&mut engine);
    assert_eq!(engine.stats().dropped_unhandled, 1);
    assert_eq!(engine.stats().links_failed, 0);
    assert_eq!(engine.poll_action(), None);
    // The link still carries traffic.
    let back = peer.send(&mut engine, Message::Ping(Ping { id: 5, sent_at: 0 }));
    assert!(
        back.iter()
            .any(|f| matches!(Frame::decode(f, &Limits::default()).map(|f| f.message), Ok(Message::Pong(p)) if p.id == 5)),
        "{back:?}"
    );
    // Garbage where the variant index should be (a varint that never ends): the link fails.
    let mut engine = node(1, Config::default());
    let mut peer = RawPeer::connect(&mut engine, 2);
    peer.conn
        .queue_plaintext(&frame(&engine, &peer, 0x10, 0x80))
        .unwrap();
    peer.pump(&mut engine);
    assert_eq!(engine.stats().dropped_invalid, 1);
    assert_eq!(engine.stats().links_failed, 1);
}

#[test]
fn max_links_is_enforced() {
    let mut engine = node(
        1,
        Config {
            max_links: 2,
            ..Config::default()
        },
    );
    engine.handle_incoming(START).unwrap();
    engine.handle_incoming(START).unwrap();
    assert_eq!(
        engine.handle_incoming(START),
        Err(EngineError::TooManyLinks)
    );
}

#[test]
fn max_peers_is_enforced() {
    let mut net = Net::new(4, |i| Config {
        max_peers: if i == 0 { 1 } else { 256 },
        ..Config::default()
    });
    net.connect_all();
    assert_eq!(net.nodes[0].stats().peers, 1);
    // The others all know each other, and exactly one of them also got node 0: the refused
    // ones were told (GOODBYE through the tunnel) rather than left with a dead session.
    let others: Vec<usize> = (1..4).map(|i| net.nodes[i].stats().peers).collect();
    assert_eq!(others.iter().sum::<usize>(), 7, "{others:?}");
    let full = net.key(0);
    let told: usize = (1..4)
        .map(|i| {
            net.take(i)
                .iter()
                .filter(|e| {
                    matches!(e, Event::PeerDown { peer, reason: DownReason::Goodbye } if *peer == full)
                })
                .count()
        })
        .sum();
    assert_eq!(told, 2);
}

#[test]
fn pending_whisper_cap_is_reported() {
    let mut net = Net::new(2, |_| Config {
        max_pending_whispers: 2,
        ..Config::default()
    });
    net.connect_all();
    let to = NodeKey([0x42; 32]);
    let now = net.now;
    net.nodes[0].whisper(now, to, None, b"1").unwrap();
    net.nodes[0].whisper(now, to, None, b"2").unwrap();
    assert_eq!(
        net.nodes[0].whisper(now, to, None, b"3"),
        Err(SendError::TooManyPending)
    );
}

#[test]
fn payload_size_limit_is_reported() {
    let mut net = Net::new(2, |_| Config::default());
    net.connect_all();
    let now = net.now;
    let big = vec![0u8; 70_000];
    let to = net.key(1);
    assert!(matches!(
        net.nodes[0].whisper(now, to, None, &big),
        Err(SendError::TooLarge(_))
    ));
    assert!(matches!(
        net.nodes[0].broadcast(now, &big),
        Err(SendError::TooLarge(_))
    ));
}

#[test]
fn event_queue_cap_drops_oldest_and_counts() {
    let mut net = Net::new(2, |_| Config {
        max_events: 3,
        ..Config::default()
    });
    net.connect_all();
    for i in 0..2 {
        net.take(i);
    }
    // The harness drains events every step; stop that by broadcasting without settling and
    // counting on node 1's own queue through many deliveries in one step.
    let now = net.now;
    for k in 0..6u8 {
        net.nodes[0].broadcast(now, &[k]).unwrap();
    }
    // Node 0 delivers its own broadcasts locally: six events into a queue of three.
    assert_eq!(net.nodes[0].stats().dropped_event_overflow, 3);
    let kept: Vec<_> = std::iter::from_fn(|| net.nodes[0].poll_event()).collect();
    assert_eq!(kept.len(), 3);
    assert!(matches!(&kept[0], Event::Broadcast { payload, .. } if payload == &[3]));
}

#[test]
fn seen_set_cap_refuses_new_ids_and_never_forgets_a_valid_one() {
    let mut engine = node(
        1,
        Config {
            max_seen: 4,
            ..Config::default()
        },
    );
    let mut peer = RawPeer::connect(&mut engine, 2);
    let anonymous = |id| {
        Message::Broadcast(Broadcast {
            route: route(id),
            origin: None,
            payload: b"x",
            signature: None,
        })
    };
    for k in 0..6u8 {
        peer.send(&mut engine, anonymous(100 + k));
    }
    // Four fit; the two beyond the cap are refused, and counted.
    assert_eq!(engine.stats().dropped_refused, 2);
    // The first is still remembered while it is valid: a replay is a duplicate.
    peer.send(&mut engine, anonymous(100));
    assert_eq!(engine.stats().dropped_duplicate, 1);
    let delivered = events(&mut engine)
        .iter()
        .filter(|e| matches!(e, Event::Broadcast { .. }))
        .count();
    assert_eq!(delivered, 4);
    // Once they expire, there is room again.
    let later = START.saturating_add(Duration::from_secs(61));
    engine.handle_timeout(later);
    let mut fresh = route(110);
    fresh.timestamp = later.as_millis();
    peer.send(
        &mut engine,
        Message::Broadcast(Broadcast {
            route: fresh,
            origin: None,
            payload: b"y",
            signature: None,
        }),
    );
    assert_eq!(engine.stats().dropped_refused, 2);
}

#[test]
fn send_queue_cap_refuses_own_messages_and_counts_but_control_still_flows() {
    let mut engine = node(
        1,
        Config {
            max_queue_bytes: 2_000,
            ..Config::default()
        },
    );
    let mut peer = RawPeer::connect(&mut engine, 2);
    events(&mut engine);
    // Without transmitting, own broadcasts fill the link's queue up to the cap, then fail.
    let mut ok = 0;
    let mut full = 0;
    for k in 0..40u32 {
        match engine.broadcast(START, &k.to_be_bytes().repeat(50)) {
            Ok(_) => ok += 1,
            Err(SendError::QueueFull) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok >= 1 && full >= 1, "ok {ok}, full {full}");
    assert!(engine.stats().dropped_queue_full >= full as u64);
    // Control traffic still gets through (heartbeats): the peer can still ping us.
    peer.send(
        &mut engine,
        Message::Ping(whispurr_core::wire::Ping { id: 7, sent_at: 0 }),
    );
    let frames = peer.pump(&mut engine);
    assert!(!frames.is_empty() || engine.stats().frames_sent > 0);
}

#[test]
fn padding_puts_every_record_on_a_bucket() {
    let ob = Obfuscation {
        padding_buckets: vec![128, 256, 512, 1024, 2048],
        ..Obfuscation::off()
    };
    let mut net = Net::new(2, |_| Config {
        obfuscation: ob.clone(),
        ..Config::default()
    });
    net.connect_all();
    let now = net.now;
    for len in [1usize, 50, 300, 700] {
        net.nodes[0].broadcast(now, &vec![7u8; len]).unwrap();
    }
    // Look at node 0's own records as the adapter sees them.
    let to = net.key(1);
    net.nodes[0].whisper(now, to, None, b"sizes").unwrap();
    let mut sizes = Vec::new();
    while let Some(t) = net.nodes[0].poll_transmit(now) {
        sizes.push(t.record.len());
    }
    assert!(!sizes.is_empty());
    assert!(net.nodes[0].stats().padding_bytes > 0);
    // Records through the relay carry a relay frame around a padded tunnel record; the outer
    // record is padded too, so every size is a bucket.
    for s in &sizes {
        assert!(
            [128, 256, 512, 1024, 2048].contains(s),
            "record of {s} bytes: {sizes:?}"
        );
    }
}

#[test]
fn jitter_delays_but_delivers() {
    let mut net = Net::new(2, |_| Config {
        obfuscation: Obfuscation {
            max_jitter: Duration::from_millis(50),
            ..Obfuscation::off()
        },
        ..Config::default()
    });
    net.nodes[0].add_relay(net.now, "relay").unwrap();
    net.nodes[1].add_relay(net.now, "relay").unwrap();
    net.run_for(2 * SEC, Duration::from_millis(10));
    assert_eq!(net.nodes[0].stats().peers, 1);
    let now = net.now;
    net.nodes[0].broadcast(now, b"later").unwrap();
    net.run_for(SEC, Duration::from_millis(10));
    assert!(
        net.take(1)
            .iter()
            .any(|e| matches!(e, Event::Broadcast { payload, .. } if payload == b"later"))
    );
    assert!(net.nodes[0].stats().jitter_delays > 0);
}

#[test]
fn cover_traffic_flows_and_is_discarded() {
    let mut net = Net::new(2, |_| Config {
        obfuscation: Obfuscation {
            cover_interval: Some(Duration::from_millis(500)),
            ..Obfuscation::off()
        },
        ..Config::default()
    });
    net.connect_all();
    net.run_for(5 * SEC, MS100);
    let (a, b) = (net.nodes[0].stats(), net.nodes[1].stats());
    assert!(a.cover_sent >= 4, "{}", a.cover_sent);
    assert!(b.cover_received >= 4, "{}", b.cover_received);
    assert_eq!(a.dropped_unhandled + b.dropped_unhandled, 0);
    let _ = Timestamp::ZERO;
}

#[test]
fn peer_exchange_learns_valid_ids_only_and_respects_max_peers() {
    let mut engine = node(
        1,
        Config {
            max_peers: 3,
            ..Config::default()
        },
    );
    let mut peer = RawPeer::connect(&mut engine, 2);
    let ids: Vec<whispurr_core::NodeId> = (10..14u64)
        .map(|s| *Identity::generate(&mut ChaCha20Rng::seed_from_u64(s), START).node_id())
        .collect();
    let mut raw = vec![0u8; 5 * 40];
    let n = whispurr_core::wire::encode_node_ids(&ids, &mut raw);
    // One more entry whose key is not on the curve.
    raw[n..n + 32].copy_from_slice(&[0u8; 32]);
    peer.send(
        &mut engine,
        Message::Peers(whispurr_core::wire::Peers {
            peers: whispurr_core::wire::List::from_raw(&raw),
        }),
    );
    // The raw peer plus two learned IDs fill max_peers = 3; the invalid one is never stored.
    assert_eq!(engine.known_peers(), 3);
    assert_eq!(engine.stats().links_failed, 0);
}

#[test]
fn tunnelled_traffic_respects_the_relay_link_queue_cap() {
    let cap = 8_000;
    let mut net = Net::new(2, |_| Config {
        max_queue_bytes: cap,
        ..Config::default()
    });
    net.connect_all();
    let now = net.now;
    let mut refused = 0;
    for k in 0..100u32 {
        if net.nodes[0]
            .broadcast(now, &k.to_be_bytes().repeat(100))
            .is_err()
        {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "the application was told when the queues were full"
    );
    // Both queues on the way are capped: the tunnel's (records waiting for room on the relay
    // link) and the relay link's. Draining everything yields at most the two caps together,
    // plus the RELAY framing around each tunnelled record.
    let (mut bytes, mut records) = (0, 0);
    while let Some(t) = net.nodes[0].poll_transmit(now) {
        bytes += t.record.len();
        records += 1;
    }
    assert!(
        bytes <= 2 * cap + records * 64,
        "{bytes} bytes in {records} records, caps {cap} + {cap}"
    );
    assert!(bytes > cap / 2, "the queues were in use: {bytes}");
}

/// The TREE frames among `frames`.
fn tree_frames(frames: &[Vec<u8>]) -> Vec<Tree<'_>> {
    frames
        .iter()
        .filter_map(
            |f| match Frame::decode(f, &Limits::default()).ok()?.message {
                Message::Tree(t) => Some(t),
                _ => None,
            },
        )
        .collect()
}

fn tree_node(tree: TreeConfig) -> Node {
    node(
        1,
        Config {
            gossip: Gossip::Tree(tree),
            ..Config::default()
        },
    )
}

#[test]
fn announced_but_missing_broadcasts_are_capped() {
    let mut engine = tree_node(TreeConfig {
        cache: 8,
        ..TreeConfig::default()
    });
    let mut peer = RawPeer::connect(&mut engine, 2);
    let mut grafts = 0;
    for i in 0..12u8 {
        let mut entry = [i; 17];
        entry[16] = 1; // hops
        let ihave = Message::Tree(Tree::IHave {
            entries: List::from_raw(&entry),
        });
        grafts += tree_frames(&peer.send(&mut engine, ihave))
            .iter()
            .filter(|t| matches!(t, Tree::Graft { .. }))
            .count();
    }
    // The first is grafted at once (no tree link yet), which makes the peer's link a tree
    // link; the others wait for their graft timers. Past the cap they are dropped and counted.
    assert_eq!(grafts, 1);
    assert_eq!(engine.stats().grafts_sent, 1);
    assert_eq!(engine.stats().dropped_queue_full, 4);
}

#[test]
fn a_tree_link_is_pruned_after_prune_after_duplicates() {
    let mut engine = tree_node(TreeConfig {
        prune_after: 3,
        ..TreeConfig::default()
    });
    let mut peer = RawPeer::connect(&mut engine, 2);
    let copy = Message::Broadcast(Broadcast {
        route: route(9),
        origin: None,
        payload: b"once",
        signature: None,
    });
    peer.send(&mut engine, copy);
    assert_eq!(engine.tree_links(), vec![*peer.identity.node_id().key()]);
    for dup in 1..=3 {
        let prunes = tree_frames(&peer.send(&mut engine, copy))
            .iter()
            .filter(|t| matches!(t, Tree::Prune))
            .count();
        assert_eq!(prunes, usize::from(dup == 3), "after duplicate {dup}");
    }
    assert!(engine.tree_links().is_empty());
    assert_eq!(engine.stats().prunes_sent, 1);
    assert_eq!(engine.stats().duplicates, 3);
}

#[test]
fn probes_by_others_are_capped() {
    let mut engine = node(
        1,
        Config {
            membership: Some(whispurr_core::engine::MembershipConfig::default()),
            gossip: Gossip::Tree(TreeConfig::default()),
            listen_addr: Some("sim://0".into()),
            ..Config::default()
        },
    );
    let mut peers: Vec<RawPeer> = (0..5)
        .map(|i| RawPeer::connect(&mut engine, 10 + i))
        .collect();
    for peer in &mut peers {
        peer.send(
            &mut engine,
            Message::Membership(whispurr_core::wire::Membership::Probe),
        );
    }
    let closed: Vec<LinkId> = std::iter::from_fn(|| engine.poll_action())
        .filter_map(|a| match a {
            whispurr_core::engine::Action::Close { link } => Some(link),
            _ => None,
        })
        .collect();
    // Four probes are served; the fifth link is closed, on purpose.
    assert_eq!(closed, vec![peers[4].link]);
    let refused = *peers[4].identity.node_id().key();
    let ev = events(&mut engine);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::PeerDown { peer, reason: DownReason::Closed } if *peer == refused
        )),
        "{ev:?}"
    );
    let neighbours = engine.neighbour_keys();
    for peer in &peers[..4] {
        assert!(neighbours.contains(peer.identity.node_id().key()));
    }
}
