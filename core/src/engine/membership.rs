//! Membership in the engine: the glue between the HyParView state machine
//! ([`hyparview`](super::hyparview), where the protocol and its departures from the paper are
//! described) and the engine's links and peers.
//!
//! It turns what happens to the engine into membership inputs — a direct link up or lost, a
//! MEMBERSHIP frame, an IHAVE on a probe link, the timer — with the context the state machine
//! asks for (the time, the engine's RNG, the broadcast tree's neighbours, the de-duplication
//! set), and carries out its outputs in order: dials through [`Engine::connect_peer`], messages
//! on the neighbour's direct link, graceful closes, statistics. Closing a link reports it lost
//! to membership at once, whose outputs are carried out before the rest.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    Config, Engine, LinkId,
    hyparview::{self, Out},
    links::Class,
};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Membership, Message, MessageId},
};

/// The membership state for an engine with `config` (none without `Config::membership`): what
/// the engine tells the state machine of itself at creation.
pub(crate) fn new_view(
    config: &Config,
    id: NodeId,
    now: Timestamp,
) -> Option<hyparview::State<LinkId>> {
    let local = hyparview::Local {
        id,
        addr: config.listen_addr.clone(),
        probes: matches!(config.gossip, super::Gossip::Tree(_)),
        max_contacts: config.limits.max_list_len,
        max_dials: config.max_links,
    };
    config
        .membership
        .map(|m| hyparview::State::new(m, local, now))
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Joins the overlay through the node listening at `contact` (with membership enabled;
    /// otherwise simply connects to it).
    pub fn join(&mut self, now: Timestamp, contact: &str) -> Result<LinkId, super::EngineError> {
        let link = self.connect_peer(now, contact)?;
        if let Some(view) = self.view.as_mut() {
            view.handle_join(link, contact);
        }
        Ok(link)
    }

    /// Active view (membership enabled), for inspection.
    pub fn active_view(&self) -> Vec<NodeKey> {
        self.view
            .as_ref()
            .map(|v| v.active().copied().collect())
            .unwrap_or_default()
    }

    /// Passive view size.
    pub fn passive_len(&self) -> usize {
        self.view.as_ref().map_or(0, hyparview::State::passive_len)
    }

    /// The established direct link to `key`: where membership talks to a neighbour.
    fn direct_link(&self, key: &NodeKey) -> Option<LinkId> {
        self.peers
            .get(key)
            .and_then(|p| p.direct)
            .filter(|l| self.links.get(l).is_some_and(|e| e.is_established()))
    }

    /// A direct link finished its handshake: membership says why we dialled it.
    pub(crate) fn membership_link_up(&mut self, now: Timestamp, link: LinkId, peer: NodeId) {
        if self.view.is_none() {
            return;
        }
        let tree = self.tree_links();
        if let Some(view) = self.view.as_mut() {
            view.handle_link_up(now, &mut self.rng, &tree, link, peer);
        }
        self.carry_out_membership(now);
    }

    /// A direct link went away (`key`: the node it led to, if its handshake had finished).
    pub(crate) fn membership_link_lost(
        &mut self,
        now: Timestamp,
        link: LinkId,
        key: Option<NodeKey>,
    ) {
        if self.view.is_none() {
            return;
        }
        let still_linked = key.is_some_and(|k| self.direct_link(&k).is_some());
        if let Some(view) = self.view.as_mut() {
            view.handle_link_lost(now, &mut self.rng, link, key, still_linked);
        }
        self.carry_out_membership(now);
    }

    /// A MEMBERSHIP frame from the direct neighbour `from` on `link`.
    pub(crate) fn on_membership(
        &mut self,
        now: Timestamp,
        link: LinkId,
        from: NodeKey,
        m: Membership<'_>,
    ) {
        if self.view.is_none() {
            return;
        }
        let Some(from_id) = self.peers.get(&from).map(|p| p.id) else {
            return;
        };
        let tree = self.tree_links();
        if let Some(view) = self.view.as_mut() {
            view.handle_message(now, &mut self.rng, &tree, link, from_id, m);
        }
        self.carry_out_membership(now);
    }

    /// Evidence for a probe: `from` announced broadcast `id`, which we lack.
    pub(crate) fn probe_announced(&mut self, now: Timestamp, from: &NodeKey, id: MessageId) {
        if let Some(view) = self.view.as_mut() {
            view.handle_announced(now, from, id);
        }
    }

    /// Whether the link to `key` is a probe (ours or theirs). Probe links take no part in the
    /// broadcast tree: no pushes, grafts or shortcuts, so closing them disturbs nothing, and
    /// what only the probed contact has stays missing and shows the cut.
    pub(crate) fn is_probe(&self, key: &NodeKey) -> bool {
        self.view.as_ref().is_some_and(|v| v.is_probe(key))
    }

    /// Shuffles, probes and refills on schedule.
    pub(crate) fn membership_timers(&mut self, now: Timestamp) {
        let seen = &self.seen;
        if let Some(view) = self.view.as_mut() {
            view.handle_timeout(now, &mut self.rng, |id| seen.get(id).is_some());
        }
        self.carry_out_membership(now);
    }

    /// The next membership deadline.
    pub(crate) fn membership_deadline(&self) -> Option<Timestamp> {
        self.view.as_ref().map(hyparview::State::poll_timeout)
    }

    /// Carries out what membership asked for, in order. A link closed here is reported lost to
    /// membership at once (from `close_link`), and what that asks for is carried out first.
    fn carry_out_membership(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        for out in view.take_out() {
            match out {
                Out::Dial { dial, addr, .. } => {
                    let link = self.connect_peer(now, &addr).ok();
                    if let Some(view) = self.view.as_mut() {
                        view.dialled(dial, link);
                    }
                }
                Out::Send { to, message } => {
                    if let Some(link) = self.direct_link(&to) {
                        let m = Message::Membership(message.as_wire());
                        let _ = self.send_on(now, link, m, Class::Control);
                    }
                }
                Out::Close { peer, .. } => {
                    if let Some(link) = self.direct_link(&peer) {
                        self.close_gracefully(now, link);
                    }
                }
                Out::ProbeOpened => self.stats.probes += 1,
                Out::ProbeKept => self.stats.probes_kept += 1,
                Out::DialRefused => self.stats.remote_dials_refused += 1,
            }
        }
    }
}
