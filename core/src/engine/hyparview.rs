//! HyParView, the overlay's membership protocol, as a state machine of its own (Leitão, Pereira
//! and Rodrigues, *HyParView: a membership protocol for reliable gossip-based broadcast*, DSN
//! 2007). It owns every piece of membership state and knows nothing of the engine, its link
//! table or its cryptography: the caller ([`membership`](super::membership), in the engine)
//! feeds it typed inputs and carries out the [`Out`]puts it queues, in order.
//!
//! # The protocol
//!
//! A node keeps two views of the overlay:
//!
//! - the **active view** (`MembershipConfig::active`, 5): the neighbours it keeps open links to
//!   and gossips with. It is symmetric: a node is in its neighbour's active view too;
//! - the **passive view** (`MembershipConfig::passive`, 60): contacts (node and address) it is
//!   not linked to, to replace failed neighbours from.
//!
//! Messages, as in the paper (the wire form is [`Membership`]):
//!
//! - **JOIN**: a new node links to a contact it was given and sends JOIN. The contact takes it
//!   into its active view and sends FORWARD_JOIN, with `active_walk` steps to go, to each of
//!   its other neighbours.
//! - **FORWARD_JOIN** is a random walk announcing the new node. At each step it goes on to a
//!   random neighbour other than the one it came from; where it ends (no steps left, or a node
//!   with at most one neighbour) the new node is taken into the active view. At step
//!   `passive_walk` the new node is also put in a passive view.
//! - **NEIGHBOUR** asks the receiver to take the sender into its active view. A *high
//!   priority* request (the sender has no neighbour left) is accepted even into a full view —
//!   *departure*: at most once per shuffle interval, so a few identities cannot replace the
//!   whole view by asking with high priority; a low priority one only when there is room. The
//!   answer says which (NEIGHBOUR_REPLY).
//! - **DISCONNECT**: the sender drops the receiver from its active view (to make room); the
//!   receiver moves the sender to its passive view.
//! - **SHUFFLE**: now and then a node sends a sample of its views (itself, `shuffle_active`
//!   neighbours, `shuffle_passive` passive contacts) to a neighbour, which answers with a
//!   sample of its own (SHUFFLE_REPLY); both put what they learnt in their passive views.
//!
//! Taking a node into a full active view evicts one neighbour with DISCONNECT; adding to a full
//! passive view drops a random contact. A neighbour whose link fails is dropped and replaced by
//! a random passive contact, asked with NEIGHBOUR.
//!
//! # Where this departs from the paper, and why
//!
//! - **Links are dialled.** A walk's end does not simply "add" the new node: it dials the new
//!   node's address and sends NEIGHBOUR with high priority. Shuffles take one hop (to a random
//!   neighbour, which answers on the same link) instead of a random walk, the reply samples
//!   both views, and a full passive view drops a random contact, not preferably one just sent.
//! - **Dead contacts are skipped at once, refusals back off.** A passive contact that cannot be
//!   reached (its link fails before its handshake) is gone for good: the next one is dialled
//!   at once. A refusal (NEIGHBOUR_REPLY not accepted) backs off exponentially, 0.5 s doubling
//!   to 30 s, before the next contact is asked: the overlay is full around us and asking faster
//!   would only churn it.
//! - **A refill timer.** The paper replaces a neighbour only when one fails; here a short active
//!   view is also topped up on a timer (within the backoff), so a node left short by refusals
//!   gets back to full degree.
//! - **Last-resort rejoin.** A node left with no neighbour and no passive contact joins again
//!   through the contacts it joined through (at most four remembered), with the same backoff.
//!   The paper has no way back for such a node.
//! - **Dials at others' request are rate-limited.** A walk's end makes the node dial the
//!   address the walk names, and anyone can send JOIN or FORWARD_JOIN: without a limit, other
//!   nodes could make it dial any address at will (the caller's link cap bounds dials in
//!   flight, not their rate). Those dials take a token from a bucket
//!   (`MembershipConfig::remote_dial_rate`); beyond it the dial is refused and reported
//!   ([`Out::DialRefused`]). The node's own dials (refills, probes, rotations, rejoins) take
//!   none, so recovery after failures is never slowed.
//! - **Eviction prefers links outside the broadcast tree.** The caller says which neighbours
//!   carry the broadcast tree; evicting one of those would split the tree until grafts mend it,
//!   so a random neighbour outside it goes first.
//! - **Probes heal partitions instead of rotation.** Now and then (`probe`, per shuffle) a node
//!   opens a short-lived link to a random passive contact (PROBE). A new link carries the
//!   broadcast tree's catch-up announcements; the caller reports each broadcast the contact
//!   announced that the node lacked ([`State::handle_announced`]). If one of them, announced at
//!   least half a window before the probe ends, has still not arrived, the two were cut apart:
//!   the node asks the contact into its active view (NEIGHBOUR, high priority, letting one
//!   neighbour go when accepted). Otherwise the link is closed and the contact goes back to
//!   the passive view. This heals a partition once a broadcast has been sent on the far side,
//!   without the steady churn of random active-view rotation (`rotate`, off by default, which
//!   also heals but costs handshakes and tree links). A node serves at most four probes at
//!   once.
//!
//! # Driving it
//!
//! Each input is a `handle_*` method; after each one, take the outputs with
//! [`take_out`](State::take_out) and carry them out in order. An input that arises while doing
//! so (closing a link reports it lost, say) is handled at once and its outputs carried out
//! before the rest. Every [`Out::Dial`] is answered with [`dialled`](State::dialled). Call
//! [`handle_timeout`](State::handle_timeout) once [`poll_timeout`](State::poll_timeout) has
//! passed. Randomness, the time and what the caller knows (the broadcast tree's neighbours,
//! which broadcasts have arrived) come in as arguments.
//!
//! Every table is capped: the active view by `active`, the passive view by `passive`, dials and
//! pending NEIGHBOUR requests by the caller's link cap, join contacts by four, probes served by
//! four, a probe's evidence by eight announcements. There is no ever-growing address book: an
//! address lives in the record of the node it belongs to (a neighbour, a passive contact, a
//! dial, a probe, a request) and goes with it, so addresses are bounded by the views. A dial's
//! address (a passive contact, a walk's new node) becomes the address of the node reached
//! there. Besides, the 64 addresses learnt last are remembered, for a node that comes back
//! into the active view without one: the contact we (re)joined through, a NEIGHBOUR_REPLY or
//! DISCONNECT that comes after its record went.

