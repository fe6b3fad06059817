//! The delivery worker: leases due outbox rows, sends each at most
//! `concurrency` at a time, records every attempt, and schedules the next
//! one with exponential back-off and jitter until `max_attempts`, after
//! which the delivery is `failed`. Rows are leased in the database, so
//! whatever was pending when a process stopped is picked up at the next
//! start once its lease has run out.

use crate::Inner;
use crate::client::SendError;
use crate::sign;
use crate::target::TargetUrl;
use bytes::Bytes;
use palisade_model::now_millis;
use palisade_store::{DeliveryStatus, DueWebhookDelivery, WebhookAttempt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the outbox is polled when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);

/// The wait before attempt `next` (2 for the first retry): `base` doubled
/// per earlier retry, capped at `max`, then scaled by a random factor in
/// [0.5, 1.0] so retries from many deliveries do not arrive together.
pub fn backoff(base: Duration, max: Duration, next: i64, jitter: f64) -> Duration {
    let doublings = u32::try_from(next.saturating_sub(2).clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(1u32 << doublings).min(max);
    raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    }
}

pub(crate) async fn run(inner: Arc<Inner>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(inner.settings.concurrency));
    // Attempts run in this set, so stopping the worker stops them too.
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        if free > 0 {
            let now = now_millis();
            let lease = now.saturating_add(inner.lease_millis());
            let claimed = inner
                .store
                .webhook_claim_due(now, lease, i64::try_from(free).unwrap_or(1))
                .await;
            match claimed {
                Ok(due) => {
                    for delivery in due {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let inner = inner.clone();
                        running.spawn(async move {
                            attempt(&inner, delivery).await;
                            drop(permit);
                            inner.wake.notify_one();
                        });
                    }
                }
                Err(err) => tracing::warn!(error = %err, "reading the webhook outbox failed"),
            }
        }
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Makes one attempt of one delivery and records it.
async fn attempt(inner: &Inner, due: DueWebhookDelivery) {
    let Some((url, secret_name)) = due.target.clone() else {
        if let Err(err) = inner.store.webhook_cancel(&due.tenant_id, &due.id).await {
            tracing::warn!(delivery = %due.id, error = %err, "cancelling a webhook delivery failed");
        }
        return;
    };
    let number = due.attempts.saturating_add(1);
    let started = Instant::now();
    let at = now_millis();
    let result = send(inner, &due, &url, &secret_name).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, permanent) = match &result {
        Ok(code) => (Some(i64::from(*code)), None, false),
        Err(Failure::Send(err)) => (None, Some(err.to_string()), err.is_refusal()),
        Err(Failure::Internal(reason)) => (None, Some(reason.clone()), false),
    };
    let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
    let settings = &inner.settings;
    let (next_status, next_attempt_at) = if delivered {
        (DeliveryStatus::Delivered, at)
    } else if permanent || number >= settings.max_attempts {
        (DeliveryStatus::Failed, at)
    } else {
        let wait = backoff(
            settings.retry_base,
            settings.retry_max,
            number + 1,
            random_unit(),
        );
        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        (DeliveryStatus::Pending, now_millis().saturating_add(wait))
    };
    let error = error.or_else(|| {
        status_code
            .filter(|_| !delivered)
            .map(|c| format!("answered {c}"))
    });
    let record = WebhookAttempt {
        delivery_id: &due.id,
        tenant_id: &due.tenant_id,
        attempt: number,
        at,
        duration_ms,
        status_code,
        error: error.as_deref(),
        next_status,
        next_attempt_at,
    };
    if let Err(err) = inner.store.webhook_record_attempt(record).await {
        tracing::warn!(delivery = %due.id, error = %err,
            "recording a webhook attempt failed; it will be retried when its lease ends");
        return;
    }
    let counter = match next_status {
        DeliveryStatus::Delivered => &inner.stats.delivered,
        DeliveryStatus::Failed => &inner.stats.failed,
        _ => &inner.stats.retried,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match next_status {
        DeliveryStatus::Failed => tracing::warn!(tenant = %due.tenant_id, delivery = %due.id,
            attempts = number, error = error.as_deref().unwrap_or(""),
            "webhook delivery failed for good"),
        _ => tracing::debug!(tenant = %due.tenant_id, delivery = %due.id, attempt = number,
            status = next_status.as_str(), "webhook attempt recorded"),
    }
}

enum Failure {
    Send(SendError),
    Internal(String),
}

async fn send(
    inner: &Inner,
    due: &DueWebhookDelivery,
    url: &str,
    secret_name: &str,
) -> Result<u16, Failure> {
    // Checked again at delivery: the stored URL passed at subscription
    // time, but names can point elsewhere since.
    let url = TargetUrl::parse(url)
        .map_err(|e| Failure::Send(SendError::Target(crate::TargetError::BadUrl(e))))?;
    let secret = inner
        .secret(&due.tenant_id, secret_name)
        .await
        .map_err(|e| Failure::Internal(format!("signing secret unavailable: {e}")))?;
    let timestamp = now_millis() / 1000;
    let body = Bytes::from(due.payload.clone());
    let headers = [
        (sign::EVENT_ID_HEADER, due.event_id.clone()),
        (sign::EVENT_TYPE_HEADER, due.event.clone()),
        (sign::TIMESTAMP_HEADER, timestamp.to_string()),
        (
            sign::SIGNATURE_HEADER,
            sign::signature(secret.expose(), timestamp, &body),
        ),
    ];
    inner
        .client
        .post(&url, &headers, body)
        .await
        .map_err(Failure::Send)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_only_shortens() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(base, max, 2, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(base, max, 3, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(base, max, 4, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(base, max, 2, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(base, max, 20, 1.0), max);
        assert_eq!(backoff(base, max, i64::MAX, 1.0), max);
        let jittered = backoff(base, max, 3, 0.3);
        assert!(jittered > Duration::from_secs(10) && jittered < Duration::from_secs(20));
    }
}
