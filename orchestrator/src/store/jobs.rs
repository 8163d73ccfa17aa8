//! The `jobs` table: remediation jobs, durable and leased (the engine is [`crate::jobs`]).
//!
//! Every change of a job's state is one compare-and-set statement, written in one transaction
//! with the audit record the caller gives for it ([`AuditOf`]): leasing claims only jobs that
//! are due and not held, and a worker's later changes ([`Store::heartbeat_job`],
//! [`Store::advance_job`], [`Store::retry_job_later`]) only apply while it still holds the lease
//! and the job is in the state it expects. A worker that lost its lease (it stalled, another
//! worker took the job over) therefore gets [`StoreError::Conflict`] and stops, and no two
//! workers ever move the same job.
//!
//! Leasing claims due `QUEUED` jobs and `RUNNING`/`VERIFYING` jobs whose lease ran out (their
//! worker died): the latter resume from the step they recorded. It never lets an account have
//! more than the per-account limit of jobs under a live lease.
//!
//! - SQLite has one writer at a time, so one `UPDATE ... WHERE id IN (SELECT ...) RETURNING`
//!   statement is atomic: nobody can claim the same job or change the counts in between.
//! - PostgreSQL: candidates are locked with `FOR UPDATE SKIP LOCKED` (a job another replica is
//!   claiming or a worker is updating is skipped, not waited for), inside a transaction that
//!   first takes an advisory lock, so that two replicas leasing at the same moment cannot both
//!   count an account as having room and together exceed its limit. Leasing is one short
//!   statement, so serializing it costs little; the work itself runs in parallel.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::audit::{append_audit_in, lost_race};
use super::{Store, StoreError, from_millis, to_millis, with_pool};
use crate::audit::AuditEntry;
use crate::binding::Mode;
use crate::jobs::{Job, JobState, NewJob, Step};

const WHAT: &str = "job";

/// The key of PostgreSQL's advisory lock that serializes leasing (any constant unique to us).
const LEASE_LOCK: i64 = 0x6f72_6773_6563_6a62; // "orgsecjb"

/// How many due jobs a lease ranks per requested job (PostgreSQL also locks them), so that
/// jobs of accounts at their limit do not crowd out the others.
const SCAN_FACTOR: i64 = 8;

/// The columns every query returns.
const COLUMNS: &str = "id, idempotency_key, binding, playbook, mode, finding_uid, finding_generation, account_id, \
    region, parameters, state, step, attempts, max_attempts, next_attempt_at, lease_owner, lease_until, plan, \
    result, error, approved_by, approved_at, rejected_by, reason, expires_at, created_at, updated_at";

/// What `enqueue_job` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// A new job.
    Created(Job),
    /// The job that already had this idempotency key, unchanged.
    Existing(Job),
}

impl Enqueued {
    pub fn job(&self) -> &Job {
        match self {
            Enqueued::Created(j) | Enqueued::Existing(j) => j,
        }
    }

    pub fn into_job(self) -> Job {
        match self {
            Enqueued::Created(j) | Enqueued::Existing(j) => j,
        }
    }

    pub fn is_created(&self) -> bool {
        matches!(self, Enqueued::Created(_))
    }
}

/// A request for work.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// Who takes the lease: unique per worker, since every later change is checked against it.
    pub owner: &'a str,
    pub now: OffsetDateTime,
    /// How long the lease lasts unless renewed by [`Store::heartbeat_job`].
    pub lease_for: Duration,
    /// At most this many jobs.
    pub limit: u32,
    /// At most this many jobs of one account under a live lease, counting those already held.
    pub per_account_limit: u32,
    /// Accounts whose jobs are not handed out (their circuit breaker is open).
    pub skip_accounts: &'a [String],
}

