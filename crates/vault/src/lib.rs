//! Palisade's vault: named, versioned secrets (API keys, webhook secrets,
//! signing keys) sealed at rest with the owning tenant's data key, each with
//! a [`Policy`]: how often it should rotate, when a version expires, how long
//! a replaced version stays valid, and who may read it.
//!
//! Invariants:
//! - every read, write, rotation, listing and history request is written to
//!   the audit log with who, from where and why *before* it takes effect or
//!   a value is returned; if the audit entry cannot be written, nothing
//!   happens (fail closed);
//! - a read by a principal not in the secret's readers is refused and the
//!   refusal is audited;
//! - values are [`SecretValue`]s, which never print; listings and history
//!   never carry values.
//!
//! Operator reads from the command line are plain `operator` reads today; a
//! later MFA step-up will require a fresh second factor before
//! [`Vault::read`] accepts the `operator` principal.

mod policy;

pub use policy::{Policy, Principal};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use palisade_audit::{ActorKind, AuditError, Auditor, Event, Outcome};
use palisade_model::now_millis;
use palisade_store::{Store, StoreError, VaultSecretMeta, VaultVersionMeta, VaultWrite};
use zeroize::Zeroizing;

pub use palisade_store::PLATFORM_SCOPE;

/// A secret's bytes. Never printed; wiped on drop.
#[derive(Clone)]
pub struct SecretValue {
    pub version: i64,
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue(v{}, ***)", self.version)
    }
}

impl SecretValue {
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

/// Who is asking, from where, and why. The reason is recorded in the audit
/// log: it must describe the purpose, never contain a secret.
#[derive(Clone, Debug)]
pub struct Access {
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub principal: Principal,
    pub source: String,
    pub reason: String,
    pub request_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no secret {0:?} in this scope")]
    NotFound(String),
    #[error("{principal} may not read secret {name:?}; its readers are {readers:?}")]
    Denied {
        name: String,
        principal: String,
        readers: Vec<String>,
    },
    #[error("secret {name:?} version {version} expired; rotate it with `palisade vault rotate`")]
    Expired { name: String, version: i64 },
    #[error("secret names are 1 to 100 characters of a-z, 0-9, '.', '-' and '_'; {0:?} is not")]
    BadName(String),
    #[error("a reason of 1 to 200 characters is required for every vault access")]
    NoReason,
    #[error(
        "secret {0:?} has a stored policy that does not parse; it was changed outside Palisade"
    )]
    BadPolicy(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("vault storage: {0}")]
    Store(#[from] StoreError),
}

/// The vault over a store, auditing through an auditor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Vault {
    store: Store,
    audit: Auditor,
}

fn check_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(())
        .ok_or_else(|| VaultError::BadName(name.to_owned()))
}

fn check_reason(access: &Access) -> Result<(), VaultError> {
    let len = access.reason.trim().chars().count();
    (1..=200)
        .contains(&len)
        .then_some(())
        .ok_or(VaultError::NoReason)
}

