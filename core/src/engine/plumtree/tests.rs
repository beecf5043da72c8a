//! The tree on its own: inputs in, events out, no engine.

use alloc::{vec, vec::Vec};
use core::time::Duration;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};

use super::*;
use crate::wire::Route;

const T0: Timestamp = Timestamp::from_secs(1_764_000_000);

fn key(i: u8) -> NodeKey {
    NodeKey([i; 32])
}

fn id(i: u8) -> MessageId {
    MessageId([i; 16])
}

fn at(ms: u64) -> Timestamp {
    T0.saturating_add(Duration::from_millis(ms))
}

/// Live neighbours `keys` (none a probe), sorted as the engine gives them.
fn live(keys: &[u8]) -> Vec<Neighbour> {
    let mut n: Vec<Neighbour> = keys.iter().map(|&i| peer(i)).collect();
    n.sort_by_key(|n| n.key);
    n
}

fn peer(i: u8) -> Neighbour {
    Neighbour {
        key: key(i),
        probe: false,
    }
}

fn probe(i: u8) -> Neighbour {
    Neighbour {
        key: key(i),
        probe: true,
    }
}

fn broadcast(i: u8, hops: u8) -> Broadcast<'static> {
    Broadcast {
        route: Route {
            id: id(i),
            timestamp: T0.as_millis(),
            ttl_ms: 60_000,
            hops,
            hop_limit: 32,
        },
        origin: None,
        payload: b"payload",
        signature: None,
    }
}

fn drain(tree: &mut PlumTree) -> Vec<OutEvent> {
    core::iter::from_fn(|| tree.poll()).collect()
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(1)
}

/// A tree whose link to `parent` is live and in the tree.
fn with_parent(cfg: TreeConfig, parent: u8) -> PlumTree {
    let mut tree = PlumTree::new(cfg, 64);
    tree.handle_shortcut(peer(parent));
    assert!(drain(&mut tree).is_empty());
    tree
}

/// The first copy of broadcast `i` (at `hops`) from `from`, forwarded to `neighbours`.
fn receive(tree: &mut PlumTree, now: Timestamp, from: u8, i: u8, hops: u8, neighbours: &[u8]) {
    tree.handle_first_copy(now, peer(from), &id(i));
    let b = broadcast(i, hops);
    tree.handle_broadcast(
        now,
        &b,
        Some(key(from)),
        &[key(from)],
        &live(neighbours),
        &mut rng(),
    );
}

