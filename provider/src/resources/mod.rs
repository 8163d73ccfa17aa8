//! Managed resources, one file each: schema (a description on every attribute), then create, read,
//! update, delete and import, then `find_*` helpers.

pub mod access_analyzer;
pub mod config_recorder;
pub mod config_rule;
pub mod guardduty_detector;
pub mod hub_membership;
pub mod remediation_binding;
pub mod securityhub_account;
pub mod standard;

use std::collections::BTreeSet;

use crate::framework::Resource;
use crate::tfvalue::Value;

/// Every resource the provider offers.
pub fn all() -> Vec<Box<dyn Resource>> {
    vec![
        Box::new(securityhub_account::SecurityHubAccount),
        Box::new(guardduty_detector::GuardDutyDetector),
        Box::new(hub_membership::HubMembership),
        Box::new(access_analyzer::AccessAnalyzer),
        Box::new(config_recorder::ConfigRecorder),
        Box::new(config_rule::ConfigRule),
        Box::new(standard::Standard),
        Box::new(remediation_binding::RemediationBinding),
    ]
}

/// The resource's name from a plan (`name`), or from an imported state that has only `id`; `None`
/// when neither holds a non-empty string.
fn name_or_id(v: &Value) -> Option<String> {
    ["name", "id"]
        .iter()
        .find_map(|attr| v.get_attr(attr).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The known strings of a set or list attribute's value (none when it is null or unknown).
fn string_set(v: &Value) -> BTreeSet<String> {
    v.as_elements().map(|es| es.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}
