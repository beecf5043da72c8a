//! The bodies of each message type and the [`Message`] enum that ties a body to its type.
//!
//! Routed messages (whisper, broadcast, resonance, extensions) share a [`Route`]: a random message
//! id for de-duplication (there are no `seenBy` path lists), the origin's timestamp, a time to
//! live, and the hop count and hop limit. Byte strings and text borrow from the received frame.

use core::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Limits, MessageType, WebRtcSignal, WireError, bytes};
use crate::{
    NodeId, NodeKey, Timestamp,
    derive::{BlindedKey, WhisperTag},
};

/// A random 16-byte message id; de-duplication is by id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        crate::hex::write_hex(f, &self.0[..6])?;
        f.write_str("…)")
    }
}

/// An ECDSA P-256 signature in fixed-size `r || s` form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        crate::hex::write_hex(f, &self.0[..6])?;
        f.write_str("…)")
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = <&'de [u8]>::deserialize(d)?;
        let arr = <[u8; 64]>::try_from(b).map_err(|_| de::Error::invalid_length(b.len(), &"64"))?;
        Ok(Signature(arr))
    }
}

/// Routing fields shared by every message that may travel more than one hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Random id; de-duplication key.
    pub id: MessageId,
    /// When the origin created the message, in ms since the Unix epoch.
    pub timestamp: u64,
    /// Time to live from `timestamp`, in ms.
    pub ttl_ms: u32,
    /// Hops travelled so far; a direct neighbour of the origin receives it with 1.
    pub hops: u8,
    /// The origin's hop limit.
    pub hop_limit: u8,
}

impl Route {
    /// The hop limit after the local cap.
    pub fn effective_hop_limit(&self, limits: &Limits) -> u8 {
        self.hop_limit.min(limits.max_hop_limit)
    }

    /// When the message expires, after the local TTL cap.
    pub fn expires_at(&self, limits: &Limits) -> Timestamp {
        let ttl = Duration::from_millis(u64::from(self.ttl_ms)).min(limits.max_ttl);
        Timestamp::from_millis(self.timestamp).saturating_add(ttl)
    }

    fn check_hops(&self, limits: &Limits) -> Result<(), WireError> {
        let limit = self.effective_hop_limit(limits);
        if self.hops > limit {
            return Err(WireError::HopLimitExceeded {
                hops: self.hops,
                limit,
            });
        }
        Ok(())
    }

    fn check_time(&self, now: Timestamp, limits: &Limits) -> Result<(), WireError> {
        let sent = Timestamp::from_millis(self.timestamp);
        if sent > now.saturating_add(limits.max_clock_skew) {
            return Err(WireError::FromTheFuture {
                ahead_ms: sent.saturating_duration_since(now).as_millis() as u64,
            });
        }
        let expires = self.expires_at(limits);
        if now > expires {
            return Err(WireError::Expired {
                expired_ms: now.saturating_duration_since(expires).as_millis() as u64,
            });
        }
        Ok(())
    }
}

/// HELLO: opens a session once the handshake is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Capability bits the sender supports.
    pub capabilities: u64,
    /// Largest frame the sender accepts.
    pub max_frame_size: u32,
}

/// GOODBYE: graceful session close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye<'a> {
    /// A machine-readable reason code.
    pub code: u16,
    /// A short human-readable reason.
    pub reason: &'a str,
}

/// ERROR: tells the peer that something it sent was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg<'a> {
    /// A machine-readable error code.
    pub code: u16,
    /// The message the error is about, if any.
    pub about: Option<MessageId>,
    /// A short human-readable detail.
    pub detail: &'a str,
}

/// PING: heartbeat request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Ping id, echoed in the PONG.
    pub id: u64,
    /// Sender's time when sent (ms), echoed in the PONG.
    pub sent_at: u64,
}

/// PONG: heartbeat answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The PING's id.
    pub id: u64,
    /// The PING's `sent_at`.
    pub sent_at: u64,
}

