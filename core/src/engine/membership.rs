//! Partial-view overlay membership, HyParView-style. A node keeps links to a small *active*
//! view (its gossip neighbours, kept symmetric) and remembers a larger *passive* view of
//! contacts to replace failed neighbours from.
//!
//! - **Join**: a new node dials a contact and sends JOIN; the contact takes it into its active
//!   view and starts FORWARD_JOIN random walks of length `active_walk` through its other active
//!   peers. A walk ends in an active-view slot (the last node dials the newcomer and sends
//!   NEIGHBOUR with high priority); at step `passive_walk` it also leaves the newcomer in a
//!   passive view.
//! - **Failure**: a lost active link is replaced by dialling a random passive contact with
//!   NEIGHBOUR (high priority when no active peer is left), which the other side may refuse. A
//!   contact that cannot be reached is dropped and the next one dialled at once; only refusals
//!   back off.
//! - **Last resort**: a node left with neither active nor passive contacts joins again through
//!   the contacts it joined through (with backoff).
//! - **Probes** (healing): now and then a node opens a short-lived link to a random passive
//!   contact. A new link carries the broadcast tree's catch-up announcements, so if the contact
//!   announces a broadcast that has still not arrived through the tree when the probe ends,
//!   the two were cut apart: the probe becomes an active link, replacing a non-tree neighbour.
//!   Otherwise it is closed and nothing else changes. This heals a partition (once a broadcast
//!   has been sent on the far side) without the steady churn of random rotation.
//! - **Shuffle**: every `shuffle_interval` a node swaps a sample of its views with a random
//!   active neighbour, so passive views stay fresh and well mixed.
//! - Taking a peer into a full active view evicts a random one with DISCONNECT (it moves to the
//!   evicted node's passive view).

use alloc::{
    collections::{BTreeMap, BTreeSet},
    string::String,
    vec::Vec,
};

use rand_core::CryptoRng;

use super::{Engine, LinkId, MembershipConfig, links::Class, obfuscation::random_delay};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Contact, ContactList, Membership, Message, MessageId},
};

/// Why we dialled a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    Join,
    Neighbour {
        high: bool,
    },
    /// Replace one of our active peers with the dialled one (overlay mixing and healing).
    Rotate,
    /// A short look at a passive contact: does it know broadcasts we missed, or miss ours?
    Probe,
}

/// A probe link open for a while.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    key: NodeKey,
    link: LinkId,
    until: Timestamp,
    /// Broadcasts the peer announced that we lacked then, and when (at most [`PROBE_IDS`]).
    /// One still missing when the probe ends, announced at least half a window earlier, shows
    /// a cut rather than a broadcast in flight.
    announced: Vec<(MessageId, Timestamp)>,
}

/// Announced ids remembered per probe.
const PROBE_IDS: usize = 8;
/// Probes by others served at once (more are refused).
const MAX_PROBED_BY: usize = 4;

/// The views.
#[derive(Debug)]
pub(crate) struct View {
    pub cfg: MembershipConfig,
    pub active: BTreeSet<NodeKey>,
    pub addrs: BTreeMap<NodeKey, String>,
    pub passive: BTreeMap<NodeKey, (NodeId, String)>,
    pub dialling: BTreeMap<LinkId, Intent>,
    pub next_shuffle: Timestamp,
    /// A rotation in progress: when this peer accepts, one old active peer is let go.
    pub rotating: Option<NodeKey>,
    /// No refill dial before this time (backoff after refusals).
    pub refill_at: Timestamp,
    /// Current refill backoff.
    pub refill_backoff: core::time::Duration,
    /// Addresses we joined through, for a last-resort rejoin (at most [`MAX_JOIN_CONTACTS`]).
    pub join_contacts: Vec<String>,
    /// The probe in progress.
    pub probe: Option<Probe>,
    /// Contacts probing us, with their links (at most [`MAX_PROBED_BY`]).
    pub probed_by: BTreeMap<NodeKey, LinkId>,
}

