//! The shared integration scenarios (`whispurr_node::scenarios`) on tokio, over real sockets on
//! 127.0.0.1.

use whispurr_node::scenarios;
use whispurr_tokio::Tokio;

/// Logs to the test's output, filtered by RUST_LOG (e.g. `RUST_LOG=whispurr_node=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_three_nodes() {
    scenarios::relay_and_three_nodes(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_noticed() {
    scenarios::killed_node_is_noticed(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_reconnects() {
    scenarios::relay_restart_reconnects(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_burst_over_the_relay() {
    scenarios::broadcast_burst(Tokio, None, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_upgrade() {
    logs();
    scenarios::webrtc_upgrade(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_off_stays_on_the_relay() {
    scenarios::webrtc_off_stays_on_the_relay(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_failing_stays_on_the_relay() {
    logs();
    scenarios::webrtc_failing_stays_on_the_relay(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_path_failure_falls_back_to_the_relay() {
    logs();
    scenarios::direct_path_failure_falls_back_to_the_relay(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_07_relay_caps_idle_connections_per_source() {
    scenarios::finding_07_relay_caps_idle_connections_per_source(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_websocket_link() {
    scenarios::direct_websocket_link(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_websocket_message_closes_the_connection() {
    scenarios::oversize_websocket_message_closes_the_connection(Tokio).await;
}
