//! The chat service.
//!
//! Every operation starts by authorising the caller for one conversation,
//! which yields a [`ConversationAccess`]: the only way to read or write a
//! conversation. Messages go through the store's group-commit writer; once a
//! message is committed the [`Hub`] fans it out to the tenant's agents and
//! the conversation's visitor sockets, in commit order.
//!
//! This crate never speaks HTTP and never sees a credential: the gateway
//! turns credentials into an [`Actor`] first.

mod hub;

pub use hub::{Event, Hub, Subscription};

use palisade_model::{
    AgentId, AuthorKind, ClientMsgId, Conversation, ConversationId, ConversationStatus, Message,
    MessageBody, Note, Seq, TenantId, VisitorId, WidgetId,
};
pub use palisade_store::{Appended, PendingAppend};
use palisade_store::{CommitObserver, MessageWriter, NewMessage, Store, StoreError, WriterError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Who is acting, as the gateway established it.
#[derive(Clone, Debug)]
pub enum Actor {
    Visitor {
        tenant_id: TenantId,
        widget_id: WidgetId,
        visitor_id: VisitorId,
        name: Option<String>,
    },
    Agent {
        tenant_id: TenantId,
        agent_id: AgentId,
        name: String,
    },
    /// A partner's back-end (mutual TLS). It writes as a bot or as the
    /// system, never as an agent or visitor.
    Partner {
        tenant_id: TenantId,
        partner: String,
        /// Who the partner's messages appear to come from.
        author: PartnerAuthor,
    },
}

/// How a partner's message is shown: as its named bot, or as a system note.
/// Both are stored with the `system` author kind; the author id tells them
/// apart (`bot:<partner>` or `system:<partner>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartnerAuthor {
    Bot { name: String },
    System,
}

impl Actor {
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Self::Visitor { tenant_id, .. }
            | Self::Agent { tenant_id, .. }
            | Self::Partner { tenant_id, .. } => tenant_id,
        }
    }
}

/// Proof that an actor may use one conversation. Only [`Chat::authorize`]
/// makes one.
#[derive(Clone, Debug)]
pub struct ConversationAccess {
    actor: Actor,
    conversation_id: ConversationId,
}

impl ConversationAccess {
    pub fn conversation_id(&self) -> &ConversationId {
        &self.conversation_id
    }

