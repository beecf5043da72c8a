//! The example extensions (FileSync, MiningSignal, Dreamspace) driven by hand: each node is an
//! extension plus the `Outgoing` messages and `Event`s its `ExtensionContext` collected, and the
//! tests carry messages between nodes in whatever order they like.

use std::any::Any;
use std::time::Duration;

use whispurr_core::{
    NodeId, NodeKey, Timestamp,
    engine::{Event, Extension, ExtensionContext, ExtensionMessage, Outgoing},
    wire::MessageType,
};
use whispurr_examples::extensions::{
    DreamChanged, DreamConfig, DreamError, Dreamspace, FileDelivered, FileDeliveryFailed,
    FileReceived, FileRejected, FileSync, FileSyncConfig, FileSyncError, MiningConfig, MiningError,
    MiningSignal, MiningSignalSeen, RejectReason, TransferId,
    mining_signal::{self, solve, verify},
};

const T0: u64 = 1_764_000_000_000;
const MAX_PAYLOAD: usize = 1024;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn key(n: u8) -> NodeKey {
    NodeKey([n; 32])
}

/// One extension with its own identity, peers and collected output.
struct Node<E> {
    ext: E,
    id: NodeId,
    peers: Vec<NodeKey>,
    max_payload: usize,
    outbox: Vec<Outgoing>,
    events: Vec<Event>,
}

impl<E: Extension> Node<E> {
    fn new(n: u8, ext: E) -> Self {
        Node {
            ext,
            id: NodeId::from_parts(key(n), T0 / 1000),
            peers: Vec::new(),
            max_payload: MAX_PAYLOAD,
            outbox: Vec::new(),
            events: Vec::new(),
        }
    }

    fn key(&self) -> NodeKey {
        *self.id.key()
    }

    /// Runs `f` with a context at `now`, as `engine.with_extension` would.
    fn with<R>(
        &mut self,
        now: Timestamp,
        f: impl FnOnce(&mut E, &mut ExtensionContext<'_>) -> R,
    ) -> R {
        let name = self.ext.name();
        let mut ctx = ExtensionContext::new(
            name,
            now,
            self.id,
            &self.peers,
            self.max_payload,
            &mut self.outbox,
            &mut self.events,
        );
        f(&mut self.ext, &mut ctx)
    }

    /// Hands `out`, sent by `from`, to this node's extension.
    fn deliver(&mut self, now: Timestamp, from: NodeKey, out: &Outgoing) {
        self.receive(now, from, out.kind, out.target, &out.payload);
    }

    fn receive(
        &mut self,
        now: Timestamp,
        from: NodeKey,
        kind: MessageType,
        target: Option<NodeKey>,
        payload: &[u8],
    ) {
        let msg = ExtensionMessage {
            kind,
            from,
            target,
            payload,
        };
        self.with(now, |ext, ctx| ext.handle_message(ctx, msg));
    }

    fn tick(&mut self, now: Timestamp) {
        self.with(now, |ext, ctx| ext.tick(ctx));
    }

    fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// Removes and returns the events of type `T` (others stay).
    fn take<T: Any>(&mut self) -> Vec<T> {
        let name = self.ext.name();
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for event in self.events.drain(..) {
            match event {
                Event::Extension { extension, event } if extension == name => {
                    match event.downcast::<T>() {
                        Ok(t) => taken.push(*t),
                        Err(event) => kept.push(Event::Extension { extension, event }),
                    }
                }
                other => kept.push(other),
            }
        }
        self.events = kept;
        taken
    }

    fn event_count(&self) -> usize {
        self.events.len()
    }
}

/// Delivers everything `from` has sent to `to`, in order, and returns how many messages moved.
fn pump<A: Extension, B: Extension>(now: Timestamp, from: &mut Node<A>, to: &mut Node<B>) -> usize {
    let out = from.take_outbox();
    for o in &out {
        to.deliver(now, from.key(), o);
    }
    out.len()
}

/// A deterministic byte generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// FileSync
// ---------------------------------------------------------------------------------------------

fn small_chunks() -> FileSyncConfig {
    FileSyncConfig {
        chunk_size: 100,
        ..FileSyncConfig::default()
    }
}

fn file_pair(sender: FileSyncConfig, receiver: FileSyncConfig) -> (Node<FileSync>, Node<FileSync>) {
    (
        Node::new(1, FileSync::new(sender)),
        Node::new(2, FileSync::new(receiver)),
    )
}

fn sample_file(len: usize) -> Vec<u8> {
    Rng(0x5eed ^ len as u64).bytes(len)
}

#[test]
fn multi_chunk_file_arrives_intact_out_of_order_with_duplicates() {
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    let data = sample_file(1234);
    let transfer = a
        .with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "notes.txt", data.clone())
        })
        .unwrap();
    let out = a.take_outbox();
    assert_eq!(out.len(), 1 + 13, "a manifest and ceil(1234 / 100) chunks");
    assert!(
        out.iter()
            .all(|o| o.kind == MessageType::FileSync && o.target == Some(key(2)))
    );
    assert!(out.iter().all(|o| o.payload.len() <= MAX_PAYLOAD));

    // Chunks in reverse order, one duplicated, with the manifest in the middle.
    let (manifest, chunks) = out.split_first().unwrap();
    let mut order: Vec<&Outgoing> = chunks.iter().rev().collect();
    order.insert(5, manifest);
    order.insert(9, &chunks[3]);
    for o in order {
        b.deliver(at(10), a.key(), o);
    }
    assert_eq!(
        b.take::<FileReceived>(),
        vec![FileReceived {
            from: key(1),
            transfer,
            name: "notes.txt".into(),
            data: data.clone(),
        }]
    );
    assert_eq!(b.ext.stats().duplicates, 1);
    assert_eq!(b.ext.incoming_len(), 0);

    // Late duplicates after completion do not start a new transfer.
    b.deliver(at(11), a.key(), &chunks[0]);
    b.deliver(at(11), a.key(), manifest);
    assert_eq!(b.ext.incoming_len(), 0);
    assert_eq!(b.ext.stats().duplicates, 3);
    assert_eq!(b.event_count(), 0);

    // The receiver's Done reaches the sender.
    assert_eq!(a.ext.outgoing_len(), 1);
    assert_eq!(pump(at(20), &mut b, &mut a), 1);
    assert_eq!(
        a.take::<FileDelivered>(),
        vec![FileDelivered {
            to: key(2),
            transfer
        }]
    );
    assert_eq!(a.ext.outgoing_len(), 0);

    // The receiver sent nothing else.
    assert!(b.take_outbox().is_empty());
}

