//! Crash safety of `orgsec sync`: the binary is killed with SIGKILL at random points of a sync,
//! again and again, and rerun. After every kill the store must be intact: readable, no finding
//! stored twice, no watermark ahead of the findings it covers, nothing stored earlier lost,
//! nothing stored that the sources do not hold. The sync that finally runs to the end must hold
//! exactly what the four sources hold.
//!
//! Kill points are random but reproducible: each test prints its seed, and `ORGSEC_CRASH_SEED=N`
//! replays it. They adapt to the machine rather than assume its speed: a sync that ends before
//! its kill tells how long a whole sync takes, and later kill points are drawn within that.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orgsec::enroll::AccountState;
use orgsec::finding::{Compliance, Source};
use orgsec::store::{FindingQuery, Store};
use orgsec_emulator::Emulator;
use orgsec_emulator::faults::FaultRule;
use sqlx::Connection as _;

use crate::cli::{aws_env, orgsec, text};
use crate::support::{ADMIN, sdk_config};
use crate::sync::truth;

const BIN: &str = env!("CARGO_BIN_EXE_orgsec");

/// The only region the emulator's organizations live in, and the one orgsec reads by default.
const REGION: &str = "us-east-1";

/// Latency added to every Security Hub GetFindings, as real AWS has, so that a sync lasts a few
/// seconds and its pages are written over that time rather than in one burst a kill would miss.
const GET_FINDINGS_LATENCY_MS: u64 = 40;

