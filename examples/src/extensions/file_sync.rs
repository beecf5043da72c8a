//! FileSync: chunked file transfer to one peer with an integrity check.
//!
//! The sender ([`FileSync::offer`]) sends a *manifest* (transfer ID, name, size, chunk size,
//! chunk count and the SHA-256 of the whole file) and then the chunks, each small enough for one
//! extension message. The receiver reassembles the chunks whatever their order (duplicates are
//! counted and ignored; chunks that arrive before their manifest are buffered under the same
//! caps), checks the hash and raises [`FileReceived`] — or [`FileRejected`] with a
//! [`RejectReason`]. Either way it answers the sender, who raises [`FileDelivered`] or
//! [`FileDeliveryFailed`].
//!
//! Memory is bounded: at most [`FileSyncConfig::max_incoming`] transfers are reassembled at once,
//! each at most [`FileSyncConfig::max_file_size`] bytes in at most
//! [`FileSyncConfig::max_chunks`] chunks; a transfer that makes no progress for
//! [`FileSyncConfig::receive_timeout`] is dropped with [`RejectReason::Timeout`]. The sender keeps
//! at most [`FileSyncConfig::max_outgoing`] transfers awaiting an answer, each for at most
//! [`FileSyncConfig::delivery_timeout`]. Transfers are keyed by (sender, transfer ID), so one
//! peer cannot touch another's transfers.
//!
//! All FileSync messages are addressed to one node; messages to everyone, or to another node,
//! are ignored. The sender sends every chunk at once from `offer`, so a file should fit the
//! engine's send queues; pacing would be the next step for large files.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use whispurr_core::{
    NodeKey, Timestamp,
    engine::{Extension, ExtensionContext, ExtensionMessage, SendError},
    wire::MessageType,
};

use super::{decode, encode, sha256};

/// Bytes of an extension payload reserved for a chunk's framing (message tag, transfer ID,
/// index and length prefix, all varints); the rest carries file data.
pub const CHUNK_OVERHEAD: usize = 32;

/// Identifies one transfer between a sender and a receiver (unique per sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId(pub u64);

/// Limits and timeouts of a [`FileSync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSyncConfig {
    /// Largest chunk of file data sent in one message; the sender uses the smaller of this and
    /// what the context's `max_payload` leaves after [`CHUNK_OVERHEAD`].
    pub chunk_size: usize,
    /// Largest file sent or accepted, in bytes.
    pub max_file_size: usize,
    /// Most chunks a file may be split into (sent or accepted).
    pub max_chunks: u32,
    /// Most transfers being received at once.
    pub max_incoming: usize,
    /// Most sent transfers awaiting the receiver's answer.
    pub max_outgoing: usize,
    /// Longest file name, in bytes (names must not be empty).
    pub max_name_len: usize,
    /// An incoming transfer with no new chunk or manifest for this long is dropped.
    pub receive_timeout: Duration,
    /// A sent transfer with no answer after this long is reported as failed.
    pub delivery_timeout: Duration,
    /// How many finished (completed or rejected) incoming transfers are remembered so that late
    /// duplicates of their messages are ignored instead of starting a new transfer.
    pub remember_finished: usize,
}

impl Default for FileSyncConfig {
    fn default() -> Self {
        FileSyncConfig {
            chunk_size: 16 * 1024,
            max_file_size: 16 * 1024 * 1024,
            max_chunks: 4096,
            max_incoming: 8,
            max_outgoing: 32,
            max_name_len: 255,
            receive_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            remember_finished: 256,
        }
    }
}

/// Why a receiver refused a transfer. Also travels back to the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// The reassembled file does not have the manifest's SHA-256.
    HashMismatch,
    /// The file is larger than the receiver's `max_file_size`.
    TooLarge,
    /// The file has more chunks than the receiver's `max_chunks` (or a chunk index beyond it).
    TooManyChunks,
    /// The manifest contradicts itself, an earlier manifest or the chunks (bad name, count,
    /// chunk size, index or length).
    InconsistentManifest,
    /// The receiver is already reassembling `max_incoming` transfers.
    TooManyTransfers,
    /// The transfer stalled (receiver side) or was never answered (sender side).
    Timeout,
}

/// Event: a file arrived intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReceived {
    /// The sender.
    pub from: NodeKey,
    /// The sender's transfer ID.
    pub transfer: TransferId,
    /// The name the sender gave (untrusted text; never use it as a path unchecked).
    pub name: String,
    /// The file's contents, verified against the manifest's SHA-256.
    pub data: Vec<u8>,
}

