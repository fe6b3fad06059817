//! Managing a tenant's team through the admin API: invitations accepted
//! once, role changes that end the changed account's sessions, owners that
//! only owners touch, a last owner that stays, and deactivation that ends
//! sessions and sockets at once and answers sign-in like a wrong password.

use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Invites `email` as `role` and accepts the invitation: the new account's
/// credentials.
async fn join(owner: &Agent<'_>, email: &str, role: &str) -> Tenant {
    let invitation = json!({"email": email, "name": "New Person", "role": role});
    let (status, invited) = owner.post("/v1/admin/agents/invitations", invitation).await;
    assert_eq!(status, 201, "{invited}");
    let url = invited["invitation_url"].as_str().expect("url");
    let token = url.split_once("#invite=").expect("token in fragment").1;
    let password = format!("the passphrase of {email}");
    let accept = json!({"token": token, "name": "New Person", "password": password});
    let (status, joined) = owner
        .server
        .post("/v1/agent/invitations/accept", accept, None)
        .await;
    assert_eq!(status, 201, "{joined}");
    Tenant {
        widget_key: String::new(),
        email: email.to_owned(),
        password,
    }
}

fn listed<'a>(agents: &'a Value, email: &str) -> &'a Value {
    agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not listed: {agents}"))
}

#[tokio::test]
async fn invitations_are_accepted_once_with_the_password_policy_and_expire() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("invites").await;
        let owner = server.agent(&tenant).await;
        let invitation = json!({"email": "Kim@Invites.example", "name": "Kim", "role": "agent"});
        let (status, invited) = owner
            .post("/v1/admin/agents/invitations", invitation.clone())
            .await;
        assert_eq!(status, 201, "{invited}");
        let expires = invited["expires_at"].as_i64().expect("expiry");
        let in_72h = palisade_model::now_millis() + 72 * 3600 * 1000;
        assert!((in_72h - expires).abs() < 60_000, "expires in 72 h");
        let url = invited["invitation_url"].as_str().expect("url");
        let token = url.split_once("#invite=").expect("fragment").1.to_owned();

        // Only the token's hash is stored.
        let store = server.running.state.chat.store();
        let hash = palisade_identity::sha256_hex(&token);
        assert!(store.invitation_open(&hash).await.expect("lookup"));
        assert!(!store.invitation_open(&token).await.expect("lookup"));

        let accept =
            |password: &str| json!({"token": token, "name": "Kim Lee", "password": password});
        let (status, weak) = server
            .post("/v1/agent/invitations/accept", accept("short"), None)
            .await;
        assert_eq!(
            (status, weak["error"]["code"].as_str()),
            (400, Some("weak_password"))
        );
        let (status, joined) = server
            .post(
                "/v1/agent/invitations/accept",
                accept("kim's long passphrase"),
                None,
            )
            .await;
        assert_eq!(status, 201, "{joined}");
        assert_eq!(joined["agent"]["email"], "kim@invites.example");
        assert_eq!(joined["agent"]["role"], "agent");
        let (status, again) = server
            .post(
                "/v1/agent/invitations/accept",
                accept("another long passphrase"),
                None,
            )
            .await;
        assert_eq!(status, 404, "a used invitation: {again}");
        let (status, _) = server
            .post(
                "/v1/agent/invitations/accept",
                json!({"token": "made-up", "name": "X", "password": "a long passphrase"}),
                None,
            )
            .await;
        assert_eq!(status, 404);

        // The new account signs in; the listing shows it active, without MFA.
        let kim = Tenant {
            widget_key: String::new(),
            email: "kim@invites.example".into(),
            password: "kim's long passphrase".into(),
        };
        let _ = server.agent(&kim).await;
        let (status, agents) = owner.get("/v1/admin/agents").await;
        assert_eq!(status, 200, "{agents}");
        let listed_kim = listed(&agents, "kim@invites.example");
        assert_eq!(
            (
                listed_kim["active"].as_bool(),
                listed_kim["mfa_enabled"].as_bool()
            ),
            (Some(true), Some(false))
        );
        assert_eq!(listed(&agents, &tenant.email)["mfa_enabled"], true);

        // An address already in use cannot be invited; an expired invitation is refused.
        let (status, _) = owner.post("/v1/admin/agents/invitations", invitation).await;
        assert_eq!(status, 409);
        let late = json!({"email": "late@invites.example", "name": "Late", "role": "agent"});
        let (status, invited) = owner.post("/v1/admin/agents/invitations", late).await;
        assert_eq!(status, 201);
        let url = invited["invitation_url"].as_str().expect("url");
        let late_token = url.split_once("#invite=").expect("fragment").1.to_owned();
        expire_invitations(&server).await;
        let (status, _) = server
            .post(
                "/v1/agent/invitations/accept",
                json!({"token": late_token, "name": "Late", "password": "a long passphrase"}),
                None,
            )
            .await;
        assert_eq!(status, 404, "an expired invitation");

        let trail = audit_trail(&server, "agent.invit").await;
        assert!(
            trail.contains(&("agent.invite".into(), "success".into())),
            "{trail:?}"
        );
        assert!(
            trail.contains(&("agent.invitation_accept".into(), "success".into())),
            "{trail:?}"
        );
        server.stop().await;
    })
    .await;
}

