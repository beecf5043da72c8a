//! A whole frame: header plus message. Encoding writes into a caller-owned buffer; decoding
//! borrows from the input.

use super::{EncodeError, Flags, HEADER_LEN, Header, Limits, Message, Version, WireError};

/// One frame on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame<'a> {
    /// The sender's protocol version ([`Version::CURRENT`] for frames built here).
    pub version: Version,
    /// Frame flags (padding is set by [`Frame::encode_padded`]).
    pub flags: Flags,
    /// The message.
    pub message: Message<'a>,
}

impl<'a> Frame<'a> {
    /// A frame of the current version with no flags.
    pub fn new(message: Message<'a>) -> Self {
        Frame {
            version: Version::CURRENT,
            flags: Flags::NONE,
            message,
        }
    }

    /// The encoded length of the frame (header and body, no padding), without encoding it.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.message.body_len()
    }

    /// Encodes the frame into `out`, returning its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_with(out, self.flags)
    }

    /// Encodes the frame and pads it with zeros to exactly `total_len` bytes (if it is shorter),
    /// setting the `PADDED` flag when padding was added. Returns the length written.
    pub fn encode_padded(&self, out: &mut [u8], total_len: usize) -> Result<usize, EncodeError> {
        let n = self.encode_with(out, self.flags)?;
        if n >= total_len {
            return Ok(n);
        }
        Self::pad_encoded(out, n, total_len)
    }

    /// Pads a frame already encoded in `buf[..len]` with zeros to `total_len` bytes and sets
    /// its `PADDED` flag. Returns `total_len`.
    pub fn pad_encoded(buf: &mut [u8], len: usize, total_len: usize) -> Result<usize, EncodeError> {
        if len < HEADER_LEN || total_len < len {
            return Err(EncodeError::BufferTooSmall);
        }
        buf.get_mut(len..total_len)
            .ok_or(EncodeError::BufferTooSmall)?
            .fill(0);
        buf[2] |= Flags::PADDED.bits();
        Ok(total_len)
    }

    fn encode_with(&self, out: &mut [u8], flags: Flags) -> Result<usize, EncodeError> {
        let body_out = out
            .get_mut(HEADER_LEN..)
            .ok_or(EncodeError::BufferTooSmall)?;
        let body_len = self
            .message
            .encode_body(body_out)
            .map_err(|_| EncodeError::BufferTooSmall)?;
        let body_len16 =
            u16::try_from(body_len).map_err(|_| EncodeError::BodyTooLarge(body_len))?;
        let header = Header {
            version: self.version,
            kind: self.message.kind(),
            flags,
            body_len: body_len16,
        };
        let head: &mut [u8; HEADER_LEN] =
            out.first_chunk_mut().ok_or(EncodeError::BufferTooSmall)?;
        header.write(head);
        Ok(HEADER_LEN + body_len)
    }

    /// Decodes and structurally validates a frame.
    ///
    /// The size check against [`Limits::max_frame_size`] comes first, before any byte is read.
    /// Time-dependent checks are separate: see [`Message::validate_at`].
    pub fn decode(bytes: &'a [u8], limits: &Limits) -> Result<Self, WireError> {
        if bytes.len() > limits.max_frame_size {
            return Err(WireError::FrameTooLarge {
                len: bytes.len(),
                max: limits.max_frame_size,
            });
        }
        let header = Header::read(bytes)?;
        let body = &bytes[HEADER_LEN..HEADER_LEN + usize::from(header.body_len)];
        let message = Message::decode_body(header.kind, body)?;
        message.validate(limits)?;
        Ok(Frame {
            version: header.version,
            flags: header.flags,
            message,
        })
    }
}
