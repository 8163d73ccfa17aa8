//! Evidence for auditors: one tamper-evident bundle per framework and scope, linking each
//! control to its findings and to the remediations that fixed them.
//!
//! A bundle is a ZIP archive (see [`zip`]) holding:
//!
//! - `controls.csv`: for each control of the framework and each account in scope, the status
//!   (FAILED, PASSED, DISABLED, NO_DATA), failing and passing findings, last evaluation;
//! - `findings.jsonl`: the Security Hub findings of those controls, ASFF as Security Hub gave
//!   them; `findings.ocsf.jsonl`: every finding of those controls (Security Hub and Config) as
//!   OCSF Compliance Findings;
//! - `remediations.jsonl`: the audit records of the scope (remediations, approvals, bindings),
//!   each with its place in the audit log's hash chain;
//! - `disabled-controls.csv`: the framework's controls disabled in each account, with the reason
//!   and when, as Security Hub reports them;
//! - `scores.csv`: the score history of the organization and of the scope;
//! - `manifest.json`: the framework, scope, window, versions, the SHA-256 of every other file and
//!   the head of the audit chain; `manifest.sha256` holds the manifest's own SHA-256 in
//!   `sha256sum` format.
//!
//! [`verify`] needs nothing but the bundle: it checks the manifest against its hash, every file
//! against the manifest, every audit record against its hash and its neighbours, and rebuilds
//! the archive from the files to compare it byte for byte, so that one flipped byte anywhere
//! makes it fail and say which file (and which record) it is in.

pub mod ocsf;
pub mod zip;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::audit::{AuditRecord, GENESIS};
use crate::aws::Aws;
use crate::catalogue::catalogue;
use crate::enroll::AccountState;
use crate::finding::{Finding, Source};
use crate::render::rfc3339;
use crate::store::{FindingQuery, Store, StoreError};

/// The bundle format's name and version, in the manifest.
pub const FORMAT: &str = "orgsec-evidence/1";
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_HASH: &str = "manifest.sha256";
pub const CONTROLS: &str = "controls.csv";
pub const FINDINGS: &str = "findings.jsonl";
pub const FINDINGS_OCSF: &str = "findings.ocsf.jsonl";
pub const REMEDIATIONS: &str = "remediations.jsonl";
pub const DISABLED: &str = "disabled-controls.csv";
pub const SCORES: &str = "scores.csv";

/// The frameworks a bundle can be made for: the short name, and the Security Hub standard's
/// subscription path (`standards/<path>`, `subscription/<path>`).
pub const FRAMEWORKS: &[(&str, &str)] = &[
    ("fsbp", "aws-foundational-security-best-practices/v/1.0.0"),
    ("cis-1.2", "cis-aws-foundations-benchmark/v/1.2.0"),
    ("cis-1.4", "cis-aws-foundations-benchmark/v/1.4.0"),
    ("cis-3.0", "cis-aws-foundations-benchmark/v/3.0.0"),
    ("pci-3.2.1", "pci-dss/v/3.2.1"),
    ("nist-800-53-r5", "nist-800-53/v/5.0.0"),
];

const PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("unknown framework {name:?}; use one of {known}")]
    UnknownFramework { name: String, known: String },
    #[error("{0}")]
    Scope(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the bundle: {0}")]
    Write(String),
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub framework: String,
    /// One account, or the accounts of one OU (its path, `Root/Prod`); neither: the organization.
    pub account: Option<String>,
    pub ou: Option<String>,
    /// Findings updated and audit records written at or after this time; all when `None`.
    pub since: Option<OffsetDateTime>,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub framework: String,
    pub scope: Scope,
    pub window: Window,
    pub generated_at: String,
    pub versions: BTreeMap<String, String>,
    pub files: Vec<FileEntry>,
    pub audit_chain: Chain,
    pub counts: BTreeMap<String, u64>,
    /// What could not be gathered, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// `org`, `ou` or `account`.
    pub kind: String,
    pub id: String,
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The audit log at export: its head, and the records the bundle holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub head_seq: i64,
    pub head_hash: String,
    pub records: u64,
}

/// A bundle, ready to write.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::audit::hex(&Sha256::digest(bytes))
}

fn millis_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

