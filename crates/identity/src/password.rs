//! Argon2id password hashing.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password must be at most {0} characters")]
    TooLong(usize),
    #[error("hashing the password failed")]
    Hash,
}

/// Hashes and verifies agent passwords with Argon2id (19 MiB, 2 passes: the
/// OWASP baseline), and can burn the same time for an unknown account.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A real hash of a random password, verified against when the account
    /// does not exist so that both answers take as long.
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher(argon2id)")
    }
}

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

impl PasswordHasher {
    pub fn new() -> Result<Self, PasswordError> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| PasswordError::Hash)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self {
            argon,
            decoy: String::new(),
        };
        hasher.decoy = hasher.hash_unchecked(crate::random_token(24).expose())?;
        Ok(hasher)
    }

    /// Checks the length policy, then hashes.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let len = password.chars().count();
        if len < MIN_LEN {
            return Err(PasswordError::TooShort(MIN_LEN));
        }
        if len > MAX_LEN {
            return Err(PasswordError::TooLong(MAX_LEN));
        }
        self.hash_unchecked(password)
    }

    fn hash_unchecked(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes).map_err(|_| PasswordError::Hash)?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| PasswordError::Hash)?;
        let hash = self.argon.hash_password(password.as_bytes(), &salt);
        hash.map(|h| h.to_string()).map_err(|_| PasswordError::Hash)
    }

    /// True when `password` matches `stored`. With `stored == None` (no such
    /// account) it does the same work and answers false.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let target = stored.unwrap_or(&self.decoy);
        let Ok(parsed) = PasswordHash::new(target) else {
            return false;
        };
        let matched = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matched && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let hasher = PasswordHasher::new().expect("hasher");
        let hash = hasher.hash("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery", Some(&hash)));
        assert!(!hasher.verify("correct horse batterx", Some(&hash)));
    }

    #[test]
    fn unknown_account_never_verifies() {
        let hasher = PasswordHasher::new().expect("hasher");
        assert!(!hasher.verify("anything at all", None));
    }

    #[test]
    fn length_policy() {
        let hasher = PasswordHasher::new().expect("hasher");
        assert_eq!(hasher.hash("short"), Err(PasswordError::TooShort(MIN_LEN)));
        assert_eq!(
            hasher.hash(&"x".repeat(MAX_LEN + 1)),
            Err(PasswordError::TooLong(MAX_LEN))
        );
    }
}
