//! The rounds `orgsec serve` runs in the background: enroll accounts that appeared, collect
//! findings from every enrolled account, rescore, snapshot, publish the scores to the API and
//! `/metrics`, and hand failing findings that match a binding to the remediation jobs. One round
//! at a time; a failed round is logged and the next one tried. Between rounds, accounts that a
//! remediation changed are collected again at once ([`Rounds::refresh`]), so that the store and
//! the scores show a fix seconds after it, not at the next round. After every read, the
//! [`Monitor`] logs what changed; when enough has since the last full assessment, the accounts
//! are read in full again and rescored.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::Aws;
use crate::collect::{Collector, SyncOptions, SyncReport};
use crate::dispatch::{self, DispatchReport};
use crate::enroll::{self, AccountState};
use crate::jobs::{Job, JobError, Worker, WorkerConfig};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::posture::{self, SharedPosture};
use crate::remediate::{Changed, PlaybookRunner};
use crate::score::{ScopeKind, Weights};
use crate::store::{JobFilter, Store, StoreError};

/// What a round works with.
#[derive(Debug, Clone)]
pub struct Rounds {
    pub aws: Aws,
    pub store: Store,
    pub collector: Collector,
    pub posture: SharedPosture,
    pub metrics: Arc<Metrics>,
    pub monitor: Arc<Monitor>,
}

/// What [`Rounds::remediate_once`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemediatePass {
    pub dispatch: DispatchReport,
    /// The jobs created, run, approved or rejected since the pass began (of the newest
    /// thousand), newest first.
    pub jobs: Vec<Job>,
    /// Whether the queue went idle: false when jobs still ran or backed off before a retry
    /// when the time ran out (they continue at the next pass or in `orgsec serve`).
    pub idle: bool,
    /// The accounts collected again because a remediation changed them.
    pub refreshed: Vec<String>,
}

/// The accounts collection reads: enrolled ones and the admin itself.
pub async fn readable_accounts(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
        .map(|a| a.account_id)
        .collect())
}

impl Rounds {
    /// Scores what the store holds and publishes it (at start-up, before any round).
    pub async fn rescore(&self) -> Result<(), StoreError> {
        let board = posture::scoreboard(&self.store, Weights::default()).await?;
        for kind in [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account] {
            for s in board.scores(kind) {
                self.metrics.set_score(kind.as_str(), &s.id, s.score);
            }
        }
        posture::publish(&self.posture, board, time::OffsetDateTime::now_utc());
        Ok(())
    }

    /// One round: enroll, sync, rescore, snapshot. The sync's report, when there was one.
    pub async fn round(&self) -> Result<Option<SyncReport>, StoreError> {
        match enroll::watch(&self.aws, &self.store, &|_| {}).await {
            Ok(r) if !r.accounts.is_empty() => tracing::info!(summary = %r.summary(), "enrollment"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "enrollment failed; collecting from the accounts already enrolled"),
        }
        let accounts = readable_accounts(&self.store).await?;
        if accounts.is_empty() {
            tracing::warn!("no enrolled accounts to collect from: enroll them with `orgsec enroll --all`");
            return Ok(None);
        }
        let started = Instant::now();
        let report = self.collector.sync(&accounts, &SyncOptions::default(), &|_| {}).await?;
        for (source, n) in &report.collected {
            self.metrics.findings_ingested(*source, *n);
        }
        for (source, n) in &report.rejected {
            self.metrics.findings_rejected(*source, *n);
        }
        let failed = report.errors().count();
        self.metrics.sync_finished(started.elapsed().as_secs_f64(), failed == 0);
        for u in report.errors() {
            tracing::warn!(account = %u.account_id, region = %u.region, source = %u.source, error = ?u.error, "read failed");
        }
        self.monitor_after(&accounts).await?;
        let board = posture::scoreboard(&self.store, Weights::default()).await?;
        posture::snapshot(&self.store, &board, report.finished_at).await?;
        for kind in [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account] {
            for s in board.scores(kind) {
                self.metrics.set_score(kind.as_str(), &s.id, s.score);
            }
        }
        posture::publish(&self.posture, board, time::OffsetDateTime::now_utc());
        self.dispatch().await;
        tracing::info!(
            accounts = accounts.len(),
            collected = report.collected.values().sum::<u64>(),
            failed_reads = failed,
            seconds = started.elapsed().as_secs_f64(),
            "round done"
        );
        Ok(Some(report))
    }

