//! The vault on every backend: sealed versions, readers, overlap, expiry,
//! and an audit entry for every access, failing closed.

use palisade_audit::{ActorKind, Auditor, CheckpointPolicy, CheckpointSigner};
use palisade_store::Store;
use palisade_store::testing::{backends, fresh_url, memory_keys};
use palisade_vault::{Access, PLATFORM_SCOPE, Policy, Principal, Vault, VaultError};

fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("palisade-vault-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn vault(backend: palisade_store::Backend) -> (String, Vault, Store) {
    let url = fresh_url(backend, &temp_dir())
        .await
        .expect("fresh database");
    let store = Store::connect(&url, 4, memory_keys()).await.expect("store");
    let signer = CheckpointSigner::from_seed(&[3; 32]).expect("seed");
    let auditor = Auditor::new(store.clone(), signer, CheckpointPolicy::default());
    (url, Vault::new(store.clone(), auditor), store)
}

fn operator(reason: &str) -> Access {
    Access {
        actor_kind: ActorKind::Operator,
        actor_id: "alice".into(),
        principal: Principal::Operator,
        source: "cli".into(),
        reason: reason.into(),
        request_id: "r1".into(),
    }
}

fn system(component: &str) -> Access {
    Access {
        actor_kind: ActorKind::System,
        actor_id: "palisade".into(),
        principal: Principal::System(component.into()),
        source: "internal".into(),
        reason: "start-up".into(),
        request_id: "r2".into(),
    }
}

#[tokio::test]
async fn values_are_sealed_versioned_and_every_access_is_audited_with_its_reason() {
    for backend in backends() {
        let (url, vault, store) = vault(backend).await;
        let v1 = vault
            .write(
                PLATFORM_SCOPE,
                "webhook.secret",
                b"first-secret-value",
                None,
                &operator("initial setup"),
            )
            .await
            .expect("write");
        let v2 = vault
            .write(
                PLATFORM_SCOPE,
                "webhook.secret",
                b"second-secret-value",
                None,
                &operator("quarterly rotation"),
            )
            .await
            .expect("rotate");
        assert_eq!((v1, v2), (1, 2));
        let read = vault
            .read(PLATFORM_SCOPE, "webhook.secret", &operator("debug webhook"))
            .await
            .expect("read");
        assert_eq!(
            (read.version, read.expose()),
            (2, &b"second-secret-value"[..])
        );
        assert!(
            !format!("{read:?}").contains("second"),
            "values never print"
        );
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("raw");
        let rows = sqlx::query("SELECT sealed FROM vault_versions")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        for row in &rows {
            let sealed: String = sqlx::Row::get(row, "sealed");
            assert!(
                !sealed.contains("secret-value") && !sealed.contains("c2Vjb25kLXNlY3JldC12YWx1ZQ"),
                "{backend:?}"
            );
        }

        let history = vault
            .history(PLATFORM_SCOPE, "webhook.secret", &operator("review"))
            .await
            .expect("history");
        assert_eq!(
            history.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert!(history[1].superseded_at.is_some());

        let records = store.audit_records(0, 100).await.expect("audit");
        let log: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {}", r.action, r.outcome, r.target))
            .collect();
        assert!(
            log.iter()
                .any(|l| l.starts_with("vault.write success webhook.secret v1")
                    && l.contains("reason: initial setup")),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("vault.rotate success webhook.secret v2")),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("vault.read success webhook.secret v2")
                    && l.contains("reason: debug webhook")),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with("vault.history success")),
            "{log:?}"
        );
        assert!(
            !format!("{records:?}").contains("secret-value"),
            "no value in the audit log"
        );
    }
}

#[tokio::test]
async fn readers_outside_the_policy_are_refused_and_the_refusal_is_audited() {
    for backend in backends() {
        let (_, vault, store) = vault(backend).await;
        let policy = Policy {
            readers: vec!["system:gateway".into()],
            ..Policy::default()
        };
        vault
            .write(
                PLATFORM_SCOPE,
                "gateway.key",
                b"k",
                Some(policy),
                &operator("setup"),
            )
            .await
            .expect("write");
        assert!(
            vault
                .read(PLATFORM_SCOPE, "gateway.key", &system("gateway"))
                .await
                .is_ok()
        );
        let err = vault
            .read(PLATFORM_SCOPE, "gateway.key", &operator("curious"))
            .await
            .expect_err("denied");
        assert!(matches!(err, VaultError::Denied { .. }), "{err}");
        let err = vault
            .read(PLATFORM_SCOPE, "gateway.key", &system("llm"))
            .await
            .expect_err("denied");
        assert!(err.to_string().contains("system:llm may not read"), "{err}");
        let denied = store
            .audit_records(0, 100)
            .await
            .expect("audit")
            .into_iter()
            .filter(|r| r.outcome == "denied")
            .count();
        assert_eq!(denied, 2, "{backend:?}");
    }
}

