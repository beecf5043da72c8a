//! The epidemic broadcast tree, PlumTree (Leitão, Pereira, Rodrigues: "Epidemic Broadcast
//! Trees", SRDS 2007), as a state machine of its own. It knows nodes by [`NodeKey`] and
//! broadcasts by [`MessageId`]; it knows nothing of links, sessions or the engine, which feeds it
//! inputs and carries out its [`OutEvent`]s (`tree.rs` is that glue).
//!
//! # The protocol
//!
//! Each node splits its neighbours into an *eager* set, whose links form a spanning tree of the
//! overlay, and a *lazy* set, the other links.
//!
//! - **Broadcast.** A new broadcast (the node's own, or the first copy of another's) is pushed in
//!   full to the eager neighbours and announced, by id only, to the lazy ones (IHAVE).
//! - **Duplicate → PRUNE.** A copy of a broadcast already received shows a cycle in the tree:
//!   the node drops the sender's link from its eager set and tells it so (PRUNE), after which
//!   the sender only announces to it.
//! - **IHAVE → GRAFT.** An announcement of a broadcast the node lacks starts a timer. If the
//!   broadcast has not come along the tree when it expires, the node asks the announcer for it
//!   (GRAFT), which also takes the announcer's link into the tree on both sides; the next
//!   announcer is grafted after a shorter wait if that one fails too. This repairs the tree
//!   where it broke.
//! - **Optimisation.** An announcement that came over a much shorter path than the tree copy
//!   moves the node's tree link to the announcer.
//!
//! # Where this departs from the paper, and why
//!
//! - **Links start lazy.** The paper starts with every link eager, so the first broadcast
//!   floods and duplicates prune the tree into shape. Here the tree is built by grafts: a node
//!   that hears of a broadcast it lacks grafts the announcer at once when it has no live tree
//!   link (and otherwise after the wait), and a node's own broadcast with no tree link yet goes
//!   in full to one random neighbour, which is then its tree link. Even the first broadcast
//!   costs one payload copy per node (it travels at IHAVE + GRAFT + payload per hop).
//! - **Adaptive repair timeout.** The paper's graft timeout is a constant. Here the wait before
//!   a graft follows how late tree copies actually come after their first IHAVE: the smoothed
//!   mean plus four mean deviations of that lag (an [`Estimator`], like TCP's retransmission
//!   timeout), within [`TreeConfig::graft_timeout`] and [`TreeConfig::graft_timeout_max`]. Slow
//!   or lossy links raise it, so needless grafts stay rare. A graft that proves needless (the
//!   tree copy comes first after all) prunes the grafted link, not the tree link, so repairs
//!   do not reshape a whole tree — for a broadcast that came alone. Two cases keep a repair:
//!   - *The graft delivered first* and the tree's copy came later, with no other broadcast
//!     in between: the later copy's link is pruned (the classic PlumTree rule; for a lone
//!     broadcast either link may go without cutting anyone off). Pruning the graft here
//!     undid repairs: after a mass failure, two nodes on the far side of a cut that grafted
//!     at about the same time each took the other's repaired copy for the tree's, and both
//!     let their repair go. On seeds 0..3 a 90 % failure's rounds went from 519 to 455 ms
//!     (with the shortcuts below).
//!   - *Under a burst* the tree's copy may itself have come through another node's repair of
//!     the same cut, and that node sees ours the same way, so the second copy is a plain
//!     duplicate (a strike, below). In the simulator's `all` (seed 0) the tree used to end a
//!     round in a median of 7 pieces and now ends it in 2; on seeds 0..3 the last delivery
//!     went from 16.2 hops at 701 ms to 13.8 hops at 540 ms, with no more copies.
//! - **Careful pruning.** The paper prunes at the first duplicate. Under concurrent broadcasts
//!   every link of a cycle sees duplicates, and pruning at once cuts the tree in several places.
//!   Here a link is pruned after [`TreeConfig::prune_after`] duplicates net of the first copies
//!   it delivered, and never while the link the broadcast itself came on has left the tree.
//! - **Shortcuts** (the paper's optimisation, made conservative). The tree link moves (PRUNE
//!   the old, SHORTCUT the new) when IHAVEs from one neighbour show, for
//!   [`TreeConfig::shortcut_repeats`] broadcasts in a row, a path
//!   [`TreeConfig::shortcut_hops`] shorter and not slower than the tree's; only broadcasts that
//!   come alone count, as a burst from many sources shares one tree and must not reshape it.
//!   Both IHAVEs that come before the tree copy (the paper's case: the tree copy is the slower)
//!   and those that come after it, within [`TreeConfig::shortcut_slack`], count. The first
//!   kind is weighed once the copy has gone out, so the new tree link is not pushed a
//!   broadcast it announced; counting only the second kind left the trees a 90 % failure
//!   rebuilds long (seeds 0..3: last delivery 13.2 hops, now 12.1).
//! - **Catch-up.** A new neighbour is told (IHAVE) of the broadcasts of the last
//!   [`TreeConfig::catch_up`] window, so a node that was cut off, or rejoined after a failure,
//!   pulls what it missed instead of waiting for the next broadcast. Membership's probes look
//!   through these announcements for partitions ([`OutEvent::Announced`]).
//! - **Probe links** stay outside the tree: a neighbour flagged [`Neighbour::probe`] is never
//!   pushed to, grafted or adopted; what only it has stays missing, which is what a probe looks
//!   for.
//!
//! # Batched announcements
//!
//! Announcements are not sent one by one: those for a neighbour accumulate, and go out as one
//! IHAVE carrying many (id, hops) entries (at most the `max_batch` the tree was made with: the
//! wire's list cap, within the frame budget) when the caller drains [`poll`](PlumTree::poll),
//! which it does at the end of every input. That is the natural flush point of a sans-IO
//! machine: every announcement an input makes leaves with that input's records, none waits
//! for a timer, and repairs (whose timers start when the IHAVE arrives) are no slower. An
//! input that announces much to one neighbour — the catch-up of a new link, up to
//! [`TreeConfig::catch_up_max`] ids — costs one record (one padded record with obfuscation on)
//! rather than one per id. A short dispatch delay (iroh-gossip waits 5 ms) would also merge
//! announcements across inputs under bursts of broadcasts, at the price of that delay on
//! every repair.
//!
//! # Driving it
//!
//! Every input is a `handle_*` method; the engine supplies what the tree cannot know as
//! arguments (the time, the neighbours with an established path and which of them are probes,
//! whether a broadcast was already seen, randomness). After each input, drain
//! [`poll`](PlumTree::poll) and carry the events out. Graft timers are due at
//! [`poll_timeout`](PlumTree::poll_timeout) (O(log n): the deadlines are kept ordered), then
//! call [`handle_timeout`](PlumTree::handle_timeout).

