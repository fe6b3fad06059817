//! Provisioning a tenant: the tenant, its first widget and its owner
//! account, created once and reused after. `palisade demo` provisions the
//! demo tenant; `palisade tenant create` any other.

use palisade_identity::{PasswordHasher, SecretString, random_token};
use palisade_model::{DisplayName, Email, Role, Widget};
use palisade_store::{NewAgent, NewWidget, Store};

pub const DEMO_EMAIL: &str = "agent@demo.palisade.test";

/// What to provision.
#[derive(Debug)]
pub struct TenantPlan<'a> {
    /// Lowercase letters, digits and '-', 1 to 40 characters.
    pub slug: &'a str,
    pub name: &'a str,
    pub owner_email: &'a str,
    pub owner_name: &'a str,
    /// Origins whose pages may frame the widget.
    pub allowed_origins: Vec<String>,
    /// Give an existing owner a new password.
    pub new_password: bool,
}

/// What was provisioned.
#[derive(Debug)]
pub struct Provisioned {
    pub widget: Widget,
    pub owner_email: String,
    /// Set only when the password was (re)made in this run: it is shown once.
    pub owner_password: Option<SecretString>,
}

fn checked_origin(origin: &str) -> anyhow::Result<String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let ok = rest.is_some_and(|host| {
        !host.is_empty()
            && !host.contains('/')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":.-[]".contains(c))
    });
    if !ok {
        anyhow::bail!(
            "allowed origin {origin:?} must look like https://shop.example.com (no path)"
        );
    }
    Ok(origin.to_owned())
}

/// Creates the tenant, a widget and the owner unless they exist.
pub async fn provision(
    store: &Store,
    passwords: &PasswordHasher,
    plan: TenantPlan<'_>,
) -> anyhow::Result<Provisioned> {
    let slug_ok = (1..=40).contains(&plan.slug.len())
        && plan
            .slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !slug_ok {
        anyhow::bail!(
            "tenant slug {:?} must be 1 to 40 of a-z, 0-9 and '-'",
            plan.slug
        );
    }
    let name = DisplayName::parse(plan.name).map_err(|e| anyhow::anyhow!("tenant name: {e}"))?;
    let owner_name =
        DisplayName::parse(plan.owner_name).map_err(|e| anyhow::anyhow!("owner name: {e}"))?;
    let email = Email::parse(plan.owner_email).map_err(|e| anyhow::anyhow!("owner email: {e}"))?;
    let origins = plan
        .allowed_origins
        .iter()
        .map(|o| checked_origin(o))
        .collect::<Result<Vec<_>, _>>()?;

    let tenant = store.ensure_tenant(plan.slug, name.as_str()).await?;
    let widget = match store.widgets(&tenant).await?.into_iter().next() {
        Some(widget) => widget,
        None => {
            let key = format!("pk_{}", random_token(18).expose());
            let new = NewWidget {
                name: name.as_str(),
                public_key: &key,
                allowed_origins: &origins,
                greeting: "Hi! How can we help you today?",
            };
            store.create_widget(&tenant, new).await?
        }
    };
    let existing = store.agent_credentials(&email).await?;
    if let Some(found) = &existing
        && found.agent.tenant_id != tenant
    {
        anyhow::bail!("{} already belongs to another tenant", plan.owner_email);
    }
    let password = if existing.is_none() || plan.new_password {
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
                    name: owner_name.as_str(),
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
    Ok(Provisioned {
        widget,
        owner_email: email.as_str().to_owned(),
        owner_password: password,
    })
}

/// The demo tenant, whose widget may be framed by Palisade's own demo page.
pub async fn ensure(
    store: &Store,
    passwords: &PasswordHasher,
    public_origin: &str,
    new_password: bool,
) -> anyhow::Result<Provisioned> {
    let plan = TenantPlan {
        slug: "demo",
        name: "Demo Shop",
        owner_email: DEMO_EMAIL,
        owner_name: "Demo Agent",
        allowed_origins: vec![public_origin.to_owned()],
        new_password,
    };
    provision(store, passwords, plan).await
}
