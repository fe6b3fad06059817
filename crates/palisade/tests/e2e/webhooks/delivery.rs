//! Deliveries of real chat events: signatures, retries, the attempt
//! limit, a restart, and what the logs may hold.

use super::*;
use crate::support::*;
use axum::body::Bytes;
use palisade_store::Backend;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn chat_events_are_delivered_signed_and_verify_with_pythons_hmac() {
    on_each_backend(|backend| async move {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with_env(backend, LOOPBACK_RECEIVER).await;
        let tenant = server.seed_tenant("hooks").await;
        let agent = server.agent(&tenant).await;
        let all = [
            "message.created",
            "conversation.assigned",
            "conversation.closed",
        ];
        let (status, created) = subscribe(&agent, &receiver.url, &all).await;
        assert_eq!(status, 201, "{created}");
        let secret = created["secret"].as_str().expect("secret shown").to_owned();
        let id = created["webhook"]["id"].as_str().expect("id").to_owned();
        assert!(secret.starts_with("whsec_"));

        // The secret is shown once: the listing has no trace of it.
        let (status, listed) = agent.get("/v1/admin/webhooks").await;
        assert_eq!(status, 200);
        assert_eq!(listed["webhooks"][0]["id"], id.as_str());
        assert!(!listed.to_string().contains(&secret));

        let (token, conversation) = server.visitor(&tenant).await;
        let text = "where is my parcel?";
        let (status, _) = server
            .post(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                json!({"client_msg_id": "hook-1", "body": text}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
        let hits = receiver.wait_for(1).await;
        let base = format!("/v1/agent/conversations/{conversation}");
        let (status, _) = agent.post(&format!("{base}/claim"), json!({})).await;
        assert_eq!(status, 200);
        receiver.wait_for(2).await;
        let (status, _) = agent.post(&format!("{base}/close"), json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(hits.len(), 1);
        let hits = receiver.wait_for(3).await;

        let kinds: Vec<String> = hits
            .iter()
            .map(|h| header(h, "palisade-event-type").to_owned())
            .collect();
        assert_eq!(kinds, all);
        for hit in &hits {
            assert!(
                python_verifies(&secret, hit),
                "signature of {:?}",
                payload(hit)["type"]
            );
            let body = payload(hit);
            assert_eq!(body["id"], header(hit, "palisade-event-id"));
            assert_eq!(body["type"], header(hit, "palisade-event-type"));
            let sent_at: i64 = header(hit, "palisade-timestamp").parse().expect("seconds");
            let now = palisade_model::now_millis() / 1000;
            assert!((now - 60..=now + 1).contains(&sent_at));
        }
        // The signature covers the body and the timestamp: change either
        // and python3's check fails.
        let mut tampered = hits[0].clone();
        tampered.body = Bytes::from(String::from_utf8_lossy(&hits[0].body).replace(text, "pay"));
        assert!(!python_verifies(&secret, &tampered));
        let mut replayed = hits[0].clone();
        replayed
            .headers
            .insert("palisade-timestamp", "1700000000".parse().expect("value"));
        assert!(!python_verifies(&secret, &replayed));
        assert!(!python_verifies("whsec_wrong", &hits[0]));

        let message = payload(&hits[0]);
        assert_eq!(message["data"]["message"]["body"], text);
        assert_eq!(
            message["data"]["message"]["conversation_id"],
            conversation.as_str()
        );
        assert_eq!(
            payload(&hits[1])["data"]["conversation"]["status"],
            "assigned"
        );
        assert_eq!(
            payload(&hits[2])["data"]["conversation"]["status"],
            "closed"
        );

        // Every delivery is recorded as delivered on its first attempt.
        let list = deliveries_until(&agent, &id, |l| {
            l.len() == 3 && l.iter().all(|d| d["status"] == "delivered")
        })
        .await;
        for delivery in &list {
            assert_eq!(delivery["attempts"], 1);
            assert_eq!(delivery["attempt_log"][0]["status_code"], 200);
        }
        // The outbox holds payloads sealed: the message text is not in it.
        let raw = database_text(&server, "SELECT payload FROM webhook_deliveries").await;
        assert!(raw.len() == 3 && raw.iter().all(|p| !p.contains(text)));

        // Removed: no more deliveries, and the id is gone for the API.
        let path = format!("/v1/admin/webhooks/{id}");
        let resp = agent_delete(&agent, &path).await;
        assert_eq!(resp, 204);
        assert_eq!(agent_delete(&agent, &path).await, 404);
        let (status, _) = server
            .post(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                json!({"client_msg_id": "hook-2", "body": "anyone?"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.hits().len(), 3);
        receiver.stop();
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_every_attempt_recorded() {
    on_each_backend(|backend| async move {
        let receiver = Receiver::start(&[Reply::Status(500), Reply::Status(503)]).await;
        let server = TestServer::start_with_env(backend, LOOPBACK_RECEIVER).await;
        let tenant = server.seed_tenant("retry").await;
        let agent = server.agent(&tenant).await;
        let (status, created) = subscribe(&agent, &receiver.url, &["message.created"]).await;
        assert_eq!(status, 201, "{created}");
        let id = created["webhook"]["id"].as_str().expect("id").to_owned();
        let (token, conversation) = server.visitor(&tenant).await;
        let (status, _) = server
            .post(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                json!({"client_msg_id": "retry-1", "body": "hello"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
        let hits = receiver.wait_for(3).await;
        // The same event each time, for the receiver to de-duplicate.
        let ids: Vec<&str> = hits
            .iter()
            .map(|h| header(h, "palisade-event-id"))
            .collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
        let list = deliveries_until(&agent, &id, |l| {
            l.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        let delivery = &list[0];
        assert_eq!(delivery["attempts"], 3);
        assert_eq!(delivery["last_status"], 200);
        let log = delivery["attempt_log"].as_array().expect("log");
        let codes: Vec<&Value> = log.iter().map(|a| &a["status_code"]).collect();
        assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
        assert_eq!(log[0]["error"], "answered 500");
        assert!(log[1]["at"].as_i64() > log[0]["at"].as_i64());
        receiver.stop();
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_attempt_limit_ends_in_failed() {
    let receiver = Receiver::start(&vec![Reply::Status(500); 5]).await;
    let mut env = LOOPBACK_RECEIVER.to_vec();
    env.push(("PALISADE_WEBHOOKS__MAX_ATTEMPTS", "2"));
    let server = TestServer::start_with_env(Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("limit").await;
    let agent = server.agent(&tenant).await;
    let (_, created) = subscribe(&agent, &receiver.url, &["message.created"]).await;
    let id = created["webhook"]["id"].as_str().expect("id").to_owned();
    let (token, conversation) = server.visitor(&tenant).await;
    server
        .post(
            &format!("/v1/visitor/conversations/{conversation}/messages"),
            json!({"client_msg_id": "limit-1", "body": "hello"}),
            Some(&token),
        )
        .await;
    let list = deliveries_until(&agent, &id, |l| {
        l.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(list[0]["attempts"], 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.hits().len(), 2, "no attempt after the limit");
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    on_each_backend(|backend| async move {
        let receiver = Receiver::start(&[Reply::Status(500)]).await;
        let mut env = LOOPBACK_RECEIVER.to_vec();
        env.push(("PALISADE_WEBHOOKS__RETRY_BASE_MS", "1500"));
        let server = TestServer::start_with_env(backend, &env).await;
        let tenant = server.seed_tenant("restart").await;
        let agent = server.agent(&tenant).await;
        let (_, created) = subscribe(&agent, &receiver.url, &["message.created"]).await;
        let (token, conversation) = server.visitor(&tenant).await;
        server
            .post(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                json!({"client_msg_id": "restart-1", "body": "hello"}),
                Some(&token),
            )
            .await;
        receiver.wait_for(1).await;
        drop(agent);
        let (data_dir, url) = server.stop_keeping_data().await;
        assert_eq!(receiver.hits().len(), 1, "the retry waits for its back-off");

        let server = TestServer::start_with_env_on(data_dir, url, &env).await;
        let hits = receiver.wait_for(2).await;
        assert_eq!(
            header(&hits[0], "palisade-event-id"),
            header(&hits[1], "palisade-event-id")
        );
        let agent = server.agent(&tenant).await;
        let id = created["webhook"]["id"].as_str().expect("id");
        let list = deliveries_until(&agent, id, |l| {
            l.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        assert_eq!(list[0]["attempts"], 2);
        receiver.stop();
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logs_never_hold_the_secret_signature_payload_or_url_query() {
    let sink = crate::waf::Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .finish();
    // As in waf.rs: this thread's subscriber, and a silent second dispatcher
    // so callsites reached first on other tests' threads still log here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let receiver = Receiver::start(&[Reply::Status(500)]).await;
    let server = TestServer::start_with_env(Backend::Sqlite, LOOPBACK_RECEIVER).await;
    let tenant = server.seed_tenant("hooklogs").await;
    let agent = server.agent(&tenant).await;
    let query_token = "receivers-own-token-5531";
    let url = format!("{}?token={query_token}", receiver.url);
    let (status, created) = subscribe(&agent, &url, &["message.created"]).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let (token, conversation) = server.visitor(&tenant).await;
    let text = "my locker code is 8812-walnut";
    server
        .post(
            &format!("/v1/visitor/conversations/{conversation}/messages"),
            json!({"client_msg_id": "log-1", "body": text}),
            Some(&token),
        )
        .await;
    let hits = receiver.wait_for(2).await;
    let signature = header(&hits[1], "palisade-signature").to_owned();
    drop(agent);
    receiver.stop();
    server.stop().await;

    let logs = String::from_utf8_lossy(&sink.0.lock().expect("logs")).into_owned();
    assert!(logs.contains("webhook created"), "the scenario was logged");
    assert!(
        logs.contains("webhook attempt recorded"),
        "attempts were logged"
    );
    let hex = signature.trim_start_matches("v1=");
    for (what, needle) in [
        ("webhook secret", secret.as_str()),
        ("signature", hex),
        ("message text", "8812-walnut"),
        ("URL query", query_token),
    ] {
        assert!(!logs.contains(needle), "the logs hold the {what}");
    }
}
