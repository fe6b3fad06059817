//! Tenants, widgets, agents, agent sessions and visitors: who exists, and
//! who is signed in.

use crate::keyring::{KeyRing, VISITOR_EMAIL, VISITOR_NAME};
use crate::rows::{self, AGENT_COLUMNS, WIDGET_COLUMNS};
use crate::{Result, Store, StoreError};
use palisade_model::{
    Agent, AgentId, Email, Role, TenantId, VisitorId, Widget, WidgetId, now_millis,
};
use sqlx::{AssertSqlSafe, Row};

pub(crate) async fn ensure_tenant(store: &Store, slug: &str, name: &str) -> Result<TenantId> {
    let id = TenantId::generate();
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(slug)
    .bind(name)
    .bind(now_millis())
    .execute(store.pool())
    .await?;
    let row = sqlx::query("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(store.pool())
        .await?;
    Ok(TenantId::from_raw(rows::text(&row, "id")?))
}

/// A widget to create.
#[derive(Debug)]
pub struct NewWidget<'a> {
    pub name: &'a str,
    pub public_key: &'a str,
    pub allowed_origins: &'a [String],
    pub greeting: &'a str,
}

/// An agent account to create; the password arrives already hashed.
#[derive(Debug)]
pub struct NewAgent<'a> {
    pub email: &'a Email,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

/// What login needs: the account, its password hash and whether it may sign in.
pub struct AgentCredentials {
    pub agent: Agent,
    pub password_hash: String,
    pub active: bool,
}

impl std::fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("agent", &self.agent.id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// How far a session has come in signing in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStage {
    /// Signed in; the second factor was proved if the account has one.
    Full,
    /// Password accepted; the second factor is still to come.
    Mfa,
    /// Password accepted; the role requires a second factor that is not
    /// set up yet: only enrolment is open.
    Enroll,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Mfa => "mfa",
            Self::Enroll => "enroll",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Full, Self::Mfa, Self::Enroll]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A signed-in agent's server-side session, found by the hash of its token.
#[derive(Clone)]
pub struct SessionRecord {
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub stage: SessionStage,
    /// When this session last proved the second factor.
    pub mfa_at: Option<i64>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("tenant_id", &self.tenant_id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    pub async fn create_widget(&self, tenant: &TenantId, new: NewWidget<'_>) -> Result<Widget> {
        let id = WidgetId::generate();
        let origins = serde_json::to_string(new.allowed_origins)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO widgets (id, tenant_id, name, public_key, allowed_origins, greeting, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(new.name)
        .bind(new.public_key)
        .bind(origins)
        .bind(new.greeting)
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("widget key in use")
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(Widget {
            id,
            tenant_id: tenant.clone(),
            name: new.name.to_owned(),
            public_key: new.public_key.to_owned(),
            allowed_origins: new.allowed_origins.to_vec(),
            greeting: new.greeting.to_owned(),
            settings: palisade_model::WidgetSettings::default(),
        })
    }

    /// The widget with this public key, whichever tenant owns it: the key is
    /// how an anonymous visitor names its tenant.
    pub async fn widget_by_public_key(&self, key: &str) -> Result<Option<Widget>> {
        let sql = format!("SELECT {WIDGET_COLUMNS} FROM widgets w WHERE w.public_key = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rows::widget).transpose()
    }

    pub async fn widgets(&self, tenant: &TenantId) -> Result<Vec<Widget>> {
        let sql = format!(
            "SELECT {WIDGET_COLUMNS} FROM widgets w WHERE w.tenant_id = $1 ORDER BY w.created_at"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(rows::widget).collect()
    }

    pub async fn create_agent(&self, tenant: &TenantId, new: NewAgent<'_>) -> Result<Agent> {
        let id = AgentId::generate();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, email, name, role, password_hash, active, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(new.email.as_str())
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("email already in use")
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(Agent {
            id,
            tenant_id: tenant.clone(),
            email: new.email.clone(),
            name: new.name.to_owned(),
            role: new.role,
        })
    }

    /// Login's lookup. Emails are unique across tenants, so an agent signs in
    /// without naming its tenant.
    pub async fn agent_credentials(&self, email: &Email) -> Result<Option<AgentCredentials>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS}, a.password_hash, a.active FROM agents a WHERE a.email = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(email.as_str())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AgentCredentials {
            agent: rows::agent(&row)?,
            password_hash: rows::text(&row, "password_hash")?,
            active: rows::int(&row, "active")? != 0,
        }))
    }

