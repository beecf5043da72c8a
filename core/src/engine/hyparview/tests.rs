//! The membership state machine on its own: no engine, no links, no crypto. Links are plain
//! numbers, the tree is a list the test writes, and every output is looked at.

use alloc::{format, string::String, vec, vec::Vec};
use core::time::Duration;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};

use super::*;
use crate::Identity;

const T0: Timestamp = Timestamp::from_secs(1_764_000_000);

/// A real (valid) node ID, the same for the same `i`.
fn node(i: u64) -> NodeId {
    let mut rng = ChaCha20Rng::seed_from_u64(1_000 + i);
    *Identity::generate(&mut rng, T0).node_id()
}

fn addr(i: u64) -> String {
    format!("sim://{i}")
}

/// One node's membership, driven by hand.
struct Node {
    s: State<u64>,
    rng: ChaCha20Rng,
    now: Timestamp,
    next_link: u64,
    /// The neighbours the broadcast tree uses, as the engine would report them.
    tree: Vec<NodeKey>,
}

impl Node {
    fn new(seed: u64) -> Self {
        Self::with(seed, MembershipConfig::default(), true)
    }

    fn with(seed: u64, cfg: MembershipConfig, probes: bool) -> Self {
        let local = Local {
            id: node(0),
            addr: Some(addr(0)),
            probes,
            max_contacts: 64,
            max_dials: 64,
        };
        Node {
            s: State::new(cfg, local, T0),
            rng: ChaCha20Rng::seed_from_u64(seed),
            now: T0,
            next_link: 100,
            tree: Vec::new(),
        }
    }

    fn out(&mut self) -> Vec<Out> {
        self.s.take_out()
    }

    /// An inbound link from `id` is up (we did not dial it).
    fn inbound(&mut self, id: NodeId) -> u64 {
        self.next_link += 1;
        let link = self.next_link;
        let tree = self.tree.clone();
        self.s
            .handle_link_up(self.now, &mut self.rng, &tree, link, id);
        link
    }

    fn msg(&mut self, link: u64, from: NodeId, m: Membership<'_>) -> Vec<Out> {
        let tree = self.tree.clone();
        self.s
            .handle_message(self.now, &mut self.rng, &tree, link, from, m);
        self.out()
    }

    /// A JOIN walk for node `who` (at its usual address) ends here, forwarded by node `from`
    /// on `link`.
    fn walk_ends(&mut self, link: u64, from: u64, who: u64) -> Vec<Out> {
        let a = addr(who);
        let fj = Membership::ForwardJoin {
            node: node(who),
            addr: &a,
            ttl: 0,
        };
        self.msg(link, node(from), fj)
    }

    /// Node `i` links in and asks to be a (low priority) neighbour; returns its link.
    fn neighbour(&mut self, i: u64) -> u64 {
        let link = self.inbound(node(i));
        let a = addr(i);
        let out = self.msg(
            link,
            node(i),
            Membership::Neighbour {
                addr: &a,
                high_priority: false,
            },
        );
        assert_eq!(out, vec![reply(i, true)], "neighbour {i}");
        link
    }

    /// Answers every dial in `out` with a fresh link; returns (link, address, intent) of each.
    fn answer(&mut self, out: &[Out]) -> Vec<(u64, String, Intent)> {
        let mut dials = Vec::new();
        for o in out {
            if let Out::Dial { dial, addr, intent } = o {
                self.next_link += 1;
                self.s.dialled(*dial, Some(self.next_link));
                dials.push((self.next_link, addr.clone(), *intent));
            }
        }
        dials
    }

    fn lost(&mut self, link: u64, peer: Option<NodeId>) -> Vec<Out> {
        let key = peer.map(|p| *p.key());
        self.s
            .handle_link_lost(self.now, &mut self.rng, link, key, false);
        self.out()
    }

    fn timeout(&mut self, arrived: &[MessageId]) -> Vec<Out> {
        self.s
            .handle_timeout(self.now, &mut self.rng, |id| arrived.contains(id));
        self.out()
    }

    fn active(&self) -> Vec<NodeKey> {
        self.s.active().copied().collect()
    }

    fn in_passive(&self, i: u64) -> bool {
        self.s.passive.contains_key(node(i).key())
    }