/// Event: an incoming transfer was refused or abandoned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRejected {
    /// The sender.
    pub from: NodeKey,
    /// The sender's transfer ID.
    pub transfer: TransferId,
    /// Why.
    pub reason: RejectReason,
}

/// Event: the receiver confirmed that a file we offered arrived intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDelivered {
    /// The receiver.
    pub to: NodeKey,
    /// Our transfer ID, as returned by [`FileSync::offer`].
    pub transfer: TransferId,
}

/// Event: a file we offered was refused by the receiver, or never answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDeliveryFailed {
    /// The receiver.
    pub to: NodeKey,
    /// Our transfer ID.
    pub transfer: TransferId,
    /// The receiver's reason, or [`RejectReason::Timeout`] if it never answered.
    pub reason: RejectReason,
}

/// Why [`FileSync::offer`] refused to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileSyncError {
    /// The name is empty or too long.
    #[error("file name is empty or longer than {max} bytes")]
    InvalidName {
        /// The configured maximum.
        max: usize,
    },
    /// The file is larger than `max_file_size`.
    #[error("file of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The file's size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The file would need more than `max_chunks` chunks.
    #[error("file needs {chunks} chunks, more than the limit of {max}")]
    TooManyChunks {
        /// Chunks needed.
        chunks: usize,
        /// The configured maximum.
        max: u32,
    },
    /// `max_outgoing` transfers already await an answer.
    #[error("{0} transfers are already awaiting an answer")]
    TooManyOutgoing(usize),
    /// The context's `max_payload` leaves no room for file data.
    #[error("a payload of at most {0} bytes leaves no room for file data")]
    PayloadTooSmall(usize),
    /// The engine refused a message (the manifest or a chunk).
    #[error("send failed: {0}")]
    Send(#[from] SendError),
}

/// Counters of messages a [`FileSync`] ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileSyncStats {
    /// Payloads that did not decode.
    pub malformed: u64,
    /// Messages of another type, to everyone, or addressed to another node.
    pub misaddressed: u64,
    /// Repeated chunks or manifests, and messages for transfers already finished.
    pub duplicates: u64,
    /// Answers (`Done`/`Rejected`) for transfers we are not waiting on.
    pub unknown: u64,
    /// Chunks dropped because no reassembly slot was free.
    pub dropped: u64,
}

/// The messages FileSync sends, postcard-encoded. Decoding borrows from the payload.
#[derive(Serialize, Deserialize)]
enum Wire<'a> {
    Manifest {
        transfer: u64,
        name: &'a str,
        size: u64,
        chunk_size: u32,
        chunks: u32,
        sha256: [u8; 32],
    },
    Chunk {
        transfer: u64,
        index: u32,
        data: &'a [u8],
    },
    Done {
        transfer: u64,
    },
    Rejected {
        transfer: u64,
        reason: RejectReason,
    },
}

/// A manifest as the receiver keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Manifest {
    name: String,
    size: u64,
    chunk_size: u32,
    chunks: u32,
    sha256: [u8; 32],
}

impl Manifest {
    /// The exact length chunk `index` must have, or `None` if there is no such chunk.
    fn chunk_len(&self, index: u32) -> Option<u64> {
        if index >= self.chunks {
            return None;
        }
        let before = u64::from(index) * u64::from(self.chunk_size);
        Some(
            self.size
                .saturating_sub(before)
                .min(u64::from(self.chunk_size)),
        )
    }

    /// Whether a chunk of `len` bytes fits at `index`.
    fn fits(&self, index: u32, len: usize) -> bool {
        self.chunk_len(index) == u64::try_from(len).ok()
    }
}

/// A transfer being reassembled.
struct Incoming {
    manifest: Option<Manifest>,
    chunks: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    last_activity: Timestamp,
}

/// A sent transfer awaiting the receiver's answer.
struct Pending {
    to: NodeKey,
    deadline: Timestamp,
}

type Key = (NodeKey, TransferId);

