use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orgsec::audit::{self, AuditEntry, AuditRecord, VerifyError};
use orgsec::binding::Mode;
use orgsec::jobs::{
    self, Backoff, BreakerConfig, CircuitBreaker, Job, JobError, JobState, NewJob, RunError, Runner, Step,
    Verification, Worker, WorkerConfig,
};
use orgsec::store::{Advance, Enqueued, JobFilter, LeaseRequest, Store, StoreError};
use serde_json::json;
use time::OffsetDateTime;

use crate::support::{TestStore, stores};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_305_600 + secs).expect("time")
}

fn new_job(n: usize, account: &str, mode: Mode) -> NewJob {
    NewJob {
        binding: "close-ssh".into(),
        playbook: "revoke-public-ingress".into(),
        mode,
        finding_uid: format!("securityhub|arn:aws:securityhub:us-east-1::product/aws/securityhub|f-{n}"),
        finding_generation: 1,
        account_id: account.into(),
        region: "us-east-1".into(),
        parameters: BTreeMap::from([("ports".to_string(), "22".to_string())]),
        max_attempts: 3,
    }
}

fn lease<'a>(owner: &'a str, now: OffsetDateTime, limit: u32, per_account: u32) -> LeaseRequest<'a> {
    LeaseRequest {
        owner,
        now,
        lease_for: Duration::from_secs(60),
        limit,
        per_account_limit: per_account,
        skip_accounts: &[],
    }
}

async fn all_jobs(store: &Store) -> Vec<Job> {
    store.list_jobs(&JobFilter { limit: Some(10_000), ..Default::default() }).await.expect("list jobs")
}

async fn actions(store: &Store, job: &str) -> Vec<String> {
    store.audit_records_for_job(job).await.expect("audit").into_iter().map(|r| r.action).collect()
}

/// A playbook runner that counts calls and applies each finding's fix to a set, so that a fix
/// applied twice shows.
#[derive(Default)]
struct Fake {
    plans: Mutex<HashMap<String, u32>>,
    executes: Mutex<HashMap<String, u32>>,
    notifies: Mutex<HashMap<String, u32>>,
    /// Finding -> how many times execute found it unfixed and fixed it.
    fixes: Mutex<HashMap<String, u32>>,
    fixed: Mutex<HashSet<String>>,
    /// Accounts whose execute fails (retryably).
    failing_accounts: Mutex<HashSet<String>>,
    /// Execute fails permanently.
    permanent: AtomicBool,
    /// Verify never returns (a worker stuck, or about to die, after executing).
    hang_verify: AtomicBool,
    /// `job id:STATE` -> how many times its after-effects ran.
    reports: Mutex<HashMap<String, u32>>,
}

fn bump(m: &Mutex<HashMap<String, u32>>, k: &str) {
    *m.lock().unwrap().entry(k.to_string()).or_default() += 1;
}

fn count(m: &Mutex<HashMap<String, u32>>, k: &str) -> u32 {
    m.lock().unwrap().get(k).copied().unwrap_or(0)
}

impl Runner for Fake {
    async fn plan(&self, job: &Job) -> Result<serde_json::Value, RunError> {
        bump(&self.plans, &job.id);
        Ok(json!({"revoke": ["0.0.0.0/0:22"], "finding": job.finding_uid}))
    }

    async fn execute(&self, job: &Job, plan: &serde_json::Value) -> Result<serde_json::Value, RunError> {
        assert_eq!(plan["finding"], json!(job.finding_uid), "execute sees the recorded plan");
        if self.permanent.load(Ordering::SeqCst) {
            return Err(RunError::permanent("the security group is gone"));
        }
        if self.failing_accounts.lock().unwrap().contains(&job.account_id) {
            return Err(RunError::retryable("AssumeRole: throttled"));
        }
        bump(&self.executes, &job.id);
        if self.fixed.lock().unwrap().insert(job.finding_uid.clone()) {
            bump(&self.fixes, &job.finding_uid);
        }
        Ok(json!({"revoked": 1}))
    }

    async fn verify(&self, job: &Job, _plan: &serde_json::Value) -> Result<Verification, RunError> {
        if self.hang_verify.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(if self.fixed.lock().unwrap().contains(&job.finding_uid) {
            Verification::Fixed
        } else {
            Verification::NotFixed("the rule is still there".into())
        })
    }