    /// Puts node `i` in the passive view as a shuffle would.
    fn learn(&mut self, i: u64) {
        self.s.add_passive(&mut self.rng, node(i), addr(i));
    }
}

fn key(i: u64) -> NodeKey {
    *node(i).key()
}

fn reply(i: u64, accepted: bool) -> Out {
    Out::Send {
        to: key(i),
        message: Message::NeighbourReply { accepted },
    }
}

fn dials(out: &[Out]) -> Vec<(String, Intent)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Dial { addr, intent, .. } => Some((addr.clone(), *intent)),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Out]) -> Vec<(NodeKey, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

fn closed(out: &[Out]) -> Vec<(NodeKey, CloseReason)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Close { peer, reason } => Some((*peer, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_node_sends_join_once_linked_to_its_contact() {
    let mut n = Node::new(1);
    n.s.handle_join(7, &addr(9));
    n.s.handle_link_up(n.now, &mut n.rng, &[], 7, node(9));
    assert_eq!(n.active(), vec![key(9)]);
    assert_eq!(
        sent(&n.out()),
        vec![(key(9), Message::Join { addr: addr(0) })]
    );
}

#[test]
fn a_contact_takes_the_joiner_and_starts_a_walk_through_each_other_neighbour() {
    let mut n = Node::new(2);
    for i in 1..=3 {
        n.neighbour(i);
    }
    let link = n.inbound(node(9));
    let a = addr(9);
    let out = n.msg(link, node(9), Membership::Join { addr: &a });
    assert!(n.active().contains(&key(9)));
    let walks: Vec<NodeKey> = sent(&out)
        .into_iter()
        .map(|(to, m)| {
            assert_eq!(
                m,
                Message::ForwardJoin {
                    node: node(9),
                    addr: addr(9),
                    ttl: 6
                }
            );
            to
        })
        .collect();
    assert_eq!(walks.len(), 3);
    for i in 1..=3 {
        assert!(walks.contains(&key(i)));
    }
}

#[test]
fn a_walk_ends_in_an_active_slot_and_leaves_the_node_passive_on_the_way() {
    // At step `passive_walk` (3) the joiner goes in the passive view and the walk goes on to a
    // neighbour other than the sender.
    let mut n = Node::new(3);
    let l1 = n.neighbour(1);
    n.neighbour(2);
    let a = addr(9);
    let fj = |ttl| Membership::ForwardJoin {
        node: node(9),
        addr: &a,
        ttl,
    };
    let out = n.msg(l1, node(1), fj(3));
    assert!(n.in_passive(9));
    assert_eq!(
        sent(&out),
        vec![(
            key(2),
            Message::ForwardJoin {
                node: node(9),
                addr: addr(9),
                ttl: 2
            }
        )]
    );
    // Other steps only pass it on.
    let mut m = Node::new(3);
    let l1 = m.neighbour(1);
    m.neighbour(2);
    m.msg(l1, node(1), fj(4));
    assert!(!m.in_passive(9));

    // The last step dials the joiner for an active slot, with high priority.
    let out = n.msg(l1, node(1), fj(0));
    assert_eq!(
        dials(&out),
        vec![(addr(9), Intent::Neighbour { high: true })]
    );
    let (link, ..) = n.answer(&out)[0].clone();
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(9));
    assert_eq!(
        sent(&n.out()),
        vec![(
            key(9),
            Message::Neighbour {
                addr: addr(0),
                high_priority: true
            }
        )]
    );
    // It accepts: a neighbour now, out of the passive view.
    n.msg(link, node(9), Membership::NeighbourReply { accepted: true });
    assert!(n.active().contains(&key(9)));
    assert!(!n.in_passive(9));

    // A node with a single neighbour ends the walk whatever the steps left.
    let mut lone = Node::new(3);
    let l1 = lone.neighbour(1);
    let out = lone.msg(l1, node(1), fj(5));
    assert_eq!(
        dials(&out),
        vec![(addr(9), Intent::Neighbour { high: true })]
    );
}

#[test]
fn a_full_active_view_evicts_a_neighbour_outside_the_tree() {
    for seed in 0..20 {
        let mut n = Node::new(seed);
        for i in 1..=5 {
            n.neighbour(i);
        }
        // Every neighbour but 4 carries the tree.
        n.tree = vec![key(1), key(2), key(3), key(5)];
        let link = n.inbound(node(9));
        let a = addr(9);
        let out = n.msg(link, node(9), Membership::Join { addr: &a });
        assert_eq!(
            closed(&out),
            vec![(key(4), CloseReason::Evicted)],
            "seed {seed}"
        );
        assert_eq!(sent(&out)[0], (key(4), Message::Disconnect));
        assert_eq!(n.active().len(), 5);
        assert!(!n.active().contains(&key(4)));
        assert!(n.in_passive(4), "the evicted node stays a contact");
    }
    // With every neighbour in the tree, any may go.
    let mut n = Node::new(1);
    for i in 1..=5 {
        n.neighbour(i);
    }
    n.tree = (1..=5).map(key).collect();
    let link = n.inbound(node(9));
    let out = n.msg(
        link,
        node(9),
        Membership::Neighbour {
            addr: &addr(9),
            high_priority: true,
        },
    );
    assert_eq!(closed(&out).len(), 1);
    assert_eq!(out.last(), Some(&reply(9, true)));
}

#[test]
fn a_full_active_view_refuses_low_priority_and_keeps_the_asker_as_a_contact() {
    let mut n = Node::new(4);
    for i in 1..=5 {
        n.neighbour(i);
    }
    let link = n.inbound(node(9));
    let out = n.msg(
        link,
        node(9),
        Membership::Neighbour {
            addr: &addr(9),
            high_priority: false,
        },
    );
    assert_eq!(
        out,
        vec![
            reply(9, false),
            Out::Close {
                peer: key(9),
                reason: CloseReason::Refused
            }
        ]
    );
    assert!(n.in_passive(9));
}

#[test]
fn a_failed_neighbour_is_replaced_from_the_passive_view() {
    let mut n = Node::new(5);
    let l1 = n.neighbour(1);
    n.neighbour(2);
    for i in 10..13 {
        n.learn(i);
    }
    let out = n.lost(l1, Some(node(1)));
    assert_eq!(n.active(), vec![key(2)]);
    let d = dials(&out);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1, Intent::Neighbour { high: false });
    let first = d[0].0.clone();
    assert!((10..13).any(|i| addr(i) == first));
    assert_eq!(
        n.s.passive_len(),
        2,
        "the dialled contact left the passive view"
    );
    let (link, ..) = n.answer(&out)[0].clone();

    // A dead contact (its link fails before the handshake) is skipped at once.
    let out = n.lost(link, None);
    let d = dials(&out);
    assert_eq!(d.len(), 1, "{out:?}");
    assert_ne!(d[0].0, first);
    let (link, a, _) = n.answer(&out)[0].clone();
    let i: u64 = a.strip_prefix("sim://").unwrap().parse().unwrap();

    // A refusal backs off: no new dial until the backoff has passed.
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(i));
    n.out();
    let out = n.msg(
        link,
        node(i),
        Membership::NeighbourReply { accepted: false },
    );
    assert_eq!(closed(&out), vec![(key(i), CloseReason::Rejected)]);
    let out = n.lost(link, Some(node(i)));
    assert!(dials(&out).is_empty(), "{out:?}");
    let wake = n.s.poll_timeout();
    assert_eq!(wake, n.now.saturating_add(Duration::from_secs(1)));
    n.now = wake;
    let out = n.timeout(&[]);
    assert_eq!(dials(&out).len(), 1, "{out:?}");
}

