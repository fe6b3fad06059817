//! The platform operator: made with `palisade operator create`, signs in
//! with a second factor, lists and creates tenants, and reads no tenant's
//! conversations, agents or settings.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn an_operator_creates_tenants_whose_owner_joins_by_invitation_and_reads_no_conversations() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let shop = server.seed_tenant("op-shop").await;
        let config = test_config(&server.data_dir, &server.database_url, &[]);
        let password = palisade::operatorcmd::create(&config, "ops@platform.example", "Ops")
            .await
            .expect("operator created");
        let again = palisade::operatorcmd::create(&config, "ops@platform.example", "Ops").await;
        assert!(again.is_err(), "one account per address");
        let operator = server
            .agent(&Tenant {
                widget_key: String::new(),
                email: "ops@platform.example".into(),
                password: password.expose().to_owned(),
            })
            .await;

        let (status, listed) = operator.get("/v1/operator/tenants").await;
        assert_eq!(status, 200, "{listed}");
        let slugs: Vec<&str> = listed["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .filter_map(|t| t["slug"].as_str())
            .collect();
        assert!(
            slugs.contains(&"op-shop") && slugs.contains(&"platform"),
            "{slugs:?}"
        );

        let new =
            json!({"slug": "op-new", "name": "New Shop", "owner_email": "boss@op-new.example"});
        let (status, created) = operator.post("/v1/operator/tenants", new.clone()).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["tenant"]["slug"], "op-new");
        let (status, _) = operator.post("/v1/operator/tenants", new).await;
        assert_eq!(status, 409, "the slug is taken");
        let (status, bad) = operator
            .post(
                "/v1/operator/tenants",
                json!({"slug": "Bad Slug", "name": "x", "owner_email": "a@b.example"}),
            )
            .await;
        assert_eq!(
            (status, bad["error"]["code"].as_str()),
            (400, Some("invalid_slug"))
        );

        // The new owner joins by the invitation and finds the widget.
        let url = created["owner_invitation_url"].as_str().expect("url");
        let token = url.split_once("#invite=").expect("fragment").1;
        let accept = json!({"token": token, "name": "Boss", "password": "the boss's passphrase"});
        let (status, joined) = server
            .post("/v1/agent/invitations/accept", accept, None)
            .await;
        assert_eq!(status, 201, "{joined}");
        assert_eq!(joined["agent"]["role"], "owner");
        let boss = server
            .agent(&Tenant {
                widget_key: String::new(),
                email: "boss@op-new.example".into(),
                password: "the boss's passphrase".into(),
            })
            .await;
        let (status, widgets) = boss.get("/v1/admin/widgets").await;
        assert_eq!(status, 200);
        assert_eq!(widgets["widgets"][0]["public_key"], created["widget_key"]);
        assert_eq!(
            boss.get("/v1/operator/tenants").await.0,
            403,
            "owners are not operators"
        );

        // The operator reads no tenant's conversations.
        let (_, conversation) = server.visitor(&shop).await;
        for path in [
            "/v1/agent/conversations".to_owned(),
            format!("/v1/agent/conversations/{conversation}"),
            "/v1/admin/agents".to_owned(),
            "/v1/admin/audit".to_owned(),
        ] {
            assert_eq!(operator.get(&path).await.0, 403, "{path}");
        }
        let trail = audit_trail(&server, "tenant.create").await;
        assert!(
            trail.contains(&("tenant.create".into(), "success".into())),
            "{trail:?}"
        );
        server.stop().await;
    })
    .await;
}
