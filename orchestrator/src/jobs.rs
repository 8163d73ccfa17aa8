//! Remediation jobs: the model, the operations around approval, and the engine that runs them.
//!
//! A job is one remediation of one finding by one binding's playbook. It lives in the store
//! (outbox style: whoever matches a finding to a binding only enqueues), so a crash loses
//! nothing, and it is keyed for idempotency by `binding|playbook|finding uid|finding generation`:
//! a finding delivered again maps to the job it already has. The generation is whatever changes
//! when a finding comes back after it was fixed (the dispatcher chooses it; the time the finding
//! last started failing is a good one), so a finding that reappears gets a new job while one
//! that is merely re-reported does not.
//!
//! # States
//!
//! ```text
//!            enqueue
//!               |
//!               v          plan (approve mode)               approve
//!   +------> QUEUED --lease--> RUNNING ----------> PENDING_APPROVAL ------> QUEUED ...
//!   |                          |   |  \ plan (dry_run)  -> PLANNED         \-> REJECTED
//!   | retry_later (backoff)    |   |   \ plan (notify)   -> NOTIFIED         \-> EXPIRED
//!   +--------------------------+   | execute
//!                                  v
//!                              VERIFYING --verify--> SUCCEEDED
//!                   (a permanent error, or too many attempts: FAILED)
//! ```
//!
//! Every mode plans first, so that an approver sees the plan and `notify` and `dry_run` have one
//! to send or record. Alongside its state a job records the last [`Step`] it completed; a job
//! whose worker died is leased again when its lease runs out and resumes after that step, so a
//! step recorded as done (an `execute` that succeeded, say) is not run again. A step that was
//! under way when the worker died may run twice, which is why playbooks are idempotent.
//!
//! # Engine
//!
//! A [`Worker`] loops: expire overdue approvals, lease due jobs (at most so many per account,
//! none of an account whose [`CircuitBreaker`] is open), and drive each leased job through its
//! next steps with a [`Runner`] (the playbooks), renewing the lease while a step runs. Every
//! change is a compare-and-set on the lease, so a worker that lost its job (it stalled past its
//! lease and another took over) stops instead of racing. Every step appends a record to the
//! hash-chained audit log ([`crate::audit`]), right after the change it records.
//!
//! A job that ends (SUCCEEDED, FAILED) or starts waiting for approval has after-effects: the
//! runner's [`Runner::finished`] or [`Runner::awaiting_approval`] (the change log, the NOTIFIED
//! mark of a fix that did not hold, notifications). The worker runs them in a task of their own
//! and records them done on the job (`reported_at`, cleared by every change of state). A worker
//! that died in between leaves them due; every worker sweeps for jobs left so for longer than
//! [`REPORT_GRACE`] and runs them, so they happen at least once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::audit::{AuditEntry, ENGINE};
use crate::binding::Mode;
use crate::store::{Advance, Enqueued, JobFilter, LeaseRequest, Store, StoreError};

/// Attempts per phase (before approval, after it) unless the dispatcher says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// How long a plan waits for approval by default: 5 days.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(5 * 24 * 3600);

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Planned; waits for an admin to approve or reject it, until it expires.
    PendingApproval,
    /// Waits for a worker (new, approved, or retrying after `next_attempt_at`).
    Queued,
    /// A worker holds it and is planning or executing.
    Running,
    /// Executed; a worker holds it and is checking that the finding is fixed.
    Verifying,
    Succeeded,
    Failed,
    Rejected,
    /// Not approved in time.
    Expired,
    /// `dry_run`: the plan is recorded, nothing changed.
    Planned,
    /// `notify`: the plan was sent, nothing changed.
    Notified,
}

impl JobState {
    pub const ALL: [JobState; 10] = [
        JobState::PendingApproval,
        JobState::Queued,
        JobState::Running,
        JobState::Verifying,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Rejected,
        JobState::Expired,
        JobState::Planned,
        JobState::Notified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::PendingApproval => "PENDING_APPROVAL",
            JobState::Queued => "QUEUED",
            JobState::Running => "RUNNING",
            JobState::Verifying => "VERIFYING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Rejected => "REJECTED",
            JobState::Expired => "EXPIRED",
            JobState::Planned => "PLANNED",
            JobState::Notified => "NOTIFIED",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether nothing more will happen to the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded
                | JobState::Failed
                | JobState::Rejected
                | JobState::Expired
                | JobState::Planned
                | JobState::Notified
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last step a job completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    None,
    Planned,
    Executed,
    Verified,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::None => "none",
            Step::Planned => "planned",
            Step::Executed => "executed",
            Step::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        [Step::None, Step::Planned, Step::Executed, Step::Verified].into_iter().find(|x| x.as_str() == s)
    }
}

