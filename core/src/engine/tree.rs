//! The epidemic broadcast tree (PlumTree-style) on top of the neighbours: broadcasts are pushed
//! eagerly along a spanning tree and only announced (IHAVE) to the other neighbours.
//!
//! - **Links start lazy.** The tree is built by grafts, never by a flood: a node that hears of
//!   a message it lacks grafts the announcer's link into the tree at once when it has no live
//!   tree link, and otherwise after a wait (then every `graft_retry` through the next
//!   announcer). A node's own broadcast with no tree link yet goes in full to one random
//!   neighbour, which is then its tree link. The first broadcast thus costs one payload copy
//!   per node (it travels at IHAVE + GRAFT + payload per hop); later ones follow the tree.
//! - **Adaptive repair.** The wait before a graft follows how late tree copies actually come
//!   after their IHAVE (mean plus four deviations, within configured bounds), so slow or lossy
//!   links raise it and needless grafts stay rare. A graft that turns out needless (the tree
//!   copy comes after all) prunes the grafted link, not the tree link.
//! - **Careful pruning.** A tree link is pruned after `prune_after` duplicates net of the
//!   first copies it delivered, and never while the link the message itself came on has left
//!   the tree: concurrent broadcasts must not cut the tree in several places at once.
//! - **Shortcuts.** When IHAVEs from a neighbour show, for `shortcut_repeats` broadcasts in a
//!   row, a path `shortcut_hops` shorter and not slower, the node moves its tree link there
//!   (PRUNE the old, SHORTCUT the new). Only for broadcasts that come alone: a burst from many
//!   sources shares the tree and does not reshape it.
//! - **Catch-up on new links.** A new link is told (IHAVE) of the broadcasts of the last
//!   `catch_up` window, so a node that was cut off, or rejoined after a failure, pulls what it
//!   missed instead of waiting for the next message.

use alloc::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    vec::Vec,
};
use core::time::Duration;

use rand_core::CryptoRng;

use super::{Engine, LinkId, links::Class};
use crate::{
    NodeId, NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Broadcast, Message, MessageId, Route, Signature, Tree},
};

/// Broadcast-tree settings. The defaults were chosen in the simulator (`sim` runner,
/// BENCHMARKS.md §2); the README has the table they give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeConfig {
    /// Shortest wait after the first IHAVE before grafting, when the node has a live tree
    /// link. The wait adapts to how late tree copies arrive after their IHAVE (mean plus four
    /// deviations, like a TCP retransmission timeout), between this and `graft_timeout_max`.
    pub graft_timeout: Duration,
    /// Longest wait before grafting. Higher trades repair speed for fewer needless grafts
    /// (in the simulator, `all` on seed 0: 500 ms gave rmr 0.54 at 771 ms, 1 s gave 0.36 at
    /// 1,166 ms).
    pub graft_timeout_max: Duration,
    /// Wait before grafting the next announcer if the first graft did not deliver.
    pub graft_retry: Duration,
    /// Duplicates a tree link may deliver (less one per first copy it delivers) before it is
    /// pruned. 1 is classic PlumTree; under concurrent broadcasts every link of a cycle sees
    /// duplicates, and pruning at the first cuts the tree in several places at once.
    pub prune_after: u8,
    /// Hops an IHAVE must save over the tree path for the node to move its tree link to the
    /// announcer (PRUNE the old link, SHORTCUT the new one); 0 turns it off. This keeps the
    /// tree's paths close to the overlay's shortest ones.
    pub shortcut_hops: u8,
    /// How much later than the first copy that IHAVE may arrive (a shortcut must not make
    /// the path slower by more than this).
    pub shortcut_slack: Duration,
    /// Broadcasts in a row that must show the same shortcut before the tree link moves.
    pub shortcut_repeats: u8,
    /// A broadcast that comes within this of the previous one shares the tree with it and
    /// never reshapes it: shortcuts are for one source at a time.
    pub shortcut_quiet: Duration,
    /// Broadcasts kept to answer grafts.
    pub cache: usize,
    /// How long a broadcast is kept for grafts.
    pub cache_ttl: Duration,
    /// Broadcasts younger than this are announced to a new neighbour.
    pub catch_up: Duration,
    /// Most broadcasts announced to a new neighbour.
    pub catch_up_max: usize,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            graft_timeout: Duration::from_millis(200),
            graft_timeout_max: Duration::from_millis(500),
            graft_retry: Duration::from_millis(100),
            prune_after: 5,
            shortcut_hops: 2,
            shortcut_slack: Duration::from_millis(50),
            shortcut_repeats: 3,
            shortcut_quiet: Duration::from_millis(500),
            cache: 4096,
            cache_ttl: Duration::from_secs(30),
            catch_up: Duration::from_secs(30),
            catch_up_max: 64,
        }
    }
}

