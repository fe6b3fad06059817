//! `/s2s/v1/`: the partner server-to-server API, reachable only over a
//! connection that presented a valid partner client certificate
//! ([`Access::Partner`]). The certificate names the tenant: every id a
//! partner sends is looked up in that tenant only, and one of another
//! tenant is "not found" (and the refusal audited with the serial).

use super::{Page, ack_json};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{StrictJson, StrictQuery};
use crate::partner::{IssueError, IssueRequest, PartnerAuth};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_chat::{Actor, ChatError, ConversationAccess, PartnerAuthor};
use palisade_model::{
    AgentId, ClientMsgId, Conversation, ConversationId, ConversationStatus, DisplayName,
    MessageBody, VisitorId,
};
use serde::Deserialize;
use serde_json::json;

pub fn table() -> Vec<Route> {
    let partner = |method, path, handler| route(method, path, Access::Partner, handler);
    vec![
        partner(Method::POST, "/s2s/v1/certificate/renew", post(renew)),
        partner(Method::GET, "/s2s/v1/conversations", get(list)),
        partner(Method::POST, "/s2s/v1/conversations", post(create)),
        partner(
            Method::GET,
            "/s2s/v1/conversations/{id}/messages",
            get(transcript),
        ),
        partner(
            Method::POST,
            "/s2s/v1/conversations/{id}/messages",
            post(send),
        ),
        partner(
            Method::POST,
            "/s2s/v1/conversations/{id}/close",
            post(close),
        ),
        partner(
            Method::POST,
            "/s2s/v1/conversations/{id}/assign",
            post(assign),
        ),
        partner(Method::GET, "/s2s/v1/visitors/{id}", get(visitor)),
        partner(Method::GET, "/s2s/v1/changes", get(changes)),
    ]
}

fn actor(partner: &PartnerAuth, author: PartnerAuthor) -> Actor {
    Actor::Partner {
        tenant_id: partner.tenant_id.clone(),
        partner: partner.partner.clone(),
        author,
    }
}

/// An audit event by the partner behind `partner`'s certificate.
pub(super) fn partner_event(
    source: &Source,
    partner: &PartnerAuth,
    action: &'static str,
    target: &str,
    outcome: Outcome,
) -> palisade_audit::Event {
    event(
        source,
        (ActorKind::Partner, partner.serial.as_str()),
        Some(partner.tenant_id.as_str()),
        action,
        target,
        outcome,
    )
}

