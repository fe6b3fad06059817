//! The state the service and its tasks share: the store, the vault, the
//! delivery client, which subscription listens to what (per tenant, in
//! memory) and the signing secrets read so far.

use crate::{EventType, PRINCIPAL, Settings, Stats, WebhookSubscription, client};
use palisade_model::TenantId;
use palisade_store::{Store, StoreError};
use palisade_vault::{Access, SecretValue, Vault, VaultError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// How often the subscription map is re-read (other processes may change it).
const REFRESH: Duration = Duration::from_secs(30);

type Interest = Vec<(String, HashSet<EventType>)>;

/// Shared by the service handle, the enqueuer, the drain task and the worker.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    pub(crate) settings: Settings,
    pub(crate) client: client::Client,
    /// Per tenant: each active subscription's id and events.
    pub(crate) interest: RwLock<HashMap<TenantId, Interest>>,
    pub(crate) secrets: tokio::sync::Mutex<HashMap<(TenantId, String), Arc<SecretValue>>>,
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

    pub(crate) fn set_interest(&self, all: Vec<WebhookSubscription>, only: Option<&TenantId>) {
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

    pub(crate) async fn reload(&self, tenant: Option<&TenantId>) -> Result<(), StoreError> {
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

/// Re-reads every tenant's subscriptions now and then, so changes made by
/// another process reach this one's enqueuer.
pub(crate) async fn refresh(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(REFRESH);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(err) = inner.reload(None).await {
            tracing::warn!(error = %err, "re-reading webhook subscriptions failed");
        }
    }
}
