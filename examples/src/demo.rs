//! `whispurr demo`: an embedded relay and five nodes on 127.0.0.1, over real WebSocket and
//! WebRTC links. It shows the nodes meeting through the relay, upgrading to WebRTC,
//! whispering, broadcasting signed and anonymous, resonating on two intents, the FileSync /
//! MiningSignal / Dreamspace extensions at work, a node killed and noticed, and a table of
//! statistics per node. Written once against [`Runtime`], so it runs on tokio and on smol.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, channel::mpsc};
use whispurr_core::{
    NodeKey,
    engine::{BroadcastAuth, DownReason, Event, PathKind},
};
use whispurr_node::{
    Events, Node, NodeBuilder, RelayBuilder, RelayServer, runtime::Runtime, webrtc::WebRtcConfig,
};

use crate::extensions::{
    DreamChanged, Dreamspace, FileDelivered, FileReceived, FileSync, MiningSignal,
    MiningSignalSeen, mining_signal::solve,
};

/// The demo's node names, in order.
pub const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// How long any one step may wait for what it expects.
const STEP: Duration = Duration::from_secs(20);

/// What the demo saw, for its caller (and its test) to check.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Pairs that met through the relay.
    pub met: usize,
    /// Pairs whose traffic ran on WebRTC before the whisper step.
    pub direct: usize,
    /// Steps that completed, by name.
    pub steps: Vec<&'static str>,
    /// The final table, as printed.
    pub table: String,
}

/// One node's events, tagged with its index, all on one channel.
struct Hub {
    rx: mpsc::Receiver<(usize, Event)>,
    keys: Vec<NodeKey>,
}

impl Hub {
    fn name(&self, key: &NodeKey) -> &'static str {
        self.keys
            .iter()
            .position(|k| k == key)
            .map_or("?", |i| NAMES[i])
    }

    /// Reads events (printing the notable ones) until `done` says the step is complete;
    /// `false` if `STEP` passes first.
    async fn until<R: Runtime>(
        &mut self,
        rt: &R,
        mut done: impl FnMut(&Hub, usize, &Event) -> bool,
    ) -> bool {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let next = whispurr_node::with_deadline(rt, left, self.rx.next()).await;
            let Some(Some((i, event))) = next else {
                return false;
            };
            self.show(i, &event);
            if done(self, i, &event) {
                return true;
            }
        }
    }

    fn show(&self, i: usize, event: &Event) {
        let me = NAMES[i];
        match event {
            Event::PeerUp { peer, path } => {
                let how = match path {
                    PathKind::Direct => "directly (WebRTC)",
                    PathKind::Relayed => "through the relay",
                };
                println!("  {me:>5} ⇄ {:<5} {how}", self.name(peer.key()));
            }
            Event::PeerDown { peer, reason } => {
                println!("  {me:>5} lost {} ({reason:?})", self.name(peer));
            }
            Event::Whisper { from, payload, .. } => println!(
                "  {me:>5} ← whisper from {}: {:?}",
                self.name(from),
                String::from_utf8_lossy(payload)
            ),
            Event::WhisperDelivered { .. } => println!("  {me:>5} whisper acknowledged"),
            Event::Broadcast {
                origin,
                payload,
                hops,
                ..
            } if *hops > 0 => println!(
                "  {me:>5} ← broadcast from {}: {:?}",
                origin.map_or("(anonymous)", |o| self.name(o.key())),
                String::from_utf8_lossy(payload)
            ),
            Event::Resonance {
                intent, payload, ..
            } => println!(
                "  {me:>5} ← resonance on {intent:?}: {:?}",
                String::from_utf8_lossy(payload)
            ),
            Event::Extension { event, .. } => {
                if let Some(f) = event.downcast_ref::<FileReceived>() {
                    println!(
                        "  {me:>5} ← file {:?} from {} ({} bytes, SHA-256 verified)",
                        f.name,
                        self.name(&f.from),
                        f.data.len()
                    );
                } else if let Some(f) = event.downcast_ref::<FileDelivered>() {
                    println!("  {me:>5} file delivered to {}", self.name(&f.to));
                } else if let Some(m) = event.downcast_ref::<MiningSignalSeen>() {
                    println!(
                        "  {me:>5} ← mining signal from {}: job {} difficulty {} nonce {}",
                        self.name(&m.from),
                        m.job,
                        m.difficulty,
                        m.nonce
                    );
                } else if let Some(d) = event.downcast_ref::<DreamChanged>() {
                    println!(
                        "  {me:>5} ← dreamspace {:?} = {:?} (by {})",
                        d.key,
                        String::from_utf8_lossy(&d.value),
                        self.name(&d.origin)
                    );
                }
            }
            _ => {}
        }
    }
}

