//! `/v1/agent/`: the agent console's API. Login sets a server-side session
//! in a Secure, HttpOnly, SameSite=Strict cookie; every other route takes an
//! [`AgentAuth`], which also enforces the CSRF header on state changes.

use super::{Page, SendBody, send_message};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, SESSION_COOKIE, StrictJson, StrictQuery};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_identity::{random_token, sha256_hex};
use palisade_model::{ConversationId, ConversationStatus, Email, now_millis};
use palisade_store::SessionRecord;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/conversations", get(inbox))
        .route("/conversations/{id}", get(conversation))
        .route("/conversations/{id}/messages", get(history).post(send))
        .route("/conversations/{id}/claim", post(claim))
        .route("/conversations/{id}/close", post(close))
        .route("/ws", get(crate::ws::agent_socket))
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
    StrictJson(req): StrictJson<LoginRequest>,
) -> ApiResult<Response> {
    crate::middleware::limit_account(&state, req.email.trim())?;
    let credentials = match Email::parse(&req.email) {
        Ok(email) => state.chat.store().agent_credentials(&email).await?,
        Err(_) => None,
    };
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let password = req.password;
    let matched = state
        .password_work(move |hasher| hasher.verify(&password, stored.as_deref()))
        .await?;
    let Some(credentials) = credentials.filter(|c| matched && c.active) else {
        return Err(LOGIN_FAILED);
    };

    crate::middleware::note_tenant(credentials.agent.tenant_id.as_str());
    let token = random_token(32);
    let now = now_millis();
    let absolute = i64::try_from(state.settings.session_absolute.as_millis()).unwrap_or(i64::MAX);
    let session = SessionRecord {
        tenant_id: credentials.agent.tenant_id.clone(),
        agent_id: credentials.agent.id.clone(),
        csrf_token: random_token(24).expose().to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(absolute),
    };
    state
        .chat
        .store()
        .create_session(&sha256_hex(token.expose()), &session)
        .await?;
    tracing::info!(agent = %credentials.agent.id, tenant = %credentials.agent.tenant_id, "agent signed in");

    let max_age = state.settings.session_absolute.as_secs();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        token.expose()
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    let body = json!({"agent": credentials.agent, "csrf_token": session.csrf_token});
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn logout(State(state): State<AppState>, auth: AgentAuth) -> ApiResult<Response> {
    state.chat.store().delete_session(&auth.token_hash).await?;
    // No socket listening is fine: then there is nothing to close.
    let _ = state.ended_sessions.send(auth.token_hash.clone());
    let expired =
        format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    let cookie = HeaderValue::from_str(&expired).map_err(ApiError::internal)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

async fn me(auth: AgentAuth) -> Json<serde_json::Value> {
    Json(json!({"agent": auth.agent, "csrf_token": auth.session.csrf_token}))
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
    auth: AgentAuth,
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

async fn conversation(
    State(state): State<AppState>,
    auth: AgentAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, conversation) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(conversation).into_response())
}

async fn history(
    State(state): State<AppState>,
    auth: AgentAuth,
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
    auth: AgentAuth,
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
    auth: AgentAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(state.chat.claim(&access).await?).into_response())
}

async fn close(
    State(state): State<AppState>,
    auth: AgentAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&auth.actor(), &ConversationId::from_raw(id))
        .await?;
    Ok(Json(state.chat.close(&access).await?).into_response())
}
