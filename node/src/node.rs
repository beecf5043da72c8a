//! [`Node`]: the application's handle on a running node, and [`Events`], what it hears.
//! Every call is a command to the node's task, which owns the engine; replies come back on a
//! one-shot channel.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use futures::{
    SinkExt, Stream,
    channel::{mpsc, oneshot},
};
use whispurr_core::{
    NodeId, NodeKey,
    engine::{BroadcastAuth, Engine, Event, Extension, ExtensionContext, PayloadKind, PeerStatus},
    wire::{MessageId, MessageType},
};

use crate::{Error, NodeStats, Result};

/// The engine a node runs: ring for the cryptography, the OS-seeded standard RNG.
pub type NodeEngine = Engine<whispurr_core::crypto::Ring, rand::rngs::StdRng>;

/// A command to the node's task: a closure over the engine with its reply inside.
pub(crate) struct Command {
    /// It sends a message: held back while the engine is congested.
    pub send: bool,
    pub run: Box<dyn FnOnce(&mut crate::task::Ctx<'_>) + Send>,
}

/// A handle on a running node. Cheap to clone; every clone talks to the same node. Dropping
/// the last handle shuts the node down as [`shutdown`](Self::shutdown) does (goodbyes, then
/// the sockets close); [`Events`] then ends.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) id: NodeId,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) max_payload: [usize; 4],
}

impl Node {
    /// This node's ID (`<64 hex>:<timestamp hex>`); the key in it is how others address it.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The address the node listens on for direct WebSocket links, if it listens.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The largest payload of `kind` the node accepts.
    pub fn max_payload(&self, kind: PayloadKind) -> usize {
        let i = match kind {
            PayloadKind::Whisper => 0,
            PayloadKind::Broadcast => 1,
            PayloadKind::Resonance => 2,
            PayloadKind::Extension => 3,
        };
        self.max_payload[i]
    }

