//! A tenant's team: the agent listing admins see, invitations to join,
//! role changes and deactivation. Every statement is scoped by tenant, but
//! for accepting an invitation, which finds its tenant by the token's hash.

use crate::rows;
use crate::{Result, Store, StoreError};
use palisade_model::{Agent, AgentId, Email, Role, TenantId, now_millis};
use serde::Serialize;
use sqlx::AssertSqlSafe;

/// An agent as the admin API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct AgentListing {
    #[serde(flatten)]
    pub agent: Agent,
    pub active: bool,
    pub mfa_enabled: bool,
    pub created_at: i64,
}

/// An invitation to create; the token arrives already hashed.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    pub token_hash: &'a str,
    pub email: &'a Email,
    pub name: &'a str,
    pub role: Role,
    pub invited_by: &'a AgentId,
    pub expires_at: i64,
}

/// Refusal to leave a tenant without an active owner.
pub const LAST_OWNER: StoreError = StoreError::Conflict("the tenant's last active owner must stay");

const LISTING_SELECT: &str = "SELECT a.id, a.tenant_id, a.email, a.name, a.role, a.active, \
     a.created_at, EXISTS (SELECT 1 FROM mfa_totp m WHERE m.agent_id = a.id \
     AND m.tenant_id = a.tenant_id AND m.confirmed_at IS NOT NULL) AS mfa_enabled \
     FROM agents a";

/// True for SQL's 1 and PostgreSQL's boolean alike.
fn flag(row: &sqlx::any::AnyRow, col: &str) -> Result<bool> {
    use sqlx::Row;
    match row.try_get::<bool, _>(col) {
        Ok(value) => Ok(value),
        Err(_) => Ok(rows::int(row, col)? != 0),
    }
}

fn listing(row: &sqlx::any::AnyRow) -> Result<AgentListing> {
    Ok(AgentListing {
        agent: rows::agent(row)?,
        active: flag(row, "active")?,
        mfa_enabled: flag(row, "mfa_enabled")?,
        created_at: rows::int(row, "created_at")?,
    })
}

/// Other active owners of the tenant than this agent: the guard that keeps
/// one owner in place. Binds $1 (tenant) and $2 (agent).
const ANOTHER_OWNER: &str = "(agents.role <> 'owner' OR EXISTS (SELECT 1 FROM agents o \
     WHERE o.tenant_id = $1 AND o.id <> $2 AND o.role = 'owner' AND o.active = 1))";

impl Store {
    /// Every agent of the tenant, active or not, oldest first.
    pub async fn agent_listings(&self, tenant: &TenantId) -> Result<Vec<AgentListing>> {
        let sql = format!("{LISTING_SELECT} WHERE a.tenant_id = $1 ORDER BY a.created_at, a.id");
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(listing).collect()
    }

    /// One agent of the tenant, active or not.
    pub async fn agent_listing(
        &self,
        tenant: &TenantId,
        id: &AgentId,
    ) -> Result<Option<AgentListing>> {
        let sql = format!("{LISTING_SELECT} WHERE a.tenant_id = $1 AND a.id = $2");
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(listing).transpose()
    }

    /// Stores an invitation. Conflict when an account has this address.
    /// Emails are unique across tenants, so that check is a platform path;
    /// the insert runs in the tenant's transaction.
    pub async fn create_invitation(&self, tenant: &TenantId, new: NewInvitation<'_>) -> Result<()> {
        let taken = sqlx::query("SELECT 1 AS one FROM agents WHERE email = $1")
            .bind(new.email.as_str())
            .fetch_optional(self.pool())
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict("email already in use"));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO agent_invitations (token_hash, tenant_id, email, name, role, \
             invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.token_hash)
        .bind(tenant.as_str())
        .bind(new.email.as_str())
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.invited_by.as_str())
        .bind(now_millis())
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether an unused, unexpired invitation has this token hash.
    pub async fn invitation_open(&self, token_hash: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM agent_invitations \
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_millis())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Spends an invitation and creates its account in one transaction.
    /// NotFound when the invitation is unknown, used or expired; the same
    /// token never creates two accounts, even for two requests racing.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<Agent> {
        let now = now_millis();
        let mut tx = self.pool().begin().await?;
        let spent = sqlx::query(
            "UPDATE agent_invitations SET accepted_at = $2 \
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(
            "SELECT tenant_id, email, role FROM agent_invitations WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_one(&mut *tx)
        .await?;
        let role_raw = rows::text(&row, "role")?;
        let agent = Agent {
            id: AgentId::generate(),
            tenant_id: TenantId::from_raw(rows::text(&row, "tenant_id")?),
            email: Email::from_stored(rows::text(&row, "email")?),
            name: name.to_owned(),
            role: Role::parse(&role_raw)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role_raw:?}")))?,
        };
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, email, name, role, password_hash, active, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
        )
        .bind(agent.id.as_str())
        .bind(agent.tenant_id.as_str())
        .bind(agent.email.as_str())
        .bind(name)
        .bind(agent.role.as_str())
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("email already in use")
            }
            _ => e.into(),
        })?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Changes an agent's role. NotFound for no such agent in the tenant;
    /// [`LAST_OWNER`] when it would leave the tenant without an owner.
    pub async fn set_agent_role(&self, tenant: &TenantId, id: &AgentId, role: Role) -> Result<()> {
        let sql = format!(
            "UPDATE agents SET role = $3 WHERE tenant_id = $1 AND id = $2 \
             AND ($3 = 'owner' OR {ANOTHER_OWNER})"
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(role.as_str());
        self.guarded_update(tenant, id, query).await
    }

    /// Activates or deactivates an agent; deactivating the last active
    /// owner is refused with [`LAST_OWNER`].
    pub async fn set_agent_active(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        active: bool,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE agents SET active = $3 WHERE tenant_id = $1 AND id = $2 \
             AND ($3 = 1 OR {ANOTHER_OWNER})"
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(i64::from(active));
        self.guarded_update(tenant, id, query).await
    }

    /// Runs an update whose WHERE clause carries the owner guard: no row
    /// changed means either no such agent (NotFound) or the guard held.
    /// The transaction takes the write lock first (SQLite: `BEGIN
    /// IMMEDIATE`; PostgreSQL: the tenant's row `FOR UPDATE`), so two owners
    /// stepping down at once cannot both pass the guard.
    async fn guarded_update(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<()> {
        let mut tx = match self.backend() {
            crate::Backend::Sqlite => self.tenant_write_tx(tenant).await?,
            crate::Backend::Postgres => {
                let mut tx = self.tenant_tx(tenant).await?;
                sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx
            }
        };
        let exists = sqlx::query("SELECT 1 AS one FROM agents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(LAST_OWNER);
        }
        tx.commit().await?;
        Ok(())
    }
}