use alloc::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    vec::Vec,
};
use core::time::Duration;

use rand_core::Rng;

use super::Estimator;
use crate::{
    NodeId, NodeKey, Timestamp,
    wire::{Broadcast, MessageId, Route, Signature},
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
    /// Broadcasts kept to answer grafts; also the most broadcasts remembered as announced but
    /// missing.
    pub cache: usize,
    /// Payload bytes the cache may hold, whatever its count: `cache` broadcasts of the
    /// largest payload (64 KiB) would be 256 MiB. The oldest go first; a payload larger than
    /// this is not cached at all. Default 16 MiB (256 of the largest broadcasts; many
    /// thousands of small ones, so `cache` is what binds for them).
    pub cache_bytes: usize,
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
            cache_bytes: 16 << 20,
            cache_ttl: Duration::from_secs(30),
            catch_up: Duration::from_secs(30),
            catch_up_max: 64,
        }
    }
}

/// A neighbour as the engine sees it when an input comes: a peer with an established path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neighbour {
    /// Who it is.
    pub key: NodeKey,
    /// Its link is a membership probe: it takes no part in the tree (no pushes, grafts,
    /// adoption or shortcuts), so closing it disturbs nothing.
    pub probe: bool,
}

/// What the tree asks of the engine, drained with [`PlumTree::poll`] after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OutEvent {
    /// Push the broadcast being spread (the one given to
    /// [`handle_broadcast`](PlumTree::handle_broadcast)) in full to `to`: its link is in the
    /// tree.
    Push {
        /// The neighbour.
        to: NodeKey,
    },
    /// Announce broadcasts to `to` in one TREE IHAVE: their ids and hop counts, at most
    /// `max_batch` of them. Comes after the input's other events.
    IHave {
        /// The neighbour.
        to: NodeKey,
        /// The broadcasts, with the hop count they would reach `to` with.
        ids: Vec<(MessageId, u8)>,
    },
    /// Send the cached broadcast `id` in full to `to`, which grafted it: see
    /// [`PlumTree::served`].
    Serve {
        /// The grafting neighbour.
        to: NodeKey,
        /// The broadcast.
        id: MessageId,
    },
    /// Ask `to` for broadcast `id` (GRAFT); its link is now in the tree.
    Graft {
        /// The announcer grafted.
        to: NodeKey,
        /// The missing broadcast.
        id: MessageId,
    },
    /// Tell `to` that its link left the tree (PRUNE).
    Prune {
        /// The neighbour.
        to: NodeKey,
    },
    /// Tell `to` that its link is now in the tree in place of a longer path (SHORTCUT).
    Shortcut {
        /// The neighbour.
        to: NodeKey,
    },
    /// `from` announced broadcast `id`, which the node has not seen (membership's probes look
    /// for these: what a probed contact alone announces shows a partition).
    Announced {
        /// The announcer.
        from: NodeKey,
        /// The broadcast.
        id: MessageId,
    },
    /// An announcement was not recorded: the missing set is full (the engine counts the drop).
    Dropped,
}

