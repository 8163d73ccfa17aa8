//! The `findings`, `watermarks`, `rejected_findings` and `score_snapshots` tables.
//!
//! Collection writes in batches ([`Batch`]): the findings of one or more pages together with the
//! watermarks they advance, in one transaction. A crash therefore leaves either both or neither,
//! and the next sync resumes from a watermark whose findings are all stored: nothing is lost,
//! and the upsert (keyed by `uid`, never moving a finding back to an older version) means
//! reading a page twice stores nothing twice.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Backend, Store, StoreError, with_pool};
use crate::finding::{Compliance, Finding, Severity, Source, Workflow};
use crate::normalize::criticality_tag;

/// Rows per INSERT statement: 24 columns x 400 stays under SQLite's and PostgreSQL's limits on
/// bound parameters.
const ROWS_PER_STATEMENT: usize = 400;

/// Settings of a SQLite connection before it writes a batch: collection's writer is the one big
/// writer, and these keep its transactions off the disk until they commit, without touching
/// crash safety (the journal stays WAL, `synchronous` stays NORMAL).
///
/// - A page cache of 32 MiB (the default is 2 MiB) holds a transaction of a few thousand
///   findings (their rows, about 2.5 KB each, and the index pages they touch); a smaller cache
///   spills dirty pages to the WAL before the commit and writes them again after.
/// - Temporary files in memory: a multi-row upsert keeps a statement journal (to undo the rows
///   of a statement that fails halfway), which otherwise is a file created and deleted per
///   statement.
/// - A checkpoint every 16,000 WAL pages (64 MiB with 4 KiB pages) instead of 1,000: pages that
///   every transaction touches (index interiors and the leaves being filled) are copied into
///   the database once per checkpoint instead of once per transaction. On power loss (not on a
///   crash of orgsec) SQLite in WAL mode with `synchronous = NORMAL` may lose the commits since
///   the last checkpoint, never part of one; a batch's watermarks go with its findings, so a
///   later sync reads them again.
///
/// Each is cheap to set and idempotent; they are set before every batch because the pool may
/// hand out a connection that has not written before.
const SQLITE_WRITER_PRAGMAS: [&str; 3] =
    ["PRAGMA cache_size = -32768", "PRAGMA temp_store = MEMORY", "PRAGMA wal_autocheckpoint = 16000"];

/// A document that could not be read as a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    pub source: Source,
    pub account_id: String,
    pub region: String,
    pub finding_id: Option<String>,
    pub reason: String,
    pub bytes: i64,
    /// The document's first 4 KiB.
    pub sample: String,
    pub times: i64,
    pub first_seen: i64,
    pub last_seen: i64,
}

impl RejectedRecord {
    /// A record for the document `raw`, seen at `now`.
    pub fn new(
        source: Source,
        account: &str,
        region: &str,
        id: Option<String>,
        reason: String,
        raw: &str,
        now: i64,
    ) -> Self {
        let mut end = raw.len().min(4096);
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        RejectedRecord {
            source,
            account_id: account.to_string(),
            region: region.to_string(),
            finding_id: id,
            reason,
            bytes: raw.len() as i64,
            sample: raw[..end].to_string(),
            times: 1,
            first_seen: now,
            last_seen: now,
        }
    }

    fn key(&self) -> String {
        let digest = Sha256::digest(format!("{}|{}|{}", self.reason, self.bytes, self.sample).as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}|{}|{}|{hex}", self.source.as_str(), self.account_id, self.region)
    }
}

/// What one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub findings: Vec<Finding>,
    /// `(account, region, source, watermark)`: advanced only if greater than the stored one.
    pub watermarks: Vec<(String, String, Source, i64)>,
    pub rejected: Vec<RejectedRecord>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.watermarks.is_empty() && self.rejected.is_empty()
    }
}

/// What a batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Findings inserted or replaced by a version at least as new.
    pub written: u64,
    pub rejected: u64,
}

/// Filters for listing findings. Empty vectors and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct FindingQuery {
    pub accounts: Vec<String>,
    pub sources: Vec<Source>,
    pub severities: Vec<Severity>,
    pub controls: Vec<String>,
    pub workflow: Vec<Workflow>,
    pub compliance: Vec<Compliance>,
    /// Only findings that report a live problem (or only those that do not).
    pub failing: Option<bool>,
    /// Keyset pagination: findings whose uid sorts after this one.
    pub after: Option<String>,
    pub limit: Option<u32>,
    /// Keep the raw documents (evidence) or leave them empty (listings).
    pub with_raw: bool,
}

/// What scoring needs of one stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub check_key: String,
    pub source: Source,
    pub account_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub control_id: Option<String>,
    pub finding_type: Option<String>,
    pub severity: Severity,
    pub criticality: Option<f64>,
    pub failing: bool,
    pub updated_at: i64,
}

