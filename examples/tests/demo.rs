//! `whispurr demo` end to end, on tokio and on smol: the embedded relay and five nodes over
//! real sockets on 127.0.0.1 must go through every step.

use whispurr_examples::demo::{Outcome, run};

fn check(outcome: Result<Outcome, String>) {
    let outcome = outcome.unwrap_or_else(|e| panic!("the demo failed: {e}"));
    assert_eq!(outcome.met, 10, "every pair of the five nodes meets");
    assert_eq!(
        outcome.steps,
        [
            "meet",
            "whisper",
            "broadcast",
            "resonance",
            "extensions",
            "death"
        ]
    );
    // The table has a header and a row per surviving node.
    assert_eq!(outcome.table.lines().count(), 5);
}

#[test]
fn the_demo_runs_every_step() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    check(rt.block_on(run(whispurr_tokio::Tokio)));
}

#[test]
fn the_demo_runs_every_step_on_smol() {
    // A plain thread: no tokio runtime exists anywhere in this test.
    check(smol::block_on(run(whispurr_smol::Smol)));
}