async fn expire_invitations(server: &TestServer) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&server.database_url)
        .await
        .expect("raw connection");
    sqlx::query("UPDATE agent_invitations SET expires_at = 1")
        .execute(&mut conn)
        .await
        .expect("expire");
}

#[tokio::test]
async fn a_role_change_ends_the_accounts_sessions_and_only_owners_touch_owners() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("roles").await;
        let owner = server.agent(&tenant).await;
        let staff = join(&owner, "staff@roles.example", "agent").await;
        let agent = server.agent(&staff).await;
        let (_, agents) = owner.get("/v1/admin/agents").await;
        let staff_id = listed(&agents, &staff.email)["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let owner_id = listed(&agents, &tenant.email)["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let mut ws = agent.ws().await;

        let (status, changed) = owner
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{staff_id}"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["role"], "admin");
        assert_eq!(
            close_code(&mut ws).await,
            Some(1008),
            "the socket closes at once"
        );
        let (status, _) = agent.get("/v1/agent/me").await;
        assert_eq!(status, 401, "the old session is gone");
        // The next session has a new id and, as an admin now, must set up MFA.
        let (status, body, cookie) = server.login_raw(&staff.email, &staff.password).await;
        assert_eq!((status, body["stage"].as_str()), (200, Some("enroll")));
        assert_ne!(cookie, agent.cookie);
        let admin = server.agent(&staff).await;

        // An admin neither grants nor touches owners.
        let to_owner = json!({"role": "owner"});
        let (status, _) = admin
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{staff_id}"),
                Some(to_owner.clone()),
            )
            .await;
        assert_eq!(status, 403, "an admin grants no owner role");
        let (status, _) = admin
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{owner_id}"),
                Some(json!({"role": "agent"})),
            )
            .await;
        assert_eq!(status, 403, "an admin demotes no owner");
        let (status, _) = admin
            .post(
                &format!("/v1/admin/agents/{owner_id}/deactivate"),
                json!({}),
            )
            .await;
        assert_eq!(status, 403, "an admin deactivates no owner");
        let (status, _) = admin
            .post(
                "/v1/admin/agents/invitations",
                json!({"email": "o2@roles.example", "name": "O", "role": "owner"}),
            )
            .await;
        assert_eq!(status, 403, "an admin invites no owner");

        // No one demotes or deactivates the last owner, not even itself.
        let (status, body) = owner
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{owner_id}"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = owner
            .post(
                &format!("/v1/admin/agents/{owner_id}/deactivate"),
                json!({}),
            )
            .await;
        assert_eq!(status, 409);
        // With a second owner, the first may step down.
        let (status, _) = owner
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{staff_id}"),
                Some(to_owner),
            )
            .await;
        assert_eq!(status, 200);
        let (status, demoted) = owner
            .call(
                Method::PATCH,
                &format!("/v1/admin/agents/{owner_id}"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!((status, demoted["role"].as_str()), (200, Some("admin")));

        let trail = audit_trail(&server, "agent.role_change").await;
        assert!(
            trail.contains(&("agent.role_change".into(), "denied".into())),
            "{trail:?}"
        );
        assert!(
            trail.contains(&("agent.role_change".into(), "success".into())),
            "{trail:?}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deactivation_ends_sessions_and_sockets_and_sign_in_fails_like_a_wrong_password() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("leavers").await;
        let owner = server.agent(&tenant).await;
        let staff = join(&owner, "leaver@leavers.example", "agent").await;
        let agent = server.agent(&staff).await;
        let (_, agents) = owner.get("/v1/admin/agents").await;
        let id = listed(&agents, &staff.email)["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let mut ws = agent.ws().await;

        let (status, body) = owner
            .post(&format!("/v1/admin/agents/{id}/deactivate"), json!({}))
            .await;
        assert_eq!(
            (status, body["active"].as_bool()),
            (200, Some(false)),
            "{body}"
        );
        assert_eq!(close_code(&mut ws).await, Some(1008));
        let (status, _) = agent.get("/v1/agent/conversations").await;
        assert_eq!(status, 401);
        let (status, refused, _) = server.login_raw(&staff.email, &staff.password).await;
        let (wrong_status, wrong, _) = server
            .login_raw(&staff.email, "a wrong long password")
            .await;
        let answer = |body: &serde_json::Value| {
            (
                body["error"]["code"].clone(),
                body["error"]["message"].clone(),
            )
        };
        assert_eq!(
            (status, answer(&refused)),
            (wrong_status, answer(&wrong)),
            "the same answer"
        );
        assert_eq!(status, 401);

        let (status, body) = owner
            .post(&format!("/v1/admin/agents/{id}/reactivate"), json!({}))
            .await;
        assert_eq!(
            (status, body["active"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
        let (status, _, _) = server.login_raw(&staff.email, &staff.password).await;
        assert_eq!(status, 200);
        let (status, _) = owner
            .post("/v1/admin/agents/not-an-agent/deactivate", json!({}))
            .await;
        assert_eq!(status, 404);
        let trail = audit_trail(&server, "agent.").await;
        for action in ["agent.deactivate", "agent.reactivate"] {
            assert!(
                trail.contains(&(action.into(), "started".into())),
                "{trail:?}"
            );
            assert!(
                trail.contains(&(action.into(), "success".into())),
                "{trail:?}"
            );
        }
        server.stop().await;
    })
    .await;
}
