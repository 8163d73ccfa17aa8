//! `orgsec demo`: the whole loop on the emulator's demo organization, in-process, with no AWS
//! account. Enroll, sync, score; bind every playbook to what it fixes (auto for the safe ones,
//! approve for `isolate-instance`, which a scripted admin then approves); remediate and verify;
//! sync and score again; write an HTML report and an evidence bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::Aws;
use crate::binding::{BindingSpec, Mode, Scope};
use crate::collect::limits::Limits;
use crate::collect::{Collector, SyncOptions};
use crate::enroll::{self, AccountState, Selection};
use crate::jobs::{self, Job, JobState, Worker, WorkerConfig};
use crate::notify::Notifier;
use crate::playbooks::CATALOGUE;
use crate::remediate::PlaybookRunner;
use crate::score::{Priority, ScopeKind, ScopeRef, Scoreboard, Weights};
use crate::settings::Settings;
use crate::store::{JobFilter, Store};

/// The ExternalId of the demo organization's member role.
pub const EXTERNAL_ID: &str = "orgsec-demo";
/// The playbook that waits for an approval in the demo.
pub const APPROVED_BY_HAND: &str = "isolate-instance";
/// Who approves it.
pub const SCRIPTED_ADMIN: &str = "demo-admin";
/// The framework of the demo's evidence bundle.
pub const FRAMEWORK: &str = "fsbp";
/// How long the demo waits for remediations to end at most.
const REMEDIATION_DEADLINE: Duration = Duration::from_secs(120);

/// One account's score before and after.
#[derive(Debug, Clone, Serialize)]
pub struct AccountScores {
    pub account_id: String,
    pub name: String,
    pub before: f64,
    pub after: f64,
}

/// The organization's scores at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Moment {
    pub org_score: f64,
    pub failing_checks: u64,
    pub checks: u64,
}

/// One remediation, as the demo shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Remediation {
    pub job_id: String,
    pub playbook: String,
    pub mode: String,
    pub account_id: String,
    pub state: String,
    pub approved_by: Option<String>,
    pub changes: Vec<String>,
    pub error: Option<String>,
}

/// Everything the demo did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub before: Moment,
    pub after: Moment,
    pub accounts: Vec<AccountScores>,
    pub priorities_before: Vec<Priority>,
    pub priorities_after: Vec<Priority>,
    pub bindings: Vec<String>,
    pub remediations: Vec<Remediation>,
    pub findings_collected: u64,
    pub report_html: PathBuf,
    pub evidence_zip: PathBuf,
    pub seconds: f64,
}

/// A step the demo tells the user about as it goes.
pub type Say<'a> = &'a (dyn Fn(String) + Send + Sync);

fn moment(board: &Scoreboard) -> Moment {
    let org = board.score(&ScopeRef::org());
    Moment { org_score: org.score, failing_checks: org.failing_checks, checks: org.checks }
}

/// The default bindings: every playbook bound to what it fixes, organization-wide; auto,
/// except [`APPROVED_BY_HAND`].
pub fn default_bindings() -> Vec<BindingSpec> {
    CATALOGUE
        .iter()
        .map(|p| BindingSpec {
            name: format!("default-{}", p.name),
            controls: p.controls.iter().map(|c| c.to_string()).collect(),
            finding_types: p.finding_types.iter().map(|t| t.to_string()).collect(),
            playbook: p.name.to_string(),
            mode: if p.name == APPROVED_BY_HAND { Mode::Approve } else { Mode::Auto },
            scope: Scope::default(),
            ..BindingSpec::default()
        })
        .collect()
}

/// Runs the demo in `dir` (its database, report and bundle go there).
pub async fn run(dir: &Path, say: Say<'_>) -> anyhow::Result<Report> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let f = dir.join(format!("orgsec.db{suffix}"));
        if f.exists() {
            std::fs::remove_file(&f).with_context(|| format!("removing the previous demo's {}", f.display()))?;
        }
    }
    let em = orgsec_emulator::Emulator::builder()
        .scenario("demo")
        .start()
        .await
        .map_err(|e| anyhow!("cannot start the emulator: {e}"))?;
    say(format!("Emulated organization \"demo\" at {} (no AWS account is used).", em.url()));
    let url = format!("sqlite://{}", dir.join("orgsec.db").display());
    let store = Store::open(&url).await?;
    let result = run_on(&em, &store, dir, say, started).await;
    store.close().await;
    em.shutdown().await;
    result
}

