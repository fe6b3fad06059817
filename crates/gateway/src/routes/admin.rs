//! `/v1/admin/`: the tenant admin API. Each route declares the permission
//! it needs; by the matrix in [`palisade_model::Role::permissions`] only
//! owners and admins have them.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, StrictJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use palisade_audit::{ActorKind, Outcome};
use palisade_model::{DisplayName, Email, Permission, Role, WidgetId, WidgetSettings, check_text};
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
            Method::PUT,
            "/v1/admin/widgets/{id}/settings",
            Access::Needs(Permission::WidgetsManage),
            put(update_widget_settings),
        ),
        route(
            Method::GET,
            "/v1/admin/agents",
            Access::Needs(Permission::AgentsRead),
            get(agents),
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
    auth: AgentAuth,
) -> ApiResult<Json<serde_json::Value>> {
    let widgets = state.chat.store().widgets(&auth.agent.tenant_id).await?;
    Ok(Json(json!({ "widgets": widgets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WidgetSettingsRequest {
    greeting: String,
    settings: WidgetSettings,
}

const MAX_GREETING_CHARS: usize = 500;

async fn update_widget_settings(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<WidgetSettingsRequest>,
) -> ApiResult<Response> {
    let greeting = req.greeting.trim();
    check_text("greeting", greeting, MAX_GREETING_CHARS)
        .and_then(|()| req.settings.check())
        .map_err(|e| ApiError::bad_request("invalid_settings", e.to_string()))?;
    let widget_id = WidgetId::from_raw(id);
    let by = &auth.agent;
    let audited = |outcome| {
        event(
            &source,
            (ActorKind::Agent, by.id.as_str()),
            Some(by.tenant_id.as_str()),
            "widget.settings.update",
            widget_id.as_str(),
            outcome,
        )
    };
    record(&state, audited(Outcome::Started)).await?;
    let updated = state
        .chat
        .store()
        .update_widget_settings(&by.tenant_id, &widget_id, greeting, &req.settings)
        .await;
    let widget = match updated {
        Ok(widget) => widget,
        Err(err) => {
            record_after(&state, audited(Outcome::Failure)).await;
            return Err(match err {
                palisade_store::StoreError::NotFound => ApiError::NotFound("widget"),
                other => other.into(),
            });
        }
    };
    record_after(&state, audited(Outcome::Success)).await;
    tracing::info!(by = %by.id, widget = %widget.id, "widget settings changed");
    Ok(Json(widget).into_response())
}

async fn agents(
    State(state): State<AppState>,
    auth: AgentAuth,
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
