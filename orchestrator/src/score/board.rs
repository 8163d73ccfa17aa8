//! The [`Scoreboard`]: every check, and running sums for every scope, updated incrementally.
//!
//! Scopes, and the names checks are explained under, are interned into slots so that the
//! per-check and per-scope bookkeeping is made of small integers rather than strings. What
//! the board keeps, for every scope:
//!
//! - W, F and the check counts ([`Sums`]);
//! - per label (control id or finding type) with failing checks in the scope: the failing
//!   weight, the failing check count, how many failing checks of each severity, and how many
//!   distinct resources and accounts fail it ([`LabelState`]);
//!
//! and, board-wide, a counter of failing checks per (scope, label, resource) and per
//! (scope, label, account), so that a resource with two failing checks of one control counts
//! once and stops counting only when both pass.
//!
//! A change touches only the scopes of the check (before and after, if it moved): hash map
//! operations per scope, with no scan of the other checks. Outputs never depend on slot numbers
//! or hash order: every list is sorted by names and exact integer sums.

use std::collections::{BTreeSet, HashMap};

use super::{
    Check, Contribution, ORG_ID, Priority, ScopeKind, ScopeRef, Score, Weights, exact_score, ou_ancestors, points,
    round_to,
};
use crate::finding::Severity;

/// The slot of the organization scope, which always exists.
const ORG: usize = 0;

/// A scope's exact sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums {
    /// W, in milli-points.
    total: u64,
    /// F, in milli-points.
    failing: u64,
    checks: u64,
    failing_checks: u64,
}

/// The failing checks of one label in one scope.
#[derive(Debug, Clone, Default)]
struct LabelState {
    failing_weight: u64,
    failing_checks: u64,
    failing_resources: u64,
    failing_accounts: u64,
    /// Failing checks per severity (indexed by [`severity_index`]), so that the highest
    /// severity still failing is known after any removal.
    by_severity: [u64; 5],
}

impl LabelState {
    fn highest_severity(&self) -> Severity {
        Severity::ALL
            .into_iter()
            .rev()
            .find(|s| self.by_severity[severity_index(*s)] > 0)
            .unwrap_or(Severity::Informational)
    }
}

#[derive(Debug, Clone)]
struct ScopeSlot {
    kind: ScopeKind,
    id: Box<str>,
    sums: Sums,
    /// Only labels with at least one failing check in this scope.
    labels: HashMap<usize, LabelState>,
}

#[derive(Debug, Clone)]
struct LabelSlot {
    name: Box<str>,
    control: bool,
    /// Checks on the board explained under this label.
    refs: u64,
}

/// A check as the board keeps it: its scope slots, label slot and quantized weight.
#[derive(Debug, Clone)]
struct Stored {
    ous: Box<[usize]>,
    account: usize,
    resource_type: usize,
    resource: usize,
    label: usize,
    severity: Severity,
    /// The check's weight in milli-points, fixed when it entered.
    weight: u64,
    failing: bool,
}

impl Stored {
    /// Every scope the check belongs to; no slot appears twice.
    fn scopes(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(ORG).chain(self.ous.iter().copied()).chain([self.account, self.resource_type, self.resource])
    }
}

/// A vector of reusable slots.
#[derive(Debug, Clone)]
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(value);
                }
                i
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) -> Option<T> {
        let value = self.slots.get_mut(i)?.take();
        if value.is_some() {
            self.free.push(i);
        }
        value
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i)?.as_ref()
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i)?.as_mut()
    }
}

