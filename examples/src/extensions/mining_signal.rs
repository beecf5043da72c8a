//! MiningSignal: proof-of-work backed work signals announced to every node.
//!
//! A signal says "job `job` has a solution of difficulty `difficulty`, here is its `nonce`". It
//! is valid when `SHA-256(POW_DOMAIN ‖ job ‖ nonce)` (integers big-endian) starts with at least
//! `difficulty` zero bits ([`verify`]), so announcing a strong signal costs real work while
//! checking it costs one hash. Nodes announce with [`MiningSignal::announce`] (finding a nonce
//! with [`solve`]); the engine gossips the message to everyone.
//!
//! Each receiver keeps the best (highest-difficulty) valid signal per job in a table of at most
//! [`MiningConfig::max_jobs`] entries and raises [`MiningSignalSeen`] for a new job or a better
//! signal. When the table is full a new job takes the place of the weakest entry, if it is
//! stronger; entries older than [`MiningConfig::max_age`] are forgotten on `tick`. Bogus signals
//! (bad proof, below [`MiningConfig::min_difficulty`], undecodable) are counted and ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use whispurr_core::{
    NodeKey, Timestamp,
    engine::{Extension, ExtensionContext, ExtensionMessage, SendError},
    wire::MessageType,
};

use super::{decode, encode, sha256};

/// Domain separation prefix of the proof-of-work hash.
pub const POW_DOMAIN: &[u8] = b"whispurr/mining-signal/v1";

/// The proof-of-work hash of `(job, nonce)`.
pub fn pow_hash(job: u64, nonce: u64) -> [u8; 32] {
    sha256(&[POW_DOMAIN, &job.to_be_bytes(), &nonce.to_be_bytes()])
}

/// How many leading bits of `bytes` are zero.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for &byte in bytes {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// Whether `nonce` proves `difficulty` for `job`.
pub fn verify(job: u64, difficulty: u8, nonce: u64) -> bool {
    leading_zero_bits(&pow_hash(job, nonce)) >= u32::from(difficulty)
}

/// Searches nonces `start, start + 1, …` (at most `max_tries` of them) for one that proves
/// `difficulty` for `job`. Expect about `2^difficulty` tries.
pub fn solve(job: u64, difficulty: u8, start: u64, max_tries: u64) -> Option<u64> {
    (0..max_tries)
        .map(|i| start.wrapping_add(i))
        .find(|&nonce| verify(job, difficulty, nonce))
}

/// Limits of a [`MiningSignal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningConfig {
    /// Most jobs tracked at once.
    pub max_jobs: usize,
    /// Signals weaker than this are rejected (keeps spam costly).
    pub min_difficulty: u8,
    /// A job's entry is forgotten when its best signal is this old.
    pub max_age: Duration,
}

impl Default for MiningConfig {
    fn default() -> Self {
        MiningConfig {
            max_jobs: 256,
            min_difficulty: 8,
            max_age: Duration::from_secs(600),
        }
    }
}

/// The best signal known for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    /// The job.
    pub job: u64,
    /// Its proven difficulty.
    pub difficulty: u8,
    /// The nonce proving it.
    pub nonce: u64,
    /// Who sent it (this node for its own announcements).
    pub from: NodeKey,
    /// When it was accepted.
    pub seen: Timestamp,
}

/// Event: a signal for a new job, or a better signal for a known job, was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiningSignalSeen {
    /// The node it came from.
    pub from: NodeKey,
    /// The job.
    pub job: u64,
    /// Its proven difficulty.
    pub difficulty: u8,
    /// The nonce proving it.
    pub nonce: u64,
}

/// Why [`MiningSignal::announce`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MiningError {
    /// The nonce does not prove the difficulty.
    #[error("nonce does not prove difficulty {0}")]
    InvalidProof(u8),
    /// The difficulty is below `min_difficulty`, so peers would reject it.
    #[error("difficulty {difficulty} is below the minimum {min}")]
    TooWeak {
        /// The signal's difficulty.
        difficulty: u8,
        /// The configured minimum.
        min: u8,
    },
    /// The engine refused the message.
    #[error("send failed: {0}")]
    Send(#[from] SendError),
}

/// Counters of signals a [`MiningSignal`] ignored or dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MiningStats {
    /// Payloads that did not decode, or of another message type.
    pub malformed: u64,
    /// Signals whose nonce does not prove their difficulty.
    pub bad_proof: u64,
    /// Signals below `min_difficulty`.
    pub too_weak: u64,
    /// Valid signals no better than the one already kept for their job.
    pub not_better: u64,
    /// New jobs dropped because the table was full of stronger ones.
    pub table_full: u64,
    /// Entries evicted to make room for a stronger new job.
    pub evicted: u64,
    /// Entries forgotten after `max_age`.
    pub expired: u64,
}

