//! Dreamspace: a tiny key-value space (a "dream") replicated between peers.
//!
//! [`Dreamspace::set`] stamps an update with ([`Stamp::millis`], [`Stamp::origin`]) and sends it
//! to every node; a receiver applies it if it is newer than what it holds for that key
//! (last-writer-wins, ties broken by origin key and then by value bytes) and raises
//! [`DreamChanged`]. The merge is commutative, associative and idempotent, so every node that has
//! seen the same updates holds the same dream whatever the order of delivery. A local `set`
//! stamps at least one millisecond after the value it replaces, so it always wins locally.
//!
//! Nodes that join later catch up: on `tick` the whole dream is sent to every peer that was not
//! connected at the previous tick (see [`DreamConfig::sync_new_peers`] and
//! [`Dreamspace::sync_to`]).
//!
//! Bounds: at most [`DreamConfig::max_keys`] keys of at most [`DreamConfig::max_key_len`] bytes,
//! values of at most [`DreamConfig::max_value_len`] bytes, and updates stamped more than
//! [`DreamConfig::max_clock_skew`] in the future are refused (otherwise one update stamped in the
//! year 3000 would freeze its key forever). The origin key is a tie-breaker, not an authenticated
//! author: any peer can relay or forge updates.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use whispurr_core::{
    NodeKey,
    engine::{Extension, ExtensionContext, ExtensionMessage, SendError},
    wire::MessageType,
};

use super::{decode, encode};

/// Limits of a [`Dreamspace`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DreamConfig {
    /// Most keys in the dream.
    pub max_keys: usize,
    /// Longest key, in bytes (keys must not be empty).
    pub max_key_len: usize,
    /// Longest value, in bytes.
    pub max_value_len: usize,
    /// Updates stamped further than this ahead of the local clock are refused.
    pub max_clock_skew: Duration,
    /// Whether `tick` sends the whole dream to newly connected peers.
    pub sync_new_peers: bool,
}

impl Default for DreamConfig {
    fn default() -> Self {
        DreamConfig {
            max_keys: 256,
            max_key_len: 64,
            max_value_len: 1024,
            max_clock_skew: Duration::from_secs(60),
            sync_new_peers: true,
        }
    }
}

/// When and by whom a value was written; later stamps win (millis first, then origin key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch on the writer's clock.
    pub millis: u64,
    /// The writer's node key.
    pub origin: NodeKey,
}

/// Event: a key took a new value from a peer's update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DreamChanged {
    /// The key.
    pub key: String,
    /// Its new value.
    pub value: Vec<u8>,
    /// The node that wrote it (as claimed by the update).
    pub origin: NodeKey,
    /// When it was written, on the writer's clock.
    pub millis: u64,
}

/// Why [`Dreamspace::set`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DreamError {
    /// The key is empty or too long.
    #[error("key is empty or longer than {max} bytes")]
    InvalidKey {
        /// The configured maximum.
        max: usize,
    },
    /// The value is too long.
    #[error("value of {len} bytes is longer than {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The dream already has `max_keys` keys and this one is new.
    #[error("the dream is full ({0} keys)")]
    Full(usize),
    /// The engine refused the message.
    #[error("send failed: {0}")]
    Send(#[from] SendError),
}

/// Counters of updates a [`Dreamspace`] ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DreamStats {
    /// Payloads that did not decode, or of another message type.
    pub malformed: u64,
    /// Updates addressed to another node.
    pub misaddressed: u64,
    /// Updates with an empty or too long key, or a too long value.
    pub oversize: u64,
    /// Updates stamped too far in the future.
    pub future: u64,
    /// Updates for a new key while the dream was full.
    pub full: u64,
    /// Updates no newer than what was held (including duplicates).
    pub stale: u64,
}

/// The message Dreamspace sends, postcard-encoded. Decoding borrows from the payload.
#[derive(Serialize, Deserialize)]
enum Wire<'a> {
    Update {
        key: &'a str,
        value: &'a [u8],
        millis: u64,
        origin: NodeKey,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    stamp: Stamp,
}

/// The Dreamspace extension (name `"dreamspace"`, type [`MessageType::Dreamspace`]).
///
/// Its event is [`DreamChanged`].
pub struct Dreamspace {
    config: DreamConfig,
    entries: BTreeMap<String, Entry>,
    known_peers: BTreeSet<NodeKey>,
    stats: DreamStats,
}

impl Default for Dreamspace {
    fn default() -> Self {
        Self::new(DreamConfig::default())
    }
}

impl Dreamspace {
    /// The extension's name.
    pub const NAME: &'static str = "dreamspace";

    /// An empty dream with the given limits.
    pub fn new(config: DreamConfig) -> Self {
        Dreamspace {
            config,
            entries: BTreeMap::new(),
            known_peers: BTreeSet::new(),
            stats: DreamStats::default(),
        }
    }

    /// Its limits.
    pub fn config(&self) -> &DreamConfig {
        &self.config
    }

