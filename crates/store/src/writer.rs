//! The message write path, with group commit.
//!
//! One task owns all message writes. Senders queue a [`NewMessage`] and wait;
//! the task takes everything queued (up to [`MAX_BATCH`]), writes it in one
//! transaction, commits once, tells the [`CommitObserver`] about each message
//! in commit order, and only then answers the senders. So an acknowledgement
//! always means "durably committed", one fsync serves a whole batch, and a
//! conversation's sequence numbers are assigned by one writer without gaps.
//!
//! Bodies are sealed inside the batch with each tenant's active data key,
//! whose version is read once per tenant per batch, inside the batch's
//! transaction: a rotation committed by another process is followed at the
//! next batch, and no message costs an extra round trip.
//!
//! A resend (same conversation, sender and client message id, same text) is
//! answered with the first acknowledgement and stores nothing; the same id
//! with other text is refused, never silently dropped. If the batch's transaction fails,
//! each message is retried in a transaction of its own, so one bad message
//! cannot fail its neighbours.

use crate::keyring::{KeyRing, MESSAGE_BODY};
use crate::rows;
use crate::{Backend, Result, Store, StoreError};
use palisade_crypto::DataKey;
use palisade_model::{
    AuthorKind, ClientMsgId, Conversation, ConversationId, Message, MessageBody, MessageId,
    TenantId, now_millis,
};
use sqlx::{Any, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The most messages one commit carries.
pub const MAX_BATCH: usize = 512;
/// How many sends may wait for the writer before senders are pushed back.
const QUEUE: usize = 8192;

/// A message to store. The caller has already checked that the author may
/// write to this conversation.
#[derive(Debug)]
pub struct NewMessage {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub client_msg_id: ClientMsgId,
    pub author_kind: AuthorKind,
    pub author_id: Option<String>,
    /// Shown with the message in live events; names are not copied into rows.
    pub author_name: Option<String>,
    pub body: MessageBody,
}

/// A committed message, or the earlier copy of a resent one.
#[derive(Clone, Debug)]
pub struct Appended {
    pub tenant_id: TenantId,
    pub message: Message,
    pub duplicate: bool,
    /// The conversation, when this message changed its status (a visitor
    /// writing into a closed conversation re-opens it).
    pub reopened: Option<Conversation>,
}

/// Told about every message written, in commit order, before any sender
/// hears its acknowledgement; resends come with `duplicate` set. Must not block.
pub trait CommitObserver: Send + Sync {
    fn committed(&self, appended: &Appended);
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("conversation not found")]
    ConversationNotFound,
    /// The sender used this client message id before, for other text.
    #[error("client_msg_id was already used for a different message")]
    ClientIdReused,
    #[error("the message writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Reply = oneshot::Sender<Result<Appended, WriterError>>;

/// The handle senders use; cheap to clone.
#[derive(Clone, Debug)]
pub struct MessageWriter {
    queue: mpsc::Sender<(NewMessage, Reply)>,
    commits: Arc<AtomicU64>,
}

impl MessageWriter {
    pub(crate) fn spawn(store: Store, observer: Arc<dyn CommitObserver>) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(store, observer, inbox, commits.clone()));
        Self { queue, commits }
    }

    /// How many transactions the writer has committed: with group commit,
    /// fewer than the messages it stored.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues a message and waits until it is committed (or found to be a resend).
    pub async fn append(&self, message: NewMessage) -> Result<Appended, WriterError> {
        self.submit(message).await?.await
    }

    /// Queues a message, waiting only for room in the queue, and returns the
    /// pending acknowledgement. Messages submitted one after another by one
    /// task are committed in that order, so a socket can pipeline its sends.
    pub async fn submit(&self, message: NewMessage) -> Result<PendingAppend, WriterError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((message, reply))
            .await
            .map_err(|_| WriterError::Stopped)?;
        Ok(PendingAppend(answer))
    }
}

/// An acknowledgement still to come: resolves once the message is committed.
#[derive(Debug)]
pub struct PendingAppend(oneshot::Receiver<Result<Appended, WriterError>>);

impl std::future::Future for PendingAppend {
    type Output = Result<Appended, WriterError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(WriterError::Stopped)))
    }
}

async fn run(
    store: Store,
    observer: Arc<dyn CommitObserver>,
    mut inbox: mpsc::Receiver<(NewMessage, Reply)>,
    commits: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = match write_batch(&store, &batch, &commits).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                tracing::warn!(error = %err, size = batch.len(), "batch commit failed; writing one by one");
                let mut outcomes = Vec::with_capacity(batch.len());
                for one in &batch {
                    let result = write_batch(&store, std::slice::from_ref(one), &commits).await;
                    outcomes.push(match result {
                        Ok(mut single) => single.pop().unwrap_or(Err(WriterError::Stopped)),
                        Err(err) => Err(WriterError::Store(err)),
                    });
                }
                outcomes
            }
        };
        for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
            if let Ok(appended) = &outcome {
                observer.committed(appended);
            }
            // A sender that gave up waiting is not an error: the message is stored.
            let _ = reply.send(outcome);
        }
    }
    tracing::info!("message writer stopped");
}

