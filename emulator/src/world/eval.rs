//! Evaluation: from resources to findings. After a change to an account-region, [`evaluate`]
//! recomputes every check the emulator knows (the Config rules behind Security Hub controls),
//! then reconciles the findings of Security Hub, GuardDuty and Access Analyzer with the result:
//! new failures become NEW findings, fixed resources turn PASSED and RESOLVED, resources that no
//! longer exist or controls that were disabled are ARCHIVED.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::catalogue::{Standard, catalogue, normalized_severity};
use super::{AnalyzerFinding, Bucket, PublicAccessBlock, SgRule, World};
use crate::wire::{Millis, iso8601};

/// Ports EC2.19 treats as high risk.
pub const HIGH_RISK_PORTS: &[i64] = &[
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088,
    8888, 9200, 9300,
];

/// Remote administration ports (EC2.53, EC2.54).
pub const ADMIN_PORTS: &[i64] = &[22, 3389];

/// The controls whose checks the emulator evaluates from its resources.
pub const EVALUATED_CONTROLS: &[&str] = &[
    "Config.1",
    "EC2.2",
    "EC2.7",
    "EC2.13",
    "EC2.14",
    "EC2.19",
    "EC2.53",
    "EC2.54",
    "GuardDuty.1",
    "IAM.3",
    "IAM.7",
    "IAM.11",
    "IAM.12",
    "IAM.13",
    "IAM.14",
    "IAM.15",
    "IAM.16",
    "IAM.17",
    "S3.1",
    "S3.8",
];

/// The outcome of one control check on one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub control: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub passed: bool,
    pub tags: BTreeMap<String, String>,
}

/// Evaluates every check for one account in one region.
pub fn checks(world: &World, account: &str, region: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(acct) = world.accounts.get(account) else { return out };
    let Some(rs) = world.region(account, region) else { return out };
    let account_res = format!("AWS::::Account:{account}");
    let account_check = |control: &'static str, passed: bool, out: &mut Vec<Check>| {
        out.push(Check {
            control,
            resource_type: "AwsAccount",
            resource_id: account_res.clone(),
            passed,
            tags: acct.tags.clone(),
        })
    };

    // EC2: security groups.
    for sg in rs.ec2.security_groups.values() {
        let arn = format!("arn:aws:ec2:{region}:{account}:security-group/{}", sg.id);
        let open = |pred: &dyn Fn(&SgRule) -> bool| sg.ingress.iter().any(pred);
        let mut push = |control: &'static str, passed: bool| {
            out.push(Check {
                control,
                resource_type: "AwsEc2SecurityGroup",
                resource_id: arn.clone(),
                passed,
                tags: sg.tags.clone(),
            })
        };
        if sg.is_default() {
            push("EC2.2", sg.ingress.is_empty() && sg.egress.is_empty());
        }
        push("EC2.13", !open(&|r| r.opens_to_world(22)));
        push("EC2.14", !open(&|r| r.opens_to_world(3389)));
        push("EC2.19", !open(&|r| HIGH_RISK_PORTS.iter().any(|p| r.opens_to_world(*p))));
        push("EC2.53", !open(&|r| r.is_ipv4_world() && ADMIN_PORTS.iter().any(|p| r.covers_port(*p))));
        push("EC2.54", !open(&|r| r.is_ipv6_world() && ADMIN_PORTS.iter().any(|p| r.covers_port(*p))));
    }

    // Account-level checks.
    account_check("EC2.7", rs.ec2.ebs_encryption_by_default, &mut out);
    let pp = acct.iam.password_policy.as_ref();
    let strong = pp.is_some_and(|p| {
        p.require_uppercase
            && p.require_lowercase
            && p.require_symbols
            && p.require_numbers
            && p.minimum_password_length >= 8
    });
    account_check("IAM.7", strong, &mut out);
    account_check("IAM.11", pp.is_some_and(|p| p.require_uppercase), &mut out);
    account_check("IAM.12", pp.is_some_and(|p| p.require_lowercase), &mut out);
    account_check("IAM.13", pp.is_some_and(|p| p.require_symbols), &mut out);
    account_check("IAM.14", pp.is_some_and(|p| p.require_numbers), &mut out);
    account_check("IAM.15", pp.is_some_and(|p| p.minimum_password_length >= 14), &mut out);
    account_check("IAM.16", pp.is_some_and(|p| p.password_reuse_prevention.unwrap_or(0) >= 24), &mut out);
    account_check("IAM.17", pp.is_some_and(|p| p.max_password_age.is_some_and(|a| a <= 90)), &mut out);
    account_check("S3.1", acct.s3_public_access_block.is_some_and(|b| b.all()), &mut out);
    account_check("GuardDuty.1", rs.detector.as_ref().is_some_and(|d| d.status == "ENABLED"), &mut out);
    account_check("Config.1", rs.config.recorder.is_some() && rs.config.recording, &mut out);

    // IAM users: access keys rotated within 90 days.
    let now = world.now();
    for user in acct.iam.users.values() {
        let stale = user.access_keys.iter().any(|k| k.status == "Active" && now - k.created_ms > 90 * 86_400_000);
        out.push(Check {
            control: "IAM.3",
            resource_type: "AwsIamUser",
            resource_id: user.arn.clone(),
            passed: !stale,
            tags: user.tags.clone(),
        });
    }

    // S3 buckets in this region.
    for b in world.buckets.values().filter(|b| b.owner == account && b.region == region) {
        out.push(Check {
            control: "S3.8",
            resource_type: "AwsS3Bucket",
            resource_id: format!("arn:aws:s3:::{}", b.name),
            passed: b.public_access_block.is_some_and(|p| p.all()),
            tags: b.tags.clone(),
        });
    }
    out
}