    /// Counters of ignored updates.
    pub fn stats(&self) -> DreamStats {
        self.stats
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(|e| e.value.as_slice())
    }

    /// The stamp of `key`'s value.
    pub fn stamp(&self, key: &str) -> Option<Stamp> {
        self.entries.get(key).map(|e| e.stamp)
    }

    /// Every key with its value and stamp, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8], Stamp)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.as_slice(), e.stamp))
    }

    /// How many keys the dream holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dream is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key` to `value` here and sends the update to every node. Returns its stamp.
    ///
    /// Nothing changes if the update cannot be sent. No [`DreamChanged`] is raised for local
    /// writes.
    pub fn set(
        &mut self,
        ctx: &mut ExtensionContext<'_>,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Stamp, DreamError> {
        if !self.key_ok(key) {
            return Err(DreamError::InvalidKey {
                max: self.config.max_key_len,
            });
        }
        if value.len() > self.config.max_value_len {
            return Err(DreamError::ValueTooLarge {
                len: value.len(),
                max: self.config.max_value_len,
            });
        }
        let current = self.entries.get(key).map(|e| e.stamp.millis);
        if current.is_none() && self.entries.len() >= self.config.max_keys {
            return Err(DreamError::Full(self.entries.len()));
        }
        let now = ctx.now().as_millis();
        let stamp = Stamp {
            millis: current.map_or(now, |m| now.max(m.saturating_add(1))),
            origin: *ctx.local_id().key(),
        };
        send_update(ctx, None, key, &value, stamp)?;
        self.entries.insert(key.into(), Entry { value, stamp });
        Ok(stamp)
    }

    /// Sends every entry of the dream to `peer` (one message each). Returns how many were sent.
    pub fn sync_to(
        &self,
        ctx: &mut ExtensionContext<'_>,
        peer: NodeKey,
    ) -> Result<usize, DreamError> {
        for (key, entry) in &self.entries {
            send_update(ctx, Some(peer), key, &entry.value, entry.stamp)?;
        }
        Ok(self.entries.len())
    }

    fn key_ok(&self, key: &str) -> bool {
        !key.is_empty() && key.len() <= self.config.max_key_len
    }
}

fn send_update(
    ctx: &mut ExtensionContext<'_>,
    target: Option<NodeKey>,
    key: &str,
    value: &[u8],
    stamp: Stamp,
) -> Result<(), SendError> {
    let wire = Wire::Update {
        key,
        value,
        millis: stamp.millis,
        origin: stamp.origin,
    };
    let payload = encode(&wire).ok_or(SendError::TooLarge(usize::MAX))?;
    ctx.send(MessageType::Dreamspace, target, payload)
}

impl Extension for Dreamspace {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn message_types(&self) -> Vec<MessageType> {
        vec![MessageType::Dreamspace]
    }

    /// Peers already connected need no catch-up: the dream is still empty.
    fn init(&mut self, ctx: &mut ExtensionContext<'_>) {
        self.known_peers = ctx.peers().iter().copied().collect();
    }

    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>) {
        if msg.target.is_some_and(|t| t != *ctx.local_id().key()) {
            self.stats.misaddressed += 1;
            return;
        }
        let decoded = match msg.kind {
            MessageType::Dreamspace => decode::<Wire<'_>>(msg.payload),
            _ => None,
        };
        let Some(Wire::Update {
            key,
            value,
            millis,
            origin,
        }) = decoded
        else {
            self.stats.malformed += 1;
            return;
        };
        if !self.key_ok(key) || value.len() > self.config.max_value_len {
            self.stats.oversize += 1;
            return;
        }
        if millis
            > ctx
                .now()
                .saturating_add(self.config.max_clock_skew)
                .as_millis()
        {
            self.stats.future += 1;
            return;
        }
        let stamp = Stamp { millis, origin };
        match self.entries.get(key) {
            Some(e) if (e.stamp, e.value.as_slice()) >= (stamp, value) => {
                self.stats.stale += 1;
                return;
            }
            None if self.entries.len() >= self.config.max_keys => {
                self.stats.full += 1;
                return;
            }
            _ => {}
        }
        self.entries.insert(
            key.into(),
            Entry {
                value: value.to_vec(),
                stamp,
            },
        );
        ctx.emit(DreamChanged {
            key: key.into(),
            value: value.to_vec(),
            origin,
            millis,
        });
    }

    /// Sends the whole dream to peers connected since the previous tick.
    fn tick(&mut self, ctx: &mut ExtensionContext<'_>) {
        let peers: BTreeSet<NodeKey> = ctx.peers().iter().copied().collect();
        if self.config.sync_new_peers {
            for &peer in peers.difference(&self.known_peers) {
                // A failed send is counted by the engine; the peer still gets later updates.
                let _ = self.sync_to(ctx, peer);
            }
        }
        self.known_peers = peers;
    }
}
