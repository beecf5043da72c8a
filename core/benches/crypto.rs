//! Criterion benchmark of the crypto layer, per provider, each beside the raw primitive it is
//! built on, measured in the same run:
//!
//! - `handshake`: a complete XX link handshake, both sides (raw floor: 3 key generations are
//!   done in setup of a real handshake too, so compare with 6 ECDH + 2 keygens below);
//! - `record_256`: seal + open of a 256-byte transport record (raw: one AES-256-GCM seal + open);
//! - `sign` / `verify`: a broadcast signature (raw: ECDSA P-256 over 32 bytes).
//!
//! Run: `cargo bench -p whispurr-core --features ring --bench crypto`.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use whispurr_core::{
    Identity, Timestamp,
    crypto::{
        CryptoProvider, KeyPair, Ring, RustCrypto, VerifyingKey,
        link::{LinkConfig, LinkHandshake, MAX_HANDSHAKE_LEN, Session},
        sign::{sign_broadcast, verify_broadcast},
    },
    wire::{MessageId, Route},
};

fn sessions<P: CryptoProvider>(
    p: P,
    a: &Identity,
    b: &Identity,
    rng: &mut ChaCha20Rng,
) -> (Session<P>, Session<P>) {
    let mut init = LinkHandshake::initiator(p.clone(), a, None, LinkConfig::default(), rng);
    let mut resp = LinkHandshake::responder(p, b, LinkConfig::default(), rng);
    let mut buf = [0u8; MAX_HANDSHAKE_LEN];
    let n = init.write_message(&mut buf).unwrap();
    resp.read_message(&buf[..n]).unwrap();
    let n = resp.write_message(&mut buf).unwrap();
    init.read_message(&buf[..n]).unwrap();
    let n = init.write_message(&mut buf).unwrap();
    resp.read_message(&buf[..n]).unwrap();
    (init.finish().unwrap().0, resp.finish().unwrap().0)
}

fn provider<P: CryptoProvider>(c: &mut Criterion, p: P) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let now = Timestamp::from_secs(1_764_000_000);
    let (a, b) = (
        Identity::generate(&mut rng, now),
        Identity::generate(&mut rng, now),
    );
    let mut g = c.benchmark_group(p.name());
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));

    g.bench_function("handshake", |bench| {
        bench.iter(|| black_box(sessions(p.clone(), &a, &b, &mut rng)))
    });

    let (mut si, mut sr) = sessions(p.clone(), &a, &b, &mut rng);
    let mut buf = [0u8; 256 + 16];
    g.bench_function("record_256", |bench| {
        bench.iter(|| {
            let n = si.seal(&mut buf, 256).unwrap();
            black_box(sr.open(&mut buf[..n]).unwrap())
        })
    });
    let key = p.aead_key(&[7; 32]);
    g.bench_function("raw_aead_256", |bench| {
        let mut n = 0u64;
        bench.iter(|| {
            n += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&n.to_be_bytes());
            let tag = p.seal(&key, &nonce, &[], &mut buf[..256]);
            p.open(&key, &nonce, &[], &mut buf[..256], &tag).unwrap();
        })
    });

    let route = Route {
        id: MessageId([1; 16]),
        timestamp: now.as_millis(),
        ttl_ms: 60_000,
        hops: 1,
        hop_limit: 8,
    };
    let payload = [0x42u8; 256];
    let vk = VerifyingKey::from_node_key(a.node_id().key()).unwrap();
    let sig = sign_broadcast(&p, a.key_pair(), a.node_id(), &route, &payload);
    g.bench_function("sign_broadcast", |bench| {
        bench.iter(|| {
            black_box(sign_broadcast(
                &p,
                a.key_pair(),
                a.node_id(),
                &route,
                &payload,
            ))
        })
    });
    g.bench_function("verify_broadcast", |bench| {
        bench.iter(|| verify_broadcast(&p, &vk, a.node_id(), &route, &payload, &sig).unwrap())
    });
    let digest = [9u8; 32];
    let raw_sig = p.sign(a.key_pair(), &digest);
    g.bench_function("raw_sign", |bench| {
        bench.iter(|| black_box(p.sign(a.key_pair(), &digest)))
    });
    g.bench_function("raw_verify", |bench| {
        bench.iter(|| p.verify(&vk, &digest, &raw_sig).unwrap())
    });
    let peer = *b.node_id().key();
    g.bench_function("raw_ecdh", |bench| {
        bench.iter(|| black_box(p.ecdh(a.key_pair(), &peer).unwrap()))
    });
    g.bench_function("raw_keygen", |bench| {
        bench.iter(|| black_box(KeyPair::generate(&mut rng)))
    });
    g.finish();
}

fn crypto(c: &mut Criterion) {
    provider(c, RustCrypto);
    provider(c, Ring);
}

criterion_group!(benches, crypto);
criterion_main!(benches);
