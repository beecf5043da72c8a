//! Extension hosting: the engine side of the extension system. Extension messages are sent to
//! one node or gossiped to all with de-duplication, delivered to the extension registered for
//! their type, and each extension call gets a context whose sends and events the engine carries
//! out when the call returns.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{
    DropCause, Engine, Event, PayloadKind, SendError,
    extension::{ExtensionContext, ExtensionMessage, Outgoing},
    links::Class,
    seen::Kind as SeenKind,
};
use crate::{
    NodeKey, Timestamp,
    crypto::CryptoProvider,
    wire::{Extension as ExtBody, Message, MessageId, MessageType},
};

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    /// Sends an extension message of `kind` to `target` (through its path) or to every node
    /// (gossiped with de-duplication).
    pub fn send_extension(
        &mut self,
        now: Timestamp,
        kind: MessageType,
        target: Option<NodeKey>,
        payload: &[u8],
    ) -> Result<MessageId, SendError> {
        let now = self.advance(now);
        if !self.ext_types.contains_key(&kind) {
            return Err(SendError::UnknownExtension);
        }
        if payload.len() > self.max_payload(PayloadKind::Extension) {
            return Err(SendError::TooLarge(payload.len()));
        }
        let route = self.new_route(now);
        let body = ExtBody {
            route,
            target,
            payload,
        };
        let message = Message::extension(kind, body).ok_or(SendError::UnknownExtension)?;
        let targets = match target {
            Some(t) => {
                if self.path_to(&t).is_none() {
                    return Err(SendError::NoRoute);
                }
                alloc::vec![t]
            }
            None => self.targets(&[], |_| true),
        };
        if !self.remember(now, &route, SeenKind::Extension) {
            return Err(SendError::TooManyInFlight);
        }
        if self.push(now, &targets, message, Class::Own) == 0 {
            return Err(SendError::NoRoute);
        }
        self.stats.messages_sent += 1;
        Ok(route.id)
    }

    pub(crate) fn on_extension(
        &mut self,
        now: Timestamp,
        from: NodeKey,
        kind: MessageType,
        e: ExtBody<'_>,
    ) {
        let Some(message) = Message::extension(kind, e) else {
            return;
        };
        if !self.admit(now, &message) || !self.remember(now, &e.route, SeenKind::Extension) {
            return;
        }
        let me = *self.identity.node_id().key();
        if e.target.is_none_or(|t| t == me) {
            match self.ext_types.get(&kind).copied() {
                Some(index) => {
                    self.stats.messages_delivered += 1;
                    let msg = ExtensionMessage {
                        kind,
                        from,
                        target: e.target,
                        payload: e.payload,
                    };
                    self.run_one_extension(now, index, |ext, ctx| ext.handle_message(ctx, msg));
                }
                None => self.stats.drop(DropCause::Unhandled),
            }
        }
        if e.target.is_none() && e.route.hops < e.route.effective_hop_limit(&self.config.limits) {
            let mut fwd = e;
            fwd.route.hops += 1;
            let Some(msg) = Message::extension(kind, fwd) else {
                return;
            };
            let targets = self.targets(&[from], |_| true);
            let n = self.push(now, &targets, msg, Class::Forward);
            self.stats.messages_forwarded += n as u64;
        }
    }

    /// Runs `f` on extension `index` with a context, then sends what it queued and raises its
    /// events.
    pub(crate) fn run_one_extension(
        &mut self,
        now: Timestamp,
        index: usize,
        f: impl FnOnce(&mut dyn super::Extension, &mut ExtensionContext<'_>),
    ) {
        let peers: Vec<NodeKey> = self.neighbours().into_iter().map(|(k, _)| k).collect();
        let mut outgoing: Vec<Outgoing> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let local = *self.identity.node_id();
        let max_payload = self.max_payload(PayloadKind::Extension);
        let Some(ext) = self.extensions.get_mut(index) else {
            return;
        };
        let name = ext.name();
        {
            let mut ctx = ExtensionContext::new(
                name,
                now,
                local,
                &peers,
                max_payload,
                &mut outgoing,
                &mut events,
            );
            f(ext.as_mut(), &mut ctx);
        }
        for e in events {
            self.push_event(e);
        }
        for o in outgoing {
            if self
                .send_extension(now, o.kind, o.target, &o.payload)
                .is_err()
            {
                self.stats.drop(DropCause::NoRoute);
            }
        }
    }

    /// Runs `f` on every extension.
    pub(crate) fn run_extensions(
        &mut self,
        now: Timestamp,
        f: impl Fn(&mut dyn super::Extension, &mut ExtensionContext<'_>),
    ) {
        for i in 0..self.extensions.len() {
            self.run_one_extension(now, i, &f);
        }
    }
}
