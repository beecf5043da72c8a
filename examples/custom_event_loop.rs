//! Driving whispurr by hand: three engines and a relay in one thread, no async runtime, no
//! sockets. This file *is* the adapter: it moves records between the state machines, turns
//! their actions into "connections", advances a virtual clock and fires timers. Everything the
//! engines decide — handshakes, tunnels through the relay, acknowledgements, gossip, resonance,
//! heartbeats, dead-peer detection — happens inside them.
//!
//! Run: `cargo run -p whispurr-examples --example custom_event_loop`

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use rand::{SeedableRng, rngs::StdRng};
use whispurr_core::{
    Identity, NodeKey, Timestamp,
    crypto::RustCrypto,
    engine::{Action, Addr, Config, Engine, Event, LinkId},
    relay::{ClientId, Relay, RelayAction, RelayConfig},
};
use whispurr_examples::extensions::{FileDelivered, FileReceived, FileSync, FileSyncConfig};

type Node = Engine<RustCrypto, StdRng>;

/// What each node received, as printed lines, for the caller (and the test) to check.
#[derive(Debug, Default)]
pub struct Report {
    /// Node names, in order.
    pub names: Vec<&'static str>,
    /// Lines each node printed about what it received.
    pub received: Vec<Vec<String>>,
}

/// The hand-written event loop: the relay, the nodes, and who is connected to whom.
struct World {
    now: Timestamp,
    relay: Relay<RustCrypto, StdRng>,
    nodes: Vec<Node>,
    names: Vec<&'static str>,
    to_relay: BTreeMap<(usize, LinkId), ClientId>,
    from_relay: BTreeMap<ClientId, (usize, LinkId)>,
    dead: BTreeSet<usize>,
    report: Report,
}

