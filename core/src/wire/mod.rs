//! The whispurr wire format.
//!
//! Every message travels as one **frame**: a fixed 5-byte [`Header`] followed by a postcard-encoded
//! body and, when the `PADDED` flag is set, padding up to the frame's length:
//!
//! ```text
//!  0        1        2        3        4        5
//! +--------+--------+--------+--------+--------+----------------------+-----------+
//! |maj|min | type   | flags  |  body length    | body (postcard)      | padding   |
//! +--------+--------+--------+--------+--------+----------------------+-----------+
//!   4b  4b    u8       u8      u16 big-endian
//! ```
//!
//! - **Version**: major and minor in one byte. Same major is compatible; a newer minor is accepted
//!   (it may add message types or flags, which an older node rejects or ignores, or kinds of
//!   WebRTC signal: see [`signal`]).
//! - **Type**: see [`MessageType`]; `0x80..=0xFF` is the custom-extension range.
//! - **Flags**: bit 0 = padded. Other bits are reserved, sent as zero and ignored on receipt.
//! - **Body**: postcard (varints, length-prefixed byte strings) of the type's struct in
//!   [`message`]; byte strings and text are borrowed from the input on decode.
//!
//! Decoding ([`Frame::decode`]) checks the frame size against [`Limits::max_frame_size`] before it
//! reads a single field, then the header, then the body, then the structural rules (hop count,
//! strength range, field sizes). Time-dependent rules (TTL expiry, clock skew) need the caller's
//! `now` and live in [`Message::validate_at`]. Decoding never panics, on any input.

mod bytes;
mod error;
mod frame;
mod header;
mod limits;
pub mod message;
pub mod signal;

pub use error::{EncodeError, WireError};
pub use frame::Frame;
pub use header::{Flags, HEADER_LEN, Header, MessageType, Version};
pub use limits::Limits;
pub use message::{
    Ack, Announce, Broadcast, Contact, ContactList, ErrorMsg, Extension, Found, Goodbye, Hello,
    IHAVE_ENTRY_LEN, Join, List, Lookup, Membership, Message, MessageId, Peers, Ping, Pong, Relay,
    RelayStage, Resonance, Route, Signal, Signature, Tree, Unreachable, Whisper,
    encode_announcements, encode_node_ids,
};
pub use signal::WebRtcSignal;
