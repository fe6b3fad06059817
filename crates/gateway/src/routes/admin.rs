//! `/v1/admin/`: the tenant admin API. Every route takes an [`AdminAuth`]:
//! an agent session whose role is owner or admin.

use crate::AppState;
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminAuth, StrictJson};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use palisade_audit::{ActorKind, Outcome};
use palisade_model::{Email, Role};
use palisade_store::NewAgent;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/widgets", get(widgets))
        .route("/agents", get(agents).post(create_agent))
}

async fn widgets(
    State(state): State<AppState>,
    AdminAuth(auth): AdminAuth,
) -> ApiResult<Json<serde_json::Value>> {
    let widgets = state.chat.store().widgets(&auth.agent.tenant_id).await?;
    Ok(Json(json!({ "widgets": widgets })))
}

async fn agents(
    State(state): State<AppState>,
    AdminAuth(auth): AdminAuth,
) -> ApiResult<Json<serde_json::Value>> {
    let agents = state.chat.store().agents(&auth.agent.tenant_id).await?;
    Ok(Json(json!({ "agents": agents })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgentRequest {
    email: String,
    name: String,
    password: String,
    role: String,
}

async fn create_agent(
    State(state): State<AppState>,
    source: Source,
    AdminAuth(auth): AdminAuth,
    StrictJson(req): StrictJson<NewAgentRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request("invalid_role", "role must be owner, admin or agent")
    })?;
    if role == Role::Owner && auth.agent.role != Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner may create another owner",
        ));
    }
    let passwords = state.passwords.clone();
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || passwords.hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let new = NewAgent {
        email: &email,
        name,
        role,
        password_hash: &hash,
    };
    let by = &auth.agent;
    let audited = |outcome, target: &str| {
        event(
            &source,
            (ActorKind::Agent, by.id.as_str()),
            Some(by.tenant_id.as_str()),
            "agent.create",
            target,
            outcome,
        )
    };
    // Fail closed: the account is created only once its creation is on record.
    record(&state, audited(Outcome::Started, email.as_str())).await?;
    let created = state
        .chat
        .store()
        .create_agent(&auth.agent.tenant_id, new)
        .await;
    let agent = match created {
        Ok(agent) => agent,
        Err(err) => {
            record_after(&state, audited(Outcome::Failure, email.as_str())).await;
            return Err(err.into());
        }
    };
    record_after(&state, audited(Outcome::Success, agent.id.as_str())).await;
    tracing::info!(by = %auth.agent.id, agent = %agent.id, role = role.as_str(), "agent created");
    Ok((StatusCode::CREATED, Json(agent)).into_response())
}
