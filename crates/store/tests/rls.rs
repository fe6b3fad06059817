//! PostgreSQL row-level security, the second wall behind the store's
//! `tenant_id` filters. The SQL here has no tenant filter on purpose: what
//! comes back is what the database itself admits to the tenant role.
//!
//! These tests need PostgreSQL (`PALISADE_TEST_POSTGRES_URL`). Without it
//! they have nothing to prove and return at once; with it, an unreachable
//! server fails them.

use palisade_model::{AuthorKind, ClientMsgId, ConversationId, Email, MessageBody, Role, TenantId};
use palisade_store::testing::{POSTGRES_ENV, discard, fresh_url, memory_keys, rows_in_tenant_tx};
use palisade_store::{
    Appended, Backend, CommitObserver, NewAgent, NewMessage, NewWidget, Store, StoreError,
};
use sqlx::{AnyConnection, Connection, Row};
use std::sync::Arc;

struct Quiet;
impl CommitObserver for Quiet {
    fn committed(&self, _: &Appended) {}
}

/// Tables whose rows belong to one tenant, with the column naming it.
const TENANT_TABLES: [(&str, &str); 18] = [
    ("tenants", "id"),
    ("widgets", "tenant_id"),
    ("agents", "tenant_id"),
    ("agent_sessions", "tenant_id"),
    ("agent_invitations", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("mfa_totp", "tenant_id"),
    ("mfa_recovery_codes", "tenant_id"),
    ("visitors", "tenant_id"),
    ("conversations", "tenant_id"),
    ("messages", "tenant_id"),
    ("audit_log", "tenant_id"),
    ("webhook_subscriptions", "tenant_id"),
    ("webhook_deliveries", "tenant_id"),
    ("webhook_attempts", "tenant_id"),
    ("notes", "tenant_id"),
    ("canned_responses", "tenant_id"),
    ("partner_certificates", "tenant_id"),
];

fn postgres_asked() -> bool {
    std::env::var_os(POSTGRES_ENV).is_some()
}

async fn postgres_store() -> (String, Store) {
    let dir = std::env::temp_dir();
    let url = fresh_url(Backend::Postgres, &dir)
        .await
        .expect("PostgreSQL was asked for and must be reachable");
    let store = Store::connect(&url, 4, memory_keys())
        .await
        .expect("store opens on PostgreSQL");
    (url, store)
}

/// A tenant with a widget, an agent, a visitor, a conversation and one
/// message in it.
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
    let email = Email::parse(&format!("owner-{slug}@example.com")).expect("email");
    store
        .create_agent(
            &tenant,
            NewAgent {
                email: &email,
                name: "Owner",
                role: Role::Owner,
                password_hash: "not-a-real-hash",
            },
        )
        .await
        .expect("agent");
    let visitor = store
        .create_visitor(&tenant, &widget.id, Some("Vera"), None)
        .await
        .expect("visitor");
    let conversation = store
        .create_conversation(&tenant, &widget.id, &visitor)
        .await
        .expect("conversation");
    (tenant, conversation.id)
}

fn message(tenant: &TenantId, conversation: &ConversationId, client_id: &str) -> NewMessage {
    NewMessage {
        tenant_id: tenant.clone(),
        conversation_id: conversation.clone(),
        client_msg_id: ClientMsgId::parse(client_id).expect("client id"),
        author_kind: AuthorKind::System,
        author_id: None,
        author_name: None,
        body: MessageBody::parse("hello").expect("body"),
    }
}

/// The values of `column` in every row of `table` the tenant role sees.
async fn visible(
    store: &Store,
    tenant: Option<&TenantId>,
    table: &str,
    column: &str,
) -> Vec<String> {
    let sql = format!("SELECT {column} AS owner FROM {table}");
    rows_in_tenant_tx(store, tenant, &sql)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"))
        .iter()
        .map(|row| row.get::<String, _>("owner"))
        .collect()
}

fn refused_by_policy(result: Result<Vec<sqlx::any::AnyRow>, StoreError>) -> bool {
    match result {
        Err(StoreError::Db(sqlx::Error::Database(db))) => {
            db.message().contains("row-level security")
        }
        _ => false,
    }
}

#[tokio::test]
async fn rls_raw_queries_without_a_tenant_filter_see_only_the_tenant_set() {
    if !postgres_asked() {
        return;
    }
    let (url, store) = postgres_store().await;
    let (a, conversation_a) = seed(&store, "rls-a").await;
    let (b, conversation_b) = seed(&store, "rls-b").await;
    let writer = store.spawn_message_writer(Arc::new(Quiet));
    // Submitted together so the writer may batch both tenants in one
    // transaction, setting each tenant before its statements.
    let first = writer
        .submit(message(&a, &conversation_a, "m-a"))
        .await
        .expect("queued");
    let second = writer
        .submit(message(&b, &conversation_b, "m-b"))
        .await
        .expect("queued");
    first.await.expect("tenant A's message stored");
    second.await.expect("tenant B's message stored");

    let who = rows_in_tenant_tx(&store, Some(&a), "SELECT current_user::text AS who")
        .await
        .expect("current_user");
    assert_eq!(who[0].get::<String, _>("who"), palisade_store::TENANT_ROLE);

    for (table, column) in TENANT_TABLES {
        let seen_by_a = visible(&store, Some(&a), table, column).await;
        assert!(
            seen_by_a.iter().all(|owner| owner == a.as_str()),
            "{table}: tenant A saw another tenant's rows"
        );
        let seen_by_b = visible(&store, Some(&b), table, column).await;
        assert!(
            seen_by_b.iter().all(|owner| owner == b.as_str()),
            "{table}: tenant B saw another tenant's rows"
        );
        let seen_unset = visible(&store, None, table, column).await;
        assert!(
            seen_unset.is_empty(),
            "{table}: rows seen with no tenant set"
        );
    }
    for table in [
        "tenants",
        "widgets",
        "agents",
        "visitors",
        "conversations",
        "messages",
    ] {
        let column = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        assert!(
            !visible(&store, Some(&a), table, column).await.is_empty(),
            "{table}: tenant A cannot see its own rows"
        );
    }
    let messages_a = visible(&store, Some(&a), "messages", "tenant_id").await;
    assert_eq!(messages_a.len(), 1, "tenant A's one message");

    // The platform role still sees both tenants' messages.
    sqlx::any::install_default_drivers();
    let mut platform = AnyConnection::connect(&url)
        .await
        .expect("platform connection");
    let all = sqlx::query("SELECT tenant_id FROM messages")
        .fetch_all(&mut platform)
        .await
        .expect("platform read");
    assert_eq!(all.len(), 2);
    platform.close().await.expect("close");

    store.close().await;
    discard(&url).await.expect("discard");
}

