//! `/v1/agent/login/mfa` and `/v1/agent/mfa/*`: the second factor.
//!
//! Enrolment shows a secret and its QR code, takes one code to confirm, and
//! answers with ten recovery codes shown once. Sign-in with a second factor
//! takes a code (or a recovery code) and starts a new session. Step-up
//! marks the current session as having proved the factor just now, which
//! routes declared `StepUp` require. A code is accepted once; each success
//! at sign-in or enrolment gives the session a new id.

use super::agent::{rotate_session, start_session};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, StrictJson};
use crate::middleware::ConnInfo;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use palisade_audit::{ActorKind, Outcome};
use palisade_identity::{Totp, qr_svg, recovery_code_hash, recovery_codes};
use palisade_model::now_millis;
use palisade_store::SessionStage;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub fn table() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/v1/agent/login/mfa",
            Access::MfaPending,
            post(login_mfa),
        ),
        route(
            Method::POST,
            "/v1/agent/mfa/enroll",
            Access::SignedIn,
            post(enroll),
        ),
        route(
            Method::POST,
            "/v1/agent/mfa/confirm",
            Access::SignedIn,
            post(confirm),
        ),
        route(
            Method::POST,
            "/v1/agent/mfa/step-up",
            Access::SignedIn,
            post(step_up),
        ),
    ]
}

const BAD_CODE: ApiError = ApiError::Unauthorized("the code is wrong, expired or already used");

/// A code from the app, or (at sign-in only) a recovery code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

impl std::fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeRequest(..)")
    }
}

/// Records a second-factor event of the caller before it takes effect
/// (fail closed), or a refusal after it.
async fn audit(
    state: &AppState,
    source: &Source,
    auth: &AgentAuth,
    action: &'static str,
    outcome: Outcome,
) -> ApiResult<()> {
    let agent = &auth.agent;
    let entry = event(
        source,
        (ActorKind::Agent, agent.id.as_str()),
        Some(agent.tenant_id.as_str()),
        action,
        agent.id.as_str(),
        outcome,
    );
    record(state, entry).await
}

fn unix_seconds() -> u64 {
    u64::try_from(now_millis() / 1000).unwrap_or(0)
}

/// The throttle key of an account's second-factor guesses.
fn guess_key(auth: &AgentAuth) -> String {
    format!("mfa:{}", auth.agent.id)
}

/// Refuses with 429 while the account must wait after wrong codes. Guesses
/// are throttled per account, whatever address or session they come from.
fn check_guesses(state: &AppState, auth: &AgentAuth, address: IpAddr) -> ApiResult<()> {
    match state.login_throttle.wait(&guess_key(auth), address) {
        Some(wait) => Err(ApiError::TooManyRequests(wait.as_secs().max(1))),
        None => Ok(()),
    }
}

/// Counts a wrong code; when the account starts having to wait, that is an
/// alert (someone may be guessing).
fn wrong_guess(state: &AppState, auth: &AgentAuth, address: IpAddr) {
    let key = guess_key(auth);
    state.login_throttle.failed(&key, address);
    if state.login_throttle.wait(&key, address).is_some() {
        tracing::warn!(target: "palisade::alert", alert = "mfa_guessing", agent = %auth.agent.id,
            "repeated wrong second-factor codes; the account now has to wait between tries");
    }
}

fn peer(conn: Option<Extension<ConnInfo>>) -> IpAddr {
    conn.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.peer.ip())
}

/// Checks a code against the account's confirmed factor and spends it.
async fn spend_code(state: &AppState, auth: &AgentAuth, code: &str) -> ApiResult<()> {
    let store = state.chat.store();
    let (tenant, agent) = (&auth.agent.tenant_id, &auth.agent.id);
    let record = store
        .mfa(tenant, agent)
        .await?
        .filter(|m| m.confirmed)
        .ok_or(BAD_CODE)?;
    let totp = Totp::from_base32(&record.secret).map_err(ApiError::internal)?;
    let last = u64::try_from(record.last_step).unwrap_or(0);
    let step = totp.verify(code, unix_seconds(), last).ok_or(BAD_CODE)?;
    let step = i64::try_from(step).map_err(ApiError::internal)?;
    if !store.use_mfa_step(tenant, agent, step).await? {
        return Err(BAD_CODE);
    }
    Ok(())
}

