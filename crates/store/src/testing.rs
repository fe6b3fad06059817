//! Support for tests that need a real database: a fresh SQLite file, or a
//! fresh schema in the PostgreSQL that `PALISADE_TEST_POSTGRES_URL` names.
//! A run that asked for PostgreSQL and cannot reach it fails; it never
//! silently falls back to SQLite.

use crate::{Backend, Result, Store};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};

/// The environment variable that asks tests to run on PostgreSQL too.
pub const POSTGRES_ENV: &str = "PALISADE_TEST_POSTGRES_URL";

/// The backends this test run must cover: SQLite always, PostgreSQL when asked.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var_os(POSTGRES_ENV).is_some() {
        all.push(Backend::Postgres);
    }
    all
}

/// A url for a database no other test uses. For SQLite that is a new file
/// under `dir`; for PostgreSQL a new schema, made the connection's search path.
pub async fn fresh_url(backend: Backend, dir: &std::path::Path) -> Result<String> {
    let unique = uuid_like();
    match backend {
        Backend::Sqlite => {
            let path = dir.join(format!("test-{unique}.db"));
            Ok(format!("sqlite://{}?mode=rwc", path.display()))
        }
        Backend::Postgres => {
            let base = std::env::var(POSTGRES_ENV)
                .unwrap_or_else(|_| panic!("{POSTGRES_ENV} must be set to test on PostgreSQL"));
            sqlx::any::install_default_drivers();
            let schema = format!("palisade_test_{unique}");
            let mut conn = AnyConnection::connect(&base).await?;
            conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await?;
            conn.close().await?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
    }
}

/// Removes what [`fresh_url`] made for PostgreSQL (its schema); SQLite files
/// go with the test's directory.
pub async fn discard(url: &str) -> Result<()> {
    let Some((base, schema)) = url.split_once("options=-c%20search_path%3D") else {
        return Ok(());
    };
    if !schema.starts_with("palisade_test_")
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    let base = base.trim_end_matches(['?', '&']);
    let mut conn = AnyConnection::connect(base).await?;
    conn.execute(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .await?;
    conn.close().await?;
    Ok(())
}

/// Runs `sql` as the store's tenant-scoped methods run theirs: on
/// PostgreSQL in a transaction of the tenant pool (role
/// [`crate::TENANT_ROLE`]) with `tenant` set, or with no tenant set at all
/// for `None`; on SQLite in a plain transaction. Returns the rows. It lets
/// tests aim raw SQL without any `tenant_id` filter at row-level security.
pub async fn rows_in_tenant_tx(
    store: &Store,
    tenant: Option<&palisade_model::TenantId>,
    sql: &str,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut tx = match tenant {
        Some(tenant) => store.tenant_tx(tenant).await?,
        None => store.unscoped_tenant_tx().await?,
    };
    let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// A fresh store on `backend`, with a new in-memory master key.
pub async fn fresh_store(backend: Backend, dir: &std::path::Path) -> Result<Store> {
    Store::connect(&fresh_url(backend, dir).await?, 8, memory_keys()).await
}

/// A key provider holding a new random master key in memory.
pub fn memory_keys() -> std::sync::Arc<dyn palisade_crypto::KeyProvider> {
    std::sync::Arc::new(palisade_crypto::StaticKeyProvider::new(
        palisade_crypto::MasterKey::generate().ok(),
    ))
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
