//! Regression tests for findings 3 and 11 of the security review (issue 11): intents recovered by
//! dictionary from what nodes announce and join, and resonance fields a forwarder could change.
//! Each is named for its finding and failed on the code before the fix.

mod common;

use std::time::Instant;

use common::net::{Net, Node, START, node, raw_peer};
use hkdf::Hkdf;
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use sha2::Sha256;
use whispurr_core::{
    Identity, NodeKey,
    conn::{Conn, Received},
    crypto::RustCrypto,
    derive::{BlindedKey, Intent, IntentKdf, global_namespace},
    engine::{Action, Config, Event, LinkId, SendError},
    relay::error_code,
    wire::{Announce, ErrorMsg, Frame, Join, Limits, List, Lookup, Message, Resonance, Route},
};

/// Argon2id at its cheapest, for tests that are not about the KDF's cost.
const CHEAP: IntentKdf = IntentKdf {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn cheap() -> Config {
    Config {
        intent_kdf: CHEAP,
        ..Config::default()
    }
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn events(engine: &mut Node) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

fn decode(bytes: &[u8]) -> Message<'_> {
    Frame::decode(bytes, &Limits::default())
        .expect("the engine sends valid frames")
        .message
}

/// The entries of the last ANNOUNCE among `frames`.
fn last_announce(frames: &[Vec<u8>]) -> Vec<[u8; 32]> {
    frames
        .iter()
        .filter_map(|f| match decode(f) {
            Message::Announce(a) => Some(a.blinded.keys().collect()),
            _ => None,
        })
        .next_back()
        .expect("an ANNOUNCE")
}

/// The RESONANCE frames among `frames`: route, tag, strength, payload.
fn resonances(frames: &[Vec<u8>]) -> Vec<(Route, BlindedKey, f32, Vec<u8>)> {
    frames
        .iter()
        .filter_map(|f| match decode(f) {
            Message::Resonance(r) => Some((r.route, r.tag, r.strength, r.payload.to_vec())),
            _ => None,
        })
        .collect()
}

/// A hand-driven neighbour on an inbound link of an engine: a real session, so it reads every
/// frame the engine sends it and can send anything.
struct Neighbour {
    me: Identity,
    conn: Conn<RustCrypto>,
    link: LinkId,
    /// Frames received from the engine, in order.
    inbox: Vec<Vec<u8>>,
}

impl Neighbour {
    fn attach(engine: &mut Node, seed: u64) -> Self {
        let (me, conn, link) = raw_peer(engine, seed);
        let mut n = Neighbour {
            me,
            conn,
            link,
            inbox: Vec::new(),
        };
        pump(engine, &mut [&mut n]);
        assert!(n.conn.is_established());
        n
    }

    fn key(&self) -> NodeKey {
        *self.me.node_id().key()
    }

    /// The link's binding: its session's handshake hash, which both ends know.
    fn binding(&self) -> [u8; 32] {
        self.conn.peer().expect("established").handshake_hash
    }

    fn queue(&mut self, message: Message<'_>) {
        self.conn
            .queue_frame(&Frame::new(message), 0, true)
            .expect("queued");
    }

    fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.inbox)
    }
}

/// Moves records both ways between `engine` and its neighbours until quiet.
fn pump(engine: &mut Node, neighbours: &mut [&mut Neighbour]) {
    for _ in 0..100 {
        let mut moved = false;
        for n in neighbours.iter_mut() {
            while let Some(r) = n.conn.pop_record() {
                moved = true;
                let _ = engine.handle_data(START, n.link, r);
            }
        }
        while let Some(mut t) = engine.poll_transmit(START) {
            moved = true;
            if let Some(n) = neighbours.iter_mut().find(|n| n.link == t.link)
                && let Ok(Received::Frame(len)) = n.conn.handle_data(START, &mut t.record)
            {
                n.inbox.push(t.record[..len].to_vec());
            }
        }
        if !moved {
            return;
        }
    }
}