#[test]
fn chunk_size_follows_max_payload() {
    let (mut a, mut b) = file_pair(FileSyncConfig::default(), FileSyncConfig::default());
    a.max_payload = 200;
    let data = sample_file(1000);
    a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", data.clone()))
        .unwrap();
    let out = a.take_outbox();
    assert!(out.iter().all(|o| o.payload.len() <= 200));
    assert_eq!(out.len(), 1 + 1000usize.div_ceil(200 - 32));
    for o in &out {
        b.deliver(at(1), a.key(), o);
    }
    assert_eq!(b.take::<FileReceived>()[0].data, data);

    a.max_payload = 32;
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", data.clone())),
        Err(FileSyncError::PayloadTooSmall(32))
    );
}

#[test]
fn empty_file_is_delivered() {
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    let transfer = a
        .with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "empty", Vec::new())
        })
        .unwrap();
    assert_eq!(pump(at(1), &mut a, &mut b), 1);
    let got = b.take::<FileReceived>();
    assert_eq!(got.len(), 1);
    assert!(got[0].data.is_empty());
    pump(at(2), &mut b, &mut a);
    assert_eq!(
        a.take::<FileDelivered>(),
        vec![FileDelivered {
            to: key(2),
            transfer
        }]
    );
}

/// Replaces the data of one chunk in place (same length), so only the hash can catch it.
fn corrupt_chunk(payload: &mut [u8]) {
    let last = payload.len() - 1;
    payload[last] ^= 0xff;
}

#[test]
fn hash_mismatch_is_rejected_and_reported_to_the_sender() {
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    let transfer = a
        .with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "x.bin", sample_file(450))
        })
        .unwrap();
    let mut out = a.take_outbox();
    corrupt_chunk(&mut out[2].payload);
    for o in &out {
        b.deliver(at(1), a.key(), o);
    }
    assert!(b.take::<FileReceived>().is_empty());
    assert_eq!(
        b.take::<FileRejected>(),
        vec![FileRejected {
            from: key(1),
            transfer,
            reason: RejectReason::HashMismatch,
        }]
    );
    assert_eq!(b.ext.incoming_len(), 0);
    pump(at(2), &mut b, &mut a);
    assert_eq!(
        a.take::<FileDeliveryFailed>(),
        vec![FileDeliveryFailed {
            to: key(2),
            transfer,
            reason: RejectReason::HashMismatch,
        }]
    );
    assert!(a.take::<FileDelivered>().is_empty());
}

/// Offers a file from a lenient sender to a strict receiver and returns the receiver's verdict.
fn strict_receiver_verdict(
    receiver: FileSyncConfig,
    len: usize,
) -> (Node<FileSync>, Vec<FileRejected>) {
    let sender = FileSyncConfig {
        chunk_size: 100,
        max_name_len: 10_000,
        ..FileSyncConfig::default()
    };
    let (mut a, mut b) = file_pair(sender, receiver);
    a.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "big", sample_file(len))
    })
    .unwrap();
    pump(at(1), &mut a, &mut b);
    assert!(b.take::<FileReceived>().is_empty());
    let rejected = b.take::<FileRejected>();
    (b, rejected)
}

#[test]
fn cap_max_file_size_rejects_manifest() {
    let receiver = FileSyncConfig {
        max_file_size: 1000,
        ..small_chunks()
    };
    let (b, rejected) = strict_receiver_verdict(receiver, 1001);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reason, RejectReason::TooLarge);
    assert_eq!(b.ext.incoming_len(), 0);
    // The chunks that followed the rejected manifest were ignored, not buffered.
    assert_eq!(b.ext.stats().duplicates, 11);
}

#[test]
fn cap_max_file_size_while_chunks_precede_manifest() {
    let sender = small_chunks();
    let receiver = FileSyncConfig {
        max_file_size: 250,
        ..small_chunks()
    };
    let (mut a, mut b) = file_pair(sender, receiver);
    a.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "f", sample_file(400))
    })
    .unwrap();
    let out = a.take_outbox();
    // Chunks only: the third one would exceed 250 buffered bytes.
    for o in &out[1..] {
        b.deliver(at(1), a.key(), o);
    }
    let rejected = b.take::<FileRejected>();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reason, RejectReason::TooLarge);
    assert_eq!(b.ext.incoming_len(), 0);
}

