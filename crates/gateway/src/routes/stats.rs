//! `/v1/admin/stats`: the numbers behind the admin console's overview.
//! Reading them needs `audit_read`, the permission that already lets an
//! owner or admin see what happens in the tenant.

use crate::AppState;
use crate::access::{Access, Route, route};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, StrictQuery};
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use palisade_model::{Permission, now_millis};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest window the overview reads.
const MAX_DAYS: i64 = 90;

pub fn table() -> Vec<Route> {
    vec![route(
        Method::GET,
        "/v1/admin/stats",
        Access::Needs(Permission::AuditRead),
        get(stats),
    )]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    #[serde(default = "default_days")]
    days: i64,
}

fn default_days() -> i64 {
    14
}

async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    StrictQuery(query): StrictQuery<StatsQuery>,
) -> ApiResult<Json<Value>> {
    if !(1..=MAX_DAYS).contains(&query.days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("days must be 1 to {MAX_DAYS}"),
        ));
    }
    let stats = state
        .chat
        .store()
        .stats(caller.tenant_id(), query.days, now_millis())
        .await?;

    let days: Vec<Value> = stats
        .days
        .iter()
        .map(|day| {
            json!({
                "day_start": day.day_start,
                "conversations": day.conversations,
                "median_first_response_ms": day.median_first_response_ms,
            })
        })
        .collect();
    Ok(Json(json!({
        "days": days,
        "backlog": {
            "open_unassigned": stats.backlog.open_unassigned,
            "open_assigned": stats.backlog.open_assigned,
        },
    })))
}
