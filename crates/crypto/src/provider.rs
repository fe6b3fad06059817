//! Where the master key comes from. A [`KeyProvider`] hides whether it is a
//! file, the environment or (later) an external KMS; the store asks it again
//! when it meets a data key wrapped by a master key it does not hold, which
//! is how a running server follows a master-key rotation.
//!
//! A provider never creates a key on its own: the caller decides, because
//! only it knows whether the database already holds data sealed by a key
//! that would then be lost.

use crate::aead::{MasterKey, SealError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The environment variable holding a base64 master key (32 bytes).
pub const MASTER_KEY_ENV: &str = "PALISADE_MASTER_KEY";

/// Why a master key could not be had. Messages name the file or variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{MASTER_KEY_ENV} must be the base64 encoding of exactly 32 bytes")]
    BadEnv,
    #[error("master key file {path} must hold exactly 32 bytes, found {len}")]
    BadFileLength { path: PathBuf, len: usize },
    #[error("master key file {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    FileTooOpen { path: PathBuf, mode: u32 },
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} cannot stage a new master key: {1}")]
    Unsupported(String, &'static str),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// A source of the master key.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// Where the key comes from, for messages ("key file /d/keys/master.key").
    fn describe(&self) -> String;

    /// The current master key, or `None` when there is none yet.
    fn load(&self) -> Result<Option<MasterKey>, KeyError>;

    /// Makes and keeps a new master key; fails if one exists.
    fn create(&self) -> Result<MasterKey, KeyError>;

    /// Keeps `next` beside the current key, before the database is rewrapped.
    fn stage(&self, next: &MasterKey) -> Result<(), KeyError> {
        let _ = next;
        Err(KeyError::Unsupported(
            self.describe(),
            "rotating a master key held outside the data directory is not supported yet; \
             use the key file <data_dir>/keys/master.key to rotate with `palisade keys \
             rotate-master`",
        ))
    }

    /// The staged key of an unfinished rotation, if any.
    fn staged(&self) -> Result<Option<MasterKey>, KeyError> {
        Ok(None)
    }

    /// Makes the staged key the current one, after the database was rewrapped.
    fn promote(&self) -> Result<(), KeyError> {
        Err(KeyError::Unsupported(
            self.describe(),
            "it has no staged key to promote",
        ))
    }
}

/// The provider an operator gets: the environment variable when it is set,
/// else the key file `<data_dir>/keys/master.key`.
pub fn provider_for(
    data_dir: &Path,
    env_value: Option<String>,
) -> Result<Box<dyn KeyProvider>, KeyError> {
    match env_value {
        Some(value) => Ok(Box::new(EnvKeyProvider::parse(&value)?)),
        None => Ok(Box::new(FileKeyProvider::new(
            data_dir.join("keys").join("master.key"),
        ))),
    }
}

/// The master key in a 0600 file; a rotation stages the next key in
/// `<file>.next` and renames it over the file once the database is rewrapped.
#[derive(Debug)]
pub struct FileKeyProvider {
    path: PathBuf,
}

impl FileKeyProvider {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn next_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".next");
        PathBuf::from(name)
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    }
}

fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => zeroize::Zeroizing::new(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::FileTooOpen {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    if bytes.len() != 32 {
        return Err(KeyError::BadFileLength {
            path: path.to_owned(),
            len: bytes.len(),
        });
    }
    Ok(Some(MasterKey::from_bytes(&bytes)?))
}

fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), std::io::Error> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.expose_bytes())?;
    file.sync_all()
}

impl KeyProvider for FileKeyProvider {
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    fn load(&self) -> Result<Option<MasterKey>, KeyError> {
        read_key_file(&self.path)
    }

    fn create(&self) -> Result<MasterKey, KeyError> {
        let key = MasterKey::generate()?;
        write_key_file(&self.path, &key).map_err(self.io(&self.path))?;
        Ok(key)
    }

    fn stage(&self, next: &MasterKey) -> Result<(), KeyError> {
        let staged = self.next_path();
        // A stale staged key from an abandoned rotation never wrapped anything
        // that was committed with it unless the database says so; the caller
        // checks the database first.
        match std::fs::remove_file(&staged) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(self.io(&staged)(err)),
        }
        write_key_file(&staged, next).map_err(self.io(&staged))
    }

    fn staged(&self) -> Result<Option<MasterKey>, KeyError> {
        read_key_file(&self.next_path())
    }

    fn promote(&self) -> Result<(), KeyError> {
        let staged = self.next_path();
        std::fs::rename(&staged, &self.path).map_err(self.io(&staged))?;
        if let Some(dir) = self.path.parent() {
            // Make the rename durable.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io(dir))?;
        }
        Ok(())
    }
}