/// `binding|playbook|finding uid|generation`. Binding and playbook names hold no `|`, so the
/// key is unambiguous even though a finding uid does.
pub fn idempotency_key(binding: &str, playbook: &str, finding_uid: &str, generation: i64) -> String {
    format!("{binding}|{playbook}|{finding_uid}|{generation}")
}

/// A job's id: the first 16 bytes of SHA-256 of its idempotency key, spelled like a UUID. Derived
/// rather than random so that the same key names the same job on every replica and after a
/// redelivery, and short enough to type in `orgsec remediations approve ID`.
pub fn job_id(idempotency_key: &str) -> String {
    let d = Sha256::digest(idempotency_key.as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// What a dispatcher asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub binding: String,
    pub playbook: String,
    pub mode: Mode,
    pub finding_uid: String,
    /// Changes when the finding comes back after it was fixed (see the module's documentation).
    pub finding_generation: i64,
    pub account_id: String,
    pub region: String,
    /// The binding's parameters for the playbook.
    pub parameters: BTreeMap<String, String>,
    /// Attempts per phase before the job fails ([`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: u32,
}

impl NewJob {
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.binding, &self.playbook, &self.finding_uid, self.finding_generation)
    }

    pub fn id(&self) -> String {
        job_id(&self.idempotency_key())
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: String,
    pub idempotency_key: String,
    pub binding: String,
    pub playbook: String,
    pub mode: Mode,
    pub finding_uid: String,
    pub finding_generation: i64,
    pub account_id: String,
    pub region: String,
    pub parameters: BTreeMap<String, String>,
    pub state: JobState,
    /// The last step completed.
    pub step: Step,
    /// Leases taken in the current phase; approval starts a new phase.
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub lease_owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    /// The playbook's plan, JSON.
    pub plan: Option<String>,
    /// What execute reported, JSON.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    pub approved_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    pub rejected_by: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// When it stops waiting for approval.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A failed job operation.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no remediation job {0}; `orgsec remediations list` shows them")]
    NotFound(String),
    #[error(
        "remediation job {id} is {state}, not waiting for approval: only PENDING_APPROVAL jobs can be approved or rejected"
    )]
    NotPending { id: String, state: JobState },
    #[error("remediation job {0} waited too long for approval and expired; a new finding will queue it again")]
    Expired(String),
}

fn entry(actor: &str, action: &str, job: &Job, details: serde_json::Value) -> AuditEntry {
    AuditEntry {
        actor: actor.to_string(),
        action: action.to_string(),
        job_id: Some(job.id.clone()),
        finding_uid: Some(job.finding_uid.clone()),
        account_id: Some(job.account_id.clone()),
        details,
    }
}

/// Enqueues `job` on behalf of `actor` and records it in the audit log (in the same
/// transaction) when it is new. A job that already exists for the same idempotency key is
/// returned as [`Enqueued::Existing`].
pub async fn enqueue(store: &Store, job: &NewJob, actor: &str, now: OffsetDateTime) -> Result<Enqueued, JobError> {
    let audit = |j: &Job| {
        let details = json!({"binding": j.binding, "playbook": j.playbook, "mode": j.mode.as_str(),
            "region": j.region, "generation": j.finding_generation, "parameters": j.parameters});
        entry(actor, "job.enqueued", j, details)
    };
    Ok(store.enqueue_job(job, now, Some(&audit)).await?)
}

/// Approves a job waiting for approval, on behalf of `by` (the service checks that `by` is an
/// admin), and records it.
pub async fn approve(store: &Store, id: &str, by: &str, now: OffsetDateTime) -> Result<Job, JobError> {
    let audit = |j: &Job| entry(by, "job.approved", j, json!({}));
    match store.approve_job(id, by, now, Some(&audit)).await? {
        Some(job) => Ok(job),
        None => Err(not_waiting(store, id, now).await),
    }
}