/// The announcements among `events`, one (neighbour, ids) per IHAVE record.
fn ihaves(events: &[OutEvent]) -> Vec<(NodeKey, Vec<(MessageId, u8)>)> {
    events
        .iter()
        .filter_map(|e| match e {
            OutEvent::IHave { to, ids } => Some((*to, ids.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn links_start_lazy_and_the_first_announcement_is_grafted_at_once() {
    let mut tree = PlumTree::new(TreeConfig::default(), 64);
    let n = live(&[1, 2]);
    tree.handle_ihave(T0, peer(1), id(7), 1, false, &n);
    assert_eq!(
        drain(&mut tree),
        vec![
            OutEvent::Announced {
                from: key(1),
                id: id(7)
            },
            OutEvent::Graft {
                to: key(1),
                id: id(7)
            },
        ]
    );
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(1)]);
    // Now a tree link is live: the next announcement waits for the tree.
    tree.handle_ihave(T0, peer(2), id(8), 1, false, &n);
    assert_eq!(
        drain(&mut tree),
        vec![OutEvent::Announced {
            from: key(2),
            id: id(8)
        }]
    );
    let wait = TreeConfig::default().graft_timeout;
    // The first graft's retry (graft_retry) comes first, then the new one's timer.
    assert_eq!(tree.poll_timeout(), Some(at(100)));
    tree.handle_timeout(at(100), &n);
    assert!(
        drain(&mut tree).is_empty(),
        "no other announcer to retry with"
    );
    assert_eq!(tree.poll_timeout(), Some(T0.saturating_add(wait)));
    tree.handle_timeout(T0.saturating_add(wait), &n);
    assert_eq!(
        drain(&mut tree),
        vec![OutEvent::Graft {
            to: key(2),
            id: id(8)
        }]
    );
}

#[test]
fn an_own_broadcast_with_no_tree_link_goes_in_full_to_one_neighbour() {
    let mut tree = PlumTree::new(TreeConfig::default(), 64);
    let n = live(&[1, 2, 3]);
    tree.handle_broadcast(T0, &broadcast(1, 1), None, &[], &n, &mut rng());
    let out = drain(&mut tree);
    let pushed: Vec<NodeKey> = out
        .iter()
        .filter_map(|e| match e {
            OutEvent::Push { to } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(pushed.len(), 1);
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), pushed);
    let announced: usize = ihaves(&out).iter().map(|(_, ids)| ids.len()).sum();
    assert_eq!(announced, 2);
    // The next one follows the tree link.
    tree.handle_broadcast(at(1000), &broadcast(2, 1), None, &[], &n, &mut rng());
    let out = drain(&mut tree);
    assert!(out.contains(&OutEvent::Push { to: pushed[0] }));
}

#[test]
fn the_graft_timeout_adapts_to_how_late_tree_copies_come() {
    let cfg = TreeConfig {
        graft_timeout_max: Duration::from_secs(2),
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    let n = live(&[1, 2]);
    // No sample yet: the shortest wait.
    tree.handle_ihave(T0, peer(2), id(1), 1, false, &n);
    assert_eq!(tree.poll_timeout(), Some(at(200)));
    // The tree copy comes 300 ms after the IHAVE: mean 300, deviation 150.
    receive(&mut tree, at(300), 1, 1, 2, &[1, 2]);
    assert_eq!(tree.poll_timeout(), None);
    drain(&mut tree);
    tree.handle_ihave(at(1000), peer(2), id(2), 1, false, &n);
    assert_eq!(tree.poll_timeout(), Some(at(1000 + 300 + 4 * 150)));
    // Within the bounds: the default maximum is 500 ms.
    let mut tree = with_parent(TreeConfig::default(), 1);
    tree.handle_ihave(T0, peer(2), id(1), 1, false, &n);
    receive(&mut tree, at(300), 1, 1, 2, &[1, 2]);
    tree.handle_ihave(at(1000), peer(2), id(2), 1, false, &n);
    assert_eq!(tree.poll_timeout(), Some(at(1500)));
}

/// A tree whose link to 1 is in the tree, which grafted broadcast 1 from 2 (announced at
/// `T0`, no tree copy within the 200 ms wait).
fn grafted_from_2() -> PlumTree {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 2]);
    tree.handle_ihave(T0, peer(2), id(1), 1, false, &n);
    tree.handle_timeout(at(200), &n);
    assert!(drain(&mut tree).contains(&OutEvent::Graft {
        to: key(2),
        id: id(1)
    }));
    tree
}

#[test]
fn a_needless_graft_prunes_the_grafted_link_not_the_tree() {
    let mut tree = grafted_from_2();
    // The tree copy comes after all, then the grafted one.
    receive(&mut tree, at(250), 1, 1, 2, &[1, 2]);
    drain(&mut tree);
    tree.handle_duplicate(at(260), key(2), &id(1));
    assert_eq!(drain(&mut tree), vec![OutEvent::Prune { to: key(2) }]);
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(1)]);
}

#[test]
fn a_graft_that_delivers_first_keeps_its_link_and_the_later_copys_link_goes() {
    // Two nodes on the far side of a cut graft at about the same time, and each then gets
    // the other's repaired copy over the tree. Had each pruned its own graft as needless, the
    // cut would stay. The graft delivered first here, so the later copy's link goes instead.
    let mut tree = grafted_from_2();
    // The grafted copy comes first, and goes on along the tree (to 1).
    receive(&mut tree, at(240), 2, 1, 2, &[1, 2]);
    assert!(drain(&mut tree).contains(&OutEvent::Push { to: key(1) }));
    // Then a copy from 1, which had it from elsewhere: a cycle through both links.
    tree.handle_duplicate(at(260), key(1), &id(1));
    assert_eq!(drain(&mut tree), vec![OutEvent::Prune { to: key(1) }]);
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(2)]);
}

