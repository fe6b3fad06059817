//! The permission matrix, generated from the route table: for every route
//! and every role, tenant B's credentials on tenant A's ids get 404 (never
//! 403, never data), and each role gets exactly the routes its permissions
//! allow. Run it alone with `cargo test cross_tenant`.

use crate::support::*;
use palisade_gateway::access::Access;
use palisade_identity::PasswordHasher;
use palisade_model::{Email, Permission, Role};
use palisade_store::NewAgent;
use serde_json::{Value, json};

/// Signs in a new account of `role` in the tenant with this slug.
async fn account<'a>(server: &'a TestServer, slug: &str, role: Role) -> Agent<'a> {
    let store = server.running.state.chat.store();
    let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
    let email = format!("{}.matrix@{slug}.example", role.as_str());
    let password = format!("long password of {} in {slug}", role.as_str());
    let hash = PasswordHasher::new()
        .expect("hasher")
        .hash(&password)
        .expect("hash");
    let parsed = Email::parse(&email).expect("email");
    let new = NewAgent {
        email: &parsed,
        name: role.as_str(),
        role,
        password_hash: &hash,
    };
    if store
        .agent_credentials(&parsed)
        .await
        .expect("lookup")
        .is_none()
    {
        store.create_agent(&tenant, new).await.expect("agent");
    }
    server
        .agent(&Tenant {
            widget_key: String::new(),
            email,
            password,
        })
        .await
}

/// A body each POST or PATCH route accepts, unique per call.
fn body_for(path: &str, n: usize) -> Value {
    if path.ends_with("/messages") {
        json!({"client_msg_id": format!("matrix-{n}"), "body": "matrix probe"})
    } else if path.ends_with("/notes") {
        json!({"body": "matrix note"})
    } else if path.contains("/canned-responses/") {
        json!({"body": "A canned probe."})
    } else if path.ends_with("/settings") {
        json!({"greeting": "Hello", "settings": {"theme_color": "#123456", "away_message": "Away"}})
    } else if path.ends_with("/agents") {
        json!({"email": format!("new{n}@probe.example"), "name": "Probe", "password": "a long probe password", "role": "agent"})
    } else if path.ends_with("/invitations") {
        json!({"email": format!("invited{n}@probe.example"), "name": "Probe", "role": "agent"})
    } else if path.ends_with("/api-keys") {
        json!({"name": format!("probe {n}"), "permissions": ["conversations_read"]})
    } else if path.starts_with("/v1/admin/agents/") {
        json!({"role": "agent"})
    } else {
        json!({})
    }
}

/// How a matrix call authenticates.
#[derive(Clone, Copy)]
enum Credential<'a> {
    Session(&'a Agent<'a>),
    Key(&'a str),
}

async fn call(
    server: &TestServer,
    credential: Credential<'_>,
    method: &axum::http::Method,
    path: &str,
    n: usize,
) -> (u16, String) {
    use axum::http::Method;
    let url = server.url(path);
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
    let mut req = server.http.request(method.clone(), url);
    if method == Method::POST || method == Method::PATCH || method == Method::PUT {
        req = req.json(&body_for(path, n));
    }
    req = match credential {
        Credential::Session(agent) => req
            .header("cookie", &agent.cookie)
            .header("x-csrf-token", &agent.csrf)
            .header("origin", server.origin()),
        Credential::Key(token) => req.bearer_auth(token),
    };
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// An API key of the account with this email holding all its role's
/// permissions, made in the store (the route that makes keys is itself in
/// the matrix): (key id, token).
async fn key_of(server: &TestServer, email: &str) -> (String, String) {
    let store = server.running.state.chat.store();
    let parsed = Email::parse(email).expect("email");
    let agent = store
        .agent_credentials(&parsed)
        .await
        .expect("lookup")
        .expect("account")
        .agent;
    let token = format!("plk_matrix_{}", uuid::Uuid::new_v4().simple());
    let new = palisade_store::NewApiKey {
        name: "matrix",
        prefix: &token[..12],
        token_hash: &palisade_identity::sha256_hex(&token),
        permissions: agent.role.permissions(),
        created_by: &agent.id,
        expires_at: palisade_model::now_millis() + 3_600_000,
    };
    let key = store
        .create_api_key(&agent.tenant_id, new)
        .await
        .expect("key");
    (key.id.to_string(), token)
}

/// The ids of one tenant that `{id}` in a route path stands for.
struct Ids {
    conversation: String,
    agent: String,
    api_key: String,
    widget: String,
    webhook: String,
}

impl Ids {
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/v1/admin/agents/") {
            &self.agent
        } else if path.starts_with("/v1/admin/api-keys/") {
            &self.api_key
        } else if path.starts_with("/v1/admin/widgets/") {
            &self.widget
        } else if path.starts_with("/v1/admin/webhooks/") {
            &self.webhook
        } else {
            &self.conversation
        };
        path.replace("{id}", id)
    }

    fn all(&self) -> [&str; 5] {
        [
            &self.conversation,
            &self.agent,
            &self.api_key,
            &self.widget,
            &self.webhook,
        ]
    }
}