#[tokio::test]
async fn rls_refuses_writes_of_another_tenants_rows() {
    if !postgres_asked() {
        return;
    }
    let (url, store) = postgres_store().await;
    let (a, _) = seed(&store, "rls-write-a").await;
    let (b, conversation_b) = seed(&store, "rls-write-b").await;

    let insert = format!(
        "INSERT INTO widgets (id, tenant_id, name, public_key, allowed_origins, greeting, \
         created_at) VALUES ('w_forged', '{}', 'forged', 'pk_forged', '[]', 'hi', 0)",
        b.as_str()
    );
    assert!(
        refused_by_policy(rows_in_tenant_tx(&store, Some(&a), &insert).await),
        "an insert of tenant B's row under tenant A was not refused by the policy"
    );
    assert!(
        refused_by_policy(rows_in_tenant_tx(&store, None, &insert).await),
        "an insert with no tenant set was not refused by the policy"
    );

    // Updates and deletes simply cannot reach the other tenant's rows.
    let update = format!(
        "UPDATE conversations SET status = 'closed' WHERE id = '{}' RETURNING id",
        conversation_b.as_str()
    );
    let changed = rows_in_tenant_tx(&store, Some(&a), &update)
        .await
        .expect("update runs");
    assert!(
        changed.is_empty(),
        "tenant A closed tenant B's conversation"
    );
    let deleted = rows_in_tenant_tx(&store, Some(&a), "DELETE FROM messages RETURNING id")
        .await
        .expect("delete runs");
    assert!(
        deleted.is_empty(),
        "tenant A deleted messages it has none of"
    );
    let moved = format!(
        "UPDATE widgets SET tenant_id = '{}' RETURNING id",
        b.as_str()
    );
    assert!(
        refused_by_policy(rows_in_tenant_tx(&store, Some(&a), &moved).await),
        "tenant A moved its widget to tenant B"
    );
    let still_open = store
        .conversation(&b, &conversation_b)
        .await
        .expect("read")
        .expect("conversation exists");
    assert_eq!(still_open.status.as_str(), "open");

    // Keys, the vault and the audit chain's head are platform paths: the
    // tenant role is granted nothing on them.
    for table in [
        "data_keys",
        "vault_secrets",
        "vault_versions",
        "key_check",
        "audit_head",
    ] {
        let sql = format!("SELECT 1 AS one FROM {table}");
        assert!(
            rows_in_tenant_tx(&store, Some(&a), &sql).await.is_err(),
            "{table}: readable by the tenant role"
        );
    }

    store.close().await;
    discard(&url).await.expect("discard");
}

/// Every table holding a tenant column has RLS enabled and forced with the
/// tenant policy: a tenant table added without them fails here.
#[tokio::test]
async fn rls_covers_every_tenant_table() {
    if !postgres_asked() {
        return;
    }
    let (url, store) = postgres_store().await;
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&url).await.expect("connection");
    let tables = sqlx::query(
        "SELECT c.relname::text AS name, \
         CASE WHEN c.relrowsecurity AND c.relforcerowsecurity THEN 1 ELSE 0 END AS forced, \
         (SELECT COUNT(*) FROM pg_policy p WHERE p.polrelid = c.oid \
             AND p.polname = 'tenant_isolation') AS policies \
         FROM pg_class c \
         WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace \
         AND (c.relname = 'tenants' OR EXISTS (SELECT 1 FROM pg_attribute a \
             WHERE a.attrelid = c.oid AND a.attname IN ('tenant_id', 'scope') \
             AND NOT a.attisdropped))",
    )
    .fetch_all(&mut conn)
    .await
    .expect("catalog query");
    let names: Vec<String> = tables.iter().map(|row| row.get("name")).collect();
    for (table, _) in TENANT_TABLES {
        assert!(names.iter().any(|n| n == table), "{table} not found");
    }
    for row in &tables {
        let name: String = row.get("name");
        assert_eq!(
            row.get::<i64, _>("forced"),
            1,
            "{name}: RLS not enabled and forced"
        );
        assert_eq!(
            row.get::<i64, _>("policies"),
            1,
            "{name}: no tenant_isolation policy"
        );
    }
    conn.close().await.expect("close");
    store.close().await;
    discard(&url).await.expect("discard");
}
