//! `palisade vault ...` on a running installation (run in-process: the
//! shared target directory's binary may belong to another checkout).

use crate::support::*;
use palisade::vaultcmd::{Scope, VaultCommand, VaultOutput, run};
use palisade_vault::Policy;
use zeroize::Zeroizing;

fn text(out: VaultOutput) -> String {
    match out {
        VaultOutput::Text(text) => text,
        VaultOutput::Value(_) => panic!("expected text"),
    }
}

#[tokio::test]
async fn operators_put_get_rotate_and_list_secrets_but_not_palisades_own_keys() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        server.seed_tenant("vaulted").await;
        let config = test_config(&server.data_dir, &server.database_url, &[]);
        let scope = || Scope(Some("vaulted".into()));
        let put = VaultCommand::Put {
            scope: scope(),
            name: "crm.api-key".into(),
            value: Zeroizing::new(b"crm-secret-1".to_vec()),
            policy: Some(Policy {
                overlap_secs: 3600,
                ..Policy::default()
            }),
        };
        assert_eq!(
            text(run(&config, put, "connect the CRM").await.expect("put")),
            "stored crm.api-key version 1"
        );
        let rotate = VaultCommand::Rotate {
            scope: scope(),
            name: "crm.api-key".into(),
            value: None,
            generate: 24,
        };
        assert!(
            text(
                run(&config, rotate, "scheduled rotation")
                    .await
                    .expect("rotate")
            )
            .contains("version 2")
        );
        let get = VaultCommand::Get {
            scope: scope(),
            name: "crm.api-key".into(),
        };
        match run(&config, get, "configure the integration")
            .await
            .expect("get")
        {
            VaultOutput::Value(value) => assert_eq!((value.version, value.expose().len()), (2, 24)),
            VaultOutput::Text(text) => panic!("expected a value, got {text}"),
        }
        let history = VaultCommand::History {
            scope: scope(),
            name: "crm.api-key".into(),
        };
        let listed = text(run(&config, history, "review").await.expect("history"));
        assert_eq!(listed.lines().count(), 3, "{listed}");
        assert!(!listed.contains("crm-secret"), "history never shows values");

        let list = VaultCommand::List { scope: Scope(None) };
        let platform = text(run(&config, list, "review").await.expect("list"));
        assert!(
            platform.contains("visitor-token.hmac-key") && platform.contains("audit.signing-key"),
            "{platform}"
        );
        let peek = VaultCommand::Get {
            scope: Scope(None),
            name: "visitor-token.hmac-key".into(),
        };
        let err = run(&config, peek, "curious")
            .await
            .expect_err("operators cannot read it");
        assert!(
            format!("{err:#}").contains("operator may not read"),
            "{err:#}"
        );

        let store = server.running.state.audit.store();
        let log = store.audit_records(0, 500).await.expect("audit");
        assert!(log.iter().any(|r| r.action == "vault.read"
            && r.outcome == "denied"
            && r.actor_kind == "operator"));
        assert!(
            log.iter()
                .any(|r| r.target.contains("reason: configure the integration"))
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_secret_near_expiry_raises_an_alert_on_the_metrics() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    server.seed_tenant("expiring").await;
    let config = test_config(&server.data_dir, &server.database_url, &[]);
    let put = VaultCommand::Put {
        scope: Scope(Some("expiring".into())),
        name: "webhook.secret".into(),
        value: Zeroizing::new(b"soon gone".to_vec()),
        policy: Some(Policy {
            expire_after_secs: Some(3600),
            ..Policy::default()
        }),
    };
    run(&config, put, "a short-lived secret")
        .await
        .expect("put");
    let (data_dir, url) = server.stop_keeping_data().await;
    // The watcher checks at start: one secret expires within the week.
    let server = TestServer::start_with(data_dir, url).await;
    let metrics = &server.running.state.metrics;
    let mut seen = 0;
    for _ in 0..50 {
        seen = metrics
            .secrets_expiring
            .load(std::sync::atomic::Ordering::Relaxed);
        if seen > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1);
    server.stop().await;
}

#[tokio::test]
async fn palisades_own_keys_take_no_chosen_value_and_no_new_readers() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let config = test_config(&server.data_dir, &server.database_url, &[]);
    let put = VaultCommand::Put {
        scope: Scope(None),
        name: "visitor-token.hmac-key".into(),
        value: Zeroizing::new(vec![7u8; 32]),
        policy: None,
    };
    let err = run(&config, put, "take over the key")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("Palisade's own key"), "{err}");
    let rotate = VaultCommand::Rotate {
        scope: Scope(None),
        name: "audit.signing-key".into(),
        value: Some(Zeroizing::new(vec![9u8; 32])),
        generate: 32,
    };
    let err = run(&config, rotate, "choose the signing key")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("Palisade's own key"), "{err}");
    server.stop().await;
}
