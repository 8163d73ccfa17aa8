//! The audit log's model: append-only records, each chained to the one before it by SHA-256.
//!
//! A record's hash is `SHA-256(prev_hash || canonical(record))`, where `prev_hash` is the
//! previous record's hash in hex (64 zeros for the first) and `canonical` is the record's fields
//! as JSON in a fixed order with the details' keys sorted (see [`canonical`]). Editing any field
//! of a stored record, removing one, or reordering them changes a hash that the next record
//! covers, so [`Verifier`] names the first record where the chain breaks. It needs nothing but
//! the records, so an auditor can check an exported log offline with the same code.
//!
//! The store appends ([`crate::store::Store::append_audit`]) and never updates or deletes a row;
//! [`verify_chain`] rereads the whole log from the store.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The actor recorded for what the engine does by itself (leasing, retrying, expiring).
pub const ENGINE: &str = "orgsec";

/// What a caller asks to record; the store gives it its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who acted: a token's name, `cli`, or [`ENGINE`].
    pub actor: String,
    /// What happened, dotted: `job.enqueued`, `job.approved`, `job.executed`, ...
    pub action: String,
    pub job_id: Option<String>,
    pub finding_uid: Option<String>,
    pub account_id: Option<String>,
    /// Anything else worth keeping; stored canonically.
    pub details: serde_json::Value,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub job_id: Option<String>,
    pub finding_uid: Option<String>,
    pub account_id: Option<String>,
    /// Canonical JSON text, exactly as hashed.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The record that follows a head at `prev_seq` with hash `prev_hash`, hashed.
    pub fn next(prev_seq: i64, prev_hash: &str, at: i64, entry: &AuditEntry) -> AuditRecord {
        let mut record = AuditRecord {
            seq: prev_seq + 1,
            at,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            job_id: entry.job_id.clone(),
            finding_uid: entry.finding_uid.clone(),
            account_id: entry.account_id.clone(),
            details: canonical_json(&entry.details),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    /// The hash this record should carry, from its `prev_hash` and its other fields.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(canonical(self).as_bytes());
        hex(&h.finalize())
    }
}

/// The bytes a record's hash covers besides `prev_hash`: its fields as a JSON array in a fixed
/// order (`seq, at, actor, action, job_id, finding_uid, account_id, details`). An array rather
/// than an object so that the order cannot depend on a serializer's choices; `details` is
/// included as the stored text, which [`AuditRecord::next`] made canonical.
pub fn canonical(r: &AuditRecord) -> String {
    serde_json::Value::Array(vec![
        r.seq.into(),
        r.at.into(),
        r.actor.as_str().into(),
        r.action.as_str().into(),
        r.job_id.as_deref().into(),
        r.finding_uid.as_deref().into(),
        r.account_id.as_deref().into(),
        r.details.as_str().into(),
    ])
    .to_string()
}

/// `value` as compact JSON with object keys sorted (serde_json's map is ordered by key).
fn canonical_json(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log is broken at record {seq}: {reason}")]
pub struct ChainBreak {
    /// The first record that does not verify (for a missing record, the one expected there).
    pub seq: i64,
    pub reason: String,
}

/// Checks records one at a time, in order, so that a long log can be verified page by page.
#[derive(Debug, Clone)]
pub struct Verifier {
    seq: i64,
    hash: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier { seq: 0, hash: GENESIS.to_string() }
    }
}

impl Verifier {
    /// A verifier for a log starting at its first record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record: its place, its link to the previous record, and its own hash.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let expected = self.seq + 1;
        if r.seq != expected {
            return Err(ChainBreak {
                seq: expected,
                reason: format!("record {expected} is missing (the next one found is {})", r.seq),
            });
        }
        if r.prev_hash != self.hash {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "its prev_hash is not the previous record's hash (a record was removed, reordered or \
                         rewritten before it)"
                    .to_string(),
            });
        }
        if r.compute_hash() != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "its hash does not match its content (the record was edited)".to_string(),
            });
        }
        self.seq = r.seq;
        self.hash = r.hash.clone();
        Ok(())
    }

    /// Records verified so far.
    pub fn count(&self) -> i64 {
        self.seq
    }

    /// The hash of the last record verified ([`GENESIS`] before any).
    pub fn head(&self) -> &str {
        &self.hash
    }
}

/// Verifies a whole log given in order; the number of records on success.
pub fn verify(records: &[AuditRecord]) -> Result<i64, ChainBreak> {
    let mut v = Verifier::new();
    for r in records {
        v.push(r)?;
    }
    Ok(v.count())
}

/// The outcome of checking the stored log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records verified.
    pub records: i64,
    /// The last record's hash: publish it, and a later verification proves nothing before it
    /// changed.
    pub head: String,
}

/// A failed verification of the stored log.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rereads the stored log from its first record, a page at a time, and recomputes every hash.
pub async fn verify_chain(store: &Store) -> Result<ChainReport, VerifyError> {
    const PAGE: u32 = 1000;
    let mut v = Verifier::new();
    loop {
        let page = store.audit_records(v.count(), PAGE).await?;
        for r in &page {
            v.push(r)?;
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(ChainReport { records: v.count(), head: v.head().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            actor: "alice".into(),
            action: action.into(),
            job_id: Some("j1".into()),
            finding_uid: None,
            account_id: Some("333333333333".into()),
            details: serde_json::json!({"b": 1, "a": [true, null]}),
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out.last().map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash.clone()));
            out.push(AuditRecord::next(seq, &hash, 1_000 + i, &entry("job.enqueued")));
        }
        out
    }

    #[test]
    fn details_are_canonical() {
        let r = AuditRecord::next(0, GENESIS, 1, &entry("x"));
        assert_eq!(r.details, r#"{"a":[true,null],"b":1}"#);
    }

    #[test]
    fn a_chain_verifies_and_each_kind_of_tampering_is_named() {
        let records = chain(5);
        assert_eq!(verify(&records), Ok(5));

        let mut edited = records.clone();
        edited[2].actor = "mallory".into();
        assert_eq!(verify(&edited).unwrap_err().seq, 3);

        let mut rehashed = records.clone();
        rehashed[2].actor = "mallory".into();
        rehashed[2].hash = rehashed[2].compute_hash();
        let err = verify(&rehashed).unwrap_err();
        assert_eq!(err.seq, 4, "{err}");

        let mut removed = records.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 2);

        let mut swapped = records;
        swapped.swap(3, 4);
        assert_eq!(verify(&swapped).unwrap_err().seq, 4);
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_record_is_detected() {
        let records = chain(3);
        let mut r = records[1].clone();
        let mut details = r.details.into_bytes();
        details[3] ^= 0x01;
        r.details = String::from_utf8(details).unwrap();
        assert!(Verifier { seq: 1, hash: records[0].hash.clone() }.push(&r).is_err());
    }
}
