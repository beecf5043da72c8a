//! Peer exchange: a new session is told of the other peers this node knows (their IDs), so
//! nodes that met at one relay learn of each other; received lists are validated and capped.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{Engine, LinkId, links::Class};
use crate::{NodeId, NodeKey, Timestamp, crypto::CryptoProvider, wire::Message};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
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
}
