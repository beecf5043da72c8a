//! The typed WebRTC signal a SIGNAL message carries between two nodes, end to end through their
//! relay tunnel. Defined here, in the wire format, so adapters on any runtime (or a browser)
//! exchange the same values instead of each encoding its own blob.
//!
//! [`WebRtcSignal`] is what a peer connection produces: a session description (offer or answer),
//! a trickled ICE candidate (the fields of `RTCIceCandidateInit`), and the end of candidates. It
//! is generic over its text, like the rest of the wire layer: a decoded frame borrows it
//! (`WebRtcSignal<&str>` inside [`Signal`](super::Signal)), while the engine hands it to the
//! adapter owned (`WebRtcSignal<String>`, the default, in
//! [`Action::Signal`](crate::engine::Action::Signal)).
//!
//! # Encoding and limits
//!
//! postcard, like every body: the variant's index as a varint (0 offer, 1 answer, 2 candidate,
//! 3 end of candidates), then its fields in order (text length-prefixed UTF-8, options as a
//! 0/1 byte then the value). [`Limits::max_signal_len`](super::Limits::max_signal_len) bounds
//! the signal's total text ([`WebRtcSignal::text_len`]), checked on decode by
//! [`Message::validate`](super::Message::validate).
//!
//! # Compatibility
//!
//! The signal has no version of its own: the frame header's protocol version covers it. Within a
//! major version the enum only grows: a new kind of signal is a new variant appended at the next
//! index, in a new minor version, and the fields of an existing variant never change (changing
//! one takes a new variant, or a new major). A receiver that meets an index it does not know
//! rejects the frame with [`WireError::UnknownSignal`], a typed error distinct from a malformed
//! body; the engine drops that frame and keeps the link, so the WebRTC attempt fails on its own
//! and the peers stay on their relay tunnel. A sender should use a variant newer than 1.0's only
//! with a peer known to understand it (a capability bit, as
//! [`CAP_WEBRTC`](crate::engine::CAP_WEBRTC) gates signaling itself).

use alloc::string::String;

use serde::{Deserialize, Serialize};

use super::WireError;
use crate::{NodeId, NodeKey};

/// One WebRTC signaling message, with its text owned (`S = String`) or borrowed (`S = &str`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebRtcSignal<S = String> {
    /// A session description of type `offer` (from the node with the smaller key).
    Offer {
        /// The SDP text.
        sdp: S,
    },
    /// A session description of type `answer`.
    Answer {
        /// The SDP text.
        sdp: S,
    },
    /// A trickled ICE candidate, as `RTCIceCandidateInit` gives it.
    Candidate {
        /// The candidate attribute (`candidate:…`), without the `a=` prefix.
        candidate: S,
        /// The media stream identification tag of the candidate's media section.
        sdp_mid: Option<S>,
        /// The index of the candidate's media section in the SDP.
        sdp_mline_index: Option<u16>,
        /// The ICE username fragment the candidate belongs to.
        username_fragment: Option<S>,
    },
    /// The remote side has gathered all its candidates.
    EndOfCandidates,
}

impl<S: AsRef<str>> WebRtcSignal<S> {
    /// How many variants this version knows; higher indexes are a newer minor's.
    pub(crate) const KNOWN_VARIANTS: u32 = 4;

    /// The signal with its text borrowed.
    pub fn as_deref(&self) -> WebRtcSignal<&str> {
        match self {
            WebRtcSignal::Offer { sdp } => WebRtcSignal::Offer { sdp: sdp.as_ref() },
            WebRtcSignal::Answer { sdp } => WebRtcSignal::Answer { sdp: sdp.as_ref() },
            WebRtcSignal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => WebRtcSignal::Candidate {
                candidate: candidate.as_ref(),
                sdp_mid: sdp_mid.as_ref().map(AsRef::as_ref),
                sdp_mline_index: *sdp_mline_index,
                username_fragment: username_fragment.as_ref().map(AsRef::as_ref),
            },
            WebRtcSignal::EndOfCandidates => WebRtcSignal::EndOfCandidates,
        }
    }

    /// The signal with its text owned.
    pub fn to_owned_signal(&self) -> WebRtcSignal {
        match self.as_deref() {
            WebRtcSignal::Offer { sdp } => WebRtcSignal::Offer { sdp: sdp.into() },
            WebRtcSignal::Answer { sdp } => WebRtcSignal::Answer { sdp: sdp.into() },
            WebRtcSignal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => WebRtcSignal::Candidate {
                candidate: candidate.into(),
                sdp_mid: sdp_mid.map(String::from),
                sdp_mline_index,
                username_fragment: username_fragment.map(String::from),
            },
            WebRtcSignal::EndOfCandidates => WebRtcSignal::EndOfCandidates,
        }
    }

    /// The total length of the signal's text in bytes: what
    /// [`Limits::max_signal_len`](super::Limits::max_signal_len) bounds.
    pub fn text_len(&self) -> usize {
        let opt = |s: &Option<S>| s.as_ref().map_or(0, |s| s.as_ref().len());
        match self {
            WebRtcSignal::Offer { sdp } | WebRtcSignal::Answer { sdp } => sdp.as_ref().len(),
            WebRtcSignal::Candidate {
                candidate,
                sdp_mid,
                username_fragment,
                ..
            } => candidate
                .as_ref()
                .len()
                .saturating_add(opt(sdp_mid))
                .saturating_add(opt(username_fragment)),
            WebRtcSignal::EndOfCandidates => 0,
        }
    }
}

impl From<WebRtcSignal<&str>> for WebRtcSignal {
    fn from(signal: WebRtcSignal<&str>) -> Self {
        signal.to_owned_signal()
    }
}

/// Tells a SIGNAL body that failed to decode because its signal is of a variant this version
/// does not know (a newer minor's) from one that is plain garbage: `Some` with the typed error
/// in the first case.
pub(crate) fn unknown_variant(body: &[u8]) -> Option<WireError> {
    // The body's layout up to the variant index (see `Signal`): the index is a varint u32.
    #[derive(Deserialize)]
    struct Head {
        _target: NodeKey,
        _origin: NodeId,
        variant: u32,
    }
    let (head, _) = postcard::take_from_bytes::<Head>(body).ok()?;
    (head.variant >= WebRtcSignal::<&str>::KNOWN_VARIANTS).then_some(WireError::UnknownSignal {
        variant: head.variant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variants_counts_the_enum() {
        // The last variant's index: bump `KNOWN_VARIANTS` when appending one.
        let bytes = postcard::to_allocvec(&WebRtcSignal::<&str>::EndOfCandidates).unwrap();
        assert_eq!(bytes, [WebRtcSignal::<&str>::KNOWN_VARIANTS as u8 - 1]);
    }

    #[test]
    fn owned_and_borrowed_convert_both_ways() {
        let owned = WebRtcSignal::Candidate {
            candidate: String::from("candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host"),
            sdp_mid: Some(String::from("0")),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let borrowed = owned.as_deref();
        assert_eq!(borrowed.text_len(), 53 + 1);
        assert_eq!(WebRtcSignal::from(borrowed), owned);
        assert_eq!(borrowed.to_owned_signal(), owned);
    }
}