/// The engine's relay link, to a relay the attacker runs: it reads every JOIN and LOOKUP.
fn evil_relay(engine: &mut Node) -> (Neighbour, NodeKey) {
    let link = engine.add_relay(START, "wss://evil.example/").unwrap();
    assert!(matches!(engine.poll_action(), Some(Action::Connect { .. })));
    engine.handle_link_up(START, link).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(666);
    let me = Identity::generate(&mut rng, START);
    let conn = Conn::responder(
        RustCrypto,
        &me,
        Default::default(),
        1 << 20,
        65_535,
        START,
        &mut rng,
    );
    let mut relay = Neighbour {
        me,
        conn,
        link,
        inbox: Vec::new(),
    };
    pump(engine, &mut [&mut relay]);
    assert!(relay.conn.is_established());
    let key = relay.key();
    (relay, key)
}

/// The namespaces of the JOINs and LOOKUPs among `frames`.
fn namespaces(frames: &[Vec<u8>]) -> Vec<[u8; 32]> {
    frames
        .iter()
        .filter_map(|f| match decode(f) {
            Message::Join(Join { namespace, .. }) | Message::Lookup(Lookup { namespace }) => {
                Some(namespace)
            }
            _ => None,
        })
        .collect()
}

/// The derivation the review's attacker ran: HKDF-SHA256 of the intent, constant salt.
fn old_derivation(intent: &str, label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"whispurr/v1/resonance"), intent.as_bytes())
        .expand(label, &mut out)
        .unwrap();
    out
}

const DICTIONARY: [&str; 6] = [
    "go",
    "poker",
    "chess",
    "whispurr/global",
    "midnight chess",
    "music",
];

/// Finding 3: resonance keys were a fast HKDF of the intent, announced to every neighbour and
/// joined at every relay; a million guesses found "chess" in seconds. Now nothing a neighbour
/// or a relay sees is the old derivation of any word, and confirming a guess takes an Argon2id
/// evaluation at the network's parameters.
#[test]
fn finding_03_a_dictionary_of_fast_derivations_finds_nothing_on_the_wire() {
    let kdf = IntentKdf::default();
    let mut victim = node(1, Config::default());
    victim.attune(START, "chess").unwrap();
    let victim_key = *victim.node_id().key();
    let (mut relay, relay_key) = evil_relay(&mut victim);
    let joined = namespaces(&relay.take());
    let mut n = Neighbour::attach(&mut victim, 7);
    let announced = last_announce(&n.take());
    // An attuned neighbour, to see a RESONANCE frame too.
    let chess = Intent::phrase("chess", &kdf).unwrap().resonance_key();
    let entry = chess.announcement(&n.binding(), &n.key());
    n.queue(Message::Announce(Announce {
        blinded: List::from_raw(&entry.0),
    }));
    pump(&mut victim, &mut [&mut n]);
    victim.resonate(START, "chess", 0.5, b"e2-e4").unwrap();
    pump(&mut victim, &mut [&mut n]);
    let tags: Vec<[u8; 32]> = resonances(&n.take()).iter().map(|r| r.1.0).collect();
    assert_eq!(tags.len(), 1);
    assert_eq!(joined.len(), 4, "JOIN and LOOKUP, global and chess");
    assert_eq!(announced.len(), 1);

    let seen: Vec<[u8; 32]> = [joined.clone(), announced.clone(), tags].concat();
    for word in DICTIONARY {
        for label in [&b"resonance key"[..], b"resonance content key"] {
            let guess = old_derivation(word, label);
            assert!(
                !seen.contains(&guess),
                "the fast derivation of {word:?} is on the wire"
            );
        }
    }

    // What confirming a guess costs now: one Argon2id evaluation per word, at the network's
    // parameters (then a cheap HKDF per link or relay). Only then does the word match.
    let mut by_neighbour = Vec::new();
    let mut by_relay = Vec::new();
    for word in DICTIONARY {
        let guess = Intent::phrase(word, &kdf).unwrap();
        let blinded = guess
            .resonance_key()
            .announcement(&n.binding(), &victim_key);
        if announced.contains(&blinded.0) {
            by_neighbour.push(word);
        }
        if joined.contains(&guess.rendezvous_key().namespace(&relay_key)) {
            by_relay.push(word);
        }
    }
    assert_eq!(by_neighbour, ["chess"]);
    assert_eq!(by_relay, ["chess"]);
    // A cheaper Argon2id is another function: guessing with it finds nothing.
    let cheaper = Intent::phrase("chess", &CHEAP).unwrap();
    assert!(
        !announced.contains(
            &cheaper
                .resonance_key()
                .announcement(&n.binding(), &victim_key)
                .0
        )
    );
    // The relay saw nothing a neighbour saw, and the global namespace is the public one.
    assert!(joined.contains(&global_namespace()));
    assert!(!joined.iter().any(|j| announced.contains(j)));
}

