//! The store: the orchestrator's state in SQLite (the embedded default, in WAL mode) or
//! PostgreSQL (for scale and several replicas), through sqlx.
//!
//! One [`Store`] wraps either pool. Each table has its own module (bindings, accounts, findings
//! with their watermarks and score snapshots, jobs, the audit log), whose queries are written once in
//! portable SQL with `$N` placeholders (which SQLite accepts too) and run on either pool through
//! [`with_pool!`]. The migrations in `orchestrator/migrations/` are the same for both databases
//! and are applied when the store opens.
//!
//! **Architecture Invariant:** only `store` knows SQL; the rest of the orchestrator sees plain
//! Rust types and [`StoreError`].

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;

mod accounts;
mod audit;
mod bindings;
mod changes;
mod findings;
mod jobs;
mod sqlite_rows;

pub use accounts::AccountRecord;
pub use changes::CheckState;
pub use jobs::{Advance, AuditOf, Enqueued, JobFilter, JobMark, LeaseRequest};

/// Runs `$body` with `$p` bound to the store's pool, whichever database it is: the body is
/// compiled once per database, so it may use each one's native types.
macro_rules! with_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
use with_pool;

pub use findings::{Batch, CheckRow, FailingFinding, FindingQuery, RejectedRecord, SnapshotRow, WriteOutcome};

/// The migrations, in order: `(version, description, SQL)`. A test checks that every file in
/// `orchestrator/migrations/` is listed.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "bindings", include_str!("../../migrations/0001_bindings.sql")),
    (2, "accounts", include_str!("../../migrations/0002_accounts.sql")),
    (3, "findings", include_str!("../../migrations/0003_findings.sql")),
    (4, "jobs", include_str!("../../migrations/0004_jobs.sql")),
    (5, "audit", include_str!("../../migrations/0005_audit.sql")),
    (6, "finding_documents", include_str!("../../migrations/0006_finding_documents.sql")),
    (7, "drop_findings_check", include_str!("../../migrations/0007_drop_findings_check.sql")),
    (8, "failing_since", include_str!("../../migrations/0008_failing_since.sql")),
    (9, "change_log", include_str!("../../migrations/0009_change_log.sql")),
    (10, "job_reports", include_str!("../../migrations/0010_job_reports.sql")),
    (11, "account_tags_read", include_str!("../../migrations/0011_account_tags_read.sql")),
];

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The orchestrator's state. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// Checkpoints of a SQLite file's WAL, run beside the writer (see [`Checkpoints`]).
    checkpoints: std::sync::Arc<Checkpoints>,
}

/// Findings written between two background checkpoints.
const CHECKPOINT_EVERY: u64 = 10_000;

/// Checkpoints in the background, for SQLite files in WAL mode.
///
/// SQLite copies the WAL back into the database (a checkpoint, with its `fsync`s) on the
/// connection whose commit finds the WAL past `wal_autocheckpoint`: the collection's one writer,
/// which then stops writing while the disk catches up. Instead, every [`CHECKPOINT_EVERY`]
/// findings written, a `PASSIVE` checkpoint runs on another connection (so another thread, with
/// its own share of the disk) while the writer goes on; `PASSIVE` never waits for the writer or
/// for readers. The writer's own automatic checkpoint stays as the backstop.
#[derive(Debug, Default)]
struct Checkpoints {
    /// A SQLite file in WAL mode (not PostgreSQL, not an in-memory database).
    enabled: bool,
    since: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicBool,
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    /// The migrations could not be applied (for instance a newer orgsec already migrated it).
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused a write made through its own API (the findings writer's).
    #[error("database error: {0}")]
    Sqlite(#[from] sqlite_rows::SqliteError),
    /// A stored value cannot be read back.
    #[error("a stored value cannot be read: {0}")]
    Corrupt(String),
    /// Creating something whose key is taken.
    #[error("{what} {key} already exists")]
    AlreadyExists { what: &'static str, key: String },
    /// Changing something that is not there.
    #[error("there is no {what} {key}")]
    NotFound { what: &'static str, key: String },
    /// Changing something that changed since it was read.
    #[error("{what} {key} changed meanwhile; read it again and retry")]
    Conflict { what: &'static str, key: String },
}

impl Store {
    /// Opens (creating a SQLite file if needed) the database at `url` and migrates it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { url: redact(url), source };
        let pool = if url.starts_with("sqlite:") {
            let memory = url_is_memory(url);
            let mut options = SqliteConnectOptions::from_str(url)
                .map_err(open_err)?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if !memory {
                // 16 KiB pages (for databases this creates; an existing file keeps its own):
                // finding rows of about 1 KB share pages instead of leaving a 4 KiB page each
                // partly empty, which cut the writer's time by about 30% (docs/benchmarks.md).
                options = options
                    .page_size(16_384)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal);
            }
            // An in-memory database lives in one connection.
            let max = if memory { 1 } else { 8 };
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(max)
                    .min_connections(if memory { 1 } else { 0 })
                    .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
                    .max_lifetime(if memory { None } else { Some(Duration::from_secs(1800)) })
                    .connect_with(options)
                    .await
                    .map_err(open_err)?,
            )
        } else {
            let options = PgConnectOptions::from_str(url).map_err(open_err)?;
            // One connection first, so that a wrong address or password fails at once instead
            // of after the pool's acquire timeout.
            PgConnection::connect_with(&options).await.map_err(open_err)?.close().await.map_err(open_err)?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(open_err)?,
            )
        };
        let checkpoints =
            Checkpoints { enabled: matches!(pool, Pool::Sqlite(_)) && !url_is_memory(url), ..Default::default() };
        let store = Store { pool, checkpoints: std::sync::Arc::new(checkpoints) };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = Migrator::with_migrations(
            MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        with_pool!(self, p => migrator.run(p).await)?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Counts `findings` written to a SQLite file and starts a background checkpoint when enough
    /// have been since the last one (see [`Checkpoints`]).
    fn wrote(&self, findings: u64) {
        use std::sync::atomic::Ordering;
        let Pool::Sqlite(pool) = &self.pool else { return };
        if !self.checkpoints.enabled {
            return;
        }
        let since = self.checkpoints.since.fetch_add(findings, Ordering::Relaxed) + findings;
        if since < CHECKPOINT_EVERY || self.checkpoints.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.checkpoints.since.store(0, Ordering::Relaxed);
        let (pool, checkpoints) = (pool.clone(), self.checkpoints.clone());
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::debug!(error = %e, "a background checkpoint failed; the writer's own will run");
            }
            checkpoints.running.store(false, Ordering::Release);
        });
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await);
    }
}

/// Whether a SQLite URL names an in-memory database.
fn url_is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Unix milliseconds, as timestamps are stored.
fn to_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(v, d, _)| format!("{v:04}_{d}.sql")).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(redact("postgres://orgsec:s3cret@db:5432/orgsec"), "postgres://orgsec:***@db:5432/orgsec");
        assert_eq!(redact("postgres://orgsec@db/orgsec"), "postgres://orgsec@db/orgsec");
        assert_eq!(redact("sqlite://orgsec.db"), "sqlite://orgsec.db");
    }

    #[test]
    fn timestamps_keep_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_795_305_600_123_456_789).unwrap();
        assert_eq!(to_millis(t), 1_795_305_600_123);
        assert_eq!(to_millis(from_millis(to_millis(t)).unwrap()), to_millis(t));
    }
}
