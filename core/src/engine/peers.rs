//! The peer table: what the engine knows of each peer (its ID, capabilities, announced
//! resonance keys, its direct and tunnelled paths), which path carries traffic to it, and the
//! events when a peer comes up, changes path or goes down.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    DownReason, Engine, Event, LinkId, PathKind,
    links::{Class, LinkKind},
};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::{CryptoProvider, link::PeerInfo},
    derive::ResonanceKey,
    wire::{Join, Message, MessageType},
};

/// How much better (in quality score) the relayed path must be to be preferred over a direct
/// one; keeps traffic from flapping between paths of similar quality.
pub const PATH_HYSTERESIS: f64 = 0.2;

/// Most resonance keys remembered per peer (extra announced keys are ignored).
pub const MAX_KEYS_PER_PEER: usize = 32;

/// Capability bit: the node can open WebRTC data channels.
pub const CAP_WEBRTC: u64 = 1;

/// Rendezvous namespace every node joins at its relays.
pub(crate) fn global_namespace() -> [u8; 32] {
    crate::derive::global_namespace()
}

/// A peer with an established path, as [`Engine::peer_status`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStatus {
    /// The peer's ID.
    pub id: NodeId,
    /// The path that carries traffic to it now.
    pub path: PathKind,
    /// Smoothed round-trip time on that path, once measured.
    pub rtt_ms: Option<f64>,
    /// Smoothed deviation of the round-trip time on that path.
    pub jitter_ms: f64,
    /// Share of PINGs on that path not answered.
    pub loss: f64,
    /// Whether a direct link is established too (it may not carry traffic when the relayed
    /// path is clearly healthier).
    pub direct_up: bool,
}

/// What the engine knows about a peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub id: NodeId,
    pub direct: Option<LinkId>,
    pub tunnel: Option<LinkId>,
    pub relay: Option<LinkId>,
    pub keys: heapless::Vec<ResonanceKey, MAX_KEYS_PER_PEER>,
    pub capabilities: u64,
    pub webrtc: Option<LinkId>,
    pub direct_failures: u32,
    pub next_direct_try: Option<Timestamp>,
    pub path: Option<PathKind>,
}

impl Peer {
    fn new(id: NodeId) -> Self {
        Peer {
            id,
            direct: None,
            tunnel: None,
            relay: None,
            keys: heapless::Vec::new(),
            capabilities: 0,
            webrtc: None,
            direct_failures: 0,
            next_direct_try: None,
            path: None,
        }
    }
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// The established link that carries traffic to `peer`: the direct link unless the relayed
    /// one is clearly healthier (its quality score higher by more than [`PATH_HYSTERESIS`]).
    pub(crate) fn best_path(&self, peer: &Peer) -> Option<LinkId> {
        let up = |l: Option<LinkId>| {
            l.and_then(|l| {
                let e = self.links.get(&l)?;
                e.is_established().then_some((l, e.quality.score()))
            })
        };
        match (up(peer.direct), up(peer.tunnel)) {
            (Some((d, ds)), Some((t, ts))) => Some(if ts > ds + PATH_HYSTERESIS { t } else { d }),
            (Some((d, _)), None) => Some(d),
            (None, Some((t, _))) => Some(t),
            (None, None) => None,
        }
    }

    /// The established link to `key`, if any.
    pub(crate) fn path_to(&self, key: &NodeKey) -> Option<LinkId> {
        self.peers.get(key).and_then(|p| self.best_path(p))
    }

    /// Every peer with an established path: its ID, the path carrying its traffic and that
    /// path's quality, in key order.
    pub fn peer_status(&self) -> Vec<PeerStatus> {
        self.peers
            .values()
            .filter_map(|p| {
                let best = self.best_path(p)?;
                let link = self.links.get(&best)?;
                let direct_up = p
                    .direct
                    .and_then(|d| self.links.get(&d))
                    .is_some_and(|l| l.is_established());
                Some(PeerStatus {
                    id: p.id,
                    path: if Some(best) == p.direct {
                        PathKind::Direct
                    } else {
                        PathKind::Relayed
                    },
                    rtt_ms: link.quality.rtt_ms(),
                    jitter_ms: link.quality.jitter_ms(),
                    loss: link.quality.loss(),
                    direct_up,
                })
            })
            .collect()
    }

    /// Peers with an established path, with that path, in key order.
    pub(crate) fn neighbours(&self) -> Vec<(NodeKey, LinkId)> {
        self.peers
            .iter()
            .filter_map(|(k, p)| self.best_path(p).map(|l| (*k, l)))
            .collect()
    }