/// A worker's change to a job it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub to: JobState,
    /// The step now completed.
    pub step: Step,
    /// Sets the plan (JSON) when given; otherwise keeps it.
    pub plan: Option<String>,
    /// Sets the result (JSON) when given; otherwise keeps it.
    pub result: Option<String>,
    /// Replaces the last error (`None` clears it).
    pub error: Option<String>,
    /// Replaces the approval deadline (`None` clears it).
    pub expires_at: Option<OffsetDateTime>,
}

impl Advance {
    /// A move to `to` having completed `step`, changing nothing else.
    pub fn to(to: JobState, step: Step) -> Advance {
        Advance { to, step, plan: None, result: None, error: None, expires_at: None }
    }
}

/// Which jobs to list. Empty vectors and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub states: Vec<JobState>,
    pub account_id: Option<String>,
    pub binding: Option<String>,
    pub finding_uid: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}

/// A job as dispatch sees it; `updated_at` in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMark {
    pub id: String,
    pub finding_uid: String,
    pub generation: i64,
    pub state: JobState,
    pub updated_at: i64,
}

/// A row as read, before its texts are parsed.
struct RawJob {
    id: String,
    idempotency_key: String,
    binding: String,
    playbook: String,
    mode: String,
    finding_uid: String,
    finding_generation: i64,
    account_id: String,
    region: String,
    parameters: String,
    state: String,
    step: String,
    attempts: i64,
    max_attempts: i64,
    next_attempt_at: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    plan: Option<String>,
    result: Option<String>,
    error: Option<String>,
    approved_by: Option<String>,
    approved_at: Option<i64>,
    rejected_by: Option<String>,
    reason: Option<String>,
    expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// Reads a [`RawJob`] from a row of either database (expanded once per row type).
macro_rules! raw_job {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = $row;
        Ok::<RawJob, sqlx::Error>(RawJob {
            id: r.try_get("id")?,
            idempotency_key: r.try_get("idempotency_key")?,
            binding: r.try_get("binding")?,
            playbook: r.try_get("playbook")?,
            mode: r.try_get("mode")?,
            finding_uid: r.try_get("finding_uid")?,
            finding_generation: r.try_get("finding_generation")?,
            account_id: r.try_get("account_id")?,
            region: r.try_get("region")?,
            parameters: r.try_get("parameters")?,
            state: r.try_get("state")?,
            step: r.try_get("step")?,
            attempts: r.try_get("attempts")?,
            max_attempts: r.try_get("max_attempts")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            lease_owner: r.try_get("lease_owner")?,
            lease_until: r.try_get("lease_until")?,
            plan: r.try_get("plan")?,
            result: r.try_get("result")?,
            error: r.try_get("error")?,
            approved_by: r.try_get("approved_by")?,
            approved_at: r.try_get("approved_at")?,
            rejected_by: r.try_get("rejected_by")?,
            reason: r.try_get("reason")?,
            expires_at: r.try_get("expires_at")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }};
}

fn from_raw(r: RawJob) -> Result<Job, StoreError> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("{what} of job {}: {v:?}", r.id));
    let mode = Mode::parse(&r.mode).ok_or_else(|| corrupt("mode", &r.mode))?;
    let state = JobState::parse(&r.state).ok_or_else(|| corrupt("state", &r.state))?;
    let step = Step::parse(&r.step).ok_or_else(|| corrupt("step", &r.step))?;
    let parameters: BTreeMap<String, String> =
        serde_json::from_str(&r.parameters).map_err(|e| corrupt("parameters", &e.to_string()))?;
    let opt_time = |ms: Option<i64>| ms.map(from_millis).transpose();
    Ok(Job {
        mode,
        state,
        step,
        parameters,
        finding_generation: r.finding_generation,
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(r.max_attempts).unwrap_or(u32::MAX),
        next_attempt_at: from_millis(r.next_attempt_at)?,
        lease_until: opt_time(r.lease_until)?,
        approved_at: opt_time(r.approved_at)?,
        expires_at: opt_time(r.expires_at)?,
        created_at: from_millis(r.created_at)?,
        updated_at: from_millis(r.updated_at)?,
        id: r.id,
        idempotency_key: r.idempotency_key,
        binding: r.binding,
        playbook: r.playbook,
        finding_uid: r.finding_uid,
        account_id: r.account_id,
        region: r.region,
        lease_owner: r.lease_owner,
        plan: r.plan,
        result: r.result,
        error: r.error,
        approved_by: r.approved_by,
        rejected_by: r.rejected_by,
        reason: r.reason,
    })
}

