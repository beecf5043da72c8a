//! Criterion benchmark of the wire codec: encode + decode of one frame of each message type with
//! a 256-byte payload. Run: `cargo bench -p whispurr-core --bench codec`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use whispurr_core::wire::{Frame, Limits};

#[path = "../tests/common/samples.rs"]
mod samples;

fn codec(c: &mut Criterion) {
    let payload = [0xa5u8; 256];
    let limits = Limits::default();
    let mut group = c.benchmark_group("codec");
    let mut buf = vec![0u8; 2048];
    for (name, message) in samples::all(&payload) {
        let frame = Frame::new(message);
        group.bench_function(name, |b| {
            b.iter(|| {
                let n = black_box(&frame).encode(&mut buf).unwrap();
                let back = Frame::decode(black_box(&buf[..n]), &limits).unwrap();
                black_box(back.message.kind());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
