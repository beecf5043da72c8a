//! [`NodeBuilder`]: everything a node is started with.

use std::net::SocketAddr;

use whispurr_core::{
    Identity,
    engine::{Config, Extension, Obfuscation},
};

use crate::{Events, Node, Result, runtime::Runtime, webrtc::WebRtcConfig, ws::WsHeaders};

/// Builds and starts a [`Node`] on runtime `R`. `whispurr_tokio::node()` gives one for tokio.
///
/// Defaults: a fresh ephemeral identity, no relay, no listener, WebRTC on (direct paths are
/// tried with every peer met through a relay), the engine's [`Config::default`], no intents,
/// no extensions, obfuscation off.
pub struct NodeBuilder<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) identity: Option<Identity>,
    pub(crate) relays: Vec<String>,
    pub(crate) peers: Vec<String>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) webrtc: Option<WebRtcConfig>,
    pub(crate) intents: Vec<String>,
    pub(crate) extensions: Vec<Box<dyn Extension>>,
    pub(crate) config: Config,
    pub(crate) headers: WsHeaders,
    pub(crate) events: usize,
}

impl<R: Runtime> NodeBuilder<R> {
    /// A builder with the defaults above, on `runtime`.
    pub fn new(runtime: R) -> Self {
        NodeBuilder {
            runtime,
            identity: None,
            relays: Vec::new(),
            peers: Vec::new(),
            listen: None,
            webrtc: Some(WebRtcConfig::default()),
            intents: Vec::new(),
            extensions: Vec::new(),
            config: Config::default(),
            headers: WsHeaders::default(),
            events: 1024,
        }
    }

    /// Runs as `identity` instead of a fresh one.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Connects to the relay at `url` (`ws://host:port[/path]`); may be given more than once.
    pub fn relay(mut self, url: impl Into<String>) -> Self {
        self.relays.push(url.into());
        self
    }

    /// Opens a direct WebSocket link to a node listening at `url` once started.
    pub fn peer(mut self, url: impl Into<String>) -> Self {
        self.peers.push(url.into());
        self
    }

    /// Listens for direct WebSocket links from other nodes on `addr` (port 0 picks one; see
    /// [`Node::listen_addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// WebRTC settings (ICE servers, bind address, timers), or `None` for no WebRTC at all:
    /// peers met through a relay then stay on the relay.
    pub fn webrtc(mut self, webrtc: Option<WebRtcConfig>) -> Self {
        self.webrtc = webrtc;
        self
    }

    /// Attunes to the intent phrase once started.
    pub fn intent(mut self, phrase: impl Into<String>) -> Self {
        self.intents.push(phrase.into());
        self
    }

    /// Registers an extension.
    pub fn extension(mut self, extension: Box<dyn Extension>) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Traffic obfuscation (padding, jitter, cover traffic); on, it also makes WebSocket
    /// requests browser-like ([`WsHeaders::browser_like`]).
    pub fn obfuscation(mut self, obfuscation: Obfuscation) -> Self {
        self.headers.browser_like = !obfuscation.padding_buckets.is_empty()
            || obfuscation.cover_interval.is_some()
            || !obfuscation.max_jitter.is_zero();
        self.config.obfuscation = obfuscation;
        self
    }

    /// The headers of WebSocket requests.
    pub fn ws_headers(mut self, headers: WsHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The engine's configuration (limits, timers, gossip, membership, …), replacing the
    /// default. Obfuscation set here is kept unless [`obfuscation`](Self::obfuscation) is
    /// called after.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Changes the engine's configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Events the application may leave unread before the node holds them back (the engine
    /// keeps up to `Config::max_events` more, then drops the oldest and counts them).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.events = n.max(1);
        self
    }

    /// Starts the node: binds the listener (if any), spawns its task, connects to the relays
    /// and peers. Returns the handle and the stream of events.
    pub async fn start(self) -> Result<(Node, Events)> {
        crate::task::start(self).await
    }
}

impl<R: Runtime> std::fmt::Debug for NodeBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("relays", &self.relays)
            .field("listen", &self.listen)
            .field("webrtc", &self.webrtc.is_some())
            .field("intents", &self.intents.len())
            .field("extensions", &self.extensions.len())
            .finish_non_exhaustive()
    }
}
