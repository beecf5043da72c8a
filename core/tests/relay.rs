//! The relay state machine end to end: real clients (`Conn::initiator`s with real crypto) driven
//! by hand through a small in-test harness. Registration, forwarding, rendezvous, heartbeat,
//! replacement, every cap, hostile bytes and timeouts.

use rand_chacha::{
    ChaCha20Rng,
    rand_core::{Rng, SeedableRng},
};
use whispurr_core::{
    Identity, NodeId, NodeKey, Timestamp,
    conn::{Conn, Received},
    crypto::{
        CryptoError, RustCrypto,
        link::{HandshakePayload, LinkConfig, LinkHandshake, MAX_HANDSHAKE_LEN, Session},
        noise::{HandshakePattern, HandshakeState, P256},
    },
    relay::{
        ClientId, CloseReason, RateLimit, Relay, RelayAction, RelayConfig, RelayError, RelayEvent,
        error_code,
    },
    wire::{
        self, ErrorMsg, Flags, Frame, Goodbye, Hello, Join, Limits, Lookup, Message, MessageType,
        Ping, RelayStage, Unreachable, Version, WireError,
    },
};

/// 2025-11-24, in ms.
const T0: Timestamp = Timestamp::from_millis(1_764_000_000_000);
/// Clients accept and may send records far larger than the relay allows.
const CLIENT_MAX_RECORD: usize = 1 << 17;
const CLIENT_QUEUE: usize = 1 << 24;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut rng(seed), Timestamp::from_secs(1_764_000_000))
}

fn ns(n: u8) -> [u8; 32] {
    [n; 32]
}

fn after(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

/// One simulated client: its identity, its end of the link and what it received.
struct Peer {
    id: ClientId,
    me: Identity,
    conn: Conn<RustCrypto>,
    /// Decrypted frames received from the relay.
    inbox: Vec<Vec<u8>>,
    /// The relay closed it (the adapter would have closed the socket).
    closed: bool,
}

impl Peer {
    fn key(&self) -> NodeKey {
        *self.me.node_id().key()
    }
}

/// A relay, its clients and the events seen, at a virtual time.
struct Net {
    relay: Relay<RustCrypto, ChaCha20Rng>,
    peers: Vec<Peer>,
    events: Vec<RelayEvent>,
    closes: Vec<RelayAction>,
    now: Timestamp,
    rng: ChaCha20Rng,
}

impl Net {
    fn new(config: RelayConfig) -> Self {
        let relay = Relay::new(identity(1000), config, RustCrypto, rng(1001));
        Net {
            relay,
            peers: Vec::new(),
            events: Vec::new(),
            closes: Vec::new(),
            now: T0,
            rng: rng(1002),
        }
    }

    fn with_defaults() -> Self {
        Self::new(RelayConfig::default())
    }

    /// Opens a connection for `me` (nothing is exchanged until `pump`).
    fn connect(&mut self, me: Identity) -> usize {
        let id = self
            .relay
            .handle_incoming(self.now)
            .expect("room for a client");
        let conn = Conn::initiator(
            RustCrypto,
            &me,
            Some(*self.relay.node_id().key()),
            LinkConfig::default(),
            CLIENT_QUEUE,
            CLIENT_MAX_RECORD,
            self.now,
            &mut self.rng,
        );
        self.peers.push(Peer {
            id,
            me,
            conn,
            inbox: Vec::new(),
            closed: false,
        });
        self.peers.len() - 1
    }

    /// Connects, handshakes and checks the registration event.
    fn join_net(&mut self, seed: u64) -> usize {
        let i = self.connect(identity(seed));
        self.pump();
        let (id, node) = (self.peers[i].id, *self.peers[i].me.node_id());
        assert!(
            self.events
                .contains(&RelayEvent::Registered { client: id, node }),
            "client {i} registered"
        );
        assert!(self.peers[i].conn.is_established());
        i
    }

    /// Moves every client record into the relay, without sending anything back.
    fn upload(&mut self) -> bool {
        let mut moved = false;
        for p in &mut self.peers {
            while let Some(mut record) = p.conn.pop_record() {
                moved = true;
                if !p.closed {
                    self.relay
                        .handle_data(self.now, p.id, &mut record)
                        .expect("issued handle");
                }
            }
        }
        moved
    }

    /// Delivers relay records to the clients; returns the clients served, in order.
    fn download(&mut self) -> Vec<usize> {
        let mut order = Vec::new();
        while let Some(mut t) = self.relay.poll_transmit(self.now) {
            let i = self
                .peers
                .iter()
                .position(|p| p.id == t.client)
                .expect("transmit for a known client");
            order.push(i);
            let p = &mut self.peers[i];
            match p.conn.handle_data(self.now, &mut t.record) {
                Ok(Received::Frame(n)) => p.inbox.push(t.record[..n].to_vec()),
                Ok(_) => {}
                Err(e) => panic!("client {i} rejected a relay record: {e}"),
            }
        }
        order
    }

    fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(a) = self.relay.poll_action() {
            any = true;
            let RelayAction::Close { client, .. } = a;
            if let Some(p) = self.peers.iter_mut().find(|p| p.id == client) {
                p.closed = true;
            }
            self.closes.push(a);
        }
        while let Some(e) = self.relay.poll_event() {
            any = true;
            self.events.push(e);
        }
        any
    }

    /// Runs the adapter loop until nothing moves.
    fn pump(&mut self) {
        loop {
            let a = self.upload();
            let b = !self.download().is_empty();
            let c = self.drain_events();
            if !(a || b || c) {
                return;
            }
        }
    }

    /// Queues a frame on client `i` (not yet sent).
    fn queue(&mut self, i: usize, message: Message<'_>) {
        self.peers[i]
            .conn
            .queue_frame(&Frame::new(message), 0, true)
            .expect("client queues");
    }

    /// Sends a frame from client `i` and runs the loop.
    fn send(&mut self, i: usize, message: Message<'_>) {
        self.queue(i, message);
        self.pump();
    }

    /// Takes and decodes what client `i` received.
    fn take(&mut self, i: usize) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.peers[i].inbox)
    }

    fn close_reason(&self, i: usize) -> Option<CloseReason> {
        let id = self.peers[i].id;
        self.closes.iter().find_map(|e| match e {
            RelayAction::Close { client, reason, .. } if *client == id => Some(*reason),
            _ => None,
        })
    }

    fn lookup(&mut self, i: usize, namespace: [u8; 32]) -> Vec<NodeId> {
        self.send(i, Message::Lookup(Lookup { namespace }));
        let got = self.take(i);
        assert_eq!(got.len(), 1, "one FOUND");
        let Message::Found(found) = decode(&got[0]) else {
            panic!("expected FOUND")
        };
        assert_eq!(found.namespace, namespace);
        found.peers.node_ids().collect()
    }

    /// A LOOKUP the relay must refuse: returns the ERROR code it answered with.
    fn refused_lookup(&mut self, i: usize, namespace: [u8; 32]) -> u16 {
        self.send(i, Message::Lookup(Lookup { namespace }));
        let got = self.take(i);
        assert_eq!(got.len(), 1, "one answer");
        match decode(&got[0]) {
            Message::Error(ErrorMsg { code, .. }) => code,
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    fn join(&mut self, i: usize, namespace: [u8; 32], leave: bool) -> Option<u16> {
        self.send(i, Message::Join(Join { namespace, leave }));
        let got = self.take(i);
        match got.as_slice() {
            [] => None,
            [one] => match decode(one) {
                Message::Error(ErrorMsg { code, .. }) => Some(code),
                other => panic!("unexpected answer to JOIN: {other:?}"),
            },
            more => panic!("{} answers to one JOIN", more.len()),
        }
    }
}

fn decode(bytes: &[u8]) -> Message<'_> {
    Frame::decode(bytes, &Limits::default())
        .expect("relay frames decode")
        .message
}

