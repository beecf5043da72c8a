//! The `sim` runner (BENCHMARKS.md §2): dissemination scenarios in the deterministic simulator,
//! one summary line per scenario (and per failure fraction).
//!
//! ```text
//! cargo run --release -p whispurr-examples --example sim                      # the whole table
//! cargo run --release -p whispurr-examples --example sim -- --scenario multi --n 1000 \
//!     --rounds 30 --seeds 0..3 --latency 10-50 --loss 0.05
//! ```
//!
//! Every node joins through node 0, one every `--join-ms` (default 100 ms). Rounds are one
//! broadcast (single, multi) or one per node (all), each run until every living node has it
//! (then one second more for late copies). Figures are means over rounds and seeds. `failure`
//! also reports `recovered_by_round`: the latest, over seeds, first post-failure round from
//! which every round reached every survivor. Beyond BENCHMARKS.md's options: `--gossip
//! tree|flood` (how broadcasts spread, `Config::gossip`; default tree), `--fanout N` (flooding's
//! fan-out, `Config::fanout`; default all neighbours), `--graft-ms MIN/RETRY` (the tree's repair
//! timers), `--rotate F` (active-view rotation) and `--trace` (a line per round with the tree's
//! grafts, prunes, duplicates and shape).

use std::time::Duration;

use whispurr_core::{
    engine::{BroadcastAuth, Config, Gossip, MembershipConfig, TreeConfig},
    sim::{Sim, SimConfig},
    wire::Limits,
};

#[derive(Clone, Debug)]
struct Opts {
    scenario: Option<String>,
    n: Option<usize>,
    rounds: Option<usize>,
    seeds: (u64, u64),
    latency: (u64, u64),
    loss: f64,
    fail: Option<f64>,
    join_ms: u64,
    graft_ms: Option<(u64, u64)>,
    flood: bool,
    fanout: Option<usize>,
    rotate: Option<f64>,
    trace: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        scenario: None,
        n: None,
        rounds: None,
        seeds: (0, 3),
        latency: (10, 50),
        loss: 0.0,
        fail: None,
        join_ms: 100,
        graft_ms: None,
        flood: false,
        fanout: None,
        rotate: None,
        trace: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--trace" {
            o.trace = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--scenario" => o.scenario = Some(value.clone()),
            "--n" => o.n = Some(value.parse().unwrap_or_else(|_| bad(flag, value))),
            "--rounds" => o.rounds = Some(value.parse().unwrap_or_else(|_| bad(flag, value))),
            "--seeds" => {
                let (a, b) = value.split_once("..").unwrap_or_else(|| bad(flag, value));
                o.seeds = (
                    a.parse().unwrap_or_else(|_| bad(flag, value)),
                    b.parse().unwrap_or_else(|_| bad(flag, value)),
                );
            }
            "--latency" => {
                let (a, b) = value.split_once('-').unwrap_or_else(|| bad(flag, value));
                o.latency = (
                    a.parse().unwrap_or_else(|_| bad(flag, value)),
                    b.parse().unwrap_or_else(|_| bad(flag, value)),
                );
            }
            "--loss" => o.loss = value.parse().unwrap_or_else(|_| bad(flag, value)),
            "--fail" => o.fail = Some(value.parse().unwrap_or_else(|_| bad(flag, value))),
            "--gossip" => {
                o.flood = match value.as_str() {
                    "tree" => false,
                    "flood" => true,
                    _ => bad(flag, value),
                }
            }
            "--fanout" => o.fanout = Some(value.parse().unwrap_or_else(|_| bad(flag, value))),
            "--rotate" => o.rotate = Some(value.parse().unwrap_or_else(|_| bad(flag, value))),
            "--join-ms" => o.join_ms = value.parse().unwrap_or_else(|_| bad(flag, value)),
            "--graft-ms" => {
                let (a, b) = value.split_once('/').unwrap_or_else(|| bad(flag, value));
                o.graft_ms = Some((
                    a.parse().unwrap_or_else(|_| bad(flag, value)),
                    b.parse().unwrap_or_else(|_| bad(flag, value)),
                ));
            }
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    if o.fanout.is_some() && !o.flood {
        usage("--fanout is flooding's: it needs --gossip flood");
    }
    if o.graft_ms.is_some() && o.flood {
        usage("--graft-ms is the tree's: it needs --gossip tree");
    }
    o
}

fn bad<T>(flag: &str, value: &str) -> T {
    usage(&format!("bad value {value} for {flag}"))
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: sim [--scenario single|multi|all|failure] [--n N] [--rounds R] [--seeds A..B] [--latency MIN-MAX] [--loss F] [--fail F] [--join-ms MS] [--gossip tree|flood] [--fanout N] [--graft-ms MIN/RETRY] [--rotate F] [--trace]"
    );
    std::process::exit(2)
}

