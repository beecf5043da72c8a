//! Criterion benchmark of the engine's hot path (BENCHMARKS.md §3 `forward`): one received
//! broadcast frame with a 256-byte payload is decrypted, de-duplicated (and verified, when
//! signed) and forwarded to 5 peers, whose records are then drained through `poll_transmit`.
//! Beside it, in the same run, the crypto floor: one AES-256-GCM open + five seals of the same
//! size, plus one ECDSA verify when signed.
//!
//! Run: `cargo bench -p whispurr-core --features ring --bench engine`.

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use whispurr_core::{
    Identity, Timestamp,
    conn::Conn,
    crypto::{
        CryptoProvider, Ring, RustCrypto, VerifyingKey, link::LinkConfig, sign::sign_broadcast,
    },
    engine::{Config, Engine, LinkId},
    wire::{Broadcast, Frame, Message, MessageId, Route},
};

const NOW: Timestamp = Timestamp::from_millis(1_764_000_000_000);

struct Peer<P: CryptoProvider> {
    identity: Identity,
    conn: Conn<P>,
    link: LinkId,
}

/// An engine with six established peers (inbound links, real handshakes).
fn setup<P: CryptoProvider>(p: P) -> (Engine<P, ChaCha20Rng>, Vec<Peer<P>>) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let me = Identity::generate(&mut rng, NOW);
    let config = Config {
        max_seen: 4096,
        ..Config::default()
    };
    let mut engine = Engine::new(me, config, p.clone(), ChaCha20Rng::seed_from_u64(2), NOW);
    let mut peers = Vec::new();
    for i in 0..6 {
        let identity = Identity::generate(&mut rng, NOW);
        let link = engine.handle_incoming(NOW).unwrap();
        let conn = Conn::initiator(
            p.clone(),
            &identity,
            None,
            LinkConfig::default(),
            1 << 24,
            70_000,
            NOW,
            &mut rng,
        );
        peers.push(Peer {
            identity,
            conn,
            link,
        });
        // Complete the handshake.
        for _ in 0..4 {
            while let Some(r) = peers[i].conn.pop_record() {
                engine.handle_data(NOW, link, r).unwrap();
            }
            while let Some(mut t) = engine.poll_transmit(NOW) {
                if let Some(peer) = peers.iter_mut().find(|q| q.link == t.link) {
                    let _ = peer.conn.handle_data(NOW, &mut t.record);
                }
            }
        }
        assert!(peers[i].conn.is_established());
    }
    while engine.poll_event().is_some() {}
    (engine, peers)
}

fn forward<P: CryptoProvider>(c: &mut Criterion, p: P, signed: bool) {
    let (mut engine, mut peers) = setup(p.clone());
    let payload = [0x5au8; 256];
    let mut counter = 0u64;
    let sender_link = peers[0].link;
    let name = format!(
        "{}/forward_{}",
        p.name(),
        if signed { "signed" } else { "anonymous" }
    );
    let mut g = c.benchmark_group("engine");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function(&name, |b| {
        b.iter_batched(
            || {
                counter += 1;
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&counter.to_be_bytes());
                let route = Route {
                    id: MessageId(id),
                    timestamp: NOW.as_millis(),
                    ttl_ms: 60_000,
                    hops: 1,
                    hop_limit: 8,
                };
                let sender = &mut peers[0];
                let (origin, signature) = if signed {
                    let origin = *sender.identity.node_id();
                    let sig =
                        sign_broadcast(&p, sender.identity.key_pair(), &origin, &route, &payload);
                    (Some(origin), Some(sig))
                } else {
                    (None, None)
                };
                let msg = Message::Broadcast(Broadcast {
                    route,
                    origin,
                    payload: &payload,
                    signature,
                });
                sender.conn.queue_frame(&Frame::new(msg), 0, true).unwrap();
                sender.conn.pop_record().unwrap()
            },
            |record| {
                engine.handle_data(NOW, sender_link, record).unwrap();
                let mut sent = 0;
                while let Some(t) = engine.poll_transmit(NOW) {
                    sent += t.record.len();
                }
                while engine.poll_event().is_some() {}
                black_box(sent)
            },
            BatchSize::SmallInput,
        )
    });
    // The floor: one open and five seals of a 296-byte frame (+ one verify when signed).
    let key = p.aead_key(&[7; 32]);
    let mut n = 0u64;
    let vk = VerifyingKey::from_node_key(peers[0].identity.node_id().key()).unwrap();
    let digest = [3u8; 32];
    let sig = p.sign(peers[0].identity.key_pair(), &digest);
    let floor = format!(
        "{}/floor_{}",
        p.name(),
        if signed { "signed" } else { "anonymous" }
    );
    g.bench_function(&floor, |b| {
        b.iter(|| {
            let mut frame = [0u8; 296];
            for _ in 0..6 {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = p.seal(&key, &nonce, &[], &mut frame);
                black_box(tag);
            }
            if signed {
                p.verify(&vk, &digest, &sig).unwrap();
            }
        })
    });
    g.finish();
    let s = engine.stats();
    assert!(
        s.messages_forwarded > 0 && s.dropped_queue_full == 0,
        "{s:?}"
    );
}

fn engine(c: &mut Criterion) {
    forward(c, Ring, false);
    forward(c, Ring, true);
    forward(c, RustCrypto, false);
    forward(c, RustCrypto, true);
}

criterion_group!(benches, engine);
criterion_main!(benches);