/// Whether a bucket policy grants access to everyone (`"Principal": "*"` or `{"AWS": "*"}`).
pub fn policy_is_public(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => return false,
    };
    statements.iter().any(|st| {
        st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && st.get("Condition").is_none()
            && match st.get("Principal") {
                Some(Value::String(s)) => s == "*",
                Some(Value::Object(o)) => match o.get("AWS") {
                    Some(Value::String(s)) => s == "*",
                    Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("*")),
                    _ => false,
                },
                _ => false,
            }
    })
}

/// The Block Public Access settings in force for a bucket: bucket and account settings OR-ed.
pub fn effective_bpa(bucket: &Bucket, account: Option<&PublicAccessBlock>) -> PublicAccessBlock {
    let b = bucket.public_access_block.unwrap_or_default();
    let a = account.copied().unwrap_or_default();
    PublicAccessBlock {
        block_public_acls: b.block_public_acls || a.block_public_acls,
        ignore_public_acls: b.ignore_public_acls || a.ignore_public_acls,
        block_public_policy: b.block_public_policy || a.block_public_policy,
        restrict_public_buckets: b.restrict_public_buckets || a.restrict_public_buckets,
    }
}

/// Whether anyone on the internet can read the bucket, given policy, ACL and Block Public Access.
pub fn bucket_is_public(bucket: &Bucket, account: Option<&PublicAccessBlock>) -> bool {
    let bpa = effective_bpa(bucket, account);
    let by_policy = bucket.policy.as_deref().is_some_and(policy_is_public) && !bpa.restrict_public_buckets;
    let by_acl = bucket.public_acl.is_some() && !bpa.ignore_public_acls;
    by_policy || by_acl
}

/// Re-evaluates one account-region and reconciles every finding source with the result.
pub fn evaluate(world: &mut World, account: &str, region: &str) {
    if !world.accounts.contains_key(account) {
        return;
    }
    let now = world.now();
    evaluate_guardduty(world, account, region, now);
    evaluate_analyzers(world, account, region, now);
    evaluate_controls(world, account, region, now);
    import_product_findings(world, account, region, now);
}

// ---------------------------------------------------------------------------------------------
// Security Hub control findings

