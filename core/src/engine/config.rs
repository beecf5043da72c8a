//! Engine configuration: every cap, timer and policy in one place, with defaults that suit a
//! small private swarm.

use core::time::Duration;

use crate::{crypto::link::LinkConfig, derive::IntentKdf, wire::Limits};

/// How broadcasts are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastAuth {
    /// Origin ID and ECDSA signature (default).
    Signed,
    /// No origin, no signature.
    Anonymous,
}

/// Traffic obfuscation settings. All off by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obfuscation {
    /// Pad every frame up to the next of these sizes (ascending; larger frames go unpadded).
    /// Empty = no padding.
    pub padding_buckets: alloc::vec::Vec<usize>,
    /// Hold each link's outgoing records for a random delay in `[0, max_jitter]` before
    /// release (order is kept). Zero = no jitter.
    pub max_jitter: Duration,
    /// Send a padded dummy frame on each established link at random intervals of mean
    /// `cover_interval`. `None` = no cover traffic.
    pub cover_interval: Option<Duration>,
}

impl Obfuscation {
    /// No padding, no jitter, no cover traffic.
    pub fn off() -> Self {
        Obfuscation {
            padding_buckets: alloc::vec::Vec::new(),
            max_jitter: Duration::ZERO,
            cover_interval: None,
        }
    }

    /// Padding to power-of-two buckets from 128 B to 64 KiB, up to 20 ms of jitter, and cover
    /// traffic every 2 s on average.
    pub fn standard() -> Self {
        Obfuscation {
            padding_buckets: alloc::vec![
                128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65519
            ],
            max_jitter: Duration::from_millis(20),
            cover_interval: Some(Duration::from_secs(2)),
        }
    }
}

/// Partial-view overlay membership (HyParView-style): a small *active* view of peers the node
/// keeps links to (its gossip neighbours) and a larger *passive* view of addresses to replace
/// them from, kept fresh by shuffles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MembershipConfig {
    /// Active view size (the overlay's degree).
    pub active: usize,
    /// Passive view size: the contacts a node can fall back on. 60 rather than 30 because
    /// after 90 % of nodes die at once, a survivor whose 30 contacts are all dead (0.9^30 ≈ 4 %
    /// of them) can only wait to be found; in the simulator, 30 left one node of a seed
    /// unreachable for good, 60 none.
    pub passive: usize,
    /// Length of the random walk that announces a joining node.
    pub active_walk: u8,
    /// Walk step at which the joining node is also put in passive views.
    pub passive_walk: u8,
    /// Interval between shuffles (randomised by ±50 %).
    pub shuffle_interval: Duration,
    /// Active peers sent in a shuffle.
    pub shuffle_active: usize,
    /// Passive peers sent in a shuffle.
    pub shuffle_passive: usize,
    /// Chance, at each shuffle, of replacing a random active peer with a random passive one.
    /// Without it, two halves of a healed partition each keep full active views of their own
    /// side and never reconnect; with it, every rotation costs a handshake and breaks a tree
    /// link (measured in the simulator, 1,000-node `multi`, seeds 0..1: at 0.1, rmr 0.01 →
    /// 0.09 and mean duration 414 → 617 ms). Off by default: probes (`probe`) heal
    /// partitions without that cost.
    pub rotate: f64,
    /// Chance, at each shuffle, of probing a random passive contact (see the membership
    /// module): how partitions heal by default. Needs the broadcast tree, whose catch-up
    /// announcements the probe looks through.
    pub probe: f64,
    /// How long a probe link stays open before the node decides.
    pub probe_window: Duration,
    /// Rate of dials other nodes' messages may make this node open: a FORWARD_JOIN walk that
    /// ends here dials the address it names, so without a limit anyone could make the node
    /// dial any address at will (`max_links` caps dials in flight, not their rate). Beyond it
    /// the walk's dial is refused and counted (`Stats::remote_dials_refused`); the joiner is
    /// still reached by the other walks of its JOIN. The node's own dials (refilling its
    /// active view, probes, rejoins) are not limited. Default: 5 per second, bursts of 10.
    pub remote_dial_rate: crate::relay::RateLimit,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            active: 5,
            passive: 60,
            active_walk: 6,
            passive_walk: 3,
            shuffle_interval: Duration::from_secs(10),
            shuffle_active: 3,
            shuffle_passive: 4,
            rotate: 0.0,
            probe: 0.2,
            probe_window: Duration::from_secs(1),
            remote_dial_rate: crate::relay::RateLimit {
                per_second: 5,
                burst: 10,
            },
        }
    }
}

