//! Findings as OCSF Compliance Findings (class 2003, category 2 "Findings"), for auditors'
//! tools that read OCSF rather than ASFF.

use serde_json::{Value, json};

use crate::finding::{Compliance, Finding, Severity, Workflow};

/// The OCSF schema version the records follow.
pub const VERSION: &str = "1.1.0";
const CLASS_UID: u32 = 2003;

fn severity_id(s: Severity) -> u32 {
    match s {
        Severity::Informational => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF's finding status: New, In Progress, Suppressed, Resolved.
fn status(w: Workflow) -> (u32, &'static str) {
    match w {
        Workflow::New => (1, "New"),
        Workflow::Notified => (2, "In Progress"),
        Workflow::Suppressed => (3, "Suppressed"),
        Workflow::Resolved => (4, "Resolved"),
    }
}

/// OCSF's compliance status: Pass, Warning, Fail, or Unknown.
fn compliance_status(c: Option<Compliance>) -> (u32, &'static str) {
    match c {
        Some(Compliance::Passed) => (1, "Pass"),
        Some(Compliance::Warning) => (2, "Warning"),
        Some(Compliance::Failed) => (3, "Fail"),
        Some(Compliance::NotAvailable) | None => (0, "Unknown"),
    }
}

/// `f` as an OCSF Compliance Finding of `framework`, with the control's `requirements` (`;`
/// separated, possibly empty).
pub fn compliance_finding(f: &Finding, framework: &str, requirements: &str) -> Value {
    let activity_id = if f.updated_at > f.created_at { 2 } else { 1 };
    let (status_id, status_name) = status(f.workflow_status);
    let (compliance_id, compliance_name) = compliance_status(f.compliance_status);
    let requirements: Vec<&str> = requirements.split(';').filter(|r| !r.is_empty()).collect();
    json!({
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "type_uid": CLASS_UID * 100 + activity_id,
        "time": f.updated_at,
        "severity_id": severity_id(f.severity),
        "severity": f.severity.as_str(),
        "status_id": status_id,
        "status": status_name,
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "created_time": f.created_at,
            "modified_time": f.updated_at,
            "types": f.finding_type.iter().collect::<Vec<_>>(),
            "product_uid": f.product_arn,
        },
        "compliance": {
            "control": f.control_id,
            "standards": [framework],
            "requirements": requirements,
            "status_id": compliance_id,
            "status": compliance_name,
        },
        "cloud": {
            "provider": "AWS",
            "region": f.region,
            "account": {"uid": f.account_id, "type": "AWS Account", "type_id": 10},
        },
        "resources": [{"uid": f.resource_id, "type": f.resource_type, "region": f.region}],
        "metadata": {
            "version": VERSION,
            "uid": f.uid,
            "product": {"name": "orgsec", "vendor_name": "orgsec", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {"source": f.source.as_str(), "check_key": f.check_key, "active": f.active},
    })
}
