//! The ops listener: health, readiness and metrics, on loopback only, plain
//! HTTP. It shares nothing with the public router, so no public request can
//! reach it.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Binds `addr` (which the config loader has checked is loopback) and serves
/// until the returned task is dropped or aborted.
pub async fn serve_ops(
    addr: SocketAddr,
    state: AppState,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "ops listener failed");
        }
    });
    tracing::info!(%local, "ops listener started");
    Ok((local, task))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.chat.store().ping().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(
        state.chat.stats(),
        state.chat.commits(),
        state.chat.hub().channel_count(),
    ) + &crate::metrics::render_webhooks(state.webhooks.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