#[test]
fn under_a_burst_a_graft_is_not_undone_by_the_tree_copy() {
    // Under a burst, the copy that beat our graft may itself have come through another
    // node's repair of the same cut, and that node sees our repaired copies the same way:
    // pruning both grafted links at once left the cut (under `all`, the tree ended each round
    // in 7-10 pieces). The grafted copy then counts as a plain duplicate.
    let cfg = TreeConfig {
        graft_timeout_max: Duration::from_secs(2),
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    let n = live(&[1, 2]);
    receive(&mut tree, T0, 1, 1, 1, &[1, 2]);
    // Broadcast 2 comes 10 ms after broadcast 1: a burst. It is announced by 2 first.
    tree.handle_ihave(at(10), peer(2), id(2), 1, false, &n);
    tree.handle_timeout(at(210), &n);
    drain(&mut tree);
    receive(&mut tree, at(250), 1, 2, 2, &[1, 2]);
    drain(&mut tree);
    tree.handle_duplicate(at(260), key(2), &id(2));
    assert!(drain(&mut tree).is_empty(), "no prune at once");
    assert_eq!(
        tree.eager().copied().collect::<Vec<_>>(),
        vec![key(1), key(2)]
    );
    // The tree's copy came 240 ms after the IHAVE (not the graft's, 250): mean 240,
    // deviation 120, so the next wait is 240 + 4 x 120 ms.
    tree.handle_ihave(at(1000), peer(2), id(3), 1, false, &n);
    assert_eq!(tree.poll_timeout(), Some(at(1000 + 720)));
    drain(&mut tree);
    // Like any duplicate, it strikes the link: pruned after `prune_after` of them.
    for i in 1..TreeConfig::default().prune_after {
        tree.handle_duplicate(at(1000 + u64::from(i)), key(2), &id(1));
    }
    assert_eq!(drain(&mut tree), vec![OutEvent::Prune { to: key(2) }]);
}

#[test]
fn a_tree_link_is_pruned_after_prune_after_duplicates_net_of_first_copies() {
    let cfg = TreeConfig {
        prune_after: 3,
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    receive(&mut tree, T0, 1, 1, 1, &[1]);
    drain(&mut tree);
    tree.handle_duplicate(at(1), key(1), &id(1));
    tree.handle_duplicate(at(2), key(1), &id(1));
    // A first copy forgives one strike.
    receive(&mut tree, at(3), 1, 2, 1, &[1]);
    tree.handle_duplicate(at(4), key(1), &id(2));
    assert!(!drain(&mut tree).contains(&OutEvent::Prune { to: key(1) }));
    tree.handle_duplicate(at(5), key(1), &id(2));
    assert_eq!(drain(&mut tree), vec![OutEvent::Prune { to: key(1) }]);
    assert_eq!(tree.eager().count(), 0);
}

#[test]
fn no_prune_while_the_broadcasts_own_link_has_left_the_tree() {
    let cfg = TreeConfig {
        prune_after: 1,
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    tree.handle_shortcut(peer(2));
    receive(&mut tree, T0, 1, 1, 1, &[1, 2]);
    drain(&mut tree);
    // A concurrent broadcast pruned the link broadcast 1 came on.
    tree.handle_prune(key(1));
    tree.handle_duplicate(at(1), key(2), &id(1));
    assert!(drain(&mut tree).is_empty(), "link 2 may be the one left");
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(2)]);
    // With its own link still in the tree, the duplicate's link goes.
    receive(&mut tree, at(10), 2, 2, 1, &[1, 2]);
    drain(&mut tree);
    tree.handle_shortcut(peer(1));
    tree.handle_duplicate(at(11), key(1), &id(2));
    assert_eq!(drain(&mut tree), vec![OutEvent::Prune { to: key(1) }]);
}

#[test]
fn the_tree_link_moves_after_shortcut_repeats_lone_broadcasts() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 3]);
    for round in 0..3u8 {
        let t = at(u64::from(round) * 1000);
        // Via the tree at hop 6 (5 + 1 on forwarding), announced by 3 at hop 3.
        receive(&mut tree, t, 1, round, 6, &[1, 3]);
        drain(&mut tree);
        tree.handle_ihave(t, peer(3), id(round), 3, true, &n);
        let out = drain(&mut tree);
        if round < 2 {
            assert!(out.is_empty(), "round {round}: {out:?}");
        } else {
            assert_eq!(
                out,
                vec![
                    OutEvent::Shortcut { to: key(3) },
                    OutEvent::Prune { to: key(1) }
                ]
            );
        }
    }
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(3)]);
}

