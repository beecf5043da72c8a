//! The deterministic simulator itself: joining, delivery, failures, partitions, determinism.
#![cfg(feature = "sim")]

use std::time::Duration;

use whispurr_core::{
    engine::{BroadcastAuth, Config, DownReason, Event},
    sim::{Sim, SimConfig},
};

fn config(n: usize) -> impl Fn(usize) -> Config {
    move |_| Config {
        max_links: n + 8,
        max_peers: n + 8,
        broadcast_auth: BroadcastAuth::Anonymous,
        ..Config::default()
    }
}

fn joined(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(
        SimConfig {
            n,
            seed,
            ..SimConfig::default()
        },
        config(n),
    );
    for i in 1..n {
        sim.join(i, 0);
    }
    sim.run_for(Duration::from_secs(2));
    sim
}

#[test]
fn nodes_join_through_a_bootstrap_and_broadcasts_reach_everyone() {
    let mut sim = joined(20, 1);
    let o = sim.overlay();
    assert!(o.connected);
    let id = sim.broadcast(5, b"hello").unwrap();
    assert!(sim.run_until_idle(Duration::from_secs(10)));
    let r = sim.report(&id).unwrap();
    assert_eq!((r.delivered, r.expected), (19, 19));
    assert_eq!(r.reliability, 1.0);
    assert!(r.ldh >= 1 && r.dur_ms >= 10, "{r:?}");
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut sim = joined(12, seed);
        let id = sim.broadcast(3, b"x").unwrap();
        sim.run_until_idle(Duration::from_secs(10));
        let bytes: u64 = (0..12).map(|i| sim.engine(i).stats().bytes_sent).sum();
        (
            sim.report(&id).unwrap(),
            sim.now,
            *sim.engine(0).node_id(),
            bytes,
        )
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).2, run(8).2, "the seed decides identities");
}

#[test]
fn loss_delays_but_does_not_lose() {
    let mut sim = Sim::new(
        SimConfig {
            n: 10,
            seed: 3,
            loss: 0.3,
            ..SimConfig::default()
        },
        config(10),
    );
    for i in 1..10 {
        sim.join(i, 0);
    }
    sim.run_for(Duration::from_secs(3));
    let id = sim.broadcast(4, b"lossy").unwrap();
    sim.run_until_idle(Duration::from_secs(10));
    let r = sim.report(&id).unwrap();
    assert_eq!(r.reliability, 1.0);
}

#[test]
fn killed_nodes_are_noticed_and_excluded() {
    let mut sim = joined(10, 2);
    sim.kill(7);
    sim.run_for(Duration::from_secs(1));
    assert!(
        !sim.engine(0)
            .neighbour_keys()
            .contains(sim.engine(7).node_id().key())
    );
    let id = sim.broadcast(3, b"after").unwrap();
    sim.run_until_idle(Duration::from_secs(10));
    let r = sim.report(&id).unwrap();
    assert_eq!((r.delivered, r.expected), (8, 8));
}

#[test]
fn a_partition_cuts_delivery_until_healed() {
    let mut sim = joined(10, 4);
    // Nodes 0..5 on one side: the bootstrap's star loses the others.
    sim.partition(|i| u32::from(i >= 5));
    sim.run_for(Duration::from_secs(1));
    let id = sim.broadcast(1, b"cut").unwrap();
    sim.run_until_idle(Duration::from_secs(10));
    let r = sim.report(&id).unwrap();
    assert_eq!(r.delivered, 4, "{r:?}");
    sim.heal();
    for i in 5..10 {
        sim.join(i, 0);
    }
    sim.run_for(Duration::from_secs(2));
    let id = sim.broadcast(1, b"healed").unwrap();
    sim.run_until_idle(Duration::from_secs(10));
    assert_eq!(sim.report(&id).unwrap().reliability, 1.0);
}

