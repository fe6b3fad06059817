//! Second-factor records, session changes that follow sign-in steps, and
//! the tenant's sign-in policy. Every statement is scoped by tenant.

use crate::keyring::{KeyRing, MFA_SECRET};
use crate::rows;
use crate::{Result, Store};
use palisade_model::{AgentId, TenantId, now_millis};
use sqlx::Row;

/// An account's second factor as stored.
pub struct MfaRecord {
    /// Base32; treat as a secret.
    pub secret: String,
    pub confirmed: bool,
    pub last_step: i64,
}

impl std::fmt::Debug for MfaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRecord")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn mfa(&self, tenant: &TenantId, agent: &AgentId) -> Result<Option<MfaRecord>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT secret, key_version, confirmed_at, last_step FROM mfa_totp \
             WHERE tenant_id = $1 AND agent_id = $2",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let sealed = rows::text(&row, "secret")?;
        let version = Some(rows::int(&row, "key_version")?);
        let secret = self
            .keys()
            .open(
                self.pool(),
                tenant.as_str(),
                MFA_SECRET,
                agent.as_str(),
                version,
                &sealed,
            )
            .await?;
        Ok(Some(MfaRecord {
            secret,
            confirmed: row.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
            last_step: rows::int(&row, "last_step")?,
        }))
    }

    /// Starts (or restarts) enrolment with a new secret, stored sealed with
    /// the tenant's data key. Refused (false) when a confirmed second factor
    /// exists: replacing one needs a reset.
    pub async fn begin_mfa(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        secret: &str,
    ) -> Result<bool> {
        let mut conn = self.pool().acquire().await?;
        let (version, key) = self.keys().active_key(&mut conn, tenant.as_str()).await?;
        drop(conn);
        let sealed = KeyRing::seal(&key, tenant.as_str(), MFA_SECRET, agent.as_str(), secret)?;
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "DELETE FROM mfa_totp WHERE tenant_id = $1 AND agent_id = $2 AND confirmed_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "INSERT INTO mfa_totp (agent_id, tenant_id, secret, key_version, last_step, \
             created_at) VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (agent_id) DO NOTHING",
        )
        .bind(agent.as_str())
        .bind(tenant.as_str())
        .bind(sealed)
        .bind(version)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Confirms enrolment with the step the first code matched, and stores
    /// the recovery codes' hashes (replacing any earlier ones).
    pub async fn confirm_mfa(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE mfa_totp SET confirmed_at = $3, last_step = $4 \
             WHERE tenant_id = $1 AND agent_id = $2 AND confirmed_at IS NULL AND last_step < $4",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(now_millis())
        .bind(step)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .execute(&mut *tx)
            .await?;
        for hash in recovery_hashes {
            sqlx::query(
                "INSERT INTO mfa_recovery_codes (tenant_id, agent_id, code_hash) VALUES ($1, $2, $3)",
            )
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .bind(hash.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records that a code of `step` was used. False when that step (or a
    /// later one) was used already: the same code never works twice, even
    /// for two requests racing.
    pub async fn use_mfa_step(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        step: i64,
    ) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE mfa_totp SET last_step = $3 \
             WHERE tenant_id = $1 AND agent_id = $2 AND confirmed_at IS NOT NULL AND last_step < $3",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(step)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Spends a recovery code. False when unknown or already used.
    pub async fn use_recovery_code(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        hash: &str,
    ) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $4 \
             WHERE tenant_id = $1 AND agent_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .bind(hash)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes that the session just proved the second factor (step-up).
    pub async fn mark_session_mfa(&self, token_hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE agent_sessions SET mfa_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of an agent ("sign out everywhere"); returns the
    /// hashes of the sessions ended so their sockets can be closed.
    pub async fn end_agent_sessions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<String>> {
        let mut tx = self.tenant_write_tx(tenant).await?;
        let found = sqlx::query(
            "SELECT token_hash FROM agent_sessions WHERE tenant_id = $1 AND agent_id = $2",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM agent_sessions WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        found
            .iter()
            .map(|row| rows::text(row, "token_hash"))
            .collect()
    }

    /// Whether the tenant requires agents (not only owners and admins) to
    /// use a second factor.
    pub async fn tenant_requires_agent_mfa(&self, tenant: &TenantId) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query("SELECT require_agent_mfa FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row
            .map(|r| rows::int(&r, "require_agent_mfa"))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }

    pub async fn set_tenant_requires_agent_mfa(
        &self,
        tenant: &TenantId,
        required: bool,
    ) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("UPDATE tenants SET require_agent_mfa = $2 WHERE id = $1")
            .bind(tenant.as_str())
            .bind(i64::from(required))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's name and sign-in and visitor identity policies.
    pub async fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT id, name, slug, require_agent_mfa, identity_verification_required \
             FROM tenants WHERE id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(crate::StoreError::NotFound)?;
        tx.commit().await?;
        Ok(TenantSettings {
            id: TenantId::from_raw(rows::text(&row, "id")?),
            name: rows::text(&row, "name")?,
            slug: rows::text(&row, "slug")?,
            require_agent_mfa: rows::int(&row, "require_agent_mfa")? != 0,
            identity_verification_required: rows::int(&row, "identity_verification_required")? != 0,
        })
    }

    pub async fn set_identity_verification_required(
        &self,
        tenant: &TenantId,
        required: bool,
    ) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("UPDATE tenants SET identity_verification_required = $2 WHERE id = $1")
            .bind(tenant.as_str())
            .bind(i64::from(required))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A tenant's settings as the admin API shows them.
#[derive(Clone, Debug)]
pub struct TenantSettings {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub require_agent_mfa: bool,
    pub identity_verification_required: bool,
}
