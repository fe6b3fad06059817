//! JSON Lines export: one `entry` line per entry, a `checkpoint` line after
//! each checkpointed entry, and a signed `end` line, so a file verifies
//! offline with the public key alone and a cut-off file is detected.

use crate::auditor::Auditor;
use crate::verify::Witnesses;
use palisade_store::{AuditCheckpoint, AuditRecord, StoreError};
use serde_json::{Value, json};
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the audit log: {0}")]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {reason}")]
    Parse { line: usize, reason: String },
}

const PAGE: i64 = 1000;

fn entry_line(r: &AuditRecord) -> Value {
    json!({"type": "entry", "seq": r.seq, "at": r.at, "actor_kind": r.actor_kind,
        "actor_id": r.actor_id, "tenant_id": r.tenant_id, "action": r.action,
        "target": r.target, "outcome": r.outcome, "source": r.source,
        "request_id": r.request_id, "prev_hash": r.prev_hash, "hash": r.hash})
}

fn signed_line(kind: &str, c: &AuditCheckpoint) -> Value {
    json!({"type": kind, "seq": c.seq, "hash": c.hash, "at": c.at, "key_id": c.key_id,
        "signature": c.signature})
}

/// Writes the whole log to `out`; returns the number of entries written.
pub async fn export(auditor: &Auditor, out: &mut dyn Write) -> Result<i64, ExportError> {
    let store = auditor.store();
    let checkpoints = store.audit_checkpoints().await?;
    let mut checkpoints = checkpoints.iter().peekable();
    let mut after = 0;
    let mut last: Option<AuditRecord> = None;
    loop {
        let page = store.audit_records(after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            writeln!(out, "{}", entry_line(record))?;
            while let Some(c) = checkpoints.next_if(|c| c.seq <= record.seq) {
                writeln!(out, "{}", signed_line("checkpoint", c))?;
            }
            after = record.seq;
        }
        last = page.last().cloned();
    }
    for c in checkpoints {
        writeln!(out, "{}", signed_line("checkpoint", c))?;
    }
    let (seq, hash) = last.map_or((0, crate::GENESIS_HASH.to_owned()), |r| (r.seq, r.hash));
    writeln!(
        out,
        "{}",
        signed_line("end", &auditor.sign_export_end(seq, &hash))
    )?;
    out.flush()?;
    Ok(seq)
}

/// A parsed export: entries in file order, checkpoints, and what to witness.
pub type Parsed = (Vec<AuditRecord>, Vec<AuditCheckpoint>, Witnesses);

fn field<'a>(v: &'a Value, name: &str, line: usize) -> Result<&'a Value, ExportError> {
    v.get(name).ok_or_else(|| ExportError::Parse {
        line,
        reason: format!("missing field {name:?}"),
    })
}

fn text(v: &Value, name: &str, line: usize) -> Result<String, ExportError> {
    field(v, name, line)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ExportError::Parse {
            line,
            reason: format!("field {name:?} must be a string"),
        })
}

fn int(v: &Value, name: &str, line: usize) -> Result<i64, ExportError> {
    field(v, name, line)?
        .as_i64()
        .ok_or_else(|| ExportError::Parse {
            line,
            reason: format!("field {name:?} must be an integer"),
        })
}

fn signed(v: &Value, line: usize) -> Result<AuditCheckpoint, ExportError> {
    Ok(AuditCheckpoint {
        seq: int(v, "seq", line)?,
        hash: text(v, "hash", line)?,
        at: int(v, "at", line)?,
        key_id: text(v, "key_id", line)?,
        signature: text(v, "signature", line)?,
    })
}

/// Reads an export. A malformed line is an error naming the line; the
/// chain itself is judged by [`crate::verify`].
pub fn parse_export(text_in: &str) -> Result<Parsed, ExportError> {
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    let mut end = None;
    for (index, raw) in text_in.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(raw).map_err(|e| ExportError::Parse {
            line,
            reason: format!("not JSON: {e}"),
        })?;
        if end.is_some() {
            return Err(ExportError::Parse {
                line,
                reason: "lines after the signed end line".into(),
            });
        }
        match v.get("type").and_then(Value::as_str) {
            Some("entry") => records.push(AuditRecord {
                seq: int(&v, "seq", line)?,
                at: int(&v, "at", line)?,
                actor_kind: text(&v, "actor_kind", line)?,
                actor_id: text(&v, "actor_id", line)?,
                tenant_id: match field(&v, "tenant_id", line)? {
                    Value::Null => None,
                    _ => Some(text(&v, "tenant_id", line)?),
                },
                action: text(&v, "action", line)?,
                target: text(&v, "target", line)?,
                outcome: text(&v, "outcome", line)?,
                source: text(&v, "source", line)?,
                request_id: text(&v, "request_id", line)?,
                prev_hash: text(&v, "prev_hash", line)?,
                hash: text(&v, "hash", line)?,
            }),
            Some("checkpoint") => checkpoints.push(signed(&v, line)?),
            Some("end") => end = Some(signed(&v, line)?),
            _ => {
                return Err(ExportError::Parse {
                    line,
                    reason: "type must be entry, checkpoint or end".into(),
                });
            }
        }
    }
    let witnesses = Witnesses {
        head_seq: None,
        export_end: Some(end),
    };
    Ok((records, checkpoints, witnesses))
}
