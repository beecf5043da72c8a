//! What the relay tells its adapter: client handles, outgoing records, events, and errors for
//! API misuse.

use core::fmt;

use crate::{NodeId, crypto::CryptoError, wire::WireError};

/// A connection handle, issued by [`Relay::handle_incoming`](super::Relay::handle_incoming).
/// Handles are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client#{}", self.0)
    }
}

/// One record to send, from [`Relay::poll_transmit`](super::Relay::poll_transmit): written
/// as one message on `client`'s transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to send on.
    pub client: ClientId,
    /// The sealed record, owned.
    pub record: alloc::vec::Vec<u8>,
}

/// Why the relay closed a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client said GOODBYE.
    Goodbye,
    /// The adapter reported the transport closed ([`Relay::handle_link_down`](super::Relay::handle_link_down)).
    Disconnected,
    /// The same node connected again; the newer connection wins.
    Replaced,
    /// The handshake failed (bad bytes, identity mismatch, incompatible version).
    HandshakeFailed(CryptoError),
    /// The handshake did not finish within `handshake_timeout`.
    HandshakeTimeout,
    /// Nothing arrived for `idle_timeout`.
    IdleTimeout,
    /// A record failed to decrypt (tampered, replayed, reordered or garbage).
    Decrypt(CryptoError),
    /// A record of this many bytes exceeded `max_record`.
    Oversized(usize),
    /// A frame failed to decode or validate.
    Malformed(WireError),
    /// The client stayed over its rate limit.
    RateLimited,
    /// A frame could not be sealed for the client (its nonces are used up).
    SendFailed,
}

/// Something the adapter must do: the relay's counterpart of the engine's
/// [`Action`](crate::engine::Action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayAction {
    /// Close the client's transport: the relay has already forgotten the client (late data for
    /// it is ignored). Every accepted connection ends with exactly one `Close`, whatever the
    /// cause, [`CloseReason::Disconnected`] included.
    Close {
        /// The connection.
        client: ClientId,
        /// Its node ID, if it had registered.
        node: Option<NodeId>,
        /// Why.
        reason: CloseReason,
    },
}

/// Something the adapter may want to know (to log it, say); nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayEvent {
    /// A client finished its handshake and proved it owns `node`.
    Registered {
        /// The connection.
        client: ClientId,
        /// Its proven node ID.
        node: NodeId,
    },
}

/// API misuse. Hostile bytes never cause an `Err`: they close the client and raise an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// `max_clients` connections are held (counting closes not yet polled as events); the
    /// adapter should close the new transport.
    #[error("relay full")]
    Full,
    /// No such client was ever issued.
    #[error("unknown {0}")]
    UnknownClient(ClientId),
}
