//! Regression tests for the attacks of the security review (issue 11), one per finding, named
//! for it. Each failed on the code before its fix.

mod common;

use std::time::Duration;

use common::net::Net;
use whispurr_core::engine::{Config, Event};

const SEC: Duration = Duration::from_secs(1);
const MS100: Duration = Duration::from_millis(100);

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Finding 5: a relay reconnect that fires while the link table is full was dropped for good.
#[test]
fn finding_05_a_failed_relay_reconnect_is_retried() {
    let mut net = Net::new(1, |_| Config {
        max_links: 2,
        ..Config::default()
    });
    net.connect_all();
    net.take(0);
    // The relay link drops, and an attacker holds both link slots with idle inbound links
    // while the reconnect comes due.
    net.drop_relay_links();
    let now = net.now;
    let a = net.nodes[0].handle_incoming(now).unwrap();
    let b = net.nodes[0].handle_incoming(now).unwrap();
    net.run_for(5 * SEC, MS100);
    // Then the attacker lets go.
    let now = net.now;
    let _ = net.nodes[0].handle_link_down(now, a);
    let _ = net.nodes[0].handle_link_down(now, b);
    net.run_for(120 * SEC, MS100);
    let ev = net.take(0);
    assert_eq!(
        count(&ev, |e| matches!(e, Event::RelayUp { .. })),
        1,
        "{ev:?}"
    );
}

/// Finding 8: a peer could make a node open a WebRTC connection (and so learn its addresses)
/// by sending an offer, whatever the node's settings.
#[test]
fn finding_08_a_peer_cannot_force_a_webrtc_connection() {
    use whispurr_core::{
        crypto::link::LinkConfig,
        engine::{Action, Addr, CAP_WEBRTC, WebRtcSignal},
        wire::{Frame, Message, Signal},
    };
    let webrtc = LinkConfig {
        capabilities: CAP_WEBRTC,
        ..LinkConfig::default()
    };
    // (node's try_direct, node's capabilities, peer's capabilities, peer offers rightly)
    let cases = [
        (false, CAP_WEBRTC, CAP_WEBRTC, true),
        (true, 0, CAP_WEBRTC, true),
        (true, CAP_WEBRTC, 0, true),
        (true, CAP_WEBRTC, CAP_WEBRTC, false),
        (true, CAP_WEBRTC, CAP_WEBRTC, true),
    ];
    for (try_direct, mine, theirs, right_side) in cases {
        let mut engine = common::net::node(
            1,
            Config {
                try_direct,
                link: LinkConfig {
                    capabilities: mine,
                    ..webrtc
                },
                ..Config::default()
            },
        );
        // A peer whose key is smaller than the node's offers by the rule; a larger one does not.
        let seed = common::net::seed_with_key(|k| (k < engine.node_id().key()) == right_side);
        let (identity, mut conn, link) = common::net::raw_peer_with(&mut engine, seed, theirs);
        common::net::pump_raw(&mut engine, &mut conn, link);
        while engine.poll_action().is_some() {}
        let offer = Message::Signal(Signal {
            target: *engine.node_id().key(),
            origin: *identity.node_id(),
            signal: WebRtcSignal::Offer { sdp: "v=0\r\n" },
        });
        conn.queue_frame(&Frame::new(offer), 0, true).unwrap();
        common::net::pump_raw(&mut engine, &mut conn, link);
        let opened = std::iter::from_fn(|| engine.poll_action()).any(|a| {
            matches!(
                a,
                Action::Connect {
                    addr: Addr::WebRtc { .. },
                    ..
                }
            )
        });
        let allowed = try_direct && mine != 0 && theirs != 0 && right_side;
        assert_eq!(
            opened, allowed,
            "try_direct {try_direct}, caps {mine}/{theirs}, offerer rule kept: {right_side}"
        );
    }
}

/// The engine with a relay link to a relay the attacker runs: a real responder session, so the
/// attacker reads every frame the node sends to its relay and can answer anything.
struct EvilRelay {
    conn: whispurr_core::conn::Conn<whispurr_core::crypto::RustCrypto>,
    link: whispurr_core::engine::LinkId,
}

