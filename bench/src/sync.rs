//! `orgsec-bench sync`: a sync of a generated organization with the emulator's published rate
//! limits on, next to what bounds it from below.
//!
//! **Setup.** The emulator runs in the bench's process with
//! `generate:accounts=N,resources=M,seed=7`. `M` is chosen so that each member holds about the
//! requested number of Security Hub findings: the bench first counts a member's findings in two
//! small generated organizations and solves for `M` (the generator gives a fixed number of
//! account-level findings plus a number per resource).
//!
//! **Run.** The orchestrator's side runs in a child process (this binary again, with a hidden
//! `--worker` flag), whose environment points the standard AWS chain at the emulator as the
//! delegated admin 222222222222: `Aws::from_env` builds the clients exactly as `orgsec sync`
//! does, and the orchestrator's CPU time is measured apart from the emulator's. The child
//! enrolls every account (`enroll::run`, ExternalId `orgsec-demo`) with the emulator's rate
//! limits off (enrollment is not what is measured), then, `--runs` times (3 by default):
//! measures the ingest pipeline's speed for this run's CPU floor, copies the store as
//! enrollment left it, turns the published limits on with every token bucket full, and times
//! `Collector::sync` of every enrolled account into the copy with the product's default
//! options. The runs share one `Aws` (member credentials cached by enrollment, as in the single
//! run before). After the last, it builds the scoreboard `orgsec sync` builds. It reports what
//! each (account, source) read. The verdict is the median run's ratio: on a shared machine the
//! same work costs up to a third more CPU from one minute to the next, and pairing each sync
//! with a floor measured just before it keeps both under the same conditions.
//!
//! **Bounds.** From what each account read, the least number of calls each API needed (pages of
//! 100 for Security Hub, Config and Access Analyzer; 50 for GuardDuty's list, then one
//! GetFindings per page), and `Limits::bound` for each at orgsec's configured rates (for Security
//! Hub's GetFindings, the published 3/s with a burst of 6): the best schedule reads every account
//! in parallel, so its time is the slowest account's slowest API. The same figure for the
//! admin alone puts every page through its one bucket per API (Security Hub: every finding of the
//! organization in pages of 100). The CPU floor is the findings read over the ingest pipeline's
//! findings per second (`orgsec-bench ingest`, run before each sync over as many findings unless
//! `--ingest-rate` gives the figure). The CPU both sides used during the sync (orchestrator and
//! emulator, which share the machine) is reported too: over two cores, it is a third floor.
//!
//! **Checks.** The run fails if enrollment leaves a member out, if any read fails, if a finding
//! is rejected, or if the store does not hold every Security Hub finding of the accounts read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orgsec::aws::Aws;
use orgsec::collect::limits::Limits;
use orgsec::collect::{Collector, SyncOptions};
use orgsec::enroll::{self, AccountState, Selection};
use orgsec::finding::Source;
use orgsec::posture;
use orgsec::score::{ScopeRef, Weights};
use orgsec::settings::Settings;
use orgsec::store::Store;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::ingest::{self, TempDir, cpu_by_name, memory_kib, process_cpu, threads_cpu};

/// The delegated admin of every generated organization, which orgsec runs as.
pub(crate) const ADMIN: &str = "222222222222";
/// The ExternalId of the generated organization's member role.
pub(crate) const EXTERNAL_ID: &str = "orgsec-demo";
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const SEED: u64 = 7;
/// The generator's first member account.
pub(crate) const FIRST_MEMBER: u64 = 300_000_000_000;

/// What the orchestrator's side (the worker) reports to the bench.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    enroll_seconds: f64,
    accounts: usize,
    /// One per run, in the order they ran.
    runs: Vec<RunReport>,
    /// The scoreboard `orgsec sync` builds after it, from the last run's store.
    scoreboard_seconds: f64,
    checks: usize,
    org_score: f64,
    peak_rss_kib: Option<u64>,
}

