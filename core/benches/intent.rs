//! Criterion benchmark of what one guess at an intent phrase costs: the Argon2id derivation of
//! [`Intent::phrase`] at the default parameters (and at a few others, for choosing), against the
//! plain HKDF-SHA256 an intent key used to be (the reference: what a dictionary attacker paid per
//! guess before). Also the per-link work an attuned node does per announcement entry.
//! Run: `cargo bench -p whispurr-core --bench intent`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hkdf::Hkdf;
use sha2::Sha256;
use whispurr_core::{
    NodeKey,
    derive::{Intent, IntentKdf},
};

fn intent(c: &mut Criterion) {
    let mut group = c.benchmark_group("intent");
    group.sample_size(10);
    for (name, kdf) in [
        ("argon2id 19 MiB t=2 (default)", IntentKdf::RECOMMENDED),
        (
            "argon2id 64 MiB t=3",
            IntentKdf {
                memory_kib: 64 * 1024,
                iterations: 3,
                parallelism: 1,
            },
        ),
        (
            "argon2id 256 KiB t=8 (small hardware)",
            IntentKdf {
                memory_kib: 256,
                iterations: 8,
                parallelism: 1,
            },
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| Intent::phrase(black_box("midnight chess"), &kdf).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("intent-cheap");
    group.bench_function("hkdf of the phrase (the old key)", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            Hkdf::<Sha256>::new(Some(b"whispurr/v1/resonance"), black_box(b"midnight chess"))
                .expand(b"resonance key", &mut out)
                .unwrap();
            out
        })
    });
    let key = Intent::secret("s", [7; 32]).resonance_key();
    let sender = NodeKey([9; 32]);
    group.bench_function("blind one key for a link", |b| {
        b.iter(|| key.announcement(black_box(&[3; 32]), &sender))
    });
    group.finish();
}

criterion_group!(benches, intent);
criterion_main!(benches);
