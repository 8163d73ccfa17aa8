//! Collection: reading findings from Security Hub, GuardDuty, Config and Access Analyzer in every
//! enrolled account and region, normalizing them, and storing them.
//!
//! ```text
//!   per account (bounded concurrency), per region, per source:     one writer:
//!   limits.acquire -> AWS call (member role) -> raw page  --mpsc-->  batches of pages -> store
//!                                  normalize each document             (findings + watermarks
//!                                  (rejects counted, kept)              in one transaction)
//! ```
//!
//! - Each member is read through its own assumed role, so each spends its own rate budget; the
//!   token buckets in [`limits`] keep every (account, region, API) under its limit and back off
//!   when AWS throttles anyway.
//! - Security Hub and GuardDuty are read incrementally: findings updated since the stored
//!   watermark (minus a look-back that absorbs AWS's eventual consistency), oldest first. A page's
//!   watermark is committed with its findings, so a crash loses nothing and rereads at most what
//!   was in flight; the upsert makes a reread store nothing twice.
//! - Config (non-compliant evaluations) and Access Analyzer (findings) are read whole; an
//!   evaluation Config no longer reports as non-compliant is marked PASSED, but only after the
//!   whole account-region was read without error.
//! - A failure in one account, region or source is reported and never stops the others; what was
//!   collected before it stays stored.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::aws::{Aws, Clients, describe, error_code};
use crate::catalogue::catalogue;
use crate::finding::Source;
use crate::normalize::{self, Rejected};
use crate::store::{Batch, RejectedRecord, Store, StoreError};

mod capture;
pub mod limits;

pub use capture::{Capture, is_throttling_code};
use limits::Limits;

/// How many findings the writer gathers, at most, into one transaction.
pub const WRITE_BATCH: usize = 5_000;
/// How long the writer waits for more findings once it holds some, before it writes what it
/// has. Every transaction rewrites the index pages it touches (the control index alone has one
/// insertion point per control); fewer, larger transactions write less: 5,000 findings instead
/// of the 1,200 the writer took whenever its queue was empty wrote a third fewer bytes and spent
/// a tenth less CPU (docs/benchmarks.md). Waiting costs nothing when the writer keeps up: it
/// would be idle meanwhile.
pub const GATHER_WAIT: Duration = Duration::from_millis(50);

/// Pages waiting for the writer, at most: enough to keep the readers busy while it writes a
/// transaction of [`WRITE_BATCH`] findings (50 pages of 100), few enough to bound memory.
pub const WRITER_QUEUE: usize = 64;

/// What the writer does next (see [`next_for_writer`]).
#[derive(Debug)]
pub enum Next<M> {
    /// A message arrived.
    Message(M),
    /// Nothing arrived for [`GATHER_WAIT`] since the writer began holding findings: write them.
    Write,
    /// Every sender is gone.
    Closed,
}

/// The writer's next step: the next message, or [`Next::Write`] when the writer holds findings
/// (since `holding_since`) and no message came within [`GATHER_WAIT`] of that.
pub async fn next_for_writer<M>(rx: &mut mpsc::Receiver<M>, holding_since: Option<tokio::time::Instant>) -> Next<M> {
    let received = match holding_since {
        None => rx.recv().await,
        Some(since) => match tokio::time::timeout_at(since + GATHER_WAIT, rx.recv()).await {
            Ok(received) => received,
            Err(_) => return Next::Write,
        },
    };
    received.map_or(Next::Closed, Next::Message)
}
/// Calls in flight at the same time, by default: a call holds its slot from the moment its rate
/// budget lets it go until its page is normalized and handed to the writer, so this bounds the
/// pages in memory (about 200 KB each) and the connections open. An account waiting for its
/// budget (Security Hub's GetFindings: 3 pages of 100 a second) holds none, so every account of
/// an organization is read at once, each at its own pace: a cap on accounts instead made an
/// organization of 200 accounts take two rounds of rate-limited reads when 128 were allowed.
pub const DEFAULT_CONCURRENCY: usize = 128;
/// Attempts of one call when AWS keeps throttling (on top of the SDK's own retries).
const MAX_ATTEMPTS: u32 = 6;

