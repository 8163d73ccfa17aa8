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
//! limits off (enrollment is not what is measured), turns the published limits on with every
//! token bucket full, and times `Collector::sync` of every enrolled account with the product's
//! default options, then the scoreboard `orgsec sync` builds after it. It reports what each
//! (account, source) read.
//!
//! **Bounds.** From what each account read, the least number of calls each API needed (pages of
//! 100 for Security Hub, Config and Access Analyzer; 50 for GuardDuty's list, then one
//! GetFindings per page), and `Limits::bound` for each at orgsec's configured rates (for Security
//! Hub's GetFindings, the published 3/s with a burst of 6): the best schedule reads every account
//! in parallel, so its time is the slowest account's slowest API. The same figure for the
//! admin alone puts every page through its one bucket per API (Security Hub: every finding of the
//! organization in pages of 100). The CPU floor is the findings read over the ingest pipeline's
//! findings per second (`orgsec-bench ingest`, run here over as many findings unless
//! `--ingest-rate` gives the figure). The CPU both sides used during the sync (orchestrator and
//! emulator, which share the machine) is reported too: over two cores, it is a third floor.
//!
//! **Checks.** The run fails if enrollment leaves a member out, if any read fails, if a finding
//! is rejected, or if the store does not hold every Security Hub finding of the accounts read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
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
const ADMIN: &str = "222222222222";
/// The ExternalId of the generated organization's member role.
const EXTERNAL_ID: &str = "orgsec-demo";
const REGION: &str = "us-east-1";
const SEED: u64 = 7;
/// The generator's first member account.
const FIRST_MEMBER: u64 = 300_000_000_000;

/// What the orchestrator's side (the worker) reports to the bench.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    enroll_seconds: f64,
    accounts: usize,
    sync_seconds: f64,
    /// The worker's CPU time during the sync, where the platform reports it.
    sync_cpu_seconds: Option<f64>,
    /// The same by thread (the runtime's workers, SQLite's connection threads), where reported.
    #[serde(default)]
    sync_thread_cpu_seconds: BTreeMap<String, f64>,
    scoreboard_seconds: f64,
    checks: usize,
    org_score: f64,
    stored: BTreeMap<Source, i64>,
    peak_rss_kib: Option<u64>,
    sync: SyncSummary,
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

