//! The partner PKI from the operator's side: `palisade pki init | issue-partner | revoke |
//! list | export-root-key | remove-root-key | reissue-server`, and the loaders the server
//! uses at start.
//!
//! Both CA keys live only in the vault (platform scope): the root key is read by operators
//! alone (to export it for offline keeping, then remove it), the intermediate key by the
//! server (`system:pki`) to issue and to sign the CRL. The CA certificates are public and
//! kept in the database. The CLI and the server share the database, so a revocation made
//! here reaches a running server at its next watch tick.

use crate::config::{Config, TlsSource};
use anyhow::Context;
use palisade_audit::{ActorKind, Event, Outcome};
use palisade_gateway::partner::{ClientTrust, IssueRequest, Partners};
use palisade_pki::partner::{IssuingCa, KeyPem};
use palisade_store::{PLATFORM_SCOPE, Store};
use palisade_vault::{Access, Policy, Vault};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The vault name of the partner root CA's key.
pub const ROOT_KEY: &str = "pki.partner-root-key";
/// The vault name of the intermediate issuing CA's key.
pub const INTERMEDIATE_KEY: &str = "pki.partner-intermediate-key";

/// One `palisade pki` command.
#[derive(Debug)]
pub enum PkiCommand {
    Init,
    IssuePartner {
        tenant: String,
        partner: String,
        days: Option<u32>,
        out_dir: PathBuf,
    },
    Revoke {
        serial: String,
    },
    List {
        tenant: Option<String>,
    },
    ExportRootKey {
        out: PathBuf,
    },
    RemoveRootKey {
        exported: PathBuf,
    },
    ReissueServer,
}

fn operator(reason: &str) -> Access {
    crate::vaultcmd::operator_access(reason)
}

async fn audit(
    vault_access: &Access,
    audit: &palisade_audit::Auditor,
    action: &'static str,
    target: &str,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let event = Event {
        actor_kind: vault_access.actor_kind,
        actor_id: vault_access.actor_id.clone(),
        tenant_id: None,
        action,
        target: target.to_owned(),
        outcome,
        source: vault_access.source.clone(),
        request_id: vault_access.request_id.clone(),
    };
    audit.record(event).await.context("writing the audit log")?;
    Ok(())
}

/// Creates the root and intermediate CAs, once. The demo calls this at every start.
pub async fn init(
    store: &Store,
    vault: &Vault,
    auditor: &palisade_audit::Auditor,
    access: &Access,
) -> anyhow::Result<bool> {
    if store.pki_authority("intermediate").await?.is_some() {
        return Ok(false);
    }
    audit(
        access,
        auditor,
        "pki.init",
        "partner root and intermediate",
        Outcome::Started,
    )
    .await?;
    let hierarchy = palisade_pki::partner::create_hierarchy(time::OffsetDateTime::now_utc())
        .context("creating the partner CAs")?;
    let root_policy = Policy {
        readers: vec!["operator".into()],
        ..Policy::default()
    };
    let issuing_policy = Policy {
        readers: vec!["system:pki".into()],
        ..Policy::default()
    };
    // Keys first: certificates without keys would be a PKI nobody can use.
    let root_key = hierarchy.root.key_pem.expose().as_bytes();
    vault
        .write(
            PLATFORM_SCOPE,
            ROOT_KEY,
            root_key,
            Some(root_policy),
            access,
        )
        .await
        .context("sealing the root key in the vault")?;
    let issuing_key = hierarchy.intermediate.key_pem.expose().as_bytes();
    vault
        .write(
            PLATFORM_SCOPE,
            INTERMEDIATE_KEY,
            issuing_key,
            Some(issuing_policy),
            access,
        )
        .await
        .context("sealing the intermediate key in the vault")?;
    for (name, cert) in [
        ("root", &hierarchy.root.cert_pem),
        ("intermediate", &hierarchy.intermediate.cert_pem),
    ] {
        let not_after =
            palisade_pki::partner::not_after_of(cert).context("reading a new CA certificate")?;
        store
            .add_pki_authority(name, cert, palisade_gateway::partner::millis(not_after))
            .await
            .with_context(|| format!("recording the {name} certificate"))?;
    }
    audit(
        access,
        auditor,
        "pki.init",
        "partner root and intermediate",
        Outcome::Success,
    )
    .await?;
    Ok(true)
}

/// The intermediate issuing CA, if the partner PKI exists: its key read from the vault (an
/// audited read by `access`).
pub async fn load_issuing(
    store: &Store,
    vault: &Vault,
    access: &Access,
) -> anyhow::Result<Option<IssuingCa>> {
    let Some((cert_pem, _)) = store.pki_authority("intermediate").await? else {
        return Ok(None);
    };
    let key = vault
        .read(PLATFORM_SCOPE, INTERMEDIATE_KEY, access)
        .await
        .context("reading the intermediate key from the vault")?;
    let key = KeyPem::new(
        String::from_utf8(key.expose().to_vec()).context("the intermediate key is not PEM text")?,
    );
    Ok(Some(IssuingCa::load(&cert_pem, &key)?))
}

