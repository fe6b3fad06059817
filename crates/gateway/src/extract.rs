//! Request extractors: strict JSON bodies and queries, and the caller the
//! access layer ([`crate::access`]) authenticated for the route.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use palisade_audit::ActorKind;
use palisade_chat::Actor;
use palisade_model::{Agent, ApiKeyId, TenantId};
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

/// A visitor, authenticated by the route's [`crate::access::Access::Visitor`]
/// declaration.
#[derive(Clone, Debug)]
pub struct VisitorAuth(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for VisitorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or(UNDECLARED)
    }
}

/// Refusal of a handler whose route declared no access for its caller.
const UNDECLARED: ApiError = ApiError::Forbidden("this route declares no access for you");

/// A signed-in agent, authenticated (session, CSRF, role) by the route's
/// declaration in the access layer.
#[derive(Clone, Debug)]
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

impl<S: Send + Sync> FromRequestParts<S> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or(UNDECLARED)
    }
}

/// The caller of a [`crate::access::Access::Needs`] route: a signed-in
/// agent, or a tenant API key acting for the agent who created it, with no
/// more than the permissions the key holds.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The signed-in agent, or the key's creator.
    pub agent: Agent,
    /// The key, when the caller is one.
    pub api_key: Option<ApiKeyId>,
}

impl Caller {
    pub fn tenant_id(&self) -> &TenantId {
        &self.agent.tenant_id
    }

    pub fn actor(&self) -> Actor {
        Actor::Agent {
            tenant_id: self.agent.tenant_id.clone(),
            agent_id: self.agent.id.clone(),
            name: self.agent.name.clone(),
        }
    }

    /// Who the audit log names: the key when a key called, else the agent.
    pub fn audit_actor(&self) -> (ActorKind, &str) {
        match &self.api_key {
            Some(key) => (ActorKind::ApiKey, key.as_str()),
            None => (ActorKind::Agent, self.agent.id.as_str()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or(UNDECLARED)
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