/// One timed sync, from a copy of the store as enrollment left it, and the ingest pipeline's
/// speed measured just before it (the CPU floor of this run).
#[derive(Debug, Serialize, Deserialize)]
struct RunReport {
    sync_seconds: f64,
    /// The worker's CPU time during the sync, where the platform reports it.
    sync_cpu_seconds: Option<f64>,
    /// The same by thread (the runtime's workers, SQLite's connection threads), where reported.
    #[serde(default)]
    sync_thread_cpu_seconds: BTreeMap<String, f64>,
    ingest_findings_per_second: f64,
    stored: BTreeMap<Source, i64>,
    sync: SyncSummary,
}

/// Where a run's CPU floor comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Floor {
    /// Findings per second given on the command line.
    Given(f64),
    /// Measured before each sync by `orgsec-bench ingest` over this many findings.
    Measure { count: usize, quick: bool },
}

impl Floor {
    fn describe(&self) -> String {
        match self {
            Floor::Given(_) => "given".to_string(),
            Floor::Measure { count, .. } => format!("ingest of {count} findings just before the sync"),
        }
    }

    /// The worker's command-line arguments that carry this floor.
    fn args(&self) -> Vec<String> {
        match self {
            Floor::Given(r) => vec!["--ingest-rate".into(), r.to_string()],
            Floor::Measure { quick: true, .. } => vec!["--quick".into()],
            Floor::Measure { .. } => vec![],
        }
    }
}

/// What the bench needs of the sync's own report (`SyncReport`, as it serializes).
#[derive(Debug, Serialize, Deserialize)]
struct SyncSummary {
    collected: BTreeMap<Source, u64>,
    rejected: BTreeMap<Source, u64>,
    written: u64,
    throttled: u64,
    units: Vec<Unit>,
}

/// One (account, region, source) read.
#[derive(Debug, Serialize, Deserialize)]
struct Unit {
    account_id: String,
    region: String,
    source: Source,
    collected: u64,
    error: Option<String>,
}

impl SyncSummary {
    fn errors(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter().filter(|u| u.error.is_some())
    }
}

/// The organization's size and the floor's source for these arguments (the bench and its
/// worker both call this, so that they agree).
pub(crate) fn plan(
    accounts: usize,
    findings_per_account: usize,
    ingest_rate: Option<f64>,
    quick: bool,
) -> anyhow::Result<(usize, usize, Floor)> {
    let (accounts, findings_per_account) =
        if quick { (3, 300) } else { (accounts.max(1), findings_per_account.max(1)) };
    let floor = match ingest_rate {
        Some(r) if r > 0.0 => Floor::Given(r),
        Some(r) => bail!("--ingest-rate {r}: give findings per second, a positive number"),
        None => {
            Floor::Measure { count: if quick { ingest::QUICK_COUNT } else { accounts * findings_per_account }, quick }
        }
    };
    Ok((accounts, findings_per_account, floor))
}

/// One run's figures, as the bench reports them.
struct Run<'a> {
    report: &'a RunReport,
    floor: Duration,
    ratio: f64,
    emulator_cpu: Option<Duration>,
}