#[test]
fn announcements_before_a_longer_tree_copy_move_the_tree_link_too() {
    // The paper's case: 3 announces each broadcast at hop 3 before the tree copy comes at
    // hop 6, in time for it not to be grafted. Evidence like the IHAVEs that come after the
    // copy: the link moves after shortcut_repeats lone broadcasts.
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 3]);
    for round in 0..3u8 {
        let t = at(u64::from(round) * 1000);
        tree.handle_ihave(t, peer(3), id(round), 3, false, &n);
        drain(&mut tree);
        receive(
            &mut tree,
            t.saturating_add(Duration::from_millis(50)),
            1,
            round,
            6,
            &[1, 3],
        );
        let out = drain(&mut tree);
        // The copy itself went to 3 as an announcement, never in full: it has it.
        assert!(!out.contains(&OutEvent::Push { to: key(3) }), "{out:?}");
        let moved = out.contains(&OutEvent::Shortcut { to: key(3) })
            && out.contains(&OutEvent::Prune { to: key(1) });
        assert_eq!(moved, round == 2, "round {round}: {out:?}");
    }
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(3)]);
    assert_eq!(tree.poll_timeout(), None, "nothing left to graft");
}

#[test]
fn an_announcement_over_as_many_hops_as_the_tree_copy_is_no_shortcut() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 3]);
    for round in 0..6u8 {
        let t = at(u64::from(round) * 1000);
        tree.handle_ihave(t, peer(3), id(round), 5, false, &n);
        receive(
            &mut tree,
            t.saturating_add(Duration::from_millis(50)),
            1,
            round,
            6,
            &[1, 3],
        );
    }
    assert!(
        !drain(&mut tree)
            .iter()
            .any(|e| matches!(e, OutEvent::Shortcut { .. } | OutEvent::Prune { .. }))
    );
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(1)]);
}

#[test]
fn broadcasts_in_a_burst_never_reshape_the_tree() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 3]);
    for i in 0..6u8 {
        // 100 ms apart: within shortcut_quiet of each other.
        let t = at(u64::from(i) * 100);
        receive(&mut tree, t, 1, i, 6, &[1, 3]);
        tree.handle_ihave(t, peer(3), id(i), 3, true, &n);
    }
    assert!(
        !drain(&mut tree)
            .iter()
            .any(|e| matches!(e, OutEvent::Shortcut { .. }))
    );
}

#[test]
fn a_new_neighbour_is_told_of_recent_broadcasts_newest_first_capped() {
    let cfg = TreeConfig {
        catch_up_max: 4,
        catch_up: Duration::from_secs(30),
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    for i in 0..10u8 {
        receive(&mut tree, at(u64::from(i) * 1000), 1, i, 2, &[1]);
    }
    drain(&mut tree);
    tree.handle_neighbour_up(at(10_000), key(9));
    let out = drain(&mut tree);
    let ids: Vec<(MessageId, u8)> = ihaves(&out)
        .into_iter()
        .flat_map(|(to, ids)| {
            assert_eq!(to, key(9));
            ids
        })
        .collect();
    assert_eq!(ids, vec![(id(9), 2), (id(8), 2), (id(7), 2), (id(6), 2)]);
    assert_eq!(ihaves(&out).len(), 1, "one record");
    // Outside the window, nothing.
    tree.handle_neighbour_up(at(60_000), key(8));
    assert!(drain(&mut tree).is_empty());
}

#[test]
fn the_missing_set_is_capped() {
    let cfg = TreeConfig {
        cache: 2,
        ..TreeConfig::default()
    };
    let mut tree = with_parent(cfg, 1);
    let n = live(&[1, 2]);
    for i in 0..3u8 {
        tree.handle_ihave(T0, peer(2), id(i), 1, false, &n);
    }
    let out = drain(&mut tree);
    assert_eq!(out.iter().filter(|e| **e == OutEvent::Dropped).count(), 1);
    // Announcements of a broadcast already missing still count.
    tree.handle_ihave(T0, peer(1), id(0), 1, false, &n);
    assert!(!drain(&mut tree).contains(&OutEvent::Dropped));
}

#[test]
fn a_broadcast_only_a_probe_announced_waits_for_the_probe() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = {
        let mut n = vec![peer(1), probe(2), peer(3)];
        n.sort_by_key(|n| n.key);
        n
    };
    tree.handle_ihave(T0, probe(2), id(1), 1, false, &n);
    tree.handle_timeout(at(200), &n);
    assert!(
        !drain(&mut tree)
            .iter()
            .any(|e| matches!(e, OutEvent::Graft { .. }))
    );
    // Another announcer is grafted before the probe.
    tree.handle_ihave(at(250), peer(3), id(1), 1, false, &n);
    tree.handle_timeout(at(300), &n);
    assert!(drain(&mut tree).contains(&OutEvent::Graft {
        to: key(3),
        id: id(1)
    }));
    // A probe is never adopted.
    tree.handle_graft(probe(2), &id(1));
    tree.handle_shortcut(probe(2));
    assert!(!tree.eager().any(|k| *k == key(2)));
}

