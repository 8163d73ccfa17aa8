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

use super::sqlite_rows::{SqliteError, Statement, Value};
use super::{Backend, Store, StoreError, with_pool};
use crate::finding::{Compliance, Finding, Severity, Source, Workflow};
use crate::normalize::criticality_tag;

/// zstd's level for finding documents: the fastest of its regular levels. With the dictionary,
/// higher levels gain little on documents of 2 KB.
const DOCUMENT_LEVEL: i32 = 1;

/// The dictionary finding documents are compressed with, trained on ASFF documents by
/// `orgsec-bench dictionary`. A document of about 2 KB alone gives zstd too little to learn from
/// (it halves it, slowly); with the dictionary it comes out several times smaller, several
/// times faster. Each frame carries the dictionary's id: a new dictionary must be a new file,
/// kept beside this one for reading frames made with it.
static DICTIONARY: &[u8] = include_bytes!("findings.zdict");

fn encoder_dictionary() -> &'static zstd::dict::EncoderDictionary<'static> {
    static PREPARED: std::sync::OnceLock<zstd::dict::EncoderDictionary<'static>> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARY, DOCUMENT_LEVEL))
}

fn decoder_dictionary() -> &'static zstd::dict::DecoderDictionary<'static> {
    static PREPARED: std::sync::OnceLock<zstd::dict::DecoderDictionary<'static>> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICTIONARY))
}

fn compressor() -> Result<zstd::bulk::Compressor<'static>, StoreError> {
    zstd::bulk::Compressor::with_prepared_dictionary(encoder_dictionary())
        .map_err(|e| StoreError::Corrupt(format!("cannot start compressing documents: {e}")))
}

/// A finding's document as stored: one zstd frame of its JSON.
fn pack(compressor: &mut zstd::bulk::Compressor<'_>, raw: &str) -> Result<Vec<u8>, StoreError> {
    compressor
        .compress(raw.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("cannot compress a finding's document: {e}")))
}

/// A stored document back as the source's JSON.
fn unpack(uid: &str, document: &[u8]) -> Result<String, StoreError> {
    use std::io::Read as _;
    let fail =
        |e: std::io::Error| StoreError::Corrupt(format!("finding {uid}: its document cannot be decompressed: {e}"));
    let mut decoder =
        zstd::stream::read::Decoder::with_prepared_dictionary(document, decoder_dictionary()).map_err(fail)?;
    let mut raw = String::new();
    decoder.read_to_string(&mut raw).map_err(fail)?;
    Ok(raw)
}

/// Rows per multi-row INSERT statement: 24 columns x 400 stays under SQLite's and PostgreSQL's
/// limits on bound parameters. (On SQLite, findings go in one row per statement: see
/// [`UpsertFindings`].)
const ROWS_PER_STATEMENT: usize = 400;

