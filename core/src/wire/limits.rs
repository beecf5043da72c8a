//! Local limits applied to every received frame. They are configuration, not protocol: each node
//! chooses its own, and a sender's values (TTL, hop limit) are capped by them.

use core::time::Duration;

/// Limits for decoding and validating frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, header and padding included. Checked before any decoding.
    /// Default 65,519: a frame sealed with its 16-byte tag is one Noise transport message, and
    /// Noise caps those at 65,535 bytes (which also fits a WebRTC data-channel message).
    pub max_frame_size: usize,
    /// How far a timestamp may lie in the future of `now`. Default 30 s.
    pub max_clock_skew: Duration,
    /// Local cap on a sender-chosen time to live. Default 10 minutes.
    pub max_ttl: Duration,
    /// Local cap on a sender-chosen hop limit. Default 64.
    pub max_hop_limit: u8,
    /// Largest text field (error details, goodbye reasons). Default 256 bytes.
    pub max_text_len: usize,
    /// Largest WebRTC signal: the total length of its text (an SDP, or a candidate with its
    /// media id and username fragment; see
    /// [`WebRtcSignal::text_len`](super::WebRtcSignal::text_len)). Default 16 KiB.
    pub max_signal_len: usize,
    /// Most entries in a list field (announced keys, exchanged peers, namespace members,
    /// membership contacts, a TREE IHAVE's broadcasts). Default 64.
    pub max_list_len: usize,
}

impl Limits {
    /// The defaults documented on each field.
    pub const DEFAULT: Limits = Limits {
        max_frame_size: 65_535 - 16,
        max_clock_skew: Duration::from_secs(30),
        max_ttl: Duration::from_secs(600),
        max_hop_limit: 64,
        max_text_len: 256,
        max_signal_len: 16 * 1024,
        max_list_len: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
