//! The dispatcher: matches failing findings to remediation bindings and enqueues a job for each
//! match. It only enqueues (the jobs engine, [`crate::jobs`], runs them), so it can run after
//! every sync, as often as wanted: a finding that already has its job maps to that job again,
//! through the job's idempotency key `binding|playbook|finding|generation`, where the
//! generation is when the finding last started failing. A finding fixed and then failing again
//! has a new generation, and gets a new job.
//!
//! A binding matches a finding when the finding fails, its control is one of the binding's
//! controls or its type one of the binding's finding types (exact, or under a prefix ending in
//! `/`), and its account lies in the binding's scope: one of the scope's accounts or under one
//! of its OUs (either list empty: no restriction by place; both empty: the whole organization),
//! with every tag of the scope among the account's tags. When several sources report one check
//! (a Config rule and its Security Hub control), the binding gets one job, for Security Hub's
//! finding when there is one: one fix, one job.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;

use crate::binding::{self, Binding, Scope};
use crate::finding::Source;
use crate::jobs::{self, DEFAULT_MAX_ATTEMPTS, JobError, JobState, NewJob};
use crate::store::{AccountRecord, FailingFinding, JobMark, Store};

/// The actor the dispatcher's audit records name.
pub const DISPATCHER: &str = "dispatcher";

/// Bindings read per page.
const PAGE: u32 = 500;

/// What one dispatch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Bindings read.
    pub bindings: usize,
    /// (check, binding) pairs that matched, in scope.
    pub matched: usize,
    /// Jobs created now, by id.
    pub enqueued: Vec<String>,
    /// Matches that already had their job.
    pub existing: usize,
    /// Findings of a matching control or type on a kind of resource the playbook does not act
    /// on (Access Analyzer's external access to a role, for a bucket playbook).
    pub unsupported: usize,
    /// Findings of a matching control or type outside the binding's scope.
    pub out_of_scope: usize,
}

/// Whether an account with `record` (unknown to orgsec when `None`) lies in `scope`.
pub fn in_scope(scope: &Scope, account_id: &str, record: Option<&AccountRecord>) -> bool {
    let placed = scope.is_everywhere()
        || scope.accounts.iter().any(|a| a == account_id)
        || record
            .and_then(|r| r.ou_path.as_deref())
            .is_some_and(|path| scope.organizational_units.iter().any(|ou| binding::ou_within(path, ou)));
    let tagged =
        scope.tags.is_empty() || record.is_some_and(|r| scope.tags.iter().all(|(k, v)| r.tags.get(k) == Some(v)));
    placed && tagged
}

/// Every binding's matches among the stored findings, each enqueued as a job unless it has one.
pub async fn dispatch(store: &Store, now: OffsetDateTime) -> Result<DispatchReport, JobError> {
    let mut bindings: Vec<Binding> = Vec::new();
    loop {
        let after = bindings.last().map(|b| b.spec.name.clone());
        let page = store.list_bindings(after.as_deref(), PAGE).await?;
        let full = page.len() == PAGE as usize;
        bindings.extend(page);
        if !full {
            break;
        }
    }
    let accounts: HashMap<String, AccountRecord> =
        store.accounts().await?.into_iter().map(|a| (a.account_id.clone(), a)).collect();
    let mut report = DispatchReport { bindings: bindings.len(), ..DispatchReport::default() };
    for b in &bindings {
        dispatch_binding(store, b, &accounts, now, &mut report).await?;
    }
    if !report.enqueued.is_empty() {
        tracing::info!(
            enqueued = report.enqueued.len(),
            existing = report.existing,
            bindings = report.bindings,
            "remediation jobs enqueued"
        );
    }
    Ok(report)
}

/// The generation a failing finding's job is keyed by: when it started failing, unless its
/// latest job succeeded and the source updated it after that (it failed again after the fix,
/// with no read in between to see it pass): then the time of that update.
fn generation_of(f: &FailingFinding, latest: Option<&JobMark>) -> i64 {
    match latest {
        Some(m) if m.state == JobState::Succeeded && m.generation >= f.failing_since && f.updated_at > m.updated_at => {
            f.updated_at
        }
        _ => f.failing_since,
    }
}

