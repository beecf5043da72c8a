//! Peers and their paths: tunnels through relays, direct links, the upgrade to WebRTC and the
//! fallback to the relay, rendezvous at relays.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    Action, Addr, DownReason, Engine, Event, LinkId, PathKind,
    links::{Class, LinkKind},
};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::{CryptoProvider, link::PeerInfo},
    derive::ResonanceKey,
    wire::{
        Found, Join, Lookup, Message, MessageType, Relay, RelayStage, Signal, Unreachable,
        WebRtcSignal,
    },
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
    ResonanceKey::from_intent("whispurr/global").0
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

    /// Peers with an established path, with that path, in key order.
    pub(crate) fn neighbours(&self) -> Vec<(NodeKey, LinkId)> {
        self.peers
            .iter()
            .filter_map(|(k, p)| self.best_path(p).map(|l| (*k, l)))
            .collect()
    }

    /// An established relay link, preferring `hint`.
    pub(crate) fn relay_link(&self, hint: Option<LinkId>) -> Option<LinkId> {
        let ok = |l: &LinkId| {
            self.links
                .get(l)
                .is_some_and(|e| matches!(e.kind, LinkKind::Relay { .. }) && e.is_established())
        };
        hint.filter(ok)
            .or_else(|| self.links.iter().find(|(id, _)| ok(id)).map(|(id, _)| *id))
    }

    fn upsert_peer(&mut self, id: NodeId) -> Option<&mut Peer> {
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
                spaces.extend(self.attuned.keys().map(|k| k.0));
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

    /// Whether this side should offer a direct WebRTC path to `key`: both support it, it is
    /// enabled, and ours is the smaller key (exactly one side offers).
    fn wants_direct(&self, key: &NodeKey) -> bool {
        self.config.try_direct
            && self.config.link.capabilities & CAP_WEBRTC != 0
            && self.identity.node_id().key() < key
            && self
                .peers
                .get(key)
                .is_some_and(|p| p.capabilities & CAP_WEBRTC != 0)
    }

    /// A direct attempt failed: back off before the next.
    pub(crate) fn direct_failed(&mut self, now: Timestamp, key: NodeKey) {
        let base = self.config.direct_retry;
        let wants = self.wants_direct(&key);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.webrtc = None;
            peer.direct_failures = peer.direct_failures.saturating_add(1);
            let wait = base.saturating_mul(1 << peer.direct_failures.min(6));
            peer.next_direct_try = wants.then(|| now.saturating_add(wait));
        }
    }

    /// Starts WebRTC attempts to peers reached only through a relay (the smaller key offers).
    pub(crate) fn direct_timers(&mut self, now: Timestamp) {
        let candidates: Vec<NodeKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.next_direct_try.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        let mut due = Vec::new();
        for key in candidates {
            let tunnel_up = self
                .peers
                .get(&key)
                .and_then(|p| p.tunnel)
                .is_some_and(|t| self.links.get(&t).is_some_and(|e| e.is_established()));
            let ready = self.wants_direct(&key)
                && tunnel_up
                && self
                    .peers
                    .get(&key)
                    .is_some_and(|p| p.direct.is_none() && p.webrtc.is_none());
            if let Some(p) = self.peers.get_mut(&key) {
                p.next_direct_try = None;
            }
            if ready {
                due.push(key);
            }
        }
        for key in due {
            let addr = Addr::WebRtc {
                peer: key,
                offerer: true,
            };
            match self.alloc_link(now, LinkKind::Direct { addr: addr.clone() }, None) {
                Ok(link) => {
                    if let Some(p) = self.peers.get_mut(&key) {
                        p.webrtc = Some(link);
                        p.next_direct_try = None;
                    }
                    self.push_action(Action::Connect { link, addr });
                }
                Err(_) => break,
            }
        }
    }

    /// Sends a WebRTC signal to `peer` through its tunnel.
    pub(crate) fn send_signal(
        &mut self,
        now: Timestamp,
        peer: NodeKey,
        signal: WebRtcSignal<&str>,
    ) -> Result<(), super::SendError> {
        let tunnel = self
            .peers
            .get(&peer)
            .and_then(|p| p.tunnel)
            .filter(|t| self.links.get(t).is_some_and(|e| e.is_established()))
            .ok_or(super::SendError::NoRoute)?;
        let msg = Message::Signal(Signal {
            target: peer,
            origin: *self.identity.node_id(),
            signal,
        });
        self.send_on(now, tunnel, msg, Class::Control)
            .map_err(|_| super::SendError::QueueFull)?;
        self.flush_tunnels(now);
        Ok(())
    }

    /// A SIGNAL arrived from `from`: hand it to the WebRTC link it belongs to. An offer opens
    /// one (we answer); anything else goes to the attempt under way or, once that is up (late
    /// candidates), to the established WebRTC link, and is dropped when there is neither.
    pub(crate) fn on_signal(&mut self, now: Timestamp, from: NodeKey, signal: Signal<'_>) {
        if signal.target != *self.identity.node_id().key() || *signal.origin.key() != from {
            self.stats.drop(super::DropCause::Invalid);
            return;
        }
        let existing = self.peers.get(&from).and_then(|p| p.webrtc);
        let link = match (existing, signal.signal) {
            (Some(l), _) => l,
            (None, WebRtcSignal::Offer { .. }) => {
                let addr = Addr::WebRtc {
                    peer: from,
                    offerer: false,
                };
                let Ok(link) = self.alloc_link(now, LinkKind::Direct { addr: addr.clone() }, None)
                else {
                    return;
                };
                if let Some(p) = self.peers.get_mut(&from) {
                    p.webrtc = Some(link);
                }
                self.push_action(Action::Connect { link, addr });
                link
            }
            (None, _) => {
                let direct = self.peers.get(&from).and_then(|p| p.direct).filter(|l| {
                    matches!(
                        self.links.get(l).map(|e| &e.kind),
                        Some(LinkKind::Direct {
                            addr: Addr::WebRtc { .. }
                        })
                    )
                });
                match direct {
                    Some(l) => l,
                    None => {
                        self.stats.drop(super::DropCause::Unhandled);
                        return;
                    }
                }
            }
        };
        self.push_action(Action::Signal {
            link,
            signal: signal.signal.to_owned_signal(),
        });
    }

    /// Opens an end-to-end tunnel to `peer` through the relay link `relay`.
    pub(crate) fn open_tunnel(&mut self, now: Timestamp, relay: LinkId, peer: NodeId) {
        let key = *peer.key();
        if self.upsert_peer(peer).is_none() {
            return;
        }
        if let Some(p) = self.peers.get(&key)
            && (p.tunnel.is_some() || p.direct.is_some())
        {
            return;
        }
        let conn = self.new_initiator(now, Some(key));
        let kind = LinkKind::Tunnel {
            relay,
            peer: key,
            initiator: true,
        };
        if let Ok(link) = self.alloc_link(now, kind, Some(conn))
            && let Some(p) = self.peers.get_mut(&key)
        {
            p.tunnel = Some(link);
            p.relay = Some(relay);
        }
    }

    /// A frame from a relay link.
    pub(crate) fn on_relay_frame(&mut self, now: Timestamp, relay: LinkId, message: Message<'_>) {
        match message {
            Message::Relay(r) => self.on_relayed(now, relay, r),
            Message::Found(Found { namespace, peers }) => {
                let ids: Vec<NodeId> = peers.node_ids().collect();
                let wanted = (namespace == global_namespace() && self.config.auto_connect)
                    || self.attuned.contains_key(&ResonanceKey(namespace));
                for id in ids {
                    if id.key() == self.identity.node_id().key() || id.validate().is_err() {
                        continue;
                    }
                    if wanted {
                        self.open_tunnel(now, relay, id);
                    }
                }
            }
            Message::Unreachable(Unreachable { peer }) => {
                let tunnel = self.peers.get(&peer).and_then(|p| p.tunnel);
                if let Some(t) = tunnel
                    && !self.links.get(&t).is_some_and(|e| e.is_established())
                {
                    self.close_link(now, t, DownReason::LinkLost);
                }
                self.whisper_unreachable(now, peer);
            }
            other => self.on_link_control(now, relay, other),
        }
    }

    /// A RELAY frame: tunnel handshake or record, or a sealed box.
    fn on_relayed(&mut self, now: Timestamp, relay: LinkId, r: Relay<'_>) {
        let from = r.peer;
        if r.stage == RelayStage::Sealed {
            self.on_sealed(now, from, r.payload);
            return;
        }
        let me = *self.identity.node_id().key();
        let is_first_message = r.stage == RelayStage::Handshake && r.payload.len() == 32;
        let mut tunnel = self
            .peers
            .get(&from)
            .and_then(|p| p.tunnel)
            .or_else(|| self.pending_tunnel_for(from));
        if let Some(t) = tunnel
            && is_first_message
        {
            let established = self.links.get(&t).is_some_and(|e| e.is_established());
            let initiating = matches!(
                self.links.get(&t).map(|e| &e.kind),
                Some(LinkKind::Tunnel {
                    initiator: true,
                    ..
                })
            );
            if !established && initiating && me < from {
                // Simultaneous open: the smaller key keeps its initiator; the peer will answer.
                return;
            }
            // Otherwise the peer (re)starts the handshake: drop ours and answer as responder.
            self.links.remove(&t);
            self.pending_tunnels.remove(&t);
            if let Some(p) = self.peers.get_mut(&from)
                && p.tunnel == Some(t)
            {
                p.tunnel = None;
            }
            if established {
                self.refresh_path(from, DownReason::Replaced);
            }
            tunnel = None;
        }
        let tunnel = match tunnel {
            Some(t) => t,
            None if is_first_message => {
                let conn = self.new_responder(now);
                let kind = LinkKind::Tunnel {
                    relay,
                    peer: from,
                    initiator: false,
                };
                let Ok(t) = self.alloc_link(now, kind, Some(conn)) else {
                    return;
                };
                // The peer entry is created when the handshake proves its identity.
                self.pending_tunnels.insert(t, from);
                t
            }
            None => {
                self.stats.drop(super::DropCause::Unhandled);
                return;
            }
        };
        let mut data = r.payload.to_vec();
        let Some(conn) = self.links.get_mut(&tunnel).and_then(|e| e.conn.as_mut()) else {
            return;
        };
        let received = conn.handle_data(now, &mut data);
        self.on_record(now, tunnel, received, &data);
    }

    fn pending_tunnel_for(&self, from: NodeKey) -> Option<LinkId> {
        self.pending_tunnels
            .iter()
            .find(|(_, k)| **k == from)
            .map(|(l, _)| *l)
    }

    /// Every established relay link.
    pub(crate) fn established_relays(&self) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| matches!(l.kind, LinkKind::Relay { .. }) && l.is_established())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Joins or leaves a namespace at every relay, and looks it up when joining.
    pub(crate) fn rendezvous(&mut self, now: Timestamp, namespace: [u8; 32], leave: bool) {
        let relays = self.established_relays();
        for link in relays {
            let _ = self.send_on(
                now,
                link,
                Message::Join(Join { namespace, leave }),
                Class::Control,
            );
            if !leave {
                let _ = self.send_on(
                    now,
                    link,
                    Message::Lookup(Lookup { namespace }),
                    Class::Control,
                );
            }
        }
    }

    /// Sends the peers we have sessions with to a new neighbour (peer exchange).
    pub(crate) fn send_peers(&mut self, now: Timestamp, link: LinkId, to: NodeKey) {
        if self.view.is_some() {
            // Membership keeps its own passive view and shuffles it; plain peer exchange
            // would only teach every node every ID.
            return;
        }
        let ids: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(k, p)| **k != to && self.best_path(p).is_some())
            .map(|(_, p)| p.id)
            .take(self.config.limits.max_list_len)
            .collect();
        if ids.is_empty() {
            return;
        }
        let mut raw = alloc::vec![0u8; ids.len() * 40];
        let n = crate::wire::encode_node_ids(&ids, &mut raw);
        let msg = Message::Peers(crate::wire::Peers {
            peers: crate::wire::List::from_raw(&raw[..n]),
        });
        let _ = self.send_on(now, link, msg, Class::Lazy);
    }

    /// Peer exchange: learn the node IDs a neighbour knows, and with `auto_connect` open
    /// sessions to them through a relay we share with the neighbour.
    pub(crate) fn on_peers(&mut self, now: Timestamp, from: NodeKey, list: crate::wire::Peers<'_>) {
        let relay = self.peers.get(&from).and_then(|p| p.relay);
        for id in list.peers.node_ids() {
            if id.key() == self.identity.node_id().key() || id.validate().is_err() {
                continue;
            }
            if self.peers.contains_key(id.key()) {
                continue;
            }
            match (self.config.auto_connect, self.relay_link(relay)) {
                (true, Some(r)) => self.open_tunnel(now, r, id),
                _ => {
                    let _ = self.upsert_peer(id);
                }
            }
        }
    }

    /// Looks up every namespace we open sessions in, at every relay (reconnects lost peers).
    pub(crate) fn lookup_all(&mut self, now: Timestamp) {
        for link in self.established_relays() {
            self.lookup_at(now, link);
        }
    }

    /// Looks up, at one relay, the namespaces we open sessions in: the global one with
    /// `auto_connect`, and every attuned one.
    fn lookup_at(&mut self, now: Timestamp, link: LinkId) {
        let mut spaces = Vec::new();
        if self.config.auto_connect {
            spaces.push(global_namespace());
        }
        spaces.extend(self.attuned.keys().map(|k| k.0));
        for namespace in spaces {
            let lookup = Message::Lookup(Lookup { namespace });
            let _ = self.send_on(now, link, lookup, Class::Control);
        }
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
