//! Storage for webhooks: subscriptions, the delivery outbox and the record
//! of every attempt. Payloads carry message text, so they are sealed with
//! the tenant's data key, bound to the delivery's id. Which addresses may be
//! called, signing and the retry schedule are the `palisade-webhooks`
//! crate's business; this module only keeps the rows.

use crate::keyring::{KeyRing, WEBHOOK_PAYLOAD};
use crate::rows;
use crate::{Result, Store};
use palisade_model::{TenantId, now_millis};
use sqlx::any::AnyRow;

/// A subscription as stored (its secret is in the vault, under `secret_name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: String,
    pub tenant_id: TenantId,
    pub partner: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub secret_name: String,
    pub created_by: String,
    pub created_at: i64,
}

/// A subscription to create; the caller has validated every field.
#[derive(Debug)]
pub struct NewWebhookSubscription<'a> {
    pub id: &'a str,
    pub partner: Option<&'a str>,
    pub url: &'a str,
    pub events: &'a [&'a str],
    pub secret_name: &'a str,
    pub created_by: &'a str,
}

/// One event for one subscription, to deliver.
pub struct NewWebhookDelivery {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event: String,
    /// The JSON body to send; sealed before it is stored.
    pub payload: String,
}

impl std::fmt::Debug for NewWebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookDelivery")
            .field("id", &self.id)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// A delivery the worker has leased: everything one attempt needs.
pub struct DueWebhookDelivery {
    pub id: String,
    pub tenant_id: TenantId,
    pub subscription_id: String,
    pub event_id: String,
    pub event: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// `None` when the subscription was removed since.
    pub target: Option<(String, String)>,
}

impl std::fmt::Debug for DueWebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueWebhookDelivery")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(crate::StoreError::Corrupt(format!(
                "unknown delivery status {other:?}"
            ))),
        }
    }
}

/// One attempt's result, and what becomes of the delivery.
#[derive(Debug)]
pub struct WebhookAttempt<'a> {
    pub delivery_id: &'a str,
    pub tenant_id: &'a TenantId,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub next_status: DeliveryStatus,
    pub next_attempt_at: i64,
}

/// A delivery without its payload, with its attempts (oldest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub tries: Vec<WebhookAttemptRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAttemptRecord {
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

fn subscription(row: &AnyRow) -> Result<WebhookSubscription> {
    let events = rows::text(row, "events")?;
    Ok(WebhookSubscription {
        id: rows::text(row, "id")?,
        tenant_id: TenantId::from_raw(rows::text(row, "tenant_id")?),
        partner: rows::opt_text(row, "partner")?,
        url: rows::text(row, "url")?,
        events: events.split(',').map(str::to_owned).collect(),
        secret_name: rows::text(row, "secret_name")?,
        created_by: rows::text(row, "created_by")?,
        created_at: rows::int(row, "created_at")?,
    })
}

