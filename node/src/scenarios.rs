//! Integration scenarios over real sockets on 127.0.0.1, written once against [`Runtime`] and
//! run by each runtime crate's tests (`runtime-tokio/tests/scenarios.rs`,
//! `runtime-smol/tests/scenarios.rs`). Behind the `scenarios` feature; not part of the API.
//!
//! Every scenario waits on events with generous deadlines (CI shares two cores) and asserts
//! what arrived, never how fast.

#![allow(missing_docs)]

use std::{collections::BTreeSet, time::Duration};

use futures::StreamExt;
use whispurr_core::{
    NodeKey,
    engine::{BroadcastAuth, Event, Extension, ExtensionContext, ExtensionMessage, PathKind},
    wire::MessageType,
};

use crate::{
    Events, Node, NodeBuilder, RelayBuilder, RelayServer, runtime::Runtime, task::with_deadline,
    webrtc::WebRtcConfig,
};

/// How long any one expected thing may take before a scenario fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The message type of [`Echo`].
pub const ECHO: MessageType = MessageType::Custom(0xE0);

/// A minimal extension: raises every message it receives as an event (`(from, payload)`).
#[derive(Debug, Default)]
pub struct Echo;

impl Extension for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn message_types(&self) -> Vec<MessageType> {
        vec![ECHO]
    }

    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>) {
        ctx.emit((msg.from, msg.payload.to_vec()));
    }
}

/// WebRTC settings for loopback tests: UDP on 127.0.0.1, loopback candidates, no mDNS.
pub fn loopback_webrtc() -> WebRtcConfig {
    WebRtcConfig::loopback()
}

/// A relay on a free loopback port.
pub async fn relay<R: Runtime>(rt: &R) -> RelayServer {
    RelayBuilder::new(rt.clone())
        .start()
        .await
        .expect("relay starts")
}

/// A node on the relay at `url`, WebRTC as given, with the [`Echo`] extension. A failed
/// WebRTC attempt is retried after a second (default 10 s, doubling): on a loaded CI machine an
/// attempt may time out, and the scenarios wait for the direct path.
pub async fn node<R: Runtime>(rt: &R, url: &str, webrtc: Option<WebRtcConfig>) -> (Node, Events) {
    NodeBuilder::new(rt.clone())
        .relay(url)
        .webrtc(webrtc)
        .extension(Box::new(Echo))
        .configure(|c| c.direct_retry = Duration::from_secs(1))
        .start()
        .await
        .expect("node starts")
}

/// Waits for the first event `pick` maps to `Some`, failing the scenario after [`DEADLINE`].
pub async fn expect<R: Runtime, T>(
    rt: &R,
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(e) = events.next().await {
            if let Some(t) = pick(&e) {
                return Some(t);
            }
        }
        None
    };
    match with_deadline(rt, DEADLINE, wait).await {
        Some(Some(t)) => t,
        Some(None) => panic!("events ended while waiting for {what}"),
        None => panic!("no {what} within {DEADLINE:?}"),
    }
}

fn key(node: &Node) -> NodeKey {
    *node.id().key()
}

/// Waits until each node has every other as a peer (through the relay or directly).
pub async fn meet<R: Runtime>(rt: &R, nodes: &mut [(Node, Events)]) {
    let keys: Vec<NodeKey> = nodes.iter().map(|(n, _)| key(n)).collect();
    for (i, (node, events)) in nodes.iter_mut().enumerate() {
        let mut want: BTreeSet<NodeKey> =
            keys.iter().copied().filter(|k| *k != key(node)).collect();
        // Peers that came up before we started listening count too.
        for p in node.peers().await.expect("node runs") {
            want.remove(p.id.key());
        }
        while !want.is_empty() {
            let up = expect(
                rt,
                events,
                &format!("node {i} meeting its peers"),
                |e| match e {
                    Event::PeerUp { peer, .. } => Some(*peer.key()),
                    _ => None,
                },
            )
            .await;
            want.remove(&up);
        }
    }
}

/// A relay and a node per WebRTC setting, once every node has met every other.
async fn met<R: Runtime>(
    rt: &R,
    webrtc: &[Option<WebRtcConfig>],
) -> (RelayServer, Vec<(Node, Events)>) {
    let relay = relay(rt).await;
    let mut nodes = Vec::new();
    for w in webrtc {
        nodes.push(node(rt, &relay.url(), w.clone()).await);
    }
    meet(rt, &mut nodes).await;
    (relay, nodes)
}