    async fn notify(&self, job: &Job, _plan: &serde_json::Value) -> Result<(), RunError> {
        bump(&self.notifies, &job.id);
        Ok(())
    }

    async fn finished(&self, job: &Job) {
        bump(&self.reports, &format!("{}:{}", job.id, job.state));
    }

    async fn awaiting_approval(&self, job: &Job) {
        bump(&self.reports, &format!("{}:{}", job.id, job.state));
    }
}

fn config(owner: &str) -> WorkerConfig {
    WorkerConfig {
        lease_for: Duration::from_secs(30),
        heartbeat_every: Duration::from_millis(100),
        batch: 64,
        per_account_limit: 64,
        poll_every: Duration::from_millis(20),
        backoff: Backoff { base: Duration::from_millis(1), cap: Duration::from_millis(4) },
        ..WorkerConfig::new(owner)
    }
}

/// Ticks `worker` until every job is final (a bounded number of rounds, so a bug fails the test
/// instead of hanging it).
async fn drain<R: Runner>(store: &Store, worker: &Worker<R>) {
    for _ in 0..2000 {
        if all_jobs(store).await.iter().all(|j| j.state.is_final() || j.state == JobState::PendingApproval) {
            return;
        }
        if worker.tick().await.expect("tick") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    panic!("jobs did not finish: {:#?}", all_jobs(store).await);
}

#[tokio::test]
async fn a_redelivered_finding_never_makes_a_second_job() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let first =
            jobs::enqueue(store, &new_job(1, "333333333333", Mode::Auto), "dispatcher", t(0)).await.expect(label);
        let again =
            jobs::enqueue(store, &new_job(1, "333333333333", Mode::Auto), "dispatcher", t(5)).await.expect(label);
        assert!(first.is_created() && !again.is_created(), "{label}");
        assert_eq!(first.job(), again.job(), "{label}: the existing job comes back unchanged");
        let job = first.into_job();
        assert_eq!((job.state, job.step, job.attempts), (JobState::Queued, Step::None, 0));
        assert_eq!(job.id, new_job(1, "333333333333", Mode::Auto).id());
        assert_eq!(job.parameters.get("ports").map(String::as_str), Some("22"));

        let mut reappeared = new_job(1, "333333333333", Mode::Auto);
        reappeared.finding_generation = 2;
        let next = store.enqueue_job(&reappeared, t(9), None).await.expect(label);
        assert!(matches!(next, Enqueued::Created(_)), "{label}: a new generation is a new job");
        assert_eq!(all_jobs(store).await.len(), 2, "{label}");
        assert_eq!(actions(store, &job.id).await, vec!["job.enqueued"], "{label}: audited once");
        assert_eq!(store.get_job(&job.id).await.expect(label).as_ref(), Some(&job));
        assert_eq!(store.get_job("nope").await.expect(label), None);
    }
}

#[tokio::test]
async fn racing_workers_never_lease_the_same_job() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        for n in 0..60 {
            let account = ["333333333333", "444444444444", "555555555555"][n % 3];
            store.enqueue_job(&new_job(n, account, Mode::Auto), t(0), None).await.expect(label);
        }
        let mut tasks = Vec::new();
        for w in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut got = Vec::new();
                loop {
                    let jobs = store.lease_jobs(&lease(&owner, t(1), 4, 100)).await.expect("lease");
                    if jobs.is_empty() {
                        return got;
                    }
                    for j in jobs {
                        assert_eq!(j.lease_owner.as_deref(), Some(owner.as_str()));
                        got.push(j.id);
                    }
                }
            }));
        }
        let mut seen = HashSet::new();
        for task in tasks {
            for id in task.await.expect("task") {
                assert!(seen.insert(id.clone()), "{label}: job {id} leased twice");
            }
        }
        assert_eq!(seen.len(), 60, "{label}: every job leased once");
        assert!(all_jobs(store).await.iter().all(|j| j.state == JobState::Running && j.attempts == 1), "{label}");
    }
}

