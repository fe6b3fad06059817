//! The audit chain on every backend: intact logs verify, and every kind of
//! tampering is reported at the entry where it happened.

use palisade_audit::{
    ActorKind, Auditor, CheckpointPolicy, CheckpointSigner, Event, Outcome, Problem, export,
    parse_export, verify, verify_store,
};
use palisade_store::testing::{backends, fresh_url, memory_keys};
use palisade_store::{Backend, Store};
use sqlx::{AnyConnection, Connection};
use std::time::Duration;

fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("palisade-audit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn signer(seed: u8) -> CheckpointSigner {
    CheckpointSigner::from_seed(&[seed; 32]).expect("32-byte seed")
}

fn event(n: usize) -> Event {
    Event {
        actor_kind: ActorKind::Agent,
        actor_id: format!("agent-{n}"),
        tenant_id: Some("tenant-1".into()),
        action: "agent.login",
        target: format!("agent{n}@example.com"),
        outcome: Outcome::Success,
        source: "127.0.0.1:5000".into(),
        request_id: format!("req-{n}"),
    }
}

async fn log_with(backend: Backend, entries: usize, every: i64) -> (String, Auditor) {
    let url = fresh_url(backend, &temp_dir())
        .await
        .expect("fresh database");
    let store = Store::connect(&url, 4, memory_keys()).await.expect("store");
    let policy = CheckpointPolicy {
        every_entries: every,
        every: Duration::from_secs(3600),
    };
    let auditor = Auditor::new(store, signer(1), policy);
    for n in 0..entries {
        auditor.record(event(n)).await.expect("recorded");
    }
    (url, auditor)
}

async fn tamper(url: &str, sql: &'static str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.expect("raw connection");
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .expect("tampering statement runs");
}

async fn problems(auditor: &Auditor) -> Vec<Problem> {
    verify_store(auditor.store(), &signer(1).public_key())
        .await
        .expect("readable")
        .1
}

#[tokio::test]
async fn an_untouched_log_verifies_and_is_checkpointed_every_n_entries() {
    for backend in backends() {
        let (_, auditor) = log_with(backend, 10, 4).await;
        let (count, found) = verify_store(auditor.store(), &auditor.public_key())
            .await
            .expect("read");
        assert_eq!((count, found), (10, vec![]), "{backend:?}");
        let seqs: Vec<i64> = auditor
            .store()
            .audit_checkpoints()
            .await
            .expect("read")
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs, vec![4, 8], "{backend:?}");
        assert_eq!(auditor.checkpoint().await.expect("checkpoint"), Some(10));
        assert_eq!(
            auditor.checkpoint().await.expect("checkpoint"),
            None,
            "nothing new to sign"
        );
    }
}