/// One score in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    pub taken_at: i64,
    pub scope: String,
    pub scope_id: String,
    pub score: f64,
    pub total_weight: i64,
    pub failing_weight: i64,
}

/// A findings row as read back (the columns of [`FINDING_COLUMNS`], in order).
struct FindingRow {
    uid: String,
    source: String,
    product_arn: String,
    id: String,
    account_id: String,
    region: String,
    resource_type: String,
    resource_id: String,
    tags: String,
    control_id: Option<String>,
    finding_type: Option<String>,
    title: String,
    severity: String,
    workflow: String,
    compliance: Option<String>,
    active: bool,
    created_at: i64,
    updated_at: i64,
    check_key: String,
    raw: String,
}

/// Reads a [`FindingRow`] from a row of either database.
macro_rules! finding_row {
    ($r:expr) => {{
        use sqlx::Row as _;
        let r = $r;
        Ok::<_, sqlx::Error>(FindingRow {
            uid: r.try_get(0)?,
            source: r.try_get(1)?,
            product_arn: r.try_get(2)?,
            id: r.try_get(3)?,
            account_id: r.try_get(4)?,
            region: r.try_get(5)?,
            resource_type: r.try_get(6)?,
            resource_id: r.try_get(7)?,
            tags: r.try_get(8)?,
            control_id: r.try_get(9)?,
            finding_type: r.try_get(10)?,
            title: r.try_get(11)?,
            severity: r.try_get(12)?,
            workflow: r.try_get(13)?,
            compliance: r.try_get(14)?,
            active: r.try_get(15)?,
            created_at: r.try_get(16)?,
            updated_at: r.try_get(17)?,
            check_key: r.try_get(18)?,
            raw: r.try_get(19)?,
        })
    }};
}

const FINDING_COLUMNS: &str = "uid, source, product_arn, finding_id, account_id, region, resource_type, resource_id, \
     resource_tags, control_id, finding_type, title, severity, workflow_status, compliance_status, active, \
     created_at, updated_at, check_key, raw";

fn corrupt(uid: &str, what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("finding {uid}: {what} {value:?}"))
}

fn finding_from_row(r: FindingRow) -> Result<Finding, StoreError> {
    let uid = r.uid;
    Ok(Finding {
        source: Source::parse(&r.source).ok_or_else(|| corrupt(&uid, "source", &r.source))?,
        severity: Severity::parse(&r.severity).ok_or_else(|| corrupt(&uid, "severity", &r.severity))?,
        workflow_status: Workflow::parse(&r.workflow).ok_or_else(|| corrupt(&uid, "workflow status", &r.workflow))?,
        compliance_status: match r.compliance {
            Some(c) => Some(Compliance::parse(&c).ok_or_else(|| corrupt(&uid, "compliance status", &c))?),
            None => None,
        },
        resource_tags: serde_json::from_str::<BTreeMap<String, String>>(&r.tags)
            .map_err(|_| corrupt(&uid, "resource tags", &r.tags))?,
        uid,
        product_arn: r.product_arn,
        id: r.id,
        account_id: r.account_id,
        region: r.region,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        control_id: r.control_id,
        finding_type: r.finding_type,
        title: r.title,
        active: r.active,
        created_at: r.created_at,
        updated_at: r.updated_at,
        check_key: r.check_key,
        raw: r.raw,
    })
}

