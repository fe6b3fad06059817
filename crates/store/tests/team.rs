//! The team's guard, on each backend: however two owners race to step
//! down, the tenant keeps an active owner.

use palisade_model::{Email, Role};
use palisade_store::testing::{backends, fresh_store};
use palisade_store::{NewAgent, StoreError};

#[tokio::test]
async fn two_owners_stepping_down_at_once_leave_one_owner() {
    for backend in backends() {
        let dir =
            std::env::temp_dir().join(format!("palisade-team-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = fresh_store(backend, &dir).await.expect("fresh store");
        let tenant = store.ensure_tenant("race", "race").await.expect("tenant");
        let mut owners = Vec::new();
        for n in 0..2 {
            let email = Email::parse(&format!("owner{n}@race.example")).expect("email");
            let new = NewAgent {
                email: &email,
                name: "Owner",
                role: Role::Owner,
                password_hash: "unused",
            };
            owners.push(store.create_agent(&tenant, new).await.expect("agent").id);
        }
        for _ in 0..5 {
            let (a, b) = tokio::join!(
                store.set_agent_role(&tenant, &owners[0], Role::Admin),
                store.set_agent_active(&tenant, &owners[1], false),
            );
            let refused = [&a, &b]
                .iter()
                .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
                .count();
            assert_eq!(refused, 1, "{backend:?}: {a:?} {b:?}");
            let listed = store.agent_listings(&tenant).await.expect("list");
            let active_owners = listed
                .iter()
                .filter(|l| l.active && l.agent.role == Role::Owner)
                .count();
            assert_eq!(active_owners, 1, "{backend:?}");
            // Back to two owners for the next round.
            store
                .set_agent_role(&tenant, &owners[0], Role::Owner)
                .await
                .expect("restore");
            store
                .set_agent_active(&tenant, &owners[1], true)
                .await
                .expect("restore");
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
