//! Micro-benchmarks of sealing and opening a chat message body (about 200
//! bytes) with a tenant's data key, as the store does for every message
//! written and read. Run with `cargo bench -p palisade-crypto`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_crypto::{DataKey, FieldRef};
use std::hint::black_box;

fn seal_and_open(c: &mut Criterion) {
    let key = DataKey::generate().expect("the OS has randomness");
    let at = FieldRef {
        tenant: "0193a1f2-0000-7000-8000-000000000001",
        table: "messages",
        record: "0193a1f2-7b4e-7c3d-9a10-5f2e8d7c6b5a",
        field: "body",
    };
    let body = "Hello! I ordered the blue jacket last Tuesday (order 48213) and the \
                tracking page still says 'label created'. Could you check whether it \
                has shipped, and when? I need it by Friday. Thanks, Dana";
    assert!((190..=210).contains(&body.len()), "{} bytes", body.len());
    let sealed = key.seal(at, body).expect("seals");

    let mut group = c.benchmark_group("message_body_200B");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("seal", |b| {
        b.iter(|| black_box(key.seal(black_box(at), black_box(body))))
    });
    group.bench_function("open", |b| {
        b.iter(|| black_box(key.open(black_box(at), black_box(&sealed))))
    });
    group.finish();
}

criterion_group!(benches, seal_and_open);
criterion_main!(benches);
