//! What the CLI prints: tables for people, JSON (`--output json`) for programs. Pure functions
//! from values to text, so they are tested without running a command.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::{Value, json};

use crate::binding::Binding;
use crate::collect::SyncReport;
use crate::finding::Finding;
use crate::jobs::Job;
use crate::playbooks::{ParamKind, Playbook};
use crate::score::{Contribution, Priority, Score};

/// Columns a table fills when stdout is not a terminal.
const WIDTH_WITHOUT_TERMINAL: u16 = 140;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header);
    // Not a terminal (a pipe, a file): wrap as if it were a wide one.
    if t.width().is_none() {
        t.set_width(WIDTH_WITHOUT_TERMINAL);
    }
    t
}

fn or_dash(items: &[String]) -> String {
    if items.is_empty() { "-".to_string() } else { items.join("\n") }
}

/// Bindings as a table.
pub fn bindings_table(bindings: &[Binding]) -> String {
    let mut t = table(&["NAME", "PLAYBOOK", "MODE", "MATCHES", "SCOPE", "PARAMETERS", "REVISION"]);
    for b in bindings {
        let s = &b.spec;
        let matches: Vec<String> = s.controls.iter().chain(&s.finding_types).cloned().collect();
        let scope = if s.scope.is_everywhere() && s.scope.tags.is_empty() {
            "everywhere".to_string()
        } else {
            s.scope.describe()
        };
        let params: Vec<String> = s.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.add_row(vec![
            s.name.clone(),
            s.playbook.clone(),
            s.mode.to_string(),
            or_dash(&matches),
            scope,
            or_dash(&params),
            b.revision.to_string(),
        ]);
    }
    t.to_string()
}

/// Bindings as a JSON array.
pub fn bindings_json(bindings: &[Binding]) -> String {
    serde_json::to_string_pretty(bindings).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Remediation jobs as a table: what each did or waits for, with the plan's summary.
pub fn jobs_table(jobs: &[Job]) -> String {
    let mut t = table(&["ID", "STATE", "PLAYBOOK", "BINDING", "ACCOUNT", "PLAN", "ERROR", "UPDATED"]);
    for j in jobs {
        let summary = j
            .plan
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p["summary"].as_str().map(str::to_string))
            .unwrap_or_else(|| "-".to_string());
        let updated = rfc3339(j.updated_at);
        t.add_row(vec![
            j.id.clone(),
            j.state.to_string(),
            j.playbook.clone(),
            j.binding.clone(),
            j.account_id.clone(),
            summary,
            j.error.clone().unwrap_or_else(|| "-".to_string()),
            updated,
        ]);
    }
    t.to_string()
}

/// The demo's remediations.
pub fn demo_remediations_table(rs: &[crate::demo::Remediation]) -> String {
    let mut t = table(&["PLAYBOOK", "MODE", "ACCOUNT", "STATE", "APPROVED BY", "WHAT CHANGED"]);
    for r in rs {
        let what =
            if r.changes.is_empty() { r.error.clone().unwrap_or_else(|| "-".into()) } else { r.changes.join("; ") };
        t.add_row(vec![
            r.playbook.clone(),
            r.mode.clone(),
            r.account_id.clone(),
            r.state.clone(),
            r.approved_by.clone().unwrap_or_else(|| "-".into()),
            what,
        ]);
    }
    t.to_string()
}

/// The demo's scores before and after, the organization first.
pub fn demo_scores_table(r: &crate::demo::Report) -> String {
    let mut t = table(&["SCOPE", "ID", "NAME", "BEFORE", "AFTER", "CHANGE"]);
    t.add_row(vec![
        "org".into(),
        "org".into(),
        "-".into(),
        format!("{:.1}", r.before.org_score),
        format!("{:.1}", r.after.org_score),
        format!("{:+.1}", r.after.org_score - r.before.org_score),
    ]);
    for a in &r.accounts {
        t.add_row(vec![
            "account".into(),
            a.account_id.clone(),
            a.name.clone(),
            format!("{:.1}", a.before),
            format!("{:.1}", a.after),
            format!("{:+.1}", a.after - a.before),
        ]);
    }
    t.to_string()
}

/// The monitor's change log as a table, newest first.
pub fn changes_table(
    changes: &[crate::monitor::Change],
    since_assessment: (Option<time::OffsetDateTime>, u64),
) -> String {
    let mut t = table(&["AT", "KIND", "ACCOUNT", "REGION", "SUBJECT", "DETAIL"]);
    for c in changes {
        t.add_row(vec![
            rfc3339(c.at),
            c.kind.as_str().to_string(),
            c.account_id.clone().unwrap_or_else(|| "-".to_string()),
            c.region.clone().unwrap_or_else(|| "-".to_string()),
            c.subject.clone(),
            c.detail.clone(),
        ]);
    }
    let (last, n) = since_assessment;
    let last = last.map_or_else(|| "never".to_string(), rfc3339);
    format!("{t}\n{n} changes since the last full assessment ({last})")
}

