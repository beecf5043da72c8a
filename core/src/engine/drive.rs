//! The drain step of the drive loop, written once: after any input or command, take every
//! output the engine has — actions, records, events — until it has none left, and learn when
//! to wake it next. The simulator, the test network and the fuzz entry point all drive their
//! engines through [`drain`]; `examples/custom_event_loop.rs` spells the same loop out on the
//! public `poll_*` calls for people who write their own.

use rand_core::CryptoRng;

use super::{Action, Engine, Event, Transmit};
use crate::{Timestamp, crypto::CryptoProvider};

/// One output of an [`Engine`], in the order [`drain`] yields them.
#[derive(Debug)]
pub enum Output {
    /// Something the adapter must do ([`Engine::poll_action`]).
    Action(Action),
    /// A record to write on a link ([`Engine::poll_transmit`]).
    Transmit(Transmit),
    /// Something the application should know ([`Engine::poll_event`]).
    Event(Event),
}

/// Hands every output of `engine` at `now` to `sink` until the engine has nothing left, and
/// returns when [`Engine::handle_timeout`] is next due.
///
/// Within a pass, actions come first (a link must exist before records for it are written),
/// then records, then events; passes repeat while anything came out, because taking a record
/// can close a link that was waiting to drain, which raises an action and events. `sink` cannot
/// reach the engine; if handling an event issues commands, call `drain` again after them.
pub fn drain<P: CryptoProvider, R: CryptoRng>(
    engine: &mut Engine<P, R>,
    now: Timestamp,
    mut sink: impl FnMut(Output),
) -> Option<Timestamp> {
    loop {
        let mut moved = false;
        while let Some(action) = engine.poll_action() {
            moved = true;
            sink(Output::Action(action));
        }
        while let Some(transmit) = engine.poll_transmit(now) {
            moved = true;
            sink(Output::Transmit(transmit));
        }
        while let Some(event) = engine.poll_event() {
            moved = true;
            sink(Output::Event(event));
        }
        if !moved {
            return engine.poll_timeout();
        }
    }
}
