//! What the engine tells its adapter ([`Action`]) and its application ([`Event`]).

use alloc::{boxed::Box, string::String, vec::Vec};
use core::{any::Any, fmt};

use crate::{
    NodeId, NodeKey,
    wire::{MessageId, WebRtcSignal},
};

/// A transport link, as the adapter knows it. Allocated by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// Where the adapter should open a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A relay server (WebSocket URL).
    Relay(String),
    /// A peer listening for direct WebSocket connections.
    Peer(String),
    /// A WebRTC data channel to `peer`; its signals travel through the engine
    /// ([`Action::Signal`] and [`Engine::handle_signal`](super::Engine::handle_signal)).
    WebRtc {
        /// The remote node.
        peer: NodeKey,
        /// Whether this side creates the offer.
        offerer: bool,
    },
}

/// Something the adapter must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a transport link; report it with `handle_link_up` or `handle_link_down`.
    Connect {
        /// The engine's id for the link.
        link: LinkId,
        /// Where to.
        addr: Addr,
    },
    /// Close a transport link (the engine has already forgotten it).
    Close {
        /// The link.
        link: LinkId,
    },
    /// Give a WebRTC signal from the remote peer to the link's peer connection.
    Signal {
        /// The WebRTC link.
        link: LinkId,
        /// The signal: the remote description (offer or answer) or a remote ICE candidate.
        signal: WebRtcSignal,
    },
}

/// Why a path or peer went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing heard within `dead_after` (missed heartbeats).
    Timeout,
    /// The link was lost without a word: the transport reported it down, the relay carrying a
    /// tunnel went down, or the relay reported the peer unreachable while the tunnel was still
    /// opening.
    LinkLost,
    /// The peer sent hostile or broken bytes.
    ProtocolError,
    /// The peer said goodbye.
    Goodbye,
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// We closed the link on purpose, having no use for it: the overlay let it go (a neighbour
    /// evicted, refused or asking to leave, a probe that found nothing or was refused; what was
    /// queued on it is sent first), or its handshake showed it leads back to ourselves. A
    /// tunnel's peer is told goodbye.
    Closed,
    /// A newer link to the same peer took over: a second direct link (or a second tunnel) to it
    /// finished its handshake, or the peer restarted the tunnel handshake (then the peer comes
    /// back up when the new tunnel is established).
    Replaced,
    /// A local cap was hit: the peer table is full (`max_peers`, none idle to forget). A
    /// tunnel's peer is told goodbye.
    Limit,
    /// We shut down. (Not reported today: [`Engine::shutdown`](super::Engine::shutdown) says
    /// goodbye on every link and leaves closing them to the adapter.)
    Shutdown,
}

/// Which path carries traffic to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// A direct link (WebRTC or WebSocket).
    Direct,
    /// An end-to-end session tunnelled through a relay.
    Relayed,
}

/// Why a whisper failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhisperFailure {
    /// No acknowledgement after every attempt.
    NoAck,
    /// No relay or session could carry it.
    NoRoute,
}

/// Something the application should know.
pub enum Event {
    /// A relay link is established.
    RelayUp {
        /// The relay's node ID.
        relay: NodeId,
    },
    /// A relay link went down (a reconnect is scheduled).
    RelayDown {
        /// The relay's node ID, if the handshake had completed.
        relay: Option<NodeId>,
        /// Why.
        reason: DownReason,
    },
    /// A peer became reachable, or its best path changed.
    PeerUp {
        /// The peer.
        peer: NodeId,
        /// The path now used.
        path: PathKind,
    },
    /// A peer is no longer reachable on any path.
    PeerDown {
        /// The peer.
        peer: NodeKey,
        /// Why its last path went down.
        reason: DownReason,
    },
    /// A whisper arrived.
    Whisper {
        /// Its id.
        id: MessageId,
        /// The authenticated sender.
        from: NodeKey,
        /// The category tag, if any.
        tag: Option<crate::derive::WhisperTag>,
        /// The content.
        payload: Vec<u8>,
    },
    /// A whisper we sent was acknowledged.
    WhisperDelivered {
        /// Its id.
        id: MessageId,
    },
    /// A whisper we sent could not be delivered.
    WhisperFailed {
        /// Its id.
        id: MessageId,
        /// Why.
        reason: WhisperFailure,
    },
    /// One of our own messages could not be queued for a peer: the link's send queue was full
    /// (the link is not being drained fast enough) or the frame did not fit the link. A
    /// broadcast may still reach the peer through others; a whisper is retried until it is
    /// acknowledged or reported failed. Counted in [`Stats`](super::Stats) by the same cause.
    NotSent {
        /// The message's id.
        id: MessageId,
        /// The peer it could not be queued for.
        peer: NodeKey,
        /// Why.
        cause: super::DropCause,
    },
    /// A broadcast arrived (or was sent by us: broadcasts are delivered locally too).
    Broadcast {
        /// Its id.
        id: MessageId,
        /// The verified origin, or `None` when anonymous.
        origin: Option<NodeId>,
        /// Hops it travelled (a neighbour of the origin receives it at 1; 0 for our own).
        hops: u8,
        /// The content.
        payload: Vec<u8>,
    },
    /// A resonance message for an intent we are attuned to.
    Resonance {
        /// Its id.
        id: MessageId,
        /// The intent's local name (the phrase given to `attune`, or the name given with a
        /// secret).
        intent: String,
        /// The origin's strength (authenticated).
        strength: f32,
        /// The decrypted content.
        payload: Vec<u8>,
    },
    /// An extension has something to say; downcast `event` to the extension's event type.
    Extension {
        /// The extension's name.
        extension: &'static str,
        /// The event.
        event: Box<dyn Any + Send>,
    },
}

