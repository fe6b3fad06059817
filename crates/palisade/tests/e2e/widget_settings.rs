//! Widget settings: admins change them (checked, audited), the widget reads
//! them by its public key, pre-chat fields are enforced for new visitors,
//! and the email a visitor leaves outside business hours reaches agents.

use crate::support::*;
use serde_json::{Value, json};

async fn widget_id(server: &TestServer, tenant: &Tenant) -> String {
    let (status, list) = server.agent(tenant).await.get("/v1/admin/widgets").await;
    assert_eq!(status, 200, "{list}");
    list["widgets"][0]["id"].as_str().expect("id").to_owned()
}

/// Every day closed: the widget is always outside business hours.
fn always_closed() -> Value {
    json!({"utc_offset_minutes": 60, "days": [null, null, null, null, null, null, null]})
}

#[tokio::test]
async fn admin_settings_are_checked_audited_and_served_to_the_widget() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("themed").await;
        let id = widget_id(&server, &tenant).await;
        let admin = server.agent(&tenant).await;
        let path = format!("/v1/admin/widgets/{id}/settings");

        let bad = [
            json!({"greeting": "Hi", "settings": {"theme_color": "red", "away_message": ""}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#12345g", "away_message": ""}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "position": "top"}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "prechat": {"email": "maybe"}}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "hours": {"utc_offset_minutes": 0, "days": [null]}}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "hours": {"utc_offset_minutes": 0, "days": [{"open": "17:00", "close": "09:00"}, null, null, null, null, null, null]}}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "hours": {"utc_offset_minutes": 0, "days": [{"open": "9am", "close": "17:00"}, null, null, null, null, null, null]}}}),
            json!({"greeting": "x".repeat(501), "settings": {"theme_color": "#123456", "away_message": ""}}),
            json!({"greeting": "Hi", "settings": {"theme_color": "#123456", "away_message": "", "script": "alert(1)"}}),
        ];
        for body in bad {
            let (status, answer) = admin.put(&path, body.clone()).await;
            assert_eq!(status, 400, "{body} -> {answer}");
            assert!(!answer["error"]["message"].as_str().unwrap_or("").is_empty(), "{answer}");
        }

        let settings = json!({
            "theme_color": "#A01B2C",
            "position": "left",
            "prechat": {"name": "optional", "email": "required"},
            "hours": always_closed(),
            "away_message": "Back on Monday.",
        });
        let (status, saved) = admin.put(&path, json!({"greeting": "Welcome!", "settings": settings})).await;
        assert_eq!(status, 200, "{saved}");
        assert_eq!(saved["settings"]["theme_color"], "#a01b2c");
        assert_eq!(saved["greeting"], "Welcome!");

        let (status, public) = server.get(&format!("/v1/visitor/widgets/{}", tenant.widget_key), None).await;
        assert_eq!(status, 200, "{public}");
        assert_eq!(public["theme_color"], "#a01b2c");
        assert_eq!(public["position"], "left");
        assert_eq!(public["prechat"]["email"], "required");
        assert_eq!(public["away_message"], "Back on Monday.");
        assert_eq!(public["greeting"], "Welcome!");
        assert_eq!(public["open_now"], false);
        assert!(public.get("tenant_id").is_none() && public.get("allowed_origins").is_none(), "{public}");
        let (status, _) = server.get("/v1/visitor/widgets/pk_no_such_widget", None).await;
        assert_eq!(status, 404);

        // The launcher's stylesheet carries the colour and the corner.
        let css = server.http.get(server.url(&format!("/widget/theme.css?key={}", tenant.widget_key)))
            .send().await.expect("sent");
        assert_eq!(css.status().as_u16(), 200);
        assert!(css.headers()["content-type"].to_str().unwrap_or("").starts_with("text/css"));
        let css = css.text().await.expect("text");
        assert!(css.contains("#a01b2c") && css.contains("left: 20px"), "{css}");

        // Another tenant's admin cannot see or change this widget.
        let other = server.seed_tenant("themed-other").await;
        let intruder = server.agent(&other).await;
        let (status, _) = intruder.put(&path, json!({"greeting": "x", "settings": {"theme_color": "#000000", "away_message": ""}})).await;
        assert_eq!(status, 404);

        let records = server.running.state.audit.store().audit_records(0, 200).await.expect("read");
        let seen: Vec<(String, String)> = records.iter()
            .filter(|r| r.action == "widget.settings.update" && r.target == id)
            .map(|r| (r.actor_id.clone(), r.outcome.clone()))
            .collect();
        let outcomes: Vec<&str> = seen.iter().map(|(_, o)| o.as_str()).collect();
        // The intruder's attempt on a widget that is not its tenant's is a 404
        // before anything is recorded.
        assert_eq!(outcomes, ["started", "success"], "{backend:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn required_prechat_fields_are_enforced_for_new_visitors_only() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("prechat").await;
        let id = widget_id(&server, &tenant).await;
        let admin = server.agent(&tenant).await;
        let settings = json!({"theme_color": "#123456", "away_message": "", "prechat": {"name": "required", "email": "optional"}});
        let (status, _) = admin.put(&format!("/v1/admin/widgets/{id}/settings"), json!({"greeting": "", "settings": settings})).await;
        assert_eq!(status, 200);

        let session = |body: Value| server.post("/v1/visitor/sessions", body, None);
        let (status, refused) = session(json!({"widget_key": tenant.widget_key, "email": "a@b.example"})).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("prechat_required")), "{refused}");
        let (status, refused) = session(json!({"widget_key": tenant.widget_key, "name": "   "})).await;
        assert_eq!(status, 400, "{refused}");
        let (status, created) = session(json!({"widget_key": tenant.widget_key, "name": "Ann"})).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["widget"]["prechat"]["name"], "required");
        // Renewing a token is not a new visitor: no form to fill in again.
        let token = created["token"].as_str().expect("token");
        let (status, renewed) = session(json!({"widget_key": tenant.widget_key, "resume_token": token})).await;
        assert_eq!(status, 201, "{renewed}");
        assert_eq!(renewed["visitor_id"], created["visitor_id"]);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_email_left_outside_business_hours_reaches_the_agents() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("away").await;
        let id = widget_id(&server, &tenant).await;
        let admin = server.agent(&tenant).await;
        let settings = json!({"theme_color": "#123456", "away_message": "We are closed.", "hours": always_closed()});
        let (status, _) = admin.put(&format!("/v1/admin/widgets/{id}/settings"), json!({"greeting": "", "settings": settings})).await;
        assert_eq!(status, 200);

        let (token, conversation) = server.visitor(&tenant).await;
        let (status, _) = server.post("/v1/visitor/contact", json!({"email": "not an email"}), Some(&token)).await;
        assert_eq!(status, 400);
        let (status, _) = server.post("/v1/visitor/contact", json!({"email": "ann@mail.example"}), None).await;
        assert_eq!(status, 401);
        let (status, _) = server.post("/v1/visitor/contact", json!({"email": "ann@mail.example"}), Some(&token)).await;
        assert_eq!(status, 204);

        let (status, visitor) = admin.get(&format!("/v1/agent/conversations/{conversation}/visitor")).await;
        assert_eq!(status, 200, "{visitor}");
        assert_eq!(visitor["email"], "ann@mail.example");
        assert_eq!(visitor["name"], "Ann");
        assert_eq!(visitor["widget_name"], "away");

        // Sealed at rest like the rest of the visitor's details.
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&server.database_url)
            .await.expect("raw connection");
        let rows = sqlx::query("SELECT email FROM visitors WHERE email IS NOT NULL")
            .fetch_all(&mut conn).await.expect("select");
        assert!(!rows.is_empty());
        for row in rows {
            let stored: String = sqlx::Row::try_get(&row, "email").expect("email");
            assert!(!stored.contains("ann@mail.example"), "an email stored in clear");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn agents_see_the_visitors_page_without_its_query_and_browser() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("panel").await;
        let session = |body: Value| {
            server
                .http
                .post(server.url("/v1/visitor/sessions"))
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 é",
                )
                .json(&body)
                .send()
        };

        // Only http(s) pages are taken, with a clear error for the rest.
        for bad in [
            "ftp://shop.example/",
            "https://",
            "https://shop.example/a b",
        ] {
            let body = json!({"widget_key": tenant.widget_key, "page_url": bad});
            let resp = session(body).await.expect("sent");
            assert_eq!(resp.status().as_u16(), 400, "{bad}");
            let answer: Value = resp.json().await.expect("json");
            assert_eq!(answer["error"]["code"], "invalid_page_url", "{answer}");
        }

        let page = "https://shop.example/checkout?token=s3cret#step-2";
        let body = json!({"widget_key": tenant.widget_key, "name": "Ann", "page_url": page});
        let resp = session(body).await.expect("sent");
        assert_eq!(resp.status().as_u16(), 201);
        let created: Value = resp.json().await.expect("json");
        let token = created["token"].as_str().expect("token").to_owned();
        let (status, conversation) = server
            .post("/v1/visitor/conversations", json!({}), Some(&token))
            .await;
        assert_eq!(status, 201, "{conversation}");
        let id = conversation["id"].as_str().expect("id");

        let agent = server.agent(&tenant).await;
        let path = format!("/v1/agent/conversations/{id}/visitor");
        let (status, visitor) = agent.get(&path).await;
        assert_eq!(status, 200, "{visitor}");
        assert_eq!(visitor["page_url"], "https://shop.example/checkout");
        assert_eq!(
            visitor["browser"],
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 ??"
        );
        assert!(!visitor.to_string().contains("s3cret"), "{visitor}");

        // Resuming on another page records the new one.
        let body = json!({"widget_key": tenant.widget_key, "resume_token": token,
            "page_url": "https://shop.example/help"});
        assert_eq!(session(body).await.expect("sent").status().as_u16(), 201);
        let (_, visitor) = agent.get(&path).await;
        assert_eq!(visitor["page_url"], "https://shop.example/help");
    })
    .await;
}
