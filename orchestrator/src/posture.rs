//! Posture: the stored findings turned into scoring [`Check`]s and a [`Scoreboard`], and the
//! snapshots that give scores a history.
//!
//! Several findings may report one check (Security Hub's control finding and the Config rule
//! behind it; a GuardDuty finding and its copy in Security Hub). The check takes the state of
//! the most recently updated of them: the newest word on a resource is the one that holds.
//! Criticality comes from the resource's `orgsec:criticality` tag, else its account's, else 1.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use time::OffsetDateTime;

use crate::finding::Source;
use crate::score::{Check, ScopeKind, Scoreboard, Weights, clamp_criticality, criticality_from_tags};
use crate::store::{AccountRecord, CheckRow, SnapshotRow, Store, StoreError};

/// The latest scores, shared between whoever computes them (`orgsec serve`'s sync loop) and
/// whoever reads them (the API's PostureService).
#[derive(Debug, Default)]
pub struct Latest {
    /// `None` until the first scoring.
    pub board: Option<Scoreboard>,
    pub computed_at: Option<OffsetDateTime>,
}

/// [`Latest`] behind a lock; cheap to clone.
pub type SharedPosture = Arc<RwLock<Latest>>;

/// Publishes a freshly computed board.
pub fn publish(shared: &SharedPosture, board: Scoreboard, at: OffsetDateTime) {
    let mut latest = shared.write();
    latest.board = Some(board);
    latest.computed_at = Some(at);
}

/// What posture needs of an account.
#[derive(Debug, Clone, Default)]
pub struct AccountInfo {
    pub ou_path: String,
    pub tags: BTreeMap<String, String>,
}

impl From<&AccountRecord> for AccountInfo {
    fn from(a: &AccountRecord) -> AccountInfo {
        AccountInfo { ou_path: a.ou_path.clone().unwrap_or_default(), tags: a.tags.clone() }
    }
}

/// Which of two findings of one check speaks for it: the newer; on a tie, the failing one (a
/// problem is not hidden by a stale pass), then a fixed source order, so the choice never
/// depends on the order rows arrive in.
fn newer(a: &CheckRow, b: &CheckRow) -> bool {
    let rank = |s: Source| Source::ALL.iter().position(|x| *x == s).unwrap_or(0);
    (a.updated_at, a.failing, std::cmp::Reverse(rank(a.source)), &a.resource_id)
        > (b.updated_at, b.failing, std::cmp::Reverse(rank(b.source)), &b.resource_id)
}

/// The checks the rows report, one per check key.
pub fn checks(rows: &[CheckRow], accounts: &HashMap<String, AccountInfo>) -> Vec<Check> {
    let mut best: HashMap<&str, &CheckRow> = HashMap::with_capacity(rows.len());
    for r in rows {
        best.entry(r.check_key.as_str())
            .and_modify(|cur| {
                if newer(r, cur) {
                    *cur = r
                }
            })
            .or_insert(r);
    }
    let none = AccountInfo::default();
    let mut out: Vec<Check> = best
        .into_values()
        .map(|r| {
            let account = accounts.get(&r.account_id).unwrap_or(&none);
            let criticality = match r.criticality {
                Some(c) => clamp_criticality(c),
                None => criticality_from_tags(&BTreeMap::new(), &account.tags),
            };
            Check {
                key: r.check_key.clone(),
                account_id: r.account_id.clone(),
                ou_path: account.ou_path.clone(),
                resource_type: r.resource_type.clone(),
                resource_id: r.resource_id.clone(),
                control: r.control_id.clone(),
                label: r.control_id.clone().or_else(|| r.finding_type.clone()).unwrap_or_else(|| "finding".into()),
                severity: r.severity,
                criticality,
                failing: r.failing,
            }
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The accounts the store knows, by id.
pub async fn account_infos(store: &Store) -> Result<HashMap<String, AccountInfo>, StoreError> {
    Ok(store.accounts().await?.iter().map(|a| (a.account_id.clone(), AccountInfo::from(a))).collect())
}

/// A scoreboard of everything in the store.
pub async fn scoreboard(store: &Store, weights: Weights) -> Result<Scoreboard, StoreError> {
    let accounts = account_infos(store).await?;
    let rows = store.check_rows().await?;
    let mut board = Scoreboard::new(weights);
    for check in checks(&rows, &accounts) {
        board.upsert(check);
    }
    Ok(board)
}

/// The scopes snapshotted for trends: the org, its OUs and accounts, and resource types
/// (resources are too many to keep a history of each).
pub const SNAPSHOT_KINDS: [ScopeKind; 4] = [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account, ScopeKind::ResourceType];

/// Stores the board's scores as one snapshot taken at `now` (Unix milliseconds).
pub async fn snapshot(store: &Store, board: &Scoreboard, now: i64) -> Result<usize, StoreError> {
    let rows: Vec<SnapshotRow> = SNAPSHOT_KINDS
        .iter()
        .flat_map(|&kind| board.scores(kind))
        .map(|s| SnapshotRow {
            taken_at: now,
            scope: s.scope.as_str().to_string(),
            scope_id: s.id.clone(),
            score: s.score,
            total_weight: i64::try_from(s.total_weight).unwrap_or(i64::MAX),
            failing_weight: i64::try_from(s.failing_weight).unwrap_or(i64::MAX),
        })
        .collect();
    store.insert_snapshot(&rows).await?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn row(key: &str, source: Source, failing: bool, updated_at: i64) -> CheckRow {
        CheckRow {
            check_key: key.into(),
            source,
            account_id: "333333333333".into(),
            resource_type: "AwsEc2SecurityGroup".into(),
            resource_id: "sg-1".into(),
            control_id: Some("EC2.13".into()),
            finding_type: None,
            severity: Severity::High,
            criticality: None,
            failing,
            updated_at,
        }
    }

    #[test]
    fn two_sources_of_one_check_make_one_check_and_the_newer_speaks() {
        let accounts = HashMap::from([(
            "333333333333".to_string(),
            AccountInfo {
                ou_path: "Root/Prod".into(),
                tags: BTreeMap::from([("orgsec:criticality".to_string(), "4".to_string())]),
            },
        )]);
        let rows = [row("k", Source::Config, true, 10), row("k", Source::SecurityHub, false, 20)];
        let c = checks(&rows, &accounts);
        assert_eq!(c.len(), 1);
        assert!(!c[0].failing, "the newer pass wins");
        assert_eq!(c[0].criticality, 4.0, "the account's tag");
        assert_eq!(c[0].ou_path, "Root/Prod");
        let rows = [row("k", Source::SecurityHub, false, 10), row("k", Source::Config, true, 10)];
        assert!(checks(&rows, &accounts)[0].failing, "on a tie the failure wins");
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(checks(&rows, &accounts), checks(&reversed, &accounts), "order does not matter");
    }
}