    /// Runs `f` on the node's engine in its task and returns what it returns.
    async fn call<O: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::task::Ctx<'_>) -> O + Send + 'static,
    ) -> Result<O> {
        self.command(false, f).await
    }

    /// [`call`](Self::call) for a message: it waits while the node's queues are congested,
    /// so a burst is paced by the slowest path instead of shed.
    async fn send<O: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::task::Ctx<'_>) -> O + Send + 'static,
    ) -> Result<O> {
        self.command(true, f).await
    }

    async fn command<O: Send + 'static>(
        &self,
        send: bool,
        f: impl FnOnce(&mut crate::task::Ctx<'_>) -> O + Send + 'static,
    ) -> Result<O> {
        let (tx, rx) = oneshot::channel();
        let command = Command {
            send,
            run: Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }),
        };
        self.commands
            .clone()
            .send(command)
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Sends `payload` end-to-end encrypted to the node with key `to`: over its session when
    /// there is one, sealed through a relay otherwise. [`Event::WhisperDelivered`] or
    /// [`Event::WhisperFailed`] follows with the returned id.
    pub async fn whisper(&self, to: NodeKey, payload: impl Into<Vec<u8>>) -> Result<MessageId> {
        let payload = payload.into();
        self.send(move |c| c.engine.whisper(c.now, to, None, &payload))
            .await?
            .map_err(Error::from)
    }

    /// Broadcasts `payload` to every node, authenticated as configured (signed by default).
    pub async fn broadcast(&self, payload: impl Into<Vec<u8>>) -> Result<MessageId> {
        let payload = payload.into();
        self.send(move |c| c.engine.broadcast(c.now, &payload))
            .await?
            .map_err(Error::from)
    }

    /// Broadcasts `payload` signed or anonymous, whatever the default.
    pub async fn broadcast_with(
        &self,
        payload: impl Into<Vec<u8>>,
        auth: BroadcastAuth,
    ) -> Result<MessageId> {
        let payload = payload.into();
        self.send(move |c| c.engine.broadcast_with(c.now, &payload, auth))
            .await?
            .map_err(Error::from)
    }

    /// Sends `payload` to the nodes attuned to `intent` (this node must be attuned to it),
    /// with `strength` in `[0, 1]`.
    pub async fn resonate(
        &self,
        intent: &str,
        strength: f32,
        payload: impl Into<Vec<u8>>,
    ) -> Result<MessageId> {
        let (intent, payload) = (intent.to_owned(), payload.into());
        self.send(move |c| c.engine.resonate(c.now, &intent, strength, &payload))
            .await?
            .map_err(Error::from)
    }

    /// Attunes to an intent phrase (its secret is derived with Argon2id: tens of
    /// milliseconds, once).
    pub async fn attune(&self, phrase: &str) -> Result<()> {
        let phrase = phrase.to_owned();
        self.call(move |c| c.engine.attune(c.now, &phrase))
            .await?
            .map_err(Error::from)
    }

    /// Attunes to an intent named `name` whose secret is a high-entropy 32-byte value shared
    /// out of band (no key derivation).
    pub async fn attune_secret(&self, name: &str, secret: [u8; 32]) -> Result<()> {
        let name = name.to_owned();
        self.call(move |c| c.engine.attune_secret(c.now, &name, secret))
            .await?
            .map_err(Error::from)
    }

    /// Stops resonating on the intent named `name`.
    pub async fn detune(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |c| c.engine.detune(c.now, &name))
            .await?
            .map_err(Error::from)
    }

    /// Opens a direct WebSocket link to a node listening at `url` (`ws://host:port`).
    pub async fn connect(&self, url: &str) -> Result<()> {
        let url = url.to_owned();
        self.call(move |c| c.engine.connect_peer(c.now, &url).map(drop))
            .await?
            .map_err(Error::from)
    }

    /// Connects to one more relay.
    pub async fn add_relay(&self, url: &str) -> Result<()> {
        let url = url.to_owned();
        self.call(move |c| c.engine.add_relay(c.now, &url).map(drop))
            .await?
            .map_err(Error::from)
    }

    /// Sends an extension message of `kind` to `target`, or gossips it to every node.
    pub async fn send_extension(
        &self,
        kind: MessageType,
        target: Option<NodeKey>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<MessageId> {
        let payload = payload.into();
        self.send(move |c| c.engine.send_extension(c.now, kind, target, &payload))
            .await?
            .map_err(Error::from)
    }

    /// Runs `f` with the registered extension of type `T` (in the node's task).
    pub async fn with_extension<T: Extension, O: Send + 'static>(
        &self,
        f: impl FnOnce(&mut T, &mut ExtensionContext<'_>) -> O + Send + 'static,
    ) -> Result<O> {
        self.call(move |c| c.engine.with_extension(c.now, f))
            .await?
            .ok_or(Error::NoExtension)
    }

    /// The peers with an established path, with the path and its quality.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>> {
        self.call(|c| c.engine.peer_status()).await
    }

    /// Statistics: the engine's counters and what crossed each kind of socket.
    pub async fn stats(&self) -> Result<NodeStats> {
        self.call(|c| c.stats()).await
    }

    /// Says goodbye on every link, waits (briefly) for the goodbyes to be written, closes
    /// every socket and ends the node's task. Later calls fail with [`Error::Closed`].
    pub async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.call(move |c| c.shutdown(tx)).await?;
        let _ = rx.await;
        Ok(())
    }
}

impl Node {
    /// Fault injection: drops every link on `transport` at once, as a network failure would
    /// (no goodbye; the engine hears the links went down). Returns how many. For tests and
    /// demos of path fallback.
    pub async fn break_transport(&self, transport: crate::Transport) -> Result<usize> {
        self.call(move |c| c.break_transport(transport)).await
    }

    /// Stops the node at once, as if its process died: no goodbyes, sockets dropped. Its peers
    /// notice by the relay's report or by missed heartbeats. For tests and demos of failure.
    pub async fn kill(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.call(move |c| c.kill(tx)).await?;
        let _ = rx.await;
        Ok(())
    }
}

/// The node's events, in order: peers up and down, whispers, broadcasts, resonance, extension
/// events, delivery reports. A `Stream`; it ends when the node has shut down.
///
/// Unread events are held back (see `NodeBuilder::event_capacity`), never dropped by the node
/// itself; past the engine's own cap the oldest are dropped and counted
/// (`Stats::dropped_event_overflow`).
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: mpsc::Receiver<Event>,
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}
