//! Relays: rendezvous (JOIN and LOOKUP of namespaces: the global one, and one per attuned
//! intent and relay), end-to-end tunnels to peers met there
//! (a Noise session whose records travel inside RELAY frames), and the frames a relay sends.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    DownReason, Engine, LinkId,
    links::{Class, LinkKind},
    peers::global_namespace,
};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::CryptoProvider,
    derive::RendezvousKey,
    wire::{Found, Join, Lookup, Message, Relay, RelayStage, Unreachable},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
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
        if self.pending_tunnel_for(key).is_some() {
            // The peer's handshake is under way (we answer it): a tunnel of ours would restart
            // the peer's side, which then restarts ours, and the two never meet.
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
                    || self.intent_namespaces(relay).contains(&namespace);
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
                // Checked before a key is generated or a DH computed: a sybil crowd pays 32
                // bytes per attempt, so the attempts are capped and rate-limited first.
                let inbound = self
                    .pending_tunnels
                    .keys()
                    .copied()
                    .chain(self.peers.values().filter_map(|p| p.tunnel))
                    .filter(|t| {
                        matches!(
                            self.links.get(t).map(|e| &e.kind),
                            Some(LinkKind::Tunnel {
                                initiator: false,
                                ..
                            })
                        )
                    })
                    .count();
                let rate = self.config.inbound_tunnel_rate;
                if inbound >= self.config.max_inbound_tunnels
                    || !self.inbound_tunnel_bucket.take(&rate, now)
                {
                    self.stats.drop(super::DropCause::Refused);
                    return;
                }
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

    /// The relay's node key, once its link is established.
    fn relay_key(&self, relay: LinkId) -> Option<NodeKey> {
        self.links.get(&relay)?.peer_key()
    }

    /// The namespaces of our attuned intents at one relay: each intent's rendezvous key bound
    /// to that relay's node key, so no two relays see the same name for an intent.
    pub(crate) fn intent_namespaces(&self, relay: LinkId) -> Vec<[u8; 32]> {
        let Some(relay_key) = self.relay_key(relay) else {
            return Vec::new();
        };
        self.attuned
            .values()
            .map(|a| a.rendezvous.namespace(&relay_key))
            .collect()
    }

    /// Joins or leaves an intent's namespace at every relay, and looks it up when joining.
    pub(crate) fn rendezvous(&mut self, now: Timestamp, key: &RendezvousKey, leave: bool) {
        let relays = self.established_relays();
        for link in relays {
            let Some(relay_key) = self.relay_key(link) else {
                continue;
            };
            let namespace = key.namespace(&relay_key);
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

    /// Looks up every namespace we open sessions in, at every relay (reconnects lost peers).
    pub(crate) fn lookup_all(&mut self, now: Timestamp) {
        for link in self.established_relays() {
            self.lookup_at(now, link);
        }
    }

    /// Looks up, at one relay, the namespaces we open sessions in: the global one with
    /// `auto_connect`, and every attuned one. The relay answers only for namespaces we joined
    /// there, which these all are.
    pub(crate) fn lookup_at(&mut self, now: Timestamp, link: LinkId) {
        let mut spaces = Vec::new();
        if self.config.auto_connect {
            spaces.push(global_namespace());
        }
        spaces.extend(self.intent_namespaces(link));
        for namespace in spaces {
            let lookup = Message::Lookup(Lookup { namespace });
            let _ = self.send_on(now, link, lookup, Class::Control);
        }
    }
}