use alloc::{
    collections::{BTreeMap, VecDeque},
    string::String,
    vec::Vec,
};
use core::time::Duration;

use rand_core::CryptoRng;

use super::{MembershipConfig, obfuscation::random_delay};
use crate::relay::rate::TokenBucket;
use crate::{
    NodeId, NodeKey, Timestamp,
    wire::{Contact, ContactList, Membership, MessageId},
};

/// Announced broadcasts remembered per probe.
const PROBE_IDS: usize = 8;
/// Probes by others served at once (more are refused).
const MAX_PROBED_BY: usize = 4;
/// Join addresses remembered for a last-resort rejoin.
const MAX_JOIN_CONTACTS: usize = 4;
/// First wait between refill attempts; doubles after each refusal up to [`REFILL_MAX`].
const REFILL_BASE: Duration = Duration::from_millis(500);
/// Longest wait between refill attempts.
const REFILL_MAX: Duration = Duration::from_secs(30);
/// Addresses remembered after their nodes left the views (the most recently learnt ones).
const RECENT_ADDRS: usize = 64;

/// Why a link was dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// To join the overlay through a contact: send JOIN once linked.
    Join,
    /// To ask for a place in the contact's active view (NEIGHBOUR), with high priority when
    /// we have no neighbour left (or at a FORWARD_JOIN walk's end).
    Neighbour {
        /// High priority: the contact may refuse only if it cannot do otherwise.
        high: bool,
    },
    /// To replace one of our neighbours with the contact (active-view rotation).
    Rotate,
    /// A short look at a passive contact: does it know broadcasts we missed?
    Probe,
}

/// Names one [`Out::Dial`], for the caller's answer ([`State::dialled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DialId(u64);

/// Why the state machine lets a link go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// We evicted the neighbour to make room (DISCONNECT was sent first).
    Evicted,
    /// We refused its NEIGHBOUR (the reply was sent first).
    Refused,
    /// It refused our NEIGHBOUR.
    Rejected,
    /// It sent DISCONNECT.
    Disconnected,
    /// Its probe of us came when we already serve [`MAX_PROBED_BY`] (or it is our neighbour).
    ProbeRefused,
    /// Our probe of it showed nothing missing.
    ProbeDone,
}

/// A MEMBERSHIP message to send, owned; [`as_wire`](Message::as_wire) gives its wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// JOIN, with our address.
    Join { addr: String },
    /// FORWARD_JOIN for `node` at `addr`, `ttl` steps to go.
    ForwardJoin { node: NodeId, addr: String, ttl: u8 },
    /// NEIGHBOUR, with our address.
    Neighbour { addr: String, high_priority: bool },
    /// NEIGHBOUR_REPLY.
    NeighbourReply { accepted: bool },
    /// DISCONNECT.
    Disconnect,
    /// SHUFFLE with an encoded contact list.
    Shuffle { contacts: Vec<u8> },
    /// SHUFFLE_REPLY with an encoded contact list.
    ShuffleReply { contacts: Vec<u8> },
    /// PROBE: this link is a short probe.
    Probe,
}