impl EvilRelay {
    fn attach(engine: &mut common::net::Node) -> Self {
        use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
        use whispurr_core::{Identity, conn::Conn, crypto::RustCrypto, engine::Action};
        let now = common::net::START;
        let link = engine.add_relay(now, "wss://evil.example/").unwrap();
        assert!(matches!(engine.poll_action(), Some(Action::Connect { .. })));
        engine.handle_link_up(now, link).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(666);
        let identity = Identity::generate(&mut rng, now);
        let conn = Conn::responder(
            RustCrypto,
            &identity,
            Default::default(),
            1 << 20,
            65_535,
            now,
            &mut rng,
        );
        let mut relay = EvilRelay { conn, link };
        relay.pump(engine);
        assert!(relay.conn.is_established());
        relay
    }

    /// Moves records both ways; returns the frames the node sent to its relay.
    fn pump(&mut self, engine: &mut common::net::Node) -> Vec<Vec<u8>> {
        common::net::pump_raw(engine, &mut self.conn, self.link)
    }
}

/// Finding 2: a relay could read a whisper's id, drop the whisper and fake its delivery with a
/// sealed ACK from a throwaway identity.
#[test]
fn finding_02_a_relay_can_neither_see_a_whisper_id_nor_fake_its_delivery() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use whispurr_core::{
        Identity,
        crypto::{RustCrypto, seal},
        wire::{Ack, Frame, Limits, Message, Relay, RelayStage},
    };
    let mut engine = common::net::node(
        1,
        Config {
            auto_connect: false,
            ..Config::default()
        },
    );
    let mut relay = EvilRelay::attach(&mut engine);
    let victim = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2), common::net::START);
    let now = common::net::START;
    let id = engine
        .whisper(now, *victim.node_id().key(), None, b"for the victim only")
        .unwrap();
    let frames = relay.pump(&mut engine);
    // What the relay carries for the victim: one sealed box, with no trace of the whisper id.
    let sealed: Vec<Vec<u8>> = frames
        .iter()
        .filter_map(
            |f| match Frame::decode(f, &Limits::default()).ok()?.message {
                Message::Relay(r) if r.stage == RelayStage::Sealed => Some(r.payload.to_vec()),
                _ => None,
            },
        )
        .collect();
    assert_eq!(sealed.len(), 1);
    assert!(
        !sealed[0].windows(16).any(|w| w == id.0),
        "the id is visible"
    );

    // Even a relay that learned the id cannot fake the acknowledgement: a sealed ACK from a
    // throwaway identity (honestly sealed, so the box itself opens) does not count.
    let throwaway = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3), now);
    let ack = Message::Ack(Ack { id });
    let mut plain = vec![0u8; 64];
    let n = Frame::new(ack).encode(&mut plain).unwrap();
    let mut boxed = vec![0u8; n + seal::SEAL_OVERHEAD];
    let len = seal::seal(
        &RustCrypto,
        &mut ChaCha20Rng::seed_from_u64(4),
        throwaway.key_pair(),
        engine.node_id().key(),
        &plain[..n],
        &mut boxed,
    )
    .unwrap();
    for peer in [*throwaway.node_id().key(), *victim.node_id().key()] {
        let forged = Message::Relay(Relay {
            peer,
            stage: RelayStage::Sealed,
            payload: &boxed[..len],
        });
        relay
            .conn
            .queue_frame(&Frame::new(forged), 0, true)
            .unwrap();
        relay.pump(&mut engine);
    }
    let ev: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
    assert_eq!(
        count(&ev, |e| matches!(e, Event::WhisperDelivered { .. })),
        0,
        "{ev:?}"
    );
    assert_eq!(engine.stats().whispers_delivered, 0);
    // Both forgeries are counted: under its own key the ACK is not the addressee's, and under
    // the victim's key the box does not prove the victim sent it.
    assert_eq!(engine.stats().dropped_invalid, 2);
    // The node keeps retrying and finally says it failed; it never claims delivery.
    let mut failed = false;
    for _ in 0..100 {
        let Some(t) = engine.poll_timeout() else {
            break;
        };
        engine.handle_timeout(t);
        relay.pump(&mut engine);
        let ev: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
        assert_eq!(
            count(&ev, |e| matches!(e, Event::WhisperDelivered { .. })),
            0
        );
        if ev
            .iter()
            .any(|e| matches!(e, Event::WhisperFailed { id: f, .. } if *f == id))
        {
            failed = true;
            break;
        }
    }
    assert!(failed, "the whisper was reported failed");
}