/// Rejects a job waiting for approval, on behalf of `by`, and records it with `reason`.
pub async fn reject(store: &Store, id: &str, by: &str, reason: &str, now: OffsetDateTime) -> Result<Job, JobError> {
    let audit = |j: &Job| entry(by, "job.rejected", j, json!({"reason": reason}));
    match store.reject_job(id, by, reason, now, Some(&audit)).await? {
        Some(job) => Ok(job),
        None => Err(not_waiting(store, id, now).await),
    }
}

async fn not_waiting(store: &Store, id: &str, now: OffsetDateTime) -> JobError {
    match store.get_job(id).await {
        Err(e) => e.into(),
        Ok(None) => JobError::NotFound(id.to_string()),
        Ok(Some(j)) if j.state == JobState::PendingApproval && j.expires_at.is_some_and(|t| t <= now) => {
            JobError::Expired(id.to_string())
        }
        Ok(Some(j)) if j.state == JobState::Expired => JobError::Expired(id.to_string()),
        Ok(Some(j)) => JobError::NotPending { id: id.to_string(), state: j.state },
    }
}

/// Expires every approval whose deadline passed at `now`, recording each; returns them.
pub async fn expire_approvals(store: &Store, now: OffsetDateTime) -> Result<Vec<Job>, JobError> {
    let audit = |j: &Job| {
        let deadline = j.expires_at.map(|t| t.unix_timestamp());
        entry(ENGINE, "job.expired", j, json!({"expires_at": deadline}))
    };
    Ok(store.expire_approvals(now, Some(&audit)).await?)
}

/// A failed playbook step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    pub message: String,
    /// Whether trying again later may succeed (throttling, a timeout, a role not yet
    /// assumable); a permanent error fails the job at once.
    pub retryable: bool,
}

impl RunError {
    pub fn retryable(message: impl Into<String>) -> Self {
        RunError { message: message.into(), retryable: true }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        RunError { message: message.into(), retryable: false }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The resource is in the state the playbook set.
    Fixed,
    /// Not (yet) fixed, and why: checked again later, as a retry.
    NotFixed(String),
}

/// What runs a job's playbook: implemented over the real playbooks by the remediation module,
/// and by fakes in tests. Each call gets the job as stored; `execute` must be idempotent, since a
/// worker that dies during it leaves it to be run again.
pub trait Runner: Send + Sync + 'static {
    /// What the playbook would change, as JSON (shown for approval, sent by `notify`).
    fn plan(&self, job: &Job) -> impl Future<Output = Result<serde_json::Value, RunError>> + Send;
    /// Makes the change; what it did, as JSON.
    fn execute(
        &self,
        job: &Job,
        plan: &serde_json::Value,
    ) -> impl Future<Output = Result<serde_json::Value, RunError>> + Send;
    /// Rereads the resource to check the change took.
    fn verify(
        &self,
        job: &Job,
        plan: &serde_json::Value,
    ) -> impl Future<Output = Result<Verification, RunError>> + Send;
    /// Sends the plan and the remediation steps to the binding's notification targets.
    fn notify(&self, job: &Job, plan: &serde_json::Value) -> impl Future<Output = Result<(), RunError>> + Send;
    /// A job's after-effects once it ended, SUCCEEDED or FAILED (the change log, outcome
    /// notifications, marking the finding): it cannot change the job any more. The worker runs
    /// it in a task of its own, so that a slow target never holds the worker, and records it
    /// done when it returns; one that a dead worker never finished runs again later (see
    /// [`Worker::report_stragglers`]), so it runs at least once.
    fn finished(&self, job: &Job) -> impl Future<Output = ()> + Send {
        let _ = job;
        async {}
    }
    /// A job's after-effects once its plan waits for approval (so that someone who can approve
    /// hears of it); run like [`Runner::finished`].
    fn awaiting_approval(&self, job: &Job) -> impl Future<Output = ()> + Send {
        let _ = job;
        async {}
    }
}

/// Exponential backoff with jitter: attempt `n` (from 1) waits between half and all of
/// `min(cap, base * 2^(n-1))`, chosen at random. The random half spreads retries of jobs that
/// failed together (an account throttled, say) so they do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(5), cap: Duration::from_secs(15 * 60) }
    }
}