/// A webhook of the tenant with this slug, aimed at a closed loopback port
/// (allow-listed for this test).
async fn webhook(server: &TestServer, slug: &str) -> String {
    let tenant = server
        .running
        .state
        .chat
        .store()
        .tenant_by_slug(slug)
        .await
        .expect("lookup")
        .expect("tenant");
    let access = palisade_webhooks::VaultAccess {
        actor_kind: palisade_audit::ActorKind::System,
        actor_id: "matrix".into(),
        principal: palisade_webhooks::Principal::System("gateway".into()),
        source: "test".into(),
        reason: "permission matrix".into(),
        request_id: "matrix".into(),
    };
    let new = palisade_webhooks::NewSubscription {
        partner: None,
        url: "http://127.0.0.1:9/".into(),
        events: vec!["conversation.closed".into()],
    };
    let webhooks = &server.running.state.webhooks;
    let created = webhooks.subscribe(&tenant, new, &access).await;
    created.expect("webhook").subscription.id
}

/// An agent account in a tenant that the matrix may change and deactivate.
async fn bystander(server: &TestServer, slug: &str) -> String {
    let store = server.running.state.chat.store();
    let tenant = store.ensure_tenant(slug, slug).await.expect("tenant");
    let email = Email::parse(&format!("bystander@{slug}.example")).expect("email");
    let new = NewAgent {
        email: &email,
        name: "Bystander",
        role: Role::Agent,
        password_hash: "not a usable hash",
    };
    store
        .create_agent(&tenant, new)
        .await
        .expect("agent")
        .id
        .to_string()
}