pub(crate) fn run(
    rt: &Runtime,
    accounts: usize,
    findings_per_account: usize,
    ingest_rate: Option<f64>,
    quick: bool,
) -> anyhow::Result<()> {
    let (accounts, findings_per_account) =
        if quick { (3, 300) } else { (accounts.max(1), findings_per_account.max(1)) };

    let resources = resources_for(findings_per_account)?;
    let scenario = format!("generate:accounts={accounts},resources={resources},seed={SEED}");

    // The CPU floor's rate, measured before the emulator holds its world in memory.
    let (rate, rate_source) = match ingest_rate {
        Some(r) if r > 0.0 => (r, "given".to_string()),
        Some(r) => bail!("--ingest-rate {r}: give findings per second, a positive number"),
        None => {
            let (base, count) = if quick {
                (ingest::QUICK_SCENARIO, ingest::QUICK_COUNT)
            } else {
                (ingest::SCENARIO, accounts * findings_per_account)
            };
            eprintln!("measuring the ingest pipeline over {count} findings for the CPU floor ...");
            let r = ingest::measure(rt, base, count)?;
            (r.findings_per_second(), format!("ingest of {count} findings, measured now"))
        }
    };

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

    eprintln!("enrolling and syncing {accounts} accounts ...");
    let (worker, emulator_cpu) = run_worker(&em.url())?;
    let emulator_peak = memory_kib("VmHWM");
    rt.block_on(em.shutdown());

    let report = &worker.sync;
    if let Some(u) = report.errors().next() {
        bail!(
            "{} reads failed, e.g. {} {} {}: {:?}",
            report.errors().count(),
            u.account_id,
            u.region,
            u.source,
            u.error
        );
    }
    let rejected: u64 = report.rejected.values().sum();
    if rejected > 0 {
        bail!("{rejected} findings were rejected: the emulator's findings should all be valid");
    }
    // Every Security Hub finding of every account read (members and the admin) is stored.
    let expected_sh: usize = report
        .units
        .iter()
        .filter(|u| u.source == Source::SecurityHub)
        .map(|u| held.get(&u.account_id).copied().unwrap_or(0))
        .sum();
    let stored_sh = worker.stored.get(&Source::SecurityHub).copied().unwrap_or(0);
    if stored_sh != expected_sh as i64 {
        bail!("the store holds {stored_sh} Security Hub findings, the accounts read hold {expected_sh}");
    }

    let limits = Limits::default();
    let collected: u64 = report.collected.values().sum();
    let mut per_account: BTreeMap<&str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut org: BTreeMap<&'static str, u64> = BTreeMap::new();
    for u in &report.units {
        for (api, calls) in least_calls(u.source, u.collected) {
            *per_account.entry(u.account_id.as_str()).or_default().entry(api).or_default() += calls;
            *org.entry(api).or_default() += calls;
        }
    }
    // The admin alone reads the organization's Security Hub findings in pages of 100 as one list.
    let sh_total = report.collected.get(&Source::SecurityHub).copied().unwrap_or(0);
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
    let floor = Duration::from_secs_f64(collected as f64 / rate);
    let achieved = Duration::from_secs_f64(worker.sync_seconds);
    let larger = bound.max(floor);
    let ratio = achieved.as_secs_f64() / larger.as_secs_f64().max(1e-9);
    let speedup = admin_bound.as_secs_f64() / achieved.as_secs_f64();

    let secs = |d: Duration| d.as_secs_f64();
    let (min_held, max_held) =
        (members_held.iter().min().copied().unwrap_or(0), members_held.iter().max().copied().unwrap_or(0));
    let per_source: Vec<String> = report.collected.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("scenario            {scenario} (loaded in {:.1} s)", secs(load_time));
    println!(
        "accounts            {} read ({} members of {min_held}-{max_held} Security Hub findings, and the admin)",
        worker.accounts,
        members_held.len()
    );
    println!("findings read       {collected} ({}); {} written", per_source.join(", "), report.written);
    println!("enroll (untimed)    {:.1} s", worker.enroll_seconds);
    println!(
        "concurrency         {} calls in flight, every account at once (the product's default)",
        SyncOptions::default().concurrency
    );
    println!(
        "sync                {:.2} s ({:.0} findings/s), {} throttled calls",
        secs(achieved),
        collected as f64 / secs(achieved),
        report.throttled
    );
    println!("rate-limit bound    {:.2} s ({bound_api} of {bound_account}, every account in parallel)", secs(bound));
    println!("CPU floor           {:.2} s ({collected} findings at {rate:.0} findings/s, {rate_source})", secs(floor));
    println!("ratio to the larger {ratio:.2}x");
    println!(
        "admin alone (bound) {:.1} s ({admin_api}); speed-up of the sync over it {speedup:.0}x",
        secs(admin_bound)
    );
    if let Some(cpu) = worker.sync_cpu_seconds {
        println!("orchestrator CPU    {cpu:.2} s during the sync ({:.2} cores busy)", cpu / secs(achieved));
    }
    if !worker.sync_thread_cpu_seconds.is_empty() {
        let by_thread: Vec<String> =
            worker.sync_thread_cpu_seconds.iter().map(|(name, s)| format!("{name} {s:.2} s")).collect();
        println!("  CPU by thread     {}", by_thread.join(", "));
    }
    if let Some(cpu) = emulator_cpu {
        println!("emulator CPU        {:.2} s during the sync", secs(cpu));
    }
    if let (Some(orchestrator), Some(emulator)) = (worker.sync_cpu_seconds, emulator_cpu) {
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
    println!(
        "{}",
        serde_json::json!({
            "bench": "sync", "scenario": scenario, "accounts": worker.accounts, "findings": collected,
            "findings_by_source": report.collected, "written": report.written, "throttled": report.throttled,
            "concurrency": SyncOptions::default().concurrency,
            "scenario_load_seconds": secs(load_time), "enroll_seconds": worker.enroll_seconds,
            "sync_seconds": secs(achieved), "bound_seconds": secs(bound), "bound_account": bound_account,
            "bound_api": bound_api, "ingest_findings_per_second": rate, "cpu_floor_seconds": secs(floor),
            "ratio_to_larger": ratio, "admin_only_bound_seconds": secs(admin_bound), "speedup_over_admin_only": speedup,
            "sync_cpu_seconds": worker.sync_cpu_seconds, "sync_thread_cpu_seconds": worker.sync_thread_cpu_seconds,
            "emulator_cpu_seconds": emulator_cpu.map(secs),
            "scoreboard_seconds": worker.scoreboard_seconds, "checks": worker.checks,
            "worker_peak_rss_kib": worker.peak_rss_kib, "emulator_peak_rss_kib": emulator_peak,
        })
    );
    Ok(())
}

fn mib(kib: Option<u64>) -> String {
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

/// What the worker prints on its own line when the sync starts and when it ends, so that the
/// bench can measure the emulator's CPU time during the sync alone.
const SYNC_STARTS: &str = "sync starts";
const SYNC_ENDS: &str = "sync ends";

/// Runs the orchestrator's side in a child process pointed at the emulator at `url`; returns
/// its report and the CPU time this process (the emulator) spent while the sync ran.
fn run_worker(url: &str) -> anyhow::Result<(WorkerReport, Option<Duration>)> {
    let exe = std::env::current_exe().context("finding this benchmark's own executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["sync", "--worker", url])
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
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        cmd.env("TMPDIR", tmp);
    }
    let mut child = cmd.spawn().context("starting the orchestrator's side")?;
    let stdout = child.stdout.take().context("the orchestrator's side has no output")?;
    // The emulator serves on this process's runtime while this thread reads the child's lines.
    let (mut started, mut emulator_cpu, mut report) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the orchestrator's side's output")?;
        match line.as_str() {
            SYNC_STARTS => started = process_cpu(),
            SYNC_ENDS => emulator_cpu = process_cpu().zip(started).map(|(a, b)| a.saturating_sub(b)),
            l if l.starts_with('{') => report = Some(l.to_string()),
            _ => {}
        }
    }
    let status = child.wait().context("waiting for the orchestrator's side")?;
    if !status.success() {
        bail!("the orchestrator's side failed ({status})");
    }
    let report = report.context("the orchestrator's side printed no report")?;
    Ok((serde_json::from_str(&report).context("reading the orchestrator's side's report")?, emulator_cpu))
}

/// The orchestrator's side: enroll every account at the emulator at `url`, reset its token
/// buckets, time a sync, and print the report as one JSON line.
pub(crate) fn worker(rt: &Runtime, url: &str) -> anyhow::Result<()> {
    let report = rt.block_on(work(url))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn work(url: &str) -> anyhow::Result<WorkerReport> {
    let dir = TempDir::new("sync")?;
    let mut settings = Settings::load(&dir.path().join("orgsec.toml"), false, |_| None)?;
    settings.database_url = format!("sqlite://{}", dir.path().join("orgsec.db").display());
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
    enable_rate_limits(url).await?;

    let collector = Collector::new(aws, store.clone(), Arc::new(Limits::default()));
    say(SYNC_STARTS)?;
    let cpu = process_cpu();
    let threads_before = threads_cpu();
    let t = Instant::now();
    let sync = collector.sync(&accounts, &SyncOptions::default(), &|_| {}).await?;
    let sync_seconds = t.elapsed().as_secs_f64();
    let sync_cpu_seconds = process_cpu().zip(cpu).map(|(a, b)| a.saturating_sub(b).as_secs_f64());
    let sync_thread_cpu_seconds = cpu_by_name(&threads_before, &threads_cpu())
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .map(|(name, d)| (name, d.as_secs_f64()))
        .collect();
    say(SYNC_ENDS)?;

    let t = Instant::now();
    let board = posture::scoreboard(&store, Weights::default()).await?;
    let scoreboard_seconds = t.elapsed().as_secs_f64();
    let stored = store.finding_counts().await?;
    store.close().await;
    Ok(WorkerReport {
        enroll_seconds,
        accounts: accounts.len(),
        sync_seconds,
        sync_cpu_seconds,
        sync_thread_cpu_seconds,
        scoreboard_seconds,
        checks: board.len(),
        org_score: board.score(&ScopeRef::org()).score,
        stored,
        peak_rss_kib: memory_kib("VmHWM"),
        sync: serde_json::from_value(serde_json::to_value(&sync)?)?,
    })
}

/// Prints one line for the bench and flushes it at once.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Turns the emulator's published rate limits on (`PUT /_emulator/rate-limits`), every token
/// bucket full, as the bound assumes.
async fn enable_rate_limits(url: &str) -> anyhow::Result<()> {
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
