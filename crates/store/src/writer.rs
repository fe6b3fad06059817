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
use std::collections::hash_map::Entry;
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

/// A conversation as the batch sees it: read once (and, on PostgreSQL,
/// locked) at its first message, then kept in memory and written back once.
struct ConversationState {
    last_seq: i64,
    status: String,
    has_assignee: bool,
    touched: bool,
    /// The index (in the batch) of the message that re-opened it.
    reopened_by: Option<usize>,
}

/// Writes every message of the batch in one transaction. A per-message
/// refusal (unknown conversation, reused id) is that message's outcome; a
/// database error fails the whole transaction.
///
/// Per message this costs one statement: the insert, which also detects a
/// resend through the sender's unique client id. Each conversation is read
/// once and updated once per batch, whatever number of its messages the
/// batch carries.
async fn write_batch(
    store: &Store,
    batch: &[(NewMessage, Reply)],
    commits: &AtomicU64,
) -> Result<Vec<Result<Appended, WriterError>>> {
    // Data keys come from the keyring, a platform path, before the batch
    // begins; a rotation in between only means this batch seals with the
    // version just retired, which stays readable.
    let mut keys: HashMap<&str, (i64, DataKey)> = HashMap::new();
    let mut conn = store.pool().acquire().await?;
    for (message, _) in batch {
        let tenant = message.tenant_id.as_str();
        if !keys.contains_key(tenant) {
            let active = store.keys().active_key(&mut conn, tenant).await?;
            keys.insert(tenant, active);
        }
    }
    drop(conn);
    // SQLite: take the write lock up front, so the reads below cannot be
    // invalidated by another writer before our first write. PostgreSQL: the
    // tenant pool, with each message's tenant set before its statements.
    let mut tx = store.scoped_write_tx().await?;
    let mut scope = TenantScope::default();
    let mut conversations: HashMap<(&str, &str), Option<ConversationState>> = HashMap::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    let now = now_millis();
    for (index, (message, _)) in batch.iter().enumerate() {
        let Some((version, key)) = keys.get(message.tenant_id.as_str()) else {
            return Err(StoreError::Corrupt(
                "no data key was loaded for a batch tenant".into(),
            ));
        };
        let id_pair = (message.tenant_id.as_str(), message.conversation_id.as_str());
        scope.enter(store, &mut tx, id_pair.0).await?;
        if let Entry::Vacant(slot) = conversations.entry(id_pair) {
            slot.insert(load_conversation(store.backend(), &mut tx, message).await?);
        }
        let Some(Some(state)) = conversations.get_mut(&id_pair) else {
            outcomes.push(Err(WriterError::ConversationNotFound));
            continue;
        };
        let sealing = Sealing {
            version: *version,
            key,
        };
        let outcome = write_one(store, &mut tx, sealing, message, state, now).await?;
        if let Ok(appended) = &outcome
            && !appended.duplicate
            && state.status == "closed"
            && message.author_kind == AuthorKind::Visitor
        {
            state.status = if state.has_assignee {
                "assigned"
            } else {
                "open"
            }
            .to_owned();
            state.reopened_by.get_or_insert(index);
        }
        outcomes.push(outcome);
    }
    for ((tenant, conversation), state) in &conversations {
        let Some(state) = state.as_ref().filter(|s| s.touched) else {
            continue;
        };
        scope.enter(store, &mut tx, tenant).await?;
        sqlx::query(
            "UPDATE conversations SET last_seq = $3, updated_at = $4, status = $5 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(*tenant)
        .bind(*conversation)
        .bind(state.last_seq)
        .bind(now)
        .bind(state.status.as_str())
        .execute(&mut *tx)
        .await?;
    }
    for state in conversations.values().flatten() {
        let Some(index) = state.reopened_by else {
            continue;
        };
        let (message, _) = &batch[index];
        scope
            .enter(store, &mut tx, message.tenant_id.as_str())
            .await?;
        let reopened = reload_conversation(store, &mut tx, message).await?;
        if let Some(Ok(appended)) = outcomes.get_mut(index) {
            appended.reopened = reopened;
        }
    }
    tx.commit().await?;
    commits.fetch_add(1, Ordering::Relaxed);
    Ok(outcomes)
}

/// The tenant row-level security currently admits in a batch transaction
/// (PostgreSQL); a batch spans tenants, so it is set again whenever the next
/// statement belongs to another one.
#[derive(Default)]
struct TenantScope {
    current: Option<String>,
}

impl TenantScope {
    async fn enter(
        &mut self,
        store: &Store,
        tx: &mut Transaction<'static, Any>,
        tenant: &str,
    ) -> Result<()> {
        if store.backend() == Backend::Sqlite || self.current.as_deref() == Some(tenant) {
            return Ok(());
        }
        crate::set_tenant(tx, tenant).await?;
        self.current = Some(tenant.to_owned());
        Ok(())
    }
}

/// Reads the conversation a message goes to, locking its row on PostgreSQL
/// until the batch commits (SQLite's write lock is already held).
async fn load_conversation(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    message: &NewMessage,
) -> Result<Option<ConversationState>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT last_seq, status, assignee_id FROM conversations \
             WHERE tenant_id = $1 AND id = $2"
        }
        Backend::Postgres => {
            "SELECT last_seq, status, assignee_id FROM conversations \
             WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        }
    };
    let row = sqlx::query(sql)
        .bind(message.tenant_id.as_str())
        .bind(message.conversation_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ConversationState {
        last_seq: rows::int(&row, "last_seq")?,
        status: rows::text(&row, "status")?,
        has_assignee: rows::opt_text(&row, "assignee_id")?.is_some(),
        touched: false,
        reopened_by: None,
    }))
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
    state: &mut ConversationState,
    now: i64,
) -> Result<Result<Appended, WriterError>> {
    let tenant = new.tenant_id.as_str();
    let conversation = new.conversation_id.as_str();
    let seq = state.last_seq + 1;
    let id = MessageId::generate();
    let sealed = KeyRing::seal(
        sealing.key,
        tenant,
        MESSAGE_BODY,
        id.as_str(),
        new.body.as_str(),
    )?;
    // The sender's unique client id turns a resend into "nothing inserted".
    let inserted = sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, seq, client_msg_id, author_kind, \
         author_id, body, key_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (conversation_id, author_kind, author_id, client_msg_id) DO NOTHING",
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

    if inserted.rows_affected() == 0 {
        let Some(earlier) = find_resend(store, tx, new).await? else {
            return Err(StoreError::Corrupt(
                "a message insert conflicted with no earlier message".into(),
            ));
        };
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
    state.last_seq = seq;
    state.touched = true;
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
        reopened: None,
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
