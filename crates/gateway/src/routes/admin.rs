//! `/v1/admin/`: the tenant admin API. Each route declares the permission
//! it needs; by the matrix in [`palisade_model::Role::permissions`] only
//! owners and admins have them.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, Caller, StrictJson};
use crate::partner::IssueRequest;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use palisade_audit::{ActorKind, Outcome};
use palisade_model::{
    DisplayName, Email, MessageBody, Permission, Role, Shortcut, WidgetId, WidgetSettings,
    check_text, now_millis,
};
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
            Method::PUT,
            "/v1/admin/canned-responses/{shortcut}",
            Access::Needs(Permission::SettingsManage),
            put(put_canned),
        ),
        route(
            Method::DELETE,
            "/v1/admin/canned-responses/{shortcut}",
            Access::Needs(Permission::SettingsManage),
            delete(delete_canned),
        ),
        route(
            Method::POST,
            "/v1/admin/agents",
            Access::StepUp(Permission::AgentsManage),
            post(create_agent),
        ),
        route(
            Method::GET,
            "/v1/admin/partners/certificates",
            Access::Needs(Permission::PartnersManage),
            get(partner_certs),
        ),
        route(
            Method::POST,
            "/v1/admin/partners/certificates",
            Access::StepUp(Permission::PartnersManage),
            post(issue_partner_cert),
        ),
        route(
            Method::POST,
            "/v1/admin/partners/certificates/{serial}/revoke",
            Access::StepUp(Permission::PartnersManage),
            post(revoke_partner_cert),
        ),
    ]
}

