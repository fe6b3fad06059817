//! Tenant isolation and credentials: another tenant's conversation is a 404
//! on every path, a visitor sees only its own conversations, and login and
//! CSRF failures are refused.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn cross_tenant_agent_cannot_reach_another_tenants_conversation() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let a = server.seed_tenant("tenant-a").await;
        let b = server.seed_tenant("tenant-b").await;
        let (token_a, conversation_a) = server.visitor(&a).await;
        let path = format!("/v1/visitor/conversations/{conversation_a}/messages");
        let (status, _) = server.post(&path, json!({"client_msg_id": "s-1", "body": "tenant A secret"}), Some(&token_a)).await;
        assert_eq!(status, 201);

        let agent_b = server.agent(&b).await;
        let base = format!("/v1/agent/conversations/{conversation_a}");
        for path in [base.clone(), format!("{base}/messages")] {
            let (status, body) = agent_b.get(&path).await;
            assert_eq!(status, 404, "GET {path}: {body}");
            assert!(!body.to_string().contains("tenant A secret"));
        }
        for (path, body) in [
            (format!("{base}/messages"), json!({"client_msg_id": "x-1", "body": "intrusion"})),
            (format!("{base}/claim"), json!({})),
            (format!("{base}/close"), json!({})),
        ] {
            let (status, answer) = agent_b.post(&path, body).await;
            assert_eq!(status, 404, "POST {path}: {answer}");
        }
        let (_, inbox) = agent_b.get("/v1/agent/conversations?status=all").await;
        assert_eq!(inbox["conversations"].as_array().map(Vec::len), Some(0), "B's inbox is empty");

        // Over B's agent socket: not found, and nothing of A's events arrive.
        let mut ws = agent_b.ws().await;
        send_json(&mut ws, json!({"type": "send", "conversation_id": conversation_a, "client_msg_id": "x-2", "body": "intrusion"})).await;
        let refused = next_of_type(&mut ws, "error").await;
        assert_eq!(refused["code"], "not_found");
        let (status, _) = server.post(&path, json!({"client_msg_id": "s-2", "body": "second secret"}), Some(&token_a)).await;
        assert_eq!(status, 201);
        send_json(&mut ws, json!({"type": "ping"})).await;
        let next = next_json(&mut ws).await;
        assert_eq!(next["type"], "pong", "B's socket got only its own answer: {next}");

        // A visitor of B cannot read A's conversation either, over REST or socket.
        let (token_b, _) = server.visitor(&b).await;
        let (status, _) = server.get(&path, Some(&token_b)).await;
        assert_eq!(status, 404);
        let mut ws = server.ws("/v1/visitor/ws", &[]).await;
        send_json(&mut ws, json!({"type": "hello", "token": token_b, "conversation_id": conversation_a})).await;
        assert_eq!(next_of_type(&mut ws, "error").await["code"], "not_found");

        // Nothing was written into A's conversation.
        let (_, history) = server.get(&path, Some(&token_a)).await;
        assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_visitor_cannot_read_another_visitors_conversation_in_the_same_tenant() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("shared").await;
        let (_, conversation_1) = server.visitor(&tenant).await;
        let (token_2, _) = server.visitor(&tenant).await;
        let (status, _) = server
            .get(
                &format!("/v1/visitor/conversations/{conversation_1}/messages"),
                Some(&token_2),
            )
            .await;
        assert_eq!(status, 404);
        let (_, mine) = server
            .get("/v1/visitor/conversations", Some(&token_2))
            .await;
        assert_eq!(mine["conversations"].as_array().map(Vec::len), Some(1));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn login_failures_look_the_same_and_csrf_is_enforced() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("login").await;
        let (s1, wrong_password) = server
            .post(
                "/v1/agent/login",
                json!({"email": tenant.email, "password": "not the password"}),
                None,
            )
            .await;
        let (s2, unknown_user) = server
            .post(
                "/v1/agent/login",
                json!({"email": "nobody@nowhere.example", "password": "not the password"}),
                None,
            )
            .await;
        assert_eq!((s1, s2), (401, 401));
        assert_eq!(
            wrong_password["error"]["message"],
            unknown_user["error"]["message"]
        );

        let agent = server.agent(&tenant).await;
        let (_, conversation) = server.visitor(&tenant).await;
        let path = server.url(&format!("/v1/agent/conversations/{conversation}/claim"));
        let no_csrf = server
            .http
            .post(&path)
            .header("cookie", &agent.cookie)
            .send()
            .await
            .expect("sent");
        assert_eq!(no_csrf.status().as_u16(), 403);
        let wrong = server
            .http
            .post(&path)
            .header("cookie", &agent.cookie)
            .header("x-csrf-token", "forged")
            .send()
            .await
            .expect("sent");
        assert_eq!(wrong.status().as_u16(), 403);

        // A forged visitor token and a missing one are refused.
        let (status, _) = server
            .get("/v1/visitor/conversations", Some("v1.forged.token"))
            .await;
        assert_eq!(status, 401);
        let (status, _) = server.get("/v1/visitor/conversations", None).await;
        assert_eq!(status, 401);

        // Agent sockets refuse a foreign Origin and a missing session.
        let foreign = [
            ("cookie", agent.cookie.clone()),
            ("origin", "https://evil.example".to_owned()),
        ];
        let no_session = [("origin", server.origin())];
        for headers in [&foreign[..], &no_session[..]] {
            let refused = server.try_ws("/v1/agent/ws", headers).await;
            assert!(refused.is_err(), "agent socket must be refused");
        }

        // Logout ends the session.
        let (status, _) = agent.post("/v1/agent/logout", json!({})).await;
        assert_eq!(status, 204);
        let (status, _) = agent.get("/v1/agent/me").await;
        assert_eq!(status, 401);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn logout_closes_the_agents_open_sockets_at_once() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("logout").await;
    let (_, conversation) = server.visitor(&tenant).await;
    let agent = server.agent(&tenant).await;
    let mut ws = agent.ws().await;
    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_of_type(&mut ws, "pong").await["type"], "pong");

    let (status, _) = agent.post("/v1/agent/logout", json!({})).await;
    assert_eq!(status, 204);
    // The socket is closed with a reason; a send after logout is never stored.
    let closed = loop {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message as Ws;
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("closed quickly")
        {
            Some(Ok(Ws::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(closed, Some(1008));
    let (token, _) = server.visitor(&tenant).await;
    let _ = token;
    let store = server.running.state.chat.store();
    let tenant_id = store
        .ensure_tenant("logout", "logout")
        .await
        .expect("tenant");
    let id = palisade_model::ConversationId::from_raw(conversation);
    assert!(
        store
            .messages_after(&tenant_id, &id, 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    server.stop().await;
}