#[test]
fn a_node_left_alone_asks_with_high_priority() {
    let mut n = Node::new(6);
    let l1 = n.neighbour(1);
    n.learn(10);
    let out = n.lost(l1, Some(node(1)));
    assert_eq!(
        dials(&out),
        vec![(addr(10), Intent::Neighbour { high: true })]
    );
    let (link, ..) = n.answer(&out)[0].clone();
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(10));
    assert_eq!(
        sent(&n.out()),
        vec![(
            key(10),
            Message::Neighbour {
                addr: addr(0),
                high_priority: true
            }
        )]
    );
}

#[test]
fn a_node_with_nobody_left_joins_again_through_its_contact_with_backoff() {
    let mut n = Node::new(7);
    n.s.handle_join(7, &addr(9));
    n.s.handle_link_up(n.now, &mut n.rng, &[], 7, node(9));
    n.out();
    let out = n.lost(7, Some(node(9)));
    assert_eq!(n.s.passive_len(), 0);
    assert_eq!(dials(&out), vec![(addr(9), Intent::Join)]);
    let (link, ..) = n.answer(&out)[0].clone();
    // The contact is down too: the next rejoin waits for the backoff (0.5 s, then 1 s, …).
    let out = n.lost(link, None);
    assert!(dials(&out).is_empty());
    assert_eq!(
        n.s.poll_timeout(),
        n.now.saturating_add(Duration::from_millis(500))
    );
    n.now = n.s.poll_timeout();
    let out = n.timeout(&[]);
    assert_eq!(dials(&out), vec![(addr(9), Intent::Join)]);
    let (link, ..) = n.answer(&out)[0].clone();
    n.lost(link, None);
    assert_eq!(
        n.s.poll_timeout(),
        n.now.saturating_add(Duration::from_secs(1))
    );
}

