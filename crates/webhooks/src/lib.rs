//! Webhooks: tenants (and their partners) subscribe URLs to chat events;
//! Palisade delivers each event as a signed POST, from a persistent outbox,
//! with retries.
//!
//! The parts, in the order an event meets them:
//! - the chat service calls [`events`]' enqueuer after each commit; it
//!   queues the event only when the tenant has a subscription for it;
//! - a task turns the event into one outbox row per subscription (payload
//!   sealed by the store with the tenant's data key);
//! - the [`worker`] leases due rows, signs ([`sign`]) and sends them through
//!   the [`client`], which only connects to addresses [`target`] checked;
//!   every attempt is recorded, failures retried with back-off.
//!
//! Invariants:
//! - nothing is sent to a loopback, private, link-local, CGNAT, unique-local,
//!   multicast, documentation, reserved or metadata address unless the
//!   operator allow-listed it; the check runs after DNS resolution, at
//!   subscription time, at every delivery and on every redirect, and the
//!   connection goes to the address that was checked;
//! - a subscription's secret lives only in the vault (tenant scope, readable
//!   by `system:webhooks` alone) and is shown once, at creation;
//! - logs name tenants, deliveries and hosts, never a secret, a signature
//!   or a payload.
//!
//! This crate never speaks to the public listener and knows nothing of
//! sessions: the gateway authorises callers and audits their requests.

pub mod client;
pub mod events;
pub mod sign;
mod state;
pub mod target;
pub mod worker;

pub use events::EventType;
pub use palisade_store::{
    DeliveryStatus, WebhookAttemptRecord, WebhookDeliveryRecord, WebhookSubscription,
};
pub use palisade_vault::{Access as VaultAccess, Principal};
pub use target::{AllowList, Refusal, TargetError, TargetUrl, classify};

use palisade_model::TenantId;
use palisade_store::{NewWebhookSubscription, Store, StoreError};
use palisade_vault::{Access, Policy, Vault, VaultError};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

pub(crate) use state::Inner;

/// The vault reader every subscription secret names.
pub const PRINCIPAL: &str = "webhooks";
/// The most subscriptions one tenant may have.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Delivery settings (config section `[webhooks]`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Networks that may be called despite the SSRF rules (tests only).
    pub allow_targets: AllowList,
    /// Attempts before a delivery is `failed`.
    pub max_attempts: i64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// The whole exchange, redirects included.
    pub request_timeout: Duration,
    /// The wait before the first retry; doubled per retry.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_targets: AllowList::default(),
            max_attempts: 8,
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("url: {0}")]
    InvalidUrl(String),
    #[error("url: {0}")]
    Refused(TargetError),
    #[error("events: {0}")]
    InvalidEvents(String),
    #[error("partner must be 1 to 100 characters of a-z, 0-9, '.', '-' and '_'")]
    InvalidPartner,
    #[error("a tenant may have at most {MAX_SUBSCRIPTIONS} webhooks; remove one first")]
    TooMany,
    #[error("the webhook client's TLS configuration: {0}")]
    Tls(String),
    #[error("no randomness from the operating system")]
    Random,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    /// Events that never reached the outbox (queue full or database error).
    pub dropped: AtomicU64,
}

/// A secret shown once. Never printed; wiped on drop.
pub struct ShownSecret(Zeroizing<String>);

impl std::fmt::Debug for ShownSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShownSecret(***)")
    }
}

impl ShownSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A new subscription as requested; validated by [`Webhooks::subscribe`].
#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub partner: Option<String>,
    pub url: String,
    pub events: Vec<String>,
}

/// The webhook service; cheap to clone.
#[derive(Clone, Debug)]
pub struct Webhooks {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// A subscription just made, with its secret (shown this once).
#[derive(Debug)]
pub struct Created {
    pub subscription: WebhookSubscription,
    pub secret: ShownSecret,
}

fn check_partner(partner: &str) -> Result<(), WebhookError> {
    let ok = (1..=100).contains(&partner.len())
        && partner
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(()).ok_or(WebhookError::InvalidPartner)
}

fn check_events(events: &[String]) -> Result<Vec<EventType>, WebhookError> {
    if events.is_empty() {
        return Err(WebhookError::InvalidEvents(
            "name at least one of message.created, conversation.assigned, conversation.closed"
                .into(),
        ));
    }
    let mut parsed = Vec::new();
    for raw in events {
        let event = EventType::parse(raw).ok_or_else(|| {
            WebhookError::InvalidEvents(format!(
                "{raw:?} is not one of message.created, conversation.assigned, \
                 conversation.closed"
            ))
        })?;
        if !parsed.contains(&event) {
            parsed.push(event);
        }
    }
    Ok(parsed)
}

impl Webhooks {
    /// Loads the subscriptions and starts the outbox tasks. Returns the
    /// service and the hook the chat service must call after each commit.
    pub async fn start(
        store: Store,
        vault: Vault,
        settings: Settings,
    ) -> Result<(Self, Arc<dyn palisade_chat::Outbound>), WebhookError> {
        let tls = client::platform_tls().map_err(|e| WebhookError::Tls(e.to_string()))?;
        Self::start_with_tls(store, vault, settings, tls).await
    }