    /// Enqueues a remediation job for every failing finding a binding matches (those that have
    /// one keep it). A failure is logged: the next round tries again.
    pub async fn dispatch(&self) {
        match dispatch::dispatch(&self.store, time::OffsetDateTime::now_utc()).await {
            Ok(r) if !r.enqueued.is_empty() => {
                tracing::info!(enqueued = r.enqueued.len(), matched = r.matched, "remediation jobs enqueued")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot match findings to bindings; trying again next round"),
        }
    }

    /// One pass of remediation without a service (`orgsec remediate`): matches failing
    /// findings to the bindings, runs and verifies every job that is due (approved ones
    /// included) until none is queued or running or `timeout` passes, then collects the
    /// accounts the remediations changed again, rescores and snapshots. Jobs waiting for
    /// approval stay waiting. Safe beside a running `orgsec serve`: jobs are leased.
    pub async fn remediate_once(
        &self,
        runner: Arc<PlaybookRunner>,
        config: WorkerConfig,
        timeout: Duration,
    ) -> Result<RemediatePass, JobError> {
        let began = time::OffsetDateTime::now_utc();
        let deadline = Instant::now() + timeout;
        let dispatch = dispatch::dispatch(&self.store, began).await?;
        let changed = runner.changed();
        let worker = Worker::new(self.store.clone(), runner, config);
        let idle = worker.drain(deadline).await?;
        let refreshed: Vec<String> = changed.take().into_iter().collect();
        if !refreshed.is_empty() {
            let report = self.collector.sync(&refreshed, &SyncOptions::default(), &|_| {}).await?;
            self.monitor_after(&refreshed).await?;
            let board = posture::scoreboard(&self.store, Weights::default()).await?;
            posture::snapshot(&self.store, &board, report.finished_at).await?;
        }
        // Jobs touched now: updated since the pass began (the store keeps milliseconds).
        let since = began - time::Duration::nanoseconds(i64::from(began.nanosecond() % 1_000_000));
        let jobs = self
            .store
            .list_jobs(&JobFilter { limit: Some(1000), ..JobFilter::default() })
            .await?
            .into_iter()
            .filter(|j| j.updated_at >= since)
            .collect();
        Ok(RemediatePass { dispatch, jobs, idle, refreshed })
    }

    /// Collects `accounts` again (from their watermarks), rescores and publishes: after a
    /// remediation changed them.
    pub async fn refresh(&self, accounts: &[String]) -> Result<(), StoreError> {
        let report = self.collector.sync(accounts, &SyncOptions::default(), &|_| {}).await?;
        for (source, n) in &report.collected {
            self.metrics.findings_ingested(*source, *n);
        }
        self.monitor_after(accounts).await?;
        self.rescore().await?;
        tracing::info!(accounts = ?accounts, collected = report.collected.values().sum::<u64>(), "re-collected after remediation");
        Ok(())
    }

    /// Logs what changed in the accounts just `read`; when the changes since the last full
    /// assessment reach the monitor's threshold, reads every account in full and records the
    /// assessment (the caller rescores). A failure to log is a warning: it never stops a round.
    async fn monitor_after(&self, read: &[String]) -> Result<(), StoreError> {
        if let Err(e) = self.monitor.observe(read).await {
            tracing::warn!(error = %e, "cannot log what changed");
            return Ok(());
        }
        let Some(changes) = self.monitor.due().await? else { return Ok(()) };
        let accounts = readable_accounts(&self.store).await?;
        tracing::info!(
            changes,
            accounts = accounts.len(),
            "enough changed since the last full assessment: reassessing"
        );
        let started = Instant::now();
        let options = SyncOptions { full: true, ..SyncOptions::default() };
        let report = self.collector.sync(&accounts, &options, &|_| {}).await?;
        for (source, n) in &report.collected {
            self.metrics.findings_ingested(*source, *n);
        }
        let failed = report.errors().count();
        if failed > 0 {
            tracing::warn!(
                failed_reads = failed,
                "the full assessment could not read everything; the next rounds catch up"
            );
        }
        self.monitor.observe(&accounts).await?;
        self.monitor.assessed(accounts.len(), changes).await?;
        tracing::info!(
            accounts = accounts.len(),
            collected = report.collected.values().sum::<u64>(),
            seconds = started.elapsed().as_secs_f64(),
            "full assessment done"
        );
        Ok(())
    }

    /// Runs a round now and then every `every`, and a [`Rounds::refresh`] of the accounts
    /// `changed` reports in between, one piece of work at a time, until `shutdown` completes.
    /// Shutting down drops the work in progress: collection is crash-safe, so the next start
    /// resumes where it was.
    pub async fn run(&self, every: Duration, changed: Option<Arc<Changed>>, shutdown: impl Future<Output = ()>) {
        enum Work {
            Round,
            Refresh(Vec<String>),
        }
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let changed_next = async {
                match &changed {
                    Some(c) => c.next().await.into_iter().collect(),
                    None => std::future::pending::<Vec<String>>().await,
                }
            };
            let work = tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => Work::Round,
                accounts = changed_next => Work::Refresh(accounts),
            };
            let done = async {
                match work {
                    Work::Round => self.round().await.map(|_| ()),
                    Work::Refresh(accounts) => self.refresh(&accounts).await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                result = done => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "round failed; trying again at the next one");
                    }
                }
            }
        }
    }
}
