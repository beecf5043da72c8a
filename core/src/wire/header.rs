//! The fixed 5-byte frame header: version, message type, flags and body length.

use core::fmt;

use super::WireError;

/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 5;

/// A protocol version: major and minor, each `0..=15`, packed in one byte on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    major: u8,
    minor: u8,
}

impl Version {
    /// The version this build speaks.
    pub const CURRENT: Version = Version { major: 1, minor: 0 };

    /// A version; both parts are truncated to 4 bits.
    pub const fn new(major: u8, minor: u8) -> Self {
        Version {
            major: major & 0x0f,
            minor: minor & 0x0f,
        }
    }

    /// The major version: different majors cannot talk.
    pub const fn major(self) -> u8 {
        self.major
    }

    /// The minor version: additions that older minors can ignore or reject per message.
    pub const fn minor(self) -> u8 {
        self.minor
    }

    /// Whether a node speaking `self` can talk to one speaking `other` (same major).
    pub const fn is_compatible(self, other: Version) -> bool {
        self.major == other.major
    }

    pub(crate) const fn to_byte(self) -> u8 {
        (self.major << 4) | self.minor
    }

    pub(crate) const fn from_byte(b: u8) -> Self {
        Version {
            major: b >> 4,
            minor: b & 0x0f,
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The kind of message a frame carries.
///
/// Code ranges: `0x01..=0x0f` session control, `0x10..=0x2f` messaging and routing, `0x30..=0x3f`
/// node↔relay,
/// `0x40..=0x7f` built-in extensions, `0x80..=0xff` custom extensions. Codes not listed here are
/// reserved and rejected as [`WireError::UnknownType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageType {
    /// Session open after the handshake: capabilities and limits.
    Hello,
    /// Graceful session close.
    Goodbye,
    /// An error report to the peer.
    Error,
    /// Heartbeat request.
    Ping,
    /// Heartbeat answer.
    Pong,
    /// Acknowledges a whisper.
    Ack,
    /// A private message to one node.
    Whisper,
    /// A gossip broadcast to everyone.
    Broadcast,
    /// A message to the nodes attuned to an intent.
    Resonance,
    /// Opaque WebRTC signaling, end to end between two nodes.
    Signal,
    /// The resonance keys a node is attuned to.
    Announce,
    /// Peer exchange: node IDs the sender knows.
    Peers,
    /// Overlay membership (partial views: join, neighbour, shuffle, disconnect).
    Membership,
    /// Broadcast-tree control (lazy announcements, graft, prune).
    Tree,
    /// Node↔relay: an opaque payload to (from a node) or from (from the relay) another node.
    Relay,
    /// Node→relay: join or leave a rendezvous namespace.
    Join,
    /// Node→relay: who is in a namespace?
    Lookup,
    /// Relay→node: members of a namespace.
    Found,
    /// Relay→node: a relayed payload's target is not connected.
    Unreachable,
    /// The FileSync extension.
    FileSync,
    /// The MiningSignal extension.
    MiningSignal,
    /// The Dreamspace extension.
    Dreamspace,
    /// A custom extension; the code is in `0x80..=0xff`.
    Custom(u8),
}

impl MessageType {
    /// The first code of the custom-extension range.
    pub const CUSTOM_START: u8 = 0x80;

    /// The type's code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            MessageType::Hello => 0x01,
            MessageType::Goodbye => 0x02,
            MessageType::Error => 0x03,
            MessageType::Ping => 0x04,
            MessageType::Pong => 0x05,
            MessageType::Ack => 0x06,
            MessageType::Whisper => 0x10,
            MessageType::Broadcast => 0x11,
            MessageType::Resonance => 0x12,
            MessageType::Signal => 0x13,
            MessageType::Announce => 0x14,
            MessageType::Peers => 0x15,
            MessageType::Membership => 0x16,
            MessageType::Tree => 0x17,
            MessageType::Relay => 0x30,
            MessageType::Join => 0x31,
            MessageType::Lookup => 0x32,
            MessageType::Found => 0x33,
            MessageType::Unreachable => 0x34,
            MessageType::FileSync => 0x40,
            MessageType::MiningSignal => 0x41,
            MessageType::Dreamspace => 0x42,
            MessageType::Custom(c) => c,
        }
    }

    /// Whether extensions carry this type: FILE_SYNC, MINING_SIGNAL, DREAMSPACE or a custom
    /// code (`0x80..=0xff`).
    pub const fn is_extension(self) -> bool {
        matches!(
            self,
            MessageType::FileSync
                | MessageType::MiningSignal
                | MessageType::Dreamspace
                | MessageType::Custom(_)
        )
    }