/// Writes every message of the batch in one transaction. A per-message
/// refusal (unknown conversation) is that message's outcome; a database
/// error fails the whole transaction.
async fn write_batch(
    store: &Store,
    batch: &[(NewMessage, Reply)],
    commits: &AtomicU64,
) -> Result<Vec<Result<Appended, WriterError>>> {
    // SQLite: take the write lock up front, so the reads below cannot be
    // invalidated by another writer before our first write.
    let mut tx = match store.backend() {
        Backend::Sqlite => store.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => store.pool().begin().await?,
    };
    let mut keys: HashMap<&str, (i64, DataKey)> = HashMap::new();
    for (message, _) in batch {
        let tenant = message.tenant_id.as_str();
        if !keys.contains_key(tenant) {
            let active = store.keys().active_key(&mut tx, tenant).await?;
            keys.insert(tenant, active);
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (message, _) in batch {
        let Some((version, key)) = keys.get(message.tenant_id.as_str()) else {
            return Err(StoreError::Corrupt(
                "no data key was loaded for a batch tenant".into(),
            ));
        };
        let sealing = Sealing {
            version: *version,
            key,
        };
        outcomes.push(write_one(store, &mut tx, sealing, message).await?);
    }
    tx.commit().await?;
    commits.fetch_add(1, Ordering::Relaxed);
    Ok(outcomes)
}

/// The data key a batch seals a tenant's bodies with.
#[derive(Clone, Copy)]
struct Sealing<'a> {
    version: i64,
    key: &'a DataKey,
}

async fn write_one(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    sealing: Sealing<'_>,
    new: &NewMessage,
) -> Result<Result<Appended, WriterError>> {
    let tenant = new.tenant_id.as_str();
    let conversation = new.conversation_id.as_str();

    if let Some(earlier) = find_resend(store, tx, new).await? {
        if earlier.body != new.body {
            return Ok(Err(WriterError::ClientIdReused));
        }
        return Ok(Ok(Appended {
            tenant_id: new.tenant_id.clone(),
            message: earlier,
            duplicate: true,
            reopened: None,
        }));
    }

    let Some(row) =
        sqlx::query("SELECT status FROM conversations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(conversation)
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Ok(Err(WriterError::ConversationNotFound));
    };
    let reopens = rows::text(&row, "status")? == "closed" && new.author_kind == AuthorKind::Visitor;

    let now = now_millis();
    let row = sqlx::query(
        "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $3, \
         status = CASE WHEN $4 = 1 THEN \
             (CASE WHEN assignee_id IS NULL THEN 'open' ELSE 'assigned' END) ELSE status END \
         WHERE tenant_id = $1 AND id = $2 RETURNING last_seq",
    )
    .bind(tenant)
    .bind(conversation)
    .bind(now)
    .bind(i64::from(reopens))
    .fetch_one(&mut **tx)
    .await?;
    let seq = rows::int(&row, "last_seq")?;

    let id = MessageId::generate();
    let sealed = KeyRing::seal(
        sealing.key,
        tenant,
        MESSAGE_BODY,
        id.as_str(),
        new.body.as_str(),
    )?;
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, seq, client_msg_id, author_kind, \
         author_id, body, key_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id.as_str())
    .bind(tenant)
    .bind(conversation)
    .bind(seq)
    .bind(new.client_msg_id.as_str())
    .bind(new.author_kind.as_str())
    .bind(new.author_id.as_deref())
    .bind(sealed)
    .bind(sealing.version)
    .bind(now)
    .execute(&mut **tx)
    .await?;

    let reopened = if reopens {
        reload_conversation(store, tx, new).await?
    } else {
        None
    };
    Ok(Ok(Appended {
        tenant_id: new.tenant_id.clone(),
        message: Message {
            id,
            conversation_id: new.conversation_id.clone(),
            seq,
            client_msg_id: new.client_msg_id.clone(),
            author_kind: new.author_kind,
            author_id: new.author_id.clone(),
            author_name: new.author_name.clone(),
            body: new.body.clone(),
            created_at: now,
        },
        duplicate: false,
        reopened,
    }))
}

async fn find_resend(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    new: &NewMessage,
) -> Result<Option<Message>> {
    let sql = format!(
        "{} WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND m.client_msg_id = $3 \
         AND m.author_kind = $4 AND m.author_id = $5",
        rows::MESSAGE_SELECT
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new.tenant_id.as_str())
        .bind(new.conversation_id.as_str())
        .bind(new.client_msg_id.as_str())
        .bind(new.author_kind.as_str())
        .bind(new.author_id.as_deref())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(Some(rows::message(store, &row).await?)),
        None => Ok(None),
    }
}

async fn reload_conversation(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    new: &NewMessage,
) -> Result<Option<Conversation>> {
    let sql = format!(
        "{} WHERE c.tenant_id = $1 AND c.id = $2",
        rows::CONVERSATION_SELECT
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new.tenant_id.as_str())
        .bind(new.conversation_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(Some(rows::conversation(store, &row).await?)),
        None => Ok(None),
    }
}