/// What to collect.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Sources to read; empty means all four.
    pub sources: Vec<Source>,
    /// Calls in flight at the same time (default [`DEFAULT_CONCURRENCY`]).
    pub concurrency: usize,
    /// How far before the watermark an incremental read starts.
    pub lookback: Duration,
    /// Read everything, ignoring the watermarks: a full assessment (the monitor asks for one
    /// when enough has changed since the last).
    pub full: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            sources: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            lookback: Duration::from_secs(300),
            full: false,
        }
    }
}

/// One (account, region, source) read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitReport {
    pub account_id: String,
    pub region: String,
    pub source: Source,
    /// Findings read and accepted.
    pub collected: u64,
    /// Documents that could not be read as findings.
    pub rejected: u64,
    /// Why the read stopped early, if it did.
    pub error: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncReport {
    pub started_at: i64,
    pub finished_at: i64,
    pub accounts: usize,
    pub regions: Vec<String>,
    /// Findings read, per source.
    pub collected: BTreeMap<Source, u64>,
    /// Documents rejected, per source.
    pub rejected: BTreeMap<Source, u64>,
    /// Findings written to the store (new, or newer versions).
    pub written: u64,
    /// Calls AWS throttled (the SDK's retries included).
    pub throttled: u64,
    pub units: Vec<UnitReport>,
}

impl SyncReport {
    /// The reads that failed.
    pub fn errors(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|u| u.error.is_some())
    }
}

/// Progress of a running sync.
#[derive(Debug, Clone, Copy)]
pub struct SyncProgress {
    pub done: usize,
    pub total: usize,
    pub collected: u64,
}

/// What fetchers send the writer.
enum Msg {
    Batch(Batch),
    /// Every finding of a snapshot source in (account, region) not written since `since` passes.
    Snapshot {
        account: String,
        region: String,
        source: Source,
        since: i64,
    },
}

