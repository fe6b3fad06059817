//! Webhooks end to end: a receiver on loopback (allow-listed) gets signed
//! deliveries of real chat events, verified with python3's hmac; a failing
//! receiver is retried and every attempt recorded; pending deliveries
//! survive a restart; SSRF targets are refused at subscription, on a
//! redirect and at delivery. No test connects to anything but 127.0.0.1:
//! refused addresses are checked before any connection is made. This file
//! holds the receiver and helpers; the tests are in its two modules.

mod delivery;
mod ssrf;

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver answers next.
#[derive(Clone, Debug)]
pub(super) enum Reply {
    Status(u16),
    Redirect(String),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(super) struct Hit {
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

#[derive(Default)]
pub(super) struct Script {
    replies: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
}

/// An HTTP receiver on 127.0.0.1 that records requests and answers from a
/// script (then 200).
pub(super) struct Receiver {
    pub(super) url: String,
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
    pub(super) async fn start(replies: &[Reply]) -> Self {
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

    pub(super) fn hits(&self) -> Vec<Hit> {
        self.script.hits.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived; fails the test after 20 s.
    pub(super) async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..400 {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {} of {n} requests", self.hits().len());
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

/// Settings for a server whose receiver runs on 127.0.0.1, retrying fast.
pub(super) const LOOPBACK_RECEIVER: &[(&str, &str)] = &[
    ("PALISADE_WEBHOOKS__ALLOW_TARGETS", "[\"127.0.0.1/32\"]"),
    ("PALISADE_WEBHOOKS__RETRY_BASE_MS", "200"),
    ("PALISADE_WEBHOOKS__REQUEST_TIMEOUT_SECS", "5"),
];

pub(super) fn header<'h>(hit: &'h Hit, name: &str) -> &'h str {
    hit.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("delivery has no {name} header"))
}

/// Checks a delivery's signature with python3's hmac and hashlib, an
/// implementation independent of Palisade's.
pub(super) fn python_verifies(secret: &str, hit: &Hit) -> bool {
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

pub(super) fn payload(hit: &Hit) -> Value {
    serde_json::from_slice(&hit.body).expect("delivery body is JSON")
}

pub(super) async fn subscribe(agent: &Agent<'_>, url: &str, events: &[&str]) -> (u16, Value) {
    agent
        .post("/v1/admin/webhooks", json!({"url": url, "events": events}))
        .await
}

/// Polls the deliveries of a subscription until `done` holds for them.
pub(super) async fn deliveries_until(
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

pub(super) async fn database_text(server: &TestServer, sql: &'static str) -> Vec<String> {
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

pub(super) async fn agent_delete(agent: &Agent<'_>, path: &str) -> u16 {
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
