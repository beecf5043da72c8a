//! The types an async adapter moves between tasks are `Send` (when their type parameters are):
//! an engine or a relay can be owned by a tokio or smol task, and actions, events and records
//! can cross a channel. Checked at compile time; the test only has to build.

use rand_chacha::ChaCha20Rng;
use whispurr_core::{
    Identity, NodeId, Timestamp,
    crypto::RustCrypto,
    engine::{Action, Config, Engine, Event, LinkId, Stats, Transmit},
    relay::{Relay, RelayConfig, RelayEvent},
    wire::MessageId,
};

fn is_send<T: Send>() {}

#[test]
fn what_adapters_move_between_tasks_is_send() {
    is_send::<Engine<RustCrypto, ChaCha20Rng>>();
    is_send::<Relay<RustCrypto, ChaCha20Rng>>();
    is_send::<Event>();
    is_send::<Action>();
    is_send::<Transmit>();
    is_send::<LinkId>();
    is_send::<Stats>();
    is_send::<RelayEvent>();
    is_send::<Identity>();
    is_send::<NodeId>();
    is_send::<Config>();
    is_send::<RelayConfig>();
    is_send::<MessageId>();
    is_send::<Timestamp>();
}

#[cfg(feature = "ring")]
#[test]
fn the_ring_provider_is_send() {
    is_send::<Engine<whispurr_core::crypto::Ring, ChaCha20Rng>>();
    is_send::<Relay<whispurr_core::crypto::Ring, ChaCha20Rng>>();
}
