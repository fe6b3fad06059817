//! The tenant's team: listing agents, inviting new ones, changing roles,
//! deactivating and reactivating. Only owners touch owners, and no change
//! leaves a tenant without an active owner. A changed or deactivated
//! account's sessions end at once, sockets included, so its next session
//! starts with the new role and a new id.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, audited, denied, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_identity::{random_token, sha256_hex};
use palisade_model::{AgentId, DisplayName, Email, Permission, Role, now_millis};
use palisade_store::{AgentListing, NewInvitation};
use serde::Deserialize;
use serde_json::json;

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME_MS: i64 = 72 * 60 * 60 * 1000;

pub fn table() -> Vec<Route> {
    use Permission::{AgentsManage as Manage, AgentsRead as Read};
    vec![
        route(
            Method::GET,
            "/v1/admin/agents",
            Access::Needs(Read),
            get(agents),
        ),
        route(
            Method::POST,
            "/v1/admin/agents/invitations",
            Access::StepUp(Manage),
            post(invite),
        ),
        route(
            Method::PATCH,
            "/v1/admin/agents/{id}",
            Access::StepUp(Manage),
            patch(change_role),
        ),
        route(
            Method::POST,
            "/v1/admin/agents/{id}/deactivate",
            Access::Needs(Manage),
            post(deactivate),
        ),
        route(
            Method::POST,
            "/v1/admin/agents/{id}/reactivate",
            Access::Needs(Manage),
            post(reactivate),
        ),
        route(
            Method::POST,
            "/v1/agent/invitations/accept",
            Access::Public,
            post(accept),
        ),
    ]
}

async fn agents(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let agents = state
        .chat
        .store()
        .agent_listings(caller.tenant_id())
        .await?;
    Ok(Json(json!({ "agents": agents })))
}

/// A role an admin API may grant: never operator.
fn tenant_role(raw: &str) -> ApiResult<Role> {
    Role::parse(raw)
        .filter(|role| *role != Role::Operator)
        .ok_or_else(|| ApiError::bad_request("invalid_role", "role must be owner, admin or agent"))
}

const OWNERS_ONLY: ApiError = ApiError::Forbidden("only an owner may grant or change an owner");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    email: String,
    name: String,
    role: String,
}

