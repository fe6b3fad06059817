//! Palisade's relational store.
//!
//! One interface over SQLite (the embedded default, in WAL mode) and
//! PostgreSQL (at scale). The SQL is written once, in the dialect both
//! engines share, and run through sqlx's runtime `Any` driver; each backend has
//! its own migrations folder because DDL types differ.
//!
//! Invariants:
//! - every method that touches tenant data takes a [`TenantId`] and filters on
//!   it, so no caller can reach another tenant's rows by id (the webhook
//!   worker's outbox lease and subscription cache are the only cross-tenant
//!   reads, and each row they return carries its tenant);
//! - on PostgreSQL those methods also run through [`Store::tenant_tx`], as
//!   the role [`TENANT_ROLE`] that row-level security binds, with the tenant
//!   set for the transaction: a second wall if a filter is ever wrong. Only
//!   the platform paths listed in docs/SECURITY.md use the unbound pool;
//! - messages are written only by the [`MessageWriter`], one task that batches
//!   concurrent sends into one durable commit (group commit) and assigns each
//!   conversation's sequence numbers without gaps;
//! - message bodies, webhook payloads and visitors' names and emails are sealed with the
//!   tenant's data key before they reach SQL and opened after they leave it
//!   (see [`keyring`]); no plaintext of them is ever written to the database;
//! - this crate knows nothing of HTTP, sessions or fan-out.

mod api_keys;
mod audit;
mod canned;
mod conversations;
mod directory;
mod identity;
pub mod keyring;
mod legacy;
mod notes;
mod partners;
mod rows;
mod stats;
mod team;
mod tenants;
pub mod testing;
mod vault;
mod webhooks;
mod widgets;
mod writer;

pub use api_keys::{ApiKey, ApiKeyGrant, NewApiKey};
pub use audit::{
    AppendBuilder, AuditCheckpoint, AuditFilter, AuditHead, AuditRecord, CheckpointBuilder,
};
pub use directory::{AgentCredentials, NewAgent, NewWidget, SessionRecord, SessionStage};
pub use identity::{MfaRecord, TenantSettings};
pub use keyring::{PURGE_GRACE_MILLIS, RotationReport};
pub use partners::{NewPartnerCert, PartnerCertRecord};
pub use stats::{Backlog, DAY_MILLIS, DayStats, TenantStats};
pub use team::{AgentListing, LAST_OWNER, NewInvitation};
pub use tenants::TenantSummary;
pub use vault::{PLATFORM_SCOPE, VaultSecretMeta, VaultVersionMeta, VaultWrite};
pub use webhooks::{
    DeliveryStatus, DueWebhookDelivery, NewWebhookDelivery, NewWebhookSubscription, WebhookAttempt,
    WebhookAttemptRecord, WebhookDeliveryRecord, WebhookSubscription,
};
pub use writer::{Appended, CommitObserver, MessageWriter, NewMessage, PendingAppend, WriterError};

use keyring::KeyRing;
use palisade_crypto::KeyProvider;
use palisade_model::TenantId;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Which engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::BadUrl)
        }
    }
}

