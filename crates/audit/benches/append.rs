//! Micro-benchmark of one audit append: the entry hashed onto the chain and
//! committed to a SQLite file in a temporary directory (WAL, synchronous
//! writes, as in production), with the default checkpoint policy signing a
//! checkpoint every 100 entries. Run with `cargo bench -p palisade-audit`.

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_audit::{ActorKind, Auditor, CheckpointPolicy, CheckpointSigner, Event, Outcome};
use palisade_store::testing::{fresh_url, memory_keys};
use palisade_store::{Backend, Store};

fn event(n: u64) -> Event {
    Event {
        actor_kind: ActorKind::Agent,
        actor_id: "0193a1f2-0000-7000-8000-00000000a9e1".into(),
        tenant_id: Some("0193a1f2-0000-7000-8000-000000000001".into()),
        action: "agent.login",
        target: "agent@example.com".into(),
        outcome: Outcome::Success,
        source: "203.0.113.7:50412".into(),
        request_id: format!("req-{n}"),
    }
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = std::env::temp_dir().join(format!(
        "palisade-audit-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let auditor = runtime.block_on(async {
        let url = fresh_url(Backend::Sqlite, &dir)
            .await
            .expect("a database url");
        let store = Store::connect(&url, 4, memory_keys())
            .await
            .expect("a store");
        let signer = CheckpointSigner::from_seed(&[7; 32]).expect("a 32-byte seed");
        Auditor::new(store, signer, CheckpointPolicy::default())
    });

    let mut n = 0u64;
    let mut group = c.benchmark_group("audit");
    group.sample_size(20);
    group.bench_function("append_sqlite_file", |b| {
        b.iter(|| {
            n += 1;
            runtime
                .block_on(auditor.record(event(n)))
                .expect("the entry is appended")
        })
    });
    group.finish();
    drop(auditor);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append);
criterion_main!(benches);
