//! The shared integration scenarios (`whispurr_node::scenarios`) on smol, over real sockets on
//! 127.0.0.1, each on a plain test thread with no tokio runtime anywhere in it.

use whispurr_node::scenarios;
use whispurr_smol::Smol;

/// Runs a scenario under `smol::block_on` on this thread (no tokio runtime is ever built
/// here: anything that reached for one would panic for lack of a reactor).
fn run(scenario: impl std::future::Future<Output = ()>) {
    smol::block_on(scenario);
}

#[test]
fn relay_and_three_nodes() {
    run(scenarios::relay_and_three_nodes(Smol));
}

#[test]
fn webrtc_upgrade() {
    run(scenarios::webrtc_upgrade(Smol));
}

#[test]
fn webrtc_off_stays_on_the_relay() {
    run(scenarios::webrtc_off_stays_on_the_relay(Smol));
}

#[test]
fn webrtc_failing_stays_on_the_relay() {
    run(scenarios::webrtc_failing_stays_on_the_relay(Smol));
}

#[test]
fn direct_path_failure_falls_back_to_the_relay() {
    run(scenarios::direct_path_failure_falls_back_to_the_relay(Smol));
}

#[test]
fn killed_node_is_noticed() {
    run(scenarios::killed_node_is_noticed(Smol));
}

#[test]
fn relay_restart_reconnects() {
    run(scenarios::relay_restart_reconnects(Smol));
}

#[test]
fn broadcast_burst_over_the_relay() {
    run(scenarios::broadcast_burst(Smol, None, 2_000));
}

#[test]
fn direct_websocket_link() {
    run(scenarios::direct_websocket_link(Smol));
}

#[test]
fn oversize_websocket_message_closes_the_connection() {
    run(scenarios::oversize_websocket_message_closes_the_connection(
        Smol,
    ));
}

#[test]
fn finding_07_relay_caps_idle_connections_per_source() {
    run(scenarios::finding_07_relay_caps_idle_connections_per_source(Smol));
}
