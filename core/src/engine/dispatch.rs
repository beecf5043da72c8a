//! Routes each decoded frame to the layer that handles it, by link kind and message type.

use rand_core::CryptoRng;

use super::{
    DownReason, DropCause, Engine, LinkId,
    links::{Class, LinkKind},
};
use crate::{
    NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Message, Pong},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Handles one decrypted frame from `link`.
    pub(crate) fn dispatch(&mut self, now: Timestamp, link: LinkId, message: Message<'_>) {
        let Some(entry) = self.links.get(&link) else {
            return;
        };
        if matches!(entry.kind, LinkKind::Relay { .. }) {
            self.on_relay_frame(now, link, message);
            return;
        }
        let is_tunnel = matches!(entry.kind, LinkKind::Tunnel { .. });
        let Some(from) = entry.peer_key() else {
            return;
        };
        if !Self::is_peer_type(message.kind()) {
            self.stats.drop(DropCause::Unhandled);
            return;
        }
        match message {
            Message::Whisper(w) => self.on_whisper(now, from, Some(link), w),
            Message::Ack(a) => self.on_ack(from, a.id),
            Message::Broadcast(b) => self.on_broadcast(now, link, from, b),
            Message::Resonance(r) => self.on_resonance(now, link, from, r),
            Message::Announce(a) => self.on_announce(now, link, from, a),
            Message::Peers(list) => self.on_peers(now, from, list),
            Message::Tree(t) => self.on_tree(now, from, t),
            Message::Membership(m) => {
                // Membership manages direct links only.
                if !is_tunnel {
                    self.on_membership(now, link, from, m);
                }
            }
            Message::Signal(s) => self.on_signal(now, from, s),
            Message::FileSync(e)
            | Message::MiningSignal(e)
            | Message::Dreamspace(e)
            | Message::Custom(_, e) => {
                let kind = message.kind();
                self.on_extension(now, from, kind, e);
            }
            other => self.on_link_control(now, link, other),
        }
    }

    /// Control frames any link may carry: heartbeat, goodbye, errors.
    pub(crate) fn on_link_control(&mut self, now: Timestamp, link: LinkId, message: Message<'_>) {
        match message {
            Message::Ping(p) => {
                let pong = Message::Pong(Pong {
                    id: p.id,
                    sent_at: p.sent_at,
                });
                let _ = self.send_on(now, link, pong, Class::Control);
            }
            Message::Pong(p) => {
                let Some(entry) = self.links.get_mut(&link) else {
                    return;
                };
                match entry.ping {
                    Some(ping) if ping.id == p.id && p.id != 0 => {
                        entry
                            .quality
                            .sample(now.saturating_duration_since(ping.sent));
                        entry.ping = None;
                    }
                    _ if p.id == 0 => self.stats.cover_received += 1,
                    _ => {}
                }
            }
            Message::Goodbye(_) => self.close_link(now, link, DownReason::Goodbye),
            Message::Hello(_) | Message::Error(_) => {}
            _ => self.stats.drop(DropCause::Unhandled),
        }
    }

    /// Quality of the path currently used to reach `peer`.
    pub fn peer_quality(&self, peer: &NodeKey) -> Option<super::Quality> {
        let link = self.path_to(peer)?;
        self.links.get(&link).map(|l| l.quality)
    }

    /// Quality of every established path to `peer` (direct and relayed).
    pub fn path_qualities(
        &self,
        peer: &NodeKey,
    ) -> alloc::vec::Vec<(super::PathKind, super::Quality)> {
        let Some(p) = self.peers.get(peer) else {
            return alloc::vec::Vec::new();
        };
        [
            (super::PathKind::Direct, p.direct),
            (super::PathKind::Relayed, p.tunnel),
        ]
        .into_iter()
        .filter_map(|(kind, link)| {
            let l = self.links.get(&link?)?;
            l.is_established().then_some((kind, l.quality))
        })
        .collect()
    }

    /// Quality of the link to each relay we are connected to.
    pub fn relay_qualities(&self) -> alloc::vec::Vec<(crate::NodeId, super::Quality)> {
        self.links
            .values()
            .filter(|l| matches!(l.kind, LinkKind::Relay { .. }))
            .filter_map(|l| Some((l.conn.as_ref()?.peer()?.node_id, l.quality)))
            .collect()
    }
}
