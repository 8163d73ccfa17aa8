//! `orgsec-bench ingest`: what it costs orgsec to take in a million Security Hub findings, next
//! to the least any program must spend on the same bytes.
//!
//! **Input.** An emulator runs in-process with a generated organization, rate limits off; every
//! Security Hub finding is read as the delegated admin would read it (raw `GetFindings` pages of
//! 100). The findings are grouped by account and replicated, each copy of an account under a new
//! account id (the id is rewritten wherever the document carries it: `Id`, `AwsAccountId`,
//! resource ARNs and names), until there are N. They are written as pages of 100 findings of one
//! account, one page body per line, to a file in a temporary folder, and streamed back from it:
//! a million findings is about 2 GB of JSON, which would not fit the memory budget.
//!
//! **Floor.** Reading every page body from the file and parsing it with `serde_json` into a
//! `serde_json::Value`: read and parse only. It runs before and after the pipeline and the faster
//! run counts, so the ratio is never flattered by a slow floor.
//!
//! **Pipeline.** The product's own code paths, as a sync runs them: on one thread per core (a
//! sync normalizes each account's pages on the task that read them, on every worker), each page
//! is split (`normalize::page`), each document normalized (`normalize::securityhub`), the page's
//! documents compressed for the store (`Batch::pack`), and its checks (`posture::checks`, from
//! the rows the store would hold) upserted into a shared `Scoreboard`; a single writer task
//! gathers pages into transactions of up to 5,000 findings (`Store::write_batch`, findings with
//! their watermarks) on a SQLite store in the temporary folder, as the sync's writer does. A
//! bounded channel between them keeps memory flat.
//!
//! **Checks.** The run fails unless the store holds exactly N findings, every one written, none
//! rejected, and the board holds checks.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orgsec::catalogue::catalogue;
use orgsec::collect::{Next, WRITE_BATCH, WRITER_QUEUE, next_for_writer};
use orgsec::finding::{Finding, Source};
use orgsec::normalize::{self, criticality_tag};
use orgsec::posture::{self, AccountInfo};
use orgsec::score::{Scoreboard, Weights};
use orgsec::store::{Batch, CheckRow, RejectedRecord, Store};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::runtime::Runtime;

/// The organization the findings are read from: 10 accounts of 200 resources (about 330
/// findings each). Small on purpose: the emulator's world is built in this process, and memory
/// it frees stays with the process, so a large one would count against the pipeline's budget.
pub(crate) const SCENARIO: &str = "generate:accounts=10,resources=200,seed=7";
/// A smaller one for quick runs (CI), so that loading it takes no time in a debug build.
pub(crate) const QUICK_SCENARIO: &str = "generate:accounts=10,resources=40,seed=7";
/// Findings in a quick run.
pub(crate) const QUICK_COUNT: usize = 20_000;
/// Where the generated findings live.
const REGION: &str = "us-east-1";
/// Findings per page, as `GetFindings` serves them with `MaxResults` 100.
const PAGE: usize = 100;
/// Replicated accounts are numbered from here, far from the generator's own ids.
const FIRST_ACCOUNT: u64 = 400_000_000_000;
/// The generator's OUs, in the order it assigns them.
const OUS: [&str; 3] = ["Root/Prod", "Root/Dev", "Root/Sandbox"];
/// The signature the emulator needs to route a call as the delegated admin (it reads the
/// access key and the credential scope; it does not verify signatures).
const ADMIN_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID222222222222/20261122/us-east-1/securityhub/aws4_request, \
                          SignedHeaders=host, Signature=0";

