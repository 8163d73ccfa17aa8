//! `orgsec-bench rescoring`: what one finding changing costs the scoring engine when the
//! organization is large.
//!
//! Builds a `Scoreboard` of a generated organization (default 1,000,000 checks over 1,000
//! accounts in three OUs: Prod, Dev and Sandbox), then times single-check changes, each
//! followed by the two reads a dashboard makes after a change: the affected account's score and
//! the organization's top 10 priorities. A change is one of: a check's failing flag flipped
//! (85%), its resource's criticality retagged (10%), or the check removed (5%); a removed check
//! drawn again is put back. The report gives the build time, p50/p99/max per change in microseconds,
//! and the peak resident memory where the platform reports it.
//!
//! The organization is a pure function of the seed and the check index, so no copy of the
//! checks is held next to the board and the memory figure is the board's. After the changes,
//! the board's organization totals are compared with totals the benchmark keeps itself, so a
//! run that measured nothing (or the wrong thing) fails.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::bail;
use orgsec::finding::{Severity, control_check_key};
use orgsec::score::{Check, ScopeRef, Scoreboard, Weights};

const OUS: [&str; 3] = ["Root/Prod", "Root/Dev", "Root/Sandbox"];
const REGION: &str = "us-east-1";

/// A control as the generator uses it: id, severity, and how often it fails in a Prod account,
/// per mille (Dev fails twice as often, Sandbox three times).
type Control = (&'static str, Severity, u64);

/// Controls on the account itself (`AWS::::Account:<id>`), checked once per account.
const ACCOUNT_CONTROLS: &[Control] = &[
    ("IAM.4", Severity::Critical, 20),
    ("IAM.6", Severity::Critical, 300),
    ("IAM.9", Severity::Critical, 150),
    ("CloudTrail.1", Severity::High, 50),
    ("GuardDuty.1", Severity::High, 40),
    ("Config.1", Severity::Medium, 60),
    ("S3.1", Severity::Medium, 120),
    ("EC2.7", Severity::Medium, 200),
    ("IAM.15", Severity::Medium, 250),
    ("Account.1", Severity::Medium, 100),
];

/// Resource kinds, each with the controls checked on every resource of the kind. A block of
/// resources (one of each kind) repeats until the account has its share of checks.
/// (ASFF type, service, resource noun, controls).
const KINDS: &[(&str, &str, &str, &[Control])] = &[
    (
        "AwsS3Bucket",
        "s3",
        "bucket",
        &[
            ("S3.5", Severity::Medium, 150),
            ("S3.8", Severity::High, 60),
            ("S3.9", Severity::Medium, 350),
            ("S3.13", Severity::Low, 400),
            ("S3.17", Severity::Medium, 250),
        ],
    ),
    (
        "AwsEc2SecurityGroup",
        "ec2",
        "security-group",
        &[
            ("EC2.2", Severity::High, 200),
            ("EC2.13", Severity::High, 50),
            ("EC2.18", Severity::High, 100),
            ("EC2.19", Severity::Critical, 20),
        ],
    ),
    (
        "AwsEc2Instance",
        "ec2",
        "instance",
        &[("EC2.8", Severity::High, 300), ("EC2.9", Severity::High, 80), ("SSM.1", Severity::Medium, 200)],
    ),
    ("AwsIamRole", "iam", "role", &[("IAM.1", Severity::High, 60), ("IAM.21", Severity::Low, 300)]),
    (
        "AwsLambdaFunction",
        "lambda",
        "function",
        &[("Lambda.1", Severity::Critical, 10), ("Lambda.2", Severity::Medium, 350)],
    ),
    (
        "AwsRdsDbInstance",
        "rds",
        "db",
        &[("RDS.2", Severity::Critical, 15), ("RDS.3", Severity::Medium, 100), ("RDS.6", Severity::Low, 400)],
    ),
];

/// GuardDuty finding types that replace about one check in 400 (threats on the resource).
const THREATS: &[(&str, Severity)] = &[
    ("Recon:EC2/PortProbeUnprotectedPort", Severity::Low),
    ("UnauthorizedAccess:EC2/SSHBruteForce", Severity::Low),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", Severity::High),
    ("Trojan:EC2/DNSDataExfiltration", Severity::High),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", Severity::Critical),
];

/// splitmix64: a fixed, fast mix, so that the organization is the same on every machine.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generated organization: check `i` of `accounts x per_account`, from the seed alone.
struct Org {
    accounts: usize,
    per_account: usize,
    seed: u64,
}

impl Org {
    fn len(&self) -> usize {
        self.accounts * self.per_account
    }

    fn hash(&self, salt: u64, x: u64) -> u64 {
        mix(self.seed ^ mix(salt ^ mix(x)))
    }

    fn account_id(&self, a: usize) -> String {
        format!("{:012}", 100_000_000_000u64 + a as u64)
    }

    /// Half the accounts are Prod, three in ten Dev, two in ten Sandbox.
    fn ou(&self, a: usize) -> usize {
        match self.hash(1, a as u64) % 10 {
            0..=4 => 0,
            5..=7 => 1,
            _ => 2,
        }
    }

    /// Prod accounts carry a criticality tag from 2 to 4; Dev 1; Sandbox 0.8.
    fn account_criticality(&self, a: usize) -> f64 {
        match self.ou(a) {
            0 => 2.0 + (self.hash(2, a as u64) % 3) as f64,
            1 => 1.0,
            _ => 0.8,
        }
    }

    /// The check at index `i`, as the collector would hand it over.
    fn check(&self, i: usize) -> Check {
        let a = i / self.per_account;
        let j = i % self.per_account;
        let account = self.account_id(a);
        let ou = self.ou(a);
        let h = self.hash(3, i as u64);
        let (resource_type, resource_id, control, crown_jewel) = if j < ACCOUNT_CONTROLS.len() {
            ("AwsAccount", format!("AWS::::Account:{account}"), ACCOUNT_CONTROLS[j], false)
        } else {
            let k = j - ACCOUNT_CONTROLS.len();
            let block_len: usize = KINDS.iter().map(|(_, _, _, c)| c.len()).sum();
            let (block, mut offset) = (k / block_len, k % block_len);
            let mut picked = None;
            for (n, (rtype, service, noun, controls)) in KINDS.iter().enumerate() {
                if offset < controls.len() {
                    picked = Some((n, *rtype, *service, *noun, controls[offset]));
                    break;
                }
                offset -= controls.len();
            }
            // `offset` always lands in a kind: the block length is the sum of their lengths.
            let (n, rtype, service, noun, control) =
                picked.unwrap_or((0, KINDS[0].0, KINDS[0].1, KINDS[0].2, KINDS[0].3[0]));
            let id = match service {
                "s3" => format!("arn:aws:s3:::{noun}-{account}-{block:05}"),
                "iam" => format!("arn:aws:iam::{account}:{noun}/{noun}-{block:05}"),
                _ => format!("arn:aws:{service}:{REGION}:{account}:{noun}/{noun}-{block:05}"),
            };
            // One resource in twenty is a crown jewel, tagged 5.
            let jewel = self.hash(4, ((a as u64) << 32) | (block * KINDS.len() + n) as u64).is_multiple_of(20);
            (rtype, id, control, jewel)
        };
        let criticality = if crown_jewel { 5.0 } else { self.account_criticality(a) };
        if h.is_multiple_of(400) {
            let (finding_type, severity) = THREATS[(h / 400) as usize % THREATS.len()];
            return Check {
                // GuardDuty finding ids are opaque hex strings; the hash is one.
                key: format!("threat|{account}|{REGION}|{h:032x}"),
                account_id: account,
                ou_path: OUS[ou].to_string(),
                resource_type: resource_type.to_string(),
                resource_id,
                control: None,
                label: finding_type.to_string(),
                severity,
                criticality,
                failing: true,
            };
        }
        let (control_id, severity, per_mille) = control;
        let failing = (h >> 16) % 1000 < per_mille * (ou as u64 + 1);
        Check {
            key: control_check_key(&account, REGION, control_id, &resource_id),
            account_id: account,
            ou_path: OUS[ou].to_string(),
            resource_type: resource_type.to_string(),
            resource_id,
            control: Some(control_id.to_string()),
            label: control_id.to_string(),
            severity,
            criticality,
            failing,
        }
    }
}

/// What the benchmark changed about check `i`.
#[derive(Clone, Copy)]
struct Override {
    present: bool,
    failing: bool,
    criticality: f64,
}

pub(crate) fn run(checks: usize, accounts: usize, changes: usize, seed: u64) -> anyhow::Result<()> {
    let accounts = accounts.max(1);
    let per_account = (checks / accounts).max(1);
    let org = Org { accounts, per_account, seed };
    let n = org.len();
    let weights = Weights::default();
    let mut board = Scoreboard::new(weights.clone());
    // The org's W and F, kept by the benchmark to check the board at the end.
    let (mut total, mut failing) = (0u64, 0u64);

    let started = Instant::now();
    let mut upserting = Duration::ZERO;
    for i in 0..n {
        let check = org.check(i);
        let w = weights.quantized(&check);
        total += w;
        if check.failing {
            failing += w;
        }
        let t = Instant::now();
        board.upsert(check);
        upserting += t.elapsed();
    }
    let build = started.elapsed();
    if board.len() != n {
        bail!("the board holds {} checks, expected {n}: generated keys collide", board.len());
    }
    let rss_after_build = memory_kib("VmRSS");

    let mut overrides: HashMap<usize, Override> = HashMap::new();
    let mut latencies = Vec::with_capacity(changes);
    let mut counts = [0usize; 3];
    let mut state = seed ^ 0x5EED;
    for _ in 0..changes {
        state = mix(state);
        let i = (state % n as u64) as usize;
        let mut check = org.check(i);
        let o = overrides.entry(i).or_insert(Override {
            present: true,
            failing: check.failing,
            criticality: check.criticality,
        });
        // Take the check's current contribution out of the benchmark's totals.
        if o.present {
            let mut old = check.clone();
            old.failing = o.failing;
            old.criticality = o.criticality;
            let w = weights.quantized(&old);
            total -= w;
            if old.failing {
                failing -= w;
            }
        }
        let kind = (mix(state ^ 1) % 100) as usize;
        match kind {
            // A removed check comes back whatever the draw: there is nothing to flip.
            _ if !o.present => {
                o.present = true;
                counts[2] += 1;
            }
            0..85 => {
                o.failing = !o.failing;
                counts[0] += 1;
            }
            85..95 => {
                o.criticality = if o.criticality >= 5.0 { 1.0 } else { 5.0 };
                counts[1] += 1;
            }
            _ => {
                o.present = false;
                counts[2] += 1;
            }
        }
        check.failing = o.failing;
        check.criticality = o.criticality;
        let account = ScopeRef::account(check.account_id.clone());
        let t = if o.present {
            let w = weights.quantized(&check);
            total += w;
            if check.failing {
                failing += w;
            }
            let t = Instant::now();
            black_box(board.upsert(check));
            t
        } else {
            let key = check.key;
            let t = Instant::now();
            black_box(board.remove(&key));
            t
        };
        black_box(board.score(&account));
        black_box(board.priorities(&ScopeRef::org(), 10));
        latencies.push(t.elapsed());
    }

    let org_score = board.score(&ScopeRef::org());
    if (org_score.total_weight, org_score.failing_weight) != (total, failing) {
        bail!(
            "the board's org totals (W {}, F {}) differ from the benchmark's own (W {total}, F {failing})",
            org_score.total_weight,
            org_score.failing_weight
        );
    }
    let present = n - overrides.values().filter(|o| !o.present).count();
    if board.len() != present {
        bail!("the board holds {} checks after the changes, expected {present}", board.len());
    }

    latencies.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| {
        latencies.get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize).copied().unwrap_or_default()
    };
    let (p50, p99, max) = (micros(pct(0.5)), micros(pct(0.99)), micros(latencies.last().copied().unwrap_or_default()));
    let peak = memory_kib("VmHWM");
    let top = board.priorities(&ScopeRef::org(), 1);
    let failing_checks = org_score.failing_checks;

    println!("checks              {n} ({accounts} accounts x {per_account}, 3 OUs)");
    println!("failing checks      {failing_checks}");
    println!("org score           {:.1}", org_score.score);
    if let Some(p) = top.first() {
        println!("top priority        {} (+{:.2})", p.control_id, p.improvement_potential);
    }
    println!("build               {:.2} s ({:.2} s in upsert)", build.as_secs_f64(), upserting.as_secs_f64());
    println!(
        "changes             {changes} ({} flips, {} criticality, {} remove/restore)",
        counts[0], counts[1], counts[2]
    );
    println!("per change + reads  p50 {p50:.1} us, p99 {p99:.1} us, max {max:.1} us");
    match (rss_after_build, peak) {
        (Some(rss), Some(peak)) => {
            println!(
                "memory              {:.0} MiB after build, {:.0} MiB peak",
                rss as f64 / 1024.0,
                peak as f64 / 1024.0
            )
        }
        _ => println!("memory              not reported on this platform"),
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "rescoring", "checks": n, "accounts": accounts, "checks_per_account": per_account,
            "failing_checks": failing_checks, "org_score": org_score.score,
            "build_seconds": build.as_secs_f64(), "upsert_seconds": upserting.as_secs_f64(),
            "changes": changes, "change_p50_us": p50, "change_p99_us": p99, "change_max_us": max,
            "rss_after_build_kib": rss_after_build, "peak_rss_kib": peak,
        })
    );
    Ok(())
}

/// A memory figure of this process from the kernel's status file, in KiB (Linux only).
fn memory_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}
