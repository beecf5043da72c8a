//! One authenticated connection: the XX handshake, then a transport session carrying frames,
//! with a bounded queue of sealed records waiting to be sent.
//!
//! Both state machines use it: the [`Engine`](crate::engine::Engine) for its links to peers and
//! relays (and for the end-to-end links it tunnels through a relay), the
//! [`Relay`](crate::relay::Relay) for its clients. It never touches I/O: bytes come in through
//! [`Conn::handle_data`], sealed records go out, owned, through [`Conn::pop_record`].

use alloc::{boxed::Box, collections::VecDeque, vec, vec::Vec};

use rand_core::CryptoRng;

use crate::{
    Identity, NodeKey, Timestamp,
    crypto::{
        CryptoError, CryptoProvider, TAG_LEN,
        link::{LinkConfig, LinkHandshake, MAX_HANDSHAKE_LEN, PeerInfo, Session},
    },
    wire::{EncodeError, Frame},
};

/// Why a connection failed. Every variant closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The handshake or a record failed cryptographically (includes identity mismatches).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// Data arrived on a closed connection.
    #[error("connection closed")]
    Closed,
    /// A record is larger than the frame limit.
    #[error("record of {0} bytes is too large")]
    TooLarge(usize),
}

/// Why a frame could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The handshake has not finished (or the connection is closed).
    #[error("connection not established")]
    NotEstablished,
    /// The send queue's byte cap would be exceeded.
    #[error("send queue full")]
    Full,
    /// The record would exceed the largest record this connection may send.
    #[error("record of {0} bytes is too large for the link")]
    TooLarge(usize),
    /// The frame could not be encoded.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// Sealing failed (nonce exhaustion).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// What [`Conn::handle_data`] found in a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A handshake step; nothing for the caller (replies, if any, are queued).
    Handshaking,
    /// The handshake just completed.
    Established(PeerInfo),
    /// A decrypted frame: the plaintext is `data[..len]` of the buffer passed in.
    Frame(usize),
}

enum State<P: CryptoProvider> {
    Handshaking(Box<LinkHandshake<P>>),
    Established(Session<P>),
    Closed,
}

/// An authenticated connection (see the module docs).
pub struct Conn<P: CryptoProvider> {
    state: State<P>,
    /// Who the handshake proved the peer to be; kept after the connection closes.
    peer: Option<PeerInfo>,
    /// Records waiting to be sent. Frames are sealed when they leave ([`pop_record`]), not
    /// when they are queued, so that what a link never sent can be taken back in clear
    /// ([`take_unsent`]) and sent on another path.
    ///
    /// [`pop_record`]: Self::pop_record
    /// [`take_unsent`]: Self::take_unsent
    outbox: VecDeque<Outgoing>,
    queued_bytes: usize,
    max_queue_bytes: usize,
    max_record: usize,
    /// When the connection was created.
    pub opened_at: Timestamp,
    /// When a record last arrived.
    pub last_recv: Timestamp,
}

impl<P: CryptoProvider> core::fmt::Debug for Conn<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.state {
            State::Handshaking(_) => "handshaking",
            State::Established(_) => "established",
            State::Closed => "closed",
        };
        f.debug_struct("Conn")
            .field("state", &state)
            .field("queued_bytes", &self.queued_bytes)
            .finish()
    }
}

/// One queued record: handshake messages and test plaintext are ready as they are; frames are
/// `plain` (the encoded, padded frame in `buf[..n]`, room for the tag after it) until sealed.
#[derive(Debug)]
struct Outgoing {
    buf: Vec<u8>,
    plain: Option<usize>,
}

impl<P: CryptoProvider> Conn<P> {
    /// A connection we opened; its first handshake message is queued at once. With `expected`,
    /// only that node may answer.
    #[allow(clippy::too_many_arguments)]
    pub fn initiator<R: CryptoRng + ?Sized>(
        provider: P,
        identity: &Identity,
        expected: Option<NodeKey>,
        config: LinkConfig,
        max_queue_bytes: usize,
        max_record: usize,
        now: Timestamp,
        rng: &mut R,
    ) -> Self {
        let hs = LinkHandshake::initiator(provider, identity, expected, config, rng);
        let mut conn = Self::with(hs, max_queue_bytes, max_record, now);
        conn.write_handshake().ok();
        conn
    }