async fn partner_certs(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant = caller.tenant_id();
    let records = state.chat.store().partner_certs(Some(tenant)).await?;
    let now = now_millis();
    let certificates: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "serial": r.serial,
                "partner": r.partner,
                "not_before": r.not_before,
                "not_after": r.not_after,
                "revoked_at": r.revoked_at,
                "renewed_from": r.renewed_from,
                "expiring_soon": r.revoked_at.is_none()
                    && state.partners.expiring_soon(r.not_after, now),
            })
        })
        .collect();
    Ok(Json(json!({ "certificates": certificates })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    partner: String,
    days: Option<u32>,
}

async fn issue_partner_cert(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
    StrictJson(body): StrictJson<IssueBody>,
) -> ApiResult<Response> {
    let by = &auth.agent;
    let audited = |outcome, target: &str| {
        event(
            &source,
            (ActorKind::Agent, by.id.as_str()),
            Some(by.tenant_id.as_str()),
            "partner.certificate.issue",
            target,
            outcome,
        )
    };
    let target = format!("partner {}", body.partner);
    record(&state, audited(Outcome::Started, &target)).await?;
    let request = IssueRequest {
        tenant: &by.tenant_id,
        partner: &body.partner,
        days: body.days,
        renewal: None,
    };
    let issued = match state.partners.issue(state.chat.store(), request).await {
        Ok(issued) => issued,
        Err(err) => {
            record_after(&state, audited(Outcome::Failure, &target)).await;
            return Err(super::s2s::issue_error(err));
        }
    };
    let done = format!("{target} serial {}", issued.serial);
    record_after(&state, audited(Outcome::Success, &done)).await;
    let ca = state.partners.ca();
    let chain_pem = ca.as_ref().map_or("", |ca| ca.cert_pem());
    let body = json!({
        "certificate_pem": issued.cert_pem,
        "private_key_pem": issued.key_pem.as_ref().map(|k| k.expose()),
        "chain_pem": chain_pem,
        "serial": issued.serial,
        "not_after": crate::partner::millis(issued.not_after),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke_partner_cert(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
    Path(serial): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !palisade_pki::partner::is_serial(&serial) {
        return Err(ApiError::bad_request(
            "invalid_serial",
            "a serial is the lower-case hex the certificate listing shows",
        ));
    }
    let by = &auth.agent;
    let audited = |outcome| {
        event(
            &source,
            (ActorKind::Agent, by.id.as_str()),
            Some(by.tenant_id.as_str()),
            "partner.certificate.revoke",
            &serial,
            outcome,
        )
    };
    record(&state, audited(Outcome::Started)).await?;
    let store = state.chat.store();
    let revoked = store
        .revoke_partner_cert(Some(&by.tenant_id), &serial, now_millis())
        .await;
    let record = match revoked {
        Ok(Some(record)) => record,
        Ok(None) => {
            record_after(&state, audited(Outcome::Failure)).await;
            return Err(ApiError::NotFound("certificate"));
        }
        Err(err) => {
            record_after(&state, audited(Outcome::Failure)).await;
            return Err(err.into());
        }
    };
    state.partners.revoked.notify_one();
    let closed = state.partners.live.close_serial(&serial);
    record_after(&state, audited(Outcome::Success)).await;
    tracing::info!(%serial, closed, "partner certificate revoked");
    Ok(Json(json!({
        "serial": record.serial,
        "partner": record.partner,
        "revoked_at": record.revoked_at,
    })))
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
struct WidgetSettingsRequest {
    greeting: String,
    settings: WidgetSettings,
}

const MAX_GREETING_CHARS: usize = 500;

async fn update_widget_settings(
    State(state): State<AppState>,
    source: Source,
    auth: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<WidgetSettingsRequest>,
) -> ApiResult<Response> {
    let greeting = req.greeting.trim();
    check_text("greeting", greeting, MAX_GREETING_CHARS)
        .and_then(|()| req.settings.check())
        .map_err(|e| ApiError::bad_request("invalid_settings", e.to_string()))?;
    let widget_id = WidgetId::from_raw(id);
    let by = &auth.agent;
    // Another tenant's widget is "not found", and not put on this tenant's
    // record either.
    let store = state.chat.store();
    if store.widget(&by.tenant_id, &widget_id).await?.is_none() {
        return Err(ApiError::NotFound("widget"));
    }
    let audited = |outcome| {
        event(
            &source,
            auth.audit_actor(),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CannedRequest {
    body: String,
}

fn shortcut(raw: &str) -> ApiResult<Shortcut> {
    Shortcut::parse(raw).map_err(|e| ApiError::bad_request("invalid_shortcut", e.to_string()))
}

/// Creates a canned response or replaces its text. Audited: what agents
/// send with one keystroke is worth a record of who wrote it.
async fn put_canned(
    State(state): State<AppState>,
    source: Source,
    auth: Caller,
    Path(raw): Path<String>,
    StrictJson(req): StrictJson<CannedRequest>,
) -> ApiResult<Json<palisade_model::CannedResponse>> {
    let shortcut = shortcut(&raw)?;
    let body = MessageBody::parse(&req.body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let by = &auth.agent;
    let audited = |outcome| {
        event(
            &source,
            auth.audit_actor(),
            Some(by.tenant_id.as_str()),
            "canned_response.put",
            shortcut.as_str(),
            outcome,
        )
    };
    record(&state, audited(Outcome::Started)).await?;
    let store = state.chat.store();
    match store
        .put_canned_response(&by.tenant_id, &shortcut, &body)
        .await
    {
        Ok(saved) => {
            record_after(&state, audited(Outcome::Success)).await;
            Ok(Json(saved))
        }
        Err(err) => {
            record_after(&state, audited(Outcome::Failure)).await;
            Err(err.into())
        }
    }
}

async fn delete_canned(
    State(state): State<AppState>,
    source: Source,
    auth: Caller,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let shortcut = shortcut(&raw)?;
    let by = &auth.agent;
    let audited = |outcome| {
        event(
            &source,
            auth.audit_actor(),
            Some(by.tenant_id.as_str()),
            "canned_response.delete",
            shortcut.as_str(),
            outcome,
        )
    };
    record(&state, audited(Outcome::Started)).await?;
    let store = state.chat.store();
    let deleted = store.delete_canned_response(&by.tenant_id, &shortcut).await;
    let outcome = match deleted {
        Ok(true) => Outcome::Success,
        _ => Outcome::Failure,
    };
    record_after(&state, audited(outcome)).await;
    if deleted? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("canned response"))
    }
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