/// The FileSync extension (name `"file_sync"`, type [`MessageType::FileSync`]).
///
/// One instance both sends ([`offer`](Self::offer)) and receives. Its events are
/// [`FileReceived`], [`FileRejected`], [`FileDelivered`] and [`FileDeliveryFailed`].
pub struct FileSync {
    config: FileSyncConfig,
    next_transfer: u64,
    incoming: HashMap<Key, Incoming>,
    outgoing: HashMap<TransferId, Pending>,
    finished: HashSet<Key>,
    finished_order: VecDeque<Key>,
    stats: FileSyncStats,
}

impl Default for FileSync {
    fn default() -> Self {
        Self::new(FileSyncConfig::default())
    }
}

impl FileSync {
    /// The extension's name.
    pub const NAME: &'static str = "file_sync";

    /// A FileSync with the given limits.
    pub fn new(config: FileSyncConfig) -> Self {
        FileSync {
            config,
            next_transfer: 1,
            incoming: HashMap::new(),
            outgoing: HashMap::new(),
            finished: HashSet::new(),
            finished_order: VecDeque::new(),
            stats: FileSyncStats::default(),
        }
    }

    /// Its limits.
    pub fn config(&self) -> &FileSyncConfig {
        &self.config
    }

    /// Counters of ignored messages.
    pub fn stats(&self) -> FileSyncStats {
        self.stats
    }

    /// How many transfers are being received now.
    pub fn incoming_len(&self) -> usize {
        self.incoming.len()
    }

    /// How many sent transfers await an answer.
    pub fn outgoing_len(&self) -> usize {
        self.outgoing.len()
    }

    /// Sends `data` as file `name` to `to`: a manifest, then the chunks.
    ///
    /// Returns the transfer's ID; [`FileDelivered`] or [`FileDeliveryFailed`] with that ID
    /// follows. Fails without sending anything if the name, size or chunk count is over this
    /// node's limits or too many transfers await an answer; fails with
    /// [`FileSyncError::Send`] if the engine refuses a message (the receiver then times out).
    pub fn offer(
        &mut self,
        ctx: &mut ExtensionContext<'_>,
        to: NodeKey,
        name: &str,
        data: Vec<u8>,
    ) -> Result<TransferId, FileSyncError> {
        let config = &self.config;
        if name.is_empty() || name.len() > config.max_name_len {
            return Err(FileSyncError::InvalidName {
                max: config.max_name_len,
            });
        }
        if data.len() > config.max_file_size {
            return Err(FileSyncError::TooLarge {
                size: data.len(),
                max: config.max_file_size,
            });
        }
        if self.outgoing.len() >= config.max_outgoing {
            return Err(FileSyncError::TooManyOutgoing(self.outgoing.len()));
        }
        let room = ctx.max_payload().saturating_sub(CHUNK_OVERHEAD);
        let chunk_size = config.chunk_size.min(room).min(u32::MAX as usize);
        if chunk_size == 0 {
            return Err(FileSyncError::PayloadTooSmall(ctx.max_payload()));
        }
        let chunks = data.len().div_ceil(chunk_size);
        let chunk_count = match u32::try_from(chunks) {
            Ok(n) if n <= config.max_chunks => n,
            _ => {
                return Err(FileSyncError::TooManyChunks {
                    chunks,
                    max: config.max_chunks,
                });
            }
        };

        let transfer = TransferId(self.next_transfer);
        self.next_transfer = self.next_transfer.wrapping_add(1);
        let manifest = Wire::Manifest {
            transfer: transfer.0,
            name,
            size: data.len() as u64,
            chunk_size: chunk_size as u32,
            chunks: chunk_count,
            sha256: sha256(&[&data]),
        };
        send(ctx, to, &manifest)?;
        for (index, piece) in data.chunks(chunk_size).enumerate() {
            let chunk = Wire::Chunk {
                transfer: transfer.0,
                index: index as u32,
                data: piece,
            };
            send(ctx, to, &chunk)?;
        }
        let deadline = ctx.now().saturating_add(self.config.delivery_timeout);
        self.outgoing.insert(transfer, Pending { to, deadline });
        Ok(transfer)
    }