/// Finding 6: first handshake messages through a relay from ever new sources each allocated a
/// tunnel (and cost a key generation and two ECDH), until the link table was full.
#[test]
fn finding_06_fake_tunnels_cannot_fill_the_link_table() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use whispurr_core::{
        Identity, NodeKey,
        conn::Conn,
        crypto::RustCrypto,
        wire::{Frame, Message, Relay, RelayStage},
    };
    let config = Config::default();
    let (max_links, max_inbound) = (config.max_links, config.max_inbound_tunnels);
    let mut engine = common::net::node(1, config);
    let mut relay = EvilRelay::attach(&mut engine);
    let now = common::net::START;
    // The relay claims a fresh source for each first message (it costs it nothing).
    let first_message = |seed: u64| {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let id = Identity::generate(&mut rng, now);
        let mut c = Conn::initiator(
            RustCrypto,
            &id,
            None,
            Default::default(),
            1 << 20,
            65_535,
            now,
            &mut rng,
        );
        c.pop_record().unwrap()
    };
    let attempts = 2 * max_links as u64;
    for k in 0..attempts {
        let payload = first_message(1_000 + k);
        let msg = Message::Relay(Relay {
            peer: NodeKey([k as u8 + 1; 32]),
            stage: RelayStage::Handshake,
            payload: &payload,
        });
        relay.conn.queue_frame(&Frame::new(msg), 0, true).unwrap();
        relay.pump(&mut engine);
    }
    let refused = engine.stats().dropped_refused;
    assert!(
        refused >= attempts - max_inbound as u64,
        "{refused} of {attempts} refused"
    );
    // The node can still open links of its own.
    for k in 0..(max_links - 1 - max_inbound) {
        engine
            .connect_peer(now, &format!("ws://127.0.0.1:{}/", 9000 + k))
            .unwrap();
    }
}

/// Two raw peers of one engine: `a` is honest, `b` the forwarder who attacks.
fn two_raw_peers(
    config: Config,
) -> (
    common::net::Node,
    [(
        whispurr_core::Identity,
        whispurr_core::conn::Conn<whispurr_core::crypto::RustCrypto>,
        whispurr_core::engine::LinkId,
    ); 2],
) {
    let mut engine = common::net::node(1, config);
    let mut a = common::net::raw_peer(&mut engine, 2);
    common::net::pump_raw(&mut engine, &mut a.1, a.2);
    let mut b = common::net::raw_peer(&mut engine, 3);
    common::net::pump_raw(&mut engine, &mut b.1, b.2);
    while engine.poll_event().is_some() {}
    (engine, [a, b])
}

fn send_raw(
    engine: &mut common::net::Node,
    peer: &mut (
        whispurr_core::Identity,
        whispurr_core::conn::Conn<whispurr_core::crypto::RustCrypto>,
        whispurr_core::engine::LinkId,
    ),
    message: whispurr_core::wire::Message<'_>,
) {
    use whispurr_core::wire::Frame;
    if peer.1.queue_frame(&Frame::new(message), 0, true).is_ok() {
        common::net::pump_raw(engine, &mut peer.1, peer.2);
    }
}

fn delivered(engine: &mut common::net::Node) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            Event::Broadcast { payload, .. } => Some(payload),
            _ => None,
        })
        .collect()
}

fn signed_by(
    origin: &whispurr_core::Identity,
    route: whispurr_core::wire::Route,
    payload: &[u8],
) -> whispurr_core::wire::Signature {
    whispurr_core::crypto::sign::sign_broadcast(
        &whispurr_core::crypto::RustCrypto,
        origin.key_pair(),
        origin.node_id(),
        &route,
        payload,
    )
}

/// A route with id `id` bound to `origin`'s key (`None`: anonymous).
fn bound_route(
    id: u8,
    timestamp: whispurr_core::Timestamp,
    origin: Option<&whispurr_core::Identity>,
) -> whispurr_core::wire::Route {
    whispurr_core::wire::Route {
        id: whispurr_core::crypto::sign::bind_broadcast_id(
            whispurr_core::wire::MessageId([id; 16]),
            origin.map(|o| o.node_id().key()),
        ),
        ..route(id, timestamp)
    }
}

fn route(id: u8, timestamp: whispurr_core::Timestamp) -> whispurr_core::wire::Route {
    whispurr_core::wire::Route {
        id: whispurr_core::wire::MessageId([id; 16]),
        timestamp: timestamp.as_millis(),
        ttl_ms: 60_000,
        hops: 1,
        hop_limit: 8,
    }
}

