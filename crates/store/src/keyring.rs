//! The store's side of envelope encryption: checking the master key at
//! start-up, finding, creating, caching and rotating tenants' data keys, and
//! sealing or opening the encrypted columns.
//!
//! Invariants:
//! - a master key is only ever created for a database that holds no data key
//!   and no key-check value; a missing or wrong key over existing data stops
//!   start-up with a message naming where the key was looked for;
//! - unwrapped data keys live only in this process's memory;
//! - a data key wrapped by a master key this process does not hold (another
//!   process rotated it) makes the ring ask its [`KeyProvider`] again, so a
//!   running server follows a rotation without restarting;
//! - a retired data-key version stays readable until no row uses it.

use crate::rows;
use crate::{Backend, Result, StoreError};
use palisade_crypto::{DataKey, FieldRef, KeyProvider, MasterKey, SealError, WrapRef};
use palisade_model::now_millis;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Columns sealed by the store, as named in associated data.
pub(crate) const MESSAGE_BODY: (&str, &str) = ("messages", "body");
pub(crate) const NOTE_BODY: (&str, &str) = ("notes", "body");
pub(crate) const VISITOR_NAME: (&str, &str) = ("visitors", "name");
pub(crate) const VISITOR_EMAIL: (&str, &str) = ("visitors", "email");
pub(crate) const MFA_SECRET: (&str, &str) = ("mfa_totp", "secret");
pub(crate) const WEBHOOK_PAYLOAD: (&str, &str) = ("webhook_deliveries", "payload");

/// Retired data keys younger than this are never purged, so a write that read
/// the active version just before a rotation has long committed.
pub const PURGE_GRACE_MILLIS: i64 = 10 * 60 * 1000;

/// What a rotation or purge did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub master_key_id: String,
    pub rewrapped: u64,
}

pub(crate) struct KeyRing {
    provider: Arc<dyn KeyProvider>,
    master: RwLock<MasterKey>,
    keys: RwLock<HashMap<(String, i64), DataKey>>,
}

fn keys_error(message: String) -> StoreError {
    StoreError::Keys(message)
}

fn provider_error(err: palisade_crypto::KeyError) -> StoreError {
    StoreError::Keys(err.to_string())
}