#[test]
fn cap_max_file_size_on_the_sender() {
    let (mut a, _) = file_pair(
        FileSyncConfig {
            max_file_size: 10,
            ..small_chunks()
        },
        small_chunks(),
    );
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![0; 11])),
        Err(FileSyncError::TooLarge { size: 11, max: 10 })
    );
    assert!(a.take_outbox().is_empty());
}

#[test]
fn cap_max_chunks_rejects_manifest_and_early_chunks() {
    let receiver = FileSyncConfig {
        max_chunks: 4,
        ..small_chunks()
    };
    let (b, rejected) = strict_receiver_verdict(receiver.clone(), 401);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reason, RejectReason::TooManyChunks);
    assert_eq!(b.ext.incoming_len(), 0);

    // A chunk index beyond the cap, before any manifest.
    let (mut a, mut b) = file_pair(small_chunks(), receiver);
    a.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "f", sample_file(600))
    })
    .unwrap();
    let out = a.take_outbox();
    b.deliver(at(1), a.key(), &out[6]); // chunk index 5
    assert_eq!(
        b.take::<FileRejected>()[0].reason,
        RejectReason::TooManyChunks
    );
}

#[test]
fn cap_max_chunks_on_the_sender() {
    let (mut a, _) = file_pair(
        FileSyncConfig {
            max_chunks: 3,
            ..small_chunks()
        },
        small_chunks(),
    );
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![0; 301])),
        Err(FileSyncError::TooManyChunks { chunks: 4, max: 3 })
    );
    assert!(a.take_outbox().is_empty());
}

#[test]
fn cap_max_incoming_transfers() {
    let receiver = FileSyncConfig {
        max_incoming: 2,
        ..small_chunks()
    };
    let (mut a, mut b) = file_pair(small_chunks(), receiver);
    let mut manifests = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            a.with(at(0), |ext, ctx| {
                ext.offer(ctx, key(2), "f", sample_file(300 + i))
            })
            .unwrap(),
        );
        manifests.push(a.take_outbox().remove(0));
    }
    for m in &manifests {
        b.deliver(at(1), a.key(), m);
    }
    assert_eq!(b.ext.incoming_len(), 2);
    assert_eq!(
        b.take::<FileRejected>(),
        vec![FileRejected {
            from: key(1),
            transfer: ids[2],
            reason: RejectReason::TooManyTransfers,
        }]
    );

    // Another sender's early chunks find no slot either: they are dropped, not buffered.
    let mut c = Node::new(3, FileSync::new(small_chunks()));
    c.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "g", sample_file(300))
    })
    .unwrap();
    let out = c.take_outbox();
    b.deliver(at(1), c.key(), &out[1]);
    assert_eq!(b.ext.stats().dropped, 1);
    assert_eq!(b.ext.incoming_len(), 2);
    assert_eq!(b.event_count(), 0);
}

#[test]
fn cap_max_outgoing_transfers() {
    let (mut a, mut b) = file_pair(
        FileSyncConfig {
            max_outgoing: 2,
            ..small_chunks()
        },
        small_chunks(),
    );
    let first = a
        .with(at(0), |ext, ctx| ext.offer(ctx, key(2), "1", vec![1; 10]))
        .unwrap();
    a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "2", vec![2; 10]))
        .unwrap();
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "3", vec![3; 10])),
        Err(FileSyncError::TooManyOutgoing(2))
    );
    // Once an answer comes back, there is room again.
    let out = a.take_outbox();
    for o in &out[..2] {
        b.deliver(at(1), a.key(), o);
    }
    pump(at(2), &mut b, &mut a);
    assert_eq!(
        a.take::<FileDelivered>(),
        vec![FileDelivered {
            to: key(2),
            transfer: first
        }]
    );
    assert!(
        a.with(at(3), |ext, ctx| ext.offer(ctx, key(2), "3", vec![3; 10]))
            .is_ok()
    );
}

#[test]
fn cap_name_length_and_inconsistent_manifests() {
    // The receiver refuses names longer than its limit.
    let receiver = FileSyncConfig {
        max_name_len: 2,
        ..small_chunks()
    };
    let (_, rejected) = strict_receiver_verdict(receiver, 10);
    assert_eq!(rejected[0].reason, RejectReason::InconsistentManifest);

    // The sender refuses empty and overlong names.
    let mut a = Node::new(1, FileSync::new(small_chunks()));
    let long = "n".repeat(256);
    for name in ["", long.as_str()] {
        assert_eq!(
            a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), name, vec![1])),
            Err(FileSyncError::InvalidName { max: 255 })
        );
    }

    // Two different manifests for one transfer.
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    a.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "f", sample_file(300))
    })
    .unwrap();
    let first = a.take_outbox();
    let mut other = file_pair(small_chunks(), small_chunks()).0;
    other
        .with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "g", sample_file(200))
        })
        .unwrap();
    let second = other.take_outbox(); // same transfer ID 1, different content
    b.deliver(at(1), a.key(), &first[0]);
    b.deliver(at(1), a.key(), &first[0]);
    assert_eq!(b.ext.stats().duplicates, 1);
    b.deliver(at(1), a.key(), &second[0]);
    assert_eq!(
        b.take::<FileRejected>()[0].reason,
        RejectReason::InconsistentManifest
    );

    // A buffered chunk whose length contradicts the manifest that follows.
    let mut b = Node::new(2, FileSync::new(small_chunks()));
    b.deliver(at(1), a.key(), &second[2]); // chunk 1 of a 200-byte file: 100 bytes
    let mut c = Node::new(1, FileSync::new(small_chunks()));
    c.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "h", sample_file(150))
    })
    .unwrap();
    let third = c.take_outbox(); // chunk 1 of a 150-byte file must be 50 bytes
    b.deliver(at(1), a.key(), &third[0]);
    assert_eq!(
        b.take::<FileRejected>()[0].reason,
        RejectReason::InconsistentManifest
    );
}

