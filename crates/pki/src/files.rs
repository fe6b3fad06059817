//! Reading and writing the files of the TLS directory.
//!
//! Writes never touch a file in place: the contents go to a temporary file in the same
//! directory, which is synced and then renamed over the target, so a crash leaves either
//! the old file or the new one. A key file is created with mode 0600 in the same call that
//! creates it, so it is never readable by other users, not even for a moment.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{PkiError, random};

/// Mode of the TLS directory: only the server's user may enter it.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Mode of a private key file.
pub(crate) const KEY_MODE: u32 = 0o600;

/// Mode of a certificate file: certificates are public.
pub(crate) const CERT_MODE: u32 = 0o644;

/// Creates `dir` (and any missing parent) with mode 0700. An existing directory is left
/// as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| PkiError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Reads a text file, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => text(path, bytes).map(Some),
        Err(source) if source.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(read_error(path, source)),
    }
}

/// Reads a text file that must exist.
pub(crate) fn read_required(path: &Path) -> Result<String, PkiError> {
    let bytes = fs::read(path).map_err(|source| read_error(path, source))?;
    text(path, bytes)
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String, PkiError> {
    String::from_utf8(bytes).map_err(|_| PkiError::NotText {
        path: path.to_path_buf(),
    })
}

fn read_error(path: &Path, source: io::Error) -> PkiError {
    PkiError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `contents`, the new file having exactly `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let temp = temp_path(path)?;

    let written =
        write_new(&temp, contents.as_bytes(), mode).and_then(|()| fs::rename(&temp, path));
    if let Err(source) = written {
        // The temporary file may not exist; there is nothing more to do if removal fails.
        let _ = fs::remove_file(&temp);
        return Err(PkiError::Write {
            path: path.to_path_buf(),
            source,
        });
    }

    // Make the rename itself durable. Failing here loses nothing that is not already on disk
    // in one of its two versions, so it is not reported.
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A fresh name next to `path`. The random part keeps a leftover from a crashed run from
/// blocking the next write.
fn temp_path(path: &Path) -> Result<PathBuf, PkiError> {
    let nonce = random::hex::<8>()?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.{nonce}.tmp")))
}

/// Creates `path`, which must not exist yet, with `mode` from the start, and syncs it.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;

    // The mode given to open() is narrowed by the umask; set it exactly.
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}
