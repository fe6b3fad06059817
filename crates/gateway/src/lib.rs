//! The gateway: Palisade's single public entry point.
//!
//! It owns the TLS listener, strict routing (an unknown path is a JSON 404, a
//! wrong method a JSON 405), request size limits, time-outs, request ids,
//! security headers and access logs, and turns credentials into an actor
//! before any chat code runs. Beside it, the ops listener serves health and
//! metrics on loopback only.
//!
//! Invariants: the gateway never opens the database itself (it calls the chat
//! service and the store's typed methods); nothing but the TLS listener and
//! the loopback ops listener accepts connections.

pub mod access;
mod assets;
mod audit;
mod error;
mod extract;
pub mod limits;
mod metrics;
mod middleware;
mod openapi;
mod ops;
pub mod partner;
mod routes;
mod throttle;
mod tls;
pub mod waf;
mod ws;

pub use error::{ApiError, ApiResult};
pub use metrics::Metrics;
pub use ops::serve_ops;
pub use routes::table as route_table;
pub use throttle::{LoginThrottle, ThrottlePolicy};
pub use tls::{
    CIPHER_SUITES, ServeHandle, TlsSwap, serve_public, server_config, server_config_for,
};

use axum::Router;
use palisade_chat::{Actor, Chat};
use palisade_identity::{PasswordHasher, VisitorTokens};
use palisade_model::now_millis;
use std::sync::Arc;
use std::time::Duration;

/// The largest JSON request body accepted.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Gateway settings, already validated by the binary's config loader.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The origin browsers see, e.g. `https://127.0.0.1:8443`. Agent
    /// WebSockets must come from it.
    pub public_origin: String,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub visitor_token_ttl: Duration,
    /// A TLS handshake that takes longer is dropped.
    pub handshake_timeout: Duration,
    /// Request headers that take longer to arrive are dropped (slow clients).
    pub header_read_timeout: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// The most concurrent public connections.
    pub max_connections: usize,
    /// The demo widget key substituted into the demo host page, if any.
    pub demo_widget_key: Option<String>,
    /// The most concurrent connections from one address (IPv6: one /64).
    pub max_connections_per_address: usize,
    /// A request body that takes longer to arrive is refused with 408.
    pub body_read_timeout: Duration,
    /// The largest request body; sign-in and session creation take at most
    /// [`SMALL_BODY_LIMIT`] of it.
    pub max_body_bytes: usize,
    /// Request-header bytes accepted, over HTTP/1.1 and HTTP/2.
    pub max_header_bytes: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// The largest WebSocket frame and message.
    pub websocket_max_message_bytes: usize,
}

/// The body limit of sign-in and visitor session creation.
pub const SMALL_BODY_LIMIT: usize = 8 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_origin: "https://127.0.0.1:8443".into(),
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            visitor_token_ttl: Duration::from_secs(24 * 3600),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
            demo_widget_key: None,
            max_connections_per_address: 256,
            body_read_timeout: Duration::from_secs(10),
            max_body_bytes: JSON_BODY_LIMIT,
            max_header_bytes: 32 * 1024,
            http2_max_concurrent_streams: 100,
            websocket_max_message_bytes: 16 * 1024,
        }
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub chat: Chat,
    pub passwords: Arc<PasswordHasher>,
    /// Bounds concurrent Argon2 work (19 MiB and tens of milliseconds each),
    /// so a login flood queues instead of exhausting memory.
    pub password_slots: Arc<tokio::sync::Semaphore>,
    pub visitor_tokens: Arc<VisitorTokens>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Hashes of agent sessions that just ended (logout): their live
    /// sockets close at once instead of at the next keep-alive check.
    pub ended_sessions: tokio::sync::broadcast::Sender<String>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Security events go here before the action they record.
    pub audit: palisade_audit::Auditor,
    /// Secrets: each tenant's visitor identity secret lives here.
    pub vault: palisade_vault::Vault,
    /// Rate limits per address, tenant, credential and socket.
    pub limits: Arc<limits::RateLimiter>,
    /// The web application firewall.
    pub waf: Arc<waf::Waf>,
    /// Partner certificates: the issuing CA and the live mTLS connections.
    pub partners: Arc<partner::Partners>,
    /// Webhook subscriptions and their delivery outbox.
    pub webhooks: palisade_webhooks::Webhooks,
}

impl AppState {
    /// Runs Argon2 work off the async workers, at most `password_slots` at
    /// once. A caller that cannot get a slot within 3 seconds gets 503.
    pub async fn password_work<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> ApiResult<T> {
        let wait = tokio::time::timeout(
            Duration::from_secs(3),
            self.password_slots.clone().acquire_owned(),
        );
        let permit = wait
            .await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|_| ApiError::Unavailable)?;
        let hasher = self.passwords.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&hasher)
        })
        .await
        .map_err(ApiError::internal)
    }

    /// The visitor a bearer token names, if the token is genuine and current.
    pub fn visitor_actor(&self, token: &str) -> ApiResult<Actor> {
        let claims = self
            .visitor_tokens
            .verify(token, now_millis())
            .map_err(|_| ApiError::Unauthorized("visitor token is invalid or expired"))?;
        Ok(Actor::Visitor {
            tenant_id: claims.tenant_id,
            widget_id: claims.widget_id,
            visitor_id: claims.visitor_id,
            name: None,
        })
    }
}

/// The public router: every route family, the strict fallbacks, and the
/// request middleware around all of them.
pub fn public_router(state: AppState) -> Router {
    routes::router(&state)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::around_request,
        ))
        .with_state(state)
}
