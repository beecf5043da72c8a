//! The node's typed errors.

use whispurr_core::engine::{EngineError, SendError};

/// What a [`Node`](crate::Node) or [`RelayServer`](crate::RelayServer) call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused to send (too large, no route, queue full, not attuned, …).
    #[error("not sent: {0}")]
    Send(#[from] SendError),
    /// The engine refused the command (link table full, unknown extension type, …).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The node or relay has shut down; nothing more can be asked of it.
    #[error("the node has shut down")]
    Closed,
    /// No extension of the requested type is registered.
    #[error("no extension of that type is registered")]
    NoExtension,
    /// A socket could not be bound or accepted.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A WebSocket handshake or URL was refused.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
}

/// The result of a node call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