/// Finding 1: a forwarder could take over a signed broadcast's id with an anonymous copy (or
/// one with a bad signature) and so censor the genuine one everywhere.
#[test]
fn finding_01_a_copy_that_fails_verification_cannot_take_a_signed_id() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use whispurr_core::{
        Identity,
        wire::{Broadcast, Message},
    };
    let now = common::net::START;
    let origin = Identity::generate(&mut ChaCha20Rng::seed_from_u64(9), now);
    let r = bound_route(7, now, Some(&origin));
    let genuine = Message::Broadcast(Broadcast {
        route: r,
        origin: Some(*origin.node_id()),
        payload: b"genuine",
        signature: Some(signed_by(&origin, r, b"genuine")),
    });
    // A copy with the genuine origin and signature but another payload: it fails verification.
    let bad_signature = Message::Broadcast(Broadcast {
        payload: b"forged",
        ..match genuine {
            Message::Broadcast(b) => b,
            _ => unreachable!(),
        }
    });
    let anonymous = Message::Broadcast(Broadcast {
        route: r,
        origin: None,
        payload: b"forged",
        signature: None,
    });
    // Another origin's validly signed message under the same id.
    let mallory = Identity::generate(&mut ChaCha20Rng::seed_from_u64(10), now);
    let other_origin = Message::Broadcast(Broadcast {
        route: r,
        origin: Some(*mallory.node_id()),
        payload: b"forged",
        signature: Some(signed_by(&mallory, r, b"forged")),
    });
    // Each forgery from its own forwarder (each costs its sender the link), then the genuine
    // copy: it is delivered, the forgeries are not, whether or not the node takes anonymous
    // broadcasts.
    for accept_anonymous in [true, false] {
        for forgery in [anonymous, bad_signature, other_origin] {
            let (mut engine, [mut honest, mut forger]) = two_raw_peers(Config {
                accept_anonymous,
                ..Config::default()
            });
            send_raw(&mut engine, &mut forger, forgery);
            send_raw(&mut engine, &mut honest, genuine);
            assert_eq!(delivered(&mut engine), vec![b"genuine".to_vec()]);
            assert_eq!(engine.stats().links_failed, 1, "the forger's link");
        }
    }
    // A node can refuse anonymous broadcasts altogether (counted, no id taken).
    let (mut engine, [_, mut sender]) = two_raw_peers(Config {
        accept_anonymous: false,
        ..Config::default()
    });
    let honest_anonymous = Message::Broadcast(Broadcast {
        route: bound_route(8, now, None),
        origin: None,
        payload: b"anonymous",
        signature: None,
    });
    send_raw(&mut engine, &mut sender, honest_anonymous);
    assert!(delivered(&mut engine).is_empty());
    assert_eq!(engine.stats().dropped_refused, 1);
    assert_eq!(engine.stats().links_failed, 0);
}

/// Finding 4: the de-duplication set forgot ids while their messages were still valid
/// (evicted when full, or expired after a fixed time regardless of the message's timestamp),
/// so a kept copy could be accepted again.
#[test]
fn finding_04_an_accepted_message_is_never_accepted_again_while_valid() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use whispurr_core::{
        Identity,
        wire::{Broadcast, Message, Route},
    };
    let now = common::net::START;
    let origin = Identity::generate(&mut ChaCha20Rng::seed_from_u64(9), now);
    let (mut engine, [mut honest, mut replayer]) = two_raw_peers(Config {
        max_seen: 8,
        ..Config::default()
    });
    // Stamped 29 s ahead (within the clock-skew window), with the longest TTL allowed.
    let r = Route {
        ttl_ms: 600_000,
        ..bound_route(
            1,
            now.saturating_add(Duration::from_secs(29)),
            Some(&origin),
        )
    };
    let signed = Message::Broadcast(Broadcast {
        route: r,
        origin: Some(*origin.node_id()),
        payload: b"once",
        signature: Some(signed_by(&origin, r, b"once")),
    });
    send_raw(&mut engine, &mut honest, signed);
    assert_eq!(delivered(&mut engine).len(), 1);
    // A flood of free anonymous broadcasts does not flush it.
    for k in 0..50u8 {
        let flood = Message::Broadcast(Broadcast {
            route: bound_route(100 + k, now, None),
            origin: None,
            payload: b"flood",
            signature: None,
        });
        send_raw(&mut engine, &mut replayer, flood);
    }
    delivered(&mut engine);
    // Replayed at 601 s: still valid (stamped 29 s ahead), still remembered.
    let later = now.saturating_add(Duration::from_secs(601));
    engine.handle_timeout(later);
    let mut replay = signed;
    if let Message::Broadcast(b) = &mut replay {
        b.route.hops = 2;
    }
    let link = replayer.2;
    replayer
        .1
        .queue_frame(&whispurr_core::wire::Frame::new(replay), 0, true)
        .unwrap();
    while let Some(r) = replayer.1.pop_record() {
        let _ = engine.handle_data(later, link, r);
    }
    assert!(delivered(&mut engine).is_empty(), "replayed");
}

