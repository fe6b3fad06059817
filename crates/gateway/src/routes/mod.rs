//! The public route table. Route families are kept apart: each prefix has
//! its own audience and its own credential, and a credential of one family
//! is never accepted by another. Every route is declared with its
//! [`Access`]; see [`crate::access`].

mod admin;
mod agent;
mod keys;
mod mfa;
mod operator;
mod s2s;
mod s2s_webhooks;
mod settings;
mod stats;
mod team;
mod visitor;
mod webhooks;

use crate::AppState;
use crate::access::{Access, Route, authorize, route};
use crate::error::ApiError;
use axum::Router;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use serde::Deserialize;

/// Every public route with its declared access: the only source the
/// router is built from.
pub fn table() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(visitor::table());
    all.extend(agent::table());
    all.extend(mfa::table());
    all.extend(admin::table());
    all.extend(s2s::table());
    all.extend(s2s_webhooks::table());
    all.extend(team::table());
    all.extend(keys::table());
    all.extend(settings::table());
    all.extend(stats::table());
    all.extend(operator::table());
    all.extend(webhooks::table());
    all.extend([
        route(
            Method::GET,
            "/widget/{file}",
            Access::Public,
            get(crate::assets::widget),
        ),
        route(
            Method::GET,
            "/app/",
            Access::Public,
            get(crate::assets::app_index),
        ),
        route(
            Method::GET,
            "/app/{file}",
            Access::Public,
            get(crate::assets::app),
        ),
        route(
            Method::GET,
            "/admin/",
            Access::Public,
            get(crate::assets::admin_index),
        ),
        route(
            Method::GET,
            "/admin/{file}",
            Access::Public,
            get(crate::assets::admin),
        ),
        route(
            Method::GET,
            "/openapi.json",
            Access::Public,
            get(crate::openapi::document),
        ),
        route(Method::GET, "/", Access::Public, get(crate::assets::root)),
    ]);
    all
}

/// The router: each route with the access layer of its declaration.
pub fn router(state: &AppState) -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, spec| {
        let layer = from_fn_with_state((state.clone(), spec.access), authorize);
        router.route(spec.path, spec.handler.route_layer(layer))
    })
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `?after_seq=&limit=` of message listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    pub after_seq: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

impl Page {
    pub fn checked(&self) -> Result<(i64, i64), ApiError> {
        if self.after_seq < 0 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "after_seq must be 0 or more",
            ));
        }
        if !(1..=500).contains(&self.limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit must be 1 to 500",
            ));
        }
        Ok((self.after_seq, self.limit))
    }
}

/// A send request's body, shared by visitors and agents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    pub client_msg_id: String,
    pub body: String,
}

/// The acknowledgement of a stored message.
pub fn ack_json(appended: &palisade_store::Appended) -> serde_json::Value {
    serde_json::json!({
        "seq": appended.message.seq,
        "message_id": appended.message.id,
        "created_at": appended.message.created_at,
        "duplicate": appended.duplicate,
    })
}

/// Validates and sends one message for an already authorised caller.
pub async fn send_message(
    state: &AppState,
    access: &palisade_chat::ConversationAccess,
    body: SendBody,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let client_msg_id = palisade_model::ClientMsgId::parse(&body.client_msg_id)
        .map_err(|e| ApiError::bad_request("invalid_client_msg_id", e.to_string()))?;
    let text = palisade_model::MessageBody::parse(&body.body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let appended = state.chat.send(access, client_msg_id, text).await?;
    let status = if appended.duplicate {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::CREATED
    };
    Ok((status, axum::Json(ack_json(&appended))).into_response())
}
