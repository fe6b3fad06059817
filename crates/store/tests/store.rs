//! The store's behaviour, run on SQLite and, when PALISADE_TEST_POSTGRES_URL
//! is set, on PostgreSQL: tenant scoping, group commit, idempotent resends,
//! gap-free sequence numbers under concurrency.

use palisade_model::{
    AuthorKind, ClientMsgId, ConversationId, ConversationStatus, MessageBody, TenantId, VisitorId,
    WidgetId,
};
use palisade_store::testing::{backends, fresh_store};
use palisade_store::{
    Appended, Backend, CommitObserver, MessageWriter, NewMessage, NewWidget, Store,
};
use std::sync::{Arc, Mutex};

fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("palisade-store-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Records what the writer reports, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<(ConversationId, i64, bool)>>);

impl CommitObserver for Recorder {
    fn committed(&self, appended: &Appended) {
        let entry = (
            appended.message.conversation_id.clone(),
            appended.message.seq,
            appended.duplicate,
        );
        self.0.lock().expect("lock").push(entry);
    }
}

struct Fixture {
    store: Store,
    tenant: TenantId,
    widget: WidgetId,
    visitor: VisitorId,
}

async fn fixture(backend: Backend, slug: &str) -> Fixture {
    let store = fresh_store(backend, &temp_dir())
        .await
        .expect("fresh store");
    let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
    let key = format!("pk_{slug}_{}", uuid::Uuid::new_v4().simple());
    let widget = store
        .create_widget(
            &tenant,
            NewWidget {
                name: slug,
                public_key: &key,
                allowed_origins: &[],
                greeting: "hi",
            },
        )
        .await
        .expect("widget")
        .id;
    let visitor = store
        .create_visitor(&tenant, &widget, Some("Ann"), None)
        .await
        .expect("visitor");
    Fixture {
        store,
        tenant,
        widget,
        visitor,
    }
}

fn message(f: &Fixture, conversation: &ConversationId, client_id: &str, body: &str) -> NewMessage {
    NewMessage {
        tenant_id: f.tenant.clone(),
        conversation_id: conversation.clone(),
        client_msg_id: ClientMsgId::parse(client_id).expect("client id"),
        author_kind: AuthorKind::Visitor,
        author_id: Some(f.visitor.to_string()),
        author_name: None,
        body: MessageBody::parse(body).expect("body"),
    }
}

#[tokio::test]
async fn another_tenants_ids_match_nothing() {
    for backend in backends() {
        let a = fixture(backend, "store-a").await;
        let b_tenant = a
            .store
            .ensure_tenant("store-b", "B")
            .await
            .expect("tenant b");
        let conversation = a
            .store
            .create_conversation(&a.tenant, &a.widget, &a.visitor)
            .await
            .expect("conversation");

        assert!(
            a.store
                .conversation(&b_tenant, &conversation.id)
                .await
                .expect("query")
                .is_none()
        );
        assert!(
            a.store
                .messages_after(&b_tenant, &conversation.id, 0, 10)
                .await
                .expect("query")
                .is_empty()
        );
        assert!(
            a.store
                .close_conversation(&b_tenant, &conversation.id)
                .await
                .expect("query")
                .is_none()
        );
        assert!(
            a.store
                .conversations(&b_tenant, None, 10)
                .await
                .expect("query")
                .is_empty()
        );
        assert!(
            !a.store
                .visitor_exists(&b_tenant, &a.visitor)
                .await
                .expect("query")
        );

        // A message addressed with the wrong tenant is refused, not stored.
        let writer = a.store.spawn_message_writer(Arc::new(Recorder::default()));
        let mut wrong = message(&a, &conversation.id, "x-1", "misrouted");
        wrong.tenant_id = b_tenant.clone();
        assert!(matches!(
            writer.append(wrong).await,
            Err(palisade_store::WriterError::ConversationNotFound)
        ));
        assert!(
            a.store
                .messages_after(&a.tenant, &conversation.id, 0, 10)
                .await
                .expect("query")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn concurrent_appends_share_commits_and_get_gapless_sequences() {
    for backend in backends() {
        let f = Arc::new(fixture(backend, "store-burst").await);
        let recorder = Arc::new(Recorder::default());
        let writer = f.store.spawn_message_writer(recorder.clone());
        let mut conversations = Vec::new();
        for _ in 0..4 {
            conversations.push(
                f.store
                    .create_conversation(&f.tenant, &f.widget, &f.visitor)
                    .await
                    .expect("conversation")
                    .id,
            );
        }
        let mut tasks = Vec::new();
        for n in 0..400 {
            let (f, writer, conversation) =
                (f.clone(), writer.clone(), conversations[n % 4].clone());
            tasks.push(tokio::spawn(async move {
                writer
                    .append(message(
                        &f,
                        &conversation,
                        &format!("c-{n}"),
                        &format!("m{n}"),
                    ))
                    .await
            }));
        }
        for task in tasks {
            assert!(!task.await.expect("task").expect("stored").duplicate);
        }
        assert!(
            writer.commits() < 400,
            "group commit: {} commits for 400 messages",
            writer.commits()
        );

        for conversation in &conversations {
            let stored = f
                .store
                .messages_after(&f.tenant, conversation, 0, 500)
                .await
                .expect("read");
            let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
            let reported: Vec<i64> = recorder
                .0
                .lock()
                .expect("lock")
                .iter()
                .filter(|(c, _, _)| c == conversation)
                .map(|(_, s, _)| *s)
                .collect();
            assert_eq!(
                reported, seqs,
                "observer hears each conversation in commit order"
            );
            let current = f
                .store
                .conversation(&f.tenant, conversation)
                .await
                .expect("read")
                .expect("exists");
            assert_eq!(current.last_seq, 100);
        }
    }
}

#[tokio::test]
async fn a_resend_returns_the_first_copy_and_stores_nothing_and_a_reused_id_is_refused() {
    for backend in backends() {
        let f = fixture(backend, "store-resend").await;
        let writer: MessageWriter = f.store.spawn_message_writer(Arc::new(Recorder::default()));
        let conversation = f
            .store
            .create_conversation(&f.tenant, &f.widget, &f.visitor)
            .await
            .expect("conversation")
            .id;
        let first = writer
            .append(message(&f, &conversation, "same", "first words"))
            .await
            .expect("first");
        let again = writer
            .append(message(&f, &conversation, "same", "first words"))
            .await
            .expect("again");
        assert!(!first.duplicate && again.duplicate);
        assert_eq!(
            (first.message.seq, &first.message.id),
            (again.message.seq, &again.message.id)
        );
        // The same id for other text is refused, not silently dropped.
        let reused = writer
            .append(message(&f, &conversation, "same", "different words"))
            .await;
        assert!(matches!(
            reused,
            Err(palisade_store::WriterError::ClientIdReused)
        ));
        assert_eq!(
            f.store
                .messages_after(&f.tenant, &conversation, 0, 10)
                .await
                .expect("read")
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_visitor_message_reopens_a_closed_conversation() {
    for backend in backends() {
        let f = fixture(backend, "store-reopen").await;
        let writer = f.store.spawn_message_writer(Arc::new(Recorder::default()));
        let conversation = f
            .store
            .create_conversation(&f.tenant, &f.widget, &f.visitor)
            .await
            .expect("conversation")
            .id;
        f.store
            .close_conversation(&f.tenant, &conversation)
            .await
            .expect("close");
        let appended = writer
            .append(message(&f, &conversation, "r-1", "back again"))
            .await
            .expect("stored");
        let reopened = appended.reopened.expect("the conversation was reopened");
        assert_eq!(reopened.status, ConversationStatus::Open);
    }
}