fn evaluate_controls(world: &mut World, account: &str, region: &str, now: Millis) {
    let checks = checks(world, account, region);
    // Which standards are enabled, and which (standard, control) pairs are disabled.
    let hub = world.region(account, region).and_then(|r| r.hub.clone());
    let mut wanted: BTreeMap<(String, String), (Check, Vec<Standard>)> = BTreeMap::new();
    if let Some(hub) = &hub {
        let enabled: Vec<Standard> = hub.standards.keys().filter_map(|a| Standard::from_arn(a)).collect();
        for check in checks {
            let Some(control) = catalogue().get(check.control) else { continue };
            let standards: Vec<Standard> = enabled
                .iter()
                .copied()
                .filter(|s| s.requirements(control).is_some())
                .filter(|s| !hub.disabled_controls.contains_key(&(s.arn(region), check.control.to_string())))
                .collect();
            if standards.is_empty() {
                continue;
            }
            wanted.insert((check.control.to_string(), check.resource_id.clone()), (check, standards));
        }
    }

    let generator_prefix = "security-control/";
    let product = format!("arn:aws:securityhub:{region}::product/aws/securityhub");
    // Existing control findings of this account in this region.
    let existing: Vec<(u64, String, String)> = world
        .findings
        .get(region)
        .map(|s| {
            s.for_account(account)
                .filter(|f| f.str_field("ProductArn") == Some(product.as_str()))
                .filter_map(|f| {
                    let g = f.str_field("GeneratorId")?;
                    let control = g.strip_prefix(generator_prefix)?.to_string();
                    let rid = f.doc.get("Resources")?.get(0)?.get("Id")?.as_str()?.to_string();
                    Some((f.seq, control, rid))
                })
                .collect()
        })
        .unwrap_or_default();

    let mut seen = BTreeSet::new();
    let ts = iso8601(now);
    for (seq, control, rid) in existing {
        let key = (control, rid);
        let store = world.findings_mut(region);
        match wanted.get(&key) {
            Some((check, standards)) => {
                seen.insert(key.clone());
                let status = if check.passed { "PASSED" } else { "FAILED" };
                let assoc = associated(standards);
                let related = related_requirements(check.control, standards);
                let Some(f) = store.get(seq) else { continue };
                let cur_status = f.doc.get("Compliance").and_then(|c| c.get("Status")).and_then(Value::as_str);
                let cur_record = f.str_field("RecordState");
                let cur_assoc = f.doc.get("Compliance").and_then(|c| c.get("AssociatedStandards")).cloned();
                if cur_status == Some(status) && cur_record == Some("ACTIVE") && cur_assoc.as_ref() == Some(&assoc) {
                    continue;
                }
                store.update(seq, |d| {
                    let was_archived = d.get("RecordState").and_then(Value::as_str) == Some("ARCHIVED");
                    let workflow = d
                        .get("Workflow")
                        .and_then(|w| w.get("Status"))
                        .and_then(Value::as_str)
                        .unwrap_or("NEW")
                        .to_string();
                    let new_workflow = match (check.passed, workflow.as_str()) {
                        (true, "NEW" | "NOTIFIED") => "RESOLVED",
                        (false, "RESOLVED") => "NEW",
                        (_, w) if was_archived && !check.passed && w != "SUPPRESSED" => "NEW",
                        (_, w) => w,
                    }
                    .to_string();
                    set_compliance(d, status, &assoc, &related, check.control);
                    d.insert("Workflow".into(), json!({"Status": new_workflow}));
                    d.insert("WorkflowState".into(), json!(workflow_state(&new_workflow)));
                    d.insert("RecordState".into(), json!("ACTIVE"));
                    d.insert("UpdatedAt".into(), json!(ts));
                    d.insert("LastObservedAt".into(), json!(ts));
                    d.insert("ProcessedAt".into(), json!(ts));
                });
            }
            None => {
                let Some(f) = store.get(seq) else { continue };
                if f.str_field("RecordState") == Some("ARCHIVED") {
                    continue;
                }
                store.update(seq, |d| {
                    d.insert("RecordState".into(), json!("ARCHIVED"));
                    d.insert("UpdatedAt".into(), json!(ts));
                    d.insert("ProcessedAt".into(), json!(ts));
                });
            }
        }
    }

    for (key, (check, standards)) in &wanted {
        if seen.contains(key) {
            continue;
        }
        let uuid = world.ids.uuid();
        let doc = control_finding(account, region, check, standards, &uuid, now);
        world.findings_mut(region).put(doc);
    }
}