#[tokio::test]
async fn an_expired_lease_passes_to_another_worker_and_the_first_is_fenced_off() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let id =
            store.enqueue_job(&new_job(1, "333333333333", Mode::Auto), t(0), None).await.expect(label).into_job().id;
        let a = store.lease_jobs(&lease("a", t(1), 10, 10)).await.expect(label);
        assert_eq!(a.len(), 1);
        let planned = Advance { plan: Some("{}".into()), ..Advance::to(JobState::Verifying, Step::Executed) };
        store.advance_job(&id, "a", JobState::Running, &planned, t(2), None).await.expect(label);
        assert!(store.lease_jobs(&lease("b", t(30), 10, 10)).await.expect(label).is_empty(), "{label}: still held");
        store.heartbeat_job(&id, "a", t(30), Duration::from_secs(60)).await.expect(label);
        assert!(store.lease_jobs(&lease("b", t(80), 10, 10)).await.expect(label).is_empty(), "{label}: renewed");

        let b = store.lease_jobs(&lease("b", t(91), 10, 10)).await.expect(label);
        assert_eq!(b.len(), 1, "{label}: a's lease ran out at 90");
        let resumed = &b[0];
        assert_eq!((resumed.state, resumed.step, resumed.attempts), (JobState::Verifying, Step::Executed, 2));
        assert_eq!(resumed.plan.as_deref(), Some("{}"), "{label}: resumed, not restarted");

        let finish = Advance::to(JobState::Succeeded, Step::Verified);
        let late = store.advance_job(&id, "a", JobState::Verifying, &finish, t(92), None);
        assert!(matches!(late.await, Err(StoreError::Conflict { .. })), "{label}");
        assert!(matches!(
            store.heartbeat_job(&id, "a", t(92), Duration::from_secs(60)).await,
            Err(StoreError::Conflict { .. })
        ));
        let wrong_state = store.advance_job(&id, "b", JobState::Running, &finish, t(93), None);
        assert!(matches!(wrong_state.await, Err(StoreError::Conflict { .. })), "{label}: compare-and-set on the state");
        let done = store
            .advance_job(&id, "b", JobState::Verifying, &Advance::to(JobState::Succeeded, Step::Verified), t(93), None)
            .await
            .expect(label);
        assert_eq!((done.state, done.lease_owner, done.lease_until), (JobState::Succeeded, None, None));
        assert!(store.lease_jobs(&lease("c", t(10_000), 10, 10)).await.expect(label).is_empty(), "{label}: final");
    }
}

#[tokio::test]
async fn an_account_never_has_more_jobs_under_lease_than_its_limit() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        for n in 0..10 {
            let account = if n < 5 { "333333333333" } else { "444444444444" };
            store.enqueue_job(&new_job(n, account, Mode::Auto), t(0), None).await.expect(label);
        }
        let first = store.lease_jobs(&lease("a", t(1), 10, 2)).await.expect(label);
        let per = |jobs: &[Job], acct: &str| jobs.iter().filter(|j| j.account_id == acct).count();
        assert_eq!((per(&first, "333333333333"), per(&first, "444444444444")), (2, 2), "{label}");
        assert!(store.lease_jobs(&lease("b", t(2), 10, 2)).await.expect(label).is_empty(), "{label}: both full");

        let one = first.iter().find(|j| j.account_id == "333333333333").expect("a job of 3333");
        let done = Advance::to(JobState::Succeeded, Step::Verified);
        store.advance_job(&one.id, "a", JobState::Running, &done, t(3), None).await.expect(label);
        let more = store.lease_jobs(&lease("b", t(4), 10, 2)).await.expect(label);
        assert_eq!(more.len(), 1, "{label}: one place freed");
        assert_eq!(more[0].account_id, "333333333333");

        let skip = vec!["444444444444".to_string()];
        let after_expiry = LeaseRequest { skip_accounts: &skip, ..lease("c", t(1000), 10, 2) };
        let leased = store.lease_jobs(&after_expiry).await.expect(label);
        assert!(!leased.is_empty() && leased.iter().all(|j| j.account_id == "333333333333"), "{label}: skipped");
    }
}