/// Settings of a SQLite connection before it writes a batch: collection's writer is the one big
/// writer, and these keep its transactions off the disk until they commit, without touching
/// crash safety (the journal stays WAL, `synchronous` stays NORMAL).
///
/// - A page cache of 64 MiB (the default is 2 MiB) holds a transaction of a few thousand
///   findings (their rows and the index pages they touch); a smaller cache spills dirty pages
///   to the WAL before the commit and writes them again after. A sync reads every account at
///   once, so a transaction's uids fall all over the `uid` index (about 250 bytes per finding):
///   64 MiB instead of 32 keeps more of it in memory, which cut SQLite's CPU for that pattern by
///   about a fifth (docs/benchmarks.md).
/// - Temporary files in memory: an upsert may keep a statement journal (to undo a statement
///   that fails halfway), which otherwise is a file created and deleted per statement.
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
    ["PRAGMA cache_size = -65536", "PRAGMA temp_store = MEMORY", "PRAGMA wal_autocheckpoint = 16000"];

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
    /// The stored form of the documents of `findings[..documents.len()]`, compressed ahead of
    /// the write by [`Batch::pack`]; the writer compresses the rest itself.
    documents: Vec<Vec<u8>>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.watermarks.is_empty() && self.rejected.is_empty()
    }

    /// Compresses the findings' documents now, on the caller's thread. Collection calls it where
    /// it normalizes, which runs on every core, so that the single writer only writes.
    pub fn pack(&mut self) -> Result<(), StoreError> {
        if self.documents.len() < self.findings.len() {
            let mut compressor = compressor()?;
            for f in &self.findings[self.documents.len()..] {
                self.documents.push(pack(&mut compressor, &f.raw)?);
            }
        }
        Ok(())
    }

    /// Moves `other`'s findings, watermarks and rejections into this batch (with what
    /// [`Batch::pack`] already did for them, when it lines up).
    pub fn append(&mut self, other: Batch) {
        if self.documents.len() == self.findings.len() {
            self.documents.extend(other.documents);
        }
        self.findings.extend(other.findings);
        self.watermarks.extend(other.watermarks);
        self.rejected.extend(other.rejected);
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

/// A failing finding that a binding may remediate: what the dispatcher matches and keys a job by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingFinding {
    pub uid: String,
    pub source: Source,
    pub account_id: String,
    pub region: String,
    /// ASFF resource type (`AwsS3Bucket`, ...).
    pub resource_type: String,
    pub control_id: Option<String>,
    pub finding_type: Option<String>,
    /// When it last started failing (its generation): a job is keyed by it.
    pub failing_since: i64,
    /// When its source last updated it (Unix milliseconds).
    pub updated_at: i64,
    /// What it checks: two sources reporting one check share it.
    pub check_key: String,
}

/// A [`FailingFinding`] as read: uid, source, account, region, resource type, control, type,
/// generation, check.
type FailingRow = (String, String, String, String, String, Option<String>, Option<String>, i64, i64, String);

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
    /// None when the query left documents out.
    document: Option<Vec<u8>>,
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
            document: r.try_get(19)?,
        })
    }};
}

const FINDING_COLUMNS: &str = "uid, source, product_arn, finding_id, account_id, region, resource_type, resource_id, \
     resource_tags, control_id, finding_type, title, severity, workflow_status, compliance_status, active, \
     created_at, updated_at, check_key, document";

fn corrupt(uid: &str, what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("finding {uid}: {what} {value:?}"))
}

fn finding_from_row(r: FindingRow) -> Result<Finding, StoreError> {
    let uid = r.uid;
    let raw = match &r.document {
        Some(document) => unpack(&uid, document)?,
        None => String::new(),
    };
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
        raw,
    })
}

/// The findings of a batch as the upsert binds them.
struct Rows<'a> {
    findings: &'a [Finding],
    /// Each finding's resource tags, as JSON.
    tags: &'a [Cow<'a, str>],
    /// Each finding's stored document.
    documents: &'a [&'a [u8]],
    /// When the batch is written: `first_seen` of new findings, `last_seen` of all.
    now: i64,
}

/// The columns the upsert writes: [`FINDING_COLUMNS`] and those only the store sets.
fn upsert_columns() -> String {
    format!("{FINDING_COLUMNS}, criticality, failing, failing_since, first_seen, last_seen")
}

/// How many columns [`upsert_columns`] names.
const UPSERT_COLUMNS: usize = 25;

/// What an upsert does when the finding is stored: take the new version unless it is older.
const ON_CONFLICT: &str = " ON CONFLICT (uid) DO UPDATE SET source = excluded.source, \
     product_arn = excluded.product_arn, account_id = excluded.account_id, region = excluded.region, \
     resource_type = excluded.resource_type, resource_id = excluded.resource_id, \
     resource_tags = excluded.resource_tags, criticality = excluded.criticality, control_id = excluded.control_id, \
     finding_type = excluded.finding_type, title = excluded.title, severity = excluded.severity, \
     workflow_status = excluded.workflow_status, compliance_status = excluded.compliance_status, \
     active = excluded.active, failing = excluded.failing, \
     failing_since = CASE WHEN NOT excluded.failing THEN NULL WHEN findings.failing THEN COALESCE(findings.failing_since, excluded.failing_since) \
     ELSE excluded.failing_since END, created_at = excluded.created_at, \
     updated_at = excluded.updated_at, last_seen = excluded.last_seen, check_key = excluded.check_key, \
     document = excluded.document WHERE findings.updated_at <= excluded.updated_at";