/// Reads findings from AWS into the store.
#[derive(Debug, Clone)]
pub struct Collector {
    aws: Aws,
    store: Store,
    limits: Arc<Limits>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Sends one call of `api` in `account`/`region` under `limits`: waits for a token of that
/// bucket, and while AWS throttles the call, slows the bucket and tries again after a backoff
/// with jitter, up to [`MAX_ATTEMPTS`] times (on top of the SDK's own retries). Other errors, and
/// the last throttling, are returned as they came. For calls outside collection (enrollment),
/// which have no page to capture.
pub(crate) async fn paced<T, E, R, F, Fut>(
    limits: &Limits,
    account: &str,
    region: &str,
    api: &'static str,
    mut send: F,
) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut backoff = Backoff::default();
    let mut attempt = 1;
    loop {
        limits.acquire(account, region, api).await;
        match send().await {
            Ok(v) => {
                limits.succeeded(account, region, api);
                return Ok(v);
            }
            Err(e) if error_code(&e).is_some_and(is_throttling_code) && attempt < MAX_ATTEMPTS => {
                limits.throttled(account, region, api);
                backoff.wait().await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The wait between attempts of a throttled call: from 200 ms, doubling up to 20 s, each with
/// up to as much again of jitter.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(200))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0 + jitter(self.0)).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(20));
    }
}

/// A little jitter for backoff, without a random-number crate: the clock's nanoseconds.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    max.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// What every account's task of one sync shares.
struct Run {
    collector: Collector,
    options: SyncOptions,
    regions: Vec<String>,
    sources: Vec<Source>,
    /// To the writer; it stops once every task is done and this is dropped.
    tx: mpsc::Sender<Msg>,
    /// Calls in flight (and role assumptions) at the same time.
    permits: Arc<Semaphore>,
    /// Units done, findings collected, calls throttled: for progress and the report.
    done: AtomicUsize,
    collected: AtomicU64,
    throttled: AtomicU64,
    total: usize,
}

/// Reads every region and source of one account (a task of [`Collector::sync`]); reports
/// progress after each unit. Its calls, and the role assumption, take a slot of `run.permits`
/// each while they run.
async fn read_account(
    run: Arc<Run>,
    account: String,
    progress: mpsc::UnboundedSender<SyncProgress>,
) -> Vec<UnitReport> {
    let per_region = run.regions.iter().map(|region| {
        let (run, account, progress) = (&run, &account, &progress);
        async move {
            let mut reports = Vec::new();
            let member = {
                let _slot = run.permits.acquire().await;
                run.collector.aws.member(account, region).await.map_err(|e| e.to_string())
            };
            match member {
                Err(e) => {
                    for &source in &run.sources {
                        reports.push(UnitReport {
                            account_id: account.clone(),
                            region: region.clone(),
                            source,
                            collected: 0,
                            rejected: 0,
                            error: Some(e.clone()),
                        });
                    }
                    let done = run.done.fetch_add(run.sources.len(), Ordering::Relaxed) + run.sources.len();
                    let collected = run.collected.load(Ordering::Relaxed);
                    let _ = progress.send(SyncProgress { done, total: run.total, collected });
                }
                Ok(c) => {
                    let reads = run.sources.iter().map(|&source| {
                        let c = &c;
                        async move {
                            let mut tally = Tally { permits: Some(run.permits.clone()), ..Tally::default() };
                            let result = run.collector.read(c, source, &run.options, &run.tx, &mut tally).await;
                            let done = run.done.fetch_add(1, Ordering::Relaxed) + 1;
                            let collected =
                                run.collected.fetch_add(tally.collected, Ordering::Relaxed) + tally.collected;
                            let _ = progress.send(SyncProgress { done, total: run.total, collected });
                            (
                                UnitReport {
                                    account_id: account.clone(),
                                    region: region.clone(),
                                    source,
                                    collected: tally.collected,
                                    rejected: tally.rejected,
                                    error: result.err(),
                                },
                                tally.throttled,
                            )
                        }
                    });
                    for (r, throttled) in join_all(reads).await {
                        reports.push(r);
                        if throttled > 0 {
                            tracing::debug!(account = %account, throttled, "throttled calls");
                        }
                        run.throttled.fetch_add(throttled, Ordering::Relaxed);
                    }
                }
            }
            reports
        }
    });
    join_all(per_region).await.into_iter().flatten().collect()
}

/// Counts of one unit, shared by its fetcher, and the slot its current call holds.
#[derive(Default)]
struct Tally {
    collected: u64,
    rejected: u64,
    throttled: u64,
    /// Where calls take a slot (none: no cap).
    permits: Option<Arc<Semaphore>>,
    /// The slot of the last call: held until the unit's next call, or its end, so that it
    /// covers the response and the page's delivery to the writer.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Collector {
    pub fn new(aws: Aws, store: Store, limits: Arc<Limits>) -> Collector {
        Collector { aws, store, limits }
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Reads every source of `options` in `accounts` and every configured region.
    ///
    /// Each account is read by a task of its own, up to `options.concurrency` at a time, so
    /// that the runtime's worker threads share the work of fetching and normalizing pages: a
    /// sync is CPU-bound as soon as enough accounts are read at once, and a single task would
    /// keep one core busy while the others wait. `progress` is called from this future only.
    pub async fn sync(
        &self,
        accounts: &[String],
        options: &SyncOptions,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, StoreError> {
        let started_at = now_ms();
        let regions = self.aws.regions();
        let sources: Vec<Source> =
            if options.sources.is_empty() { Source::ALL.to_vec() } else { options.sources.clone() };
        let total = accounts.len() * regions.len() * sources.len();
        let (tx, rx) = mpsc::channel::<Msg>(WRITER_QUEUE);
        let writer = tokio::spawn(write_loop(self.store.clone(), rx));

        let run = Arc::new(Run {
            collector: self.clone(),
            options: options.clone(),
            regions: regions.clone(),
            sources,
            tx,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            done: AtomicUsize::new(0),
            collected: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            total,
        });
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<SyncProgress>();
        let mut tasks = JoinSet::new();
        let mut account_of = HashMap::new();
        for account in accounts {
            let handle = tasks.spawn(read_account(run.clone(), account.clone(), progress_tx.clone()));
            account_of.insert(handle.id(), account.clone());
        }
        drop(progress_tx);
        let mut units: Vec<UnitReport> = Vec::with_capacity(total);
        loop {
            tokio::select! {
                Some(p) = progress_rx.recv() => progress(p),
                joined = tasks.join_next_with_id() => match joined {
                    Some(Ok((_, reports))) => units.extend(reports),
                    // A read that panicked is reported as failed: it must not take the sync,
                    // and what the other accounts read, with it.
                    Some(Err(e)) => {
                        let account = account_of.get(&e.id()).cloned().unwrap_or_default();
                        tracing::error!(%account, error = %e, "reading an account stopped");
                        for region in &regions {
                            for &source in &run.sources {
                                units.push(UnitReport {
                                    account_id: account.clone(),
                                    region: region.clone(),
                                    source,
                                    collected: 0,
                                    rejected: 0,
                                    error: Some(format!("the read stopped: {e}")),
                                });
                            }
                        }
                    }
                    None => break,
                },
            }
        }
        while let Ok(p) = progress_rx.try_recv() {
            progress(p);
        }
        let throttled = run.throttled.load(Ordering::Relaxed);
        // The last sender of the writer's channel goes with `run`: the writer then drains
        // what is left and stops.
        drop(run);
        let written = match writer.await {
            Ok(r) => r?,
            Err(e) => return Err(StoreError::Corrupt(format!("the collection writer stopped: {e}"))),
        };

        let mut report = SyncReport {
            started_at,
            finished_at: now_ms(),
            accounts: accounts.len(),
            regions,
            collected: BTreeMap::new(),
            rejected: BTreeMap::new(),
            written,
            throttled,
            units,
        };
        for u in &report.units {
            *report.collected.entry(u.source).or_default() += u.collected;
            *report.rejected.entry(u.source).or_default() += u.rejected;
        }
        report.units.sort_by(|a, b| (&a.account_id, &a.region, a.source).cmp(&(&b.account_id, &b.region, b.source)));
        Ok(report)
    }

    async fn read(
        &self,
        c: &Clients,
        source: Source,
        options: &SyncOptions,
        tx: &mpsc::Sender<Msg>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        match source {
            Source::SecurityHub => self.read_securityhub(c, options, tx, tally).await,
            Source::GuardDuty => self.read_guardduty(c, options, tx, tally).await,
            Source::Config => self.read_config(c, tx, tally).await,
            Source::AccessAnalyzer => self.read_access_analyzer(c, tx, tally).await,
        }
    }

    /// One AWS call under the rate limits: waits for a token, retries throttling with backoff
    /// (halving the bucket's rate each time), and gives back the capture of the successful call.
    ///
    /// With `raw_only`, the SDK's typed output is empty and the page is in the capture (see
    /// [`Capture::raw_only`]): for the calls whose pages orgsec parses itself.
    #[allow(clippy::too_many_arguments)]
    async fn call<T, E, F, Fut>(
        &self,
        c: &Clients,
        api: &'static str,
        raw_only: bool,
        tally: &mut Tally,
        mut send: F,
    ) -> Result<(T, Capture), String>
    where
        F: FnMut(Capture) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut backoff = Backoff::default();
        // The last call's page is delivered by now: free its slot before waiting for a token.
        tally.slot = None;
        for attempt in 1..=MAX_ATTEMPTS {
            self.limits.acquire(&c.account_id, &c.region, api).await;
            if let Some(permits) = &tally.permits {
                tally.slot = permits.clone().acquire_owned().await.ok();
            }
            let capture = if raw_only { Capture::raw_only() } else { Capture::new() };
            let result = send(capture.clone()).await;
            for _ in 0..capture.throttled_attempts() {
                tally.throttled += 1;
                self.limits.throttled(&c.account_id, &c.region, api);
            }
            match result {
                Ok(v) => {
                    self.limits.succeeded(&c.account_id, &c.region, api);
                    return Ok((v, capture));
                }
                Err(e) if error_code(&e).is_some_and(is_throttling_code) && attempt < MAX_ATTEMPTS => {
                    tally.slot = None;
                    backoff.wait().await;
                }
                Err(e) => return Err(format!("{api}: {}", describe(&e))),
            }
        }
        Err(format!("{api}: still throttled after {MAX_ATTEMPTS} attempts"))
    }

    /// Splits a captured page, normalizes its documents with `one`, and sends them to the writer
    /// with `watermark` (the greatest `updated_at` on the page, for incremental sources).
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        c: &Clients,
        source: Source,
        capture: &Capture,
        keys: (&str, &str),
        incremental: bool,
        tx: &mpsc::Sender<Msg>,
        tally: &mut Tally,
        one: impl Fn(&serde_json::value::RawValue) -> Result<crate::finding::Finding, Rejected>,
    ) -> Result<Option<String>, String> {
        let body = capture.take_body().ok_or_else(|| format!("{source}: the response body was not captured"))?;
        let text = std::str::from_utf8(&body).map_err(|_| format!("{source}: the response is not UTF-8"))?;
        let page = normalize::page(text, keys.0, keys.1).map_err(|e| format!("{source}: {e}"))?;
        let now = now_ms();
        let mut batch = Batch::default();
        let mut watermark: Option<i64> = None;
        for raw in page.items {
            match one(raw) {
                Ok(f) => {
                    watermark = Some(watermark.map_or(f.updated_at, |w| w.max(f.updated_at)));
                    batch.findings.push(f);
                }
                Err(r) => {
                    tracing::warn!(account = %c.account_id, region = %c.region, %source, id = ?r.id, reason = %r.reason, "rejected a finding");
                    batch.rejected.push(RejectedRecord::new(
                        source,
                        &c.account_id,
                        &c.region,
                        r.id,
                        r.reason,
                        raw.get(),
                        now,
                    ));
                }
            }
        }
        tally.collected += batch.findings.len() as u64;
        tally.rejected += batch.rejected.len() as u64;
        if incremental && let Some(w) = watermark {
            batch.watermarks.push((c.account_id.clone(), c.region.clone(), source, w));
        }
        if !batch.is_empty() {
            // Compressed here, on this account's task, rather than by the one writer.
            batch.pack().map_err(|e| format!("{source}: {e}"))?;
            tx.send(Msg::Batch(batch)).await.map_err(|_| "the store writer stopped".to_string())?;
        }
        Ok(page.next_token)
    }

    async fn read_securityhub(
        &self,
        c: &Clients,
        options: &SyncOptions,
        tx: &mpsc::Sender<Msg>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        use aws_sdk_securityhub::types::{
            AwsSecurityFindingFilters, DateFilter, SortCriterion, SortOrder, StringFilter, StringFilterComparison,
        };
        let since = match options.full {
            true => None,
            false => {
                self.store.watermark(&c.account_id, &c.region, Source::SecurityHub).await.map_err(|e| e.to_string())?
            }
        };
        let mut filters = AwsSecurityFindingFilters::builder().aws_account_id(
            StringFilter::builder().comparison(StringFilterComparison::Equals).value(&c.account_id).build(),
        );
        if let Some(w) = since {
            let start = w - options.lookback.as_millis() as i64;
            let end = now_ms() + 86_400_000;
            filters = filters.updated_at(DateFilter::builder().start(iso(start)).end(iso(end)).build());
        }
        let filters = filters.build();
        let sort = SortCriterion::builder().field("UpdatedAt").sort_order(SortOrder::Ascending).build();
        let mut token: Option<String> = None;
        loop {
            let (_, capture) = self
                .call(c, "securityhub:GetFindings", true, tally, |cap| {
                    c.securityhub()
                        .get_findings()
                        .filters(filters.clone())
                        .sort_criteria(sort.clone())
                        .max_results(100)
                        .set_next_token(token.clone())
                        .customize()
                        .interceptor(cap)
                        .send()
                })
                .await?;
            let region = c.region.clone();
            token = self
                .deliver(c, Source::SecurityHub, &capture, ("Findings", "NextToken"), true, tx, tally, |raw| {
                    normalize::securityhub(raw, &region, |id| catalogue().get(id))
                })
                .await?;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    async fn read_guardduty(
        &self,
        c: &Clients,
        options: &SyncOptions,
        tx: &mpsc::Sender<Msg>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        use aws_sdk_guardduty::types::{Condition, FindingCriteria, OrderBy, SortCriteria};
        let (detectors, _) = self
            .call(c, "guardduty:ListDetectors", false, tally, |cap| {
                c.guardduty().list_detectors().customize().interceptor(cap).send()
            })
            .await?;
        let since = match options.full {
            true => None,
            false => {
                self.store.watermark(&c.account_id, &c.region, Source::GuardDuty).await.map_err(|e| e.to_string())?
            }
        };
        let sort = SortCriteria::builder().attribute_name("updatedAt").order_by(OrderBy::Asc).build();
        for detector in detectors.detector_ids() {
            let mut criteria =
                FindingCriteria::builder().criterion("accountId", Condition::builder().equals(&c.account_id).build());
            if let Some(w) = since {
                let start = w - options.lookback.as_millis() as i64;
                criteria = criteria.criterion("updatedAt", Condition::builder().greater_than_or_equal(start).build());
            }
            let criteria = criteria.build();
            let mut token: Option<String> = None;
            loop {
                let (page, _) = self
                    .call(c, "guardduty:ListFindings", false, tally, |cap| {
                        c.guardduty()
                            .list_findings()
                            .detector_id(detector)
                            .finding_criteria(criteria.clone())
                            .sort_criteria(sort.clone())
                            .max_results(50)
                            .set_next_token(token.clone())
                            .customize()
                            .interceptor(cap)
                            .send()
                    })
                    .await?;
                let ids = page.finding_ids().to_vec();
                if !ids.is_empty() {
                    let (_, capture) = self
                        .call(c, "guardduty:GetFindings", true, tally, |cap| {
                            c.guardduty()
                                .get_findings()
                                .detector_id(detector)
                                .set_finding_ids(Some(ids.clone()))
                                .sort_criteria(sort.clone())
                                .customize()
                                .interceptor(cap)
                                .send()
                        })
                        .await?;
                    let region = c.region.clone();
                    self.deliver(c, Source::GuardDuty, &capture, ("findings", "nextToken"), true, tx, tally, |raw| {
                        normalize::guardduty(raw, &region)
                    })
                    .await?;
                }
                token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn read_config(&self, c: &Clients, tx: &mpsc::Sender<Msg>, tally: &mut Tally) -> Result<(), String> {
        use aws_sdk_config::types::ComplianceType;
        let since = now_ms();
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, _) = self
                .call(c, "config:DescribeConfigRules", false, tally, |cap| {
                    c.config().describe_config_rules().set_next_token(token.clone()).customize().interceptor(cap).send()
                })
                .await?;
            rules.extend(page.config_rules().iter().cloned());
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for rule in &rules {
            let Some(name) = rule.config_rule_name() else { continue };
            let arn = rule.config_rule_arn().unwrap_or(name).to_string();
            let control = catalogue().control_for_rule(
                name,
                rule.source().and_then(|s| s.source_identifier()),
                rule.input_parameters(),
            );
            let mut token: Option<String> = None;
            loop {
                let (_, capture) = self
                    .call(c, "config:GetComplianceDetailsByConfigRule", true, tally, |cap| {
                        c.config()
                            .get_compliance_details_by_config_rule()
                            .config_rule_name(name)
                            .compliance_types(ComplianceType::NonCompliant)
                            .limit(100)
                            .set_next_token(token.clone())
                            .customize()
                            .interceptor(cap)
                            .send()
                    })
                    .await?;
                let ctx =
                    normalize::ConfigRule { account_id: &c.account_id, region: &c.region, name, arn: &arn, control };
                token = self
                    .deliver(c, Source::Config, &capture, ("EvaluationResults", "NextToken"), false, tx, tally, |raw| {
                        normalize::config(raw, &ctx)
                    })
                    .await?;
                if token.is_none() {
                    break;
                }
            }
        }
        let msg =
            Msg::Snapshot { account: c.account_id.clone(), region: c.region.clone(), source: Source::Config, since };
        tx.send(msg).await.map_err(|_| "the store writer stopped".to_string())
    }

    async fn read_access_analyzer(&self, c: &Clients, tx: &mpsc::Sender<Msg>, tally: &mut Tally) -> Result<(), String> {
        let mut analyzers = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, _) = self
                .call(c, "access-analyzer:ListAnalyzers", false, tally, |cap| {
                    c.accessanalyzer()
                        .list_analyzers()
                        .set_next_token(token.clone())
                        .customize()
                        .interceptor(cap)
                        .send()
                })
                .await?;
            analyzers.extend(page.analyzers().iter().map(|a| a.arn().to_string()));
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for analyzer in &analyzers {
            let mut token: Option<String> = None;
            loop {
                let (_, capture) = self
                    .call(c, "access-analyzer:ListFindings", true, tally, |cap| {
                        c.accessanalyzer()
                            .list_findings()
                            .analyzer_arn(analyzer)
                            .max_results(100)
                            .set_next_token(token.clone())
                            .customize()
                            .interceptor(cap)
                            .send()
                    })
                    .await?;
                let (account, region) = (c.account_id.clone(), c.region.clone());
                token = self
                    .deliver(c, Source::AccessAnalyzer, &capture, ("findings", "nextToken"), false, tx, tally, |raw| {
                        normalize::access_analyzer(raw, analyzer, &account, &region)
                    })
                    .await?;
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The writer: gathers batches into transactions of up to [`WRITE_BATCH`] findings (see
/// [`GATHER_WAIT`]); applies a snapshot only once everything sent before it is committed.
/// Returns the findings written.
async fn write_loop(store: Store, mut rx: mpsc::Receiver<Msg>) -> Result<u64, StoreError> {
    let mut written = 0u64;
    let mut pending = Batch::default();
    let mut holding_since = None;
    let flush = |pending: &mut Batch| {
        let batch = std::mem::take(pending);
        let store = store.clone();
        async move {
            if batch.is_empty() {
                return Ok(0);
            }
            store.write_batch(&batch, now_ms()).await.map(|o| o.written)
        }
    };
    loop {
        match next_for_writer(&mut rx, holding_since).await {
            Next::Message(Msg::Batch(b)) => {
                pending.append(b);
                holding_since.get_or_insert_with(tokio::time::Instant::now);
                if pending.findings.len() >= WRITE_BATCH {
                    written += flush(&mut pending).await?;
                    holding_since = None;
                }
            }
            Next::Message(Msg::Snapshot { account, region, source, since }) => {
                written += flush(&mut pending).await?;
                holding_since = None;
                let passed = store.mark_unseen_passed(&account, &region, source, since).await?;
                if passed > 0 {
                    tracing::info!(%account, %region, %source, passed, "no longer reported: marked passed");
                }
            }
            Next::Write => {
                written += flush(&mut pending).await?;
                holding_since = None;
            }
            Next::Closed => break,
        }
    }
    written += flush(&mut pending).await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    #[tokio::test]
    async fn the_writer_waits_for_more_only_while_it_holds_findings() {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(1).await.unwrap();
        assert!(matches!(next_for_writer(&mut rx, None).await, Next::Message(1)));
        // Holding findings and nothing comes: write them, once the wait is over.
        let since = Instant::now();
        assert!(matches!(next_for_writer(&mut rx, Some(since)).await, Next::Write));
        assert!(since.elapsed() >= GATHER_WAIT);
        // A message that is there is taken, even after the wait.
        tx.send(2).await.unwrap();
        assert!(matches!(next_for_writer(&mut rx, Some(since)).await, Next::Message(2)));
        drop(tx);
        assert!(matches!(next_for_writer(&mut rx, Some(Instant::now())).await, Next::Closed));
        assert!(matches!(next_for_writer(&mut rx, None).await, Next::Closed));
    }
}
