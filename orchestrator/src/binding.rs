//! Remediation bindings as plain Rust: which findings (controls, finding types) in which scope a
//! playbook remediates, and how (mode); and their validation against the playbook catalogue.
//!
//! Validation reports every problem at once, each with the field it is about, as a path:
//! `playbook`, `controls[2]`, `parameters.min_length`, `scope.accounts[0]`. The Terraform
//! provider turns those paths into attribute paths.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::playbooks::{self, Playbook};

/// What happens when a finding matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Remediate as soon as a matching finding arrives.
    Auto,
    /// Wait for an admin's approval; the default.
    #[default]
    Approve,
    /// Change nothing: send the plan to the notification targets.
    Notify,
    /// Change nothing: record the plan only.
    DryRun,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Auto, Mode::Approve, Mode::Notify, Mode::DryRun];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Approve => "approve",
            Mode::Notify => "notify",
            Mode::DryRun => "dry_run",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a binding applies. An empty list puts no restriction on its dimension, so an empty
/// scope is the whole organization.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// 12-digit account ids.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// OU paths such as `Root/Prod`: accounts at or below them.
    #[serde(default)]
    pub organizational_units: Vec<String>,
    /// Account tags that must all match.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Scope {
    /// Neither accounts nor OUs: every account (tags alone narrow by tag, not by place).
    pub fn is_everywhere(&self) -> bool {
        self.accounts.is_empty() && self.organizational_units.is_empty()
    }

    /// `accounts [..], organizational units [..], tags {..}`, leaving out what is empty.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.accounts.is_empty() {
            parts.push(format!("accounts [{}]", self.accounts.join(", ")));
        }
        if !self.organizational_units.is_empty() {
            parts.push(format!("organizational units [{}]", self.organizational_units.join(", ")));
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("tags {{{}}}", tags.join(", ")));
        }
        if self.is_everywhere() {
            parts.insert(0, "every account in the organization".to_string());
        }
        parts.join(", ")
    }
}

/// A binding's settings: everything a client sets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    pub name: String,
    #[serde(default)]
    pub controls: Vec<String>,
    #[serde(default)]
    pub finding_types: Vec<String>,
    pub playbook: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

impl BindingSpec {
    /// The same binding with its sets sorted and deduplicated, as it is stored.
    pub fn normalized(mut self) -> BindingSpec {
        for list in [
            &mut self.controls,
            &mut self.finding_types,
            &mut self.notify,
            &mut self.scope.accounts,
            &mut self.scope.organizational_units,
        ] {
            list.sort();
            list.dedup();
        }
        self
    }
}

/// A stored binding: its settings and what the orchestrator records about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    #[serde(flatten)]
    pub spec: BindingSpec,
    /// Counts changes, from 1.
    pub revision: i64,
    /// The name of the token (or `cli`) that created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub create_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub update_time: OffsetDateTime,
}

/// What `orgsec bindings put --file` reads: a binding's settings, and optionally the
/// output-only fields `orgsec bindings list --output json` prints, which are ignored, so a
/// listed binding can be edited and put back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingFile {
    pub name: String,
    #[serde(default)]
    pub controls: Vec<String>,
    #[serde(default)]
    pub finding_types: Vec<String>,
    pub playbook: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, rename = "revision")]
    _revision: Option<serde_json::Value>,
    #[serde(default, rename = "created_by")]
    _created_by: Option<serde_json::Value>,
    #[serde(default, rename = "updated_by")]
    _updated_by: Option<serde_json::Value>,
    #[serde(default, rename = "create_time")]
    _create_time: Option<serde_json::Value>,
    #[serde(default, rename = "update_time")]
    _update_time: Option<serde_json::Value>,
}

impl From<BindingFile> for BindingSpec {
    fn from(f: BindingFile) -> BindingSpec {
        BindingSpec {
            name: f.name,
            controls: f.controls,
            finding_types: f.finding_types,
            playbook: f.playbook,
            mode: f.mode,
            scope: f.scope,
            notify: f.notify,
            parameters: f.parameters,
        }
    }
}

