//! The rounds `orgsec serve` runs in the background: enroll accounts that appeared, collect
//! findings from every enrolled account, rescore, snapshot, and publish the scores to the API
//! and `/metrics`. One round at a time; a failed round is logged and the next one tried.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::Aws;
use crate::collect::{Collector, SyncOptions, SyncReport};
use crate::enroll::{self, AccountState};
use crate::metrics::Metrics;
use crate::posture::{self, SharedPosture};
use crate::score::{ScopeKind, Weights};
use crate::store::{Store, StoreError};

/// What a round works with.
#[derive(Debug, Clone)]
pub struct Rounds {
    pub aws: Aws,
    pub store: Store,
    pub collector: Collector,
    pub posture: SharedPosture,
    pub metrics: Arc<Metrics>,
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
        let board = posture::scoreboard(&self.store, Weights::default()).await?;
        posture::snapshot(&self.store, &board, report.finished_at).await?;
        for kind in [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account] {
            for s in board.scores(kind) {
                self.metrics.set_score(kind.as_str(), &s.id, s.score);
            }
        }
        posture::publish(&self.posture, board, time::OffsetDateTime::now_utc());
        tracing::info!(
            accounts = accounts.len(),
            collected = report.collected.values().sum::<u64>(),
            failed_reads = failed,
            seconds = started.elapsed().as_secs_f64(),
            "round done"
        );
        Ok(Some(report))
    }

    /// Runs a round now and then every `every` until `shutdown` completes. Shutting down drops
    /// a round in progress: collection is crash-safe, so the next start resumes where it was.
    pub async fn run(&self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let next = async {
                ticks.tick().await;
                self.round().await
            };
            tokio::select! {
                () = &mut shutdown => return,
                result = next => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "round failed; trying again at the next one");
                    }
                }
            }
        }
    }
}