/// Runs a query that returns job rows on either pool and parses them. `$build` turns a SQL text
/// into a bound query; it is expanded once per database.
macro_rules! fetch_jobs {
    ($store:expr, $sql:expr, |$q:ident| $bind:expr) => {{
        let raws: Vec<RawJob> = with_pool!($store, p => {
            let $q = sqlx::query(sqlx::AssertSqlSafe($sql));
            let rows = $bind.fetch_all(p).await?;
            rows.iter().map(|r| raw_job!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        raws.into_iter().map(from_raw).collect::<Result<Vec<Job>, StoreError>>()
    }};
}

/// What a change records in the audit log, made from the job as changed. Written in the same
/// transaction as the change, so a crash leaves both or neither.
pub type AuditOf<'a> = Option<&'a (dyn Fn(&Job) -> AuditEntry + Sync)>;

/// How many times a change is retried when its audit record lost the race for its place.
const MAX_AUDIT_RACES: u32 = 1000;

/// Like [`fetch_jobs!`] for a statement that changes jobs: runs it in a transaction with the
/// audit record `$audit` makes of each changed job, retrying the whole transaction when another
/// writer took the audit log's next place first.
macro_rules! change_jobs {
    ($store:expr, $sql:expr, $audit:expr, $at:expr, |$q:ident| $bind:expr) => {{
        let sql: String = $sql;
        let audit: AuditOf<'_> = $audit;
        let at: i64 = $at;
        let mut outcome: Option<Result<Vec<Job>, StoreError>> = None;
        for _ in 0..MAX_AUDIT_RACES {
            let attempt: Result<Vec<Job>, sqlx::Error> = with_pool!($store, p => async {
                let mut tx = p.begin().await?;
                let $q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                let rows = $bind.fetch_all(&mut *tx).await?;
                let raws = rows.iter().map(|r| raw_job!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?;
                let mut jobs = Vec::with_capacity(raws.len());
                for raw in raws {
                    match from_raw(raw) {
                        Ok(j) => jobs.push(j),
                        Err(e) => return Err(sqlx::Error::Protocol(e.to_string())),
                    }
                }
                if let Some(audit) = audit {
                    for job in &jobs {
                        append_audit_in!(tx, &audit(job), at).await?;
                    }
                }
                tx.commit().await?;
                Ok(jobs)
            }.await);
            match attempt {
                Ok(jobs) => {
                    outcome = Some(Ok(jobs));
                    break;
                }
                Err(e) if lost_race(&e) => tokio::task::yield_now().await,
                Err(e) => {
                    outcome = Some(Err(e.into()));
                    break;
                }
            }
        }
        outcome.unwrap_or(Err(StoreError::Conflict { what: "audit log", key: "head".to_string() }))
    }};
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The SQL of one lease on SQLite: a single statement (see the module's documentation).
fn sqlite_lease_sql() -> String {
    // Candidates come from two bounded scans (due queued jobs in `next_attempt_at` order through
    // the `jobs_due` index, skipping accounts at their limit; and expired leases), so that a
    // lease costs the same with 10 jobs queued as with 10,000: ranking every queued job made
    // each lease scan the whole queue.
    let active = "(SELECT COUNT(*) FROM jobs a WHERE a.account_id = j.account_id \
                  AND a.state IN ('RUNNING', 'VERIFYING') AND a.lease_until >= $3)";
    format!(
        "UPDATE jobs SET state = CASE WHEN state = 'QUEUED' THEN 'RUNNING' ELSE state END, \
         lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id IN ( \
           SELECT id FROM ( \
             SELECT c.id, c.next_attempt_at, \
               ROW_NUMBER() OVER (PARTITION BY c.account_id ORDER BY c.next_attempt_at, c.id) AS rn, \
               c.active \
             FROM ( \
               SELECT * FROM ( \
                 SELECT j.id, j.account_id, j.next_attempt_at, {active} AS active FROM jobs j \
                 WHERE j.state = 'QUEUED' AND j.next_attempt_at <= $3 \
                   AND j.account_id NOT IN (SELECT value FROM json_each($6)) \
                   AND {active} < $5 \
                 ORDER BY j.next_attempt_at LIMIT $7) \
               UNION ALL \
               SELECT * FROM ( \
                 SELECT j.id, j.account_id, j.next_attempt_at, {active} AS active FROM jobs j \
                 WHERE j.state IN ('RUNNING', 'VERIFYING') AND j.lease_until < $3 \
                   AND j.account_id NOT IN (SELECT value FROM json_each($6)) \
                 ORDER BY j.next_attempt_at LIMIT $7) \
             ) AS c \
           ) AS ranked \
           WHERE rn + active <= $5 \
           ORDER BY next_attempt_at, id \
           LIMIT $4 \
         ) \
         RETURNING {COLUMNS}"
    )
}

/// The SQL of one lease on PostgreSQL, run after taking [`LEASE_LOCK`].
fn postgres_lease_sql() -> String {
    format!(
        "WITH candidates AS ( \
           SELECT c.id, c.account_id, c.next_attempt_at FROM jobs c \
           WHERE ((c.state = 'QUEUED' AND c.next_attempt_at <= $3) \
               OR (c.state IN ('RUNNING', 'VERIFYING') AND c.lease_until < $3)) \
             AND c.account_id NOT IN (SELECT jsonb_array_elements_text(CAST($6 AS jsonb))) \
             AND (SELECT COUNT(*) FROM jobs a WHERE a.account_id = c.account_id \
                    AND a.state IN ('RUNNING', 'VERIFYING') AND a.lease_until >= $3) < $5 \
           ORDER BY c.next_attempt_at, c.id \
           LIMIT $7 \
           FOR UPDATE SKIP LOCKED \
         ), ranked AS ( \
           SELECT k.id, k.next_attempt_at, \
             ROW_NUMBER() OVER (PARTITION BY k.account_id ORDER BY k.next_attempt_at, k.id) AS rn, \
             (SELECT COUNT(*) FROM jobs a WHERE a.account_id = k.account_id \
                AND a.state IN ('RUNNING', 'VERIFYING') AND a.lease_until >= $3) AS active \
           FROM candidates k \
         ), chosen AS ( \
           SELECT id AS chosen_id FROM ranked WHERE rn + active <= $5 ORDER BY next_attempt_at, id LIMIT $4 \
         ) \
         UPDATE jobs SET state = CASE WHEN state = 'QUEUED' THEN 'RUNNING' ELSE state END, \
           lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
         FROM chosen WHERE jobs.id = chosen.chosen_id \
         RETURNING {COLUMNS}"
    )
}

impl Store {
    /// Stores `job` as `QUEUED`, unless a job with its idempotency key exists: then that one is
    /// returned unchanged, so a finding delivered twice never makes two jobs.
    pub async fn enqueue_job(
        &self,
        job: &NewJob,
        now: OffsetDateTime,
        audit: AuditOf<'_>,
    ) -> Result<Enqueued, StoreError> {
        let key = job.idempotency_key();
        let parameters = serde_json::to_string(&job.parameters)
            .map_err(|e| StoreError::Corrupt(format!("parameters of binding {}: {e}", job.binding)))?;
        let now = to_millis(now);
        let created = change_jobs!(
            self,
            format!(
                "INSERT INTO jobs (id, idempotency_key, binding, playbook, mode, finding_uid, finding_generation, \
             account_id, region, parameters, state, step, attempts, max_attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'QUEUED', 'none', 0, $11, $12, $12, $12) \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING {COLUMNS}"
            ),
            audit,
            now,
            |q| q
                .bind(crate::jobs::job_id(&key))
                .bind(&key)
                .bind(&job.binding)
                .bind(&job.playbook)
                .bind(job.mode.as_str())
                .bind(&job.finding_uid)
                .bind(job.finding_generation)
                .bind(&job.account_id)
                .bind(&job.region)
                .bind(&parameters)
                .bind(i64::from(job.max_attempts))
                .bind(now)
        )?;
        if let Some(job) = created.into_iter().next() {
            return Ok(Enqueued::Created(job));
        }
        let existing =
            fetch_jobs!(self, format!("SELECT {COLUMNS} FROM jobs WHERE idempotency_key = $1"), |q| q.bind(&key))?;
        existing
            .into_iter()
            .next()
            .map(Enqueued::Existing)
            .ok_or_else(|| StoreError::Conflict { what: WHAT, key: key.clone() })
    }

    /// The job `id`, if there is one.
    pub async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let jobs = fetch_jobs!(self, format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"), |q| q.bind(id))?;
        Ok(jobs.into_iter().next())
    }

    /// Records that job `id`'s after-effects for `state` are done (see migration 0010); nothing
    /// when the job has moved on to another state since.
    pub async fn mark_job_reported(&self, id: &str, state: JobState, now: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET reported_at = $3 WHERE id = $1 AND state = $2 AND reported_at IS NULL",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(to_millis(now))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Jobs in SUCCEEDED, FAILED or PENDING_APPROVAL whose after-effects are not done, though
    /// they reached that state before `before`: those whose worker died in between. Oldest
    /// first, at most `limit`.
    pub async fn unreported_jobs(&self, before: OffsetDateTime, limit: u32) -> Result<Vec<Job>, StoreError> {
        fetch_jobs!(
            self,
            format!(
                "SELECT {COLUMNS} FROM jobs WHERE reported_at IS NULL AND updated_at < $1 \
             AND state IN ('SUCCEEDED', 'FAILED', 'PENDING_APPROVAL') ORDER BY updated_at, id LIMIT $2"
            ),
            |q| q.bind(to_millis(before)).bind(i64::from(limit))
        )
    }

    /// The ids of every job of `binding`, whatever their state.
    pub async fn job_ids_of_binding(&self, binding: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.job_marks_of_binding(binding).await?.into_iter().map(|m| m.id).collect())
    }

    /// What dispatch needs of each job of `binding`: its id, finding, generation, state and
    /// when it last changed.
    pub async fn job_marks_of_binding(&self, binding: &str) -> Result<Vec<JobMark>, StoreError> {
        let rows: Vec<(String, String, i64, String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, finding_uid, finding_generation, state, updated_at FROM jobs WHERE binding = $1",
        )
        .bind(binding)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(id, finding_uid, generation, state, updated_at)| {
                let state = JobState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("state of job {id}: {state:?}")))?;
                Ok(JobMark { id, finding_uid, generation, state, updated_at })
            })
            .collect()
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let states = serde_json::Value::from(filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>()).to_string();
        let in_states = match self.backend() {
            super::Backend::Sqlite => "state IN (SELECT value FROM json_each($1))",
            super::Backend::Postgres => "state IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
        };
        fetch_jobs!(
            self,
            format!(
                "SELECT {COLUMNS} FROM jobs WHERE ($2 OR {in_states}) \
             AND ($3 IS NULL OR account_id = $3) AND ($4 IS NULL OR binding = $4) AND ($5 IS NULL OR finding_uid = $5) \
             ORDER BY created_at DESC, id LIMIT $6"
            ),
            |q| q
                .bind(&states)
                .bind(filter.states.is_empty())
                .bind(filter.account_id.as_deref())
                .bind(filter.binding.as_deref())
                .bind(filter.finding_uid.as_deref())
                .bind(i64::from(filter.limit.unwrap_or(100)))
        )
    }

    /// Claims up to `req.limit` due jobs for `req.owner` (see the module's documentation): each
    /// comes back `RUNNING` (or still `VERIFYING`), leased until `now + lease_for`, its
    /// `attempts` counted, oldest due first.
    pub async fn lease_jobs(&self, req: &LeaseRequest<'_>) -> Result<Vec<Job>, StoreError> {
        if req.limit == 0 || req.per_account_limit == 0 {
            return Ok(Vec::new());
        }
        let now = to_millis(req.now);
        let until = now.saturating_add(millis(req.lease_for));
        let skip = serde_json::Value::from(req.skip_accounts.to_vec()).to_string();
        let raws: Vec<RawJob> = match &self.pool {
            super::Pool::Sqlite(p) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sqlite_lease_sql()))
                    .bind(req.owner)
                    .bind(until)
                    .bind(now)
                    .bind(i64::from(req.limit))
                    .bind(i64::from(req.per_account_limit))
                    .bind(&skip)
                    .bind(i64::from(req.limit).saturating_mul(SCAN_FACTOR))
                    .fetch_all(p)
                    .await?;
                rows.iter().map(|r| raw_job!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            super::Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LEASE_LOCK).execute(&mut *tx).await?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(postgres_lease_sql()))
                    .bind(req.owner)
                    .bind(until)
                    .bind(now)
                    .bind(i64::from(req.limit))
                    .bind(i64::from(req.per_account_limit))
                    .bind(&skip)
                    .bind(i64::from(req.limit).saturating_mul(SCAN_FACTOR))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter().map(|r| raw_job!(r)).collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        };
        let mut jobs = raws.into_iter().map(from_raw).collect::<Result<Vec<Job>, StoreError>>()?;
        jobs.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(jobs)
    }

    /// Extends `owner`'s lease on job `id` to `now + lease_for`. [`StoreError::Conflict`] when
    /// the lease is no longer `owner`'s: stop working on the job.
    pub async fn heartbeat_job(
        &self,
        id: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        let until = to_millis(now).saturating_add(millis(lease_for));
        let changed = with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND state IN ('RUNNING', 'VERIFYING')",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(StoreError::Conflict { what: WHAT, key: id.to_string() });
        }
        Ok(())
    }

    /// Moves job `id` from `from` as `change` says, if `owner` still holds its lease and it is
    /// still in `from` ([`StoreError::Conflict`] otherwise). Moving to anything but `RUNNING` or
    /// `VERIFYING` gives the lease up.
    pub async fn advance_job(
        &self,
        id: &str,
        owner: &str,
        from: JobState,
        change: &Advance,
        now: OffsetDateTime,
        audit: AuditOf<'_>,
    ) -> Result<Job, StoreError> {
        let release = !matches!(change.to, JobState::Running | JobState::Verifying);
        let jobs = change_jobs!(
            self,
            format!(
                "UPDATE jobs SET state = $4, step = $5, plan = COALESCE($6, plan), result = COALESCE($7, result), \
             error = $8, expires_at = $9, \
             lease_owner = CASE WHEN $10 THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN $10 THEN NULL ELSE lease_until END, updated_at = $11, \
             reported_at = CASE WHEN state = $4 THEN reported_at ELSE NULL END \
             WHERE id = $1 AND lease_owner = $2 AND state = $3 \
             RETURNING {COLUMNS}"
            ),
            audit,
            to_millis(now),
            |q| q
                .bind(id)
                .bind(owner)
                .bind(from.as_str())
                .bind(change.to.as_str())
                .bind(change.step.as_str())
                .bind(change.plan.as_deref())
                .bind(change.result.as_deref())
                .bind(change.error.as_deref())
                .bind(change.expires_at.map(to_millis))
                .bind(release)
                .bind(to_millis(now))
        )?;
        jobs.into_iter().next().ok_or_else(|| StoreError::Conflict { what: WHAT, key: id.to_string() })
    }

    /// Gives job `id` back for another attempt at `next_attempt_at` after `error`, or, when it
    /// has had `max_attempts` attempts, marks it `FAILED`. Only while `owner` holds the lease
    /// ([`StoreError::Conflict`] otherwise). The returned job says which it was.
    pub async fn retry_job_later(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
        now: OffsetDateTime,
        audit: AuditOf<'_>,
    ) -> Result<Job, StoreError> {
        let jobs = change_jobs!(
            self,
            format!(
                "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'FAILED' ELSE 'QUEUED' END, \
             error = $3, next_attempt_at = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5, \
             reported_at = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state IN ('RUNNING', 'VERIFYING') \
             RETURNING {COLUMNS}"
            ),
            audit,
            to_millis(now),
            |q| q.bind(id).bind(owner).bind(error).bind(to_millis(next_attempt_at)).bind(to_millis(now))
        )?;
        jobs.into_iter().next().ok_or_else(|| StoreError::Conflict { what: WHAT, key: id.to_string() })
    }

    /// Approves job `id`, waiting in `PENDING_APPROVAL` and not expired at `now`, on behalf of
    /// `by`: it is queued at once, with a fresh count of attempts. `None` when it is not waiting
    /// (any more).
    pub async fn approve_job(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
        audit: AuditOf<'_>,
    ) -> Result<Option<Job>, StoreError> {
        let now = to_millis(now);
        let jobs = change_jobs!(
            self,
            format!(
                "UPDATE jobs SET state = 'QUEUED', approved_by = $2, approved_at = $3, attempts = 0, \
             next_attempt_at = $3, expires_at = NULL, error = NULL, updated_at = $3 \
             WHERE id = $1 AND state = 'PENDING_APPROVAL' AND (expires_at IS NULL OR expires_at > $3) \
             RETURNING {COLUMNS}"
            ),
            audit,
            now,
            |q| q.bind(id).bind(by).bind(now)
        )?;
        Ok(jobs.into_iter().next())
    }

    /// Rejects job `id`, waiting in `PENDING_APPROVAL`, on behalf of `by` for `reason`. `None`
    /// when it is not waiting.
    pub async fn reject_job(
        &self,
        id: &str,
        by: &str,
        reason: &str,
        now: OffsetDateTime,
        audit: AuditOf<'_>,
    ) -> Result<Option<Job>, StoreError> {
        let jobs = change_jobs!(
            self,
            format!(
                "UPDATE jobs SET state = 'REJECTED', rejected_by = $2, reason = $3, expires_at = NULL, updated_at = $4 \
             WHERE id = $1 AND state = 'PENDING_APPROVAL' \
             RETURNING {COLUMNS}"
            ),
            audit,
            to_millis(now),
            |q| q.bind(id).bind(by).bind(reason).bind(to_millis(now))
        )?;
        Ok(jobs.into_iter().next())
    }

    /// Moves every job whose approval deadline has passed at `now` to `EXPIRED` and returns
    /// them. Each expired job is returned to exactly one caller, however many run this at once.
    pub async fn expire_approvals(&self, now: OffsetDateTime, audit: AuditOf<'_>) -> Result<Vec<Job>, StoreError> {
        change_jobs!(
            self,
            format!(
                "UPDATE jobs SET state = 'EXPIRED', updated_at = $1 \
             WHERE state = 'PENDING_APPROVAL' AND expires_at IS NOT NULL AND expires_at <= $1 \
             RETURNING {COLUMNS}"
            ),
            audit,
            to_millis(now),
            |q| q.bind(to_millis(now))
        )
    }
}