fn seal_error(what: String) -> impl FnOnce(SealError) -> StoreError {
    move |source| StoreError::Unseal { what, source }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

impl KeyRing {
    /// Checks (or, on a database that never held sealed data, establishes)
    /// the master key.
    pub(crate) async fn establish(pool: &AnyPool, provider: Arc<dyn KeyProvider>) -> Result<Self> {
        let check = sqlx::query("SELECT master_id, sealed FROM key_check WHERE id = 1")
            .fetch_optional(pool)
            .await?;
        let master = match check {
            None => first_master(pool, provider.as_ref()).await?,
            Some(row) => {
                let expected = rows::text(&row, "master_id")?;
                let sealed = rows::text(&row, "sealed")?;
                matching_master(provider.as_ref(), &expected, &sealed)?
            }
        };
        Ok(Self {
            provider,
            master: RwLock::new(master),
            keys: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn master(&self) -> MasterKey {
        read(&self.master)
    }

    fn cached(&self, tenant: &str, version: i64) -> Option<DataKey> {
        let keys = match self.keys.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.get(&(tenant.to_owned(), version)).cloned()
    }

    fn remember(&self, tenant: &str, version: i64, key: DataKey) {
        let mut keys = match self.keys.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.insert((tenant.to_owned(), version), key);
    }

    /// The master key that wrapped a row, asking the provider again when it
    /// is not the one held (another process rotated it).
    fn master_for(&self, master_id: &str) -> Result<MasterKey> {
        let held = self.master();
        if held.id().as_str() == master_id {
            return Ok(held);
        }
        let fresh = self.provider.load().map_err(provider_error)?;
        match fresh {
            Some(key) if key.id().as_str() == master_id => {
                tracing::info!(master_key = %key.id(), "master key rotated elsewhere; now using it");
                *match self.master.write() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                } = key.clone();
                Ok(key)
            }
            _ => Err(keys_error(format!(
                "a data key is wrapped by master key {master_id}, which {} does not hold \
                 (it holds {}); restore the master key that matches the database",
                self.provider.describe(),
                held.id()
            ))),
        }
    }

    /// Version `version` of the tenant's data key.
    pub(crate) async fn key<'e, E>(&self, ex: E, tenant: &str, version: i64) -> Result<DataKey>
    where
        E: Executor<'e, Database = Any>,
    {
        if let Some(key) = self.cached(tenant, version) {
            return Ok(key);
        }
        let row = sqlx::query(
            "SELECT wrapped, master_id FROM data_keys WHERE tenant_id = $1 AND version = $2",
        )
        .bind(tenant)
        .bind(version)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "data key version {version} of tenant {tenant} is missing (purged or deleted)"
            ))
        })?;
        let master = self.master_for(&rows::text(&row, "master_id")?)?;
        let wrapped = rows::text(&row, "wrapped")?;
        let at = WrapRef { tenant, version };
        let key = master.unwrap_key(at, &wrapped).map_err(seal_error(format!(
            "data key version {version} of tenant {tenant}"
        )))?;
        self.remember(tenant, version, key.clone());
        Ok(key)
    }

    /// The tenant's active data key and its version, creating version 1 for a
    /// tenant that has none.
    pub(crate) async fn active_key(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
    ) -> Result<(i64, DataKey)> {
        for _ in 0..2 {
            if let Some(version) = active_version(&mut *conn, tenant).await? {
                return Ok((version, self.key(&mut *conn, tenant, version).await?));
            }
            self.create_first_key(conn, tenant).await?;
        }
        Err(keys_error(format!(
            "tenant {tenant} has no active data key and none could be created: the master key \
             changed while creating one; retry"
        )))
    }

    async fn create_first_key(&self, conn: &mut AnyConnection, tenant: &str) -> Result<()> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM data_keys WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await?;
        let version = rows::int(&row, "next")?;
        let master = self.master();
        let key = DataKey::generate().map_err(seal_error("a new data key".into()))?;
        let wrapped = master
            .wrap(WrapRef { tenant, version }, &key)
            .map_err(seal_error("a new data key".into()))?;
        // Inserted only while the database's key check still names our master
        // key, so a concurrent master-key rotation cannot miss this row.
        let done = sqlx::query(
            "INSERT INTO data_keys (tenant_id, version, wrapped, master_id, state, created_at) \
             SELECT $1, $2, $3, $4, 'active', $5 \
             WHERE EXISTS (SELECT 1 FROM key_check WHERE id = 1 AND master_id = $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(version)
        .bind(wrapped)
        .bind(master.id().as_str())
        .bind(now_millis())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            // Either another writer created it (fine) or the master key
            // changed: pick up the current one before the retry.
            if let Ok(Some(fresh)) = self.provider.load() {
                *match self.master.write() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                } = fresh;
            }
        }
        Ok(())
    }

    /// Seals `plaintext` for the given column of a record.
    pub(crate) fn seal(
        key: &DataKey,
        tenant: &str,
        column: (&str, &str),
        record: &str,
        plaintext: &str,
    ) -> Result<String> {
        let at = FieldRef {
            tenant,
            table: column.0,
            record,
            field: column.1,
        };
        key.seal(at, plaintext)
            .map_err(seal_error(format!("{}.{} of {record}", column.0, column.1)))
    }

    /// Opens a sealed column; `version` is the row's key version.
    pub(crate) async fn open<'e, E>(
        &self,
        ex: E,
        tenant: &str,
        column: (&str, &str),
        record: &str,
        version: Option<i64>,
        sealed: &str,
    ) -> Result<String>
    where
        E: Executor<'e, Database = Any>,
    {
        let what = || format!("{}.{} of {} (tenant {tenant})", column.0, column.1, record);
        let version = version.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} has no key version: it was never sealed",
                what()
            ))
        })?;
        let key = self.key(ex, tenant, version).await?;
        let at = FieldRef {
            tenant,
            table: column.0,
            record,
            field: column.1,
        };
        key.open(at, sealed).map_err(seal_error(what()))
    }
}

