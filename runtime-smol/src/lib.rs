//! # whispurr-smol
//!
//! whispurr on smol. The engine in [`whispurr_core`] makes every decision and
//! [`whispurr_node`] moves the bytes; this crate supplies only what smol must: spawning (on
//! smol's global executor), timers, TCP sockets, the WebSocket handshake (async-tungstenite)
//! and webrtc's smol runtime. The API is `whispurr-tokio`'s: switching runtime is changing the
//! import.
//!
//! ```no_run
//! # fn run() -> Result<(), whispurr_smol::Error> {
//! use futures::StreamExt;
//! smol::block_on(async {
//!     let (node, mut events) = whispurr_smol::node()
//!         .relay("ws://127.0.0.1:7300")
//!         .start()
//!         .await?;
//!     println!("I am {}", node.id());
//!     node.broadcast(b"hello".to_vec()).await?;
//!     while let Some(event) = events.next().await {
//!         println!("{event:?}");
//!     }
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use async_tungstenite::tungstenite::{self, handshake::client::Request, protocol::WebSocketConfig};
use smol::net::{TcpListener, TcpStream};
pub use whispurr_core as core;
use whispurr_node::runtime::{HandshakeCheck, Runtime, WsStream};
pub use whispurr_node::*;

/// The smol [`Runtime`]: tasks go to smol's global executor, so a node runs under any
/// `smol::block_on` (or none: the executor has its own threads).
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Listener = TcpListener;
    type Tcp = TcpStream;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        let timer = smol::Timer::after(duration);
        async move {
            timer.await;
        }
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
        let ws = async_tungstenite::accept_hdr_async_with_config(tcp, check, Some(config)).await?;
        Ok(Box::new(ws))
    }

    async fn ws_connect(
        &self,
        request: Request,
        config: WebSocketConfig,
    ) -> Result<WsStream, tungstenite::Error> {
        let uri = request.uri();
        let host = uri.host().ok_or(tungstenite::Error::Url(
            tungstenite::error::UrlError::NoHostName,
        ))?;
        let port = uri.port_u16().unwrap_or(80);
        // `host` may be a bracketed IPv6 literal; TcpStream::connect wants it bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        let _ = tcp.set_nodelay(true);
        let (ws, _) =
            async_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
        Ok(Box::new(ws))
    }

    fn webrtc(&self) -> Arc<dyn ::webrtc::runtime::Runtime> {
        Arc::new(::webrtc::runtime::SmolRuntime)
    }
}

/// A node builder on smol: `whispurr_smol::node().relay(url).start().await`.
pub fn node() -> NodeBuilder<Smol> {
    NodeBuilder::new(Smol)
}

/// A relay server builder on smol: `whispurr_smol::relay().listen(addr).start().await`.
pub fn relay() -> RelayBuilder<Smol> {
    RelayBuilder::new(Smol)
}