fn associated(standards: &[Standard]) -> Value {
    Value::Array(standards.iter().map(|s| json!({"StandardsId": s.standards_id()})).collect())
}

fn related_requirements(control: &str, standards: &[Standard]) -> Vec<String> {
    let Some(c) = catalogue().get(control) else { return Vec::new() };
    standards
        .iter()
        .flat_map(|s| s.requirements(c).unwrap_or_default().into_iter().map(move |r| s.related_requirement(&r)))
        .collect()
}

fn set_compliance(d: &mut Map<String, Value>, status: &str, assoc: &Value, related: &[String], control: &str) {
    let mut c = json!({"Status": status, "SecurityControlId": control, "AssociatedStandards": assoc});
    if !related.is_empty() {
        c["RelatedRequirements"] = json!(related);
    }
    d.insert("Compliance".into(), c);
}

fn workflow_state(status: &str) -> &'static str {
    match status {
        "NOTIFIED" => "ASSIGNED",
        "RESOLVED" => "RESOLVED",
        "SUPPRESSED" => "DEFERRED",
        _ => "NEW",
    }
}

fn resource_json(rtype: &str, id: &str, region: &str, tags: &BTreeMap<String, String>) -> Value {
    let mut r = json!({"Type": rtype, "Id": id, "Partition": "aws", "Region": region});
    if !tags.is_empty() {
        r["Tags"] = json!(tags);
    }
    r
}

fn control_finding(
    account: &str,
    region: &str,
    check: &Check,
    standards: &[Standard],
    uuid: &str,
    now: Millis,
) -> Map<String, Value> {
    let control = catalogue().get(check.control);
    let title = control.map(|c| c.title.as_str()).unwrap_or(check.control);
    let severity = control.map(|c| c.severity.as_str()).unwrap_or("MEDIUM");
    let rule = control.map(|c| c.config_rule.as_str()).unwrap_or("");
    let ts = iso8601(now);
    let id = format!("arn:aws:securityhub:{region}:{account}:security-control/{}/finding/{uuid}", check.control);
    let status = if check.passed { "PASSED" } else { "FAILED" };
    let workflow = if check.passed { "RESOLVED" } else { "NEW" };
    let types = json!(["Software and Configuration Checks/Industry and Regulatory Standards"]);
    let mut d = json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/securityhub"),
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": region,
        "GeneratorId": format!("security-control/{}", check.control),
        "AwsAccountId": account,
        "Types": types,
        "FirstObservedAt": ts,
        "LastObservedAt": ts,
        "CreatedAt": ts,
        "UpdatedAt": ts,
        "ProcessedAt": ts,
        "Severity": {"Label": severity, "Normalized": normalized_severity(severity), "Original": severity},
        "Title": title,
        "Description": format!("This AWS control checks: {title}."),
        "Remediation": {"Recommendation": {
            "Text": "For information on how to correct this issue, consult the AWS Security Hub controls documentation.",
            "Url": format!("https://docs.aws.amazon.com/console/securityhub/{}/remediation", check.control)}},
        "ProductFields": {
            "RelatedAWSResources:0/name": format!("securityhub-{rule}"),
            "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
            "aws/securityhub/ProductName": "Security Hub",
            "aws/securityhub/CompanyName": "AWS",
            "aws/securityhub/FindingId": id,
        },
        "Resources": [resource_json(check.resource_type, &check.resource_id, region, &check.tags)],
        "WorkflowState": workflow_state(workflow),
        "Workflow": {"Status": workflow},
        "RecordState": "ACTIVE",
        "FindingProviderFields": {"Severity": {"Label": severity, "Original": severity}, "Types": types},
    });
    let map = d.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut map = map;
    set_compliance(
        &mut map,
        status,
        &associated(standards),
        &related_requirements(check.control, standards),
        check.control,
    );
    map
}