fn millis(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Vault {
    pub fn new(store: Store, audit: Auditor) -> Self {
        Self { store, audit }
    }

    async fn audit(
        &self,
        access: &Access,
        scope: &str,
        action: &'static str,
        target: String,
        outcome: Outcome,
    ) -> Result<(), VaultError> {
        let event = Event {
            actor_kind: access.actor_kind,
            actor_id: access.actor_id.clone(),
            tenant_id: Some(scope.to_owned()),
            action,
            target: format!(
                "{target} (principal {}; reason: {})",
                access.principal,
                access.reason.trim()
            ),
            outcome,
            source: access.source.clone(),
            request_id: access.request_id.clone(),
        };
        self.audit.record(event).await?;
        Ok(())
    }

    async fn meta(&self, scope: &str, name: &str) -> Result<(VaultSecretMeta, Policy), VaultError> {
        let meta = self
            .store
            .vault_secret(scope, name)
            .await?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        let policy = Policy::from_json(&meta.policy)
            .ok_or_else(|| VaultError::BadPolicy(name.to_owned()))?;
        Ok((meta, policy))
    }

    /// Stores `value` as a new version (creating the secret with `policy`,
    /// or replacing its policy when given). The previous version stays valid
    /// for the policy's overlap.
    pub async fn write(
        &self,
        scope: &str,
        name: &str,
        value: &[u8],
        policy: Option<Policy>,
        access: &Access,
    ) -> Result<i64, VaultError> {
        check_name(name)?;
        check_reason(access)?;
        let existing = self.store.vault_secret(scope, name).await?;
        let policy = match (policy, &existing) {
            (Some(policy), _) => policy,
            (None, Some(meta)) => Policy::from_json(&meta.policy)
                .ok_or_else(|| VaultError::BadPolicy(name.to_owned()))?,
            (None, None) => Policy::default(),
        };
        let action = if existing.is_some() {
            "vault.rotate"
        } else {
            "vault.write"
        };
        // Fail closed: the write happens only once it is on record.
        self.audit(access, scope, action, name.to_owned(), Outcome::Started)
            .await?;
        let now = now_millis();
        let encoded = Zeroizing::new(STANDARD.encode(value));
        let write = VaultWrite {
            scope,
            name,
            policy: &policy.to_json(),
            value: &encoded,
            created_by: &format!("{}:{}", access.actor_kind.as_str(), access.actor_id),
            expires_at: policy
                .expire_after_secs
                .map(|s| now.saturating_add(millis(s))),
            previous_valid_until: now.saturating_add(millis(policy.overlap_secs)),
        };
        let result = self.store.vault_put(write).await;
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let version = result.as_ref().map_or(0, |v| *v);
        self.audit(access, scope, action, format!("{name} v{version}"), outcome)
            .await?;
        Ok(result?)
    }

    /// A new version of random bytes: for keys Palisade itself uses.
    pub async fn rotate_random(
        &self,
        scope: &str,
        name: &str,
        len: usize,
        access: &Access,
    ) -> Result<i64, VaultError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Corrupt(format!("no randomness from the OS: {e}")))?;
        self.write(scope, name, &bytes, None, access).await
    }

    /// The current version's value, if `access` may read it and it has not expired.
    pub async fn read(
        &self,
        scope: &str,
        name: &str,
        access: &Access,
    ) -> Result<SecretValue, VaultError> {
        Ok(self
            .read_versions(scope, name, access, false)
            .await?
            .remove(0))
    }

    /// The current value followed by replaced versions still inside their
    /// overlap window: for checking signatures made before a rotation.
    pub async fn read_valid(
        &self,
        scope: &str,
        name: &str,
        access: &Access,
    ) -> Result<Vec<SecretValue>, VaultError> {
        self.read_versions(scope, name, access, true).await
    }

    async fn read_versions(
        &self,
        scope: &str,
        name: &str,
        access: &Access,
        with_previous: bool,
    ) -> Result<Vec<SecretValue>, VaultError> {
        check_reason(access)?;
        let (meta, policy) = self.meta(scope, name).await?;
        if !policy.allows(&access.principal) {
            self.audit(
                access,
                scope,
                "vault.read",
                name.to_owned(),
                Outcome::Denied,
            )
            .await?;
            return Err(VaultError::Denied {
                name: name.to_owned(),
                principal: access.principal.to_string(),
                readers: policy.readers.clone(),
            });
        }
        let now = now_millis();
        let versions = self.store.vault_versions(scope, name).await?;
        let mut wanted = Vec::new();
        for version in versions {
            let current = version.version == meta.current_version;
            let in_overlap = version.valid_until.is_some_and(|until| until > now);
            if !(current || (with_previous && in_overlap)) {
                continue;
            }
            if version.expires_at.is_some_and(|at| at <= now) {
                if current {
                    self.audit(
                        access,
                        scope,
                        "vault.read",
                        name.to_owned(),
                        Outcome::Failure,
                    )
                    .await?;
                    return Err(VaultError::Expired {
                        name: name.to_owned(),
                        version: version.version,
                    });
                }
                continue;
            }
            wanted.push(version.version);
        }
        let listed = wanted
            .iter()
            .map(|v| format!("v{v}"))
            .collect::<Vec<_>>()
            .join(",");
        // Fail closed: no value leaves the vault unless the read is on record.
        self.audit(
            access,
            scope,
            "vault.read",
            format!("{name} {listed}"),
            Outcome::Success,
        )
        .await?;
        let mut values = Vec::with_capacity(wanted.len());
        for version in wanted {
            let encoded = Zeroizing::new(self.store.vault_open(scope, name, version).await?);
            let bytes = STANDARD.decode(encoded.as_bytes()).map_err(|_| {
                StoreError::Corrupt(format!("vault value {name} v{version} is not base64"))
            })?;
            values.push(SecretValue {
                version,
                bytes: Zeroizing::new(bytes),
            });
        }
        if values.is_empty() {
            return Err(VaultError::NotFound(name.to_owned()));
        }
        Ok(values)
    }

    /// The scope's secrets, without values, and whether each is due for rotation.
    pub async fn list(
        &self,
        scope: &str,
        access: &Access,
    ) -> Result<Vec<(VaultSecretMeta, Policy, bool)>, VaultError> {
        check_reason(access)?;
        self.audit(access, scope, "vault.list", String::new(), Outcome::Success)
            .await?;
        let now = now_millis();
        let mut out = Vec::new();
        for meta in self.store.vault_secrets(scope).await? {
            let policy = Policy::from_json(&meta.policy)
                .ok_or_else(|| VaultError::BadPolicy(meta.name.clone()))?;
            let due = policy
                .rotate_every_secs
                .is_some_and(|every| now >= meta.updated_at.saturating_add(millis(every)));
            out.push((meta, policy, due));
        }
        Ok(out)
    }

    /// A secret's versions, without values, newest first.
    pub async fn history(
        &self,
        scope: &str,
        name: &str,
        access: &Access,
    ) -> Result<Vec<VaultVersionMeta>, VaultError> {
        check_reason(access)?;
        self.meta(scope, name).await?;
        self.audit(
            access,
            scope,
            "vault.history",
            name.to_owned(),
            Outcome::Success,
        )
        .await?;
        Ok(self.store.vault_versions(scope, name).await?)
    }

    /// Deletes a secret with all its versions, for keys taken offline. Audited before it
    /// happens (fail closed); only an operator may do it.
    pub async fn destroy(
        &self,
        scope: &str,
        name: &str,
        access: &Access,
    ) -> Result<(), VaultError> {
        check_reason(access)?;
        self.meta(scope, name).await?;
        if access.principal != Principal::Operator {
            return Err(VaultError::Denied {
                name: name.to_owned(),
                principal: access.principal.to_string(),
                readers: vec!["operator".into()],
            });
        }
        self.audit(
            access,
            scope,
            "vault.destroy",
            name.to_owned(),
            Outcome::Started,
        )
        .await?;
        let deleted = self.store.vault_delete(scope, name).await;
        let outcome = if deleted.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.audit(access, scope, "vault.destroy", name.to_owned(), outcome)
            .await?;
        deleted?;
        Ok(())
    }

    /// True when the secret exists (metadata only; not audited as a read).
    pub async fn exists(&self, scope: &str, name: &str) -> Result<bool, VaultError> {
        Ok(self.store.vault_secret(scope, name).await?.is_some())
    }
}

