//! A smol node and a tokio node talk through one relay, then directly over WebRTC.

use std::time::Duration;

use futures::StreamExt;
use whispurr_core::{
    NodeKey,
    engine::{Event, PathKind},
};
use whispurr_node::{
    Events, Node, NodeBuilder, RelayBuilder, runtime::Runtime, webrtc::WebRtcConfig, with_deadline,
};

/// Waits on `rt` for the first event `pick` accepts, failing after 60 s.
async fn expect<R: Runtime>(
    rt: &R,
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(&Event) -> bool,
) {
    let wait = async {
        while let Some(e) = events.next().await {
            if pick(&e) {
                return true;
            }
        }
        false
    };
    match with_deadline(rt, Duration::from_secs(60), wait).await {
        Some(true) => {}
        Some(false) => panic!("events ended while waiting for {what}"),
        None => panic!("no {what} within 60 s"),
    }
}

async fn talk<R: Runtime>(rt: R, me: Node, mut events: Events, other: NodeKey, name: &str) {
    // The other side may see the direct link first and whisper at once: its whisper can come
    // before our own PeerUp, so it is noted while we wait for that.
    let mut got = false;
    expect(
        &rt,
        &mut events,
        &format!("{name}: the peer on WebRTC"),
        |e| {
            got |= matches!(e, Event::Whisper { from, .. } if *from == other);
            matches!(e, Event::PeerUp { peer, path: PathKind::Direct } if *peer.key() == other)
        },
    )
    .await;
    me.whisper(other, name.as_bytes().to_vec())
        .await
        .expect("whisper");
    let mut acked = false;
    expect(
        &rt,
        &mut events,
        &format!("{name}: the other's whisper and our ack"),
        |e| {
            got |= matches!(e, Event::Whisper { from, .. } if *from == other);
            acked |= matches!(e, Event::WhisperDelivered { .. });
            got && acked
        },
    )
    .await;
    let peers = me.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    // The direct link is up. Which path carries traffic is the engine's choice by quality (a
    // loaded machine can make the tunnel score better for a while), so it is not asserted.
    assert!(peers[0].direct_up, "{:?}", peers[0]);
    assert!(me.stats().await.expect("stats").webrtc.records_received > 0);
}

#[test]
fn a_smol_node_and_a_tokio_node_talk_through_a_relay_and_over_webrtc() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (relay, tokio_node) = tokio_rt.block_on(async {
        let relay = RelayBuilder::new(whispurr_tokio::Tokio)
            .start()
            .await
            .expect("relay");
        let node = NodeBuilder::new(whispurr_tokio::Tokio)
            .relay(relay.url())
            .webrtc(Some(WebRtcConfig::loopback()))
            // A failed attempt (a loaded machine) is retried after a second, not ten.
            .configure(|c| c.direct_retry = Duration::from_secs(1))
            .start()
            .await
            .expect("tokio node");
        (relay, node)
    });
    let url = relay.url();
    let smol_node = smol::block_on(
        NodeBuilder::new(whispurr_smol::Smol)
            .relay(url)
            .webrtc(Some(WebRtcConfig::loopback()))
            .configure(|c| c.direct_retry = Duration::from_secs(1))
            .start(),
    )
    .expect("smol node");
    let (tk, sk) = (*tokio_node.0.id().key(), *smol_node.0.id().key());
    // The smol side runs on its own plain thread, the tokio side on the tokio runtime. Neither
    // shuts down before both have talked: a side that left early took the other's
    // acknowledgement with it (the other's whisper then failed).
    // (Channels, not a barrier: a side that panics drops its end, and the other goes on.)
    let (smol_talked, talked) = std::sync::mpsc::channel::<()>();
    let (go, smol_go) = std::sync::mpsc::channel::<()>();
    let smol_side = std::thread::spawn(move || {
        smol::block_on(talk(
            whispurr_smol::Smol,
            smol_node.0.clone(),
            smol_node.1,
            tk,
            "smol",
        ));
        let _ = smol_talked.send(());
        let _ = smol_go.recv();
        smol::block_on(smol_node.0.shutdown()).expect("shutdown");
    });
    tokio_rt.block_on(async {
        talk(
            whispurr_tokio::Tokio,
            tokio_node.0.clone(),
            tokio_node.1,
            sk,
            "tokio",
        )
        .await;
    });
    let _ = talked.recv();
    drop(go);
    smol_side.join().expect("the smol side finished");
    tokio_rt.block_on(async {
        tokio_node.0.shutdown().await.expect("shutdown");
        relay.shutdown().await.expect("relay shutdown");
    });
}