fn relay_to(peer: NodeKey, payload: &[u8]) -> Message<'_> {
    Message::Relay(wire::Relay {
        peer,
        stage: RelayStage::Record,
        payload,
    })
}

/// The one RELAY message in `frames`.
fn only_relay(frames: &[Vec<u8>]) -> wire::Relay<'_> {
    assert_eq!(frames.len(), 1, "exactly one frame");
    match decode(&frames[0]) {
        Message::Relay(r) => r,
        other => panic!("expected RELAY, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Registration and forwarding

#[test]
fn registration_reports_the_proven_node_id() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    let b = net.join_net(2);
    let s = net.relay.stats();
    assert_eq!((s.clients, s.registered, s.registrations), (2, 2, 2));
    for i in [a, b] {
        let p = &net.peers[i];
        assert_eq!(net.relay.client_node(p.id), Some(p.me.node_id()));
        assert_eq!(net.relay.client_by_key(&p.key()), Some(p.id));
        // The client, in turn, authenticated the relay it dialled.
        assert_eq!(p.conn.peer().unwrap().node_id, *net.relay.node_id());
    }
}

#[test]
fn forwards_with_the_source_rewritten_and_the_payload_unchanged() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    let (ka, kb) = (net.peers[a].key(), net.peers[b].key());
    for (stage, payload) in [
        (RelayStage::Handshake, &b"e2e handshake"[..]),
        (RelayStage::Record, &[0u8, 1, 2, 255][..]),
        (RelayStage::Sealed, &[7u8; 4000][..]),
        (RelayStage::Record, &[][..]),
    ] {
        net.send(
            a,
            Message::Relay(wire::Relay {
                peer: kb,
                stage,
                payload,
            }),
        );
        let got = net.take(b);
        let r = only_relay(&got);
        assert_eq!(r.peer, ka, "source is the sender's proven key");
        assert_eq!(r.stage, stage);
        assert_eq!(r.payload, payload);
        assert!(net.take(a).is_empty(), "nothing comes back to the sender");
    }
    // And the other way.
    net.send(b, relay_to(ka, b"back"));
    let got = net.take(a);
    let r = only_relay(&got);
    assert_eq!((r.peer, r.payload), (kb, &b"back"[..]));
    let s = net.relay.stats();
    assert_eq!(s.forwarded_frames, 5);
    assert_eq!(s.forwarded_bytes, (13 + 4 + 4000 + 4) as u64);
}

