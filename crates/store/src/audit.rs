//! Storage for the audit log. This module only appends and reads: it has no
//! statement that updates or deletes an entry or a checkpoint. How entries
//! are hashed and checkpoints signed is the `palisade-audit` crate's business;
//! this module serialises appends so the chain cannot fork: every append
//! locks the one `audit_head` row first (SQLite: the database write lock).

use crate::rows;
use crate::{Backend, Result, Store, StoreError};
use sqlx::any::AnyRow;

/// One stored audit entry, as text, exactly as hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: String,
    pub tenant_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Which of a tenant's audit entries to read.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter<'a> {
    pub action: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A signed statement that entry `seq` had hash `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub key_id: String,
    pub signature: String,
}

/// The chain's end as the head row records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
    pub checkpoint_seq: i64,
    pub checkpoint_at: i64,
}

/// What an append callback gets: the head before this entry.
pub type AppendBuilder<'a> = Box<
    dyn FnOnce(&AuditHead) -> Result<(AuditRecord, Option<AuditCheckpoint>), String> + Send + 'a,
>;

/// What a checkpoint callback gets: the head, under its lock.
pub type CheckpointBuilder<'a> = Box<dyn FnOnce(&AuditHead) -> Option<AuditCheckpoint> + Send + 'a>;

fn record(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: rows::int(row, "seq")?,
        at: rows::int(row, "at")?,
        actor_kind: rows::text(row, "actor_kind")?,
        actor_id: rows::text(row, "actor_id")?,
        tenant_id: rows::opt_text(row, "tenant_id")?,
        action: rows::text(row, "action")?,
        target: rows::text(row, "target")?,
        outcome: rows::text(row, "outcome")?,
        source: rows::text(row, "source")?,
        request_id: rows::text(row, "request_id")?,
        prev_hash: rows::text(row, "prev_hash")?,
        hash: rows::text(row, "hash")?,
    })
}

fn head(row: &AnyRow) -> Result<AuditHead> {
    Ok(AuditHead {
        seq: rows::int(row, "seq")?,
        hash: rows::text(row, "hash")?,
        checkpoint_seq: rows::int(row, "checkpoint_seq")?,
        checkpoint_at: rows::int(row, "checkpoint_at")?,
    })
}

impl Store {
    /// Appends one entry (and maybe a checkpoint) in one transaction. `build`
    /// sees the current head under its lock and returns the entry to store,
    /// which must carry `seq = head.seq + 1` and `prev_hash = head.hash`.
    pub async fn append_audit(&self, build: AppendBuilder<'_>) -> Result<AuditRecord> {
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        // Locks the head row until commit: appenders queue here.
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq WHERE id = 1 \
             RETURNING seq, hash, checkpoint_seq, checkpoint_at",
        )
        .fetch_one(&mut *tx)
        .await?;
        let current = head(&row)?;
        let (entry, checkpoint) = build(&current).map_err(StoreError::Corrupt)?;
        if Some(entry.seq) != current.seq.checked_add(1) || entry.prev_hash != current.hash {
            return Err(StoreError::Corrupt(
                "audit entry does not extend the chain's head".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor_kind, actor_id, tenant_id, action, target, \
             outcome, source, request_id, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor_kind)
        .bind(&entry.actor_id)
        .bind(entry.tenant_id.as_deref())
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.outcome)
        .bind(&entry.source)
        .bind(&entry.request_id)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(entry.seq)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await?;
        if let Some(checkpoint) = checkpoint {
            insert_checkpoint(&mut tx, &checkpoint).await?;
        }
        tx.commit().await?;
        Ok(entry)
    }

    /// Adds a checkpoint for the current head, if `build` returns one.
    pub async fn checkpoint_audit(
        &self,
        build: CheckpointBuilder<'_>,
    ) -> Result<Option<AuditCheckpoint>> {
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq WHERE id = 1 \
             RETURNING seq, hash, checkpoint_seq, checkpoint_at",
        )
        .fetch_one(&mut *tx)
        .await?;
        let current = head(&row)?;
        let Some(checkpoint) = build(&current) else {
            return Ok(None);
        };
        insert_checkpoint(&mut tx, &checkpoint).await?;
        tx.commit().await?;
        Ok(Some(checkpoint))
    }

    pub async fn audit_head(&self) -> Result<AuditHead> {
        let row = sqlx::query(
            "SELECT seq, hash, checkpoint_seq, checkpoint_at FROM audit_head WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        head(&row)
    }

    /// Entries with `seq > after`, in order, at most `limit`.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let found = sqlx::query(
            "SELECT seq, at, actor_kind, actor_id, tenant_id, action, target, outcome, source, \
             request_id, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        found.iter().map(record).collect()
    }

    /// One tenant's entries, newest first, before `filter.before` (a seq)
    /// and matching the filter's exact action, actor id and outcome.
    pub async fn tenant_audit_records(
        &self,
        tenant: &str,
        filter: &AuditFilter<'_>,
    ) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(
            "SELECT seq, at, actor_kind, actor_id, tenant_id, action, target, outcome, source, \
             request_id, prev_hash, hash FROM audit_log WHERE tenant_id = $1 AND seq < $2",
        );
        let mut binds = Vec::new();
        for (column, value) in [
            ("action", filter.action),
            ("actor_id", filter.actor),
            ("outcome", filter.outcome),
        ] {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len() + 2));
            }
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", binds.len() + 3));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(filter.before.unwrap_or(i64::MAX));
        for value in binds {
            query = query.bind(value);
        }
        let mut tx = self
            .tenant_tx(&palisade_model::TenantId::from_raw(tenant.to_owned()))
            .await?;
        let found = query.bind(filter.limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        found.iter().map(record).collect()
    }

    pub async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        let found = sqlx::query(
            "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq",
        )
        .fetch_all(self.pool())
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(AuditCheckpoint {
                    seq: rows::int(row, "seq")?,
                    hash: rows::text(row, "hash")?,
                    at: rows::int(row, "at")?,
                    key_id: rows::text(row, "key_id")?,
                    signature: rows::text(row, "signature")?,
                })
            })
            .collect()
    }
}

async fn insert_checkpoint(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    checkpoint: &AuditCheckpoint,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
    )
    .bind(checkpoint.seq)
    .bind(&checkpoint.hash)
    .bind(checkpoint.at)
    .bind(&checkpoint.key_id)
    .bind(&checkpoint.signature)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET checkpoint_seq = $1, checkpoint_at = $2 WHERE id = 1")
        .bind(checkpoint.seq)
        .bind(checkpoint.at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