#[test]
fn stalled_transfer_times_out_on_both_sides() {
    let cfg = FileSyncConfig {
        receive_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(20),
        ..small_chunks()
    };
    let (mut a, mut b) = file_pair(cfg.clone(), cfg);
    let transfer = a
        .with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "f", sample_file(500))
        })
        .unwrap();
    let out = a.take_outbox();
    // The last chunk is lost.
    for o in &out[..out.len() - 1] {
        b.deliver(at(1_000), a.key(), o);
    }
    assert_eq!(b.ext.incoming_len(), 1);
    b.tick(at(5_999));
    assert_eq!(b.ext.incoming_len(), 1);
    assert_eq!(b.event_count(), 0);
    b.tick(at(6_000));
    assert_eq!(b.ext.incoming_len(), 0);
    assert_eq!(
        b.take::<FileRejected>(),
        vec![FileRejected {
            from: key(1),
            transfer,
            reason: RejectReason::Timeout,
        }]
    );
    // The sender hears about it from the receiver...
    pump(at(6_001), &mut b, &mut a);
    assert_eq!(
        a.take::<FileDeliveryFailed>()[0].reason,
        RejectReason::Timeout
    );
    assert_eq!(a.ext.outgoing_len(), 0);

    // ...or, if that answer is lost too, from its own delivery timeout.
    let transfer = a
        .with(at(30_000), |ext, ctx| {
            ext.offer(ctx, key(2), "f", vec![7; 10])
        })
        .unwrap();
    a.take_outbox();
    a.tick(at(49_999));
    assert_eq!(a.ext.outgoing_len(), 1);
    a.tick(at(50_000));
    assert_eq!(
        a.take::<FileDeliveryFailed>(),
        vec![FileDeliveryFailed {
            to: key(2),
            transfer,
            reason: RejectReason::Timeout,
        }]
    );
    assert_eq!(a.ext.outgoing_len(), 0);
}

#[test]
fn progress_keeps_a_transfer_alive() {
    let cfg = FileSyncConfig {
        receive_timeout: Duration::from_secs(5),
        ..small_chunks()
    };
    let (mut a, mut b) = file_pair(cfg.clone(), cfg);
    a.with(at(0), |ext, ctx| {
        ext.offer(ctx, key(2), "f", sample_file(500))
    })
    .unwrap();
    let out = a.take_outbox();
    for (i, o) in out.iter().enumerate() {
        let now = at(4_000 * i as u64);
        b.tick(now);
        b.deliver(now, a.key(), o);
    }
    assert!(b.take::<FileRejected>().is_empty());
    assert_eq!(b.take::<FileReceived>().len(), 1);
}

#[test]
fn answers_from_the_wrong_peer_or_for_unknown_transfers_are_ignored() {
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![1; 10]))
        .unwrap();
    for o in a.take_outbox() {
        b.deliver(at(1), a.key(), &o);
    }
    let done = b.take_outbox();
    // A third node replays the Done: the transfer was offered to node 2, not node 3.
    a.deliver(at(2), key(3), &done[0]);
    assert_eq!(a.ext.stats().unknown, 1);
    assert_eq!(a.ext.outgoing_len(), 1);
    a.deliver(at(2), key(2), &done[0]);
    a.deliver(at(2), key(2), &done[0]);
    assert_eq!(a.take::<FileDelivered>().len(), 1);
    assert_eq!(a.ext.stats().unknown, 2);
}

#[test]
fn misaddressed_file_sync_messages_are_ignored() {
    let (mut a, mut b) = file_pair(small_chunks(), small_chunks());
    a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![1; 10]))
        .unwrap();
    let out = a.take_outbox();
    b.receive(at(1), a.key(), MessageType::FileSync, None, &out[0].payload);
    b.receive(
        at(1),
        a.key(),
        MessageType::FileSync,
        Some(key(9)),
        &out[0].payload,
    );
    b.receive(
        at(1),
        a.key(),
        MessageType::Dreamspace,
        Some(key(2)),
        &out[0].payload,
    );
    assert_eq!(b.ext.stats().misaddressed, 3);
    assert_eq!(b.ext.incoming_len(), 0);
}