/// A reproducible source of kill points: xorshift64*, seeded from `ORGSEC_CRASH_SEED` or the
/// clock. No crate needed, and the seed in a failure's output replays the run.
struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("ORGSEC_CRASH_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
        println!("{test}: seed {seed} (replay with ORGSEC_CRASH_SEED={seed})");
        // splitmix64 of the seed, so that neighbouring seeds start far apart and never at zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng { state: (z ^ (z >> 31)) | 1, seed }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[lo, hi)`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A generated organization in an in-process emulator with AWS's rate limits on (Security Hub
/// GetFindings: 3/s, burst 6, per account), enrolled through the binary in `dir`, with Config
/// rules in every account so that all four sources hold findings.
struct Org {
    em: Emulator,
    env: Vec<(&'static str, String)>,
    /// The accounts sync reads: the enrolled members and the delegated admin.
    accounts: Vec<String>,
}

impl Org {
    async fn start(scenario: &str, dir: &Path) -> Org {
        let em = Emulator::builder()
            .scenario(scenario)
            .rate_limits(true)
            .fault(FaultRule {
                service: Some("securityhub".into()),
                operation: Some("GetFindings".into()),
                latency_ms: GET_FINDINGS_LATENCY_MS,
                ..FaultRule::default()
            })
            .start()
            .await
            .expect("start the emulator");
        let env = aws_env(&em.url());
        let enrolled = run(dir, &["enroll", "--all"], &env).await;
        assert!(enrolled.status.success(), "orgsec enroll --all: {}", text(&enrolled));
        let store = open(dir).await;
        let accounts: Vec<String> = store
            .accounts()
            .await
            .expect("accounts")
            .into_iter()
            .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
            .map(|a| a.account_id)
            .collect();
        store.close().await;
        assert!(accounts.iter().any(|a| a == ADMIN), "the delegated admin is read too: {accounts:?}");
        for account in &accounts {
            add_config_rules(&em, account).await;
            import_old_findings(&em, account).await;
        }
        Org { em, env, accounts }
    }

    /// Every finding the sources hold, read without rate limits or added latency (and both put
    /// back afterwards), so that the reference itself never comes out short.
    async fn truth(&self) -> BTreeSet<(Source, String)> {
        let saved = {
            let mut f = self.em.shared().faults.lock();
            f.rate_limits = false;
            std::mem::take(&mut f.rules)
        };
        let mut all = BTreeSet::new();
        for account in &self.accounts {
            all.extend(truth(&self.em, account).await);
        }
        let mut f = self.em.shared().faults.lock();
        f.rate_limits = true;
        f.rules = saved;
        f.reset_buckets();
        all
    }
}

/// Two Config rules as a baseline lays them down; most generated accounts break at least one.
async fn add_config_rules(em: &Emulator, account: &str) {
    use aws_sdk_config::types::{ConfigRule, Owner, Source as RuleSource};
    let config = aws_sdk_config::Client::new(&sdk_config(em, account));
    for (name, identifier) in
        [("restricted-ssh", "INCOMING_SSH_DISABLED"), ("ebs-default-encryption", "EC2_EBS_ENCRYPTION_BY_DEFAULT")]
    {
        let source =
            RuleSource::builder().owner(Owner::Aws).source_identifier(identifier).build().expect("rule source");
        let rule = ConfigRule::builder().config_rule_name(name).source(source).build();
        config.put_config_rule().config_rule(rule).send().await.expect("put config rule");
    }
}

/// Findings imported into each account's Security Hub, updated [`OLD_FINDINGS_APART_MIN`]
/// minutes apart, so that Security Hub's pages (oldest first, 100 to a page) span hours.
const OLD_FINDINGS: usize = 150;
const OLD_FINDINGS_APART_MIN: i64 = 7;

/// Security Hub findings updated over the last hours, as a third-party product would import them.
///
/// Everything the scenario generates is updated at one instant, well within the look-back an
/// incremental read starts before its watermark: a sync resumed after a kill would reread all
/// of it, and a watermark committed ahead of its findings would go unnoticed. Spread over hours,
/// the first pages hold findings older than the look-back reaches back from the later pages'
/// watermarks, so a sync resumed from a wrong watermark misses them.
async fn import_old_findings(em: &Emulator, account: &str) {
    use aws_sdk_securityhub::types::{AwsSecurityFinding, Resource, Severity, SeverityLabel, Workflow, WorkflowStatus};
    let securityhub = aws_sdk_securityhub::Client::new(&sdk_config(em, account));
    let now = time::OffsetDateTime::now_utc();
    let iso = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("format");
    let findings: Vec<AwsSecurityFinding> = (0..OLD_FINDINGS)
        .map(|k| {
            let updated = now - time::Duration::minutes(OLD_FINDINGS_APART_MIN * (OLD_FINDINGS - k) as i64);
            AwsSecurityFinding::builder()
                .schema_version("2018-10-08")
                .id(format!("imported-{account}-{k:04}"))
                .product_arn(format!("arn:aws:securityhub:{REGION}:{account}:product/{account}/default"))
                .generator_id("crash-test")
                .aws_account_id(account)
                .types("Software and Configuration Checks")
                .created_at(iso(updated - time::Duration::hours(1)))
                .updated_at(iso(updated))
                .severity(Severity::builder().label(SeverityLabel::Low).build())
                .title("an imported check")
                .description("imported by the crash test")
                .resources(Resource::builder().r#type("Other").id(format!("thing-{k:04}")).build())
                .workflow(Workflow::builder().status(WorkflowStatus::New).build())
                .build()
        })
        .collect();
    for chunk in findings.chunks(100) {
        let out = securityhub
            .batch_import_findings()
            .set_findings(Some(chunk.to_vec()))
            .send()
            .await
            .expect("import findings");
        assert_eq!(out.failed_count(), Some(0), "imported findings rejected: {:?}", out.failed_findings());
    }
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("orgsec.db").display())
}

async fn open(dir: &Path) -> Store {
    Store::open(&db_url(dir)).await.expect("open the store")
}

/// `orgsec ARGS` in `dir` to its end, off the runtime's workers (the emulator runs on them).
async fn run(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        orgsec(&dir, &args, &env, None)
    })
    .await
    .expect("orgsec runs")
}

/// How a sync that was to be killed ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// Killed while it ran.
    Killed,
    /// It ended on its own, successfully, after this long.
    Finished(Duration),
}

