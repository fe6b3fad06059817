//! Envelope encryption in the store, on every backend: what lands in the
//! database is ciphertext, a ciphertext moved elsewhere does not open, keys
//! rotate under load without losing a message, and a wrong or missing master
//! key over existing data stops the store from opening.

use palisade_crypto::{KeyProvider, MasterKey, StaticKeyProvider};
use palisade_model::{AuthorKind, ClientMsgId, ConversationId, Email, MessageBody, TenantId};
use palisade_store::testing::{backends, fresh_url};
use palisade_store::{
    Appended, Backend, CommitObserver, MessageWriter, NewMessage, NewWidget, Store, StoreError,
};
use sqlx::{AnyConnection, Connection, Row};
use std::sync::Arc;

struct Quiet;
impl CommitObserver for Quiet {
    fn committed(&self, _: &Appended) {}
}

fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("palisade-store-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn keys(key: &MasterKey) -> Arc<dyn KeyProvider> {
    Arc::new(StaticKeyProvider::new(Some(key.clone())))
}

/// A database with one tenant, a visitor and a conversation.
struct Fixture {
    url: String,
    store: Store,
    master: MasterKey,
    tenant: TenantId,
    conversation: ConversationId,
    writer: MessageWriter,
}

async fn fixture(backend: Backend, slug: &str) -> Fixture {
    let url = fresh_url(backend, &temp_dir())
        .await
        .expect("fresh database");
    let master = MasterKey::generate().expect("master key");
    let store = Store::connect(&url, 8, keys(&master))
        .await
        .expect("store opens");
    let (tenant, conversation) = seed(&store, slug).await;
    let writer = store.spawn_message_writer(Arc::new(Quiet));
    Fixture {
        url,
        store,
        master,
        tenant,
        conversation,
        writer,
    }
}

async fn seed(store: &Store, slug: &str) -> (TenantId, ConversationId) {
    let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
    let origins = vec!["https://shop.example".to_owned()];
    let key = format!("pk_{slug}_{}", uuid::Uuid::new_v4().simple());
    let widget = store
        .create_widget(
            &tenant,
            NewWidget {
                name: "w",
                public_key: &key,
                allowed_origins: &origins,
                greeting: "hi",
            },
        )
        .await
        .expect("widget");
    let email = Email::parse("visitor-secret@example.com").expect("email");
    let visitor = store
        .create_visitor(
            &tenant,
            &widget.id,
            Some("Zebulon Visitorname"),
            Some(&email),
        )
        .await
        .expect("visitor");
    let conversation = store
        .create_conversation(&tenant, &widget.id, &visitor)
        .await
        .expect("conversation");
    (tenant, conversation.id)
}

async fn send(f: &Fixture, client_id: &str, body: &str) -> Appended {
    f.writer
        .append(NewMessage {
            tenant_id: f.tenant.clone(),
            conversation_id: f.conversation.clone(),
            client_msg_id: ClientMsgId::parse(client_id).expect("client id"),
            author_kind: AuthorKind::System,
            author_id: None,
            author_name: None,
            body: MessageBody::parse(body).expect("body"),
        })
        .await
        .expect("message stored")
}

async fn raw(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.expect("raw connection")
}

#[tokio::test]
async fn bodies_and_visitor_details_are_ciphertext_in_the_database_and_plaintext_to_readers() {
    for backend in backends() {
        let f = fixture(backend, "sealed").await;
        send(&f, "c-1", "plaintext-canary-4711").await;

        let mut conn = raw(&f.url).await;
        let row = sqlx::query("SELECT body, key_version FROM messages")
            .fetch_one(&mut conn)
            .await
            .expect("row");
        let body: String = row.get("body");
        assert!(
            !body.contains("canary"),
            "{backend:?}: body stored in clear"
        );
        assert_eq!(row.get::<i64, _>("key_version"), 1);
        let row = sqlx::query("SELECT name, email FROM visitors")
            .fetch_one(&mut conn)
            .await
            .expect("row");
        let (name, email): (String, String) = (row.get("name"), row.get("email"));
        assert!(
            !name.contains("Zebulon") && !email.contains("visitor-secret"),
            "{backend:?}"
        );

        let read = f
            .store
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect("read");
        assert_eq!(read[0].body.as_str(), "plaintext-canary-4711");
        let conversation = f
            .store
            .conversation(&f.tenant, &f.conversation)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(
            conversation.visitor_name.as_deref(),
            Some("Zebulon Visitorname")
        );
    }
}

