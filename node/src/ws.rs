//! WebSocket specifics: the frame limits every WebSocket in whispurr uses, and the client
//! request — plain, or shaped like a browser's when traffic obfuscation is on.

use tungstenite::{
    client::IntoClientRequest,
    handshake::client::Request,
    http::{HeaderValue, header},
    protocol::WebSocketConfig,
};

/// Largest record on any link: Noise's largest message (the engine's and the relay's
/// `max_record`). A larger WebSocket message or frame closes the connection.
pub const MAX_RECORD: usize = 65_535;

/// The WebSocket settings of every whispurr socket: messages and frames bounded by
/// [`MAX_RECORD`], and a write buffer of a few records (the engine holds the real queue).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_RECORD))
        .max_frame_size(Some(MAX_RECORD))
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(1 << 20)
}

/// How a node's WebSocket client requests look on the wire.
///
/// Plain requests carry only what the protocol needs. With
/// [`browser_like`](Self::browser_like) (on whenever the node's obfuscation is on) they carry
/// what a browser's `new WebSocket(url)` sends: `User-Agent`, `Origin`, `Accept-Language`,
/// `Cache-Control`, `Pragma` and `Accept-Encoding`, so a relay behind an ordinary web server
/// looks like a web application's socket.
#[derive(Clone, Debug)]
pub struct WsHeaders {
    /// Send the browser's headers.
    pub browser_like: bool,
    /// `User-Agent` of browser-like requests.
    pub user_agent: String,
    /// `Origin` of browser-like requests; `None` derives `http(s)://host[:port]` from the URL.
    pub origin: Option<String>,
    /// `Accept-Language` of browser-like requests.
    pub accept_language: String,
}

impl Default for WsHeaders {
    fn default() -> Self {
        WsHeaders {
            browser_like: false,
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                         Chrome/131.0.0.0 Safari/537.36"
                .into(),
            origin: None,
            accept_language: "en-US,en;q=0.9".into(),
        }
    }
}

impl WsHeaders {
    /// The client request for `url` (`ws://host:port/path`), with these headers.
    pub fn request(&self, url: &str) -> Result<Request, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if !self.browser_like {
            return Ok(request);
        }
        let origin = match &self.origin {
            Some(o) => o.clone(),
            None => {
                let uri = request.uri();
                let scheme = if uri.scheme_str() == Some("wss") {
                    "https"
                } else {
                    "http"
                };
                let host = uri.authority().map_or("localhost", |a| a.as_str());
                format!("{scheme}://{host}")
            }
        };
        let headers = request.headers_mut();
        let mut put = |name, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        put(header::USER_AGENT, &self.user_agent);
        put(header::ORIGIN, &origin);
        put(header::ACCEPT_LANGUAGE, &self.accept_language);
        put(header::CACHE_CONTROL, "no-cache");
        put(header::PRAGMA, "no-cache");
        put(header::ACCEPT_ENCODING, "gzip, deflate, br");
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_requests_carry_no_browser_headers() {
        let r = WsHeaders::default().request("ws://127.0.0.1:9/x").unwrap();
        assert!(r.headers().get(header::USER_AGENT).is_none());
        assert_eq!(r.uri().path(), "/x");
    }

    #[test]
    fn browser_like_requests_carry_user_agent_and_derived_origin() {
        let h = WsHeaders {
            browser_like: true,
            ..WsHeaders::default()
        };
        let r = h.request("ws://relay.example:8080/chat").unwrap();
        assert_eq!(r.headers()[header::ORIGIN], "http://relay.example:8080");
        assert!(
            r.headers()[header::USER_AGENT]
                .to_str()
                .unwrap()
                .starts_with("Mozilla/5.0")
        );
        assert_eq!(r.headers()[header::PRAGMA], "no-cache");
    }
}