    fn on_manifest(&mut self, ctx: &mut ExtensionContext<'_>, key: Key, manifest: Manifest) {
        if self.finished.contains(&key) {
            self.stats.duplicates += 1;
            return;
        }
        if let Err(reason) = self.check_manifest(&manifest) {
            return self.reject(ctx, key, reason);
        }
        let now = ctx.now();
        match self.incoming.get_mut(&key) {
            Some(entry) => {
                if let Some(existing) = &entry.manifest {
                    if *existing == manifest {
                        self.stats.duplicates += 1;
                    } else {
                        self.reject(ctx, key, RejectReason::InconsistentManifest);
                    }
                    return;
                }
                if entry
                    .chunks
                    .iter()
                    .any(|(&index, data)| !manifest.fits(index, data.len()))
                {
                    return self.reject(ctx, key, RejectReason::InconsistentManifest);
                }
                entry.manifest = Some(manifest);
                entry.last_activity = now;
            }
            None => {
                if self.incoming.len() >= self.config.max_incoming {
                    return self.reject(ctx, key, RejectReason::TooManyTransfers);
                }
                self.incoming.insert(
                    key,
                    Incoming {
                        manifest: Some(manifest),
                        chunks: BTreeMap::new(),
                        bytes: 0,
                        last_activity: now,
                    },
                );
            }
        }
        self.try_complete(ctx, key);
    }

    /// Checks a manifest on its own against this node's limits.
    fn check_manifest(&self, m: &Manifest) -> Result<(), RejectReason> {
        if m.size > self.config.max_file_size as u64 {
            return Err(RejectReason::TooLarge);
        }
        if m.chunks > self.config.max_chunks {
            return Err(RejectReason::TooManyChunks);
        }
        if m.name.is_empty() || m.name.len() > self.config.max_name_len {
            return Err(RejectReason::InconsistentManifest);
        }
        let expected = match (m.size, m.chunk_size) {
            (0, _) => 0,
            (_, 0) => return Err(RejectReason::InconsistentManifest),
            (size, chunk) => size.div_ceil(u64::from(chunk)),
        };
        if expected != u64::from(m.chunks) {
            return Err(RejectReason::InconsistentManifest);
        }
        Ok(())
    }

    fn on_chunk(&mut self, ctx: &mut ExtensionContext<'_>, key: Key, index: u32, data: &[u8]) {
        if self.finished.contains(&key) {
            self.stats.duplicates += 1;
            return;
        }
        let now = ctx.now();
        if !self.incoming.contains_key(&key) {
            if self.incoming.len() >= self.config.max_incoming {
                self.stats.dropped += 1;
                return;
            }
            self.incoming.insert(
                key,
                Incoming {
                    manifest: None,
                    chunks: BTreeMap::new(),
                    bytes: 0,
                    last_activity: now,
                },
            );
        }
        let Some(entry) = self.incoming.get_mut(&key) else {
            return;
        };
        let verdict = match &entry.manifest {
            Some(m) if !m.fits(index, data.len()) => Err(RejectReason::InconsistentManifest),
            Some(_) => Ok(()),
            None if index >= self.config.max_chunks => Err(RejectReason::TooManyChunks),
            None if entry.bytes.saturating_add(data.len()) > self.config.max_file_size => {
                Err(RejectReason::TooLarge)
            }
            None => Ok(()),
        };
        if let Err(reason) = verdict {
            return self.reject(ctx, key, reason);
        }
        if entry.chunks.contains_key(&index) {
            self.stats.duplicates += 1;
            return;
        }
        entry.bytes += data.len();
        entry.chunks.insert(index, data.to_vec());
        entry.last_activity = now;
        self.try_complete(ctx, key);
    }

    /// Finishes the transfer if its manifest and every chunk are in.
    fn try_complete(&mut self, ctx: &mut ExtensionContext<'_>, key: Key) {
        let complete = self.incoming.get(&key).is_some_and(|entry| {
            entry
                .manifest
                .as_ref()
                .is_some_and(|m| entry.chunks.len() == m.chunks as usize)
        });
        if !complete {
            return;
        }
        let Some(Incoming {
            manifest: Some(manifest),
            chunks,
            bytes,
            ..
        }) = self.incoming.remove(&key)
        else {
            return;
        };
        let mut data = Vec::with_capacity(bytes);
        for piece in chunks.into_values() {
            data.extend_from_slice(&piece);
        }
        if sha256(&[&data]) != manifest.sha256 {
            return self.reject(ctx, key, RejectReason::HashMismatch);
        }
        self.remember(key);
        let (from, transfer) = key;
        let _ = send(
            ctx,
            from,
            &Wire::Done {
                transfer: transfer.0,
            },
        );
        ctx.emit(FileReceived {
            from,
            transfer,
            name: manifest.name,
            data,
        });
    }

