//! A deterministic simulator: many real [`Engine`]s on virtual time, connected by simulated
//! links, driven by a seeded RNG. Same seed, same run — to the byte.
//!
//! The network model matches whispurr's real transports, which are reliable and ordered
//! (WebSocket over TCP, reliable ordered WebRTC data channels):
//!
//! - each link has a latency drawn uniformly from the configured range when it is opened;
//! - **loss** is modelled as the transport models it: a lost message is retransmitted after
//!   `rto`, and everything behind it on the link waits (head-of-line blocking) — it delays, it
//!   never silently vanishes from an established session;
//! - a **partition** cuts links between groups: records across the cut are lost and the links
//!   are torn down, as a transport would after its timeout;
//! - a **killed** node stops at once; its peers see their links reset after one latency (the
//!   operating system closes a dead process's sockets).
//!
//! Nodes are addressed as `sim://<index>`: a node joins through another with
//! [`Engine::connect_peer`]. Drive it with [`Sim::run_for`], [`Sim::run_until`] or
//! [`Sim::run_until_idle`]; measure broadcasts with [`Sim::broadcast`] and [`Sim::report`], and
//! the overlay with [`Sim::overlay`].

mod crypto;
mod metrics;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    time::Duration,
    vec,
    vec::Vec,
};

pub use crypto::SimCrypto;
pub use metrics::{Overlay, Report};
use rand_chacha::{
    ChaCha20Rng,
    rand_core::{Rng, SeedableRng},
};

use crate::{
    Identity, Timestamp,
    engine::{Action, Addr, Config, Engine, Event, LinkId, Output, drain},
    wire::MessageId,
};

/// A simulated node's engine. It runs the real handshake, sessions and AEAD; only key
/// agreement is simulated ([`SimCrypto`]), which makes large runs affordable.
pub type SimEngine = Engine<SimCrypto, ChaCha20Rng>;

/// Network conditions.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of nodes.
    pub n: usize,
    /// Seed of every random choice (identities, latencies, losses, engine RNGs).
    pub seed: u64,
    /// Link latency range (uniform).
    pub latency: (Duration, Duration),
    /// Probability that a message is lost once and retransmitted after `rto`.
    pub loss: f64,
    /// Retransmission delay of a lost message.
    pub rto: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            n: 10,
            seed: 0,
            latency: (Duration::from_millis(10), Duration::from_millis(50)),
            loss: 0.0,
            rto: Duration::from_millis(200),
        }
    }
}

/// One direction of a simulated link.
#[derive(Clone, Copy, Debug)]
struct Pipe {
    to: (usize, LinkId),
    latency: Duration,
    /// When the last record on this direction is delivered (ordering).
    busy_until: Timestamp,
}

#[derive(Debug)]
enum Input {
    Deliver {
        to: usize,
        link: LinkId,
        data: Vec<u8>,
    },
    Up {
        node: usize,
        link: LinkId,
    },
    Down {
        node: usize,
        link: LinkId,
    },
}

/// The simulator.
pub struct Sim {
    /// Virtual time.
    pub now: Timestamp,
    config: SimConfig,
    engines: Vec<SimEngine>,
    alive: Vec<bool>,
    group: Vec<u32>,
    pipes: BTreeMap<(usize, LinkId), Pipe>,
    queue: BinaryHeap<Reverse<(Timestamp, u64)>>,
    inputs: BTreeMap<u64, Input>,
    seq: u64,
    timers: BTreeSet<(Timestamp, usize)>,
    timer_of: Vec<Option<Timestamp>>,
    rng: ChaCha20Rng,
    tracker: metrics::Tracker,
    /// Application events each node raised (kept only when `keep_events` is set).
    pub events: Vec<Vec<Event>>,
    /// Keep every node's events in [`Sim::events`] (off by default: large runs).
    pub keep_events: bool,
    /// Outputs of the engine being drained (reused between drains).
    outputs: Vec<Output>,
}