/// Finding 3: every neighbour got the same key for an intent, so neighbours on different links
/// could match each other's views, and any of them could hand the key back as its own.
#[test]
fn finding_03_announcements_of_one_intent_differ_per_link_and_need_the_intent() {
    let mut victim = node(1, cheap());
    victim.attune(START, "chess").unwrap();
    let victim_key = *victim.node_id().key();
    let mut n1 = Neighbour::attach(&mut victim, 7);
    let mut n2 = Neighbour::attach(&mut victim, 8);
    let e1 = last_announce(&n1.take());
    let e2 = last_announce(&n2.take());
    assert_eq!((e1.len(), e2.len()), (1, 1));
    assert_ne!(e1, e2, "the same intent looks different on each link");

    let chess = Intent::phrase("chess", &CHEAP).unwrap().resonance_key();
    let go = Intent::phrase("go", &CHEAP).unwrap().resonance_key();
    // An attuned neighbour recognises the intent on its own link, and only there.
    assert_eq!(e1[0], chess.announcement(&n1.binding(), &victim_key).0);
    assert_eq!(e2[0], chess.announcement(&n2.binding(), &victim_key).0);
    assert_ne!(e2[0], chess.announcement(&n1.binding(), &victim_key).0);
    // Without the intent there is nothing to recognise.
    assert_ne!(e1[0], go.announcement(&n1.binding(), &victim_key).0);

    // Handing the victim's own entry back does not pass for knowing the intent.
    n1.queue(Message::Announce(Announce {
        blinded: List::from_raw(&e1[0]),
    }));
    pump(&mut victim, &mut [&mut n1, &mut n2]);
    assert_eq!(
        victim.resonate(START, "chess", 1.0, b"x"),
        Err(SendError::NoRoute)
    );
    // A neighbour that knows the intent announces it for its own side of its link.
    let mine = chess.announcement(&n2.binding(), &n2.key());
    n2.queue(Message::Announce(Announce {
        blinded: List::from_raw(&mine.0),
    }));
    pump(&mut victim, &mut [&mut n1, &mut n2]);
    assert_eq!(
        last_announce(&n2.take()),
        e2,
        "a newly matched intent is announced back"
    );
    victim.resonate(START, "chess", 1.0, b"x").unwrap();
    pump(&mut victim, &mut [&mut n1, &mut n2]);
    let got = resonances(&n2.take());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, chess.tag(&n2.binding(), &victim_key));
    assert_ne!(got[0].1.0, e2[0], "the tag is not the announcement");
    assert!(resonances(&n1.take()).is_empty());
}