/// Finding 7: every forged signature cost the node a verification and its sender nothing, and
/// forged origins pushed real keys out of the verifying-key cache.
#[test]
fn finding_07_a_forged_signature_costs_its_sender_the_link() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    use whispurr_core::{
        Identity,
        wire::{Broadcast, Message, Signature},
    };
    let now = common::net::START;
    let (mut engine, [_, mut forger]) = two_raw_peers(Config::default());
    // Ten forged broadcasts, each from a fresh "origin" with a garbage signature (ids bound
    // to those origins, so only the signature check can catch them).
    for k in 0..10u8 {
        let origin = Identity::generate(&mut ChaCha20Rng::seed_from_u64(100 + u64::from(k)), now);
        let forged = Message::Broadcast(Broadcast {
            route: bound_route(k, now, Some(&origin)),
            origin: Some(*origin.node_id()),
            payload: b"forged",
            signature: Some(Signature([7; 64])),
        });
        send_raw(&mut engine, &mut forger, forged);
    }
    let s = engine.stats();
    assert_eq!(
        s.signatures_verified, 1,
        "one verification, then the link was gone"
    );
    assert_eq!(s.links_failed, 1);
}

/// Finding 12 (events): the event queue was capped in count only, so `max_events` events of
/// 64 KiB could hold hundreds of MiB for an application that polls slowly.
#[test]
fn finding_12_the_event_queue_is_capped_in_bytes() {
    use whispurr_core::wire::{Broadcast, Message};
    let now = common::net::START;
    let (mut engine, [mut sender, _]) = two_raw_peers(Config {
        max_event_bytes: 150_000,
        ..Config::default()
    });
    let payload = vec![7u8; 60_000];
    for k in 0..5u8 {
        let big = Message::Broadcast(Broadcast {
            route: bound_route(k, now, None),
            origin: None,
            payload: &payload,
            signature: None,
        });
        send_raw(&mut engine, &mut sender, big);
    }
    // Nothing polled meanwhile: only what fits in 150 kB is held, the oldest went first.
    let held: Vec<Vec<u8>> = delivered(&mut engine);
    assert_eq!(held.len(), 2);
    assert_eq!(engine.stats().dropped_event_overflow, 3);
}

/// Finding 9: an anonymous broadcast's origin was the one neighbour sending it with hop count
/// 1 and an exact millisecond timestamp.
#[test]
fn finding_09_an_anonymous_origin_sends_only_a_stem_copy_to_one_neighbour() {
    use whispurr_core::{
        engine::BroadcastAuth,
        wire::{Frame, Limits, Message},
    };
    let mut engine = common::net::node(
        1,
        Config {
            broadcast_auth: BroadcastAuth::Anonymous,
            ..Config::default()
        },
    );
    let mut peers: Vec<_> = (0..4)
        .map(|k| common::net::raw_peer(&mut engine, 10 + k))
        .collect();
    common::net::pump_peers(&mut engine, &mut peers);
    while engine.poll_event().is_some() {}
    let now = common::net::START.saturating_add(Duration::from_millis(1_234));
    for k in 0..20u8 {
        engine.broadcast(now, &[k; 8]).unwrap();
        let mut copies = Vec::new();
        for frames in common::net::pump_peers(&mut engine, &mut peers) {
            for f in frames {
                if let Ok(Message::Broadcast(b)) =
                    Frame::decode(&f, &Limits::default()).map(|f| f.message)
                {
                    copies.push(b.route);
                }
            }
        }
        // One copy, to one neighbour, marked as stem (hop count 0), stamped to the second.
        assert_eq!(copies.len(), 1, "broadcast {k}: {copies:?}");
        assert_eq!(copies[0].hops, 0);
        assert_eq!(copies[0].timestamp % 1000, 0);
    }
}

