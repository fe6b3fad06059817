//! The platform's list of tenants, for operators: names only, never a
//! tenant's data.

use crate::rows;
use crate::{Result, Store, StoreError};
use palisade_model::{TenantId, now_millis};
use serde::Serialize;

/// A tenant as operators see it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantSummary {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

fn summary(row: &sqlx::any::AnyRow) -> Result<TenantSummary> {
    Ok(TenantSummary {
        id: TenantId::from_raw(rows::text(row, "id")?),
        slug: rows::text(row, "slug")?,
        name: rows::text(row, "name")?,
        created_at: rows::int(row, "created_at")?,
    })
}

impl Store {
    /// Every tenant, oldest first.
    pub async fn tenant_summaries(&self) -> Result<Vec<TenantSummary>> {
        let found =
            sqlx::query("SELECT id, slug, name, created_at FROM tenants ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?;
        found.iter().map(summary).collect()
    }

    /// Creates a tenant; Conflict when the slug is taken.
    pub async fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantSummary> {
        let created = TenantSummary {
            id: TenantId::generate(),
            slug: slug.to_owned(),
            name: name.to_owned(),
            created_at: now_millis(),
        };
        sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(created.id.as_str())
            .bind(slug)
            .bind(name)
            .bind(created.created_at)
            .execute(self.pool())
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    StoreError::Conflict("a tenant with this slug exists")
                }
                _ => e.into(),
            })?;
        Ok(created)
    }
}
