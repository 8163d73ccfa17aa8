//! The `audit_log` table: append-only, hash-chained (the chain itself is [`crate::audit`]).
//!
//! Appending reads the head (the record with the greatest `seq`), computes the next record from
//! it and inserts it at `seq = head + 1`. `seq` is the primary key, so when two writers race for
//! the same place exactly one insert succeeds; the other rereads the new head and tries again.
//! No transaction is needed for that: records are never changed once written, so the head a
//! writer read is still the record just before any place its insert can win.

use time::OffsetDateTime;

use super::{Store, StoreError, to_millis, with_pool};
use crate::audit::{AuditEntry, AuditRecord, GENESIS};

/// How many times an append rereads the head after losing a race before giving up.
const MAX_RACES: u32 = 1000;

type Row = (i64, i64, String, String, Option<String>, Option<String>, Option<String>, String, String, String);

const COLUMNS: &str = "seq, at, actor, action, job_id, finding_uid, account_id, details, prev_hash, hash";

fn from_row(r: Row) -> AuditRecord {
    AuditRecord {
        seq: r.0,
        at: r.1,
        actor: r.2,
        action: r.3,
        job_id: r.4,
        finding_uid: r.5,
        account_id: r.6,
        details: r.7,
        prev_hash: r.8,
        hash: r.9,
    }
}

/// Whether `e` is an insert that lost the race for its `seq`. SQLite may also report a busy
/// database when another connection committed between our read and our write.
pub(super) fn lost_race(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || matches!(d.code().as_deref(), Some("5" | "517" | "261" | "6"))
        }
        _ => false,
    }
}

/// Appends the record for `$entry` at `$at` (Unix milliseconds) inside the open transaction
/// `$tx`, so that it is written together with the change it records or not at all. Evaluates
/// to `Result<AuditRecord, sqlx::Error>`; an error for which [`lost_race`] holds means another
/// writer took the place first: roll back and run the whole transaction again.
macro_rules! append_audit_in {
    ($tx:expr, $entry:expr, $at:expr) => {
        async {
            let head: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *$tx).await?;
            let (seq, prev) = head.unwrap_or((0, $crate::audit::GENESIS.to_string()));
            let r = $crate::audit::AuditRecord::next(seq, &prev, $at, $entry);
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, job_id, finding_uid, account_id, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(r.seq)
            .bind(r.at)
            .bind(&r.actor)
            .bind(&r.action)
            .bind(r.job_id.as_deref())
            .bind(r.finding_uid.as_deref())
            .bind(r.account_id.as_deref())
            .bind(&r.details)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *$tx)
            .await?;
            Ok::<_, sqlx::Error>(r)
        }
    };
}
pub(super) use append_audit_in;

impl Store {
    /// Appends a record at `at` to the audit log and returns it as stored.
    pub async fn append_audit(&self, entry: &AuditEntry, at: OffsetDateTime) -> Result<AuditRecord, StoreError> {
        let at = to_millis(at);
        for _ in 0..MAX_RACES {
            let (seq, prev) = self.audit_head().await?.unwrap_or((0, GENESIS.to_string()));
            let r = AuditRecord::next(seq, &prev, at, entry);
            let inserted = with_pool!(self, p => sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, job_id, finding_uid, account_id, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(r.seq)
            .bind(r.at)
            .bind(&r.actor)
            .bind(&r.action)
            .bind(r.job_id.as_deref())
            .bind(r.finding_uid.as_deref())
            .bind(r.account_id.as_deref())
            .bind(&r.details)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(p)
            .await
            .map(|_| ()));
            match inserted {
                Ok(_) => return Ok(r),
                Err(e) if lost_race(&e) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict { what: "audit log", key: "head".to_string() })
    }

    /// The last record's `(seq, hash)`, or `None` while the log is empty.
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_as(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(p)
        .await)?)
    }

    /// At most `limit` records with `seq > after`, in order.
    pub async fn audit_records(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The records about one job, in order.
    pub async fn audit_records_for_job(&self, job_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE job_id = $1 ORDER BY seq"
        )))
        .bind(job_id)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}