/// Mean figures of one scenario run.
#[derive(Default)]
struct Tally {
    rounds: usize,
    reliability: f64,
    copies: u64,
    deliveries: u64,
    ldh: f64,
    dur_ms: f64,
    ecc: f64,
    deg: f64,
    first_reliability: f64,
    first_count: usize,
    /// Per seed (failure): the first post-failure round (1-based) from which every round
    /// reached every living node, if any.
    recovered: Vec<Option<usize>>,
    /// Print a line per round (`--trace`).
    trace: bool,
}

fn build(n: usize, seed: u64, o: &Opts) -> Sim {
    let config = SimConfig {
        n,
        seed,
        latency: (
            Duration::from_millis(o.latency.0),
            Duration::from_millis(o.latency.1),
        ),
        loss: o.loss,
        ..SimConfig::default()
    };
    let gossip = if o.flood {
        Gossip::Flood
    } else {
        let d = TreeConfig::default();
        let (timeout, retry) = o
            .graft_ms
            .map_or((d.graft_timeout, d.graft_retry), |(t, r)| {
                (Duration::from_millis(t), Duration::from_millis(r))
            });
        Gossip::Tree(TreeConfig {
            graft_timeout: timeout,
            graft_retry: retry,
            ..d
        })
    };
    let mut sim = Sim::new(config, |i| Config {
        max_links: 64,
        max_peers: n + 16,
        max_seen: 65_536,
        broadcast_auth: BroadcastAuth::Anonymous,
        // Dissemination measured from the sender: no anonymity stem before it (BENCHMARKS.md
        // §2 defines the scenarios that way; the stem's own cost is in the README).
        stem: None,
        membership: Some(MembershipConfig {
            rotate: o.rotate.unwrap_or(MembershipConfig::default().rotate),
            ..MembershipConfig::default()
        }),
        gossip,
        fanout: o.fanout.unwrap_or(usize::MAX),
        default_hop_limit: 64,
        limits: Limits {
            max_hop_limit: 64,
            ..Limits::default()
        },
        listen_addr: Some(format!("sim://{i}")),
        ..Config::default()
    });
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(o.join_ms));
    }
    sim.run_for(Duration::from_secs(30));
    sim
}

/// `--trace`: one line per round on stderr with the round's duration and last-delivery hop,
/// the running totals of grafts, prunes, duplicates and probes (opened, kept), and the
/// broadcast tree's shape (edges, one-sided edges, connected components).
fn trace(sim: &Sim, round: usize, ids: &[whispurr_core::wire::MessageId]) {
    let (mut grafts, mut prunes, mut dups, mut probes, mut kept) = (0, 0, 0, 0, 0);
    for i in sim.living() {
        let s = sim.engine(i).stats();
        grafts += s.grafts_sent;
        prunes += s.prunes_sent;
        dups += s.duplicates;
        probes += s.probes;
        kept += s.probes_kept;
    }
    let index: std::collections::BTreeMap<_, _> = (0..sim.len())
        .map(|i| (*sim.engine(i).node_id().key(), i))
        .collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let (mut edges, mut one_sided) = (0, 0);
    let mut parent: Vec<usize> = (0..sim.len()).collect();
    for i in sim.living() {
        let me = sim.engine(i).node_id().key();
        for k in sim.engine(i).tree_links() {
            let j = index[&k];
            edges += 1;
            if !sim.engine(j).tree_links().contains(me) {
                one_sided += 1;
            }
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            parent[a] = b;
        }
    }
    let components: std::collections::BTreeSet<usize> = sim
        .living()
        .into_iter()
        .map(|i| root(&mut parent, i))
        .collect();
    let last = ids.last().and_then(|id| sim.report(id));
    eprintln!(
        "round {round} dur_ms={} ldh={} grafts={grafts} prunes={prunes} duplicates={dups} probes={probes} probes_kept={kept} tree_edges={} one_sided={one_sided} components={}",
        last.map_or(0, |r| r.dur_ms),
        last.map_or(0, |r| r.ldh),
        edges / 2,
        components.len(),
    );
}

/// One round: `senders` broadcast at once; run until nothing is in flight; add to the tally.
fn round(sim: &mut Sim, senders: &[usize], t: &mut Tally) -> f64 {
    let ids: Vec<_> = senders
        .iter()
        .filter_map(|&s| sim.broadcast(s, b"round payload"))
        .collect();
    // Until everyone has it (or 30 s pass), then 1 s more for late copies and grafts.
    sim.run_until_delivered(&ids, Duration::from_secs(1), Duration::from_secs(30));
    let mut rel = 0.0;
    for id in &ids {
        let r = sim.report(id).expect("tracked");
        rel += r.reliability;
        t.ldh += f64::from(r.ldh);
        t.dur_ms += r.dur_ms as f64;
        t.deliveries += r.delivered as u64;
    }
    // Copies of every message of the round, counted once (all reports share the window).
    if let Some(id) = ids.last() {
        t.copies += sim.report(id).map_or(0, |r| r.copies);
    }
    let rel = if ids.is_empty() {
        0.0
    } else {
        rel / ids.len() as f64
    };
    t.reliability += rel;
    t.rounds += 1;
    if t.trace {
        trace(sim, t.rounds, &ids);
    }
    rel
}