#[test]
fn deadlines_follow_grafts_retries_and_arrivals() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 2, 3]);
    tree.handle_ihave(T0, peer(2), id(1), 1, false, &n);
    tree.handle_ihave(at(10), peer(3), id(1), 1, false, &n);
    tree.handle_ihave(at(50), peer(2), id(2), 1, false, &n);
    assert_eq!(tree.poll_timeout(), Some(at(200)));
    tree.handle_timeout(at(200), &n);
    // Broadcast 1 grafted from 2; its retry (to 3) at +100, before broadcast 2's timer.
    assert_eq!(tree.poll_timeout(), Some(at(250)));
    tree.handle_timeout(at(250), &n);
    assert_eq!(tree.poll_timeout(), Some(at(300)));
    tree.handle_timeout(at(300), &n);
    let grafts: Vec<OutEvent> = drain(&mut tree)
        .into_iter()
        .filter(|e| matches!(e, OutEvent::Graft { .. }))
        .collect();
    assert_eq!(
        grafts,
        vec![
            OutEvent::Graft {
                to: key(2),
                id: id(1)
            },
            OutEvent::Graft {
                to: key(2),
                id: id(2)
            },
            OutEvent::Graft {
                to: key(3),
                id: id(1)
            },
        ]
    );
    // Arrivals clear their timers.
    receive(&mut tree, at(310), 1, 1, 2, &[1, 2, 3]);
    receive(&mut tree, at(320), 1, 2, 2, &[1, 2, 3]);
    assert_eq!(tree.poll_timeout(), None);
}

#[test]
fn a_graft_is_served_from_the_cache_and_adopts_the_link() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    receive(&mut tree, T0, 1, 1, 3, &[1, 2]);
    drain(&mut tree);
    tree.handle_graft(peer(2), &id(1));
    assert_eq!(
        drain(&mut tree),
        vec![OutEvent::Serve {
            to: key(2),
            id: id(1)
        }]
    );
    assert!(tree.eager().any(|k| *k == key(2)));
    assert_eq!(
        tree.served(&id(1)).map(|b| b.payload),
        Some(&b"payload"[..])
    );
    tree.handle_graft(peer(2), &id(9));
    assert!(drain(&mut tree).is_empty(), "not cached: nothing to serve");
}

#[test]
fn announcements_are_batched_per_neighbour_and_leave_after_the_other_events() {
    let cfg = TreeConfig {
        catch_up_max: 64,
        ..TreeConfig::default()
    };
    let mut tree = PlumTree::new(cfg, 3);
    tree.handle_shortcut(peer(1));
    for i in 0..7u8 {
        receive(&mut tree, at(u64::from(i) * 1000), 1, i, 2, &[1]);
    }
    assert!(drain(&mut tree).is_empty());
    // Two new neighbours in one go, and a broadcast to spread: pushes first, then one IHAVE
    // per neighbour and per `max_batch` entries.
    tree.handle_neighbour_up(at(7000), key(2));
    tree.handle_neighbour_up(at(7000), key(3));
    tree.handle_broadcast(
        at(7000),
        &broadcast(9, 1),
        None,
        &[],
        &live(&[1, 2, 3]),
        &mut rng(),
    );
    let out = drain(&mut tree);
    assert_eq!(out[0], OutEvent::Push { to: key(1) });
    let batches: Vec<(NodeKey, usize)> = ihaves(&out)
        .iter()
        .map(|(to, ids)| (*to, ids.len()))
        .collect();
    assert_eq!(
        batches,
        vec![
            (key(2), 3),
            (key(2), 3),
            (key(2), 2),
            (key(3), 3),
            (key(3), 3),
            (key(3), 2)
        ]
    );
    assert_eq!(out.len(), 1 + batches.len());
    let to_2: Vec<MessageId> = ihaves(&out)
        .into_iter()
        .filter(|(to, _)| *to == key(2))
        .flat_map(|(_, ids)| ids.into_iter().map(|(id, _)| id))
        .collect();
    // Newest first, then the broadcast spread in the same input.
    let mut expected: Vec<MessageId> = (0..7u8).rev().map(id).collect();
    expected.push(id(9));
    assert_eq!(to_2, expected);
    // A neighbour gone before the drain gets nothing.
    tree.handle_neighbour_up(at(8000), key(2));
    tree.handle_neighbour_down(&key(2));
    assert!(drain(&mut tree).is_empty());
}