#[tokio::test]
async fn approval_is_required_recorded_and_expires() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        let worker = Worker::new(store.clone(), fake.clone(), config("w"));
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                jobs::enqueue(store, &new_job(n, "333333333333", Mode::Approve), "dispatcher", t(0))
                    .await
                    .expect(label)
                    .into_job()
                    .id,
            );
        }
        let before = OffsetDateTime::now_utc();
        drain(store, &worker).await;
        for id in &ids {
            let job = store.get_job(id).await.expect(label).expect("job");
            assert_eq!((job.state, job.step), (JobState::PendingApproval, Step::Planned), "{label}");
            assert!(job.plan.as_deref().is_some_and(|p| p.contains("0.0.0.0/0:22")), "{label}: the plan is shown");
            assert!(job.lease_owner.is_none());
            let ttl = job.expires_at.expect("a deadline") - before;
            assert!(
                ttl >= Duration::from_secs(5 * 24 * 3600) && ttl < Duration::from_secs(5 * 24 * 3600 + 600),
                "{ttl}"
            );
            assert_eq!(count(&fake.executes, id), 0, "{label}: nothing changes before approval");
        }

        let now = OffsetDateTime::now_utc();
        let approved = jobs::approve(store, &ids[0], "alice", now).await.expect(label);
        assert_eq!(
            (approved.state, approved.approved_by.as_deref(), approved.attempts),
            (JobState::Queued, Some("alice"), 0)
        );
        let rejected = jobs::reject(store, &ids[1], "bob", "change freeze", now).await.expect(label);
        assert_eq!((rejected.state, rejected.rejected_by.as_deref()), (JobState::Rejected, Some("bob")));
        assert_eq!(rejected.reason.as_deref(), Some("change freeze"));
        assert!(matches!(
            jobs::approve(store, &ids[1], "alice", now).await,
            Err(JobError::NotPending { state: JobState::Rejected, .. })
        ));
        assert!(matches!(jobs::approve(store, "no-such-job", "alice", now).await, Err(JobError::NotFound(_))));

        let six_days = now + Duration::from_secs(6 * 24 * 3600);
        assert!(matches!(jobs::approve(store, &ids[2], "alice", six_days).await, Err(JobError::Expired(_))), "{label}");
        let expired = jobs::expire_approvals(store, six_days).await.expect(label);
        assert_eq!(expired.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), vec![ids[2].as_str()], "{label}");
        assert!(jobs::expire_approvals(store, six_days).await.expect(label).is_empty(), "{label}: expired once");
        assert!(matches!(jobs::reject(store, &ids[2], "bob", "late", six_days).await, Err(JobError::Expired(_))));

        drain(store, &worker).await;
        let done = store.get_job(&ids[0]).await.expect(label).expect("job");
        assert_eq!((done.state, done.step), (JobState::Succeeded, Step::Verified), "{label}");
        assert_eq!((count(&fake.plans, &ids[0]), count(&fake.executes, &ids[0])), (1, 1), "{label}: planned once");
        assert_eq!(
            actions(store, &ids[0]).await,
            ["job.enqueued", "job.planned", "job.pending_approval", "job.approved", "job.executed", "job.succeeded"],
            "{label}"
        );
        assert_eq!(actions(store, &ids[1]).await.last().map(String::as_str), Some("job.rejected"));
        assert_eq!(actions(store, &ids[2]).await.last().map(String::as_str), Some("job.expired"));
        let approval = store.audit_records_for_job(&ids[0]).await.expect(label);
        assert_eq!(approval[3].actor, "alice", "{label}: the approver is on the record");
        audit::verify_chain(store).await.expect(label);
    }
}

#[tokio::test]
async fn notify_and_dry_run_change_nothing() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        let worker = Worker::new(store.clone(), fake.clone(), config("w"));
        let notify =
            store.enqueue_job(&new_job(1, "333333333333", Mode::Notify), t(0), None).await.expect(label).into_job();
        let dry =
            store.enqueue_job(&new_job(2, "333333333333", Mode::DryRun), t(0), None).await.expect(label).into_job();
        drain(store, &worker).await;
        let notify = store.get_job(&notify.id).await.expect(label).expect("job");
        let dry = store.get_job(&dry.id).await.expect(label).expect("job");
        assert_eq!(notify.state, JobState::Notified, "{label}");
        assert_eq!(dry.state, JobState::Planned, "{label}");
        assert!(dry.plan.is_some() && notify.plan.is_some());
        assert_eq!(count(&fake.notifies, &notify.id), 1);
        assert_eq!(count(&fake.notifies, &dry.id), 0);
        assert!(fake.executes.lock().unwrap().is_empty(), "{label}: nothing executed");
    }
}

