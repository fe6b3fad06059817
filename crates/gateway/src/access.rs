//! Who may call which route: one mechanism for every route.
//!
//! Each route is declared in a table with its [`Access`]; the router is
//! built from those tables only, and every route gets the [`authorize`]
//! layer for its declaration. The layer authenticates the caller the way the
//! declaration says, checks the role's permission, and leaves the caller in
//! the request's extensions, where the [`crate::extract::AgentAuth`] and
//! [`crate::extract::VisitorAuth`] extractors find it. A handler whose route
//! declared nothing finds nobody there and refuses (fail closed).

use crate::AppState;
use crate::audit::{Source, event, record_after};
use crate::error::ApiError;
use crate::extract::{AgentAuth, CSRF_HEADER, Caller, SESSION_COOKIE, VisitorAuth, cookie_value};
use crate::middleware::{ConnInfo, limit_caller};
use crate::partner::PartnerAuth;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use palisade_audit::{ActorKind, Outcome};
use palisade_chat::Actor;
use palisade_identity::{constant_time_eq, sha256_hex};
use palisade_model::{Permission, now_millis};
use palisade_store::SessionStage;

/// What a route needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (static assets, login, a widget key buying a visitor session).
    Public,
    /// A visitor's signed bearer token.
    Visitor,
    /// A session whose password was accepted and whose second factor is
    /// still to come: only the step that takes the code.
    MfaPending,
    /// Any signed-in account, whatever its role, also while it still has
    /// to set up a mandatory second factor (profile, sign-out, enrolment).
    SignedIn,
    /// A fully signed-in account whose role has this permission.
    Needs(Permission),
    /// As `Needs`, and the session proved its second factor within the
    /// last [`STEP_UP_WINDOW_MS`]: for sensitive operations.
    StepUp(Permission),
    /// A partner's back-end, by the client certificate its connection
    /// presented (verified by the listener, then looked up: recorded, not
    /// revoked, naming the tenant it was issued for). The `/s2s/v1/`
    /// family only; no other access accepts a certificate.
    Partner,
}

/// How recent a second-factor proof must be for a step-up route.
pub const STEP_UP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// One route: its method, path and access, and the handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.method, self.path, self.access)
    }
}

pub fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Authenticates and authorises one request as its route declared.
pub async fn authorize(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match access {
        Access::Public => {}
        Access::Visitor => {
            let token = bearer(req.headers()).ok_or(ApiError::Unauthorized(
                "a visitor token is required (Authorization: Bearer)",
            ))?;
            let actor = state.visitor_actor(token)?;
            if let Actor::Visitor {
                tenant_id,
                visitor_id,
                ..
            } = &actor
            {
                limit_caller(&state, tenant_id.as_str(), visitor_id.as_str())?;
            }
            req.extensions_mut().insert(VisitorAuth(actor));
        }
        Access::Partner => {
            let conn = req.extensions().get::<ConnInfo>().cloned();
            let partner = authenticate_partner(&state, conn).await?;
            limit_caller(&state, partner.tenant_id.as_str(), &partner.serial)?;
            req.extensions_mut().insert(partner);
        }
        Access::MfaPending | Access::SignedIn | Access::Needs(_) | Access::StepUp(_) => {
            if req.headers().contains_key(header::AUTHORIZATION) {
                let caller = authenticate_key(&state, access, req.headers()).await?;
                req.extensions_mut().insert(caller);
                return Ok(next.run(req).await);
            }
            let auth = authenticate_agent(&state, req.method(), req.headers()).await?;
            check_stage(access, &auth)?;
            if let Access::Needs(permission) | Access::StepUp(permission) = access
                && !auth.agent.role.has(permission)
            {
                return Err(ApiError::Forbidden("your role does not allow this"));
            }
            if let Access::StepUp(_) = access {
                let proved = auth.session.mfa_at;
                if proved.is_none_or(|at| now_millis() - at > STEP_UP_WINDOW_MS) {
                    return Err(ApiError::StepUpRequired);
                }
            }
            req.extensions_mut().insert(Caller {
                agent: auth.agent.clone(),
                api_key: None,
            });
            req.extensions_mut().insert(auth);
        }
    }
    Ok(next.run(req).await)
}

/// The partner behind the connection's client certificate. A certificate
/// the listener accepted but the records do not (unknown, revoked since the
/// handshake, another identity) is refused and the refusal audited.
async fn authenticate_partner(
    state: &AppState,
    conn: Option<ConnInfo>,
) -> Result<PartnerAuth, ApiError> {
    let Some(cert) = conn.as_ref().and_then(|c| c.client_cert.clone()) else {
        return Err(ApiError::Unauthorized(
            "a partner client certificate is required (mutual TLS); see docs/S2S.md",
        ));
    };
    let record = state.chat.store().partner_cert(&cert.serial).await?;
    let identity = &cert.identity;
    let valid = record.as_ref().is_some_and(|r| {
        r.revoked_at.is_none()
            && r.tenant_id == identity.tenant_id()
            && r.partner == identity.partner()
            && r.not_after > now_millis()
    });
    if !valid {
        let source = Source(
            conn.as_ref()
                .map_or_else(|| "unknown".into(), |c| c.peer.to_string()),
        );
        let reason = match &record {
            None => "unknown certificate",
            Some(r) if r.revoked_at.is_some() => "revoked certificate",
            Some(_) => "certificate not valid for its identity",
        };
        let target = format!("serial {}: {reason}", cert.serial);
        let refused = event(
            &source,
            (ActorKind::Partner, cert.serial.as_str()),
            Some(identity.tenant_id()),
            "partner.refused",
            &target,
            Outcome::Denied,
        );
        record_after(state, refused).await;
        // A connection that slipped in between a revocation and the new CRL ends here.
        if record.is_some_and(|r| r.revoked_at.is_some()) {
            state.partners.live.close_serial(&cert.serial);
        }
        return Err(ApiError::Unauthorized(
            "this client certificate is revoked or unknown",
        ));
    }
    Ok(PartnerAuth {
        tenant_id: palisade_model::TenantId::from_raw(identity.tenant_id()),
        partner: identity.partner().to_owned(),
        serial: cert.serial.clone(),
    })
}