/// What the listener trusts for partner certificates: the root, and a CRL of the
/// revoked, unexpired certificates signed now by `ca`.
pub async fn client_trust(store: &Store, ca: &IssuingCa) -> anyhow::Result<Option<ClientTrust>> {
    use rustls::pki_types::pem::PemObject;
    let Some((root_pem, _)) = store.pki_authority("root").await? else {
        return Ok(None);
    };
    let now = palisade_model::now_millis();
    let revoked = store.revoked_partner_certs(now).await?;
    let revoked: Vec<_> = revoked
        .into_iter()
        .map(|(serial, at)| {
            let at = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            (serial, at)
        })
        .collect();
    let number = u64::try_from(now).unwrap_or(1);
    let crl = ca.crl(&revoked, number, time::OffsetDateTime::now_utc())?;
    let root = rustls::pki_types::CertificateDer::from_pem_slice(root_pem.as_bytes())
        .context("the stored partner root certificate is not PEM")?;
    Ok(Some(ClientTrust {
        root,
        crl: crl.into(),
    }))
}

/// A time for people: RFC 3339 in UTC.
fn day(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Writes a new file (refusing to overwrite one) with `mode`.
fn write_new(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `palisade pki init` on an open store, for the demo: true when the PKI was created now.
pub async fn run_init(config: &Config, store: &Store) -> anyhow::Result<bool> {
    let (auditor, vault) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let access = crate::app::system_access("pki", "create the partner PKI for the demo", "cli");
    init(store, &vault, &auditor, &access).await
}

/// Runs one command and returns what to print.
pub async fn run(config: &Config, command: PkiCommand) -> anyhow::Result<String> {
    let store = crate::app::open_store(config, 2).await?;
    let result = run_on(config, &store, command).await;
    store.close().await;
    result
}

async fn run_on(config: &Config, store: &Store, command: PkiCommand) -> anyhow::Result<String> {
    let (auditor, vault) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    match command {
        PkiCommand::Init => {
            let access = operator("create the partner PKI");
            Ok(if init(store, &vault, &auditor, &access).await? {
                "partner PKI created: root and intermediate CA; both keys are sealed in the vault. \
                 Export the root key (palisade pki export-root-key --out FILE), keep it offline, \
                 then remove it (palisade pki remove-root-key --exported FILE)."
                    .into()
            } else {
                "the partner PKI already exists; nothing was changed".into()
            })
        }
        PkiCommand::IssuePartner {
            tenant,
            partner,
            days,
            out_dir,
        } => {
            let tenant_id = store
                .tenant_by_slug(&tenant)
                .await?
                .with_context(|| format!("no tenant with slug {tenant:?}; check --tenant"))?;
            let access = crate::app::system_access("pki", "issue a partner certificate", "cli");
            let ca = load_issuing(store, &vault, &access)
                .await?
                .context("the partner PKI does not exist yet; run `palisade pki init`")?;
            let pki = &config.pki;
            let partners = Partners::new(
                pki.partner_cert_days,
                pki.partner_cert_max_days,
                pki.expiry_warning_days,
            );
            partners.set_ca(ca);
            let op = operator("issue a partner certificate");
            let target = format!("partner {partner} of {tenant}");
            audit(
                &op,
                &auditor,
                "partner.certificate.issue",
                &target,
                Outcome::Started,
            )
            .await?;
            let request = IssueRequest {
                tenant: &tenant_id,
                partner: &partner,
                days,
                renewal: None,
            };
            let issued = partners.issue(store, request).await;
            let issued = match issued {
                Ok(issued) => issued,
                Err(err) => {
                    audit(
                        &op,
                        &auditor,
                        "partner.certificate.issue",
                        &target,
                        Outcome::Failure,
                    )
                    .await?;
                    return Err(err.into());
                }
            };
            audit(
                &op,
                &auditor,
                "partner.certificate.issue",
                &format!("{target} serial {}", issued.serial),
                Outcome::Success,
            )
            .await?;
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let key = issued
                .key_pem
                .as_ref()
                .context("a new certificate comes with a key")?;
            let cert_file = out_dir.join(format!("{partner}.pem"));
            let key_file = out_dir.join(format!("{partner}-key.pem"));
            write_new(&cert_file, &issued.cert_pem, 0o644)?;
            write_new(&key_file, key.expose(), 0o600)?;
            // The CA of the server's own certificate, for the partner's --cacert, when the
            // internal CA made it (operators' own certificates come with their own chain).
            let server_ca = out_dir.join("palisade-ca.pem");
            let ca_pem = std::fs::read_to_string(config.data_dir.join("tls").join("ca.pem")).ok();
            let ca_line = match ca_pem {
                Some(ca_pem) => {
                    write_new(&server_ca, &ca_pem, 0o644)?;
                    format!(
                        "\n  server CA for --cacert:              {}",
                        server_ca.display()
                    )
                }
                None => String::new(),
            };
            Ok(format!(
                "issued serial {serial} for partner {partner} of tenant {tenant}, valid until {until}\n  \
                 certificate (with the intermediate): {cert}\n  key (mode 0600):                    {key}{ca_line}",
                serial = issued.serial,
                until = day(palisade_gateway::partner::millis(issued.not_after)),
                cert = cert_file.display(),
                key = key_file.display(),
            ))
        }
        PkiCommand::Revoke { serial } => {
            if !palisade_pki::partner::is_serial(&serial) {
                anyhow::bail!("--serial must be the lower-case hex shown by `palisade pki list`");
            }
            let op = operator("revoke a partner certificate");
            audit(
                &op,
                &auditor,
                "partner.certificate.revoke",
                &serial,
                Outcome::Started,
            )
            .await?;
            let revoked = store
                .revoke_partner_cert(None, &serial, palisade_model::now_millis())
                .await?;
            let outcome = if revoked.is_some() {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            audit(
                &op,
                &auditor,
                "partner.certificate.revoke",
                &serial,
                outcome,
            )
            .await?;
            let record =
                revoked.with_context(|| format!("no partner certificate with serial {serial}"))?;
            Ok(format!(
                "revoked {serial} (partner {}); running servers refuse it from their next watch tick \
                 and close its open connections",
                record.partner
            ))
        }
        PkiCommand::List { tenant } => {
            let tenant_id =
                match &tenant {
                    Some(slug) => Some(store.tenant_by_slug(slug).await?.with_context(|| {
                        format!("no tenant with slug {slug:?}; check --tenant")
                    })?),
                    None => None,
                };
            let now = palisade_model::now_millis();
            let window = i64::from(config.pki.expiry_warning_days) * 86_400_000;
            let mut out = String::from("serial\ttenant\tpartner\tnot after\tstatus");
            for (name, label) in [("root", "(root CA)"), ("intermediate", "(intermediate CA)")] {
                if let Some((_, not_after)) = store.pki_authority(name).await? {
                    out.push_str(&format!("\n-\t-\t{label}\t{}\t-", day(not_after)));
                }
            }
            for r in store.partner_certs(tenant_id.as_ref()).await? {
                let status = match r.revoked_at {
                    Some(_) => "revoked",
                    None if r.not_after <= now => "expired",
                    None if r.not_after <= now + window => "expiring soon",
                    None => "valid",
                };
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{status}",
                    r.serial,
                    r.tenant_id,
                    r.partner,
                    day(r.not_after)
                ));
            }
            Ok(out)
        }
        PkiCommand::ExportRootKey { out } => {
            let op = operator("export the partner root key for offline keeping");
            let key = vault.read(PLATFORM_SCOPE, ROOT_KEY, &op).await.context(
                "reading the root key from the vault (already removed? it is kept offline then)",
            )?;
            let text =
                String::from_utf8(key.expose().to_vec()).context("the root key is not PEM text")?;
            write_new(&out, &text, 0o600)?;
            Ok(format!(
                "wrote the root key to {} (mode 0600); keep it offline, then run \
                 `palisade pki remove-root-key --exported {}`",
                out.display(),
                out.display()
            ))
        }
        PkiCommand::RemoveRootKey { exported } => {
            let (root_pem, _) = store
                .pki_authority("root")
                .await?
                .context("the partner PKI does not exist yet")?;
            let text = std::fs::read_to_string(&exported)
                .with_context(|| format!("reading the exported key {}", exported.display()))?;
            if !palisade_pki::partner::key_matches_cert(&root_pem, &text) {
                anyhow::bail!(
                    "{} does not hold the partner root key; the vault copy was kept",
                    exported.display()
                );
            }
            let op = operator("remove the partner root key after exporting it");
            vault.destroy(PLATFORM_SCOPE, ROOT_KEY, &op).await?;
            Ok("removed the partner root key from the vault; the exported file is now its only copy".into())
        }
        PkiCommand::ReissueServer => {
            let TlsSource::InternalCa { names } = &config.tls else {
                anyhow::bail!(
                    "the server certificate comes from the operator's files (tls.cert_file); replace those files instead"
                );
            };
            let op = operator("re-issue the server certificate");
            audit(
                &op,
                &auditor,
                "pki.server.reissue",
                "server certificate",
                Outcome::Started,
            )
            .await?;
            let material = palisade_pki::reissue_server(&config.data_dir.join("tls"), names)
                .context("re-issuing the server certificate")?;
            audit(
                &op,
                &auditor,
                "pki.server.reissue",
                "server certificate",
                Outcome::Success,
            )
            .await?;
            let until = material.server_cert_not_after()?;
            Ok(format!(
                "issued a new server certificate, valid until {until}; running servers load it at their next watch tick"
            ))
        }
    }
}

/// The partner settings the gateway needs, from the config.
pub fn partners(config: &Config) -> Partners {
    let pki = &config.pki;
    Partners::new(
        pki.partner_cert_days,
        pki.partner_cert_max_days,
        pki.expiry_warning_days,
    )
}

/// Whether `kind` is the partner actor kind (for the refusal task's events).
pub fn partner_actor() -> ActorKind {
    ActorKind::Partner
}