#[test]
fn a_node_that_comes_back_without_its_address_has_the_one_last_learnt() {
    // Node 9 was a neighbour (it gave its address), then its link failed.
    let mut n = Node::new(17);
    let l9 = n.neighbour(9);
    n.lost(l9, Some(node(9)));
    assert!(n.active().is_empty());
    // It rejoins; a walk for it ends here, and it accepts our NEIGHBOUR. It did not give its
    // address, but we remember it: it can go to the passive view, and into shuffles.
    let l1 = n.neighbour(1);
    let out = n.walk_ends(l1, 1, 9);
    let (link, ..) = n.answer(&out)[0].clone();
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(9));
    n.msg(link, node(9), Membership::NeighbourReply { accepted: true });
    assert_eq!(n.s.active[&key(9)].addr, Some(addr(9)));
    n.msg(link, node(9), Membership::Disconnect);
    assert!(n.in_passive(9));
}

#[test]
fn join_contacts_are_capped() {
    let mut n = Node::new(8);
    for i in 0..10 {
        n.s.handle_join(i, &addr(i));
    }
    assert_eq!(n.s.join_contacts.len(), MAX_JOIN_CONTACTS);
    assert_eq!(n.s.join_contacts[0], addr(6), "the oldest go first");
}

#[test]
fn shuffles_exchange_samples_of_both_views() {
    let cfg = MembershipConfig {
        probe: 0.0,
        ..MembershipConfig::default()
    };
    let mut n = Node::with(9, cfg, true);
    let l1 = n.neighbour(1);
    for i in 10..20 {
        n.learn(i);
    }
    // (The short active view is refilled at the same time: a dial goes out too.)
    n.now = n.s.next_shuffle;
    let out = n.timeout(&[]);
    let shuffles = sent(&out);
    let [(to, Message::Shuffle { contacts })] = &shuffles[..] else {
        panic!("{out:?}");
    };
    assert_eq!(*to, key(1));
    let list: Vec<(NodeId, String)> = ContactList::from_raw(contacts)
        .iter()
        .map(|c| (c.node, String::from(c.addr)))
        .collect();
    // Ourselves first, our one neighbour, four passive contacts.
    assert_eq!(list[0], (node(0), addr(0)));
    assert_eq!(list[1], (node(1), addr(1)));
    assert_eq!(list.len(), 6);
    assert!(n.s.poll_timeout() > n.now, "the next shuffle is scheduled");

    // A shuffle received: answered with our sample; its contacts join the passive view, but
    // not ourselves nor a neighbour.
    let mut raw = Vec::new();
    let theirs = [(node(0), addr(0)), (node(1), addr(1)), (node(30), addr(30))];
    ContactList::encode(
        theirs.iter().map(|(id, a)| Contact { node: *id, addr: a }),
        &mut raw,
    );
    let out = n.msg(
        l1,
        node(1),
        Membership::Shuffle {
            contacts: ContactList::from_raw(&raw),
        },
    );
    assert!(matches!(
        &sent(&out)[..],
        [(to, Message::ShuffleReply { .. })] if *to == key(1)
    ));
    assert!(n.in_passive(30));
    assert!(!n.s.passive.contains_key(node(0).key()));
    assert!(!n.in_passive(1));
}

