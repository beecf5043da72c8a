//! A deterministic in-memory network for engine tests: one real `Relay`, N real `Engine`s, real
//! crypto, records passed by hand in order. Direct links (WebSocket or WebRTC) are emulated as
//! in-memory pipes; WebRTC signals really travel through the engines (end to end, via the relay):
//! the offerer's adapter sends an offer, the answerer's an answer, and each trickles one
//! candidate and the end of candidates.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use whispurr_core::{
    Identity, NodeKey, Timestamp,
    crypto::RustCrypto,
    engine::{Action, Addr, Config, Engine, Event, LinkId, Output, WebRtcSignal, drain},
    relay::{ClientId, Relay, RelayAction, RelayConfig},
};

pub type Node = Engine<RustCrypto, ChaCha20Rng>;

pub const START: Timestamp = Timestamp::from_millis(1_764_000_000_000);

pub struct Net {
    pub now: Timestamp,
    pub relay: Relay<RustCrypto, ChaCha20Rng>,
    pub nodes: Vec<Node>,
    pub events: Vec<Vec<Event>>,
    /// (node, link) → relay client, and back.
    to_relay: BTreeMap<(usize, LinkId), ClientId>,
    from_relay: BTreeMap<ClientId, (usize, LinkId)>,
    /// Direct pipes: (node, link) → (node, link).
    pipes: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    /// WebRTC links waiting for their counterpart: (node, peer key) → link.
    webrtc: BTreeMap<(usize, NodeKey), LinkId>,
    /// Nodes that are "dead": they neither send nor receive.
    pub dead: BTreeSet<usize>,
    /// Whether the relay accepts connections.
    pub relay_up: bool,
    /// Signals the engines handed their adapters: (node, WebRTC link, signal), in order.
    pub signals: Vec<(usize, LinkId, WebRtcSignal)>,
}

impl Net {
    pub fn new(n: usize, config: impl Fn(usize) -> Config) -> Self {
        Self::with_relay(n, config, RelayConfig::default())
    }