/// Every check of an organization and the scores they make, kept up to date one check at a
/// time.
///
/// `upsert` and `remove` cost a few hash map operations per scope of the check (the org, its
/// OUs, its account, resource type and resource); reads of one score are a lookup, and
/// explanations and priorities sort only the labels failing in that scope.
#[derive(Debug, Clone)]
pub struct Scoreboard {
    weights: Weights,
    checks: HashMap<Box<str>, Stored>,
    scopes: Slab<ScopeSlot>,
    /// Scope slots by id, one map per [`ScopeKind`] (the org's map is unused: it is [`ORG`]).
    scope_index: [HashMap<Box<str>, usize>; 5],
    labels: Slab<LabelSlot>,
    /// Label slots by name: `[finding types, control ids]`.
    label_index: [HashMap<Box<str>, usize>; 2],
    /// Failing checks per (scope, label, resource slot).
    failing_by_resource: HashMap<(usize, usize, usize), u64>,
    /// Failing checks per (scope, label, account slot).
    failing_by_account: HashMap<(usize, usize, usize), u64>,
}

impl Default for Scoreboard {
    fn default() -> Self {
        Scoreboard::new(Weights::default())
    }
}

impl Scoreboard {
    /// An empty board weighing checks with `weights`. Weights are fixed for the board's life:
    /// to apply new ones, build a new board from the checks.
    pub fn new(weights: Weights) -> Scoreboard {
        let mut scopes = Slab::default();
        scopes.insert(ScopeSlot {
            kind: ScopeKind::Org,
            id: ORG_ID.into(),
            sums: Sums::default(),
            labels: HashMap::new(),
        });
        Scoreboard {
            weights,
            checks: HashMap::new(),
            scopes,
            scope_index: Default::default(),
            labels: Slab::default(),
            label_index: Default::default(),
            failing_by_resource: HashMap::new(),
            failing_by_account: HashMap::new(),
        }
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The number of checks on the board.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.checks.contains_key(key)
    }

    /// Adds a check, or replaces the check with the same key (its failing flag, severity,
    /// criticality, or even its account or resource may have changed).
    ///
    /// Returns the scopes whose score changed, sorted: a scope changed when its exact score is
    /// different, or when it appeared (its first check) or disappeared (its last check left).
    /// Upserting a check exactly as the board has it changes nothing and returns no scope.
    pub fn upsert(&mut self, check: Check) -> Vec<ScopeRef> {
        let weight = self.weights.quantized(&check);
        let ous = ou_ancestors(&check.ou_path);
        if let Some(old) = self.checks.get(check.key.as_str())
            && self.is_same(old, &check, &ous, weight)
        {
            return Vec::new();
        }
        let mut affected: BTreeSet<ScopeRef> = BTreeSet::new();
        if let Some(old) = self.checks.get(check.key.as_str()) {
            affected.extend(old.scopes().filter_map(|s| self.scope_ref(s)));
        }
        affected.insert(ScopeRef::org());
        affected.extend(ous.iter().map(|p| ScopeRef { kind: ScopeKind::Ou, id: p.clone() }));
        affected.insert(ScopeRef::account(check.account_id.as_str()));
        affected.insert(ScopeRef::resource_type(check.resource_type.as_str()));
        affected.insert(ScopeRef::resource(check.resource_id.as_str()));
        let before: Vec<Option<Sums>> = affected.iter().map(|s| self.sums_of(s)).collect();

        self.retract(&check.key);
        self.insert(check, &ous, weight);

        affected.into_iter().zip(before).filter(|(s, b)| score_changed(*b, self.sums_of(s))).map(|(s, _)| s).collect()
    }

    /// Removes the check with this key, if there is one. Returns the scopes whose score
    /// changed, as [`Scoreboard::upsert`] does; none when the key is unknown.
    pub fn remove(&mut self, key: &str) -> Vec<ScopeRef> {
        let Some(old) = self.checks.get(key) else {
            return Vec::new();
        };
        let affected: Vec<ScopeRef> = old.scopes().filter_map(|s| self.scope_ref(s)).collect();
        let before: Vec<Option<Sums>> = affected.iter().map(|s| self.sums_of(s)).collect();
        self.retract(key);
        let mut changed: Vec<ScopeRef> = affected
            .into_iter()
            .zip(before)
            .filter(|(s, b)| score_changed(*b, self.sums_of(s)))
            .map(|(s, _)| s)
            .collect();
        changed.sort();
        changed
    }

