//! Palisade's envelope encryption.
//!
//! Three layers of keys:
//! - the **master key** ([`MasterKey`]), 32 bytes held outside the database
//!   (a 0600 key file, the environment, or later an external KMS) and reached
//!   only through a [`KeyProvider`];
//! - per-tenant **data keys** ([`DataKey`]), 32 random bytes each, stored in
//!   the database only wrapped (sealed) by the master key, with a version
//!   number so a tenant can rotate to a new one while old rows stay readable;
//! - sealed **fields**: a message body or a visitor's name, sealed with the
//!   tenant's data key and bound by associated data to the tenant, table,
//!   record id and field it was written for ([`FieldRef`]). A ciphertext
//!   copied to another row, field or tenant fails to open.
//!
//! The cipher is XChaCha20-Poly1305. Its 192-bit nonces may be drawn at
//! random for any number of messages under one key, so a busy tenant's data
//! key never approaches a nonce-collision bound (AES-256-GCM's 96-bit random
//! nonces limit one key to about 2^32 seals); it is constant-time in pure
//! Rust on every CPU, with or without AES instructions.
//!
//! This crate never touches the database, the network or the log, and no
//! key type in it ever prints its bytes.

mod aead;
mod provider;

pub use aead::{DataKey, FieldRef, KeyId, MasterKey, SealError, WrapRef};
pub use provider::{
    EnvKeyProvider, FileKeyProvider, KeyError, KeyProvider, MASTER_KEY_ENV, StaticKeyProvider,
    provider_for,
};