/// What one run measured.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) findings: usize,
    pub(crate) accounts: usize,
    pub(crate) pages: usize,
    pub(crate) input_bytes: u64,
    pub(crate) base_findings: usize,
    pub(crate) prepare: Duration,
    /// The faster of the two floor runs, and both.
    pub(crate) floor: Duration,
    pub(crate) floor_runs: [Duration; 2],
    pub(crate) pipeline: Duration,
    /// Time the normalizing thread spent reading and splitting pages and normalizing documents.
    pub(crate) normalize: Duration,
    /// Time it spent mapping findings to checks and upserting them.
    pub(crate) score: Duration,
    /// Time it waited for the writer (the channel full).
    pub(crate) blocked: Duration,
    /// Time the writer spent in `write_batch`, and its transactions.
    pub(crate) write: Duration,
    pub(crate) transactions: usize,
    pub(crate) checks: usize,
    pub(crate) org_score: f64,
    pub(crate) db_bytes: u64,
    pub(crate) rss_before_pipeline_kib: Option<u64>,
    pub(crate) peak_rss_kib: Option<u64>,
    /// CPU time of the process during the pipeline (user + system), where the platform says.
    pub(crate) pipeline_cpu: Option<Duration>,
    /// The same by thread: `normalizers` (all of them); `tokio-rt-worker`, the writer task, which
    /// runs SQLite's work of the findings upsert itself; `sqlx-sqlite-worker`, the connections'
    /// threads (commits, watermarks, background checkpoints).
    pub(crate) thread_cpu: BTreeMap<String, Duration>,
    /// Bytes the pipeline caused to be written to storage (the database, its WAL and their
    /// checkpoints), where the platform reports it.
    pub(crate) disk_write_bytes: Option<u64>,
}

impl Report {
    pub(crate) fn findings_per_second(&self) -> f64 {
        self.findings as f64 / self.pipeline.as_secs_f64()
    }

    pub(crate) fn floor_per_second(&self) -> f64 {
        self.findings as f64 / self.floor.as_secs_f64()
    }

    pub(crate) fn ratio(&self) -> f64 {
        self.pipeline.as_secs_f64() / self.floor.as_secs_f64()
    }
}

pub(crate) fn run(rt: &Runtime, count: usize, quick: bool) -> anyhow::Result<()> {
    let (scenario, count) = if quick { (QUICK_SCENARIO, QUICK_COUNT) } else { (SCENARIO, count.max(1)) };
    let r = measure(rt, scenario, count)?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let secs = |d: Duration| d.as_secs_f64();
    println!("scenario            {} ({} findings read, replicated)", r.scenario, r.base_findings);
    println!("findings            {} in {} accounts, {} pages of up to {PAGE}", r.findings, r.accounts, r.pages);
    println!("input               {:.0} MiB of page bodies, prepared in {:.1} s", mib(r.input_bytes), secs(r.prepare));
    println!(
        "floor (read+parse)  {:.2} s, {:.0} findings/s (runs: {:.2} s, {:.2} s)",
        secs(r.floor),
        r.floor_per_second(),
        secs(r.floor_runs[0]),
        secs(r.floor_runs[1])
    );
    println!("pipeline            {:.2} s, {:.0} findings/s", secs(r.pipeline), r.findings_per_second());
    println!("ratio to floor      {:.2}x", r.ratio());
    println!(
        "  normalizers       {:.2} s normalizing, {:.2} s scoring, {:.2} s waiting for the writer (all threads)",
        secs(r.normalize),
        secs(r.score),
        secs(r.blocked)
    );
    println!("  writer            {:.2} s in write_batch ({} transactions)", secs(r.write), r.transactions);
    if let Some(cpu) = r.pipeline_cpu {
        println!("  process CPU       {:.2} s ({:.2} cores busy)", secs(cpu), secs(cpu) / secs(r.pipeline));
    }
    let by_thread: Vec<String> =
        r.thread_cpu.iter().filter(|(_, d)| !d.is_zero()).map(|(n, d)| format!("{n} {:.2} s", secs(*d))).collect();
    if !by_thread.is_empty() {
        println!("  CPU by thread     {}", by_thread.join(", "));
    }
    println!("checks on board     {} (org score {:.1})", r.checks, r.org_score);
    println!("database            {:.0} MiB", mib(r.db_bytes));
    if let Some(w) = r.disk_write_bytes {
        println!(
            "written to disk     {:.0} MiB ({:.1} KiB per finding) in {:.1} s: {:.0} MiB/s",
            mib(w),
            w as f64 / 1024.0 / r.findings as f64,
            secs(r.pipeline),
            mib(w) / secs(r.pipeline)
        );
    }
    match (r.rss_before_pipeline_kib, r.peak_rss_kib) {
        (Some(before), Some(peak)) => println!(
            "memory              {:.0} MiB before the pipeline, {:.0} MiB peak",
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        ),
        _ => println!("memory              not reported on this platform"),
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "ingest", "scenario": r.scenario, "findings": r.findings, "accounts": r.accounts, "pages": r.pages,
            "input_bytes": r.input_bytes, "floor_seconds": secs(r.floor),
            "floor_runs_seconds": [secs(r.floor_runs[0]), secs(r.floor_runs[1])],
            "pipeline_seconds": secs(r.pipeline), "findings_per_second": r.findings_per_second(),
            "floor_findings_per_second": r.floor_per_second(), "ratio_to_floor": r.ratio(),
            "normalize_seconds": secs(r.normalize), "score_seconds": secs(r.score),
            "blocked_seconds": secs(r.blocked), "write_seconds": secs(r.write), "transactions": r.transactions,
            "pipeline_cpu_seconds": r.pipeline_cpu.map(secs),
            "thread_cpu_seconds": r.thread_cpu.iter().map(|(n, d)| (n.clone(), secs(*d))).collect::<BTreeMap<_, _>>(),
            "checks": r.checks, "org_score": r.org_score,
            "db_bytes": r.db_bytes, "disk_write_bytes": r.disk_write_bytes, "rss_before_pipeline_kib": r.rss_before_pipeline_kib, "peak_rss_kib": r.peak_rss_kib,
        })
    );
    Ok(())
}

