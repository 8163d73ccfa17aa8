//! The monitor: a log of what changes in the organization between full assessments, and the
//! decision to run the next one.
//!
//! Collection between full assessments is incremental (each account from its watermarks), so
//! what it misses (a finding AWS updated late, say) piles up as the organization changes. The
//! monitor keeps a log of those changes (`change_log`): remediations (recorded by the runner when
//! a job changed something), resources that appeared or went away, and checks that started
//! failing (found by comparing each account's findings before and after it is read). When the
//! changes since the last full assessment reach a threshold (`reassess_after_changes`), `orgsec
//! serve` reads every account in full again, rescores, and records the assessment, which starts
//! the count again.
//!
//! What the monitor compares is kept in memory, per account, as 64-bit hashes (about 16 bytes a
//! finding): the first read of an account after start-up is its baseline, and records nothing.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use parking_lot::Mutex;
use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{CheckState, Store, StoreError};

/// What kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A remediation job changed a resource.
    Remediation,
    /// A resource with findings appeared.
    ResourceNew,
    /// Every finding of a resource was archived: it went away.
    ResourceDeleted,
    /// A check started failing.
    CheckFailing,
    /// A full assessment ran (it resets the count of changes).
    Assessment,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Remediation,
        ChangeKind::ResourceNew,
        ChangeKind::ResourceDeleted,
        ChangeKind::CheckFailing,
        ChangeKind::Assessment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Remediation => "remediation",
            ChangeKind::ResourceNew => "resource_new",
            ChangeKind::ResourceDeleted => "resource_deleted",
            ChangeKind::CheckFailing => "check_failing",
            ChangeKind::Assessment => "assessment",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: ChangeKind,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// What changed: a resource id, a check, a job id.
    pub subject: String,
    pub detail: String,
}

/// An account's findings, as compared between reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct View {
    /// Resources with at least one active finding.
    resources: HashSet<u64>,
    /// Checks failing.
    failing: HashSet<u64>,
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl View {
    fn of(rows: &[CheckState]) -> View {
        let mut v = View::default();
        for r in rows {
            if r.active {
                v.resources.insert(hash_of(&[&r.region, &r.resource_id]));
            }
            if r.failing {
                v.failing.insert(hash_of(&[&r.check_key]));
            }
        }
        v
    }
}

/// What is different in `account` between `before` and `after` (whose findings are `rows`).
fn diff(account: &str, before: &View, after: &View, rows: &[CheckState], at: OffsetDateTime) -> Vec<Change> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let change = |kind, region: &str, subject: &str, detail: String| Change {
        at,
        kind,
        account_id: Some(account.to_string()),
        region: Some(region.to_string()),
        subject: subject.to_string(),
        detail,
    };
    for r in rows {
        let resource = hash_of(&[&r.region, &r.resource_id]);
        if seen.insert((1, resource)) {
            let now = after.resources.contains(&resource);
            let was = before.resources.contains(&resource);
            if now && !was {
                out.push(change(ChangeKind::ResourceNew, &r.region, &r.resource_id, "a resource appeared".into()));
            } else if was && !now {
                out.push(change(
                    ChangeKind::ResourceDeleted,
                    &r.region,
                    &r.resource_id,
                    "every finding of the resource was archived".into(),
                ));
            }
        }
        let check = hash_of(&[&r.check_key]);
        if r.failing && !before.failing.contains(&check) && seen.insert((2, check)) {
            out.push(change(
                ChangeKind::CheckFailing,
                &r.region,
                &r.check_key,
                format!("started failing on {}", r.resource_id),
            ));
        }
    }
    out
}

/// See the module's documentation. Shared by the rounds of one `orgsec serve`.
#[derive(Debug)]
pub struct Monitor {
    store: Store,
    threshold: u64,
    views: Mutex<HashMap<String, View>>,
}