#[tokio::test]
async fn ciphertext_moved_to_another_row_or_tenant_fails_to_open_with_an_error_naming_the_row() {
    for backend in backends() {
        let f = fixture(backend, "origin").await;
        let first = send(&f, "c-1", "first message").await;
        let second = send(&f, "c-2", "second message").await;
        let mut conn = raw(&f.url).await;

        // Same tenant, another row.
        sqlx::query(
            "UPDATE messages SET body = (SELECT body FROM messages WHERE id = $1) WHERE id = $2",
        )
        .bind(first.message.id.as_str())
        .bind(second.message.id.as_str())
        .execute(&mut conn)
        .await
        .expect("tamper");
        let err = f
            .store
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect_err("must not open");
        assert!(
            matches!(err, StoreError::Unseal { .. }),
            "{backend:?}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(second.message.id.as_str()) && text.contains("moved"),
            "{text}"
        );

        // Another tenant's row, even with the same key version.
        let (other, other_conversation) = seed(&f.store, "other").await;
        let victim = f
            .writer
            .append(NewMessage {
                tenant_id: other.clone(),
                conversation_id: other_conversation.clone(),
                client_msg_id: ClientMsgId::parse("o-1").expect("id"),
                author_kind: AuthorKind::System,
                author_id: None,
                author_name: None,
                body: MessageBody::parse("other tenant").expect("body"),
            })
            .await
            .expect("stored");
        sqlx::query(
            "UPDATE messages SET body = (SELECT body FROM messages WHERE id = $1) WHERE id = $2",
        )
        .bind(first.message.id.as_str())
        .bind(victim.message.id.as_str())
        .execute(&mut conn)
        .await
        .expect("tamper");
        let err = f
            .store
            .messages_after(&other, &other_conversation, 0, 10)
            .await
            .expect_err("must not open");
        assert!(
            matches!(err, StoreError::Unseal { .. }),
            "{backend:?}: {err}"
        );
    }
}

#[tokio::test]
async fn rotations_under_concurrent_sends_keep_every_message_readable() {
    for backend in backends() {
        let f = fixture(backend, "rotating").await;
        let senders: Vec<_> = (0..4)
            .map(|task| {
                let writer = f.writer.clone();
                let (tenant, conversation) = (f.tenant.clone(), f.conversation.clone());
                tokio::spawn(async move {
                    for i in 0..40 {
                        let new = NewMessage {
                            tenant_id: tenant.clone(),
                            conversation_id: conversation.clone(),
                            client_msg_id: ClientMsgId::parse(&format!("t{task}-{i}")).expect("id"),
                            author_kind: AuthorKind::System,
                            author_id: None,
                            author_name: None,
                            body: MessageBody::parse(&format!("body t{task} #{i}")).expect("body"),
                        };
                        writer.append(new).await.expect("stored during rotation");
                    }
                })
            })
            .collect();
        for round in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            f.store
                .rotate_data_key(&f.tenant)
                .await
                .expect("data key rotates");
            if round != 1 {
                f.store
                    .rotate_master_key()
                    .await
                    .expect("master key rotates");
            }
        }
        for sender in senders {
            sender.await.expect("sender finished");
        }
        let last = send(&f, "after", "after rotations").await;

        let all = f
            .store
            .messages_after(&f.tenant, &f.conversation, 0, 500)
            .await
            .expect("all readable");
        assert_eq!(all.len(), 161, "{backend:?}");
        for message in &all[..160] {
            let id = message.client_msg_id.as_str();
            let (task, i) = id[1..].split_once('-').expect("t<task>-<i>");
            assert_eq!(message.body.as_str(), format!("body t{task} #{i}"));
        }
        let versions = f
            .store
            .data_key_versions(&f.tenant)
            .await
            .expect("versions");
        assert_eq!(
            versions,
            vec![(1, false), (2, false), (3, false), (4, true)]
        );
        let mut conn = raw(&f.url).await;
        let row = sqlx::query("SELECT key_version FROM messages WHERE id = $1")
            .bind(last.message.id.as_str())
            .fetch_one(&mut conn)
            .await
            .expect("row");
        assert_eq!(
            row.get::<i64, _>("key_version"),
            4,
            "new writes use the newest version"
        );

        // A second store (a restart) with the original master key refuses;
        // only the rotated key (now in the provider) opens the database.
        let err = Store::connect(&f.url, 2, keys(&f.master))
            .await
            .expect_err("old master key refused");
        assert!(err.to_string().contains("wrong key"), "{err}");
    }
}

