//! Storage for the vault: secrets' metadata and sealed versions. Values are
//! sealed here with the scope's data key, bound to scope, secret name and
//! version, and opened only by [`Store::vault_open`]. Who may read, and the
//! audit of every access, are the `palisade-vault` crate's business.

use crate::keyring::KeyRing;
use crate::rows;
use crate::{Backend, Result, Store, StoreError};
use palisade_model::now_millis;
use sqlx::any::AnyRow;

/// The scope of Palisade's own secrets (a reserved tenant row).
pub const PLATFORM_SCOPE: &str = "platform";
const VALUE: (&str, &str) = ("vault_versions", "value");

/// A new version to store.
pub struct VaultWrite<'a> {
    pub scope: &'a str,
    pub name: &'a str,
    /// The secret's policy as JSON; replaces the stored one.
    pub policy: &'a str,
    pub value: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<i64>,
    /// Until when the version this one replaces stays valid.
    pub previous_valid_until: i64,
}

impl std::fmt::Debug for VaultWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultWrite")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A secret without its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSecretMeta {
    pub scope: String,
    pub name: String,
    pub policy: String,
    pub current_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A version without its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultVersionMeta {
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub superseded_at: Option<i64>,
    pub valid_until: Option<i64>,
}

fn record_of(scope: &str, name: &str, version: i64) -> String {
    format!("{}:{scope}/{name}#{version}", name.len())
}

fn secret_meta(row: &AnyRow) -> Result<VaultSecretMeta> {
    Ok(VaultSecretMeta {
        scope: rows::text(row, "scope")?,
        name: rows::text(row, "name")?,
        policy: rows::text(row, "policy")?,
        current_version: rows::int(row, "current_version")?,
        created_at: rows::int(row, "created_at")?,
        updated_at: rows::int(row, "updated_at")?,
    })
}

impl Store {
    /// Current secret versions that expire before `before` (already expired
    /// included), without their values: (scope, name, version, expires_at).
    pub async fn vault_expiring(&self, before: i64) -> Result<Vec<(String, String, i64, i64)>> {
        let found = sqlx::query(
            "SELECT v.scope, v.name, v.version, v.expires_at FROM vault_versions v \
             JOIN vault_secrets s ON s.scope = v.scope AND s.name = v.name \
             AND s.current_version = v.version \
             WHERE v.expires_at IS NOT NULL AND v.expires_at < $1 ORDER BY v.expires_at",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        found
            .iter()
            .map(|row| {
                Ok((
                    crate::rows::text(row, "scope")?,
                    crate::rows::text(row, "name")?,
                    crate::rows::int(row, "version")?,
                    crate::rows::int(row, "expires_at")?,
                ))
            })
            .collect()
    }

    /// Stores a new version and makes it current; returns its number. The
    /// previous version is marked superseded, valid until `previous_valid_until`.
    pub async fn vault_put(&self, write: VaultWrite<'_>) -> Result<i64> {
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        let now = now_millis();
        sqlx::query(
            "INSERT INTO vault_secrets (scope, name, policy, current_version, created_at, \
             updated_at) VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (scope, name) DO NOTHING",
        )
        .bind(write.scope)
        .bind(write.name)
        .bind(write.policy)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "UPDATE vault_secrets SET current_version = current_version + 1, policy = $3, \
             updated_at = $4 WHERE scope = $1 AND name = $2 RETURNING current_version",
        )
        .bind(write.scope)
        .bind(write.name)
        .bind(write.policy)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let version = rows::int(&row, "current_version")?;
        sqlx::query(
            "UPDATE vault_versions SET superseded_at = $4, valid_until = $5 \
             WHERE scope = $1 AND name = $2 AND version = $3 AND superseded_at IS NULL",
        )
        .bind(write.scope)
        .bind(write.name)
        .bind(version - 1)
        .bind(now)
        .bind(write.previous_valid_until)
        .execute(&mut *tx)
        .await?;
        let (key_version, key) = self.keys().active_key(&mut tx, write.scope).await?;
        let record = record_of(write.scope, write.name, version);
        let sealed = KeyRing::seal(&key, write.scope, VALUE, &record, write.value)?;
        sqlx::query(
            "INSERT INTO vault_versions (scope, name, version, sealed, key_version, created_at, \
             created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(write.scope)
        .bind(write.name)
        .bind(version)
        .bind(sealed)
        .bind(key_version)
        .bind(now)
        .bind(write.created_by)
        .bind(write.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn vault_secret(&self, scope: &str, name: &str) -> Result<Option<VaultSecretMeta>> {
        let row = sqlx::query(
            "SELECT scope, name, policy, current_version, created_at, updated_at \
             FROM vault_secrets WHERE scope = $1 AND name = $2",
        )
        .bind(scope)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(secret_meta).transpose()
    }

    pub async fn vault_secrets(&self, scope: &str) -> Result<Vec<VaultSecretMeta>> {
        let found = sqlx::query(
            "SELECT scope, name, policy, current_version, created_at, updated_at \
             FROM vault_secrets WHERE scope = $1 ORDER BY name",
        )
        .bind(scope)
        .fetch_all(self.pool())
        .await?;
        found.iter().map(secret_meta).collect()
    }

    /// Every version's metadata, newest first.
    pub async fn vault_versions(&self, scope: &str, name: &str) -> Result<Vec<VaultVersionMeta>> {
        let found = sqlx::query(
            "SELECT version, created_at, created_by, expires_at, superseded_at, valid_until \
             FROM vault_versions WHERE scope = $1 AND name = $2 ORDER BY version DESC",
        )
        .bind(scope)
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(VaultVersionMeta {
                    version: rows::int(row, "version")?,
                    created_at: rows::int(row, "created_at")?,
                    created_by: rows::text(row, "created_by")?,
                    expires_at: rows::opt_int(row, "expires_at")?,
                    superseded_at: rows::opt_int(row, "superseded_at")?,
                    valid_until: rows::opt_int(row, "valid_until")?,
                })
            })
            .collect()
    }

    /// Deletes a secret and every version of it; true when there was one. The caller has
    /// audited the deletion.
    pub async fn vault_delete(&self, scope: &str, name: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM vault_versions WHERE scope = $1 AND name = $2")
            .bind(scope)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM vault_secrets WHERE scope = $1 AND name = $2")
            .bind(scope)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Opens one version's value. The caller has checked and audited the read.
    pub async fn vault_open(&self, scope: &str, name: &str, version: i64) -> Result<String> {
        let row = sqlx::query(
            "SELECT sealed, key_version FROM vault_versions \
             WHERE scope = $1 AND name = $2 AND version = $3",
        )
        .bind(scope)
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        let record = record_of(scope, name, version);
        self.keys()
            .open(
                self.pool(),
                scope,
                VALUE,
                &record,
                rows::opt_int(&row, "key_version")?,
                &rows::text(&row, "sealed")?,
            )
            .await
    }
}
