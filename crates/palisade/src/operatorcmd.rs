//! `palisade operator create`: makes a platform operator account (role
//! `operator`, in the tenant `platform`) with a one-time password. The
//! operator must set up a second factor at first sign-in, and may then
//! list and create tenants; an operator never reads a tenant's
//! conversations.

use crate::config::Config;
use anyhow::Context;
use palisade_audit::{ActorKind, Event, Outcome};
use palisade_identity::{PasswordHasher, SecretString, random_token};
use palisade_model::{DisplayName, Email, Role};
use palisade_store::NewAgent;

/// The tenant operator accounts belong to.
pub const PLATFORM_TENANT: &str = "platform";

/// Creates the operator and returns its one-time password.
pub async fn create(config: &Config, email: &str, name: &str) -> anyhow::Result<SecretString> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("operator email: {e}"))?;
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("operator name: {e}"))?;
    let store = crate::app::open_store(config, 2).await?;
    let (auditor, _) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let event = |outcome| Event {
        actor_kind: ActorKind::Operator,
        actor_id: crate::keycmd::operator(),
        tenant_id: None,
        action: "operator.create",
        target: email.as_str().to_owned(),
        outcome,
        source: "cli".into(),
        request_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    // Fail closed: no account unless its creation is on record.
    auditor.record(event(Outcome::Started)).await?;
    let created = async {
        if store.agent_credentials(&email).await?.is_some() {
            anyhow::bail!("{} already has an account", email.as_str());
        }
        let tenant = store
            .ensure_tenant(PLATFORM_TENANT, "Platform operators")
            .await?;
        let password = random_token(15);
        let hasher = PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;
        let hash = hasher
            .hash(password.expose())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let new = NewAgent {
            email: &email,
            name: name.as_str(),
            role: Role::Operator,
            password_hash: &hash,
        };
        store.create_agent(&tenant, new).await?;
        Ok(password)
    }
    .await;
    let outcome = if created.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    auditor
        .record(event(outcome))
        .await
        .context("the audit entry of the operator's creation could not be written")?;
    store.close().await;
    created
}