/// Finding 3: with blinded announcements, intent namespaces per relay and LOOKUP for members
/// only, attuned nodes still meet through a relay and resonate end to end — and only they.
#[test]
fn finding_03_attuned_nodes_meet_through_a_relay_and_resonate_end_to_end() {
    // No auto_connect: nodes meet only through their intents' namespaces.
    let mut net = Net::new(4, |_| Config {
        auto_connect: false,
        ..cheap()
    });
    net.connect_all();
    let now = net.now;
    net.nodes[0].attune(now, "chess").unwrap();
    net.nodes[1].attune(now, "chess").unwrap();
    net.nodes[2].attune(now, "go").unwrap();
    // The same random secret under two local names.
    let secret = [0x42; 32];
    net.nodes[0].attune_secret(now, "club", secret).unwrap();
    net.nodes[3].attune_secret(now, "ours", secret).unwrap();
    net.settle();
    for i in 0..4 {
        net.take(i);
    }
    assert_eq!(net.nodes[0].stats().peers, 2, "met 1 (chess) and 3 (club)");
    assert_eq!(net.nodes[2].stats().peers, 0, "nobody shares go");

    let id = net.nodes[0]
        .resonate(net.now, "chess", 0.8, b"e2-e4")
        .unwrap();
    net.settle();
    let ev = net.take(1);
    assert_eq!(
        count(
            &ev,
            |e| matches!(e, Event::Resonance { id: r, intent, payload, strength }
            if *r == id && intent == "chess" && payload == b"e2-e4" && (*strength - 0.8).abs() < 1e-6)
        ),
        1,
        "{ev:?}"
    );
    for i in [2, 3] {
        assert_eq!(
            count(&net.take(i), |e| matches!(e, Event::Resonance { .. })),
            0
        );
    }
    net.nodes[3].resonate(net.now, "ours", 1.0, b"hi").unwrap();
    net.settle();
    let ev = net.take(0);
    assert_eq!(
        count(
            &ev,
            |e| matches!(e, Event::Resonance { intent, payload, .. }
            if intent == "club" && payload == b"hi")
        ),
        1,
        "{ev:?}"
    );
    let s = net.relay.stats();
    assert_eq!(s.lookup_refused, 0, "engines look up only what they joined");
    assert_eq!(s.namespaces, 4, "global, chess, go, the secret's");
}

/// Finding 3: any client could LOOKUP any namespace, so whoever guessed an intent (or was
/// given its namespace) could list who shares it without showing itself.
#[test]
fn finding_03_a_relay_refuses_lookup_of_a_namespace_the_client_did_not_join() {
    let mut net = Net::new(1, |_| cheap());
    net.connect_all();
    net.nodes[0].attune(net.now, "chess").unwrap();
    net.settle();
    let member = *net.nodes[0].node_id();
    let relay_key = *net.relay.node_id().key();
    // The attacker paid for the guess: it holds the intent's namespace at this relay.
    let target = Intent::phrase("chess", &CHEAP)
        .unwrap()
        .rendezvous_key()
        .namespace(&relay_key);

    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let attacker = Identity::generate(&mut rng, START);
    let client = net.relay.handle_incoming(net.now).unwrap();
    let mut conn = Conn::initiator(
        RustCrypto,
        &attacker,
        Some(relay_key),
        Default::default(),
        1 << 20,
        65_535,
        net.now,
        &mut rng,
    );
    let ask = |net: &mut Net, conn: &mut Conn<RustCrypto>, msg: Option<Message<'_>>| {
        if let Some(m) = msg {
            conn.queue_frame(&Frame::new(m), 0, true).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..10 {
            while let Some(r) = conn.pop_record() {
                net.relay.handle_data(net.now, client, r).unwrap();
            }
            while let Some(mut t) = net.relay.poll_transmit(net.now) {
                assert_eq!(t.client, client, "nothing for anyone else");
                if let Ok(Received::Frame(n)) = conn.handle_data(net.now, &mut t.record) {
                    got.push(t.record[..n].to_vec());
                }
            }
        }
        got
    };
    ask(&mut net, &mut conn, None);
    assert!(conn.is_established());

    for namespace in [target, global_namespace()] {
        let got = ask(
            &mut net,
            &mut conn,
            Some(Message::Lookup(Lookup { namespace })),
        );
        assert_eq!(got.len(), 1);
        assert!(
            matches!(decode(&got[0]), Message::Error(ErrorMsg { code, .. }) if code == error_code::NOT_JOINED),
            "{:?}",
            decode(&got[0])
        );
    }
    assert_eq!(net.relay.stats().lookup_refused, 2);
    // Joining is the price of looking: the attacker is then listed to the members too.
    for namespace in [target, global_namespace()] {
        ask(
            &mut net,
            &mut conn,
            Some(Message::Join(Join {
                namespace,
                leave: false,
            })),
        );
        let got = ask(
            &mut net,
            &mut conn,
            Some(Message::Lookup(Lookup { namespace })),
        );
        let Message::Found(found) = decode(&got[0]) else {
            panic!("expected FOUND");
        };
        assert_eq!(found.peers.node_ids().collect::<Vec<_>>(), [member]);
    }
    assert_eq!(net.relay.stats().lookup_refused, 2);
}

