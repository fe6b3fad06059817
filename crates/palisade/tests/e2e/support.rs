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
        let data_dir = temp_dir("data");
        let database_url = palisade_store::testing::fresh_url(backend, &data_dir)
            .await
            .expect("a fresh test database (is PALISADE_TEST_POSTGRES_URL reachable?)");
        Self::start_with(data_dir, database_url).await
    }

    /// Starts on an existing data directory and database (a restart).
    pub async fn start_with(data_dir: PathBuf, database_url: String) -> Self {
        let config = test_config(&data_dir, &database_url, &[]);
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
    pub async fn agent(&self, tenant: &Tenant) -> Agent<'_> {
        let resp = self
            .http
            .post(self.url("/v1/agent/login"))
            .json(&json!({"email": tenant.email, "password": tenant.password}))
            .send()
            .await
            .expect("login sent");
        assert_eq!(resp.status().as_u16(), 200);
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let body: Value = resp.json().await.expect("login body");
        let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
        Agent {
            server: self,
            cookie,
            csrf,
        }
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
    }
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
