//! Private notes: agents see them live and in the note list; no visitor
//! path (history, socket, replay after reconnect) ever carries one, and they
//! take no place in the conversation's message sequence.

use crate::support::*;
use palisade_identity::PasswordHasher;
use palisade_model::{Email, Role};
use palisade_store::NewAgent;
use serde_json::json;
use sqlx::Connection;

const NOTE: &str = "internal: this customer was refunded twice already";

/// Signs in a second agent (role agent, no second factor) of the tenant.
pub async fn colleague<'a>(server: &'a TestServer, slug: &str) -> Agent<'a> {
    let store = server.running.state.chat.store();
    let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
    let email = format!("colleague@{slug}.example");
    let password = "the colleague's long password";
    let hash = PasswordHasher::new()
        .expect("hasher")
        .hash(password)
        .expect("hash");
    let parsed = Email::parse(&email).expect("email");
    let new = NewAgent {
        email: &parsed,
        name: "Colleague",
        role: Role::Agent,
        password_hash: &hash,
    };
    store.create_agent(&tenant, new).await.expect("agent");
    server
        .agent(&Tenant {
            widget_key: String::new(),
            email,
            password: password.to_owned(),
        })
        .await
}

#[tokio::test]
async fn private_notes_reach_agents_and_never_the_visitor() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("noted").await;
        let owner = server.agent(&tenant).await;
        let other = colleague(&server, "noted").await;
        let mut other_ws = other.ws().await;
        let (token, conversation) = server.visitor(&tenant).await;
        let (mut visitor_ws, _) = server.visitor_ws(&token, &conversation, 0).await;

        let notes_path = format!("/v1/agent/conversations/{conversation}/notes");
        let (status, refused) = owner.post(&notes_path, json!({"body": "  "})).await;
        assert_eq!(status, 400, "{refused}");
        let (status, note) = owner.post(&notes_path, json!({"body": NOTE})).await;
        assert_eq!(status, 201, "{note}");
        assert_eq!(note["author_name"], "noted agent");

        // The other agent's socket hears the note live.
        let live = next_of_type(&mut other_ws, "note").await;
        assert_eq!(live["note"]["body"], NOTE);
        assert_eq!(live["note"]["conversation_id"], conversation.as_str());

        // Then a real reply. It is the conversation's first message: the note
        // took no sequence number, so the visitor sees no gap.
        let (status, ack) = owner
            .post(
                &format!("/v1/agent/conversations/{conversation}/messages"),
                json!({"client_msg_id": "a-1", "body": "We're on it."}),
            )
            .await;
        assert_eq!((status, ack["seq"].as_i64()), (201, Some(1)), "{ack}");

        // Everything the visitor's socket got until the reply: no note.
        loop {
            let frame = next_json(&mut visitor_ws).await;
            assert!(
                !frame.to_string().contains(NOTE),
                "a note reached the visitor: {frame}"
            );
            assert_ne!(frame["type"], "note");
            if frame["type"] == "message" {
                assert_eq!(frame["message"]["body"], "We're on it.");
                break;
            }
        }

        // Not in the visitor's history, nor in a replay after reconnecting.
        let (status, history) = server
            .get(
                &format!("/v1/visitor/conversations/{conversation}/messages"),
                Some(&token),
            )
            .await;
        assert_eq!(status, 200);
        assert!(!history.to_string().contains(NOTE), "{history}");
        assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
        let (_, replayed) = server.visitor_ws(&token, &conversation, 0).await;
        assert!(!format!("{replayed:?}").contains(NOTE), "{replayed:?}");
        let (status, listed) = server.get("/v1/visitor/conversations", Some(&token)).await;
        assert_eq!(status, 200);
        assert!(!listed.to_string().contains(NOTE));

        // A visitor token does not open the agents' note list.
        let (status, _) = server.get(&notes_path, Some(&token)).await;
        assert_eq!(status, 401);

        // Agents read them back; at rest the body is sealed.
        let (status, notes) = other.get(&notes_path).await;
        assert_eq!(status, 200, "{notes}");
        assert_eq!(notes["notes"][0]["body"], NOTE);
        assert_eq!(notes["notes"][0]["author_name"], "noted agent");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&server.database_url)
            .await
            .expect("raw");
        let rows = sqlx::query("SELECT body FROM notes")
            .fetch_all(&mut conn)
            .await
            .expect("select");
        assert_eq!(rows.len(), 1);
        let stored: String = sqlx::Row::try_get(&rows[0], "body").expect("body");
        assert!(!stored.contains("refunded"), "a note stored in clear");
        server.stop().await;
    })
    .await;
}