impl World {
    fn new(names: &[&'static str], seed: u64) -> World {
        let now = Timestamp::from_secs(1_764_000_000);
        let mut rng = StdRng::seed_from_u64(seed);
        let relay_identity = Identity::generate(&mut rng, now);
        let relay = Relay::new(
            relay_identity,
            RelayConfig::default(),
            RustCrypto,
            StdRng::seed_from_u64(seed + 1),
        );
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let mut rng = StdRng::seed_from_u64(seed + 10 + i as u64);
                let identity = Identity::generate(&mut rng, now);
                let mut node = Engine::new(identity, Config::default(), RustCrypto, rng, now);
                node.register_extension(now, Box::new(FileSync::new(FileSyncConfig::default())))
                    .expect("one FileSync per node");
                node
            })
            .collect();
        World {
            now,
            relay,
            nodes,
            names: names.to_vec(),
            to_relay: BTreeMap::new(),
            from_relay: BTreeMap::new(),
            dead: BTreeSet::new(),
            report: Report {
                names: names.to_vec(),
                received: vec![Vec::new(); names.len()],
            },
        }
    }

    fn key(&self, i: usize) -> NodeKey {
        *self.nodes[i].node_id().key()
    }

    fn name_of(&self, key: &NodeKey) -> &'static str {
        (0..self.nodes.len())
            .find(|&i| self.key(i) == *key)
            .map_or("?", |i| self.names[i])
    }

    /// Drains every output of every state machine until nothing moves.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                if self.dead.contains(&i) {
                    continue;
                }
                while let Some(action) = self.nodes[i].poll_action() {
                    moved = true;
                    match action {
                        Action::Connect {
                            link,
                            addr: Addr::Relay(_),
                        } => {
                            let client = self.relay.handle_incoming(now).expect("relay has room");
                            self.to_relay.insert((i, link), client);
                            self.from_relay.insert(client, (i, link));
                            self.nodes[i].handle_link_up(now, link).expect("known link");
                        }
                        // No direct transports in this loop: everything goes through the relay.
                        Action::Connect { link, .. } => {
                            self.nodes[i]
                                .handle_link_down(now, link)
                                .expect("known link");
                        }
                        Action::Close { link } => {
                            if let Some(client) = self.to_relay.remove(&(i, link)) {
                                self.from_relay.remove(&client);
                                self.relay.handle_link_down(now, client);
                            }
                        }
                        // With WebRTC, the typed signal goes to the link's peer connection:
                        // `WebRtcSignal::Offer`/`Answer` as the remote description,
                        // `Candidate` to add_ice_candidate; what the connection produces
                        // comes back through `handle_signal`. Never reached here: no
                        // `CAP_WEBRTC`, so no WebRTC link.
                        Action::Signal { .. } => {}
                    }
                }
                // Records come out owned, one per transport message; a real adapter hands each
                // to its link's writer (and calls `handle_blocked` when a writer is full).
                while let Some(t) = self.nodes[i].poll_transmit(now) {
                    moved = true;
                    if let Some(client) = self.to_relay.get(&(i, t.link)).copied() {
                        self.relay
                            .handle_data(now, client, t.record)
                            .expect("known client");
                    }
                }
                while let Some(event) = self.nodes[i].poll_event() {
                    self.record(i, event);
                }
            }
            while let Some(t) = self.relay.poll_transmit(now) {
                moved = true;
                if let Some((i, link)) = self.from_relay.get(&t.client).copied()
                    && !self.dead.contains(&i)
                {
                    self.nodes[i]
                        .handle_data(now, link, t.record)
                        .expect("known link");
                }
            }
            while self.relay.poll_event().is_some() {}
            while let Some(RelayAction::Close { client, .. }) = self.relay.poll_action() {
                if let Some((i, link)) = self.from_relay.remove(&client) {
                    moved = true;
                    self.to_relay.remove(&(i, link));
                    let _ = self.nodes[i].handle_link_down(now, link);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Advances the virtual clock, firing every timer that falls due on the way.
    fn advance(&mut self, total: Duration) {
        let end = self.now.saturating_add(total);
        while self.now < end {
            let mut next = end;
            for (i, n) in self.nodes.iter().enumerate() {
                if !self.dead.contains(&i)
                    && let Some(t) = n.poll_timeout()
                {
                    next = next.min(t.max(self.now));
                }
            }
            if let Some(t) = self.relay.poll_timeout() {
                next = next.min(t.max(self.now));
            }
            // Never stand still: at least a millisecond per turn.
            self.now = next
                .max(self.now.saturating_add(Duration::from_millis(1)))
                .min(end);
            let now = self.now;
            for i in 0..self.nodes.len() {
                if !self.dead.contains(&i) && self.nodes[i].poll_timeout().is_some_and(|t| t <= now)
                {
                    self.nodes[i].handle_timeout(now);
                }
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
            }
            self.pump();
        }
    }

    fn record(&mut self, i: usize, event: Event) {
        let line = match event {
            Event::RelayUp { .. } => "relay up".to_string(),
            Event::PeerUp { peer, path } => {
                format!("peer up: {} ({path:?})", self.name_of(peer.key()))
            }
            Event::PeerDown { peer, reason } => {
                format!("peer down: {} ({reason:?})", self.name_of(&peer))
            }
            Event::Whisper { from, payload, .. } => {
                format!(
                    "whisper from {}: {}",
                    self.name_of(&from),
                    String::from_utf8_lossy(&payload)
                )
            }
            Event::WhisperDelivered { .. } => "whisper delivered".to_string(),
            Event::WhisperFailed { reason, .. } => format!("whisper failed: {reason:?}"),
            Event::NotSent { peer, cause, .. } => {
                format!("not sent to {}: {cause:?}", self.name_of(&peer))
            }
            Event::Broadcast {
                origin, payload, ..
            } => format!(
                "broadcast from {}: {}",
                origin.map_or("anonymous", |o| self.name_of(o.key())),
                String::from_utf8_lossy(&payload)
            ),
            Event::Resonance {
                intent,
                strength,
                payload,
                ..
            } => format!(
                "resonance on {intent:?} at {strength:.1}: {}",
                String::from_utf8_lossy(&payload)
            ),
            Event::Extension { extension, event } => {
                if let Some(f) = event.downcast_ref::<FileReceived>() {
                    format!(
                        "file from {}: {} ({} bytes)",
                        self.name_of(&f.from),
                        f.name,
                        f.data.len()
                    )
                } else if let Some(d) = event.downcast_ref::<FileDelivered>() {
                    format!("file delivered to {}", self.name_of(&d.to))
                } else {
                    format!("{extension} event")
                }
            }
            Event::RelayDown { reason, .. } => format!("relay down ({reason:?})"),
        };
        println!("  {:>5} | {line}", self.names[i]);
        self.report.received[i].push(line);
    }
}

/// Runs the whole tour and returns what each node received.
pub fn run() -> Report {
    let mut w = World::new(&["alice", "bob", "carol"], 7);
    let (alice, bob, carol) = (0, 1, 2);

    println!("== everyone connects to the relay and finds the others");
    for i in 0..3 {
        w.nodes[i]
            .add_relay(w.now, "ws://127.0.0.1:9000")
            .expect("room for a link");
    }
    w.pump();

    println!("== alice whispers to bob (end-to-end session through the relay)");
    let to = w.key(bob);
    w.nodes[alice]
        .whisper(w.now, to, Some("chat"), b"meet at noon")
        .expect("route");
    w.pump();

    println!("== bob broadcasts, signed");
    w.nodes[bob]
        .broadcast(w.now, b"the tide is turning")
        .expect("neighbours");
    w.pump();

    println!("== alice and carol attune to \"midnight chess\"; carol resonates");
    let now = w.now;
    w.nodes[alice]
        .attune(now, "midnight chess")
        .expect("attune");
    w.nodes[carol]
        .attune(now, "midnight chess")
        .expect("attune");
    w.pump();
    w.nodes[carol]
        .resonate(w.now, "midnight chess", 0.9, b"e2-e4")
        .expect("attuned peer");
    w.pump();

    println!("== alice sends carol a file with the FileSync extension");
    let (now, to) = (w.now, w.key(carol));
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    w.nodes[alice]
        .with_extension(now, |fs: &mut FileSync, ctx| {
            fs.offer(ctx, to, "notes.bin", data)
        })
        .expect("FileSync registered")
        .expect("offer accepted");
    w.pump();

    println!("== carol goes silent; the others notice");
    w.dead.insert(carol);
    w.advance(Duration::from_secs(30));

    println!("== statistics");
    for i in 0..3 {
        if w.dead.contains(&i) {
            continue;
        }
        let s = w.nodes[i].stats();
        println!(
            "  {:>5} | peers {} sent {} delivered {} forwarded {} duplicates {} verified {} bytes out {}",
            w.names[i],
            s.peers,
            s.messages_sent,
            s.messages_delivered,
            s.messages_forwarded,
            s.duplicates,
            s.signatures_verified,
            s.bytes_sent
        );
    }
    let r = w.relay.stats();
    println!(
        "  relay | forwarded {} frames, {} bytes",
        r.forwarded_frames, r.forwarded_bytes
    );
    w.report
}

#[allow(dead_code)]
fn main() {
    let report = run();
    let total: usize = report.received.iter().map(Vec::len).sum();
    println!("done: {total} events across {} nodes", report.names.len());
}