#[test]
fn finished_memory_is_bounded() {
    let receiver = FileSyncConfig {
        remember_finished: 3,
        ..small_chunks()
    };
    let (mut a, mut b) = file_pair(small_chunks(), receiver);
    let mut first = None;
    for i in 0..5u8 {
        a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![i; 10]))
            .unwrap();
        let out = a.take_outbox();
        first.get_or_insert(out[0].clone());
        for o in &out {
            b.deliver(at(1), a.key(), o);
        }
    }
    assert_eq!(b.take::<FileReceived>().len(), 5);
    // The first transfer has been forgotten, so its replayed manifest starts over (and would
    // time out); a remembered one is recognised as a duplicate.
    b.deliver(at(2), a.key(), first.as_ref().unwrap());
    assert_eq!(b.ext.incoming_len(), 1);
}

// ---------------------------------------------------------------------------------------------
// MiningSignal
// ---------------------------------------------------------------------------------------------

fn nonce(job: u64, difficulty: u8) -> u64 {
    solve(job, difficulty, 0, 1 << 24).expect("a nonce exists")
}

/// A nonce that proves `difficulty` but not `difficulty + 1`.
fn exact_nonce(job: u64, difficulty: u8) -> u64 {
    let mut start = 0;
    loop {
        let n = solve(job, difficulty, start, 1 << 24).expect("a nonce exists");
        if !verify(job, difficulty + 1, n) {
            return n;
        }
        start = n + 1;
    }
}

fn mining_config() -> MiningConfig {
    MiningConfig {
        min_difficulty: 4,
        ..MiningConfig::default()
    }
}

#[test]
fn proof_of_work_helpers() {
    assert_eq!(mining_signal::leading_zero_bits(&[0, 0, 0b0001_0000]), 19);
    assert_eq!(mining_signal::leading_zero_bits(&[0x80]), 0);
    assert_eq!(mining_signal::leading_zero_bits(&[0; 4]), 32);
    let n = nonce(42, 10);
    assert!(verify(42, 10, n));
    assert!(mining_signal::leading_zero_bits(&mining_signal::pow_hash(42, n)) >= 10);
    assert_eq!(solve(42, 255, 0, 100), None);
}

#[test]
fn mining_signals_are_accepted_upgraded_and_bad_ones_rejected() {
    let mut a = Node::new(1, MiningSignal::new(mining_config()));
    let mut b = Node::new(2, MiningSignal::new(mining_config()));
    let weak = exact_nonce(7, 5);
    a.with(at(0), |ext, ctx| ext.announce(ctx, 7, 5, weak))
        .unwrap();
    let out = a.take_outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, MessageType::MiningSignal);
    assert_eq!(out[0].target, None);
    assert_eq!(a.ext.best(7).unwrap().from, key(1));
    assert_eq!(a.event_count(), 0, "own announcements raise no event");

    b.deliver(at(1), a.key(), &out[0]);
    assert_eq!(
        b.take::<MiningSignalSeen>(),
        vec![MiningSignalSeen {
            from: key(1),
            job: 7,
            difficulty: 5,
            nonce: weak,
        }]
    );
    // The same signal again, or a weaker one, changes nothing.
    b.deliver(at(2), a.key(), &out[0]);
    let weaker = exact_nonce(7, 4);
    a.with(at(0), |ext, ctx| ext.announce(ctx, 7, 4, weaker))
        .unwrap();
    pump(at(3), &mut a, &mut b);
    assert_eq!(b.event_count(), 0);
    assert_eq!(b.ext.stats().not_better, 2);

    // A stronger signal from another node upgrades the job.
    let mut c = Node::new(3, MiningSignal::new(mining_config()));
    let strong = nonce(7, 9);
    c.with(at(0), |ext, ctx| ext.announce(ctx, 7, 9, strong))
        .unwrap();
    pump(at(4), &mut c, &mut b);
    assert_eq!(b.take::<MiningSignalSeen>()[0].difficulty, 9);
    let best = b.ext.best(7).unwrap();
    assert_eq!(
        (best.difficulty, best.nonce, best.from),
        (9, strong, key(3))
    );
    assert_eq!(b.ext.len(), 1);

    // Claiming more difficulty than the nonce proves is rejected on both ends.
    assert_eq!(
        a.with(at(5), |ext, ctx| ext.announce(ctx, 7, 6, weak)),
        Err(MiningError::InvalidProof(6))
    );
    assert_eq!(
        a.with(at(5), |ext, ctx| ext.announce(ctx, 7, 3, weak)),
        Err(MiningError::TooWeak {
            difficulty: 3,
            min: 4
        })
    );
    assert!(a.take_outbox().is_empty());
    let forged = postcard_signal(7, 200, weak);
    b.receive(at(6), a.key(), MessageType::MiningSignal, None, &forged);
    assert_eq!(b.ext.stats().bad_proof, 1);
    let too_weak = postcard_signal(8, 1, nonce(8, 1));
    b.receive(at(6), a.key(), MessageType::MiningSignal, None, &too_weak);
    assert_eq!(b.ext.stats().too_weak, 1);
    assert_eq!(b.event_count(), 0);
    assert_eq!(b.ext.best(7).unwrap().difficulty, 9);
}

/// A MiningSignal payload built by hand: variant 0, job, difficulty, nonce (postcard varints).
fn postcard_signal(job: u64, difficulty: u8, nonce: u64) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = vec![0];
    varint(job, &mut out);
    out.push(difficulty);
    varint(nonce, &mut out);
    out
}