impl Event {
    /// Bytes of payload the event holds (what `Config::max_event_bytes` counts); an
    /// extension's event counts as its size in memory.
    pub fn payload_len(&self) -> usize {
        match self {
            Event::Whisper { payload, .. }
            | Event::Broadcast { payload, .. }
            | Event::Resonance { payload, .. } => payload.len(),
            Event::Extension { event, .. } => core::mem::size_of_val(&**event),
            _ => 0,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::RelayUp { relay } => write!(f, "RelayUp({relay:?})"),
            Event::RelayDown { relay, reason } => write!(f, "RelayDown({relay:?}, {reason:?})"),
            Event::PeerUp { peer, path } => write!(f, "PeerUp({peer:?}, {path:?})"),
            Event::PeerDown { peer, reason } => write!(f, "PeerDown({peer:?}, {reason:?})"),
            Event::Whisper { from, payload, .. } => {
                write!(f, "Whisper(from {from:?}, {} bytes)", payload.len())
            }
            Event::WhisperDelivered { id } => write!(f, "WhisperDelivered({id:?})"),
            Event::WhisperFailed { id, reason } => write!(f, "WhisperFailed({id:?}, {reason:?})"),
            Event::NotSent { id, peer, cause } => {
                write!(f, "NotSent({id:?}, to {peer:?}, {cause:?})")
            }
            Event::Broadcast {
                origin, payload, ..
            } => {
                write!(f, "Broadcast(from {origin:?}, {} bytes)", payload.len())
            }
            Event::Resonance {
                intent, payload, ..
            } => {
                write!(f, "Resonance({intent:?}, {} bytes)", payload.len())
            }
            Event::Extension { extension, .. } => write!(f, "Extension({extension})"),
        }
    }
}

/// A record for the adapter to write on a link, as one message: moved out of the engine's
/// queue, never copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The link.
    pub link: LinkId,
    /// The sealed record.
    pub record: Vec<u8>,
}

/// Why a command could not be carried out (API misuse or local limits; the application is
/// always told).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The payload does not fit in one frame.
    #[error("payload of {0} bytes is too large")]
    TooLarge(usize),
    /// The pending-whisper table is full.
    #[error("too many whispers awaiting acknowledgement")]
    TooManyPending,
    /// No link, session or relay can carry it now.
    #[error("no route")]
    NoRoute,
    /// Every candidate link's send queue is full.
    #[error("send queues full")]
    QueueFull,
    /// The extension type is not registered, or the code is not an extension type.
    #[error("no extension handles this type")]
    UnknownExtension,
    /// Not attuned to that intent.
    #[error("not attuned")]
    NotAttuned,
    /// The intent phrase's secret could not be derived (`Config::intent_kdf` out of range, or
    /// not enough memory for it).
    #[error("intent derivation failed: {0}")]
    Intent(crate::derive::IntentError),
    /// The de-duplication set's share for this kind of message is full of messages still
    /// valid (`Config::max_seen`): try again when some expire.
    #[error("too many messages of this kind in flight")]
    TooManyInFlight,
}

/// API misuse on inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No such link.
    #[error("unknown link {0:?}")]
    UnknownLink(LinkId),
    /// The link limit is reached.
    #[error("link limit reached")]
    TooManyLinks,
    /// An extension for one of these message types is already registered.
    #[error("an extension already handles {0:?}")]
    DuplicateExtension(crate::wire::MessageType),
    /// The message type cannot be handled by extensions.
    #[error("{0:?} is not an extension type")]
    NotExtensionType(crate::wire::MessageType),
}