/// A value of a findings column, typed as PostgreSQL wants it (SQLite stores booleans as integers).
#[derive(Clone, Copy)]
enum Column<'a> {
    Text(Option<&'a str>),
    Integer(Option<i64>),
    Real(Option<f64>),
    Bool(bool),
    Blob(&'a [u8]),
}

impl<'a> From<Column<'a>> for Value<'a> {
    fn from(c: Column<'a>) -> Self {
        match c {
            Column::Text(s) => s.into(),
            Column::Integer(n) => n.into(),
            Column::Real(x) => x.into(),
            Column::Bool(b) => b.into(),
            Column::Blob(b) => b.into(),
        }
    }
}

impl Rows<'_> {
    /// Finding `i`'s values, in the order of [`upsert_columns`].
    fn values(&self, i: usize) -> [Column<'_>; UPSERT_COLUMNS] {
        use Column::{Blob, Bool, Integer, Real, Text};
        let f = &self.findings[i];
        [
            Text(Some(&f.uid)),
            Text(Some(f.source.as_str())),
            Text(Some(&f.product_arn)),
            Text(Some(&f.id)),
            Text(Some(&f.account_id)),
            Text(Some(&f.region)),
            Text(Some(&f.resource_type)),
            Text(Some(&f.resource_id)),
            Text(Some(&self.tags[i])),
            Text(f.control_id.as_deref()),
            Text(f.finding_type.as_deref()),
            Text(Some(&f.title)),
            Text(Some(f.severity.as_str())),
            Text(Some(f.workflow_status.as_str())),
            Text(f.compliance_status.map(Compliance::as_str)),
            Bool(f.active),
            Integer(Some(f.created_at)),
            Integer(Some(f.updated_at)),
            Text(Some(&f.check_key)),
            Blob(self.documents[i]),
            Real(criticality_tag(&f.resource_tags)),
            Bool(f.is_failing()),
            // Kept from the stored row while it stays failing (see ON_CONFLICT).
            Integer(f.is_failing().then_some(f.updated_at)),
            Integer(Some(self.now)),
            Integer(Some(self.now)),
        ]
    }
}

/// The findings upsert, written the way each database takes rows fastest.
trait UpsertFindings {
    /// Upserts `rows` in the connection's open transaction; returns how many were written.
    async fn upsert_findings(&mut self, rows: &Rows<'_>) -> Result<u64, StoreError>;
}

impl UpsertFindings for sqlx::SqliteConnection {
    /// One prepared single-row statement, stepped per finding with its values bound in place
    /// (see [`sqlite_rows`](super::sqlite_rows)). The work is SQLite's own, on this task's
    /// thread: on a multi-threaded runtime the thread is handed over to it, so that the other
    /// tasks move to the runtime's other threads meanwhile.
    async fn upsert_findings(&mut self, rows: &Rows<'_>) -> Result<u64, StoreError> {
        let sql = {
            let marks = (1..=UPSERT_COLUMNS).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
            format!("INSERT INTO findings ({}) VALUES ({marks}){ON_CONFLICT}", upsert_columns())
        };
        let mut handle = self.lock_handle().await?;
        let mut write = move || -> Result<u64, SqliteError> {
            let mut statement = Statement::prepare(&mut handle, &sql)?;
            let mut written = 0;
            for i in 0..rows.findings.len() {
                let values = rows.values(i).map(Value::from);
                written += statement.run(&values).map_err(|e| SqliteError {
                    message: format!("finding {}: {}", rows.findings[i].uid, e.message),
                    ..e
                })?;
            }
            Ok(written)
        };
        let written = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        };
        Ok(written?)
    }
}

