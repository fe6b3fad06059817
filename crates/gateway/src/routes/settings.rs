//! `/v1/admin/tenant`, `/v1/admin/identity-secret` and `/v1/admin/audit`:
//! the tenant's policies, its visitor identity secret (in the vault, shown
//! once at rotation), and its own slice of the audit log.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, audited};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictJson, StrictQuery};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_audit::ActorKind;
use palisade_model::{Permission, TenantId};
use palisade_vault::{Access as VaultAccess, Policy, Principal};
use serde::Deserialize;
use serde_json::{Value, json};

/// The vault name of a tenant's visitor identity secret (scope: the tenant id).
pub const IDENTITY_SECRET: &str = "visitor-identity";
/// The only principal that reads it: the visitor session handler.
const IDENTITY_READER: &str = "identity";

pub fn table() -> Vec<Route> {
    let settings = Permission::SettingsManage;
    vec![
        route(
            Method::GET,
            "/v1/admin/tenant",
            Access::Needs(settings),
            get(tenant),
        ),
        route(
            Method::PATCH,
            "/v1/admin/tenant",
            Access::StepUp(settings),
            axum::routing::patch(change_tenant),
        ),
        route(
            Method::POST,
            "/v1/admin/identity-secret",
            Access::StepUp(settings),
            post(rotate_identity_secret),
        ),
        route(
            Method::GET,
            "/v1/admin/audit",
            Access::Needs(Permission::AuditRead),
            get(audit_log),
        ),
    ]
}

async fn tenant_json(state: &AppState, tenant: &TenantId) -> ApiResult<Value> {
    let store = state.chat.store();
    let settings = store.tenant_settings(tenant).await?;
    let secret = store.vault_secret(tenant.as_str(), IDENTITY_SECRET).await?;
    Ok(json!({
        "id": settings.id,
        "name": settings.name,
        "slug": settings.slug,
        "require_agent_mfa": settings.require_agent_mfa,
        "identity_verification": {
            "required": settings.identity_verification_required,
            "secret_set": secret.is_some(),
            "rotated_at": secret.map(|s| s.updated_at),
        },
    }))
}

async fn tenant(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(tenant_json(&state, caller.tenant_id()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantChange {
    require_agent_mfa: Option<bool>,
    identity_verification_required: Option<bool>,
}

async fn change_tenant(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    StrictJson(change): StrictJson<TenantChange>,
) -> ApiResult<Json<Value>> {
    let tenant = caller.tenant_id();
    let store = state.chat.store();
    if change.identity_verification_required == Some(true)
        && store
            .vault_secret(tenant.as_str(), IDENTITY_SECRET)
            .await?
            .is_none()
    {
        return Err(ApiError::Conflict(
            "create an identity secret (POST /v1/admin/identity-secret) before requiring it",
        ));
    }
    let work = async {
        if let Some(required) = change.require_agent_mfa {
            store
                .set_tenant_requires_agent_mfa(tenant, required)
                .await?;
        }
        if let Some(required) = change.identity_verification_required {
            store
                .set_identity_verification_required(tenant, required)
                .await?;
        }
        Ok(())
    };
    let target = format!(
        "require_agent_mfa={:?} identity_verification_required={:?}",
        change.require_agent_mfa, change.identity_verification_required
    );
    audited(
        &state,
        &source,
        &caller,
        "tenant.settings_change",
        &target,
        work,
    )
    .await?;
    Ok(Json(tenant_json(&state, tenant).await?))
}

fn vault_access(
    source: &Source,
    actor: (ActorKind, &str),
    principal: Principal,
    reason: &str,
) -> VaultAccess {
    VaultAccess {
        actor_kind: actor.0,
        actor_id: actor.1.to_owned(),
        principal,
        source: source.0.clone(),
        reason: reason.to_owned(),
        request_id: crate::error::current_request_id(),
    }
}

/// Makes a new identity secret and answers with it, once. Signatures made
/// with the old one stop verifying at once.
async fn rotate_identity_secret(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
) -> ApiResult<Response> {
    let tenant = caller.tenant_id().as_str();
    let secret = palisade_identity::random_token(32);
    let policy = Policy {
        readers: vec![format!("system:{IDENTITY_READER}")],
        ..Policy::default()
    };
    let access = vault_access(
        &source,
        caller.audit_actor(),
        Principal::Operator,
        "rotate the visitor identity secret",
    );
    let work = async {
        state
            .vault
            .write(
                tenant,
                IDENTITY_SECRET,
                secret.expose().as_bytes(),
                Some(policy),
                &access,
            )
            .await
            .map_err(ApiError::internal)
    };
    audited(
        &state,
        &source,
        &caller,
        "tenant.identity_secret_rotate",
        tenant,
        work,
    )
    .await?;
    let body = json!({ "secret": secret.expose() });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The tenant's identity secret, for checking a visitor's signature.
pub async fn identity_secret(
    state: &AppState,
    source: &Source,
    tenant: &TenantId,
) -> ApiResult<Option<palisade_vault::SecretValue>> {
    let access = vault_access(
        source,
        (ActorKind::System, "gateway"),
        Principal::System(IDENTITY_READER.into()),
        "verify a visitor's identity",
    );
    match state
        .vault
        .read(tenant.as_str(), IDENTITY_SECRET, &access)
        .await
    {
        Ok(secret) => Ok(Some(secret)),
        Err(palisade_vault::VaultError::NotFound(_)) => Ok(None),
        Err(err) => Err(ApiError::internal(err)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    before: Option<i64>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(query): StrictQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    if !(1..=200).contains(&query.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    if query.before.is_some_and(|b| b < 1) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "before must be 1 or more",
        ));
    }
    let filter = palisade_store::AuditFilter {
        action: query.action.as_deref().filter(|s| !s.is_empty()),
        actor: query.actor.as_deref().filter(|s| !s.is_empty()),
        outcome: query.outcome.as_deref().filter(|s| !s.is_empty()),
        before: query.before,
        limit: query.limit,
    };
    let records = state
        .chat
        .store()
        .tenant_audit_records(caller.tenant_id().as_str(), &filter)
        .await?;
    let full = i64::try_from(records.len()).unwrap_or(i64::MAX) == query.limit;
    let next_before = records.last().filter(|_| full).map(|r| r.seq);
    let entries: Vec<Value> = records
        .iter()
        .map(|r| {
            let ip = r
                .source
                .parse::<std::net::SocketAddr>()
                .map_or_else(|_| r.source.clone(), |addr| addr.ip().to_string());
            json!({
                "seq": r.seq,
                "at": r.at,
                "actor_kind": r.actor_kind,
                "actor": r.actor_id,
                "action": r.action,
                "target": r.target,
                "outcome": r.outcome,
                "ip": ip,
            })
        })
        .collect();
    Ok(Json(
        json!({ "entries": entries, "next_before": next_before }),
    ))
}
