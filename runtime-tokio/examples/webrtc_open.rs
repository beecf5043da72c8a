//! How long a WebRTC link takes to open on loopback, and what its keepalives cost once idle.
//!
//! Opens `--pairs` pairs of `DirectChannel`s one after another (signals wired through channels,
//! as the engine carries them), timing each from the offerer's start until both sides are open,
//! i.e. until the pair's traffic can run on WebRTC. Then, with every pair still open and idle,
//! it counts the STUN requests and responses each peer sends over `--idle-s` seconds (from the
//! ICE candidate-pair statistics). Prints one line:
//!
//! ```text
//! webrtc_open pairs=20 median_ms=… p90_ms=… keepalive_pkts_per_s=… check_ms=… keepalive_ms=… wake_ms=…
//! ```
//!
//! `cargo run -p whispurr-tokio --example webrtc_open -- [--pairs N] [--check-ms MS]
//! [--keepalive-ms MS] [--wake-ms MS (0 = off)] [--idle-s S]`; unset options take
//! `WebRtcConfig`'s defaults.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, channel::mpsc};
use whispurr_core::wire::WebRtcSignal;
use whispurr_node::webrtc::{DirectChannel, WebRtcConfig};

fn forward(mut signals: mpsc::UnboundedReceiver<WebRtcSignal>, to: DirectChannel) {
    tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            if let Err(error) = to.handle_signal(signal).await {
                eprintln!("signal rejected: {error}");
            }
        }
    });
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: not a number")),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = WebRtcConfig::loopback();
    let pairs = arg(&args, "--pairs").unwrap_or(20) as usize;
    if let Some(ms) = arg(&args, "--check-ms") {
        config.ice_check_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = arg(&args, "--keepalive-ms") {
        config.keepalive_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = arg(&args, "--wake-ms") {
        config.setup_wake_interval = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let idle = Duration::from_secs(arg(&args, "--idle-s").unwrap_or(5));
    let runtime: Arc<dyn webrtc::runtime::Runtime> = Arc::new(webrtc::runtime::TokioRuntime);

    let mut open_ms = Vec::with_capacity(pairs);
    let mut links = Vec::with_capacity(pairs * 2);
    for _ in 0..pairs {
        let (a_tx, a_rx) = mpsc::unbounded();
        let (b_tx, b_rx) = mpsc::unbounded();
        let started = std::time::Instant::now();
        let b = DirectChannel::start(runtime.clone(), &config, false, b_tx)
            .await
            .expect("answerer starts");
        forward(a_rx, b.clone());
        let a = DirectChannel::start(runtime.clone(), &config, true, a_tx)
            .await
            .expect("offerer starts");
        forward(b_rx, a.clone());
        a.opened().await.expect("offerer opens");
        b.opened().await.expect("answerer opens");
        open_ms.push(started.elapsed().as_secs_f64() * 1e3);
        links.push(a);
        links.push(b);
    }

    // Idle: only keepalives (and their answers) go out now.
    let mut before = 0;
    for link in &links {
        before += link.stun_packets_sent().await;
    }
    tokio::time::sleep(idle).await;
    let mut after = 0;
    for link in &links {
        after += link.stun_packets_sent().await;
    }
    let per_peer_per_s = (after - before) as f64 / links.len() as f64 / idle.as_secs_f64();

    open_ms.sort_by(f64::total_cmp);
    println!(
        "webrtc_open pairs={pairs} median_ms={:.0} p90_ms={:.0} keepalive_pkts_per_s={:.2} \
         check_ms={} keepalive_ms={} wake_ms={}",
        percentile(&open_ms, 0.5),
        percentile(&open_ms, 0.9),
        per_peer_per_s,
        config.ice_check_interval.as_millis(),
        config.keepalive_interval.as_millis(),
        config.setup_wake_interval.map_or(0, |d| d.as_millis()),
    );
    for link in &links {
        link.close().await;
    }
}