async fn active_version(conn: &mut AnyConnection, tenant: &str) -> Result<Option<i64>> {
    let row =
        sqlx::query("SELECT version FROM data_keys WHERE tenant_id = $1 AND state = 'active'")
            .bind(tenant)
            .fetch_optional(conn)
            .await?;
    row.as_ref()
        .map(|row| rows::int(row, "version"))
        .transpose()
}

/// A database without a key check: refuse if it holds data keys anyway,
/// else take (or create) the provider's key and record its check value.
async fn first_master(pool: &AnyPool, provider: &dyn KeyProvider) -> Result<MasterKey> {
    let wrapped = sqlx::query("SELECT COUNT(*) AS n FROM data_keys")
        .fetch_one(pool)
        .await?;
    if rows::int(&wrapped, "n")? > 0 {
        return Err(keys_error(
            "the database holds wrapped data keys but no master key check value (table \
             key_check was emptied); restore the database from a backup"
                .into(),
        ));
    }
    let master = match provider.load().map_err(provider_error)? {
        Some(key) => key,
        None => {
            let key = provider.create().map_err(provider_error)?;
            tracing::info!(master_key = %key.id(), "created a new master key");
            key
        }
    };
    let check = master
        .key_check()
        .map_err(seal_error("the master key check value".into()))?;
    sqlx::query(
        "INSERT INTO key_check (id, master_id, sealed, updated_at) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(master.id().as_str())
    .bind(check)
    .bind(now_millis())
    .execute(pool)
    .await?;
    // Two servers starting on one new database: whoever wrote first wins,
    // and the other must hold the same key.
    let row = sqlx::query("SELECT master_id, sealed FROM key_check WHERE id = 1")
        .fetch_one(pool)
        .await?;
    matching_master(
        provider,
        &rows::text(&row, "master_id")?,
        &rows::text(&row, "sealed")?,
    )
}

/// The provider's master key, if it opens the database's check value; a
/// staged key from an interrupted rotation is promoted when it is the match.
fn matching_master(provider: &dyn KeyProvider, expected: &str, check: &str) -> Result<MasterKey> {
    let current = provider.load().map_err(provider_error)?;
    if let Some(key) = &current
        && key.matches_check(check)
    {
        return Ok(key.clone());
    }
    if let Some(staged) = provider.staged().map_err(provider_error)?
        && staged.matches_check(check)
    {
        provider.promote().map_err(provider_error)?;
        tracing::info!(master_key = %staged.id(), "finished an interrupted master-key rotation");
        return Ok(staged);
    }
    Err(keys_error(match current {
        None => format!(
            "the database holds data sealed by master key {expected}, but {} does not exist; \
             restore that key (or set PALISADE_MASTER_KEY). No new key is created, because \
             it could not read the existing data",
            provider.describe()
        ),
        Some(key) => format!(
            "{} holds master key {}, but the database was sealed with master key {expected}: \
             wrong key; restore the matching key file or PALISADE_MASTER_KEY",
            provider.describe(),
            key.id()
        ),
    }))
}

/// Rotation and purging, run by operator commands on a live database.
impl KeyRing {
    /// Retires the tenant's active data key and makes a new version active.
    pub(crate) async fn rotate_data_key(
        &self,
        pool: &AnyPool,
        backend: Backend,
        tenant: &str,
    ) -> Result<i64> {
        let mut tx = begin_write(pool, backend).await?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM data_keys WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        let version = rows::int(&row, "next")?;
        let master = self.current_master_in(&mut tx).await?;
        let key = DataKey::generate().map_err(seal_error("a new data key".into()))?;
        let wrapped = master
            .wrap(WrapRef { tenant, version }, &key)
            .map_err(seal_error("a new data key".into()))?;
        let now = now_millis();
        sqlx::query(
            "UPDATE data_keys SET state = 'retired', retired_at = $2 \
             WHERE tenant_id = $1 AND state = 'active'",
        )
        .bind(tenant)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO data_keys (tenant_id, version, wrapped, master_id, state, created_at) \
             VALUES ($1, $2, $3, $4, 'active', $5)",
        )
        .bind(tenant)
        .bind(version)
        .bind(wrapped)
        .bind(master.id().as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.remember(tenant, version, key);
        Ok(version)
    }

    /// The master key the database is sealed with, checked inside `tx`.
    async fn current_master_in(
        &self,
        tx: &mut sqlx::Transaction<'static, Any>,
    ) -> Result<MasterKey> {
        let row = sqlx::query("SELECT master_id FROM key_check WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        self.master_for(&rows::text(&row, "master_id")?)
    }

    /// Wraps every data key with a new master key, without touching any
    /// sealed row. The new key is staged with the provider first and made
    /// current only after the database commit, and start-up finishes a
    /// rotation interrupted between the two.
    pub(crate) async fn rotate_master(
        &self,
        pool: &AnyPool,
        backend: Backend,
    ) -> Result<RotationReport> {
        let next = MasterKey::generate().map_err(seal_error("a new master key".into()))?;
        self.provider.stage(&next).map_err(provider_error)?;
        let mut rewrapped = 0;
        let mut tx = begin_write(pool, backend).await?;
        if backend == Backend::Postgres {
            // Blocks new data keys until the rewrap commits (SQLite's
            // BEGIN IMMEDIATE already serialises writers).
            sqlx::query("LOCK TABLE key_check, data_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let old = self.current_master_in(&mut tx).await?;
        rewrapped += rewrap_all(&mut tx, &old, &next).await?;
        let check = next
            .key_check()
            .map_err(seal_error("the master key check value".into()))?;
        sqlx::query(
            "UPDATE key_check SET master_id = $1, sealed = $2, updated_at = $3 WHERE id = 1",
        )
        .bind(next.id().as_str())
        .bind(check)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.provider.promote().map_err(provider_error)?;
        *match self.master.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        } = next.clone();
        // A key another process wrapped with the old master key and committed
        // while we rewrapped is caught here, while the old key is still in memory.
        let mut tx = begin_write(pool, backend).await?;
        rewrapped += rewrap_all(&mut tx, &old, &next).await?;
        tx.commit().await?;
        tracing::info!(master_key = %next.id(), rewrapped, "master key rotated");
        Ok(RotationReport {
            master_key_id: next.id().to_string(),
            rewrapped,
        })
    }
}

async fn begin_write(pool: &AnyPool, backend: Backend) -> Result<sqlx::Transaction<'static, Any>> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

async fn rewrap_all(
    tx: &mut sqlx::Transaction<'static, Any>,
    old: &MasterKey,
    next: &MasterKey,
) -> Result<u64> {
    let found = sqlx::query(
        "SELECT tenant_id, version, wrapped FROM data_keys WHERE master_id = $1 \
         ORDER BY tenant_id, version",
    )
    .bind(old.id().as_str())
    .fetch_all(&mut **tx)
    .await?;
    let mut count = 0;
    for row in &found {
        let tenant = rows::text(row, "tenant_id")?;
        let version = rows::int(row, "version")?;
        let at = WrapRef {
            tenant: &tenant,
            version,
        };
        let what = || format!("data key version {version} of tenant {tenant}");
        let key = old
            .unwrap_key(at, &rows::text(row, "wrapped")?)
            .map_err(seal_error(what()))?;
        let wrapped = next.wrap(at, &key).map_err(seal_error(what()))?;
        sqlx::query(
            "UPDATE data_keys SET wrapped = $3, master_id = $4 \
             WHERE tenant_id = $1 AND version = $2",
        )
        .bind(&tenant)
        .bind(version)
        .bind(wrapped)
        .bind(next.id().as_str())
        .execute(&mut **tx)
        .await?;
        count += 1;
    }
    Ok(count)
}
