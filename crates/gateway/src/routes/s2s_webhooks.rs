//! `/s2s/v1/webhooks`: a partner's own webhook subscriptions, over its
//! client certificate. A partner sees and manages only the subscriptions
//! made in its name; the tenant's other subscriptions (its admins' or
//! another partner's) are "not found" to it. Creating and removing are
//! audited before they happen, with the certificate's serial as the actor;
//! the signing secret is in the answer to the creation, once.

use super::s2s::partner_event;
use super::webhooks::{DeliveriesQuery, api_error, delivery_json, subscription_json};
use crate::AppState;
use crate::access::{Access, Route, route};
use crate::audit::{Source, record, record_after};
use crate::error::{ApiError, ApiResult};
use crate::extract::{StrictJson, StrictQuery};
use crate::partner::PartnerAuth;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use palisade_audit::{ActorKind, Outcome};
use palisade_webhooks::{
    NewSubscription, Principal, TargetUrl, VaultAccess, WebhookError, WebhookSubscription,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn table() -> Vec<Route> {
    let partner = |method, path, handler| route(method, path, Access::Partner, handler);
    vec![
        partner(Method::GET, "/s2s/v1/webhooks", get(list)),
        partner(Method::POST, "/s2s/v1/webhooks", post(create)),
        partner(Method::DELETE, "/s2s/v1/webhooks/{id}", delete(remove)),
        partner(
            Method::GET,
            "/s2s/v1/webhooks/{id}/deliveries",
            get(deliveries),
        ),
    ]
}

/// The partner's own subscription with this id, or "not found".
async fn own(state: &AppState, partner: &PartnerAuth, id: &str) -> ApiResult<WebhookSubscription> {
    let found = state
        .webhooks
        .subscription(&partner.tenant_id, id)
        .await
        .map_err(api_error)?;
    found
        .filter(|sub| sub.partner.as_deref() == Some(partner.partner.as_str()))
        .ok_or(ApiError::NotFound("webhook"))
}

async fn list(State(state): State<AppState>, partner: PartnerAuth) -> ApiResult<Json<Value>> {
    let subs = state
        .webhooks
        .list(&partner.tenant_id)
        .await
        .map_err(api_error)?;
    let own: Vec<Value> = subs
        .iter()
        .filter(|sub| sub.partner.as_deref() == Some(partner.partner.as_str()))
        .map(subscription_json)
        .collect();
    Ok(Json(json!({ "webhooks": own })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    url: String,
    events: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    StrictJson(req): StrictJson<CreateRequest>,
) -> ApiResult<Response> {
    let url = TargetUrl::parse(&req.url)
        .map_err(|e| ApiError::bad_request("invalid_url", format!("url: {e}")))?;
    let action = "webhook.create";
    // Fail closed: nothing is stored unless the attempt is on record.
    record(
        &state,
        partner_event(&source, &partner, action, &url.host, Outcome::Started),
    )
    .await?;
    let access = VaultAccess {
        actor_kind: ActorKind::Partner,
        actor_id: partner.serial.clone(),
        principal: Principal::System("gateway".into()),
        source: source.0.clone(),
        reason: "webhook signing secret, shown once to the partner".into(),
        request_id: crate::error::current_request_id(),
    };
    let new = NewSubscription {
        partner: Some(partner.partner.clone()),
        url: req.url,
        events: req.events,
    };
    let created = match state
        .webhooks
        .subscribe(&partner.tenant_id, new, &access)
        .await
    {
        Ok(created) => created,
        Err(err) => {
            let outcome = match err {
                WebhookError::Refused(_) => Outcome::Denied,
                _ => Outcome::Failure,
            };
            record_after(
                &state,
                partner_event(&source, &partner, action, &url.host, outcome),
            )
            .await;
            return Err(api_error(err));
        }
    };
    let target = format!("{} {}", created.subscription.id, url.host);
    record_after(
        &state,
        partner_event(&source, &partner, action, &target, Outcome::Success),
    )
    .await;
    tracing::info!(serial = %partner.serial, webhook = %created.subscription.id,
        host = %url.host, "partner webhook created");
    let body = json!({
        "webhook": subscription_json(&created.subscription),
        "secret": created.secret.expose(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    source: Source,
    partner: PartnerAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    own(&state, &partner, &id).await?;
    let action = "webhook.remove";
    record(
        &state,
        partner_event(&source, &partner, action, &id, Outcome::Started),
    )
    .await?;
    let removed = state.webhooks.remove(&partner.tenant_id, &id).await;
    let outcome = match &removed {
        Ok(true) => Outcome::Success,
        _ => Outcome::Failure,
    };
    record_after(
        &state,
        partner_event(&source, &partner, action, &id, outcome),
    )
    .await;
    if !removed.map_err(api_error)? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn deliveries(
    State(state): State<AppState>,
    partner: PartnerAuth,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<DeliveriesQuery>,
) -> ApiResult<Json<Value>> {
    if !(1..=200).contains(&query.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    own(&state, &partner, &id).await?;
    let found = state
        .webhooks
        .deliveries(&partner.tenant_id, &id, query.limit)
        .await
        .map_err(api_error)?
        .ok_or(ApiError::NotFound("webhook"))?;
    let found: Vec<Value> = found.iter().map(delivery_json).collect();
    Ok(Json(json!({ "deliveries": found })))
}