impl Store {
    /// Writes a batch in one transaction: upserts its findings (a stored finding is replaced only
    /// by a version at least as new), advances its watermarks, records its rejected documents.
    pub async fn write_batch(&self, batch: &Batch, now: i64) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome::default();
        // Most resources carry no tags: their JSON is a constant.
        let tags: Vec<Cow<'_, str>> = batch
            .findings
            .iter()
            .map(|f| {
                if f.resource_tags.is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    Cow::Owned(serde_json::to_string(&f.resource_tags).unwrap_or_else(|_| "{}".into()))
                }
            })
            .collect();
        let sqlite = self.backend() == Backend::Sqlite;
        with_pool!(self, p => {
            let mut conn = p.acquire().await?;
            if sqlite {
                for pragma in SQLITE_WRITER_PRAGMAS {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for (chunk_no, chunk) in batch.findings.chunks(ROWS_PER_STATEMENT).enumerate() {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO findings ({FINDING_COLUMNS}, criticality, failing, first_seen, last_seen) "
                ));
                q.push_values(chunk.iter().enumerate(), |mut b, (i, f)| {
                    b.push_bind(f.uid.as_str())
                        .push_bind(f.source.as_str())
                        .push_bind(f.product_arn.as_str())
                        .push_bind(f.id.as_str())
                        .push_bind(f.account_id.as_str())
                        .push_bind(f.region.as_str())
                        .push_bind(f.resource_type.as_str())
                        .push_bind(f.resource_id.as_str())
                        .push_bind(tags[chunk_no * ROWS_PER_STATEMENT + i].as_ref())
                        .push_bind(f.control_id.as_deref())
                        .push_bind(f.finding_type.as_deref())
                        .push_bind(f.title.as_str())
                        .push_bind(f.severity.as_str())
                        .push_bind(f.workflow_status.as_str())
                        .push_bind(f.compliance_status.map(Compliance::as_str))
                        .push_bind(f.active)
                        .push_bind(f.created_at)
                        .push_bind(f.updated_at)
                        .push_bind(f.check_key.as_str())
                        .push_bind(f.raw.as_str())
                        .push_bind(criticality_tag(&f.resource_tags))
                        .push_bind(f.is_failing())
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(
                    " ON CONFLICT (uid) DO UPDATE SET source = excluded.source, product_arn = excluded.product_arn, \
                     account_id = excluded.account_id, region = excluded.region, resource_type = excluded.resource_type, \
                     resource_id = excluded.resource_id, resource_tags = excluded.resource_tags, \
                     criticality = excluded.criticality, control_id = excluded.control_id, \
                     finding_type = excluded.finding_type, title = excluded.title, severity = excluded.severity, \
                     workflow_status = excluded.workflow_status, compliance_status = excluded.compliance_status, \
                     active = excluded.active, failing = excluded.failing, created_at = excluded.created_at, \
                     updated_at = excluded.updated_at, last_seen = excluded.last_seen, check_key = excluded.check_key, \
                     raw = excluded.raw WHERE findings.updated_at <= excluded.updated_at",
                );
                outcome.written += q.build().execute(&mut *tx).await?.rows_affected();
            }
            for (account, region, source, mark) in &batch.watermarks {
                sqlx::query(
                    "INSERT INTO watermarks (account_id, region, source, watermark, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (account_id, region, source) DO UPDATE SET watermark = excluded.watermark, \
                     updated_at = excluded.updated_at WHERE watermarks.watermark < excluded.watermark",
                )
                .bind(account.as_str())
                .bind(region.as_str())
                .bind(source.as_str())
                .bind(*mark)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for r in &batch.rejected {
                sqlx::query(
                    "INSERT INTO rejected_findings (rejection_key, source, account_id, region, finding_id, reason, bytes, \
                     sample, first_seen, last_seen, times) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1) \
                     ON CONFLICT (rejection_key) DO UPDATE SET last_seen = excluded.last_seen, \
                     times = rejected_findings.times + 1",
                )
                .bind(r.key())
                .bind(r.source.as_str())
                .bind(r.account_id.as_str())
                .bind(r.region.as_str())
                .bind(r.finding_id.as_deref())
                .bind(r.reason.as_str())
                .bind(r.bytes)
                .bind(r.sample.as_str())
                .bind(r.last_seen)
                .execute(&mut *tx)
                .await?;
                outcome.rejected += 1;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(outcome)
    }

    /// The watermark of `(account, region, source)`, if a sync stored one.
    pub async fn watermark(&self, account: &str, region: &str, source: Source) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT watermark FROM watermarks WHERE account_id = $1 AND region = $2 AND source = $3",
        )
        .bind(account)
        .bind(region)
        .bind(source.as_str())
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|r| r.0))
    }

    /// For sources read as a full snapshot (Config's non-compliant evaluations): every stored
    /// finding of `(account, region, source)` not seen since `seen_since` no longer fails, so it
    /// is marked PASSED and no longer failing. Its `updated_at` stays the source's, so that the
    /// source reporting it failing again, later, replaces it. Returns how many changed.
    pub async fn mark_unseen_passed(
        &self,
        account: &str,
        region: &str,
        source: Source,
        seen_since: i64,
    ) -> Result<u64, StoreError> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE findings SET compliance_status = 'PASSED', failing = FALSE \
             WHERE account_id = $1 AND region = $2 AND source = $3 AND last_seen < $4 \
             AND (failing OR compliance_status IS NULL OR compliance_status <> 'PASSED')",
        )
        .bind(account)
        .bind(region)
        .bind(source.as_str())
        .bind(seen_since)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Findings matching `q`, ordered by uid.
    pub async fn findings(&self, q: &FindingQuery) -> Result<Vec<Finding>, StoreError> {
        let raw = if q.with_raw { "raw" } else { "'' AS raw" };
        let columns = FINDING_COLUMNS.replace(", raw", &format!(", {raw}"));
        let rows: Vec<FindingRow> = with_pool!(self, p => {
            let mut b = sqlx::QueryBuilder::new(format!("SELECT {columns} FROM findings WHERE 1 = 1"));
            let any_of = |b: &mut sqlx::QueryBuilder<_>, column: &str, values: Vec<String>| {
                if values.is_empty() {
                    return;
                }
                b.push(format!(" AND {column} IN ("));
                let mut sep = b.separated(", ");
                for v in values {
                    sep.push_bind(v);
                }
                sep.push_unseparated(")");
            };
            any_of(&mut b, "account_id", q.accounts.clone());
            any_of(&mut b, "source", q.sources.iter().map(|s| s.as_str().to_string()).collect());
            any_of(&mut b, "severity", q.severities.iter().map(|s| s.as_str().to_string()).collect());
            any_of(&mut b, "control_id", q.controls.clone());
            any_of(&mut b, "workflow_status", q.workflow.iter().map(|s| s.as_str().to_string()).collect());
            any_of(&mut b, "compliance_status", q.compliance.iter().map(|s| s.as_str().to_string()).collect());
            if let Some(failing) = q.failing {
                b.push(" AND failing = ").push_bind(failing);
            }
            if let Some(after) = &q.after {
                b.push(" AND uid > ").push_bind(after.clone());
            }
            b.push(" ORDER BY uid");
            if let Some(limit) = q.limit {
                b.push(" LIMIT ").push_bind(i64::from(limit));
            }
            b.build()
                .fetch_all(p)
                .await
                .and_then(|rows| rows.iter().map(|r| finding_row!(r)).collect::<Result<Vec<_>, _>>())
        })?;
        rows.into_iter().map(finding_from_row).collect()
    }

    /// How many findings are stored, per source.
    pub async fn finding_counts(&self) -> Result<BTreeMap<Source, i64>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT source, COUNT(*) FROM findings GROUP BY source",
        )
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().filter_map(|(s, n)| Source::parse(&s).map(|s| (s, n))).collect())
    }

    /// What scoring needs of every stored finding.
    pub async fn check_rows(&self) -> Result<Vec<CheckRow>, StoreError> {
        type Row =
            (String, String, String, String, String, Option<String>, Option<String>, String, Option<f64>, bool, i64);
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT check_key, source, account_id, resource_type, resource_id, control_id, finding_type, severity, \
             criticality, failing, updated_at FROM findings",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(CheckRow {
                    source: Source::parse(&r.1).ok_or_else(|| corrupt(&r.0, "source", &r.1))?,
                    severity: Severity::parse(&r.7).ok_or_else(|| corrupt(&r.0, "severity", &r.7))?,
                    check_key: r.0,
                    account_id: r.2,
                    resource_type: r.3,
                    resource_id: r.4,
                    control_id: r.5,
                    finding_type: r.6,
                    criticality: r.8,
                    failing: r.9,
                    updated_at: r.10,
                })
            })
            .collect()
    }

    /// Every rejected document recorded, newest first.
    pub async fn rejected_findings(&self) -> Result<Vec<RejectedRecord>, StoreError> {
        type Row = (String, String, String, Option<String>, String, i64, String, i64, i64, i64);
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT source, account_id, region, finding_id, reason, bytes, sample, times, first_seen, last_seen \
             FROM rejected_findings ORDER BY last_seen DESC, rejection_key",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(RejectedRecord {
                    source: Source::parse(&r.0).ok_or_else(|| corrupt("rejected", "source", &r.0))?,
                    account_id: r.1,
                    region: r.2,
                    finding_id: r.3,
                    reason: r.4,
                    bytes: r.5,
                    sample: r.6,
                    times: r.7,
                    first_seen: r.8,
                    last_seen: r.9,
                })
            })
            .collect()
    }

    /// Stores one snapshot of scores (all rows share `taken_at`).
    pub async fn insert_snapshot(&self, rows: &[SnapshotRow]) -> Result<(), StoreError> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO score_snapshots (taken_at, scope, scope_id, score, total_weight, failing_weight) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.taken_at)
                        .push_bind(r.scope.as_str())
                        .push_bind(r.scope_id.as_str())
                        .push_bind(r.score)
                        .push_bind(r.total_weight)
                        .push_bind(r.failing_weight);
                });
                q.push(" ON CONFLICT (taken_at, scope, scope_id) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Snapshots of one scope, oldest first.
    pub async fn snapshots(&self, scope: &str, scope_id: &str) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows: Vec<(i64, String, String, f64, i64, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT taken_at, scope, scope_id, score, total_weight, failing_weight FROM score_snapshots \
             WHERE scope = $1 AND scope_id = $2 ORDER BY taken_at",
        )
        .bind(scope)
        .bind(scope_id)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| SnapshotRow {
                taken_at: r.0,
                scope: r.1,
                scope_id: r.2,
                score: r.3,
                total_weight: r.4,
                failing_weight: r.5,
            })
            .collect())
    }
}