#[tokio::test]
async fn retries_back_off_until_max_attempts_then_fail() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        // The store: a retry waits for its time, and the last attempt fails the job.
        let id =
            store.enqueue_job(&new_job(1, "333333333333", Mode::Auto), t(0), None).await.expect(label).into_job().id;
        for attempt in 1..=3u32 {
            let now = t(i64::from(attempt) * 100);
            let leased = store.lease_jobs(&lease("a", now, 1, 1)).await.expect(label);
            assert_eq!(leased.len(), 1, "{label}: attempt {attempt}");
            assert_eq!(leased[0].attempts, attempt);
            let job = store
                .retry_job_later(&id, "a", "throttled", now + Duration::from_secs(50), now, None)
                .await
                .expect(label);
            assert_eq!(job.error.as_deref(), Some("throttled"));
            if attempt < 3 {
                assert_eq!((job.state, job.lease_owner), (JobState::Queued, None), "{label}");
                assert!(
                    store.lease_jobs(&lease("a", now + Duration::from_secs(49), 1, 1)).await.expect(label).is_empty()
                );
            } else {
                assert_eq!(job.state, JobState::Failed, "{label}: out of attempts");
            }
        }

        // The engine: a retryable error retries with backoff, a permanent one fails at once.
        let fake = Arc::new(Fake::default());
        fake.failing_accounts.lock().unwrap().insert("444444444444".into());
        let breaker =
            Arc::new(CircuitBreaker::new(BreakerConfig { threshold: 100, cool_down: Duration::from_secs(60) }));
        let worker = Worker::new(store.clone(), fake.clone(), config("w")).with_breaker(breaker);
        let retried =
            store.enqueue_job(&new_job(2, "444444444444", Mode::Auto), t(0), None).await.expect(label).into_job().id;
        drain(store, &worker).await;
        let job = store.get_job(&retried).await.expect(label).expect("job");
        assert_eq!((job.state, job.attempts), (JobState::Failed, 3), "{label}");
        assert!(job.error.as_deref().is_some_and(|e| e.contains("execute: AssumeRole: throttled")), "{:?}", job.error);
        assert_eq!(count(&fake.plans, &retried), 1, "{label}: the plan is kept across retries");
        assert_eq!(actions(store, &retried).await, ["job.planned", "job.retry", "job.retry", "job.failed"], "{label}");

        fake.permanent.store(true, Ordering::SeqCst);
        let permanent =
            store.enqueue_job(&new_job(3, "555555555555", Mode::Auto), t(0), None).await.expect(label).into_job().id;
        drain(store, &worker).await;
        let job = store.get_job(&permanent).await.expect(label).expect("job");
        assert_eq!((job.state, job.attempts), (JobState::Failed, 1), "{label}");
        assert!(job.error.as_deref().is_some_and(|e| e.contains("the security group is gone")));
    }
}

#[tokio::test]
async fn a_failing_account_trips_its_circuit_breaker() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        fake.failing_accounts.lock().unwrap().insert("333333333333".into());
        let breaker =
            Arc::new(CircuitBreaker::new(BreakerConfig { threshold: 2, cool_down: Duration::from_secs(3600) }));
        let cfg = WorkerConfig { batch: 1, per_account_limit: 1, ..config("w") };
        let worker = Worker::new(store.clone(), fake.clone(), cfg).with_breaker(breaker.clone());
        let mut broken = Vec::new();
        for n in 0..4 {
            let mut job = new_job(n, "333333333333", Mode::Auto);
            job.max_attempts = 50;
            broken.push(store.enqueue_job(&job, t(0), None).await.expect(label).into_job().id);
        }
        let healthy =
            store.enqueue_job(&new_job(9, "444444444444", Mode::Auto), t(0), None).await.expect(label).into_job().id;
        for _ in 0..40 {
            worker.tick().await.expect(label);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(breaker.is_open("333333333333", OffsetDateTime::now_utc()), "{label}");
        let attempts: u32 = {
            let mut sum = 0;
            for id in &broken {
                sum += store.get_job(id).await.expect(label).expect("job").attempts;
            }
            sum
        };
        assert_eq!(attempts, 2, "{label}: two failures opened the circuit and nothing was leased after");
        assert_eq!(store.get_job(&healthy).await.expect(label).expect("job").state, JobState::Succeeded, "{label}");
        let opened = store.audit_records(0, 1000).await.expect(label);
        assert_eq!(opened.iter().filter(|r| r.action == "account.circuit_opened").count(), 1, "{label}");
    }
}

