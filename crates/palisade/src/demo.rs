//! The demo tenant: one widget and one owner account, created on the first
//! `palisade demo` and reused after.

use palisade_identity::{PasswordHasher, SecretString, random_token};
use palisade_model::{Email, Role, Widget};
use palisade_store::{NewAgent, NewWidget, Store};

pub const DEMO_EMAIL: &str = "agent@demo.palisade.test";

/// What the demo prints.
#[derive(Debug)]
pub struct DemoTenant {
    pub widget: Widget,
    pub agent_email: String,
    /// Set only when the password was (re)made in this run: it is shown once.
    pub agent_password: Option<SecretString>,
}

/// Creates the demo tenant, widget and agent unless they exist. With
/// `new_password`, the agent gets a fresh password.
pub async fn ensure(
    store: &Store,
    passwords: &PasswordHasher,
    public_origin: &str,
    new_password: bool,
) -> anyhow::Result<DemoTenant> {
    let tenant = store.ensure_tenant("demo", "Demo Shop").await?;
    let widget = match store.widgets(&tenant).await?.into_iter().next() {
        Some(widget) => widget,
        None => {
            let key = format!("pk_{}", random_token(18).expose());
            let origins = vec![public_origin.to_owned()];
            let new = NewWidget {
                name: "Demo Shop",
                public_key: &key,
                allowed_origins: &origins,
                greeting: "Hi! How can we help you today?",
            };
            store.create_widget(&tenant, new).await?
        }
    };
    let email = Email::parse(DEMO_EMAIL).map_err(|e| anyhow::anyhow!("{e}"))?;
    let existing = store.agent_credentials(&email).await?;
    let password = if existing.is_none() || new_password {
        let password = random_token(15);
        let hash = passwords
            .hash(password.expose())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match existing {
            Some(found) => {
                store
                    .set_agent_password(&tenant, &found.agent.id, &hash)
                    .await?
            }
            None => {
                let new = NewAgent {
                    email: &email,
                    name: "Demo Agent",
                    role: Role::Owner,
                    password_hash: &hash,
                };
                store.create_agent(&tenant, new).await?;
            }
        }
        Some(password)
    } else {
        None
    };
    Ok(DemoTenant {
        widget,
        agent_email: DEMO_EMAIL.to_owned(),
        agent_password: password,
    })
}
