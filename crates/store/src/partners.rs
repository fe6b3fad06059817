//! The partner PKI's records: the CA certificates (public) and the partner client
//! certificates issued, with their revocation. Keys are not here: they live in the vault.

use crate::rows;
use crate::{Result, Store, StoreError};
use palisade_model::{TenantId, now_millis};
use sqlx::any::AnyRow;

/// A partner client certificate as recorded when it was issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerCertRecord {
    pub serial: String,
    pub tenant_id: String,
    pub partner: String,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub renewed_from: Option<String>,
    pub created_at: i64,
}

/// A certificate to record.
#[derive(Debug)]
pub struct NewPartnerCert<'a> {
    pub serial: &'a str,
    pub tenant: &'a TenantId,
    pub partner: &'a str,
    pub not_before: i64,
    pub not_after: i64,
    pub renewed_from: Option<&'a str>,
}

const SELECT: &str = "SELECT serial, tenant_id, partner, not_before, not_after, revoked_at, \
                      renewed_from, created_at FROM partner_certificates";

fn record(row: &AnyRow) -> Result<PartnerCertRecord> {
    Ok(PartnerCertRecord {
        serial: rows::text(row, "serial")?,
        tenant_id: rows::text(row, "tenant_id")?,
        partner: rows::text(row, "partner")?,
        not_before: rows::int(row, "not_before")?,
        not_after: rows::int(row, "not_after")?,
        revoked_at: rows::opt_int(row, "revoked_at")?,
        renewed_from: rows::opt_text(row, "renewed_from")?,
        created_at: rows::int(row, "created_at")?,
    })
}

impl Store {
    /// The stored certificate of CA `name` (`root` or `intermediate`).
    pub async fn pki_authority(&self, name: &str) -> Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT cert_pem, not_after FROM pki_authorities WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Ok((rows::text(&row, "cert_pem")?, rows::int(&row, "not_after")?)))
            .transpose()
    }

    /// Records a CA certificate; refuses to replace one (`Conflict`).
    pub async fn add_pki_authority(
        &self,
        name: &str,
        cert_pem: &str,
        not_after: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO pki_authorities (name, cert_pem, not_after, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(cert_pem)
        .bind(not_after)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("the partner PKI already exists"));
        }
        Ok(())
    }

    pub async fn add_partner_cert(&self, new: NewPartnerCert<'_>) -> Result<()> {
        let mut tx = self.tenant_tx(new.tenant).await?;
        sqlx::query(
            "INSERT INTO partner_certificates (serial, tenant_id, partner, not_before, \
             not_after, renewed_from, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new.serial)
        .bind(new.tenant.as_str())
        .bind(new.partner)
        .bind(new.not_before)
        .bind(new.not_after)
        .bind(new.renewed_from)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One certificate by serial, whatever its tenant (for the CLI and the TLS layer).
    pub async fn partner_cert(&self, serial: &str) -> Result<Option<PartnerCertRecord>> {
        let sql = format!("{SELECT} WHERE serial = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(serial)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The tenant's certificates (or every tenant's), soonest to expire first.
    pub async fn partner_certs(&self, tenant: Option<&TenantId>) -> Result<Vec<PartnerCertRecord>> {
        let sql = format!("{SELECT} WHERE ($1 = '' OR tenant_id = $1) ORDER BY not_after, serial");
        let mut tx = self.tenant_or_platform_tx(tenant).await?;
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.map_or("", TenantId::as_str))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(record).collect()
    }

    /// Marks a certificate revoked at `at`, within `tenant` when given. Returns the record,
    /// or `None` when no such certificate exists there. Revoking twice keeps the first time.
    pub async fn revoke_partner_cert(
        &self,
        tenant: Option<&TenantId>,
        serial: &str,
        at: i64,
    ) -> Result<Option<PartnerCertRecord>> {
        let mut tx = self.tenant_or_platform_tx(tenant).await?;
        sqlx::query(
            "UPDATE partner_certificates SET revoked_at = $3 \
             WHERE serial = $1 AND ($2 = '' OR tenant_id = $2) AND revoked_at IS NULL",
        )
        .bind(serial)
        .bind(tenant.map_or("", TenantId::as_str))
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let found = self.partner_cert(serial).await?;
        Ok(found.filter(|r| tenant.is_none_or(|t| r.tenant_id == t.as_str())))
    }

    /// Every revoked certificate that has not expired yet: (serial, revoked_at).
    pub async fn revoked_partner_certs(&self, now: i64) -> Result<Vec<(String, i64)>> {
        let found = sqlx::query(
            "SELECT serial, revoked_at FROM partner_certificates \
             WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY revoked_at, serial",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        found
            .iter()
            .map(|row| Ok((rows::text(row, "serial")?, rows::int(row, "revoked_at")?)))
            .collect()
    }

    /// A mark that changes whenever a certificate is revoked: (how many, latest time).
    pub async fn revocation_mark(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(revoked_at), 0) AS latest \
             FROM partner_certificates WHERE revoked_at IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((rows::int(&row, "n")?, rows::int(&row, "latest")?))
    }
}