#[tokio::test]
async fn the_audit_chain_verifies_under_concurrent_writers_and_names_a_tampered_record() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let mut tasks = Vec::new();
        for w in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let entry = AuditEntry {
                        actor: format!("writer-{w}"),
                        action: "test.append".into(),
                        job_id: None,
                        finding_uid: None,
                        account_id: Some("333333333333".into()),
                        details: json!({"i": i, "w": w}),
                    };
                    store.append_audit(&entry, OffsetDateTime::now_utc()).await.expect("append");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        let report = audit::verify_chain(store).await.expect(label);
        assert_eq!(report.records, 60, "{label}");
        let records = store.audit_records(0, 100).await.expect(label);
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>());
        assert_eq!(store.audit_head().await.expect(label), Some((60, report.head.clone())));

        // A flipped byte in any record is found, at that record.
        let mut tampered: Vec<AuditRecord> = records.clone();
        let mut details = tampered[24].details.clone().into_bytes();
        details[5] ^= 0x01;
        tampered[24].details = String::from_utf8(details).expect("utf-8");
        assert_eq!(audit::verify(&tampered).expect_err("tampered").seq, 25, "{label}");
    }
}

#[tokio::test]
async fn an_edited_row_in_the_database_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("orgsec.db").display());
    let store = Store::open(&url).await.expect("open");
    for i in 0..5 {
        let entry = AuditEntry {
            actor: "alice".into(),
            action: "job.approved".into(),
            job_id: Some(format!("job-{i}")),
            finding_uid: None,
            account_id: None,
            details: json!({}),
        };
        store.append_audit(&entry, t(i)).await.expect("append");
    }
    audit::verify_chain(&store).await.expect("intact");
    let raw = sqlx::SqlitePool::connect(&url).await.expect("connect");
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3").execute(&raw).await.expect("tamper");
    match audit::verify_chain(&store).await {
        Err(VerifyError::Broken(b)) => assert_eq!(b.seq, 3, "{b}"),
        other => panic!("tampering not detected: {other:?}"),
    }
    sqlx::query("UPDATE audit_log SET actor = 'alice' WHERE seq = 3").execute(&raw).await.expect("restore");
    sqlx::query("DELETE FROM audit_log WHERE seq = 4").execute(&raw).await.expect("remove");
    match audit::verify_chain(&store).await {
        Err(VerifyError::Broken(b)) => assert_eq!(b.seq, 4, "{b}"),
        other => panic!("a removed record not detected: {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_killed_after_executing_is_resumed_without_executing_again() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        let mut ids = Vec::new();
        for n in 0..30 {
            let account = ["333333333333", "444444444444", "555555555555"][n % 3];
            ids.push(
                jobs::enqueue(store, &new_job(n, account, Mode::Auto), "dispatcher", t(0))
                    .await
                    .expect(label)
                    .into_job()
                    .id,
            );
        }
        // The first worker executes every job, then dies while verifying.
        fake.hang_verify.store(true, Ordering::SeqCst);
        // A lease long enough that heartbeats on a loaded machine keep it; the heir waits it out.
        let cfg = WorkerConfig { lease_for: Duration::from_secs(2), ..config("doomed") };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let doomed = tokio::spawn(Worker::new(store.clone(), fake.clone(), cfg).run(shutdown));
        for _ in 0..2000 {
            let jobs = all_jobs(store).await;
            if jobs.iter().all(|j| j.step == Step::Executed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(all_jobs(store).await.iter().all(|j| j.state == JobState::Verifying), "{label}: all executed");
        doomed.abort();
        let _ = doomed.await;
        drop(stop);

        // Another worker takes over once the leases run out, and only verifies.
        fake.hang_verify.store(false, Ordering::SeqCst);
        let heir = Worker::new(store.clone(), fake.clone(), config("heir"));
        drain(store, &heir).await;
        for id in &ids {
            let job = store.get_job(id).await.expect(label).expect("job");
            assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2), "{label}: {job:?}");
            assert_eq!(count(&fake.executes, id), 1, "{label}: a recorded step is not redone");
            assert_eq!(count(&fake.fixes, &job.finding_uid), 1);
            let trail = actions(store, id).await;
            assert_eq!(trail, ["job.enqueued", "job.planned", "job.executed", "job.succeeded"], "{label}");
        }
        audit::verify_chain(store).await.expect(label);
    }
}