#[test]
fn hand_built_signal_matches_the_wire_format() {
    let mut a = Node::new(1, MiningSignal::new(mining_config()));
    let n = nonce(300, 4);
    a.with(at(0), |ext, ctx| ext.announce(ctx, 300, 4, n))
        .unwrap();
    assert_eq!(a.take_outbox()[0].payload, postcard_signal(300, 4, n));
}

#[test]
fn mining_table_cap_evicts_the_weakest_only_for_stronger_signals() {
    let cfg = MiningConfig {
        max_jobs: 3,
        ..mining_config()
    };
    let mut b = Node::new(2, MiningSignal::new(cfg));
    for (job, d) in [(1, 6), (2, 4), (3, 5)] {
        let payload = postcard_signal(job, d, nonce(job, d));
        b.receive(at(job), key(1), MessageType::MiningSignal, None, &payload);
    }
    assert_eq!(b.take::<MiningSignalSeen>().len(), 3);
    // Job 4 at difficulty 4 is no stronger than the weakest entry (job 2): dropped.
    let payload = postcard_signal(4, 4, exact_nonce(4, 4));
    b.receive(at(10), key(1), MessageType::MiningSignal, None, &payload);
    assert_eq!(b.ext.stats().table_full, 1);
    assert!(b.ext.best(4).is_none());
    assert_eq!(b.event_count(), 0);
    // Job 5 at difficulty 7 evicts job 2.
    let payload = postcard_signal(5, 7, nonce(5, 7));
    b.receive(at(11), key(1), MessageType::MiningSignal, None, &payload);
    assert_eq!(b.take::<MiningSignalSeen>()[0].job, 5);
    assert_eq!(b.ext.len(), 3);
    assert!(b.ext.best(2).is_none());
    assert_eq!(b.ext.stats().evicted, 1);
    let mut jobs: Vec<u64> = b.ext.signals().map(|r| r.job).collect();
    jobs.sort();
    assert_eq!(jobs, vec![1, 3, 5]);
}