/// Starts `orgsec sync` in `dir` and kills it with SIGKILL after `delay`, unless it ends first.
/// Its output goes to `log`; a sync that ends on its own must have succeeded.
async fn sync_killed_after(dir: &Path, env: &[(&'static str, String)], delay: Duration, log: &Path) -> Ending {
    let mut cmd = Command::new(BIN);
    cmd.arg("sync")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("create the sync's log"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGSEC_")) {
        cmd.env_remove(k);
    }
    cmd.env("ORGSEC_DATABASE_URL", db_url(dir));
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn orgsec sync");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll orgsec sync") {
            break Some(status);
        }
        let elapsed = started.elapsed();
        if elapsed >= delay {
            break None;
        }
        tokio::time::sleep((delay - elapsed).min(Duration::from_millis(5))).await;
    };
    let (status, ending) = match status {
        Some(status) => (status, Ending::Finished(started.elapsed())),
        None => {
            // SIGKILL on Unix: no destructor, no flush, no rollback runs in the child.
            child.kill().expect("kill orgsec sync");
            let status = child.wait().expect("reap orgsec sync");
            // It may have ended by itself between the last poll and the kill.
            (status, if status.success() { Ending::Finished(started.elapsed()) } else { Ending::Killed })
        }
    };
    if let Ending::Finished(_) = ending {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        assert!(status.success(), "orgsec sync failed on its own ({status}):\n{output}");
    }
    ending
}

/// What the store holds after a sync ended (killed or not).
struct Seen {
    findings: BTreeSet<(Source, String)>,
    /// Findings written by the sync that started at the time given to [`check_store`].
    touched: usize,
}