/// Join addresses remembered for a last-resort rejoin.
const MAX_JOIN_CONTACTS: usize = 4;

/// First wait between refill attempts; doubles after each attempt up to [`REFILL_MAX`].
const REFILL_BASE: core::time::Duration = core::time::Duration::from_millis(500);
/// Longest wait between refill attempts.
const REFILL_MAX: core::time::Duration = core::time::Duration::from_secs(30);

impl View {
    pub fn new(cfg: MembershipConfig, now: Timestamp) -> Self {
        View {
            cfg,
            active: BTreeSet::new(),
            addrs: BTreeMap::new(),
            passive: BTreeMap::new(),
            dialling: BTreeMap::new(),
            next_shuffle: now.saturating_add(cfg.shuffle_interval),
            rotating: None,
            refill_at: now,
            refill_backoff: REFILL_BASE,
            join_contacts: Vec::new(),
            probe: None,
            probed_by: BTreeMap::new(),
        }
    }
}

/// True with probability `p` (clamped to 0..=1).
fn happens<R: CryptoRng>(rng: &mut R, p: f64) -> bool {
    let threshold = (p.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u64;
    u64::from(rng.next_u32()) < threshold
}

fn pick<T: Copy, R: CryptoRng>(rng: &mut R, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[(rng.next_u64() % items.len() as u64) as usize])
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    fn my_addr(&self) -> String {
        self.config.listen_addr.clone().unwrap_or_default()
    }

    /// Joins the overlay through the node listening at `contact` (with membership enabled;
    /// otherwise simply connects to it).
    pub fn join(&mut self, now: Timestamp, contact: &str) -> Result<LinkId, super::EngineError> {
        let link = self.connect_peer(now, contact)?;
        if let Some(view) = self.view.as_mut() {
            view.dialling.insert(link, Intent::Join);
            if !view.join_contacts.iter().any(|c| c == contact) {
                if view.join_contacts.len() >= MAX_JOIN_CONTACTS {
                    view.join_contacts.remove(0);
                }
                view.join_contacts.push(String::from(contact));
            }
        }
        Ok(link)
    }

    /// Active view (membership enabled), for inspection.
    pub fn active_view(&self) -> Vec<NodeKey> {
        self.view
            .as_ref()
            .map(|v| v.active.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Passive view size.
    pub fn passive_len(&self) -> usize {
        self.view.as_ref().map_or(0, |v| v.passive.len())
    }

    fn send_membership(&mut self, now: Timestamp, link: LinkId, m: Membership<'_>) {
        let _ = self.send_on(now, link, Message::Membership(m), Class::Control);
    }

    fn direct_link(&self, key: &NodeKey) -> Option<LinkId> {
        self.peers
            .get(key)
            .and_then(|p| p.direct)
            .filter(|l| self.links.get(l).is_some_and(|e| e.is_established()))
    }

    /// A direct link finished its handshake: say why we dialled.
    pub(crate) fn membership_link_up(&mut self, now: Timestamp, link: LinkId, peer: NodeId) {
        let addr = self.my_addr();
        let Some(view) = self.view.as_mut() else {
            return;
        };
        match view.dialling.remove(&link) {
            Some(Intent::Join) => {
                self.add_active(now, peer, None);
                self.send_membership(now, link, Membership::Join { addr: &addr });
            }
            Some(Intent::Neighbour { high }) => {
                self.send_membership(
                    now,
                    link,
                    Membership::Neighbour {
                        addr: &addr,
                        high_priority: high,
                    },
                );
            }
            Some(Intent::Rotate) => self.ask_to_rotate(now, link, *peer.key()),
            Some(Intent::Probe) => {
                // The tree's catch-up announcements do the looking.
                let window = view.cfg.probe_window;
                view.probe = Some(Probe {
                    key: *peer.key(),
                    link,
                    until: now.saturating_add(window),
                    announced: Vec::new(),
                });
                self.stats.probes += 1;
                self.send_membership(now, link, Membership::Probe);
            }
            None => {}
        }
    }

    /// Asks the peer on `link` into our active view in place of one of our neighbours.
    fn ask_to_rotate(&mut self, now: Timestamp, link: LinkId, key: NodeKey) {
        let addr = self.my_addr();
        if let Some(v) = self.view.as_mut() {
            v.rotating = Some(key);
        }
        let m = Membership::Neighbour {
            addr: &addr,
            high_priority: true,
        };
        self.send_membership(now, link, m);
    }

    /// Evidence for a probe: `from` announced broadcast `id`, which we lack.
    pub(crate) fn probe_announced(&mut self, now: Timestamp, from: &NodeKey, id: MessageId) {
        if let Some(p) = self.view.as_mut().and_then(|v| v.probe.as_mut())
            && p.key == *from
            && p.announced.len() < PROBE_IDS
        {
            p.announced.push((id, now));
        }
    }

    /// Whether the link to `key` is a probe (ours or theirs). Probe links take no part in the
    /// broadcast tree: no pushes, grafts or shortcuts, so closing them disturbs nothing, and
    /// what only the probed contact has stays missing and shows the cut.
    pub(crate) fn is_probe(&self, key: &NodeKey) -> bool {
        self.view.as_ref().is_some_and(|v| {
            v.probe.as_ref().is_some_and(|p| p.key == *key) || v.probed_by.contains_key(key)
        })
    }

    /// A probe's time is up: keep the link as an active one if it showed a cut, else close it
    /// and put the contact back in the passive view.
    fn end_probe(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let Some(p) = view.probe.take_if(|p| p.until <= now) else {
            return;
        };
        let settled = now.saturating_sub(view.cfg.probe_window / 2);
        if p.announced
            .iter()
            .any(|(id, at)| *at <= settled && self.seen.get(id).is_none())
        {
            self.stats.probes_kept += 1;
            self.ask_to_rotate(now, p.link, p.key);
            return;
        }
        // Nothing missing: back to the passive view, unless it became a neighbour meanwhile.
        if self
            .view
            .as_ref()
            .is_some_and(|v| !v.active.contains(&p.key))
        {
            self.demote(p.key);
            self.close_gracefully(now, p.link);
        }
    }

    /// With probability `probe`, opens a probe to a random passive contact.
    fn maybe_probe(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        // Probes look through the tree's catch-up announcements: without a tree, nothing to see.
        if self.tree.is_none()
            || view.probe.is_some()
            || !view.dialling.is_empty()
            || view.rotating.is_some()
        {
            return;
        }
        let p = view.cfg.probe;
        if !happens(&mut self.rng, p) {
            return;
        }
        self.dial_passive(now, Intent::Probe);
    }

    /// Takes `peer` into the active view, evicting a random member if it is full.
    fn add_active(&mut self, now: Timestamp, peer: NodeId, addr: Option<&str>) {
        let key = *peer.key();
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if let Some(a) = addr {
            view.addrs.insert(key, String::from(a));
        }
        view.passive.remove(&key);
        if view.active.contains(&key) {
            return;
        }
        view.refill_backoff = REFILL_BASE;
        if view.active.len() >= view.cfg.active
            && let Some(victim) = self.eviction_victim()
        {
            self.evict(now, victim);
        }
        if let Some(view) = self.view.as_mut() {
            view.active.insert(key);
        }
    }

    /// A random active peer to let go, preferring one whose link is not in the broadcast tree:
    /// evicting a tree link splits the tree until grafts mend it.
    fn eviction_victim(&mut self) -> Option<NodeKey> {
        let active = self.active_view();
        let tree = self.tree_links();
        let lazy: Vec<NodeKey> = active
            .iter()
            .filter(|k| !tree.contains(k))
            .copied()
            .collect();
        let from = if lazy.is_empty() { active } else { lazy };
        pick(&mut self.rng, &from)
    }

    /// Drops `victim` from the active view with DISCONNECT; it moves to the passive view.
    fn evict(&mut self, now: Timestamp, victim: NodeKey) {
        self.demote(victim);
        if let Some(link) = self.direct_link(&victim) {
            self.send_membership(now, link, Membership::Disconnect);
            self.close_gracefully(now, link);
        }
    }

    /// Moves `key` from the active to the passive view (keeping its address).
    fn demote(&mut self, key: NodeKey) {
        let id = self.peers.get(&key).map(|p| p.id);
        let Some(view) = self.view.as_mut() else {
            return;
        };
        view.active.remove(&key);
        if let (Some(id), Some(addr)) = (id, view.addrs.get(&key).cloned()) {
            Self::add_passive(view, &mut self.rng, id, addr);
        }
    }

    fn add_passive(view: &mut View, rng: &mut R, id: NodeId, addr: String) {
        let key = *id.key();
        if view.active.contains(&key) || addr.is_empty() {
            return;
        }
        if !view.passive.contains_key(&key) && view.passive.len() >= view.cfg.passive {
            let keys: Vec<NodeKey> = view.passive.keys().copied().collect();
            if let Some(k) = pick(rng, &keys) {
                view.passive.remove(&k);
            }
        }
        view.passive.insert(key, (id, addr));
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
        let me = *self.identity.node_id();
        match m {
            Membership::Join { addr } => {
                self.add_active(now, from_id, Some(addr));
                let ttl = self.view.as_ref().map_or(0, |v| v.cfg.active_walk);
                let others: Vec<NodeKey> = self
                    .active_view()
                    .into_iter()
                    .filter(|k| *k != from)
                    .collect();
                for k in others {
                    if let Some(l) = self.direct_link(&k) {
                        self.send_membership(
                            now,
                            l,
                            Membership::ForwardJoin {
                                node: from_id,
                                addr,
                                ttl,
                            },
                        );
                    }
                }
            }
            Membership::ForwardJoin { node, addr, ttl } => {
                if node.key() == me.key() || node.validate().is_err() {
                    return;
                }
                let (active_len, prwl) = self
                    .view
                    .as_ref()
                    .map_or((0, 0), |v| (v.active.len(), v.cfg.passive_walk));
                let known = self
                    .view
                    .as_ref()
                    .is_some_and(|v| v.active.contains(node.key()));
                if ttl == 0 || active_len <= 1 {
                    if !known {
                        self.dial(now, addr, Intent::Neighbour { high: true });
                    }
                    return;
                }
                if ttl == prwl
                    && let Some(view) = self.view.as_mut()
                {
                    Self::add_passive(view, &mut self.rng, node, String::from(addr));
                }
                let next: Vec<NodeKey> = self
                    .active_view()
                    .into_iter()
                    .filter(|k| *k != from && k != node.key())
                    .collect();
                match pick(&mut self.rng, &next).and_then(|k| self.direct_link(&k)) {
                    Some(l) => self.send_membership(
                        now,
                        l,
                        Membership::ForwardJoin {
                            node,
                            addr,
                            ttl: ttl - 1,
                        },
                    ),
                    None if !known => self.dial(now, addr, Intent::Neighbour { high: true }),
                    None => {}
                }
            }
            Membership::Neighbour {
                addr,
                high_priority,
            } => {
                let (len, max) = self
                    .view
                    .as_ref()
                    .map_or((0, 0), |v| (v.active.len(), v.cfg.active));
                let accept = high_priority || len < max;
                if let Some(view) = self.view.as_mut() {
                    view.probed_by.remove(&from); // a probe that found a cut becomes a neighbour
                }
                if accept {
                    self.add_active(now, from_id, Some(addr));
                } else if let Some(view) = self.view.as_mut() {
                    Self::add_passive(view, &mut self.rng, from_id, String::from(addr));
                }
                self.send_membership(now, link, Membership::NeighbourReply { accepted: accept });
                if !accept {
                    self.close_gracefully(now, link);
                }
            }
            Membership::NeighbourReply { accepted } => {
                let rotation = self
                    .view
                    .as_mut()
                    .and_then(|v| v.rotating.take_if(|k| *k == from));
                if accepted {
                    if rotation.is_some() {
                        // Let an old neighbour go; it keeps us in its passive view.
                        if let Some(victim) = self.eviction_victim() {
                            self.evict(now, victim);
                        }
                    }
                    let addr = self.view.as_ref().and_then(|v| v.addrs.get(&from).cloned());
                    self.add_active(now, from_id, addr.as_deref());
                } else {
                    if let Some(v) = self.view.as_mut() {
                        // Refused: back off before asking the next contact.
                        v.refill_backoff = v.refill_backoff.saturating_mul(2).min(REFILL_MAX);
                        v.refill_at = now.saturating_add(v.refill_backoff);
                    }
                    self.close_gracefully(now, link);
                }
            }
            Membership::Probe => {
                let Some(view) = self.view.as_mut() else {
                    return;
                };
                if view.probed_by.len() < MAX_PROBED_BY && !view.active.contains(&from) {
                    view.probed_by.insert(from, link);
                } else {
                    self.close_gracefully(now, link);
                }
            }
            Membership::Disconnect => {
                self.demote(from);
                self.close_gracefully(now, link);
            }
            Membership::Shuffle { contacts } => {
                let raw = self.shuffle_sample(false);
                self.integrate(contacts);
                self.send_membership(
                    now,
                    link,
                    Membership::ShuffleReply {
                        contacts: ContactList::from_raw(&raw),
                    },
                );
            }
            Membership::ShuffleReply { contacts } => self.integrate(contacts),
        }
    }

    fn integrate(&mut self, contacts: ContactList<'_>) {
        let me = *self.identity.node_id().key();
        let Some(view) = self.view.as_mut() else {
            return;
        };
        for c in contacts.iter().take(self.config.limits.max_list_len) {
            if *c.node.key() != me && c.node.validate().is_ok() {
                Self::add_passive(view, &mut self.rng, c.node, String::from(c.addr));
            }
        }
    }

    /// A sample of our views for a shuffle (with ourselves first when `with_self`), encoded as
    /// a contact list.
    fn shuffle_sample(&mut self, with_self: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if with_self && let Some(addr) = self.config.listen_addr.clone() {
            out.push((*self.identity.node_id(), addr));
        }
        let Some(view) = self.view.as_ref() else {
            return Vec::new(); // no membership, nothing to shuffle
        };
        let (ka, kp) = (view.cfg.shuffle_active, view.cfg.shuffle_passive);
        let active: Vec<(NodeId, String)> = view
            .active
            .iter()
            .filter_map(|k| Some((self.peers.get(k)?.id, view.addrs.get(k)?.clone())))
            .collect();
        let passive: Vec<(NodeId, String)> = view.passive.values().cloned().collect();
        for (list, k) in [(active, ka), (passive, kp)] {
            let mut list = list;
            for _ in 0..k.min(list.len()) {
                let i = (self.rng.next_u64() % list.len() as u64) as usize;
                out.push(list.swap_remove(i));
            }
        }
        let mut raw = Vec::new();
        ContactList::encode(
            out.iter().map(|(id, a)| Contact { node: *id, addr: a }),
            &mut raw,
        );
        raw
    }

    fn dial(&mut self, now: Timestamp, addr: &str, intent: Intent) {
        if addr.is_empty() {
            return;
        }
        if let Ok(link) = self.connect_peer(now, addr)
            && let Some(view) = self.view.as_mut()
        {
            view.dialling.insert(link, intent);
        }
    }

    /// A direct link to `key` went away: forget it and refill the active view.
    pub(crate) fn membership_link_lost(
        &mut self,
        now: Timestamp,
        link: LinkId,
        key: Option<NodeKey>,
    ) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let intent = view.dialling.remove(&link);
        view.probe.take_if(|p| p.link == link);
        view.probed_by.retain(|_, l| *l != link);
        if key.is_none() && matches!(intent, Some(Intent::Neighbour { .. })) {
            // The contact is gone (it left the passive view when dialled): try the next one
            // now rather than after a backoff meant for refusals.
            view.refill_at = now;
        }
        if let Some(k) = key
            && self.direct_link(&k).is_none()
            && let Some(view) = self.view.as_mut()
        {
            view.active.remove(&k);
        }
        self.refill(now);
    }

    /// Dials a random passive contact when the active view is short and no dial is pending.
    fn refill(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        let high = view.active.is_empty();
        if view.active.len() >= view.cfg.active
            || !view.dialling.is_empty()
            || (now < view.refill_at && !high)
        {
            return;
        }
        if view.passive.is_empty() && high {
            // Nobody left to ask: join again through a remembered contact, with backoff.
            if now < view.refill_at || view.join_contacts.is_empty() {
                return;
            }
            let i = (self.rng.next_u64() % view.join_contacts.len() as u64) as usize;
            let addr = view.join_contacts[i].clone();
            if let Some(v) = self.view.as_mut() {
                v.refill_at = now.saturating_add(v.refill_backoff);
                v.refill_backoff = v.refill_backoff.saturating_mul(2).min(REFILL_MAX);
            }
            self.dial(now, &addr, Intent::Join);
            return;
        }
        if let Some(v) = self.view.as_mut() {
            v.refill_at = now.saturating_add(v.refill_backoff);
        }
        self.dial_passive(now, Intent::Neighbour { high });
    }

    /// Shuffles and refills on schedule.
    pub(crate) fn membership_timers(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        if now >= view.next_shuffle {
            let interval = view.cfg.shuffle_interval;
            let next = now
                .saturating_add(interval / 2)
                .saturating_add(random_delay(&mut self.rng, interval));
            if let Some(v) = self.view.as_mut() {
                v.next_shuffle = next;
            }
            let active = self.active_view();
            if let Some(k) = pick(&mut self.rng, &active)
                && let Some(link) = self.direct_link(&k)
            {
                let raw = self.shuffle_sample(true);
                self.send_membership(
                    now,
                    link,
                    Membership::Shuffle {
                        contacts: ContactList::from_raw(&raw),
                    },
                );
            }
            self.rotate(now);
            self.maybe_probe(now);
        }
        self.end_probe(now);
        self.refill(now);
    }

    /// With probability `rotate`, dials a random passive contact to replace an active peer.
    fn rotate(&mut self, now: Timestamp) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        if view.active.len() < view.cfg.active
            || !view.dialling.is_empty()
            || view.rotating.is_some()
        {
            return;
        }
        let p = view.cfg.rotate;
        if !happens(&mut self.rng, p) {
            return;
        }
        self.dial_passive(now, Intent::Rotate);
    }

    /// Takes a random contact out of the passive view and dials it with `intent`.
    fn dial_passive(&mut self, now: Timestamp, intent: Intent) {
        let candidates: Vec<NodeKey> = self
            .view
            .as_ref()
            .map(|v| v.passive.keys().copied().collect())
            .unwrap_or_default();
        let Some(k) = pick(&mut self.rng, &candidates) else {
            return;
        };
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if let Some((_, addr)) = view.passive.remove(&k) {
            view.addrs.insert(k, addr.clone());
            self.dial(now, &addr, intent);
        }
    }

    /// The next membership deadline.
    pub(crate) fn membership_deadline(&self) -> Option<Timestamp> {
        let v = self.view.as_ref()?;
        let can_dial =
            !v.passive.is_empty() || (v.active.is_empty() && !v.join_contacts.is_empty());
        let refill = (v.active.len() < v.cfg.active && v.dialling.is_empty() && can_dial)
            .then_some(v.refill_at);
        let next = refill.map_or(v.next_shuffle, |r| r.min(v.next_shuffle));
        Some(v.probe.as_ref().map_or(next, |p| p.until.min(next)))
    }
}
