//! `/v1/agent/`: the agent console's API. Login sets a server-side session
//! in a Secure, HttpOnly, SameSite=Strict cookie; every other route declares
//! the permission it needs and takes the [`AgentAuth`] the access layer made.

use super::{Page, SendBody, send_message};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, Caller, SESSION_COOKIE, StrictJson, StrictQuery};
use crate::middleware::ConnInfo;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_identity::{random_token, sha256_hex};
use palisade_model::Permission;
use palisade_model::{Agent, ConversationId, ConversationStatus, Email, now_millis};
use palisade_store::{SessionRecord, SessionStage};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub fn table() -> Vec<Route> {
    use Permission::{ConversationsRead as Read, ConversationsWrite as Write};
    let conversation = "/v1/agent/conversations/{id}";
    vec![
        route(Method::POST, "/v1/agent/login", Access::Public, post(login)),
        route(
            Method::POST,
            "/v1/agent/logout",
            Access::SignedIn,
            post(logout),
        ),
        route(Method::GET, "/v1/agent/me", Access::SignedIn, get(me)),
        route(
            Method::POST,
            "/v1/agent/sessions/end-all",
            Access::SignedIn,
            post(sign_out_everywhere),
        ),
        route(
            Method::GET,
            "/v1/agent/conversations",
            Access::Needs(Read),
            get(inbox),
        ),
        route(
            Method::GET,
            conversation,
            Access::Needs(Read),
            get(conversation_by_id),
        ),
        route(
            Method::GET,
            "/v1/agent/conversations/{id}/visitor",
            Access::Needs(Read),
            get(visitor_details),
        ),
        route(
            Method::GET,
            "/v1/agent/canned-responses",
            Access::Needs(Read),
            get(canned_responses),
        ),
        route(
            Method::GET,
            "/v1/agent/conversations/{id}/notes",
            Access::Needs(Read),
            get(notes),
        ),
        route(
            Method::POST,
            "/v1/agent/conversations/{id}/notes",
            Access::Needs(Write),
            post(add_note),
        ),
        route(
            Method::GET,
            "/v1/agent/conversations/{id}/messages",
            Access::Needs(Read),
            get(history),
        ),
        route(
            Method::POST,
            "/v1/agent/conversations/{id}/messages",
            Access::Needs(Write),
            post(send),
        ),
        route(
            Method::POST,
            "/v1/agent/conversations/{id}/claim",
            Access::Needs(Write),
            post(claim),
        ),
        route(
            Method::POST,
            "/v1/agent/conversations/{id}/close",
            Access::Needs(Write),
            post(close),
        ),
        route(
            Method::POST,
            "/v1/agent/conversations/{id}/reopen",
            Access::Needs(Write),
            post(reopen),
        ),
        route(
            Method::GET,
            "/v1/agent/ws",
            Access::Needs(Read),
            get(crate::ws::agent_socket),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginRequest(..)")
    }
}

/// One answer for an unknown account, a wrong password and a deactivated
/// account, after the same amount of work: no account enumeration.
const LOGIN_FAILED: ApiError = ApiError::Unauthorized("email or password is wrong");

async fn login(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    source: Source,
    StrictJson(req): StrictJson<LoginRequest>,
) -> ApiResult<Response> {
    crate::middleware::limit_account(&state, req.email.trim())?;
    let address = conn.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.peer.ip());
    let account_key = req.email.trim().to_lowercase();
    if let Some(wait) = state.login_throttle.wait(&account_key, address) {
        return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
    }
    let email = Email::parse(&req.email).ok();
    let credentials = match &email {
        Some(email) => state.chat.store().agent_credentials(email).await?,
        None => None,
    };
    // The attempted address is recorded only when it is a valid address: a
    // password typed into the email field must not reach the log.
    let attempted = email
        .as_ref()
        .map_or("(not an email address)", Email::as_str);
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let password = req.password;
    let matched = state
        .password_work(move |hasher| hasher.verify(&password, stored.as_deref()))
        .await?;
    let Some(credentials) = credentials.filter(|c| matched && c.active) else {
        state.login_throttle.failed(&account_key, address);
        let failed = event(
            &source,
            (ActorKind::Anonymous, ""),
            None,
            "agent.login",
            attempted,
            Outcome::Failure,
        );
        record(&state, failed).await?;
        return Err(LOGIN_FAILED);
    };
    state.login_throttle.succeeded(&account_key);
    // Fail closed: no audit entry, no session.
    let agent = &credentials.agent;
    let signed_in = event(
        &source,
        (ActorKind::Agent, agent.id.as_str()),
        Some(agent.tenant_id.as_str()),
        "agent.login",
        attempted,
        Outcome::Success,
    );
    record(&state, signed_in).await?;

    let agent = credentials.agent;
    crate::middleware::note_tenant(agent.tenant_id.as_str());
    let store = state.chat.store();
    let has_mfa = store
        .mfa(&agent.tenant_id, &agent.id)
        .await?
        .is_some_and(|m| m.confirmed);
    let mfa_mandatory =
        agent.role.requires_mfa() || store.tenant_requires_agent_mfa(&agent.tenant_id).await?;
    let stage = match (has_mfa, mfa_mandatory) {
        (true, _) => SessionStage::Mfa,
        (false, true) => SessionStage::Enroll,
        (false, false) => SessionStage::Full,
    };
    tracing::info!(agent = %agent.id, tenant = %agent.tenant_id, stage = stage.as_str(), "password accepted");
    start_session(&state, agent, stage, None).await
}