/// How a platform secret was found at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Already in the vault.
    Stored,
    /// Imported from a key file of an older data directory (then removed).
    Imported,
    /// Made fresh: no vault entry and no key file.
    Generated,
}

/// Start-up access to a platform secret that the audit log itself needs (its
/// signing key), before an [`Auditor`] exists: the current value, importing
/// `legacy_file` or generating `len` random bytes when the vault has none.
/// The caller must record the returned access in the audit log as soon as
/// it can, and refuse to start if it cannot (see [`Vault::record_bootstrap`]).
pub async fn bootstrap_platform_secret(
    store: &Store,
    name: &str,
    legacy_file: &std::path::Path,
    len: usize,
    policy: &Policy,
) -> Result<(SecretValue, Origin), VaultError> {
    check_name(name)?;
    let scope = PLATFORM_SCOPE;
    if let Some(meta) = store.vault_secret(scope, name).await? {
        let encoded = Zeroizing::new(store.vault_open(scope, name, meta.current_version).await?);
        let bytes = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|_| StoreError::Corrupt(format!("vault value {name} is not base64")))?;
        let value = SecretValue {
            version: meta.current_version,
            bytes: Zeroizing::new(bytes),
        };
        return Ok((value, Origin::Stored));
    }
    let (bytes, origin) = match std::fs::read(legacy_file) {
        Ok(bytes) if bytes.len() == len => (Zeroizing::new(bytes), Origin::Imported),
        Ok(bytes) => {
            return Err(StoreError::Corrupt(format!(
                "key file {} holds {} bytes, expected {len}; fix or remove it",
                legacy_file.display(),
                bytes.len()
            ))
            .into());
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = Zeroizing::new(vec![0u8; len]);
            getrandom::fill(&mut bytes)
                .map_err(|e| StoreError::Corrupt(format!("no randomness from the OS: {e}")))?;
            (bytes, Origin::Generated)
        }
        Err(err) => {
            return Err(StoreError::Corrupt(format!(
                "reading key file {}: {err}",
                legacy_file.display()
            ))
            .into());
        }
    };
    let encoded = Zeroizing::new(STANDARD.encode(&bytes[..]));
    let version = store
        .vault_put(VaultWrite {
            scope,
            name,
            policy: &policy.to_json(),
            value: &encoded,
            created_by: "system:bootstrap",
            expires_at: None,
            previous_valid_until: now_millis(),
        })
        .await;
    let version = match version {
        Ok(version) => version,
        // Another process bootstrapped it first: use theirs.
        Err(_) if store.vault_secret(scope, name).await?.is_some() => {
            return Box::pin(bootstrap_platform_secret(
                store,
                name,
                legacy_file,
                len,
                policy,
            ))
            .await;
        }
        Err(err) => return Err(err.into()),
    };
    if origin == Origin::Imported {
        remove_imported(legacy_file);
    }
    let value = SecretValue { version, bytes };
    Ok((value, origin))
}