#[test]
fn padding_is_kept_on_the_second_hop() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    let kb = net.peers[b].key();
    let frame = Frame::new(relay_to(kb, b"short"));
    net.peers[a].conn.queue_frame(&frame, 1024, true).unwrap();
    net.pump();
    let got = net.take(b);
    assert_eq!(
        got[0].len(),
        1024,
        "the target sees the size the sender chose"
    );
    let decoded = Frame::decode(&got[0], &Limits::default()).unwrap();
    assert!(decoded.flags.contains(Flags::PADDED));
    assert_eq!(only_relay(&got).payload, b"short");
}

#[test]
fn unknown_target_is_unreachable() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    let nobody = *identity(99).node_id().key();
    net.send(a, relay_to(nobody, b"hello?"));
    let got = net.take(a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        decode(&got[0]),
        Message::Unreachable(Unreachable { peer: nobody })
    );
    assert!(net.take(b).is_empty());
    assert_eq!(net.relay.stats().unreachable, 1);
    assert_eq!(net.relay.stats().forwarded_frames, 0);
}

#[test]
fn ping_is_answered_with_pong() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    net.send(
        a,
        Message::Ping(Ping {
            id: 42,
            sent_at: 123_456,
        }),
    );
    let got = net.take(a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        decode(&got[0]),
        Message::Pong(wire::Pong {
            id: 42,
            sent_at: 123_456
        })
    );
    assert_eq!(net.relay.stats().pings, 1);
}

#[test]
fn goodbye_closes_the_client() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    let ka = net.peers[a].key();
    net.send(
        a,
        Message::Goodbye(Goodbye {
            code: 0,
            reason: "bye",
        }),
    );
    let id = net.peers[a].id;
    assert!(net.closes.contains(&RelayAction::Close {
        client: id,
        node: Some(*net.peers[a].me.node_id()),
        reason: CloseReason::Goodbye,
    }));
    assert_eq!(net.relay.client_by_key(&ka), None);
    let s = net.relay.stats();
    assert_eq!((s.clients, s.registered, s.goodbyes), (1, 1, 1));
    // Gone means unreachable.
    net.send(b, relay_to(ka, b"?"));
    assert_eq!(
        decode(&net.take(b)[0]),
        Message::Unreachable(Unreachable { peer: ka })
    );
}

#[test]
fn unexpected_types_are_counted_and_ignored() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    net.send(
        a,
        Message::Hello(Hello {
            capabilities: 0,
            max_frame_size: 65_536,
        }),
    );
    net.send(a, Message::Pong(wire::Pong { id: 1, sent_at: 2 }));
    assert_eq!(net.relay.stats().unexpected, 2);
    assert!(net.take(a).is_empty());
    assert!(!net.peers[a].closed);
    net.send(a, Message::Ping(Ping { id: 1, sent_at: 2 }));
    assert_eq!(net.take(a).len(), 1, "still served");
}

#[test]
fn disconnect_forgets_the_client() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    net.join(a, ns(1), false);
    net.join(a, ns(2), false);
    net.join(b, ns(1), false);
    let id = net.peers[a].id;
    net.relay.handle_link_down(net.now, id);
    net.drain_events();
    assert_eq!(net.close_reason(a), Some(CloseReason::Disconnected));
    assert!(
        net.lookup(b, ns(1)).is_empty(),
        "memberships vanish with the client"
    );
    let s = net.relay.stats();
    assert_eq!((s.clients, s.registered, s.namespaces), (1, 1, 1));
    // Late data for a closed client is ignored; a handle never issued is misuse.
    assert_eq!(net.relay.handle_data(net.now, id, &mut [1, 2, 3]), Ok(()));
    let bogus = ClientId(1_000);
    assert_eq!(
        net.relay.handle_data(net.now, bogus, &mut [1, 2, 3]),
        Err(RelayError::UnknownClient(bogus))
    );
    // Disconnecting twice raises nothing more.
    net.relay.handle_link_down(net.now, id);
    assert_eq!(net.relay.poll_action(), None);
}

#[test]
fn transmit_serves_clients_round_robin() {
    let mut net = Net::with_defaults();
    let (a, b, c) = (net.join_net(1), net.join_net(2), net.join_net(3));
    let (kb, kc) = (net.peers[b].key(), net.peers[c].key());
    for _ in 0..3 {
        net.queue(a, relay_to(kb, b"to b"));
    }
    for _ in 0..3 {
        net.queue(a, relay_to(kc, b"to c"));
    }
    net.upload();
    assert_eq!(net.download(), vec![b, c, b, c, b, c]);
}

// ---------------------------------------------------------------------------------------------
// Rendezvous

#[test]
fn join_lookup_found_excludes_the_asker() {
    let mut net = Net::with_defaults();
    let (a, b, c, d) = (
        net.join_net(1),
        net.join_net(2),
        net.join_net(3),
        net.join_net(4),
    );
    for i in [a, b, c] {
        assert_eq!(net.join(i, ns(7), false), None);
    }
    // Joining twice is harmless.
    assert_eq!(net.join(a, ns(7), false), None);
    let id = |i: usize| *net.peers[i].me.node_id();
    let (ia, ib, ic) = (id(a), id(b), id(c));
    let mut found = net.lookup(a, ns(7));
    found.sort();
    let mut expect = vec![ib, ic];
    expect.sort();
    assert_eq!(found, expect, "the asker is left out");
    // Members are listed to members only: a non-member is refused, whether the namespace
    // exists or not, and learns nothing from the refusal.
    assert_eq!(net.refused_lookup(d, ns(7)), error_code::NOT_JOINED);
    assert_eq!(net.refused_lookup(a, ns(8)), error_code::NOT_JOINED);
    net.join(d, ns(7), false);
    let mut found = net.lookup(d, ns(7));
    found.sort();
    let mut expect = vec![ia, ib, ic];
    expect.sort();
    assert_eq!(found, expect, "once it joined");
    assert_eq!(net.relay.stats().namespaces, 1);
    assert_eq!(net.relay.stats().lookups, 2);
    assert_eq!(net.relay.stats().lookup_refused, 2);
}

