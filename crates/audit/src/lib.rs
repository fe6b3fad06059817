//! Palisade's audit log.
//!
//! Every security event (sign-in, sign-out, account creation, key rotation,
//! vault access) becomes an [`Event`] that the [`Auditor`] appends to a
//! hash chain: each entry's hash covers its fields and the previous entry's
//! hash. Every so many entries or seconds a checkpoint signs the chain's
//! current hash with an Ed25519 key. [`verify`] walks the chain and the
//! checkpoints and says exactly where and how it breaks; [`export`] writes
//! JSON Lines that anyone holding only the public key can verify.
//!
//! Invariants:
//! - the log only appends; appends are serialised by the store, so
//!   concurrent writers (even in different processes) never fork the chain;
//! - recording fails closed: when [`Auditor::record`] returns an error the
//!   caller must not perform the action;
//! - an entry never holds a secret: events carry ids, names of actions and
//!   outcomes, never passwords, tokens, keys or message text.

mod auditor;
mod entry;
mod export;
mod signing;
mod verify;

pub use auditor::{AuditError, Auditor, CheckpointPolicy};
pub use entry::{ActorKind, Event, GENESIS_HASH, Outcome, entry_hash};
pub use export::{ExportError, export, parse_export};
pub use signing::{CheckpointSigner, PublicKey, Statement, checkpoint_message};
pub use verify::{Problem, Witnesses, verify};

/// Verifies the log in `store` with `key`: (entries checked, problems).
pub async fn verify_store(
    store: &palisade_store::Store,
    key: &PublicKey,
) -> Result<(i64, Vec<Problem>), palisade_store::StoreError> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_records(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(page);
    }
    let checkpoints = store.audit_checkpoints().await?;
    let head = store.audit_head().await?;
    let witnesses = Witnesses {
        head_seq: Some(head.seq),
        export_end: None,
    };
    let problems = verify(&records, &checkpoints, key, &witnesses);
    Ok((records.len() as i64, problems))
}
