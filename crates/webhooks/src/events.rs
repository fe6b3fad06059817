//! Chat events as webhook payloads, and the hand-off from the chat service
//! to the outbox. The chat service calls [`Enqueuer`] after each commit on
//! its own task, so the hand-off is a non-blocking `try_send` to a bounded
//! queue; a task drains it into the outbox table.

use crate::Inner;
use palisade_model::{Conversation, Message, TenantId, now_millis};
use palisade_store::NewWebhookDelivery;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// The events a subscription can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    MessageCreated,
    ConversationAssigned,
    ConversationClosed,
}

impl EventType {
    pub const ALL: [Self; 3] = [
        Self::MessageCreated,
        Self::ConversationAssigned,
        Self::ConversationClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::ConversationAssigned => "conversation.assigned",
            Self::ConversationClosed => "conversation.closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == raw)
    }
}

/// One committed change, waiting to become outbox rows.
#[derive(Debug)]
pub(crate) struct Occurred {
    tenant: TenantId,
    event: EventType,
    data: Value,
    at: i64,
}

/// Events queued between the chat writer and the outbox.
pub(crate) const QUEUE: usize = 4096;

/// The chat service's view of webhooks.
#[derive(Debug)]
pub(crate) struct Enqueuer {
    pub(crate) inner: Arc<Inner>,
    pub(crate) queue: mpsc::Sender<Occurred>,
}

impl Enqueuer {
    fn offer(&self, tenant: &TenantId, event: EventType, data: impl FnOnce() -> Value) {
        if !self.inner.wants(tenant, event) {
            return;
        }
        let occurred = Occurred {
            tenant: tenant.clone(),
            event,
            data: data(),
            at: now_millis(),
        };
        if self.queue.try_send(occurred).is_err() {
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(tenant = %tenant, event = event.as_str(),
                "webhook queue full or closed; event not delivered");
        }
    }
}

fn message_json(message: &Message) -> Value {
    json!({
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "author_kind": message.author_kind,
        "author_id": message.author_id,
        "author_name": message.author_name,
        "body": message.body,
        "created_at": message.created_at,
    })
}

fn conversation_json(conversation: &Conversation) -> Value {
    json!({
        "id": conversation.id,
        "status": conversation.status,
        "visitor_id": conversation.visitor_id,
        "assignee_id": conversation.assignee_id,
        "assignee_name": conversation.assignee_name,
        "last_seq": conversation.last_seq,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    })
}

impl palisade_chat::Outbound for Enqueuer {
    fn message_created(&self, tenant: &TenantId, message: &Message) {
        self.offer(
            tenant,
            EventType::MessageCreated,
            || json!({ "message": message_json(message) }),
        );
    }

    fn conversation_assigned(&self, conversation: &Conversation) {
        let tenant = &conversation.tenant_id;
        self.offer(
            tenant,
            EventType::ConversationAssigned,
            || json!({ "conversation": conversation_json(conversation) }),
        );
    }

    fn conversation_closed(&self, conversation: &Conversation) {
        let tenant = &conversation.tenant_id;
        self.offer(
            tenant,
            EventType::ConversationClosed,
            || json!({ "conversation": conversation_json(conversation) }),
        );
    }
}

/// Turns queued events into outbox rows, one per interested subscription,
/// and wakes the worker.
pub(crate) async fn drain(inner: Arc<Inner>, mut queue: mpsc::Receiver<Occurred>) {
    while let Some(occurred) = queue.recv().await {
        let subscriptions = inner.subscribed(&occurred.tenant, occurred.event);
        if subscriptions.is_empty() {
            continue;
        }
        let event_id = uuid::Uuid::now_v7().to_string();
        let payload = json!({
            "id": event_id,
            "type": occurred.event.as_str(),
            "created_at": occurred.at,
            "tenant_id": occurred.tenant,
            "data": occurred.data,
        })
        .to_string();
        let rows: Vec<NewWebhookDelivery> = subscriptions
            .into_iter()
            .map(|subscription_id| NewWebhookDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                subscription_id,
                event_id: event_id.clone(),
                event: occurred.event.as_str().to_owned(),
                payload: payload.clone(),
            })
            .collect();
        match inner.store.webhook_enqueue(&occurred.tenant, &rows).await {
            Ok(()) => inner.wake.notify_one(),
            Err(err) => {
                inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(tenant = %occurred.tenant, event = occurred.event.as_str(),
                    error = %err, "a webhook event could not be put in the outbox");
            }
        }
    }
}