impl Message {
    /// The message as the wire encodes it (borrowing from `self`).
    pub fn as_wire(&self) -> Membership<'_> {
        match self {
            Message::Join { addr } => Membership::Join { addr },
            Message::ForwardJoin { node, addr, ttl } => Membership::ForwardJoin {
                node: *node,
                addr,
                ttl: *ttl,
            },
            Message::Neighbour {
                addr,
                high_priority,
            } => Membership::Neighbour {
                addr,
                high_priority: *high_priority,
            },
            Message::NeighbourReply { accepted } => Membership::NeighbourReply {
                accepted: *accepted,
            },
            Message::Disconnect => Membership::Disconnect,
            Message::Shuffle { contacts } => Membership::Shuffle {
                contacts: ContactList::from_raw(contacts),
            },
            Message::ShuffleReply { contacts } => Membership::ShuffleReply {
                contacts: ContactList::from_raw(contacts),
            },
            Message::Probe => Membership::Probe,
        }
    }
}

/// What the state machine asks of its caller, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    /// Open a link to `addr`, then answer with [`State::dialled`] (the link, or `None` if it
    /// could not be opened). When the link is up, report it with
    /// [`handle_link_up`](State::handle_link_up).
    Dial {
        dial: DialId,
        addr: String,
        intent: Intent,
    },
    /// Send `message` to the neighbour `to` (over its direct link; drop it if there is none).
    Send { to: NodeKey, message: Message },
    /// Close the link to `peer` once what is queued on it has been sent.
    Close { peer: NodeKey, reason: CloseReason },
    /// A probe link is open (for the statistics).
    ProbeOpened,
    /// A probe showed a cut: its contact is asked to be a neighbour (for the statistics).
    ProbeKept,
    /// A dial another node's message asked for (a walk's end) was refused: over
    /// `remote_dial_rate` (for the statistics).
    DialRefused,
}

/// What a node knows of itself and of its caller, fixed at creation.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    /// This node.
    pub id: NodeId,
    /// Where this node can be dialled (sent in JOIN, NEIGHBOUR and shuffles).
    pub addr: Option<String>,
    /// Whether probes can see anything: they look through a broadcast tree's catch-up.
    pub probes: bool,
    /// Most contacts taken from one shuffle list.
    pub max_contacts: usize,
    /// Most dials in flight: the caller's cap on links (each dial is a link).
    pub max_dials: usize,
}

/// A neighbour: its ID and, when we know it, where it can be dialled (it gave the address in
/// JOIN or NEIGHBOUR, or we reached it there). Only a neighbour with an address can go to the
/// passive view or be passed on in a shuffle.
#[derive(Clone, Debug)]
struct Neighbour {
    id: NodeId,
    addr: Option<String>,
}

/// One dial in flight: asked for, and then bound to the caller's link.
#[derive(Clone, Debug)]
struct Dial<L> {
    id: DialId,
    /// `None` until the caller answers [`Out::Dial`].
    link: Option<L>,
    intent: Intent,
    /// The address we dial (a passive contact's, a walk's new node's): it stays the address
    /// of the node reached there through the probe or the NEIGHBOUR request that follows, and
    /// as a neighbour. Without it, a neighbour reached at a walk's end would have no address
    /// unless one was learnt recently, and so could never be shuffled or demoted to the
    /// passive view. A join contact's is not kept (`None`): everyone's bootstrap would spread
    /// through the shuffles into every passive view and draw refills and probes to itself (in
    /// the simulator, 30 nodes all broadcasting at once: rmr 0.5 to 1.2); it is known only if
    /// learnt otherwise.
    addr: Option<String>,
}

/// A probe of ours in progress.
#[derive(Clone, Debug)]
struct Probe<L> {
    node: NodeId,
    /// Its address (from the passive view), to put it back there.
    addr: Option<String>,
    link: L,
    until: Timestamp,
    /// Broadcasts the contact announced that we lacked then, and when.
    announced: Vec<(MessageId, Timestamp)>,
}

/// The membership state of one node. `L` is the caller's name for a link (the engine's
/// `LinkId`); the state machine only compares them.
#[derive(Debug)]
pub(crate) struct State<L> {
    cfg: MembershipConfig,
    local: Local,
    /// The active view: neighbours, by key.
    active: BTreeMap<NodeKey, Neighbour>,
    /// The passive view: contacts and their addresses.
    passive: BTreeMap<NodeKey, (NodeId, String)>,
    /// Dials in flight (at most `local.max_dials`).
    dials: Vec<Dial<L>>,
    /// Nodes we dialled and asked to be neighbours (NEIGHBOUR sent, no answer yet), with the
    /// address we reached them at: one that accepts is a neighbour at that address. At most
    /// one per link (`local.max_dials`); an entry goes with the answer or the link.
    asked: BTreeMap<NodeKey, String>,
    /// The addresses learnt last (from JOIN, NEIGHBOUR, the passive view), most recent at the
    /// back, at most [`RECENT_ADDRS`]: a node met again without an address in any record (our
    /// join contact, say) takes it from here.
    recent: VecDeque<(NodeKey, String)>,
    next_dial: u64,
    /// Addresses we joined through, for a last-resort rejoin (at most [`MAX_JOIN_CONTACTS`]).
    join_contacts: Vec<String>,
    /// A rotation in progress: when this node accepts, one neighbour is let go.
    rotating: Option<NodeKey>,
    /// Our probe in progress.
    probe: Option<Probe<L>>,
    /// Nodes probing us, with their links (at most [`MAX_PROBED_BY`]).
    probed_by: BTreeMap<NodeKey, L>,
    /// When a high-priority NEIGHBOUR last forced its way into the full active view.
    forced_at: Option<Timestamp>,
    /// Dials other nodes' messages may still make us open (`remote_dial_rate`).
    remote_dials: TokenBucket,
    /// Deadlines: the next shuffle, the next refill (while the active view is short).
    next_shuffle: Timestamp,
    refill_at: Timestamp,
    refill_backoff: Duration,
    out: Vec<Out>,
}

