//! `/v1/operator/`: the platform operator's API. Operators list and create
//! tenants; their only permission is `tenants_manage`, so no route of a
//! tenant's conversations, agents or settings opens for them.

use super::team::{INVITATION_LIFETIME_MS, invitation_url};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, audited};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictJson};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_identity::{random_token, sha256_hex};
use palisade_model::{DisplayName, Email, Permission, Role, now_millis};
use palisade_store::{NewInvitation, NewWidget};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn table() -> Vec<Route> {
    let manage = Permission::TenantsManage;
    vec![
        route(
            Method::GET,
            "/v1/operator/tenants",
            Access::Needs(manage),
            get(tenants),
        ),
        route(
            Method::POST,
            "/v1/operator/tenants",
            Access::Needs(manage),
            post(create_tenant),
        ),
    ]
}

async fn tenants(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Value>> {
    let tenants = state.chat.store().tenant_summaries().await?;
    Ok(Json(json!({ "tenants": tenants })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenantRequest {
    slug: String,
    name: String,
    owner_email: String,
    #[serde(default = "default_owner_name")]
    owner_name: String,
}

fn default_owner_name() -> String {
    "Owner".into()
}

fn checked_slug(slug: &str) -> ApiResult<&str> {
    let ok = (1..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(slug).ok_or_else(|| {
        ApiError::bad_request("invalid_slug", "slug must be 1 to 40 of a-z, 0-9 and '-'")
    })
}

/// Creates a tenant with a widget (no allowed origins yet) and an
/// invitation for its first owner, who then sets up the rest.
async fn create_tenant(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    StrictJson(req): StrictJson<NewTenantRequest>,
) -> ApiResult<Response> {
    let slug = checked_slug(&req.slug)?;
    let name = DisplayName::parse(&req.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let owner_name = DisplayName::parse(&req.owner_name)
        .map_err(|e| ApiError::bad_request("invalid_owner_name", e.to_string()))?;
    let email = Email::parse(&req.owner_email)
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let store = state.chat.store();
    if store.agent_credentials(&email).await?.is_some() {
        return Err(ApiError::Conflict("owner_email already has an account"));
    }
    let token = random_token(32);
    let expires_at = now_millis() + INVITATION_LIFETIME_MS;
    let widget_key = format!("pk_{}", random_token(18).expose());
    let work = async {
        let tenant = store.create_tenant(slug, name.as_str()).await?;
        let widget = NewWidget {
            name: name.as_str(),
            public_key: &widget_key,
            allowed_origins: &[],
            greeting: "Hi! How can we help you today?",
        };
        store.create_widget(&tenant.id, widget).await?;
        let invitation = NewInvitation {
            token_hash: &sha256_hex(token.expose()),
            email: &email,
            name: owner_name.as_str(),
            role: Role::Owner,
            invited_by: &caller.agent.id,
            expires_at,
        };
        store.create_invitation(&tenant.id, invitation).await?;
        Ok::<_, ApiError>(tenant)
    };
    let tenant = audited(&state, &source, &caller, "tenant.create", slug, work).await?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    let body = json!({
        "tenant": tenant,
        "widget_key": widget_key,
        "owner_invitation_url": invitation_url(&state, &token),
        "expires_at": expires_at,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
