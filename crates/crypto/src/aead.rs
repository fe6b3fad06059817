//! Keys and sealing. A sealed value is `nonce (24 bytes) || ciphertext || tag`,
//! carried as unpadded base64 text so it fits the TEXT columns of both
//! database engines.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The marker the key-check value seals: opening it proves the master key is right.
const CHECK_MARKER: &[u8] = b"palisade master key check v1";

/// Why a value could not be sealed or opened. Never carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is not valid base64 or is too short to hold a nonce and tag")]
    Malformed,
    #[error(
        "sealed value failed authentication: wrong key, or it was moved from another \
         record, field or tenant, or it was altered"
    )]
    Inauthentic,
    #[error("opened value is not valid UTF-8")]
    NotText,
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("a key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
}

/// 32 secret bytes, wiped on drop, never printed.
#[derive(Clone)]
struct Key32(Zeroizing<[u8; 32]>);

impl Key32 {
    fn random() -> Result<Self, SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, SealError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::KeyLength(bytes.len()))?;
        Ok(Self(Zeroizing::new(array)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let nonce = XNonce::from(nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Inauthentic)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD_NO_PAD.encode(out))
    }

    fn open(&self, aad: &[u8], sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let raw = STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        self.cipher()
            .decrypt(&nonce, Payload { msg: body, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Inauthentic)
    }
}

/// Builds associated data from parts, each length-prefixed so no two
/// different lists of parts can encode to the same bytes.
fn associated_data(purpose: &str, parts: &[&str]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    for part in std::iter::once(purpose).chain(parts.iter().copied()) {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// A short public name for a master key (an HMAC of a fixed label under the
/// key), stored beside each wrapped data key so a reader knows which master
/// key wrapped it without trying to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a wrapped data key belongs: its tenant and version.
#[derive(Clone, Copy, Debug)]
pub struct WrapRef<'a> {
    pub tenant: &'a str,
    pub version: i64,
}

/// The key that wraps every data key. Never leaves memory unwrapped except
/// into its key file.
#[derive(Clone)]
pub struct MasterKey {
    key: Key32,
    id: KeyId,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn generate() -> Result<Self, SealError> {
        Ok(Self::with_key(Key32::random()?))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        Ok(Self::with_key(Key32::from_slice(bytes)?))
    }

    fn with_key(key: Key32) -> Self {
        let id = match Hmac::<sha2::Sha256>::new_from_slice(key.0.as_ref()) {
            Ok(mut mac) => {
                mac.update(b"palisade master key id");
                let digest = mac.finalize().into_bytes();
                let mut hex = String::with_capacity(16);
                for byte in &digest[..8] {
                    hex.push_str(&format!("{byte:02x}"));
                }
                hex
            }
            // HMAC takes keys of any length; this arm is unreachable in practice.
            Err(_) => String::from("unknown"),
        };
        Self { key, id: KeyId(id) }
    }

    /// The raw bytes, for writing the key file only.
    pub fn expose_bytes(&self) -> &[u8] {
        self.key.0.as_ref()
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Seals the data key for storage, bound to its tenant and version.
    pub fn wrap(&self, at: WrapRef<'_>, key: &DataKey) -> Result<String, SealError> {
        let version = at.version.to_string();
        let aad = associated_data("data-key", &[at.tenant, &version]);
        self.key.seal(&aad, key.0.0.as_ref())
    }

    pub fn unwrap_key(&self, at: WrapRef<'_>, wrapped: &str) -> Result<DataKey, SealError> {
        let version = at.version.to_string();
        let aad = associated_data("data-key", &[at.tenant, &version]);
        let bytes = self.key.open(&aad, wrapped)?;
        Ok(DataKey(Key32::from_slice(&bytes)?))
    }

    /// A value stored with the data that only this master key opens.
    pub fn key_check(&self) -> Result<String, SealError> {
        self.key
            .seal(&associated_data("key-check", &[]), CHECK_MARKER)
    }

    /// True when `check` was made by [`MasterKey::key_check`] with this key.
    pub fn matches_check(&self, check: &str) -> bool {
        self.key
            .open(&associated_data("key-check", &[]), check)
            .is_ok_and(|marker| marker.as_slice() == CHECK_MARKER)
    }
}

/// Where a sealed field lives. Every part goes into the associated data.
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    pub tenant: &'a str,
    pub table: &'a str,
    pub record: &'a str,
    pub field: &'a str,
}

impl FieldRef<'_> {
    fn aad(&self) -> Vec<u8> {
        associated_data("field", &[self.tenant, self.table, self.record, self.field])
    }
}