/// The change log as JSON: the changes and the count since the last full assessment.
pub fn changes_json(
    changes: &[crate::monitor::Change],
    since_assessment: (Option<time::OffsetDateTime>, u64),
) -> String {
    let (last, n) = since_assessment;
    let v = serde_json::json!({
        "changes": changes,
        "since_last_assessment": n,
        "last_assessment": last.map(rfc3339),
    });
    serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A time as RFC 3339 (its Unix seconds if it cannot be).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Remediation jobs as a JSON array.
pub fn jobs_json(jobs: &[Job]) -> String {
    serde_json::to_string_pretty(jobs).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn kind(k: ParamKind) -> String {
    match k {
        ParamKind::Text => "text".into(),
        ParamKind::Bool => "bool".into(),
        ParamKind::Integer { min, max } => format!("integer {min}..{max}"),
        ParamKind::OneOf(words) => format!("one of {}", words.join(", ")),
        ParamKind::Ports => "ports".into(),
    }
}

/// The catalogue as a table.
pub fn playbooks_table(playbooks: &[Playbook]) -> String {
    let mut t = table(&["NAME", "FIXES", "PARAMETERS (DEFAULT)", "DESCRIPTION"]);
    for p in playbooks {
        let fixes: Vec<String> = p.controls.iter().chain(p.finding_types).map(|s| (*s).to_string()).collect();
        let params: Vec<String> = p
            .parameters
            .iter()
            .map(|x| match (x.required, x.default) {
                (true, _) => format!("{} (required)", x.name),
                (false, "") => x.name.to_string(),
                (false, d) => format!("{} ({d})", x.name),
            })
            .collect();
        t.add_row(vec![p.name.to_string(), or_dash(&fixes), or_dash(&params), p.description.to_string()]);
    }
    t.to_string()
}

/// One playbook as JSON.
pub fn playbook_value(p: &Playbook) -> Value {
    json!({
        "name": p.name,
        "description": p.description,
        "controls": p.controls,
        "finding_types": p.finding_types,
        "parameters": p.parameters.iter().map(|x| json!({
            "name": x.name,
            "description": x.description,
            "required": x.required,
            "default": x.default,
            "kind": kind(x.kind),
        })).collect::<Vec<_>>(),
        "permissions": p.permissions,
    })
}

/// The catalogue as a JSON array.
pub fn playbooks_json(playbooks: &[Playbook]) -> String {
    let all: Vec<Value> = playbooks.iter().map(playbook_value).collect();
    serde_json::to_string_pretty(&all).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Findings as a table (the raw documents left out).
pub fn findings_table(findings: &[Finding]) -> String {
    let mut t = table(&["SOURCE", "ACCOUNT", "REGION", "SEVERITY", "CONTROL/TYPE", "STATUS", "RESOURCE", "TITLE"]);
    for f in findings {
        let status = match f.compliance_status {
            Some(c) => format!("{} / {}", c.as_str(), f.workflow_status.as_str()),
            None => format!("{} / {}", if f.active { "ACTIVE" } else { "ARCHIVED" }, f.workflow_status.as_str()),
        };
        t.add_row(vec![
            f.source.to_string(),
            f.account_id.clone(),
            f.region.clone(),
            f.severity.to_string(),
            f.control_id.clone().or_else(|| f.finding_type.clone()).unwrap_or_else(|| "-".into()),
            status,
            f.resource_id.clone(),
            f.title.clone(),
        ]);
    }
    t.to_string()
}

/// Findings as a JSON array: every field of the model; `raw` (the source's document, parsed)
/// only when it was asked for.
pub fn findings_json(findings: &[Finding], with_raw: bool) -> String {
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut v = json!({
                "uid": f.uid, "id": f.id, "source": f.source, "product_arn": f.product_arn,
                "account_id": f.account_id, "region": f.region, "resource_type": f.resource_type,
                "resource_id": f.resource_id, "resource_tags": f.resource_tags, "control_id": f.control_id,
                "finding_type": f.finding_type, "title": f.title, "severity": f.severity,
                "workflow_status": f.workflow_status, "compliance_status": f.compliance_status,
                "active": f.active, "failing": f.is_failing(), "created_at": millis_iso(f.created_at),
                "updated_at": millis_iso(f.updated_at), "check_key": f.check_key,
            });
            if with_raw {
                v["raw"] = serde_json::from_str(&f.raw).unwrap_or(Value::String(f.raw.clone()));
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Unix milliseconds as RFC 3339.
pub fn millis_iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Scores as a table, with the names of the accounts when known.
pub fn scores_table(scores: &[Score], names: &dyn Fn(&str) -> Option<String>) -> String {
    let mut t = table(&["SCOPE", "ID", "NAME", "SCORE", "FAILING CHECKS", "CHECKS"]);
    for s in scores {
        t.add_row(vec![
            s.scope.to_string(),
            s.id.clone(),
            names(&s.id).unwrap_or_else(|| "-".into()),
            format!("{:.1}", s.score),
            s.failing_checks.to_string(),
            s.checks.to_string(),
        ]);
    }
    t.to_string()
}

/// What takes points off a score, largest first.
pub fn contributions_table(contributions: &[Contribution]) -> String {
    let mut t = table(&["CONTROL / FINDING TYPE", "POINTS", "FAILING CHECKS", "FAILING RESOURCES", "ACCOUNTS"]);
    for c in contributions.iter().filter(|c| c.failing_weight > 0) {
        t.add_row(vec![
            c.label.clone(),
            format!("-{:.2}", c.points),
            c.failing_checks.to_string(),
            c.failing_resources.to_string(),
            c.failing_accounts.to_string(),
        ]);
    }
    t.to_string()
}

/// Priorities as a table.
pub fn priorities_table(priorities: &[Priority], title: &dyn Fn(&str) -> Option<String>) -> String {
    let mut t = table(&["#", "CONTROL", "SEVERITY", "POTENTIAL", "FAILING RESOURCES", "ACCOUNTS", "TITLE"]);
    for (i, p) in priorities.iter().enumerate() {
        t.add_row(vec![
            (i + 1).to_string(),
            p.control_id.clone(),
            p.severity.to_string(),
            format!("+{:.2}", p.improvement_potential),
            p.failing_resources.to_string(),
            p.failing_accounts.to_string(),
            title(&p.control_id).unwrap_or_default(),
        ]);
    }
    t.to_string()
}

/// A sync's outcome as a table: what each source gave, then what failed.
pub fn sync_table(report: &SyncReport) -> String {
    let mut t = table(&["SOURCE", "COLLECTED", "REJECTED", "FAILED READS"]);
    for source in crate::finding::Source::ALL {
        let failed = report.errors().filter(|u| u.source == source).count();
        t.add_row(vec![
            source.to_string(),
            report.collected.get(&source).copied().unwrap_or(0).to_string(),
            report.rejected.get(&source).copied().unwrap_or(0).to_string(),
            failed.to_string(),
        ]);
    }
    let mut out = t.to_string();
    let errors: Vec<_> = report.errors().collect();
    if !errors.is_empty() {
        let mut e = table(&["ACCOUNT", "REGION", "SOURCE", "ERROR"]);
        for u in errors {
            e.add_row(vec![
                u.account_id.clone(),
                u.region.clone(),
                u.source.to_string(),
                u.error.clone().unwrap_or_default(),
            ]);
        }
        out.push('\n');
        out.push_str(&e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::binding::{BindingSpec, Mode, Scope};
    use crate::playbooks::CATALOGUE;

    #[test]
    fn a_binding_reads_as_one_row() {
        let b = Binding {
            spec: BindingSpec {
                name: "ingress".into(),
                controls: vec!["EC2.13".into()],
                playbook: "revoke-public-ingress".into(),
                mode: Mode::Auto,
                scope: Scope { accounts: vec!["333333333333".into()], ..Default::default() },
                ..Default::default()
            },
            revision: 2,
            created_by: "cli".into(),
            updated_by: "cli".into(),
            create_time: OffsetDateTime::UNIX_EPOCH,
            update_time: OffsetDateTime::UNIX_EPOCH,
        };
        let t = bindings_table(std::slice::from_ref(&b));
        for cell in ["ingress", "revoke-public-ingress", "auto", "EC2.13", "accounts [333333333333]", "2"] {
            assert!(t.contains(cell), "{cell} in\n{t}");
        }
        let v: Value = serde_json::from_str(&bindings_json(&[b])).unwrap();
        assert_eq!(v[0]["name"], "ingress");
        assert_eq!(v[0]["mode"], "auto");
        assert_eq!(v[0]["scope"]["accounts"][0], "333333333333");
        assert_eq!(v[0]["create_time"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn the_catalogue_lists_every_playbook() {
        let t = playbooks_table(CATALOGUE);
        assert!(CATALOGUE.iter().all(|p| t.contains(p.name)));
        assert!(t.contains("minimum_password_length (14)"));
        let v: Value = serde_json::from_str(&playbooks_json(CATALOGUE)).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(8));
        let ingress = v.as_array().unwrap().iter().find(|p| p["name"] == "revoke-public-ingress").unwrap();
        assert_eq!(ingress["controls"][0], "EC2.13");
        assert_eq!(ingress["parameters"][0]["kind"], "ports");
    }
}
