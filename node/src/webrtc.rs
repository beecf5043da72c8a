//! TEMPORARY STUB (replaced by the WebRTC link module).
#![allow(missing_docs, dead_code, unused)]
use std::sync::Arc;
use whispurr_core::engine::WebRtcSignal;
#[derive(Clone, Debug)]
pub struct WebRtcConfig {
    pub bind: std::net::IpAddr,
    pub loopback_candidates: bool,
    pub mdns: bool,
}
impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            bind: [0, 0, 0, 0].into(),
            loopback_candidates: false,
            mdns: false,
        }
    }
}
#[derive(Debug, thiserror::Error)]
#[error("webrtc")]
pub struct WebRtcError;
#[derive(Clone)]
pub struct DirectChannel;
impl DirectChannel {
    pub async fn start(
        _: Arc<dyn webrtc::runtime::Runtime>,
        _: &WebRtcConfig,
        _: bool,
        _: futures::channel::mpsc::UnboundedSender<WebRtcSignal>,
    ) -> Result<Self, WebRtcError> {
        Err(WebRtcError)
    }
    pub async fn handle_signal(&self, _: WebRtcSignal) -> Result<(), WebRtcError> {
        Err(WebRtcError)
    }
    pub async fn opened(&self) -> Result<(), WebRtcError> {
        Err(WebRtcError)
    }
    pub async fn send(&self, _: &[u8]) -> Result<(), WebRtcError> {
        Err(WebRtcError)
    }
    pub async fn recv(&self) -> Option<Vec<u8>> {
        None
    }
    pub async fn close(&self) {}
}