/// A CSV field, quoted when it needs to be.
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn csv_line(out: &mut String, fields: &[&str]) {
    let line: Vec<String> = fields.iter().map(|f| csv(f)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

/// The controls of `framework` with their requirement ids.
fn framework_controls(framework: &str) -> Result<Vec<(&'static crate::catalogue::Control, String)>, EvidenceError> {
    if !FRAMEWORKS.iter().any(|f| f.0 == framework) {
        return Err(EvidenceError::UnknownFramework {
            name: framework.to_string(),
            known: FRAMEWORKS.iter().map(|f| f.0).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(catalogue()
        .controls()
        .iter()
        .filter_map(|c| {
            let reqs = c.frameworks.iter().find(|(f, _)| *f == framework).map(|(_, r)| r)?;
            if reqs.is_empty() || (framework == "fsbp" && reqs.iter().all(|r| r != "yes")) {
                return None;
            }
            let reqs = if framework == "fsbp" { String::new() } else { reqs.join(";") };
            Some((c, reqs))
        })
        .collect())
}

/// The accounts in scope, and the scope as the manifest names it.
async fn scope_of(store: &Store, opts: &ExportOptions) -> Result<Scope, EvidenceError> {
    let accounts = store.accounts().await?;
    let (kind, id, members): (&str, String, Vec<String>) = match (&opts.account, &opts.ou) {
        (Some(_), Some(_)) => return Err(EvidenceError::Scope("give --account or --ou, not both".into())),
        (Some(a), None) => {
            if !accounts.iter().any(|r| &r.account_id == a) {
                return Err(EvidenceError::Scope(format!(
                    "account {a} is not known to orgsec; `orgsec enroll` and `orgsec sync` it first"
                )));
            }
            ("account", a.clone(), vec![a.clone()])
        }
        (None, Some(ou)) => {
            let path = crate::score::ScopeRef::ou(ou).id;
            let members: Vec<String> = accounts
                .iter()
                .filter(|r| r.ou_path.as_deref().is_some_and(|p| p == path || p.starts_with(&format!("{path}/"))))
                .map(|r| r.account_id.clone())
                .collect();
            if members.is_empty() {
                return Err(EvidenceError::Scope(format!("no known account is in the OU {path}")));
            }
            ("ou", path, members)
        }
        (None, None) => ("org", "org".to_string(), accounts.iter().map(|r| r.account_id.clone()).collect()),
    };
    let mut members = members;
    members.sort();
    Ok(Scope { kind: kind.to_string(), id, accounts: members })
}

/// Every finding of `controls` in `accounts`, with its document when `raw`.
async fn findings_of(
    store: &Store,
    accounts: &[String],
    controls: &[String],
    raw: bool,
) -> Result<Vec<Finding>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let q = FindingQuery {
            accounts: accounts.to_vec(),
            controls: controls.to_vec(),
            after: after.clone(),
            limit: Some(PAGE),
            with_raw: raw,
            ..FindingQuery::default()
        };
        let page = store.findings(&q).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|f| f.uid.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Every audit record, oldest first.
async fn audit_log(store: &Store) -> Result<Vec<AuditRecord>, StoreError> {
    let mut out: Vec<AuditRecord> = Vec::new();
    loop {
        let page = store.audit_records(out.last().map_or(0, |r| r.seq), PAGE).await?;
        let full = page.len() == PAGE as usize;
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// A disabled control as Security Hub reports it.
#[derive(Debug, Clone)]
struct Disabled {
    account: String,
    region: String,
    control: String,
    reason: String,
    since: Option<String>,
}

/// The framework's controls disabled in each account, read through the member roles.
async fn disabled_controls(
    aws: &Aws,
    accounts: &[String],
    standard_path: &str,
    notes: &mut Vec<String>,
) -> Vec<Disabled> {
    let mut out = Vec::new();
    for account in accounts {
        for region in aws.regions() {
            let c = match aws.member(account, &region).await {
                Ok(c) => c,
                Err(e) => {
                    notes.push(format!("disabled controls of {account} in {region} not read: {e}"));
                    continue;
                }
            };
            let hub = c.securityhub();
            let enabled = match hub.get_enabled_standards().send().await {
                Ok(o) => o,
                Err(e) => {
                    notes.push(format!(
                        "disabled controls of {account} in {region} not read: securityhub:GetEnabledStandards: {}",
                        crate::aws::describe(&e)
                    ));
                    continue;
                }
            };
            let Some(sub) = enabled
                .standards_subscriptions()
                .iter()
                .find(|s| s.standards_arn().is_some_and(|a| a.ends_with(standard_path)))
                .and_then(|s| s.standards_subscription_arn().map(str::to_string))
            else {
                notes.push(format!("{account} in {region} does not have the standard {standard_path} enabled"));
                continue;
            };
            let mut pages = hub.describe_standards_controls().standards_subscription_arn(&sub).into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => {
                        for ctl in p.controls() {
                            if ctl.control_status().map(|s| s.as_str()) == Some("DISABLED") {
                                out.push(Disabled {
                                    account: account.clone(),
                                    region: region.clone(),
                                    control: ctl.control_id().unwrap_or_default().to_string(),
                                    reason: ctl.disabled_reason().unwrap_or_default().to_string(),
                                    since: ctl.control_status_updated_at().map(|t| t.to_string()),
                                });
                            }
                        }
                    }
                    Err(e) => {
                        notes.push(format!(
                            "disabled controls of {account} in {region} not all read: securityhub:DescribeStandardsControls: {}",
                            crate::aws::describe(&e)
                        ));
                        break;
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.account, &a.region, &a.control).cmp(&(&b.account, &b.region, &b.control)));
    out
}

/// Builds the bundle from the store (and, with `aws`, Security Hub's disabled controls) at `now`.
pub async fn export(
    store: &Store,
    aws: Option<&Aws>,
    opts: &ExportOptions,
    now: OffsetDateTime,
) -> Result<Bundle, EvidenceError> {
    let controls = framework_controls(&opts.framework)?;
    let standard_path = FRAMEWORKS.iter().find(|f| f.0 == opts.framework).map(|f| f.1).unwrap_or_default();
    let scope = scope_of(store, opts).await?;
    let since_ms = opts.since.map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN));
    let mut notes = Vec::new();
    let ids: Vec<String> = controls.iter().map(|(c, _)| c.id.clone()).collect();
    let in_scope: BTreeSet<&str> = scope.accounts.iter().map(String::as_str).collect();

    // Findings of the framework's controls in scope.
    let all = findings_of(store, &scope.accounts, &ids, true).await?;
    let windowed: Vec<&Finding> = all.iter().filter(|f| since_ms.is_none_or(|s| f.updated_at >= s)).collect();
    let disabled = match aws {
        Some(aws) => {
            // Only enrolled accounts have a member role to read through.
            let states: std::collections::HashMap<String, AccountState> =
                store.accounts().await?.into_iter().map(|a| (a.account_id, a.state)).collect();
            let mut readable = Vec::new();
            for account in &scope.accounts {
                match states.get(account) {
                    Some(AccountState::Enrolled | AccountState::Admin) => readable.push(account.clone()),
                    Some(AccountState::Management) => notes.push(format!(
                        "disabled controls of {account} not read: it is the management account, which orgsec does not enroll"
                    )),
                    Some(state) => notes.push(format!(
                        "disabled controls of {account} not read: the account is {}, not enrolled (`orgsec enroll --account {account}`)",
                        state.as_str()
                    )),
                    None => notes.push(format!("disabled controls of {account} not read: the account is not enrolled")),
                }
            }
            disabled_controls(aws, &readable, standard_path, &mut notes).await
        }
        None => {
            notes.push("disabled controls not read: no AWS access was given".into());
            Vec::new()
        }
    };
    let disabled_set: BTreeSet<(&str, &str)> =
        disabled.iter().map(|d| (d.account.as_str(), d.control.as_str())).collect();

    // controls.csv: control x account.
    let mut by: BTreeMap<(&str, &str), (u64, u64, i64)> = BTreeMap::new();
    for f in &all {
        let Some(ctl) = f.control_id.as_deref() else { continue };
        let e = by.entry((ctl, f.account_id.as_str())).or_default();
        if f.is_failing() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2 = e.2.max(f.updated_at);
    }
    let mut controls_csv = String::new();
    csv_line(
        &mut controls_csv,
        &[
            "framework",
            "control_id",
            "requirements",
            "title",
            "severity",
            "account_id",
            "status",
            "failing",
            "passing",
            "last_evaluated",
        ],
    );
    let mut status_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (c, reqs) in &controls {
        for account in &scope.accounts {
            let (failing, passing, last) = by.get(&(c.id.as_str(), account.as_str())).copied().unwrap_or_default();
            let status = if disabled_set.contains(&(account.as_str(), c.id.as_str())) {
                "DISABLED"
            } else if failing > 0 {
                "FAILED"
            } else if passing > 0 {
                "PASSED"
            } else {
                "NO_DATA"
            };
            *status_counts.entry(status).or_default() += 1;
            let last = if last > 0 { millis_rfc3339(last) } else { String::new() };
            csv_line(
                &mut controls_csv,
                &[
                    &opts.framework,
                    &c.id,
                    reqs,
                    &c.title,
                    c.severity.as_str(),
                    account,
                    status,
                    &failing.to_string(),
                    &passing.to_string(),
                    &last,
                ],
            );
        }
    }

    // findings.jsonl (ASFF, Security Hub's own) and findings.ocsf.jsonl (every source).
    let mut asff = String::new();
    let mut ocsf_lines = String::new();
    for f in &windowed {
        if f.source == Source::SecurityHub {
            // One document per line, as stored (re-serialized compactly if it spans lines).
            match serde_json::from_str::<serde_json::Value>(&f.raw) {
                Ok(v) => asff.push_str(&v.to_string()),
                Err(_) => asff.push_str(&serde_json::json!({"orgsec_unreadable_document": f.raw}).to_string()),
            }
            asff.push('\n');
        }
        let requirements = controls
            .iter()
            .find(|(c, _)| Some(c.id.as_str()) == f.control_id.as_deref())
            .map(|(_, r)| r.as_str())
            .unwrap_or_default();
        ocsf_lines.push_str(&ocsf::compliance_finding(f, &opts.framework, requirements).to_string());
        ocsf_lines.push('\n');
    }

    // remediations.jsonl: the audit records of the scope.
    let log = audit_log(store).await?;
    let (head_seq, head_hash) = log.last().map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash.clone()));
    let mut remediations = String::new();
    let mut records = 0u64;
    for r in &log {
        let account_ok = r.account_id.as_deref().is_none_or(|a| in_scope.contains(a));
        if account_ok && since_ms.is_none_or(|s| r.at >= s) {
            remediations.push_str(&serde_json::to_string(r).map_err(|e| EvidenceError::Write(e.to_string()))?);
            remediations.push('\n');
            records += 1;
        }
    }

    // disabled-controls.csv
    let mut disabled_csv = String::new();
    csv_line(
        &mut disabled_csv,
        &["framework", "account_id", "region", "control_id", "reason", "disabled_since", "disabled_by"],
    );
    for d in &disabled {
        csv_line(
            &mut disabled_csv,
            &[
                &opts.framework,
                &d.account,
                &d.region,
                &d.control,
                &d.reason,
                d.since.as_deref().unwrap_or_default(),
                // Security Hub does not say who; CloudTrail's UpdateStandardsControl event does.
                &format!("account {} (see CloudTrail UpdateStandardsControl)", d.account),
            ],
        );
    }

    // scores.csv: the organization's history and the scope's.
    let mut scores_csv = String::new();
    csv_line(&mut scores_csv, &["taken_at", "scope", "scope_id", "score", "total_weight", "failing_weight"]);
    let mut scopes = vec![("org".to_string(), crate::score::ORG_ID.to_string())];
    match scope.kind.as_str() {
        "ou" => scopes.push(("ou".into(), scope.id.clone())),
        "account" => scopes.push(("account".into(), scope.id.clone())),
        _ => {}
    }
    scopes.extend(
        scope
            .accounts
            .iter()
            .filter(|a| scope.kind != "account" || **a != scope.id)
            .map(|a| ("account".to_string(), a.clone())),
    );
    for (kind, id) in &scopes {
        for s in store.snapshots(kind, id).await? {
            if since_ms.is_some_and(|m| s.taken_at < m) {
                continue;
            }
            csv_line(
                &mut scores_csv,
                &[
                    &millis_rfc3339(s.taken_at),
                    &s.scope,
                    &s.scope_id,
                    &format!("{:.2}", s.score),
                    &s.total_weight.to_string(),
                    &s.failing_weight.to_string(),
                ],
            );
        }
    }

    let files: Vec<(&str, Vec<u8>)> = vec![
        (CONTROLS, controls_csv.into_bytes()),
        (FINDINGS, asff.into_bytes()),
        (FINDINGS_OCSF, ocsf_lines.into_bytes()),
        (REMEDIATIONS, remediations.into_bytes()),
        (DISABLED, disabled_csv.into_bytes()),
        (SCORES, scores_csv.into_bytes()),
    ];
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    counts.insert("controls".into(), controls.len() as u64);
    counts.insert("accounts".into(), scope.accounts.len() as u64);
    counts.insert("findings".into(), windowed.len() as u64);
    counts.insert("findings_asff".into(), windowed.iter().filter(|f| f.source == Source::SecurityHub).count() as u64);
    counts.insert("audit_records".into(), records);
    counts.insert("disabled_controls".into(), disabled.len() as u64);
    for (status, n) in status_counts {
        counts.insert(format!("control_status_{}", status.to_ascii_lowercase()), n);
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        framework: opts.framework.clone(),
        scope,
        window: Window { since: opts.since.map(rfc3339), until: rfc3339(now) },
        generated_at: rfc3339(now),
        versions: BTreeMap::from([
            ("orgsec".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("catalogue_controls".to_string(), catalogue().controls().len().to_string()),
            ("ocsf".to_string(), ocsf::VERSION.to_string()),
        ]),
        files: files
            .iter()
            .map(|(name, data)| FileEntry {
                name: name.to_string(),
                sha256: sha256_hex(data),
                bytes: data.len() as u64,
            })
            .collect(),
        audit_chain: Chain { head_seq, head_hash, records },
        counts,
        notes,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| EvidenceError::Write(e.to_string()))?;
    let manifest_hash = format!("{}  {MANIFEST}\n", sha256_hex(&manifest_json));
    let mut entries: Vec<(&str, &[u8])> = vec![(MANIFEST, &manifest_json), (MANIFEST_HASH, manifest_hash.as_bytes())];
    entries.extend(files.iter().map(|(n, d)| (*n, d.as_slice())));
    // The manifest's hash is kept twice, in manifest.sha256 and as the archive's comment, so
    // that `verify` can tell a damaged manifest from a damaged hash.
    let bytes =
        zip::write(&entries, sha256_hex(&manifest_json).as_bytes()).map_err(|e| EvidenceError::Write(e.to_string()))?;
    Ok(Bundle { bytes, manifest })
}

/// Why a bundle does not verify: in which file, at which record when it is one, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {what}", file.as_deref().unwrap_or("the archive"), record.as_ref().map(|r| format!(", {r}")).unwrap_or_default())]
pub struct VerifyError {
    pub file: Option<String>,
    pub record: Option<String>,
    pub what: String,
}

impl VerifyError {
    fn file(file: &str, what: impl Into<String>) -> VerifyError {
        VerifyError { file: Some(file.to_string()), record: None, what: what.into() }
    }
}

/// What a verified bundle holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    pub manifest: Manifest,
    pub files: usize,
    pub audit_records: u64,
}

/// Checks a bundle; see the module's documentation.
pub fn verify(bytes: &[u8]) -> Result<Verified, VerifyError> {
    let entries = zip::read(bytes).map_err(|e| {
        // Name the entry whose bytes the damage is in, when the archive got that far.
        VerifyError { file: None, record: None, what: format!("not a bundle orgsec can read: {e}") }
    })?;
    let get = |name: &str| entries.iter().find(|e| e.name == name);
    let manifest_bytes = get(MANIFEST).ok_or_else(|| VerifyError::file(MANIFEST, "missing"))?;
    let hash_file = get(MANIFEST_HASH).ok_or_else(|| VerifyError::file(MANIFEST_HASH, "missing"))?;
    let actual = sha256_hex(&manifest_bytes.data);
    let recorded = String::from_utf8_lossy(&hash_file.data).to_string();
    let comment =
        bytes.len().checked_sub(64).map(|i| String::from_utf8_lossy(&bytes[i..]).to_string()).unwrap_or_default();
    if recorded != format!("{actual}  {MANIFEST}\n") {
        // Two records of the manifest's hash, manifest.sha256 and the archive's comment: where
        // they agree, the manifest is what changed; where they differ, the one that disagrees.
        return Err(if recorded == format!("{comment}  {MANIFEST}\n") {
            VerifyError::file(MANIFEST, "its SHA-256 is not the one manifest.sha256 records")
        } else {
            VerifyError::file(MANIFEST_HASH, "it does not hold the manifest's SHA-256")
        });
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes.data)
        .map_err(|e| VerifyError::file(MANIFEST, format!("cannot be read: {e}")))?;
    if manifest.format != FORMAT {
        return Err(VerifyError::file(MANIFEST, format!("format {:?}, expected {FORMAT}", manifest.format)));
    }
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    for e in &entries {
        if e.name != MANIFEST && e.name != MANIFEST_HASH && !listed.contains(e.name.as_str()) {
            return Err(VerifyError::file(&e.name, "not listed in the manifest"));
        }
    }
    // The audit records first: a damaged record is named, not just its file.
    let records = match get(REMEDIATIONS) {
        Some(e) => verify_records(&e.data, &manifest.audit_chain)?,
        None => 0,
    };
    for f in &manifest.files {
        let e = get(&f.name).ok_or_else(|| VerifyError::file(&f.name, "listed in the manifest but missing"))?;
        if e.data.len() as u64 != f.bytes || sha256_hex(&e.data) != f.sha256 {
            return Err(VerifyError::file(&f.name, "its SHA-256 is not the one the manifest records"));
        }
    }
    // Everything else: the archive must be exactly what orgsec writes for these files.
    let files: Vec<(&str, &[u8])> = entries.iter().map(|e| (e.name.as_str(), e.data.as_slice())).collect();
    let rebuilt = zip::write(&files, actual.as_bytes()).map_err(|e| VerifyError {
        file: None,
        record: None,
        what: e.to_string(),
    })?;
    if rebuilt != bytes {
        let at = rebuilt.iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(rebuilt.len().min(bytes.len()));
        let file = entries.iter().find(|e| e.span.contains(&at)).map(|e| e.name.clone());
        let what = match &file {
            Some(_) => format!("the archive's header of this file differs from what orgsec writes (byte {at})"),
            None => format!("the archive's directory differs from what orgsec writes (byte {at})"),
        };
        return Err(VerifyError { file, record: None, what });
    }
    Ok(Verified { files: manifest.files.len(), audit_records: records, manifest })
}

/// Each record's hash recomputed, each consecutive pair linked, and the count and head as the
/// manifest says.
fn verify_records(data: &[u8], chain: &Chain) -> Result<u64, VerifyError> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        VerifyError {
            file: Some(REMEDIATIONS.to_string()),
            record: Some(format!("line {line}")),
            what: "not UTF-8 text: the record was changed".into(),
        }
    })?;
    let mut prev: Option<AuditRecord> = None;
    let mut n = 0u64;
    for (i, line) in text.lines().enumerate() {
        let at = |what: String| VerifyError {
            file: Some(REMEDIATIONS.to_string()),
            record: Some(format!("line {}", i + 1)),
            what,
        };
        let r: AuditRecord = serde_json::from_str(line).map_err(|e| at(format!("not an audit record: {e}")))?;
        let named = |what: String| VerifyError {
            file: Some(REMEDIATIONS.to_string()),
            record: Some(format!("record {} (line {})", r.seq, i + 1)),
            what,
        };
        if r.compute_hash() != r.hash {
            return Err(named("its hash does not match its content: the record was changed".into()));
        }
        if let Some(p) = &prev {
            if r.seq <= p.seq {
                return Err(named(format!("out of order after record {}", p.seq)));
            }
            if r.seq == p.seq + 1 && r.prev_hash != p.hash {
                return Err(named(format!("does not follow record {} in the chain", p.seq)));
            }
        }
        if r.seq > chain.head_seq || (r.seq == chain.head_seq && r.hash != chain.head_hash) {
            return Err(named("not in the audit chain the manifest's head closes".into()));
        }
        prev = Some(r);
        n += 1;
    }
    if n != chain.records {
        return Err(VerifyError::file(REMEDIATIONS, format!("{n} records, the manifest says {}", chain.records)));
    }
    Ok(n)
}
