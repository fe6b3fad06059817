//! Tenant API keys end to end: shown once and stored as a hash, scoped to
//! the creator's own permissions, refused on every route that is not a
//! plain permission route, refused next to a session cookie, revoked and
//! expired at once, and their use noted.

use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn with_key(server: &TestServer, method: Method, path: &str, token: &str) -> (u16, Value) {
    let mut req = server.http.request(method.clone(), server.url(path));
    if method == Method::POST {
        req = req.json(&json!({}));
    }
    let resp = req.bearer_auth(token).send().await.expect("sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn raw_sql(server: &TestServer, sql: &'static str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&server.database_url)
        .await
        .expect("raw connection");
    sqlx::query(sql).execute(&mut conn).await.expect("raw sql");
}

#[tokio::test]
async fn api_keys_hold_only_their_permissions_and_stop_at_once_when_revoked() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("keys").await;
        let (_, conversation) = server.visitor(&tenant).await;
        let owner = server.agent(&tenant).await;
        let request = json!({"name": "Reporting", "permissions": ["conversations_read"], "expires_in_days": 30});
        let (status, created) = owner.post("/v1/admin/api-keys", request).await;
        assert_eq!(status, 201, "{created}");
        let token = created["token"].as_str().expect("token").to_owned();
        let id = created["api_key"]["id"].as_str().expect("id").to_owned();
        assert!(token.starts_with("plk_") && token.len() > 40);
        assert_eq!(created["api_key"]["prefix"], token[..12]);

        // The listing shows the key but never its token or hash.
        let (status, listed) = owner.get("/v1/admin/api-keys").await;
        assert_eq!(status, 200);
        let text = listed.to_string();
        let hash = palisade_identity::sha256_hex(&token);
        assert!(!text.contains(&token) && !text.contains(&hash), "{text}");
        assert_eq!(listed["api_keys"][0]["last_used_at"], Value::Null);

        // It reads conversations, and its use is noted.
        let (status, inbox) = with_key(&server, Method::GET, "/v1/agent/conversations", &token).await;
        assert_eq!(status, 200, "{inbox}");
        let path = format!("/v1/agent/conversations/{conversation}");
        assert_eq!(with_key(&server, Method::GET, &path, &token).await.0, 200);
        let (_, listed) = owner.get("/v1/admin/api-keys").await;
        assert!(listed["api_keys"][0]["last_used_at"].is_i64(), "{listed}");

        // It does nothing it does not hold, and never opens session routes.
        let claim = format!("/v1/agent/conversations/{conversation}/claim");
        assert_eq!(with_key(&server, Method::POST, &claim, &token).await.0, 403);
        assert_eq!(with_key(&server, Method::GET, "/v1/admin/agents", &token).await.0, 403);
        assert_eq!(with_key(&server, Method::GET, "/v1/agent/me", &token).await.0, 401);
        assert_eq!(with_key(&server, Method::POST, "/v1/agent/mfa/step-up", &token).await.0, 401);
        let socket = server
            .try_ws("/v1/agent/ws", &[("authorization", format!("Bearer {token}")), ("origin", server.origin())])
            .await;
        assert!(socket.is_err(), "a key opens no WebSocket");

        // A cookie and a key together are refused.
        let resp = server
            .http
            .get(server.url("/v1/agent/conversations"))
            .header("cookie", &owner.cookie)
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "ambiguous_credentials");

        // Made-up tokens and visitor tokens are not keys.
        let made_up = "plk_not-a-real-key-at-all-000000000000000";
        assert_eq!(with_key(&server, Method::GET, "/v1/agent/conversations", made_up).await.0, 401);

        // Revocation applies to the very next request.
        let (status, _) = owner.call(Method::DELETE, &format!("/v1/admin/api-keys/{id}"), None).await;
        assert_eq!(status, 204);
        assert_eq!(with_key(&server, Method::GET, "/v1/agent/conversations", &token).await.0, 401);
        let (status, _) = owner.call(Method::DELETE, &format!("/v1/admin/api-keys/{id}"), None).await;
        assert_eq!(status, 404, "already revoked");
        let (_, listed) = owner.get("/v1/admin/api-keys").await;
        assert!(listed["api_keys"][0]["revoked_at"].is_i64());

        // An expired key is refused.
        let request = json!({"name": "Short", "permissions": ["conversations_read"], "expires_in_days": 1});
        let (_, created) = owner.post("/v1/admin/api-keys", request).await;
        let short = created["token"].as_str().expect("token").to_owned();
        assert_eq!(with_key(&server, Method::GET, "/v1/agent/conversations", &short).await.0, 200);
        raw_sql(&server, "UPDATE api_keys SET expires_at = 1").await;
        assert_eq!(with_key(&server, Method::GET, "/v1/agent/conversations", &short).await.0, 401);

        let trail = audit_trail(&server, "api_key.").await;
        for entry in [("api_key.create", "success"), ("api_key.revoke", "success")] {
            assert!(trail.contains(&(entry.0.into(), entry.1.into())), "{trail:?}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_api_key_holds_no_more_than_its_creators_role_and_dies_with_the_account() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("scoped").await;
    let owner = server.agent(&tenant).await;
    let bad = [
        (json!({"name": "x", "permissions": ["tenants_manage"]}), 403),
        (json!({"name": "x", "permissions": ["no_such_thing"]}), 400),
        (json!({"name": "x", "permissions": []}), 400),
        (
            json!({"name": "x", "permissions": ["audit_read"], "expires_in_days": 0}),
            400,
        ),
        (json!({"name": "", "permissions": ["audit_read"]}), 400),
    ];
    for (request, expected) in bad {
        let (status, body) = owner.post("/v1/admin/api-keys", request.clone()).await;
        assert_eq!(status, expected, "{request}: {body}");
    }
    let trail = audit_trail(&server, "api_key.create").await;
    assert!(
        trail.contains(&("api_key.create".into(), "denied".into())),
        "{trail:?}"
    );

    // A key made by an admin stops working when the admin is deactivated.
    let invite = json!({"email": "admin@scoped.example", "name": "Ada", "role": "admin"});
    let (_, invited) = owner.post("/v1/admin/agents/invitations", invite).await;
    let url = invited["invitation_url"].as_str().expect("url");
    let invitation = url.split_once("#invite=").expect("fragment").1;
    let accept = json!({"token": invitation, "name": "Ada", "password": "ada's long passphrase"});
    let (status, joined) = server
        .post("/v1/agent/invitations/accept", accept, None)
        .await;
    assert_eq!(status, 201, "{joined}");
    let admin_id = joined["agent"]["id"].as_str().expect("id").to_owned();
    let ada = Tenant {
        widget_key: String::new(),
        email: "admin@scoped.example".into(),
        password: "ada's long passphrase".into(),
    };
    let admin = server.agent(&ada).await;
    let request = json!({"name": "Ada's", "permissions": ["agents_read", "audit_read"]});
    let (status, created) = admin.post("/v1/admin/api-keys", request).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(
        with_key(&server, Method::GET, "/v1/admin/agents", &token)
            .await
            .0,
        200
    );
    let (status, _) = owner
        .post(
            &format!("/v1/admin/agents/{admin_id}/deactivate"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        with_key(&server, Method::GET, "/v1/admin/agents", &token)
            .await
            .0,
        401
    );
    server.stop().await;
}
