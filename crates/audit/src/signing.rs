//! The Ed25519 key that signs checkpoints, and its public half.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// What a signature states: a checkpoint inside the log, or the end of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    Checkpoint,
    ExportEnd,
}

/// The exact bytes a signature covers.
pub fn checkpoint_message(kind: Statement, seq: i64, hash: &str, at: i64) -> Vec<u8> {
    let label = match kind {
        Statement::Checkpoint => "palisade-audit-checkpoint-v1",
        Statement::ExportEnd => "palisade-audit-export-end-v1",
    };
    format!("{label}\n{seq}\n{hash}\n{at}\n").into_bytes()
}

/// The private signing key. Never printed.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({})", self.public_key().id())
    }
}

impl CheckpointSigner {
    /// From a 32-byte seed; `None` when it is not 32 bytes.
    pub fn from_seed(seed: &[u8]) -> Option<Self> {
        let seed: [u8; 32] = seed.try_into().ok()?;
        Some(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// A hex signature over [`checkpoint_message`].
    pub fn sign(&self, kind: Statement, seq: i64, hash: &str, at: i64) -> String {
        let message = checkpoint_message(kind, seq, hash, at);
        hex::encode(self.key.sign(&message).to_bytes())
    }
}

/// The public key that verifies checkpoints, written as 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses the hex form (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes =
            hex::decode(text.trim()).map_err(|_| "public key must be 64 hex digits".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "public key must be 32 bytes (64 hex digits)".to_owned())?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| "public key is not a valid Ed25519 point".to_owned())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// A short id: the first 8 bytes of the key's SHA-256, in hex.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.to_bytes())[..8])
    }

    /// True when `signature` (hex) signs this checkpoint with this key.
    pub fn verifies(
        &self,
        kind: Statement,
        seq: i64,
        hash: &str,
        at: i64,
        signature: &str,
    ) -> bool {
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return false;
        };
        self.0
            .verify_strict(&checkpoint_message(kind, seq, hash, at), &signature)
            .is_ok()
    }
}