#[test]
fn leave_removes_the_membership() {
    let mut net = Net::with_defaults();
    let (a, b, c) = (net.join_net(1), net.join_net(2), net.join_net(3));
    for i in [a, b, c] {
        net.join(i, ns(1), false);
    }
    assert_eq!(net.join(b, ns(1), true), None);
    assert_eq!(net.lookup(a, ns(1)), vec![*net.peers[c].me.node_id()]);
    // Leaving what one never joined is a no-op.
    assert_eq!(net.join(b, ns(2), true), None);
    net.join(a, ns(1), true);
    net.join(c, ns(1), true);
    assert_eq!(
        net.refused_lookup(b, ns(1)),
        error_code::NOT_JOINED,
        "no longer a member"
    );
    assert_eq!(
        net.relay.stats().namespaces,
        0,
        "empty namespaces are forgotten"
    );
}

#[test]
fn cap_namespaces_per_client() {
    let mut net = Net::new(RelayConfig {
        max_namespaces_per_client: 2,
        ..RelayConfig::default()
    });
    let a = net.join_net(1);
    assert_eq!(net.join(a, ns(1), false), None);
    assert_eq!(net.join(a, ns(2), false), None);
    assert_eq!(net.join(a, ns(3), false), Some(error_code::TOO_MANY_JOINED));
    assert_eq!(
        net.join(a, ns(1), false),
        None,
        "rejoining is not a new membership"
    );
    net.join(a, ns(1), true);
    assert_eq!(net.join(a, ns(3), false), None);
    assert_eq!(net.relay.stats().join_rejected, 1);
    assert_eq!(net.relay.stats().namespaces, 2);
}

#[test]
fn cap_members_per_namespace() {
    let mut net = Net::new(RelayConfig {
        max_members_per_namespace: 2,
        ..RelayConfig::default()
    });
    let (a, b, c) = (net.join_net(1), net.join_net(2), net.join_net(3));
    assert_eq!(net.join(a, ns(1), false), None);
    assert_eq!(net.join(b, ns(1), false), None);
    assert_eq!(net.join(c, ns(1), false), Some(error_code::NAMESPACE_FULL));
    assert_eq!(net.refused_lookup(c, ns(1)), error_code::NOT_JOINED);
    assert_eq!(net.lookup(a, ns(1)).len(), 1);
    net.join(b, ns(1), true);
    assert_eq!(net.join(c, ns(1), false), None);
    assert_eq!(net.relay.stats().join_rejected, 1);
}

#[test]
fn cap_namespaces_in_total() {
    let mut net = Net::new(RelayConfig {
        max_namespaces: 2,
        ..RelayConfig::default()
    });
    let (a, b) = (net.join_net(1), net.join_net(2));
    assert_eq!(net.join(a, ns(1), false), None);
    assert_eq!(net.join(a, ns(2), false), None);
    assert_eq!(
        net.join(b, ns(3), false),
        Some(error_code::TOO_MANY_NAMESPACES)
    );
    assert_eq!(
        net.join(b, ns(1), false),
        None,
        "existing namespaces still take members"
    );
    assert_eq!(net.relay.stats().namespaces, 2);
    // Room again once one empties.
    net.join(a, ns(2), true);
    assert_eq!(net.join(b, ns(3), false), None);
}

#[test]
fn cap_found_entries() {
    let mut net = Net::new(RelayConfig {
        max_found: 3,
        ..RelayConfig::default()
    });
    let members: Vec<usize> = (1..=6).map(|s| net.join_net(s)).collect();
    for &i in &members {
        net.join(i, ns(5), false);
    }
    let asker = members[0];
    let me = *net.peers[asker].me.node_id();
    let others: Vec<NodeId> = members[1..]
        .iter()
        .map(|&i| *net.peers[i].me.node_id())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let found = net.lookup(asker, ns(5));
        assert_eq!(found.len(), 3);
        assert!(!found.contains(&me));
        let distinct: std::collections::BTreeSet<_> = found.iter().collect();
        assert_eq!(distinct.len(), 3, "no duplicates");
        assert!(found.iter().all(|f| others.contains(f)));
        seen.extend(found);
    }
    assert_eq!(seen.len(), 5, "repeated lookups reach every member");
}