/// WHISPER: a private message to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whisper<'a> {
    /// Routing fields.
    pub route: Route,
    /// The recipient.
    pub target: NodeKey,
    /// Message category, when the whisper travels inside a link session (sealed whispers carry
    /// it inside their ciphertext instead).
    pub tag: Option<WhisperTag>,
    /// The content (ciphertext when sealed end to end).
    #[serde(serialize_with = "bytes::serialize")]
    pub payload: &'a [u8],
}

/// BROADCAST: gossip to every node, signed by its origin or anonymous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast<'a> {
    /// Routing fields.
    pub route: Route,
    /// The origin, absent for anonymous broadcasts.
    pub origin: Option<NodeId>,
    /// The content.
    #[serde(serialize_with = "bytes::serialize")]
    pub payload: &'a [u8],
    /// The origin's signature, present exactly when `origin` is.
    pub signature: Option<Signature>,
}

/// RESONANCE: a message to the nodes attuned to an intent. It travels only between attuned
/// nodes, each of which checks it before it forwards it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resonance<'a> {
    /// Routing fields. Everything but the hop count is authenticated with the payload.
    pub route: Route,
    /// The intent's key blinded for this link and sender
    /// ([`ResonanceKey::tag`](crate::derive::ResonanceKey::tag)); derived again at every hop.
    pub tag: BlindedKey,
    /// How strongly the origin resonates, in `[0, 1]` (authenticated with the payload).
    pub strength: f32,
    /// The content, encrypted under the intent's content key, its tag binding the route
    /// fields (but the hop count) and the strength.
    #[serde(serialize_with = "bytes::serialize")]
    pub payload: &'a [u8],
}

/// SIGNAL: WebRTC signaling between two nodes, sent inside their end-to-end tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal<'a> {
    /// The recipient.
    pub target: NodeKey,
    /// The sender.
    pub origin: NodeId,
    /// The signal (see [`signal`](super::signal) for its compatibility rule).
    #[serde(borrow)]
    pub signal: WebRtcSignal<&'a str>,
}

/// ACK: acknowledges a whisper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The whisper's id.
    pub id: MessageId,
}

/// A list of fixed-size entries carried as one byte string (zero-copy, bounded on decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<'a, const STRIDE: usize> {
    #[serde(serialize_with = "bytes::serialize")]
    raw: &'a [u8],
}

impl<'a, const STRIDE: usize> List<'a, STRIDE> {
    /// A list over `raw`, which must hold whole entries of `STRIDE` bytes.
    pub fn from_raw(raw: &'a [u8]) -> Self {
        List { raw }
    }

    /// The encoded entries.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Number of whole entries.
    pub fn len(&self) -> usize {
        self.raw.len() / STRIDE
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.len() < STRIDE
    }

    fn check(
        &self,
        kind: MessageType,
        field: &'static str,
        limits: &Limits,
    ) -> Result<(), WireError> {
        if !self.raw.len().is_multiple_of(STRIDE) {
            return Err(WireError::Malformed(kind));
        }
        if self.len() > limits.max_list_len {
            return Err(WireError::FieldTooLarge {
                field,
                len: self.len(),
                max: limits.max_list_len,
            });
        }
        Ok(())
    }
}

impl<'a> List<'a, 32> {
    /// The entries as 32-byte keys.
    pub fn keys(&self) -> impl Iterator<Item = [u8; 32]> + 'a {
        self.raw.chunks_exact(32).map(|c| {
            let mut k = [0u8; 32];
            k.copy_from_slice(c);
            k
        })
    }
}

impl<'a> List<'a, 40> {
    /// The entries as node IDs (32-byte key, 8-byte big-endian creation seconds).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + 'a {
        self.raw.chunks_exact(40).map(|c| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&c[..32]);
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[32..]);
            NodeId::from_parts(NodeKey(k), u64::from_be_bytes(t))
        })
    }
}

/// Bytes of one IHAVE entry ([`Tree::IHave`]): a 16-byte message id, then its hop count.
pub const IHAVE_ENTRY_LEN: usize = 17;