async fn run_on(
    em: &orgsec_emulator::Emulator,
    store: &Store,
    dir: &Path,
    say: Say<'_>,
    started: Instant,
) -> anyhow::Result<Report> {
    let mut settings = Settings::load(&dir.join("orgsec.toml"), false, |_| None)?;
    settings.external_id = Some(EXTERNAL_ID.into());
    settings.regions = vec!["us-east-1".into()];
    let aws = Aws::new(crate::aws::emulator_config(&em.url(), "222222222222"), &settings);

    // 1. Enroll, sync, score.
    let enrolled = enroll::run(&aws, store, &Selection::All, &|_| {}).await?;
    say(format!("Enrolled: {}", enrolled.summary()));
    let accounts: Vec<String> = store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
        .map(|a| a.account_id)
        .collect();
    let collector = Collector::new(aws.clone(), store.clone(), Arc::new(Limits::default()));
    let first = collector.sync(&accounts, &SyncOptions::default(), &|_| {}).await?;
    let collected: u64 = first.collected.values().sum();
    say(format!("Collected {collected} findings from {} accounts.", accounts.len()));
    let before_board = crate::posture::scoreboard(store, Weights::default()).await?;
    crate::posture::snapshot(store, &before_board, first.finished_at).await?;
    let before = moment(&before_board);
    say(format!(
        "Organization score before: {:.1}/100 ({} of {} checks failing).",
        before.org_score, before.failing_checks, before.checks
    ));

    // 2. Bind every playbook.
    let now = OffsetDateTime::now_utc();
    let mut bindings = Vec::new();
    for spec in default_bindings() {
        store.put_binding(&spec, SCRIPTED_ADMIN, now).await?;
        bindings.push(format!("{} ({})", spec.name, spec.mode.as_str()));
    }
    say(format!("Bound {} playbooks: auto, except {APPROVED_BY_HAND} (approve).", bindings.len()));

    // 3. Remediate: dispatch, work, approve what waits, work again.
    let dispatched = crate::dispatch::dispatch(store, now).await?;
    say(format!("Dispatched {} remediation jobs.", dispatched.enqueued.len()));
    let runner = Arc::new(PlaybookRunner::new(aws.clone(), store.clone(), Notifier::none()));
    let mut config = WorkerConfig::new("orgsec-demo");
    config.backoff = jobs::Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(2) };
    let worker = Worker::new(store.clone(), runner, config);
    let deadline = Instant::now() + REMEDIATION_DEADLINE;
    work(&worker, deadline).await?;
    let waiting = store
        .list_jobs(&JobFilter { states: vec![JobState::PendingApproval], limit: Some(1000), ..JobFilter::default() })
        .await?;
    for job in &waiting {
        jobs::approve(store, &job.id, SCRIPTED_ADMIN, OffsetDateTime::now_utc()).await?;
        say(format!("{SCRIPTED_ADMIN} approved {} on {} (job {}).", job.playbook, job.account_id, job.id));
    }
    work(&worker, deadline).await?;
    let all = store.list_jobs(&JobFilter { limit: Some(1000), ..JobFilter::default() }).await?;
    let remediations: Vec<Remediation> = all.iter().map(remediation_of).collect();
    let succeeded = remediations.iter().filter(|r| r.state == "SUCCEEDED").count();
    say(format!("Remediated and verified: {succeeded} of {} jobs succeeded.", remediations.len()));

    // 4. Sync and score again.
    let second = collector.sync(&accounts, &SyncOptions::default(), &|_| {}).await?;
    let after_board = crate::posture::scoreboard(store, Weights::default()).await?;
    crate::posture::snapshot(store, &after_board, second.finished_at.max(first.finished_at + 1)).await?;
    let after = moment(&after_board);
    let names: std::collections::HashMap<String, String> =
        store.accounts().await?.into_iter().map(|a| (a.account_id, a.name)).collect();
    let mut account_scores: Vec<AccountScores> = before_board
        .scores(ScopeKind::Account)
        .into_iter()
        .map(|s| AccountScores {
            name: names.get(&s.id).cloned().unwrap_or_default(),
            before: s.score,
            after: after_board.score(&ScopeRef::account(&s.id)).score,
            account_id: s.id,
        })
        .collect();
    account_scores.sort_by(|a, b| a.account_id.cmp(&b.account_id));

    // 5. The report and the evidence.
    let evidence_zip = dir.join("evidence.zip");
    let opts = crate::evidence::ExportOptions { framework: FRAMEWORK.into(), ..Default::default() };
    let bundle = crate::evidence::export(store, Some(&aws), &opts, OffsetDateTime::now_utc()).await?;
    std::fs::write(&evidence_zip, &bundle.bytes).with_context(|| format!("writing {}", evidence_zip.display()))?;
    let mut report = Report {
        before,
        after,
        accounts: account_scores,
        priorities_before: before_board.priorities(&ScopeRef::org(), 5),
        priorities_after: after_board.priorities(&ScopeRef::org(), 5),
        bindings,
        remediations,
        findings_collected: collected,
        report_html: dir.join("report.html"),
        evidence_zip,
        seconds: 0.0,
    };
    let history = history(store, &report).await?;
    report.seconds = started.elapsed().as_secs_f64();
    std::fs::write(&report.report_html, html(&report, &history))
        .with_context(|| format!("writing {}", report.report_html.display()))?;
    Ok(report)
}

