//! What an entry says and how it is hashed.

use palisade_store::AuditRecord;
use sha2::{Digest, Sha256};

/// The previous hash of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    /// A signed-in agent or admin.
    Agent,
    /// Someone not yet identified (a failed sign-in).
    Anonymous,
    /// A tenant API key (its id is the actor id).
    ApiKey,
    /// A platform operator at the command line.
    Operator,
    /// Palisade itself (start-up, scheduled work).
    System,
    /// A partner's back-end, by its client certificate (the id is the serial).
    Partner,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Anonymous => "anonymous",
            Self::ApiKey => "api_key",
            Self::Operator => "operator",
            Self::System => "system",
            Self::Partner => "partner",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by policy (not allowed), as opposed to failing.
    Denied,
    /// Recorded before the action, so the action never runs unaudited.
    Started,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
            Self::Started => "started",
        }
    }
}

/// One security event, as its caller describes it. Fields hold ids and
/// names, never secret values.
#[derive(Clone, Debug)]
pub struct Event {
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub tenant_id: Option<String>,
    /// A dotted name like `agent.login`.
    pub action: &'static str,
    /// What was acted on (an id, an email, a key name), or empty.
    pub target: String,
    pub outcome: Outcome,
    /// The client's address, or `cli` / `internal`.
    pub source: String,
    pub request_id: String,
}

/// The hash of an entry: SHA-256 over every field, each length-prefixed,
/// including its sequence number and the previous entry's hash.
pub fn entry_hash(record: &AuditRecord) -> String {
    let seq = record.seq.to_string();
    let at = record.at.to_string();
    let fields: [&str; 12] = [
        "palisade-audit-entry-v1",
        &seq,
        &at,
        &record.actor_kind,
        &record.actor_id,
        record.tenant_id.as_deref().unwrap_or(""),
        &record.action,
        &record.target,
        &record.outcome,
        &record.source,
        &record.request_id,
        &record.prev_hash,
    ];
    let mut hasher = Sha256::new();
    hasher.update([u8::from(record.tenant_id.is_some())]);
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}
