//! Request extractors: strict JSON bodies and the caller's identity.
//!
//! Authentication happens here, once, for every route: a handler that takes
//! an [`AgentAuth`] cannot run for an anonymous caller, and the CSRF check of
//! state-changing browser requests lives in the same place.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{Method, header, request::Parts};
use palisade_chat::Actor;
use palisade_identity::{constant_time_eq, sha256_hex};
use palisade_model::{Agent, now_millis};
use palisade_store::SessionRecord;
use serde::de::DeserializeOwned;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "palisade_session";
/// The header state-changing agent requests must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body parsed into a strict type (the type refuses unknown fields).
/// Every failure becomes a 4xx that says what is wrong.
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(crate::JSON_BODY_LIMIT)
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(StrictJson)
    }
}

/// Parses a JSON document, naming what is wrong with it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::bad_request(
            "invalid_utf8",
            "body is not valid UTF-8",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        let message = err.to_string();
        let code = match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => "malformed_json",
            Category::Data if message.starts_with("unknown field") => "unknown_field",
            Category::Data if message.starts_with("missing field") => "missing_field",
            Category::Data => "invalid_field",
        };
        ApiError::bad_request(code, message)
    })
}

/// A query string parsed into a strict type, with the same error shape as bodies.
#[derive(Debug)]
pub struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| Self(query.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// A visitor, from its signed bearer token.
#[derive(Debug)]
pub struct VisitorAuth(pub Actor);

impl FromRequestParts<AppState> for VisitorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized(
                "a visitor token is required (Authorization: Bearer)",
            ))?;
        let actor = state.visitor_actor(token)?;
        if let Actor::Visitor {
            tenant_id,
            visitor_id,
            ..
        } = &actor
        {
            crate::middleware::limit_caller(state, tenant_id.as_str(), visitor_id.as_str())?;
        }
        Ok(VisitorAuth(actor))
    }
}

/// A signed-in agent, from the session cookie. For any method but GET and
/// HEAD the CSRF header must match the session's token.
#[derive(Debug)]
pub struct AgentAuth {
    pub agent: Agent,
    pub session: SessionRecord,
    pub token_hash: String,
}

impl AgentAuth {
    pub fn actor(&self) -> Actor {
        Actor::Agent {
            tenant_id: self.agent.tenant_id.clone(),
            agent_id: self.agent.id.clone(),
            name: self.agent.name.clone(),
        }
    }
}

pub fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        const NO_SESSION: ApiError = ApiError::Unauthorized("sign in first");
        let token = cookie_value(&parts.headers, SESSION_COOKIE).ok_or(NO_SESSION)?;
        let token_hash = sha256_hex(token);
        let store = state.chat.store();
        let session = store.session(&token_hash).await?.ok_or(NO_SESSION)?;
        crate::middleware::limit_caller(state, session.tenant_id.as_str(), &token_hash)?;
        let now = now_millis();
        let idle_limit = session.last_seen_at + state.settings.session_idle.as_millis() as i64;
        if now >= session.expires_at || now >= idle_limit {
            store.delete_session(&token_hash).await?;
            return Err(ApiError::Unauthorized("session expired; sign in again"));
        }
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(sent, session.csrf_token.as_bytes()) {
                return Err(ApiError::Forbidden("missing or wrong x-csrf-token header"));
            }
        }
        let agent = store
            .agent(&session.tenant_id, &session.agent_id)
            .await?
            .ok_or(NO_SESSION)?;
        // Recording activity once a minute is enough for the idle time-out.
        if now - session.last_seen_at > 60_000 {
            store.touch_session(&token_hash, now).await?;
        }
        Ok(Self {
            agent,
            session,
            token_hash,
        })
    }
}

/// An agent whose role may administer the tenant.
#[derive(Debug)]
pub struct AdminAuth(pub AgentAuth);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = AgentAuth::from_request_parts(parts, state).await?;
        if !auth.agent.role.can_administer() {
            return Err(ApiError::Forbidden("this needs the owner or admin role"));
        }
        Ok(Self(auth))
    }
}