#[tokio::test]
async fn an_edited_field_is_reported_at_its_entry() {
    for backend in backends() {
        let (url, auditor) = log_with(backend, 6, 100).await;
        tamper(
            &url,
            "UPDATE audit_log SET outcome = 'failure' WHERE seq = 3",
        )
        .await;
        assert_eq!(
            problems(&auditor).await,
            vec![Problem::Altered { seq: 3 }],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link_and_its_checkpoint() {
    for backend in backends() {
        let (url, auditor) = log_with(backend, 6, 3).await;
        // Whoever rewrites entry 3 and recomputes its hash still cannot fix
        // entry 4's link or the signed checkpoint at 3.
        let store = auditor.store();
        let mut record = store.audit_records(2, 1).await.expect("read").remove(0);
        record.outcome = "failure".into();
        let rehashed = palisade_audit::entry_hash(&record);
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&url).await.expect("raw");
        sqlx::query("UPDATE audit_log SET outcome = 'failure', hash = $1 WHERE seq = 3")
            .bind(&rehashed)
            .execute(&mut conn)
            .await
            .expect("tamper");
        let found = problems(&auditor).await;
        assert!(
            found.contains(&Problem::BrokenLink {
                seq: 4,
                previous: 3
            }),
            "{found:?}"
        );
        assert!(
            found.contains(&Problem::CheckpointMismatch { seq: 3 }),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_entry_is_reported_as_missing() {
    for backend in backends() {
        let (url, auditor) = log_with(backend, 6, 100).await;
        tamper(&url, "DELETE FROM audit_log WHERE seq = 4").await;
        assert_eq!(
            problems(&auditor).await,
            vec![Problem::Missing { first: 4, last: 4 }],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_truncated_tail_is_reported_from_the_head_and_checkpoints() {
    for backend in backends() {
        let (url, auditor) = log_with(backend, 8, 4).await;
        tamper(&url, "DELETE FROM audit_log WHERE seq > 5").await;
        let found = problems(&auditor).await;
        assert_eq!(
            found,
            vec![
                Problem::Truncated {
                    last: 5,
                    reached: 8,
                    witness: "a signed checkpoint"
                },
                Problem::Truncated {
                    last: 5,
                    reached: 8,
                    witness: "the chain's head record"
                },
            ],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_forged_checkpoint_is_reported() {
    for backend in backends() {
        let (url, auditor) = log_with(backend, 4, 2).await;
        tamper(
            &url,
            "UPDATE audit_checkpoints SET at = at + 1 WHERE seq = 2",
        )
        .await;
        assert_eq!(
            problems(&auditor).await,
            vec![Problem::ForgedCheckpoint { seq: 2 }],
            "{backend:?}"
        );
        // A checkpoint signed by another key is forged too.
        let found = verify_store(auditor.store(), &signer(2).public_key())
            .await
            .expect("read")
            .1;
        assert!(
            found.contains(&Problem::ForgedCheckpoint { seq: 4 }),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_appenders_in_two_stores_never_fork_the_chain() {
    for backend in backends() {
        let url = fresh_url(backend, &temp_dir())
            .await
            .expect("fresh database");
        // Two stores on one database, as a server and a CLI process would be.
        let keys = memory_keys();
        let policy = CheckpointPolicy {
            every_entries: 7,
            every: Duration::from_secs(3600),
        };
        let open = || async { Store::connect(&url, 4, keys.clone()).await.expect("store") };
        let first = Auditor::new(open().await, signer(1), policy);
        let second = Auditor::new(open().await, signer(1), policy);
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let auditor = if t % 2 == 0 {
                    first.clone()
                } else {
                    second.clone()
                };
                tokio::spawn(async move {
                    for n in 0..15 {
                        auditor.record(event(t * 100 + n)).await.expect("recorded");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("appender finished");
        }
        let (count, found) = verify_store(first.store(), &first.public_key())
            .await
            .expect("read");
        assert_eq!((count, found), (120, vec![]), "{backend:?}");
    }
}

#[tokio::test]
async fn an_export_verifies_offline_and_edits_reorders_or_cuts_are_found() {
    for backend in backends() {
        let (_, auditor) = log_with(backend, 6, 2).await;
        let mut file = Vec::new();
        let written = export(&auditor, &mut file).await.expect("export");
        assert_eq!(written, 6);
        let text = String::from_utf8(file).expect("utf-8");
        let key = signer(1).public_key();
        let check = |text: &str| {
            let (records, checkpoints, witnesses) = parse_export(text).expect("parses");
            verify(&records, &checkpoints, &key, &witnesses)
        };
        assert_eq!(check(&text), vec![], "{backend:?}");

        let lines: Vec<&str> = text.lines().collect();
        // Entries 3 and 4 swapped (lines: e1 e2 c2 e3 e4 c4 e5 e6 c6 end).
        let mut swapped = lines.clone();
        swapped.swap(3, 4);
        let found = check(&swapped.join("\n"));
        assert!(
            found
                .iter()
                .any(|p| matches!(p, Problem::Reordered { seq: 3, .. })),
            "{found:?}"
        );

        let cut = lines[..lines.len() - 3].join("\n");
        assert!(
            check(&cut).contains(&Problem::NoSignedEnd),
            "a cut file has no end line"
        );

        let edited = text.replacen("\"outcome\":\"success\"", "\"outcome\":\"failure\"", 1);
        assert_eq!(check(&edited), vec![Problem::Altered { seq: 1 }]);
    }
}

#[tokio::test]
async fn recording_fails_closed_when_the_log_cannot_be_written() {
    let (_, auditor) = log_with(Backend::Sqlite, 1, 100).await;
    auditor.store().close().await;
    let err = auditor
        .record(event(9))
        .await
        .expect_err("closed store refuses");
    assert!(err.to_string().contains("was not performed"), "{err}");
}

#[tokio::test]
async fn a_time_based_checkpoint_signs_the_head_only_when_entries_were_added() {
    for backend in backends() {
        let url = fresh_url(backend, &temp_dir())
            .await
            .expect("fresh database");
        let store = Store::connect(&url, 4, memory_keys()).await.expect("store");
        let policy = CheckpointPolicy {
            every_entries: 1000,
            every: Duration::ZERO,
        };
        let auditor = Auditor::new(store, signer(1), policy);
        assert_eq!(
            auditor.checkpoint_if_due().await.expect("runs"),
            None,
            "empty log"
        );
        auditor.record(event(1)).await.expect("recorded");
        auditor.record(event(2)).await.expect("recorded");
        assert_eq!(
            auditor.checkpoint_if_due().await.expect("runs"),
            Some(2),
            "{backend:?}"
        );
        assert_eq!(
            auditor.checkpoint_if_due().await.expect("runs"),
            None,
            "nothing new"
        );
        let (_, found) = verify_store(auditor.store(), &auditor.public_key())
            .await
            .expect("read");
        assert!(found.is_empty(), "{found:?}");
    }
}

#[test]
fn injected_lines_with_impossible_sequence_numbers_are_reported_not_panicking() {
    let key = signer(1).public_key();
    let line = |seq: i64| {
        format!(
            "{{\"type\":\"entry\",\"seq\":{seq},\"at\":0,\"actor_kind\":\"agent\",\"actor_id\":\"a\",\
             \"tenant_id\":null,\"action\":\"x\",\"target\":\"\",\"outcome\":\"success\",\"source\":\"\",\
             \"request_id\":\"\",\"prev_hash\":\"\",\"hash\":\"\"}}"
        )
    };
    let text = [line(i64::MAX), line(i64::MIN), line(0)].join("\n");
    let (records, checkpoints, witnesses) = parse_export(&text).expect("parses");
    let found = verify(&records, &checkpoints, &key, &witnesses);
    assert!(
        found.contains(&Problem::OutOfRange { seq: i64::MIN }),
        "{found:?}"
    );
    assert!(found.contains(&Problem::OutOfRange { seq: 0 }), "{found:?}");
    assert!(found.contains(&Problem::NoSignedEnd), "{found:?}");
}