/// A broadcast kept to answer grafts and to tell new neighbours about.
#[derive(Debug)]
struct Cached {
    /// The route as this node spreads it: the hop count is the one the next hop gets.
    route: Route,
    /// The fewest hops an announcement showed it could reach us with, as the shortcut check
    /// counts them (starts at `route.hops`; kept apart so `route` stays what is served).
    shortest: u8,
    /// The hop limit stopped it here: it was not spread, and is neither served nor announced.
    stopped: bool,
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

/// A broadcast announced to us but not received yet.
#[derive(Debug)]
struct Missing {
    /// Who announced it, in order, not yet grafted.
    announcers: Vec<NodeKey>,
    /// When to graft the next announcer (mirrored in [`PlumTree::deadlines`]).
    deadline: Timestamp,
    first_announced: Timestamp,
    /// The announcer grafted last.
    grafted: Option<NodeKey>,
    /// The announcer (not a probe) that showed the fewest hops, and that count: if the tree
    /// copy comes first but over a longer path, it is shortcut evidence.
    nearest: Option<(NodeKey, u8)>,
}

/// Most announcers remembered per missing broadcast.
const MAX_ANNOUNCERS: usize = 8;

/// One node's broadcast tree.
#[derive(Debug)]
pub(crate) struct PlumTree {
    cfg: TreeConfig,
    /// Neighbours whose links are in the tree, forgotten with the neighbour's path (only live
    /// ones are taken in: grafts pass over announcers whose path has gone).
    eager: BTreeSet<NodeKey>,
    /// Duplicates per neighbour, net of first copies (forgotten with the neighbour's path).
    strikes: BTreeMap<NodeKey, u8>,
    cache: BTreeMap<MessageId, Cached>,
    /// Payload bytes in `cache` (at most `cfg.cache_bytes`).
    cached_bytes: usize,
    /// Cached broadcasts by arrival, oldest first.
    order: VecDeque<(Timestamp, MessageId)>,
    /// Announced but not received; at most `cfg.cache` entries.
    missing: BTreeMap<MessageId, Missing>,
    /// The missing set's graft deadlines, in time order.
    deadlines: BTreeSet<(Timestamp, MessageId)>,
    /// How late tree copies come after their first IHAVE.
    lateness: Estimator,
    /// A shorter path seen through this neighbour, and for how many broadcasts in a row.
    candidate: Option<(NodeKey, u8)>,
    /// Announcements not yet drained, per neighbour (batched into IHAVEs by `poll`).
    lazy: BTreeMap<NodeKey, Vec<(MessageId, u8)>>,
    /// Most entries in one IHAVE.
    max_batch: usize,
    out: VecDeque<OutEvent>,
}

impl PlumTree {
    /// A tree with no links in it yet, whose IHAVEs carry at most `max_batch` entries (at
    /// least one).
    pub fn new(cfg: TreeConfig, max_batch: usize) -> Self {
        PlumTree {
            cfg,
            eager: BTreeSet::new(),
            strikes: BTreeMap::new(),
            cache: BTreeMap::new(),
            cached_bytes: 0,
            order: VecDeque::new(),
            missing: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            lateness: Estimator::default(),
            candidate: None,
            lazy: BTreeMap::new(),
            max_batch: max_batch.max(1),
            out: VecDeque::new(),
        }
    }

