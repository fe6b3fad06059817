//! The SQLite ceiling: how fast the same message rows can be made durable
//! with nothing in front of the database. It opens a database with
//! Palisade's own schema (made by `Store::connect`) and the same settings
//! (WAL, `synchronous = FULL`, foreign keys on), then commits batches of
//! rows on one native sqlx connection and times each commit.
//!
//! Two statement sets: `insert` is the bare row insert with precomputed
//! sequence numbers; `writer` issues what Palisade's group-commit writer
//! issues per message (resend lookup, conversation status read, sequence
//! bump, insert), so the gap between the two is the per-message SQL work.

use crate::stats::{Latency, Summary};
use anyhow::Context;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statements {
    Insert,
    Writer,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub statements: String,
    pub batch: usize,
    pub rows: u64,
    pub rows_per_s: f64,
    pub commit: Summary,
}

const TENANT: &str = "t-bench";
const WIDGET: &str = "w-bench";
const VISITOR: &str = "v-bench";

/// Runs one batch size for `duration` (at least one batch) in a fresh
/// database under `dir`.
pub async fn run(
    dir: &Path,
    statements: Statements,
    batch: usize,
    conversations: usize,
    body_len: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let file = dir.join(format!("ceiling-{}.db", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let keys = palisade_store::testing::memory_keys();
    let store = palisade_store::Store::connect(&url, 1, keys)
        .await
        .context("creating a database with Palisade's schema")?;
    store.close().await;

    let options = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let conversation_ids = seed(&mut conn, conversations.max(1)).await?;
    let body = "x".repeat(body_len.clamp(1, 4000));

    let mut seqs = vec![0i64; conversation_ids.len()];
    let mut commit = Latency::new();
    let mut rows = 0u64;
    let started = Instant::now();
    let mut n = 0usize;
    while rows == 0 || started.elapsed() < duration {
        let began = Instant::now();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for _ in 0..batch.max(1) {
            let c = n % conversation_ids.len();
            let conversation = &conversation_ids[c];
            let client_msg_id = format!("c-{n}");
            let seq = match statements {
                Statements::Insert => {
                    seqs[c] += 1;
                    seqs[c]
                }
                Statements::Writer => writer_steps(&mut tx, conversation, &client_msg_id).await?,
            };
            sqlx::query(
                "INSERT INTO messages (id, tenant_id, conversation_id, seq, client_msg_id, \
                 author_kind, author_id, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'visitor', $6, $7, $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(TENANT)
            .bind(conversation)
            .bind(seq)
            .bind(&client_msg_id)
            .bind(VISITOR)
            .bind(&body)
            .bind(palisade_model::now_millis())
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        tx.commit().await?;
        commit.record(began.elapsed());
        rows += batch.max(1) as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    conn.close().await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    Ok(Report {
        scenario: "sqlite-ceiling",
        statements: format!("{statements:?}").to_lowercase(),
        batch,
        rows,
        rows_per_s: rows as f64 / elapsed,
        commit: commit.summary(),
    })
}

/// What Palisade's writer does before its insert; returns the new seq.
async fn writer_steps(
    tx: &mut SqliteConnection,
    conversation: &str,
    client_msg_id: &str,
) -> anyhow::Result<i64> {
    let resend = sqlx::query(
        "SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND client_msg_id = $3",
    )
    .bind(TENANT)
    .bind(conversation)
    .bind(client_msg_id)
    .fetch_optional(&mut *tx)
    .await?;
    anyhow::ensure!(resend.is_none(), "client_msg_id {client_msg_id} repeated");
    sqlx::query("SELECT status FROM conversations WHERE tenant_id = $1 AND id = $2")
        .bind(TENANT)
        .bind(conversation)
        .fetch_one(&mut *tx)
        .await?;
    let row = sqlx::query(
        "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 RETURNING last_seq",
    )
    .bind(TENANT)
    .bind(conversation)
    .bind(palisade_model::now_millis())
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.try_get("last_seq")?)
}

/// One tenant, widget and visitor, and `count` open conversations.
async fn seed(conn: &mut SqliteConnection, count: usize) -> anyhow::Result<Vec<String>> {
    let now = palisade_model::now_millis();
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, 'bench', 'Bench', $2)",
    )
    .bind(TENANT)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO widgets (id, tenant_id, name, public_key, allowed_origins, greeting, created_at) \
         VALUES ($1, $2, 'Bench', 'pk_bench', '[]', 'hi', $3)",
    )
    .bind(WIDGET)
    .bind(TENANT)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO visitors (id, tenant_id, widget_id, name, email, created_at) \
         VALUES ($1, $2, $3, 'bench', NULL, $4)",
    )
    .bind(VISITOR)
    .bind(TENANT)
    .bind(WIDGET)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("c-bench-{i}");
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, widget_id, visitor_id, status, last_seq, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'open', 0, $5, $5)",
        )
        .bind(&id)
        .bind(TENANT)
        .bind(WIDGET)
        .bind(VISITOR)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_statement_sets_commit_rows() {
        let dir = std::env::temp_dir().join(format!("palisade-ceiling-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for statements in [Statements::Insert, Statements::Writer] {
            let report = run(&dir, statements, 8, 4, 20, Duration::ZERO)
                .await
                .expect("runs");
            assert_eq!(report.rows, 8);
            assert_eq!(report.commit.count, 1);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