/// A node with a full active view and one passive contact (node 20), which its next shuffle
/// probes.
fn probing() -> (Node, u64) {
    let cfg = MembershipConfig {
        probe: 1.0,
        ..MembershipConfig::default()
    };
    let mut n = Node::with(10, cfg, true);
    for i in 1..=5 {
        n.neighbour(i);
    }
    n.learn(20);
    n.now = n.s.poll_timeout();
    let out = n.timeout(&[]);
    assert_eq!(dials(&out), vec![(addr(20), Intent::Probe)]);
    let (link, ..) = n.answer(&out)[0].clone();
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(20));
    let out = n.out();
    assert_eq!(
        out,
        vec![
            Out::ProbeOpened,
            Out::Send {
                to: key(20),
                message: Message::Probe
            }
        ]
    );
    assert!(n.s.is_probe(&key(20)));
    (n, link)
}

#[test]
fn a_probe_that_shows_a_missing_broadcast_is_kept() {
    let (mut n, link) = probing();
    let missing = MessageId([7; 16]);
    n.s.handle_announced(n.now, &key(20), missing);
    n.now = n.now.saturating_add(Duration::from_secs(1));
    let out = n.timeout(&[]);
    assert_eq!(out[0], Out::ProbeKept);
    assert_eq!(
        sent(&out),
        vec![(
            key(20),
            Message::Neighbour {
                addr: addr(0),
                high_priority: true
            }
        )]
    );
    // Accepted: a neighbour now, in place of one outside the tree.
    n.tree = vec![key(1), key(2), key(4), key(5)];
    let out = n.msg(
        link,
        node(20),
        Membership::NeighbourReply { accepted: true },
    );
    assert_eq!(closed(&out), vec![(key(3), CloseReason::Evicted)]);
    assert!(n.active().contains(&key(20)));
    assert_eq!(n.active().len(), 5);
}

#[test]
fn a_probe_that_shows_nothing_missing_is_closed() {
    let (mut n, _) = probing();
    let id = MessageId([8; 16]);
    n.s.handle_announced(n.now, &key(20), id);
    n.now = n.now.saturating_add(Duration::from_secs(1));
    // The announced broadcast arrived meanwhile.
    let out = n.timeout(&[id]);
    assert_eq!(closed(&out), vec![(key(20), CloseReason::ProbeDone)]);
    assert!(!n.s.is_probe(&key(20)));
    assert!(n.in_passive(20), "back to the passive view");
    assert!(!n.active().contains(&key(20)));
}

#[test]
fn a_broadcast_announced_too_late_in_the_window_does_not_keep_a_probe() {
    let (mut n, _) = probing();
    n.now = n.now.saturating_add(Duration::from_millis(700));
    n.s.handle_announced(n.now, &key(20), MessageId([9; 16]));
    n.now = n.now.saturating_add(Duration::from_millis(300));
    let out = n.timeout(&[]);
    assert_eq!(closed(&out), vec![(key(20), CloseReason::ProbeDone)]);
}

#[test]
fn no_probes_without_a_tree_to_look_through() {
    let cfg = MembershipConfig {
        probe: 1.0,
        ..MembershipConfig::default()
    };
    let mut n = Node::with(11, cfg, false);
    for i in 1..=5 {
        n.neighbour(i);
    }
    n.learn(20);
    n.now = n.s.poll_timeout();
    assert!(dials(&n.timeout(&[])).is_empty());
}

#[test]
fn probes_served_are_capped() {
    let mut n = Node::new(12);
    let links: Vec<u64> = (1..=5).map(|i| n.inbound(node(i))).collect();
    for (i, link) in (1..=5).zip(&links) {
        let out = n.msg(*link, node(i), Membership::Probe);
        if i <= 4 {
            assert!(out.is_empty());
            assert!(n.s.is_probe(&key(i)));
        } else {
            assert_eq!(closed(&out), vec![(key(i), CloseReason::ProbeRefused)]);
        }
    }
    // A probe link that goes frees its place.
    n.lost(links[0], Some(node(1)));
    assert!(!n.s.is_probe(&key(1)));
    let link = n.inbound(node(6));
    assert!(n.msg(link, node(6), Membership::Probe).is_empty());
}

