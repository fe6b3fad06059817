//! Starting a server for a test, and clients that talk to it.

use futures_util::{SinkExt, StreamExt};
use palisade::app::Running;
use palisade::config::Config;
use palisade_identity::PasswordHasher;
use palisade_model::{Email, Role};
use palisade_store::{Backend, NewAgent, NewWidget};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running server with its own data directory and database.
pub struct TestServer {
    pub running: Running,
    pub base: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

/// A tenant seeded for a test: its widget key and an owner's credentials.
pub struct Tenant {
    pub widget_key: String,
    pub email: String,
    pub password: String,
}

/// Per-sender send quotas lifted, for tests that send in bulk on purpose
/// (far over a person's default quota, which those tests are not about).
pub const BULK_SENDS: &[(&str, &str)] = &[
    ("PALISADE_LIMITS__SEND_PER_CREDENTIAL", "1000/s burst 1000"),
    (
        "PALISADE_LIMITS__WS_MESSAGES_PER_CONNECTION",
        "1000/s burst 1000",
    ),
];

/// Trusts exactly the CA certificate at `path`.
pub fn client_tls(path: &std::path::Path) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let ca = std::fs::read(path).expect("CA certificate written");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA is a valid root");
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "palisade-e2e-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The configuration tests start a server with, plus `extra` variables.
pub fn test_config(
    data_dir: &std::path::Path,
    database_url: &str,
    extra: &[(&str, &str)],
) -> Config {
    let mut env = vec![
        (
            "PALISADE_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        (
            "PALISADE_SERVER__PUBLIC_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "PALISADE_SERVER__OPS_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("PALISADE_DATABASE__URL".to_owned(), database_url.to_owned()),
        (
            "PALISADE_DATABASE__MAX_CONNECTIONS".to_owned(),
            "4".to_owned(),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Config::load(None, env).expect("test config is valid")
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with_env(backend, &[]).await
    }

    /// Starts with extra `PALISADE_*` settings.
    pub async fn start_with_env(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let data_dir = temp_dir("data");
        let database_url = palisade_store::testing::fresh_url(backend, &data_dir)
            .await
            .expect("a fresh test database (is PALISADE_TEST_POSTGRES_URL reachable?)");
        Self::boot(data_dir, database_url, extra).await
    }

    /// Starts on an existing data directory and database (a restart).
    pub async fn start_with(data_dir: PathBuf, database_url: String) -> Self {
        Self::boot(data_dir, database_url, &[]).await
    }

    /// Restarts on an existing data directory and database with extra settings.
    pub async fn start_with_env_on(
        data_dir: PathBuf,
        database_url: String,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::boot(data_dir, database_url, extra).await
    }

    async fn boot(data_dir: PathBuf, database_url: String, extra: &[(&str, &str)]) -> Self {
        let config = test_config(&data_dir, &database_url, extra);
        let running = palisade::app::start(&config, None)
            .await
            .expect("server starts");
        let tls = Arc::new(client_tls(&running.ca_cert_path));
        let mut http_tls = (*tls).clone();
        http_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(http_tls)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        let base = format!("https://127.0.0.1:{}", running.public_addr().port());
        Self {
            running,
            base,
            data_dir,
            database_url,
            http,
            tls,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn origin(&self) -> String {
        self.running.state.settings.public_origin.clone()
    }

    /// Creates a tenant with a widget and an owner account.
    pub async fn seed_tenant(&self, slug: &str) -> Tenant {
        let store = self.running.state.chat.store();
        let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
        let widget_key = format!("pk_test_{slug}_{}", uuid::Uuid::new_v4().simple());
        let origins = vec!["https://shop.example".to_owned()];
        store
            .create_widget(
                &tenant,
                NewWidget {
                    name: slug,
                    public_key: &widget_key,
                    allowed_origins: &origins,
                    greeting: "hi",
                },
            )
            .await
            .expect("widget");
        let email = format!("owner@{slug}.example");
        let password = format!("long password of {slug}");
        let hash = PasswordHasher::new()
            .expect("hasher")
            .hash(&password)
            .expect("hash");
        let parsed = Email::parse(&email).expect("email");
        store
            .create_agent(
                &tenant,
                NewAgent {
                    email: &parsed,
                    name: &format!("{slug} agent"),
                    role: Role::Owner,
                    password_hash: &hash,
                },
            )
            .await
            .expect("agent");
        Tenant {
            widget_key,
            email,
            password,
        }
    }

    pub async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A visitor session and a new conversation: (token, conversation id).
    pub async fn visitor(&self, tenant: &Tenant) -> (String, String) {
        let (status, session) = self
            .post(
                "/v1/visitor/sessions",
                json!({"widget_key": tenant.widget_key, "name": "Ann"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{session}");
        let token = session["token"].as_str().expect("token").to_owned();
        let (status, conversation) = self
            .post("/v1/visitor/conversations", json!({}), Some(&token))
            .await;
        assert_eq!(status, 201, "{conversation}");
        (token, conversation["id"].as_str().expect("id").to_owned())
    }

    /// Signs an agent in.
    /// Signs an agent in, all the way: a role that must have a second
    /// factor sets one up on its first sign-in, and later sign-ins spend one
    /// of the recovery codes it got (the app's code of the current step may
    /// have been used already).
    pub async fn agent(&self, tenant: &Tenant) -> Agent<'_> {
        let (status, body, cookie) = self.login_raw(&tenant.email, &tenant.password).await;
        assert_eq!(status, 200, "{body}");
        let mut agent = Agent {
            server: self,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        };
        let key = format!("{}|{}", self.database_url, tenant.email);
        match body["stage"].as_str() {
            Some("full") => {}
            Some("enroll") => {
                let (status, enrolment) = agent.post("/v1/agent/mfa/enroll", json!({})).await;
                assert_eq!(status, 200, "{enrolment}");
                let totp = palisade_identity::Totp::from_base32(
                    enrolment["secret"].as_str().expect("secret"),
                )
                .expect("base32");
                let now = u64::try_from(palisade_model::now_millis() / 1000).expect("time");
                let (status, confirmed, cookie) = agent
                    .post_raw("/v1/agent/mfa/confirm", json!({"code": totp.code_at(now)}))
                    .await;
                assert_eq!(status, 200, "{confirmed}");
                let codes: Vec<String> = confirmed["recovery_codes"]
                    .as_array()
                    .expect("codes")
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect();
                recovery_codes().lock().expect("lock").insert(key, codes);
                agent.cookie = cookie.expect("a new session after enrolment");
                agent.csrf = confirmed["session"]["csrf_token"]
                    .as_str()
                    .expect("csrf")
                    .to_owned();
            }
            Some("mfa") => {
                let code = recovery_codes()
                    .lock()
                    .expect("lock")
                    .get_mut(&key)
                    .and_then(Vec::pop)
                    .expect("a recovery code left");
                let (status, done, cookie) = agent
                    .post_raw("/v1/agent/login/mfa", json!({"recovery_code": code}))
                    .await;
                assert_eq!(status, 200, "{done}");
                agent.cookie = cookie.expect("a new session after the second factor");
                agent.csrf = done["csrf_token"].as_str().expect("csrf").to_owned();
            }
            other => panic!("unknown sign-in stage {other:?}"),
        }
        agent
    }

    /// One sign-in request: (status, body, session cookie if set).
    pub async fn login_raw(&self, email: &str, password: &str) -> (u16, Value, String) {
        let resp = self
            .http
            .post(self.url("/v1/agent/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login sent");
        let status = resp.status().as_u16();
        let cookie = session_cookie(&resp).unwrap_or_default();
        (status, resp.json().await.unwrap_or(Value::Null), cookie)
    }

    pub async fn ws(&self, path: &str, headers: &[(&'static str, String)]) -> WsStream {
        self.try_ws(path, headers)
            .await
            .expect("websocket connects")
    }

    /// Opens a WebSocket, returning the handshake's refusal instead of failing.
    pub async fn try_ws(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<WsStream, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "wss://127.0.0.1:{}{path}",
            self.running.public_addr().port()
        );
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, value.parse().expect("header value"));
        }
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let connected =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
        Ok(connected.await?.0)
    }

    /// A TLS client configuration trusting this server's CA.
    pub fn client_tls(&self) -> rustls::ClientConfig {
        (*self.tls).clone()
    }

    /// A visitor socket after hello; returns the socket and the frames up
    /// to and including `ready`.
    pub async fn visitor_ws(
        &self,
        token: &str,
        conversation: &str,
        last_seq: i64,
    ) -> (WsStream, Vec<Value>) {
        let mut ws = self.ws("/v1/visitor/ws", &[]).await;
        send_json(&mut ws, json!({"type": "hello", "token": token, "conversation_id": conversation, "last_seq": last_seq})).await;
        let mut frames = Vec::new();
        loop {
            let frame = next_json(&mut ws).await;
            let done = frame["type"] == "ready";
            frames.push(frame);
            if done {
                return (ws, frames);
            }
        }
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
        let _ = palisade_store::testing::discard(&self.database_url).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    /// Stops the server but keeps its data directory and database, for a restart.
    pub async fn stop_keeping_data(self) -> (PathBuf, String) {
        self.running.shutdown().await;
        (self.data_dir, self.database_url)
    }
}

fn recovery_codes() -> &'static std::sync::Mutex<std::collections::HashMap<String, Vec<String>>> {
    static CODES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    > = std::sync::OnceLock::new();
    CODES.get_or_init(Default::default)
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.ends_with('='))
        .map(str::to_owned)
}

/// A signed-in agent.
pub struct Agent<'a> {
    pub server: &'a TestServer,
    pub cookie: String,
    pub csrf: String,
}

impl Agent<'_> {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .server
            .http
            .get(self.server.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .server
            .http
            .post(self.server.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .server
            .http
            .put(self.server.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A POST that may start a new session: (status, body, new cookie).
    pub async fn post_raw(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        let resp = self
            .server
            .http
            .post(self.server.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        let cookie = session_cookie(&resp);
        (status, resp.json().await.unwrap_or(Value::Null), cookie)
    }

    /// Any method, with a JSON body when given: (status, body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .server
            .http
            .request(method, self.server.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn ws(&self) -> WsStream {
        let headers = [
            ("cookie", self.cookie.clone()),
            ("origin", self.server.origin()),
        ];
        self.server.ws("/v1/agent/ws", &headers).await
    }
}

pub async fn send_json(ws: &mut WsStream, value: Value) {
    ws.send(Ws::Text(value.to_string().into()))
        .await
        .expect("frame sent");
}

/// The next JSON text frame, skipping pings; fails the test after 10 s.
pub async fn next_json(ws: &mut WsStream) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame readable");
        match frame {
            Ws::Text(text) => return serde_json::from_str(&text).expect("server sends JSON"),
            Ws::Ping(_) | Ws::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next frame of the given type, skipping others (typing, conversation…).
pub async fn next_of_type(ws: &mut WsStream, kind: &str) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Runs `test` on every backend this run covers.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in palisade_store::testing::backends() {
        test(backend).await;
    }
}

/// The close code a socket ends with within 5 s (None: dropped without one).
pub async fn close_code(ws: &mut WsStream) -> Option<u16> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed within 5 s");
        match next {
            Some(Ok(Ws::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// The audit actions and outcomes recorded so far whose action starts with `prefix`.
pub async fn audit_trail(server: &TestServer, prefix: &str) -> Vec<(String, String)> {
    let records = server
        .running
        .state
        .audit
        .store()
        .audit_records(0, 1000)
        .await
        .expect("audit log readable");
    records
        .into_iter()
        .filter(|r| r.action.starts_with(prefix))
        .map(|r| (r.action, r.outcome))
        .collect()
}