/// True with probability `p` (clamped to 0..=1).
fn happens<R: CryptoRng + ?Sized>(rng: &mut R, p: f64) -> bool {
    let threshold = (p.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u64;
    u64::from(rng.next_u32()) < threshold
}

/// A random item of `items`.
fn pick<T: Copy, R: CryptoRng + ?Sized>(rng: &mut R, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[(rng.next_u64() % items.len() as u64) as usize])
}

impl<L: Copy + Eq> State<L> {
    /// A node with empty views; its first shuffle is due `shuffle_interval` after `now`. An
    /// active view holds at least one neighbour, whatever `cfg.active` says.
    pub fn new(cfg: MembershipConfig, local: Local, now: Timestamp) -> Self {
        State {
            cfg: MembershipConfig {
                active: cfg.active.max(1),
                ..cfg
            },
            local,
            active: BTreeMap::new(),
            passive: BTreeMap::new(),
            dials: Vec::new(),
            asked: BTreeMap::new(),
            recent: VecDeque::new(),
            next_dial: 0,
            join_contacts: Vec::new(),
            rotating: None,
            probe: None,
            probed_by: BTreeMap::new(),
            forced_at: None,
            remote_dials: TokenBucket::full(&cfg.remote_dial_rate, now),
            next_shuffle: now.saturating_add(cfg.shuffle_interval),
            refill_at: now,
            refill_backoff: REFILL_BASE,
            out: Vec::new(),
        }
    }

    /// The outputs queued by the inputs so far, in order; carry them out in that order.
    pub fn take_out(&mut self) -> Vec<Out> {
        core::mem::take(&mut self.out)
    }

