//! The extension system: application protocols (FileSync, MiningSignal, Dreamspace, custom
//! types `0x80..=0xff`) that plug into the engine, receive the message types they register and
//! send through the engine.
//!
//! Lifecycle: [`Extension::init`] when registered, [`Extension::handle_message`] for each
//! message of its types, [`Extension::tick`] every `tick_interval`, [`Extension::shutdown`] when
//! the engine shuts down. Each call gets an [`ExtensionContext`] to send messages and raise
//! application events.

use alloc::{boxed::Box, vec::Vec};
use core::any::Any;

use super::event::{Event, SendError};
use crate::{NodeId, NodeKey, Timestamp, wire::MessageType};

/// A message delivered to an extension.
#[derive(Clone, Copy, Debug)]
pub struct ExtensionMessage<'a> {
    /// Its type.
    pub kind: MessageType,
    /// The authenticated neighbour it came from.
    pub from: NodeKey,
    /// The addressee, or `None` for messages to everyone.
    pub target: Option<NodeKey>,
    /// The extension's bytes.
    pub payload: &'a [u8],
}

/// A message an extension asked to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Its type.
    pub kind: MessageType,
    /// To one node, or `None` for every node (gossiped).
    pub target: Option<NodeKey>,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// What an extension can see and do during a call.
pub struct ExtensionContext<'a> {
    pub(crate) now: Timestamp,
    pub(crate) local: NodeId,
    pub(crate) peers: &'a [NodeKey],
    pub(crate) max_payload: usize,
    pub(crate) outgoing: &'a mut Vec<Outgoing>,
    pub(crate) events: &'a mut Vec<Event>,
    pub(crate) name: &'static str,
}

impl<'a> ExtensionContext<'a> {
    /// A context outside any engine, for driving an extension by hand (tests, simulations):
    /// messages it sends land in `outgoing`, events in `events`.
    pub fn new(
        name: &'static str,
        now: Timestamp,
        local: NodeId,
        peers: &'a [NodeKey],
        max_payload: usize,
        outgoing: &'a mut Vec<Outgoing>,
        events: &'a mut Vec<Event>,
    ) -> Self {
        ExtensionContext {
            now,
            local,
            peers,
            max_payload,
            outgoing,
            events,
            name,
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// This node's ID.
    pub fn local_id(&self) -> &NodeId {
        &self.local
    }

    /// Peers with an established session now.
    pub fn peers(&self) -> &[NodeKey] {
        self.peers
    }

    /// Largest payload one extension message can carry.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sends a message of `kind` to `target` (or to everyone). It leaves when the call returns;
    /// if it cannot be sent the engine reports the drop in its statistics.
    pub fn send(
        &mut self,
        kind: MessageType,
        target: Option<NodeKey>,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        if payload.len() > self.max_payload {
            return Err(SendError::TooLarge(payload.len()));
        }
        self.outgoing.push(Outgoing {
            kind,
            target,
            payload,
        });
        Ok(())
    }

    /// Raises an application event ([`Event::Extension`]). Events cross to the application's
    /// task, so they are `Send`.
    pub fn emit<E: Any + Send>(&mut self, event: E) {
        self.events.push(Event::Extension {
            extension: self.name,
            event: Box::new(event),
        });
    }
}

/// An application protocol running inside the engine. `Send`, so that an engine holding it can
/// be owned by an async runtime's task.
pub trait Extension: Any + Send {
    /// A short unique name.
    fn name(&self) -> &'static str;

    /// The message types it handles: `FileSync`, `MiningSignal`, `Dreamspace` or `Custom(_)`.
    fn message_types(&self) -> Vec<MessageType>;

    /// Called once when registered.
    fn init(&mut self, _ctx: &mut ExtensionContext<'_>) {}

    /// Called for each received message of its types.
    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>);

    /// Called every `tick_interval`.
    fn tick(&mut self, _ctx: &mut ExtensionContext<'_>) {}

    /// Called when the engine shuts down.
    fn shutdown(&mut self, _ctx: &mut ExtensionContext<'_>) {}
}
