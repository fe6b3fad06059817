//! Appending events and writing checkpoints.

use crate::entry::{Event, entry_hash};
use crate::signing::{CheckpointSigner, Statement};
use palisade_model::now_millis;
use palisade_store::{AuditCheckpoint, AuditHead, AuditRecord, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// When checkpoints are written: after this many entries, or when this much
/// time has passed since the last one and entries were added since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_entries: i64,
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            every_entries: 100,
            every: Duration::from_secs(60),
        }
    }
}

/// The audit entry could not be written, so the action must not happen.
#[derive(Debug, thiserror::Error)]
#[error("the audit log could not be written ({0}); the audited action was not performed")]
pub struct AuditError(#[from] StoreError);

/// Appends events to the chain. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Auditor {
    store: Store,
    signer: Arc<CheckpointSigner>,
    policy: CheckpointPolicy,
}

impl Auditor {
    pub fn new(store: Store, signer: CheckpointSigner, policy: CheckpointPolicy) -> Self {
        Self {
            store,
            signer: Arc::new(signer),
            policy,
        }
    }

    pub fn public_key(&self) -> crate::PublicKey {
        self.signer.public_key()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends `event` durably and returns its sequence number. On error the
    /// caller must refuse the action it was about to take.
    pub async fn record(&self, event: Event) -> Result<i64, AuditError> {
        let signer = self.signer.clone();
        let every = self.policy.every_entries.max(1);
        let build = move |head: &AuditHead| {
            let seq = head
                .seq
                .checked_add(1)
                .ok_or("the audit log's sequence number is at its maximum")?;
            let mut record = AuditRecord {
                seq,
                at: now_millis(),
                actor_kind: event.actor_kind.as_str().to_owned(),
                actor_id: event.actor_id,
                tenant_id: event.tenant_id,
                action: event.action.to_owned(),
                target: event.target,
                outcome: event.outcome.as_str().to_owned(),
                source: event.source,
                request_id: event.request_id,
                prev_hash: head.hash.clone(),
                hash: String::new(),
            };
            record.hash = entry_hash(&record);
            let checkpoint = (record.seq.saturating_sub(head.checkpoint_seq) >= every)
                .then(|| checkpoint_for(&signer, record.seq, &record.hash));
            Ok((record, checkpoint))
        };
        let stored = self.store.append_audit(Box::new(build)).await?;
        Ok(stored.seq)
    }

    /// Signs a checkpoint for the head now, unless the head already has one.
    pub async fn checkpoint(&self) -> Result<Option<i64>, AuditError> {
        self.checkpoint_when(|_| true).await
    }

    /// Signs a checkpoint when the time policy says one is due.
    pub async fn checkpoint_if_due(&self) -> Result<Option<i64>, AuditError> {
        let every = i64::try_from(self.policy.every.as_millis()).unwrap_or(i64::MAX);
        self.checkpoint_when(move |head| now_millis().saturating_sub(head.checkpoint_at) >= every)
            .await
    }

    async fn checkpoint_when(
        &self,
        due: impl FnOnce(&AuditHead) -> bool + Send + 'static,
    ) -> Result<Option<i64>, AuditError> {
        let signer = self.signer.clone();
        let build = move |head: &AuditHead| {
            (head.seq > head.checkpoint_seq && due(head))
                .then(|| checkpoint_for(&signer, head.seq, &head.hash))
        };
        let made = self.store.checkpoint_audit(Box::new(build)).await?;
        Ok(made.map(|c| c.seq))
    }

    /// Runs the time-based checkpoints until the returned task is aborted.
    pub fn spawn_checkpoints(&self) -> tokio::task::JoinHandle<()> {
        let auditor = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(auditor.policy.every.max(Duration::from_secs(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = auditor.checkpoint_if_due().await {
                    tracing::warn!(error = %err, "audit checkpoint failed; will retry");
                }
            }
        })
    }

    /// The signed end line of an export covering entries up to `seq`.
    pub fn sign_export_end(&self, seq: i64, hash: &str) -> AuditCheckpoint {
        let at = now_millis();
        AuditCheckpoint {
            seq,
            hash: hash.to_owned(),
            at,
            key_id: self.signer.public_key().id(),
            signature: self.signer.sign(Statement::ExportEnd, seq, hash, at),
        }
    }
}

fn checkpoint_for(signer: &CheckpointSigner, seq: i64, hash: &str) -> AuditCheckpoint {
    let at = now_millis();
    AuditCheckpoint {
        seq,
        hash: hash.to_owned(),
        at,
        key_id: signer.public_key().id(),
        signature: signer.sign(Statement::Checkpoint, seq, hash, at),
    }
}