impl Backoff {
    /// The longest wait after attempt `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after attempt `attempt`, jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        // A hasher with fresh random keys is a random source that needs no extra crate.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).saturating_add(1);
        half + Duration::from_nanos(h.finish() % spread)
    }
}

/// When an account's circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed steps in one account that open its circuit.
    pub threshold: u32,
    /// How long an open circuit keeps the account's jobs from being leased.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { threshold: 5, cool_down: Duration::from_secs(5 * 60) }
    }
}

/// A circuit breaker per account: after `threshold` consecutive failures in an account (its
/// role gone, its API throttling hard), its jobs are not leased for `cool_down`, so that one
/// broken account neither burns every job's attempts nor hogs the workers. After the cool-down
/// the account's jobs are leased again (half-open): one success closes the circuit, one more
/// failure opens it again at once.
///
/// It lives in memory, one per process, shared by that process's workers: several replicas each
/// learn about a broken account on their own, which costs a few more failed attempts and needs
/// no coordination.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    accounts: Mutex<HashMap<String, AccountCircuit>>,
}

#[derive(Debug, Default, Clone)]
struct AccountCircuit {
    failures: u32,
    open_until: Option<OffsetDateTime>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker { config, accounts: Mutex::new(HashMap::new()) }
    }

    /// Counts a failure in `account` at `now`; whether it opened the circuit.
    pub fn record_failure(&self, account: &str, now: OffsetDateTime) -> bool {
        let mut accounts = self.accounts.lock();
        let c = accounts.entry(account.to_string()).or_default();
        c.failures = c.failures.saturating_add(1);
        if c.failures >= self.config.threshold.max(1) {
            let was_open = c.open_until.is_some_and(|t| t > now);
            c.open_until = Some(now + self.config.cool_down);
            return !was_open;
        }
        false
    }

    /// A success in `account` closes its circuit.
    pub fn record_success(&self, account: &str) {
        self.accounts.lock().remove(account);
    }

    pub fn is_open(&self, account: &str, now: OffsetDateTime) -> bool {
        self.accounts.lock().get(account).and_then(|c| c.open_until).is_some_and(|t| t > now)
    }

    /// The accounts whose circuit is open at `now`, sorted.
    pub fn open_accounts(&self, now: OffsetDateTime) -> Vec<String> {
        let mut out: Vec<String> = self
            .accounts
            .lock()
            .iter()
            .filter(|(_, c)| c.open_until.is_some_and(|t| t > now))
            .map(|(a, _)| a.clone())
            .collect();
        out.sort();
        out
    }
}

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per worker (for instance `hostname:pid:n`): leases are checked against it.
    pub owner: String,
    /// How long a lease lasts without a heartbeat: how soon a dead worker's job is taken over.
    pub lease_for: Duration,
    /// How often the lease is renewed while a step runs; well under `lease_for`.
    pub heartbeat_every: Duration,
    /// Jobs leased (and run concurrently) at a time.
    pub batch: u32,
    /// Jobs of one account under lease at a time, across all workers.
    pub per_account_limit: u32,
    /// How long to wait when there is nothing to do.
    pub poll_every: Duration,
    pub backoff: Backoff,
    /// How long a plan waits for approval.
    pub approval_ttl: Duration,
}

impl WorkerConfig {
    pub fn new(owner: impl Into<String>) -> Self {
        WorkerConfig {
            owner: owner.into(),
            lease_for: Duration::from_secs(60),
            heartbeat_every: Duration::from_secs(15),
            batch: 32,
            per_account_limit: 2,
            poll_every: Duration::from_secs(2),
            backoff: Backoff::default(),
            approval_ttl: DEFAULT_APPROVAL_TTL,
        }
    }
}

/// Why a job's processing stopped early: the store failed, or another worker owns it now.
/// Either way the job stays as stored, and its lease running out hands it to a worker again.
#[derive(Debug)]
enum Stop {
    Lost,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Stop::Lost,
            e => Stop::Store(e),
        }
    }
}

/// Runs jobs; see the module's documentation. Several workers (in one process or several
/// replicas on one PostgreSQL) share the work through leases.
pub struct Worker<R> {
    store: Store,
    runner: Arc<R>,
    config: WorkerConfig,
    breaker: Arc<CircuitBreaker>,
    reports: Arc<Reports>,
}

