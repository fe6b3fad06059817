//! Sealing rows written before envelope encryption existed (their key
//! version is NULL), once, at start-up, in chunks of one transaction each.
//! Afterwards no plaintext body, visitor name or email remains in a live row
//! (old copies may linger in free database pages until SQLite reuses them or
//! PostgreSQL vacuums them).

use crate::keyring::{KeyRing, MESSAGE_BODY, VISITOR_EMAIL, VISITOR_NAME};
use crate::rows;
use crate::{Backend, Result, Store};

const CHUNK: i64 = 500;

pub(crate) async fn seal_unsealed_rows(store: &Store) -> Result<()> {
    let mut sealed = 0u64;
    loop {
        let done = seal_chunk(store, "messages").await? + seal_chunk(store, "visitors").await?;
        if done == 0 {
            break;
        }
        sealed += done;
    }
    if sealed > 0 {
        tracing::info!(
            rows = sealed,
            "sealed rows written before encryption at rest"
        );
    }
    Ok(())
}

async fn seal_chunk(store: &Store, table: &'static str) -> Result<u64> {
    let mut tx = match store.backend() {
        Backend::Sqlite => store.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => store.pool().begin().await?,
    };
    let select = match table {
        "messages" => {
            "SELECT id, tenant_id, body AS a, NULL AS b FROM messages \
                       WHERE key_version IS NULL LIMIT $1"
        }
        _ => {
            "SELECT id, tenant_id, name AS a, email AS b FROM visitors \
              WHERE key_version IS NULL LIMIT $1"
        }
    };
    let found = sqlx::query(select).bind(CHUNK).fetch_all(&mut *tx).await?;
    let mut count = 0;
    for row in &found {
        let id = rows::text(row, "id")?;
        let tenant = rows::text(row, "tenant_id")?;
        let (version, key) = store.keys().active_key(&mut tx, &tenant).await?;
        let first = rows::opt_text(row, "a")?;
        let second = rows::opt_text(row, "b")?;
        if table == "messages" {
            let body = KeyRing::seal(&key, &tenant, MESSAGE_BODY, &id, &first.unwrap_or_default())?;
            sqlx::query("UPDATE messages SET body = $2, key_version = $3 WHERE id = $1")
                .bind(&id)
                .bind(body)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        } else {
            let seal = |column, value: Option<String>| {
                value
                    .map(|v| KeyRing::seal(&key, &tenant, column, &id, &v))
                    .transpose()
            };
            sqlx::query(
                "UPDATE visitors SET name = $2, email = $3, key_version = $4 WHERE id = $1",
            )
            .bind(&id)
            .bind(seal(VISITOR_NAME, first)?)
            .bind(seal(VISITOR_EMAIL, second)?)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}
