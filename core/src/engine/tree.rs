//! The broadcast tree in the engine: the glue between [`PlumTree`] (the protocol, in
//! `plumtree.rs`) and the engine's peers, links and membership. Engine happenings become tree
//! inputs — with the context the tree cannot know: the neighbours with an established path,
//! which of them are membership probes, whether a broadcast was seen, the engine's randomness —
//! and the tree's [`OutEvent`]s become records on the neighbours' best paths.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    DropCause, Engine, LinkId,
    links::{Class, LinkKind},
    plumtree::{Neighbour, OutEvent, PlumTree},
};
use crate::{
    NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Broadcast, IHAVE_ENTRY_LEN, List, Message, MessageId, Tree, encode_announcements},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// `key` as the tree sees it: flagged if its link is a membership probe.
    fn tree_peer(&self, key: NodeKey) -> Neighbour {
        Neighbour {
            key,
            probe: self.is_probe(&key),
        }
    }

    /// The neighbours with an established path, in key order, probes flagged: the peers whose
    /// direct or tunnel slot holds an established link. Found from the links (at most
    /// `max_links`), not by a scan of the peer table, which may hold many more.
    fn tree_neighbours(&self) -> Vec<Neighbour> {
        let mut out: Vec<Neighbour> = Vec::with_capacity(self.links.len());
        for (id, l) in &self.links {
            if matches!(l.kind, LinkKind::Relay { .. }) || !l.is_established() {
                continue;
            }
            let Some(key) = l.peer_key() else {
                continue;
            };
            let slot = |p: &super::peers::Peer| p.direct == Some(*id) || p.tunnel == Some(*id);
            if self.peers.get(&key).is_some_and(slot) {
                out.push(self.tree_peer(key));
            }
        }
        out.sort_unstable_by_key(|n| n.key);
        out.dedup_by_key(|n| n.key);
        debug_assert!(
            out.iter()
                .map(|n| n.key)
                .eq(self.neighbours().into_iter().map(|(k, _)| k))
        );
        out
    }

    /// Carries out what the tree asked for, on each neighbour's best path; called at the end of
    /// every tree input, which is when the tree's batched announcements leave. `spreading` is
    /// the broadcast [`PlumTree::handle_broadcast`] was given, and the class it is sent with.
    /// Returns how many neighbours got it in full and how many an announcement.
    fn tree_outputs(
        &mut self,
        now: Timestamp,
        spreading: Option<(&Broadcast<'_>, Class)>,
    ) -> (usize, usize) {
        let (mut full, mut announced) = (0, 0);
        let mut sent = false;
        while let Some(out) = self.tree.as_mut().and_then(PlumTree::poll) {
            match out {
                OutEvent::Push { to } => {
                    if let Some((b, class)) = spreading
                        && let Some(link) = self.path_to(&to)
                        && self
                            .send_on(now, link, Message::Broadcast(*b), class)
                            .is_ok()
                    {
                        full += 1;
                        sent = true;
                    }
                }
                OutEvent::IHave { to, ids } => {
                    if let Some(link) = self.path_to(&to) {
                        let mut raw = alloc::vec![0u8; ids.len() * IHAVE_ENTRY_LEN];
                        let n = encode_announcements(&ids, &mut raw);
                        let ihave = Message::Tree(Tree::IHave {
                            entries: List::from_raw(&raw[..n]),
                        });
                        if self.send_on(now, link, ihave, Class::Lazy).is_ok() {
                            announced += 1;
                            sent = true;
                        }
                    }
                }
                OutEvent::Serve { to, id } => {
                    let Some(link) = self.path_to(&to) else {
                        continue;
                    };
                    let Some(b) = self.tree.as_ref().and_then(|t| t.served(&id)) else {
                        continue;
                    };
                    let payload = b.payload.to_vec();
                    let msg = Message::Broadcast(Broadcast {
                        payload: &payload,
                        ..b
                    });
                    let _ = self.send_on(now, link, msg, Class::Forward);
                    sent = true;
                }
                OutEvent::Graft { to, id } => {
                    if let Some(link) = self.path_to(&to) {
                        let graft = Message::Tree(Tree::Graft { id });
                        let _ = self.send_on(now, link, graft, Class::Control);
                        self.stats.grafts_sent += 1;
                        sent = true;
                    }
                }
                OutEvent::Prune { to } => {
                    if let Some(link) = self.path_to(&to) {
                        let _ = self.send_on(now, link, Message::Tree(Tree::Prune), Class::Control);
                        self.stats.prunes_sent += 1;
                        sent = true;
                    }
                }
                OutEvent::Shortcut { to } => {
                    if let Some(link) = self.path_to(&to) {
                        let shortcut = Message::Tree(Tree::Shortcut);
                        let _ = self.send_on(now, link, shortcut, Class::Control);
                        sent = true;
                    }
                }
                OutEvent::Announced { from, id } => self.probe_announced(now, &from, id),
                OutEvent::Dropped => self.stats.drop(DropCause::QueueFull),
            }
        }
        if sent {
            self.flush_tunnels(now);
        }
        (full, announced)
    }

    /// Pushes a broadcast along the tree: the full message to tree neighbours, IHAVE to the
    /// others; `except` are skipped (the first is the neighbour it came from). An own broadcast
    /// (`except` empty) with no tree link yet goes in full to one random neighbour, which
    /// joins the tree. Returns how many neighbours got the full message and how many an IHAVE.
    pub(crate) fn tree_push(
        &mut self,
        now: Timestamp,
        b: &Broadcast<'_>,
        except: &[NodeKey],
        class: Class,
    ) -> (usize, usize) {
        if self.tree.is_none() {
            return (0, 0);
        }
        let neighbours = self.tree_neighbours();
        if let Some(tree) = self.tree.as_mut() {
            let from = except.first().copied();
            tree.handle_broadcast(now, b, from, except, &neighbours, &mut self.rng);
        }
        self.tree_outputs(now, Some((b, class)))
    }

    /// The first copy of a broadcast came from `from` at the hop limit, so it goes no further
    /// (`b` carries the hop count it would have gone on with): the tree records it as
    /// received, so it is not grafted later.
    pub(crate) fn tree_stopped(&mut self, now: Timestamp, b: &Broadcast<'_>, from: NodeKey) {
        if let Some(tree) = self.tree.as_mut() {
            tree.handle_stopped(now, b, from);
            self.tree_outputs(now, None);
        }
    }

    /// A duplicate of `id` arrived from `from`: the tree may prune a link.
    pub(crate) fn tree_duplicate(&mut self, now: Timestamp, from: NodeKey, id: &MessageId) {
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        tree.handle_duplicate(now, from, id);
        self.tree_outputs(now, None);
    }

    /// The first copy of `id` arrived from `from`: its link is (now) in the tree.
    pub(crate) fn tree_parent(&mut self, now: Timestamp, from: NodeKey, id: &MessageId) {
        let from = self.tree_peer(from);
        if let Some(tree) = self.tree.as_mut() {
            tree.handle_first_copy(now, from, id);
        }
    }

    /// A TREE control frame from `from`.
    pub(crate) fn on_tree(&mut self, now: Timestamp, from: NodeKey, t: Tree<'_>) {
        if self.tree.is_none() {
            return;
        }
        let peer = self.tree_peer(from);
        match t {
            Tree::IHave { entries } => {
                // The neighbours matter only for broadcasts not seen: found at the first.
                let mut neighbours = None;
                for (id, hops) in entries.announcements() {
                    let mut seen = self.seen.get(&id).is_some();
                    if seen {
                        // An own broadcast sent into its stem is announced back: it got out.
                        let _ = self.stem_returned(&id);
                        // Until its copy is back, the tree takes it as missing.
                        seen = !self.stem_awaited(&id);
                    }
                    if !seen && neighbours.is_none() {
                        neighbours = Some(self.tree_neighbours());
                    }
                    let live = neighbours.as_deref().unwrap_or_default();
                    if let Some(tree) = self.tree.as_mut() {
                        tree.handle_ihave(now, peer, id, hops, seen, live);
                    }
                }
            }
            Tree::Graft { id } => {
                if let Some(tree) = self.tree.as_mut() {
                    tree.handle_graft(peer, &id);
                }
            }
            Tree::Prune => {
                if let Some(tree) = self.tree.as_mut() {
                    tree.handle_prune(from);
                }
            }
            Tree::Shortcut => {
                if let Some(tree) = self.tree.as_mut() {
                    tree.handle_shortcut(peer);
                }
            }
        }
        self.tree_outputs(now, None);
    }

    /// Grafts for broadcasts announced but not received in time.
    pub(crate) fn tree_timers(&mut self, now: Timestamp) {
        if self.tree_deadline().is_none_or(|t| t > now) {
            return;
        }
        let neighbours = self.tree_neighbours();
        if let Some(tree) = self.tree.as_mut() {
            tree.handle_timeout(now, &neighbours);
        }
        self.tree_outputs(now, None);
    }

    /// The earliest graft deadline.
    pub(crate) fn tree_deadline(&self) -> Option<Timestamp> {
        self.tree.as_ref()?.poll_timeout()
    }

    /// A new link to a neighbour is up: announce the recent broadcasts to it, newest first,
    /// batched into IHAVEs (one with the default limits) on the neighbour's best path.
    pub(crate) fn tree_link_up(&mut self, now: Timestamp, link: LinkId) {
        let Some(key) = self.links.get(&link).and_then(|l| l.peer_key()) else {
            return;
        };
        if let Some(tree) = self.tree.as_mut() {
            tree.handle_neighbour_up(now, key);
            self.tree_outputs(now, None);
        }
    }

    /// The neighbours whose links are in the broadcast tree (empty without a tree).
    pub fn tree_links(&self) -> Vec<NodeKey> {
        self.tree.as_ref().map_or_else(Vec::new, |t| {
            t.eager()
                .filter(|k| self.path_to(k).is_some())
                .copied()
                .collect()
        })
    }

    /// A peer's path went away: its link leaves the tree.
    pub(crate) fn tree_forget(&mut self, key: &NodeKey) {
        if let Some(tree) = self.tree.as_mut() {
            tree.handle_neighbour_down(key);
        }
    }
}