impl Store {
    pub async fn webhook_create(
        &self,
        tenant: &TenantId,
        new: NewWebhookSubscription<'_>,
    ) -> Result<WebhookSubscription> {
        let now = now_millis();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, tenant_id, partner, url, events, \
             secret_name, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(tenant.as_str())
        .bind(new.partner)
        .bind(new.url)
        .bind(new.events.join(","))
        .bind(new.secret_name)
        .bind(new.created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(WebhookSubscription {
            id: new.id.to_owned(),
            tenant_id: tenant.clone(),
            partner: new.partner.map(str::to_owned),
            url: new.url.to_owned(),
            events: new.events.iter().map(|e| (*e).to_owned()).collect(),
            secret_name: new.secret_name.to_owned(),
            created_by: new.created_by.to_owned(),
            created_at: now,
        })
    }

    /// The tenant's subscriptions that were not removed, oldest first.
    pub async fn webhook_subscriptions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<WebhookSubscription>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(
            "SELECT id, tenant_id, partner, url, events, secret_name, created_by, created_at \
             FROM webhook_subscriptions WHERE tenant_id = $1 AND removed_at IS NULL \
             ORDER BY created_at, id",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found.iter().map(subscription).collect()
    }

    /// Every tenant's active subscriptions: the webhook service's cache of
    /// who listens to what. The one query here not scoped to a tenant; each
    /// record carries its tenant.
    pub async fn webhook_all_subscriptions(&self) -> Result<Vec<WebhookSubscription>> {
        let found = sqlx::query(
            "SELECT id, tenant_id, partner, url, events, secret_name, created_by, created_at \
             FROM webhook_subscriptions WHERE removed_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        found.iter().map(subscription).collect()
    }

    /// Marks the subscription removed and cancels its pending deliveries;
    /// false when the tenant has no such (active) subscription.
    pub async fn webhook_remove(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let mut tx = self.tenant_write_tx(tenant).await?;
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE webhook_subscriptions SET removed_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'cancelled', updated_at = $3 \
             WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts deliveries in the outbox, due now, payloads sealed.
    pub async fn webhook_enqueue(
        &self,
        tenant: &TenantId,
        deliveries: &[NewWebhookDelivery],
    ) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        // The data key comes from the keyring (a platform path) first.
        let mut conn = self.pool().acquire().await?;
        let (version, key) = self.keys().active_key(&mut conn, tenant.as_str()).await?;
        drop(conn);
        let mut tx = self.tenant_write_tx(tenant).await?;
        let now = now_millis();
        for delivery in deliveries {
            let sealed = KeyRing::seal(
                &key,
                tenant.as_str(),
                WEBHOOK_PAYLOAD,
                &delivery.id,
                &delivery.payload,
            )?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event_id, \
                 event, payload, key_version, status, attempts, next_attempt_at, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8)",
            )
            .bind(&delivery.id)
            .bind(tenant.as_str())
            .bind(&delivery.subscription_id)
            .bind(&delivery.event_id)
            .bind(&delivery.event)
            .bind(sealed)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Leases up to `limit` pending deliveries due at `now` until
    /// `lease_until`, across tenants: a worker that dies mid-attempt leaves
    /// them to be picked up again once the lease runs out. A row another
    /// worker leased first is skipped (the update re-checks it is due).
    pub async fn webhook_claim_due(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DueWebhookDelivery>> {
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $2, updated_at = $1 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
                 AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
             AND status = 'pending' AND next_attempt_at <= $1 \
             RETURNING id, tenant_id, subscription_id, event_id, event, payload, key_version, \
             attempts",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut due = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let id = rows::text(row, "id")?;
            let tenant = rows::text(row, "tenant_id")?;
            let subscription_id = rows::text(row, "subscription_id")?;
            let payload = self
                .keys()
                .open(
                    self.pool(),
                    &tenant,
                    WEBHOOK_PAYLOAD,
                    &id,
                    rows::opt_int(row, "key_version")?,
                    &rows::text(row, "payload")?,
                )
                .await?;
            let target = sqlx::query(
                "SELECT url, secret_name FROM webhook_subscriptions \
                 WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL",
            )
            .bind(&tenant)
            .bind(&subscription_id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| -> Result<_> {
                Ok((rows::text(&row, "url")?, rows::text(&row, "secret_name")?))
            })
            .transpose()?;
            due.push(DueWebhookDelivery {
                id,
                tenant_id: TenantId::from_raw(tenant),
                subscription_id,
                event_id: rows::text(row, "event_id")?,
                event: rows::text(row, "event")?,
                payload,
                attempts: rows::int(row, "attempts")?,
                target,
            });
        }
        Ok(due)
    }

    /// Records one attempt and moves the delivery on, in one transaction.
    pub async fn webhook_record_attempt(&self, attempt: WebhookAttempt<'_>) -> Result<()> {
        let mut tx = self.tenant_write_tx(attempt.tenant_id).await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, tenant_id, at, duration_ms, \
             status_code, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(attempt.delivery_id)
        .bind(attempt.attempt)
        .bind(attempt.tenant_id.as_str())
        .bind(attempt.at)
        .bind(attempt.duration_ms)
        .bind(attempt.status_code)
        .bind(attempt.error)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = $3, status = $4, next_attempt_at = $5, \
             last_status = $6, last_error = $7, updated_at = $8 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(attempt.tenant_id.as_str())
        .bind(attempt.delivery_id)
        .bind(attempt.attempt)
        .bind(attempt.next_status.as_str())
        .bind(attempt.next_attempt_at)
        .bind(attempt.status_code)
        .bind(attempt.error)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A delivery that will not be attempted: its subscription is gone.
    pub async fn webhook_cancel(&self, tenant: &TenantId, delivery_id: &str) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'cancelled', updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(delivery_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A subscription's newest deliveries (at most `limit`), newest first,
    /// each with its attempts; `None` when the tenant has no such
    /// subscription (removed ones keep their history).
    pub async fn webhook_deliveries(
        &self,
        tenant: &TenantId,
        subscription_id: &str,
        limit: i64,
    ) -> Result<Option<Vec<WebhookDeliveryRecord>>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let known = sqlx::query(
            "SELECT 1 AS one FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(subscription_id)
        .fetch_optional(&mut *tx)
        .await?;
        if known.is_none() {
            return Ok(None);
        }
        let found = sqlx::query(
            "SELECT id, event_id, event, status, attempts, next_attempt_at, last_status, \
             last_error, created_at, updated_at FROM webhook_deliveries \
             WHERE tenant_id = $1 AND subscription_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(subscription_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut deliveries = Vec::with_capacity(found.len());
        for row in &found {
            let id = rows::text(row, "id")?;
            let tries = sqlx::query(
                "SELECT attempt, at, duration_ms, status_code, error FROM webhook_attempts \
                 WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempt",
            )
            .bind(tenant.as_str())
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok(WebhookAttemptRecord {
                    attempt: rows::int(row, "attempt")?,
                    at: rows::int(row, "at")?,
                    duration_ms: rows::int(row, "duration_ms")?,
                    status_code: rows::opt_int(row, "status_code")?,
                    error: rows::opt_text(row, "error")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            deliveries.push(WebhookDeliveryRecord {
                id,
                event_id: rows::text(row, "event_id")?,
                event: rows::text(row, "event")?,
                status: DeliveryStatus::parse(&rows::text(row, "status")?)?,
                attempts: rows::int(row, "attempts")?,
                next_attempt_at: rows::int(row, "next_attempt_at")?,
                last_status: rows::opt_int(row, "last_status")?,
                last_error: rows::opt_text(row, "last_error")?,
                created_at: rows::int(row, "created_at")?,
                updated_at: rows::int(row, "updated_at")?,
                tries,
            });
        }
        tx.commit().await?;
        Ok(Some(deliveries))
    }
}
