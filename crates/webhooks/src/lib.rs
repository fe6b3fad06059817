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
use palisade_vault::{Access, Policy, SecretValue, Vault, VaultError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

/// The vault reader every subscription secret names.
pub const PRINCIPAL: &str = "webhooks";
/// The most subscriptions one tenant may have.
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// How often the subscription cache is re-read (other processes may change it).
const REFRESH: Duration = Duration::from_secs(30);

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

type Interest = Vec<(String, HashSet<EventType>)>;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    vault: Vault,
    pub(crate) settings: Settings,
    pub(crate) client: client::Client,
    /// Per tenant: each active subscription's id and events.
    interest: RwLock<HashMap<TenantId, Interest>>,
    secrets: tokio::sync::Mutex<HashMap<(TenantId, String), Arc<SecretValue>>>,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) stats: Stats,
}

impl Inner {
    pub(crate) fn wants(&self, tenant: &TenantId, event: EventType) -> bool {
        let interest = self.interest.read().unwrap_or_else(PoisonError::into_inner);
        interest
            .get(tenant)
            .is_some_and(|subs| subs.iter().any(|(_, events)| events.contains(&event)))
    }

    pub(crate) fn subscribed(&self, tenant: &TenantId, event: EventType) -> Vec<String> {
        let interest = self.interest.read().unwrap_or_else(PoisonError::into_inner);
        interest.get(tenant).map_or_else(Vec::new, |subs| {
            subs.iter()
                .filter(|(_, events)| events.contains(&event))
                .map(|(id, _)| id.clone())
                .collect()
        })
    }

    pub(crate) fn lease_millis(&self) -> i64 {
        let lease = self.settings.request_timeout + Duration::from_secs(30);
        i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn set_interest(&self, all: Vec<WebhookSubscription>, only: Option<&TenantId>) {
        let mut fresh: HashMap<TenantId, Interest> = HashMap::new();
        for sub in all {
            let events = sub
                .events
                .iter()
                .filter_map(|e| EventType::parse(e))
                .collect();
            fresh
                .entry(sub.tenant_id.clone())
                .or_default()
                .push((sub.id, events));
        }
        let mut interest = self
            .interest
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match only {
            Some(tenant) => {
                interest.remove(tenant);
                interest.extend(fresh);
            }
            None => *interest = fresh,
        }
    }

    async fn reload(&self, tenant: Option<&TenantId>) -> Result<(), StoreError> {
        let all = match tenant {
            Some(tenant) => self.store.webhook_subscriptions(tenant).await?,
            None => self.store.webhook_all_subscriptions().await?,
        };
        self.set_interest(all, tenant);
        Ok(())
    }

    /// The subscription's signing secret, read from the vault once per
    /// process (each read is audited by the vault) and kept in memory.
    pub(crate) async fn secret(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Arc<SecretValue>, VaultError> {
        let mut cache = self.secrets.lock().await;
        let key = (tenant.clone(), name.to_owned());
        if let Some(secret) = cache.get(&key) {
            return Ok(secret.clone());
        }
        let access = system_access("sign webhook deliveries");
        let secret = Arc::new(self.vault.read(tenant.as_str(), name, &access).await?);
        cache.insert(key, secret.clone());
        Ok(secret)
    }
}

fn system_access(reason: &str) -> Access {
    Access {
        actor_kind: palisade_audit::ActorKind::System,
        actor_id: "palisade".into(),
        principal: palisade_vault::Principal::System(PRINCIPAL.into()),
        source: "internal".into(),
        reason: reason.into(),
        request_id: uuid::Uuid::new_v4().simple().to_string(),
    }
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
            tokio::spawn(refresh(inner.clone())),
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

/// Re-reads every tenant's subscriptions now and then, so changes made by
/// another process reach this one's enqueuer.
async fn refresh(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(REFRESH);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(err) = inner.reload(None).await {
            tracing::warn!(error = %err, "re-reading webhook subscriptions failed");
        }
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