async fn invite(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    StrictJson(req): StrictJson<InviteRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let name = DisplayName::parse(&req.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let role = tenant_role(&req.role)?;
    let action = "agent.invite";
    if role == Role::Owner && !caller.agent.role.has(Permission::OwnersManage) {
        return Err(denied(
            &state,
            &source,
            &caller,
            action,
            email.as_str(),
            OWNERS_ONLY,
        )
        .await);
    }
    let token = random_token(32);
    let expires_at = now_millis() + INVITATION_LIFETIME_MS;
    let new = NewInvitation {
        token_hash: &sha256_hex(token.expose()),
        email: &email,
        name: name.as_str(),
        role,
        invited_by: &caller.agent.id,
        expires_at,
    };
    let store = state.chat.store();
    let work = async { Ok(store.create_invitation(caller.tenant_id(), new).await?) };
    audited(&state, &source, &caller, action, email.as_str(), work).await?;
    let body = json!({"invitation_url": invitation_url(&state, &token), "expires_at": expires_at});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Where an invitation is accepted. The token travels in the fragment,
/// which browsers never send to a server, so it stays out of access logs
/// and referrers.
pub(super) fn invitation_url(state: &AppState, token: &palisade_identity::SecretString) -> String {
    format!(
        "{}/app/#invite={}",
        state.settings.public_origin,
        token.expose()
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptRequest {
    token: String,
    name: String,
    password: String,
}

impl std::fmt::Debug for AcceptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptRequest(..)")
    }
}

const NO_INVITATION: ApiError = ApiError::NotFound("invitation (unknown, used or expired)");

/// Accepting an invitation sets the new account's name and password; the
/// person then signs in as usual.
async fn accept(
    State(state): State<AppState>,
    source: Source,
    StrictJson(req): StrictJson<AcceptRequest>,
) -> ApiResult<Response> {
    let name = DisplayName::parse(&req.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let token_hash = sha256_hex(&req.token);
    let store = state.chat.store();
    if !store.invitation_open(&token_hash).await? {
        return Err(NO_INVITATION);
    }
    let password = req.password;
    let hash = state
        .password_work(move |hasher| hasher.hash(&password))
        .await?
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let started = event(
        &source,
        (ActorKind::Anonymous, ""),
        None,
        "agent.invitation_accept",
        "invitation",
        Outcome::Started,
    );
    record(&state, started).await?;
    let agent = store
        .accept_invitation(&token_hash, name.as_str(), &hash)
        .await
        .map_err(|err| match err {
            palisade_store::StoreError::NotFound => NO_INVITATION,
            other => other.into(),
        })?;
    let joined = event(
        &source,
        (ActorKind::Agent, agent.id.as_str()),
        Some(agent.tenant_id.as_str()),
        "agent.invitation_accept",
        agent.id.as_str(),
        Outcome::Success,
    );
    record_after(&state, joined).await;
    tracing::info!(agent = %agent.id, tenant = %agent.tenant_id, "invitation accepted");
    Ok((StatusCode::CREATED, Json(json!({ "agent": agent }))).into_response())
}

/// The agent an admin route names, in the caller's tenant.
async fn target(state: &AppState, caller: &Caller, id: String) -> ApiResult<AgentListing> {
    state
        .chat
        .store()
        .agent_listing(caller.tenant_id(), &AgentId::from_raw(id))
        .await?
        .ok_or(ApiError::NotFound("agent"))
}

/// Ends every session of an agent, closing its sockets at once.
async fn end_sessions(state: &AppState, agent: &AgentListing) -> ApiResult<()> {
    let a = &agent.agent;
    let ended = state
        .chat
        .store()
        .end_agent_sessions(&a.tenant_id, &a.id)
        .await?;
    for hash in ended {
        // No socket listening is fine: then there is nothing to close.
        let _ = state.ended_sessions.send(hash);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRequest {
    role: String,
}

async fn change_role(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<RoleRequest>,
) -> ApiResult<Json<AgentListing>> {
    let role = tenant_role(&req.role)?;
    let found = target(&state, &caller, id).await?;
    let action = "agent.role_change";
    let id = found.agent.id.as_str();
    let owners_involved = role == Role::Owner || found.agent.role == Role::Owner;
    if owners_involved && !caller.agent.role.has(Permission::OwnersManage) {
        return Err(denied(&state, &source, &caller, action, id, OWNERS_ONLY).await);
    }
    let work = async {
        let store = state.chat.store();
        store
            .set_agent_role(caller.tenant_id(), &found.agent.id, role)
            .await?;
        end_sessions(&state, &found).await
    };
    audited(&state, &source, &caller, action, id, work).await?;
    tracing::info!(agent = %id, role = role.as_str(), "role changed");
    Ok(Json(target(&state, &caller, id.to_owned()).await?))
}

async fn deactivate(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentListing>> {
    set_active(&state, &source, &caller, id, false).await
}

async fn reactivate(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentListing>> {
    set_active(&state, &source, &caller, id, true).await
}

async fn set_active(
    state: &AppState,
    source: &Source,
    caller: &Caller,
    id: String,
    active: bool,
) -> ApiResult<Json<AgentListing>> {
    let found = target(state, caller, id).await?;
    let action = if active {
        "agent.reactivate"
    } else {
        "agent.deactivate"
    };
    let id = found.agent.id.as_str();
    if found.agent.role == Role::Owner && !caller.agent.role.has(Permission::OwnersManage) {
        return Err(denied(state, source, caller, action, id, OWNERS_ONLY).await);
    }
    let work = async {
        let store = state.chat.store();
        store
            .set_agent_active(caller.tenant_id(), &found.agent.id, active)
            .await?;
        if active {
            Ok(())
        } else {
            end_sessions(state, &found).await
        }
    };
    audited(state, source, caller, action, id, work).await?;
    tracing::info!(agent = %id, active, "agent activity changed");
    Ok(Json(target(state, caller, id.to_owned()).await?))
}