/// How broadcasts spread through the neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gossip {
    /// Flooding (the default): each node pushes every new broadcast in full to
    /// [`Config::fanout`] random neighbours (all of them by default); de-duplication stops it.
    /// Simple and robust, at about `degree - 1` redundant copies per delivery.
    #[default]
    Flood,
    /// An epidemic broadcast tree (PlumTree-style): the full broadcast along a spanning tree of
    /// the neighbours, announcements (IHAVE) to the others, grafts and prunes to repair and
    /// trim the tree. About one copy per delivery. Pair it with [`Config::membership`].
    Tree(super::TreeConfig),
}

/// Everything the [`Engine`](super::Engine) can be told.
#[derive(Clone, Debug)]
pub struct Config {
    /// Wire limits for received frames (frame size, clock skew, TTL and hop caps, lists).
    pub limits: Limits,
    /// Link handshake and rekey settings.
    pub link: LinkConfig,
    /// Most links of any kind (relay, direct, tunnelled) at once.
    pub max_links: usize,
    /// Most end-to-end tunnels other nodes opened to us through relays, handshaking or
    /// established. Anyone at a relay can start one for the price of 32 bytes, so they get a
    /// share of `max_links`, never all of it: the rest stays for the links this node opens.
    pub max_inbound_tunnels: usize,
    /// Rate of tunnel handshakes other nodes may start through relays (each costs this node a
    /// key generation and two ECDH). Beyond it the first message is dropped unanswered, before
    /// any of that is paid.
    pub inbound_tunnel_rate: crate::relay::RateLimit,
    /// Most known peers.
    pub max_peers: usize,
    /// Bytes of sealed records a link may hold unsent.
    pub max_queue_bytes: usize,
    /// Ids of each kind of message (whispers, signed broadcasts, anonymous broadcasts,
    /// resonance, extension messages) the de-duplication set holds. An id stays exactly as long
    /// as its message is valid (its timestamp plus its time to live, capped by
    /// `limits.max_ttl`) and is never evicted early; when a kind's share is full, new messages of
    /// that kind are refused (and counted) until ids expire. With the default TTL of 60 s this
    /// admits about 270 messages per second of each kind.
    pub max_seen: usize,
    /// Whispers awaiting acknowledgement.
    pub max_pending_whispers: usize,
    /// Application events held until polled; beyond it the oldest are dropped and counted.
    pub max_events: usize,
    /// Bytes of payload (whispers, broadcasts, resonance) application events may hold until
    /// polled; beyond it the oldest events are dropped and counted, like `max_events`. A cap in
    /// bytes, not only in count: 4,096 events of 64 KiB would be 256 MiB.
    pub max_event_bytes: usize,
    /// Time to live put on own messages.
    pub default_ttl: Duration,
    /// Hop limit put on own broadcasts and resonance messages. Default 32: a broadcast tree's
    /// paths are longer than the overlay's shortest ones (the simulator's 1,000-node `multi`
    /// has a mean last-delivery hop near 16), and de-duplication, not the hop limit, is what
    /// stops loops.
    pub default_hop_limit: u8,
    /// Neighbours each flooded message is pushed to, picked at random (`usize::MAX` = all):
    /// resonance and extension messages, and broadcasts under [`Gossip::Flood`] (under
    /// [`Gossip::Tree`] broadcasts follow the tree's links instead).
    pub fanout: usize,
    /// How own broadcasts are authenticated by default.
    pub broadcast_auth: BroadcastAuth,
    /// The stem phase of own anonymous broadcasts (see [`StemConfig`](super::StemConfig)):
    /// they go first to one random neighbour, which passes them on or starts the diffusion, so
    /// that no neighbour can tell the origin from a forwarder. `None` spreads them at once
    /// (faster by about `1 / fluff` hops, but the origin is the one neighbour sending them
    /// with hop count 1).
    pub stem: Option<super::StemConfig>,
    /// Deliver and forward anonymous broadcasts from others. Off, only signed broadcasts are
    /// accepted (anonymous copies are dropped and counted as refused, and never take an id).
    pub accept_anonymous: bool,
    /// Interval between PINGs on each link.
    pub ping_interval: Duration,
    /// A link with nothing received for this long is dead.
    pub dead_after: Duration,
    /// A link whose handshake has not finished after this long is closed.
    pub handshake_timeout: Duration,
    /// First wait before retrying a whisper; doubles each attempt.
    pub whisper_retry: Duration,
    /// Sends of a whisper before it is reported failed.
    pub whisper_attempts: u8,
    /// First reconnect delay of a relay link; doubles up to `reconnect_max`.
    pub reconnect_base: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// Open end-to-end sessions to every node met in the relays' global namespace. Without
    /// it, sessions are opened only to nodes sharing an attuned intent, and whispers to others
    /// travel sealed through the relay.
    pub auto_connect: bool,
    /// How often rendezvous namespaces are looked up again at each relay (peers that dropped
    /// out are reconnected then).
    pub lookup_interval: Duration,
    /// Try a direct (WebRTC) path to peers reached through a relay.
    pub try_direct: bool,
    /// Wait before trying a direct path again after a failure (doubles per failure).
    pub direct_retry: Duration,
    /// Lowest resonance strength delivered to the application.
    pub min_strength: f32,
    /// Argon2id cost of deriving an intent phrase's secret in
    /// [`attune`](super::Engine::attune): paid once per phrase attuned, never per message.
    /// Part of the derivation, so every node attuned to a phrase must use the same value;
    /// default [`IntentKdf::RECOMMENDED`] (19 MiB, 2 passes: 23.7 ms in release on this
    /// project's machines). See [`IntentKdf`] for the measurements and for small hardware.
    pub intent_kdf: IntentKdf,
    /// Interval of extension ticks.
    pub tick_interval: Duration,
    /// Traffic obfuscation.
    pub obfuscation: Obfuscation,
    /// Partial-view membership over direct links; `None` (default) keeps every link that comes.
    pub membership: Option<MembershipConfig>,
    /// How broadcasts spread: flooded (default) or along a broadcast tree.
    pub gossip: Gossip,
    /// The address other nodes can dial to reach this one (announced by membership).
    pub listen_addr: Option<alloc::string::String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            link: LinkConfig::default(),
            max_links: 64,
            max_inbound_tunnels: 16,
            inbound_tunnel_rate: crate::relay::RateLimit {
                per_second: 10,
                burst: 20,
            },
            max_peers: 256,
            max_queue_bytes: 1 << 20,
            max_seen: 16_384,
            max_pending_whispers: 256,
            max_events: 4096,
            max_event_bytes: 16 << 20,
            default_ttl: Duration::from_secs(60),
            default_hop_limit: 32,
            fanout: usize::MAX,
            broadcast_auth: BroadcastAuth::Signed,
            accept_anonymous: true,
            stem: Some(super::StemConfig::default()),
            ping_interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            whisper_retry: Duration::from_secs(1),
            whisper_attempts: 4,
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            auto_connect: true,
            lookup_interval: Duration::from_secs(30),
            try_direct: true,
            direct_retry: Duration::from_secs(10),
            min_strength: 0.0,
            intent_kdf: IntentKdf::RECOMMENDED,
            tick_interval: Duration::from_secs(1),
            obfuscation: Obfuscation::off(),
            membership: None,
            gossip: Gossip::Flood,
            listen_addr: None,
        }
    }
}