/// Opens the store a sync left behind and checks what must hold however that sync ended:
/// the database is intact; no finding is stored twice; every watermark is covered by a stored
/// finding at least as new (else the next sync would skip what lies between); nothing stored
/// before (`earlier`) is lost; nothing is stored that the sources do not hold (`truth`).
async fn check_store(
    dir: &Path,
    accounts: &[String],
    since_ms: i64,
    earlier: &BTreeSet<(Source, String)>,
    truth: &BTreeSet<(Source, String)>,
    what: &str,
) -> Seen {
    let store = open(dir).await;
    let all = store.findings(&FindingQuery::default()).await.unwrap_or_else(|e| panic!("{what}: read findings: {e}"));
    let mut findings = BTreeSet::new();
    let mut twice = Vec::new();
    for f in &all {
        if !findings.insert((f.source, f.id.clone())) {
            twice.push((f.source, f.id.clone()));
        }
    }
    assert!(twice.is_empty(), "{what}: findings stored twice: {twice:#?}");

    let mut regions: BTreeSet<&str> = all.iter().map(|f| f.region.as_str()).collect();
    regions.insert(REGION);
    for account in accounts {
        for &region in &regions {
            for source in Source::ALL {
                let mark = store.watermark(account, region, source).await.expect("watermark");
                let Some(mark) = mark else { continue };
                let newest = all
                    .iter()
                    .filter(|f| f.account_id == *account && f.region == region && f.source == source)
                    .map(|f| f.updated_at)
                    .max();
                assert!(
                    newest.is_some_and(|n| n >= mark),
                    "{what}: the {source} watermark of {account} in {region} is {mark}, but the newest finding \
                     stored for it was updated at {newest:?}: the next sync would skip what lies between"
                );
            }
        }
    }
    store.close().await;

    let lost: Vec<_> = earlier.difference(&findings).collect();
    assert!(lost.is_empty(), "{what}: findings stored before are gone: {lost:#?}");
    let invented: Vec<_> = findings.difference(truth).collect();
    assert!(invented.is_empty(), "{what}: findings the sources do not hold: {invented:#?}");

    // The store has no API for when a row was last written (nor should it grow one for a test);
    // read it, and the database's own consistency check, directly.
    let mut conn = sqlx::SqliteConnection::connect(&db_url(dir)).await.expect("connect to the store");
    let integrity: Vec<(String,)> =
        sqlx::query_as("PRAGMA integrity_check").fetch_all(&mut conn).await.expect("integrity check");
    assert_eq!(integrity, [("ok".to_string(),)], "{what}: the database is damaged");
    let (touched,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM findings WHERE last_seen >= $1")
        .bind(since_ms)
        .fetch_one(&mut conn)
        .await
        .expect("count findings written");
    conn.close().await.expect("close");
    Seen { findings, touched: usize::try_from(touched).unwrap_or(0) }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs `orgsec sync` to its end in `dir` and checks the store holds exactly what the sources
/// hold now (read afresh, and the same as `before`, what they held while the kills went on):
/// every finding once, none missing, none extra; and that no Config check is marked passed (the
/// sources did not change, so every non-compliant evaluation still is).
async fn complete_sync_equals_truth(org: &Org, dir: &Path, before: &BTreeSet<(Source, String)>, what: &str) {
    let done = run(dir, &["sync"], &org.env).await;
    assert!(done.status.success(), "{what}: the sync after the kills failed: {}", text(&done));
    let store = open(dir).await;
    let all = store.findings(&FindingQuery::default()).await.expect("findings");
    store.close().await;
    let truth = &org.truth().await;
    assert_eq!(truth, before, "{what}: the sources changed while the test ran");
    let got: BTreeSet<(Source, String)> = all.iter().map(|f| (f.source, f.id.clone())).collect();
    let missing: Vec<_> = truth.difference(&got).collect();
    let extra: Vec<_> = got.difference(truth).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:#?}\nextra {extra:#?}");
    assert_eq!(all.len(), truth.len(), "{what}: as many findings stored as the sources hold");
    let passed: Vec<&str> = all
        .iter()
        .filter(|f| f.source == Source::Config && f.compliance_status == Some(Compliance::Passed))
        .map(|f| f.id.as_str())
        .collect();
    assert!(passed.is_empty(), "{what}: Config findings marked passed though still non-compliant: {passed:#?}");
}

/// Every source holds findings, or a test would prove nothing about it.
fn assert_every_source(truth: &BTreeSet<(Source, String)>) {
    for source in Source::ALL {
        let n = truth.iter().filter(|(s, _)| *s == source).count();
        assert!(n > 0, "the organization holds no {source} findings");
    }
}

/// A directory holding the store as enrollment left it in `enrolled`: accounts, no finding yet.
fn fresh_store(enrolled: &Path, dir: &Path) {
    std::fs::create_dir(dir).expect("mkdir");
    // Enrollment closed its store, which folds SQLite's write-ahead log into the file; a log
    // left behind all the same goes with it.
    for file in ["orgsec.db", "orgsec.db-wal"] {
        if enrolled.join(file).exists() {
            std::fs::copy(enrolled.join(file), dir.join(file)).expect("copy the enrolled store");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_again_and_again_loses_and_duplicates_nothing() {
    /// Kills to land; more rounds are allowed for syncs that end before their kill.
    const KILLS: usize = 6;
    const MAX_ROUNDS: usize = 16;

    let mut rng = Rng::new("sync_killed_again_and_again_loses_and_duplicates_nothing");
    let seed = rng.seed;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrolled = tmp.path().join("enrolled");
    std::fs::create_dir(&enrolled).expect("mkdir");
    let org = Org::start("generate:accounts=30,resources=60,seed=11", &enrolled).await;
    let truth = org.truth().await;
    assert_eq!(org.accounts.len(), 31, "every member and the delegated admin are read: {:?}", org.accounts);
    assert_every_source(&truth);
    println!("{} accounts, {} findings", org.accounts.len(), truth.len());

    // What the rounds tell of this machine: a kill before `quiet_until` found nothing written;
    // a whole sync takes about `whole` (learned from syncs that end before their kill).
    let mut quiet_until = Duration::ZERO;
    let mut whole = Duration::from_secs(4);
    let mut dir = tmp.path().join("store-0");
    fresh_store(&enrolled, &dir);
    let (mut kills, mut mid_sync, mut restarts) = (0, 0, 0);
    let mut stored = BTreeSet::new();
    let mut rounds = Vec::new();
    for round in 0..MAX_ROUNDS {
        if kills >= KILLS && mid_sync > 0 {
            break;
        }
        if mid_sync == 0 && stored.len() == truth.len() {
            // Every finding is stored, and no kill has yet landed while they were being
            // written: start again from an empty store, or the test would prove nothing.
            restarts += 1;
            dir = tmp.path().join(format!("store-{restarts}"));
            fresh_store(&enrolled, &dir);
            stored.clear();
            rounds.push(format!("round {round}: the store is full and no kill landed mid-sync; starting afresh"));
        }
        // Alternately early (during the first pages written) and late (among the last pages, or
        // while scoring).
        if whole <= quiet_until {
            quiet_until = Duration::ZERO;
        }
        let (lo, hi) = if round % 2 == 0 { (0.0, 0.35) } else { (0.6, 1.0) };
        let delay = quiet_until + (whole - quiet_until).mul_f64(rng.between(lo, hi));
        let since = now_ms();
        let log = dir.join(format!("sync-{round}.log"));
        let ending = sync_killed_after(&dir, &org.env, delay, &log).await;
        let what = format!("[seed {seed}] round {round}, {ending:?} after {delay:?}");
        let seen = check_store(&dir, &org.accounts, since, &stored, &truth, &what).await;
        // Killed after writing findings the store did not hold, and before writing them all.
        let landed =
            ending == Ending::Killed && seen.findings.len() > stored.len() && seen.findings.len() < truth.len();
        match ending {
            Ending::Finished(took) => whole = took,
            Ending::Killed if seen.touched == 0 => quiet_until = quiet_until.max(delay),
            Ending::Killed => {}
        }
        kills += usize::from(ending == Ending::Killed);
        mid_sync += usize::from(landed);
        rounds.push(format!(
            "{what}: {} of {} stored, {} written by this sync{}",
            seen.findings.len(),
            truth.len(),
            seen.touched,
            if landed { " (killed mid-sync)" } else { "" }
        ));
        stored = seen.findings;
    }
    println!("{}", rounds.join("\n"));
    assert!(
        mid_sync > 0,
        "[seed {seed}] no kill landed while findings were being written, so nothing was tested:\n{}",
        rounds.join("\n")
    );
    complete_sync_equals_truth(&org, &dir, &truth, &format!("[seed {seed}] after {kills} kills")).await;
    org.em.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_killed_on_an_empty_store_is_completed_by_the_next() {
    const MAX_ATTEMPTS: usize = 12;

    let mut rng = Rng::new("first_sync_killed_on_an_empty_store_is_completed_by_the_next");
    let seed = rng.seed;
    let tmp = tempfile::tempdir().expect("tempdir");
    let enrolled = tmp.path().join("enrolled");
    std::fs::create_dir(&enrolled).expect("mkdir");
    let org = Org::start("generate:accounts=8,resources=40,seed=5", &enrolled).await;
    let truth = org.truth().await;
    assert_every_source(&truth);

    // Each attempt starts from the store as enrollment left it, in a directory of its own,
    // until one kill lands after the first findings were written and before the last.
    let mut delay = Duration::from_millis(rng.between(300.0, 900.0) as u64);
    let mut attempts = Vec::new();
    let mut partial: Option<PathBuf> = None;
    for attempt in 0..MAX_ATTEMPTS {
        let dir = tmp.path().join(format!("attempt-{attempt}"));
        fresh_store(&enrolled, &dir);
        let since = now_ms();
        let ending = sync_killed_after(&dir, &org.env, delay, &dir.join("sync.log")).await;
        let what = format!("[seed {seed}] attempt {attempt}, {ending:?} after {delay:?}");
        let seen = check_store(&dir, &org.accounts, since, &BTreeSet::new(), &truth, &what).await;
        attempts.push(format!("{what}: {} of {} stored", seen.findings.len(), truth.len()));
        match ending {
            Ending::Finished(took) => delay = took.mul_f64(rng.between(0.2, 0.7)),
            Ending::Killed if seen.findings.is_empty() => delay = delay.mul_f64(rng.between(1.3, 2.0)),
            Ending::Killed if seen.findings.len() >= truth.len() => delay = delay.mul_f64(rng.between(0.4, 0.8)),
            Ending::Killed => {
                partial = Some(dir);
                break;
            }
        }
    }
    println!("{}", attempts.join("\n"));
    let Some(dir) = partial else {
        panic!(
            "[seed {seed}] no kill of a first sync landed after some findings were stored and before all were:\n{}",
            attempts.join("\n")
        );
    };
    complete_sync_equals_truth(&org, &dir, &truth, &format!("[seed {seed}] after the first sync was killed")).await;
    org.em.shutdown().await;
}

/// The generated organization the remediation crash test fixes: about 500 security groups
/// with a high-risk port open to the world (EC2.19), across 60 accounts.
const REMEDIATION_SCENARIO: &str = "generate:accounts=60,resources=84,seed=7";

/// Every security group with a rule open to 0.0.0.0/0, as (group id, its rules' count).
fn world_open_groups(em: &Emulator) -> BTreeSet<String> {
    let w = orgsec_emulator::admin::state_json(&em.shared().world.read());
    let mut out = BTreeSet::new();
    for rs in w["regions"].as_array().expect("regions") {
        for g in rs["security_groups"].as_array().into_iter().flatten() {
            let open = g["ingress"].as_array().into_iter().flatten().any(|r| r["source"]["cidr"] == "0.0.0.0/0");
            if open {
                out.insert(g["id"].as_str().expect("group id").to_string());
            }
        }
    }
    out
}

/// Starts `orgsec serve` in `dir` and kills it with SIGKILL after `delay` (it never ends by
/// itself). Its log goes to `log`.
async fn serve_killed_after(dir: &Path, env: &[(&'static str, String)], delay: Duration, log: &Path) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("create the server's log"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGSEC_")) {
        cmd.env_remove(k);
    }
    cmd.env("ORGSEC_DATABASE_URL", db_url(dir));
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = cmd.spawn().expect("spawn orgsec serve");
    let started = Instant::now();
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().expect("poll orgsec serve") {
            panic!("orgsec serve stopped by itself ({status}):\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("kill orgsec serve");
    child.wait().expect("reap orgsec serve");
}

/// The jobs in the store, by state.
async fn job_states(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let store = open(dir).await;
    let jobs =
        store.list_jobs(&orgsec::store::JobFilter { limit: Some(100_000), ..Default::default() }).await.expect("jobs");
    store.close().await;
    let mut by = std::collections::BTreeMap::new();
    for j in jobs {
        *by.entry(j.state.to_string()).or_default() += 1;
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_again_and_again_remediates_each_finding_exactly_once() {
    let mut rng = Rng::new("serve_killed_again_and_again_remediates_each_finding_exactly_once");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let em = Emulator::builder().scenario(REMEDIATION_SCENARIO).rate_limits(false).start().await.expect("emulator");
    std::fs::write(
        d.join("tokens.toml"),
        format!("[[token]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{}\"\n", orgsec::auth::hash_token("t")),
    )
    .expect("tokens");
    let mut env = aws_env(&em.url());
    env.extend([
        ("ORGSEC_TOKENS_FILE", "tokens.toml".to_string()),
        ("ORGSEC_LISTEN", "127.0.0.1:0".to_string()),
        ("ORGSEC_SYNC_INTERVAL", "1".to_string()),
    ]);
    for args in [&["enroll", "--all"][..], &["sync"][..]] {
        let out = run(d, args, &env).await;
        assert!(out.status.success(), "orgsec {args:?}: {}", text(&out));
    }
    let open_before = world_open_groups(&em);
    let store = open(d).await;
    let q = FindingQuery { controls: vec!["EC2.19".into()], failing: Some(true), ..FindingQuery::default() };
    let failing = store.findings(&q).await.expect("findings").len();
    store.close().await;
    assert!(failing >= 500, "the scenario should give at least 500 remediations, it gives {failing}");
    assert_eq!(failing, open_before.len(), "one EC2.19 finding per world-open group");

    let binding = std::env::temp_dir().join(format!("orgsec-crash-binding-{}.json", std::process::id()));
    std::fs::write(
        &binding,
        r#"{"name": "close-risky-ports", "controls": ["EC2.19"], "playbook": "revoke-public-ingress", "mode": "auto"}"#,
    )
    .expect("binding file");
    let put = run(d, &["bindings", "put", "--file", binding.to_str().expect("path")], &env).await;
    let _ = std::fs::remove_file(&binding);
    assert!(put.status.success(), "{}", text(&put));

    // From here on, 10% of calls are throttled and 2% fail with a 5xx, everywhere.
    em.shared().faults.lock().rules = vec![FaultRule { throttle: 0.10, error: 0.02, ..FaultRule::default() }];
    let log = d.join("serve.log");
    let started = Instant::now();
    let final_jobs = |states: &std::collections::BTreeMap<String, usize>| {
        ["SUCCEEDED", "FAILED", "REJECTED", "EXPIRED"]
            .iter()
            .map(|s| states.get(*s).copied().unwrap_or(0))
            .sum::<usize>()
    };
    // Killed at random points, again and again...
    let kills = 15;
    for _ in 0..kills {
        serve_killed_after(d, &env, Duration::from_secs_f64(rng.between(0.3, 5.0)), &log).await;
    }
    // ...then left to finish (jobs the last kills held are taken over when their leases run out).
    let mut child = {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").current_dir(d).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(File::create(&log).expect("log"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGSEC_")) {
            cmd.env_remove(k);
        }
        cmd.env("ORGSEC_DATABASE_URL", db_url(d));
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.spawn().expect("spawn orgsec serve")
    };
    loop {
        let states = job_states(d).await;
        if final_jobs(&states) >= failing {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "seed {}: after {kills} kills, {} of {failing} remediations done: {states:?}\n{}",
                rng.seed,
                states.get("SUCCEEDED").copied().unwrap_or(0),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    child.kill().expect("stop orgsec serve");
    child.wait().expect("reap orgsec serve");
    em.shared().faults.lock().rules.clear();
    println!("{failing} remediations through {kills} kills in {:?}", started.elapsed());

    let states = job_states(d).await;
    assert_eq!(states.get("SUCCEEDED").copied(), Some(failing), "seed {}: every job succeeded: {states:?}", rng.seed);
    assert_eq!(states.values().sum::<usize>(), failing, "seed {}: one job per finding: {states:?}", rng.seed);
    let counters = em.shared().world.read().counters.by_resource.clone();
    let revoked: std::collections::BTreeMap<&str, u64> = counters
        .iter()
        .filter(|((op, _), _)| op == "ec2:RevokeSecurityGroupIngress")
        .map(|((_, group), n)| (group.as_str(), *n))
        .collect();
    let twice: Vec<_> = revoked.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "seed {}: groups revoked more than once: {twice:?}", rng.seed);
    let revoked: BTreeSet<String> = revoked.keys().map(|g| g.to_string()).collect();
    assert_eq!(revoked, open_before, "seed {}: exactly the world-open groups were revoked", rng.seed);
    assert!(world_open_groups(&em).is_empty(), "no group is open to the world any more");
    em.shutdown().await;
}