/// One problem with a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field, as a path such as `playbook`, `controls[2]` or `parameters.min_length`.
    pub field: String,
    /// What is wrong and what to do.
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Violation {
        Violation { field: field.into(), description: description.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Every violation, `; `-separated.
pub fn describe_violations(violations: &[Violation]) -> String {
    violations.iter().map(Violation::to_string).collect::<Vec<_>>().join("; ")
}

/// 1 to 128 letters, digits, `.`, `_` or `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 12 digits.
pub fn valid_account(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// `Root`, or `Root/` followed by OU names separated by `/`, none empty.
pub fn valid_ou_path(path: &str) -> bool {
    path == "Root" || path.strip_prefix("Root/").is_some_and(|rest| !rest.split('/').any(|s| s.trim().is_empty()))
}

/// Whether OU path `inner` is `outer` or lies below it.
pub fn ou_within(inner: &str, outer: &str) -> bool {
    inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// A Security Hub control id: a service name starting with a letter, a dot, a number.
fn valid_control(id: &str) -> bool {
    id.split_once('.').is_some_and(|(service, n)| {
        service.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && service.chars().all(|c| c.is_ascii_alphanumeric())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Every problem with `b`, checked against the playbook catalogue; empty when it is valid.
pub fn validate(b: &BindingSpec) -> Vec<Violation> {
    let mut out = Vec::new();
    if !valid_name(&b.name) {
        out.push(Violation::new(
            "name",
            format!("\"{}\" is not a valid binding name: use 1 to 128 letters, digits, '.', '_' or '-'", b.name),
        ));
    }
    let playbook = playbooks::find(&b.playbook);
    if playbook.is_none() {
        let what = if b.playbook.is_empty() {
            "no playbook given".to_string()
        } else {
            format!("no playbook named \"{}\"", b.playbook)
        };
        out.push(Violation::new(
            "playbook",
            format!("{what}; known: {} (`orgsec playbooks` describes them)", playbooks::names().join(", ")),
        ));
    }
    if b.controls.is_empty() && b.finding_types.is_empty() {
        out.push(Violation::new(
            "controls",
            "the binding matches nothing: give controls (Security Hub control ids such as \"EC2.13\"), finding_types, or both",
        ));
    }
    for (i, c) in b.controls.iter().enumerate() {
        let field = format!("controls[{i}]");
        if !valid_control(c) {
            out.push(Violation::new(
                field,
                format!("\"{c}\" is not a Security Hub control id: write the service and a number, such as \"EC2.13\""),
            ));
        } else if let Some(p) = playbook
            && !p.fixes_control(c)
        {
            out.push(Violation::new(field, format!("{} does not fix {c}; it fixes {}", p.name, list(p.controls))));
        }
    }
    for (i, t) in b.finding_types.iter().enumerate() {
        let field = format!("finding_types[{i}]");
        if t.trim().is_empty() {
            out.push(Violation::new(field, "a finding type cannot be empty"));
        } else if let Some(p) = playbook
            && !p.handles_type(t)
        {
            out.push(Violation::new(
                field,
                format!("{} does not handle findings of type \"{t}\"; it handles {}", p.name, list(p.finding_types)),
            ));
        }
    }
    if let Some(p) = playbook {
        check_parameters(p, &b.parameters, &mut out);
    }
    check_scope(&b.scope, &mut out);
    for (i, n) in b.notify.iter().enumerate() {
        if !valid_name(n) {
            out.push(Violation::new(
                format!("notify[{i}]"),
                format!("\"{n}\" is not a notification target name: use 1 to 128 letters, digits, '.', '_' or '-'"),
            ));
        }
    }
    out
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}

fn check_parameters(p: &Playbook, given: &BTreeMap<String, String>, out: &mut Vec<Violation>) {
    for param in p.parameters.iter().filter(|x| x.required) {
        if given.get(param.name).is_none_or(|v| v.is_empty()) {
            out.push(Violation::new(
                format!("parameters.{}", param.name),
                format!("{} needs the parameter {}: {}", p.name, param.name, param.description),
            ));
        }
    }
    for (name, value) in given {
        let field = format!("parameters.{name}");
        match p.parameter(name) {
            None => {
                let known: Vec<&str> = p.parameters.iter().map(|x| x.name).collect();
                out.push(Violation::new(
                    field,
                    format!("{} takes no parameter \"{name}\"; it takes {}", p.name, list(&known)),
                ));
            }
            // Empty means the default, for a parameter that is not required.
            Some(param) if value.is_empty() && !param.required => {}
            Some(param) => {
                if let Some(why) = param.kind.check(value) {
                    out.push(Violation::new(field, format!("{why}: {}", param.description)));
                }
            }
        }
    }
}

fn check_scope(s: &Scope, out: &mut Vec<Violation>) {
    for (i, a) in s.accounts.iter().enumerate() {
        if !valid_account(a) {
            out.push(Violation::new(
                format!("scope.accounts[{i}]"),
                format!("\"{a}\" is not an AWS account id (12 digits)"),
            ));
        }
    }
    for (i, ou) in s.organizational_units.iter().enumerate() {
        if !valid_ou_path(ou) {
            out.push(Violation::new(
                format!("scope.organizational_units[{i}]"),
                format!("\"{ou}\" is not an OU path: write the OU names from Root down, as in \"Root/Prod\""),
            ));
        }
    }
    for key in s.tags.keys() {
        if key.trim().is_empty() || key.len() > 128 {
            out.push(Violation::new("scope.tags", format!("\"{key}\" is not a tag key (1 to 128 characters)")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(playbook: &str, controls: &[&str]) -> BindingSpec {
        BindingSpec {
            name: "b".into(),
            controls: controls.iter().map(|c| c.to_string()).collect(),
            playbook: playbook.into(),
            ..Default::default()
        }
    }

    fn fields(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_good_binding_has_no_violations() {
        let mut b = spec("revoke-public-ingress", &["EC2.13", "EC2.19"]);
        b.parameters.insert("ports".into(), "22,3389".into());
        b.scope.accounts.push("333333333333".into());
        b.scope.organizational_units.push("Root/Prod".into());
        b.notify.push("slack".into());
        assert_eq!(validate(&b), []);
        let mut g = spec("isolate-instance", &[]);
        g.finding_types.push("CryptoCurrency:EC2/BitcoinTool.B!DNS".into());
        assert_eq!(validate(&g), []);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut b = spec("set-password-policy", &["IAM.7", "EC2.13", "EC2"]);
        b.name = "has space".into();
        b.finding_types.push("CryptoCurrency:EC2/".into());
        b.parameters.insert("minimum_password_length".into(), "3".into());
        b.parameters.insert("colour".into(), "blue".into());
        b.scope.accounts = vec!["333333333333".into(), "3333".into()];
        b.scope.organizational_units = vec!["Prod".into(), "Root//x".into()];
        b.notify.push("a b".into());
        let v = validate(&b);
        assert_eq!(
            fields(&v),
            [
                "name",
                "controls[1]",
                "controls[2]",
                "finding_types[0]",
                "parameters.colour",
                "parameters.minimum_password_length",
                "scope.accounts[1]",
                "scope.organizational_units[0]",
                "scope.organizational_units[1]",
                "notify[0]",
            ],
            "{v:#?}"
        );
        assert!(v[1].description.contains("set-password-policy does not fix EC2.13"), "{}", v[1]);
        assert!(v[5].description.contains("from 6 to 128"), "{}", v[5]);
    }

    #[test]
    fn an_unknown_playbook_and_an_empty_match_are_named() {
        let v = validate(&spec("revoke-everything", &[]));
        assert_eq!(fields(&v), ["playbook", "controls"]);
        assert!(v[0].description.starts_with("no playbook named \"revoke-everything\"; known: block-public-bucket"));
    }

    #[test]
    fn ou_paths_nest() {
        assert!(valid_ou_path("Root") && valid_ou_path("Root/Prod/Web"));
        assert!(!valid_ou_path("Prod") && !valid_ou_path("Root/") && !valid_ou_path("Root/a//b"));
        assert!(ou_within("Root/Prod/Web", "Root/Prod") && ou_within("Root/Prod", "Root/Prod"));
        assert!(!ou_within("Root/Production", "Root/Prod") && !ou_within("Root", "Root/Prod"));
    }

    #[test]
    fn a_listed_binding_can_be_put_back() {
        let b = Binding {
            spec: spec("enable-guardduty", &["GuardDuty.1"]),
            revision: 3,
            created_by: "cli".into(),
            updated_by: "cli".into(),
            create_time: OffsetDateTime::UNIX_EPOCH,
            update_time: OffsetDateTime::UNIX_EPOCH,
        };
        let json = serde_json::to_string(&b).unwrap();
        let back: BindingSpec = serde_json::from_str::<BindingFile>(&json).unwrap().into();
        assert_eq!(back, b.spec);
        assert!(serde_json::from_str::<BindingFile>(r#"{"name":"x","playbook":"p","contorls":[]}"#).is_err());
    }
}
