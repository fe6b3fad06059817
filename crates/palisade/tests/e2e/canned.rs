//! Canned responses: admins keep them (checked, audited), every agent of the
//! tenant reads them, no other tenant sees them.

use crate::notes::colleague;
use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn admins_keep_canned_responses_and_agents_read_them() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("canned").await;
        let owner = server.agent(&tenant).await;
        let agent = colleague(&server, "canned").await;

        for (path, body) in [
            ("/v1/admin/canned-responses/Refund", json!({"body": "x"})),
            (
                "/v1/admin/canned-responses/has%20space",
                json!({"body": "x"}),
            ),
            ("/v1/admin/canned-responses/refund", json!({"body": "  "})),
            ("/v1/admin/canned-responses/refund", json!({"text": "x"})),
        ] {
            let (status, answer) = owner.put(path, body).await;
            assert_eq!(status, 400, "{path}: {answer}");
        }
        let path = "/v1/admin/canned-responses/refund";
        let (status, saved) = owner
            .put(path, json!({"body": "Refunds take 3 days."}))
            .await;
        assert_eq!(status, 200, "{saved}");
        let (status, _) = owner
            .put(path, json!({"body": "Refunds take 5 days."}))
            .await;
        assert_eq!(status, 200);
        let (status, _) = owner
            .put(
                "/v1/admin/canned-responses/hello",
                json!({"body": "Hi! How can I help?"}),
            )
            .await;
        assert_eq!(status, 200);

        // Agents read them, sorted by shortcut, but may not change them.
        let (status, list) = agent.get("/v1/agent/canned-responses").await;
        assert_eq!(status, 200, "{list}");
        let shortcuts: Vec<_> = list["canned_responses"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| (c["shortcut"].clone(), c["body"].clone()))
            .collect();
        assert_eq!(
            shortcuts,
            vec![
                (json!("hello"), json!("Hi! How can I help?")),
                (json!("refund"), json!("Refunds take 5 days.")),
            ]
        );
        let (status, _) = agent.put(path, json!({"body": "mine now"})).await;
        assert_eq!(status, 403);

        // Another tenant has its own (empty) set and cannot delete these.
        let other = server.seed_tenant("canned-other").await;
        let outsider = server.agent(&other).await;
        let (status, list) = outsider.get("/v1/agent/canned-responses").await;
        assert_eq!(
            (status, list["canned_responses"].as_array().map(Vec::len)),
            (200, Some(0))
        );
        let resp = server
            .http
            .delete(server.url(path))
            .header("cookie", &outsider.cookie)
            .header("x-csrf-token", &outsider.csrf)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 404);

        let delete = |who: &Agent<'_>| {
            server
                .http
                .delete(server.url(path))
                .header("cookie", who.cookie.clone())
                .header("x-csrf-token", who.csrf.clone())
                .send()
        };
        assert_eq!(delete(&owner).await.expect("sent").status().as_u16(), 204);
        assert_eq!(delete(&owner).await.expect("sent").status().as_u16(), 404);
        let (_, list) = agent.get("/v1/agent/canned-responses").await;
        assert_eq!(list["canned_responses"].as_array().map(Vec::len), Some(1));

        let records = server
            .running
            .state
            .audit
            .store()
            .audit_records(0, 500)
            .await
            .expect("read");
        let puts = records
            .iter()
            .filter(|r| r.action == "canned_response.put" && r.outcome == "success")
            .count();
        assert_eq!(puts, 3);
        let deletes: Vec<&str> = records
            .iter()
            .filter(|r| r.action == "canned_response.delete")
            .map(|r| r.outcome.as_str())
            .collect();
        assert_eq!(
            deletes,
            [
                "started", "failure", "started", "success", "started", "failure"
            ]
        );
        server.stop().await;
    })
    .await;
}