async fn login_mfa(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    source: Source,
    auth: AgentAuth,
    StrictJson(req): StrictJson<CodeRequest>,
) -> ApiResult<Response> {
    let address = peer(conn);
    check_guesses(&state, &auth, address)?;
    let verified = match (req.code.as_deref(), req.recovery_code.as_deref()) {
        (Some(code), None) => spend_code(&state, &auth, code).await.map(|()| "mfa.login"),
        (None, Some(recovery)) => {
            let store = state.chat.store();
            let hash = recovery_code_hash(recovery);
            match store
                .use_recovery_code(&auth.agent.tenant_id, &auth.agent.id, &hash)
                .await?
            {
                true => Ok("mfa.login.recovery_code"),
                false => Err(BAD_CODE),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "send either code or recovery_code",
            ));
        }
    };
    let action = match verified {
        Ok(action) => action,
        Err(err) => {
            wrong_guess(&state, &auth, address);
            audit(&state, &source, &auth, "mfa.login", Outcome::Failure).await?;
            return Err(err);
        }
    };
    state.login_throttle.succeeded(&guess_key(&auth));
    // Fail closed: no audit entry, no session.
    audit(&state, &source, &auth, action, Outcome::Success).await?;
    tracing::info!(agent = %auth.agent.id, "second factor accepted");
    rotate_session(&state, &auth, SessionStage::Full, Some(now_millis())).await
}

async fn enroll(
    State(state): State<AppState>,
    source: Source,
    auth: AgentAuth,
) -> ApiResult<Response> {
    audit(&state, &source, &auth, "mfa.enroll", Outcome::Started).await?;
    let store = state.chat.store();
    let totp = Totp::generate();
    let secret = totp.base32();
    if !store
        .begin_mfa(&auth.agent.tenant_id, &auth.agent.id, secret.expose())
        .await?
    {
        return Err(ApiError::Conflict("a second factor is already set up"));
    }
    let url = totp.otpauth_url("Palisade", auth.agent.email.as_str());
    let svg = qr_svg(url.expose()).map_err(ApiError::internal)?;
    let body = json!({
        "secret": secret.expose(),
        "otpauth_url": url.expose(),
        "qr_svg": svg,
    });
    Ok(Json(body).into_response())
}

async fn confirm(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    source: Source,
    auth: AgentAuth,
    StrictJson(req): StrictJson<CodeRequest>,
) -> ApiResult<Response> {
    let code = req
        .code
        .ok_or(ApiError::bad_request("missing_field", "code is required"))?;
    let address = peer(conn);
    check_guesses(&state, &auth, address)?;
    let store = state.chat.store();
    let (tenant, agent) = (&auth.agent.tenant_id, &auth.agent.id);
    let pending = store.mfa(tenant, agent).await?.filter(|m| !m.confirmed);
    let record = pending.ok_or(ApiError::Conflict(
        "start enrolment first (POST /v1/agent/mfa/enroll)",
    ))?;
    let totp = Totp::from_base32(&record.secret).map_err(ApiError::internal)?;
    let Some(step) = totp.verify(&code, unix_seconds(), 0) else {
        wrong_guess(&state, &auth, address);
        audit(&state, &source, &auth, "mfa.confirm", Outcome::Failure).await?;
        return Err(BAD_CODE);
    };
    let step = i64::try_from(step).map_err(ApiError::internal)?;
    // Fail closed: the factor is switched on only once that is on record.
    audit(&state, &source, &auth, "mfa.confirm", Outcome::Success).await?;
    let (codes, hashes) = recovery_codes();
    if !store.confirm_mfa(tenant, agent, step, &hashes).await? {
        return Err(BAD_CODE);
    }
    tracing::info!(agent = %agent, "second factor set up");
    // Every other session of the account began with the password alone:
    // none of them outlives the second factor's set-up.
    for hash in store.end_agent_sessions(tenant, agent).await? {
        let _ = state.ended_sessions.send(hash);
    }
    let mut response = start_session(
        &state,
        auth.agent.clone(),
        SessionStage::Full,
        Some(now_millis()),
    )
    .await?;
    // The recovery codes travel once, beside the new session.
    let shown: Vec<&str> = codes.iter().map(|c| c.expose()).collect();
    let session = response_json(&mut response).await?;
    let body = json!({"session": session, "recovery_codes": shown});
    let mut answer = Json(body).into_response();
    if let Some(cookie) = response.headers().get(axum::http::header::SET_COOKIE) {
        answer
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, cookie.clone());
    }
    Ok(answer)
}

async fn response_json(response: &mut Response) -> ApiResult<serde_json::Value> {
    let body = std::mem::take(response.body_mut());
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

async fn step_up(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    source: Source,
    auth: AgentAuth,
    StrictJson(req): StrictJson<CodeRequest>,
) -> ApiResult<Response> {
    if auth.session.stage != SessionStage::Full {
        return Err(ApiError::EnrollmentRequired);
    }
    let code = req
        .code
        .ok_or(ApiError::bad_request("missing_field", "code is required"))?;
    let address = peer(conn);
    check_guesses(&state, &auth, address)?;
    if let Err(err) = spend_code(&state, &auth, &code).await {
        wrong_guess(&state, &auth, address);
        audit(&state, &source, &auth, "mfa.step_up", Outcome::Failure).await?;
        return Err(err);
    }
    state.login_throttle.succeeded(&guess_key(&auth));
    audit(&state, &source, &auth, "mfa.step_up", Outcome::Success).await?;
    state
        .chat
        .store()
        .mark_session_mfa(&auth.token_hash, now_millis())
        .await?;
    Ok(Json(json!({"stepped_up": true})).into_response())
}
