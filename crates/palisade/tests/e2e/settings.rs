//! Tenant settings, visitor identity verification and the tenant's audit
//! log through the admin API.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn visitor_identity_is_verified_by_the_tenants_secret_and_shown_to_agents() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("verified").await;
        let owner = server.agent(&tenant).await;
        let (status, settings) = owner.get("/v1/admin/tenant").await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["slug"], "verified");
        assert_eq!(settings["identity_verification"]["secret_set"], false);

        // Requiring verification without a secret would lock every visitor out.
        let require = json!({"identity_verification_required": true});
        let (status, _) = owner
            .call(Method::PATCH, "/v1/admin/tenant", Some(require.clone()))
            .await;
        assert_eq!(status, 409);

        let (status, rotated) = owner.post("/v1/admin/identity-secret", json!({})).await;
        assert_eq!(status, 201, "{rotated}");
        let secret = rotated["secret"].as_str().expect("secret").to_owned();
        let (_, settings) = owner.get("/v1/admin/tenant").await;
        assert_eq!(settings["identity_verification"]["secret_set"], true);
        assert!(!settings.to_string().contains(&secret), "shown once only");

        let session = |user_id: &str, user_hash: &str| {
            json!({"widget_key": tenant.widget_key, "name": "Ann", "user_id": user_id, "user_hash": user_hash})
        };
        let good = palisade_identity::user_hash(secret.as_bytes(), "customer-7");
        let wrong = palisade_identity::user_hash(b"another secret", "customer-7");
        // A wrong signature is refused even while verification is optional.
        let (status, refused) = server.post("/v1/visitor/sessions", session("customer-7", &wrong), None).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("identity_verification_failed")));
        let (status, refused) = server.post("/v1/visitor/sessions", session("customer-8", &good), None).await;
        assert_eq!(status, 401, "a signature of another id: {refused}");
        let (status, _) = server
            .post("/v1/visitor/sessions", json!({"widget_key": tenant.widget_key, "user_id": "customer-7"}), None)
            .await;
        assert_eq!(status, 400, "an id without its signature");

        // A good one is kept on the visitor and shown to agents.
        let (status, visitor) = server.post("/v1/visitor/sessions", session("customer-7", &good), None).await;
        assert_eq!(status, 201, "{visitor}");
        assert_eq!(visitor["verified_user_id"], "customer-7");
        let token = visitor["token"].as_str().expect("token");
        let (status, conversation) = server
            .post("/v1/visitor/conversations", json!({}), Some(token))
            .await;
        assert_eq!(status, 201);
        let id = conversation["id"].as_str().expect("id");
        let (status, seen) = owner.get(&format!("/v1/agent/conversations/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(seen["visitor_verified_user_id"], "customer-7");

        // Once required, a visitor without a signature is refused.
        let (status, _) = server
            .post("/v1/visitor/sessions", json!({"widget_key": tenant.widget_key}), None)
            .await;
        assert_eq!(status, 201, "optional so far");
        let (status, settings) = owner
            .call(Method::PATCH, "/v1/admin/tenant", Some(require))
            .await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["identity_verification"]["required"], true);
        let (status, refused) = server
            .post("/v1/visitor/sessions", json!({"widget_key": tenant.widget_key}), None)
            .await;
        assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("identity_verification_failed")));

        // Rotation replaces the secret: old signatures stop verifying.
        let (status, rotated) = owner.post("/v1/admin/identity-secret", json!({})).await;
        assert_eq!(status, 201);
        assert_ne!(rotated["secret"].as_str(), Some(secret.as_str()));
        let (status, _) = server.post("/v1/visitor/sessions", session("customer-7", &good), None).await;
        assert_eq!(status, 401);

        let (status, _) = owner
            .call(Method::PATCH, "/v1/admin/tenant", Some(json!({"require_agent_mfa": true})))
            .await;
        assert_eq!(status, 200);
        let (_, settings) = owner.get("/v1/admin/tenant").await;
        assert_eq!(settings["require_agent_mfa"], true);
        let (status, _) = owner
            .call(Method::PATCH, "/v1/admin/tenant", Some(json!({"colour": "red"})))
            .await;
        assert_eq!(status, 400);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_audit_api_shows_only_this_tenants_entries_with_filters_and_paging() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let mine = server.seed_tenant("audit-mine").await;
        let theirs = server.seed_tenant("audit-theirs").await;
        let owner = server.agent(&mine).await;
        let other = server.agent(&theirs).await;
        for n in 0..3 {
            let key = json!({"name": format!("k{n}"), "permissions": ["audit_read"]});
            assert_eq!(owner.post("/v1/admin/api-keys", key).await.0, 201);
        }
        let key = json!({"name": "theirs", "permissions": ["audit_read"]});
        assert_eq!(other.post("/v1/admin/api-keys", key).await.0, 201);

        let (status, page) = owner
            .get("/v1/admin/audit?action=api_key.create&outcome=success&limit=2")
            .await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 2);
        assert!(
            entries
                .iter()
                .all(|e| e["action"] == "api_key.create" && e["outcome"] == "success")
        );
        assert!(entries.iter().all(|e| e["target"] != "theirs"), "{page}");
        assert_eq!(entries[0]["ip"], "127.0.0.1");
        let before = page["next_before"].as_i64().expect("a next page");
        let (_, next) = owner
            .get(&format!(
                "/v1/admin/audit?action=api_key.create&outcome=success&limit=2&before={before}"
            ))
            .await;
        let rest = next["entries"].as_array().expect("entries");
        assert_eq!(rest.len(), 1, "{next}");
        assert_eq!(next["next_before"], serde_json::Value::Null);
        assert!(rest[0]["seq"].as_i64() < Some(before));

        let (_, all) = owner.get("/v1/admin/audit?limit=200").await;
        let text = all.to_string();
        assert!(
            !text.contains("theirs") && !text.contains("audit-theirs"),
            "{text}"
        );
        let (status, _) = owner.get("/v1/admin/audit?limit=0").await;
        assert_eq!(status, 400);
        let (status, _) = owner.get("/v1/admin/audit?sort=asc").await;
        assert_eq!(status, 400);
        server.stop().await;
    })
    .await;
}