#[test]
fn mining_signals_expire() {
    let cfg = MiningConfig {
        max_age: Duration::from_secs(60),
        ..mining_config()
    };
    let mut b = Node::new(2, MiningSignal::new(cfg));
    let payload = postcard_signal(1, 4, nonce(1, 4));
    b.receive(at(0), key(1), MessageType::MiningSignal, None, &payload);
    let payload = postcard_signal(2, 4, nonce(2, 4));
    b.receive(
        at(30_000),
        key(1),
        MessageType::MiningSignal,
        None,
        &payload,
    );
    b.tick(at(59_999));
    assert_eq!(b.ext.len(), 2);
    b.tick(at(60_000));
    assert_eq!(b.ext.len(), 1);
    assert!(b.ext.best(1).is_none());
    assert_eq!(b.ext.stats().expired, 1);
    // A forgotten job is new again.
    let payload = postcard_signal(1, 4, nonce(1, 4));
    b.take::<MiningSignalSeen>();
    b.receive(
        at(61_000),
        key(1),
        MessageType::MiningSignal,
        None,
        &payload,
    );
    assert_eq!(b.take::<MiningSignalSeen>().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Dreamspace
// ---------------------------------------------------------------------------------------------

fn dream(n: u8) -> Node<Dreamspace> {
    Node::new(n, Dreamspace::default())
}

fn contents(node: &Node<Dreamspace>) -> Vec<(String, Vec<u8>)> {
    node.ext
        .iter()
        .map(|(k, v, _)| (k.to_owned(), v.to_vec()))
        .collect()
}

#[test]
fn dream_update_is_applied_and_announced() {
    let (mut a, mut b) = (dream(1), dream(2));
    let stamp = a
        .with(at(0), |ext, ctx| ext.set(ctx, "mood", b"calm".to_vec()))
        .unwrap();
    assert_eq!((stamp.millis, stamp.origin), (T0, key(1)));
    assert_eq!(a.ext.get("mood"), Some(&b"calm"[..]));
    assert_eq!(a.event_count(), 0);
    let out = a.take_outbox();
    assert_eq!(
        (out[0].kind, out[0].target),
        (MessageType::Dreamspace, None)
    );
    b.deliver(at(1), a.key(), &out[0]);
    assert_eq!(
        b.take::<DreamChanged>(),
        vec![DreamChanged {
            key: "mood".into(),
            value: b"calm".to_vec(),
            origin: key(1),
            millis: T0,
        }]
    );
    assert_eq!(b.ext.stamp("mood"), Some(stamp));
    // Duplicates are stale.
    b.deliver(at(2), a.key(), &out[0]);
    assert_eq!(b.ext.stats().stale, 1);
    assert_eq!(b.event_count(), 0);
}

#[test]
fn dream_converges_whatever_the_delivery_order() {
    // Three writers, overlapping keys, equal timestamps on one key (tie broken by origin).
    let mut writers = [dream(1), dream(2), dream(3)];
    let mut updates: Vec<(NodeKey, Outgoing)> = Vec::new();
    let script: [(usize, u64, &str, &[u8]); 7] = [
        (0, 0, "a", b"1"),
        (1, 0, "a", b"2"),
        (2, 5, "b", b"x"),
        (0, 7, "b", b"y"),
        (1, 9, "c", b"c1"),
        (2, 9, "c", b"c2"),
        (0, 9, "c", b"c0"),
    ];
    for (w, t, k, v) in script {
        writers[w]
            .with(at(t), |ext, ctx| ext.set(ctx, k, v.to_vec()))
            .unwrap();
        let from = writers[w].key();
        updates.extend(writers[w].take_outbox().into_iter().map(|o| (from, o)));
    }

    let mut rng = Rng(0xd7ea);
    let mut results = Vec::new();
    for round in 0..20 {
        let mut order = updates.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        if round % 2 == 1 {
            let dup = order[rng.below(order.len())].clone();
            order.push(dup);
        }
        let mut r = dream(9);
        for (from, o) in &order {
            r.deliver(at(100), *from, o);
        }
        results.push(contents(&r));
    }
    let expected = vec![
        ("a".to_owned(), b"2".to_vec()),
        ("b".to_owned(), b"y".to_vec()),
        ("c".to_owned(), b"c2".to_vec()),
    ];
    assert!(results.iter().all(|r| *r == expected), "{results:?}");

    // The writers converge too once they exchange everything.
    for w in writers.iter_mut() {
        for (from, o) in &updates {
            if *from != w.key() {
                w.deliver(at(100), *from, o);
            }
        }
        assert_eq!(contents(w), expected);
    }
}

#[test]
fn local_write_beats_the_value_it_replaces() {
    let (mut a, mut b) = (dream(1), dream(2));
    // b's clock is ahead: its value is stamped later than a's "now".
    b.with(at(5_000), |ext, ctx| ext.set(ctx, "k", b"old".to_vec()))
        .unwrap();
    pump(at(5_000), &mut b, &mut a);
    let stamp = a
        .with(at(1_000), |ext, ctx| ext.set(ctx, "k", b"new".to_vec()))
        .unwrap();
    assert_eq!(stamp.millis, T0 + 5_001);
    pump(at(1_001), &mut a, &mut b);
    assert_eq!(b.ext.get("k"), Some(&b"new"[..]));
}

#[test]
fn dream_caps() {
    let cfg = DreamConfig {
        max_keys: 2,
        max_key_len: 4,
        max_value_len: 8,
        max_clock_skew: Duration::from_secs(1),
        ..DreamConfig::default()
    };
    let mut a = Node::new(1, Dreamspace::new(cfg.clone()));
    let mut big = dream(3);
    let mut b = Node::new(2, Dreamspace::new(cfg));

    // Local writes are checked.
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.set(ctx, "", vec![])),
        Err(DreamError::InvalidKey { max: 4 })
    );
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.set(ctx, "toolong", vec![])),
        Err(DreamError::InvalidKey { max: 4 })
    );
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.set(ctx, "k", vec![0; 9])),
        Err(DreamError::ValueTooLarge { len: 9, max: 8 })
    );
    a.with(at(0), |ext, ctx| ext.set(ctx, "k1", vec![1]))
        .unwrap();
    a.with(at(0), |ext, ctx| ext.set(ctx, "k2", vec![2]))
        .unwrap();
    assert_eq!(
        a.with(at(0), |ext, ctx| ext.set(ctx, "k3", vec![3])),
        Err(DreamError::Full(2))
    );
    a.with(at(1), |ext, ctx| ext.set(ctx, "k1", vec![4]))
        .unwrap();
    assert_eq!(a.take_outbox().len(), 3);

    // A value too large for one message is refused and nothing changes.
    big.max_payload = 64;
    assert!(matches!(
        big.with(at(0), |ext, ctx| ext.set(ctx, "k", vec![0; 100])),
        Err(DreamError::Send(_))
    ));
    assert!(big.ext.is_empty());
    big.max_payload = MAX_PAYLOAD;

    // Remote updates are checked against the receiver's own limits.
    for (k, v) in [("long-key", vec![1]), ("k", vec![0; 9])] {
        big.with(at(0), |ext, ctx| ext.set(ctx, k, v)).unwrap();
    }
    pump(at(0), &mut big, &mut b);
    assert_eq!(b.ext.stats().oversize, 2);
    for k in ["k1", "k2", "k3"] {
        big.with(at(0), |ext, ctx| ext.set(ctx, k, vec![1]))
            .unwrap();
    }
    pump(at(0), &mut big, &mut b);
    assert_eq!(b.ext.stats().full, 1);
    assert_eq!(b.ext.len(), 2);
    assert!(b.ext.get("k3").is_none());

    // Updates from too far in the future are refused.
    big.with(at(1_001), |ext, ctx| ext.set(ctx, "k1", vec![9]))
        .unwrap();
    pump(at(0), &mut big, &mut b);
    assert_eq!(b.ext.stats().future, 1);
    big.with(at(1_000), |ext, ctx| ext.set(ctx, "k2", vec![9]))
        .unwrap();
    pump(at(0), &mut big, &mut b);
    assert_eq!(b.ext.get("k2"), Some(&[9][..]));
}

