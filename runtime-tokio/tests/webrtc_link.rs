//! `whispurr_node::webrtc::DirectChannel` over real UDP sockets on 127.0.0.1: two links in one
//! process, their signals wired to each other through channels, as the engine would carry them.
//!
//! Every wait has a generous deadline (CI shares two cores) and nothing sleeps to synchronise;
//! no assertion is about timing.

use std::{future::Future, sync::Arc, time::Duration};

use futures::{StreamExt, channel::mpsc};
use whispurr_core::wire::WebRtcSignal;
use whispurr_node::webrtc::{DirectChannel, WebRtcConfig, WebRtcError};

/// How long any single step may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn runtime() -> Arc<dyn webrtc::runtime::Runtime> {
    Arc::new(webrtc::runtime::TokioRuntime)
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {DEADLINE:?}"))
}

/// Hands every signal one side emits to the other side, in order.
fn forward(mut signals: mpsc::UnboundedReceiver<WebRtcSignal>, to: DirectChannel) {
    tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            if let Err(error) = to.handle_signal(signal).await {
                panic!("signal rejected: {error}");
            }
        }
    });
}

/// An offerer and an answerer, wired to each other, both open.
async fn open_pair(
    offerer: &WebRtcConfig,
    answerer: &WebRtcConfig,
) -> (DirectChannel, DirectChannel) {
    let (a_tx, a_rx) = mpsc::unbounded();
    let (b_tx, b_rx) = mpsc::unbounded();
    let a = DirectChannel::start(runtime(), offerer, true, a_tx)
        .await
        .expect("offerer starts");
    let b = DirectChannel::start(runtime(), answerer, false, b_tx)
        .await
        .expect("answerer starts");
    forward(a_rx, b.clone());
    forward(b_rx, a.clone());
    within("offerer open", a.opened())
        .await
        .expect("offerer opens");
    within("answerer open", b.opened())
        .await
        .expect("answerer opens");
    (a, b)
}

/// Record `i` of a burst: its index, then filler, so order and content are both checked.
fn record(i: u32) -> Vec<u8> {
    let mut record = i.to_be_bytes().to_vec();
    record.resize(4 + (i as usize % 300), (i % 251) as u8);
    record
}

async fn send_burst(from: DirectChannel, count: u32) {
    for i in 0..count {
        from.send(&record(i)).await.expect("burst record sent");
    }
}

