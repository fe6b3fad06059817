//! What runs around every public request: a fresh request id (echoed in
//! `x-request-id`), a span carrying it, security headers, metrics, and one
//! access-log line. The log names the path but never the query string,
//! headers, cookies or body.

use crate::AppState;
use crate::error::REQUEST_ID;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The connection a request arrived on, put in its extensions by the listener.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub tls_version: &'static str,
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
    let span = tracing::info_span!("request", request_id = %request_id, %method,
        route = route.as_deref().unwrap_or("unmatched"));

    let mut response = REQUEST_ID
        .scope(request_id.clone(), next.run(req).instrument(span.clone()))
        .await;

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    add_security_headers(headers);

    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    state.metrics.record_status(status, micros);
    span.in_scope(|| {
        tracing::info!(target: "palisade::access", %path, status, micros,
            peer = conn.as_ref().map(|c| c.peer.to_string()),
            tls = conn.as_ref().map(|c| c.tls_version), "served");
    });
    response
}

fn add_security_headers(headers: &mut axum::http::HeaderMap) {
    let fixed = [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages set their own policy (the widget frame names its embedding
    // origins); everything else may not run or embed anything.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
}
