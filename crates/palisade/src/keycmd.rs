//! `palisade keys ...`: operator commands for envelope encryption. They open
//! the same database and master key as the server and are safe while it
//! runs: a data-key rotation is seen by the server's next write batch, and a
//! master-key rotation by the server's next data-key load (it re-reads the
//! key file). They print key ids and versions, never key bytes.

use crate::config::Config;
use anyhow::Context;
use palisade_audit::{ActorKind, Event, Outcome};

/// What to do with the keys.
#[derive(Debug, Clone)]
pub enum KeyCommand {
    /// Wrap every data key with a new master key.
    RotateMaster,
    /// Give a tenant a new active data key.
    RotateData { tenant: String },
    /// Delete a tenant's retired data keys no row uses any more.
    Purge { tenant: String },
    /// List a tenant's data-key versions.
    Status { tenant: String },
}

/// Runs `command` and returns what to print.
pub async fn run(config: &Config, command: KeyCommand) -> anyhow::Result<String> {
    let store = crate::app::open_store(config, 2).await?;
    let (auditor, _) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let audited = match &command {
        KeyCommand::RotateMaster => Some(("keys.rotate_master", "master key".to_owned())),
        KeyCommand::RotateData { tenant } => Some(("keys.rotate_data", tenant.clone())),
        KeyCommand::Purge { tenant } => Some(("keys.purge", tenant.clone())),
        KeyCommand::Status { .. } => None,
    };
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let event = |action: &'static str, target: &str, outcome| Event {
        actor_kind: ActorKind::Operator,
        actor_id: operator(),
        tenant_id: None,
        action,
        target: target.to_owned(),
        outcome,
        source: "cli".into(),
        request_id: request_id.clone(),
    };
    // Fail closed: nothing rotates unless the attempt is on record.
    if let Some((action, target)) = &audited {
        auditor
            .record(event(action, target, Outcome::Started))
            .await?;
    }
    let result = run_on(&store, command).await;
    if let Some((action, target)) = &audited {
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        auditor
            .record(event(action, target, outcome))
            .await
            .context("the keys changed, but the audit entry saying so could not be written")?;
    }
    store.close().await;
    result
}

/// Who runs the command, as the operating system names them.
pub(crate) fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

async fn run_on(store: &palisade_store::Store, command: KeyCommand) -> anyhow::Result<String> {
    let tenant_of = |slug: String| async move {
        store
            .tenant_by_slug(&slug)
            .await
            .context("looking up the tenant")?
            .with_context(|| format!("no tenant with slug {slug:?}; check --tenant"))
    };
    Ok(match command {
        KeyCommand::RotateMaster => {
            let before = store.master_key_id();
            let report = store
                .rotate_master_key()
                .await
                .context("rotating the master key")?;
            format!(
                "master key rotated: {before} -> {} ({} data keys rewrapped; no message was \
                 re-encrypted)",
                report.master_key_id, report.rewrapped
            )
        }
        KeyCommand::RotateData { tenant } => {
            let id = tenant_of(tenant.clone()).await?;
            let version = store
                .rotate_data_key(&id)
                .await
                .context("rotating the data key")?;
            format!(
                "tenant {tenant}: data key version {version} is now active; older versions stay readable"
            )
        }
        KeyCommand::Purge { tenant } => {
            let id = tenant_of(tenant.clone()).await?;
            let now = palisade_model::now_millis();
            let purged = store
                .purge_retired_data_keys(&id, now)
                .await
                .context("purging retired data keys")?;
            if purged.is_empty() {
                format!("tenant {tenant}: no retired data key is unused yet")
            } else {
                format!("tenant {tenant}: purged data key versions {purged:?}")
            }
        }
        KeyCommand::Status { tenant } => {
            let id = tenant_of(tenant.clone()).await?;
            let versions = store
                .data_key_versions(&id)
                .await
                .context("listing data keys")?;
            let mut out = format!("master key {}\ntenant {tenant}:", store.master_key_id());
            for (version, active) in versions {
                let state = if active { "active" } else { "retired" };
                out.push_str(&format!("\n  version {version}: {state}"));
            }
            out
        }
    })
}