/// Drives the worker until no job is due (waiting jobs stay); an error past the deadline.
async fn work(worker: &Worker<PlaybookRunner>, deadline: Instant) -> anyhow::Result<()> {
    if !worker.drain(deadline).await? {
        anyhow::bail!("remediation jobs still running after {REMEDIATION_DEADLINE:?}: see `orgsec remediations list`");
    }
    Ok(())
}

fn remediation_of(j: &Job) -> Remediation {
    let changes = crate::remediate::runner::changes(j);
    Remediation {
        job_id: j.id.clone(),
        playbook: j.playbook.clone(),
        mode: j.mode.as_str().to_string(),
        account_id: j.account_id.clone(),
        state: j.state.as_str().to_string(),
        approved_by: j.approved_by.clone(),
        changes,
        error: j.error.clone(),
    }
}

/// Each account's score over the stored snapshots: (account, [(taken_at ms, score)]).
async fn history(store: &Store, report: &Report) -> anyhow::Result<Vec<(String, Vec<(i64, f64)>)>> {
    let mut out = Vec::new();
    for a in &report.accounts {
        let points =
            store.snapshots("account", &a.account_id).await?.into_iter().map(|s| (s.taken_at, s.score)).collect();
        out.push((a.account_id.clone(), points));
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An inline SVG line chart of each account's score over the snapshots.
fn trend_svg(history: &[(String, Vec<(i64, f64)>)]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const PAD: f64 = 36.0;
    // Room on the right for the legend.
    const LEGEND: f64 = 120.0;
    let times: Vec<i64> = history.iter().flat_map(|(_, p)| p.iter().map(|(t, _)| *t)).collect();
    let (t0, t1) = (times.iter().min().copied().unwrap_or(0), times.iter().max().copied().unwrap_or(1));
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / span * (W - 2.0 * PAD - LEGEND);
    let y = |s: f64| H - PAD - s / 100.0 * (H - 2.0 * PAD);
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
    let mut svg = format!(
        r##"<svg id="trend" role="img" aria-label="Score per account over time" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg"><line x1="{PAD}" y1="{y0}" x2="{PAD}" y2="{y100}" stroke="#999"/><line x1="{PAD}" y1="{y0}" x2="{xr}" y2="{y0}" stroke="#999"/><text x="4" y="{y100t}" font-size="11">100</text><text x="14" y="{y0t}" font-size="11">0</text>"##,
        y0 = y(0.0),
        y100 = y(100.0),
        xr = W - PAD - LEGEND,
        y100t = y(100.0) + 4.0,
        y0t = y(0.0) + 4.0,
    );
    for (i, (account, points)) in history.iter().enumerate() {
        let color = colors[i % colors.len()];
        let path: Vec<String> = points.iter().map(|(t, s)| format!("{:.1},{:.1}", x(*t), y(*s))).collect();
        svg.push_str(&format!(
            r#"<polyline class="series" data-account="{account}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        ));
        for (t, s) in points {
            svg.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{account}: {s:.1}</title></circle>"#,
                x(*t),
                y(*s)
            ));
        }
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{account}</text>"#,
            W - LEGEND + 4.0,
            PAD + 12.0 * i as f64
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The self-contained HTML report.
pub fn html(r: &Report, history: &[(String, Vec<(i64, f64)>)]) -> String {
    let mut rows = String::new();
    for a in &r.accounts {
        let delta = a.after - a.before;
        rows.push_str(&format!(
            "<tr data-account=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num {}\">{:+.1}</td></tr>",
            esc(&a.account_id),
            esc(&a.account_id),
            esc(&a.name),
            a.before,
            a.after,
            if delta > 0.0 { "up" } else if delta < 0.0 { "down" } else { "" },
            delta
        ));
    }
    let mut issues = String::new();
    for p in &r.priorities_after {
        let title = crate::catalogue::catalogue().get(&p.control_id).map(|c| c.title.clone()).unwrap_or_default();
        issues.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&p.control_id),
            esc(p.severity.as_str()),
            p.improvement_potential,
            p.failing_resources,
            esc(&title)
        ));
    }
    let mut log = String::new();
    for m in &r.remediations {
        let what = if m.changes.is_empty() { m.error.clone().unwrap_or_default() } else { m.changes.join("; ") };
        log.push_str(&format!(
            "<tr class=\"job\" data-state=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.state),
            esc(&m.job_id[..m.job_id.len().min(12)]),
            esc(&m.playbook),
            esc(&m.mode),
            esc(&m.account_id),
            esc(&m.state),
            esc(m.approved_by.as_deref().unwrap_or("-")),
            esc(&what)
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orgsec demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.up {{ color: #1a7f37; }} .down {{ color: #cf222e; }}
.score {{ font-size: 2rem; }}
</style></head>
<body>
<h1>orgsec demo report</h1>
<p class="score">Organization score <span id="org-before">{before:.1}</span> &rarr; <span id="org-after">{after:.1}</span> / 100</p>
<p>{checks_before} of {checks} checks failing before, {checks_after} after; {findings} findings collected; {jobs} remediation jobs; made in {secs:.1} s.</p>
<h2>Scores per account</h2>
<table id="accounts"><thead><tr><th>Account</th><th>Name</th><th>Before</th><th>After</th><th>Change</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Trend</h2>
{svg}
<h2>Top issues now</h2>
<table id="issues"><thead><tr><th>Control</th><th>Severity</th><th>Points to gain</th><th>Failing resources</th><th>Title</th></tr></thead><tbody>{issues}</tbody></table>
<h2>Remediation log</h2>
<table id="remediations"><thead><tr><th>Job</th><th>Playbook</th><th>Mode</th><th>Account</th><th>State</th><th>Approved by</th><th>What changed</th></tr></thead><tbody>{log}</tbody></table>
<p>Evidence for auditors: <code>{evidence}</code> (check it with <code>orgsec evidence verify</code>).</p>
</body></html>
"#,
        before = r.before.org_score,
        after = r.after.org_score,
        checks_before = r.before.failing_checks,
        checks = r.before.checks,
        checks_after = r.after.failing_checks,
        findings = r.findings_collected,
        jobs = r.remediations.len(),
        secs = r.seconds,
        svg = trend_svg(history),
        evidence = esc(&r.evidence_zip.display().to_string()),
    )
}