impl<'a> List<'a, IHAVE_ENTRY_LEN> {
    /// The entries as announced broadcasts: each id with its hop count at the announcer.
    pub fn announcements(&self) -> impl Iterator<Item = (MessageId, u8)> + 'a {
        self.raw.chunks_exact(IHAVE_ENTRY_LEN).map(|c| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&c[..16]);
            (MessageId(id), c[16])
        })
    }
}

/// Encodes announced broadcasts (id, hop count) as IHAVE [`List`] entries into `out`; returns
/// the bytes used (whole entries only, as many as fit).
pub fn encode_announcements<'i>(
    entries: impl IntoIterator<Item = &'i (MessageId, u8)>,
    out: &mut [u8],
) -> usize {
    let mut n = 0;
    for ((id, hops), chunk) in entries
        .into_iter()
        .zip(out.chunks_exact_mut(IHAVE_ENTRY_LEN))
    {
        chunk[..16].copy_from_slice(&id.0);
        chunk[16] = *hops;
        n += IHAVE_ENTRY_LEN;
    }
    n
}

/// Encodes node IDs as [`List`] entries into `out`; returns the bytes used.
pub fn encode_node_ids<'i>(ids: impl IntoIterator<Item = &'i NodeId>, out: &mut [u8]) -> usize {
    let mut n = 0;
    for (id, chunk) in ids.into_iter().zip(out.chunks_exact_mut(40)) {
        chunk[..32].copy_from_slice(&id.key().0);
        chunk[32..].copy_from_slice(&id.created_secs().to_be_bytes());
        n += 40;
    }
    n
}

/// ANNOUNCE: the complete set of intents the sender is attuned to (replaces the last), each as
/// its key blinded for this link and sender
/// ([`ResonanceKey::announcement`](crate::derive::ResonanceKey::announcement)): only a node
/// attuned to the same intent recognises an entry, and only on this link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce<'a> {
    /// Blinded keys, 32 bytes each (at most `Limits::max_list_len`).
    #[serde(borrow)]
    pub blinded: List<'a, 32>,
}

/// PEERS: node IDs the sender knows (peer exchange).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers<'a> {
    /// Node IDs, 40 bytes each.
    #[serde(borrow)]
    pub peers: List<'a, 40>,
}

/// A node and the address it can be dialled at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact<'a> {
    /// The node.
    pub node: NodeId,
    /// Where to dial it (adapter-specific: a WebSocket URL, `sim://7`, …).
    pub addr: &'a str,
}

/// A list of [`Contact`]s carried as one byte string of consecutive postcard records, decoded
/// lazily (zero-copy) and checked on receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList<'a> {
    #[serde(serialize_with = "bytes::serialize")]
    raw: &'a [u8],
}

impl<'a> ContactList<'a> {
    /// A list over already encoded contacts (see [`ContactList::encode`]).
    pub fn from_raw(raw: &'a [u8]) -> Self {
        ContactList { raw }
    }

    /// Appends the encoding of `contacts` to `out`.
    pub fn encode<'c>(
        contacts: impl IntoIterator<Item = Contact<'c>>,
        out: &mut alloc::vec::Vec<u8>,
    ) {
        for c in contacts {
            let Ok(len) = postcard::serialize_with_flavor::<_, postcard::ser_flavors::Size, usize>(
                &c,
                postcard::ser_flavors::Size::default(),
            ) else {
                continue;
            };
            let start = out.len();
            out.resize(start + len, 0);
            if postcard::to_slice(&c, &mut out[start..]).is_err() {
                out.truncate(start);
            }
        }
    }

    /// The contacts, in order; stops at the first malformed record.
    pub fn iter(&self) -> impl Iterator<Item = Contact<'a>> + 'a {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (c, tail) = postcard::take_from_bytes::<Contact<'a>>(rest).ok()?;
            rest = tail;
            Some(c)
        })
    }

    fn check(&self, limits: &Limits) -> Result<(), WireError> {
        let mut rest = self.raw;
        let mut n = 0;
        while !rest.is_empty() {
            let (c, tail) = postcard::take_from_bytes::<Contact<'a>>(rest)
                .map_err(|_| WireError::Malformed(MessageType::Membership))?;
            if c.addr.len() > limits.max_text_len {
                return Err(WireError::FieldTooLarge {
                    field: "addr",
                    len: c.addr.len(),
                    max: limits.max_text_len,
                });
            }
            rest = tail;
            n += 1;
        }
        if n > limits.max_list_len {
            return Err(WireError::FieldTooLarge {
                field: "contacts",
                len: n,
                max: limits.max_list_len,
            });
        }
        Ok(())
    }
}

