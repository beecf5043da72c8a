//! The direct path: when a peer reached through a relay tunnel also supports WebRTC, the side
//! with the smaller key asks its adapter for a data channel (signals travel end to end through
//! the tunnel); traffic moves to it once it is up, falls back to the tunnel when it fails, and
//! attempts back off exponentially.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    Action, Addr, Engine,
    links::{Class, LinkKind},
    peers::CAP_WEBRTC,
    timers::Timer,
};
use crate::{
    NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Message, Signal, WebRtcSignal},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Whether this side should offer a direct WebRTC path to `key`: both support it, it is
    /// enabled, and ours is the smaller key (exactly one side offers).
    pub(crate) fn wants_direct(&self, key: &NodeKey) -> bool {
        self.config.try_direct
            && self.config.link.capabilities & CAP_WEBRTC != 0
            && self.identity.node_id().key() < key
            && self
                .peers
                .get(key)
                .is_some_and(|p| p.capabilities & CAP_WEBRTC != 0)
    }

    /// Whether to answer `key`'s WebRTC offer: direct paths are enabled and both sides support
    /// them, and `key` is the smaller key (the side that offers, as [`wants_direct`] says).
    ///
    /// [`wants_direct`]: Self::wants_direct
    fn accepts_direct(&self, key: &NodeKey) -> bool {
        self.config.try_direct
            && self.config.link.capabilities & CAP_WEBRTC != 0
            && key < self.identity.node_id().key()
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
            if let Some(at) = peer.next_direct_try {
                self.timers.arm(Timer::Direct(key), at);
            }
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
            (None, WebRtcSignal::Offer { .. }) if !self.accepts_direct(&from) => {
                // An offer we never agreed to: answering it would open a WebRTC connection and
                // hand our addresses (ICE candidates) to a peer that asked for them.
                self.stats.drop(super::DropCause::Unhandled);
                return;
            }
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
}