#[tokio::test]
async fn workers_aborted_at_arbitrary_points_lose_nothing_and_fix_each_finding_once() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        let total = 40;
        for n in 0..total {
            let account = ["333333333333", "444444444444", "555555555555", "666666666666"][n % 4];
            // Every kill costs the jobs in hand an attempt; allow plenty (the guard against a job
            // that kills its worker every time is what gives up after `max_attempts`).
            let job = NewJob { max_attempts: 100, ..new_job(n, account, Mode::Auto) };
            jobs::enqueue(store, &job, "dispatcher", t(0)).await.expect(label);
        }
        // Workers die after different amounts of progress: each is aborted as soon as a few
        // more jobs succeeded (or a short while passed), mid-step or between steps.
        let cfg = |owner: String| WorkerConfig {
            lease_for: Duration::from_millis(300),
            batch: 6,
            per_account_limit: 2,
            ..config(&owner)
        };
        for round in 0..8 {
            let done_before = all_jobs(store).await.iter().filter(|j| j.state.is_final()).count();
            let (_stop, shutdown) = tokio::sync::watch::channel(false);
            let worker = tokio::spawn(Worker::new(store.clone(), fake.clone(), cfg(format!("w{round}"))).run(shutdown));
            for _ in 0..(round * 3 + 1) {
                tokio::time::sleep(Duration::from_millis(7)).await;
                let done = all_jobs(store).await.iter().filter(|j| j.state.is_final()).count();
                if done >= done_before + 3 {
                    break;
                }
            }
            worker.abort();
            let _ = worker.await;
        }
        let last = Worker::new(store.clone(), fake.clone(), cfg("last".into()));
        drain(store, &last).await;
        let jobs = all_jobs(store).await;
        assert_eq!(jobs.len(), total, "{label}");
        for job in &jobs {
            assert_eq!(job.state, JobState::Succeeded, "{label}: {job:?}");
            assert_eq!(count(&fake.fixes, &job.finding_uid), 1, "{label}: fixed exactly once");
            let trail = actions(store, &job.id).await;
            // A change and its audit record are written together: exactly one of each.
            assert_eq!(trail.iter().filter(|a| *a == "job.succeeded").count(), 1, "{label}: {trail:?}");
        }
        audit::verify_chain(store).await.expect(label);
    }
}

#[tokio::test]
async fn after_effects_run_once_per_state_and_those_a_dead_worker_left_are_swept_up() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let fake = Arc::new(Fake::default());
        let auto = jobs::enqueue(store, &new_job(1, "333333333333", Mode::Auto), "dispatcher", t(0))
            .await
            .expect(label)
            .into_job();
        let approve = jobs::enqueue(store, &new_job(2, "333333333333", Mode::Approve), "dispatcher", t(0))
            .await
            .expect(label)
            .into_job();
        let worker = Worker::new(store.clone(), fake.clone(), config("w"));
        drain(store, &worker).await;
        worker.settle().await;
        assert_eq!(count(&fake.reports, &format!("{}:SUCCEEDED", auto.id)), 1, "{label}");
        assert_eq!(count(&fake.reports, &format!("{}:PENDING_APPROVAL", approve.id)), 1, "{label}");
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        assert!(store.unreported_jobs(later, 10).await.expect(label).is_empty(), "{label}: recorded done");

        // Approved, it runs and ends: its end has after-effects of its own.
        jobs::approve(store, &approve.id, "secops", OffsetDateTime::now_utc()).await.expect(label);
        drain(store, &worker).await;
        worker.settle().await;
        assert_eq!(count(&fake.reports, &format!("{}:SUCCEEDED", approve.id)), 1, "{label}");
        assert_eq!(worker.report_stragglers().await.expect(label), 0, "{label}: nothing left over");

        // A worker that died between storing a job's end and its after-effects.
        let dead = jobs::enqueue(store, &new_job(3, "444444444444", Mode::Auto), "dispatcher", t(0))
            .await
            .expect(label)
            .into_job();
        let leased = store.lease_jobs(&lease("dead", t(1), 10, 10)).await.expect(label);
        assert_eq!(leased.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [dead.id.as_str()], "{label}");
        let change = Advance::to(JobState::Succeeded, Step::Verified);
        store.advance_job(&dead.id, "dead", leased[0].state, &change, t(2), None).await.expect(label);
        assert_eq!(store.unreported_jobs(later, 10).await.expect(label).len(), 1, "{label}");
        assert_eq!(worker.report_stragglers().await.expect(label), 1, "{label}");
        worker.settle().await;
        assert_eq!(count(&fake.reports, &format!("{}:SUCCEEDED", dead.id)), 1, "{label}");
        assert_eq!(worker.report_stragglers().await.expect(label), 0, "{label}: swept once");
        assert!(store.unreported_jobs(later, 10).await.expect(label).is_empty(), "{label}");
    }
}