impl Monitor {
    /// A monitor that asks for a full assessment after `threshold` changes (0: never).
    pub fn new(store: Store, threshold: u64) -> Monitor {
        Monitor { store, threshold, views: Mutex::new(HashMap::new()) }
    }

    /// Compares each of `accounts` with what it was at its last observation, records what
    /// changed and returns how many changes that was. An account observed for the first time
    /// is a baseline.
    pub async fn observe(&self, accounts: &[String]) -> Result<usize, StoreError> {
        let at = OffsetDateTime::now_utc();
        let mut changes = Vec::new();
        for account in accounts {
            let rows = self.store.check_states(account).await?;
            let view = View::of(&rows);
            let before = self.views.lock().insert(account.clone(), view.clone());
            if let Some(before) = before
                && before != view
            {
                changes.extend(diff(account, &before, &view, &rows, at));
            }
        }
        self.store.record_changes(&changes).await?;
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), "changes recorded");
        }
        Ok(changes.len())
    }

    /// Whether enough changed since the last full assessment to run another: the count, when
    /// it reached the threshold.
    pub async fn due(&self) -> Result<Option<u64>, StoreError> {
        if self.threshold == 0 {
            return Ok(None);
        }
        let (_, n) = self.store.changes_since_assessment().await?;
        Ok((n >= self.threshold).then_some(n))
    }

    /// Records that a full assessment of `accounts` ran, prompted by `changes` changes.
    pub async fn assessed(&self, accounts: usize, changes: u64) -> Result<(), StoreError> {
        let c = Change {
            at: OffsetDateTime::now_utc(),
            kind: ChangeKind::Assessment,
            account_id: None,
            region: None,
            subject: "full".into(),
            detail: format!("read {accounts} accounts in full and rescored after {changes} changes"),
        };
        self.store.record_changes(&[c]).await
    }

    /// Records a remediation that changed `subject` (a job) in `account`.
    pub async fn remediated(
        store: &Store,
        account: &str,
        region: &str,
        job: &str,
        what: &[String],
    ) -> Result<(), StoreError> {
        let c = Change {
            at: OffsetDateTime::now_utc(),
            kind: ChangeKind::Remediation,
            account_id: Some(account.to_string()),
            region: Some(region.to_string()),
            subject: job.to_string(),
            detail: what.join("; "),
        };
        store.record_changes(&[c]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(resource: &str, check: &str, failing: bool, active: bool) -> CheckState {
        CheckState {
            region: "us-east-1".into(),
            resource_id: resource.into(),
            check_key: check.into(),
            failing,
            active,
        }
    }

    #[test]
    fn new_and_deleted_resources_and_newly_failing_checks_are_found() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let before_rows = [row("sg-1", "EC2.13|sg-1", false, true), row("sg-2", "EC2.13|sg-2", true, true)];
        let after_rows = [
            row("sg-1", "EC2.13|sg-1", true, true),
            row("sg-1", "EC2.19|sg-1", true, true),
            row("sg-2", "EC2.13|sg-2", true, false),
            row("sg-3", "EC2.13|sg-3", false, true),
        ];
        let (before, after) = (View::of(&before_rows), View::of(&after_rows));
        let mut got: Vec<(ChangeKind, String)> =
            diff("1", &before, &after, &after_rows, at).into_iter().map(|c| (c.kind, c.subject)).collect();
        got.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        assert_eq!(
            got,
            [
                (ChangeKind::CheckFailing, "EC2.13|sg-1".to_string()),
                (ChangeKind::CheckFailing, "EC2.19|sg-1".to_string()),
                (ChangeKind::ResourceDeleted, "sg-2".to_string()),
                (ChangeKind::ResourceNew, "sg-3".to_string()),
            ]
        );
        assert!(diff("1", &after, &after, &after_rows, at).is_empty(), "nothing changed, nothing recorded");
    }

    #[test]
    fn kinds_round_trip() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ChangeKind::parse("nope"), None);
    }
}