fn next(state: &mut u64) -> u64 {
    // splitmix64: the runner's own choice of senders and victims, seeded per run.
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn run(scenario: &str, n: usize, rounds: usize, fail: f64, o: &Opts) -> Tally {
    let mut t = Tally {
        trace: o.trace,
        ..Tally::default()
    };
    let seeds = o.seeds.0..=o.seeds.1;
    let per_message_rounds = seeds.clone().count();
    for seed in seeds {
        let mut sim = build(n, seed, o);
        let ov = sim.overlay();
        t.ecc += ov.ecc;
        t.deg += ov.deg;
        let mut r = seed ^ 0x5eed;
        let fixed = 1 + (next(&mut r) as usize % (n - 1));
        match scenario {
            "single" => (0..rounds).for_each(|_| {
                round(&mut sim, &[fixed], &mut t);
            }),
            "multi" => (0..rounds).for_each(|_| {
                let s = next(&mut r) as usize % n;
                round(&mut sim, &[s], &mut t);
            }),
            "all" => (0..rounds).for_each(|_| {
                let all: Vec<usize> = (0..n).collect();
                round(&mut sim, &all, &mut t);
            }),
            "failure" => {
                let mut warm = Tally::default();
                for _ in 0..10 {
                    let s = next(&mut r) as usize % n;
                    round(&mut sim, &[s], &mut warm);
                }
                let victims = (n as f64 * fail).round() as usize;
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    order.swap(i, next(&mut r) as usize % (i + 1));
                }
                for &v in &order[..victims] {
                    sim.kill(v);
                }
                let living = sim.living();
                let mut recovered = None;
                for k in 0..10 {
                    let s = living[next(&mut r) as usize % living.len()];
                    let rel = round(&mut sim, &[s], &mut t);
                    if k == 0 {
                        t.first_reliability += rel;
                        t.first_count += 1;
                    }
                    if rel < 1.0 {
                        recovered = None;
                    } else if recovered.is_none() {
                        recovered = Some(k + 1);
                    }
                }
                t.recovered.push(recovered);
            }
            other => usage(&format!("unknown scenario {other}")),
        }
    }
    t.ecc /= per_message_rounds as f64;
    t.deg /= per_message_rounds as f64;
    t
}

fn line(scenario: &str, n: usize, rounds: usize, fail: Option<f64>, o: &Opts) {
    let started = std::time::Instant::now();
    let t = run(scenario, n, rounds, fail.unwrap_or(0.0), o);
    let msgs = t.rounds.max(1) as f64 * if scenario == "all" { n as f64 } else { 1.0 };
    let rmr = if t.deliveries == 0 {
        0.0
    } else {
        t.copies as f64 / t.deliveries as f64 - 1.0
    };
    let mut s = format!(
        "sim scenario={scenario} n={n} seeds={} rounds={rounds} reliability={:.4} rmr={rmr:.2} ldh={:.1} dur_ms={:.0} ecc={:.1} deg={:.1}",
        o.seeds.1 - o.seeds.0 + 1,
        t.reliability / t.rounds.max(1) as f64,
        t.ldh / msgs,
        t.dur_ms / msgs,
        t.ecc,
        t.deg,
    );
    if let Some(f) = fail {
        let worst = t.recovered.iter().try_fold(0, |w, r| r.map(|r| w.max(r)));
        s += &format!(
            " fail={f} first_reliability={:.4} recovered_by_round={}",
            t.first_reliability / t.first_count.max(1) as f64,
            worst.map_or(String::from("never"), |w| w.to_string()),
        );
    }
    if o.loss > 0.0 {
        s += &format!(" loss={}", o.loss);
    }
    println!("{s} wall_s={:.1}", started.elapsed().as_secs_f64());
}

/// Runs one scenario with the runner's defaults for what the options leave open: `all` on
/// 100 nodes, the others on 1,000; 30 rounds (failure: 10 after the failure, at each fraction).
fn scenario(s: &str, o: &Opts) {
    let n = o.n.unwrap_or(if s == "all" { 100 } else { 1000 });
    if s == "failure" {
        let fails = o.fail.map_or(vec![0.2, 0.4, 0.6, 0.8, 0.9], |f| vec![f]);
        for f in fails {
            line(s, n, 10, Some(f), o);
        }
    } else {
        line(s, n, o.rounds.unwrap_or(30), None, o);
    }
}

fn main() {
    let o = parse();
    match o.scenario.as_deref() {
        Some(s) => scenario(s, &o),
        None => ["single", "multi", "all", "failure"]
            .iter()
            .for_each(|s| scenario(s, &o)),
    }
}
