//! Webhooks end to end: a receiver on loopback (allow-listed) gets signed
//! deliveries of real chat events, verified with python3's hmac; a failing
//! receiver is retried and every attempt recorded; pending deliveries
//! survive a restart; SSRF targets are refused at subscription, on a
//! redirect and at delivery. No test connects to anything but 127.0.0.1:
//! refused addresses are checked before any connection is made.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_store::Backend;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver answers next.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    Redirect(String),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
}

/// An HTTP receiver on 127.0.0.1 that records requests and answers from a
/// script (then 200).
struct Receiver {
    url: String,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    script
        .hits
        .lock()
        .expect("lock")
        .push(Hit { headers, body });
    let reply = script.replies.lock().expect("lock").pop_front();
    match reply.unwrap_or(Reply::Status(200)) {
        Reply::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Reply::Redirect(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
    }
}

impl Receiver {
    async fn start(replies: &[Reply]) -> Self {
        let script = Arc::new(Script::default());
        script
            .replies
            .lock()
            .expect("lock")
            .extend(replies.iter().cloned());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            script,
            task,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.script.hits.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived; fails the test after 20 s.
    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..400 {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {} of {n} requests", self.hits().len());
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// Settings for a server whose receiver runs on 127.0.0.1, retrying fast.
const LOOPBACK_RECEIVER: &[(&str, &str)] = &[
    ("PALISADE_WEBHOOKS__ALLOW_TARGETS", "[\"127.0.0.1/32\"]"),
    ("PALISADE_WEBHOOKS__RETRY_BASE_MS", "200"),
    ("PALISADE_WEBHOOKS__REQUEST_TIMEOUT_SECS", "5"),
];

fn header<'h>(hit: &'h Hit, name: &str) -> &'h str {
    hit.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("delivery has no {name} header"))
}

/// Checks a delivery's signature with python3's hmac and hashlib, an
/// implementation independent of Palisade's.
fn python_verifies(secret: &str, hit: &Hit) -> bool {
    use std::io::Write;
    const SCRIPT: &str = "import hashlib, hmac, sys\n\
        key, ts, sig = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]\n\
        body = sys.stdin.buffer.read()\n\
        want = 'v1=' + hmac.new(key, ts + b'.' + body, hashlib.sha256).hexdigest()\n\
        print('valid' if hmac.compare_digest(want, sig) else 'invalid')\n";
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            SCRIPT,
            secret,
            header(hit, "palisade-timestamp"),
            header(hit, "palisade-signature"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&hit.body)
        .expect("body written");
    let out = child.wait_with_output().expect("python3 finished");
    assert!(out.status.success(), "python3 failed");
    match String::from_utf8_lossy(&out.stdout).trim() {
        "valid" => true,
        "invalid" => false,
        other => panic!("python3 said {other:?}"),
    }
}

fn payload(hit: &Hit) -> Value {
    serde_json::from_slice(&hit.body).expect("delivery body is JSON")
}

async fn subscribe(agent: &Agent<'_>, url: &str, events: &[&str]) -> (u16, Value) {
    agent
        .post("/v1/admin/webhooks", json!({"url": url, "events": events}))
        .await
}

/// Polls the deliveries of a subscription until `done` holds for them.
async fn deliveries_until(
    agent: &Agent<'_>,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let path = format!("/v1/admin/webhooks/{id}/deliveries");
    for _ in 0..400 {
        let (status, body) = agent.get(&path).await;
        assert_eq!(status, 200, "{body}");
        let list = body["deliveries"].as_array().cloned().unwrap_or_default();
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, body) = agent.get(&path).await;
    panic!("deliveries never reached the expected state: {body}");
}

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

async fn database_text(server: &TestServer, sql: &'static str) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url)
        .await
        .expect("database opens");
    let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
    pool.close().await;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).expect("text"))
        .collect()
}

async fn agent_delete(agent: &Agent<'_>, path: &str) -> u16 {
    agent
        .server
        .http
        .delete(agent.server.url(path))
        .header("cookie", &agent.cookie)
        .header("x-csrf-token", &agent.csrf)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
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
