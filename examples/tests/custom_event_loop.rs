//! Runs the custom event loop example and checks what each node received.

#[path = "../custom_event_loop.rs"]
mod custom_event_loop;

fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.contains(text))
}

#[test]
fn the_tour_delivers_everything_it_shows() {
    let report = custom_event_loop::run();
    let [alice, bob, carol] = &report.received[..] else {
        panic!("three nodes");
    };
    for (name, lines) in [("alice", alice), ("bob", bob), ("carol", carol)] {
        assert!(has(lines, "relay up"), "{name}: {lines:?}");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("peer up")).count(),
            2,
            "{name}: {lines:?}"
        );
        assert!(
            has(lines, "broadcast from bob: the tide is turning"),
            "{name}: {lines:?}"
        );
    }
    assert!(has(bob, "whisper from alice: meet at noon"), "{bob:?}");
    assert!(has(alice, "whisper delivered"), "{alice:?}");
    assert!(
        has(alice, "resonance on \"midnight chess\" at 0.9: e2-e4"),
        "{alice:?}"
    );
    assert!(!has(bob, "resonance"), "bob is not attuned: {bob:?}");
    assert!(
        has(carol, "file from alice: notes.bin (40000 bytes)"),
        "{carol:?}"
    );
    assert!(has(alice, "file delivered to carol"), "{alice:?}");
    assert!(has(alice, "peer down: carol (Timeout)"), "{alice:?}");
    assert!(has(bob, "peer down: carol (Timeout)"), "{bob:?}");
}