fn hyparview(n: usize) -> impl Fn(usize) -> Config {
    move |i| Config {
        max_links: 64,
        max_peers: n + 8,
        broadcast_auth: BroadcastAuth::Anonymous,
        membership: Some(whispurr_core::engine::MembershipConfig::default()),
        listen_addr: Some(format!("sim://{i}")),
        ..Config::default()
    }
}

fn with_tree(n: usize) -> impl Fn(usize) -> Config {
    let base = hyparview(n);
    move |i| Config {
        gossip: whispurr_core::engine::Gossip::Tree(whispurr_core::engine::TreeConfig::default()),
        // The tree measured alone (with anonymous stems on, each broadcast enters the tree at
        // a random node after its stem: see `anonymous_stems_cost_the_tree_no_redundancy`).
        stem: None,
        ..base(i)
    }
}

fn overlay_of(n: usize, seed: u64, config: impl Fn(usize) -> Config) -> Sim {
    let mut sim = Sim::new(
        SimConfig {
            n,
            seed,
            ..SimConfig::default()
        },
        config,
    );
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(100));
    }
    sim.run_for(Duration::from_secs(20));
    sim
}

/// Twelve rounds of one broadcast each, from senders spread over the `n` nodes, each reaching
/// every node; returns the redundancy over all rounds and in the last one.
fn twelve_rounds(sim: &mut Sim, n: usize) -> (f64, f64) {
    let (mut copies, mut delivered, mut last) = (0, 0, 0.0);
    for round in 0..12 {
        let id = sim.broadcast((round * 7) % n, b"round").unwrap();
        sim.settle(Duration::from_secs(1), Duration::from_secs(20));
        let r = sim.report(&id).unwrap();
        assert_eq!(r.reliability, 1.0, "round {round}: {r:?}");
        copies += r.copies;
        delivered += r.delivered as u64;
        last = r.rmr();
        sim.run_for(Duration::from_millis(500));
    }
    (copies as f64 / delivered as f64 - 1.0, last)
}

#[test]
fn the_broadcast_tree_delivers_everything_with_little_redundancy() {
    let n = 40;
    let mut sim = overlay_of(n, 11, with_tree(n));
    // The tree is built by grafts, so even the first rounds send few extra copies.
    let (rmr, _) = twelve_rounds(&mut sim, n);
    assert!(rmr < 0.1, "rmr {rmr:.3}");
    // Flooding the same overlay costs about degree - 1 copies per delivery.
    let mut flood = overlay_of(n, 11, hyparview(n));
    let id = flood.broadcast(3, b"flood").unwrap();
    flood.run_until_idle(Duration::from_secs(10));
    assert!(flood.report(&id).unwrap().rmr() > 1.5);
}

#[test]
fn anonymous_stems_cost_the_tree_no_redundancy() {
    // With the stem on, each broadcast enters the tree at a random node; its origin gets it
    // back like any node, and must then pass it on along the tree like any node.
    let n = 40;
    let base = with_tree(n);
    let stems = move |i| Config {
        stem: Some(whispurr_core::engine::StemConfig::default()),
        ..base(i)
    };
    let mut sim = overlay_of(n, 11, stems);
    let (rmr, last) = twelve_rounds(&mut sim, n);
    assert!(
        rmr < 0.1 && last < 0.1,
        "rmr {rmr:.3}, last round {last:.3}"
    );
}

#[test]
fn the_overlay_heals_after_a_partition_is_removed() {
    let n = 40;
    let mut sim = overlay_of(n, 12, with_tree(n));
    sim.partition(|i| u32::from(i % 2 == 0));
    sim.run_for(Duration::from_secs(30));
    assert!(!sim.overlay().connected, "the partition splits the overlay");
    let id = sim.broadcast(5, b"one side").unwrap();
    sim.settle(Duration::from_secs(1), Duration::from_secs(20));
    assert_eq!(
        sim.report(&id).unwrap().delivered,
        n / 2 - 1,
        "only its own side"
    );
    sim.heal();
    // Probes find the other side: its nodes announce a broadcast this side never got.
    let id = sim.broadcast(4, b"after healing").unwrap();
    sim.run_for(Duration::from_secs(60));
    let o = sim.overlay();
    assert!(o.connected, "{o:?}");
    assert_eq!(sim.report(&id).unwrap().reliability, 1.0);
    let id = sim.broadcast(7, b"healed").unwrap();
    sim.settle(Duration::from_secs(1), Duration::from_secs(20));
    assert_eq!(sim.report(&id).unwrap().reliability, 1.0);
}

