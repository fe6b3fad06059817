//! `/v1/admin/webhooks`: a tenant's webhook subscriptions and their
//! deliveries. Creating one needs a session with a recent second factor
//! (its secret is shown in the answer, once); listing, removing and reading
//! deliveries also take a tenant API key holding `webhooks_manage`.
//! Creating and removing are audited before they happen. Target URLs are logged and audited by host only: a query
//! string may carry the receiver's own token.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, event, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictJson, StrictQuery};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use palisade_audit::Outcome;
use palisade_model::Permission;
use palisade_webhooks::{
    NewSubscription, TargetError, TargetUrl, WebhookDeliveryRecord, WebhookError,
    WebhookSubscription,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn table() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/v1/admin/webhooks",
            Access::Needs(Permission::WebhooksManage),
            get(list),
        ),
        route(
            Method::POST,
            "/v1/admin/webhooks",
            Access::StepUp(Permission::WebhooksManage),
            post(create),
        ),
        route(
            Method::DELETE,
            "/v1/admin/webhooks/{id}",
            Access::Needs(Permission::WebhooksManage),
            delete(remove),
        ),
        route(
            Method::GET,
            "/v1/admin/webhooks/{id}/deliveries",
            Access::Needs(Permission::WebhooksManage),
            get(deliveries),
        ),
    ]
}

pub(super) fn subscription_json(sub: &WebhookSubscription) -> Value {
    json!({
        "id": sub.id,
        "partner": sub.partner,
        "url": sub.url,
        "events": sub.events,
        "created_by": sub.created_by,
        "created_at": sub.created_at,
    })
}

pub(super) fn delivery_json(delivery: &WebhookDeliveryRecord) -> Value {
    let attempts: Vec<Value> = delivery
        .tries
        .iter()
        .map(|t| {
            json!({
                "attempt": t.attempt,
                "at": t.at,
                "duration_ms": t.duration_ms,
                "status_code": t.status_code,
                "error": t.error,
            })
        })
        .collect();
    json!({
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event": delivery.event,
        "status": delivery.status.as_str(),
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "attempt_log": attempts,
    })
}

/// A client's mistake as a 4xx that says what to fix; ours as a 500.
pub(super) fn api_error(err: WebhookError) -> ApiError {
    match err {
        WebhookError::InvalidUrl(_) => ApiError::bad_request("invalid_url", err.to_string()),
        WebhookError::Refused(TargetError::Unresolved { .. }) => {
            ApiError::bad_request("unresolvable_url", err.to_string())
        }
        WebhookError::Refused(_) => ApiError::bad_request("refused_target", err.to_string()),
        WebhookError::InvalidEvents(_) => ApiError::bad_request("invalid_events", err.to_string()),
        WebhookError::InvalidPartner => ApiError::bad_request("invalid_partner", err.to_string()),
        WebhookError::TooMany => {
            ApiError::Conflict("the tenant has 100 webhooks; remove one first")
        }
        other => ApiError::internal(other),
    }
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let subs = state
        .webhooks
        .list(caller.tenant_id())
        .await
        .map_err(api_error)?;
    let subs: Vec<Value> = subs.iter().map(subscription_json).collect();
    Ok(Json(json!({ "webhooks": subs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    partner: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    StrictJson(req): StrictJson<CreateRequest>,
) -> ApiResult<Response> {
    let url = TargetUrl::parse(&req.url)
        .map_err(|e| ApiError::bad_request("invalid_url", format!("url: {e}")))?;
    let by = &caller.agent;
    let audited = |outcome, target: &str| {
        event(
            &source,
            caller.audit_actor(),
            Some(by.tenant_id.as_str()),
            "webhook.create",
            target,
            outcome,
        )
    };
    // Fail closed: nothing is stored unless the attempt is on record.
    record(&state, audited(Outcome::Started, &url.host)).await?;
    let (actor_kind, actor_id) = caller.audit_actor();
    let access = palisade_webhooks::VaultAccess {
        actor_kind,
        actor_id: actor_id.to_owned(),
        principal: palisade_webhooks::Principal::System("gateway".into()),
        source: source.0.clone(),
        reason: "webhook signing secret, shown once to its creator".into(),
        request_id: crate::error::current_request_id(),
    };
    let new = NewSubscription {
        partner: req.partner,
        url: req.url,
        events: req.events,
    };
    let created = match state.webhooks.subscribe(&by.tenant_id, new, &access).await {
        Ok(created) => created,
        Err(err) => {
            let outcome = match err {
                WebhookError::Refused(_) => Outcome::Denied,
                _ => Outcome::Failure,
            };
            record_after(&state, audited(outcome, &url.host)).await;
            return Err(api_error(err));
        }
    };
    let target = format!("{} {}", created.subscription.id, url.host);
    record_after(&state, audited(Outcome::Success, &target)).await;
    tracing::info!(by = %by.id, webhook = %created.subscription.id, host = %url.host,
        "webhook created");
    let body = json!({
        "webhook": subscription_json(&created.subscription),
        "secret": created.secret.expose(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    source: Source,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let by = &caller.agent;
    // Another tenant's webhook is "not found", and its id is not put on
    // this tenant's audit record (which this tenant's admins can read).
    let owned = state.webhooks.subscription(&by.tenant_id, &id).await;
    if owned.map_err(api_error)?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let audited = |outcome| {
        event(
            &source,
            caller.audit_actor(),
            Some(by.tenant_id.as_str()),
            "webhook.remove",
            &id,
            outcome,
        )
    };
    record(&state, audited(Outcome::Started)).await?;
    let removed = state.webhooks.remove(&by.tenant_id, &id).await;
    let outcome = match &removed {
        Ok(true) => Outcome::Success,
        _ => Outcome::Failure,
    };
    record_after(&state, audited(outcome)).await;
    if !removed.map_err(api_error)? {
        return Err(ApiError::NotFound("webhook"));
    }
    tracing::info!(by = %by.id, webhook = %id, "webhook removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveriesQuery {
    #[serde(default = "default_limit")]
    pub(super) limit: i64,
}

fn default_limit() -> i64 {
    50
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    if !(1..=200).contains(&query.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    let found = state
        .webhooks
        .deliveries(caller.tenant_id(), &id, query.limit)
        .await
        .map_err(api_error)?
        .ok_or(ApiError::NotFound("webhook"))?;
    let found: Vec<Value> = found.iter().map(delivery_json).collect();
    Ok(Json(json!({ "deliveries": found })))
}
