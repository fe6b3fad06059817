//! `/v1/visitor/`: what the widget calls. A widget key buys a signed visitor
//! session; the session's bearer token opens the visitor's own
//! conversations and nothing else.

use super::settings;
use super::{Page, SendBody, send_message};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::Source;
use crate::error::{ApiError, ApiResult};
use crate::extract::{StrictJson, StrictQuery, VisitorAuth};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_chat::Actor;
use palisade_identity::{MAX_USER_ID_BYTES, VisitorClaims, verify_user_hash};
use palisade_model::{
    ConversationId, DisplayName, Email, FieldRule, PageUrl, TenantId, Widget, browser_label,
    now_millis,
};
use serde::Deserialize;
use serde_json::json;

pub fn table() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/v1/visitor/sessions",
            Access::Public,
            post(create_session),
        ),
        route(
            Method::GET,
            "/v1/visitor/widgets/{key}",
            Access::Public,
            get(widget_settings),
        ),
        route(
            Method::POST,
            "/v1/visitor/contact",
            Access::Visitor,
            post(leave_contact),
        ),
        route(
            Method::GET,
            "/v1/visitor/conversations",
            Access::Visitor,
            get(list_conversations),
        ),
        route(
            Method::POST,
            "/v1/visitor/conversations",
            Access::Visitor,
            post(open_conversation),
        ),
        route(
            Method::GET,
            "/v1/visitor/conversations/{id}/messages",
            Access::Visitor,
            get(history),
        ),
        route(
            Method::POST,
            "/v1/visitor/conversations/{id}/messages",
            Access::Visitor,
            post(send),
        ),
        route(
            Method::GET,
            "/v1/visitor/ws",
            Access::Public,
            get(crate::ws::visitor_socket),
        ),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    widget_key: String,
    name: Option<String>,
    email: Option<String>,
    resume_token: Option<String>,
    /// The tenant's id for this visitor, with `user_hash`, its signature.
    user_id: Option<String>,
    user_hash: Option<String>,
    /// The host page the widget runs on (query and fragment are dropped).
    page_url: Option<String>,
}