/// The master key from `PALISADE_MASTER_KEY`, read once at start.
pub struct EnvKeyProvider {
    key: MasterKey,
}

impl std::fmt::Debug for EnvKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvKeyProvider({:?})", self.key)
    }
}

impl EnvKeyProvider {
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let bytes = zeroize::Zeroizing::new(
            STANDARD
                .decode(value.trim())
                .map_err(|_| KeyError::BadEnv)?,
        );
        let key = MasterKey::from_bytes(&bytes).map_err(|_| KeyError::BadEnv)?;
        Ok(Self { key })
    }
}

impl KeyProvider for EnvKeyProvider {
    fn describe(&self) -> String {
        format!("environment variable {MASTER_KEY_ENV}")
    }

    fn load(&self) -> Result<Option<MasterKey>, KeyError> {
        Ok(Some(self.key.clone()))
    }

    fn create(&self) -> Result<MasterKey, KeyError> {
        Ok(self.key.clone())
    }
}

/// A master key held in memory, which can be swapped: for tests, and for
/// embedding Palisade where another system hands over the key.
#[derive(Debug)]
pub struct StaticKeyProvider {
    current: Mutex<Option<MasterKey>>,
    next: Mutex<Option<MasterKey>>,
}

impl StaticKeyProvider {
    pub fn new(key: Option<MasterKey>) -> Self {
        Self {
            current: Mutex::new(key),
            next: Mutex::new(None),
        }
    }
}

fn locked<T: Clone>(slot: &Mutex<Option<T>>) -> Option<T> {
    match slot.lock() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn put<T>(slot: &Mutex<Option<T>>, value: Option<T>) {
    match slot.lock() {
        Ok(mut guard) => *guard = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

impl KeyProvider for StaticKeyProvider {
    fn describe(&self) -> String {
        "in-memory master key".into()
    }

    fn load(&self) -> Result<Option<MasterKey>, KeyError> {
        Ok(locked(&self.current))
    }

    fn create(&self) -> Result<MasterKey, KeyError> {
        let key = MasterKey::generate()?;
        put(&self.current, Some(key.clone()));
        Ok(key)
    }

    fn stage(&self, next: &MasterKey) -> Result<(), KeyError> {
        put(&self.next, Some(next.clone()));
        Ok(())
    }

    fn staged(&self) -> Result<Option<MasterKey>, KeyError> {
        Ok(locked(&self.next))
    }

    fn promote(&self) -> Result<(), KeyError> {
        let next = locked(&self.next);
        if next.is_some() {
            put(&self.current, next);
            put(&self.next, None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("palisade-crypto-{}", uuid::Uuid::new_v4().simple()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn file_provider_creates_an_owner_only_key_and_reads_it_back() -> Result<(), KeyError> {
        let path = temp_dir().join("master.key");
        let provider = FileKeyProvider::new(path.clone());
        assert!(provider.load()?.is_none());
        let made = provider.create()?;
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(
            provider.load()?.map(|k| k.id().clone()),
            Some(made.id().clone())
        );
        assert!(provider.create().is_err(), "never overwrites a key");
        Ok(())
    }

    #[test]
    fn file_provider_refuses_a_key_file_others_can_read() -> Result<(), KeyError> {
        let path = temp_dir().join("master.key");
        let provider = FileKeyProvider::new(path.clone());
        provider.create()?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
        assert!(matches!(provider.load(), Err(KeyError::FileTooOpen { .. })));
        Ok(())
    }

    #[test]
    fn staged_key_replaces_the_file_only_when_promoted() -> Result<(), KeyError> {
        let provider = FileKeyProvider::new(temp_dir().join("master.key"));
        let old = provider.create()?;
        let next = MasterKey::generate()?;
        provider.stage(&next)?;
        assert_eq!(
            provider.load()?.map(|k| k.id().clone()),
            Some(old.id().clone())
        );
        provider.promote()?;
        assert_eq!(
            provider.load()?.map(|k| k.id().clone()),
            Some(next.id().clone())
        );
        assert!(provider.staged()?.is_none());
        Ok(())
    }

    #[test]
    fn env_provider_wants_exactly_32_base64_bytes() {
        assert!(EnvKeyProvider::parse(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(matches!(
            EnvKeyProvider::parse(&STANDARD.encode([1u8; 16])),
            Err(KeyError::BadEnv)
        ));
        assert!(matches!(
            EnvKeyProvider::parse("%%%"),
            Err(KeyError::BadEnv)
        ));
    }
}