/// Removes a key file whose content now lives in the vault, so no plaintext
/// copy stays on disk. A failure is reported, not fatal: the vault is the
/// source of truth from now on.
fn remove_imported(path: &std::path::Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(
            file = %path.display(),
            error = %err,
            "key file imported into the vault but not removed; delete it by hand"
        );
    }
}

/// Start-up access to a platform secret once the audit log works: imports
/// `legacy_file` (then removes it) or generates `len` random bytes when the
/// vault has no such secret, then reads the values still valid (current
/// first), all audited as `access`.
pub async fn ensure_platform_secret(
    vault: &Vault,
    name: &str,
    legacy_file: &std::path::Path,
    len: usize,
    policy: Policy,
    access: &Access,
) -> Result<(Vec<SecretValue>, Origin), VaultError> {
    let scope = PLATFORM_SCOPE;
    let origin = if vault.exists(scope, name).await? {
        Origin::Stored
    } else {
        match std::fs::read(legacy_file) {
            Ok(bytes) if bytes.len() == len => {
                let bytes = Zeroizing::new(bytes);
                let mut import = access.clone();
                import.reason = format!("import of key file {}", legacy_file.display());
                vault
                    .write(scope, name, &bytes, Some(policy), &import)
                    .await?;
                remove_imported(legacy_file);
                Origin::Imported
            }
            Ok(bytes) => {
                return Err(StoreError::Corrupt(format!(
                    "key file {} holds {} bytes, expected {len}; fix or remove it",
                    legacy_file.display(),
                    bytes.len()
                ))
                .into());
            }
            Err(_) => {
                let mut bytes = Zeroizing::new(vec![0u8; len]);
                getrandom::fill(&mut bytes)
                    .map_err(|e| StoreError::Corrupt(format!("no randomness from the OS: {e}")))?;
                let mut create = access.clone();
                create.reason = "generated at first start".into();
                vault
                    .write(scope, name, &bytes, Some(policy), &create)
                    .await?;
                Origin::Generated
            }
        }
    };
    Ok((vault.read_valid(scope, name, access).await?, origin))
}

impl Vault {
    /// Records a start-up access made by [`bootstrap_platform_secret`].
    pub async fn record_bootstrap(
        &self,
        name: &str,
        version: i64,
        origin: Origin,
        access: &Access,
    ) -> Result<(), VaultError> {
        let scope = PLATFORM_SCOPE;
        if origin != Origin::Stored {
            let what = match origin {
                Origin::Imported => "imported from its key file",
                _ => "generated at first start",
            };
            self.audit(
                access,
                scope,
                "vault.write",
                format!("{name} v{version} {what}"),
                Outcome::Success,
            )
            .await?;
        }
        self.audit(
            access,
            scope,
            "vault.read",
            format!("{name} v{version}"),
            Outcome::Success,
        )
        .await
    }
}