/// Finding 9, the other side: a stem node either passes the stem to one other neighbour, or
/// diffuses the message like an origin (hop count 1 to every neighbour, the sender included).
#[test]
fn finding_09_a_stem_node_relays_or_diffuses_like_an_origin() {
    use whispurr_core::wire::{Broadcast, Frame, Limits, Message};
    let now = common::net::START;
    let (mut relayed, mut diffused) = (0, 0);
    for k in 0..16u8 {
        let mut engine = common::net::node(100 + u64::from(k), Config::default());
        let mut peers: Vec<_> = (0..3)
            .map(|j| common::net::raw_peer(&mut engine, 10 + j))
            .collect();
        common::net::pump_peers(&mut engine, &mut peers);
        while engine.poll_event().is_some() {}
        let stem = Message::Broadcast(Broadcast {
            route: whispurr_core::wire::Route {
                hops: 0,
                ..bound_route(k, now, None)
            },
            origin: None,
            payload: b"stem",
            signature: None,
        });
        peers[0].1.queue_frame(&Frame::new(stem), 0, true).unwrap();
        let mut hops = Vec::new();
        for frames in common::net::pump_peers(&mut engine, &mut peers) {
            for f in frames {
                if let Ok(Message::Broadcast(b)) =
                    Frame::decode(&f, &Limits::default()).map(|f| f.message)
                {
                    hops.push(b.route.hops);
                }
            }
        }
        let delivered = delivered(&mut engine).len();
        match hops.as_slice() {
            [0] => {
                relayed += 1;
                assert_eq!(delivered, 0, "a stem relay does not deliver yet");
            }
            [1, 1, 1] => {
                diffused += 1;
                assert_eq!(delivered, 1);
            }
            other => panic!("neither a stem nor a diffusion: {other:?}"),
        }
    }
    assert!(
        relayed > 0 && diffused > 0,
        "{relayed} relayed, {diffused} diffused"
    );
}

/// Finding 9, the loop home: a stem that comes back to its origin (origin → X → … → Y →
/// origin, each stem relay holding it only as such) is diffused by the origin at once. It used
/// to be taken for a copy of a message already seen: dropped, and the fail-safe, believing the
/// diffusion under way, stood down; no node ever delivered the broadcast.
#[test]
fn finding_09_a_stem_that_loops_back_to_its_origin_is_diffused_there() {
    use whispurr_core::{
        engine::BroadcastAuth,
        wire::{Frame, Limits, Message},
    };
    let decode = |frames: Vec<Vec<Vec<u8>>>| -> Vec<(usize, Vec<u8>, u8)> {
        let mut copies = Vec::new();
        for (p, frames) in frames.into_iter().enumerate() {
            for f in frames {
                if let Ok(Message::Broadcast(b)) =
                    Frame::decode(&f, &Limits::default()).map(|f| f.message)
                {
                    copies.push((p, f.clone(), b.route.hops));
                }
            }
        }
        copies
    };
    let mut engine = common::net::node(1, Config::default());
    let mut peers: Vec<_> = (0..4)
        .map(|k| common::net::raw_peer(&mut engine, 10 + k))
        .collect();
    common::net::pump_peers(&mut engine, &mut peers);
    while engine.poll_event().is_some() {}
    let now = common::net::START;
    engine
        .broadcast_with(now, b"round trip", BroadcastAuth::Anonymous)
        .unwrap();
    let stem = decode(common::net::pump_peers(&mut engine, &mut peers));
    assert!(
        matches!(stem.as_slice(), [(_, _, 0)]),
        "one stem copy: {stem:?}"
    );
    assert_eq!(delivered(&mut engine), [b"round trip".to_vec()]);
    // The stem went round and comes back from another neighbour, still a stem.
    let (first, frame, _) = stem[0].clone();
    let back = (first + 1) % peers.len();
    peers[back].1.queue_plaintext(&frame).unwrap();
    let copies = decode(common::net::pump_peers(&mut engine, &mut peers));
    let mut reached: Vec<usize> = copies.iter().map(|(p, _, _)| *p).collect();
    reached.sort_unstable();
    assert_eq!(
        reached,
        [0, 1, 2, 3],
        "diffused to every neighbour: {copies:?}"
    );
    assert!(copies.iter().all(|(_, _, hops)| *hops == 1), "{copies:?}");
    assert!(
        delivered(&mut engine).is_empty(),
        "delivered once, when sent"
    );
    // The diffusion is under way: the fail-safe has nothing left to do.
    let later = now.saturating_add(Duration::from_secs(3));
    engine.handle_timeout(later);
    assert!(decode(common::net::pump_peers(&mut engine, &mut peers)).is_empty());
    assert_eq!(engine.stats().stem_fail_safes, 0);
    assert_eq!(engine.stats().stem_loops, 1);
}