async fn dispatch_binding(
    store: &Store,
    b: &Binding,
    accounts: &HashMap<String, AccountRecord>,
    now: OffsetDateTime,
    report: &mut DispatchReport,
) -> Result<(), JobError> {
    let spec = &b.spec;
    let mut findings = store.failing_findings(&spec.controls, &spec.finding_types).await?;
    if findings.is_empty() {
        return Ok(());
    }
    // One finding per check, Security Hub's first.
    findings.sort_by(|a, b| {
        (&a.check_key, a.source != Source::SecurityHub, &a.uid).cmp(&(
            &b.check_key,
            b.source != Source::SecurityHub,
            &b.uid,
        ))
    });
    findings.dedup_by(|later, first| later.check_key == first.check_key);
    let marks = store.job_marks_of_binding(&spec.name).await?;
    let known: HashSet<String> = marks.iter().map(|m| m.id.clone()).collect();
    // Each finding's latest job: a finding fixed and then failing again before any read saw it
    // pass keeps its generation, and is told apart by being updated after its job succeeded.
    let mut latest: HashMap<&str, &JobMark> = HashMap::new();
    for m in &marks {
        let e = latest.entry(m.finding_uid.as_str()).or_insert(m);
        if (m.generation, m.updated_at) > (e.generation, e.updated_at) {
            *e = m;
        }
    }
    let playbook = crate::playbooks::find(&spec.playbook);
    for f in findings {
        if playbook.is_some_and(|p| !p.acts_on(&f.resource_type)) {
            report.unsupported += 1;
            continue;
        }
        if !in_scope(&spec.scope, &f.account_id, accounts.get(&f.account_id)) {
            report.out_of_scope += 1;
            continue;
        }
        report.matched += 1;
        let generation = generation_of(&f, latest.get(f.uid.as_str()).copied());
        let job = NewJob {
            binding: spec.name.clone(),
            playbook: spec.playbook.clone(),
            mode: spec.mode,
            finding_uid: f.uid,
            finding_generation: generation,
            account_id: f.account_id,
            region: f.region,
            parameters: spec.parameters.clone().into_iter().collect::<BTreeMap<_, _>>(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        };
        if known.contains(&job.id()) {
            report.existing += 1;
            continue;
        }
        let enqueued = jobs::enqueue(store, &job, DISPATCHER, now).await?;
        if enqueued.is_created() {
            report.enqueued.push(enqueued.job().id.clone());
        } else {
            report.existing += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enroll::AccountState;

    fn record(id: &str, ou: &str, tags: &[(&str, &str)]) -> AccountRecord {
        let t = OffsetDateTime::UNIX_EPOCH;
        AccountRecord {
            account_id: id.into(),
            name: id.into(),
            email: String::new(),
            ou_path: Some(ou.into()),
            org_status: None,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            state: AccountState::Enrolled,
            reason: None,
            role_ok: None,
            securityhub_status: String::new(),
            guardduty_status: String::new(),
            regions: BTreeMap::new(),
            first_seen_at: t,
            updated_at: t,
            checked_at: None,
            enrolled_at: None,
        }
    }

    #[test]
    fn scope_places_by_account_or_ou_and_narrows_by_every_tag() {
        let prod = record("333333333333", "Root/Prod/Web", &[("env", "prod"), ("team", "web")]);
        let dev = record("555555555555", "Root/Dev", &[("env", "dev")]);
        let everywhere = Scope::default();
        assert!(in_scope(&everywhere, "333333333333", Some(&prod)));
        assert!(in_scope(&everywhere, "999999999999", None), "an empty scope is the whole organization");

        let ou = Scope { organizational_units: vec!["Root/Prod".into()], ..Scope::default() };
        assert!(in_scope(&ou, "333333333333", Some(&prod)), "below the OU");
        assert!(!in_scope(&ou, "555555555555", Some(&dev)));
        assert!(!in_scope(&ou, "999999999999", None), "an unknown account is under no OU");
        let prefix = Scope { organizational_units: vec!["Root/Pro".into()], ..Scope::default() };
        assert!(!in_scope(&prefix, "333333333333", Some(&prod)), "OU paths match whole segments");

        let either = Scope {
            accounts: vec!["555555555555".into()],
            organizational_units: vec!["Root/Prod".into()],
            ..Scope::default()
        };
        assert!(in_scope(&either, "555555555555", Some(&dev)) && in_scope(&either, "333333333333", Some(&prod)));

        let tagged = Scope { tags: [("env".to_string(), "prod".to_string())].into(), ..Scope::default() };
        assert!(in_scope(&tagged, "333333333333", Some(&prod)));
        assert!(!in_scope(&tagged, "555555555555", Some(&dev)));
        assert!(!in_scope(&tagged, "999999999999", None), "an unknown account has no tags");
        let both_tags = Scope {
            tags: [("env".to_string(), "prod".to_string()), ("team".to_string(), "data".to_string())].into(),
            ..Scope::default()
        };
        assert!(!in_scope(&both_tags, "333333333333", Some(&prod)), "every tag must match");
    }
}