/// Prepares `count` findings from `scenario`, then times the floor and the pipeline over them.
pub(crate) fn measure(rt: &Runtime, scenario: &str, count: usize) -> anyhow::Result<Report> {
    let dir = TempDir::new("ingest")?;
    let input = dir.path().join("pages.jsonl");

    let started = Instant::now();
    let base = rt.block_on(read_base(scenario))?;
    let base_findings = base.iter().map(|a| a.docs.len()).sum::<usize>();
    if base_findings == 0 {
        bail!("the scenario {scenario} has no Security Hub findings to replicate");
    }
    let prepared = replicate(&base, count, &input)?;
    drop(base);
    let prepare = started.elapsed();

    let floor_before = floor(&input, count)?;
    let rss_before_pipeline_kib = memory_kib("VmRSS");
    let cpu_before = process_cpu();
    let written_before = disk_write_bytes();
    let p = rt.block_on(pipeline(&input, dir.path(), count, &prepared.accounts))?;
    let pipeline_cpu = process_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let disk_write_bytes = disk_write_bytes().zip(written_before).map(|(after, before)| after.saturating_sub(before));
    let floor_after = floor(&input, count)?;

    Ok(Report {
        scenario: scenario.to_string(),
        findings: count,
        accounts: prepared.accounts.len(),
        pages: prepared.pages,
        input_bytes: prepared.bytes,
        base_findings,
        prepare,
        floor: floor_before.min(floor_after),
        floor_runs: [floor_before, floor_after],
        pipeline: p.elapsed,
        normalize: p.normalize,
        score: p.score,
        blocked: p.blocked,
        write: p.write,
        transactions: p.transactions,
        checks: p.checks,
        org_score: p.org_score,
        db_bytes: p.db_bytes,
        rss_before_pipeline_kib,
        peak_rss_kib: memory_kib("VmHWM"),
        pipeline_cpu,
        thread_cpu: p.thread_cpu,
        disk_write_bytes,
    })
}

/// One account's Security Hub findings as the emulator rendered them.
pub(crate) struct BaseAccount {
    pub(crate) account: String,
    pub(crate) docs: Vec<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(rename = "Findings")]
    findings: Vec<Box<RawValue>>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct AccountOnly<'a> {
    #[serde(rename = "AwsAccountId", borrow)]
    account: std::borrow::Cow<'a, str>,
}

/// Starts the emulator with `scenario` and reads every Security Hub finding the delegated admin
/// sees, page by page, grouped by account.
pub(crate) async fn read_base(scenario: &str) -> anyhow::Result<Vec<BaseAccount>> {
    let em = orgsec_emulator::Emulator::builder()
        .scenario(scenario)
        .rate_limits(false)
        .start()
        .await
        .with_context(|| format!("starting the emulator with {scenario}"))?;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut by_account: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let body = get_findings_page(&client, &em.url(), ADMIN_AUTH, token.as_deref()).await?;
        let page: RawPage = serde_json::from_slice(&body).context("reading a GetFindings page")?;
        for doc in page.findings {
            let account = serde_json::from_str::<AccountOnly<'_>>(doc.get())
                .context("a finding without AwsAccountId")?
                .account
                .into_owned();
            by_account.entry(account).or_default().push(doc.get().to_string());
        }
        token = page.next_token.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    em.shutdown().await;
    Ok(by_account.into_iter().map(|(account, docs)| BaseAccount { account, docs }).collect())
}