#[test]
fn a_disconnect_moves_the_neighbour_to_the_passive_view() {
    let mut n = Node::new(13);
    let l1 = n.neighbour(1);
    let out = n.msg(l1, node(1), Membership::Disconnect);
    assert_eq!(closed(&out), vec![(key(1), CloseReason::Disconnected)]);
    assert!(n.active().is_empty());
    assert!(n.in_passive(1));
}

#[test]
fn the_passive_view_is_capped() {
    let mut n = Node::new(14);
    for i in 1..200 {
        n.learn(i);
    }
    assert_eq!(n.s.passive_len(), 60);
}

#[test]
fn dials_are_capped_and_forgotten_when_they_cannot_be_made() {
    let local = Local {
        id: node(0),
        addr: Some(addr(0)),
        probes: false,
        max_contacts: 64,
        max_dials: 2,
    };
    let mut s: State<u64> = State::new(MembershipConfig::default(), local, T0);
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let l1 = 1;
    s.handle_link_up(T0, &mut rng, &[], l1, node(1));
    s.handle_message(
        T0,
        &mut rng,
        &[],
        l1,
        node(1),
        Membership::Neighbour {
            addr: &addr(1),
            high_priority: false,
        },
    );
    s.take_out();
    for i in 10..14 {
        let a = addr(i);
        let fj = Membership::ForwardJoin {
            node: node(i),
            addr: &a,
            ttl: 0,
        };
        s.handle_message(T0, &mut rng, &[], l1, node(1), fj);
    }
    let out = s.take_out();
    assert_eq!(dials(&out).len(), 2, "{out:?}");
    assert_eq!(s.dials.len(), 2);
    // The caller could not open them: forgotten, and the deadline shows nothing in flight.
    for o in &out {
        if let Out::Dial { dial, .. } = o {
            s.dialled(*dial, None);
        }
    }
    assert!(s.dials.is_empty());
}

/// A node ID that is never validated (membership checks IDs only in walks and shuffles).
fn fake(i: u64) -> NodeId {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_be_bytes());
    NodeId::from_parts(NodeKey(k), 0)
}

#[test]
fn addresses_are_bounded_by_the_views() {
    let cfg = MembershipConfig::default();
    let mut n = Node::new(16);
    let mut gone = Vec::new();
    // Hundreds of nodes pass through: each asks in with high priority (a neighbour is evicted
    // to the passive view to make room), and every third one's link then fails.
    for i in 1..400u64 {
        // One forced entry per shuffle interval is what a high-priority request may take.
        n.now = n.now.saturating_add(cfg.shuffle_interval);
        let id = fake(i);
        let link = n.inbound(id);
        let a = addr(i);
        n.msg(
            link,
            id,
            Membership::Neighbour {
                addr: &a,
                high_priority: true,
            },
        );
        if i % 3 == 0 {
            // Its refill dial cannot be made (no room for a link).
            for o in n.lost(link, Some(id)) {
                if let Out::Dial { dial, .. } = o {
                    n.s.dialled(dial, None);
                }
            }
            gone.push(*id.key());
        }
    }
    // Nothing is in flight: the views' addresses, and the last ones learnt.
    let held = n.s.addresses();
    assert_eq!(n.s.recent.len(), RECENT_ADDRS);
    assert_eq!(
        held,
        n.s.active.len() + n.s.passive_len() + RECENT_ADDRS,
        "{held} addresses held"
    );
    assert!(held <= cfg.active + cfg.passive + RECENT_ADDRS);
    for k in gone {
        assert!(!n.s.active.contains_key(&k) && !n.s.passive.contains_key(&k));
    }
}