#[test]
fn the_tree_repairs_itself_when_nodes_die() {
    let n = 40;
    let mut sim = overlay_of(n, 13, with_tree(n));
    for round in 0..4 {
        sim.broadcast(round, b"warm").unwrap();
        sim.run_until_idle(Duration::from_secs(10));
    }
    for v in [3, 9, 17, 25, 31] {
        sim.kill(v);
    }
    sim.run_for(Duration::from_secs(1));
    let id = sim.broadcast(1, b"after failures").unwrap();
    sim.settle(Duration::from_secs(1), Duration::from_secs(20));
    let r = sim.report(&id).unwrap();
    assert_eq!(r.reliability, 1.0, "{r:?}");
}

#[test]
fn membership_keeps_small_symmetric_active_views_and_a_connected_overlay() {
    let n = 60;
    let mut sim = Sim::new(
        SimConfig {
            n,
            seed: 5,
            ..SimConfig::default()
        },
        hyparview(n),
    );
    sim.keep_events = true;
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(Duration::from_secs(30));
    // Links the overlay lets go (evictions, refused neighbours) are closed on purpose: no cap
    // was hit. (The far end sees its link lost.)
    let downs: Vec<DownReason> = sim
        .events
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::PeerDown { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    let of = |r: DownReason| downs.iter().filter(|d| **d == r).count();
    assert!(
        of(DownReason::Closed) > 0 && of(DownReason::Limit) == 0,
        "{} closed, {} limit, of {}",
        of(DownReason::Closed),
        of(DownReason::Limit),
        downs.len()
    );
    let o = sim.overlay();
    assert!(o.connected, "{o:?}");
    assert!(o.deg >= 3.0 && o.deg <= 5.5, "{o:?}");
    // Symmetric: if i has j active, j has i active.
    for i in 0..n {
        let me = *sim.engine(i).node_id().key();
        for k in sim.engine(i).active_view() {
            let j = (0..n)
                .find(|&j| *sim.engine(j).node_id().key() == k)
                .unwrap();
            assert!(
                sim.engine(j).active_view().contains(&me),
                "{i} -> {j} not symmetric"
            );
        }
        assert!(sim.engine(i).active_view().len() <= 5);
    }
    let id = sim.broadcast(7, b"tree").unwrap();
    sim.run_until_idle(Duration::from_secs(10));
    assert_eq!(sim.report(&id).unwrap().reliability, 1.0);
}

#[test]
fn a_node_with_no_contact_left_joins_again_through_its_bootstrap() {
    let n = 2;
    let mut sim = overlay_of(n, 14, with_tree(n));
    let bootstrap = *sim.engine(0).node_id().key();
    assert_eq!(sim.engine(1).active_view(), vec![bootstrap]);
    // Cut the only link: node 1 is left with an empty active view and no passive contact.
    sim.partition(|i| i as u32);
    sim.run_for(Duration::from_secs(5));
    assert!(sim.engine(1).active_view().is_empty());
    assert_eq!(sim.engine(1).passive_len(), 0);
    sim.heal();
    // Rejoin attempts back off (0.5 s doubling, at most 30 s), so one falls in this window.
    sim.run_for(Duration::from_secs(40));
    assert_eq!(sim.engine(1).active_view(), vec![bootstrap]);
    let id = sim.broadcast(0, b"back").unwrap();
    sim.settle(Duration::from_secs(1), Duration::from_secs(10));
    assert_eq!(sim.report(&id).unwrap().reliability, 1.0);
}
