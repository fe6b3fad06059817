//! `palisade audit ...`: verifying and exporting the audit log. Verifying
//! the database needs the installation; verifying an export needs only the
//! file and the public key, so it can run on another machine.

use crate::config::Config;
use anyhow::{Context, bail};
use palisade_audit::{Problem, PublicKey};
use std::path::Path;

/// The verdict: how many entries were checked and what is wrong with them.
#[derive(Debug)]
pub struct Verdict {
    pub entries: i64,
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// The report an operator reads; `Err` when the log is not intact.
    pub fn into_result(self) -> anyhow::Result<String> {
        if self.problems.is_empty() {
            return Ok(format!(
                "audit log intact: {} entries verified",
                self.entries
            ));
        }
        let mut report = format!(
            "audit log NOT intact ({} entries read, {} problems):",
            self.entries,
            self.problems.len()
        );
        for problem in &self.problems {
            report.push_str(&format!("\n  - {problem}"));
        }
        bail!(report)
    }
}

fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading public key file {}", path.display()))?;
    PublicKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Verifies the installation's log, with `public_key` if given, else the
/// public half of the installation's own signing key.
pub async fn verify_installation(
    config: &Config,
    public_key: Option<&Path>,
) -> anyhow::Result<Verdict> {
    let store = crate::app::open_store(config, 2).await?;
    let (auditor, _) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let key = match public_key {
        Some(path) => read_public_key(path)?,
        None => auditor.public_key(),
    };
    let (entries, problems) = palisade_audit::verify_store(&store, &key)
        .await
        .context("reading the audit log")?;
    store.close().await;
    Ok(Verdict { entries, problems })
}

/// Verifies an export file offline.
pub fn verify_export(file: &Path, public_key: &Path) -> anyhow::Result<Verdict> {
    let key = read_public_key(public_key)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading export {}", file.display()))?;
    let (records, checkpoints, witnesses) = match palisade_audit::parse_export(&text) {
        Ok(parsed) => parsed,
        Err(err) => bail!("audit export {} NOT intact: {err}", file.display()),
    };
    let problems = palisade_audit::verify(&records, &checkpoints, &key, &witnesses);
    Ok(Verdict {
        entries: records.len() as i64,
        problems,
    })
}

/// Writes the log as JSON Lines to `out` (a file, or standard output).
pub async fn export(config: &Config, out: Option<&Path>) -> anyhow::Result<String> {
    let store = crate::app::open_store(config, 2).await?;
    let (auditor, _) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    let written = match out {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            palisade_audit::export(&auditor, &mut file).await?
        }
        None => palisade_audit::export(&auditor, &mut std::io::stdout().lock()).await?,
    };
    store.close().await;
    Ok(format!(
        "exported {written} audit entries; verify with: palisade audit verify --export FILE \
         --public-key KEYFILE (public key {})",
        auditor.public_key().to_hex()
    ))
}

/// The public key that verifies this installation's checkpoints, in hex.
pub async fn public_key(config: &Config) -> anyhow::Result<String> {
    let store = crate::app::open_store(config, 2).await?;
    let (auditor, _) = crate::app::open_auditor(config, store.clone(), "cli").await?;
    store.close().await;
    Ok(auditor.public_key().to_hex())
}