/// One raw `GetFindings` page of 100, after `token`, signed as `auth` (the emulator reads the
/// access key and credential scope only).
async fn get_findings_page(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    auth: &str,
    token: Option<&str>,
) -> anyhow::Result<Bytes> {
    let body = match token {
        None => serde_json::json!({"MaxResults": PAGE}).to_string(),
        Some(t) => serde_json::json!({"MaxResults": PAGE, "NextToken": t}).to_string(),
    };
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("{url}/findings"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = client.request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("GetFindings answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(bytes)
}

/// What [`replicate`] wrote.
struct Prepared {
    pages: usize,
    bytes: u64,
    /// Every account the findings are in, as posture knows accounts.
    accounts: HashMap<String, AccountInfo>,
}

/// Writes `count` findings to `path` as pages of up to [`PAGE`] findings of one account, one
/// page body per line: copy `r` of base account `a` becomes account
/// `FIRST_ACCOUNT + r x accounts + a`, with the generator's OU and criticality tag for that index.
fn replicate(base: &[BaseAccount], count: usize, path: &Path) -> anyhow::Result<Prepared> {
    let mut out =
        BufWriter::with_capacity(1 << 20, File::create(path).with_context(|| format!("creating {}", path.display()))?);
    let mut accounts = HashMap::new();
    let (mut written, mut pages, mut bytes) = (0usize, 0usize, 0u64);
    let mut copy = 0u64;
    'outer: loop {
        for (a, b) in base.iter().enumerate() {
            if b.docs.is_empty() {
                continue;
            }
            let index = copy * base.len() as u64 + a as u64;
            let id = format!("{:012}", FIRST_ACCOUNT + index);
            accounts.insert(
                id.clone(),
                AccountInfo {
                    ou_path: OUS[(index % 3) as usize].to_string(),
                    tags: BTreeMap::from([("orgsec:criticality".to_string(), format!("{}", 1 + index % 5))]),
                },
            );
            let chunks = b.docs.chunks(PAGE).collect::<Vec<_>>();
            for (n, chunk) in chunks.iter().enumerate() {
                let take = chunk.len().min(count - written);
                let mut line = String::with_capacity(chunk.iter().map(|d| d.len() + 1).sum::<usize>() + 64);
                line.push_str("{\"Findings\":[");
                for (i, doc) in chunk[..take].iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&doc.replace(b.account.as_str(), &id));
                }
                line.push(']');
                if n + 1 < chunks.len() && written + take < count {
                    line.push_str(&format!(",\"NextToken\":\"{id}-{}\"", n + 1));
                }
                line.push_str("}\n");
                out.write_all(line.as_bytes())?;
                written += take;
                pages += 1;
                bytes += line.len() as u64;
                if written == count {
                    break 'outer;
                }
            }
        }
        copy += 1;
    }
    out.flush()?;
    Ok(Prepared { pages, bytes, accounts })
}

/// Reads and parses every page into a `serde_json::Value`; fails unless it finds `count`
/// findings.
fn floor(path: &Path, count: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut lines = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        n += v.get("Findings").and_then(|f| f.as_array()).map_or(0, Vec::len);
        black_box(v);
    }
    if n != count {
        bail!("the floor read {n} findings, expected {count}");
    }
    Ok(started.elapsed())
}

/// What the pipeline measured.
struct Pipeline {
    elapsed: Duration,
    normalize: Duration,
    score: Duration,
    blocked: Duration,
    write: Duration,
    transactions: usize,
    checks: usize,
    org_score: f64,
    db_bytes: u64,
    thread_cpu: BTreeMap<String, Duration>,
}

/// The row the store keeps for scoring, from a finding (what `Store::check_rows` reads back).
fn check_row(f: &Finding) -> CheckRow {
    CheckRow {
        check_key: f.check_key.clone(),
        source: f.source,
        account_id: f.account_id.clone(),
        resource_type: f.resource_type.clone(),
        resource_id: f.resource_id.clone(),
        control_id: f.control_id.clone(),
        finding_type: f.finding_type.clone(),
        severity: f.severity,
        criticality: criticality_tag(&f.resource_tags),
        failing: f.is_failing(),
        updated_at: f.updated_at,
    }
}

