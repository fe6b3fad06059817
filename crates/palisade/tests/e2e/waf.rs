//! The application firewall in the running server: attacks in fields and
//! queries are refused, message bodies are not, detect mode only logs, and
//! an operator's rule file is re-read when it changes. Also: no log line
//! holds a session cookie, a visitor token or message text.

use crate::support::*;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn attacks_are_blocked_but_message_bodies_pass() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("wafblock").await;
    let session = json!({"widget_key": tenant.widget_key, "name": "<script>alert(1)</script>"});
    let (status, body) = server.post("/v1/visitor/sessions", session, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "blocked");

    // The Referer is a page of the tenant's own site: its search terms are
    // not scored, and O'Brien is a name.
    let ordinary = server
        .http
        .post(server.url("/v1/visitor/sessions"))
        .header(
            "referer",
            "https://shop.example/search?q=union+select+jeans",
        )
        .json(&json!({"widget_key": tenant.widget_key, "name": "Siobhan O'Brien"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(ordinary.status().as_u16(), 201);

    let (token, conversation) = server.visitor(&tenant).await;
    let path = format!("/v1/visitor/conversations/{conversation}/messages");
    let code = "my query was: SELECT * FROM orders WHERE id = '1' OR 1=1 -- <b>why?</b>";
    let (status, ack) = server
        .post(
            &path,
            json!({"client_msg_id": "m-1", "body": code}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "a message body is text, never blocked: {ack}");

    let attack = format!("{path}?after_seq=1%20UNION%20SELECT%20password%20FROM%20agents--");
    assert_eq!(server.get(&attack, Some(&token)).await.0, 403);
    let scanner = server
        .http
        .get(server.url("/widget/loader.js"))
        .header("user-agent", "sqlmap/1.8")
        .send()
        .await
        .expect("sent");
    assert_eq!(scanner.status().as_u16(), 403);
    server.stop().await;
}

#[tokio::test]
async fn detect_mode_lets_requests_through() {
    let env = [("PALISADE_WAF__MODE", "detect")];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("wafdetect").await;
    let session = json!({"widget_key": tenant.widget_key, "name": "<script>x</script>"});
    let (status, body) = server.post("/v1/visitor/sessions", session, None).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn an_operator_rule_file_is_reloaded_when_it_changes() {
    let dir = temp_dir("waf-rules");
    let file = dir.join("rules.toml");
    let rule = |pattern: &str| {
        format!(
            "threshold = 5\n[[rule]]\nid = 9001\ncategory = \"custom\"\nscore = 5\n\
             targets = [\"json\"]\npattern = '{pattern}'\n"
        )
    };
    std::fs::write(&file, rule("never-matches-anything-0")).expect("write rules");
    let path = file.display().to_string();
    let env = [("PALISADE_WAF__RULES_FILE", path.as_str())];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("wafreload").await;
    let canary = json!({"widget_key": tenant.widget_key, "name": "canary-name"});
    let (status, _) = server
        .post("/v1/visitor/sessions", canary.clone(), None)
        .await;
    assert_eq!(status, 201);

    // Modification times can be coarse: make sure the new one differs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&file, rule("canary-name")).expect("rewrite rules");
    let started = Instant::now();
    let mut blocked = false;
    while started.elapsed() < Duration::from_secs(10) {
        if server
            .post("/v1/visitor/sessions", canary.clone(), None)
            .await
            .0
            == 403
        {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("WAF reload took effect after {:?}", started.elapsed());
    assert!(blocked, "the new rule applies without a restart");

    // A broken file is refused and the rules in force stay.
    std::fs::write(&file, "threshold = \"five\"").expect("break rules");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        server.post("/v1/visitor/sessions", canary, None).await.0,
        403
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log sink that keeps everything written to it.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_cookies_tokens_or_message_text() {
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime runs every server task on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    // With one dispatcher alive, tracing computes a new callsite's interest
    // from the thread that reaches it first, and other tests' threads have
    // no subscriber. A second, silent dispatcher makes every callsite ask
    // each event, so this test's subscriber sees what its server logs.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("logs").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let secret_text = "my card ends 4242 and my secret word is plum-tangerine";
    let path = format!("/v1/visitor/conversations/{conversation}/messages");
    let send = json!({"client_msg_id": "m-1", "body": secret_text});
    assert_eq!(server.post(&path, send, Some(&token)).await.0, 201);
    let agent = server.agent(&tenant).await;
    let (status, _) = agent
        .get(&format!("/v1/agent/conversations/{conversation}/messages"))
        .await;
    assert_eq!(status, 200);
    let reply = json!({"client_msg_id": "a-1", "body": secret_text});
    let agent_path = format!("/v1/agent/conversations/{conversation}/messages");
    assert_eq!(agent.post(&agent_path, reply).await.0, 201);
    // A blocked and a refused request are logged too.
    let _ = server
        .get(
            &format!("{path}?after_seq=1%20UNION%20SELECT%201--"),
            Some(&token),
        )
        .await;
    let cookie_value = agent
        .cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .expect("cookie");
    let csrf = agent.csrf.clone();
    // A vault secret written and read through the operator's commands.
    let vault_value = "vault-value-orchid-9931";
    let config = test_config(&server.data_dir, &server.database_url, &[]);
    let scope = || palisade::vaultcmd::Scope(Some("logs".into()));
    let put = palisade::vaultcmd::VaultCommand::Put {
        scope: scope(),
        name: "crm.key".into(),
        value: zeroize::Zeroizing::new(vault_value.as_bytes().to_vec()),
        policy: None,
    };
    palisade::vaultcmd::run(&config, put, "log test")
        .await
        .expect("vault put");
    let get = palisade::vaultcmd::VaultCommand::Get {
        scope: scope(),
        name: "crm.key".into(),
    };
    palisade::vaultcmd::run(&config, get, "log test")
        .await
        .expect("vault get");
    server.stop().await;

    let logs = String::from_utf8_lossy(&sink.0.lock().expect("logs")).into_owned();
    let access_lines = logs.matches("palisade::access").count();
    println!(
        "captured {} bytes of logs, {access_lines} access lines",
        logs.len()
    );
    assert!(access_lines >= 5, "the scenario was logged");
    assert!(logs.contains("\"tenant\""), "access lines name the tenant");
    assert!(
        logs.contains("\"client_cert\""),
        "and the client certificate field"
    );
    assert!(
        logs.contains("\"rules\":\"[1001"),
        "WAF matches are logged by rule id"
    );
    for (what, needle) in [
        ("session cookie", cookie_value.as_str()),
        ("visitor token", token.as_str()),
        ("CSRF token", csrf.as_str()),
        ("message text", "plum-tangerine"),
        ("owner password", tenant.password.as_str()),
        ("vault secret value", vault_value),
    ] {
        assert!(!logs.contains(needle), "the logs hold the {what}");
    }
}