    /// The next thing to do; call after every input until `None`. The input's announcements
    /// come last, batched per neighbour.
    pub fn poll(&mut self) -> Option<OutEvent> {
        if let Some(e) = self.out.pop_front() {
            return Some(e);
        }
        let mut pending = self.lazy.first_entry()?;
        let to = *pending.key();
        let ids = if pending.get().len() > self.max_batch {
            let rest = pending.get_mut().split_off(self.max_batch);
            core::mem::replace(pending.get_mut(), rest)
        } else {
            pending.remove()
        };
        Some(OutEvent::IHave { to, ids })
    }

    /// The earliest graft deadline: call [`handle_timeout`](Self::handle_timeout) then.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The neighbours whose links are in the tree (including any whose path went away without
    /// [`handle_neighbour_down`](Self::handle_neighbour_down)).
    pub fn eager(&self) -> impl Iterator<Item = &NodeKey> + '_ {
        self.eager.iter()
    }

    /// Cached broadcast `id` as it is served to a graft ([`OutEvent::Serve`]). The cache
    /// holds the route as this node spreads it, its hop count already raised for the next hop
    /// (see [`handle_broadcast`](Self::handle_broadcast)), so it is served as cached. A
    /// broadcast the hop limit stopped here is not served: one hop more would exceed it.
    pub fn served(&self, id: &MessageId) -> Option<Broadcast<'_>> {
        let c = self.cache.get(id).filter(|c| !c.stopped)?;
        Some(Broadcast {
            route: c.route,
            origin: c.origin,
            payload: &c.payload,
            signature: c.signature,
        })
    }

    /// A broadcast to spread: the node's own (`from` is `None`) or the first copy of another's,
    /// received from `from`, with its hop count already raised for the next hop. It is cached
    /// for grafts, pushed to the tree-eligible `neighbours` in the tree and announced to the
    /// others, skipping `except` (the sender, the origin). An own broadcast with no live tree
    /// link yet goes in full to one neighbour picked with `rng`, which joins the tree.
    ///
    /// `neighbours` are those with an established path, sorted by key.
    pub fn handle_broadcast(
        &mut self,
        now: Timestamp,
        b: &Broadcast<'_>,
        from: Option<NodeKey>,
        except: &[NodeKey],
        neighbours: &[Neighbour],
        rng: &mut impl Rng,
    ) {
        let has_eager = self.has_eager(neighbours);
        let nearest = self.remember(now, b, from, false);
        let eligible = || neighbours.iter().filter(|n| !n.probe).map(|n| n.key);
        let count = eligible().count();
        if from.is_none() && !has_eager && count > 0 {
            let i = (rng.next_u64() % count as u64) as usize;
            self.eager.extend(eligible().nth(i));
        }
        for to in eligible().filter(|k| !except.contains(k)) {
            if self.eager.contains(&to) {
                self.out.push_back(OutEvent::Push { to });
            } else {
                self.announce(to, b.route.id, b.route.hops);
            }
        }
        // An announcement that came before the tree copy, over fewer hops, is shortcut
        // evidence. Weighed only now: had its announcer joined the tree before the pushes, it
        // would have been sent the broadcast it announced.
        if let (Some(parent), Some((key, hops))) = (from, nearest)
            && find(neighbours, &key).is_some_and(|n| !n.probe)
        {
            self.shortcut_evidence(b.route.id, parent, key, hops);
        }
    }

    /// The first copy of a broadcast, received from `from`, that the hop limit keeps from
    /// going further (`b` carries the hop count it would go on with). It is not spread, but it
    /// is no longer missing: cached, so no graft goes out for it and a later copy counts as a
    /// duplicate. It is neither served to grafts nor announced to new neighbours.
    pub fn handle_stopped(&mut self, now: Timestamp, b: &Broadcast<'_>, from: NodeKey) {
        self.remember(now, b, Some(from), true);
    }

    /// The first copy of broadcast `id` came from `from`: its link is (now) in the tree, and
    /// one of its strikes is forgiven. If the broadcast had been announced first, how late the
    /// tree copy came feeds the graft timeout.
    pub fn handle_first_copy(&mut self, now: Timestamp, from: Neighbour, id: &MessageId) {
        self.adopt(from);
        if let Some(strikes) = self.strikes.get_mut(&from.key) {
            *strikes = strikes.saturating_sub(1);
        }
        if let Some(m) = self.missing.get(id).filter(|m| m.grafted.is_none()) {
            // Announced first, then pushed along the tree before we grafted.
            let lag = now.saturating_duration_since(m.first_announced);
            self.lateness.sample(lag);
        }
    }

    /// A copy of broadcast `id`, already received, came again from `from`: a cycle.
    ///
    /// If we grafted the broadcast, the copy that did not come through the graft shows how
    /// late the tree was (a lateness sample). For a broadcast that came alone: if the tree's
    /// copy came first the graft was needless, and the grafted link is pruned at once; if the
    /// graft's came first (and no other broadcast since), the later copy's link is. Under a
    /// burst the copy is a plain duplicate. A plain duplicate strikes `from`'s link, pruned
    /// after `prune_after` strikes net of the first copies it brought.
    pub fn handle_duplicate(&mut self, now: Timestamp, from: NodeKey, id: &MessageId) {
        let Some(c) = self.cache.get_mut(id) else {
            self.strike(from);
            return;
        };
        if let Some((t, target)) = c.grafted.take() {
            // The tree's copy is this one, or the first if this one is the graft's.
            let tree_copy = if from == target { c.received } else { now };
            self.lateness.sample(tree_copy.saturating_duration_since(t));
            let graft_first = c.parent == Some(target);
            if c.alone && !graft_first {
                // The tree was whole, only slower than the wait: let the grafted link go at
                // once, so repairs do not reshape the tree.
                self.prune(target);
            } else if c.alone && self.order.back().is_some_and(|(_, last)| last == id) {
                // The graft delivered first, and no broadcast since: either link may go
                // without leaving anyone out, so the slower one goes. Pruning the graft undid
                // concurrent repairs of one cut (module docs).
                self.prune(from);
            } else {
                // Under a burst, the tree's copy may itself have come through another node's
                // repair of the same cut, and that node sees our repaired copies the same way:
                // pruning at once undid both repairs and left the cut (under `all`, the tree
                // ended a round in 7 pieces, median). It counts as a plain duplicate instead.
                self.strike(from);
            }
            return;
        }
        if let Some(p) = c.parent
            && p != from
            && !self.eager.contains(&p)
        {
            // The link this broadcast came on has left the tree meanwhile (a concurrent
            // broadcast pruned it): the duplicate's link may be the one that remains.
            return;
        }
        self.strike(from);
    }

    /// A duplicate from `from`. Under concurrent broadcasts every link of a cycle sees some,
    /// and pruning at the first would cut the tree in several places at once: a link is
    /// pruned only after `prune_after` duplicates net of the first copies it brought.
    fn strike(&mut self, from: NodeKey) {
        let strikes = self.strikes.entry(from).or_insert(0);
        *strikes = strikes.saturating_add(1);
        if *strikes >= self.cfg.prune_after {
            self.prune(from);
        }
    }

    /// Takes `key`'s link out of the tree and tells it so (PRUNE).
    fn prune(&mut self, key: NodeKey) {
        self.strikes.remove(&key);
        if self.eager.remove(&key) {
            self.out.push_back(OutEvent::Prune { to: key });
        }
    }

    /// An IHAVE from `from`: it has broadcast `id`, received at `hops`. `seen` says whether
    /// this node has received it already (delivered or rejected).
    ///
    /// A broadcast not seen is reported ([`OutEvent::Announced`]) and remembered as missing,
    /// to be grafted from `from` (or an earlier announcer) when its timer expires — at once if
    /// no tree link is live. A broadcast seen may show a shortcut. `neighbours` are those with
    /// an established path, sorted by key.
    pub fn handle_ihave(
        &mut self,
        now: Timestamp,
        from: Neighbour,
        id: MessageId,
        hops: u8,
        seen: bool,
        neighbours: &[Neighbour],
    ) {
        if seen {
            self.consider_shortcut(now, from, &id, hops);
            return;
        }
        self.out
            .push_back(OutEvent::Announced { from: from.key, id });
        let immediate = !self.has_eager(neighbours);
        let wait = if immediate {
            Duration::ZERO
        } else {
            self.graft_timeout()
        };
        if !self.missing.contains_key(&id) && self.missing.len() >= self.cfg.cache {
            self.out.push_back(OutEvent::Dropped);
            return;
        }
        let m = self.missing.entry(id).or_insert_with(|| {
            let deadline = now.saturating_add(wait);
            self.deadlines.insert((deadline, id));
            Missing {
                announcers: Vec::new(),
                deadline,
                first_announced: now,
                grafted: None,
                nearest: None,
            }
        });
        if m.announcers.len() < MAX_ANNOUNCERS && !m.announcers.contains(&from.key) {
            m.announcers.push(from.key);
        }
        if !from.probe && m.nearest.is_none_or(|(_, h)| hops < h) {
            m.nearest = Some((from.key, hops));
        }
        if immediate {
            self.graft_due(now, neighbours);
        }
    }

    /// A GRAFT from `from` for broadcast `id`: its link joins the tree, and the broadcast is
    /// served if still cached.
    pub fn handle_graft(&mut self, from: Neighbour, id: &MessageId) {
        self.adopt(from);
        if self.cache.get(id).is_some_and(|c| !c.stopped) {
            self.out.push_back(OutEvent::Serve {
                to: from.key,
                id: *id,
            });
        }
    }

    /// A PRUNE from `from`: its link leaves the tree (on this side too).
    pub fn handle_prune(&mut self, from: NodeKey) {
        self.eager.remove(&from);
    }

    /// A SHORTCUT from `from`: it moved its tree link to this node, so the link joins the tree.
    pub fn handle_shortcut(&mut self, from: Neighbour) {
        self.adopt(from);
    }

    /// A new link to `key` is up: announce the broadcasts of the catch-up window, newest first.
    pub fn handle_neighbour_up(&mut self, now: Timestamp, key: NodeKey) {
        self.expire(now, 0);
        let window = self.cfg.catch_up;
        let recent: Vec<(MessageId, u8)> = self
            .order
            .iter()
            .rev()
            .take_while(|(t, _)| now.saturating_duration_since(*t) < window)
            .take(self.cfg.catch_up_max)
            .filter_map(|(_, id)| {
                let c = self.cache.get(id).filter(|c| !c.stopped)?;
                Some((*id, c.route.hops))
            })
            .collect();
        for (id, hops) in recent {
            self.announce(key, id, hops);
        }
    }

    /// The path to `key` went away: its link leaves the tree and its strikes are forgotten.
    pub fn handle_neighbour_down(&mut self, key: &NodeKey) {
        self.lazy.remove(key);
        self.eager.remove(key);
        self.strikes.remove(key);
        self.candidate.take_if(|(k, _)| k == key);
    }

    /// Grafts the broadcasts whose timers have expired. `neighbours` as for
    /// [`handle_ihave`](Self::handle_ihave).
    pub fn handle_timeout(&mut self, now: Timestamp, neighbours: &[Neighbour]) {
        self.graft_due(now, neighbours);
    }

    /// Whether a tree link is live.
    fn has_eager(&self, neighbours: &[Neighbour]) -> bool {
        self.eager.iter().any(|k| find(neighbours, k).is_some())
    }

    /// Takes `n`'s link into the tree, unless it is a probe.
    fn adopt(&mut self, n: Neighbour) {
        if !n.probe {
            self.eager.insert(n.key);
        }
    }

    /// Adds an announcement to `to`'s next IHAVE.
    fn announce(&mut self, to: NodeKey, id: MessageId, hops: u8) {
        self.lazy.entry(to).or_default().push((id, hops));
    }

    /// The wait before grafting a broadcast announced while a tree link is live.
    fn graft_timeout(&self) -> Duration {
        let cfg = &self.cfg;
        let ms = self
            .lateness
            .mean_ms()
            .map_or(0.0, |m| m + 4.0 * self.lateness.deviation_ms());
        let max = cfg.graft_timeout_max.max(cfg.graft_timeout);
        Duration::from_micros((ms * 1000.0) as u64).clamp(cfg.graft_timeout, max)
    }

    fn set_deadline(&mut self, id: MessageId, deadline: Timestamp) {
        if let Some(m) = self.missing.get_mut(&id) {
            self.deadlines.remove(&(m.deadline, id));
            m.deadline = deadline;
            self.deadlines.insert((deadline, id));
        }
    }

    fn forget_missing(&mut self, id: &MessageId) -> Option<Missing> {
        let m = self.missing.remove(id)?;
        self.deadlines.remove(&(m.deadline, *id));
        Some(m)
    }

    /// Grafts, for each missing broadcast whose timer has expired (in id order), its next
    /// announcer, and sets the retry timer. Announcers whose path has gone are passed over
    /// (and forgotten): a graft to them could not be sent, and would take into the tree a
    /// link that is not there, to come back as a tree link if the node reconnects. Probe
    /// links are grafted last: a broadcast only a probe has waits for the probe's verdict.
    fn graft_due(&mut self, now: Timestamp, neighbours: &[Neighbour]) {
        let is_probe = |k: &NodeKey| find(neighbours, k).is_some_and(|n| n.probe);
        let mut due: Vec<MessageId> = self
            .deadlines
            .range(..=(now, MessageId([0xff; 16])))
            .map(|(_, id)| *id)
            .collect();
        due.sort_unstable();
        let retry = self.cfg.graft_retry;
        for id in due {
            let Some(m) = self.missing.get_mut(&id) else {
                continue;
            };
            m.announcers.retain(|k| find(neighbours, k).is_some());
            if m.announcers.is_empty() {
                self.forget_missing(&id);
                continue;
            }
            self.set_deadline(id, now.saturating_add(retry));
            let Some(m) = self.missing.get_mut(&id) else {
                continue;
            };
            let (probes, others): (Vec<NodeKey>, Vec<NodeKey>) = core::mem::take(&mut m.announcers)
                .into_iter()
                .partition(is_probe);
            m.announcers = others;
            if m.announcers.is_empty() {
                // Only a probe link has it: wait for the probe's verdict.
                m.announcers = probes;
                continue;
            }
            m.announcers.extend(probes);
            let to = m.announcers.remove(0);
            m.grafted = Some(to);
            self.eager.insert(to);
            self.out.push_back(OutEvent::Graft { to, id });
        }
    }

    /// An IHAVE from `from` for `id`, which we have: shortcut evidence if it came within
    /// `shortcut_slack` of our copy (see [`shortcut_evidence`](Self::shortcut_evidence)).
    fn consider_shortcut(&mut self, now: Timestamp, from: Neighbour, id: &MessageId, hops: u8) {
        if from.probe {
            return;
        }
        let Some(c) = self.cache.get(id) else {
            return;
        };
        let Some(parent) = c.parent else {
            return;
        };
        if now.saturating_duration_since(c.received) > self.cfg.shortcut_slack {
            return;
        }
        self.shortcut_evidence(*id, parent, from.key, hops);
    }

    /// `from` (not in the tree) showed broadcast `id` at `hops`, against the tree copy that
    /// came from `parent`: if that is at least `shortcut_hops` fewer hops than to us, and that
    /// for `shortcut_repeats` lone broadcasts in a row, move our tree link from `parent` to
    /// `from`.
    fn shortcut_evidence(&mut self, id: MessageId, parent: NodeKey, from: NodeKey, hops: u8) {
        let threshold = self.cfg.shortcut_hops;
        let need = self.cfg.shortcut_repeats;
        let Some(c) = self.cache.get_mut(&id) else {
            return;
        };
        if threshold == 0
            || parent == from
            || self.eager.contains(&from)
            || !c.alone
            || !self.eager.contains(&parent)
            || c.shortest < hops.saturating_add(threshold)
        {
            return;
        }
        // Counted once per broadcast: a second IHAVE for it saves nothing over this one.
        c.shortest = hops;
        let count = match self.candidate {
            Some((k, n)) if k == from => n + 1,
            _ => 1,
        };
        if count < need {
            self.candidate = Some((from, count));
            return;
        }
        self.candidate = None;
        c.parent = Some(from);
        self.eager.remove(&parent);
        self.eager.insert(from);
        self.out.push_back(OutEvent::Shortcut { to: from });
        self.out.push_back(OutEvent::Prune { to: parent });
    }

    /// Drops cached broadcasts past `cache_ttl`, or beyond `cache` entries, oldest first,
    /// until `room` more payload bytes fit within `cache_bytes`.
    fn expire(&mut self, now: Timestamp, room: usize) {
        while let Some((t, id)) = self.order.front().copied() {
            if self.order.len() < self.cfg.cache
                && self.cached_bytes.saturating_add(room) <= self.cfg.cache_bytes
                && now.saturating_duration_since(t) < self.cfg.cache_ttl
            {
                break;
            }
            self.order.pop_front();
            if let Some(c) = self.cache.remove(&id) {
                self.cached_bytes -= c.payload.len();
            }
        }
    }

    /// Caches a broadcast (no longer missing), received from `parent`; `stopped` if the hop
    /// limit keeps it from being spread. Returns the announcer that showed it with the fewest
    /// hops, and that count, if it was announced before it came and not grafted.
    fn remember(
        &mut self,
        now: Timestamp,
        b: &Broadcast<'_>,
        parent: Option<NodeKey>,
        stopped: bool,
    ) -> Option<(NodeKey, u8)> {
        let size = b.payload.len();
        let missing = self.forget_missing(&b.route.id);
        let grafted = missing
            .as_ref()
            .and_then(|m| Some((m.first_announced, m.grafted?)));
        let nearest = missing
            .filter(|m| m.grafted.is_none())
            .and_then(|m| m.nearest);
        let fits = self.cfg.cache > 0 && size <= self.cfg.cache_bytes;
        self.expire(now, if fits { size } else { 0 });
        if !fits || self.cache.contains_key(&b.route.id) {
            return None;
        }
        let alone = self
            .order
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= self.cfg.shortcut_quiet);
        self.order.push_back((now, b.route.id));
        self.cached_bytes += size;
        self.cache.insert(
            b.route.id,
            Cached {
                route: b.route,
                shortest: b.route.hops,
                stopped,
                origin: b.origin,
                signature: b.signature,
                payload: b.payload.to_vec(),
                grafted,
                parent,
                received: now,
                alone,
            },
        );
        nearest
    }
}

/// The neighbour `key` among `neighbours` (sorted by key, as the engine gives them).
fn find<'a>(neighbours: &'a [Neighbour], key: &NodeKey) -> Option<&'a Neighbour> {
    neighbours
        .binary_search_by_key(key, |n| n.key)
        .ok()
        .map(|i| &neighbours[i])
}

#[cfg(test)]
mod tests;