impl Sim {
    /// A network of `config.n` nodes, each with the engine configuration `engine(i)`.
    pub fn new(config: SimConfig, engine: impl Fn(usize) -> Config) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let start = Timestamp::from_secs(1_764_000_000);
        let engines = (0..config.n)
            .map(|i| {
                let mut node_rng = ChaCha20Rng::seed_from_u64(rng.next_u64());
                let identity = Identity::generate(&mut node_rng, start);
                Engine::new(identity, engine(i), SimCrypto, node_rng, start)
            })
            .collect();
        Sim {
            now: start,
            alive: vec![true; config.n],
            group: vec![0; config.n],
            events: (0..config.n).map(|_| Vec::new()).collect(),
            timer_of: vec![None; config.n],
            engines,
            pipes: BTreeMap::new(),
            queue: BinaryHeap::new(),
            inputs: BTreeMap::new(),
            seq: 0,
            timers: BTreeSet::new(),
            rng,
            tracker: metrics::Tracker::default(),
            keep_events: false,
            outputs: Vec::new(),
            config,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.engines.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    /// Node `i`'s engine.
    pub fn engine(&self, i: usize) -> &SimEngine {
        &self.engines[i]
    }

    /// Node `i`'s engine, to give it commands (call [`Sim::poke`] afterwards).
    pub fn engine_mut(&mut self, i: usize) -> &mut SimEngine {
        &mut self.engines[i]
    }

    /// Whether node `i` is alive.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i]
    }