    pub fn with_relay(
        n: usize,
        config: impl Fn(usize) -> Config,
        relay_config: RelayConfig,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(1000);
        let relay_id = Identity::generate(&mut rng, START);
        let relay = Relay::new(
            relay_id,
            relay_config,
            RustCrypto,
            ChaCha20Rng::seed_from_u64(1001),
        );
        let nodes = (0..n)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
                let id = Identity::generate(&mut rng, START);
                Engine::new(id, config(i), RustCrypto, rng, START)
            })
            .collect();
        Net {
            now: START,
            relay,
            nodes,
            events: (0..n).map(|_| Vec::new()).collect(),
            to_relay: BTreeMap::new(),
            from_relay: BTreeMap::new(),
            pipes: BTreeMap::new(),
            webrtc: BTreeMap::new(),
            dead: BTreeSet::new(),
            relay_up: true,
            signals: Vec::new(),
        }
    }

    pub fn key(&self, i: usize) -> NodeKey {
        *self.nodes[i].node_id().key()
    }

    /// Every node connects to the relay.
    pub fn connect_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].add_relay(self.now, "relay").unwrap();
        }
        self.settle();
    }

    /// Drives everything until nothing moves (bounded).
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// One round of moving actions, records and events. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        let mut outputs = Vec::new();
        for i in 0..self.nodes.len() {
            drain(&mut self.nodes[i], now, |o| outputs.push(o));
            for output in outputs.drain(..) {
                moved = true;
                match output {
                    Output::Action(action) => self.act(i, action),
                    Output::Transmit(t) => self.deliver(i, t.link, t.record),
                    Output::Event(e) => self.events[i].push(e),
                }
            }
        }
        while let Some(t) = self.relay.poll_transmit(now) {
            moved = true;
            if let Some((i, link)) = self.from_relay.get(&t.client).copied()
                && !self.dead.contains(&i)
            {
                let _ = self.nodes[i].handle_data(now, link, t.record);
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
        moved
    }

    /// A record node `i` wrote on `link` reaches the other end, unless either end is dead.
    fn deliver(&mut self, i: usize, link: LinkId, record: Vec<u8>) {
        let now = self.now;
        if self.dead.contains(&i) {
            return;
        }
        if let Some(client) = self.to_relay.get(&(i, link)).copied() {
            let _ = self.relay.handle_data(now, client, record);
        } else if let Some((j, l)) = self.pipes.get(&(i, link)).copied()
            && !self.dead.contains(&j)
        {
            let _ = self.nodes[j].handle_data(now, l, record);
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Connect {
                link,
                addr: Addr::Relay(_),
            } => {
                if !self.relay_up || self.dead.contains(&i) {
                    let _ = self.nodes[i].handle_link_down(now, link);
                    return;
                }
                let client = self.relay.handle_incoming(now).unwrap();
                self.to_relay.insert((i, link), client);
                self.from_relay.insert(client, (i, link));
                self.nodes[i].handle_link_up(now, link).unwrap();
            }
            Action::Connect {
                link,
                addr: Addr::WebRtc { peer, offerer },
            } => {
                let me = self.key(i);
                self.webrtc.insert((i, peer), link);
                if offerer {
                    // The adapter's peer connection produces an offer.
                    self.local_signals(i, link, offer());
                }
                let j = (0..self.nodes.len()).find(|&j| self.key(j) == peer);
                if let Some(j) = j
                    && let Some(other) = self.webrtc.get(&(j, me)).copied()
                {
                    self.pipes.insert((i, link), (j, other));
                    self.pipes.insert((j, other), (i, link));
                    // Offerer side first: its handshake message must find the answerer up.
                    let (a, al, b, bl) = if offerer {
                        (j, other, i, link)
                    } else {
                        (i, link, j, other)
                    };
                    self.nodes[a].handle_link_up(now, al).unwrap();
                    self.nodes[b].handle_link_up(now, bl).unwrap();
                }
            }
            Action::Connect { link, .. } => {
                let _ = self.nodes[i].handle_link_down(now, link);
            }
            Action::Signal { link, signal } => {
                if matches!(signal, WebRtcSignal::Offer { .. }) {
                    // The answerer's peer connection takes the offer and answers it.
                    self.local_signals(i, link, answer());
                }
                self.signals.push((i, link, signal));
            }
            Action::Close { link } => {
                if let Some(client) = self.to_relay.remove(&(i, link)) {
                    self.from_relay.remove(&client);
                    self.relay.handle_link_down(now, client);
                }
                if let Some((j, l)) = self.pipes.remove(&(i, link)) {
                    self.pipes.remove(&(j, l));
                    let _ = self.nodes[j].handle_link_down(now, l);
                }
                self.webrtc.retain(|_, l| *l != link);
            }
        }
    }

    /// What node i's peer connection on `link` produces after its description: the description,
    /// one trickled candidate, the end of candidates.
    fn local_signals(&mut self, i: usize, link: LinkId, description: WebRtcSignal) {
        let now = self.now;
        for signal in [description, candidate(i), WebRtcSignal::EndOfCandidates] {
            self.nodes[i].handle_signal(now, link, &signal).unwrap();
        }
    }

    /// Advances virtual time in steps, firing timers and settling after each.
    pub fn run_for(&mut self, total: std::time::Duration, step: std::time::Duration) {
        let end = self.now.saturating_add(total);
        while self.now < end {
            self.now = self.now.saturating_add(step);
            let now = self.now;
            for i in 0..self.nodes.len() {
                if self.dead.contains(&i) {
                    continue;
                }
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].handle_timeout(now);
                }
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
            }
            self.settle();
        }
    }

    /// Takes node i's events.
    pub fn take(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// Reports every direct pipe down on both ends.
    pub fn break_direct_links(&mut self) {
        let pipes: Vec<_> = std::mem::take(&mut self.pipes).into_iter().collect();
        for ((i, l), _) in pipes {
            let _ = self.nodes[i].handle_link_down(self.now, l);
        }
        self.webrtc.clear();
        self.settle();
    }

    /// Reports every relay link down (the relay side too).
    pub fn drop_relay_links(&mut self) {
        let links: Vec<_> = std::mem::take(&mut self.to_relay).into_iter().collect();
        self.from_relay.clear();
        for ((i, l), client) in links {
            self.relay.handle_link_down(self.now, client);
            let _ = self.nodes[i].handle_link_down(self.now, l);
        }
        self.settle();
    }

    /// Reports node i's relay link down (the relay side too); the other nodes are not told.
    pub fn drop_relay_link(&mut self, i: usize) {
        let links: Vec<_> = self
            .to_relay
            .iter()
            .filter(|((n, _), _)| *n == i)
            .map(|(k, c)| (*k, *c))
            .collect();
        for ((i, l), client) in links {
            self.to_relay.remove(&(i, l));
            self.from_relay.remove(&client);
            self.relay.handle_link_down(self.now, client);
            let _ = self.nodes[i].handle_link_down(self.now, l);
        }
        self.settle();
    }

    /// Kills node i: its traffic stops both ways and it never fires timers again.
    pub fn kill(&mut self, i: usize) {
        self.dead.insert(i);
    }
}

