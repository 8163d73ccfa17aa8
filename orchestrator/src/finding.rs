//! The Finding model: one shape for what Security Hub, GuardDuty, Config and Access Analyzer
//! report, so that the store, scoring, remediation and evidence never look at a source's own
//! format. The source's document is kept verbatim in [`Finding::raw`] for evidence.
//!
//! Two sources often report the same failed check: Security Hub's control finding and the Config
//! rule behind it, or a GuardDuty finding and its copy imported into Security Hub. Such findings
//! share a [`Finding::check_key`]; each is stored (the evidence keeps both) and scoring counts
//! the check once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    #[serde(rename = "securityhub")]
    SecurityHub,
    #[serde(rename = "guardduty")]
    GuardDuty,
    Config,
    AccessAnalyzer,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::SecurityHub, Source::GuardDuty, Source::Config, Source::AccessAnalyzer];

    /// The name used on the CLI, in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SecurityHub => "securityhub",
            Source::GuardDuty => "guardduty",
            Source::Config => "config",
            Source::AccessAnalyzer => "access-analyzer",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding's severity label, as ASFF spells it; ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Informational, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }

    /// GuardDuty's numeric severity (0.1-10) as a label: 9+ critical, 7+ high, 4+ medium.
    pub fn from_guardduty(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Security Hub's workflow status of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Workflow {
    New,
    Notified,
    Resolved,
    Suppressed,
}

impl Workflow {
    pub const ALL: [Workflow; 4] = [Workflow::New, Workflow::Notified, Workflow::Resolved, Workflow::Suppressed];

    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::New => "NEW",
            Workflow::Notified => "NOTIFIED",
            Workflow::Resolved => "RESOLVED",
            Workflow::Suppressed => "SUPPRESSED",
        }
    }

    pub fn parse(s: &str) -> Option<Workflow> {
        Workflow::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// The compliance status of a check (control findings and Config evaluations only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compliance {
    Passed,
    Warning,
    Failed,
    NotAvailable,
}

impl Compliance {
    pub const ALL: [Compliance; 4] =
        [Compliance::Passed, Compliance::Warning, Compliance::Failed, Compliance::NotAvailable];

    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Passed => "PASSED",
            Compliance::Warning => "WARNING",
            Compliance::Failed => "FAILED",
            Compliance::NotAvailable => "NOT_AVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Compliance> {
        Compliance::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// One finding from any source, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Unique across sources: `source|product_arn|id`.
    pub uid: String,
    pub source: Source,
    /// Security Hub's product ARN; for a finding read from GuardDuty, Config or Access Analyzer
    /// directly, the ARN of what produced it (detector, rule, analyzer).
    pub product_arn: String,
    /// The finding's id at its source.
    pub id: String,
    pub account_id: String,
    pub region: String,
    /// ASFF resource type (`AwsEc2SecurityGroup`, `AwsS3Bucket`, `AwsAccount`, ...).
    pub resource_type: String,
    /// The resource as Security Hub names it (an ARN, or `AWS::::Account:<id>`).
    pub resource_id: String,
    pub resource_tags: BTreeMap<String, String>,
    /// The Security Hub control id (`EC2.13`) when the finding is a control check.
    pub control_id: Option<String>,
    /// The finding type (GuardDuty's `CryptoCurrency:EC2/BitcoinTool.B!DNS`, ASFF Types[0]).
    pub finding_type: Option<String>,
    pub title: String,
    pub severity: Severity,
    pub workflow_status: Workflow,
    pub compliance_status: Option<Compliance>,
    /// Whether the source still considers the finding live (ASFF RecordState ACTIVE, GuardDuty
    /// not archived, Access Analyzer ACTIVE).
    pub active: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// What the finding checks, the same for every source reporting the same check.
    pub check_key: String,
    /// The source's document, verbatim JSON.
    pub raw: String,
}

impl Finding {
    /// The unique key of a finding from `source`.
    pub fn uid_of(source: Source, product_arn: &str, id: &str) -> String {
        format!("{}|{product_arn}|{id}", source.as_str())
    }

    /// Whether the finding reports a live problem: active, not resolved or suppressed, and
    /// failing its check (a threat or exposure, which has no compliance status, is a problem
    /// while it is active).
    pub fn is_failing(&self) -> bool {
        self.active
            && !matches!(self.workflow_status, Workflow::Resolved | Workflow::Suppressed)
            && match self.compliance_status {
                None => true,
                Some(c) => matches!(c, Compliance::Failed | Compliance::Warning),
            }
    }
}

/// The check key of a control check on a resource.
pub fn control_check_key(account: &str, region: &str, control: &str, resource_id: &str) -> String {
    format!("control|{account}|{region}|{control}|{resource_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for w in Workflow::ALL {
            assert_eq!(Workflow::parse(w.as_str()), Some(w));
        }
        for c in Compliance::ALL {
            assert_eq!(Compliance::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }

    #[test]
    fn guardduty_severity_bands() {
        assert_eq!(Severity::from_guardduty(8.0), Severity::High);
        assert_eq!(Severity::from_guardduty(9.5), Severity::Critical);
        assert_eq!(Severity::from_guardduty(5.0), Severity::Medium);
        assert_eq!(Severity::from_guardduty(2.0), Severity::Low);
    }
}