#[derive(Debug)]
struct Cached {
    route: Route,
    origin: Option<NodeId>,
    signature: Option<Signature>,
    payload: Vec<u8>,
    /// If we grafted it: when it was first announced to us, and whom we grafted last. A later
    /// tree copy measures how late the tree was, and shows the graft was not needed.
    grafted: Option<(Timestamp, NodeKey)>,
    /// The neighbour the first copy came from (none for our own).
    parent: Option<NodeKey>,
    /// When the first copy came.
    received: Timestamp,
    /// No other broadcast came shortly before it.
    alone: bool,
}

#[derive(Debug)]
struct Missing {
    announcers: Vec<NodeKey>,
    deadline: Timestamp,
    first_announced: Timestamp,
    grafted: Option<NodeKey>,
}

/// How late tree copies arrive after the first IHAVE: a smoothed mean and mean deviation, in
/// milliseconds.
#[derive(Debug, Default)]
struct Lateness {
    mean: Option<f64>,
    dev: f64,
}

impl Lateness {
    fn sample(&mut self, lag: Duration) {
        let x = lag.as_secs_f64() * 1000.0;
        match self.mean {
            None => {
                self.mean = Some(x);
                self.dev = x / 2.0;
            }
            Some(m) => {
                self.dev = 0.75 * self.dev + 0.25 * (x - m).abs();
                self.mean = Some(0.875 * m + 0.125 * x);
            }
        }
    }

    fn timeout(&self, cfg: &TreeConfig) -> Duration {
        let ms = self.mean.map_or(0.0, |m| m + 4.0 * self.dev);
        let max = cfg.graft_timeout_max.max(cfg.graft_timeout);
        Duration::from_micros((ms * 1000.0) as u64).clamp(cfg.graft_timeout, max)
    }
}

/// Most announcers remembered per missing message.
const MAX_ANNOUNCERS: usize = 8;

/// Per-node tree state.
#[derive(Debug)]
pub(crate) struct TreeState {
    pub cfg: TreeConfig,
    /// Neighbours whose links are in the tree (only ever neighbours: forgotten with the path).
    eager: BTreeSet<NodeKey>,
    /// Duplicates per neighbour, net of first copies (only neighbours: forgotten with the path).
    strikes: BTreeMap<NodeKey, u8>,
    cache: BTreeMap<MessageId, Cached>,
    order: VecDeque<(Timestamp, MessageId)>,
    /// Announced but not received; at most `cfg.cache` entries.
    missing: BTreeMap<MessageId, Missing>,
    lateness: Lateness,
    /// A shorter path seen through this neighbour, and for how many broadcasts in a row.
    candidate: Option<(NodeKey, u8)>,
}

impl TreeState {
    pub fn new(cfg: TreeConfig) -> Self {
        TreeState {
            cfg,
            eager: BTreeSet::new(),
            strikes: BTreeMap::new(),
            cache: BTreeMap::new(),
            order: VecDeque::new(),
            missing: BTreeMap::new(),
            lateness: Lateness::default(),
            candidate: None,
        }
    }

    fn expire(&mut self, now: Timestamp) {
        while let Some((t, id)) = self.order.front().copied() {
            if self.order.len() < self.cfg.cache
                && now.saturating_duration_since(t) < self.cfg.cache_ttl
            {
                break;
            }
            self.order.pop_front();
            self.cache.remove(&id);
        }
    }