    /// Addresses held, all records together (for the tests of the bound).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.active.values().filter(|n| n.addr.is_some()).count()
            + self.passive.len()
            + self.dials.iter().filter(|d| d.addr.is_some()).count()
            + self.asked.len()
            + usize::from(self.probe.as_ref().is_some_and(|p| p.addr.is_some()))
            + self.recent.len()
    }

    /// The neighbours (the active view), in key order.
    pub fn active(&self) -> impl Iterator<Item = &NodeKey> {
        self.active.keys()
    }

    /// How many contacts the passive view holds.
    pub fn passive_len(&self) -> usize {
        self.passive.len()
    }

    /// Whether the link to `key` is a probe, ours or theirs. Probe links take no part in the
    /// broadcast tree, so closing them disturbs nothing, and what only the probed contact has
    /// stays missing and shows the cut.
    pub fn is_probe(&self, key: &NodeKey) -> bool {
        self.probe.as_ref().is_some_and(|p| p.node.key() == key) || self.probed_by.contains_key(key)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the next shuffle, the end of
    /// a probe, or (while the active view is short, no dial is in flight and there is someone
    /// to dial) the next refill. A few fields, no scan.
    pub fn poll_timeout(&self) -> Timestamp {
        let can_dial =
            !self.passive.is_empty() || (self.active.is_empty() && !self.join_contacts.is_empty());
        let refill = (self.active.len() < self.cfg.active && self.dials.is_empty() && can_dial)
            .then_some(self.refill_at);
        let next = refill.map_or(self.next_shuffle, |r| r.min(self.next_shuffle));
        self.probe.as_ref().map_or(next, |p| p.until.min(next))
    }

    /// The caller opened `link` to `contact` to join the overlay through it: JOIN goes out
    /// when the link is up, and `contact` is remembered for a last-resort rejoin. No output.
    pub fn handle_join(&mut self, link: L, contact: &str) {
        // Always room: the caller could open the link, and each dial is one of its links.
        if self.dials.len() < self.local.max_dials {
            let id = self.dial_id();
            self.dials.push(Dial {
                id,
                link: Some(link),
                intent: Intent::Join,
                // Not its address: see `Dial::addr`.
                addr: None,
            });
        }
        if !self.join_contacts.iter().any(|c| c == contact) {
            if self.join_contacts.len() >= MAX_JOIN_CONTACTS {
                self.join_contacts.remove(0);
            }
            self.join_contacts.push(String::from(contact));
        }
    }

    /// The caller's answer to [`Out::Dial`] `dial`: the link it opened, or `None` when it could
    /// not open one (the dial is forgotten).
    pub fn dialled(&mut self, dial: DialId, link: Option<L>) {
        match link {
            Some(link) => {
                if let Some(d) = self.dials.iter_mut().find(|d| d.id == dial) {
                    d.link = Some(link);
                }
            }
            None => self.dials.retain(|d| d.id != dial),
        }
    }

    /// A link to `peer` finished its handshake. If we dialled it, say why: JOIN, NEIGHBOUR, or
    /// PROBE (the probe starts now). `tree` lists the neighbours in the broadcast tree (a JOIN
    /// may evict one; those outside the tree go first). Call it before the link carries
    /// anything else, so a probe is known as one from the start; then carry out
    /// [`take_out`](Self::take_out).
    pub fn handle_link_up<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        tree: &[NodeKey],
        link: L,
        peer: NodeId,
    ) {
        let Some(i) = self.dials.iter().position(|d| d.link == Some(link)) else {
            return;
        };
        let key = *peer.key();
        let Dial { intent, addr, .. } = self.dials.remove(i);
        match intent {
            Intent::Join => {
                self.add_active(rng, tree, peer, None);
                let addr = self.my_addr();
                self.send(key, Message::Join { addr });
            }
            Intent::Neighbour { high } => {
                self.ask_neighbour(key, addr, high);
            }
            Intent::Rotate => self.ask_to_rotate(key, addr),
            Intent::Probe => {
                // The broadcast tree's catch-up announcements do the looking.
                self.probe = Some(Probe {
                    node: peer,
                    addr,
                    link,
                    until: now.saturating_add(self.cfg.probe_window),
                    announced: Vec::new(),
                });
                self.out.push(Out::ProbeOpened);
                self.send(key, Message::Probe);
            }
        }
    }

    /// `link` went away. `peer` is the node it led to (`None` if its handshake never finished:
    /// the address is dead); `still_linked` says whether another link to that node remains (a
    /// newer one replaced this). A lost neighbour leaves the active view, which is refilled.
    /// Then carry out [`take_out`](Self::take_out).
    pub fn handle_link_lost<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        link: L,
        peer: Option<NodeKey>,
        still_linked: bool,
    ) {
        let intent = self
            .dials
            .iter()
            .position(|d| d.link == Some(link))
            .map(|i| self.dials.remove(i).intent);
        self.probe.take_if(|p| p.link == link);
        self.probed_by.retain(|_, l| *l != link);
        if peer.is_none() && matches!(intent, Some(Intent::Neighbour { .. })) {
            // The contact is gone (it left the passive view when dialled): try the next one
            // now rather than after a backoff meant for refusals.
            self.refill_at = now;
        }
        if let Some(k) = peer
            && !still_linked
        {
            self.active.remove(&k);
            self.asked.remove(&k);
        }
        self.refill(now, rng);
    }

    /// Evidence for our probe: `from` announced broadcast `id`, which we lack (the caller
    /// reports every such announcement; those not from the probed contact are ignored). No
    /// output.
    pub fn handle_announced(&mut self, now: Timestamp, from: &NodeKey, id: MessageId) {
        if let Some(p) = self.probe.as_mut()
            && p.node.key() == from
            && p.announced.len() < PROBE_IDS
        {
            p.announced.push((id, now));
        }
    }

    /// A MEMBERSHIP message from the neighbour `from`, on `link`. `tree` lists the neighbours
    /// in the broadcast tree (taking a node in may evict one; those outside the tree go first).
    /// Then carry out [`take_out`](Self::take_out).
    pub fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        tree: &[NodeKey],
        link: L,
        from: NodeId,
        m: Membership<'_>,
    ) {
        let key = *from.key();
        match m {
            Membership::Join { addr } => {
                self.add_active(rng, tree, from, Some(addr));
                let ttl = self.cfg.active_walk;
                let others: Vec<NodeKey> =
                    self.active.keys().filter(|k| **k != key).copied().collect();
                for to in others {
                    let message = Message::ForwardJoin {
                        node: from,
                        addr: String::from(addr),
                        ttl,
                    };
                    self.send(to, message);
                }
            }
            Membership::ForwardJoin { node, addr, ttl } => {
                self.on_forward_join(now, rng, key, node, addr, ttl);
            }
            Membership::Neighbour {
                addr,
                high_priority,
            } => {
                // A high-priority request may force its way into a full view (evicting a
                // neighbour) at most once per shuffle interval: the paper accepts it always, so
                // a few identities asking with high priority could replace the whole view.
                let room = self.active.len() < self.cfg.active || self.active.contains_key(&key);
                let force = high_priority
                    && !room
                    && self.forced_at.is_none_or(|t| {
                        now.saturating_duration_since(t) >= self.cfg.shuffle_interval
                    });
                if force {
                    self.forced_at = Some(now);
                }
                let accepted = room || force;
                self.probed_by.remove(&key); // a probe that found a cut becomes a neighbour
                if accepted {
                    self.add_active(rng, tree, from, Some(addr));
                } else {
                    self.add_passive(rng, from, String::from(addr));
                }
                self.send(key, Message::NeighbourReply { accepted });
                if !accepted {
                    self.close(key, CloseReason::Refused);
                }
            }
            Membership::NeighbourReply { accepted } => {
                let rotation = self.rotating.take_if(|k| *k == key);
                let asked = self.asked.remove(&key);
                if accepted {
                    let addr = self
                        .active
                        .get(&key)
                        .and_then(|n| n.addr.clone())
                        .or(asked)
                        .or_else(|| self.recall(&key));
                    if rotation.is_some()
                        && let Some(victim) = self.eviction_victim(rng, tree)
                    {
                        // Let an old neighbour go; it keeps us in its passive view.
                        self.evict(rng, victim);
                    }
                    self.add_active(rng, tree, from, addr.as_deref());
                } else {
                    // Refused: back off before asking the next contact.
                    self.refill_backoff = self.refill_backoff.saturating_mul(2).min(REFILL_MAX);
                    self.refill_at = now.saturating_add(self.refill_backoff);
                    self.close(key, CloseReason::Rejected);
                }
            }
            Membership::Probe => {
                if self.probed_by.len() < MAX_PROBED_BY && !self.active.contains_key(&key) {
                    self.probed_by.insert(key, link);
                } else {
                    self.close(key, CloseReason::ProbeRefused);
                }
            }
            Membership::Disconnect => {
                self.demote(rng, key, from);
                self.close(key, CloseReason::Disconnected);
            }
            Membership::Shuffle { contacts } => {
                let reply = self.shuffle_sample(rng, false);
                self.integrate(rng, contacts);
                self.send(key, Message::ShuffleReply { contacts: reply });
            }
            Membership::ShuffleReply { contacts } => self.integrate(rng, contacts),
        }
    }

    /// Timers: the shuffle (and with it, by chance, a rotation or a probe), the end of our
    /// probe, the refill of a short active view. `arrived` says whether a broadcast has arrived
    /// by now (the caller's de-duplication set, read only), for the probe's verdict. Call it
    /// once [`poll_timeout`](Self::poll_timeout) has passed (earlier is harmless); then carry
    /// out [`take_out`](Self::take_out).
    pub fn handle_timeout<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        arrived: impl Fn(&MessageId) -> bool,
    ) {
        if now >= self.next_shuffle {
            let interval = self.cfg.shuffle_interval;
            self.next_shuffle = now
                .saturating_add(interval / 2)
                .saturating_add(random_delay(rng, interval));
            let active: Vec<NodeKey> = self.active.keys().copied().collect();
            if let Some(to) = pick(rng, &active) {
                let contacts = self.shuffle_sample(rng, true);
                self.send(to, Message::Shuffle { contacts });
            }
            self.maybe_rotate(rng);
            self.maybe_probe(rng);
        }
        self.end_probe(now, rng, arrived);
        self.refill(now, rng);
    }

    fn dial_id(&mut self) -> DialId {
        self.next_dial = self.next_dial.wrapping_add(1);
        DialId(self.next_dial)
    }

    fn my_addr(&self) -> String {
        self.local.addr.clone().unwrap_or_default()
    }

    fn send(&mut self, to: NodeKey, message: Message) {
        self.out.push(Out::Send { to, message });
    }

    fn close(&mut self, peer: NodeKey, reason: CloseReason) {
        self.out.push(Out::Close { peer, reason });
    }

    /// Asks the caller to dial `addr` (unless it is empty, or too many dials are in flight).
    /// The address goes with the dial: it is where the node that answers was reached.
    fn dial(&mut self, addr: &str, intent: Intent) {
        if addr.is_empty() || self.dials.len() >= self.local.max_dials {
            return;
        }
        let id = self.dial_id();
        self.dials.push(Dial {
            id,
            link: None,
            intent,
            addr: Some(String::from(addr)),
        });
        self.out.push(Out::Dial {
            dial: id,
            addr: String::from(addr),
            intent,
        });
    }

    /// A FORWARD_JOIN walk for `node` reached us from `from`. Where it ends, the new node is
    /// dialled, within `remote_dial_rate`.
    fn on_forward_join<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        from: NodeKey,
        node: NodeId,
        addr: &str,
        ttl: u8,
    ) {
        if node.key() == self.local.id.key() || node.validate().is_err() {
            return;
        }
        let known = self.active.contains_key(node.key());
        if ttl == 0 || self.active.len() <= 1 {
            // The walk ends here: the new node gets a place in our active view.
            if !known {
                self.remote_dial(now, addr);
            }
            return;
        }
        if ttl == self.cfg.passive_walk {
            self.add_passive(rng, node, String::from(addr));
        }
        let next: Vec<NodeKey> = self
            .active
            .keys()
            .filter(|k| **k != from && *k != node.key())
            .copied()
            .collect();
        match pick(rng, &next) {
            Some(to) => {
                let message = Message::ForwardJoin {
                    node,
                    addr: String::from(addr),
                    ttl: ttl - 1,
                };
                self.send(to, message);
            }
            None if !known => self.remote_dial(now, addr),
            None => {}
        }
    }

    /// Dials `addr` at another node's request (a walk's end: NEIGHBOUR with high priority),
    /// if `remote_dial_rate` allows; a refusal is reported ([`Out::DialRefused`]). Dials
    /// that could not be made anyway (no address, too many in flight) take no token.
    fn remote_dial(&mut self, now: Timestamp, addr: &str) {
        if addr.is_empty() || self.dials.len() >= self.local.max_dials {
            return;
        }
        if !self.remote_dials.take(&self.cfg.remote_dial_rate, now) {
            self.out.push(Out::DialRefused);
            return;
        }
        self.dial(addr, Intent::Neighbour { high: true });
    }

    /// Remembers the address of `key`, a passive contact we are asking to be a neighbour.
    fn remember_ask(&mut self, key: NodeKey, addr: Option<String>) {
        if let Some(addr) = addr
            && (self.asked.len() < self.local.max_dials || self.asked.contains_key(&key))
        {
            self.asked.insert(key, addr);
        }
    }

    /// Sends NEIGHBOUR to `key` (just linked; at `addr` if it came from the passive view).
    fn ask_neighbour(&mut self, key: NodeKey, addr: Option<String>, high_priority: bool) {
        self.remember_ask(key, addr);
        let addr = self.my_addr();
        self.send(
            key,
            Message::Neighbour {
                addr,
                high_priority,
            },
        );
    }

    /// Asks `key` (just linked, at `addr` if it came from the passive view) into our active
    /// view in place of one of our neighbours.
    fn ask_to_rotate(&mut self, key: NodeKey, addr: Option<String>) {
        self.rotating = Some(key);
        self.ask_neighbour(key, addr, true);
    }

    /// Takes `peer` into the active view, evicting a neighbour if it is full.
    fn add_active<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        tree: &[NodeKey],
        peer: NodeId,
        addr: Option<&str>,
    ) {
        let key = *peer.key();
        if let Some(a) = addr {
            self.learn(key, a);
        }
        self.passive.remove(&key);
        if let Some(n) = self.active.get_mut(&key) {
            if let Some(a) = addr {
                n.addr = Some(String::from(a));
            }
            return;
        }
        let addr = addr.map(String::from).or_else(|| self.recall(&key));
        self.refill_backoff = REFILL_BASE;
        if self.active.len() >= self.cfg.active
            && let Some(victim) = self.eviction_victim(rng, tree)
        {
            self.evict(rng, victim);
        }
        self.active.insert(key, Neighbour { id: peer, addr });
    }

    /// Remembers that `key` can be dialled at `addr` (among the [`RECENT_ADDRS`] last learnt).
    fn learn(&mut self, key: NodeKey, addr: &str) {
        self.recent.retain(|(k, _)| *k != key);
        if self.recent.len() >= RECENT_ADDRS {
            self.recent.pop_front();
        }
        self.recent.push_back((key, String::from(addr)));
    }

    /// The address last learnt for `key`, if it is still remembered.
    fn recall(&self, key: &NodeKey) -> Option<String> {
        self.recent
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, a)| a.clone())
    }

    /// A random neighbour to let go, preferring one whose link is not in the broadcast tree:
    /// evicting a tree link splits the tree until grafts mend it.
    fn eviction_victim<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        tree: &[NodeKey],
    ) -> Option<NodeKey> {
        let active: Vec<NodeKey> = self.active.keys().copied().collect();
        let outside: Vec<NodeKey> = active
            .iter()
            .filter(|k| !tree.contains(k))
            .copied()
            .collect();
        pick(
            rng,
            if outside.is_empty() {
                &active
            } else {
                &outside
            },
        )
    }

    /// Drops `victim` from the active view with DISCONNECT; it moves to the passive view.
    fn evict<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, victim: NodeKey) {
        if let Some(id) = self.active.get(&victim).map(|n| n.id) {
            self.demote(rng, victim, id);
        }
        self.send(victim, Message::Disconnect);
        self.close(victim, CloseReason::Evicted);
    }

    /// Moves `key` (node `id`) from the active view to the passive one, if its address is
    /// known (a node that is not a neighbour goes there too, if its address is remembered).
    fn demote<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, key: NodeKey, id: NodeId) {
        let addr = match self.active.remove(&key) {
            Some(n) => n.addr,
            None => self.asked.get(&key).cloned().or_else(|| self.recall(&key)),
        };
        if let Some(addr) = addr {
            self.add_passive(rng, id, addr);
        }
    }

    /// Puts `id` at `addr` in the passive view (not a neighbour, not without an address),
    /// dropping a random contact when it is full.
    fn add_passive<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, id: NodeId, addr: String) {
        let key = *id.key();
        if self.active.contains_key(&key) || addr.is_empty() {
            return;
        }
        if !self.passive.contains_key(&key) && self.passive.len() >= self.cfg.passive {
            let keys: Vec<NodeKey> = self.passive.keys().copied().collect();
            let Some(k) = pick(rng, &keys) else {
                return; // a passive view of size 0
            };
            self.passive.remove(&k);
        }
        self.passive.insert(key, (id, addr));
    }

    /// Puts a shuffle's contacts in the passive view.
    fn integrate<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, contacts: ContactList<'_>) {
        let me = *self.local.id.key();
        for c in contacts.iter().take(self.local.max_contacts) {
            if *c.node.key() != me && c.node.validate().is_ok() {
                self.add_passive(rng, c.node, String::from(c.addr));
            }
        }
    }

    /// A random sample of our views for a shuffle (ourselves first when `with_self`), encoded
    /// as a contact list.
    fn shuffle_sample<R: CryptoRng + ?Sized>(&self, rng: &mut R, with_self: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if with_self && let Some(addr) = self.local.addr.clone() {
            out.push((self.local.id, addr));
        }
        let active: Vec<(NodeId, String)> = self
            .active
            .values()
            .filter_map(|n| Some((n.id, n.addr.clone()?)))
            .collect();
        let passive: Vec<(NodeId, String)> = self.passive.values().cloned().collect();
        for (mut list, k) in [
            (active, self.cfg.shuffle_active),
            (passive, self.cfg.shuffle_passive),
        ] {
            for _ in 0..k.min(list.len()) {
                let i = (rng.next_u64() % list.len() as u64) as usize;
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

    /// Our probe's time is up: keep it (ask the contact to be a neighbour) if it showed a cut,
    /// else close it and put the contact back in the passive view.
    fn end_probe<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
        arrived: impl Fn(&MessageId) -> bool,
    ) {
        let Some(p) = self.probe.take_if(|p| p.until <= now) else {
            return;
        };
        let key = *p.node.key();
        let settled = now.saturating_sub(self.cfg.probe_window / 2);
        if p.announced
            .iter()
            .any(|(id, at)| *at <= settled && !arrived(id))
        {
            self.out.push(Out::ProbeKept);
            self.ask_to_rotate(key, p.addr);
            return;
        }
        // Nothing missing: back to the passive view, unless it became a neighbour meanwhile.
        if !self.active.contains_key(&key) {
            if let Some(addr) = p.addr {
                self.add_passive(rng, p.node, addr);
            }
            self.close(key, CloseReason::ProbeDone);
        }
    }

    /// With probability `probe`, opens a probe to a random passive contact (not while a dial,
    /// a rotation or another probe is under way).
    fn maybe_probe<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) {
        if !self.local.probes
            || self.probe.is_some()
            || !self.dials.is_empty()
            || self.rotating.is_some()
        {
            return;
        }
        if happens(rng, self.cfg.probe) {
            self.dial_passive(rng, Intent::Probe);
        }
    }

    /// With probability `rotate`, dials a random passive contact to replace a neighbour (only
    /// with a full active view, and not while a dial or another rotation is under way).
    fn maybe_rotate<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) {
        if self.active.len() < self.cfg.active || !self.dials.is_empty() || self.rotating.is_some()
        {
            return;
        }
        if happens(rng, self.cfg.rotate) {
            self.dial_passive(rng, Intent::Rotate);
        }
    }

    /// Dials a random passive contact when the active view is short and no dial is in flight
    /// (with high priority when no neighbour is left); or, with nobody left to ask at all,
    /// joins again through a remembered contact. Both wait for the backoff, except a
    /// high-priority ask.
    fn refill<R: CryptoRng + ?Sized>(&mut self, now: Timestamp, rng: &mut R) {
        let high = self.active.is_empty();
        if self.active.len() >= self.cfg.active
            || !self.dials.is_empty()
            || (now < self.refill_at && !high)
        {
            return;
        }
        if self.passive.is_empty() && high {
            // Nobody left to ask: join again through a remembered contact, with backoff.
            if now < self.refill_at || self.join_contacts.is_empty() {
                return;
            }
            let i = (rng.next_u64() % self.join_contacts.len() as u64) as usize;
            let addr = self.join_contacts[i].clone();
            self.refill_at = now.saturating_add(self.refill_backoff);
            self.refill_backoff = self.refill_backoff.saturating_mul(2).min(REFILL_MAX);
            self.dial(&addr, Intent::Join);
            return;
        }
        self.refill_at = now.saturating_add(self.refill_backoff);
        self.dial_passive(rng, Intent::Neighbour { high });
    }

    /// Takes a random contact out of the passive view and dials it with `intent`.
    fn dial_passive<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, intent: Intent) {
        let keys: Vec<NodeKey> = self.passive.keys().copied().collect();
        let Some(k) = pick(rng, &keys) else {
            return;
        };
        if let Some((_, addr)) = self.passive.remove(&k) {
            self.learn(k, &addr);
            self.dial(&addr, intent);
        }
    }
}

#[cfg(test)]
mod tests;