    /// Drops an incoming transfer, tells its sender and the application why.
    fn reject(&mut self, ctx: &mut ExtensionContext<'_>, key: Key, reason: RejectReason) {
        self.incoming.remove(&key);
        self.remember(key);
        let (from, transfer) = key;
        let _ = send(
            ctx,
            from,
            &Wire::Rejected {
                transfer: transfer.0,
                reason,
            },
        );
        ctx.emit(FileRejected {
            from,
            transfer,
            reason,
        });
    }

    /// Remembers a finished incoming transfer, forgetting the oldest beyond the cap.
    fn remember(&mut self, key: Key) {
        if self.config.remember_finished == 0 || !self.finished.insert(key) {
            return;
        }
        self.finished_order.push_back(key);
        while self.finished_order.len() > self.config.remember_finished {
            if let Some(old) = self.finished_order.pop_front() {
                self.finished.remove(&old);
            }
        }
    }

    /// The receiver's answer to one of our transfers.
    fn on_answer(
        &mut self,
        ctx: &mut ExtensionContext<'_>,
        from: NodeKey,
        transfer: TransferId,
        outcome: Result<(), RejectReason>,
    ) {
        if self.outgoing.get(&transfer).is_none_or(|p| p.to != from) {
            self.stats.unknown += 1;
            return;
        }
        self.outgoing.remove(&transfer);
        match outcome {
            Ok(()) => ctx.emit(FileDelivered { to: from, transfer }),
            Err(reason) => ctx.emit(FileDeliveryFailed {
                to: from,
                transfer,
                reason,
            }),
        }
    }
}

/// Encodes and sends one message to `to`.
fn send(ctx: &mut ExtensionContext<'_>, to: NodeKey, wire: &Wire<'_>) -> Result<(), SendError> {
    // A `Wire` always encodes; an encoding failure is reported like an oversized payload.
    let payload = encode(wire).ok_or(SendError::TooLarge(usize::MAX))?;
    ctx.send(MessageType::FileSync, Some(to), payload)
}

impl Extension for FileSync {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn message_types(&self) -> Vec<MessageType> {
        vec![MessageType::FileSync]
    }

    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>) {
        if msg.kind != MessageType::FileSync || msg.target != Some(*ctx.local_id().key()) {
            self.stats.misaddressed += 1;
            return;
        }
        let Some(wire) = decode::<Wire<'_>>(msg.payload) else {
            self.stats.malformed += 1;
            return;
        };
        let from = msg.from;
        match wire {
            Wire::Manifest {
                transfer,
                name,
                size,
                chunk_size,
                chunks,
                sha256,
            } => {
                let manifest = Manifest {
                    name: name.into(),
                    size,
                    chunk_size,
                    chunks,
                    sha256,
                };
                self.on_manifest(ctx, (from, TransferId(transfer)), manifest);
            }
            Wire::Chunk {
                transfer,
                index,
                data,
            } => self.on_chunk(ctx, (from, TransferId(transfer)), index, data),
            Wire::Done { transfer } => self.on_answer(ctx, from, TransferId(transfer), Ok(())),
            Wire::Rejected { transfer, reason } => {
                self.on_answer(ctx, from, TransferId(transfer), Err(reason));
            }
        }
    }

    /// Expires stalled incoming transfers and unanswered outgoing ones.
    fn tick(&mut self, ctx: &mut ExtensionContext<'_>) {
        let now = ctx.now();
        let timeout = self.config.receive_timeout;
        let mut stale: Vec<Key> = self
            .incoming
            .iter()
            .filter(|(_, entry)| entry.last_activity.saturating_add(timeout) <= now)
            .map(|(key, _)| *key)
            .collect();
        stale.sort();
        for key in stale {
            self.reject(ctx, key, RejectReason::Timeout);
        }

        let mut overdue: Vec<(TransferId, NodeKey)> = self
            .outgoing
            .iter()
            .filter(|(_, pending)| pending.deadline <= now)
            .map(|(transfer, pending)| (*transfer, pending.to))
            .collect();
        overdue.sort();
        for (transfer, to) in overdue {
            self.outgoing.remove(&transfer);
            ctx.emit(FileDeliveryFailed {
                to,
                transfer,
                reason: RejectReason::Timeout,
            });
        }
    }

    /// Forgets every transfer in flight (no events: the node is going away).
    fn shutdown(&mut self, _ctx: &mut ExtensionContext<'_>) {
        self.incoming.clear();
        self.outgoing.clear();
    }
}