    /// Indices of living nodes.
    pub fn living(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.alive[i]).collect()
    }

    /// Node `i` joins through node `via`.
    pub fn join(&mut self, i: usize, via: usize) {
        let now = self.now;
        let addr = std::format!("sim://{via}");
        let _ = self.engines[i].join(now, &addr);
        self.poke(i);
    }

    /// Drains node `i`'s outputs after the caller gave it a command.
    pub fn poke(&mut self, i: usize) {
        self.drain(i);
    }

    fn schedule(&mut self, at: Timestamp, input: Input) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.inputs.insert(self.seq, input);
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.config.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        let extra = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        lo + Duration::from_micros(extra)
    }

    /// Moves every output of node `i` into the network.
    fn drain(&mut self, i: usize) {
        if !self.alive[i] {
            return;
        }
        let now = self.now;
        let mut outputs = core::mem::take(&mut self.outputs);
        let next = drain(&mut self.engines[i], now, |o| outputs.push(o));
        for output in outputs.drain(..) {
            match output {
                Output::Action(Action::Connect {
                    link,
                    addr: Addr::Peer(addr),
                }) => self.connect(i, link, &addr),
                Output::Action(Action::Connect { link, .. }) => {
                    let at = now.saturating_add(Duration::from_millis(1));
                    self.schedule(at, Input::Down { node: i, link });
                }
                Output::Action(Action::Close { link }) => self.cut((i, link)),
                Output::Action(Action::Signal { .. }) => {}
                Output::Transmit(t) => self.transmit(i, t.link, t.record),
                Output::Event(e) => {
                    if let Event::Broadcast { id, hops, .. } = &e {
                        self.tracker.delivered(*id, i, now, *hops);
                    }
                    if self.keep_events {
                        self.events[i].push(e);
                    }
                }
            }
        }
        self.outputs = outputs;
        if next != self.timer_of[i] {
            if let Some(old) = self.timer_of[i] {
                self.timers.remove(&(old, i));
            }
            if let Some(t) = next {
                self.timers.insert((t.max(now), i));
            }
            self.timer_of[i] = next.map(|t| t.max(now));
        }
    }

    /// Puts a record of node `i` on the wire: it arrives after the link's latency (plus a
    /// retransmission delay when lost), never before the records sent before it.
    fn transmit(&mut self, i: usize, link: LinkId, record: Vec<u8>) {
        let now = self.now;
        let Some(pipe) = self.pipes.get(&(i, link)).copied() else {
            return;
        };
        let (j, jl) = pipe.to;
        if !self.alive[j] || self.group[i] != self.group[j] {
            return; // lost; the session dies with it
        }
        let mut delay = pipe.latency;
        if self.config.loss > 0.0
            && (self.rng.next_u64() as f64 / u64::MAX as f64) < self.config.loss
        {
            delay += self.config.rto;
        }
        let at = now.saturating_add(delay).max(pipe.busy_until);
        if let Some(p) = self.pipes.get_mut(&(i, link)) {
            p.busy_until = at;
        }
        self.schedule(
            at,
            Input::Deliver {
                to: j,
                link: jl,
                data: record,
            },
        );
    }

    /// Removes both directions of the link `key` belongs to; the far end sees it go down after
    /// one latency.
    fn cut(&mut self, key: (usize, LinkId)) {
        if let Some(pipe) = self.pipes.remove(&key) {
            self.pipes.remove(&pipe.to);
            let at = self.now.saturating_add(pipe.latency);
            let (node, link) = pipe.to;
            self.schedule(at, Input::Down { node, link });
        }
    }

    fn connect(&mut self, i: usize, link: LinkId, addr: &str) {
        let now = self.now;
        let target = addr
            .strip_prefix("sim://")
            .and_then(|s| s.parse::<usize>().ok());
        let latency = self.latency();
        let at = now.saturating_add(latency);
        let Some(j) =
            target.filter(|&j| j < self.len() && self.alive[j] && self.group[i] == self.group[j])
        else {
            self.schedule(at, Input::Down { node: i, link });
            return;
        };
        let Ok(jl) = self.engines[j].handle_incoming(now) else {
            self.schedule(at, Input::Down { node: i, link });
            return;
        };
        self.pipes.insert(
            (i, link),
            Pipe {
                to: (j, jl),
                latency,
                busy_until: now,
            },
        );
        self.pipes.insert(
            (j, jl),
            Pipe {
                to: (i, link),
                latency,
                busy_until: now,
            },
        );
        self.schedule(at, Input::Up { node: i, link });
        self.drain(j);
    }

    /// Processes everything due up to `until`, in time order. Returns whether work remains
    /// after `until` beyond periodic timers (deliveries in flight).
    pub fn run_to(&mut self, until: Timestamp) {
        loop {
            let next_input = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.timers.first().map(|(t, _)| *t);
            let next = match (next_input, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            if next_input == Some(next) {
                let Some(Reverse((_, seq))) = self.queue.pop() else {
                    break;
                };
                let Some(input) = self.inputs.remove(&seq) else {
                    continue;
                };
                match input {
                    Input::Deliver { to, link, mut data } => {
                        if self.alive[to] {
                            let _ = self.engines[to].handle_data(now, link, &mut data);
                            self.drain(to);
                        }
                    }
                    Input::Up { node, link } => {
                        if self.alive[node] {
                            let _ = self.engines[node].handle_link_up(now, link);
                            self.drain(node);
                        }
                    }
                    Input::Down { node, link } => {
                        self.pipes.remove(&(node, link));
                        if self.alive[node] {
                            let _ = self.engines[node].handle_link_down(now, link);
                            self.drain(node);
                        }
                    }
                }
            } else if let Some((t, i)) = self.timers.pop_first() {
                self.timer_of[i] = None;
                if self.alive[i] {
                    self.engines[i].handle_timeout(t.max(now));
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.saturating_add(d);
        self.run_to(until);
    }

    /// Runs in steps of `step` until `cond` holds or `max` has passed; returns whether it held.
    pub fn run_until(
        &mut self,
        mut cond: impl FnMut(&Sim) -> bool,
        step: Duration,
        max: Duration,
    ) -> bool {
        let end = self.now.saturating_add(max);
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.run_for(step);
        }
        cond(self)
    }

    /// Runs until no record is in flight (timers may still be pending), at most `max`.
    pub fn run_until_idle(&mut self, max: Duration) -> bool {
        let end = self.now.saturating_add(max);
        while !self.queue.is_empty() && self.now < end {
            let next = self.queue.peek().map(|Reverse((t, _))| *t).unwrap_or(end);
            self.run_to(next.min(end));
        }
        self.queue.is_empty()
    }

    /// Runs until no record is in flight and no repair is pending: idle, then `grace` more
    /// (lazy announcements and grafts run on timers), then idle again; at most `max`.
    pub fn settle(&mut self, grace: Duration, max: Duration) -> bool {
        let end = self.now.saturating_add(max);
        self.run_until_idle(max);
        self.run_for(grace);
        let left = end.saturating_duration_since(self.now);
        self.run_until_idle(left)
    }

    /// Runs until every broadcast in `ids` reached every living node, then `grace` more (late
    /// copies, lazy announcements and grafts); at most `max`. Heartbeats keep links busy
    /// forever, so "no record in flight" is not a usable end of a round in large runs.
    pub fn run_until_delivered(
        &mut self,
        ids: &[MessageId],
        grace: Duration,
        max: Duration,
    ) -> bool {
        let step = Duration::from_millis(10);
        let done = self.run_until(
            |sim| {
                ids.iter()
                    .all(|id| sim.report(id).is_some_and(|r| r.delivered >= r.expected))
            },
            step,
            max,
        );
        self.run_for(grace);
        done
    }

    /// Node `from` broadcasts `payload` (anonymous or signed per its config); tracked for
    /// [`Sim::report`].
    pub fn broadcast(&mut self, from: usize, payload: &[u8]) -> Option<MessageId> {
        let now = self.now;
        let copies = self.total_copies();
        let id = self.engines[from].broadcast(now, payload).ok()?;
        self.tracker.sent(id, from, now, copies);
        self.drain(from);
        Some(id)
    }

    fn total_copies(&self) -> u64 {
        self.engines.iter().map(|e| e.stats().gossip_received).sum()
    }

    /// Delivery statistics of broadcast `id` so far: reliability among living nodes, relative
    /// message redundancy (of all traffic since it was sent), last delivery hop and duration.
    pub fn report(&self, id: &MessageId) -> Option<Report> {
        let alive = self.alive.iter().filter(|a| **a).count();
        self.tracker
            .report(id, alive, &self.alive, self.total_copies())
    }

    /// Kills node `i`: it stops at once; its peers' links reset after one latency.
    pub fn kill(&mut self, i: usize) {
        self.alive[i] = false;
        let mine: Vec<(usize, LinkId)> = self
            .pipes
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for key in mine {
            self.cut(key);
        }
        if let Some(t) = self.timer_of[i].take() {
            self.timers.remove(&(t, i));
        }
    }

    /// Splits the network: node `i` is in `group(i)`; links between groups are torn down.
    pub fn partition(&mut self, group: impl Fn(usize) -> u32) {
        for i in 0..self.len() {
            self.group[i] = group(i);
        }
        let now = self.now;
        let cut: Vec<((usize, LinkId), Pipe)> = self
            .pipes
            .iter()
            .filter(|((a, _), p)| self.group[*a] != self.group[p.to.0])
            .map(|(k, p)| (*k, *p))
            .collect();
        for (key, pipe) in cut {
            if self.pipes.remove(&key).is_some() {
                let at = now.saturating_add(pipe.latency);
                self.schedule(
                    at,
                    Input::Down {
                        node: key.0,
                        link: key.1,
                    },
                );
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    /// The overlay of established links among living nodes: mean BFS eccentricity and degree.
    pub fn overlay(&self) -> Overlay {
        let index: BTreeMap<crate::NodeKey, usize> = (0..self.len())
            .map(|i| (*self.engines[i].node_id().key(), i))
            .collect();
        let adjacency: Vec<Vec<usize>> = (0..self.len())
            .map(|i| {
                if !self.alive[i] {
                    return Vec::new();
                }
                self.engines[i]
                    .neighbour_keys()
                    .iter()
                    .filter_map(|k| index.get(k).copied())
                    .filter(|&j| self.alive[j])
                    .collect()
            })
            .collect();
        metrics::overlay(&adjacency, &self.alive)
    }
}
