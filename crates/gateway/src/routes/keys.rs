//! `/v1/admin/api-keys`: tenant API keys. A key's token is shown once, at
//! creation; Palisade keeps only its SHA-256. A key holds a subset of its
//! creator's permissions and authenticates only routes that need one of
//! them (see [`crate::access`]).

use crate::AppState;
use crate::access::{API_KEY_PREFIX, Access, Route, route};
use crate::audit::{Source, audited, denied};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use palisade_identity::{random_token, sha256_hex};
use palisade_model::{ApiKeyId, DisplayName, Permission, now_millis};
use palisade_store::NewApiKey;
use serde::Deserialize;
use serde_json::json;

pub fn table() -> Vec<Route> {
    let manage = Permission::ApiKeysManage;
    vec![
        route(
            Method::GET,
            "/v1/admin/api-keys",
            Access::Needs(manage),
            get(list),
        ),
        route(
            Method::POST,
            "/v1/admin/api-keys",
            Access::StepUp(manage),
            post(create),
        ),
        route(
            Method::DELETE,
            "/v1/admin/api-keys/{id}",
            Access::Needs(manage),
            delete(revoke),
        ),
    ]
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let keys = state.chat.store().api_keys(caller.tenant_id()).await?;
    Ok(Json(json!({ "api_keys": keys })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    permissions: Vec<String>,
    #[serde(default = "default_days")]
    expires_in_days: i64,
}

fn default_days() -> i64 {
    90
}

/// How many characters of a token are kept to tell keys apart.
const SHOWN_PREFIX: usize = 12;

async fn create(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    StrictJson(req): StrictJson<CreateRequest>,
) -> ApiResult<Response> {
    let name = DisplayName::parse(&req.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    if !(1..=365).contains(&req.expires_in_days) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_in_days must be 1 to 365",
        ));
    }
    let mut permissions = Vec::new();
    for raw in &req.permissions {
        let permission = Permission::parse(raw).ok_or_else(|| {
            ApiError::bad_request("invalid_permission", format!("unknown permission {raw:?}"))
        })?;
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    if permissions.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_permission",
            "permissions must name at least one permission",
        ));
    }
    let action = "api_key.create";
    if !permissions.iter().all(|p| caller.agent.role.has(*p)) {
        let refusal = ApiError::Forbidden("a key can hold only permissions your role has");
        return Err(denied(&state, &source, &caller, action, name.as_str(), refusal).await);
    }
    let token = format!("{API_KEY_PREFIX}{}", random_token(32).expose());
    let day_ms = 24 * 60 * 60 * 1000;
    let new = NewApiKey {
        name: name.as_str(),
        prefix: &token[..SHOWN_PREFIX],
        token_hash: &sha256_hex(&token),
        permissions: &permissions,
        created_by: &caller.agent.id,
        expires_at: now_millis() + req.expires_in_days * day_ms,
    };
    let store = state.chat.store();
    let work = async { Ok(store.create_api_key(caller.tenant_id(), new).await?) };
    let key = audited(&state, &source, &caller, action, name.as_str(), work).await?;
    tracing::info!(key = %key.id, "API key created");
    let body = json!({"api_key": key, "token": token});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    const NO_KEY: ApiError = ApiError::NotFound("API key (unknown or already revoked)");
    let store = state.chat.store();
    // Another tenant's ids, and made-up ones, are refused before anything
    // is recorded in this tenant's log.
    let key = store
        .api_key(caller.tenant_id(), &ApiKeyId::from_raw(id))
        .await?
        .filter(|key| key.revoked_at.is_none())
        .ok_or(NO_KEY)?;
    let id = key.id;
    let work = async {
        store
            .revoke_api_key(caller.tenant_id(), &id)
            .await
            .map_err(|err| match err {
                palisade_store::StoreError::NotFound => NO_KEY,
                other => other.into(),
            })
    };
    audited(
        &state,
        &source,
        &caller,
        "api_key.revoke",
        id.as_str(),
        work,
    )
    .await?;
    tracing::info!(key = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
