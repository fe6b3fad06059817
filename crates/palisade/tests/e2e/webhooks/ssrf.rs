//! SSRF: refused targets at subscription, on redirects and at delivery.
//! Every refused address is refused before any connection is made; only
//! 127.0.0.1 is ever contacted.

use super::*;
use crate::support::*;
use palisade_store::Backend;
use serde_json::{Value, json};

#[tokio::test]
async fn ssrf_targets_are_refused_at_subscription() {
    // The WAF already blocks some metadata URLs in request bodies; this
    // test is about the webhook service's own check, so the WAF only
    // detects. No allow-list: even the loopback receiver's name is refused.
    let detect = [("PALISADE_WAF__MODE", "detect")];
    let server = TestServer::start_with_env(Backend::Sqlite, &detect).await;
    let tenant = server.seed_tenant("ssrf").await;
    let agent = server.agent(&tenant).await;
    let refused = [
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fc00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[64:ff9b::a00:1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://192.0.2.10/hook",
    ];
    for url in refused {
        let (status, body) = subscribe(&agent, url, &["message.created"]).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "refused_target", "{url}: {body}");
    }
    let (status, body) = subscribe(&agent, "https://169.254.169.254/", &["message.created"]).await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("metadata"), "{message}");
    for (url, code) in [
        ("ftp://hooks.example/x", "invalid_url"),
        ("https://user:pw@hooks.example/x", "invalid_url"),
        ("not a url", "invalid_url"),
    ] {
        let (status, body) = subscribe(&agent, url, &["message.created"]).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{url}"
        );
    }
    let (status, body) = agent
        .post(
            "/v1/admin/webhooks",
            json!({"url": "https://127.0.0.1/", "events": ["nope"]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_events"))
    );
    let (_, listed) = agent.get("/v1/admin/webhooks").await;
    assert_eq!(listed["webhooks"], json!([]));

    // Each refusal is in the audit log as denied.
    let entries = database_text(
        &server,
        "SELECT outcome FROM audit_log WHERE action = 'webhook.create'",
    )
    .await;
    let denied = entries.iter().filter(|o| *o == "denied").count();
    assert_eq!(denied, refused.len() + 1, "{entries:?}");
    server.stop().await;
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    let receiver = Receiver::start(&[
        Reply::Redirect("http://169.254.169.254/latest/meta-data/".into()),
        Reply::Redirect("http://127.0.0.2:9/hook".into()),
        Reply::Redirect("/hook".into()),
    ])
    .await;
    let server = TestServer::start_with_env(Backend::Sqlite, LOOPBACK_RECEIVER).await;
    let tenant = server.seed_tenant("redirect").await;
    let agent = server.agent(&tenant).await;
    let (_, created) = subscribe(&agent, &receiver.url, &["message.created"]).await;
    let id = created["webhook"]["id"].as_str().expect("id").to_owned();
    let (token, conversation) = server.visitor(&tenant).await;
    for n in 0..3 {
        let (status, _) = server
            .post(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                json!({"client_msg_id": format!("redirect-{n}"), "body": "hello"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
    }
    let list = deliveries_until(&agent, &id, |l| {
        l.len() == 3 && l.iter().all(|d| d["status"] != "pending")
    })
    .await;
    // The redirect within the allowed receiver was followed; the two
    // inward ones were refused, for good, after one attempt each.
    let delivered: Vec<&Value> = list.iter().filter(|d| d["status"] == "delivered").collect();
    assert_eq!(delivered.len(), 1, "{list:?}");
    let mut errors: Vec<&str> = list
        .iter()
        .filter(|d| d["status"] == "failed")
        .map(|d| {
            assert_eq!(d["attempts"], 1);
            d["last_error"].as_str().expect("error")
        })
        .collect();
    errors.sort_unstable();
    assert_eq!(errors.len(), 2, "{list:?}");
    assert!(
        errors[0].contains("127.0.0.2") && errors[0].contains("loopback"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("169.254.169.254") && errors[1].contains("metadata"),
        "{errors:?}"
    );
    // Three redirects answered, plus the one followed within the receiver.
    assert_eq!(receiver.hits().len(), 4);
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn the_stored_url_is_checked_again_at_delivery() {
    let receiver = Receiver::start(&[Reply::Status(500)]).await;
    let mut env = LOOPBACK_RECEIVER.to_vec();
    env.push(("PALISADE_WEBHOOKS__RETRY_BASE_MS", "1000"));
    let server = TestServer::start_with_env(Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("recheck").await;
    let agent = server.agent(&tenant).await;
    let (_, created) = subscribe(&agent, &receiver.url, &["message.created"]).await;
    let id = created["webhook"]["id"].as_str().expect("id").to_owned();
    let (token, conversation) = server.visitor(&tenant).await;
    server
        .post(
            &format!("/v1/visitor/conversations/{conversation}/messages"),
            json!({"client_msg_id": "recheck-1", "body": "hello"}),
            Some(&token),
        )
        .await;
    receiver.wait_for(1).await;
    drop(agent);
    let (data_dir, url) = server.stop_keeping_data().await;

    // The operator removes the allow-list: the pending retry is refused.
    let server = TestServer::start_with_env_on(data_dir, url, &[]).await;
    let agent = server.agent(&tenant).await;
    let list = deliveries_until(&agent, &id, |l| {
        l.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    let error = list[0]["last_error"].as_str().expect("error");
    assert!(
        error.contains("loopback") || error.contains("http://"),
        "{error}"
    );
    assert_eq!(receiver.hits().len(), 1);
    receiver.stop();
    server.stop().await;
}