#[test]
fn new_peers_get_the_whole_dream() {
    let (mut a, mut late) = (dream(1), dream(2));
    a.with(at(0), |ext, ctx| ext.init(ctx));
    for (k, v) in [("x", b"1"), ("y", b"2")] {
        a.with(at(0), |ext, ctx| ext.set(ctx, k, v.to_vec()))
            .unwrap();
    }
    a.take_outbox(); // nobody heard these
    a.tick(at(1));
    assert!(a.take_outbox().is_empty());
    a.peers.push(late.key());
    a.tick(at(2));
    let out = a.take_outbox();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.target == Some(late.key())));
    for o in &out {
        late.deliver(at(3), a.key(), o);
    }
    assert_eq!(contents(&late), contents(&a));
    // Already known: no second sync.
    a.tick(at(4));
    assert!(a.take_outbox().is_empty());
    // A targeted update for another node is ignored.
    let mut other = dream(3);
    other.deliver(at(3), a.key(), &out[0]);
    assert_eq!(other.ext.stats().misaddressed, 1);
    assert!(other.ext.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

/// Feeds `node` random payloads and mutations of `valid` ones under every type and addressing.
fn hostile<E: Extension>(node: &mut Node<E>, kind: MessageType, valid: &[Vec<u8>], seed: u64) {
    let mut rng = Rng(seed);
    let me = node.key();
    let kinds = [
        kind,
        MessageType::FileSync,
        MessageType::MiningSignal,
        MessageType::Dreamspace,
    ];
    for i in 0..3000u64 {
        let payload = match (i % 4, valid.is_empty()) {
            (0, _) | (_, true) => {
                let len = rng.below(64);
                rng.bytes(len)
            }
            (1, false) => {
                let mut p = valid[rng.below(valid.len())].clone();
                let at = rng.below(p.len());
                p[at] ^= 1 << rng.below(8);
                p
            }
            (2, false) => {
                let p = &valid[rng.below(valid.len())];
                p[..rng.below(p.len() + 1)].to_vec()
            }
            _ => {
                let mut p = valid[rng.below(valid.len())].clone();
                let extra = rng.below(8);
                p.extend(rng.bytes(extra));
                p
            }
        };
        let kind = if i % 10 == 0 {
            kinds[rng.below(4)]
        } else {
            kind
        };
        let target = if i % 7 == 0 { None } else { Some(me) };
        let from = key(100 + (rng.next() % 4) as u8);
        node.receive(at(i * 10), from, kind, target, &payload);
        if i % 100 == 0 {
            node.tick(at(i * 10));
        }
    }
    node.tick(at(u64::MAX / 2));
}

#[test]
fn hostile_payloads_never_panic() {
    // FileSync: random bytes and mutated manifests, chunks and answers.
    let mut a = Node::new(1, FileSync::new(small_chunks()));
    let mut valid = Vec::new();
    for len in [0, 10, 250] {
        a.with(at(0), |ext, ctx| {
            ext.offer(ctx, key(2), "f", sample_file(len))
        })
        .unwrap();
        valid.extend(a.take_outbox().into_iter().map(|o| o.payload));
    }
    let mut b = Node::new(
        2,
        FileSync::new(FileSyncConfig {
            max_incoming: 4,
            max_file_size: 4096,
            ..small_chunks()
        }),
    );
    for o in &valid {
        b.receive(at(0), key(1), MessageType::FileSync, Some(key(2)), o);
    }
    valid.extend(b.take_outbox().into_iter().map(|o| o.payload));
    let mut b = Node::new(
        2,
        FileSync::new(FileSyncConfig {
            max_incoming: 4,
            max_file_size: 4096,
            ..small_chunks()
        }),
    );
    hostile(&mut b, MessageType::FileSync, &valid, 1);
    let stats = b.ext.stats();
    assert!(stats.malformed > 500, "{stats:?}");
    assert!(b.ext.incoming_len() <= 4);
    assert!(b.events.iter().all(|e| matches!(
        e,
        Event::Extension {
            extension: "file_sync",
            ..
        }
    )));

    // MiningSignal.
    let mut m = Node::new(
        1,
        MiningSignal::new(MiningConfig {
            max_jobs: 8,
            min_difficulty: 0,
            ..MiningConfig::default()
        }),
    );
    let valid: Vec<Vec<u8>> = (0..8).map(|j| postcard_signal(j, 3, nonce(j, 3))).collect();
    hostile(&mut m, MessageType::MiningSignal, &valid, 2);
    let stats = m.ext.stats();
    assert!(stats.malformed > 500 && stats.bad_proof > 0, "{stats:?}");
    assert!(m.ext.len() <= 8);
    for r in m.ext.signals() {
        assert!(verify(r.job, r.difficulty, r.nonce));
    }

    // Dreamspace.
    let mut w = dream(5);
    for k in ["a", "bb", "ccc"] {
        w.with(at(0), |ext, ctx| ext.set(ctx, k, k.as_bytes().to_vec()))
            .unwrap();
    }
    let valid: Vec<Vec<u8>> = w.take_outbox().into_iter().map(|o| o.payload).collect();
    let mut d = Node::new(
        1,
        Dreamspace::new(DreamConfig {
            max_keys: 16,
            ..DreamConfig::default()
        }),
    );
    hostile(&mut d, MessageType::Dreamspace, &valid, 3);
    assert!(d.ext.stats().malformed > 500, "{:?}", d.ext.stats());
    assert!(d.ext.len() <= 16);
}

#[test]
fn transfer_ids_are_distinct() {
    let mut a = Node::new(1, FileSync::new(small_chunks()));
    let ids: Vec<TransferId> = (0..3)
        .map(|_| {
            a.with(at(0), |ext, ctx| ext.offer(ctx, key(2), "f", vec![1]))
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![TransferId(1), TransferId(2), TransferId(3)]);
}
