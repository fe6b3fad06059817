//! Who is calling.
//!
//! - Agent passwords: Argon2id hashes; verification takes the same time
//!   whether or not the account exists.
//! - Agent sessions: opaque random tokens handed to the browser in a cookie;
//!   only their SHA-256 is stored, so a database leak yields no live session.
//! - Visitor sessions: tokens signed with HMAC-SHA256 under a server key,
//!   naming tenant, widget and visitor, with an expiry.
//!
//! - Visitor identity: the tenant's HMAC-SHA256 of its user's id.
//! - Second factor: TOTP (RFC 6238) with replay refusal, and one-time
//!   recovery codes stored hashed.
//!
//! This crate holds no state and does no I/O: callers store what it makes.

mod mfa;
mod password;
mod secret;
mod verified;
mod visitor;

pub use mfa::{MfaError, Totp, qr_svg, recovery_code_hash, recovery_codes};
pub use password::{PasswordError, PasswordHasher};
pub use secret::{SecretString, constant_time_eq, random_token, sha256_hex};
pub use verified::{MAX_USER_ID_BYTES, user_hash, verify_user_hash};
pub use visitor::{VisitorClaims, VisitorTokenError, VisitorTokens};
