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

use crate::framework::Resource;

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