/// One hop of a resonance message through a forwarder F that changes it on the way:
/// origin → F → victim, with an attuned neighbour G of the victim watching what it forwards.
struct Hop {
    victim: Node,
    g: Neighbour,
    /// RESONANCE frames the victim forwarded to G.
    forwarded_to_g: usize,
    /// Resonance events the victim raised.
    delivered: usize,
    /// The message as the origin sent it: route, strength, sealed payload.
    genuine: (Route, f32, Vec<u8>),
}

/// Has `n` announce "chess" to `engine`, properly blinded for its link and its side of it.
fn announce_chess(engine: &mut Node, n: &mut Neighbour) {
    let chess = Intent::phrase("chess", &CHEAP).unwrap().resonance_key();
    let a = chess.announcement(&n.binding(), &n.key());
    n.queue(Message::Announce(Announce {
        blinded: List::from_raw(&a.0),
    }));
    pump(engine, &mut [n]);
}

fn forward_through_f(change: impl Fn(&mut Route, &mut f32)) -> Hop {
    let mut origin = node(1, cheap());
    let mut victim = node(2, cheap());
    origin.attune(START, "chess").unwrap();
    victim.attune(START, "chess").unwrap();
    let chess = Intent::phrase("chess", &CHEAP).unwrap().resonance_key();
    // F (one identity, a link to each) and G are attuned: they announce the intent properly.
    let mut f_origin = Neighbour::attach(&mut origin, 50);
    let mut f_victim = Neighbour::attach(&mut victim, 50);
    let mut g = Neighbour::attach(&mut victim, 51);
    announce_chess(&mut origin, &mut f_origin);
    announce_chess(&mut victim, &mut f_victim);
    announce_chess(&mut victim, &mut g);
    events(&mut victim);
    g.take();

    origin.resonate(START, "chess", 0.4, b"e2-e4").unwrap();
    pump(&mut origin, &mut [&mut f_origin]);
    let got = resonances(&f_origin.take());
    assert_eq!(got.len(), 1, "F gets the message");
    let (route, _, strength, payload) = got[0].clone();

    // F forwards it, changed, with a valid tag for its link to the victim.
    let (mut r, mut s) = (route, strength);
    change(&mut r, &mut s);
    r.hops += 1;
    let f_key = f_victim.key();
    f_victim.queue(Message::Resonance(Resonance {
        route: r,
        tag: chess.tag(&f_victim.binding(), &f_key),
        strength: s,
        payload: &payload,
    }));
    pump(&mut victim, &mut [&mut f_victim, &mut g]);
    let ev = events(&mut victim);
    Hop {
        delivered: count(&ev, |e| matches!(e, Event::Resonance { .. })),
        forwarded_to_g: resonances(&g.take()).len(),
        victim,
        g,
        genuine: (route, strength, payload),
    }
}

/// A forwarder's change to a message's route fields and strength.
type Change = fn(&mut Route, &mut f32);

