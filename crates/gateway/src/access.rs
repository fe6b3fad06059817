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
use crate::error::ApiError;
use crate::extract::{AgentAuth, CSRF_HEADER, SESSION_COOKIE, VisitorAuth, cookie_value};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use palisade_identity::{constant_time_eq, sha256_hex};
use palisade_model::{Permission, now_millis};

/// What a route needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (static assets, login, a widget key buying a visitor session).
    Public,
    /// A visitor's signed bearer token.
    Visitor,
    /// Any signed-in account, whatever its role (its own profile, sign-out).
    SignedIn,
    /// A signed-in account whose role has this permission.
    Needs(Permission),
}

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
            req.extensions_mut().insert(VisitorAuth(actor));
        }
        Access::SignedIn | Access::Needs(_) => {
            let auth = authenticate_agent(&state, req.method(), req.headers()).await?;
            if let Access::Needs(permission) = access
                && !auth.agent.role.has(permission)
            {
                return Err(ApiError::Forbidden("your role does not allow this"));
            }
            req.extensions_mut().insert(auth);
        }
    }
    Ok(next.run(req).await)
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
