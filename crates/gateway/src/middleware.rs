//! What runs around every public request, in order: a fresh request id
//! (echoed in `x-request-id`) and a span carrying it; cross-origin
//! preflights refused; the per-address rate limit of the route's class; the
//! body read within its size limit and time-out; the WAF over path, query,
//! headers and JSON strings; then the handler. After it: rate-limit and
//! security headers, metrics, and one access-log line. The log names the
//! path but never the query string, headers, cookies or body.

use crate::AppState;
use crate::error::{ApiError, ApiResult, REQUEST_ID};
use crate::limits::{Class, Decision};
use crate::waf::{Inspected, Mode};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The connection a request arrived on, put in its extensions by the listener.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub tls_version: &'static str,
    /// The partner certificate the client presented and the listener verified, if any.
    pub client_cert: crate::partner::ConnCert,
}

/// What the layers below learn about a request, for its limits and its log.
#[derive(Debug)]
pub struct RequestFacts {
    pub class: Class,
    decision: Mutex<Option<Decision>>,
    tenant: Mutex<Option<String>>,
    bytes_in: AtomicU64,
}

tokio::task_local! {
    static FACTS: Arc<RequestFacts>;
}

fn with_facts<T>(f: impl FnOnce(&RequestFacts) -> T) -> Option<T> {
    FACTS.try_with(|facts| f(facts)).ok()
}

/// Notes a limit's decision; a refusal becomes the request's error.
fn record(decision: Option<Decision>) -> ApiResult<()> {
    let Some(decision) = decision else {
        return Ok(());
    };
    with_facts(|facts| {
        let mut slot = facts
            .decision
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(slot.map_or(decision, |old| old.tighter(decision)));
    });
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited(decision))
    }
}

/// Names the request's tenant for the access log.
pub fn note_tenant(tenant: &str) {
    with_facts(|facts| {
        *facts
            .tenant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tenant.to_owned());
    });
}

/// The per-tenant and per-credential limits of an authenticated caller, for
/// the class of the request being served.
pub fn limit_caller(state: &AppState, tenant: &str, credential: &str) -> ApiResult<()> {
    note_tenant(tenant);
    let Some(class) = with_facts(|facts| facts.class) else {
        return Ok(());
    };
    record(state.limits.check_caller(class, tenant, credential))
}

/// The per-tenant limit alone (session creation: no credential exists yet).
pub fn limit_tenant(state: &AppState, class: Class, tenant: &str) -> ApiResult<()> {
    note_tenant(tenant);
    record(state.limits.check_tenant(class, tenant))
}

/// Sign-in attempts against one account, whichever address they come from.
pub fn limit_account(state: &AppState, email: &str) -> ApiResult<()> {
    record(state.limits.check_account(email))
}

pub async fn around_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let class = Class::of(&method, route.as_deref());
    let facts = Arc::new(RequestFacts {
        class,
        decision: Mutex::new(None),
        tenant: Mutex::new(None),
        bytes_in: AtomicU64::new(0),
    });
    let span = tracing::info_span!("request", request_id = %request_id, %method,
        route = route.as_deref().unwrap_or("unmatched"));

    let guarded = guard(state.clone(), req, next, route.clone(), conn.clone());
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            FACTS.scope(facts.clone(), guarded.instrument(span.clone())),
        )
        .await;

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let decision = *facts
        .decision
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(decision) = decision
        && !headers.contains_key("ratelimit-limit")
    {
        decision.write_headers(headers);
    }
    add_security_headers(&path, headers);

    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    state.metrics.record_status(status, micros);
    if status == 429 {
        state.metrics.rate_limited.fetch_add(1, Relaxed);
    }
    let tenant = facts
        .tenant
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let bytes_out = axum::body::HttpBody::size_hint(response.body()).exact();
    span.in_scope(|| {
        tracing::info!(target: "palisade::access", %path, status, micros,
            peer = conn.as_ref().map(|c| c.peer.to_string()),
            tls = conn.as_ref().map(|c| c.tls_version),
            tenant = tenant.as_deref(),
            bytes_in = facts.bytes_in.load(Relaxed),
            bytes_out,
            client_cert = conn
                .as_ref()
                .and_then(|c| c.client_cert.as_ref())
                .map_or("null", |cert| cert.serial.as_str()),
            "served");
    });
    response
}