pub(crate) fn run(
    rt: &Runtime,
    accounts: usize,
    findings_per_account: usize,
    ingest_rate: Option<f64>,
    runs: usize,
    quick: bool,
) -> anyhow::Result<()> {
    let (accounts, findings_per_account, floor_source) = plan(accounts, findings_per_account, ingest_rate, quick)?;
    let runs = runs.max(1);
    let resources = resources_for(findings_per_account)?;
    let scenario = format!("generate:accounts={accounts},resources={resources},seed={SEED}");

    eprintln!("loading {scenario} ...");
    let load = Instant::now();
    let em = rt
        .block_on(orgsec_emulator::Emulator::builder().scenario(scenario.as_str()).rate_limits(false).start())
        .with_context(|| format!("starting the emulator with {scenario}"))?;
    let load_time = load.elapsed();
    let held: BTreeMap<String, usize> = {
        let world = em.shared().world.read();
        world
            .accounts
            .keys()
            .map(|a| (a.clone(), world.findings.values().map(|s| s.for_account(a).count()).sum()))
            .collect()
    };
    let members_held: Vec<usize> =
        held.iter().filter(|(a, _)| a.parse::<u64>().is_ok_and(|n| n >= FIRST_MEMBER)).map(|(_, n)| *n).collect();

    eprintln!("enrolling {accounts} accounts, then {runs} syncs, each after measuring its CPU floor ...");
    let mut worker_args = vec![
        "--accounts".to_string(),
        accounts.to_string(),
        "--findings-per-account".to_string(),
        findings_per_account.to_string(),
        "--runs".to_string(),
        runs.to_string(),
    ];
    worker_args.extend(floor_source.args());
    let (worker, emulator_cpu) = run_worker(&em.url(), &worker_args)?;
    let emulator_peak = memory_kib("VmHWM");
    rt.block_on(em.shutdown());
    if worker.runs.len() != runs {
        bail!("the orchestrator's side reported {} syncs of the {runs} asked", worker.runs.len());
    }

    for (i, r) in worker.runs.iter().enumerate() {
        let report = &r.sync;
        if let Some(u) = report.errors().next() {
            bail!(
                "sync {}: {} reads failed, e.g. {} {} {}: {:?}",
                i + 1,
                report.errors().count(),
                u.account_id,
                u.region,
                u.source,
                u.error
            );
        }
        let rejected: u64 = report.rejected.values().sum();
        if rejected > 0 {
            bail!("sync {}: {rejected} findings were rejected: the emulator's findings should all be valid", i + 1);
        }
        // Every Security Hub finding of every account read (members and the admin) is stored.
        let expected_sh: usize = report
            .units
            .iter()
            .filter(|u| u.source == Source::SecurityHub)
            .map(|u| held.get(&u.account_id).copied().unwrap_or(0))
            .sum();
        let stored_sh = r.stored.get(&Source::SecurityHub).copied().unwrap_or(0);
        if stored_sh != expected_sh as i64 {
            bail!(
                "sync {}: the store holds {stored_sh} Security Hub findings, the accounts read hold {expected_sh}",
                i + 1
            );
        }
    }

    // Every run reads the same organization; the bounds come from the first.
    let first = &worker.runs[0].sync;
    let limits = Limits::default();
    let collected: u64 = first.collected.values().sum();
    let mut per_account: BTreeMap<&str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut org: BTreeMap<&'static str, u64> = BTreeMap::new();
    for u in &first.units {
        for (api, calls) in least_calls(u.source, u.collected) {
            *per_account.entry(u.account_id.as_str()).or_default().entry(api).or_default() += calls;
            *org.entry(api).or_default() += calls;
        }
    }
    // The admin alone reads the organization's Security Hub findings in pages of 100 as one list.
    let sh_total = first.collected.get(&Source::SecurityHub).copied().unwrap_or(0);
    org.insert("securityhub:GetFindings", sh_total.div_ceil(100).max(1));
    let slowest = |calls: &BTreeMap<&'static str, u64>| {
        calls.iter().map(|(api, n)| (limits.bound(api, *n), *api)).max().unwrap_or((Duration::ZERO, "none"))
    };
    let (bound, bound_account, bound_api) = per_account
        .iter()
        .map(|(a, calls)| {
            let (d, api) = slowest(calls);
            (d, *a, api)
        })
        .max()
        .unwrap_or((Duration::ZERO, "none", "none"));
    let (admin_bound, admin_api) = slowest(&org);

    let secs = |d: Duration| d.as_secs_f64();
    let mut all: Vec<Run<'_>> = worker
        .runs
        .iter()
        .zip(emulator_cpu.iter().copied().chain(std::iter::repeat(None)))
        .map(|(report, emulator_cpu)| {
            let read: u64 = report.sync.collected.values().sum();
            let floor = Duration::from_secs_f64(read as f64 / report.ingest_findings_per_second);
            let ratio = report.sync_seconds / secs(bound.max(floor)).max(1e-9);
            Run { report, floor, ratio, emulator_cpu }
        })
        .collect();

    let (min_held, max_held) =
        (members_held.iter().min().copied().unwrap_or(0), members_held.iter().max().copied().unwrap_or(0));
    let per_source: Vec<String> = first.collected.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("scenario            {scenario} (loaded in {:.1} s)", secs(load_time));
    println!(
        "accounts            {} read ({} members of {min_held}-{max_held} Security Hub findings, and the admin)",
        worker.accounts,
        members_held.len()
    );
    println!("findings read       {collected} ({}); {} written", per_source.join(", "), first.written);
    println!("enroll (untimed)    {:.1} s", worker.enroll_seconds);
    println!(
        "concurrency         {} calls in flight, every account at once (the product's default)",
        SyncOptions::default().concurrency
    );
    println!("rate-limit bound    {:.2} s ({bound_api} of {bound_account}, every account in parallel)", secs(bound));
    println!("CPU floor           the findings read at the ingest pipeline's speed, {}", floor_source.describe());
    println!("run  sync     findings/s  CPU floor  ratio  throttled  CPU: orchestrator + emulator");
    for (i, r) in all.iter().enumerate() {
        let cpu = |d: Option<f64>| d.map_or_else(|| "-".to_string(), |s| format!("{s:.2} s"));
        println!(
            "{:<4} {:>6.2} s {:>11.0} {:>7.2} s {:>5.2}x {:>10}  {} + {}",
            i + 1,
            r.report.sync_seconds,
            collected as f64 / r.report.sync_seconds,
            secs(r.floor),
            r.ratio,
            r.report.sync.throttled,
            cpu(r.report.sync_cpu_seconds),
            cpu(r.emulator_cpu.map(secs))
        );
    }
    let ratios: Vec<f64> = all.iter().map(|r| r.ratio).collect();
    // The verdict is the median run's: the machine's noise moves single runs by a third.
    all.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
    let median = &all[all.len() / 2];
    let achieved = median.report.sync_seconds;
    let speedup = secs(admin_bound) / achieved;
    println!(
        "median run          sync {achieved:.2} s, CPU floor {:.2} s: ratio to the larger {:.2}x (target 1.2x)",
        secs(median.floor),
        median.ratio
    );
    println!(
        "admin alone (bound) {:.1} s ({admin_api}); speed-up of the sync over it {speedup:.0}x",
        secs(admin_bound)
    );
    if let Some(cpu) = median.report.sync_cpu_seconds {
        println!("orchestrator CPU    {cpu:.2} s during the median sync ({:.2} cores busy)", cpu / achieved);
    }
    if !median.report.sync_thread_cpu_seconds.is_empty() {
        let by_thread: Vec<String> =
            median.report.sync_thread_cpu_seconds.iter().map(|(name, s)| format!("{name} {s:.2} s")).collect();
        println!("  CPU by thread     {}", by_thread.join(", "));
    }
    if let (Some(orchestrator), Some(emulator)) = (median.report.sync_cpu_seconds, median.emulator_cpu) {
        let both = orchestrator + secs(emulator);
        println!("CPU, both sides     {both:.2} s: the sync takes at least {:.2} s on 2 cores", both / 2.0);
    }
    println!(
        "scoreboard after    {:.2} s ({} checks, org score {:.1})",
        worker.scoreboard_seconds, worker.checks, worker.org_score
    );
    println!(
        "memory (peak)       orchestrator {}, emulator and bench {}",
        mib(worker.peak_rss_kib),
        mib(emulator_peak)
    );
    let runs_json: Vec<serde_json::Value> = worker
        .runs
        .iter()
        .zip(&ratios)
        .zip(emulator_cpu.iter().copied().chain(std::iter::repeat(None)))
        .map(|((r, ratio), emulator)| {
            serde_json::json!({
                "sync_seconds": r.sync_seconds, "ingest_findings_per_second": r.ingest_findings_per_second,
                "ratio_to_larger": ratio, "throttled": r.sync.throttled, "sync_cpu_seconds": r.sync_cpu_seconds,
                "emulator_cpu_seconds": emulator.map(secs),
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "bench": "sync", "scenario": scenario, "accounts": worker.accounts, "findings": collected,
            "findings_by_source": first.collected, "written": first.written, "throttled": median.report.sync.throttled,
            "concurrency": SyncOptions::default().concurrency,
            "scenario_load_seconds": secs(load_time), "enroll_seconds": worker.enroll_seconds,
            "sync_seconds": achieved, "bound_seconds": secs(bound), "bound_account": bound_account,
            "bound_api": bound_api, "ingest_findings_per_second": median.report.ingest_findings_per_second,
            "cpu_floor_seconds": secs(median.floor), "ratio_to_larger": median.ratio,
            "admin_only_bound_seconds": secs(admin_bound), "speedup_over_admin_only": speedup,
            "sync_cpu_seconds": median.report.sync_cpu_seconds,
            "sync_thread_cpu_seconds": median.report.sync_thread_cpu_seconds,
            "emulator_cpu_seconds": median.emulator_cpu.map(secs),
            "scoreboard_seconds": worker.scoreboard_seconds, "checks": worker.checks,
            "worker_peak_rss_kib": worker.peak_rss_kib, "emulator_peak_rss_kib": emulator_peak,
            "runs": runs_json,
        })
    );
    Ok(())
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "not reported".to_string(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

/// The least calls of each API that reading `collected` findings of `source` in one account
/// and region takes: at least one list call per source, pages as full as the APIs allow.
fn least_calls(source: Source, collected: u64) -> Vec<(&'static str, u64)> {
    match source {
        Source::SecurityHub => vec![("securityhub:GetFindings", collected.div_ceil(100).max(1))],
        Source::GuardDuty => vec![
            ("guardduty:ListDetectors", 1),
            ("guardduty:ListFindings", collected.div_ceil(50).max(1)),
            ("guardduty:GetFindings", collected.div_ceil(50)),
        ],
        Source::Config => vec![
            ("config:DescribeConfigRules", 1),
            ("config:GetComplianceDetailsByConfigRule", collected.div_ceil(100)),
        ],
        Source::AccessAnalyzer => {
            vec![("access-analyzer:ListAnalyzers", 1), ("access-analyzer:ListFindings", collected.div_ceil(100))]
        }
    }
}

/// The generator's resources per account that give a member about `findings` Security Hub
/// findings: a member holds a fixed number of account-level findings and about the same number
/// per resource, so two small organizations (20 members without resources, and with 100) give
/// both, and the answer is rounded to the nearest whole resource.
fn resources_for(findings: usize) -> anyhow::Result<usize> {
    let per_member = |resources: usize| -> anyhow::Result<f64> {
        let name = format!("generate:accounts=20,resources={resources},seed={SEED}");
        let world = orgsec_emulator::scenario::load(&name, orgsec_emulator::WorldConfig::default(), 1)
            .with_context(|| format!("generating {name}"))?;
        let members: Vec<&String> =
            world.accounts.keys().filter(|a| a.parse::<u64>().is_ok_and(|n| n >= FIRST_MEMBER)).collect();
        let total: usize =
            members.iter().map(|a| world.findings.values().map(|s| s.for_account(a).count()).sum::<usize>()).sum();
        Ok(total as f64 / members.len().max(1) as f64)
    };
    let fixed = per_member(0)?;
    let per_resource = (per_member(100)? - fixed) / 100.0;
    if per_resource <= 0.0 {
        bail!("the generator's resources yield no Security Hub findings: cannot size the organization");
    }
    let resources = ((findings as f64 - fixed) / per_resource).round().max(1.0) as usize;
    // The generator's own cap.
    Ok(resources.min(10_000))
}

/// What the worker prints on its own line when the timed work starts and when it ends, so that
/// the bench can measure the emulator's CPU time during it alone.
pub(crate) const SYNC_STARTS: &str = "sync starts";
pub(crate) const SYNC_ENDS: &str = "sync ends";

/// Runs the orchestrator's side in a child process pointed at the emulator at `url` with
/// `args`; returns its report and, for each sync, the CPU time this process (the emulator)
/// spent while it ran.
fn run_worker(url: &str, args: &[String]) -> anyhow::Result<(WorkerReport, Vec<Option<Duration>>)> {
    let (report, emulator_cpu) = run_child("sync", url, args)?;
    Ok((serde_json::from_str(&report).context("reading the orchestrator's side's report")?, emulator_cpu))
}

/// Runs this binary's `bench --worker URL ARGS` in a child process whose environment points the
/// standard AWS chain at the emulator at `url` as the delegated admin, as `orgsec` would be
/// configured. Returns the child's report (its last line starting with `{`) and, for each
/// [`SYNC_STARTS`]..[`SYNC_ENDS`] pair it printed, the CPU time this process (the emulator)
/// spent in between.
pub(crate) fn run_child(bench: &str, url: &str, args: &[String]) -> anyhow::Result<(String, Vec<Option<Duration>>)> {
    let exe = std::env::current_exe().context("finding this benchmark's own executable")?;
    let mut cmd = Command::new(exe);
    cmd.args([bench, "--worker", url])
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", format!("AKID{ADMIN}"))
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // No profile of the machine's may change what the orchestrator sees.
        .env("AWS_CONFIG_FILE", "/nonexistent/orgsec-bench/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/orgsec-bench/credentials")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in ["TMPDIR", "RUST_LOG"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let mut child = cmd.spawn().context("starting the orchestrator's side")?;
    let stdout = child.stdout.take().context("the orchestrator's side has no output")?;
    // The emulator serves on this process's runtime while this thread reads the child's lines.
    let (mut started, mut emulator_cpu, mut report) = (None, Vec::new(), None);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the orchestrator's side's output")?;
        match line.as_str() {
            SYNC_STARTS => started = process_cpu(),
            SYNC_ENDS => emulator_cpu.push(process_cpu().zip(started.take()).map(|(a, b)| a.saturating_sub(b))),
            l if l.starts_with('{') => report = Some(l.to_string()),
            _ => {}
        }
    }
    let status = child.wait().context("waiting for the orchestrator's side")?;
    if !status.success() {
        bail!("the orchestrator's side failed ({status})");
    }
    Ok((report.context("the orchestrator's side printed no report")?, emulator_cpu))
}

/// The orchestrator's side: enroll every account at the emulator at `url`, then `runs` times:
/// measure the CPU floor (unless given), copy the enrolled store, reset the emulator's token
/// buckets and time a sync into the copy. Prints the report as one JSON line.
pub(crate) fn worker(rt: &Runtime, url: &str, floor: Floor, runs: usize) -> anyhow::Result<()> {
    let dir = TempDir::new("sync")?;
    let (aws, accounts, enroll_seconds, enrolled_db) = rt.block_on(enroll_all(dir.path()))?;
    let mut reports = Vec::new();
    let mut board = None;
    for i in 0..runs.max(1) {
        let rate = match floor {
            Floor::Given(r) => r,
            Floor::Measure { count, quick } => {
                let base = if quick { ingest::QUICK_SCENARIO } else { ingest::SCENARIO };
                eprintln!("run {}: measuring the ingest pipeline over {count} findings ...", i + 1);
                ingest::measure(rt, base, count)?.findings_per_second()
            }
        };
        let db = dir.path().join(format!("run-{i}.db"));
        std::fs::copy(&enrolled_db, &db).context("copying the enrolled store")?;
        eprintln!("run {}: syncing {} accounts ...", i + 1, accounts.len());
        let last = i + 1 == runs.max(1);
        let (report, scored) = rt.block_on(sync_once(url, &aws, &accounts, &db, rate, last))?;
        reports.push(report);
        board = scored.or(board);
        if !last {
            remove_db(&db);
        }
    }
    let (scoreboard_seconds, checks, org_score) = board.context("no run built the scoreboard")?;
    let report = WorkerReport {
        enroll_seconds,
        accounts: accounts.len(),
        runs: reports,
        scoreboard_seconds,
        checks,
        org_score,
        peak_rss_kib: memory_kib("VmHWM"),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Enrolls every account into a store in `dir`, closes it and returns the AWS access (its
/// member credentials cached), the accounts to read, how long enrollment took, and the store's
/// file.
pub(crate) async fn enroll_all(dir: &Path) -> anyhow::Result<(Aws, Vec<String>, f64, PathBuf)> {
    let mut settings = Settings::load(&dir.join("orgsec.toml"), false, |_| None)?;
    let db = dir.join("orgsec.db");
    settings.database_url = format!("sqlite://{}", db.display());
    settings.external_id = Some(EXTERNAL_ID.to_string());
    settings.regions = vec![REGION.to_string()];
    let store = Store::open(&settings.database_url).await?;
    let aws = Aws::from_env(&settings).await;

    let t = Instant::now();
    let enrolled = enroll::run(&aws, &store, &Selection::All, &|_| {}).await?;
    let enroll_seconds = t.elapsed().as_secs_f64();
    let accounts: Vec<String> = store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
        .map(|a| a.account_id)
        .collect();
    eprintln!("enrollment: {}", enrolled.summary());
    let stuck: Vec<_> = enrolled
        .accounts
        .iter()
        .filter(|a| !matches!(a.state, AccountState::Enrolled | AccountState::Admin | AccountState::Management))
        .collect();
    if let Some(a) = stuck.first() {
        bail!(
            "enrollment left {} accounts unenrolled ({}), e.g. {} {}: {}",
            stuck.len(),
            enrolled.summary(),
            a.account_id,
            a.state.as_str(),
            a.reason.as_deref().unwrap_or("no reason given")
        );
    }
    // Closing checkpoints the write-ahead log into the file, so the file alone is the store.
    store.close().await;
    Ok((aws, accounts, enroll_seconds, db))
}

/// One timed sync into the store at `db`, with the emulator's token buckets full; the last
/// run also builds the scoreboard (seconds, checks, org score).
async fn sync_once(
    url: &str,
    aws: &Aws,
    accounts: &[String],
    db: &Path,
    rate: f64,
    scoreboard: bool,
) -> anyhow::Result<(RunReport, Option<(f64, usize, f64)>)> {
    let store = Store::open(&format!("sqlite://{}", db.display())).await?;
    enable_rate_limits(url).await?;
    let collector = Collector::new(aws.clone(), store.clone(), Arc::new(Limits::default()));
    say(SYNC_STARTS)?;
    let cpu = process_cpu();
    let threads_before = threads_cpu();
    let t = Instant::now();
    let sync = collector.sync(accounts, &SyncOptions::default(), &|_| {}).await?;
    let sync_seconds = t.elapsed().as_secs_f64();
    let sync_cpu_seconds = process_cpu().zip(cpu).map(|(a, b)| a.saturating_sub(b).as_secs_f64());
    let sync_thread_cpu_seconds = cpu_by_name(&threads_before, &threads_cpu())
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .map(|(name, d)| (name, d.as_secs_f64()))
        .collect();
    say(SYNC_ENDS)?;

    let board = if scoreboard {
        let t = Instant::now();
        let board = posture::scoreboard(&store, Weights::default()).await?;
        Some((t.elapsed().as_secs_f64(), board.len(), board.score(&ScopeRef::org()).score))
    } else {
        None
    };
    let stored = store.finding_counts().await?;
    store.close().await;
    let report = RunReport {
        sync_seconds,
        sync_cpu_seconds,
        sync_thread_cpu_seconds,
        ingest_findings_per_second: rate,
        stored,
        sync: serde_json::from_value(serde_json::to_value(&sync)?)?,
    };
    Ok((report, board))
}

/// Removes a run's store and its side files, so that runs do not fill the disk.
fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Prints one line for the bench and flushes it at once.
pub(crate) fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Turns the emulator's published rate limits on (`PUT /_emulator/rate-limits`), every token
/// bucket full, as the bound assumes.
pub(crate) async fn enable_rate_limits(url: &str) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::builder()
        .method("PUT")
        .uri(format!("{url}/_emulator/rate-limits"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"enabled":true}"#)))?;
    let resp = client.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("turning the emulator's rate limits on answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