impl UpsertFindings for sqlx::PgConnection {
    /// Multi-row statements of [`ROWS_PER_STATEMENT`] rows, each one's arguments built while
    /// the server runs the one before.
    async fn upsert_findings(&mut self, rows: &Rows<'_>) -> Result<u64, StoreError> {
        let build = |chunk_no: usize| {
            let start = chunk_no * ROWS_PER_STATEMENT;
            if start >= rows.findings.len() {
                return None;
            }
            let end = (start + ROWS_PER_STATEMENT).min(rows.findings.len());
            let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO findings ({}) ", upsert_columns()));
            q.push_values(start..end, |mut b, i| {
                for value in rows.values(i) {
                    match value {
                        Column::Text(s) => b.push_bind(s),
                        Column::Integer(n) => b.push_bind(n),
                        Column::Real(x) => b.push_bind(x),
                        Column::Bool(v) => b.push_bind(v),
                        Column::Blob(d) => b.push_bind(d),
                    };
                }
            });
            q.push(ON_CONFLICT);
            Some(q)
        };
        let mut written = 0;
        let mut next = build(0);
        let mut chunk_no = 0;
        while let Some(mut q) = next.take() {
            let (result, built) = tokio::join!(q.build().execute(&mut *self), async { build(chunk_no + 1) });
            written += result?.rows_affected();
            next = built;
            chunk_no += 1;
        }
        Ok(written)
    }
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
        // The documents `Batch::pack` left to the writer.
        let rest = match &batch.findings[batch.documents.len()..] {
            [] => Vec::new(),
            findings => {
                let mut compressor = compressor()?;
                findings.iter().map(|f| pack(&mut compressor, &f.raw)).collect::<Result<Vec<_>, _>>()?
            }
        };
        let documents: Vec<&[u8]> = batch.documents.iter().chain(&rest).map(Vec::as_slice).collect();
        let rows = Rows { findings: &batch.findings, tags: &tags, documents: &documents, now };
        let sqlite = self.backend() == Backend::Sqlite;
        with_pool!(self, p => {
            let mut conn = p.acquire().await?;
            if sqlite {
                for pragma in SQLITE_WRITER_PRAGMAS {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            outcome.written = UpsertFindings::upsert_findings(&mut *tx, &rows).await?;
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
            Ok::<_, StoreError>(())
        })?;
        self.wrote(outcome.written);
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
            "UPDATE findings SET compliance_status = 'PASSED', failing = FALSE, failing_since = NULL \
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
        // Listings leave the documents out: they read back as an empty `raw`.
        let document = if q.with_raw { "document" } else { "CAST(NULL AS BYTEA) AS document" };
        let columns = FINDING_COLUMNS.replace(", document", &format!(", {document}"));
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

    /// Failing findings of any of `controls`, or of a type in `types` (exact, or a prefix when
    /// it ends with `/`), ordered by uid.
    pub async fn failing_findings(
        &self,
        controls: &[String],
        types: &[String],
    ) -> Result<Vec<FailingFinding>, StoreError> {
        if controls.is_empty() && types.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<FailingRow> = with_pool!(self, p => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT uid, source, account_id, region, resource_type, control_id, finding_type, \
                 COALESCE(failing_since, updated_at), updated_at, check_key FROM findings WHERE failing AND (1 = 0",
            );
            if !controls.is_empty() {
                b.push(" OR control_id IN (");
                let mut sep = b.separated(", ");
                for c in controls {
                    sep.push_bind(c.clone());
                }
                sep.push_unseparated(")");
            }
            for t in types {
                if t.ends_with('/') {
                    // LIKE narrows; the exact prefix test below decides (LIKE ignores ASCII case
                    // in SQLite).
                    let escaped = t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    b.push(" OR finding_type LIKE ").push_bind(format!("{escaped}%")).push(" ESCAPE '\\'");
                } else {
                    b.push(" OR finding_type = ").push_bind(t.clone());
                }
            }
            b.push(") ORDER BY uid");
            b.build_query_as().fetch_all(p).await
        })?;
        let wanted = |f: &FailingFinding| {
            f.control_id.as_ref().is_some_and(|c| controls.contains(c))
                || f.finding_type
                    .as_ref()
                    .is_some_and(|ft| types.iter().any(|t| t == ft || (t.ends_with('/') && ft.starts_with(t.as_str()))))
        };
        let mut out = Vec::with_capacity(rows.len());
        for (
            uid,
            source,
            account_id,
            region,
            resource_type,
            control_id,
            finding_type,
            failing_since,
            updated_at,
            check_key,
        ) in rows
        {
            let source = Source::parse(&source).ok_or_else(|| corrupt(&uid, "source", &source))?;
            let f = FailingFinding {
                uid,
                source,
                account_id,
                region,
                resource_type,
                control_id,
                finding_type,
                failing_since,
                updated_at,
                check_key,
            };
            if wanted(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// The stored finding `uid`, with its document.
    pub async fn finding(&self, uid: &str) -> Result<Option<Finding>, StoreError> {
        let columns = FINDING_COLUMNS;
        let row: Option<FindingRow> = with_pool!(self, p => {
            // The columns are this module's constant; the uid is bound.
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {columns} FROM findings WHERE uid = $1")))
                .bind(uid)
                .fetch_optional(p)
                .await
                .and_then(|r| r.as_ref().map(|r| finding_row!(r)).transpose())
        })?;
        row.map(finding_from_row).transpose()
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

    /// When the newest snapshot was taken (Unix milliseconds), if there is one: how a running
    /// `orgsec serve` notices that a CLI `orgsec sync` or `orgsec remediate` rescored.
    pub async fn latest_snapshot_at(&self) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>,) =
            with_pool!(self, p => sqlx::query_as("SELECT MAX(taken_at) FROM score_snapshots").fetch_one(p).await)?;
        Ok(row.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_back_as_they_went_in_and_smaller() {
        let raw = r#"{"SchemaVersion":"2018-10-08","Id":"arn:aws:securityhub:us-east-1:111111111111:security-control/EC2.13/finding/5b1f","ProductArn":"arn:aws:securityhub:us-east-1::product/aws/securityhub","AwsAccountId":"111111111111","Title":"Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22","Résumé":"ünïcödé ✓"}"#;
        let mut c = compressor().unwrap();
        let packed = pack(&mut c, raw).unwrap();
        assert!(packed.len() < raw.len() / 2, "{} bytes packed from {}", packed.len(), raw.len());
        assert_eq!(unpack("u", &packed).unwrap(), raw);
        assert_eq!(unpack("u", &pack(&mut c, "").unwrap()).unwrap(), "");
    }

    #[test]
    fn a_damaged_document_is_an_error_that_names_the_finding() {
        let mut packed = pack(&mut compressor().unwrap(), r#"{"Id":"x","Title":"something to compress"}"#).unwrap();
        let last = packed.len() - 1;
        packed[last] ^= 0xff;
        packed.truncate(last - 2);
        let err = unpack("securityhub|p|x", &packed).unwrap_err().to_string();
        assert!(err.contains("securityhub|p|x") && err.contains("cannot be decompressed"), "{err}");
    }

    #[test]
    fn packing_ahead_and_appending_keep_documents_in_line_with_findings() {
        let finding = |id: &str| Finding {
            uid: format!("securityhub|p|{id}"),
            source: Source::SecurityHub,
            product_arn: "p".into(),
            id: id.into(),
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            resource_type: "AwsAccount".into(),
            resource_id: "AWS::::Account:111111111111".into(),
            resource_tags: BTreeMap::new(),
            control_id: None,
            finding_type: None,
            title: String::new(),
            severity: Severity::Low,
            workflow_status: Workflow::New,
            compliance_status: None,
            active: true,
            created_at: 0,
            updated_at: 0,
            check_key: format!("finding|p|{id}"),
            raw: format!(r#"{{"Id":"{id}"}}"#),
        };
        let mut a = Batch { findings: vec![finding("a")], ..Batch::default() };
        a.pack().unwrap();
        let mut b = Batch { findings: vec![finding("b"), finding("c")], ..Batch::default() };
        b.pack().unwrap();
        a.append(b);
        a.append(Batch { findings: vec![finding("d")], ..Batch::default() });
        a.append(Batch { findings: vec![finding("e")], ..Batch::default() });
        assert_eq!(a.documents.len(), 3, "packed ahead: a, b, c");
        a.pack().unwrap();
        let back: Vec<String> = a.documents.iter().map(|d| unpack("u", d).unwrap()).collect();
        let want: Vec<String> = a.findings.iter().map(|f| f.raw.clone()).collect();
        assert_eq!(back, want);
    }
}