#[tokio::test]
async fn a_rotated_version_stays_valid_for_the_overlap_and_expired_versions_are_refused() {
    for backend in backends() {
        let (_, vault, _) = vault(backend).await;
        let overlapping = Policy {
            overlap_secs: 3600,
            readers: vec!["system:tokens".into()],
            ..Policy::default()
        };
        vault
            .write(
                PLATFORM_SCOPE,
                "tokens",
                b"old",
                Some(overlapping),
                &operator("setup"),
            )
            .await
            .expect("v1");
        vault
            .rotate_random(PLATFORM_SCOPE, "tokens", 32, &operator("rotate"))
            .await
            .expect("v2");
        let valid = vault
            .read_valid(PLATFORM_SCOPE, "tokens", &system("tokens"))
            .await
            .expect("read");
        assert_eq!(
            valid.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(valid[1].expose(), b"old");
        assert_eq!(valid[0].expose().len(), 32);

        let no_overlap = Policy {
            readers: vec!["operator".into()],
            ..Policy::default()
        };
        vault
            .write(
                PLATFORM_SCOPE,
                "strict",
                b"a",
                Some(no_overlap),
                &operator("setup"),
            )
            .await
            .expect("v1");
        vault
            .write(PLATFORM_SCOPE, "strict", b"b", None, &operator("rotate"))
            .await
            .expect("v2");
        let valid = vault
            .read_valid(PLATFORM_SCOPE, "strict", &operator("check"))
            .await
            .expect("read");
        assert_eq!(valid.len(), 1);

        let expiring = Policy {
            expire_after_secs: Some(0),
            ..Policy::default()
        };
        vault
            .write(
                PLATFORM_SCOPE,
                "short",
                b"x",
                Some(expiring),
                &operator("setup"),
            )
            .await
            .expect("write");
        let err = vault
            .read(PLATFORM_SCOPE, "short", &operator("use"))
            .await
            .expect_err("expired");
        assert!(
            matches!(err, VaultError::Expired { version: 1, .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn no_value_leaves_the_vault_when_the_read_cannot_be_audited() {
    for backend in backends() {
        let (url, vault, _) = vault(backend).await;
        vault
            .write(PLATFORM_SCOPE, "api.key", b"v", None, &operator("setup"))
            .await
            .expect("write");
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("raw");
        sqlx::query("ALTER TABLE audit_head RENAME TO audit_head_away")
            .execute(&mut conn)
            .await
            .expect("break");
        let err = vault
            .read(PLATFORM_SCOPE, "api.key", &operator("use"))
            .await
            .expect_err("fails closed");
        assert!(matches!(err, VaultError::Audit(_)), "{err}");
        let err = vault
            .write(PLATFORM_SCOPE, "api.key", b"w", None, &operator("rotate"))
            .await
            .expect_err("fails closed");
        assert!(matches!(err, VaultError::Audit(_)), "{err}");
        sqlx::query("ALTER TABLE audit_head_away RENAME TO audit_head")
            .execute(&mut conn)
            .await
            .expect("repair");
        let read = vault
            .read(PLATFORM_SCOPE, "api.key", &operator("use"))
            .await
            .expect("read");
        assert_eq!(
            (read.version, read.expose()),
            (1, &b"v"[..]),
            "the refused write stored nothing"
        );
    }
}

#[tokio::test]
async fn every_access_needs_a_reason_and_names_are_checked() {
    for backend in backends() {
        let (_, vault, _) = vault(backend).await;
        let err = vault
            .write(PLATFORM_SCOPE, "ok.name", b"v", None, &operator("  "))
            .await
            .expect_err("no reason");
        assert!(matches!(err, VaultError::NoReason));
        let err = vault
            .write(PLATFORM_SCOPE, "Bad Name", b"v", None, &operator("x"))
            .await
            .expect_err("bad name");
        assert!(matches!(err, VaultError::BadName(_)));
        let err = vault
            .read(PLATFORM_SCOPE, "absent", &operator("x"))
            .await
            .expect_err("absent");
        assert!(matches!(err, VaultError::NotFound(_)));
    }
}