    /// As [`Webhooks::start`], trusting what `tls` trusts.
    pub async fn start_with_tls(
        store: Store,
        vault: Vault,
        settings: Settings,
        tls: rustls::ClientConfig,
    ) -> Result<(Self, Arc<dyn palisade_chat::Outbound>), WebhookError> {
        let client = client::Client::new(
            settings.allow_targets.clone(),
            settings.connect_timeout,
            settings.request_timeout,
            tls,
        );
        let inner = Arc::new(Inner {
            store,
            vault,
            settings,
            client,
            interest: RwLock::default(),
            secrets: tokio::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
            stats: Stats::default(),
        });
        inner.reload(None).await?;
        let (queue, receiver) = tokio::sync::mpsc::channel(events::QUEUE);
        let tasks = vec![
            tokio::spawn(events::drain(inner.clone(), receiver)),
            tokio::spawn(worker::run(inner.clone())),
            tokio::spawn(state::refresh(inner.clone())),
        ];
        let enqueuer = events::Enqueuer {
            inner: inner.clone(),
            queue,
        };
        let service = Self {
            inner,
            tasks: Arc::new(Mutex::new(tasks)),
        };
        Ok((service, Arc::new(enqueuer)))
    }

    /// Stops the outbox tasks; attempts in flight are abandoned and
    /// retried by the next start once their lease runs out.
    pub fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Checks the request (the URL after DNS resolution included), stores a
    /// new secret in the vault as `access` and creates the subscription.
    pub async fn subscribe(
        &self,
        tenant: &TenantId,
        new: NewSubscription,
        access: &Access,
    ) -> Result<Created, WebhookError> {
        if let Some(partner) = &new.partner {
            check_partner(partner)?;
        }
        let events = check_events(&new.events)?;
        let url = TargetUrl::parse(&new.url).map_err(WebhookError::InvalidUrl)?;
        target::resolve_checked(&url, &self.inner.settings.allow_targets)
            .await
            .map_err(WebhookError::Refused)?;
        let existing = self.inner.store.webhook_subscriptions(tenant).await?;
        if existing.len() >= MAX_SUBSCRIPTIONS {
            return Err(WebhookError::TooMany);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let secret_name = format!("webhook.{id}");
        let secret = ShownSecret(Zeroizing::new(
            sign::new_secret().map_err(|_| WebhookError::Random)?,
        ));
        let policy = Policy {
            readers: vec![format!("system:{PRINCIPAL}")],
            ..Policy::default()
        };
        self.inner
            .vault
            .write(
                tenant.as_str(),
                &secret_name,
                secret.expose().as_bytes(),
                Some(policy),
                access,
            )
            .await?;
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let record = NewWebhookSubscription {
            id: &id,
            partner: new.partner.as_deref(),
            url: &new.url,
            events: &names,
            secret_name: &secret_name,
            created_by: &format!("{}:{}", access.actor_kind.as_str(), access.actor_id),
        };
        let subscription = self.inner.store.webhook_create(tenant, record).await?;
        self.inner.reload(Some(tenant)).await?;
        Ok(Created {
            subscription,
            secret,
        })
    }

    /// The tenant's active subscriptions, oldest first.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<WebhookSubscription>, WebhookError> {
        Ok(self.inner.store.webhook_subscriptions(tenant).await?)
    }

    /// One active subscription of the tenant: for callers that must check
    /// who owns it (a partner may manage only its own) before acting.
    pub async fn subscription(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<WebhookSubscription>, WebhookError> {
        Ok(self.list(tenant).await?.into_iter().find(|s| s.id == id))
    }

    /// Removes a subscription and cancels its pending deliveries; false
    /// when the tenant has no such subscription.
    pub async fn remove(&self, tenant: &TenantId, id: &str) -> Result<bool, WebhookError> {
        let removed = self.inner.store.webhook_remove(tenant, id).await?;
        if removed {
            self.inner.reload(Some(tenant)).await?;
            let mut secrets = self.inner.secrets.lock().await;
            secrets.retain(|(t, name), _| !(t == tenant && name == &format!("webhook.{id}")));
        }
        Ok(removed)
    }

    /// A subscription's newest deliveries with their attempts; `None` when
    /// the tenant has no such subscription.
    pub async fn deliveries(
        &self,
        tenant: &TenantId,
        id: &str,
        limit: i64,
    ) -> Result<Option<Vec<WebhookDeliveryRecord>>, WebhookError> {
        Ok(self
            .inner
            .store
            .webhook_deliveries(tenant, id, limit)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_must_be_known_and_are_deduplicated() {
        let ok = check_events(&["message.created".into(), "message.created".into()]);
        assert_eq!(ok.expect("valid"), vec![EventType::MessageCreated]);
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["message.deleted".into()]).is_err());
    }

    #[test]
    fn partner_names_are_slugs() {
        assert!(check_partner("crm-sync_2").is_ok());
        assert!(check_partner("").is_err());
        assert!(check_partner("Upper").is_err());
        assert!(check_partner(&"x".repeat(101)).is_err());
    }
}