/// A session's sign-in stage must fit the route.
fn check_stage(access: Access, auth: &AgentAuth) -> Result<(), ApiError> {
    match (auth.session.stage, access) {
        (SessionStage::Mfa, Access::MfaPending) => Ok(()),
        (SessionStage::Mfa, _) => Err(ApiError::MfaRequired),
        (_, Access::MfaPending) => Err(ApiError::Forbidden("this session needs no code now")),
        (SessionStage::Enroll, Access::SignedIn) => Ok(()),
        (SessionStage::Enroll, _) => Err(ApiError::EnrollmentRequired),
        (SessionStage::Full, _) => Ok(()),
    }
}

/// How every API key token starts, so a leaked one is easy to recognise.
pub const API_KEY_PREFIX: &str = "plk_";

/// An API key caller of a `Needs` route whose permission the key holds.
/// Keys never open step-up, signed-in or second-factor routes, nor
/// WebSockets, and a request carrying a session cookie too is refused.
async fn authenticate_key(
    state: &AppState,
    access: Access,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    const BAD_KEY: ApiError = ApiError::Unauthorized("the API key is invalid, expired or revoked");
    if cookie_value(headers, SESSION_COOKIE).is_some() {
        return Err(ApiError::bad_request(
            "ambiguous_credentials",
            "send a session cookie or an API key, not both",
        ));
    }
    let Access::Needs(permission) = access else {
        return Err(ApiError::Unauthorized(
            "this route takes a signed-in session, not an API key",
        ));
    };
    if headers.contains_key(header::UPGRADE) {
        return Err(ApiError::Unauthorized(
            "WebSockets take a session, not an API key",
        ));
    }
    let token = bearer(headers)
        .filter(|t| t.starts_with(API_KEY_PREFIX))
        .ok_or(BAD_KEY)?;
    let token_hash = sha256_hex(token);
    let store = state.chat.store();
    let grant = store.api_key_grant(&token_hash).await?.ok_or(BAD_KEY)?;
    limit_caller(state, grant.tenant_id.as_str(), &token_hash)?;
    // A key dies with its creator's account, and never holds more than
    // the creator's role has now.
    let agent = store
        .agent(&grant.tenant_id, &grant.created_by)
        .await?
        .ok_or(BAD_KEY)?;
    if !grant.permissions.contains(&permission) || !agent.role.has(permission) {
        return Err(ApiError::Forbidden(
            "this API key does not hold the permission",
        ));
    }
    let now = now_millis();
    // Noting the use once a minute bounds the writes a busy key causes.
    if grant.last_used_at.is_none_or(|at| now - at > 60_000) {
        store
            .touch_api_key(&grant.tenant_id, &grant.id, now)
            .await?;
    }
    crate::middleware::note_tenant(grant.tenant_id.as_str());
    Ok(Caller {
        agent,
        api_key: Some(grant.id),
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The signed-in agent behind the session cookie. For any method but GET
/// and HEAD the CSRF header must match the session's token.
async fn authenticate_agent(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<AgentAuth, ApiError> {
    const NO_SESSION: ApiError = ApiError::Unauthorized("sign in first");
    let token = cookie_value(headers, SESSION_COOKIE).ok_or(NO_SESSION)?;
    let token_hash = sha256_hex(token);
    let store = state.chat.store();
    let session = store.session(&token_hash).await?.ok_or(NO_SESSION)?;
    limit_caller(state, session.tenant_id.as_str(), &token_hash)?;
    let now = now_millis();
    let idle = i64::try_from(state.settings.session_idle.as_millis()).unwrap_or(i64::MAX);
    if now >= session.expires_at || now >= session.last_seen_at.saturating_add(idle) {
        store.delete_session(&token_hash).await?;
        return Err(ApiError::Unauthorized("session expired; sign in again"));
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        let sent = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !constant_time_eq(sent, session.csrf_token.as_bytes()) {
            return Err(ApiError::Forbidden("missing or wrong x-csrf-token header"));
        }
    }
    let agent = store
        .agent(&session.tenant_id, &session.agent_id)
        .await?
        .ok_or(NO_SESSION)?;
    // Recording activity once a minute is enough for the idle time-out.
    if now - session.last_seen_at > 60_000 {
        store.touch_session(&token_hash, now).await?;
    }
    Ok(AgentAuth {
        agent,
        session,
        token_hash,
    })
}