/// The offer every offerer's adapter sends.
pub fn offer() -> WebRtcSignal {
    WebRtcSignal::Offer {
        sdp: super::samples::SDP_OFFER.into(),
    }
}

/// The answer every answerer's adapter sends.
pub fn answer() -> WebRtcSignal {
    WebRtcSignal::Answer {
        sdp: super::samples::SDP_OFFER.replace("a=setup:actpass", "a=setup:active"),
    }
}

/// The ICE candidate node i's adapter trickles.
pub fn candidate(i: usize) -> WebRtcSignal {
    WebRtcSignal::Candidate {
        candidate: format!("candidate:{i} 1 udp 2122260223 192.0.2.{i} 5000{i} typ host"),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

/// A hand-driven peer for an engine's inbound link: a fresh identity from `seed` and a real
/// initiating `Conn` (its first handshake message queued), with the link the engine gave it.
pub fn raw_peer(
    engine: &mut Node,
    seed: u64,
) -> (Identity, whispurr_core::conn::Conn<RustCrypto>, LinkId) {
    raw_peer_with(engine, seed, 0)
}

/// [`raw_peer`] announcing `capabilities` in its handshake.
pub fn raw_peer_with(
    engine: &mut Node,
    seed: u64,
    capabilities: u64,
) -> (Identity, whispurr_core::conn::Conn<RustCrypto>, LinkId) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let identity = Identity::generate(&mut rng, START);
    let link = engine.handle_incoming(START).unwrap();
    let conn = whispurr_core::conn::Conn::initiator(
        RustCrypto,
        &identity,
        None,
        whispurr_core::crypto::link::LinkConfig {
            capabilities,
            ..Default::default()
        },
        1 << 20,
        65_535,
        START,
        &mut rng,
    );
    (identity, conn, link)
}

/// A node with its own seeded identity and RNG.
pub fn node(seed: u64, config: Config) -> Node {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let id = Identity::generate(&mut rng, START);
    Engine::new(id, config, RustCrypto, rng, START)
}

/// The first seed from 100 whose identity's key satisfies `want`.
pub fn seed_with_key(want: impl Fn(&NodeKey) -> bool) -> u64 {
    (100..)
        .find(|&seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            want(Identity::generate(&mut rng, START).node_id().key())
        })
        .unwrap()
}

/// Moves records both ways between `engine` and a raw peer's `conn` on `link` until quiet
/// (records for other links are dropped).
pub fn pump_raw(
    engine: &mut Node,
    conn: &mut whispurr_core::conn::Conn<RustCrypto>,
    link: LinkId,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for _ in 0..100 {
        let mut moved = false;
        while let Some(r) = conn.pop_record() {
            moved = true;
            let _ = engine.handle_data(START, link, r);
        }
        while let Some(mut t) = engine.poll_transmit(START) {
            moved = true;
            if t.link != link {
                continue;
            }
            if let Ok(whispurr_core::conn::Received::Frame(n)) =
                conn.handle_data(START, &mut t.record)
            {
                frames.push(t.record[..n].to_vec());
            }
        }
        if !moved {
            break;
        }
    }
    frames
}

/// A raw peer: its identity, its connection and the engine's link to it.
pub type RawPeer = (Identity, whispurr_core::conn::Conn<RustCrypto>, LinkId);

/// Moves records both ways between `engine` and all `peers` until quiet, each record to the
/// peer of its link; returns the frames each peer received.
pub fn pump_peers(engine: &mut Node, peers: &mut [RawPeer]) -> Vec<Vec<Vec<u8>>> {
    let mut frames = vec![Vec::new(); peers.len()];
    for _ in 0..100 {
        let mut moved = false;
        for p in peers.iter_mut() {
            while let Some(r) = p.1.pop_record() {
                moved = true;
                let _ = engine.handle_data(START, p.2, r);
            }
        }
        while let Some(mut t) = engine.poll_transmit(START) {
            moved = true;
            if let Some(i) = peers.iter().position(|p| p.2 == t.link)
                && let Ok(whispurr_core::conn::Received::Frame(n)) =
                    peers[i].1.handle_data(START, &mut t.record)
            {
                frames[i].push(t.record[..n].to_vec());
            }
        }
        if !moved {
            break;
        }
    }
    frames
}