    /// A connection the other side opened.
    pub fn responder<R: CryptoRng + ?Sized>(
        provider: P,
        identity: &Identity,
        config: LinkConfig,
        max_queue_bytes: usize,
        max_record: usize,
        now: Timestamp,
        rng: &mut R,
    ) -> Self {
        let hs = LinkHandshake::responder(provider, identity, config, rng);
        Self::with(hs, max_queue_bytes, max_record, now)
    }

    fn with(
        hs: LinkHandshake<P>,
        max_queue_bytes: usize,
        max_record: usize,
        now: Timestamp,
    ) -> Self {
        Conn {
            state: State::Handshaking(Box::new(hs)),
            peer: None,
            outbox: VecDeque::new(),
            queued_bytes: 0,
            max_queue_bytes,
            max_record,
            opened_at: now,
            last_recv: now,
        }
    }

    fn write_handshake(&mut self) -> Result<(), ConnError> {
        let State::Handshaking(hs) = &mut self.state else {
            return Ok(());
        };
        if hs.wants_to_write() {
            let mut buf = vec![0u8; MAX_HANDSHAKE_LEN];
            let n = hs.write_message(&mut buf)?;
            buf.truncate(n);
            // Handshake messages are control traffic: they bypass the byte cap.
            self.queued_bytes += buf.len();
            self.outbox.push_back(Outgoing { buf, plain: None });
        }
        Ok(())
    }