    fn remember(&mut self, now: Timestamp, b: &Broadcast<'_>, parent: Option<NodeKey>) {
        self.expire(now);
        let grafted = self
            .missing
            .remove(&b.route.id)
            .and_then(|m| Some((m.first_announced, m.grafted?)));
        if self.cfg.cache == 0 || self.cache.contains_key(&b.route.id) {
            return;
        }
        let alone = self
            .order
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= self.cfg.shortcut_quiet);
        self.order.push_back((now, b.route.id));
        self.cache.insert(
            b.route.id,
            Cached {
                route: b.route,
                origin: b.origin,
                signature: b.signature,
                payload: b.payload.to_vec(),
                grafted,
                parent,
                received: now,
                alone,
            },
        );
    }
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Takes the link to `key` into the tree, unless it is a probe link: those stay outside it
    /// (see the membership module), whatever the peer sends.
    fn adopt(&mut self, key: NodeKey) {
        if !self.is_probe(&key)
            && let Some(tree) = self.tree.as_mut()
        {
            tree.eager.insert(key);
        }
    }

    /// Whether any tree link is up.
    fn has_eager(&self) -> bool {
        self.tree
            .as_ref()
            .is_some_and(|t| t.eager.iter().any(|k| self.path_to(k).is_some()))
    }

    /// Pushes a broadcast along the tree: the full message to eager neighbours, IHAVE to lazy
    /// ones; `except` are skipped. An own broadcast (`from_self`) with no tree link yet goes in
    /// full to one random neighbour, which joins the tree. Returns how many neighbours got the
    /// full message and how many an IHAVE.
    pub(crate) fn tree_push(
        &mut self,
        now: Timestamp,
        b: &Broadcast<'_>,
        except: &[NodeKey],
        class: Class,
    ) -> (usize, usize) {
        let from_self = class == Class::Own;
        let has_eager = self.has_eager();
        // A probe link gets only the catch-up announcements of its probe.
        let neighbours: Vec<_> = self
            .neighbours()
            .into_iter()
            .filter(|(k, _)| !self.is_probe(k))
            .collect();
        let Some(tree) = self.tree.as_mut() else {
            return (0, 0);
        };
        tree.remember(now, b, except.first().copied());
        if from_self && !has_eager && !neighbours.is_empty() {
            let i = (self.rng.next_u64() % neighbours.len() as u64) as usize;
            tree.eager.insert(neighbours[i].0);
        }
        let targets: Vec<(LinkId, bool)> = neighbours
            .into_iter()
            .filter(|(key, _)| !except.contains(key))
            .map(|(key, link)| (link, tree.eager.contains(&key)))
            .collect();
        let (mut sent, mut announced) = (0, 0);
        for (link, eager) in targets {
            if eager {
                if self
                    .send_on(now, link, Message::Broadcast(*b), class)
                    .is_ok()
                {
                    sent += 1;
                }
            } else {
                let ihave = Message::Tree(Tree::IHave {
                    id: b.route.id,
                    hops: b.route.hops,
                });
                if self.send_on(now, link, ihave, Class::Lazy).is_ok() {
                    announced += 1;
                }
            }
        }
        self.flush_tunnels(now);
        (sent, announced)
    }

    /// A duplicate of `id` arrived from `from`: take its link out of the tree.
    pub(crate) fn tree_duplicate(&mut self, now: Timestamp, from: NodeKey, id: &MessageId) {
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        if let Some(c) = tree.cache.get(id)
            && let Some(p) = c.parent
            && p != from
            && !tree.eager.contains(&p)
        {
            // The link this message came on has left the tree meanwhile (a concurrent
            // broadcast pruned it): the duplicate's link may be the one that remains.
            return;
        }
        let from = if let Some((t, target)) = tree.cache.get_mut(id).and_then(|c| c.grafted.take())
        {
            // We grafted it, and the tree copy came after all: the wait was too short, and the
            // tree was whole. Keep the tree link and let the grafted one go at once, so
            // repairs do not reshape the tree.
            tree.lateness.sample(now.saturating_duration_since(t));
            target
        } else {
            // A plain duplicate. Under concurrent broadcasts every link of a cycle sees some,
            // and pruning at the first would cut the tree in several places at once: prune a
            // link only after `prune_after` duplicates net of the first copies it brought.
            let strikes = tree.strikes.entry(from).or_insert(0);
            *strikes = strikes.saturating_add(1);
            if *strikes < tree.cfg.prune_after {
                return;
            }
            from
        };
        tree.strikes.remove(&from);
        if tree.eager.remove(&from)
            && let Some(link) = self.path_to(&from)
        {
            let _ = self.send_on(now, link, Message::Tree(Tree::Prune), Class::Control);
            self.stats.prunes_sent += 1;
        }
    }

    /// The first copy of `id` arrived from `from`: its link is (now) in the tree.
    pub(crate) fn tree_parent(&mut self, now: Timestamp, from: NodeKey, id: &MessageId) {
        self.adopt(from);
        if let Some(tree) = self.tree.as_mut() {
            if let Some(strikes) = tree.strikes.get_mut(&from) {
                *strikes = strikes.saturating_sub(1);
            }
            if let Some(m) = tree.missing.get(id).filter(|m| m.grafted.is_none()) {
                // Announced first, then pushed along the tree before we grafted.
                let lag = now.saturating_duration_since(m.first_announced);
                tree.lateness.sample(lag);
            }
        }
    }

    /// A TREE control frame from `from`.
    pub(crate) fn on_tree(&mut self, now: Timestamp, from: NodeKey, t: Tree) {
        match t {
            Tree::IHave { id, hops } => {
                if self.seen.get(&id).is_some() {
                    // An own broadcast sent into its stem is announced back: it got out.
                    let _ = self.stem_returned(&id);
                    self.tree_shortcut(now, from, &id, hops);
                    return;
                }
                self.probe_announced(now, &from, id);
                let immediate = !self.has_eager();
                let Some(tree) = self.tree.as_mut() else {
                    return;
                };
                let wait = if immediate {
                    Duration::ZERO
                } else {
                    tree.lateness.timeout(&tree.cfg)
                };
                if !tree.missing.contains_key(&id) && tree.missing.len() >= tree.cfg.cache {
                    self.stats.drop(super::DropCause::QueueFull);
                    return;
                }
                let m = tree.missing.entry(id).or_insert(Missing {
                    announcers: Vec::new(),
                    deadline: now.saturating_add(wait),
                    first_announced: now,
                    grafted: None,
                });
                if m.announcers.len() < MAX_ANNOUNCERS && !m.announcers.contains(&from) {
                    m.announcers.push(from);
                }
                if immediate {
                    self.tree_timers(now);
                }
            }
            Tree::Graft { id } => {
                self.adopt(from);
                let Some(tree) = self.tree.as_mut() else {
                    return;
                };
                let Some(c) = tree.cache.get(&id) else {
                    return;
                };
                let mut route = c.route;
                route.hops = route.hops.saturating_add(1);
                let payload = c.payload.clone();
                let (origin, signature) = (c.origin, c.signature);
                if let Some(link) = self.path_to(&from) {
                    let msg = Message::Broadcast(Broadcast {
                        route,
                        origin,
                        payload: &payload,
                        signature,
                    });
                    let _ = self.send_on(now, link, msg, Class::Forward);
                    self.flush_tunnels(now);
                }
            }
            Tree::Prune => {
                if let Some(tree) = self.tree.as_mut() {
                    tree.eager.remove(&from);
                }
            }
            Tree::Shortcut => self.adopt(from),
        }
    }

    /// An IHAVE from `from` for `id`, which we have: if it came to `from` in at least
    /// `shortcut_hops` fewer hops than to us, move our tree link from our parent to `from`.
    fn tree_shortcut(&mut self, now: Timestamp, from: NodeKey, id: &MessageId, hops: u8) {
        if self.is_probe(&from) {
            return;
        }
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        let threshold = tree.cfg.shortcut_hops;
        let (slack, need) = (tree.cfg.shortcut_slack, tree.cfg.shortcut_repeats);
        let Some(c) = tree.cache.get_mut(id) else {
            return;
        };
        let Some(parent) = c.parent else {
            return;
        };
        if threshold == 0 || parent == from || tree.eager.contains(&from) || !c.alone {
            return;
        }
        if !tree.eager.contains(&parent)
            || c.route.hops < hops.saturating_add(threshold)
            || now.saturating_duration_since(c.received) > slack
        {
            return;
        }
        // Counted once per broadcast: a second IHAVE for it saves nothing over this one.
        c.route.hops = hops;
        let count = match tree.candidate {
            Some((k, n)) if k == from => n + 1,
            _ => 1,
        };
        if count < need {
            tree.candidate = Some((from, count));
            return;
        }
        tree.candidate = None;
        c.parent = Some(from);
        tree.eager.remove(&parent);
        tree.eager.insert(from);
        if let Some(link) = self.path_to(&from) {
            let _ = self.send_on(now, link, Message::Tree(Tree::Shortcut), Class::Control);
        }
        if let Some(link) = self.path_to(&parent) {
            let _ = self.send_on(now, link, Message::Tree(Tree::Prune), Class::Control);
            self.stats.prunes_sent += 1;
        }
        self.flush_tunnels(now);
    }

    /// Grafts for messages announced but not received in time.
    pub(crate) fn tree_timers(&mut self, now: Timestamp) {
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        let retry = tree.cfg.graft_retry;
        let due: Vec<MessageId> = tree
            .missing
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(tree) = self.tree.as_mut() else {
                return;
            };
            let Some(m) = tree.missing.get_mut(&id) else {
                continue;
            };
            if m.announcers.is_empty() {
                tree.missing.remove(&id);
                continue;
            }
            m.deadline = now.saturating_add(retry);
            let announcers = core::mem::take(&mut m.announcers);
            let (probes, others): (Vec<NodeKey>, Vec<NodeKey>) =
                announcers.into_iter().partition(|k| self.is_probe(k));
            let Some(tree) = self.tree.as_mut() else {
                return;
            };
            let Some(m) = tree.missing.get_mut(&id) else {
                continue;
            };
            m.announcers = others;
            if m.announcers.is_empty() {
                // Only a probe link has it: wait for the probe's verdict.
                m.announcers = probes;
                continue;
            }
            m.announcers.extend(probes);
            let a = m.announcers.remove(0);
            m.grafted = Some(a);
            tree.eager.insert(a);
            if let Some(link) = self.path_to(&a) {
                let _ = self.send_on(now, link, Message::Tree(Tree::Graft { id }), Class::Control);
                self.stats.grafts_sent += 1;
                self.flush_tunnels(now);
            }
        }
    }

    /// The earliest graft deadline.
    pub(crate) fn tree_deadline(&self) -> Option<Timestamp> {
        self.tree
            .as_ref()?
            .missing
            .values()
            .map(|m| m.deadline)
            .min()
    }

    /// A new link to a neighbour is up: announce the recent broadcasts on it, newest first.
    pub(crate) fn tree_link_up(&mut self, now: Timestamp, link: LinkId) {
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        tree.expire(now);
        let window = tree.cfg.catch_up;
        let recent: Vec<(MessageId, u8)> = tree
            .order
            .iter()
            .rev()
            .take_while(|(t, _)| now.saturating_duration_since(*t) < window)
            .take(tree.cfg.catch_up_max)
            .filter_map(|(_, id)| Some((*id, tree.cache.get(id)?.route.hops)))
            .collect();
        for (id, hops) in recent {
            let _ = self.send_on(
                now,
                link,
                Message::Tree(Tree::IHave { id, hops }),
                Class::Lazy,
            );
        }
        self.flush_tunnels(now);
    }

    /// The neighbours whose links are in the broadcast tree (empty without a tree).
    pub fn tree_links(&self) -> Vec<NodeKey> {
        self.tree.as_ref().map_or_else(Vec::new, |t| {
            t.eager
                .iter()
                .filter(|k| self.path_to(k).is_some())
                .copied()
                .collect()
        })
    }

    /// A peer's path went away: its link leaves the tree.
    pub(crate) fn tree_forget(&mut self, key: &NodeKey) {
        if let Some(tree) = self.tree.as_mut() {
            tree.eager.remove(key);
            tree.strikes.remove(key);
            tree.candidate.take_if(|(k, _)| k == key);
        }
    }
}
