//! `/v1/admin/`: the tenant admin API. Each route declares the permission
//! it needs; by the matrix in [`palisade_model::Role::permissions`] only
//! owners and admins have them.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, Caller, StrictJson};
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_model::{DisplayName, Email, Permission, Role};
use palisade_store::NewAgent;
use serde::Deserialize;
use serde_json::json;

pub fn table() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/v1/admin/widgets",
            Access::Needs(Permission::WidgetsRead),
            get(widgets),
        ),
        route(
            Method::POST,
            "/v1/admin/agents",
            Access::StepUp(Permission::AgentsManage),
            post(create_agent),
        ),
    ]
}

async fn widgets(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let widgets = state.chat.store().widgets(caller.tenant_id()).await?;
    Ok(Json(json!({ "widgets": widgets })))
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
    auth: AgentAuth,
    StrictJson(req): StrictJson<NewAgentRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let name = DisplayName::parse(&req.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request("invalid_role", "role must be owner, admin or agent")
    })?;
    if role == Role::Owner && !auth.agent.role.has(Permission::OwnersManage) {
        return Err(ApiError::Forbidden(
            "only an owner may create another owner",
        ));
    }
    if role == Role::Operator {
        return Err(ApiError::bad_request(
            "invalid_role",
            "role must be owner, admin or agent",
        ));
    }
    let password = req.password;
    let hash = state
        .password_work(move |hasher| hasher.hash(&password))
        .await?
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let new = NewAgent {
        email: &email,
        name: name.as_str(),
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