#[test]
fn a_graft_is_served_with_the_hop_count_it_was_announced_with() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    // Came at hop 2, spread at 3: neighbour 2 is told hop 3, and must get hop 3.
    receive(&mut tree, T0, 1, 1, 3, &[1, 2]);
    assert_eq!(ihaves(&drain(&mut tree)), vec![(key(2), vec![(id(1), 3)])]);
    tree.handle_graft(peer(2), &id(1));
    drain(&mut tree);
    assert_eq!(tree.served(&id(1)).map(|b| b.route.hops), Some(3));
}

#[test]
fn a_broadcast_stopped_by_the_hop_limit_is_not_grafted_later() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    let n = live(&[1, 2]);
    // Announced by 2 first, then the tree copy comes at the hop limit: not spread.
    tree.handle_ihave(T0, peer(2), id(5), 32, false, &n);
    drain(&mut tree);
    assert!(tree.poll_timeout().is_some());
    tree.handle_first_copy(at(10), peer(1), &id(5));
    tree.handle_stopped(at(10), &broadcast(5, 33), key(1));
    assert!(drain(&mut tree).is_empty(), "nothing is spread");
    assert_eq!(tree.poll_timeout(), None);
    tree.handle_timeout(at(2000), &n);
    assert!(drain(&mut tree).is_empty(), "no graft for what came");
    // Neither announced to a new neighbour nor served: one hop more would exceed the limit.
    tree.handle_neighbour_up(at(2000), key(3));
    assert!(drain(&mut tree).is_empty());
    tree.handle_graft(peer(2), &id(5));
    assert!(drain(&mut tree).is_empty());
    assert!(tree.served(&id(5)).is_none());
}

#[test]
fn a_graft_passes_over_an_announcer_whose_path_has_gone() {
    let mut tree = with_parent(TreeConfig::default(), 1);
    tree.handle_ihave(T0, peer(2), id(5), 3, false, &live(&[1, 2]));
    tree.handle_ihave(T0, peer(3), id(5), 3, false, &live(&[1, 2, 3]));
    drain(&mut tree);
    tree.handle_neighbour_down(&key(2));
    let later = at(1000);
    tree.handle_timeout(later, &live(&[1, 3]));
    assert_eq!(
        drain(&mut tree),
        vec![OutEvent::Graft {
            to: key(3),
            id: id(5)
        }]
    );
    // 3 goes too: nobody left to graft, and 2 never re-enters the tree.
    tree.handle_neighbour_down(&key(3));
    tree.handle_timeout(at(2000), &live(&[1]));
    assert!(drain(&mut tree).is_empty());
    assert_eq!(tree.poll_timeout(), None);
    assert_eq!(tree.eager().copied().collect::<Vec<_>>(), vec![key(1)]);
}

#[test]
fn finding_12_the_tree_cache_is_capped_in_bytes() {
    // The largest broadcasts, many more than fit in the default 16 MiB.
    let big = vec![7u8; 64 << 10];
    let cfg = TreeConfig::default();
    let mut tree = with_parent(cfg, 1);
    let count = 300u16;
    for i in 0..count {
        let mut b = broadcast(0, 2);
        b.route.id = MessageId([0; 16]);
        b.route.id.0[..2].copy_from_slice(&i.to_be_bytes());
        b.payload = &big;
        let now = at(u64::from(i));
        tree.handle_first_copy(now, peer(1), &b.route.id);
        tree.handle_broadcast(now, &b, Some(key(1)), &[key(1)], &live(&[1]), &mut rng());
    }
    let cached: Vec<u16> = (0..count)
        .filter(|i| {
            let mut id = MessageId([0; 16]);
            id.0[..2].copy_from_slice(&i.to_be_bytes());
            tree.served(&id).is_some()
        })
        .collect();
    // 16 MiB of 64 KiB payloads: the newest 256, the oldest gone first.
    assert_eq!(cached.len(), 256, "{} cached", cached.len());
    assert_eq!(cached.first(), Some(&(count - 256)));
    assert_eq!(cached.last(), Some(&(count - 1)));
}
