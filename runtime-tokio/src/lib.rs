//! # whispurr-tokio
//!
//! whispurr on tokio. The engine in [`whispurr_core`] makes every decision and
//! [`whispurr_node`] moves the bytes; this crate supplies only what tokio must: spawning, timers,
//! TCP sockets, the WebSocket handshake (tokio-tungstenite) and webrtc's tokio runtime.
//!
//! ```no_run
//! # async fn run() -> Result<(), whispurr_tokio::Error> {
//! use futures::StreamExt;
//! let (node, mut events) = whispurr_tokio::node()
//!     .relay("ws://127.0.0.1:7300")
//!     .start()
//!     .await?;
//! println!("I am {}", node.id());
//! node.broadcast(b"hello".to_vec()).await?;
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{self, handshake::client::Request, protocol::WebSocketConfig};
pub use whispurr_core as core;
use whispurr_node::runtime::{HandshakeCheck, Runtime, WsStream};
pub use whispurr_node::*;

/// The tokio [`Runtime`]: tasks go to the ambient tokio runtime (call from inside one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Listener = TcpListener;
    type Tcp = TcpStream;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep(duration)
    }

    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &mut TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        listener.accept().await
    }

    async fn ws_accept(
        &self,
        tcp: TcpStream,
        config: WebSocketConfig,
        check: HandshakeCheck,
    ) -> Result<WsStream, tungstenite::Error> {
        let _ = tcp.set_nodelay(true);
        let ws = tokio_tungstenite::accept_hdr_async_with_config(tcp, check, Some(config)).await?;
        Ok(Box::new(ws))
    }

    async fn ws_connect(
        &self,
        request: Request,
        config: WebSocketConfig,
    ) -> Result<WsStream, tungstenite::Error> {
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        Ok(Box::new(ws))
    }

    fn webrtc(&self) -> Arc<dyn ::webrtc::runtime::Runtime> {
        Arc::new(::webrtc::runtime::TokioRuntime)
    }
}

/// A node builder on tokio: `whispurr_tokio::node().relay(url).start().await`.
pub fn node() -> NodeBuilder<Tokio> {
    NodeBuilder::new(Tokio)
}

/// A relay server builder on tokio: `whispurr_tokio::relay().listen(addr).start().await`.
pub fn relay() -> RelayBuilder<Tokio> {
    RelayBuilder::new(Tokio)
}