/// The conversation, if it is the partner's tenant's; otherwise "not found",
/// with the refusal on record.
async fn authorize(
    state: &AppState,
    source: &Source,
    actor: &Actor,
    partner: &PartnerAuth,
    id: &str,
) -> ApiResult<(ConversationAccess, Conversation)> {
    match state
        .chat
        .authorize(actor, &ConversationId::from_raw(id))
        .await
    {
        Err(ChatError::NotFound) => {
            let target = format!("conversation {id} (serial {})", partner.serial);
            let refused =
                partner_event(source, partner, "partner.refused", &target, Outcome::Denied);
            record_after(state, refused).await;
            Err(ApiError::NotFound("conversation"))
        }
        other => Ok(other?),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    csr_pem: String,
}

async fn renew(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    StrictJson(body): StrictJson<RenewBody>,
) -> ApiResult<Response> {
    let audited = |outcome, target: &str| {
        partner_event(
            &source,
            &partner,
            "partner.certificate.renew",
            target,
            outcome,
        )
    };
    record(&state, audited(Outcome::Started, &partner.serial)).await?;
    let request = IssueRequest {
        tenant: &partner.tenant_id,
        partner: &partner.partner,
        days: None,
        renewal: Some((&body.csr_pem, &partner.serial)),
    };
    let issued = match state.partners.issue(state.chat.store(), request).await {
        Ok(issued) => issued,
        Err(err) => {
            record_after(&state, audited(Outcome::Failure, &partner.serial)).await;
            return Err(issue_error(err));
        }
    };
    let target = format!("{} -> {}", partner.serial, issued.serial);
    record_after(&state, audited(Outcome::Success, &target)).await;
    tracing::info!(old = %partner.serial, new = %issued.serial, "partner certificate renewed");
    let body = json!({
        "certificate_pem": issued.cert_pem,
        "serial": issued.serial,
        "not_after": crate::partner::millis(issued.not_after),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The client's part of an issuing failure, or an opaque 500.
pub(crate) fn issue_error(err: IssueError) -> ApiError {
    match err {
        IssueError::NoPki => ApiError::Conflict("the partner PKI does not exist yet"),
        IssueError::BadDays(_) => ApiError::bad_request("invalid_days", err.to_string()),
        IssueError::BadIdentity(_) => ApiError::bad_request("invalid_partner", err.to_string()),
        IssueError::BadCsr(_) => ApiError::bad_request("invalid_csr", err.to_string()),
        IssueError::Pki(_) | IssueError::Store(_) => ApiError::internal(err),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

fn checked_limit(limit: i64) -> ApiResult<i64> {
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 500",
        ))
    }
}

async fn list(
    State(state): State<AppState>,
    partner: PartnerAuth,
    StrictQuery(query): StrictQuery<ListQuery>,
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
    let limit = checked_limit(query.limit)?;
    let found = state.chat.inbox(&partner.tenant_id, status, limit).await?;
    Ok(Json(json!({ "conversations": found })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    visitor_id: String,
}

async fn create(
    State(state): State<AppState>,
    partner: PartnerAuth,
    StrictJson(body): StrictJson<CreateBody>,
) -> ApiResult<Response> {
    let actor = actor(&partner, PartnerAuthor::System);
    let visitor = VisitorId::from_raw(body.visitor_id);
    let opened = state.chat.open_for_visitor(&actor, &visitor).await;
    let conversation = opened.map_err(|err| match err {
        ChatError::NotFound => ApiError::NotFound("visitor"),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(conversation)).into_response())
}

async fn transcript(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    Path(id): Path<String>,
    StrictQuery(page): StrictQuery<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    let (after, limit) = page.checked()?;
    let actor = actor(&partner, PartnerAuthor::System);
    let (access, conversation) = authorize(&state, &source, &actor, &partner, &id).await?;
    let messages = state.chat.history(&access, after, limit).await?;
    Ok(Json(
        json!({ "conversation": conversation, "messages": messages }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerSend {
    client_msg_id: String,
    body: String,
    /// `bot` (with `name`) or `system`.
    author: String,
    name: Option<String>,
}

async fn send(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<PartnerSend>,
) -> ApiResult<Response> {
    let author = match (body.author.as_str(), &body.name) {
        ("bot", Some(name)) => PartnerAuthor::Bot {
            name: DisplayName::parse(name)
                .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?
                .as_str()
                .to_owned(),
        },
        ("bot", None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "a bot message needs a name",
            ));
        }
        ("system", None) => PartnerAuthor::System,
        ("system", Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "a system message has no name",
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_author",
                "author must be bot or system",
            ));
        }
    };
    let client_msg_id = ClientMsgId::parse(&body.client_msg_id)
        .map_err(|e| ApiError::bad_request("invalid_client_msg_id", e.to_string()))?;
    let text = MessageBody::parse(&body.body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let actor = actor(&partner, author);
    let (access, _) = authorize(&state, &source, &actor, &partner, &id).await?;
    let appended = state.chat.send(&access, client_msg_id, text).await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(ack_json(&appended))).into_response())
}

async fn close(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    let actor = actor(&partner, PartnerAuthor::System);
    let (access, _) = authorize(&state, &source, &actor, &partner, &id).await?;
    Ok(Json(state.chat.close(&access).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    agent_id: String,
}

async fn assign(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<AssignBody>,
) -> ApiResult<Json<Conversation>> {
    let actor = actor(&partner, PartnerAuthor::System);
    let (access, _) = authorize(&state, &source, &actor, &partner, &id).await?;
    let agent = AgentId::from_raw(body.agent_id);
    let assigned = state.chat.assign(&access, &agent).await;
    Ok(Json(assigned.map_err(|err| match err {
        ChatError::NotFound => ApiError::NotFound("agent"),
        other => other.into(),
    })?))
}

async fn visitor(
    State(state): State<AppState>,
    partner: PartnerAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let store = state.chat.store();
    let visitor = VisitorId::from_raw(id);
    let found = store.visitor_record(&partner.tenant_id, &visitor).await?;
    let (widget, name, created_at) = found.ok_or(ApiError::NotFound("visitor"))?;
    let conversations = store
        .visitor_conversations(&partner.tenant_id, &visitor)
        .await?;
    let ids: Vec<_> = conversations.iter().map(|c| c.id.as_str()).collect();
    Ok(Json(json!({
        "id": visitor,
        "widget_id": widget,
        "name": name,
        "created_at": created_at,
        "conversation_ids": ids,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    cursor: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// A cursor is `<updated_at>.<conversation id>` of the last change seen.
fn parse_cursor(raw: Option<&str>) -> ApiResult<(i64, String)> {
    let Some(raw) = raw else {
        return Ok((0, String::new()));
    };
    let bad = || ApiError::bad_request("invalid_cursor", "cursor must be a next_cursor value");
    let (at, id) = raw.split_once('.').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad());
    }
    Ok((at, id.to_owned()))
}

async fn changes(
    State(state): State<AppState>,
    partner: PartnerAuth,
    StrictQuery(query): StrictQuery<ChangesQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let (at, id) = parse_cursor(query.cursor.as_deref())?;
    let limit = checked_limit(query.limit)?;
    let found = state
        .chat
        .store()
        .conversations_changed(&partner.tenant_id, (at, &id), limit)
        .await?;
    let next = found
        .last()
        .map(|c| format!("{}.{}", c.updated_at, c.id.as_str()))
        .or(query.cursor);
    Ok(Json(json!({ "conversations": found, "next_cursor": next })))
}