/// WebRTC for the demo: UDP on 127.0.0.1 with loopback candidates, no mDNS.
fn loopback_webrtc() -> WebRtcConfig {
    WebRtcConfig::loopback()
}

async fn start_node<R: Runtime>(
    rt: &R,
    relay: &RelayServer,
) -> whispurr_node::Result<(Node, Events)> {
    NodeBuilder::new(rt.clone())
        .relay(relay.url())
        .webrtc(Some(loopback_webrtc()))
        .extension(Box::new(FileSync::default()))
        .extension(Box::new(MiningSignal::default()))
        .extension(Box::new(Dreamspace::default()))
        // Heartbeats every second and death after four silent ones, so the demo's killed
        // node is noticed in seconds (defaults: 5 s and 20 s).
        .configure(|c| {
            c.ping_interval = Duration::from_secs(1);
            c.dead_after = Duration::from_secs(4);
        })
        .start()
        .await
}

fn step(n: usize, what: &str) {
    println!("\n[{n}/8] {what}");
}

/// Runs the demo on `rt`, printing as it goes. `Err` names the step that failed.
pub async fn run<R: Runtime>(rt: R) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    println!("whispurr demo: a relay and five nodes on 127.0.0.1 (WebSocket + WebRTC)");
    let relay = RelayBuilder::new(rt.clone())
        .start()
        .await
        .map_err(|e| format!("relay: {e}"))?;
    println!("relay listening on {} (id {})", relay.url(), relay.id());

    step(1, "five nodes start, each with an ephemeral identity");
    let (tx, rx) = mpsc::channel(4096);
    let mut nodes = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let (node, mut events) = start_node(&rt, &relay)
            .await
            .map_err(|e| format!("node {name}: {e}"))?;
        println!("  {name:>5} {}", node.id());
        let mut tx = tx.clone();
        rt.spawn(async move {
            while let Some(e) = events.next().await {
                if tx.send((i, e)).await.is_err() {
                    break;
                }
            }
        });
        nodes.push(node);
    }
    let mut hub = Hub {
        rx,
        keys: nodes.iter().map(|n| *n.id().key()).collect(),
    };
    let keys = hub.keys.clone();
    let key = |i: usize| keys[i];

    step(
        2,
        "they meet through the relay, then upgrade to WebRTC in the background",
    );
    let mut relayed = BTreeSet::new();
    let mut direct = BTreeSet::new();
    let pairs = NAMES.len() * (NAMES.len() - 1);
    let upgraded = hub
        .until(&rt, |hub, i, e| {
            if let Event::PeerUp { peer, path } = e {
                let j = hub.keys.iter().position(|k| k == peer.key()).unwrap_or(i);
                relayed.insert((i, j));
                if *path == PathKind::Direct {
                    direct.insert((i, j));
                }
            }
            direct.len() == pairs
        })
        .await;
    outcome.met = relayed.len() / 2;
    outcome.direct = direct.len() / 2;
    if relayed.len() < pairs {
        let missing: Vec<String> = (0..NAMES.len())
            .flat_map(|i| (0..NAMES.len()).map(move |j| (i, j)))
            .filter(|&(i, j)| i != j && !relayed.contains(&(i, j)))
            .map(|(i, j)| format!("{} never saw {}", NAMES[i], NAMES[j]))
            .collect();
        return Err(format!(
            "only {} of {pairs} meetings: {}",
            relayed.len(),
            missing.join(", ")
        ));
    }
    println!(
        "  {} pairs met, {} on WebRTC{}",
        outcome.met,
        outcome.direct,
        if upgraded {
            ""
        } else {
            " (the rest stay on the relay)"
        }
    );
    outcome.steps.push("meet");

    step(
        3,
        "alice whispers to bob (end-to-end encrypted, acknowledged)",
    );
    let id = nodes[0]
        .whisper(key(1), b"meet me at the usual place".to_vec())
        .await
        .map_err(|e| format!("whisper: {e}"))?;
    let (mut got, mut acked) = (false, false);
    let ok = hub
        .until(&rt, |_, i, e| {
            got |= i == 1 && matches!(e, Event::Whisper { .. });
            acked |= i == 0 && matches!(e, Event::WhisperDelivered { id: d } if *d == id);
            got && acked
        })
        .await;
    if !ok {
        return Err("the whisper did not arrive".into());
    }
    outcome.steps.push("whisper");

    step(4, "carol broadcasts signed, dave anonymous");
    nodes[2]
        .broadcast(b"hello from carol (signed)".to_vec())
        .await
        .map_err(|e| format!("broadcast: {e}"))?;
    nodes[3]
        .broadcast_with(b"hello from someone".to_vec(), BroadcastAuth::Anonymous)
        .await
        .map_err(|e| format!("broadcast: {e}"))?;
    let mut heard: BTreeSet<(usize, bool)> = BTreeSet::new();
    let ok = hub
        .until(&rt, |_, i, e| {
            if let Event::Broadcast { origin, hops, .. } = e
                && *hops > 0
            {
                heard.insert((i, origin.is_some()));
            }
            // Every node but the sender hears each.
            heard.len() == 2 * (NAMES.len() - 1)
        })
        .await;
    if !ok {
        return Err(format!("broadcasts reached {} of 8", heard.len()));
    }
    outcome.steps.push("broadcast");

    step(
        5,
        "alice and carol attune to \"chess\", bob and erin to \"jazz\"",
    );
    for (i, intent) in [(0, "chess"), (2, "chess"), (1, "jazz"), (4, "jazz")] {
        nodes[i]
            .attune(intent)
            .await
            .map_err(|e| format!("attune: {e}"))?;
    }
    resonate_until_sent(&rt, &nodes[0], "chess", b"e4 e5?").await?;
    resonate_until_sent(&rt, &nodes[1], "jazz", b"so what").await?;
    let mut reached = BTreeSet::new();
    let ok = hub
        .until(&rt, |_, i, e| {
            if let Event::Resonance { intent, .. } = e {
                reached.insert((i, intent.clone()));
            }
            reached.contains(&(2, "chess".into())) && reached.contains(&(4, "jazz".into()))
        })
        .await;
    if !ok {
        return Err("resonance did not reach the attuned nodes".into());
    }
    println!("  only the attuned nodes could read them");
    outcome.steps.push("resonance");

    step(6, "extensions: FileSync, MiningSignal, Dreamspace");
    let file: Vec<u8> = (0..48 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    let erin = key(4);
    nodes[0]
        .with_extension::<FileSync, _>(move |fs, ctx| fs.offer(ctx, erin, "notes.bin", file))
        .await
        .map_err(|e| format!("FileSync: {e}"))?
        .map_err(|e| format!("FileSync: {e}"))?;
    let job = 7;
    let nonce = solve(job, 12, 0, 1 << 24).ok_or("no nonce found")?;
    nodes[3]
        .with_extension::<MiningSignal, _>(move |m, ctx| m.announce(ctx, job, 12, nonce))
        .await
        .map_err(|e| format!("MiningSignal: {e}"))?
        .map_err(|e| format!("MiningSignal: {e}"))?;
    nodes[2]
        .with_extension::<Dreamspace, _>(|d, ctx| d.set(ctx, "mood", b"curious".to_vec()))
        .await
        .map_err(|e| format!("Dreamspace: {e}"))?
        .map_err(|e| format!("Dreamspace: {e}"))?;
    let (mut file_in, mut file_ok) = (false, false);
    let (mut mined, mut dreamt) = (BTreeSet::new(), BTreeSet::new());
    let ok = hub
        .until(&rt, |_, i, e| {
            if let Event::Extension { event, .. } = e {
                file_in |= i == 4 && event.is::<FileReceived>();
                file_ok |= i == 0 && event.is::<FileDelivered>();
                if event.is::<MiningSignalSeen>() {
                    mined.insert(i);
                }
                if event.is::<DreamChanged>() {
                    dreamt.insert(i);
                }
            }
            file_in && file_ok && mined.len() == 4 && dreamt.len() == 4
        })
        .await;
    if !ok {
        return Err("the extensions' messages did not all arrive".into());
    }
    outcome.steps.push("extensions");

    step(7, "erin is killed (no goodbye); the others notice");
    nodes[4].kill().await.map_err(|e| format!("kill: {e}"))?;
    let mut noticed = BTreeSet::new();
    let ok = hub
        .until(&rt, |_, i, e| {
            if matches!(e, Event::PeerDown { peer, reason } if *peer == erin && *reason != DownReason::Replaced)
            {
                noticed.insert(i);
            }
            noticed.len() == NAMES.len() - 1
        })
        .await;
    if !ok {
        return Err(format!("{} of 4 noticed erin's death", noticed.len()));
    }
    outcome.steps.push("death");

    step(8, "statistics per node");
    outcome.table = table(&nodes[..4]).await;
    print!("{}", outcome.table);
    for n in &nodes[..4] {
        let _ = n.shutdown().await;
    }
    let _ = relay.shutdown().await;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(outcome)
}

