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

/// A body each POST route accepts, unique per call.
fn body_for(path: &str, n: usize) -> Value {
    if path.ends_with("/messages") {
        json!({"client_msg_id": format!("matrix-{n}"), "body": "matrix probe"})
    } else if path.ends_with("/agents") {
        json!({"email": format!("new{n}@probe.example"), "name": "Probe", "password": "a long probe password", "role": "agent"})
    } else {
        json!({})
    }
}

async fn call(
    agent: &Agent<'_>,
    method: &axum::http::Method,
    path: &str,
    n: usize,
) -> (u16, String) {
    let http = &agent.server.http;
    let url = agent.server.url(path);
    let req = match *method {
        axum::http::Method::GET => http.get(url),
        axum::http::Method::POST => http.post(url).json(&body_for(path, n)),
        ref other => panic!("the matrix has no case for {other}"),
    };
    let resp = req
        .header("cookie", &agent.cookie)
        .header("x-csrf-token", &agent.csrf)
        .header("origin", agent.server.origin())
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn cross_tenant_matrix_every_route_every_role() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
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
    let b = server.seed_tenant("matrix-b").await;
    let (_, conversation_b) = server.visitor(&b).await;

    let mut checked = 0;
    for role in [Role::Owner, Role::Admin, Role::Agent, Role::Operator] {
        let slug = if role == Role::Operator {
            "platform"
        } else {
            "matrix-b"
        };
        let agent = account(&server, slug, role).await;
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
            let on_a = route.path.replace("{id}", &conversation_a);
            let (status, body) = call(&agent, &route.method, &on_a, n).await;
            let what = format!("{} {} as {} of B", route.method, route.path, role.as_str());
            if !allowed {
                assert_eq!(status, 403, "{what}: {body}");
            } else if route.path.contains("{id}") {
                assert_eq!(status, 404, "{what} on A's id: {body}");
            } else {
                assert!(status < 500 && status != 403, "{what}: {status} {body}");
            }
            assert!(
                !body.contains(secret) && !body.contains(&conversation_a),
                "{what} leaked A's data: {body}"
            );

            // On its own tenant's ids, the role gets exactly its permissions.
            if route.path.contains("{id}") {
                let on_b = route.path.replace("{id}", &conversation_b);
                let (status, body) = call(&agent, &route.method, &on_b, n + 1000).await;
                let what = format!(
                    "{} {} as {} of B on B's id",
                    route.method,
                    route.path,
                    role.as_str()
                );
                if allowed {
                    assert!((200..300).contains(&status), "{what}: {status} {body}");
                } else {
                    assert_eq!(status, 403, "{what}: {body}");
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 40,
        "the matrix covered {checked} route-role pairs"
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
                route.path.starts_with("/v1/agent/") || route.path.starts_with("/v1/admin/")
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
