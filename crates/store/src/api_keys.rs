//! Tenant API keys. Only the SHA-256 of a token is stored; a key holds a
//! set of permissions chosen by its creator, expires, and can be revoked.
//! Every statement is scoped by tenant, but for the lookup by token hash
//! that authenticates a request.

use crate::rows;
use crate::{Result, Store, StoreError};
use palisade_model::{AgentId, ApiKeyId, Permission, TenantId, now_millis};
use serde::Serialize;
use sqlx::any::AnyRow;

/// An API key as the admin API lists it (never its token or hash).
#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub permissions: Vec<Permission>,
    pub created_by: AgentId,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key that authenticated a request: its tenant and what it holds.
#[derive(Clone, Debug)]
pub struct ApiKeyGrant {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub created_by: AgentId,
    pub permissions: Vec<Permission>,
    pub last_used_at: Option<i64>,
}

/// A key to create; the token arrives already hashed.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub token_hash: &'a str,
    pub permissions: &'a [Permission],
    pub created_by: &'a AgentId,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, name, prefix, permissions, created_by, created_at, expires_at, \
     last_used_at, revoked_at";

fn permissions(row: &AnyRow) -> Result<Vec<Permission>> {
    rows::text(row, "permissions")?
        .split_whitespace()
        .map(|raw| {
            Permission::parse(raw)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown permission {raw:?}")))
        })
        .collect()
}

fn api_key(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId::from_raw(rows::text(row, "id")?),
        name: rows::text(row, "name")?,
        prefix: rows::text(row, "prefix")?,
        permissions: permissions(row)?,
        created_by: AgentId::from_raw(rows::text(row, "created_by")?),
        created_at: rows::int(row, "created_at")?,
        expires_at: rows::int(row, "expires_at")?,
        last_used_at: rows::opt_int(row, "last_used_at")?,
        revoked_at: rows::opt_int(row, "revoked_at")?,
    })
}

impl Store {
    pub async fn create_api_key(&self, tenant: &TenantId, new: NewApiKey<'_>) -> Result<ApiKey> {
        let id = ApiKeyId::generate();
        let now = now_millis();
        let names: Vec<&str> = new.permissions.iter().map(|p| p.as_str()).collect();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, token_hash, \
             permissions, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(new.created_by.as_str())
        .bind(new.name)
        .bind(new.prefix)
        .bind(new.token_hash)
        .bind(names.join(" "))
        .bind(now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ApiKey {
            id,
            name: new.name.to_owned(),
            prefix: new.prefix.to_owned(),
            permissions: new.permissions.to_vec(),
            created_by: new.created_by.clone(),
            created_at: now,
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The tenant's keys, newest first, revoked and expired ones included.
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(api_key).collect()
    }

    /// One key of the tenant, revoked or not.
    pub async fn api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(api_key).transpose()
    }

    /// Revokes a key of the tenant. NotFound when the tenant has no such
    /// key that is not already revoked.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The unrevoked, unexpired key with this token hash. The lookup reads
    /// the database each time, so a revocation applies to the next request.
    pub async fn api_key_grant(&self, token_hash: &str) -> Result<Option<ApiKeyGrant>> {
        let row = sqlx::query(
            "SELECT id, tenant_id, created_by, permissions, last_used_at FROM api_keys \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_millis())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ApiKeyGrant {
            id: ApiKeyId::from_raw(rows::text(&row, "id")?),
            tenant_id: TenantId::from_raw(rows::text(&row, "tenant_id")?),
            created_by: AgentId::from_raw(rows::text(&row, "created_by")?),
            permissions: permissions(&row)?,
            last_used_at: rows::opt_int(&row, "last_used_at")?,
        }))
    }

    /// Notes that a key was used at `at`.
    pub async fn touch_api_key(&self, tenant: &TenantId, id: &ApiKeyId, at: i64) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