/// The message MiningSignal sends, postcard-encoded.
#[derive(Serialize, Deserialize)]
enum Wire {
    Signal {
        job: u64,
        difficulty: u8,
        nonce: u64,
    },
}

/// The MiningSignal extension (name `"mining_signal"`, type [`MessageType::MiningSignal`]).
///
/// Its event is [`MiningSignalSeen`].
pub struct MiningSignal {
    config: MiningConfig,
    table: BTreeMap<u64, SignalRecord>,
    stats: MiningStats,
}

impl Default for MiningSignal {
    fn default() -> Self {
        Self::new(MiningConfig::default())
    }
}

impl MiningSignal {
    /// The extension's name.
    pub const NAME: &'static str = "mining_signal";

    /// A MiningSignal with the given limits.
    pub fn new(config: MiningConfig) -> Self {
        MiningSignal {
            config,
            table: BTreeMap::new(),
            stats: MiningStats::default(),
        }
    }

    /// Its limits.
    pub fn config(&self) -> &MiningConfig {
        &self.config
    }

    /// Counters of ignored signals.
    pub fn stats(&self) -> MiningStats {
        self.stats
    }

    /// The best signal kept for `job`.
    pub fn best(&self, job: u64) -> Option<&SignalRecord> {
        self.table.get(&job)
    }

    /// Every kept signal, by job.
    pub fn signals(&self) -> impl Iterator<Item = &SignalRecord> {
        self.table.values()
    }

    /// How many jobs are tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no job is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Announces a signal to every node after checking it, and keeps it locally (without an
    /// event) if it beats what is known for `job`.
    pub fn announce(
        &mut self,
        ctx: &mut ExtensionContext<'_>,
        job: u64,
        difficulty: u8,
        nonce: u64,
    ) -> Result<(), MiningError> {
        if difficulty < self.config.min_difficulty {
            return Err(MiningError::TooWeak {
                difficulty,
                min: self.config.min_difficulty,
            });
        }
        if !verify(job, difficulty, nonce) {
            return Err(MiningError::InvalidProof(difficulty));
        }
        let wire = Wire::Signal {
            job,
            difficulty,
            nonce,
        };
        let payload = encode(&wire).ok_or(SendError::TooLarge(usize::MAX))?;
        ctx.send(MessageType::MiningSignal, None, payload)?;
        let record = SignalRecord {
            job,
            difficulty,
            nonce,
            from: *ctx.local_id().key(),
            seen: ctx.now(),
        };
        self.keep(record);
        Ok(())
    }

    /// Keeps a verified signal if it is new or better; returns whether it was kept.
    fn keep(&mut self, record: SignalRecord) -> bool {
        if let Some(current) = self.table.get_mut(&record.job) {
            if record.difficulty > current.difficulty {
                *current = record;
                return true;
            }
            self.stats.not_better += 1;
            return false;
        }
        if self.table.len() >= self.config.max_jobs {
            // The weakest entry, the oldest among equals.
            let weakest = self
                .table
                .values()
                .min_by_key(|r| (r.difficulty, r.seen))
                .map(|r| (r.job, r.difficulty));
            match weakest {
                Some((job, difficulty)) if difficulty < record.difficulty => {
                    self.table.remove(&job);
                    self.stats.evicted += 1;
                }
                _ => {
                    self.stats.table_full += 1;
                    return false;
                }
            }
        }
        self.table.insert(record.job, record);
        true
    }
}

impl Extension for MiningSignal {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn message_types(&self) -> Vec<MessageType> {
        vec![MessageType::MiningSignal]
    }

    fn handle_message(&mut self, ctx: &mut ExtensionContext<'_>, msg: ExtensionMessage<'_>) {
        let decoded = match msg.kind {
            MessageType::MiningSignal => decode::<Wire>(msg.payload),
            _ => None,
        };
        let Some(Wire::Signal {
            job,
            difficulty,
            nonce,
        }) = decoded
        else {
            self.stats.malformed += 1;
            return;
        };
        if difficulty < self.config.min_difficulty {
            self.stats.too_weak += 1;
            return;
        }
        if !verify(job, difficulty, nonce) {
            self.stats.bad_proof += 1;
            return;
        }
        let record = SignalRecord {
            job,
            difficulty,
            nonce,
            from: msg.from,
            seen: ctx.now(),
        };
        if self.keep(record) {
            ctx.emit(MiningSignalSeen {
                from: msg.from,
                job,
                difficulty,
                nonce,
            });
        }
    }

    /// Forgets signals older than `max_age`.
    fn tick(&mut self, ctx: &mut ExtensionContext<'_>) {
        let now = ctx.now();
        let max_age = self.config.max_age;
        let before = self.table.len();
        self.table
            .retain(|_, r| r.seen.saturating_add(max_age) > now);
        self.stats.expired += (before - self.table.len()) as u64;
    }
}
