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

    /// One sign-in request: the answer's body and the session cookie.
    async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<(Value, String)> {
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
        let cookie = session_cookie(&response).context("agent login set no session cookie")?;
        Ok((response.json().await.unwrap_or(Value::Null), cookie))
    }

    /// A POST as a signed-in agent: the answer's body and any new cookie.
    async fn agent_post(
        &self,
        cookie: &str,
        csrf: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(Value, Option<String>)> {
        let url = format!("{}{path}", self.target.base);
        let response = self
            .http
            .post(&url)
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let cookie = session_cookie(&response);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok((body, cookie))
    }

    /// `count` agent sessions for a run. The owner (the demo's, on a fresh
    /// data directory) signs in, sets up its mandatory second factor, and
    /// creates `count` agent accounts, which then sign in with a password:
    /// the agent role needs no second factor unless the tenant says so.
    pub async fn agent_sessions(
        &self,
        owner_email: &str,
        owner_password: &str,
        count: usize,
    ) -> anyhow::Result<Vec<AgentSession>> {
        let (body, mut cookie) = self.sign_in(owner_email, owner_password).await?;
        let mut csrf = text(&body, "csrf_token")?;
        match body["stage"].as_str() {
            Some("full") => {}
            Some("enroll") => {
                let (enrolment, _) = self
                    .agent_post(&cookie, &csrf, "/v1/agent/mfa/enroll", json!({}))
                    .await?;
                let totp = palisade_identity::Totp::from_base32(&text(&enrolment, "secret")?)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let now = u64::try_from(palisade_model::now_millis() / 1000).unwrap_or(0);
                let code = json!({"code": totp.code_at(now)});
                let (confirmed, new_cookie) = self
                    .agent_post(&cookie, &csrf, "/v1/agent/mfa/confirm", code)
                    .await?;
                cookie = new_cookie.context("no session after setting up the second factor")?;
                csrf = text(&confirmed["session"], "csrf_token")?;
            }
            other => bail!(
                "the owner's sign-in stage is {other:?}: run against a fresh data directory, \
                 whose owner has no second factor yet"
            ),
        }
        let mut sessions = Vec::with_capacity(count);
        for n in 0..count {
            let email = format!(
                "bench-agent-{n}-{}@bench.palisade.test",
                uuid::Uuid::new_v4().simple()
            );
            let password = format!("bench password {}", uuid::Uuid::new_v4());
            let account = json!({"email": email, "name": format!("Bench agent {n}"), "password": password, "role": "agent"});
            self.agent_post(&cookie, &csrf, "/v1/admin/agents", account)
                .await?;
            let (body, agent_cookie) = self.sign_in(&email, &password).await?;
            if body["stage"] != "full" {
                bail!("a bench agent's sign-in stage is {}", body["stage"]);
            }
            sessions.push(AgentSession {
                cookie: agent_cookie,
            });
        }
        Ok(sessions)
    }
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("palisade_session="))
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.ends_with('='))
        .map(str::to_owned)
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