/// Relay + three nodes over WebSocket only: whisper (delivered and acknowledged), signed and
/// anonymous broadcast, resonance between two attuned nodes, an extension message, stats.
pub async fn relay_and_three_nodes<R: Runtime>(rt: R) {
    let (relay, mut nodes) = met(&rt, &[None, None, None]).await;
    let [(a, ea), (b, eb), (c, ec)] = &mut nodes[..] else {
        unreachable!()
    };

    // Whisper a → b: delivered to b, acknowledged to a.
    let id = a
        .whisper(key(b), b"psst".to_vec())
        .await
        .expect("whisper accepted");
    let got = expect(&rt, eb, "the whisper", |e| match e {
        Event::Whisper { from, payload, .. } => Some((*from, payload.clone())),
        _ => None,
    })
    .await;
    assert_eq!(got, (key(a), b"psst".to_vec()));
    expect(&rt, ea, "the whisper's delivery report", |e| {
        matches!(e, Event::WhisperDelivered { id: d } if *d == id).then_some(())
    })
    .await;

    // Broadcasts from b, signed then anonymous: both reach a and c, with origin only when signed.
    b.broadcast(b"signed hello".to_vec())
        .await
        .expect("broadcast");
    b.broadcast_with(b"anonymous hello".to_vec(), BroadcastAuth::Anonymous)
        .await
        .expect("broadcast");
    for (name, events) in [("a", &mut *ea), ("c", &mut *ec)] {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let got = expect(
                &rt,
                events,
                &format!("b's broadcasts at {name}"),
                |e| match e {
                    Event::Broadcast {
                        origin, payload, ..
                    } => Some((origin.map(|o| *o.key()), payload.clone())),
                    _ => None,
                },
            )
            .await;
            seen.push(got);
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (None, b"anonymous hello".to_vec()),
                (Some(key(b)), b"signed hello".to_vec()),
            ]
        );
    }

    // Resonance: a and c attune to "chess"; b does not and never sees it.
    a.attune("chess").await.expect("attune");
    c.attune("chess").await.expect("attune");
    let sent = with_deadline(&rt, DEADLINE, async {
        loop {
            match a.resonate("chess", 0.8, b"e4?".to_vec()).await {
                Ok(_) => return,
                // Until c's announcement of the intent has reached a.
                Err(_) => rt.sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(sent.is_some(), "a never found a node attuned to chess");
    let got = expect(&rt, ec, "the resonance", |e| match e {
        Event::Resonance {
            intent,
            payload,
            strength,
            ..
        } => Some((intent.clone(), payload.clone(), *strength)),
        _ => None,
    })
    .await;
    assert_eq!(got.0, "chess");
    assert_eq!(got.1, b"e4?".to_vec());
    assert!((got.2 - 0.8).abs() < 1e-6);

    // An extension message c → a.
    c.send_extension(ECHO, Some(key(a)), b"ext".to_vec())
        .await
        .expect("extension sent");
    let got = expect(&rt, ea, "the extension message", |e| match e {
        Event::Extension {
            extension: "echo",
            event,
        } => event.downcast_ref::<(NodeKey, Vec<u8>)>().cloned(),
        _ => None,
    })
    .await;
    assert_eq!(got, (key(c), b"ext".to_vec()));

    // Stats: everything went through the relay, nothing directly.
    let stats = a.stats().await.expect("stats");
    assert!(stats.relay.records_sent > 0 && stats.relay.records_received > 0);
    assert_eq!(stats.webrtc.records_sent, 0);
    assert_eq!(stats.engine.relays, 1);
    assert_eq!(stats.engine.peers, 2);
    let peers = a.peers().await.expect("peers");
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.path == PathKind::Relayed));
    let relay_stats = relay.stats().await.expect("relay stats");
    assert_eq!(relay_stats.relay.registered, 3);

    shut_down(&nodes, relay).await;
}

/// Relay + three nodes; one is killed (no goodbye): the other two see it go down, and still
/// talk to each other.
pub async fn killed_node_is_noticed<R: Runtime>(rt: R) {
    let (relay, mut nodes) = met(&rt, &[None, None, None]).await;
    let dead = key(&nodes[2].0);
    nodes[2].0.kill().await.expect("kill");
    for (i, (_, events)) in nodes[..2].iter_mut().enumerate() {
        expect(
            &rt,
            events,
            &format!("node {i} noticing the dead node"),
            |e| matches!(e, Event::PeerDown { peer, .. } if *peer == dead).then_some(()),
        )
        .await;
    }
    let [(a, _), (b, eb), ..] = &mut nodes[..] else {
        unreachable!()
    };
    a.whisper(key(b), b"still here".to_vec())
        .await
        .expect("whisper");
    expect(&rt, eb, "a whisper after the death", |e| {
        matches!(e, Event::Whisper { payload, .. } if payload == b"still here").then_some(())
    })
    .await;
    assert!(
        nodes[2].0.stats().await.is_err(),
        "a killed node answers nothing"
    );
    for (n, _) in &nodes[..2] {
        n.shutdown().await.expect("shutdown");
    }
    relay.shutdown().await.expect("relay shutdown");
}

/// Two nodes on a relay that is stopped and started again on the same address and identity:
/// both reconnect and whisper again.
pub async fn relay_restart_reconnects<R: Runtime>(rt: R) {
    let identity = whispurr_core::Identity::generate(&mut rand::rng(), crate::now());
    let first = RelayBuilder::new(rt.clone())
        .identity(identity.clone())
        .start()
        .await
        .expect("relay starts");
    let (addr, url) = (first.local_addr(), first.url());
    let mut nodes = vec![node(&rt, &url, None).await, node(&rt, &url, None).await];
    meet(&rt, &mut nodes).await;
    first.shutdown().await.expect("relay shutdown");
    for (i, (_, events)) in nodes.iter_mut().enumerate() {
        expect(&rt, events, &format!("node {i} losing its relay"), |e| {
            matches!(e, Event::RelayDown { .. }).then_some(())
        })
        .await;
    }
    let second = RelayBuilder::new(rt.clone())
        .identity(identity)
        .listen(addr)
        .start()
        .await
        .expect("relay restarts on the same address");
    for (i, (_, events)) in nodes.iter_mut().enumerate() {
        expect(&rt, events, &format!("node {i} back on the relay"), |e| {
            matches!(e, Event::RelayUp { .. }).then_some(())
        })
        .await;
    }
    let [(a, _), (b, eb)] = &mut nodes[..] else {
        unreachable!()
    };
    let (a, b_key) = (a.clone(), key(b));
    // The first whisper may find no route until the peers have met again: retry until one
    // is accepted, then it must arrive.
    let accepted = with_deadline(&rt, DEADLINE, async {
        while a.whisper(b_key, b"again".to_vec()).await.is_err() {
            rt.sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        accepted.is_some(),
        "no route to b after the relay came back"
    );
    expect(&rt, eb, "a whisper after the restart", |e| {
        matches!(e, Event::Whisper { payload, .. } if payload == b"again").then_some(())
    })
    .await;
    for (n, _) in &nodes {
        n.shutdown().await.expect("shutdown");
    }
    second.shutdown().await.expect("relay shutdown");
}

/// Five nodes; each broadcasts `per_node` messages as fast as it can; every node must receive
/// every other node's messages, each exactly once, or be told which were not sent.
pub async fn broadcast_burst<R: Runtime>(rt: R, webrtc: Option<WebRtcConfig>, per_node: usize) {
    let (relay, mut nodes) = met(&rt, &vec![webrtc; 5]).await;
    // Every node's events are read at once, as an application would.
    let want = per_node * 4;
    let mut collectors = Vec::new();
    for (i, (_, events)) in nodes.iter_mut().enumerate() {
        let (tx, rx) = futures::channel::oneshot::channel();
        let mut events = std::mem::replace(
            events,
            Events {
                rx: futures::channel::mpsc::channel(1).1,
            },
        );
        let rt2 = rt.clone();
        rt.spawn(async move {
            let mut got = BTreeSet::new();
            let result = loop {
                if got.len() == want {
                    break Ok(events);
                }
                let next = with_deadline(&rt2, DEADLINE, events.next()).await;
                match next {
                    Some(Some(Event::Broadcast { payload, .. })) => {
                        if !got.insert(payload) {
                            break Err(format!("node {i} received a broadcast twice"));
                        }
                    }
                    Some(Some(e @ Event::NotSent { .. })) => {
                        break Err(format!("node {i} was told: {e:?}"));
                    }
                    Some(Some(_)) => {}
                    Some(None) => break Err(format!("node {i}'s events ended")),
                    None => {
                        break Err(format!(
                            "node {i} has {} of {want} broadcasts after waiting {DEADLINE:?}",
                            got.len()
                        ));
                    }
                }
            };
            let _ = tx.send(result);
        });
        collectors.push(rx);
    }
    let senders: Vec<Node> = nodes.iter().map(|(n, _)| n.clone()).collect();
    let mut tasks = Vec::new();
    for (i, n) in senders.into_iter().enumerate() {
        let (tx, rx) = futures::channel::oneshot::channel();
        rt.spawn(async move {
            for j in 0..per_node {
                let payload = format!("{i}:{j}").into_bytes();
                if let Err(e) = n.broadcast(payload).await {
                    let _ = tx.send(Err(format!("node {i}, broadcast {j}: {e}")));
                    return;
                }
            }
            let _ = tx.send(Ok(()));
        });
        tasks.push(rx);
    }
    for t in tasks {
        if let Err(e) = t.await.expect("sender finished") {
            panic!("{e}; relay: {:#?}", relay.stats().await);
        }
    }
    for c in collectors {
        if let Err(e) = c.await.expect("collector finished") {
            let mut report = String::new();
            for (j, (n, _)) in nodes.iter().enumerate() {
                report += &format!("node {j}: {:?}\n", n.stats().await);
            }
            panic!("{e}\n{report}relay: {:?}", relay.stats().await);
        }
    }
    shut_down(&nodes, relay).await;
}

/// A relay and two nodes with WebRTC on, once each sees the other on the direct path.
async fn direct_pair<R: Runtime>(rt: &R) -> (RelayServer, Vec<(Node, Events)>) {
    let relay = relay(rt).await;
    let url = relay.url();
    let mut nodes = vec![
        node(rt, &url, Some(loopback_webrtc())).await,
        node(rt, &url, Some(loopback_webrtc())).await,
    ];
    for i in 0..2 {
        let other = key(&nodes[1 - i].0);
        expect(
            rt,
            &mut nodes[i].1,
            &format!("node {i}'s direct path"),
            |e| {
                matches!(e, Event::PeerUp { peer, path: PathKind::Direct } if *peer.key() == other)
                    .then_some(())
            },
        )
        .await;
    }
    (relay, nodes)
}

/// Shuts every node down, then the relay.
async fn shut_down(nodes: &[(Node, Events)], relay: RelayServer) {
    for (n, _) in nodes {
        n.shutdown().await.expect("shutdown");
    }
    relay.shutdown().await.expect("relay shutdown");
}

/// Two nodes on a relay with WebRTC on: they meet through the relay, then their traffic moves
/// to a real WebRTC data channel (the path is direct, records cross the data channel).
pub async fn webrtc_upgrade<R: Runtime>(rt: R) {
    let (relay, mut nodes) = direct_pair(&rt).await;
    let [(a, ea), (b, eb)] = &mut nodes[..] else {
        unreachable!()
    };
    let before = a.stats().await.expect("stats").webrtc.records_sent;
    whisper_once(&rt, (a, ea), (b, eb), b"over webrtc").await;
    let stats = a.stats().await.expect("stats");
    assert!(
        stats.webrtc.records_sent > before,
        "the whisper did not cross the data channel"
    );
    assert!(stats.webrtc.records_received > 0);
    let peers = a.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    // The direct link is up. Which path carries traffic is the engine's choice by quality (a
    // loaded machine can make the tunnel score better for a while), so it is not asserted.
    assert!(peers[0].direct_up, "{:?}", peers[0]);
    shut_down(&nodes, relay).await;
}

/// Whispers `text` from `a` to `b` and waits for it at `b` and for the acknowledgement at `a`;
/// the whisper must arrive exactly once.
async fn whisper_once<R: Runtime>(
    rt: &R,
    (a, ea): (&Node, &mut Events),
    (b, eb): (&Node, &mut Events),
    text: &[u8],
) {
    let id = a
        .whisper(key(b), text.to_vec())
        .await
        .expect("whisper accepted");
    expect(rt, eb, "the whisper", |e| {
        matches!(e, Event::Whisper { payload, .. } if payload == text).then_some(())
    })
    .await;
    expect(rt, ea, "the whisper's acknowledgement", |e| {
        matches!(e, Event::WhisperDelivered { id: d } if *d == id).then_some(())
    })
    .await;
}

/// One node without WebRTC: its peer never tries a direct path to it, and traffic runs on the
/// relay.
pub async fn webrtc_off_stays_on_the_relay<R: Runtime>(rt: R) {
    let (relay, mut nodes) = met(&rt, &[Some(loopback_webrtc()), None]).await;
    let [(a, ea), (b, eb)] = &mut nodes[..] else {
        unreachable!()
    };
    whisper_once(&rt, (a, ea), (b, eb), b"via the relay").await;
    whisper_once(&rt, (b, eb), (a, ea), b"and back").await;
    for n in [&*a, &*b] {
        let stats = n.stats().await.expect("stats");
        assert_eq!(stats.webrtc.records_sent + stats.webrtc.records_received, 0);
        assert_eq!(stats.webrtc_failed, 0, "no attempt should have been made");
        let peers = n.peers().await.expect("peers");
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].path, PathKind::Relayed);
    }
    shut_down(&nodes, relay).await;
}

/// WebRTC on at both ends but every attempt failing (timing out): the attempt fails and the
/// pair keeps talking through the relay.
pub async fn webrtc_failing_stays_on_the_relay<R: Runtime>(rt: R) {
    let broken = WebRtcConfig {
        // Every attempt gives up long before a channel could open (it takes tens of ms).
        open_timeout: Duration::from_millis(1),
        ..loopback_webrtc()
    };
    let (relay, mut nodes) = met(&rt, &[Some(broken.clone()), Some(broken)]).await;
    // Wait until the offerer's attempt has failed.
    let failed = with_deadline(&rt, DEADLINE, async {
        loop {
            let mut total = 0;
            for (n, _) in &nodes {
                total += n.stats().await.expect("stats").webrtc_failed;
            }
            if total > 0 {
                return;
            }
            rt.sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(failed.is_some(), "no WebRTC attempt failed");
    let [(a, ea), (b, eb)] = &mut nodes[..] else {
        unreachable!()
    };
    whisper_once(&rt, (a, ea), (b, eb), b"still through the relay").await;
    let peers = a.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].path, PathKind::Relayed);
    shut_down(&nodes, relay).await;
}

/// A pair on WebRTC loses its data channel (as in a network failure): traffic falls back to
/// the relay at once, and a whisper sent right after arrives exactly once.
pub async fn direct_path_failure_falls_back_to_the_relay<R: Runtime>(rt: R) {
    let (relay, mut nodes) = direct_pair(&rt).await;
    let [(a, ea), (b, eb)] = &mut nodes[..] else {
        unreachable!()
    };
    whisper_once(&rt, (a, ea), (b, eb), b"direct").await;
    let broken = a
        .break_transport(crate::Transport::WebRtc)
        .await
        .expect("break");
    assert_eq!(broken, 1);
    // Sent at once, while the engine learns the direct path is gone.
    whisper_once(&rt, (a, ea), (b, eb), b"after the break").await;
    let peers = a.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(
        peers[0].path,
        PathKind::Relayed,
        "the relay did not take over"
    );
    let relayed_before = a.stats().await.expect("stats").relay.records_sent;
    whisper_once(&rt, (a, ea), (b, eb), b"on the relay").await;
    assert!(a.stats().await.expect("stats").relay.records_sent > relayed_before);
    // Nothing arrived twice: no second copy of any whisper is waiting at b. The marker goes
    // from a, on the path a chose after the break, so it comes after anything a sent before.
    a.broadcast(b"marker".to_vec()).await.expect("broadcast");
    let mut seen = Vec::new();
    expect(&rt, eb, "the marker", |e| match e {
        Event::Whisper { payload, .. } => {
            seen.push(payload.clone());
            None
        }
        Event::Broadcast { payload, .. } if payload == b"marker" => Some(()),
        _ => None,
    })
    .await;
    assert!(seen.is_empty(), "a whisper arrived twice: {seen:?}");
    shut_down(&nodes, relay).await;
}

/// Issue 11, finding 7 (the relay's half): idle sockets from one address cannot hold the
/// relay. Ten WebSockets from 127.0.0.1 that never say a word: the connect rate admits nine,
/// the per-source cap six at a time, the unregistered cap three; the relay holds three
/// clients, and none once they go.
pub async fn finding_07_relay_caps_idle_connections_per_source<R: Runtime>(rt: R) {
    use whispurr_core::relay::RateLimit;
    let relay = RelayBuilder::new(rt.clone())
        .source_limits(crate::SourceLimits {
            max_connections: 6,
            max_unregistered: 3,
            ws_handshake: Duration::from_secs(30),
            // No refill: exactly nine connections pass the rate, whatever the timing.
            connect_rate: RateLimit {
                per_second: 0,
                burst: 9,
            },
        })
        .start()
        .await
        .expect("relay starts");
    let mut held = Vec::new();
    for _ in 0..10 {
        let request = crate::ws::WsHeaders::default()
            .request(&relay.url())
            .expect("url");
        // Refused connections fail their handshake; the others are kept open and silent.
        if let Some(Ok(ws)) = with_deadline(
            &rt,
            DEADLINE,
            rt.ws_connect(request, crate::ws::ws_config()),
        )
        .await
        {
            held.push(ws);
        }
    }
    let settled = with_deadline(&rt, DEADLINE, async {
        loop {
            let s = relay.stats().await.expect("stats");
            if s.refused_rate + s.refused_connections + s.refused_unregistered == 7 {
                return s;
            }
            rt.sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("seven connections refused");
    assert_eq!(settled.refused_rate, 1);
    assert_eq!(
        settled.refused_connections + settled.refused_unregistered,
        6
    );
    assert_eq!(settled.relay.clients, 3);
    drop(held);
    let emptied = with_deadline(&rt, DEADLINE, async {
        while relay.stats().await.expect("stats").relay.clients > 0 {
            rt.sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        emptied.is_some(),
        "the relay kept clients whose sockets closed"
    );
    relay.shutdown().await.expect("relay shutdown");
}

/// A node listening for direct WebSocket links and one dialling it, no relay at all: they
/// meet over the direct link and whisper both ways on it.
pub async fn direct_websocket_link<R: Runtime>(rt: R) {
    let (a, mut ea) = NodeBuilder::new(rt.clone())
        .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .webrtc(None)
        .start()
        .await
        .expect("listening node starts");
    let addr = a.listen_addr().expect("listening");
    let (b, mut eb) = NodeBuilder::new(rt.clone())
        .peer(format!("ws://{addr}"))
        .webrtc(None)
        .start()
        .await
        .expect("dialling node starts");
    for (events, other) in [(&mut ea, key(&b)), (&mut eb, key(&a))] {
        expect(&rt, events, "the direct link", |e| {
            matches!(e, Event::PeerUp { peer, path: PathKind::Direct } if *peer.key() == other)
                .then_some(())
        })
        .await;
    }
    whisper_once(&rt, (&a, &mut ea), (&b, &mut eb), b"no relay needed").await;
    whisper_once(&rt, (&b, &mut eb), (&a, &mut ea), b"indeed").await;
    let stats = a.stats().await.expect("stats");
    assert!(stats.websocket.records_sent > 0 && stats.websocket.records_received > 0);
    assert_eq!(stats.relay.records_sent, 0);
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// A WebSocket message over the record limit closes the connection (relay side), and the
/// relay keeps serving others.
pub async fn oversize_websocket_message_closes_the_connection<R: Runtime>(rt: R) {
    use futures::SinkExt;
    let relay = relay(&rt).await;
    let request = crate::ws::WsHeaders::default()
        .request(&relay.url())
        .expect("url");
    let mut ws = rt
        .ws_connect(request, crate::ws::ws_config())
        .await
        .expect("connects");
    let big = vec![0u8; crate::ws::MAX_RECORD + 1];
    // The relay may close before the whole frame is written; either way the stream ends.
    let _ = ws.send(tungstenite::Message::Binary(big.into())).await;
    let ended = with_deadline(&rt, DEADLINE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(
        ended.is_some(),
        "the relay kept a connection that sent an oversize message"
    );
    let mut nodes = vec![
        node(&rt, &relay.url(), None).await,
        node(&rt, &relay.url(), None).await,
    ];
    meet(&rt, &mut nodes).await;
    shut_down(&nodes, relay).await;
}