    /// Whether the handshake has completed and the connection is open.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Whether the connection has failed or been closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The authenticated peer, once established (and still after the connection closes).
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// Marks the connection closed and drops its queue.
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.outbox.clear();
        self.queued_bytes = 0;
    }

    /// Feeds one received record. On `Err` the connection is closed.
    pub fn handle_data(&mut self, now: Timestamp, data: &mut [u8]) -> Result<Received, ConnError> {
        let r = self.handle_inner(data);
        match &r {
            Ok(_) => self.last_recv = now,
            Err(_) => self.close(),
        }
        r
    }

    fn handle_inner(&mut self, data: &mut [u8]) -> Result<Received, ConnError> {
        if data.len() > self.max_record {
            return Err(ConnError::TooLarge(data.len()));
        }
        match &mut self.state {
            State::Closed => Err(ConnError::Closed),
            State::Established(session) => Ok(Received::Frame(session.open(data)?)),
            State::Handshaking(hs) => {
                hs.read_message(data)?;
                self.write_handshake()?;
                let State::Handshaking(hs) = &self.state else {
                    unreachable!()
                };
                if !hs.is_finished() {
                    return Ok(Received::Handshaking);
                }
                let State::Handshaking(hs) = core::mem::replace(&mut self.state, State::Closed)
                else {
                    unreachable!()
                };
                let (session, info) = hs.finish()?;
                self.state = State::Established(session);
                self.peer = Some(info);
                Ok(Received::Established(info))
            }
        }
    }

    /// Bytes waiting in the send queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Room left under the queue's byte cap.
    pub fn queue_room(&self) -> usize {
        self.max_queue_bytes.saturating_sub(self.queued_bytes)
    }

    /// Encodes, pads (to `pad_to` bytes if larger than the frame) and seals a frame, and queues
    /// the record. With `bypass_cap` (control traffic) the byte cap is not applied.
    pub fn queue_frame(
        &mut self,
        frame: &Frame<'_>,
        pad_to: usize,
        bypass_cap: bool,
    ) -> Result<usize, QueueError> {
        self.queue_frame_with(frame, |_| pad_to, bypass_cap)
            .map(|(sealed, _)| sealed)
    }

    /// Like [`queue_frame`](Self::queue_frame), with the padding target chosen from the
    /// encoded length by `pad`. Returns the sealed length and the padding added.
    pub fn queue_frame_with(
        &mut self,
        frame: &Frame<'_>,
        pad: impl FnOnce(usize) -> usize,
        bypass_cap: bool,
    ) -> Result<(usize, usize), QueueError> {
        if !matches!(self.state, State::Established(_)) {
            return Err(QueueError::NotEstablished);
        }
        let estimate = frame.encoded_len();
        let total = pad(estimate).max(estimate);
        let record_len = total + TAG_LEN;
        if record_len > self.max_record {
            return Err(QueueError::TooLarge(record_len));
        }
        // Refuse before spending an allocation and an encoding on a frame that cannot go.
        if !bypass_cap && self.queued_bytes + record_len > self.max_queue_bytes {
            return Err(QueueError::Full);
        }
        // Exactly the record's size: no large scratch buffer per frame.
        let mut buf = vec![0u8; record_len];
        let len = frame.encode(&mut buf)?;
        let n = if total > len {
            Frame::pad_encoded(&mut buf, len, total)?
        } else {
            len
        };
        // Sealed when it leaves (`pop_record`), so that an unsent frame can be re-routed.
        self.queued_bytes += record_len;
        self.outbox.push_back(Outgoing {
            buf,
            plain: Some(n),
        });
        Ok((record_len, n - len))
    }

    /// Seals `buf[..n]` in place (the tag goes after it), trims `buf` to the record and queues
    /// it. Returns the record's length.
    fn push_sealed(
        session: &mut Session<P>,
        outbox: &mut VecDeque<Outgoing>,
        queued_bytes: &mut usize,
        mut buf: Vec<u8>,
        n: usize,
    ) -> Result<usize, QueueError> {
        // Anything queued before it is sealed first, to keep the nonces in order.
        for o in outbox.iter_mut() {
            if let Some(m) = o.plain.take() {
                let sealed = session.seal(&mut o.buf, m)?;
                o.buf.truncate(sealed);
            }
        }
        let sealed = session.seal(&mut buf, n)?;
        buf.truncate(sealed);
        *queued_bytes += sealed;
        outbox.push_back(Outgoing { buf, plain: None });
        Ok(sealed)
    }

    /// Seals arbitrary bytes as one record and queues it (tests and fuzzing: lets a peer send
    /// plaintext that is not a valid frame). Bypasses the byte cap.
    pub fn queue_plaintext(&mut self, plaintext: &[u8]) -> Result<(), QueueError> {
        let State::Established(session) = &mut self.state else {
            return Err(QueueError::NotEstablished);
        };
        let mut buf = vec![0u8; plaintext.len() + TAG_LEN];
        buf[..plaintext.len()].copy_from_slice(plaintext);
        Self::push_sealed(
            session,
            &mut self.outbox,
            &mut self.queued_bytes,
            buf,
            plaintext.len(),
        )?;
        Ok(())
    }

    /// Length of the next record to send, if any.
    pub fn front_len(&self) -> Option<usize> {
        self.outbox.front().map(|o| o.buf.len())
    }

    /// The next record to send, sealed now and moved out of the queue. A record that cannot
    /// be sealed (the session's nonces are spent) closes the connection.
    pub fn pop_record(&mut self) -> Option<Vec<u8>> {
        let Outgoing { mut buf, plain } = self.outbox.pop_front()?;
        self.queued_bytes -= buf.len();
        if let Some(n) = plain {
            let State::Established(session) = &mut self.state else {
                self.close();
                return None;
            };
            match session.seal(&mut buf, n) {
                Ok(sealed) => buf.truncate(sealed),
                Err(_) => {
                    self.close();
                    return None;
                }
            }
        }
        Some(buf)
    }

    /// Takes back every frame not yet sent, in clear (encoded and padded, as queued), and
    /// empties the queue: for a link that went down, so that its gossip can go another way.
    pub fn take_unsent(&mut self) -> Vec<Vec<u8>> {
        let unsent = self
            .outbox
            .drain(..)
            .filter_map(|Outgoing { mut buf, plain }| {
                let n = plain?;
                buf.truncate(n);
                Some(buf)
            })
            .collect();
        self.queued_bytes = 0;
        unsent
    }
}
