//! Typed errors of the wire layer: [`WireError`] for bytes that came in, [`EncodeError`] for
//! frames the caller asked to build.

use super::MessageType;

/// Why received bytes are not an acceptable frame.
///
/// Every variant is a property of the input, never a bug: the engine closes the link (or drops the
/// message) and counts the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than the configured maximum; nothing was decoded.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Size of the frame.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The frame ends before its header or declared body does.
    #[error("frame truncated: needs {needed} bytes, has {len}")]
    Truncated {
        /// Bytes the header (and declared body) need.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// The sender speaks an incompatible major version.
    #[error("incompatible protocol version {major}.{minor}")]
    BadVersion {
        /// The sender's major version.
        major: u8,
        /// The sender's minor version.
        minor: u8,
    },
    /// The message type is not one this version knows.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// Bytes follow the body of a frame that is not marked as padded, or the body has bytes
    /// after its last field.
    #[error("{0} unexpected bytes after the body")]
    TrailingBytes(usize),
    /// The body does not decode as the type's structure.
    #[error("malformed {0:?} body")]
    Malformed(MessageType),
    /// A SIGNAL carries a kind of WebRTC signal this version does not know (a newer minor
    /// version's; see [`WebRtcSignal`](super::WebRtcSignal)).
    #[error("unknown WebRTC signal variant {variant}")]
    UnknownSignal {
        /// The variant's index on the wire.
        variant: u32,
    },
    /// The message has travelled more hops than its limit (or the local cap) allows.
    #[error("hop count {hops} exceeds the limit {limit}")]
    HopLimitExceeded {
        /// Hops travelled.
        hops: u8,
        /// The effective limit.
        limit: u8,
    },
    /// A resonance strength is outside `[0, 1]` (or not a number).
    #[error("resonance strength out of range [0, 1]")]
    StrengthOutOfRange,
    /// A variable-size field is larger than its limit.
    #[error("field {field} has {len} bytes, the limit is {max}")]
    FieldTooLarge {
        /// Which field.
        field: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A broadcast has an origin without a signature or a signature without an origin.
    #[error("broadcast must carry both origin and signature, or neither")]
    AuthMismatch,
    /// The message's time to live has run out.
    #[error("message expired {expired_ms} ms ago")]
    Expired {
        /// How long ago it expired.
        expired_ms: u64,
    },
    /// The message's timestamp is further in the future than the clock-skew window allows.
    #[error("timestamp {ahead_ms} ms in the future exceeds the skew window")]
    FromTheFuture {
        /// How far ahead of `now` it is.
        ahead_ms: u64,
    },
}

/// Why a frame could not be encoded (caller misuse, not hostile input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small for the frame (or the requested padding).
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The body does not fit the 16-bit length field.
    #[error("body of {0} bytes exceeds 65535")]
    BodyTooLarge(usize),
}