/// Everything between the request id and the handler; an early refusal
/// returns before the handler runs.
async fn guard(
    state: AppState,
    req: Request,
    next: Next,
    route: Option<String>,
    conn: Option<ConnInfo>,
) -> Response {
    let class = with_facts(|facts| facts.class).unwrap_or(Class::Read);
    // The widget runs in a same-origin frame and the console is same-origin:
    // no route is meant for cross-origin scripts, so preflights get a clear no.
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ORIGIN) {
        return ApiError::CrossOrigin.into_response();
    }
    if let Some(conn) = &conn
        && let Err(refused) = record(state.limits.check_address(class, conn.peer.ip()))
    {
        return refused.into_response();
    }

    let (parts, body) = req.into_parts();
    let limit = match class {
        Class::Login | Class::Session => crate::SMALL_BODY_LIMIT.min(state.settings.max_body_bytes),
        _ => state.settings.max_body_bytes,
    };
    let read = tokio::time::timeout(
        state.settings.body_read_timeout,
        Limited::new(body, limit).collect(),
    );
    let bytes = match read.await {
        Err(_) => return ApiError::RequestTimeout.into_response(),
        Ok(Err(err)) if err.is::<LengthLimitError>() => {
            return ApiError::PayloadTooLarge(limit).into_response();
        }
        Ok(Err(_)) => {
            let message = "the request body could not be read";
            return ApiError::bad_request("unreadable_body", message).into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    with_facts(|facts| facts.bytes_in.store(bytes.len() as u64, Relaxed));

    if state.waf.mode != Mode::Off {
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let json = if is_json && !bytes.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&bytes).ok()
        } else {
            None
        };
        let headers = parts
            .headers
            .iter()
            // Credentials are not scored; nor is the Referer, the address of
            // a page on the tenant's own site, whose search terms are the
            // visitor's business.
            .filter(|(name, _)| {
                **name != header::AUTHORIZATION
                    && **name != header::COOKIE
                    && **name != header::REFERER
            })
            .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
            .collect();
        let verdict = state.waf.rules().inspect(&Inspected {
            route: route.as_deref(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers,
            json: json.as_ref(),
        });
        if verdict.score > 0 {
            let blocked = verdict.over_threshold && state.waf.mode == Mode::Block;
            tracing::info!(target: "palisade::waf", rules = ?verdict.rule_ids,
                score = verdict.score, categories = ?verdict.categories,
                over_threshold = verdict.over_threshold, blocked, "WAF rules matched");
            if blocked {
                state.metrics.waf_blocked.fetch_add(1, Relaxed);
                return ApiError::Blocked.into_response();
            }
        }
    }

    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn add_security_headers(path: &str, headers: &mut axum::http::HeaderMap) {
    let fixed = [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let policies = [
        (
            "permissions-policy",
            "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), \
             microphone=(), payment=(), usb=(), interest-cohort=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        // The widget's files decide for themselves (the loader runs on
        // tenants' sites); everything else is for Palisade's own pages.
        ("cross-origin-resource-policy", "same-origin"),
        ("x-permitted-cross-domain-policies", "none"),
    ];
    let widget_file = path.starts_with("/widget/");
    for (name, value) in policies {
        let assets_decide = widget_file && name == "cross-origin-resource-policy";
        if !headers.contains_key(name) && !assets_decide {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    // API answers carry tokens and conversations: never cached.
    if path.starts_with("/v1/") && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // Pages set their own policy (the widget frame names its embedding
    // origins); everything else may not run or embed anything.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    let framable = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|csp| !csp.contains("frame-ancestors 'none'"));
    if !framable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}