/// Finding 11: the resonance AEAD bound only the key and the id, so a forwarder could raise the
/// strength, stretch the TTL or move the timestamp, and the copy was delivered and forwarded.
#[test]
fn finding_11_a_forwarder_that_changes_strength_ttl_or_timestamp_breaks_the_message() {
    // Control: a forwarder that only counts its hop is delivered and forwarded.
    let honest = forward_through_f(|_, _| {});
    assert_eq!((honest.delivered, honest.forwarded_to_g), (1, 1));
    assert_eq!(honest.victim.stats().dropped_tampered, 0);

    let changes: [(&str, Change); 4] = [
        ("strength raised", |_, s| *s = 1.0),
        ("ttl stretched", |r, _| r.ttl_ms *= 10),
        ("timestamp moved", |r, _| r.timestamp -= 10_000),
        ("hop limit raised", |r, _| r.hop_limit += 1),
    ];
    for (what, change) in changes {
        let mut hop = forward_through_f(change);
        assert_eq!(hop.delivered, 0, "{what}: not delivered");
        assert_eq!(hop.forwarded_to_g, 0, "{what}: not forwarded");
        let stats = hop.victim.stats();
        assert_eq!(stats.dropped_tampered, 1, "{what}");
        assert_eq!(
            stats.links_failed, 1,
            "{what}: the forwarder loses its link"
        );
        // The changed copy took no id: the genuine one, arriving from G, goes through.
        let (route, strength, payload) = hop.genuine.clone();
        let tag = Intent::phrase("chess", &CHEAP)
            .unwrap()
            .resonance_key()
            .tag(&hop.g.binding(), &hop.g.key());
        hop.g.queue(Message::Resonance(Resonance {
            route: Route {
                hops: route.hops + 1,
                ..route
            },
            tag,
            strength,
            payload: &payload,
        }));
        let mut g = hop.g;
        pump(&mut hop.victim, &mut [&mut g]);
        let ev = events(&mut hop.victim);
        assert_eq!(
            count(&ev, |e| matches!(e, Event::Resonance { id, strength, .. }
                if *id == route.id && (*strength - 0.4).abs() < 1e-6)),
            1,
            "{what}: {ev:?}"
        );
    }
}

/// Finding 3: attuning with a high-entropy secret runs no KDF, and an attuned intent never
/// pays it again (resonate, detune, attune again).
#[test]
fn finding_03_attuning_a_secret_skips_the_kdf_and_resonating_never_pays_it() {
    let heavy = IntentKdf {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    let mut n = node(
        1,
        Config {
            intent_kdf: heavy,
            ..Config::default()
        },
    );
    let started = Instant::now();
    n.attune_secret(START, "private", [7; 32]).unwrap();
    let by_secret = started.elapsed();
    assert_eq!(n.stats().intent_derivations, 0);

    let started = Instant::now();
    n.attune(START, "chess").unwrap();
    let by_phrase = started.elapsed();
    assert_eq!(n.stats().intent_derivations, 1);
    assert!(
        by_phrase > by_secret * 10,
        "secret {by_secret:?}, phrase {by_phrase:?}"
    );

    n.attune(START, "chess").unwrap();
    assert_eq!(
        n.resonate(START, "chess", 1.0, b"x"),
        Err(SendError::NoRoute)
    );
    assert_eq!(
        n.resonate(START, "private", 1.0, b"x"),
        Err(SendError::NoRoute)
    );
    n.detune(START, "chess").unwrap();
    assert_eq!(
        n.resonate(START, "chess", 1.0, b"x"),
        Err(SendError::NotAttuned),
        "no intent is derived to resonate"
    );
    assert_eq!(n.detune(START, "chess"), Err(SendError::NotAttuned));
    assert_eq!(n.stats().intent_derivations, 1, "derived once, at attune");
    // A bad KDF setting is a typed error, not a panic.
    let mut bad = node(
        2,
        Config {
            intent_kdf: IntentKdf {
                memory_kib: 1,
                ..CHEAP
            },
            ..Config::default()
        },
    );
    assert!(matches!(
        bad.attune(START, "chess"),
        Err(SendError::Intent(_))
    ));
}