/// MEMBERSHIP: the partial-view overlay protocol (HyParView-style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership<'a> {
    /// A new node asks the receiver (its contact) to bring it into the overlay.
    Join {
        /// Where the new node can be dialled.
        addr: &'a str,
    },
    /// A random walk announcing a new node.
    ForwardJoin {
        /// The new node.
        node: NodeId,
        /// Where it can be dialled.
        addr: &'a str,
        /// Remaining walk length.
        ttl: u8,
    },
    /// Asks the receiver to take the sender into its active view.
    Neighbour {
        /// Where the sender can be dialled.
        addr: &'a str,
        /// The sender has no active peer left: refuse only if impossible.
        high_priority: bool,
    },
    /// The answer to `Neighbour`.
    NeighbourReply {
        /// Whether the sender is now in the receiver's active view.
        accepted: bool,
    },
    /// The sender drops the receiver from its active view.
    Disconnect,
    /// Passive-view exchange: the sender's sample.
    Shuffle {
        /// Contacts from the sender's views (itself included).
        #[serde(borrow)]
        contacts: ContactList<'a>,
    },
    /// Passive-view exchange: the receiver's sample in return.
    ShuffleReply {
        /// Contacts from the replier's passive view.
        #[serde(borrow)]
        contacts: ContactList<'a>,
    },
    /// This link is a short probe (partition healing): it carries the broadcast tree's
    /// catch-up announcements and nothing else, and takes no part in the tree.
    Probe,
}

/// TREE: epidemic broadcast tree control (PlumTree-style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tree<'a> {
    /// Lazy announcements, batched: the sender has these broadcasts.
    IHave {
        /// One entry per broadcast, [`IHAVE_ENTRY_LEN`] bytes each: its id and the hop count it
        /// would reach the receiver with (read with [`List::announcements`], written with
        /// [`encode_announcements`]); at most [`Limits::max_list_len`].
        #[serde(borrow)]
        entries: List<'a, IHAVE_ENTRY_LEN>,
    },
    /// The sender misses this broadcast: send it, and push eagerly to the sender from now on.
    Graft {
        /// The broadcast.
        id: MessageId,
    },
    /// The sender got a duplicate from the receiver: announce lazily to it from now on.
    Prune,
    /// The sender found a shorter path through the receiver than through its tree link (an
    /// IHAVE with fewer hops): push eagerly to the sender from now on. Nothing is sent back.
    Shortcut,
}

/// What a RELAY payload is, for the two ends (the relay never looks inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayStage {
    /// A message of the end-to-end link handshake.
    Handshake,
    /// A record of the end-to-end session.
    Record,
    /// A sealed box (one-way Noise X) needing no session.
    Sealed,
}

/// RELAY: from a node, "deliver to `peer`"; from the relay, "this came from `peer`".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay<'a> {
    /// The other end: target (node→relay) or source (relay→node).
    pub peer: NodeKey,
    /// What the payload is.
    pub stage: RelayStage,
    /// Opaque to the relay.
    #[serde(serialize_with = "bytes::serialize")]
    pub payload: &'a [u8],
}

/// JOIN: enter (or leave) a rendezvous namespace at the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The namespace (an intent's namespace at this relay, the global one, or any 32-byte
    /// name).
    pub namespace: [u8; 32],
    /// `true` to leave instead.
    pub leave: bool,
}

