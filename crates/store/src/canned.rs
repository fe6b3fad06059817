//! Canned responses: a tenant's ready-made replies, keyed by shortcut.

use crate::rows;
use crate::{Result, Store};
use palisade_model::{CannedResponse, MessageBody, Shortcut, TenantId, now_millis};

impl Store {
    /// The tenant's canned responses, by shortcut.
    pub async fn canned_responses(&self, tenant: &TenantId) -> Result<Vec<CannedResponse>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(
            "SELECT shortcut, body, updated_at FROM canned_responses \
             WHERE tenant_id = $1 ORDER BY shortcut",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found
            .iter()
            .map(|row| {
                Ok(CannedResponse {
                    shortcut: Shortcut::from_stored(rows::text(row, "shortcut")?),
                    body: MessageBody::from_stored(rows::text(row, "body")?),
                    updated_at: rows::int(row, "updated_at")?,
                })
            })
            .collect()
    }

    /// Creates the canned response or replaces its text.
    pub async fn put_canned_response(
        &self,
        tenant: &TenantId,
        shortcut: &Shortcut,
        body: &MessageBody,
    ) -> Result<CannedResponse> {
        let updated_at = now_millis();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO canned_responses (tenant_id, shortcut, body, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, shortcut) DO UPDATE \
             SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(shortcut.as_str())
        .bind(body.as_str())
        .bind(updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CannedResponse {
            shortcut: shortcut.clone(),
            body: body.clone(),
            updated_at,
        })
    }

    /// Deletes it; false if the tenant has no such shortcut.
    pub async fn delete_canned_response(
        &self,
        tenant: &TenantId,
        shortcut: &Shortcut,
    ) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done =
            sqlx::query("DELETE FROM canned_responses WHERE tenant_id = $1 AND shortcut = $2")
                .bind(tenant.as_str())
                .bind(shortcut.as_str())
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