// ---------------------------------------------------------------------------------------------
// GuardDuty

/// GuardDuty severity and title for the finding types the world produces.
pub fn threat_profile(finding_type: &str) -> (f64, &'static str) {
    match finding_type {
        "CryptoCurrency:EC2/BitcoinTool.B!DNS" => {
            (8.0, "EC2 instance is querying a domain name that is associated with Bitcoin-related activity.")
        }
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS" => {
            (8.0, "Credentials for an EC2 instance were used from an external IP address.")
        }
        "Policy:IAMUser/RootCredentialUsage" => (2.0, "API was invoked using root credentials."),
        _ => (5.0, "Suspicious activity was detected."),
    }
}

fn stable_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn evaluate_guardduty(world: &mut World, account: &str, region: &str, now: Millis) {
    let threats: Vec<_> =
        world.threats.iter().filter(|t| t.account == account && t.region == region).cloned().collect();
    let Some(acct) = world.accounts.get(account).cloned() else { return };
    let Some(rs) = world.regions.get_mut(&(account.to_string(), region.to_string())) else { return };
    let Some(det) = rs.detector.as_mut() else { return };
    if det.status != "ENABLED" {
        return;
    }
    for t in threats {
        let id = stable_id(&[&t.account, &t.region, &t.finding_type, &t.resource]);
        if det.findings.contains_key(&id) {
            continue;
        }
        let (severity, description) = threat_profile(&t.finding_type);
        let resource = if t.resource.starts_with("i-") {
            let inst = rs.ec2.instances.get(&t.resource);
            json!({"resourceType": "Instance", "instanceDetails": {
                "instanceId": t.resource,
                "instanceType": inst.map(|i| i.instance_type.as_str()).unwrap_or("t3.micro"),
                "instanceState": inst.map(|i| i.state.as_str()).unwrap_or("running"),
                "imageId": inst.map(|i| i.image_id.as_str()).unwrap_or(""),
                "launchTime": inst.map(|i| iso8601(i.launched_ms)).unwrap_or_default(),
                "tags": inst.map(|i| i.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()).unwrap_or_default(),
            }})
        } else if t.finding_type == "Policy:IAMUser/RootCredentialUsage" {
            json!({"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": t.resource, "principalId": account, "userName": "Root", "userType": "Root"}})
        } else {
            let user = acct.iam.users.values().find(|u| u.access_keys.iter().any(|k| k.id == t.resource));
            json!({"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": t.resource,
                "principalId": user.map(|u| u.id.as_str()).unwrap_or(""),
                "userName": user.map(|u| u.name.as_str()).unwrap_or(""),
                "userType": "IAMUser"}})
        };
        let ts = iso8601(now);
        let finding = json!({
            "accountId": account,
            "arn": format!("arn:aws:guardduty:{region}:{account}:detector/{}/finding/{id}", det.id),
            "createdAt": ts,
            "updatedAt": ts,
            "description": description,
            "id": id,
            "partition": "aws",
            "region": region,
            "resource": resource,
            "schemaVersion": "2.0",
            "service": {"archived": false, "count": 1, "detectorId": det.id, "eventFirstSeen": ts, "eventLastSeen": ts,
                        "serviceName": "guardduty", "resourceRole": "TARGET"},
            "severity": severity,
            "title": description,
            "type": t.finding_type,
        });
        det.findings.insert(id, finding);
    }
}

// ---------------------------------------------------------------------------------------------
// Access Analyzer

struct Exposure {
    resource: String,
    resource_type: &'static str,
    principal: BTreeMap<String, String>,
    action: Vec<String>,
    condition: BTreeMap<String, String>,
    is_public: bool,
}