    pub(crate) fn upsert_peer(&mut self, id: NodeId) -> Option<&mut Peer> {
        let key = *id.key();
        if key == *self.identity.node_id().key() {
            return None;
        }
        if !self.peers.contains_key(&key) {
            if self.peers.len() >= self.config.max_peers {
                // Forget a peer with no path to make room, else refuse.
                let idle = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.direct.is_none() && p.tunnel.is_none() && p.webrtc.is_none())
                    .map(|(k, _)| *k);
                match idle {
                    Some(k) => {
                        self.peers.remove(&k);
                        self.timers.remove(super::timers::Timer::Direct(k));
                    }
                    None => return None,
                }
            }
            self.peers.insert(key, Peer::new(id));
        }
        self.peers.get_mut(&key)
    }

    /// Re-evaluates a peer's best path and tells the application if it changed.
    pub(crate) fn refresh_path(&mut self, key: NodeKey, reason: DownReason) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let best = self.best_path(peer);
        let kind = best.map(|l| match self.links.get(&l).map(|e| &e.kind) {
            Some(LinkKind::Tunnel { .. }) => PathKind::Relayed,
            _ => PathKind::Direct,
        });
        let id = peer.id;
        let before = peer.path;
        if let Some(p) = self.peers.get_mut(&key) {
            p.path = kind;
        }
        match (before, kind) {
            (a, Some(b)) if a != Some(b) => self.push_event(Event::PeerUp { peer: id, path: b }),
            (Some(_), None) => self.push_event(Event::PeerDown { peer: key, reason }),
            _ => {}
        }
    }

    /// A link finished its handshake.
    pub(crate) fn link_established(&mut self, now: Timestamp, link: LinkId, info: PeerInfo) {
        let Some(kind) = self.links.get(&link).map(|l| l.kind.clone()) else {
            return;
        };
        match kind {
            LinkKind::Relay { addr } => {
                self.reconnect_attempts.remove(&addr);
                self.push_event(Event::RelayUp {
                    relay: info.node_id,
                });
                // Be findable in the global namespace and every attuned one; look up those we
                // open sessions in.
                let mut spaces = alloc::vec![global_namespace()];
                spaces.extend(self.intent_namespaces(link));
                for namespace in spaces {
                    let join = Message::Join(Join {
                        namespace,
                        leave: false,
                    });
                    let _ = self.send_on(now, link, join, Class::Control);
                }
                self.lookup_at(now, link);
            }
            LinkKind::Direct { .. } | LinkKind::Inbound | LinkKind::Tunnel { .. } => {
                let key = *info.node_id.key();
                let tunnel = match kind {
                    LinkKind::Tunnel { relay, peer, .. } => Some((relay, peer)),
                    _ => None,
                };
                let is_tunnel = tunnel.is_some();
                self.pending_tunnels.remove(&link);
                if tunnel.is_some_and(|(_, expected)| expected != key) {
                    // The relay said the tunnel leads to one node; the handshake proved another.
                    self.fail_link(now, link);
                    return;
                }
                let Some(peer) = self.upsert_peer(info.node_id) else {
                    // It leads back to ourselves, or the peer table is full.
                    let reason = if key == *self.identity.node_id().key() {
                        DownReason::Closed
                    } else {
                        DownReason::Limit
                    };
                    self.close_link(now, link, reason);
                    return;
                };
                peer.capabilities = info.capabilities;
                if let Some((relay, _)) = tunnel {
                    peer.relay = Some(relay);
                }
                let slot = if is_tunnel {
                    &mut peer.tunnel
                } else {
                    &mut peer.direct
                };
                let old = slot.replace(link);
                if !is_tunnel && peer.webrtc == Some(link) {
                    peer.webrtc = None;
                    peer.direct_failures = 0;
                }
                if let Some(old) = old.filter(|o| *o != link) {
                    // A newer link to the same peer replaces the older one.
                    self.close_link(now, old, DownReason::Replaced);
                }
                let wants = self.wants_direct(&key);
                if is_tunnel
                    && wants
                    && let Some(p) = self.peers.get_mut(&key)
                    && p.direct.is_none()
                    && p.next_direct_try.is_none()
                {
                    // Try the direct path at the next timer.
                    p.next_direct_try = Some(now);
                    self.timers.arm(super::timers::Timer::Direct(key), now);
                }
                self.refresh_path(key, DownReason::LinkLost);
                self.send_announce(now, link);
                self.send_peers(now, link, key);
                if !is_tunnel {
                    // First: a probe must be known as one before the tree's catch-up arrives.
                    self.membership_link_up(now, link, info.node_id);
                }
                self.tree_link_up(now, link);
            }
        }
    }

    /// A link to `peer` went away.
    pub(crate) fn path_lost(
        &mut self,
        now: Timestamp,
        key: NodeKey,
        link: LinkId,
        reason: DownReason,
    ) {
        self.tree_forget(&key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let was_direct = peer.direct == Some(link) || peer.webrtc == Some(link);
        if peer.direct == Some(link) {
            peer.direct = None;
        }
        if peer.tunnel == Some(link) {
            peer.tunnel = None;
        }
        if peer.webrtc == Some(link) {
            peer.webrtc = None;
        }
        if was_direct {
            self.direct_failed(now, key);
        }
        self.refresh_path(key, reason);
    }

    /// Whether a message type may arrive from a peer (not relay control).
    pub(crate) fn is_peer_type(kind: MessageType) -> bool {
        !matches!(
            kind,
            MessageType::Relay
                | MessageType::Join
                | MessageType::Lookup
                | MessageType::Found
                | MessageType::Unreachable
        )
    }
}
