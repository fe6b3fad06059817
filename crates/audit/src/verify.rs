//! Checking a chain: every entry's hash, every link, every checkpoint's
//! signature, and the tail. Each [`Problem`] names the entry and what
//! happened to it, so an operator knows where to look.

use crate::entry::{GENESIS_HASH, entry_hash};
use crate::signing::{PublicKey, Statement};
use palisade_store::{AuditCheckpoint, AuditRecord};
use std::collections::HashMap;

/// One way the log is not intact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("entry {seq}: its content was altered (its fields no longer match its hash)")]
    Altered { seq: i64 },
    #[error(
        "entry {seq}: it does not follow entry {previous} (its previous-hash does not match): \
         an entry before it was replaced"
    )]
    BrokenLink { seq: i64, previous: i64 },
    #[error("entries {first} to {last} are missing: deleted from the log")]
    Missing { first: i64, last: i64 },
    #[error(
        "entry {seq} appears at position {position}, after entry {after}: entries were reordered"
    )]
    Reordered {
        seq: i64,
        position: usize,
        after: i64,
    },
    #[error("entry {seq}: sequence numbers start at 1, so it was injected")]
    OutOfRange { seq: i64 },
    #[error("entry {seq} appears more than once")]
    Duplicate { seq: i64 },
    #[error(
        "the log ends at entry {last}, but {witness} shows it reached entry {reached}: its tail was truncated"
    )]
    Truncated {
        last: i64,
        reached: i64,
        witness: &'static str,
    },
    #[error(
        "checkpoint at entry {seq}: its signature is not valid for this public key: forged or altered"
    )]
    ForgedCheckpoint { seq: i64 },
    #[error(
        "checkpoint at entry {seq}: it signs a hash entry {seq} does not have: the entry was rewritten"
    )]
    CheckpointMismatch { seq: i64 },
    #[error("the export has no valid signed end line: it was truncated or edited after export")]
    NoSignedEnd,
}

/// What the verifier is given besides entries and checkpoints.
#[derive(Clone, Debug, Default)]
pub struct Witnesses {
    /// The sequence number the database's head row records.
    pub head_seq: Option<i64>,
    /// An export's signed end line; `Some(None)` means one was required but absent.
    pub export_end: Option<Option<AuditCheckpoint>>,
}

/// Checks `records` (in the order they were found), `checkpoints` and the
/// witnesses; an empty answer means intact.
pub fn verify(
    records: &[AuditRecord],
    checkpoints: &[AuditCheckpoint],
    key: &PublicKey,
    witnesses: &Witnesses,
) -> Vec<Problem> {
    let mut problems = Vec::new();

    // Order first: a reordered file is reported as such, then checked in order.
    let mut last_seen: Option<i64> = None;
    for (index, record) in records.iter().enumerate() {
        if let Some(after) = last_seen {
            if record.seq == after {
                problems.push(Problem::Duplicate { seq: record.seq });
            } else if record.seq < after {
                problems.push(Problem::Reordered {
                    seq: record.seq,
                    position: index + 1,
                    after,
                });
            }
        }
        last_seen = Some(last_seen.map_or(record.seq, |a| a.max(record.seq)));
    }
    let mut sorted: Vec<&AuditRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    sorted.dedup_by_key(|r| r.seq);

    let mut expected = 1;
    let mut previous: Option<&AuditRecord> = None;
    for record in &sorted {
        if record.seq < 1 {
            problems.push(Problem::OutOfRange { seq: record.seq });
            continue;
        }
        if record.seq > expected {
            problems.push(Problem::Missing {
                first: expected,
                last: record.seq - 1,
            });
        }
        if entry_hash(record) != record.hash {
            problems.push(Problem::Altered { seq: record.seq });
        }
        let previous_hash = previous.map_or(GENESIS_HASH, |p| p.hash.as_str());
        let contiguous = record.seq == expected;
        if contiguous && record.prev_hash != previous_hash {
            problems.push(Problem::BrokenLink {
                seq: record.seq,
                previous: record.seq - 1,
            });
        }
        expected = record.seq.saturating_add(1);
        previous = Some(record);
    }
    let last = expected - 1;

    let by_seq: HashMap<i64, &AuditRecord> = sorted.iter().map(|r| (r.seq, *r)).collect();
    let mut reached = 0;
    for checkpoint in checkpoints {
        if !key.verifies(
            Statement::Checkpoint,
            checkpoint.seq,
            &checkpoint.hash,
            checkpoint.at,
            &checkpoint.signature,
        ) {
            problems.push(Problem::ForgedCheckpoint {
                seq: checkpoint.seq,
            });
            continue;
        }
        reached = reached.max(checkpoint.seq);
        if let Some(record) = by_seq.get(&checkpoint.seq)
            && record.hash != checkpoint.hash
        {
            problems.push(Problem::CheckpointMismatch {
                seq: checkpoint.seq,
            });
        }
    }
    if reached > last {
        problems.push(Problem::Truncated {
            last,
            reached,
            witness: "a signed checkpoint",
        });
    }
    if let Some(head) = witnesses.head_seq
        && head > last
    {
        problems.push(Problem::Truncated {
            last,
            reached: head,
            witness: "the chain's head record",
        });
    }
    if let Some(end) = &witnesses.export_end {
        match end {
            Some(end)
                if key.verifies(
                    Statement::ExportEnd,
                    end.seq,
                    &end.hash,
                    end.at,
                    &end.signature,
                ) =>
            {
                if end.seq > last {
                    problems.push(Problem::Truncated {
                        last,
                        reached: end.seq,
                        witness: "the export's signed end line",
                    });
                } else if end.seq < last || by_seq.get(&end.seq).is_none_or(|r| r.hash != end.hash)
                {
                    problems.push(Problem::NoSignedEnd);
                }
            }
            _ => problems.push(Problem::NoSignedEnd),
        }
    }
    problems
}