fn exposures(world: &World, account: &str, region: &str, org_zone: bool) -> Vec<Exposure> {
    let mut out = Vec::new();
    let Some(acct) = world.accounts.get(account) else { return out };
    for b in world.buckets.values().filter(|b| b.owner == account && b.region == region) {
        if bucket_is_public(b, acct.s3_public_access_block.as_ref()) {
            out.push(Exposure {
                resource: format!("arn:aws:s3:::{}", b.name),
                resource_type: "AWS::S3::Bucket",
                principal: BTreeMap::from([("AWS".to_string(), "*".to_string())]),
                action: vec!["s3:GetObject".into()],
                condition: BTreeMap::new(),
                is_public: true,
            });
        }
    }
    for role in acct.iam.roles.values() {
        let statements: Vec<&Value> = match role.trust_policy.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => continue,
        };
        for st in statements {
            if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let principals: Vec<String> = match st.get("Principal").and_then(|p| p.get("AWS")) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                _ => continue,
            };
            for p in principals {
                let other = p.strip_prefix("arn:aws:iam::").and_then(|r| r.split(':').next()).unwrap_or(&p).to_string();
                let external = if org_zone {
                    !world.accounts.get(other.as_str()).is_some_and(|a| a.in_org())
                } else {
                    other != account
                };
                if !external {
                    continue;
                }
                let mut condition = BTreeMap::new();
                if let Some(Value::Object(ops)) = st.get("Condition") {
                    for keys in ops.values() {
                        if let Value::Object(keys) = keys {
                            for (k, v) in keys {
                                condition
                                    .insert(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                            }
                        }
                    }
                }
                out.push(Exposure {
                    resource: role.arn.clone(),
                    resource_type: "AWS::IAM::Role",
                    principal: BTreeMap::from([("AWS".to_string(), p.clone())]),
                    action: vec!["sts:AssumeRole".into()],
                    condition,
                    is_public: p == "*",
                });
            }
        }
    }
    out
}

fn evaluate_analyzers(world: &mut World, account: &str, region: &str, now: Millis) {
    let names: Vec<(String, String)> = match world.region(account, region) {
        Some(rs) => rs.analyzers.values().map(|a| (a.name.clone(), a.kind.clone())).collect(),
        None => return,
    };
    for (name, kind) in names {
        if kind != "ACCOUNT" && kind != "ORGANIZATION" {
            continue;
        }
        let found = exposures(world, account, region, kind == "ORGANIZATION");
        let mut new_ids = Vec::new();
        for _ in &found {
            new_ids.push(world.ids.uuid());
        }
        let Some(an) = world.region_mut(account, region).analyzers.get_mut(&name) else { continue };
        let mut live = BTreeSet::new();
        for (e, fresh_id) in found.into_iter().zip(new_ids) {
            let key = (e.resource.clone(), e.principal.clone());
            live.insert(key.clone());
            let existing = an.findings.values_mut().find(|f| (f.resource.clone(), f.principal.clone()) == key);
            match existing {
                Some(f) if f.status == "RESOLVED" => {
                    f.status = "ACTIVE".into();
                    f.updated_ms = now;
                    f.analyzed_ms = now;
                }
                Some(_) => {}
                None => {
                    let mut f = AnalyzerFinding {
                        id: fresh_id.clone(),
                        resource: e.resource,
                        resource_type: e.resource_type.to_string(),
                        resource_owner: account.to_string(),
                        principal: e.principal,
                        action: e.action,
                        condition: e.condition,
                        is_public: e.is_public,
                        status: "ACTIVE".into(),
                        created_ms: now,
                        updated_ms: now,
                        analyzed_ms: now,
                    };
                    if an.archive_rules.values().any(|r| archive_filter_matches(&r.filter, &f)) {
                        f.status = "ARCHIVED".into();
                    }
                    an.findings.insert(fresh_id, f);
                }
            }
        }
        for f in an.findings.values_mut() {
            if f.status != "RESOLVED" && !live.contains(&(f.resource.clone(), f.principal.clone())) {
                f.status = "RESOLVED".into();
                f.updated_ms = now;
                f.analyzed_ms = now;
            }
        }
    }
}

