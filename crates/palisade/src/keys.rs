//! Server keys kept as files in the data directory, created on first start
//! with owner-only permissions. A key that exists but is unreadable or the
//! wrong size stops start-up: a new key would silently log everyone out.

use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Reads the key at `path`, or creates it with `len` random bytes.
pub fn load_or_create(path: &Path, len: usize) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == len => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "key file {} is readable by others (mode {:o}); run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                );
            }
            Ok(bytes)
        }
        Ok(bytes) => bail!(
            "key file {} holds {} bytes, expected {len}; refusing to replace it",
            path.display(),
            bytes.len()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; len];
            getrandom::fill(&mut key)
                .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating key file {}", path.display()))?;
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("reading key file {}", path.display())),
    }
}