/// A tenant's data key (one version of it).
#[derive(Clone)]
pub struct DataKey(Key32);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, SealError> {
        Ok(Self(Key32::random()?))
    }

    pub fn seal(&self, at: FieldRef<'_>, plaintext: &str) -> Result<String, SealError> {
        self.0.seal(&at.aad(), plaintext.as_bytes())
    }

    pub fn open(&self, at: FieldRef<'_>, sealed: &str) -> Result<String, SealError> {
        let bytes = self.0.open(&at.aad(), sealed)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SealError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(tenant: &'a str, record: &'a str) -> FieldRef<'a> {
        FieldRef {
            tenant,
            table: "messages",
            record,
            field: "body",
        }
    }

    #[test]
    fn sealed_field_opens_only_at_the_place_it_was_sealed_for() -> Result<(), SealError> {
        let key = DataKey::generate()?;
        let sealed = key.seal(at("t1", "m1"), "hello")?;
        assert_eq!(key.open(at("t1", "m1"), &sealed)?, "hello");
        assert!(matches!(
            key.open(at("t1", "m2"), &sealed),
            Err(SealError::Inauthentic)
        ));
        assert!(matches!(
            key.open(at("t2", "m1"), &sealed),
            Err(SealError::Inauthentic)
        ));
        let other_field = FieldRef {
            field: "name",
            ..at("t1", "m1")
        };
        assert!(key.open(other_field, &sealed).is_err());
        Ok(())
    }

    #[test]
    fn associated_data_parts_cannot_be_shifted_between_fields() {
        let a = associated_data("field", &["ab", "c"]);
        let b = associated_data("field", &["a", "bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn sealed_value_hides_the_plaintext_and_differs_every_time() -> Result<(), SealError> {
        let key = DataKey::generate()?;
        let one = key.seal(at("t", "r"), "unique-plaintext")?;
        let two = key.seal(at("t", "r"), "unique-plaintext")?;
        assert_ne!(one, two);
        assert!(!one.contains("unique-plaintext"));
        Ok(())
    }

    #[test]
    fn garbage_and_truncated_values_are_refused_not_panicking() -> Result<(), SealError> {
        let key = DataKey::generate()?;
        for bad in ["", "!!!", "AAAA", "A"] {
            assert!(key.open(at("t", "r"), bad).is_err());
        }
        let sealed = key.seal(at("t", "r"), "x")?;
        assert!(key.open(at("t", "r"), &sealed[..sealed.len() - 2]).is_err());
        Ok(())
    }

    #[test]
    fn wrapped_data_key_unwraps_only_with_its_master_tenant_and_version() -> Result<(), SealError> {
        let master = MasterKey::generate()?;
        let data = DataKey::generate()?;
        let here = WrapRef {
            tenant: "t1",
            version: 1,
        };
        let wrapped = master.wrap(here, &data)?;
        let back = master.unwrap_key(here, &wrapped)?;
        let sealed = data.seal(at("t1", "m"), "v")?;
        assert_eq!(back.open(at("t1", "m"), &sealed)?, "v");

        let other_version = WrapRef {
            tenant: "t1",
            version: 2,
        };
        assert!(master.unwrap_key(other_version, &wrapped).is_err());
        assert!(MasterKey::generate()?.unwrap_key(here, &wrapped).is_err());
        Ok(())
    }

    #[test]
    fn key_check_detects_a_wrong_master_key() -> Result<(), SealError> {
        let master = MasterKey::generate()?;
        let check = master.key_check()?;
        assert!(master.matches_check(&check));
        assert!(!MasterKey::generate()?.matches_check(&check));
        assert!(!master.matches_check("not base64 at all"));
        Ok(())
    }

    #[test]
    fn keys_never_print_their_bytes() -> Result<(), SealError> {
        let master = MasterKey::from_bytes(&[7u8; 32])?;
        let shown = format!("{master:?} {:?}", DataKey::generate()?);
        assert!(!shown.contains("7, 7"));
        assert!(shown.starts_with("MasterKey("));
        Ok(())
    }
}