#[tokio::test]
async fn a_running_store_follows_a_master_rotation_done_by_another_process() {
    for backend in backends() {
        let f = fixture(backend, "shared").await;
        send(&f, "before", "before").await;
        // The operator's CLI: same database, same key source.
        let provider: Arc<dyn KeyProvider> = keys(&f.master);
        let server = Store::connect(&f.url, 4, provider.clone())
            .await
            .expect("server opens");
        let cli = Store::connect(&f.url, 2, provider)
            .await
            .expect("cli opens");
        let writer = server.spawn_message_writer(Arc::new(Quiet));
        cli.rotate_master_key().await.expect("master rotates");
        cli.rotate_data_key(&f.tenant)
            .await
            .expect("data key rotates");

        let new = NewMessage {
            tenant_id: f.tenant.clone(),
            conversation_id: f.conversation.clone(),
            client_msg_id: ClientMsgId::parse("after").expect("id"),
            author_kind: AuthorKind::System,
            author_id: None,
            author_name: None,
            body: MessageBody::parse("after").expect("body"),
        };
        writer
            .append(new)
            .await
            .expect("server writes with the new data key");
        let all = server
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect("readable");
        let bodies: Vec<_> = all.iter().map(|m| m.body.as_str().to_owned()).collect();
        assert_eq!(bodies, ["before", "after"], "{backend:?}");
        assert_eq!(server.master_key_id(), cli.master_key_id());
    }
}

#[tokio::test]
async fn wrong_or_missing_master_key_over_existing_data_refuses_to_open() {
    for backend in backends() {
        let f = fixture(backend, "guarded").await;
        send(&f, "c-1", "guarded").await;

        let wrong = MasterKey::generate().expect("key");
        let err = Store::connect(&f.url, 2, keys(&wrong))
            .await
            .expect_err("wrong key refused");
        assert!(err.to_string().contains("wrong key"), "{backend:?}: {err}");

        let empty = Arc::new(StaticKeyProvider::new(None));
        let err = Store::connect(&f.url, 2, empty.clone())
            .await
            .expect_err("missing key refused");
        assert!(
            err.to_string().contains("does not exist"),
            "{backend:?}: {err}"
        );
        assert!(
            empty.load().expect("load").is_none(),
            "no key is created over existing data"
        );

        let again = Store::connect(&f.url, 2, keys(&f.master))
            .await
            .expect("right key opens");
        let read = again
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect("read");
        assert_eq!(read[0].body.as_str(), "guarded");
    }
}

#[tokio::test]
async fn retired_data_keys_are_purged_only_when_no_row_uses_them_and_after_the_grace_period() {
    for backend in backends() {
        let f = fixture(backend, "purging").await;
        send(&f, "c-1", "uses version one").await;
        f.store.rotate_data_key(&f.tenant).await.expect("v2");
        f.store.rotate_data_key(&f.tenant).await.expect("v3");
        let now = palisade_model::now_millis();

        let none = f
            .store
            .purge_retired_data_keys(&f.tenant, now)
            .await
            .expect("purge");
        assert!(
            none.is_empty(),
            "{backend:?}: inside the grace period nothing goes"
        );
        let later = now + palisade_store::PURGE_GRACE_MILLIS + 1;
        let purged = f
            .store
            .purge_retired_data_keys(&f.tenant, later)
            .await
            .expect("purge");
        assert_eq!(
            purged,
            vec![2],
            "{backend:?}: version 1 is still used, 3 is active"
        );
        let read = f
            .store
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect("read");
        assert_eq!(read[0].body.as_str(), "uses version one");
    }
}

#[tokio::test]
async fn rows_written_before_encryption_are_sealed_when_the_store_opens() {
    for backend in backends() {
        let f = fixture(backend, "legacy").await;
        let appended = send(&f, "c-1", "sealed already").await;
        let mut conn = raw(&f.url).await;
        // What a pre-encryption database holds: plaintext and no key version.
        sqlx::query(
            "UPDATE messages SET body = 'legacy plaintext', key_version = NULL WHERE id = $1",
        )
        .bind(appended.message.id.as_str())
        .execute(&mut conn)
        .await
        .expect("legacy row");
        sqlx::query("UPDATE visitors SET name = 'Legacy Name', email = NULL, key_version = NULL")
            .execute(&mut conn)
            .await
            .expect("legacy visitor");

        let reopened = Store::connect(&f.url, 2, keys(&f.master))
            .await
            .expect("opens");
        let row = sqlx::query("SELECT body FROM messages")
            .fetch_one(&mut conn)
            .await
            .expect("row");
        assert!(
            !row.get::<String, _>("body").contains("legacy"),
            "{backend:?}"
        );
        let read = reopened
            .messages_after(&f.tenant, &f.conversation, 0, 10)
            .await
            .expect("read");
        assert_eq!(read[0].body.as_str(), "legacy plaintext");
        let conversation = reopened
            .conversation(&f.tenant, &f.conversation)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(conversation.visitor_name.as_deref(), Some("Legacy Name"));
    }
}