    pub fn tenant_id(&self) -> &TenantId {
        self.actor.tenant_id()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Also the answer for another tenant's or another visitor's
    /// conversation: its existence is not disclosed.
    #[error("conversation not found")]
    NotFound,
    #[error("only agents may do this")]
    Forbidden,
    #[error("the chat service is shutting down")]
    Unavailable,
    #[error("client_msg_id was already used for a different message")]
    ClientIdReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WriterError> for ChatError {
    fn from(err: WriterError) -> Self {
        match err {
            WriterError::ConversationNotFound => Self::NotFound,
            WriterError::ClientIdReused => Self::ClientIdReused,
            WriterError::Stopped => Self::Unavailable,
            WriterError::Store(err) => Self::Store(err),
        }
    }
}

/// Counters the ops listener exposes.
#[derive(Debug, Default)]
pub struct ChatStats {
    pub messages_stored: AtomicU64,
    pub messages_resent: AtomicU64,
}

/// The chat service; cheap to clone.
#[derive(Clone, Debug)]
pub struct Chat {
    store: Store,
    writer: MessageWriter,
    hub: Arc<Hub>,
    stats: Arc<ChatStats>,
    outbound: Option<Arc<dyn Outbound>>,
}

/// Told about every committed change that leaves the process (webhooks):
/// each new message, and each claim and close, after its commit. Must not
/// block: it runs on the message writer's task.
pub trait Outbound: Send + Sync + std::fmt::Debug {
    fn message_created(&self, tenant: &TenantId, message: &Message);
    fn conversation_assigned(&self, conversation: &Conversation);
    fn conversation_closed(&self, conversation: &Conversation);
}

/// Publishes each committed message to the hub, in commit order.
struct Publisher {
    hub: Arc<Hub>,
    stats: Arc<ChatStats>,
    outbound: Option<Arc<dyn Outbound>>,
}

impl CommitObserver for Publisher {
    fn committed(&self, appended: &Appended) {
        if appended.duplicate {
            self.stats.messages_resent.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.messages_stored.fetch_add(1, Ordering::Relaxed);
        if let Some(outbound) = &self.outbound {
            outbound.message_created(&appended.tenant_id, &appended.message);
        }
        self.hub.publish(Event::Message {
            tenant_id: appended.tenant_id.clone(),
            message: appended.message.clone(),
        });
        if let Some(conversation) = &appended.reopened {
            self.hub.publish(Event::Conversation {
                conversation: conversation.clone(),
            });
        }
    }
}

impl Chat {
    pub fn new(store: Store) -> Self {
        Self::with_outbound(store, None)
    }

    /// A chat service that also tells `outbound` about committed changes.
    pub fn with_outbound(store: Store, outbound: Option<Arc<dyn Outbound>>) -> Self {
        let hub = Arc::new(Hub::default());
        let stats = Arc::new(ChatStats::default());
        let publisher = Publisher {
            hub: hub.clone(),
            stats: stats.clone(),
            outbound: outbound.clone(),
        };
        let writer = store.spawn_message_writer(Arc::new(publisher));
        Self {
            store,
            writer,
            hub,
            stats,
            outbound,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn stats(&self) -> &ChatStats {
        &self.stats
    }

    /// Transactions the message writer has committed (group commit makes
    /// this smaller than the number of messages).
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Checks that `actor` may use the conversation: an agent any of its
    /// tenant's, a visitor only its own.
    pub async fn authorize(
        &self,
        actor: &Actor,
        id: &ConversationId,
    ) -> Result<(ConversationAccess, Conversation), ChatError> {
        let conversation = self
            .store
            .conversation(actor.tenant_id(), id)
            .await?
            .ok_or(ChatError::NotFound)?;
        if let Actor::Visitor { visitor_id, .. } = actor
            && conversation.visitor_id != *visitor_id
        {
            return Err(ChatError::NotFound);
        }
        let access = ConversationAccess {
            actor: actor.clone(),
            conversation_id: id.clone(),
        };
        Ok((access, conversation))
    }

    /// Opens a new conversation for a visitor.
    pub async fn open_conversation(&self, actor: &Actor) -> Result<Conversation, ChatError> {
        let Actor::Visitor {
            tenant_id,
            widget_id,
            visitor_id,
            ..
        } = actor
        else {
            return Err(ChatError::Forbidden);
        };
        let conversation = self
            .store
            .create_conversation(tenant_id, widget_id, visitor_id)
            .await?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        Ok(conversation)
    }

    /// Stores a message and answers once it is durably committed. A resend
    /// of the same client message id answers with the first copy.
    pub async fn send(
        &self,
        access: &ConversationAccess,
        client_msg_id: ClientMsgId,
        body: MessageBody,
    ) -> Result<Appended, ChatError> {
        Ok(self.submit(access, client_msg_id, body).await?.await?)
    }

    /// Queues a message and returns its pending acknowledgement: what a
    /// socket uses to pipeline sends while keeping their order.
    pub async fn submit(
        &self,
        access: &ConversationAccess,
        client_msg_id: ClientMsgId,
        body: MessageBody,
    ) -> Result<PendingAppend, ChatError> {
        let (author_kind, author_id, author_name) = match &access.actor {
            Actor::Visitor {
                visitor_id, name, ..
            } => (AuthorKind::Visitor, visitor_id.to_string(), name.clone()),
            Actor::Agent { agent_id, name, .. } => {
                (AuthorKind::Agent, agent_id.to_string(), Some(name.clone()))
            }
            Actor::Partner {
                partner, author, ..
            } => match author {
                PartnerAuthor::Bot { name } => (
                    AuthorKind::System,
                    format!("bot:{partner}"),
                    Some(name.clone()),
                ),
                PartnerAuthor::System => (AuthorKind::System, format!("system:{partner}"), None),
            },
        };
        let pending = self
            .writer
            .submit(NewMessage {
                tenant_id: access.tenant_id().clone(),
                conversation_id: access.conversation_id.clone(),
                client_msg_id,
                author_kind,
                author_id: Some(author_id),
                author_name,
                body,
            })
            .await?;
        Ok(pending)
    }

    /// Messages after `after`, in order.
    pub async fn history(
        &self,
        access: &ConversationAccess,
        after: Seq,
        limit: i64,
    ) -> Result<Vec<Message>, ChatError> {
        let tenant = access.tenant_id();
        Ok(self
            .store
            .messages_after(tenant, &access.conversation_id, after, limit)
            .await?)
    }

    /// Tells the other side someone is typing. Not stored.
    pub fn typing(&self, access: &ConversationAccess, typing: bool) {
        let (author_kind, author_name) = match &access.actor {
            Actor::Visitor { name, .. } => (AuthorKind::Visitor, name.clone()),
            Actor::Agent { name, .. } => (AuthorKind::Agent, Some(name.clone())),
            Actor::Partner { .. } => (AuthorKind::System, None),
        };
        self.hub.publish(Event::Typing {
            tenant_id: access.tenant_id().clone(),
            conversation_id: access.conversation_id.clone(),
            author_kind,
            author_name,
            typing,
        });
    }

    /// An agent writes a private note. It goes to the tenant's agents only:
    /// never to the conversation's (visitor) channel.
    pub async fn add_note(
        &self,
        access: &ConversationAccess,
        body: &MessageBody,
    ) -> Result<Note, ChatError> {
        let Actor::Agent {
            tenant_id,
            agent_id,
            name,
        } = &access.actor
        else {
            return Err(ChatError::Forbidden);
        };
        let author = (agent_id, name.as_str());
        let note = self
            .store
            .add_note(tenant_id, &access.conversation_id, author, body)
            .await?;
        self.hub.publish(Event::Note {
            tenant_id: tenant_id.clone(),
            note: note.clone(),
        });
        Ok(note)
    }

    /// The conversation's private notes; agents only.
    pub async fn notes(&self, access: &ConversationAccess) -> Result<Vec<Note>, ChatError> {
        let Actor::Agent { tenant_id, .. } = &access.actor else {
            return Err(ChatError::Forbidden);
        };
        Ok(self.store.notes(tenant_id, &access.conversation_id).await?)
    }

    /// An agent takes the conversation.
    pub async fn claim(&self, access: &ConversationAccess) -> Result<Conversation, ChatError> {
        let Actor::Agent {
            tenant_id,
            agent_id,
            ..
        } = &access.actor
        else {
            return Err(ChatError::Forbidden);
        };
        let claimed = self
            .store
            .claim_conversation(tenant_id, &access.conversation_id, agent_id);
        let conversation = claimed.await?.ok_or(ChatError::NotFound)?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        if let Some(outbound) = &self.outbound {
            outbound.conversation_assigned(&conversation);
        }
        Ok(conversation)
    }

    /// A partner assigns the conversation to one of its tenant's agents;
    /// an agent of another tenant is "not found".
    pub async fn assign(
        &self,
        access: &ConversationAccess,
        agent: &AgentId,
    ) -> Result<Conversation, ChatError> {
        let Actor::Partner { tenant_id, .. } = &access.actor else {
            return Err(ChatError::Forbidden);
        };
        let assigned = self
            .store
            .claim_conversation(tenant_id, &access.conversation_id, agent);
        let conversation = assigned.await?.ok_or(ChatError::NotFound)?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        Ok(conversation)
    }

    /// An agent reopens a closed conversation.
    pub async fn reopen(&self, access: &ConversationAccess) -> Result<Conversation, ChatError> {
        let Actor::Agent { tenant_id, .. } = &access.actor else {
            return Err(ChatError::Forbidden);
        };
        let reopened = self
            .store
            .reopen_conversation(tenant_id, &access.conversation_id);
        let conversation = reopened.await?.ok_or(ChatError::NotFound)?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        Ok(conversation)
    }

    /// Opens a conversation for one of the tenant's visitors, on a partner's
    /// behalf; an unknown visitor is "not found".
    pub async fn open_for_visitor(
        &self,
        actor: &Actor,
        visitor: &VisitorId,
    ) -> Result<Conversation, ChatError> {
        let Actor::Partner { tenant_id, .. } = actor else {
            return Err(ChatError::Forbidden);
        };
        let found = self.store.visitor_record(tenant_id, visitor).await?;
        let (widget, _, _) = found.ok_or(ChatError::NotFound)?;
        let conversation = self
            .store
            .create_conversation(tenant_id, &widget, visitor)
            .await?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        Ok(conversation)
    }

    /// An agent or a partner closes the conversation.
    pub async fn close(&self, access: &ConversationAccess) -> Result<Conversation, ChatError> {
        let (Actor::Agent { tenant_id, .. } | Actor::Partner { tenant_id, .. }) = &access.actor
        else {
            return Err(ChatError::Forbidden);
        };
        let closed = self
            .store
            .close_conversation(tenant_id, &access.conversation_id)
            .await?;
        let conversation = closed.ok_or(ChatError::NotFound)?;
        self.hub.publish(Event::Conversation {
            conversation: conversation.clone(),
        });
        if let Some(outbound) = &self.outbound {
            outbound.conversation_closed(&conversation);
        }
        Ok(conversation)
    }

    /// The tenant's conversations for an agent's inbox.
    pub async fn inbox(
        &self,
        tenant: &TenantId,
        status: Option<ConversationStatus>,
        limit: i64,
    ) -> Result<Vec<Conversation>, ChatError> {
        Ok(self.store.conversations(tenant, status, limit).await?)
    }
}