/// Starts a new session (a new id: at sign-in and at every change of
/// privilege) and answers with its cookie, CSRF token and stage.
pub(super) async fn start_session(
    state: &AppState,
    agent: Agent,
    stage: SessionStage,
    mfa_at: Option<i64>,
) -> ApiResult<Response> {
    let token = random_token(32);
    let now = now_millis();
    // A session still owing its second factor lives minutes, not hours.
    let lifetime = match stage {
        SessionStage::Full => state.settings.session_absolute,
        SessionStage::Mfa => std::time::Duration::from_secs(5 * 60),
        SessionStage::Enroll => std::time::Duration::from_secs(15 * 60),
    };
    let absolute = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let session = SessionRecord {
        tenant_id: agent.tenant_id.clone(),
        agent_id: agent.id.clone(),
        csrf_token: random_token(24).expose().to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(absolute),
        stage,
        mfa_at,
    };
    state
        .chat
        .store()
        .create_session(&sha256_hex(token.expose()), &session)
        .await?;
    let max_age = lifetime.as_secs();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        token.expose()
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    // The account's details wait until the second factor is proved.
    let body = match stage {
        SessionStage::Mfa => json!({"csrf_token": session.csrf_token, "stage": stage.as_str()}),
        _ => json!({"agent": agent, "csrf_token": session.csrf_token, "stage": stage.as_str()}),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Replaces the caller's session with a new one (new id) at `stage`.
pub(super) async fn rotate_session(
    state: &AppState,
    auth: &AgentAuth,
    stage: SessionStage,
    mfa_at: Option<i64>,
) -> ApiResult<Response> {
    state.chat.store().delete_session(&auth.token_hash).await?;
    let _ = state.ended_sessions.send(auth.token_hash.clone());
    start_session(state, auth.agent.clone(), stage, mfa_at).await
}

async fn logout(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
) -> ApiResult<Response> {
    // Signing out is never refused for want of an audit entry: the entry is
    // written after the session is gone, and a failure to write it is logged.
    state.chat.store().delete_session(&auth.token_hash).await?;
    let agent = &auth.agent;
    let signed_out = event(
        &source,
        (ActorKind::Agent, agent.id.as_str()),
        Some(agent.tenant_id.as_str()),
        "agent.logout",
        agent.id.as_str(),
        Outcome::Success,
    );
    record_after(&state, signed_out).await;
    // No socket listening is fine: then there is nothing to close.
    let _ = state.ended_sessions.send(auth.token_hash.clone());
    let expired =
        format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    let cookie = HeaderValue::from_str(&expired).map_err(ApiError::internal)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

async fn me(auth: AgentAuth) -> Json<serde_json::Value> {
    Json(json!({
        "agent": auth.agent,
        "csrf_token": auth.session.csrf_token,
        "stage": auth.session.stage.as_str(),
    }))
}

/// Ends every session of the caller, on every device, and their sockets.
async fn sign_out_everywhere(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
) -> ApiResult<Response> {
    // A password-only session (second factor not yet set up) may not end
    // the sessions of someone who has proved it.
    if auth.session.stage != SessionStage::Full {
        return Err(ApiError::EnrollmentRequired);
    }
    let agent = &auth.agent;
    let entry = event(
        &source,
        (ActorKind::Agent, agent.id.as_str()),
        Some(agent.tenant_id.as_str()),
        "agent.sign_out_everywhere",
        agent.id.as_str(),
        Outcome::Started,
    );
    record(&state, entry).await?;
    let ended = state
        .chat
        .store()
        .end_agent_sessions(&auth.agent.tenant_id, &auth.agent.id)
        .await?;
    for hash in ended {
        let _ = state.ended_sessions.send(hash);
    }
    tracing::info!(agent = %auth.agent.id, "signed out everywhere");
    let expired =
        format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    let cookie = HeaderValue::from_str(&expired).map_err(ApiError::internal)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn inbox(
    State(state): State<AppState>,
    auth: Caller,
    StrictQuery(query): StrictQuery<InboxQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let status = match query.status.as_deref() {
        None | Some("all") => None,
        Some(raw) => Some(ConversationStatus::parse(raw).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "status must be open, assigned, closed or all",
            )
        })?),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 500",
        ));
    }
    let conversations = state
        .chat
        .inbox(&auth.agent.tenant_id, status, limit)
        .await?;
    Ok(Json(json!({ "conversations": conversations })))
}

async fn conversation_by_id(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, conversation) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(conversation).into_response())
}

/// The side panel: who the conversation's visitor is.
async fn visitor_details(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, conversation) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    let details = state
        .chat
        .store()
        .visitor_details(&auth.agent.tenant_id, &conversation.visitor_id)
        .await?
        .ok_or(ApiError::NotFound("visitor"))?;
    Ok(Json(details).into_response())
}

async fn canned_responses(
    State(state): State<AppState>,
    auth: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    let store = state.chat.store();
    let canned = store.canned_responses(&auth.agent.tenant_id).await?;
    Ok(Json(json!({ "canned_responses": canned })))
}

async fn notes(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    let notes = state.chat.notes(&access).await?;
    Ok(Json(json!({ "notes": notes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    body: String,
}

async fn add_note(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
    StrictJson(req): StrictJson<NoteRequest>,
) -> ApiResult<Response> {
    let body = palisade_model::MessageBody::parse(&req.body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    let note = state.chat.add_note(&access, &body).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

async fn history(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
    StrictQuery(page): StrictQuery<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    let (after, limit) = page.checked()?;
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    let messages = state.chat.history(&access, after, limit).await?;
    Ok(Json(json!({ "messages": messages })))
}

async fn send(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<SendBody>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    send_message(&state, &access, body).await
}

async fn claim(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(state.chat.claim(&access).await?).into_response())
}

async fn reopen(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(state.chat.reopen(&access).await?).into_response())
}

async fn close(
    State(state): State<AppState>,
    auth: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(state.chat.close(&access).await?).into_response())
}