/// How long a job's after-effects may take before a sweep takes it for lost (its worker died
/// between the job's state and them) and runs them again.
pub const REPORT_GRACE: Duration = Duration::from_secs(120);
/// How often a running worker sweeps for such jobs.
const REPORT_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long a stopping worker waits for the after-effects it started.
const SHUTDOWN_SETTLE: Duration = Duration::from_secs(10);

/// The after-effects a worker runs now, by job id, so that a sweep never runs one twice at once.
#[derive(Debug, Default)]
struct Reports {
    running: Mutex<std::collections::HashSet<String>>,
    idle: tokio::sync::Notify,
}

impl<R: Runner> Worker<R> {
    /// A worker with its own circuit breaker (defaults); share one with [`Worker::with_breaker`].
    pub fn new(store: Store, runner: Arc<R>, config: WorkerConfig) -> Self {
        Worker {
            store,
            runner,
            config,
            breaker: Arc::new(CircuitBreaker::new(BreakerConfig::default())),
            reports: Arc::default(),
        }
    }

    pub fn with_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = breaker;
        self
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Works until `shutdown` turns true (or its sender is dropped): then leases nothing more,
    /// finishes the jobs in hand and returns. Keeps up to `batch` jobs in flight, leasing more
    /// as each one stops (rather than waiting for a whole batch, whose slowest job, backing off
    /// from throttling, would hold the rest). A failing store is logged and retried after
    /// `poll_every`, never fatal.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Each job is its own task: a job in the middle of a store transaction must keep
        // running while this loop waits for the store itself (to lease), or the two would wait
        // on each other's lock.
        let this = Arc::new(self);
        let mut in_flight = tokio::task::JoinSet::new();
        let mut last_expiry: Option<tokio::time::Instant> = None;
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                while in_flight.join_next().await.is_some() {}
                this.settle_for(SHUTDOWN_SETTLE).await;
                return;
            }
            if last_sweep.is_none_or(|t| t.elapsed() >= REPORT_SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                if let Err(e) = this.report_stragglers().await {
                    tracing::warn!(owner = %this.config.owner, error = %e, "cannot look for unreported jobs; retrying");
                }
            }
            let free = (this.config.batch as usize).saturating_sub(in_flight.len());
            if free > 0 {
                // Approvals expire on the polling interval, not at every lease.
                if last_expiry.is_none_or(|t| t.elapsed() >= this.config.poll_every) {
                    last_expiry = Some(tokio::time::Instant::now());
                    if let Err(e) = expire_approvals(&this.store, this.now()).await {
                        tracing::warn!(owner = %this.config.owner, error = %e, "cannot expire approvals; retrying");
                    }
                }
                match this.lease(free as u32).await {
                    Ok(jobs) => {
                        for job in jobs {
                            let worker = this.clone();
                            in_flight.spawn(async move { worker.process(job).await });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(owner = %this.config.owner, error = %e, "remediation worker cannot lease jobs; retrying")
                    }
                }
            }
            if in_flight.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(this.config.poll_every) => {}
                    changed = shutdown.changed() => if changed.is_err() { return },
                }
                continue;
            }
            tokio::select! {
                _ = in_flight.join_next() => {}
                // Jobs may come due while those in flight wait (on a backoff, say).
                _ = tokio::time::sleep(this.config.poll_every) => {}
                changed = shutdown.changed() => if changed.is_err() {
                    while in_flight.join_next().await.is_some() {}
                    this.settle_for(SHUTDOWN_SETTLE).await;
                    return;
                },
            }
        }
    }

    /// Leases up to `limit` due jobs, skipping accounts whose circuit is open.
    async fn lease(&self, limit: u32) -> Result<Vec<Job>, JobError> {
        let now = OffsetDateTime::now_utc();
        let skip = self.breaker.open_accounts(now);
        Ok(self
            .store
            .lease_jobs(&LeaseRequest {
                owner: &self.config.owner,
                now,
                lease_for: self.config.lease_for,
                limit,
                per_account_limit: self.config.per_account_limit,
                skip_accounts: &skip,
            })
            .await?)
    }

    /// One round: expires overdue approvals, leases a batch and drives each job as far as it
    /// goes now. Returns how many jobs it leased.
    pub async fn tick(&self) -> Result<usize, JobError> {
        expire_approvals(&self.store, OffsetDateTime::now_utc()).await?;
        let jobs = self.lease(self.config.batch).await?;
        let n = jobs.len();
        futures_util::future::join_all(jobs.into_iter().map(|job| self.process(job))).await;
        Ok(n)
    }

    /// Works until no job is queued, running or verifying (jobs waiting for approval stay), or
    /// until `deadline`: for one-shot runs (`orgsec remediate`, the demo) rather than a service.
    /// Returns whether the queue went idle; jobs left behind (backing off before a retry, say)
    /// continue at the next run or in `orgsec serve`.
    pub async fn drain(&self, deadline: std::time::Instant) -> Result<bool, JobError> {
        let busy = vec![JobState::Queued, JobState::Running, JobState::Verifying];
        self.report_stragglers().await?;
        let idle = self.work_until_idle(&busy, deadline).await;
        // Their after-effects (notifications, the change log) run before a one-shot run ends.
        let left = deadline.saturating_duration_since(std::time::Instant::now()).max(SHUTDOWN_SETTLE);
        self.settle_for(left).await;
        idle
    }

    async fn work_until_idle(&self, busy: &[JobState], deadline: std::time::Instant) -> Result<bool, JobError> {
        loop {
            let leased = self.tick().await?;
            let open = self
                .store
                .list_jobs(&JobFilter { states: busy.to_vec(), limit: Some(1), ..JobFilter::default() })
                .await?;
            if open.is_empty() {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            if leased == 0 {
                // A job backing off before its next try, or held by another worker.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Runs `job`'s after-effects for its state in a task of their own, then records them
    /// done; nothing when they run already.
    fn report(&self, job: Job) {
        if !self.reports.running.lock().insert(job.id.clone()) {
            return;
        }
        let (runner, store, reports) = (self.runner.clone(), self.store.clone(), self.reports.clone());
        tokio::spawn(async move {
            match job.state {
                JobState::PendingApproval => runner.awaiting_approval(&job).await,
                _ => runner.finished(&job).await,
            }
            if let Err(e) = store.mark_job_reported(&job.id, job.state, OffsetDateTime::now_utc()).await {
                tracing::warn!(job = %job.id, error = %e, "cannot record a job's after-effects done; a sweep runs them again");
            }
            let mut running = reports.running.lock();
            running.remove(&job.id);
            if running.is_empty() {
                reports.idle.notify_waiters();
            }
        });
    }

    /// Runs the after-effects of jobs that ended (or began to wait for approval) more than
    /// [`REPORT_GRACE`] ago without them: their worker died in between. How many it started.
    pub async fn report_stragglers(&self) -> Result<usize, JobError> {
        let before = OffsetDateTime::now_utc() - REPORT_GRACE;
        let jobs = self.store.unreported_jobs(before, 100).await?;
        let n = jobs.len();
        for job in jobs {
            tracing::info!(job = %job.id, state = %job.state, "running the after-effects a stopped worker left undone");
            self.report(job);
        }
        Ok(n)
    }

    /// Waits until the after-effects this worker started have run.
    pub async fn settle(&self) {
        loop {
            let idle = self.reports.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.reports.running.lock().is_empty() {
                return;
            }
            idle.await;
        }
    }

    /// [`Worker::settle`], for at most `limit`: what is left runs again after a restart.
    async fn settle_for(&self, limit: Duration) {
        if tokio::time::timeout(limit, self.settle()).await.is_err() {
            tracing::warn!(owner = %self.config.owner, "stopping with job after-effects still running; a sweep runs them again");
        }
    }

    async fn process(&self, job: Job) {
        let id = job.id.clone();
        match self.drive(job).await {
            Ok(()) => {}
            Err(Stop::Lost) => {
                tracing::info!(job = %id, owner = %self.config.owner, "lost the lease on a remediation job; leaving it")
            }
            Err(Stop::Store(e)) => {
                tracing::warn!(job = %id, error = %e, "remediation job interrupted by a store error; it resumes when its lease runs out")
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Applies `change` to a job this worker holds and records `action` with `details`, both
    /// in one transaction.
    async fn advance(&self, job: &Job, change: Advance, action: &str, details: serde_json::Value) -> Result<Job, Stop> {
        let audit = |j: &Job| entry(ENGINE, action, j, details.clone());
        Ok(self.store.advance_job(&job.id, &self.config.owner, job.state, &change, self.now(), Some(&audit)).await?)
    }

    /// Drives a leased job through its steps until it waits (for approval, a retry) or ends.
    async fn drive(&self, mut job: Job) -> Result<(), Stop> {
        if job.attempts > job.max_attempts {
            let error = format!(
                "gave up after {} attempts; the last one ended without a result (its worker stopped){}",
                job.max_attempts,
                job.error.as_deref().map(|e| format!("; the error before: {e}")).unwrap_or_default()
            );
            return self.fail(job, error).await;
        }
        loop {
            let plan: serde_json::Value = match job.plan.as_deref() {
                Some(p) => serde_json::from_str(p).unwrap_or(serde_json::Value::String(p.to_string())),
                None => serde_json::Value::Null,
            };
            match (job.state, job.step) {
                (JobState::Running, Step::None) => match self.guarded(&job, self.runner.plan(&job)).await? {
                    Ok(plan) => {
                        let change =
                            Advance { plan: Some(plan.to_string()), ..Advance::to(JobState::Running, Step::Planned) };
                        job = self.advance(&job, change, "job.planned", json!({"plan": plan})).await?;
                    }
                    Err(e) => return self.step_failed(job, "plan", e).await,
                },
                (JobState::Running, Step::Planned) => match job.mode {
                    Mode::DryRun => {
                        self.advance(&job, Advance::to(JobState::Planned, Step::Planned), "job.dry_run", json!({}))
                            .await?;
                        return Ok(());
                    }
                    Mode::Notify => match self.guarded(&job, self.runner.notify(&job, &plan)).await? {
                        Ok(()) => {
                            let change = Advance::to(JobState::Notified, Step::Planned);
                            self.advance(&job, change, "job.notified", json!({})).await?;
                            return Ok(());
                        }
                        Err(e) => return self.step_failed(job, "notify", e).await,
                    },
                    Mode::Approve if job.approved_by.is_none() => {
                        let expires_at = self.now() + self.config.approval_ttl;
                        let change = Advance {
                            expires_at: Some(expires_at),
                            ..Advance::to(JobState::PendingApproval, Step::Planned)
                        };
                        let details = json!({"expires_at": expires_at.unix_timestamp()});
                        let waiting = self.advance(&job, change, "job.pending_approval", details).await?;
                        self.report(waiting);
                        return Ok(());
                    }
                    Mode::Auto | Mode::Approve => match self.guarded(&job, self.runner.execute(&job, &plan)).await? {
                        Ok(result) => {
                            let change = Advance {
                                result: Some(result.to_string()),
                                ..Advance::to(JobState::Verifying, Step::Executed)
                            };
                            job = self.advance(&job, change, "job.executed", json!({"result": result})).await?;
                        }
                        Err(e) => return self.step_failed(job, "execute", e).await,
                    },
                },
                // Requeued after a verification that did not see the fix yet: verify again.
                (JobState::Running, Step::Executed) => {
                    let change = Advance::to(JobState::Verifying, Step::Executed);
                    job = self.advance(&job, change, "job.verifying", json!({"attempt": job.attempts})).await?;
                }
                (JobState::Verifying, Step::Executed) => {
                    match self.guarded(&job, self.runner.verify(&job, &plan)).await? {
                        Ok(Verification::Fixed) => {
                            let change = Advance::to(JobState::Succeeded, Step::Verified);
                            let done = self.advance(&job, change, "job.succeeded", json!({})).await?;
                            self.breaker.record_success(&job.account_id);
                            self.report(done);
                            return Ok(());
                        }
                        Ok(Verification::NotFixed(why)) => {
                            let e = RunError::retryable(format!("not fixed yet: {why}"));
                            return self.step_failed(job, "verify", e).await;
                        }
                        Err(e) => return self.step_failed(job, "verify", e).await,
                    }
                }
                (state, step) => {
                    let error = format!(
                        "found {state} after step {step}, which no worker leaves a job in",
                        step = step.as_str()
                    );
                    return self.fail(job, error).await;
                }
            }
        }
    }

    /// Runs `step` while renewing the lease; [`Stop::Lost`] (and `step` dropped) as soon as the
    /// lease is someone else's. A heartbeat the store failed to take is tried again next time.
    async fn guarded<T>(
        &self,
        job: &Job,
        step: impl Future<Output = Result<T, RunError>>,
    ) -> Result<Result<T, RunError>, Stop> {
        tokio::pin!(step);
        let mut beat = tokio::time::interval(self.config.heartbeat_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        loop {
            tokio::select! {
                out = &mut step => return Ok(out),
                _ = beat.tick() => {
                    match self.store.heartbeat_job(&job.id, &self.config.owner, self.now(), self.config.lease_for).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict { .. }) => return Err(Stop::Lost),
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot renew a remediation job's lease"),
                    }
                }
            }
        }
    }

    async fn step_failed(&self, job: Job, step: &str, e: RunError) -> Result<(), Stop> {
        let now = self.now();
        if self.breaker.record_failure(&job.account_id, now) {
            let entry = AuditEntry {
                actor: ENGINE.to_string(),
                action: "account.circuit_opened".to_string(),
                job_id: None,
                finding_uid: None,
                account_id: Some(job.account_id.clone()),
                details: json!({"cool_down_seconds": self.breaker.config.cool_down.as_secs(), "last_error": e.message}),
            };
            self.store.append_audit(&entry, now).await?;
        }
        let error = format!("{step}: {}", e.message);
        if !e.retryable {
            return self.fail(job, error).await;
        }
        let next = now + self.config.backoff.delay(job.attempts);
        let audit = |j: &Job| {
            if j.state == JobState::Failed {
                entry(ENGINE, "job.failed", j, json!({"error": error, "attempts": j.attempts}))
            } else {
                let details = json!({"error": error, "attempt": j.attempts, "next_attempt_at": next.unix_timestamp()});
                entry(ENGINE, "job.retry", j, details)
            }
        };
        let after = self.store.retry_job_later(&job.id, &self.config.owner, &error, next, now, Some(&audit)).await?;
        if after.state == JobState::Failed {
            self.report(after);
        }
        Ok(())
    }

    async fn fail(&self, job: Job, error: String) -> Result<(), Stop> {
        let change = Advance { error: Some(error.clone()), ..Advance::to(JobState::Failed, job.step) };
        let done = self.advance(&job, change, "job.failed", json!({"error": error, "attempts": job.attempts})).await?;
        self.report(done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_the_key_and_look_like_uuids() {
        let a = job_id(&idempotency_key("b", "p", "securityhub|arn|1", 7));
        assert_eq!(a, job_id("b|p|securityhub|arn|1|7"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, job_id(&idempotency_key("b", "p", "securityhub|arn|1", 8)));
    }

    #[test]
    fn states_and_steps_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        for s in [Step::None, Step::Planned, Step::Executed, Step::Verified] {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitters_within_the_upper_half() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60) };
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(5), Duration::from_secs(16));
        assert_eq!(b.ceiling(7), Duration::from_secs(60));
        assert_eq!(b.ceiling(1000), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..50).map(|_| b.delay(4)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(8)), "{delays:?}");
        assert!(delays.iter().any(|d| *d != delays[0]), "no jitter: {delays:?}");
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_closes_on_success() {
        let b = CircuitBreaker::new(BreakerConfig { threshold: 3, cool_down: Duration::from_secs(60) });
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(!b.record_failure("333333333333", t0));
        assert!(!b.record_failure("333333333333", t0));
        b.record_success("333333333333");
        assert!(!b.record_failure("333333333333", t0));
        assert!(!b.record_failure("333333333333", t0));
        assert!(!b.is_open("333333333333", t0));
        assert!(b.record_failure("333333333333", t0), "the third consecutive failure opens it");
        assert!(b.is_open("333333333333", t0));
        assert!(!b.is_open("444444444444", t0));
        assert_eq!(b.open_accounts(t0), vec!["333333333333".to_string()]);
        let later = t0 + Duration::from_secs(61);
        assert!(b.open_accounts(later).is_empty(), "half-open after the cool-down");
        assert!(b.record_failure("333333333333", later), "one more failure opens it again");
        b.record_success("333333333333");
        assert!(!b.is_open("333333333333", later));
    }
}
