//! Regression tests for the attacks of the security review (issue 11), one per finding, named
//! for it. Each failed on the code before its fix.

mod common;

use std::time::Duration;

use common::net::Net;
use whispurr_core::engine::{Config, Event};

const SEC: Duration = Duration::from_secs(1);
const MS100: Duration = Duration::from_millis(100);

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Finding 5: a relay reconnect that fires while the link table is full was dropped for good.
#[test]
fn finding_05_a_failed_relay_reconnect_is_retried() {
    let mut net = Net::new(1, |_| Config {
        max_links: 2,
        ..Config::default()
    });
    net.connect_all();
    net.take(0);
    // The relay link drops, and an attacker holds both link slots with idle inbound links
    // while the reconnect comes due.
    net.drop_relay_links();
    let now = net.now;
    let a = net.nodes[0].handle_incoming(now).unwrap();
    let b = net.nodes[0].handle_incoming(now).unwrap();
    net.run_for(5 * SEC, MS100);
    // Then the attacker lets go.
    let now = net.now;
    let _ = net.nodes[0].handle_link_down(now, a);
    let _ = net.nodes[0].handle_link_down(now, b);
    net.run_for(120 * SEC, MS100);
    let ev = net.take(0);
    assert_eq!(
        count(&ev, |e| matches!(e, Event::RelayUp { .. })),
        1,
        "{ev:?}"
    );
}

/// Finding 8: a peer could make a node open a WebRTC connection (and so learn its addresses)
/// by sending an offer, whatever the node's settings.
#[test]
fn finding_08_a_peer_cannot_force_a_webrtc_connection() {
    use whispurr_core::{
        crypto::link::LinkConfig,
        engine::{Action, Addr, CAP_WEBRTC, WebRtcSignal},
        wire::{Frame, Message, Signal},
    };
    let webrtc = LinkConfig {
        capabilities: CAP_WEBRTC,
        ..LinkConfig::default()
    };
    // (node's try_direct, node's capabilities, peer's capabilities, peer offers rightly)
    let cases = [
        (false, CAP_WEBRTC, CAP_WEBRTC, true),
        (true, 0, CAP_WEBRTC, true),
        (true, CAP_WEBRTC, 0, true),
        (true, CAP_WEBRTC, CAP_WEBRTC, false),
        (true, CAP_WEBRTC, CAP_WEBRTC, true),
    ];
    for (try_direct, mine, theirs, right_side) in cases {
        let mut engine = common::net::node(
            1,
            Config {
                try_direct,
                link: LinkConfig {
                    capabilities: mine,
                    ..webrtc
                },
                ..Config::default()
            },
        );
        // A peer whose key is smaller than the node's offers by the rule; a larger one does not.
        let seed = common::net::seed_with_key(|k| (k < engine.node_id().key()) == right_side);
        let (identity, mut conn, link) = common::net::raw_peer_with(&mut engine, seed, theirs);
        common::net::pump_raw(&mut engine, &mut conn, link);
        while engine.poll_action().is_some() {}
        let offer = Message::Signal(Signal {
            target: *engine.node_id().key(),
            origin: *identity.node_id(),
            signal: WebRtcSignal::Offer { sdp: "v=0\r\n" },
        });
        conn.queue_frame(&Frame::new(offer), 0, true).unwrap();
        common::net::pump_raw(&mut engine, &mut conn, link);
        let opened = std::iter::from_fn(|| engine.poll_action()).any(|a| {
            matches!(
                a,
                Action::Connect {
                    addr: Addr::WebRtc { .. },
                    ..
                }
            )
        });
        let allowed = try_direct && mine != 0 && theirs != 0 && right_side;
        assert_eq!(
            opened, allowed,
            "try_direct {try_direct}, caps {mine}/{theirs}, offerer rule kept: {right_side}"
        );
    }
}