/// Resonates until a neighbour attuned to `intent` is known (their announcements take a
/// moment to arrive), at most `STEP`.
async fn resonate_until_sent<R: Runtime>(
    rt: &R,
    node: &Node,
    intent: &str,
    payload: &[u8],
) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    loop {
        match node.resonate(intent, 1.0, payload.to_vec()).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("resonate: {e}")),
            Err(_) => rt.sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn table(nodes: &[Node]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<6} {:>6} {:>7} {:>8} {:>6} {:>9} {:>10} {:>10}",
        "node", "direct", "relayed", "rtt ms", "sent", "delivered", "bytes out", "bytes in"
    );
    for (i, n) in nodes.iter().enumerate() {
        let (Ok(peers), Ok(stats)) = (n.peers().await, n.stats().await) else {
            continue;
        };
        let direct = peers.iter().filter(|p| p.path == PathKind::Direct).count();
        let rtts: Vec<f64> = peers.iter().filter_map(|p| p.rtt_ms).collect();
        let rtt = if rtts.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2}", rtts.iter().sum::<f64>() / rtts.len() as f64)
        };
        let wire: BTreeMap<&str, _> = [
            ("relay", stats.relay),
            ("websocket", stats.websocket),
            ("webrtc", stats.webrtc),
        ]
        .into();
        let out_bytes: u64 = wire.values().map(|w| w.bytes_sent).sum();
        let in_bytes: u64 = wire.values().map(|w| w.bytes_received).sum();
        let _ = writeln!(
            out,
            "  {:<6} {:>6} {:>7} {:>8} {:>6} {:>9} {:>10} {:>10}",
            NAMES[i],
            direct,
            peers.len() - direct,
            rtt,
            stats.engine.messages_sent,
            stats.engine.messages_delivered,
            out_bytes,
            in_bytes
        );
    }
    out
}