async fn pipeline(
    input: &Path,
    dir: &Path,
    count: usize,
    accounts: &HashMap<String, AccountInfo>,
) -> anyhow::Result<Pipeline> {
    let db = dir.join("orgsec.db");
    let store = Store::open(&format!("sqlite://{}", db.display())).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(WRITER_QUEUE);

    let threads_before = threads_cpu();
    let started = Instant::now();
    // The writer, as the sync's: gathers pages into transactions of up to WRITE_BATCH findings,
    // writing what it holds when nothing more comes for GATHER_WAIT.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut written, mut rejected, mut transactions, mut busy) = (0u64, 0u64, 0usize, Duration::ZERO);
            let mut pending = Batch::default();
            let mut holding_since = None;
            loop {
                let next = next_for_writer(&mut rx, holding_since).await;
                let (done, waited) = (matches!(next, Next::Closed), matches!(next, Next::Write));
                if let Next::Message(b) = next {
                    pending.append(b);
                    holding_since.get_or_insert_with(tokio::time::Instant::now);
                }
                if !pending.is_empty() && (done || waited || pending.findings.len() >= WRITE_BATCH) {
                    let batch = std::mem::take(&mut pending);
                    holding_since = None;
                    let t = Instant::now();
                    let outcome = store.write_batch(&batch, now_ms()).await?;
                    busy += t.elapsed();
                    written += outcome.written;
                    rejected += outcome.rejected;
                    transactions += 1;
                }
                if done {
                    return anyhow::Ok((written, rejected, transactions, busy));
                }
            }
        })
    };

    // The normalizing side: one thread per core, as a sync normalizes each account's pages on
    // the task that read them, on every worker of the runtime. They share the input file and
    // the board.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let shared = std::sync::Arc::new(Shared {
        lines: std::sync::Mutex::new(BufReader::with_capacity(1 << 20, File::open(input)?)),
        board: std::sync::Mutex::new(Scoreboard::new(Weights::default())),
        accounts: accounts.clone(),
    });
    let normalizers: Vec<_> = (0..threads)
        .map(|i| {
            let (shared, tx) = (shared.clone(), tx.clone());
            std::thread::Builder::new().name(format!("normalizer-{i}")).spawn(move || normalize_and_score(&shared, tx))
        })
        .collect::<Result<_, _>>()?;
    drop(tx);
    let mut n = Normalized::default();
    let mut results = Vec::with_capacity(threads);
    for t in normalizers {
        results.push(t.join().map_err(|_| anyhow!("a normalizing thread panicked"))?);
    }
    // When the writer failed, the normalizers only saw it stop: its own error says why.
    let (written, rejected, transactions, write) = writer.await?.context("the store's writer failed")?;
    for one in results {
        let one = one?;
        n.normalize += one.normalize;
        n.score += one.score;
        n.blocked += one.blocked;
        n.rejected += one.rejected;
        n.cpu = match (n.cpu, one.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
    let elapsed = started.elapsed();
    let mut thread_cpu = cpu_by_name(&threads_before, &threads_cpu());
    if let Some(cpu) = n.cpu {
        thread_cpu.insert("normalizers".to_string(), cpu);
    }
    let board = std::sync::Arc::try_unwrap(shared)
        .map_err(|_| anyhow!("a normalizing thread still holds the board"))?
        .board
        .into_inner()
        .map_err(|_| anyhow!("a normalizing thread panicked holding the board"))?;
    let pages_rejected = n.rejected;

    if rejected > 0 || pages_rejected > 0 {
        bail!("{} findings were rejected: the replicated documents should all be valid", rejected.max(pages_rejected));
    }
    if written != count as u64 {
        bail!("the store wrote {written} findings, expected {count}");
    }
    let stored = store.finding_counts().await?.get(&Source::SecurityHub).copied().unwrap_or(0);
    if stored != count as i64 {
        bail!("the store holds {stored} findings, expected {count}: replicated ids collide");
    }
    if board.is_empty() {
        bail!("the board holds no checks");
    }
    let org_score = board.score(&orgsec::score::ScopeRef::org()).score;
    store.close().await;
    let db_bytes = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Ok(Pipeline {
        elapsed,
        normalize: n.normalize,
        score: n.score,
        blocked: n.blocked,
        write,
        transactions,
        checks: board.len(),
        org_score,
        db_bytes,
        thread_cpu,
    })
}

/// What the normalizing threads share.
struct Shared {
    lines: std::sync::Mutex<BufReader<File>>,
    board: std::sync::Mutex<Scoreboard>,
    accounts: HashMap<String, AccountInfo>,
}

/// What a normalizing thread did (or all of them, summed).
#[derive(Default)]
struct Normalized {
    normalize: Duration,
    score: Duration,
    blocked: Duration,
    rejected: u64,
    /// Its CPU time, where the platform reports it.
    cpu: Option<Duration>,
}

/// Takes pages from the shared input until it ends, normalizes each into a batch for the writer
/// (compressing its documents, as collection does), and scores it on the shared board.
fn normalize_and_score(shared: &Shared, tx: tokio::sync::mpsc::Sender<Batch>) -> anyhow::Result<Normalized> {
    let mut n = Normalized::default();
    let mut line = String::new();
    let lookup = |id: &str| catalogue().get(id);
    loop {
        let t = Instant::now();
        line.clear();
        let read = shared.lines.lock().map_err(|_| anyhow!("a normalizing thread panicked"))?.read_line(&mut line)?;
        if read == 0 {
            break;
        }
        let page = normalize::page(&line, "Findings", "NextToken").map_err(|e| anyhow!("a page: {e}"))?;
        let now = now_ms();
        let mut batch = Batch::default();
        let mut watermark: Option<(String, i64)> = None;
        for raw in page.items {
            match normalize::securityhub(raw, REGION, lookup) {
                Ok(f) => {
                    watermark = Some(match watermark {
                        Some((a, w)) => (a, w.max(f.updated_at)),
                        None => (f.account_id.clone(), f.updated_at),
                    });
                    batch.findings.push(f);
                }
                Err(r) => {
                    n.rejected += 1;
                    batch.rejected.push(RejectedRecord::new(
                        Source::SecurityHub,
                        "",
                        REGION,
                        r.id,
                        r.reason,
                        raw.get(),
                        now,
                    ));
                }
            }
        }
        if let Some((account, w)) = watermark {
            batch.watermarks.push((account, REGION.to_string(), Source::SecurityHub, w));
        }
        batch.pack()?;
        n.normalize += t.elapsed();

        let t = Instant::now();
        let rows: Vec<CheckRow> = batch.findings.iter().map(check_row).collect();
        let checks = posture::checks(&rows, &shared.accounts);
        let mut board = shared.board.lock().map_err(|_| anyhow!("a normalizing thread panicked"))?;
        for check in checks {
            board.upsert(check);
        }
        drop(board);
        n.score += t.elapsed();

        let t = Instant::now();
        tx.blocking_send(batch).map_err(|_| anyhow!("the writer stopped"))?;
        n.blocked += t.elapsed();
    }
    n.cpu = thread_cpu();
    Ok(n)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A folder under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("orgsec-bench-{what}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing a stale {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A memory figure of this process from the kernel's status file, in KiB (Linux only).
pub(crate) fn memory_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU time (user + system) this process has used, from the kernel (Linux only; the kernel
/// counts in ticks of 1/100 s on every platform Rust targets).
pub(crate) fn process_cpu() -> Option<Duration> {
    cpu_from_stat("/proc/self/stat")
}

/// Bytes this process has caused to be written to storage (`write_bytes` of proc(5)'s `io`;
/// Linux only).
fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// CPU time (user + system) the calling thread has used (Linux only).
fn thread_cpu() -> Option<Duration> {
    cpu_from_stat("/proc/thread-self/stat")
}

/// CPU time of every live thread of this process, by thread id, with the thread's name.
pub(crate) fn threads_cpu() -> HashMap<String, (String, Duration)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_string();
        if let Some(cpu) = dir.join("stat").to_str().and_then(cpu_from_stat) {
            out.insert(task.file_name().to_string_lossy().into_owned(), (name, cpu));
        }
    }
    out
}

/// CPU time threads spent between two [`threads_cpu`] snapshots, summed by the thread's name
/// without its trailing number (`sqlx-sqlite-worker-0` counts as `sqlx-sqlite-worker`).
pub(crate) fn cpu_by_name(
    before: &HashMap<String, (String, Duration)>,
    after: &HashMap<String, (String, Duration)>,
) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let spent = cpu.saturating_sub(before.get(tid).map_or(Duration::ZERO, |b| b.1));
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('-').to_string();
        *out.entry(base).or_insert(Duration::ZERO) += spent;
    }
    out
}

/// User plus system time from a `stat` file of proc(5) (fields 14 and 15).
fn cpu_from_stat(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it, from
    // field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(14 - 3)?.parse().ok()?;
    let system: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}