/// A store failure. Callers map `NotFound` and `Conflict` to answers the
/// client can act on; everything else is our failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database url must start with sqlite: or postgres:")]
    BadUrl,
    #[error("record not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("master key: {0}")]
    Keys(String),
    #[error("{what} could not be opened: {source}")]
    Unseal {
        what: String,
        source: palisade_crypto::SealError,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The PostgreSQL role tenant-scoped queries run as; row-level security
/// binds it (see the migration `0020_row_level_security.sql`).
pub const TENANT_ROLE: &str = "palisade_tenant";

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Platform paths: migrations and the few named lookups that span
    /// tenants (see docs/SECURITY.md). On SQLite, everything.
    pool: AnyPool,
    /// PostgreSQL only: connections that `SET ROLE` to [`TENANT_ROLE`], used
    /// through [`Store::tenant_tx`] for every tenant-scoped query.
    tenant_pool: Option<AnyPool>,
    backend: Backend,
    keys: Arc<KeyRing>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, applies the SQLite durability settings, runs the backend's
    /// migrations, checks the master key from `keys` against the database
    /// (see [`keyring`]) and seals any rows written before encryption existed.
    /// The url is never logged: it may hold a password.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes
                        // every commit durable; the busy timeout queues
                        // writers instead of failing them.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let tenant_pool = match backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                None
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Some(connect_tenant_pool(options, max_connections).await?)
            }
        };
        let keys = Arc::new(KeyRing::establish(&pool, keys).await?);
        let store = Self {
            pool,
            tenant_pool,
            backend,
            keys,
        };
        legacy::seal_unsealed_rows(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers on every pool (on PostgreSQL the
    /// tenant pool too, so a lost role shows): the ops listener's readiness
    /// check.
    pub async fn ping(&self) -> bool {
        let platform = sqlx::query("SELECT 1").execute(&self.pool).await.is_ok();
        match &self.tenant_pool {
            None => platform,
            Some(tenant_pool) => {
                platform && sqlx::query("SELECT 1").execute(tenant_pool).await.is_ok()
            }
        }
    }

    /// Closes every connection; pending writes must be drained first.
    pub async fn close(&self) {
        if let Some(tenant_pool) = &self.tenant_pool {
            tenant_pool.close().await;
        }
        self.pool.close().await;
    }

    /// Starts the group-commit writer for messages.
    pub fn spawn_message_writer(
        &self,
        observer: std::sync::Arc<dyn CommitObserver>,
    ) -> MessageWriter {
        MessageWriter::spawn(self.clone(), observer)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction for `tenant`'s rows. On PostgreSQL it runs on
    /// the tenant pool with `palisade.tenant_id` set for this transaction
    /// only, so row-level security admits that tenant's rows and no other;
    /// the queries inside keep their own `tenant_id` filters as the first
    /// wall. On SQLite it is a plain transaction.
    pub(crate) async fn tenant_tx(&self, tenant: &TenantId) -> Result<Transaction<'static, Any>> {
        match &self.tenant_pool {
            None => Ok(self.pool.begin().await?),
            Some(tenant_pool) => {
                let mut tx = tenant_pool.begin().await?;
                set_tenant(&mut tx, tenant.as_str()).await?;
                Ok(tx)
            }
        }
    }

    /// [`Store::tenant_tx`] for `Some`; for `None` (an operator's or the
    /// CLI's view of every tenant, a platform path) a transaction on the
    /// platform pool.
    pub(crate) async fn tenant_or_platform_tx(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Transaction<'static, Any>> {
        match tenant {
            Some(tenant) => self.tenant_tx(tenant).await,
            None => Ok(self.pool.begin().await?),
        }
    }

    /// Like [`Store::tenant_tx`], but on SQLite takes the write lock first
    /// (`BEGIN IMMEDIATE`), for transactions that read before they write.
    pub(crate) async fn tenant_write_tx(
        &self,
        tenant: &TenantId,
    ) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => self.tenant_tx(tenant).await,
        }
    }

    /// Opens a transaction on the tenant pool with no tenant set (so RLS
    /// admits no row until [`set_tenant`] runs), or on SQLite one that holds
    /// the write lock: for the writer, which sets each batch tenant in turn.
    pub(crate) async fn scoped_write_tx(&self) -> Result<Transaction<'static, Any>> {
        match &self.tenant_pool {
            None => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Some(tenant_pool) => Ok(tenant_pool.begin().await?),
        }
    }

    /// A tenant-pool transaction with no tenant set (tests only use it to
    /// show that such a transaction sees nothing).
    pub(crate) async fn unscoped_tenant_tx(&self) -> Result<Transaction<'static, Any>> {
        match &self.tenant_pool {
            None => Ok(self.pool.begin().await?),
            Some(tenant_pool) => Ok(tenant_pool.begin().await?),
        }
    }

    pub(crate) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The id of the master key the database is sealed with (not secret).
    pub fn master_key_id(&self) -> String {
        self.keys.master().id().to_string()
    }

    /// Makes a new data-key version the tenant's active one; older versions
    /// stay readable. Safe while servers run: their next write batch reads
    /// the active version again.
    pub async fn rotate_data_key(&self, tenant: &TenantId) -> Result<i64> {
        self.keys
            .rotate_data_key(&self.pool, self.backend, tenant.as_str())
            .await
    }

    /// Wraps every data key with a new master key (no sealed row changes).
    /// Running servers pick the new key up from their provider when they
    /// next load a data key.
    pub async fn rotate_master_key(&self) -> Result<RotationReport> {
        self.keys.rotate_master(&self.pool, self.backend).await
    }

    /// The tenant's data-key versions and whether each is active, oldest first.
    pub async fn data_key_versions(&self, tenant: &TenantId) -> Result<Vec<(i64, bool)>> {
        let found = sqlx::query(
            "SELECT version, state FROM data_keys WHERE tenant_id = $1 ORDER BY version",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok((
                    rows::int(row, "version")?,
                    rows::text(row, "state")? == "active",
                ))
            })
            .collect()
    }

    /// Deletes the tenant's retired data-key versions that no row uses any
    /// more and that were retired more than [`PURGE_GRACE_MILLIS`] before
    /// `now`; returns the versions deleted.
    pub async fn purge_retired_data_keys(&self, tenant: &TenantId, now: i64) -> Result<Vec<i64>> {
        let found = sqlx::query(
            "DELETE FROM data_keys WHERE tenant_id = $1 AND state = 'retired' \
             AND retired_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = $1 \
                 AND m.key_version = data_keys.version) \
             AND NOT EXISTS (SELECT 1 FROM notes n WHERE n.tenant_id = $1 \
                 AND n.key_version = data_keys.version) \
             AND NOT EXISTS (SELECT 1 FROM visitors v WHERE v.tenant_id = $1 \
                 AND v.key_version = data_keys.version) \
             AND NOT EXISTS (SELECT 1 FROM vault_versions s WHERE s.scope = $1 \
                 AND s.key_version = data_keys.version) \
             AND NOT EXISTS (SELECT 1 FROM mfa_totp t WHERE t.tenant_id = $1 \
                 AND t.key_version = data_keys.version) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = $1 \
                 AND d.key_version = data_keys.version) \
             RETURNING version",
        )
        .bind(tenant.as_str())
        .bind(now - PURGE_GRACE_MILLIS)
        .fetch_all(&self.pool)
        .await?;
        let mut versions = found
            .iter()
            .map(|row| rows::int(row, "version"))
            .collect::<Result<Vec<_>>>()?;
        versions.sort_unstable();
        Ok(versions)
    }

    /// The tenant with this slug, if any.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<TenantId>> {
        let row = sqlx::query("SELECT id FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok(TenantId::from_raw(rows::text(&row, "id")?)))
            .transpose()
    }

    /// Creates a tenant, or returns the existing one with this slug.
    pub async fn ensure_tenant(&self, slug: &str, name: &str) -> Result<TenantId> {
        directory::ensure_tenant(self, slug, name).await
    }
}

/// Opens the PostgreSQL pool whose connections drop to [`TENANT_ROLE`] at
/// once. A connection that cannot switch role is refused, so a database
/// without the role fails start-up instead of running unbound.
async fn connect_tenant_pool(options: AnyConnectOptions, max_connections: u32) -> Result<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("SET ROLE palisade_tenant").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Sets the tenant row-level security admits for the rest of the current
/// PostgreSQL transaction (a no-op outside PostgreSQL's tenant pool is the
/// caller's business: SQLite has no such setting).
pub(crate) async fn set_tenant(conn: &mut AnyConnection, tenant: &str) -> Result<()> {
    sqlx::query("SELECT set_config('palisade.tenant_id', $1, true)")
        .bind(tenant)
        .execute(conn)
        .await?;
    Ok(())
}
