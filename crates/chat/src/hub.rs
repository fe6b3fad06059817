//! In-process fan-out of chat events.
//!
//! Two kinds of channel: one per tenant (every agent socket of the tenant
//! listens) and one per conversation (the visitor's sockets listen). Channels
//! exist only while someone listens. A listener that falls too far behind is
//! told it lagged and must re-read from the store by sequence number, so a
//! slow socket can never hold up the others or lose a message.

use palisade_model::{AuthorKind, Conversation, ConversationId, Message, Note, TenantId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

const TENANT_CAPACITY: usize = 1024;
/// Small on purpose: every visitor socket of a conversation holds a channel
/// of this many slots, and a listener that falls behind loses nothing (it
/// re-reads from the store by sequence number).
const CONVERSATION_CAPACITY: usize = 32;

/// Something that happened in a conversation.
#[derive(Clone, Debug)]
pub enum Event {
    Message {
        tenant_id: TenantId,
        message: Message,
    },
    Conversation {
        conversation: Conversation,
    },
    Typing {
        tenant_id: TenantId,
        conversation_id: ConversationId,
        author_kind: AuthorKind,
        author_name: Option<String>,
        typing: bool,
    },
    /// A private note: published to the tenant's agents only.
    Note {
        tenant_id: TenantId,
        note: Note,
    },
}

impl Event {
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Self::Message { tenant_id, .. }
            | Self::Typing { tenant_id, .. }
            | Self::Note { tenant_id, .. } => tenant_id,
            Self::Conversation { conversation } => &conversation.tenant_id,
        }
    }

    pub fn conversation_id(&self) -> &ConversationId {
        match self {
            Self::Message { message, .. } => &message.conversation_id,
            Self::Conversation { conversation } => &conversation.id,
            Self::Typing {
                conversation_id, ..
            } => conversation_id,
            Self::Note { note, .. } => &note.conversation_id,
        }
    }

    /// Events for agents alone, which never enter a conversation's channel
    /// (the one visitor sockets listen to).
    pub fn agents_only(&self) -> bool {
        matches!(self, Self::Note { .. })
    }
}

type Channels<K> = Mutex<HashMap<K, broadcast::Sender<Arc<Event>>>>;

#[derive(Debug, Default)]
pub struct Hub {
    tenants: Channels<TenantId>,
    conversations: Channels<ConversationId>,
}

/// A live listener. Dropping it removes its channel once nobody else listens.
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Event>>,
    cleanup: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

impl Subscription {
    /// The next event; `Err(Lagged)` means events were skipped and the
    /// listener must catch up from the store.
    pub async fn recv(&mut self) -> Result<Arc<Event>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        (self.cleanup)();
    }
}

fn lock<K>(
    channels: &Channels<K>,
) -> std::sync::MutexGuard<'_, HashMap<K, broadcast::Sender<Arc<Event>>>> {
    // A panic while holding this lock cannot leave the map inconsistent.
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

fn subscribe<K: Clone + Eq + Hash + Send + Sync + 'static>(
    hub: &Arc<Hub>,
    pick: fn(&Hub) -> &Channels<K>,
    key: K,
    capacity: usize,
) -> Subscription {
    let receiver = lock(pick(hub))
        .entry(key.clone())
        .or_insert_with(|| broadcast::channel(capacity).0)
        .subscribe();
    let weak = Arc::downgrade(hub);
    let cleanup = Box::new(move || {
        if let Some(hub) = weak.upgrade() {
            let mut channels = lock(pick(&hub));
            // This subscription's receiver is still alive while we run.
            if channels
                .get(&key)
                .is_some_and(|tx| tx.receiver_count() <= 1)
            {
                channels.remove(&key);
            }
        }
    });
    Subscription { receiver, cleanup }
}

impl Hub {
    /// Every event of a tenant: what an agent's socket listens to.
    pub fn subscribe_tenant(self: &Arc<Self>, tenant: &TenantId) -> Subscription {
        subscribe(self, |hub| &hub.tenants, tenant.clone(), TENANT_CAPACITY)
    }

    /// Every event of one conversation: what a visitor's socket listens to.
    pub fn subscribe_conversation(self: &Arc<Self>, id: &ConversationId) -> Subscription {
        subscribe(
            self,
            |hub| &hub.conversations,
            id.clone(),
            CONVERSATION_CAPACITY,
        )
    }

    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if let Some(tx) = lock(&self.tenants).get(event.tenant_id()) {
            let _ = tx.send(event.clone());
        }
        if event.agents_only() {
            return;
        }
        if let Some(tx) = lock(&self.conversations).get(event.conversation_id()) {
            let _ = tx.send(event);
        }
    }

    /// How many channels are open: for metrics and leak tests.
    pub fn channel_count(&self) -> usize {
        lock(&self.tenants).len() + lock(&self.conversations).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::{AgentId, Conversation, ConversationStatus, VisitorId};
    use tokio::sync::broadcast::error::RecvError;

    fn changed(id: &ConversationId) -> Event {
        Event::Conversation {
            conversation: Conversation {
                id: id.clone(),
                tenant_id: TenantId::from_raw("t"),
                visitor_id: VisitorId::from_raw("v"),
                visitor_name: None,
                visitor_verified_user_id: None,
                status: ConversationStatus::Open,
                assignee_id: None::<AgentId>,
                assignee_name: None,
                last_seq: 0,
                created_at: 0,
                updated_at: 0,
            },
        }
    }

    #[tokio::test]
    async fn a_private_note_reaches_the_tenant_channel_and_never_the_conversation_channel() {
        let hub = Arc::new(Hub::default());
        let id = ConversationId::from_raw("c");
        let tenant = TenantId::from_raw("t");
        let mut visitor = hub.subscribe_conversation(&id);
        let mut agents = hub.subscribe_tenant(&tenant);
        let note = Note {
            id: palisade_model::NoteId::from_raw("n"),
            conversation_id: id.clone(),
            author_id: AgentId::from_raw("a"),
            author_name: "Agent".into(),
            body: palisade_model::MessageBody::from_stored("internal".into()),
            created_at: 0,
        };
        hub.publish(Event::Note {
            tenant_id: tenant,
            note,
        });
        hub.publish(changed(&id));

        assert!(matches!(
            *agents.recv().await.expect("note"),
            Event::Note { .. }
        ));
        // The visitor's first event is the one after the note.
        let first = visitor.recv().await.expect("event");
        assert!(matches!(*first, Event::Conversation { .. }), "{first:?}");
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_is_told_it_lagged_and_channels_go_with_listeners() {
        let hub = Arc::new(Hub::default());
        let id = ConversationId::from_raw("c");
        let mut slow = hub.subscribe_conversation(&id);
        for _ in 0..CONVERSATION_CAPACITY + 5 {
            hub.publish(changed(&id));
        }
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(5))));
        assert_eq!(hub.channel_count(), 1);
        drop(slow);
        assert_eq!(
            hub.channel_count(),
            0,
            "the channel goes with its last listener"
        );
    }
}