    /// The score of a scope. A scope with no checks (or only weightless ones) scores 100.
    pub fn score(&self, scope: &ScopeRef) -> Score {
        let sums = self.sums_of(scope).unwrap_or_default();
        let id = if scope.kind == ScopeKind::Org { ORG_ID.to_string() } else { scope.id.clone() };
        make_score(scope.kind, id, sums)
    }

    /// The scores of every scope of a kind that has checks, sorted by id. The org always has
    /// one, even when the board is empty.
    pub fn scores(&self, kind: ScopeKind) -> Vec<Score> {
        if kind == ScopeKind::Org {
            return vec![self.score(&ScopeRef::org())];
        }
        let mut out: Vec<Score> = self.scope_index[kind.index()]
            .values()
            .filter_map(|&s| self.scopes.get(s))
            .map(|slot| make_score(kind, slot.id.to_string(), slot.sums))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// What each failing control or finding type costs a scope: points lost, largest first
    /// (ties by label). The unrounded points sum to `100 - score`.
    pub fn explain(&self, scope: &ScopeRef) -> Vec<Contribution> {
        let Some(slot) = self.slot_of(scope) else {
            return Vec::new();
        };
        let mut rows: Vec<(&LabelSlot, &LabelState)> =
            slot.labels.iter().filter_map(|(&l, state)| Some((self.labels.get(l)?, state))).collect();
        rows.sort_by(|(la, a), (lb, b)| {
            b.failing_weight
                .cmp(&a.failing_weight)
                .then_with(|| la.name.cmp(&lb.name))
                .then(la.control.cmp(&lb.control))
        });
        rows.into_iter()
            .map(|(label, state)| Contribution {
                label: label.name.to_string(),
                control: label.control,
                points: round_to(points(slot.sums.total, state.failing_weight), 2),
                failing_weight: state.failing_weight,
                failing_checks: state.failing_checks,
                failing_resources: state.failing_resources,
                failing_accounts: state.failing_accounts,
            })
            .collect()
    }

    /// The controls failing in a scope, ranked by improvement potential (the exact failing
    /// weight, largest first; ties by control id); at most `limit` of them. Threats and
    /// exposures count in scores but are not listed: there is no control to fix.
    pub fn priorities(&self, scope: &ScopeRef, limit: usize) -> Vec<Priority> {
        let Some(slot) = self.slot_of(scope) else {
            return Vec::new();
        };
        let mut rows: Vec<(&LabelSlot, &LabelState)> = slot
            .labels
            .iter()
            .filter_map(|(&l, state)| Some((self.labels.get(l)?, state)))
            .filter(|(label, _)| label.control)
            .collect();
        rows.sort_by(|(la, a), (lb, b)| b.failing_weight.cmp(&a.failing_weight).then_with(|| la.name.cmp(&lb.name)));
        rows.truncate(limit);
        rows.into_iter()
            .map(|(label, state)| Priority {
                control_id: label.name.to_string(),
                improvement_potential: round_to(points(slot.sums.total, state.failing_weight), 2),
                failing_weight: state.failing_weight,
                failing_checks: state.failing_checks,
                failing_resources: state.failing_resources,
                failing_accounts: state.failing_accounts,
                severity: state.highest_severity(),
            })
            .collect()
    }

    fn slot_of(&self, scope: &ScopeRef) -> Option<&ScopeSlot> {
        let i = match scope.kind {
            ScopeKind::Org => ORG,
            kind => *self.scope_index[kind.index()].get(scope.id.as_str())?,
        };
        self.scopes.get(i)
    }

    /// A scope's sums, or `None` when it has no checks (the org always has sums).
    fn sums_of(&self, scope: &ScopeRef) -> Option<Sums> {
        self.slot_of(scope).map(|s| s.sums)
    }

    fn scope_ref(&self, slot: usize) -> Option<ScopeRef> {
        self.scopes.get(slot).map(|s| ScopeRef { kind: s.kind, id: s.id.to_string() })
    }

    fn scope_id(&self, slot: usize) -> &str {
        self.scopes.get(slot).map_or("", |s| &s.id)
    }

    /// Whether `check` is what the board already holds as `old`: same scopes, same label,
    /// same weight, same severity, same state.
    fn is_same(&self, old: &Stored, check: &Check, ous: &[String], weight: u64) -> bool {
        let label_same = self
            .labels
            .get(old.label)
            .is_some_and(|l| l.control == check.control.is_some() && *l.name == *check.explained_as());
        old.weight == weight
            && old.failing == check.failing
            && old.severity == check.severity
            && label_same
            && self.scope_id(old.account) == check.account_id
            && self.scope_id(old.resource_type) == check.resource_type
            && self.scope_id(old.resource) == check.resource_id
            && old.ous.len() == ous.len()
            && old.ous.iter().zip(ous).all(|(&s, p)| self.scope_id(s) == p)
    }

    fn insert(&mut self, check: Check, ous: &[String], weight: u64) {
        let label = self.acquire_label(check.explained_as(), check.control.is_some());
        let stored = Stored {
            ous: ous.iter().map(|p| self.acquire_scope(ScopeKind::Ou, p)).collect(),
            account: self.acquire_scope(ScopeKind::Account, &check.account_id),
            resource_type: self.acquire_scope(ScopeKind::ResourceType, &check.resource_type),
            resource: self.acquire_scope(ScopeKind::Resource, &check.resource_id),
            label,
            severity: check.severity,
            weight,
            failing: check.failing,
        };
        for scope in stored.scopes() {
            self.add(scope, &stored);
        }
        self.checks.insert(check.key.into_boxed_str(), stored);
    }

    /// Takes a check's contributions out of every scope it belongs to, then frees the scopes
    /// and the label it leaves empty.
    fn retract(&mut self, key: &str) {
        let Some(stored) = self.checks.remove(key) else {
            return;
        };
        for scope in stored.scopes() {
            self.subtract(scope, &stored);
        }
        for scope in stored.scopes() {
            self.release_scope(scope);
        }
        self.release_label(stored.label);
    }

    fn add(&mut self, scope: usize, check: &Stored) {
        let Some(slot) = self.scopes.get_mut(scope) else {
            return;
        };
        slot.sums.total += check.weight;
        slot.sums.checks += 1;
        if !check.failing {
            return;
        }
        slot.sums.failing += check.weight;
        slot.sums.failing_checks += 1;
        let state = slot.labels.entry(check.label).or_default();
        state.failing_weight += check.weight;
        state.failing_checks += 1;
        state.by_severity[severity_index(check.severity)] += 1;
        let n = self.failing_by_resource.entry((scope, check.label, check.resource)).or_insert(0);
        if *n == 0 {
            state.failing_resources += 1;
        }
        *n += 1;
        let n = self.failing_by_account.entry((scope, check.label, check.account)).or_insert(0);
        if *n == 0 {
            state.failing_accounts += 1;
        }
        *n += 1;
    }

    fn subtract(&mut self, scope: usize, check: &Stored) {
        let Some(slot) = self.scopes.get_mut(scope) else {
            return;
        };
        slot.sums.total = slot.sums.total.saturating_sub(check.weight);
        slot.sums.checks = slot.sums.checks.saturating_sub(1);
        if !check.failing {
            return;
        }
        slot.sums.failing = slot.sums.failing.saturating_sub(check.weight);
        slot.sums.failing_checks = slot.sums.failing_checks.saturating_sub(1);
        let Some(state) = slot.labels.get_mut(&check.label) else {
            return;
        };
        state.failing_weight = state.failing_weight.saturating_sub(check.weight);
        state.failing_checks = state.failing_checks.saturating_sub(1);
        let sev = &mut state.by_severity[severity_index(check.severity)];
        *sev = sev.saturating_sub(1);
        if decrement(&mut self.failing_by_resource, (scope, check.label, check.resource)) {
            state.failing_resources = state.failing_resources.saturating_sub(1);
        }
        if decrement(&mut self.failing_by_account, (scope, check.label, check.account)) {
            state.failing_accounts = state.failing_accounts.saturating_sub(1);
        }
        if state.failing_checks == 0 {
            slot.labels.remove(&check.label);
        }
    }

    fn acquire_scope(&mut self, kind: ScopeKind, id: &str) -> usize {
        if let Some(&slot) = self.scope_index[kind.index()].get(id) {
            return slot;
        }
        let slot = self.scopes.insert(ScopeSlot { kind, id: id.into(), sums: Sums::default(), labels: HashMap::new() });
        self.scope_index[kind.index()].insert(id.into(), slot);
        slot
    }

    /// Frees a scope no check belongs to any more, so that it stops being listed (the org
    /// stays).
    fn release_scope(&mut self, slot: usize) {
        if slot == ORG || self.scopes.get(slot).is_none_or(|s| s.sums.checks > 0) {
            return;
        }
        if let Some(s) = self.scopes.remove(slot) {
            self.scope_index[s.kind.index()].remove(&s.id);
        }
    }

    fn acquire_label(&mut self, name: &str, control: bool) -> usize {
        let index = &mut self.label_index[usize::from(control)];
        if let Some(&slot) = index.get(name) {
            if let Some(l) = self.labels.get_mut(slot) {
                l.refs += 1;
            }
            return slot;
        }
        let slot = self.labels.insert(LabelSlot { name: name.into(), control, refs: 1 });
        index.insert(name.into(), slot);
        slot
    }

    fn release_label(&mut self, slot: usize) {
        let Some(label) = self.labels.get_mut(slot) else {
            return;
        };
        label.refs = label.refs.saturating_sub(1);
        if label.refs == 0
            && let Some(l) = self.labels.remove(slot)
        {
            self.label_index[usize::from(l.control)].remove(&l.name);
        }
    }
}

/// Decrements a counter, dropping it at zero; true when it reached zero.
fn decrement(counters: &mut HashMap<(usize, usize, usize), u64>, key: (usize, usize, usize)) -> bool {
    let Some(n) = counters.get_mut(&key) else {
        return false;
    };
    *n = n.saturating_sub(1);
    if *n == 0 {
        counters.remove(&key);
        true
    } else {
        false
    }
}

fn severity_index(severity: Severity) -> usize {
    match severity {
        Severity::Informational => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

fn make_score(kind: ScopeKind, id: String, sums: Sums) -> Score {
    Score {
        scope: kind,
        id,
        score: round_to(exact_score(sums.total, sums.failing), 1),
        total_weight: sums.total,
        failing_weight: sums.failing,
        checks: sums.checks,
        failing_checks: sums.failing_checks,
    }
}

/// Whether a scope's score differs between two states (`None`: the scope has no checks). Exact:
/// compares `(W - F) / W` as fractions, with an empty or weightless scope at 1.
fn score_changed(before: Option<Sums>, after: Option<Sums>) -> bool {
    match (before, after) {
        (None, None) => false,
        (Some(_), None) | (None, Some(_)) => true,
        (Some(a), Some(b)) => {
            let ratio = |s: Sums| {
                if s.total == 0 {
                    (1u128, 1u128)
                } else {
                    (u128::from(s.total - s.failing.min(s.total)), u128::from(s.total))
                }
            };
            let ((na, da), (nb, db)) = (ratio(a), ratio(b));
            na * db != nb * da
        }
    }
}