#[test]
fn finding_10_high_priority_requests_force_their_way_in_at_most_once_per_shuffle_interval() {
    let cfg = MembershipConfig::default();
    let mut n = Node::new(17);
    // Fill the active view.
    for i in 1..=cfg.active as u64 {
        let id = fake(i);
        let link = n.inbound(id);
        let a = addr(i);
        n.msg(
            link,
            id,
            Membership::Neighbour {
                addr: &a,
                high_priority: false,
            },
        );
    }
    let full: Vec<NodeKey> = n.s.active().copied().collect();
    assert_eq!(full.len(), cfg.active);
    // A crowd of fresh identities asks with high priority at once: one gets in.
    let mut accepted = 0;
    for i in 100..120u64 {
        let id = fake(i);
        let link = n.inbound(id);
        let a = addr(i);
        n.msg(
            link,
            id,
            Membership::Neighbour {
                addr: &a,
                high_priority: true,
            },
        );
        if n.s.active().any(|k| k == id.key()) {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
    let kept = full
        .iter()
        .filter(|k| n.s.active().any(|a| a == *k))
        .count();
    assert_eq!(kept, cfg.active - 1, "one neighbour evicted, not the view");
    // A shuffle interval later, one more may.
    n.now = n.now.saturating_add(cfg.shuffle_interval);
    let id = fake(200);
    let link = n.inbound(id);
    let a = addr(200);
    n.msg(
        link,
        id,
        Membership::Neighbour {
            addr: &a,
            high_priority: true,
        },
    );
    assert!(n.s.active().any(|k| k == id.key()));
}

#[test]
fn a_neighbour_reached_at_a_walks_end_keeps_the_address_it_was_dialled_at() {
    // A walk for node 9, never seen before, ends here: we dial it, it accepts.
    let mut n = Node::new(18);
    let l1 = n.neighbour(1);
    let out = n.walk_ends(l1, 1, 9);
    let (link, ..) = n.answer(&out)[0].clone();
    n.s.handle_link_up(n.now, &mut n.rng, &[], link, node(9));
    n.out();
    n.s.recent.clear(); // nothing learnt recently: the dial alone must tell the address
    n.msg(link, node(9), Membership::NeighbourReply { accepted: true });
    assert_eq!(n.s.active[&key(9)].addr, Some(addr(9)));
    // So it can be shuffled and demoted.
    n.msg(link, node(9), Membership::Disconnect);
    assert!(n.in_passive(9));
}

#[test]
fn finding_10_join_and_forward_join_cannot_make_a_node_dial_at_will() {
    let cfg = MembershipConfig::default();
    let rate = cfg.remote_dial_rate;
    let mut n = Node::new(20);
    // One neighbour: every walk ends here. It is hostile, and names a fresh address in each
    // FORWARD_JOIN; no dial can be opened, so dials in flight never reach the link cap.
    let l1 = n.neighbour(1);
    n.learn(2);
    let walk = |n: &mut Node, i: u64| {
        let out = n.walk_ends(l1, 1, i);
        for o in &out {
            if let Out::Dial { dial, .. } = o {
                n.s.dialled(*dial, None);
            }
        }
        out
    };
    let (mut dialled, mut refused) = (0, 0);
    for i in 100..140u64 {
        let out = walk(&mut n, i);
        dialled += dials(&out).len();
        refused += out.iter().filter(|o| **o == Out::DialRefused).count();
    }
    assert_eq!(dialled, rate.burst as usize, "a burst, then the rate");
    assert_eq!(refused, 40 - rate.burst as usize, "every refusal reported");
    // A second later, the rate's worth more.
    n.now = n.now.saturating_add(Duration::from_secs(1));
    let more: usize = (140..160u64).map(|i| dials(&walk(&mut n, i)).len()).sum();
    assert_eq!(more, rate.per_second as usize);

    // JOIN makes the contact dial nothing itself: it forwards walks, each limited where it ends.
    let joiner = node(7);
    let lj = n.inbound(joiner);
    let a = addr(7);
    let out = n.msg(lj, joiner, Membership::Join { addr: &a });
    assert!(dials(&out).is_empty());

    // The node's own dials are not limited: with the bucket empty, a lost neighbour is
    // replaced from the passive view at once.
    let out = n.lost(l1, Some(node(1)));
    let out = [out, n.lost(lj, Some(joiner))].concat();
    assert_eq!(dials(&out).len(), 1, "{out:?}");
}
