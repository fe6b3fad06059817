//! Recording security events from handlers. A handler builds an
//! [`palisade_audit::Event`] with [`event`] and calls [`record`] before the
//! action it audits: an error means the action must not happen (fail closed).

use crate::AppState;
use crate::error::{ApiError, current_request_id};
use crate::middleware::ConnInfo;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use palisade_audit::{ActorKind, Event, Outcome};

/// The client's address as the listener saw it, for the audit log.
#[derive(Clone, Debug)]
pub struct Source(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnInfo>()
            .map(|c| c.peer.to_string());
        Ok(Self(peer.unwrap_or_else(|| "unknown".into())))
    }
}

/// An event from the current request.
pub fn event(
    source: &Source,
    actor: (ActorKind, &str),
    tenant: Option<&str>,
    action: &'static str,
    target: &str,
    outcome: Outcome,
) -> Event {
    Event {
        actor_kind: actor.0,
        actor_id: actor.1.to_owned(),
        tenant_id: tenant.map(str::to_owned),
        action,
        target: target.to_owned(),
        outcome,
        source: source.0.clone(),
        request_id: current_request_id(),
    }
}

/// Appends `event`; an error becomes a 500 and the caller stops.
pub async fn record(state: &AppState, event: Event) -> Result<(), ApiError> {
    let action = event.action;
    state.audit.record(event).await.map(|_| ()).map_err(|err| {
        raise_audit_alert(state, action, &err);
        ApiError::internal(err)
    })
}

/// An audit entry that could not be written is an alert: counted for the
/// metrics and logged under the `palisade::alert` target.
fn raise_audit_alert(state: &AppState, action: &str, err: &dyn std::fmt::Display) {
    state
        .metrics
        .alert_audit_write_failed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(target: "palisade::alert", alert = "audit_write_failed", action, error = %err,
        "an audit entry could not be written");
}

/// Appends `event` after an action already done; a failure is logged, as the
/// action cannot be undone.
pub async fn record_after(state: &AppState, event: Event) {
    let action = event.action;
    if let Err(err) = state.audit.record(event).await {
        raise_audit_alert(state, action, &err);
    }
}

/// Records `action` on `target` as started before `work` runs (no entry,
/// no action), then its success or failure.
pub async fn audited<T>(
    state: &AppState,
    source: &Source,
    caller: &crate::extract::Caller,
    action: &'static str,
    target: &str,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let tenant = Some(caller.tenant_id().as_str());
    let entry = |outcome| {
        event(
            source,
            caller.audit_actor(),
            tenant,
            action,
            target,
            outcome,
        )
    };
    record(state, entry(Outcome::Started)).await?;
    let done = work.await;
    let outcome = if done.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    record_after(state, entry(outcome)).await;
    done
}

/// Records a refusal by policy, then answers with it.
pub async fn denied(
    state: &AppState,
    source: &Source,
    caller: &crate::extract::Caller,
    action: &'static str,
    target: &str,
    refusal: ApiError,
) -> ApiError {
    let tenant = Some(caller.tenant_id().as_str());
    let entry = event(
        source,
        caller.audit_actor(),
        tenant,
        action,
        target,
        Outcome::Denied,
    );
    record_after(state, entry).await;
    refusal
}
