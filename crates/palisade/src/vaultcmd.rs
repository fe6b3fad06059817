//! `palisade vault ...`: operator access to the vault. Every command states
//! a reason, which goes into the audit log with the operator's name. Values
//! are read from a file or standard input, never from the command line
//! (where other users could see them in the process list).
//!
//! An operator `get` is a plain operator read today. The design leaves room
//! for an MFA step-up: the `operator` principal is granted in one place
//! ([`operator_access`]), which will require a fresh second factor first.

use crate::config::Config;
use anyhow::Context;
use palisade_audit::ActorKind;
use palisade_store::Store;
use palisade_vault::{Access, PLATFORM_SCOPE, Policy, Principal};
use zeroize::Zeroizing;

/// Where a secret lives: a tenant (by slug), or the platform.
#[derive(Clone, Debug, Default)]
pub struct Scope(pub Option<String>);

/// One vault command.
#[derive(Debug)]
pub enum VaultCommand {
    /// Store a value as a new version (creating the secret).
    Put {
        scope: Scope,
        name: String,
        value: Zeroizing<Vec<u8>>,
        policy: Option<Policy>,
    },
    /// Print the current value.
    Get {
        scope: Scope,
        name: String,
    },
    /// A new version: the given value, or `generate` random bytes.
    Rotate {
        scope: Scope,
        name: String,
        value: Option<Zeroizing<Vec<u8>>>,
        generate: usize,
    },
    List {
        scope: Scope,
    },
    History {
        scope: Scope,
        name: String,
    },
}

/// What a command produced: text for the operator, or a secret's bytes.
#[derive(Debug)]
pub enum VaultOutput {
    Text(String),
    Value(palisade_vault::SecretValue),
}

/// The operator's access for this command.
pub(crate) fn operator_access(reason: &str) -> Access {
    Access {
        actor_kind: ActorKind::Operator,
        actor_id: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into()),
        principal: Principal::Operator,
        source: "cli".into(),
        reason: reason.into(),
        request_id: uuid::Uuid::new_v4().simple().to_string(),
    }
}

async fn scope_id(store: &Store, scope: &Scope) -> anyhow::Result<String> {
    match &scope.0 {
        None => Ok(PLATFORM_SCOPE.to_owned()),
        Some(slug) => Ok(store
            .tenant_by_slug(slug)
            .await
            .context("looking up the tenant")?
            .with_context(|| format!("no tenant with slug {slug:?}; check --tenant"))?
            .as_str()
            .to_owned()),
    }
}

/// A time for people: RFC 3339 in UTC, to the second.
fn day(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Runs `command` for the stated `reason`.
pub async fn run(
    config: &Config,
    command: VaultCommand,
    reason: &str,
) -> anyhow::Result<VaultOutput> {
    let store = crate::app::open_store(config, 2).await?;
    let (_, vault) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let access = operator_access(reason);
    let out = match command {
        VaultCommand::Put {
            scope,
            name,
            value,
            policy,
        } => {
            let scope = scope_id(&store, &scope).await?;
            refuse_own_key(&scope, &name, "chosen values or new readers")?;
            let version = vault.write(&scope, &name, &value, policy, &access).await?;
            VaultOutput::Text(format!("stored {name} version {version}"))
        }
        VaultCommand::Get { scope, name } => {
            let scope = scope_id(&store, &scope).await?;
            VaultOutput::Value(vault.read(&scope, &name, &access).await?)
        }
        VaultCommand::Rotate {
            scope,
            name,
            value,
            generate,
        } => {
            let scope = scope_id(&store, &scope).await?;
            if value.is_some() {
                refuse_own_key(&scope, &name, "chosen values (rotate without --value-file)")?;
            }
            let version = match value {
                Some(value) => vault.write(&scope, &name, &value, None, &access).await?,
                None => {
                    vault
                        .rotate_random(&scope, &name, generate, &access)
                        .await?
                }
            };
            VaultOutput::Text(format!(
                "rotated {name} to version {version}; the previous version stays valid for the \
                 policy's overlap (servers pick the new version up at their next start)"
            ))
        }
        VaultCommand::List { scope } => {
            let scope = scope_id(&store, &scope).await?;
            let mut text = String::from("name\tversion\tupdated\trotation due\treaders");
            for (meta, policy, due) in vault.list(&scope, &access).await? {
                text.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}",
                    meta.name,
                    meta.current_version,
                    day(meta.updated_at),
                    if due { "yes" } else { "no" },
                    policy.readers.join(",")
                ));
            }
            VaultOutput::Text(text)
        }
        VaultCommand::History { scope, name } => {
            let scope = scope_id(&store, &scope).await?;
            let mut text = String::from("version\tcreated\tby\texpires\tvalid until");
            for v in vault.history(&scope, &name, &access).await? {
                text.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}",
                    v.version,
                    day(v.created_at),
                    v.created_by,
                    v.expires_at.map_or("never".into(), day),
                    v.valid_until.map_or("current".into(), day),
                ));
            }
            VaultOutput::Text(text)
        }
    };
    store.close().await;
    Ok(out)
}

/// Palisade's own keys (visitor-token HMAC, audit signing) are made by
/// Palisade from the operating system's randomness and read only by it: an
/// operator may rotate them to fresh random values, never set one or change
/// who reads it.
fn refuse_own_key(scope: &str, name: &str, what: &str) -> anyhow::Result<()> {
    let own = [
        crate::app::AUDIT_SIGNING_KEY,
        crate::app::VISITOR_TOKEN_KEY,
        crate::pkicmd::ROOT_KEY,
        crate::pkicmd::INTERMEDIATE_KEY,
    ];
    if scope == palisade_store::PLATFORM_SCOPE && own.contains(&name) {
        anyhow::bail!("{name} is Palisade's own key: it takes no {what}");
    }
    Ok(())
}
