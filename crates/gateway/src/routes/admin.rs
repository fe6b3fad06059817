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
use axum::routing::{get, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_model::{DisplayName, Email, Permission, Role, now_millis};
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
