//! Palisade's relational store.
//!
//! One interface over SQLite (the embedded default, in WAL mode) and
//! PostgreSQL (at scale). The SQL is written once, in the dialect both
//! engines share, and run through sqlx's runtime `Any` driver; each backend has
//! its own migrations folder because DDL types differ.
//!
//! Invariants:
//! - every method that touches tenant data takes a [`TenantId`] and filters on
//!   it, so no caller can reach another tenant's rows by id;
//! - messages are written only by the [`MessageWriter`], one task that batches
//!   concurrent sends into one durable commit (group commit) and assigns each
//!   conversation's sequence numbers without gaps;
//! - this crate knows nothing of HTTP, sessions or fan-out.

mod conversations;
mod directory;
mod identity;
mod rows;
pub mod testing;
mod writer;

pub use directory::{AgentCredentials, NewAgent, NewWidget, SessionRecord, SessionStage};
pub use identity::MfaRecord;
pub use writer::{Appended, CommitObserver, MessageWriter, NewMessage, PendingAppend, WriterError};

use palisade_model::TenantId;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// Which engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::BadUrl)
        }
    }
}

/// A store failure. Callers map `NotFound` and `Conflict` to answers the
/// client can act on; everything else is our failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database url must start with sqlite: or postgres:")]
    BadUrl,
    #[error("record not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, applies the SQLite durability settings, and runs the
    /// backend's migrations. The url is never logged: it may hold a password.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes
                        // every commit durable; the busy timeout queues
                        // writers instead of failing them.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers: the ops listener's readiness check.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection; pending writes must be drained first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts the group-commit writer for messages.
    pub fn spawn_message_writer(
        &self,
        observer: std::sync::Arc<dyn CommitObserver>,
    ) -> MessageWriter {
        MessageWriter::spawn(self.clone(), observer)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Creates a tenant, or returns the existing one with this slug.
    pub async fn ensure_tenant(&self, slug: &str, name: &str) -> Result<TenantId> {
        directory::ensure_tenant(self, slug, name).await
    }
}
