//! The audit log through the real server and binary: security events are
//! recorded, the chain verifies (in the database and as an export), any edit
//! makes `palisade audit verify` fail, and sign-in fails closed when the log
//! cannot be written.

use crate::support::*;
use palisade::auditcmd;
use serde_json::json;
use sqlx::{AnyConnection, Connection, Row};

/// What `palisade audit verify --data-dir D` reports, and whether it exits 0.
async fn verify_installation(server: &TestServer) -> Result<String, String> {
    let config = test_config(&server.data_dir, &server.database_url, &[]);
    let verdict = auditcmd::verify_installation(&config, None)
        .await
        .expect("log readable");
    verdict.into_result().map_err(|e| format!("{e:#}"))
}

async fn raw(server: &TestServer) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&server.database_url)
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn security_events_are_recorded_and_the_chain_verifies_until_edited() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("audited").await;
        let (status, _) = server
            .post("/v1/agent/login", json!({"email": tenant.email, "password": "not-the-password-1"}), None)
            .await;
        assert_eq!(status, 401);
        let agent = server.agent(&tenant).await;
        let new = json!({"email": "second@audited.test", "name": "Second", "password": "a long enough passphrase 42", "role": "agent"});
        let (status, created) = agent.post("/v1/admin/agents", new).await;
        assert_eq!(status, 201, "{created}");
        let (status, _) = agent.post("/v1/agent/logout", json!({})).await;
        assert_eq!(status, 204);

        let records = server.running.state.audit.store().audit_records(0, 100).await.expect("read");
        let records: Vec<_> = records.into_iter().filter(|r| r.action.starts_with("agent.")).collect();
        let seen: Vec<(String, String)> = records.iter().map(|r| (r.action.clone(), r.outcome.clone())).collect();
        let expected = [
            ("agent.login", "failure"),
            ("agent.login", "success"),
            ("agent.create", "started"),
            ("agent.create", "success"),
            ("agent.logout", "success"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(a, o)| ((*a).into(), (*o).into())).collect();
        assert_eq!(seen, expected, "{backend:?}");
        assert!(records.iter().all(|r| r.source.starts_with("127.0.0.1:") && !r.request_id.is_empty()));
        let all = format!("{records:?}");
        assert!(!all.contains("not-the-password") && !all.contains("passphrase"), "secrets in the log");

        // Verify the database and an export: what `palisade audit ...` runs
        // (in-process: the shared target directory's binary may belong to
        // another checkout).
        let report = verify_installation(&server).await.expect("intact");
        assert!(report.starts_with("audit log intact"), "{report}");
        let config = test_config(&server.data_dir, &server.database_url, &[]);
        let export_file = server.data_dir.join("audit.jsonl");
        let key_file = server.data_dir.join("audit.pub");
        auditcmd::export(&config, Some(&export_file)).await.expect("export");
        let public = auditcmd::public_key(&config).await.expect("public key");
        std::fs::write(&key_file, public).expect("key file");
        let offline = auditcmd::verify_export(&export_file, &key_file).expect("readable");
        assert!(offline.into_result().is_ok(), "the export verifies offline");

        let mut conn = raw(&server).await;
        let failed_login = records[0].seq;
        sqlx::query("UPDATE audit_log SET outcome = 'success' WHERE seq = $1")
            .bind(failed_login)
            .execute(&mut conn)
            .await
            .expect("tamper");
        let report = verify_installation(&server).await.expect_err("an edited log fails");
        let expected = format!("entry {failed_login}: its content was altered");
        assert!(report.contains(&expected), "{report}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sign_in_is_refused_when_the_audit_log_cannot_be_written() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("closed").await;
        let mut conn = raw(&server).await;
        sqlx::query("ALTER TABLE audit_head RENAME TO audit_head_away")
            .execute(&mut conn)
            .await
            .expect("break the audit log");

        let (status, body) = server
            .post(
                "/v1/agent/login",
                json!({"email": tenant.email, "password": tenant.password}),
                None,
            )
            .await;
        assert_eq!(status, 500, "{body}");
        // The failure is an alert: counted for the metrics (and logged).
        let alerts = &server.running.state.metrics.alert_audit_write_failed;
        assert!(alerts.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        let row = sqlx::query("SELECT COUNT(*) AS n FROM agent_sessions")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(
            row.get::<i64, _>("n"),
            0,
            "{backend:?}: no session without an audit entry"
        );

        sqlx::query("ALTER TABLE audit_head_away RENAME TO audit_head")
            .execute(&mut conn)
            .await
            .expect("repair");
        let _agent = server.agent(&tenant).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn key_files_of_an_older_data_dir_are_imported_into_the_vault_and_removed() {
    on_each_backend(|backend| async move {
        let data_dir = temp_dir("legacy");
        let keys = data_dir.join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        let write_key = |name: &str, byte: u8| {
            let path = keys.join(name);
            std::fs::write(&path, [byte; 32]).expect("key file");
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(&path, mode).expect("chmod");
            path
        };
        let visitor_file = write_key("visitor-token.key", 5);
        let audit_file = write_key("audit-signing.key", 6);
        let url = palisade_store::testing::fresh_url(backend, &data_dir)
            .await
            .expect("db");
        let server = TestServer::start_with(data_dir.clone(), url).await;

        assert!(
            !visitor_file.exists() && !audit_file.exists(),
            "plaintext key files removed"
        );
        let old_tokens = palisade_identity::VisitorTokens::new(&[5; 32]).expect("key");
        let claims = palisade_identity::VisitorClaims {
            tenant_id: palisade_model::TenantId::from_raw("t"),
            widget_id: palisade_model::WidgetId::from_raw("w"),
            visitor_id: palisade_model::VisitorId::from_raw("v"),
            expires_at: i64::MAX,
        };
        let token = old_tokens.issue(&claims);
        assert!(
            server
                .running
                .state
                .visitor_tokens
                .verify(&token, 0)
                .is_ok(),
            "imported key signs"
        );
        let expected = palisade_audit::CheckpointSigner::from_seed(&[6; 32])
            .expect("seed")
            .public_key();
        assert_eq!(
            server.running.state.audit.public_key(),
            expected,
            "imported audit key signs"
        );

        let records = server
            .running
            .state
            .audit
            .store()
            .audit_records(0, 100)
            .await
            .expect("audit");
        let vault_log: Vec<String> = records
            .iter()
            .filter(|r| r.action.starts_with("vault."))
            .map(|r| format!("{} {}", r.action, r.target))
            .collect();
        assert!(
            vault_log
                .iter()
                .any(|l| l.starts_with("vault.write audit.signing-key v1 imported")),
            "{vault_log:?}"
        );
        assert!(
            vault_log
                .iter()
                .any(|l| l.starts_with("vault.write visitor-token.hmac-key")
                    && l.contains("import of key file")),
            "{vault_log:?}"
        );
        assert!(
            vault_log
                .iter()
                .any(|l| l.starts_with("vault.read visitor-token.hmac-key v1")),
            "{vault_log:?}"
        );
        server.stop().await;
    })
    .await;
}
