//! The life of a message: visitor to agent and back, live; resume after a
//! disconnect; idempotent resends; concurrent sends; restart keeps data.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn visitor_and_agent_chat_in_real_time() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("acme").await;
        let agent = server.agent(&tenant).await;
        let mut agent_ws = agent.ws().await;

        let (token, conversation) = server.visitor(&tenant).await;
        // The agent's inbox hears about the new conversation.
        let created = next_of_type(&mut agent_ws, "conversation").await;
        assert_eq!(created["conversation"]["id"], conversation.as_str());

        let (mut visitor_ws, frames) = server.visitor_ws(&token, &conversation, 0).await;
        assert_eq!(frames.last().expect("ready")["last_seq"], 0);

        send_json(&mut visitor_ws, json!({"type": "typing", "typing": true})).await;
        let typing = next_of_type(&mut agent_ws, "typing").await;
        assert_eq!(typing["author_kind"], "visitor");

        send_json(&mut visitor_ws, json!({"type": "send", "client_msg_id": "v-1", "body": "Where is my order?"})).await;
        let ack = next_of_type(&mut visitor_ws, "ack").await;
        assert_eq!((ack["client_msg_id"].as_str(), ack["seq"].as_i64()), (Some("v-1"), Some(1)));
        let seen = next_of_type(&mut agent_ws, "message").await;
        assert_eq!(seen["message"]["body"], "Where is my order?");
        assert_eq!(seen["message"]["author_kind"], "visitor");

        let (status, claimed) = agent.post(&format!("/v1/agent/conversations/{conversation}/claim"), json!({})).await;
        assert_eq!(status, 200, "{claimed}");
        assert_eq!(claimed["status"], "assigned");

        send_json(&mut agent_ws, json!({"type": "send", "conversation_id": conversation, "client_msg_id": "a-1", "body": "On its way!"})).await;
        let ack = next_of_type(&mut agent_ws, "ack").await;
        assert_eq!(ack["seq"], 2);
        // The visitor's socket also echoes its own message; wait for the reply.
        let reply = loop {
            let message = next_of_type(&mut visitor_ws, "message").await;
            if message["message"]["author_kind"] == "agent" {
                break message;
            }
            assert_eq!(message["message"]["seq"], 1);
        };
        assert_eq!(reply["message"]["seq"], 2);
        assert_eq!(reply["message"]["body"], "On its way!");
        assert_eq!(reply["message"]["author_kind"], "agent");
        assert_eq!(reply["message"]["author_name"], "acme agent");

        let (status, closed) = agent.post(&format!("/v1/agent/conversations/{conversation}/close"), json!({})).await;
        assert_eq!((status, closed["status"].as_str()), (200, Some("closed")));
        // The visitor's socket hears that the conversation was closed.
        while next_of_type(&mut visitor_ws, "conversation").await["conversation"]["status"] != "closed" {}

        // Reopened, it goes back to its assignee; reopening again changes nothing.
        let reopen = format!("/v1/agent/conversations/{conversation}/reopen");
        let (status, reopened) = agent.post(&reopen, json!({})).await;
        assert_eq!((status, reopened["status"].as_str()), (200, Some("assigned")), "{reopened}");
        while next_of_type(&mut visitor_ws, "conversation").await["conversation"]["status"] != "assigned" {}
        let (status, again) = agent.post(&reopen, json!({})).await;
        assert_eq!((status, again["status"].as_str()), (200, Some("assigned")));

        let (status, history) = agent.get(&format!("/v1/agent/conversations/{conversation}/messages")).await;
        assert_eq!(status, 200);
        let bodies: Vec<_> = history["messages"].as_array().expect("list").iter().map(|m| m["body"].clone()).collect();
        assert_eq!(bodies, vec![json!("Where is my order?"), json!("On its way!")]);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn reconnect_with_last_seq_replays_exactly_what_was_missed() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("resume").await;
        let agent = server.agent(&tenant).await;
        let (token, conversation) = server.visitor(&tenant).await;

        let (mut ws, _) = server.visitor_ws(&token, &conversation, 0).await;
        for n in 1..=3 {
            send_json(&mut ws, json!({"type": "send", "client_msg_id": format!("v-{n}"), "body": format!("visitor {n}")})).await;
            assert_eq!(next_of_type(&mut ws, "ack").await["seq"], n);
        }
        drop(ws);

        for n in 1..=2 {
            let (status, _) = agent
                .post(&format!("/v1/agent/conversations/{conversation}/messages"), json!({"client_msg_id": format!("a-{n}"), "body": format!("agent {n}")}))
                .await;
            assert_eq!(status, 201);
        }

        let (mut ws, frames) = server.visitor_ws(&token, &conversation, 3).await;
        let seqs: Vec<_> = frames.iter().filter(|f| f["type"] == "message").map(|f| f["message"]["seq"].as_i64()).collect();
        assert_eq!(seqs, vec![Some(4), Some(5)], "replayed exactly the missed messages");
        assert_eq!(frames.last().expect("ready")["last_seq"], 5);

        // Live delivery continues after the replay without a duplicate.
        let (status, _) = agent
            .post(&format!("/v1/agent/conversations/{conversation}/messages"), json!({"client_msg_id": "a-3", "body": "agent 3"}))
            .await;
        assert_eq!(status, 201);
        let live = next_of_type(&mut ws, "message").await;
        assert_eq!(live["message"]["seq"], 6);

        // From zero, the whole history in order.
        let (_, frames) = server.visitor_ws(&token, &conversation, 0).await;
        let seqs: Vec<_> = frames.iter().filter(|f| f["type"] == "message").filter_map(|f| f["message"]["seq"].as_i64()).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn resending_a_client_msg_id_returns_the_first_ack_and_stores_once() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("idem").await;
        let (token, conversation) = server.visitor(&tenant).await;
        let path = format!("/v1/visitor/conversations/{conversation}/messages");
        let body = json!({"client_msg_id": "same-1", "body": "only once"});

        let (first_status, first) = server.post(&path, body.clone(), Some(&token)).await;
        let (again_status, again) = server.post(&path, body.clone(), Some(&token)).await;
        assert_eq!((first_status, again_status), (201, 200));
        assert_eq!(first["seq"], again["seq"]);
        assert_eq!(first["message_id"], again["message_id"]);
        assert_eq!(
            (first["duplicate"].as_bool(), again["duplicate"].as_bool()),
            (Some(false), Some(true))
        );

        // Over the socket too.
        let (mut ws, _) = server.visitor_ws(&token, &conversation, 1).await;
        send_json(
            &mut ws,
            json!({"type": "send", "client_msg_id": "same-1", "body": "only once"}),
        )
        .await;
        let ack = next_of_type(&mut ws, "ack").await;
        assert_eq!(
            (ack["seq"].as_i64(), ack["duplicate"].as_bool()),
            (Some(1), Some(true))
        );

        let (_, history) = server
            .get(&format!("{path}?after_seq=0"), Some(&token))
            .await;
        assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_sends_get_gapless_unique_sequence_numbers() {
    on_each_backend(|backend| async move {
        let server = TestServer::start_with_env(backend, BULK_SENDS).await;
        let tenant = server.seed_tenant("burst").await;
        let (token, conversation) = server.visitor(&tenant).await;
        let path = format!("/v1/visitor/conversations/{conversation}/messages");
        let sends = (0..60).map(|n| {
            let (server, token, path) = (&server, &token, &path);
            async move {
                server
                    .post(
                        path,
                        json!({"client_msg_id": format!("c-{n}"), "body": format!("m{n}")}),
                        Some(token),
                    )
                    .await
            }
        });
        let results = futures_util::future::join_all(sends).await;
        let mut seqs: Vec<i64> = results
            .iter()
            .map(|(status, ack)| {
                assert_eq!(*status, 201, "{ack}");
                ack["seq"].as_i64().expect("seq")
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=60).collect::<Vec<_>>());

        // A pipelined burst on one socket is acknowledged in send order.
        let (mut ws, _) = server.visitor_ws(&token, &conversation, 60).await;
        for n in 0..40 {
            send_json(
                &mut ws,
                json!({"type": "send", "client_msg_id": format!("p-{n}"), "body": "x"}),
            )
            .await;
        }
        for n in 0..40 {
            let ack = next_of_type(&mut ws, "ack").await;
            assert_eq!(ack["client_msg_id"], format!("p-{n}"));
            assert_eq!(ack["seq"], 61 + n);
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_restart_on_the_same_data_dir_loses_nothing() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("restart").await;
        let (token, conversation) = server.visitor(&tenant).await;
        let path = format!("/v1/visitor/conversations/{conversation}/messages");
        let (status, _) = server
            .post(
                &path,
                json!({"client_msg_id": "k-1", "body": "kept"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
        let ca_before = std::fs::read(&server.running.ca_cert_path).expect("ca");
        let (data_dir, url) = server.stop_keeping_data().await;

        let server = TestServer::start_with(data_dir, url).await;
        assert_eq!(
            std::fs::read(&server.running.ca_cert_path).expect("ca"),
            ca_before,
            "same CA"
        );
        // The visitor's token still verifies (same key) and the message is there.
        let (status, history) = server.get(&path, Some(&token)).await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["messages"][0]["body"], "kept");
        let agent = server.agent(&tenant).await;
        let (status, _) = agent.get("/v1/agent/me").await;
        assert_eq!(status, 200);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn senders_own_their_client_msg_ids_and_a_reused_id_with_new_text_is_refused() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("ids").await;
        let (token, conversation) = server.visitor(&tenant).await;
        let agent = server.agent(&tenant).await;
        let visitor_path = format!("/v1/visitor/conversations/{conversation}/messages");
        let agent_path = format!("/v1/agent/conversations/{conversation}/messages");

        let (status, visitor_ack) = server
            .post(
                &visitor_path,
                json!({"client_msg_id": "m1", "body": "from the visitor"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 201);
        // The agent choosing the same id is a different message, stored.
        let (status, agent_ack) = agent
            .post(
                &agent_path,
                json!({"client_msg_id": "m1", "body": "from the agent"}),
            )
            .await;
        assert_eq!(status, 201, "{agent_ack}");
        assert_ne!(agent_ack["seq"], visitor_ack["seq"]);
        // The visitor reusing its id for other text is told so, not told "stored".
        let (status, refused) = server
            .post(
                &visitor_path,
                json!({"client_msg_id": "m1", "body": "different text"}),
                Some(&token),
            )
            .await;
        assert_eq!(status, 409, "{refused}");
        let (_, history) = server.get(&visitor_path, Some(&token)).await;
        let bodies: Vec<_> = history["messages"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m["body"].clone())
            .collect();
        assert_eq!(
            bodies,
            vec![json!("from the visitor"), json!("from the agent")]
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_burst_larger_than_the_fan_out_buffer_reaches_the_visitor_in_order_once() {
    on_each_backend(|backend| async move {
        let server = TestServer::start_with_env(backend, BULK_SENDS).await;
        let tenant = server.seed_tenant("burst-fanout").await;
        let (token, conversation) = server.visitor(&tenant).await;
        let (mut ws, _) = server.visitor_ws(&token, &conversation, 0).await;
        let agent = server.agent(&tenant).await;
        let path = format!("/v1/agent/conversations/{conversation}/messages");
        // 120 sends at once: several times the per-conversation buffer, so
        // the socket may lag and must then catch up from the store.
        let sends = (0..120).map(|n| {
            let (agent, path) = (&agent, &path);
            async move {
                agent
                    .post(
                        path,
                        json!({"client_msg_id": format!("b-{n}"), "body": "x"}),
                    )
                    .await
                    .0
            }
        });
        let statuses = futures_util::future::join_all(sends).await;
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        let mut seqs = Vec::new();
        while seqs.len() < 120 {
            let frame = next_of_type(&mut ws, "message").await;
            seqs.push(frame["message"]["seq"].as_i64().expect("seq"));
        }
        assert_eq!(seqs, (1..=120).collect::<Vec<_>>(), "in order, each once");
        server.stop().await;
    })
    .await;
}
