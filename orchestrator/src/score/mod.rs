//! Risk scores: a criticality- and severity-weighted pass ratio of checks, per organization, OU,
//! account, resource type and resource; the explanation of every score as a list of
//! contributions; and the improvement potential that ranks what to fix first.
//!
//! The model is written down in `docs/scoring.md`; this module is its only implementation, and
//! its tests reproduce the worked example there.
//!
//! A [`Check`] is one thing evaluated on one resource (a Security Hub control on a bucket, a
//! GuardDuty finding on an instance), counted once however many sources report it: the caller
//! keys it by [`crate::finding::Finding::check_key`]. Its weight is
//! `severity weight x resource criticality`, quantized once to whole milli-points so that every
//! sum is exact integer arithmetic: a score does not depend on the order checks arrived in, and
//! removing a check undoes adding it to the last bit.
//!
//! For a set of checks S, with W the total weight and F the failing weight,
//! `score(S) = 100 x (W - F) / W`, and 100 when W is 0. A [`Scoreboard`] keeps W, F and the
//! failing weight of each control or finding type for every scope, and updates only the scopes
//! a check belongs to when it changes.

mod board;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

pub use board::Scoreboard;

/// The tag, on a resource or else on its account, that sets a resource's criticality.
pub const CRITICALITY_TAG: &str = "orgsec:criticality";

/// The lowest criticality: a resource that matters a little less than most.
pub const MIN_CRITICALITY: f64 = 0.8;

/// The highest criticality: a crown jewel weighs five times an ordinary resource.
pub const MAX_CRITICALITY: f64 = 5.0;

/// The criticality of a resource nobody tagged.
pub const DEFAULT_CRITICALITY: f64 = 1.0;

/// The largest severity or control weight [`Weights`] accepts. With criticality at most 5 a
/// check weighs at most 5,000,000 milli-points, so a u64 sum cannot overflow before the board
/// holds more checks than memory could.
pub const MAX_WEIGHT: f64 = 1000.0;

/// The id of the one [`ScopeKind::Org`] scope.
pub const ORG_ID: &str = "org";

/// One thing evaluated on one resource, counted once even if several sources report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The deduplication key ([`crate::finding::Finding::check_key`]); unique in a
    /// [`Scoreboard`]: upserting a check with a known key replaces the earlier one.
    pub key: String,
    pub account_id: String,
    /// The account's place in the organization, e.g. `Root/Prod/Web`; `""` or `Root` when the
    /// account is directly under the root or its place is unknown.
    pub ou_path: String,
    /// ASFF resource type, e.g. `AwsEc2SecurityGroup`.
    pub resource_type: String,
    /// The resource as Security Hub names it (an ARN, or `AWS::::Account:<id>`).
    pub resource_id: String,
    /// The Security Hub control id (`EC2.13`); `None` for threats and exposures (GuardDuty,
    /// Access Analyzer), which count in scores but are not controls one can prioritize.
    pub control: Option<String>,
    /// What to call the check in explanations: the control id, else the finding type. When
    /// `control` is set the board explains the check under the control id, so the two can never
    /// disagree.
    pub label: String,
    pub severity: Severity,
    /// The resource's criticality (see [`criticality_from_tags`]); clamped to
    /// [[`MIN_CRITICALITY`], [`MAX_CRITICALITY`]] on entry, NaN counts as 1.
    pub criticality: f64,
    /// Whether the check fails now. A threat fails while it is active and passes once it is
    /// archived or resolved.
    pub failing: bool,
}

impl Check {
    /// The name the check is explained under: its control id, else its label.
    pub fn explained_as(&self) -> &str {
        self.control.as_deref().unwrap_or(&self.label)
    }
}

/// Clamps a criticality to [[`MIN_CRITICALITY`], [`MAX_CRITICALITY`]]; NaN becomes
/// [`DEFAULT_CRITICALITY`], so that a bad tag can neither silence nor dominate a score.
pub fn clamp_criticality(criticality: f64) -> f64 {
    if criticality.is_nan() { DEFAULT_CRITICALITY } else { criticality.clamp(MIN_CRITICALITY, MAX_CRITICALITY) }
}

/// A resource's criticality from the [`CRITICALITY_TAG`] tag: the resource's own, else its
/// account's, else [`DEFAULT_CRITICALITY`]; clamped. A value that is not a finite number is
/// ignored as if the tag were absent, so a typo falls back to the account rather than to 1.
pub fn criticality_from_tags(resource_tags: &BTreeMap<String, String>, account_tags: &BTreeMap<String, String>) -> f64 {
    let read = |tags: &BTreeMap<String, String>| {
        tags.get(CRITICALITY_TAG).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
    };
    clamp_criticality(read(resource_tags).or_else(|| read(account_tags)).unwrap_or(DEFAULT_CRITICALITY))
}