#[tokio::test]
async fn cross_tenant_matrix_every_route_every_role() {
    // Hundreds of calls from one address and tenant in a second: the rate
    // limits are not what this test is about.
    let mut env = Vec::new();
    for class in ["READ", "WRITE", "SEND"] {
        for scope in ["ADDRESS", "CREDENTIAL", "TENANT"] {
            env.push((format!("PALISADE_LIMITS__{class}_PER_{scope}"), "off"));
        }
    }
    // Webhooks of the matrix go to a closed port on loopback.
    env.push((
        "PALISADE_WEBHOOKS__ALLOW_TARGETS".to_owned(),
        "[\"127.0.0.1/32\"]",
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let a = server.seed_tenant("matrix-a").await;
    let (token_a, conversation_a) = server.visitor(&a).await;
    let secret = "tenant A's private words";
    let (status, _) = server
        .post(
            &format!("/v1/visitor/conversations/{conversation_a}/messages"),
            json!({"client_msg_id": "a-1", "body": secret}),
            Some(&token_a),
        )
        .await;
    assert_eq!(status, 201);
    let ids_a = Ids {
        conversation: conversation_a.clone(),
        agent: bystander(&server, "matrix-a").await,
        api_key: key_of(&server, &a.email).await.0,
        widget: widget_id(&server, &a).await,
        webhook: webhook(&server, "matrix-a").await,
    };
    let b = server.seed_tenant("matrix-b").await;
    let (_, conversation_b) = server.visitor(&b).await;
    let agent_b = bystander(&server, "matrix-b").await;
    let widget_b = widget_id(&server, &b).await;

    let mut checked = 0;
    for role in [Role::Owner, Role::Admin, Role::Agent, Role::Operator] {
        let slug = if role == Role::Operator {
            "platform"
        } else {
            "matrix-b"
        };
        let agent = account(&server, slug, role).await;
        let email = format!("{}.matrix@{slug}.example", role.as_str());
        let (_, token) = key_of(&server, &email).await;
        for (n, route) in palisade_gateway::route_table().into_iter().enumerate() {
            let needed = match route.access {
                Access::Needs(permission) | Access::StepUp(permission) => Some(permission),
                Access::SignedIn => None,
                // Partner routes take no session at all: partners.rs.
                Access::Public | Access::Visitor | Access::MfaPending | Access::Partner => continue,
            };
            if route.path.ends_with("/logout")
                || route.path.ends_with("/end-all")
                || route.path.contains("/mfa/")
            {
                continue; // ends the session; covered in tenancy.rs
            }
            let allowed = needed.is_none_or(|p| role.has(p));
            let key_allowed = matches!(route.access, Access::Needs(p) if role.has(p))
                && !route.path.ends_with("/ws");
            let sessions = [Credential::Session(&agent), Credential::Key(&token)];
            for (credential, allowed) in sessions.into_iter().zip([allowed, key_allowed]) {
                let via = match credential {
                    Credential::Session(_) => "session",
                    Credential::Key(_) => "API key",
                };
                let what = format!(
                    "{} {} as {} of B by {via}",
                    route.method,
                    route.path,
                    role.as_str()
                );
                let on_a = ids_a.fill(route.path);
                let (status, body) = call(&server, credential, &route.method, &on_a, n).await;
                if !allowed {
                    assert!(status == 403 || status == 401, "{what}: {status} {body}");
                } else if route.path.contains("{id}") {
                    assert_eq!(status, 404, "{what} on A's id: {body}");
                } else {
                    assert!(status < 500 && status != 403, "{what}: {status} {body}");
                }
                let leaked =
                    body.contains(secret) || ids_a.all().iter().any(|id| body.contains(id));
                assert!(!leaked, "{what} leaked A's data: {body}");

                // On its own tenant's ids, the role gets exactly its permissions.
                if route.path.contains("{id}") {
                    let ids_b = Ids {
                        conversation: conversation_b.clone(),
                        agent: agent_b.clone(),
                        // Revoking needs a key not yet revoked, removing a
                        // webhook one not yet removed.
                        api_key: key_of(&server, &b.email).await.0,
                        widget: widget_b.clone(),
                        // Only webhook routes use one; the tenant's count is capped.
                        webhook: if route.path.starts_with("/v1/admin/webhooks/") {
                            webhook(&server, "matrix-b").await
                        } else {
                            String::new()
                        },
                    };
                    let on_b = ids_b.fill(route.path);
                    let (status, body) =
                        call(&server, credential, &route.method, &on_b, n + 1000).await;
                    let what = format!("{what} on B's id");
                    if allowed {
                        assert!((200..300).contains(&status), "{what}: {status} {body}");
                    } else {
                        assert!(status == 403 || status == 401, "{what}: {status} {body}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 80,
        "the matrix covered {checked} route-role-credential triples"
    );
    // Nothing reached tenant A's conversation.
    let (_, history) = server
        .get(
            &format!("/v1/visitor/conversations/{conversation_a}/messages"),
            Some(&token_a),
        )
        .await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
    server.stop().await;
}

#[test]
fn every_route_declares_its_access_and_permissions_doc_matches_the_code() {
    let table = palisade_gateway::route_table();
    assert!(table.len() >= 20);
    for route in &table {
        let family_ok = match route.access {
            Access::Visitor => route.path.starts_with("/v1/visitor/"),
            Access::SignedIn | Access::Needs(_) | Access::StepUp(_) | Access::MfaPending => {
                ["/v1/agent/", "/v1/admin/", "/v1/operator/"]
                    .iter()
                    .any(|family| route.path.starts_with(family))
            }
            Access::Partner => route.path.starts_with("/s2s/v1/"),
            Access::Public => !route.path.starts_with("/s2s/"),
        };
        assert!(
            family_ok,
            "{route:?}: a credential of one family on another family's route"
        );
    }
    let doc = include_str!("../../../../docs/PERMISSIONS.md");
    for permission in Permission::ALL {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| {} |", permission.as_str())))
            .unwrap_or_else(|| {
                panic!("docs/PERMISSIONS.md has no row for {}", permission.as_str())
            });
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for (column, role) in [Role::Operator, Role::Owner, Role::Admin, Role::Agent]
            .into_iter()
            .enumerate()
        {
            let documented = cells[column + 2] == "yes";
            assert_eq!(
                documented,
                role.has(permission),
                "{} for {}",
                permission.as_str(),
                role.as_str()
            );
        }
    }
}

/// The id of the tenant's (only) widget.
async fn widget_id(server: &TestServer, tenant: &Tenant) -> String {
    let store = server.running.state.chat.store();
    let widget = store
        .widget_by_public_key(&tenant.widget_key)
        .await
        .expect("lookup")
        .expect("widget");
    widget.id.as_str().to_owned()
}