#[test]
fn found_is_also_capped_by_the_list_limit() {
    let mut net = Net::new(RelayConfig {
        max_found: 100,
        limits: Limits {
            max_list_len: 2,
            ..Limits::default()
        },
        ..RelayConfig::default()
    });
    let members: Vec<usize> = (1..=4).map(|s| net.join_net(s)).collect();
    for &i in &members {
        net.join(i, ns(5), false);
    }
    assert_eq!(net.lookup(members[0], ns(5)).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Identity: no spoofing, replacement on reconnect

/// Runs an XX handshake against the relay as an initiator that proves `prover`'s key but
/// claims `claim` in its payload.
fn lying_initiator(net: &mut Net, prover: &Identity, claim: HandshakePayload) -> ClientId {
    let id = net.relay.handle_incoming(net.now).unwrap();
    let mut r = rng(77);
    let mut liar = HandshakeState::new(
        P256(RustCrypto),
        RustCrypto,
        HandshakePattern::XX,
        true,
        b"whispurr/1 link",
        Some(prover.key_pair().clone()),
        None,
        &mut r,
    )
    .unwrap();
    let mut buf = [0u8; MAX_HANDSHAKE_LEN];
    let n = liar.write_message(&[], &mut buf).unwrap();
    net.relay.handle_data(net.now, id, &mut buf[..n]).unwrap();
    let t = net.relay.poll_transmit(net.now).expect("message 2");
    assert_eq!(t.client, id);
    liar.read_message(&t.record, &mut [0u8; MAX_HANDSHAKE_LEN])
        .unwrap();
    let payload = postcard::to_allocvec(&claim).unwrap();
    let n = liar.write_message(&payload, &mut buf).unwrap();
    net.relay.handle_data(net.now, id, &mut buf[..n]).unwrap();
    id
}

#[test]
fn a_client_cannot_register_an_id_it_cannot_prove() {
    let mut net = Net::with_defaults();
    let victim = net.join_net(3);
    let mallory = identity(2);
    let claim = HandshakePayload {
        node_id: *net.peers[victim].me.node_id(),
        version: (Version::CURRENT.major(), Version::CURRENT.minor()),
        capabilities: 0,
    };
    let id = lying_initiator(&mut net, &mallory, claim);
    net.drain_events();
    assert!(net.closes.contains(&RelayAction::Close {
        client: id,
        node: None,
        reason: CloseReason::HandshakeFailed(CryptoError::NodeIdMismatch),
    }));
    // The victim keeps its registration and its traffic.
    let victim_key = net.peers[victim].key();
    assert_eq!(
        net.relay.client_by_key(&victim_key),
        Some(net.peers[victim].id)
    );
    assert_eq!(net.relay.stats().handshake_failures, 1);
    assert_eq!(net.relay.stats().registered, 1);
}

#[test]
fn an_incompatible_version_is_refused() {
    let mut net = Net::with_defaults();
    let me = identity(2);
    let claim = HandshakePayload {
        node_id: *me.node_id(),
        version: (Version::CURRENT.major() + 1, 0),
        capabilities: 0,
    };
    let id = lying_initiator(&mut net, &me, claim);
    net.drain_events();
    assert!(matches!(
        net.closes.as_slice(),
        [RelayAction::Close { client, reason: CloseReason::HandshakeFailed(CryptoError::IncompatibleVersion(..)), .. }]
            if *client == id
    ));
}

#[test]
fn frames_are_attributed_to_the_proven_key_only() {
    let mut net = Net::with_defaults();
    let (a, b, c) = (net.join_net(1), net.join_net(2), net.join_net(3));
    let (ka, kb, kc) = (net.peers[a].key(), net.peers[b].key(), net.peers[c].key());
    // A RELAY names only its target: whatever A does, B sees A's key as the source, never C's.
    net.send(a, relay_to(kb, kc.as_bytes()));
    let got = net.take(b);
    let r = only_relay(&got);
    assert_eq!(r.peer, ka);
    assert_ne!(r.peer, kc);
    // A record from A injected into C's connection does not decrypt there: C is closed, and
    // nothing is delivered on C's behalf.
    net.queue(a, relay_to(kb, b"forged"));
    let mut record = net.peers[a].conn.pop_record().unwrap();
    let c_id = net.peers[c].id;
    net.relay.handle_data(net.now, c_id, &mut record).unwrap();
    net.pump();
    assert!(net.take(b).is_empty());
    assert!(matches!(
        net.close_reason(c),
        Some(CloseReason::Decrypt(CryptoError::Decrypt))
    ));
}

#[test]
fn a_reconnect_replaces_the_old_connection() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    net.join(a, ns(1), false);
    net.join(b, ns(1), false);
    let old = net.peers[a].id;
    let a2 = net.connect(identity(1));
    net.pump();
    let new = net.peers[a2].id;
    let node = *net.peers[a].me.node_id();
    assert_eq!(
        net.closes.last(),
        Some(&RelayAction::Close {
            client: old,
            node: Some(node),
            reason: CloseReason::Replaced
        })
    );
    assert_eq!(
        net.events.last(),
        Some(&RelayEvent::Registered { client: new, node })
    );
    assert!(net.peers[a].closed);
    // Traffic for the key goes to the new connection; the old membership went with the old one.
    net.send(b, relay_to(*node.key(), b"to the new one"));
    assert_eq!(only_relay(&net.take(a2)).payload, b"to the new one");
    assert!(net.take(a).is_empty());
    assert!(net.lookup(b, ns(1)).is_empty());
    let s = net.relay.stats();
    assert_eq!((s.clients, s.registered, s.replaced), (2, 2, 1));
}

// ---------------------------------------------------------------------------------------------
// Caps

#[test]
fn cap_max_clients() {
    let mut net = Net::new(RelayConfig {
        max_clients: 2,
        ..RelayConfig::default()
    });
    let a = net.join_net(1);
    net.join_net(2);
    assert_eq!(net.relay.handle_incoming(net.now), Err(RelayError::Full));
    assert_eq!(net.relay.stats().rejected_full, 1);
    // A closed slot is held until its Close is polled (bounding the action queue).
    let id = net.peers[a].id;
    net.relay.handle_link_down(net.now, id);
    assert_eq!(net.relay.handle_incoming(net.now), Err(RelayError::Full));
    assert!(matches!(
        net.relay.poll_action(),
        Some(RelayAction::Close { .. })
    ));
    assert!(net.relay.handle_incoming(net.now).is_ok());
    assert_eq!(net.relay.handle_incoming(net.now), Err(RelayError::Full));
    assert_eq!(net.relay.stats().rejected_full, 3);
}

/// The length of a RELAY frame with `payload` bytes, sealed.
fn relay_record_len(payload: usize) -> usize {
    let body = vec![0u8; payload];
    let mut buf = vec![0u8; payload + 64];
    Frame::new(relay_to(NodeKey([0; 32]), &body))
        .encode(&mut buf)
        .unwrap()
        + 16
}

#[test]
fn cap_max_record_closes_the_client() {
    let max_record = 512;
    let mut net = Net::new(RelayConfig {
        max_record,
        ..RelayConfig::default()
    });
    let (a, b) = (net.join_net(1), net.join_net(2));
    let kb = net.peers[b].key();
    let fits = (0..max_record)
        .rev()
        .find(|&n| relay_record_len(n) <= max_record)
        .unwrap();
    assert_eq!(relay_record_len(fits), max_record);
    // Exactly at the limit: forwarded.
    net.send(a, relay_to(kb, &vec![1u8; fits]));
    assert_eq!(only_relay(&net.take(b)).payload.len(), fits);
    // One byte over: closed.
    net.send(a, relay_to(kb, &vec![1u8; fits + 1]));
    assert!(net.take(b).is_empty());
    assert_eq!(
        net.close_reason(a),
        Some(CloseReason::Oversized(max_record + 1))
    );
    // Before the handshake too.
    let id = net.relay.handle_incoming(net.now).unwrap();
    net.relay
        .handle_data(net.now, id, &mut vec![0u8; max_record + 1])
        .unwrap();
    net.drain_events();
    assert!(net.closes.contains(&RelayAction::Close {
        client: id,
        node: None,
        reason: CloseReason::Oversized(max_record + 1),
    }));
    assert_eq!(net.relay.stats().oversized, 2);
}

#[test]
fn cap_queue_bytes_drops_and_counts() {
    let payload = vec![9u8; 600];
    let record = relay_record_len(payload.len());
    let mut net = Net::new(RelayConfig {
        max_queue_bytes: 3 * record,
        ..RelayConfig::default()
    });
    let (a, b) = (net.join_net(1), net.join_net(2));
    let kb = net.peers[b].key();
    // B does not read: five frames reach the relay before anything is sent to B.
    for _ in 0..5 {
        net.queue(a, relay_to(kb, &payload));
    }
    net.upload();
    let s = net.relay.stats();
    assert_eq!((s.forwarded_frames, s.queue_full), (3, 2));
    net.pump();
    assert_eq!(net.take(b).len(), 3);
    assert!(net.take(a).is_empty(), "the sender is not told");
    assert!(!net.peers[b].closed && !net.peers[a].closed);
}

#[test]
fn cap_reply_queue() {
    let mut net = Net::new(RelayConfig {
        max_queue_bytes: 100,
        ..RelayConfig::default()
    });
    let a = net.join_net(1);
    let nobody = *identity(50).node_id().key();
    // Each UNREACHABLE reply is 5 + 32 + 16 = 53 bytes: one fits under 100.
    for _ in 0..3 {
        net.queue(a, relay_to(nobody, b"x"));
    }
    net.upload();
    assert_eq!(net.relay.stats().unreachable, 3);
    assert_eq!(net.relay.stats().queue_full, 2);
    net.pump();
    assert_eq!(net.take(a).len(), 1);
}

#[test]
fn cap_rate_limit_drops_over_the_bucket() {
    let mut net = Net::new(RelayConfig {
        rate: RateLimit {
            per_second: 10,
            burst: 5,
        },
        rate_limit_close_after: None,
        ..RelayConfig::default()
    });
    let a = net.join_net(1);
    for id in 0..8 {
        net.queue(a, Message::Ping(Ping { id, sent_at: 0 }));
    }
    net.pump();
    let pongs: Vec<u64> = net
        .take(a)
        .iter()
        .map(|f| match decode(f) {
            Message::Pong(p) => p.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        pongs,
        vec![0, 1, 2, 3, 4],
        "the burst passes, the rest is dropped"
    );
    assert_eq!(net.relay.stats().rate_limited, 3);
    // 300 ms later three tokens are back.
    net.now = after(300);
    for id in 0..5 {
        net.queue(a, Message::Ping(Ping { id, sent_at: 0 }));
    }
    net.pump();
    assert_eq!(net.take(a).len(), 3);
    assert_eq!(net.relay.stats().rate_limited, 5);
    // Rate-limited RELAY frames are not forwarded either.
    let b = net.join_net(2);
    let kb = net.peers[b].key();
    for _ in 0..3 {
        net.queue(a, relay_to(kb, b"flood"));
    }
    net.pump();
    assert!(net.take(b).is_empty());
    assert!(!net.peers[a].closed, "dropping only");
}

#[test]
fn cap_rate_limit_closes_persistent_abuse() {
    let mut net = Net::new(RelayConfig {
        rate: RateLimit {
            per_second: 10,
            burst: 2,
        },
        rate_limit_close_after: Some(4),
        ..RelayConfig::default()
    });
    let (a, b) = (net.join_net(1), net.join_net(2));
    // Three refusals, then a pause long enough to refill: forgiven.
    for id in 0..5 {
        net.queue(a, Message::Ping(Ping { id, sent_at: 0 }));
    }
    net.pump();
    net.now = after(10_000);
    for id in 0..5 {
        net.queue(a, Message::Ping(Ping { id, sent_at: 0 }));
    }
    net.pump();
    assert!(!net.peers[a].closed);
    assert_eq!(net.relay.stats().rate_limited, 6);
    // B keeps hammering: closed at the fourth refusal.
    for id in 0..10 {
        net.queue(b, Message::Ping(Ping { id, sent_at: 0 }));
    }
    net.pump();
    assert_eq!(net.close_reason(b), Some(CloseReason::RateLimited));
    let s = net.relay.stats();
    assert_eq!((s.rate_limit_closes, s.rate_limited), (1, 10));
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes

#[test]
fn garbage_before_the_handshake_closes() {
    let mut net = Net::with_defaults();
    let id = net.relay.handle_incoming(net.now).unwrap();
    net.relay
        .handle_data(net.now, id, &mut [0xAB; 100])
        .unwrap();
    assert!(matches!(
        net.relay.poll_action(),
        Some(RelayAction::Close {
            node: None,
            reason: CloseReason::HandshakeFailed(_),
            ..
        })
    ));
    assert_eq!(net.relay.stats().handshake_failures, 1);
    assert_eq!(net.relay.stats().clients, 0);
    assert_eq!(net.relay.poll_transmit(net.now), None);
}

#[test]
fn garbage_after_the_handshake_closes() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    let id = net.peers[a].id;
    net.relay.handle_data(net.now, id, &mut [0x5A; 80]).unwrap();
    net.drain_events();
    assert_eq!(
        net.close_reason(a),
        Some(CloseReason::Decrypt(CryptoError::Decrypt))
    );
    assert_eq!(net.relay.stats().decrypt_failures, 1);
    assert_eq!(net.relay.stats().registered, 0);
}

/// Completes a handshake with the relay by hand, keeping the raw session to seal any bytes.
fn raw_session(net: &mut Net, me: &Identity) -> (ClientId, Session<RustCrypto>) {
    let id = net.relay.handle_incoming(net.now).unwrap();
    let mut hs =
        LinkHandshake::initiator(RustCrypto, me, None, LinkConfig::default(), &mut rng(88));
    let mut buf = [0u8; MAX_HANDSHAKE_LEN];
    let n = hs.write_message(&mut buf).unwrap();
    net.relay.handle_data(net.now, id, &mut buf[..n]).unwrap();
    let t = net.relay.poll_transmit(net.now).unwrap();
    hs.read_message(&t.record).unwrap();
    let n = hs.write_message(&mut buf).unwrap();
    net.relay.handle_data(net.now, id, &mut buf[..n]).unwrap();
    net.drain_events();
    let (session, _) = hs.finish().unwrap();
    (id, session)
}

fn sealed(session: &mut Session<RustCrypto>, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 16, 0);
    let n = session.seal(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_frame_that_does_not_decode_closes() {
    let mut net = Net::with_defaults();
    let me = identity(1);
    let relay = MessageType::Relay.code();
    type Expect = fn(&WireError) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        // Header declares 200 body bytes, 2 follow.
        (vec![0x10, relay, 0, 0, 200, 1, 2], |e| {
            matches!(e, WireError::Truncated { .. })
        }),
        // A RELAY body that is not one.
        (vec![0x10, relay, 0, 0, 3, 1, 2, 3], |e| {
            matches!(e, WireError::Malformed(MessageType::Relay))
        }),
        (vec![0x10, 0x7f, 0, 0, 0], |e| {
            matches!(e, WireError::UnknownType(0x7f))
        }),
        (vec![0x20, MessageType::Ping.code(), 0, 0, 0], |e| {
            matches!(e, WireError::BadVersion { major: 2, .. })
        }),
        (vec![], |e| matches!(e, WireError::Truncated { .. })),
    ];
    for (plain, expect) in cases {
        let (id, mut session) = raw_session(&mut net, &me);
        let mut record = sealed(&mut session, &plain);
        net.relay.handle_data(net.now, id, &mut record).unwrap();
        let reason = std::iter::from_fn(|| net.relay.poll_action())
            .find_map(|e| match e {
                RelayAction::Close { client, reason, .. } if client == id => Some(reason),
                RelayAction::Close { .. } => None,
            })
            .expect("closed");
        match reason {
            CloseReason::Malformed(e) => assert!(expect(&e), "{plain:?}: {e:?}"),
            other => panic!("{plain:?}: {other:?}"),
        }
    }
    assert_eq!(net.relay.stats().malformed, 5);
}

#[test]
fn a_frame_that_fails_validation_closes() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    let long = "x".repeat(Limits::default().max_text_len + 1);
    net.send(
        a,
        Message::Goodbye(Goodbye {
            code: 0,
            reason: &long,
        }),
    );
    assert!(matches!(
        net.close_reason(a),
        Some(CloseReason::Malformed(WireError::FieldTooLarge { .. }))
    ));
    assert_eq!(net.relay.stats().goodbyes, 0);
}

#[test]
fn random_bytes_at_any_stage_never_panic() {
    let mut fuzz = rng(4242);
    for round in 0..60u64 {
        let mut net = Net::new(RelayConfig {
            max_record: 2048,
            ..RelayConfig::default()
        });
        let honest = net.join_net(1);
        let id = if round % 2 == 0 {
            let i = net.join_net(2);
            net.peers[i].id
        } else {
            net.relay.handle_incoming(net.now).unwrap()
        };
        let mut closed = false;
        for _ in 0..4 {
            let len = (fuzz.next_u32() % 2100) as usize;
            let mut bytes = vec![0u8; len];
            fuzz.fill_bytes(&mut bytes);
            net.relay.handle_data(net.now, id, &mut bytes).unwrap();
            net.pump();
            closed = net
                .closes
                .iter()
                .any(|e| matches!(e, RelayAction::Close { client, .. } if *client == id));
            if closed {
                break;
            }
        }
        assert!(closed, "round {round}: random bytes closed the connection");
        // The honest client is unaffected.
        net.send(
            honest,
            Message::Ping(Ping {
                id: round,
                sent_at: 0,
            }),
        );
        assert_eq!(net.take(honest).len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Timeouts

#[test]
fn handshake_timeout() {
    let mut net = Net::with_defaults();
    let id = net.relay.handle_incoming(T0).unwrap();
    assert_eq!(net.relay.poll_timeout(), Some(after(10_000)));
    net.relay.handle_timeout(after(9_999));
    assert_eq!(net.relay.poll_action(), None);
    net.relay.handle_timeout(after(10_000));
    assert_eq!(
        net.relay.poll_action(),
        Some(RelayAction::Close {
            client: id,
            node: None,
            reason: CloseReason::HandshakeTimeout
        })
    );
    assert_eq!(net.relay.stats().handshake_timeouts, 1);
    assert_eq!(net.relay.poll_timeout(), None);
}

#[test]
fn a_half_finished_handshake_also_times_out() {
    let mut net = Net::with_defaults();
    let a = net.connect(identity(1));
    // Only the first message reaches the relay.
    let mut first = net.peers[a].conn.pop_record().unwrap();
    let id = net.peers[a].id;
    net.relay.handle_data(T0, id, &mut first).unwrap();
    net.relay.handle_timeout(after(10_000));
    net.drain_events();
    assert_eq!(net.close_reason(a), Some(CloseReason::HandshakeTimeout));
}

#[test]
fn idle_timeout_and_keepalive() {
    let mut net = Net::with_defaults();
    let (a, b) = (net.join_net(1), net.join_net(2));
    assert_eq!(net.relay.poll_timeout(), Some(after(60_000)));
    // A pings at 30 s; B stays silent.
    net.now = after(30_000);
    net.send(a, Message::Ping(Ping { id: 1, sent_at: 0 }));
    net.relay.handle_timeout(after(59_999));
    assert!(!net.drain_events());
    net.relay.handle_timeout(after(60_000));
    net.drain_events();
    assert_eq!(net.close_reason(b), Some(CloseReason::IdleTimeout));
    assert_eq!(net.close_reason(a), None);
    // A's deadline moved with its traffic.
    assert_eq!(net.relay.poll_timeout(), Some(after(90_000)));
    net.relay.handle_timeout(after(90_000));
    net.drain_events();
    assert_eq!(net.close_reason(a), Some(CloseReason::IdleTimeout));
    assert_eq!(net.relay.stats().idle_timeouts, 2);
    assert_eq!(net.relay.stats().clients, 0);
    assert_eq!(net.relay.poll_timeout(), None);
}

#[test]
fn time_going_backwards_is_tolerated() {
    let mut net = Net::with_defaults();
    let a = net.join_net(1);
    net.now = Timestamp::from_millis(T0.as_millis() - 5_000);
    net.send(a, Message::Ping(Ping { id: 1, sent_at: 0 }));
    assert_eq!(net.take(a).len(), 1);
    // The idle deadline counts from the latest time seen, not the earlier one.
    assert_eq!(net.relay.poll_timeout(), Some(after(60_000)));
}

#[test]
fn cap_events_held_for_an_adapter_that_does_not_poll_them() {
    let mut net = Net::new(RelayConfig {
        max_clients: 3,
        ..RelayConfig::default()
    });
    // Register, close and register again, polling the closes but never the events.
    for round in 0..4u64 {
        let i = net.connect(identity(100 + round));
        while net.upload() || !net.download().is_empty() {}
        let id = net.peers[i].id;
        net.relay.handle_link_down(net.now, id);
        while net.relay.poll_action().is_some() {}
    }
    assert_eq!(net.relay.stats().registrations, 4);
    assert_eq!(net.relay.stats().events_dropped, 1);
    assert_eq!(std::iter::from_fn(|| net.relay.poll_event()).count(), 3);
}