/// LOOKUP: ask the relay who is in a namespace (answered only to members of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// The namespace.
    pub namespace: [u8; 32],
}

/// FOUND: members of a namespace (capped; the asker excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found<'a> {
    /// The namespace.
    pub namespace: [u8; 32],
    /// Members, 40 bytes each.
    #[serde(borrow)]
    pub peers: List<'a, 40>,
}

/// UNREACHABLE: the relay has no registered client with this key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The target that could not be reached.
    pub peer: NodeKey,
}

/// The body of every extension message (FILE_SYNC, MINING_SIGNAL, DREAMSPACE, custom).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension<'a> {
    /// Routing fields.
    pub route: Route,
    /// The recipient, or `None` for every node.
    pub target: Option<NodeKey>,
    /// The extension's own bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub payload: &'a [u8],
}

/// A message of any type, borrowing its byte strings from the frame it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)] // each variant is named for its type
pub enum Message<'a> {
    Hello(Hello),
    Goodbye(Goodbye<'a>),
    Error(ErrorMsg<'a>),
    Ping(Ping),
    Pong(Pong),
    Ack(Ack),
    Whisper(Whisper<'a>),
    Broadcast(Broadcast<'a>),
    Resonance(Resonance<'a>),
    Signal(Signal<'a>),
    Announce(Announce<'a>),
    Peers(Peers<'a>),
    Membership(Membership<'a>),
    Tree(Tree<'a>),
    Relay(Relay<'a>),
    Join(Join),
    Lookup(Lookup),
    Found(Found<'a>),
    Unreachable(Unreachable),
    FileSync(Extension<'a>),
    MiningSignal(Extension<'a>),
    Dreamspace(Extension<'a>),
    /// A custom extension message; the code must be in `0x80..=0xff`.
    Custom(u8, Extension<'a>),
}

impl<'a> Message<'a> {
    /// The message's type.
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Goodbye(_) => MessageType::Goodbye,
            Message::Error(_) => MessageType::Error,
            Message::Ping(_) => MessageType::Ping,
            Message::Pong(_) => MessageType::Pong,
            Message::Ack(_) => MessageType::Ack,
            Message::Announce(_) => MessageType::Announce,
            Message::Peers(_) => MessageType::Peers,
            Message::Membership(_) => MessageType::Membership,
            Message::Tree(_) => MessageType::Tree,
            Message::Relay(_) => MessageType::Relay,
            Message::Join(_) => MessageType::Join,
            Message::Lookup(_) => MessageType::Lookup,
            Message::Found(_) => MessageType::Found,
            Message::Unreachable(_) => MessageType::Unreachable,
            Message::Whisper(_) => MessageType::Whisper,
            Message::Broadcast(_) => MessageType::Broadcast,
            Message::Resonance(_) => MessageType::Resonance,
            Message::Signal(_) => MessageType::Signal,
            Message::FileSync(_) => MessageType::FileSync,
            Message::MiningSignal(_) => MessageType::MiningSignal,
            Message::Dreamspace(_) => MessageType::Dreamspace,
            Message::Custom(code, _) => MessageType::Custom(*code),
        }
    }

    /// The extension message of type `kind` carrying `body`; `None` when `kind` is not an
    /// extension type ([`MessageType::is_extension`]). The one mapping from extension types to
    /// messages.
    pub fn extension(kind: MessageType, body: Extension<'a>) -> Option<Self> {
        Some(match kind {
            MessageType::FileSync => Message::FileSync(body),
            MessageType::MiningSignal => Message::MiningSignal(body),
            MessageType::Dreamspace => Message::Dreamspace(body),
            MessageType::Custom(c) => Message::Custom(c, body),
            _ => return None,
        })
    }

    /// The routing fields, for message types that have them.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Message::Whisper(m) => Some(&m.route),
            Message::Broadcast(m) => Some(&m.route),
            Message::Resonance(m) => Some(&m.route),
            Message::FileSync(m)
            | Message::MiningSignal(m)
            | Message::Dreamspace(m)
            | Message::Custom(_, m) => Some(&m.route),
            _ => None,
        }
    }

    /// Serializes the body into `out`, returning the bytes written.
    pub(crate) fn encode_body(&self, out: &mut [u8]) -> Result<usize, postcard::Error> {
        fn put<T: Serialize>(v: &T, out: &mut [u8]) -> Result<usize, postcard::Error> {
            postcard::to_slice(v, out).map(|b| b.len())
        }
        match self {
            Message::Hello(m) => put(m, out),
            Message::Goodbye(m) => put(m, out),
            Message::Error(m) => put(m, out),
            Message::Ping(m) => put(m, out),
            Message::Pong(m) => put(m, out),
            Message::Ack(m) => put(m, out),
            Message::Announce(m) => put(m, out),
            Message::Peers(m) => put(m, out),
            Message::Membership(m) => put(m, out),
            Message::Tree(m) => put(m, out),
            Message::Relay(m) => put(m, out),
            Message::Join(m) => put(m, out),
            Message::Lookup(m) => put(m, out),
            Message::Found(m) => put(m, out),
            Message::Unreachable(m) => put(m, out),
            Message::Whisper(m) => put(m, out),
            Message::Broadcast(m) => put(m, out),
            Message::Resonance(m) => put(m, out),
            Message::Signal(m) => put(m, out),
            Message::FileSync(m)
            | Message::MiningSignal(m)
            | Message::Dreamspace(m)
            | Message::Custom(_, m) => put(m, out),
        }
    }

    /// The length of the encoded body, computed without writing it.
    pub(crate) fn body_len(&self) -> usize {
        fn size<T: Serialize>(v: &T) -> usize {
            postcard::serialize_with_flavor::<T, postcard::ser_flavors::Size, usize>(
                v,
                postcard::ser_flavors::Size::default(),
            )
            .unwrap_or(usize::MAX / 2)
        }
        match self {
            Message::Hello(m) => size(m),
            Message::Goodbye(m) => size(m),
            Message::Error(m) => size(m),
            Message::Ping(m) => size(m),
            Message::Pong(m) => size(m),
            Message::Ack(m) => size(m),
            Message::Announce(m) => size(m),
            Message::Peers(m) => size(m),
            Message::Membership(m) => size(m),
            Message::Tree(m) => size(m),
            Message::Relay(m) => size(m),
            Message::Join(m) => size(m),
            Message::Lookup(m) => size(m),
            Message::Found(m) => size(m),
            Message::Unreachable(m) => size(m),
            Message::Whisper(m) => size(m),
            Message::Broadcast(m) => size(m),
            Message::Resonance(m) => size(m),
            Message::Signal(m) => size(m),
            Message::FileSync(m)
            | Message::MiningSignal(m)
            | Message::Dreamspace(m)
            | Message::Custom(_, m) => size(m),
        }
    }

    /// Decodes a body of type `kind` that must fill `body` exactly.
    pub(crate) fn decode_body(kind: MessageType, body: &'a [u8]) -> Result<Self, WireError> {
        fn take<'a, T: Deserialize<'a>>(kind: MessageType, body: &'a [u8]) -> Result<T, WireError> {
            let (v, rest) =
                postcard::take_from_bytes::<T>(body).map_err(|_| WireError::Malformed(kind))?;
            if !rest.is_empty() {
                return Err(WireError::TrailingBytes(rest.len()));
            }
            Ok(v)
        }
        Ok(match kind {
            MessageType::Hello => Message::Hello(take(kind, body)?),
            MessageType::Goodbye => Message::Goodbye(take(kind, body)?),
            MessageType::Error => Message::Error(take(kind, body)?),
            MessageType::Ping => Message::Ping(take(kind, body)?),
            MessageType::Pong => Message::Pong(take(kind, body)?),
            MessageType::Ack => Message::Ack(take(kind, body)?),
            MessageType::Announce => Message::Announce(take(kind, body)?),
            MessageType::Peers => Message::Peers(take(kind, body)?),
            MessageType::Membership => Message::Membership(take(kind, body)?),
            MessageType::Tree => Message::Tree(take(kind, body)?),
            MessageType::Relay => Message::Relay(take(kind, body)?),
            MessageType::Join => Message::Join(take(kind, body)?),
            MessageType::Lookup => Message::Lookup(take(kind, body)?),
            MessageType::Found => Message::Found(take(kind, body)?),
            MessageType::Unreachable => Message::Unreachable(take(kind, body)?),
            MessageType::Whisper => Message::Whisper(take(kind, body)?),
            MessageType::Broadcast => Message::Broadcast(take(kind, body)?),
            MessageType::Resonance => Message::Resonance(take(kind, body)?),
            MessageType::Signal => Message::Signal(take(kind, body).map_err(|e| match e {
                WireError::Malformed(_) => super::signal::unknown_variant(body).unwrap_or(e),
                e => e,
            })?),
            MessageType::FileSync => Message::FileSync(take(kind, body)?),
            MessageType::MiningSignal => Message::MiningSignal(take(kind, body)?),
            MessageType::Dreamspace => Message::Dreamspace(take(kind, body)?),
            MessageType::Custom(code) => Message::Custom(code, take(kind, body)?),
        })
    }

    /// Structural rules that need no clock: hop count within the limit, strength in range,
    /// field sizes, and broadcast origin and signature present together.
    pub fn validate(&self, limits: &Limits) -> Result<(), WireError> {
        fn text(field: &'static str, s: &str, limits: &Limits) -> Result<(), WireError> {
            if s.len() > limits.max_text_len {
                return Err(WireError::FieldTooLarge {
                    field,
                    len: s.len(),
                    max: limits.max_text_len,
                });
            }
            Ok(())
        }
        if let Some(route) = self.route() {
            route.check_hops(limits)?;
        }
        match self {
            Message::Goodbye(m) => text("reason", m.reason, limits),
            Message::Error(m) => text("detail", m.detail, limits),
            Message::Announce(m) => m.blinded.check(MessageType::Announce, "blinded", limits),
            Message::Peers(m) => m.peers.check(MessageType::Peers, "peers", limits),
            Message::Found(m) => m.peers.check(MessageType::Found, "peers", limits),
            Message::Tree(Tree::IHave { entries }) => {
                entries.check(MessageType::Tree, "ihave", limits)
            }
            Message::Membership(m) => match m {
                Membership::Join { addr }
                | Membership::ForwardJoin { addr, .. }
                | Membership::Neighbour { addr, .. } => text("addr", addr, limits),
                Membership::Shuffle { contacts } | Membership::ShuffleReply { contacts } => {
                    contacts.check(limits)
                }
                Membership::NeighbourReply { .. } | Membership::Disconnect | Membership::Probe => {
                    Ok(())
                }
            },
            Message::Broadcast(m) if m.origin.is_some() != m.signature.is_some() => {
                Err(WireError::AuthMismatch)
            }
            Message::Resonance(m) if !(0.0..=1.0).contains(&m.strength) => {
                Err(WireError::StrengthOutOfRange)
            }
            Message::Signal(m) if m.signal.text_len() > limits.max_signal_len => {
                Err(WireError::FieldTooLarge {
                    field: "signal",
                    len: m.signal.text_len(),
                    max: limits.max_signal_len,
                })
            }
            _ => Ok(()),
        }
    }

    /// Rules that depend on the receiver's clock: not expired (TTL capped by
    /// [`Limits::max_ttl`]) and not further ahead than [`Limits::max_clock_skew`].
    /// Messages without a [`Route`] always pass.
    pub fn validate_at(&self, now: Timestamp, limits: &Limits) -> Result<(), WireError> {
        match self.route() {
            Some(route) => route.check_time(now, limits),
            None => Ok(()),
        }
    }
}