    pub async fn set_agent_password(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        password_hash: &str,
    ) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done =
            sqlx::query("UPDATE agents SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    pub async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents a \
             WHERE a.tenant_id = $1 AND a.id = $2 AND a.active = 1"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(rows::agent).transpose()
    }

    pub async fn agents(&self, tenant: &TenantId) -> Result<Vec<Agent>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents a WHERE a.tenant_id = $1 ORDER BY a.created_at"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        found.iter().map(rows::agent).collect()
    }

    /// Stores a new session under the hash of its token; the token itself is
    /// never stored.
    pub async fn create_session(&self, token_hash: &str, session: &SessionRecord) -> Result<()> {
        let mut tx = self.tenant_tx(&session.tenant_id).await?;
        sqlx::query(
            "INSERT INTO agent_sessions (token_hash, tenant_id, agent_id, csrf_token, created_at, \
             last_seen_at, expires_at, stage, mfa_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(token_hash)
        .bind(session.tenant_id.as_str())
        .bind(session.agent_id.as_str())
        .bind(session.csrf_token.as_str())
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .bind(session.stage.as_str())
        .bind(session.mfa_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT tenant_id, agent_id, csrf_token, created_at, last_seen_at, expires_at, \
             stage, mfa_at FROM agent_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            tenant_id: TenantId::from_raw(rows::text(&row, "tenant_id")?),
            agent_id: AgentId::from_raw(rows::text(&row, "agent_id")?),
            csrf_token: rows::text(&row, "csrf_token")?,
            created_at: rows::int(&row, "created_at")?,
            last_seen_at: rows::int(&row, "last_seen_at")?,
            expires_at: rows::int(&row, "expires_at")?,
            stage: {
                let raw = rows::text(&row, "stage")?;
                SessionStage::parse(&raw)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown session stage {raw:?}")))?
            },
            mfa_at: row.try_get::<Option<i64>, _>("mfa_at")?,
        }))
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE agent_sessions SET last_seen_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn create_visitor(
        &self,
        tenant: &TenantId,
        widget: &WidgetId,
        name: Option<&str>,
        email: Option<&Email>,
    ) -> Result<VisitorId> {
        let id = VisitorId::generate();
        let mut conn = self.pool().acquire().await?;
        let (version, key) = self.keys().active_key(&mut conn, tenant.as_str()).await?;
        drop(conn);
        let seal =
            |column, value: &str| KeyRing::seal(&key, tenant.as_str(), column, id.as_str(), value);
        let name = name.map(|name| seal(VISITOR_NAME, name)).transpose()?;
        let email = email
            .map(|email| seal(VISITOR_EMAIL, email.as_str()))
            .transpose()?;
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO visitors (id, tenant_id, widget_id, name, email, key_version, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(widget.as_str())
        .bind(name)
        .bind(email)
        .bind(version)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A visitor of this tenant with its name opened: (widget id, name, created at).
    pub async fn visitor_record(
        &self,
        tenant: &TenantId,
        id: &VisitorId,
    ) -> Result<Option<(WidgetId, Option<String>, i64)>> {
        let row = sqlx::query(
            "SELECT widget_id, name, key_version, created_at FROM visitors \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let name = match rows::opt_text(&row, "name")? {
            Some(sealed) => {
                let version = rows::opt_int(&row, "key_version")?;
                let opened = self.keys().open(
                    self.pool(),
                    tenant.as_str(),
                    VISITOR_NAME,
                    id.as_str(),
                    version,
                    &sealed,
                );
                Some(opened.await?)
            }
            None => None,
        };
        let widget = WidgetId::from_raw(rows::text(&row, "widget_id")?);
        Ok(Some((widget, name, rows::int(&row, "created_at")?)))
    }

    /// Records the user id the tenant vouched for (identity verification).
    pub async fn set_visitor_verified_user(
        &self,
        tenant: &TenantId,
        id: &VisitorId,
        user_id: &str,
    ) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("UPDATE visitors SET verified_user_id = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// True when the visitor exists in this tenant.
    pub async fn visitor_exists(&self, tenant: &TenantId, id: &VisitorId) -> Result<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query("SELECT 1 AS one FROM visitors WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.is_some())
    }
}