/// Whether an archive rule's filter matches a finding (`resourceType`, `resource`, `isPublic`,
/// `principal.AWS`, `resourceOwnerAccount`, `condition.<key>`, `status`).
pub fn archive_filter_matches(filter: &Value, f: &AnalyzerFinding) -> bool {
    let Some(obj) = filter.as_object() else { return false };
    obj.iter().all(|(key, crit)| {
        let actual: Option<String> = match key.as_str() {
            "resourceType" => Some(f.resource_type.clone()),
            "resource" => Some(f.resource.clone()),
            "isPublic" => Some(f.is_public.to_string()),
            "principal.AWS" => f.principal.get("AWS").cloned(),
            "resourceOwnerAccount" => Some(f.resource_owner.clone()),
            "status" => Some(f.status.clone()),
            k if k.starts_with("condition.") => f.condition.get(&k["condition.".len()..]).cloned(),
            _ => None,
        };
        criterion_holds(crit, actual.as_deref())
    })
}

/// Whether an Access Analyzer criterion (`eq`, `neq`, `contains`, `exists`) holds for a value.
pub fn criterion_holds(crit: &Value, actual: Option<&str>) -> bool {
    let list = |k: &str| -> Vec<&str> {
        crit.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    };
    if let Some(eq) = crit.get("eq").map(|_| list("eq"))
        && !actual.is_some_and(|a| eq.contains(&a))
    {
        return false;
    }
    if let Some(neq) = crit.get("neq").map(|_| list("neq"))
        && actual.is_some_and(|a| neq.contains(&a))
    {
        return false;
    }
    if let Some(c) = crit.get("contains").map(|_| list("contains"))
        && !actual.is_some_and(|a| c.iter().any(|x| a.contains(x)))
    {
        return false;
    }
    if let Some(exists) = crit.get("exists").and_then(Value::as_bool)
        && actual.is_some() != exists
    {
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// GuardDuty and Access Analyzer findings imported into Security Hub

fn import_product_findings(world: &mut World, account: &str, region: &str, now: Millis) {
    let Some(rs) = world.region(account, region) else { return };
    if rs.hub.is_none() {
        return;
    }
    let ts = iso8601(now);
    let mut docs: Vec<Map<String, Value>> = Vec::new();
    if let Some(det) = &rs.detector {
        for f in det.findings.values() {
            docs.push(guardduty_asff(f, account, region, &ts));
        }
    }
    for an in rs.analyzers.values() {
        let analyzer_arn = an.arn.clone();
        for f in an.findings.values() {
            docs.push(analyzer_asff(&analyzer_arn, f, account, region, &ts));
        }
    }
    let store = world.findings_mut(region);
    for doc in docs {
        let product = doc.get("ProductArn").and_then(Value::as_str).unwrap_or_default().to_string();
        let id = doc.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        match store.seq_of(&product, &id) {
            None => {
                store.put(doc);
            }
            Some(seq) => {
                let record = doc.get("RecordState").cloned();
                let Some(cur) = store.get(seq) else { continue };
                if cur.doc.get("RecordState") == record.as_ref() {
                    continue;
                }
                let archived = record.as_ref().and_then(Value::as_str) == Some("ARCHIVED");
                store.update(seq, |d| {
                    d.insert("RecordState".into(), record.unwrap_or(json!("ACTIVE")));
                    if archived {
                        d.insert("Workflow".into(), json!({"Status": "RESOLVED"}));
                        d.insert("WorkflowState".into(), json!("RESOLVED"));
                    }
                    d.insert("UpdatedAt".into(), json!(ts));
                });
            }
        }
    }
}

fn severity_label(gd_severity: f64) -> &'static str {
    if gd_severity >= 9.0 {
        "CRITICAL"
    } else if gd_severity >= 7.0 {
        "HIGH"
    } else if gd_severity >= 4.0 {
        "MEDIUM"
    } else {
        "LOW"
    }
}

fn guardduty_asff(f: &Value, account: &str, region: &str, ts: &str) -> Map<String, Value> {
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let severity = f.get("severity").and_then(Value::as_f64).unwrap_or(5.0);
    let label = severity_label(severity);
    let ftype = s("type");
    let archived = f.get("service").and_then(|x| x.get("archived")).and_then(Value::as_bool).unwrap_or(false);
    let resource = f.get("resource");
    let (rtype, rid) = match resource.and_then(|r| r.get("resourceType")).and_then(Value::as_str) {
        Some("Instance") => {
            let id = resource
                .and_then(|r| r.pointer("/instanceDetails/instanceId"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            ("AwsEc2Instance", format!("arn:aws:ec2:{region}:{account}:instance/{id}"))
        }
        _ => {
            let id = resource
                .and_then(|r| r.pointer("/accessKeyDetails/accessKeyId"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            ("AwsIamAccessKey", format!("AWS::IAM::AccessKey:{id}"))
        }
    };
    let ty = format!("TTPs/{}", ftype.replace('/', "-"));
    let mut d = json!({
        "SchemaVersion": "2018-10-08",
        "Id": s("arn"),
        "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/guardduty"),
        "ProductName": "GuardDuty",
        "CompanyName": "Amazon",
        "Region": region,
        "GeneratorId": format!("arn:aws:guardduty:{region}:{account}:detector/{}", f.pointer("/service/detectorId").and_then(Value::as_str).unwrap_or_default()),
        "AwsAccountId": account,
        "Types": [ty],
        "FirstObservedAt": s("createdAt"),
        "LastObservedAt": s("updatedAt"),
        "CreatedAt": s("createdAt"),
        "UpdatedAt": ts,
        "Severity": {"Label": label, "Normalized": (severity * 10.0) as i64, "Product": severity},
        "Title": s("title"),
        "Description": s("description"),
        "ProductFields": {"aws/guardduty/service/archived": archived.to_string(), "aws/securityhub/ProductName": "GuardDuty",
                          "aws/securityhub/CompanyName": "Amazon", "aws/guardduty/type": ftype},
        "Resources": [{"Type": rtype, "Id": rid, "Partition": "aws", "Region": region}],
        "WorkflowState": "NEW",
        "Workflow": {"Status": "NEW"},
        "RecordState": if archived { "ARCHIVED" } else { "ACTIVE" },
        "FindingProviderFields": {"Severity": {"Label": label, "Original": severity.to_string()}, "Types": [ty]},
    });
    d.as_object_mut().map(std::mem::take).unwrap_or_default()
}

fn analyzer_asff(analyzer_arn: &str, f: &AnalyzerFinding, account: &str, region: &str, ts: &str) -> Map<String, Value> {
    let label = if f.is_public { "HIGH" } else { "LOW" };
    let rtype = if f.resource_type == "AWS::S3::Bucket" { "AwsS3Bucket" } else { "AwsIamRole" };
    let ty = "Software and Configuration Checks/AWS Security Best Practices/External Access Granted";
    let archived = f.status != "ACTIVE";
    let title = if f.is_public {
        format!("{} allows public access", f.resource_type)
    } else {
        format!("{} allows cross-account access", f.resource_type)
    };
    let mut d = json!({
        "SchemaVersion": "2018-10-08",
        "Id": format!("{analyzer_arn}/{}", f.id),
        "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/access-analyzer"),
        "ProductName": "IAM Access Analyzer",
        "CompanyName": "AWS",
        "Region": region,
        "GeneratorId": analyzer_arn,
        "AwsAccountId": account,
        "Types": [ty],
        "CreatedAt": iso8601(f.created_ms),
        "UpdatedAt": ts,
        "Severity": {"Label": label, "Normalized": normalized_severity(label)},
        "Title": title,
        "Description": format!("AWS::IAM Access Analyzer found that {} grants access outside the zone of trust.", f.resource),
        "Resources": [{"Type": rtype, "Id": f.resource, "Partition": "aws", "Region": region}],
        "WorkflowState": "NEW",
        "Workflow": {"Status": "NEW"},
        "RecordState": if archived { "ARCHIVED" } else { "ACTIVE" },
        "ProductFields": {"aws/securityhub/ProductName": "IAM Access Analyzer", "aws/securityhub/CompanyName": "AWS",
                          "ResourceOwnerAccount": f.resource_owner, "IsPublic": f.is_public.to_string()},
    });
    d.as_object_mut().map(std::mem::take).unwrap_or_default()
}