    /// The type with this code, or [`WireError::UnknownType`].
    pub const fn from_code(code: u8) -> Result<Self, WireError> {
        Ok(match code {
            0x01 => MessageType::Hello,
            0x02 => MessageType::Goodbye,
            0x03 => MessageType::Error,
            0x04 => MessageType::Ping,
            0x05 => MessageType::Pong,
            0x06 => MessageType::Ack,
            0x10 => MessageType::Whisper,
            0x11 => MessageType::Broadcast,
            0x12 => MessageType::Resonance,
            0x13 => MessageType::Signal,
            0x14 => MessageType::Announce,
            0x15 => MessageType::Peers,
            0x16 => MessageType::Membership,
            0x17 => MessageType::Tree,
            0x30 => MessageType::Relay,
            0x31 => MessageType::Join,
            0x32 => MessageType::Lookup,
            0x33 => MessageType::Found,
            0x34 => MessageType::Unreachable,
            0x40 => MessageType::FileSync,
            0x41 => MessageType::MiningSignal,
            0x42 => MessageType::Dreamspace,
            c if c >= Self::CUSTOM_START => MessageType::Custom(c),
            c => return Err(WireError::UnknownType(c)),
        })
    }
}

/// Frame flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// No flag set.
    pub const NONE: Flags = Flags(0);
    /// Bytes after the body are padding (traffic obfuscation) and are ignored.
    pub const PADDED: Flags = Flags(0x01);
    const KNOWN: u8 = 0x01;

    /// Flags from a byte; unknown (reserved) bits are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Flags(bits & Self::KNOWN)
    }

    /// The flag bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the flags of `other` added.
    pub const fn with(self, other: Flags) -> Self {
        Flags(self.0 | other.0)
    }
}

/// The decoded fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The sender's protocol version.
    pub version: Version,
    /// The message type.
    pub kind: MessageType,
    /// The flags.
    pub flags: Flags,
    /// The body's length in bytes (padding excluded).
    pub body_len: u16,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        let len = self.body_len.to_be_bytes();
        *out = [
            self.version.to_byte(),
            self.kind.code(),
            self.flags.bits(),
            len[0],
            len[1],
        ];
    }

    /// Reads and checks a header: the version must share our major, the type must be known, and
    /// the declared body must fit in `frame_len`.
    pub fn read(frame: &[u8]) -> Result<Self, WireError> {
        let Some(h) = frame.first_chunk::<HEADER_LEN>() else {
            return Err(WireError::Truncated {
                needed: HEADER_LEN,
                len: frame.len(),
            });
        };
        let version = Version::from_byte(h[0]);
        if !version.is_compatible(Version::CURRENT) {
            return Err(WireError::BadVersion {
                major: version.major(),
                minor: version.minor(),
            });
        }
        let kind = MessageType::from_code(h[1])?;
        let header = Header {
            version,
            kind,
            flags: Flags::from_bits_truncate(h[2]),
            body_len: u16::from_be_bytes([h[3], h[4]]),
        };
        let needed = HEADER_LEN + usize::from(header.body_len);
        if frame.len() < needed {
            return Err(WireError::Truncated {
                needed,
                len: frame.len(),
            });
        }
        if frame.len() > needed && !header.flags.contains(Flags::PADDED) {
            return Err(WireError::TrailingBytes(frame.len() - needed));
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reserved_codes_are_rejected() {
        for code in 0..=u8::MAX {
            match MessageType::from_code(code) {
                Ok(t) => assert_eq!(t.code(), code),
                Err(e) => {
                    assert_eq!(e, WireError::UnknownType(code));
                    assert!(code < MessageType::CUSTOM_START);
                }
            }
        }
        assert_eq!(MessageType::from_code(0x00), Err(WireError::UnknownType(0)));
        assert_eq!(MessageType::from_code(0x80), Ok(MessageType::Custom(0x80)));
    }

    #[test]
    fn version_rules() {
        let newer_minor = Version::new(1, 7);
        assert!(Version::CURRENT.is_compatible(newer_minor));
        assert!(!Version::CURRENT.is_compatible(Version::new(2, 0)));
        assert_eq!(
            Version::from_byte(Version::new(3, 9).to_byte()),
            Version::new(3, 9)
        );
        let mut frame = [0x17, 0x04, 0, 0, 0];
        assert!(Header::read(&frame).is_ok(), "newer minor is accepted");
        frame[0] = 0x20;
        assert_eq!(
            Header::read(&frame),
            Err(WireError::BadVersion { major: 2, minor: 0 })
        );
    }

    #[test]
    fn reserved_flags_are_ignored() {
        let h = Header::read(&[0x10, 0x04, 0xfe, 0, 0]).unwrap();
        assert_eq!(h.flags, Flags::NONE);
    }
}