async fn create_session(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    StrictJson(req): StrictJson<SessionRequest>,
) -> ApiResult<Response> {
    let widget = state
        .chat
        .store()
        .widget_by_public_key(&req.widget_key)
        .await?
        .ok_or(ApiError::NotFound("widget"))?;
    let tenant = widget.tenant_id.as_str();
    crate::middleware::limit_tenant(&state, crate::limits::Class::Session, tenant)?;

    if req.resume_token.is_some() && (req.name.is_some() || req.email.is_some()) {
        let message = "send either resume_token or name and email, not both";
        return Err(ApiError::bad_request("conflicting_fields", message));
    }
    let page = req
        .page_url
        .as_deref()
        .map(PageUrl::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_page_url", e.to_string()))?;
    let verified = verified_user(&state, &source, &widget.tenant_id, &req).await?;
    let resumed = match &req.resume_token {
        Some(token) => match state.visitor_actor(token)? {
            Actor::Visitor {
                tenant_id,
                visitor_id,
                ..
            } if tenant_id == widget.tenant_id => Some(visitor_id),
            _ => {
                return Err(ApiError::Unauthorized(
                    "resume_token belongs to another widget",
                ));
            }
        },
        None => None,
    };
    let visitor_id = match resumed {
        Some(id) => id,
        None => {
            let prechat = widget.settings.prechat;
            required("name", prechat.name, req.name.as_deref())?;
            required("email", prechat.email, req.email.as_deref())?;
            let name = req
                .name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(DisplayName::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
            let email = req
                .email
                .as_deref()
                .filter(|e| !e.trim().is_empty())
                .map(Email::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
            let store = state.chat.store();
            store
                .create_visitor(
                    &widget.tenant_id,
                    &widget.id,
                    name.as_ref().map(DisplayName::as_str),
                    email.as_ref(),
                )
                .await?
        }
    };

    let browser = headers
        .get(header::USER_AGENT)
        .and_then(|ua| browser_label(ua.as_bytes()));
    if page.is_some() || browser.is_some() {
        let store = state.chat.store();
        store
            .set_visitor_context(
                &widget.tenant_id,
                &visitor_id,
                page.as_ref().map(PageUrl::as_str),
                browser.as_deref(),
            )
            .await?;
    }
    if let Some(user_id) = &verified {
        let store = state.chat.store();
        store
            .set_visitor_verified_user(&widget.tenant_id, &visitor_id, user_id)
            .await?;
    }
    let ttl = i64::try_from(state.settings.visitor_token_ttl.as_millis()).unwrap_or(i64::MAX);
    let claims = VisitorClaims {
        tenant_id: widget.tenant_id.clone(),
        widget_id: widget.id.clone(),
        visitor_id: visitor_id.clone(),
        expires_at: now_millis().saturating_add(ttl),
    };
    let token = state.visitor_tokens.issue(&claims);
    let body = json!({
        "token": token,
        "visitor_id": visitor_id,
        "expires_at": claims.expires_at,
        "verified_user_id": verified,
        "widget": public_view(&widget),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Refuses a new visitor who left out a field the widget's pre-chat form
/// requires.
fn required(field: &'static str, rule: FieldRule, value: Option<&str>) -> ApiResult<()> {
    let missing = value.is_none_or(|v| v.trim().is_empty());
    if rule == FieldRule::Required && missing {
        let message = format!("this widget requires the visitor's {field} to start a chat");
        return Err(ApiError::bad_request("prechat_required", message));
    }
    Ok(())
}

/// What the widget shows: its settings and whether someone is there now.
/// Nothing here is secret; the widget key is public.
fn public_view(widget: &Widget) -> serde_json::Value {
    let settings = &widget.settings;
    json!({
        "name": widget.name,
        "greeting": widget.greeting,
        "theme_color": settings.theme_color,
        "position": settings.position,
        "prechat": settings.prechat,
        "hours": settings.hours,
        "away_message": settings.away_message,
        "open_now": settings.is_open_at(now_millis()),
    })
}

async fn widget_settings(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let widget = state
        .chat
        .store()
        .widget_by_public_key(&key)
        .await?
        .ok_or(ApiError::NotFound("widget"))?;
    crate::middleware::limit_tenant(
        &state,
        crate::limits::Class::Read,
        widget.tenant_id.as_str(),
    )?;
    Ok(Json(public_view(&widget)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactRequest {
    email: String,
}

/// The email a visitor leaves (outside business hours, say) so agents can
/// answer later. Kept on the visitor, sealed like the rest of their details.
async fn leave_contact(
    State(state): State<AppState>,
    VisitorAuth(actor): VisitorAuth,
    StrictJson(req): StrictJson<ContactRequest>,
) -> ApiResult<StatusCode> {
    let Actor::Visitor {
        tenant_id,
        visitor_id,
        ..
    } = &actor
    else {
        return Err(ApiError::Unauthorized("a visitor token is required"));
    };
    let email = Email::parse(&req.email)
        .map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    state
        .chat
        .store()
        .set_visitor_email(tenant_id, visitor_id, &email)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user id the tenant vouches for, when the request carries one with a
/// matching signature. A wrong signature is always refused; a missing one
/// only when the tenant requires verification.
async fn verified_user(
    state: &AppState,
    source: &Source,
    tenant: &TenantId,
    req: &SessionRequest,
) -> ApiResult<Option<String>> {
    let store = state.chat.store();
    let required = store
        .tenant_settings(tenant)
        .await?
        .identity_verification_required;
    let (user_id, user_hash) = match (&req.user_id, &req.user_hash) {
        (None, None) if required => {
            return Err(ApiError::IdentityRejected(
                "this site requires a verified visitor: send user_id and user_hash",
            ));
        }
        (None, None) => return Ok(None),
        (Some(id), Some(hash)) => (id, hash),
        _ => {
            let message = "send user_id and user_hash together";
            return Err(ApiError::bad_request("incomplete_identity", message));
        }
    };
    let well_formed = !user_id.is_empty()
        && user_id.len() <= MAX_USER_ID_BYTES
        && !user_id.chars().any(char::is_control);
    if !well_formed {
        let message =
            format!("user_id must be 1 to {MAX_USER_ID_BYTES} bytes without control characters");
        return Err(ApiError::bad_request("invalid_user_id", message));
    }
    let secret = settings::identity_secret(state, source, tenant)
        .await?
        .ok_or(ApiError::IdentityRejected(
            "this site has no identity secret, so user_hash cannot be checked",
        ))?;
    if !verify_user_hash(secret.expose(), user_id, user_hash) {
        return Err(ApiError::IdentityRejected(
            "user_hash is not the signature of user_id under this site's identity secret",
        ));
    }
    Ok(Some(user_id.clone()))
}

async fn list_conversations(
    State(state): State<AppState>,
    VisitorAuth(actor): VisitorAuth,
) -> ApiResult<Json<serde_json::Value>> {
    let Actor::Visitor {
        tenant_id,
        visitor_id,
        ..
    } = &actor
    else {
        return Err(ApiError::Unauthorized("a visitor token is required"));
    };
    let conversations = state
        .chat
        .store()
        .visitor_conversations(tenant_id, visitor_id)
        .await?;
    Ok(Json(json!({ "conversations": conversations })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenRequest {}

async fn open_conversation(
    State(state): State<AppState>,
    VisitorAuth(actor): VisitorAuth,
    StrictJson(OpenRequest {}): StrictJson<OpenRequest>,
) -> ApiResult<Response> {
    let conversation = state.chat.open_conversation(&actor).await?;
    Ok((StatusCode::CREATED, Json(conversation)).into_response())
}

async fn history(
    State(state): State<AppState>,
    VisitorAuth(actor): VisitorAuth,
    Path(id): Path<String>,
    StrictQuery(page): StrictQuery<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    let (after, limit) = page.checked()?;
    let (access, _) = state
        .chat
        .authorize(&actor, &ConversationId::from_raw(id))
        .await?;
    let messages = state.chat.history(&access, after, limit).await?;
    Ok(Json(json!({ "messages": messages })))
}

async fn send(
    State(state): State<AppState>,
    VisitorAuth(actor): VisitorAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<SendBody>,
) -> ApiResult<Response> {
    let (access, _) = state
        .chat
        .authorize(&actor, &ConversationId::from_raw(id))
        .await?;
    send_message(&state, &access, body).await
}