/// The OU scopes an account at `ou_path` belongs to: every ancestor OU path, the root itself
/// excluded, outermost first. `Root/Prod/Web` gives `Root/Prod` and `Root/Prod/Web`; `""` and
/// `Root` give none. Empty segments are dropped, and a path that does not start at `Root` is
/// read as starting there (`Prod/Web` is `Root/Prod/Web`), so each OU has one id.
pub fn ou_ancestors(ou_path: &str) -> Vec<String> {
    let mut segments = ou_path.split('/').map(str::trim).filter(|s| !s.is_empty()).peekable();
    if segments.peek() == Some(&"Root") {
        segments.next();
    }
    let mut path = String::from("Root");
    let mut out = Vec::new();
    for segment in segments {
        path.push('/');
        path.push_str(segment);
        out.push(path.clone());
    }
    out
}

/// Why a weight was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// Negative, not a number, or above [`MAX_WEIGHT`]: a negative weight would let a failure
    /// raise a score, and an unbounded one could overflow the sums.
    #[error("the weight of {what} is {value}: use a number from 0 to {MAX_WEIGHT}")]
    OutOfRange { what: String, value: f64 },
}

/// The weight of each severity, and per-control overrides of it.
///
/// An override replaces the severity weight for every check of that control, whatever the
/// severity its findings carry: it is how an organization says "for us, S3.8 is critical" or
/// "IAM.6 does not apply" (weight 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    critical: f64,
    high: f64,
    medium: f64,
    low: f64,
    informational: f64,
    overrides: BTreeMap<String, f64>,
}

impl Default for Weights {
    /// CRITICAL 10, HIGH 7, MEDIUM 4, LOW 1, INFORMATIONAL 0, no overrides.
    fn default() -> Self {
        Weights { critical: 10.0, high: 7.0, medium: 4.0, low: 1.0, informational: 0.0, overrides: BTreeMap::new() }
    }
}

impl Weights {
    fn validate(what: impl FnOnce() -> String, value: f64) -> Result<f64, WeightError> {
        if (0.0..=MAX_WEIGHT).contains(&value) {
            Ok(value)
        } else {
            Err(WeightError::OutOfRange { what: what(), value })
        }
    }

    /// The weight of a severity.
    pub fn severity_weight(&self, severity: Severity) -> f64 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Informational => self.informational,
        }
    }

    /// Sets the weight of a severity.
    pub fn set_severity_weight(&mut self, severity: Severity, weight: f64) -> Result<(), WeightError> {
        let weight = Self::validate(|| format!("severity {severity}"), weight)?;
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Informational => &mut self.informational,
        };
        *slot = weight;
        Ok(())
    }

    /// The override for a control, if one is set.
    pub fn control_weight(&self, control: &str) -> Option<f64> {
        self.overrides.get(control).copied()
    }

    /// Overrides the weight of every check of `control`, whatever its severity.
    pub fn set_control_weight(&mut self, control: impl Into<String>, weight: f64) -> Result<(), WeightError> {
        let control = control.into();
        let weight = Self::validate(|| format!("control {control}"), weight)?;
        self.overrides.insert(control, weight);
        Ok(())
    }

    /// The weight of a check before criticality: the control's override, else its severity's.
    pub fn weight(&self, control: Option<&str>, severity: Severity) -> f64 {
        control.and_then(|c| self.control_weight(c)).unwrap_or_else(|| self.severity_weight(severity))
    }

    /// A check's weight in whole milli-points: `round(weight x clamped criticality x 1000)`.
    /// Computed once, when the check enters a board; every sum after that is an integer sum.
    pub fn quantized(&self, check: &Check) -> u64 {
        let w = self.weight(check.control.as_deref(), check.severity) * clamp_criticality(check.criticality);
        // Both factors are finite and non-negative and bounded, so the cast neither saturates
        // nor loses anything but the rounding asked for.
        (w * 1000.0).round() as u64
    }
}

/// The kinds of scope a score is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeKind {
    /// The whole organization; its one id is [`ORG_ID`].
    Org,
    /// An organizational unit, by path from the root (`Root/Prod/Web`); it holds the checks of
    /// every account in it or in an OU below it.
    Ou,
    /// An account, by id.
    Account,
    /// One ASFF resource type across the organization (`AwsS3Bucket`).
    ResourceType,
    /// One resource, by its id as given (ARNs and `AWS::::Account:<id>` are unique across an
    /// organization, so no prefix is added).
    Resource,
}

impl ScopeKind {
    pub const ALL: [ScopeKind; 5] =
        [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account, ScopeKind::ResourceType, ScopeKind::Resource];