async fn receive_burst(to: DirectChannel, count: u32) {
    for i in 0..count {
        let got = within("burst record", to.recv())
            .await
            .expect("link still open");
        assert_eq!(got, record(i), "record {i} out of order or corrupted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_flow_both_ways_in_order() {
    let config = WebRtcConfig::loopback();
    let (a, b) = open_pair(&config, &config).await;

    a.send(b"hello from the offerer").await.unwrap();
    b.send(b"hello from the answerer").await.unwrap();
    assert_eq!(
        within("a->b", b.recv()).await.unwrap(),
        b"hello from the offerer"
    );
    assert_eq!(
        within("b->a", a.recv()).await.unwrap(),
        b"hello from the answerer"
    );

    // A 60 KiB record, each way.
    let big: Vec<u8> = (0..60 * 1024).map(|i| (i % 253) as u8).collect();
    a.send(&big).await.unwrap();
    b.send(&big).await.unwrap();
    assert_eq!(within("big a->b", b.recv()).await.unwrap(), big);
    assert_eq!(within("big b->a", a.recv()).await.unwrap(), big);

    // 2,000 records each way at once, read while they are being written.
    const BURST: u32 = 2_000;
    let tasks = [
        tokio::spawn(send_burst(a.clone(), BURST)),
        tokio::spawn(send_burst(b.clone(), BURST)),
        tokio::spawn(receive_burst(b.clone(), BURST)),
        tokio::spawn(receive_burst(a.clone(), BURST)),
    ];
    for task in tasks {
        within("burst", task).await.expect("burst task panicked");
    }

    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_message_closes_the_link() {
    let sender = WebRtcConfig::loopback();
    let receiver = WebRtcConfig {
        max_message_size: 1024,
        ..WebRtcConfig::loopback()
    };
    let (a, b) = open_pair(&sender, &receiver).await;

    a.send(&[7; 1024]).await.unwrap();
    assert_eq!(
        within("at the limit", b.recv()).await.unwrap(),
        vec![7; 1024]
    );

    a.send(&[8; 1025]).await.unwrap();
    assert_eq!(within("above the limit", b.recv()).await, None);
    assert!(matches!(b.send(b"late").await, Err(WebRtcError::Closed)));

    // The receiver's close resets the channel, so the sender's side ends too.
    assert_eq!(within("sender sees the close", a.recv()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_times_out_when_the_peer_never_answers() {
    let config = WebRtcConfig {
        open_timeout: Duration::from_secs(1),
        ..WebRtcConfig::loopback()
    };
    // The offer goes nowhere: nobody answers.
    let (signals, _unanswered) = mpsc::unbounded();
    let a = DirectChannel::start(runtime(), &config, true, signals)
        .await
        .expect("offerer starts");
    let result = within("open timeout", a.opened()).await;
    assert!(
        matches!(result, Err(WebRtcError::OpenTimeout)),
        "expected OpenTimeout, got {result:?}"
    );
    assert_eq!(within("recv after timeout", a.recv()).await, None);
    assert!(a.send(b"never").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_on_one_side_ends_the_other_sides_recv() {
    let config = WebRtcConfig::loopback();
    let (a, b) = open_pair(&config, &config).await;

    a.send(b"before the close").await.unwrap();
    assert_eq!(
        within("before close", b.recv()).await.unwrap(),
        b"before the close"
    );

    within("close", a.close()).await;
    assert_eq!(within("peer sees the close", b.recv()).await, None);
    assert!(matches!(a.send(b"after").await, Err(WebRtcError::Closed)));
    assert_eq!(within("closed side recv", a.recv()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misplaced_signals_are_rejected() {
    let config = WebRtcConfig::loopback();
    let (signals, _rx) = mpsc::unbounded();
    let a = DirectChannel::start(runtime(), &config, true, signals)
        .await
        .unwrap();
    let result = a
        .handle_signal(WebRtcSignal::Offer { sdp: "v=0".into() })
        .await;
    assert!(matches!(
        result,
        Err(WebRtcError::UnexpectedSignal("offer"))
    ));
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_before_the_offer_are_queued() {
    let config = WebRtcConfig::loopback();
    let (a_tx, mut a_rx) = mpsc::unbounded();
    let (b_tx, b_rx) = mpsc::unbounded();
    let a = DirectChannel::start(runtime(), &config, true, a_tx)
        .await
        .expect("offerer starts");
    let b = DirectChannel::start(runtime(), &config, false, b_tx)
        .await
        .expect("answerer starts");
    forward(b_rx, a.clone());

    // Hold the offerer's signals until it has gathered everything, then deliver them with the
    // offer last, as a reordering signalling path might.
    let mut held = Vec::new();
    loop {
        let signal = within("offerer signal", a_rx.next())
            .await
            .expect("offerer still signalling");
        let done = signal == WebRtcSignal::EndOfCandidates;
        held.push(signal);
        if done {
            break;
        }
    }
    let (offers, candidates): (Vec<_>, Vec<_>) = held
        .into_iter()
        .partition(|signal| matches!(signal, WebRtcSignal::Offer { .. }));
    assert_eq!(offers.len(), 1, "one offer");
    assert!(
        candidates.len() > 1,
        "at least one candidate before the end"
    );
    for signal in candidates.into_iter().chain(offers) {
        b.handle_signal(signal).await.expect("signal accepted");
    }
    forward(a_rx, b.clone());

    within("offerer open", a.opened())
        .await
        .expect("offerer opens");
    within("answerer open", b.opened())
        .await
        .expect("answerer opens");
    a.send(b"queued candidates worked").await.unwrap();
    assert_eq!(
        within("a->b", b.recv()).await.unwrap(),
        b"queued candidates worked"
    );
    a.close().await;
    b.close().await;
}
