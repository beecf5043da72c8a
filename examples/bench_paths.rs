//! Path benchmark over real sockets on 127.0.0.1: for each trial a fresh pair of nodes joins
//! one relay, and we measure
//! - `first_msg`: from the moment the first node sees the second come up (through the relay)
//!   to the moment its first whisper is delivered there;
//! - `meet`: from starting the second node to the first seeing it (registration at the relay,
//!   lookup, the tunnel's handshake);
//! - `to_webrtc`: from that same moment to the pair's traffic running on WebRTC (the node sees
//!   the peer up on the direct path), with the default WebRTC timers bound to loopback.
//!
//! Run: `cargo run --release -p whispurr-examples --example bench_paths [-- --trials N]`.
//! Prints one summary line.

use std::time::{Duration, Instant};

use futures::StreamExt;
use whispurr_core::engine::{Event, PathKind};
use whispurr_node::{NodeBuilder, RelayBuilder, webrtc::WebRtcConfig};
use whispurr_tokio::Tokio;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut trials = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--trials" {
            trials = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--trials N");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let relay = RelayBuilder::new(Tokio).start().await.expect("relay");
        let (mut first, mut direct, mut meet) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..trials {
            let start = |webrtc| {
                NodeBuilder::new(Tokio)
                    .relay(relay.url())
                    .webrtc(Some(webrtc))
                    .start()
            };
            let (a, mut ea) = start(WebRtcConfig::loopback()).await.expect("node");
            let joined = Instant::now();
            let (b, mut eb) = start(WebRtcConfig::loopback()).await.expect("node");
            let b_key = *b.id().key();
            // Wait for a to see b (relayed), then whisper at once.
            let met = loop {
                match ea.next().await.expect("events") {
                    Event::PeerUp { peer, .. } if *peer.key() == b_key => break Instant::now(),
                    _ => {}
                }
            };
            a.whisper(b_key, b"first".to_vec()).await.expect("whisper");
            let deadline = Duration::from_secs(30);
            let got = tokio::time::timeout(deadline, async {
                loop {
                    if let Event::Whisper { .. } = eb.next().await.expect("events") {
                        return Instant::now();
                    }
                }
            })
            .await
            .expect("the first whisper arrives");
            first.push(got.duration_since(met).as_secs_f64() * 1e3);
            meet.push(met.duration_since(joined).as_secs_f64() * 1e3);
            let up = tokio::time::timeout(deadline, async {
                loop {
                    match ea.next().await.expect("events") {
                        Event::PeerUp {
                            peer,
                            path: PathKind::Direct,
                        } if *peer.key() == b_key => return Instant::now(),
                        _ => {}
                    }
                }
            })
            .await
            .expect("the direct path comes up");
            direct.push(up.duration_since(met).as_secs_f64() * 1e3);
            a.shutdown().await.expect("shutdown");
            b.shutdown().await.expect("shutdown");
        }
        relay.shutdown().await.expect("relay shutdown");
        first.sort_by(f64::total_cmp);
        direct.sort_by(f64::total_cmp);
        meet.sort_by(f64::total_cmp);
        let d = WebRtcConfig::default();
        println!(
            "paths trials={trials} first_msg_median_ms={:.2} first_msg_p90_ms={:.2} \
             meet_median_ms={:.1} to_webrtc_median_ms={:.1} to_webrtc_p90_ms={:.1} check_ms={} \
             keepalive_ms={}",
            percentile(&first, 0.5),
            percentile(&first, 0.9),
            percentile(&meet, 0.5),
            percentile(&direct, 0.5),
            percentile(&direct, 0.9),
            d.ice_check_interval.as_millis(),
            d.keepalive_interval.as_millis(),
        );
    });
}