    /// The name used on the CLI, in JSON and in snapshots.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Org => "org",
            ScopeKind::Ou => "ou",
            ScopeKind::Account => "account",
            ScopeKind::ResourceType => "resource-type",
            ScopeKind::Resource => "resource",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeKind> {
        ScopeKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    fn index(self) -> usize {
        match self {
            ScopeKind::Org => 0,
            ScopeKind::Ou => 1,
            ScopeKind::Account => 2,
            ScopeKind::ResourceType => 3,
            ScopeKind::Resource => 4,
        }
    }
}

impl fmt::Display for ScopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scope: a kind and an id within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeRef {
    #[serde(rename = "scope")]
    pub kind: ScopeKind,
    pub id: String,
}

impl ScopeRef {
    /// A scope of `kind`; for [`ScopeKind::Org`] the id is always [`ORG_ID`], whatever is given.
    pub fn new(kind: ScopeKind, id: impl Into<String>) -> ScopeRef {
        match kind {
            ScopeKind::Org => ScopeRef::org(),
            _ => ScopeRef { kind, id: id.into() },
        }
    }

    pub fn org() -> ScopeRef {
        ScopeRef { kind: ScopeKind::Org, id: ORG_ID.to_string() }
    }

    /// An OU by path; the path is normalized as [`ou_ancestors`] does (`Prod/Web` is
    /// `Root/Prod/Web`).
    pub fn ou(path: &str) -> ScopeRef {
        let id = ou_ancestors(path).pop().unwrap_or_else(|| "Root".to_string());
        ScopeRef { kind: ScopeKind::Ou, id }
    }

    pub fn account(id: impl Into<String>) -> ScopeRef {
        ScopeRef { kind: ScopeKind::Account, id: id.into() }
    }

    pub fn resource_type(id: impl Into<String>) -> ScopeRef {
        ScopeRef { kind: ScopeKind::ResourceType, id: id.into() }
    }

    pub fn resource(id: impl Into<String>) -> ScopeRef {
        ScopeRef { kind: ScopeKind::Resource, id: id.into() }
    }
}

impl fmt::Display for ScopeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ScopeKind::Org => f.write_str(ORG_ID),
            k => write!(f, "{k}:{}", self.id),
        }
    }
}

/// The score of one scope, with the exact sums it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub scope: ScopeKind,
    pub id: String,
    /// `100 x (W - F) / W`, 100 when W is 0, rounded to one decimal.
    pub score: f64,
    /// W: the sum of the scope's check weights, in milli-points.
    pub total_weight: u64,
    /// F: the sum of the weights of its failing checks, in milli-points.
    pub failing_weight: u64,
    pub checks: u64,
    pub failing_checks: u64,
}

impl Score {
    /// The score before rounding.
    pub fn exact(&self) -> f64 {
        exact_score(self.total_weight, self.failing_weight)
    }

    /// The scope this score is for.
    pub fn scope_ref(&self) -> ScopeRef {
        ScopeRef { kind: self.scope, id: self.id.clone() }
    }
}

/// What one control or finding type costs a scope's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The control id, or the finding type of a threat or exposure.
    pub label: String,
    /// Whether `label` is a control id.
    pub control: bool,
    /// Points lost: `100 x F_label / W`, rounded to two decimals. Unrounded, the points of a
    /// scope's contributions sum to `100 - score`.
    pub points: f64,
    /// F_label: the failing weight behind the points, in milli-points (exact).
    pub failing_weight: u64,
    pub failing_checks: u64,
    /// Distinct resources with at least one failing check of this label.
    pub failing_resources: u64,
    /// Distinct accounts with at least one failing check of this label.
    pub failing_accounts: u64,
}

/// A control ranked by what fixing it everywhere in a scope would gain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Priority {
    pub control_id: String,
    /// `100 x F_c / W`: the points the scope's score would gain if the control passed
    /// everywhere in it; rounded to two decimals (ranking uses the exact `failing_weight`).
    pub improvement_potential: f64,
    /// F_c, in milli-points.
    pub failing_weight: u64,
    pub failing_checks: u64,
    /// Distinct resources with a failing check of the control.
    pub failing_resources: u64,
    /// Distinct accounts with a failing check of the control.
    pub failing_accounts: u64,
    /// The highest severity among the control's failing checks.
    pub severity: Severity,
}

/// `100 x (W - F) / W`, and 100 for an empty (or weightless) scope.
fn exact_score(total: u64, failing: u64) -> f64 {
    if total == 0 { 100.0 } else { 100.0 * total.saturating_sub(failing) as f64 / total as f64 }
}

/// `100 x part / W`: the points a failing weight costs a scope of total weight W.
fn points(total: u64, part: u64) -> f64 {
    if total == 0 { 0.0 } else { 100.0 * part as f64 / total as f64 }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}
