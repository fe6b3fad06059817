//! Tenant data for a run, made through Palisade's public API: visitor
//! sessions and conversations from a widget key, and an agent login. Also
//! the WebSocket dialer every scenario shares.

use crate::target::Target;
use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A visitor with a conversation of its own.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub token: String,
    pub conversation_id: String,
}

/// A signed-in agent: the session cookie (`name=value`).
#[derive(Clone, Debug)]
pub struct AgentSession {
    pub cookie: String,
}

/// Calls Palisade's HTTP API.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    target: Target,
}

impl Api {
    pub fn new(target: &Target, tls: &rustls::ClientConfig) -> anyhow::Result<Self> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            target: target.clone(),
        })
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.target.base);
        let mut request = self.http.post(&url).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// A new visitor session and conversation.
    pub async fn visitor(&self, widget_key: &str, name: &str) -> anyhow::Result<Visitor> {
        let session = self
            .post(
                "/v1/visitor/sessions",
                json!({"widget_key": widget_key, "name": name}),
                None,
            )
            .await?;
        let token = text(&session, "token")?;
        let conversation = self
            .post("/v1/visitor/conversations", json!({}), Some(&token))
            .await?;
        Ok(Visitor {
            token,
            conversation_id: text(&conversation, "id")?,
        })
    }

    /// `count` visitors, made `concurrency` at a time.
    pub async fn visitors(
        &self,
        widget_key: &str,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Visitor>> {
        futures_util::stream::iter(0..count)
            .map(|i| async move { self.visitor(widget_key, &format!("bench {i}")).await })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    pub async fn agent_login(&self, email: &str, password: &str) -> anyhow::Result<AgentSession> {
        let url = format!("{}/v1/agent/login", self.target.base);
        let response = self
            .http
            .post(&url)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !response.status().is_success() {
            bail!("agent login answered {}", response.status());
        }
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("palisade_session="))
            .and_then(|v| v.split(';').next())
            .context("agent login set no session cookie")?
            .to_owned();
        Ok(AgentSession { cookie })
    }
}

fn text(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("response has no {key:?}: {value}"))
}

/// Small client buffers, so thousands of idle sockets stay cheap for the
/// generator too (tungstenite's defaults are 128 KiB per socket).
pub fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * 1024 * 1024)
}

/// Dials a WebSocket over TLS: `path` on the target, with extra headers.
/// Connection `i` of `sources` picks its source address (see [`Target::connect`]).
pub async fn dial(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&'static str, String)],
    i: usize,
    sources: usize,
) -> anyhow::Result<Ws> {
    let tcp = target.connect(i, sources).await.context("TCP connect")?;
    let name = crate::tls::server_name(&target.host)?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let url = format!("wss://{}{path}", target.base.trim_start_matches("https://"));
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse()?);
    }
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_ws_config()))
            .await
            .context("WebSocket handshake")?;
    Ok(ws)
}
