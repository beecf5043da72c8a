//! Relay configuration: every table and queue the relay keeps has its cap here.

use core::time::Duration;

use super::RateLimit;
use crate::{
    crypto::{TAG_LEN, link::LinkConfig},
    wire::Limits,
};

/// Relay settings. Worst-case memory is about `max_clients × max_queue_bytes` for send queues
/// plus `max_clients × max_namespaces_per_client` namespace memberships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Most connections held at once, handshaking or registered (closed connections whose
    /// [`Close`](super::RelayAction::Close) action has not been polled yet still count).
    /// Default 1024.
    pub max_clients: usize,
    /// Largest record accepted from a client, AEAD tag included; a larger one closes the
    /// client. Default 65,535: Noise's largest message (the default frame limit plus the tag).
    pub max_record: usize,
    /// Byte cap of each client's send queue; frames that do not fit are dropped. Default 1 MiB.
    pub max_queue_bytes: usize,
    /// Per-client rate limit on frames received after the handshake. Default 1000/s, burst 2000.
    pub rate: RateLimit,
    /// Close a client once this many of its frames have been refused by the rate limit since its
    /// bucket was last full (persistent abuse); `None` only drops. Default 20,000 (10 × burst).
    pub rate_limit_close_after: Option<u32>,
    /// Most namespaces one client may be in. Default 16.
    pub max_namespaces_per_client: usize,
    /// Most members of one namespace. Default 1024.
    pub max_members_per_namespace: usize,
    /// Most node IDs in one FOUND answer (also capped by `limits.max_list_len`). Default 32.
    pub max_found: usize,
    /// Most namespaces tracked at once. Default 4096.
    pub max_namespaces: usize,
    /// Time allowed from connect to a completed handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// A registered client that sends nothing for this long is closed; clients keep the link
    /// alive with PING. Default 60 s.
    pub idle_timeout: Duration,
    /// Link handshake settings.
    pub link: LinkConfig,
    /// Limits applied when decoding client frames.
    pub limits: Limits,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_clients: 1024,
            max_record: Limits::DEFAULT.max_frame_size + TAG_LEN,
            max_queue_bytes: 1 << 20,
            rate: RateLimit::DEFAULT,
            rate_limit_close_after: Some(20_000),
            max_namespaces_per_client: 16,
            max_members_per_namespace: 1024,
            max_found: 32,
            max_namespaces: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            link: LinkConfig::default(),
            limits: Limits::DEFAULT,
        }
    }
}
