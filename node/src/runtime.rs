//! The seam between whispurr's async half and an async runtime: spawning, timers, TCP sockets
//! and the WebSocket handshake. Everything else in this crate (the engine task, the link tasks,
//! the relay server) is written once, against this trait; `whispurr-tokio` and `whispurr-smol`
//! each implement it in a few dozen lines.

use std::{future::Future, io, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use futures::{Sink, Stream};
use tungstenite::{
    Message,
    handshake::{
        client::Request,
        server::{Callback, ErrorResponse, Response},
    },
    protocol::WebSocketConfig,
};

/// A WebSocket connection after its handshake: a stream of received messages and a sink for
/// messages to send, as tokio-tungstenite and async-tungstenite both give it.
pub trait WsConnection:
    Stream<Item = Result<Message, tungstenite::Error>>
    + Sink<Message, Error = tungstenite::Error>
    + Send
    + Unpin
    + 'static
{
}

impl<T> WsConnection for T where
    T: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static
{
}

/// A WebSocket connection of any runtime.
pub type WsStream = Box<dyn WsConnection>;

/// Checks an incoming WebSocket upgrade request (its path, say) and may refuse it.
pub type HandshakeCheck =
    Box<dyn FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + Send + Unpin>;

/// A boxed future, for the few places the runtime's own future types cannot be named.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What whispurr needs from an async runtime. Implementations hold no logic: they spawn, sleep,
/// bind and accept TCP sockets, run the WebSocket handshake with their WebSocket library, and
/// name the runtime the `webrtc` crate should use.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A bound TCP listener.
    type Listener: Send + 'static;
    /// An accepted TCP connection, before its WebSocket handshake.
    type Tcp: Send + 'static;

    /// Runs `future` in the background to completion.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// Binds a TCP listener to `addr` (port 0 picks a free one).
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// The next connection on `listener`, with the address it came from.
    fn accept(
        listener: &mut Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send + '_;

    /// The server side of the WebSocket handshake on an accepted connection; `check` sees the
    /// request and may refuse it.
    fn ws_accept(
        &self,
        tcp: Self::Tcp,
        config: WebSocketConfig,
        check: HandshakeCheck,
    ) -> impl Future<Output = Result<WsStream, tungstenite::Error>> + Send;

    /// Opens a TCP connection to the request's host and runs the client side of the
    /// WebSocket handshake (`ws://` only: TLS belongs in front of a relay, not in it).
    fn ws_connect(
        &self,
        request: Request,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<WsStream, tungstenite::Error>> + Send;

    /// The runtime the `webrtc` crate's peer connections run on, passed to each explicitly
    /// (its own default prefers tokio whenever tokio is compiled in).
    fn webrtc(&self) -> Arc<dyn webrtc::runtime::Runtime>;
}

/// Asserts at compile time that a handshake check is a `tungstenite` callback.
const _: fn() = || {
    fn is_callback<C: Callback + Unpin>() {}
    is_callback::<HandshakeCheck>();
};
