//! Amazon GuardDuty (restJson1): detectors, membership (organization-managed and by invitation),
//! the organization's delegated administrator, and the findings the world's threats produce.
//!
//! A detector is addressed by id, and only its owner may use it: any other id is the 400
//! `BadRequestException` real GuardDuty returns. An administrator's detector sees the findings of
//! its `Enabled` members as well as its own. Membership lives on the administrator's detector
//! (`members`); the member's detector points back through `administrator`. Pending invitations
//! are derived from the administrators' member records, so an account without a detector can
//! still list them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, decode_token, encode_token};
use crate::wire::{Input, Millis, Request, Response, epoch_seconds, iso8601, parse_iso8601};
use crate::world::{Detector, GdMember, HubAdministrator, Invitation, World, eval};

const BAD: &str = "BadRequestException";
const SERVICE_PRINCIPAL: &str = "guardduty.amazonaws.com";
/// Most finding ids one call may name.
const MAX_FINDING_IDS: usize = 50;
/// Most accounts one membership call may name.
const MAX_ACCOUNTS: usize = 50;

/// Data sources and protection plans a detector reports, in the order GuardDuty lists them.
const FEATURES: &[&str] = &[
    "CLOUD_TRAIL",
    "DNS_LOGS",
    "FLOW_LOGS",
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
    "EKS_RUNTIME_MONITORING",
    "RUNTIME_MONITORING",
];

/// Features a caller may turn on or off (the foundational data sources are always on).
const SETTABLE_FEATURES: &[&str] = &[
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
    "EKS_RUNTIME_MONITORING",
    "RUNTIME_MONITORING",
];

/// Top-level attributes of a finding that criteria and sort criteria may name.
const FINDING_ATTRIBUTES: &[&str] = &[
    "accountId",
    "arn",
    "confidence",
    "createdAt",
    "description",
    "id",
    "partition",
    "region",
    "resource",
    "schemaVersion",
    "service",
    "severity",
    "title",
    "type",
    "updatedAt",
];

/// Finding types CreateSampleFindings produces when the caller names none.
const SAMPLE_TYPES: &[&str] = &[
    "CryptoCurrency:EC2/BitcoinTool.B!DNS",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "Policy:IAMUser/RootCredentialUsage",
    "Recon:EC2/PortProbeUnprotectedPort",
];

pub fn operation(req: &Request) -> Option<&'static str> {
    let segments = req.segments();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match (req.method.as_str(), s.as_slice()) {
        ("POST", ["detector"]) => "CreateDetector",
        ("GET", ["detector"]) => "ListDetectors",
        ("GET", ["detector", _]) => "GetDetector",
        ("POST", ["detector", _]) => "UpdateDetector",
        ("DELETE", ["detector", _]) => "DeleteDetector",
        ("POST", ["detector", _, "member"]) => "CreateMembers",
        ("GET", ["detector", _, "member"]) => "ListMembers",
        ("POST", ["detector", _, "member", "get"]) => "GetMembers",
        ("POST", ["detector", _, "member", "delete"]) => "DeleteMembers",
        ("POST", ["detector", _, "member", "disassociate"]) => "DisassociateMembers",
        ("POST", ["detector", _, "member", "invite"]) => "InviteMembers",
        ("POST", ["detector", _, "administrator"]) => "AcceptAdministratorInvitation",
        ("GET", ["detector", _, "administrator"]) => "GetAdministratorAccount",
        ("POST", ["detector", _, "administrator", "disassociate"]) => "DisassociateFromAdministratorAccount",
        ("POST", ["detector", _, "master"]) => "AcceptInvitation",
        ("GET", ["detector", _, "master"]) => "GetMasterAccount",
        ("POST", ["detector", _, "master", "disassociate"]) => "DisassociateFromMasterAccount",
        ("POST", ["detector", _, "findings"]) => "ListFindings",
        ("POST", ["detector", _, "findings", "get"]) => "GetFindings",
        ("POST", ["detector", _, "findings", "archive"]) => "ArchiveFindings",
        ("POST", ["detector", _, "findings", "unarchive"]) => "UnarchiveFindings",
        ("POST", ["detector", _, "findings", "create"]) => "CreateSampleFindings",
        ("POST", ["detector", _, "findings", "statistics"]) => "GetFindingsStatistics",
        ("POST", ["detector", _, "admin"]) => "UpdateOrganizationConfiguration",
        ("GET", ["detector", _, "admin"]) => "DescribeOrganizationConfiguration",
        ("GET", ["invitation"]) => "ListInvitations",
        ("GET", ["invitation", "count"]) => "GetInvitationsCount",
        ("POST", ["invitation", "decline"]) => "DeclineInvitations",
        ("POST", ["invitation", "delete"]) => "DeleteInvitations",
        ("POST", ["admin", "enable"]) => "EnableOrganizationAdminAccount",
        ("POST", ["admin", "disable"]) => "DisableOrganizationAdminAccount",
        ("GET", ["admin"]) => "ListOrganizationAdminAccounts",
        ("GET", ["tags", _]) => "ListTagsForResource",
        ("POST", ["tags", _]) => "TagResource",
        ("DELETE", ["tags", _]) => "UntagResource",
        _ => return None,
    })
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    match op {
        "CreateDetector" => create_detector(call),
        "ListDetectors" => list_detectors(call),
        "GetDetector" => get_detector(call),
        "UpdateDetector" => update_detector(call),
        "DeleteDetector" => delete_detector(call),
        "CreateMembers" => create_members(call),
        "ListMembers" => list_members(call),
        "GetMembers" => get_members(call),
        "DeleteMembers" => remove_members(call, "DeleteMembers"),
        "DisassociateMembers" => remove_members(call, "DisassociateMembers"),
        "InviteMembers" => invite_members(call),
        "AcceptAdministratorInvitation" => accept_invitation(call, "AcceptAdministratorInvitation", "administratorId"),
        "AcceptInvitation" => accept_invitation(call, "AcceptInvitation", "masterId"),
        "GetAdministratorAccount" => get_administrator(call, "administrator"),
        "GetMasterAccount" => get_administrator(call, "master"),
        "DisassociateFromAdministratorAccount" => {
            disassociate_from_administrator(call, "DisassociateFromAdministratorAccount")
        }
        "DisassociateFromMasterAccount" => disassociate_from_administrator(call, "DisassociateFromMasterAccount"),
        "ListInvitations" => list_invitations(call),
        "GetInvitationsCount" => get_invitations_count(call),
        "DeclineInvitations" => decline_invitations(call, "DeclineInvitations"),
        "DeleteInvitations" => decline_invitations(call, "DeleteInvitations"),
        "ListFindings" => list_findings(call),
        "GetFindings" => get_findings(call),
        "ArchiveFindings" => set_archived(call, true),
        "UnarchiveFindings" => set_archived(call, false),
        "CreateSampleFindings" => create_sample_findings(call),
        "GetFindingsStatistics" => get_findings_statistics(call),
        "UpdateOrganizationConfiguration" => update_organization_configuration(call),
        "DescribeOrganizationConfiguration" => describe_organization_configuration(call),
        "EnableOrganizationAdminAccount" => enable_organization_admin(call),
        "DisableOrganizationAdminAccount" => disable_organization_admin(call),
        "ListOrganizationAdminAccounts" => list_organization_admins(call),
        "ListTagsForResource" => list_tags(call),
        "TagResource" => tag_resource(call),
        "UntagResource" => untag_resource(call),
        other => Err(bad(format!("The operation {other} is not supported."))),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn bad(message: impl Into<String>) -> AwsError {
    AwsError::new(400, BAD, message)
}

fn invalid_parameter(name: &str) -> AwsError {
    bad(format!(
        "The request is rejected because an invalid or out-of-range value is specified as an input parameter: {name}."
    ))
}

fn not_owned() -> AwsError {
    bad("The request is rejected because the input detectorId is not owned by the current account.")
}

fn body(call: &Call<'_>) -> AwsResult<Input> {
    Input::parse(&call.req.body, BAD)
}

fn ok(value: Value) -> AwsResult<Response> {
    Ok(Response::json(&value))
}

/// The detector id in the path (`/detector/{id}/...`).
fn path_detector(call: &Call<'_>) -> String {
    call.req.segments().get(1).cloned().unwrap_or_default()
}

fn detector<'w>(w: &'w World, account: &str, region: &str, id: &str) -> AwsResult<&'w Detector> {
    w.region(account, region).and_then(|r| r.detector.as_ref()).filter(|d| d.id == id).ok_or_else(not_owned)
}

fn detector_mut<'w>(w: &'w mut World, account: &str, region: &str, id: &str) -> AwsResult<&'w mut Detector> {
    w.regions
        .get_mut(&(account.to_string(), region.to_string()))
        .and_then(|r| r.detector.as_mut())
        .filter(|d| d.id == id)
        .ok_or_else(not_owned)
}

fn any_detector<'w>(w: &'w World, account: &str, region: &str) -> Option<&'w Detector> {
    w.region(account, region).and_then(|r| r.detector.as_ref())
}

fn any_detector_mut<'w>(w: &'w mut World, account: &str, region: &str) -> Option<&'w mut Detector> {
    w.regions.get_mut(&(account.to_string(), region.to_string())).and_then(|r| r.detector.as_mut())
}

/// The organization's GuardDuty delegated administrator in a region.
fn org_admin<'w>(w: &'w World, region: &str) -> Option<&'w str> {
    w.org_admins.get(&("guardduty".to_string(), region.to_string())).map(String::as_str)
}

fn in_org(w: &World, account: &str) -> bool {
    w.org.is_some() && w.accounts.get(account).is_some_and(|a| a.in_org())
}

fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn unprocessed(account: &str, result: &str) -> Value {
    json!({"accountId": account, "result": result})
}

/// `maxResults` from the query string, 1..=max.
fn query_max_results(req: &Request, max: usize) -> AwsResult<usize> {
    match req.query_param("maxResults") {
        None => Ok(max),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid_parameter("maxResults")),
        },
    }
}

fn token_offset(token: Option<&str>) -> AwsResult<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => decode_token(t).ok_or_else(|| invalid_parameter("nextToken")),
    }
}

/// One page of `items` starting at `offset`, and the token of the next page.
fn paginate<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<String>) {
    let start = offset.min(items.len());
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| encode_token(end));
    (items[start..end].to_vec(), next)
}

fn with_token(mut value: Value, next: Option<String>) -> Value {
    if let (Some(t), Some(obj)) = (next, value.as_object_mut()) {
        obj.insert("nextToken".into(), Value::String(t));
    }
    value
}

fn string_map(input: &Input, name: &str) -> AwsResult<BTreeMap<String, String>> {
    match input.raw(name) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(invalid_parameter(name)),
            })
            .collect(),
        Some(_) => Err(invalid_parameter(name)),
    }
}

/// A short stable hex id from its parts (invitation ids).
fn derived_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Detectors

fn default_features() -> BTreeMap<String, String> {
    FEATURES
        .iter()
        .map(|f| {
            let on = !matches!(*f, "EKS_RUNTIME_MONITORING" | "RUNTIME_MONITORING");
            (f.to_string(), if on { "ENABLED" } else { "DISABLED" }.to_string())
        })
        .collect()
}

/// The features a detector reports: the defaults overlaid with what was set.
fn effective_features(d: &Detector) -> BTreeMap<String, String> {
    let mut f = default_features();
    f.extend(d.features.iter().map(|(k, v)| (k.clone(), v.clone())));
    f
}

fn status_word(enable: bool) -> String {
    if enable { "ENABLED" } else { "DISABLED" }.to_string()
}

/// Applies `features` and the older `dataSources` of a Create/UpdateDetector request.
fn apply_features(input: &Input, features: &mut BTreeMap<String, String>) -> AwsResult<()> {
    for f in input.objects("features")? {
        let name = f.req_str("name")?;
        if !SETTABLE_FEATURES.contains(&name) {
            return Err(invalid_parameter("features.name"));
        }
        if let Some(status) = f.str("status")? {
            if status != "ENABLED" && status != "DISABLED" {
                return Err(invalid_parameter("features.status"));
            }
            features.insert(name.to_string(), status.to_string());
        }
    }
    if let Some(ds) = input.object("dataSources")? {
        if let Some(enable) = ds.object("s3Logs")?.map(|s| s.bool("enable")).transpose()?.flatten() {
            features.insert("S3_DATA_EVENTS".into(), status_word(enable));
        }
        if let Some(k) = ds.object("kubernetes")?
            && let Some(enable) = k.object("auditLogs")?.map(|a| a.bool("enable")).transpose()?.flatten()
        {
            features.insert("EKS_AUDIT_LOGS".into(), status_word(enable));
        }
        if let Some(m) = ds.object("malwareProtection")?
            && let Some(enable) =
                m.object("scanEc2InstanceWithFindings")?.map(|s| s.bool("ebsVolumes")).transpose()?.flatten()
        {
            features.insert("EBS_MALWARE_PROTECTION".into(), status_word(enable));
        }
    }
    Ok(())
}

fn frequency(input: &Input) -> AwsResult<Option<String>> {
    match input.str("findingPublishingFrequency")? {
        None => Ok(None),
        Some(f @ ("FIFTEEN_MINUTES" | "ONE_HOUR" | "SIX_HOURS")) => Ok(Some(f.to_string())),
        Some(_) => Err(invalid_parameter("findingPublishingFrequency")),
    }
}

fn new_detector(w: &mut World, enabled: bool, now: Millis) -> Detector {
    Detector {
        id: w.ids.hex(32),
        status: status_word(enabled),
        created_ms: now,
        updated_ms: now,
        finding_publishing_frequency: "SIX_HOURS".into(),
        features: BTreeMap::new(),
        tags: BTreeMap::new(),
        members: BTreeMap::new(),
        administrator: None,
        invitations: BTreeMap::new(),
        findings: BTreeMap::new(),
        org_auto_enable: "NONE".into(),
    }
}

fn create_detector(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let enable = input
        .bool("enable")?
        .ok_or_else(|| bad("The request is rejected because the required parameter enable is missing."))?;
    let freq = frequency(&input)?;
    let mut features = BTreeMap::new();
    apply_features(&input, &mut features)?;
    let tags = string_map(&input, "tags")?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    if any_detector(&w, account, region).is_some() {
        return Err(bad("A detector already exists for the current account."));
    }
    let now = w.now();
    let mut det = new_detector(&mut w, enable, now);
    if let Some(f) = freq {
        det.finding_publishing_frequency = f;
    }
    det.features = features;
    det.tags = tags;
    let id = det.id.clone();
    w.region_mut(account, region).detector = Some(det);
    w.mutated("guardduty:CreateDetector", &id, account, region);
    ok(json!({"detectorId": id}))
}

fn list_detectors(call: &Call<'_>) -> AwsResult<Response> {
    let size = query_max_results(call.req, 50)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let w = call.read();
    let ids: Vec<String> = any_detector(&w, call.account(), call.region).map(|d| d.id.clone()).into_iter().collect();
    let (page, next) = paginate(&ids, offset, size);
    ok(with_token(json!({"detectorIds": page}), next))
}

fn get_detector(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    let d = detector(&w, account, region, &id)?;
    let features = effective_features(d);
    let st = |name: &str| features.get(name).cloned().unwrap_or_else(|| "DISABLED".into());
    let service_role = format!(
        "arn:aws:iam::{account}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty"
    );
    let freq =
        if d.finding_publishing_frequency.is_empty() { "SIX_HOURS" } else { d.finding_publishing_frequency.as_str() };
    let feature_list: Vec<Value> = FEATURES
        .iter()
        .map(|name| json!({"name": name, "status": st(name), "updatedAt": epoch_seconds(d.updated_ms)}))
        .collect();
    ok(json!({
        "createdAt": iso8601(d.created_ms),
        "updatedAt": iso8601(d.updated_ms),
        "findingPublishingFrequency": freq,
        "serviceRole": service_role,
        "status": d.status,
        "dataSources": {
            "cloudTrail": {"status": st("CLOUD_TRAIL")},
            "dnsLogs": {"status": st("DNS_LOGS")},
            "flowLogs": {"status": st("FLOW_LOGS")},
            "s3Logs": {"status": st("S3_DATA_EVENTS")},
            "kubernetes": {"auditLogs": {"status": st("EKS_AUDIT_LOGS")}},
            "malwareProtection": {
                "scanEc2InstanceWithFindings": {"ebsVolumes": {"status": st("EBS_MALWARE_PROTECTION")}},
                "serviceRole": service_role,
            },
        },
        "tags": d.tags,
        "features": feature_list,
    }))
}

fn update_detector(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let enable = input.bool("enable")?;
    let freq = frequency(&input)?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let now = w.now();
    let d = detector_mut(&mut w, account, region, &id)?;
    let mut features = d.features.clone();
    apply_features(&input, &mut features)?;
    d.features = features;
    if let Some(e) = enable {
        d.status = status_word(e);
    }
    if let Some(f) = freq {
        d.finding_publishing_frequency = f;
    }
    d.updated_ms = now;
    w.mutated("guardduty:UpdateDetector", &id, account, region);
    ok(json!({}))
}

fn delete_detector(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    let now = w.now();
    let removed = w.region_mut(account, region).detector.take();
    // Members of this detector lose their administrator.
    let members: Vec<String> = removed.as_ref().map(|d| d.members.keys().cloned().collect()).unwrap_or_default();
    for m in &members {
        if let Some(md) = any_detector_mut(&mut w, m, region)
            && md.administrator.as_ref().is_some_and(|a| a.account_id == account)
        {
            md.administrator = None;
        }
    }
    // An administrator that had this account as a member sees it removed.
    let admins: Vec<String> = admin_records(&w, account, region).into_iter().map(|(a, _)| a).collect();
    for a in admins {
        if let Some(m) = any_detector_mut(&mut w, &a, region).and_then(|d| d.members.get_mut(account)) {
            m.relationship_status = "Removed".into();
            m.detector_id = None;
            m.updated_ms = now;
        }
    }
    w.mutated("guardduty:DeleteDetector", &id, account, region);
    for m in &members {
        w.schedule(m, region);
    }
    ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Membership

/// Administrators in a region whose detectors list `account` as a member: (admin, record).
fn admin_records<'w>(w: &'w World, account: &str, region: &str) -> Vec<(String, &'w GdMember)> {
    w.regions
        .iter()
        .filter(|((a, r), _)| r == region && a != account)
        .filter_map(|((a, _), rs)| Some((a.clone(), rs.detector.as_ref()?.members.get(account)?)))
        .collect()
}

/// The administrator of `account`'s detector as GuardDuty reports it: the member side's link,
/// with the status the administrator's member record holds; or an administrator that lists the
/// account as an enabled member.
struct AdminLink {
    account_id: String,
    invitation_id: String,
    invited_ms: Option<Millis>,
    status: String,
}

fn administrator_of(w: &World, account: &str, region: &str) -> Option<AdminLink> {
    let records = admin_records(w, account, region);
    if let Some(a) = any_detector(w, account, region).and_then(|d| d.administrator.as_ref()) {
        let record = records.iter().find(|(admin, _)| *admin == a.account_id).map(|(_, m)| *m);
        return Some(AdminLink {
            account_id: a.account_id.clone(),
            invitation_id: a.invitation_id.clone(),
            invited_ms: record.and_then(|m| m.invited_ms).or(Some(a.invited_ms)),
            status: record.map(|m| m.relationship_status.clone()).unwrap_or_else(|| a.status.clone()),
        });
    }
    records.into_iter().find(|(_, m)| m.relationship_status == "Enabled").map(|(admin, m)| AdminLink {
        account_id: admin,
        invitation_id: String::new(),
        invited_ms: m.invited_ms,
        status: m.relationship_status.clone(),
    })
}

fn member_json(admin: &str, m: &GdMember) -> Value {
    let mut v = json!({
        "accountId": m.account_id,
        "masterId": admin,
        "administratorId": admin,
        "email": m.email,
        "relationshipStatus": m.relationship_status,
        "updatedAt": iso8601(m.updated_ms),
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(d) = &m.detector_id {
            obj.insert("detectorId".into(), json!(d));
        }
        if let Some(t) = m.invited_ms {
            obj.insert("invitedAt".into(), json!(iso8601(t)));
        }
    }
    v
}

/// Makes `member` an organization-managed, `Enabled` member of `admin`'s detector, turning
/// GuardDuty on in the member account (creating its detector if it has none).
fn enroll(w: &mut World, admin: &str, member: &str, region: &str, email: Option<String>, now: Millis) {
    let member_det = match any_detector_mut(w, member, region) {
        Some(d) => {
            if d.status != "ENABLED" {
                d.status = "ENABLED".into();
                d.updated_ms = now;
            }
            d.id.clone()
        }
        None => {
            let d = new_detector(w, true, now);
            let id = d.id.clone();
            w.region_mut(member, region).detector = Some(d);
            id
        }
    };
    if let Some(d) = any_detector_mut(w, member, region) {
        d.administrator = Some(HubAdministrator {
            account_id: admin.to_string(),
            invitation_id: String::new(),
            invited_ms: now,
            status: "Enabled".into(),
        });
        d.invitations.remove(admin);
    }
    let fallback_email = w.accounts.get(member).map(|a| a.email.clone()).unwrap_or_default();
    if let Some(d) = any_detector_mut(w, admin, region) {
        let m = d.members.entry(member.to_string()).or_insert_with(|| GdMember {
            account_id: member.to_string(),
            email: fallback_email,
            relationship_status: "Enabled".into(),
            invited_ms: None,
            updated_ms: now,
            detector_id: None,
        });
        if let Some(e) = email {
            m.email = e;
        }
        m.relationship_status = "Enabled".into();
        m.detector_id = Some(member_det);
        m.updated_ms = now;
    }
}

fn account_ids(input: &Input) -> AwsResult<Vec<String>> {
    let ids = input.strings("accountIds")?;
    if ids.is_empty() || ids.len() > MAX_ACCOUNTS {
        return Err(invalid_parameter("accountIds"));
    }
    Ok(ids)
}

fn create_members(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let details = input.objects("accountDetails")?;
    if details.is_empty() || details.len() > MAX_ACCOUNTS {
        return Err(invalid_parameter("accountDetails"));
    }
    let mut wanted = Vec::new();
    for d in &details {
        wanted.push((d.req_str("accountId")?.to_string(), d.str("email")?.map(str::to_string)));
    }
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    let now = w.now();
    let is_org_admin = org_admin(&w, region) == Some(account);
    let mut out = Vec::new();
    let mut touched = Vec::new();
    for (member, email) in wanted {
        if !valid_account_id(&member) {
            out.push(unprocessed(&member, "The request is rejected because the input account ID is invalid."));
            continue;
        }
        if member == account {
            out.push(unprocessed(
                &member,
                "The request is rejected because the current account cannot be a member of itself.",
            ));
            continue;
        }
        let other_admin = administrator_of(&w, &member, region)
            .filter(|a| a.account_id != account && (a.status == "Enabled" || a.status == "Invited"));
        if other_admin.is_some() {
            out.push(unprocessed(
                &member,
                "The request is rejected because the account is already associated with a different administrator account.",
            ));
            continue;
        }
        if is_org_admin && in_org(&w, &member) {
            enroll(&mut w, account, &member, region, email, now);
        } else {
            let member_det = any_detector(&w, &member, region).map(|d| d.id.clone());
            let fallback_email = w.accounts.get(&member).map(|a| a.email.clone()).unwrap_or_default();
            let d = detector_mut(&mut w, account, region, &id)?;
            let m = d.members.entry(member.clone()).or_insert_with(|| GdMember {
                account_id: member.clone(),
                email: fallback_email,
                relationship_status: "Created".into(),
                invited_ms: None,
                updated_ms: now,
                detector_id: None,
            });
            if let Some(e) = email {
                m.email = e;
            }
            if matches!(m.relationship_status.as_str(), "Removed" | "Resigned" | "Deleted") {
                m.relationship_status = "Created".into();
            }
            m.detector_id = member_det;
            m.updated_ms = now;
        }
        touched.push(member);
    }
    for m in &touched {
        w.mutated("guardduty:CreateMembers", m, m, region);
    }
    ok(json!({"unprocessedAccounts": out}))
}

fn associated(status: &str) -> bool {
    !matches!(status, "Created" | "Removed" | "Resigned" | "Deleted" | "EmailVerificationFailed")
}

fn list_members(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let size = query_max_results(call.req, 50)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let only_associated = match call.req.query_param("onlyAssociated") {
        None | Some("true") | Some("TRUE") | Some("True") => true,
        Some("false") | Some("FALSE") | Some("False") => false,
        Some(_) => return Err(invalid_parameter("onlyAssociated")),
    };
    let account = call.account();
    let w = call.read();
    let d = detector(&w, account, call.region, &id)?;
    let members: Vec<Value> = d
        .members
        .values()
        .filter(|m| !only_associated || associated(&m.relationship_status))
        .map(|m| member_json(account, m))
        .collect();
    let (page, next) = paginate(&members, offset, size);
    ok(with_token(json!({"members": page}), next))
}

fn get_members(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let ids = account_ids(&body(call)?)?;
    let account = call.account();
    let w = call.read();
    let d = detector(&w, account, call.region, &id)?;
    let mut members = Vec::new();
    let mut out = Vec::new();
    for a in ids {
        match d.members.get(&a) {
            Some(m) => members.push(member_json(account, m)),
            None => out.push(unprocessed(
                &a,
                "The request is rejected because the input account ID is not a member of the current account.",
            )),
        }
    }
    ok(json!({"members": members, "unprocessedAccounts": out}))
}

/// DeleteMembers and DisassociateMembers.
fn remove_members(call: &Call<'_>, op: &str) -> AwsResult<Response> {
    let id = path_detector(call);
    let ids = account_ids(&body(call)?)?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let d = detector(&w, account, region, &id)?;
    let auto_all = d.org_auto_enable == "ALL" && org_admin(&w, region) == Some(account);
    let now = w.now();
    let mut out = Vec::new();
    let mut touched = Vec::new();
    for a in ids {
        let Some(status) = d.members.get(&a).map(|m| m.relationship_status.clone()) else {
            out.push(unprocessed(
                &a,
                "The request is rejected because the input account ID is not a member of the current account.",
            ));
            continue;
        };
        if auto_all && in_org(&w, &a) && status == "Enabled" {
            out.push(unprocessed(
                &a,
                "The request is rejected because autoEnableOrganizationMembers is set to ALL for the organization: the account stays a member while it is in the organization.",
            ));
            continue;
        }
        touched.push(a);
    }
    for a in &touched {
        if let Ok(d) = detector_mut(&mut w, account, region, &id) {
            if op == "DeleteMembers" {
                d.members.remove(a);
            } else if let Some(m) = d.members.get_mut(a) {
                m.relationship_status = "Removed".into();
                m.updated_ms = now;
            }
        }
        if let Some(md) = any_detector_mut(&mut w, a, region) {
            if md.administrator.as_ref().is_some_and(|x| x.account_id == account) {
                md.administrator = None;
            }
            md.invitations.remove(account);
        }
    }
    for a in &touched {
        w.mutated(&format!("guardduty:{op}"), a, a, region);
    }
    ok(json!({"unprocessedAccounts": out}))
}

fn invite_members(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let ids = account_ids(&body(call)?)?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    let now = w.now();
    let mut out = Vec::new();
    let mut touched = Vec::new();
    for a in ids {
        let status = detector(&w, account, region, &id)?.members.get(&a).map(|m| m.relationship_status.clone());
        match status.as_deref() {
            None => {
                out.push(unprocessed(
                    &a,
                    "The request is rejected because the input account ID is not a member of the current account.",
                ));
                continue;
            }
            Some("Enabled") => {
                out.push(unprocessed(
                    &a,
                    "The request is rejected because the account is already associated with the current account.",
                ));
                continue;
            }
            Some(_) => {}
        }
        if administrator_of(&w, &a, region).is_some_and(|l| l.account_id != account && l.status == "Enabled") {
            out.push(unprocessed(
                &a,
                "The request is rejected because the account is already associated with a different administrator account.",
            ));
            continue;
        }
        let invitation_id = derived_id(&[account, &a, &now.to_string()]);
        if let Some(m) = detector_mut(&mut w, account, region, &id)?.members.get_mut(&a) {
            m.relationship_status = "Invited".into();
            m.invited_ms = Some(now);
            m.updated_ms = now;
        }
        if let Some(md) = any_detector_mut(&mut w, &a, region) {
            md.invitations.insert(
                account.to_string(),
                Invitation {
                    account_id: account.to_string(),
                    invitation_id,
                    invited_ms: now,
                    status: "Invited".into(),
                },
            );
        }
        touched.push(a);
    }
    for a in &touched {
        w.mutated("guardduty:InviteMembers", a, account, region);
    }
    ok(json!({"unprocessedAccounts": out}))
}

/// Invitations waiting for `account` in a region, keyed by the inviting administrator.
fn pending_invitations(w: &World, account: &str, region: &str) -> BTreeMap<String, Invitation> {
    let stored = any_detector(w, account, region).map(|d| d.invitations.clone()).unwrap_or_default();
    let mut out = BTreeMap::new();
    for (admin, m) in admin_records(w, account, region) {
        if m.relationship_status != "Invited" {
            continue;
        }
        let invited = m.invited_ms.unwrap_or(m.updated_ms);
        let invitation_id = stored
            .get(&admin)
            .map(|i| i.invitation_id.clone())
            .unwrap_or_else(|| derived_id(&[&admin, account, &invited.to_string()]));
        out.insert(
            admin.clone(),
            Invitation { account_id: admin, invitation_id, invited_ms: invited, status: "Invited".into() },
        );
    }
    out
}

fn invitation_json(i: &Invitation) -> Value {
    json!({
        "accountId": i.account_id,
        "invitationId": i.invitation_id,
        "relationshipStatus": i.status,
        "invitedAt": iso8601(i.invited_ms),
    })
}

fn list_invitations(call: &Call<'_>) -> AwsResult<Response> {
    let size = query_max_results(call.req, 50)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let w = call.read();
    let list: Vec<Value> = pending_invitations(&w, call.account(), call.region).values().map(invitation_json).collect();
    let (page, next) = paginate(&list, offset, size);
    ok(with_token(json!({"invitations": page}), next))
}

fn get_invitations_count(call: &Call<'_>) -> AwsResult<Response> {
    let w = call.read();
    ok(json!({"invitationsCount": pending_invitations(&w, call.account(), call.region).len()}))
}

fn accept_invitation(call: &Call<'_>, op: &str, admin_field: &str) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let admin = input.req_str(admin_field)?.to_string();
    let invitation_id = input.req_str("invitationId")?.to_string();
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let det_id = detector(&w, account, region, &id)?.id.clone();
    let Some(inv) = pending_invitations(&w, account, region).remove(&admin) else {
        return Err(bad(format!(
            "The request is rejected because there is no pending invitation from account {admin}."
        )));
    };
    if inv.invitation_id != invitation_id {
        return Err(invalid_parameter("invitationId"));
    }
    let now = w.now();
    if let Some(m) = any_detector_mut(&mut w, &admin, region).and_then(|d| d.members.get_mut(account)) {
        m.relationship_status = "Enabled".into();
        m.detector_id = Some(det_id);
        m.updated_ms = now;
    }
    let d = detector_mut(&mut w, account, region, &id)?;
    d.invitations.remove(&admin);
    d.administrator = Some(HubAdministrator {
        account_id: admin.clone(),
        invitation_id: inv.invitation_id,
        invited_ms: inv.invited_ms,
        status: "Enabled".into(),
    });
    w.mutated(&format!("guardduty:{op}"), &admin, account, region);
    w.schedule(&admin, region);
    ok(json!({}))
}

fn get_administrator(call: &Call<'_>, field: &str) -> AwsResult<Response> {
    let id = path_detector(call);
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    detector(&w, account, region, &id)?;
    let Some(link) = administrator_of(&w, account, region) else {
        return ok(json!({}));
    };
    let mut admin = json!({
        "accountId": link.account_id,
        "relationshipStatus": link.status,
    });
    if let Some(obj) = admin.as_object_mut() {
        if !link.invitation_id.is_empty() {
            obj.insert("invitationId".into(), json!(link.invitation_id));
        }
        if let Some(t) = link.invited_ms {
            obj.insert("invitedAt".into(), json!(iso8601(t)));
        }
    }
    let mut out = Map::new();
    out.insert(field.to_string(), admin);
    ok(Value::Object(out))
}

fn disassociate_from_administrator(call: &Call<'_>, op: &str) -> AwsResult<Response> {
    let id = path_detector(call);
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    let Some(link) = administrator_of(&w, account, region) else {
        return ok(json!({}));
    };
    if org_admin(&w, region) == Some(link.account_id.as_str()) && in_org(&w, account) && link.status == "Enabled" {
        return Err(bad(
            "The request is rejected because the member account is managed by the organization's GuardDuty administrator; only the administrator can disassociate it.",
        ));
    }
    let now = w.now();
    if let Some(m) = any_detector_mut(&mut w, &link.account_id, region).and_then(|d| d.members.get_mut(account)) {
        m.relationship_status = "Resigned".into();
        m.updated_ms = now;
    }
    if let Ok(d) = detector_mut(&mut w, account, region, &id) {
        d.administrator = None;
    }
    w.mutated(&format!("guardduty:{op}"), &link.account_id, account, region);
    w.schedule(&link.account_id, region);
    ok(json!({}))
}

/// DeclineInvitations and DeleteInvitations: the invitation goes away and the inviting
/// administrator sees the account as removed.
fn decline_invitations(call: &Call<'_>, op: &str) -> AwsResult<Response> {
    let ids = account_ids(&body(call)?)?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let pending = pending_invitations(&w, account, region);
    let now = w.now();
    let mut out = Vec::new();
    let mut touched = Vec::new();
    for admin in ids {
        if !pending.contains_key(&admin) {
            out.push(unprocessed(
                &admin,
                "The request is rejected because there is no pending invitation from the input account ID.",
            ));
            continue;
        }
        if let Some(m) = any_detector_mut(&mut w, &admin, region).and_then(|d| d.members.get_mut(account)) {
            m.relationship_status = "Removed".into();
            m.updated_ms = now;
        }
        if let Some(d) = any_detector_mut(&mut w, account, region) {
            d.invitations.remove(&admin);
        }
        touched.push(admin);
    }
    for a in &touched {
        w.mutated(&format!("guardduty:{op}"), a, account, region);
    }
    ok(json!({"unprocessedAccounts": out}))
}

// ---------------------------------------------------------------------------------------------
// Organization administration

fn require_management(w: &World, account: &str) -> AwsResult<()> {
    let Some(org) = &w.org else {
        return Err(bad("The request is rejected because the current account is not a member of an organization."));
    };
    if org.management_account != account || !in_org(w, account) {
        return Err(bad(
            "The request is rejected because the current account is not the management account of the organization.",
        ));
    }
    Ok(())
}

fn enable_organization_admin(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let admin = input.req_str("adminAccountId")?.to_string();
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    require_management(&w, account)?;
    if !valid_account_id(&admin) || !in_org(&w, &admin) {
        return Err(bad(
            "The request is rejected because the input adminAccountId is not a member of the organization.",
        ));
    }
    if let Some(current) = org_admin(&w, region)
        && current != admin
    {
        return Err(bad(format!(
            "The request is rejected because account {current} is already the GuardDuty administrator for the organization."
        )));
    }
    w.org_admins.insert(("guardduty".into(), region.to_string()), admin.clone());
    if let Some(org) = w.org.as_mut() {
        org.delegated_admins.insert((admin.clone(), SERVICE_PRINCIPAL.into()));
        org.service_access.insert(SERVICE_PRINCIPAL.into());
    }
    w.mutated("guardduty:EnableOrganizationAdminAccount", &admin, &admin, region);
    ok(json!({}))
}

fn disable_organization_admin(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let admin = input.req_str("adminAccountId")?.to_string();
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    require_management(&w, account)?;
    if org_admin(&w, region) != Some(admin.as_str()) {
        return Err(bad(
            "The request is rejected because the input adminAccountId is not the GuardDuty administrator of the organization.",
        ));
    }
    w.org_admins.remove(&("guardduty".to_string(), region.to_string()));
    let still_admin_elsewhere = w.org_admins.iter().any(|((s, _), a)| s == "guardduty" && *a == admin);
    if !still_admin_elsewhere && let Some(org) = w.org.as_mut() {
        org.delegated_admins.remove(&(admin.clone(), SERVICE_PRINCIPAL.to_string()));
    }
    w.mutated("guardduty:DisableOrganizationAdminAccount", &admin, &admin, region);
    ok(json!({}))
}

fn list_organization_admins(call: &Call<'_>) -> AwsResult<Response> {
    let size = query_max_results(call.req, 50)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let w = call.read();
    require_management(&w, call.account())?;
    let admins: Vec<Value> = org_admin(&w, call.region)
        .map(|a| json!({"adminAccountId": a, "adminStatus": "ENABLED"}))
        .into_iter()
        .collect();
    let (page, next) = paginate(&admins, offset, size);
    ok(with_token(json!({"adminAccounts": page}), next))
}

fn require_org_admin(w: &World, account: &str, region: &str) -> AwsResult<()> {
    if org_admin(w, region) != Some(account) {
        return Err(bad(
            "The request is rejected because the current account is not the GuardDuty delegated administrator of the organization.",
        ));
    }
    Ok(())
}

fn auto_enable_word(d: &Detector) -> &str {
    match d.org_auto_enable.as_str() {
        "" => "NONE",
        other => other,
    }
}

fn update_organization_configuration(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let members_mode = match input.str("autoEnableOrganizationMembers")? {
        None => None,
        Some(m @ ("NEW" | "ALL" | "NONE")) => Some(m.to_string()),
        Some(_) => return Err(invalid_parameter("autoEnableOrganizationMembers")),
    };
    let legacy = input.bool("autoEnable")?;
    for f in input.objects("features")? {
        let name = f.req_str("name")?;
        if !SETTABLE_FEATURES.contains(&name) {
            return Err(invalid_parameter("features.name"));
        }
        if let Some(a) = f.str("autoEnable")?
            && !matches!(a, "NEW" | "NONE" | "ALL")
        {
            return Err(invalid_parameter("features.autoEnable"));
        }
    }
    let mode = members_mode.or_else(|| legacy.map(|b| if b { "NEW".to_string() } else { "NONE".to_string() }));
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    require_org_admin(&w, account, region)?;
    let now = w.now();
    let mut enrolled = Vec::new();
    if let Some(mode) = mode {
        detector_mut(&mut w, account, region, &id)?.org_auto_enable = mode.clone();
        if mode == "ALL" {
            let accounts: Vec<String> =
                w.accounts.values().filter(|a| a.in_org() && a.id != account).map(|a| a.id.clone()).collect();
            for a in accounts {
                let enabled = detector(&w, account, region, &id)?
                    .members
                    .get(&a)
                    .is_some_and(|m| m.relationship_status == "Enabled");
                let elsewhere =
                    administrator_of(&w, &a, region).is_some_and(|l| l.account_id != account && l.status == "Enabled");
                if !enabled && !elsewhere {
                    enroll(&mut w, account, &a, region, None, now);
                    enrolled.push(a);
                }
            }
        }
    }
    w.mutated("guardduty:UpdateOrganizationConfiguration", &id, account, region);
    for a in &enrolled {
        w.schedule(a, region);
    }
    ok(json!({}))
}

fn describe_organization_configuration(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    let d = detector(&w, account, region, &id)?;
    require_org_admin(&w, account, region)?;
    let mode = auto_enable_word(d);
    ok(json!({
        "autoEnable": mode != "NONE",
        "memberAccountLimitReached": false,
        "autoEnableOrganizationMembers": mode,
    }))
}

// ---------------------------------------------------------------------------------------------
// Findings

/// The findings a detector can see: its own, then those of its enabled members.
fn visible<'w>(w: &'w World, region: &str, d: &'w Detector) -> Vec<&'w Value> {
    let mut out: Vec<&Value> = d.findings.values().collect();
    for m in d.members.values().filter(|m| m.relationship_status == "Enabled") {
        if let Some(md) = any_detector(w, &m.account_id, region) {
            out.extend(md.findings.values());
        }
    }
    out
}

fn finding_str<'a>(f: &'a Value, field: &str) -> &'a str {
    f.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Values at a dotted path, with lists flattened (`resource.instanceDetails.tags.key`).
fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            let items: Vec<&Value> = match c {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                match item.get(seg) {
                    Some(Value::Array(a)) => next.extend(a.iter()),
                    Some(Value::Null) | None => {}
                    Some(x) => next.push(x),
                }
            }
        }
        cur = next;
    }
    cur
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as a number: numbers as they are, timestamps as epoch milliseconds.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().or_else(|| parse_iso8601(s).map(|ms| ms as f64)),
        _ => None,
    }
}

fn same(v: &Value, s: &str) -> bool {
    if text(v) == s {
        return true;
    }
    match (number(v), s.parse::<f64>()) {
        (Some(a), Ok(b)) => a == b,
        _ => false,
    }
}

const STRING_OPS: &[&str] = &["eq", "neq", "equals", "notEquals", "matches", "notMatches"];
const NUMBER_OPS: &[&str] =
    &["gt", "gte", "lt", "lte", "greaterThan", "greaterThanOrEqual", "lessThan", "lessThanOrEqual"];

type Criteria = Vec<(String, Map<String, Value>)>;

fn known_attribute(path: &str) -> bool {
    let top = path.split('.').next().unwrap_or_default();
    FINDING_ATTRIBUTES.contains(&top) && !path.split('.').any(str::is_empty)
}

fn parse_criteria(input: &Input) -> AwsResult<Criteria> {
    let Some(fc) = input.object("findingCriteria")? else {
        return Ok(Vec::new());
    };
    let crit = match fc.raw("criterion") {
        None => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid_parameter("findingCriteria.criterion")),
    };
    let mut out = Vec::new();
    for (path, cond) in crit {
        if !known_attribute(path) {
            return Err(invalid_parameter(&format!("findingCriteria.criterion.{path}")));
        }
        let Value::Object(ops) = cond else {
            return Err(invalid_parameter(&format!("findingCriteria.criterion.{path}")));
        };
        for (op, arg) in ops {
            let valid = if STRING_OPS.contains(&op.as_str()) {
                arg.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            } else if NUMBER_OPS.contains(&op.as_str()) {
                arg.is_i64() || arg.is_u64()
            } else {
                false
            };
            if !valid {
                return Err(invalid_parameter(&format!("findingCriteria.criterion.{path}.{op}")));
            }
        }
        out.push((path.clone(), ops.clone()));
    }
    Ok(out)
}

fn holds(f: &Value, path: &str, ops: &Map<String, Value>) -> bool {
    let vals = values_at(f, path);
    let strs = |arg: &Value| -> Vec<String> {
        arg.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
    };
    ops.iter().all(|(op, arg)| {
        let bound = arg.as_f64().unwrap_or(0.0);
        let any_num = |cmp: fn(f64, f64) -> bool| vals.iter().filter_map(|v| number(v)).any(|n| cmp(n, bound));
        match op.as_str() {
            "eq" | "equals" => strs(arg).iter().any(|s| vals.iter().any(|v| same(v, s))),
            "neq" | "notEquals" => !strs(arg).iter().any(|s| vals.iter().any(|v| same(v, s))),
            "matches" => strs(arg).iter().any(|p| vals.iter().any(|v| crate::wire::wildcard(p, &text(v)))),
            "notMatches" => !strs(arg).iter().any(|p| vals.iter().any(|v| crate::wire::wildcard(p, &text(v)))),
            "gt" | "greaterThan" => any_num(|a, b| a > b),
            "gte" | "greaterThanOrEqual" => any_num(|a, b| a >= b),
            "lt" | "lessThan" => any_num(|a, b| a < b),
            "lte" | "lessThanOrEqual" => any_num(|a, b| a <= b),
            _ => false,
        }
    })
}

fn matches_all(f: &Value, criteria: &Criteria) -> bool {
    criteria.iter().all(|(p, ops)| holds(f, p, ops))
}

/// `sortCriteria`: (attribute, descending).
fn parse_sort(input: &Input) -> AwsResult<Option<(String, bool)>> {
    let Some(s) = input.object("sortCriteria")? else {
        return Ok(None);
    };
    let Some(attr) = s.str("attributeName")? else {
        return Ok(None);
    };
    if !known_attribute(attr) {
        return Err(invalid_parameter("sortCriteria.attributeName"));
    }
    let desc = match s.str("orderBy")? {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(_) => return Err(invalid_parameter("sortCriteria.orderBy")),
    };
    Ok(Some((attr.to_string(), desc)))
}

fn compare_at(a: &Value, b: &Value, path: &str) -> Ordering {
    let va = values_at(a, path).first().copied();
    let vb = values_at(b, path).first().copied();
    match (va, vb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match (x, y) {
            (Value::Number(_), Value::Number(_)) => {
                number(x).unwrap_or(0.0).partial_cmp(&number(y).unwrap_or(0.0)).unwrap_or(Ordering::Equal)
            }
            _ => text(x).cmp(&text(y)),
        },
    }
}

fn sort_findings(list: &mut [&Value], sort: &Option<(String, bool)>) {
    match sort {
        Some((attr, desc)) => list.sort_by(|a, b| {
            let o = compare_at(a, b, attr).then_with(|| finding_str(a, "id").cmp(finding_str(b, "id")));
            if *desc { o.reverse() } else { o }
        }),
        None => list.sort_by(|a, b| {
            finding_str(a, "createdAt")
                .cmp(finding_str(b, "createdAt"))
                .then_with(|| finding_str(a, "id").cmp(finding_str(b, "id")))
        }),
    }
}

fn list_findings(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let size = match input.i64("maxResults")? {
        None => 50,
        Some(n) if (1..=50).contains(&n) => n as usize,
        Some(_) => return Err(invalid_parameter("maxResults")),
    };
    let offset = token_offset(input.str("nextToken")?)?;
    let criteria = parse_criteria(&input)?;
    let sort = parse_sort(&input)?;
    let w = call.read();
    let d = detector(&w, call.account(), call.region, &id)?;
    let mut list: Vec<&Value> = visible(&w, call.region, d).into_iter().filter(|f| matches_all(f, &criteria)).collect();
    sort_findings(&mut list, &sort);
    let ids: Vec<String> = list.iter().map(|f| finding_str(f, "id").to_string()).collect();
    let (page, next) = paginate(&ids, offset, size);
    ok(with_token(json!({"findingIds": page}), next))
}

fn finding_ids(input: &Input) -> AwsResult<Vec<String>> {
    let ids = input.strings("findingIds")?;
    if ids.len() > MAX_FINDING_IDS {
        return Err(bad(format!(
            "The request is rejected because findingIds contains {} ids; at most {MAX_FINDING_IDS} are allowed.",
            ids.len()
        )));
    }
    Ok(ids)
}

fn get_findings(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let ids = finding_ids(&input)?;
    let sort = parse_sort(&input)?;
    let w = call.read();
    let d = detector(&w, call.account(), call.region, &id)?;
    let by_id: BTreeMap<&str, &Value> =
        visible(&w, call.region, d).into_iter().map(|f| (finding_str(f, "id"), f)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut list: Vec<&Value> =
        ids.iter().filter(|i| seen.insert(i.as_str())).filter_map(|i| by_id.get(i.as_str()).copied()).collect();
    if sort.is_some() {
        sort_findings(&mut list, &sort);
    }
    ok(json!({"findings": list}))
}

/// ArchiveFindings and UnarchiveFindings. Only an administrator (or an account without one) may
/// archive; an administrator may archive its members' findings.
fn set_archived(call: &Call<'_>, archived: bool) -> AwsResult<Response> {
    let op = if archived { "guardduty:ArchiveFindings" } else { "guardduty:UnarchiveFindings" };
    let id = path_detector(call);
    let ids = finding_ids(&body(call)?)?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let targets: Vec<(String, String)> = {
        let d = detector(&w, account, region, &id)?;
        if administrator_of(&w, account, region).is_some_and(|l| l.status == "Enabled") {
            return Err(bad(
                "The request is rejected because the current account is a member account: only the administrator account can archive or unarchive findings.",
            ));
        }
        let wanted: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        visible(&w, region, d)
            .into_iter()
            .filter(|f| wanted.contains(finding_str(f, "id")))
            .map(|f| (finding_str(f, "accountId").to_string(), finding_str(f, "id").to_string()))
            .collect()
    };
    for (owner, fid) in &targets {
        let finding = any_detector_mut(&mut w, owner, region).and_then(|d| d.findings.get_mut(fid));
        if let Some(service) = finding.and_then(|f| f.get_mut("service")).and_then(Value::as_object_mut) {
            service.insert("archived".into(), Value::Bool(archived));
        }
        w.mutated(op, fid, owner, region);
    }
    ok(json!({}))
}

fn sample_finding(account: &str, region: &str, detector_id: &str, finding_type: &str, id: &str, now: Millis) -> Value {
    let (severity, description) = eval::threat_profile(finding_type);
    let resource = if finding_type.contains(":IAMUser/") {
        json!({"resourceType": "AccessKey", "accessKeyDetails": {
            "accessKeyId": "ASIASAMPLEACCESSKEY0", "principalId": "AIDASAMPLEPRINCIPAL0",
            "userName": "GeneratedFindingUserName", "userType": "IAMUser"}})
    } else {
        json!({"resourceType": "Instance", "instanceDetails": {
            "instanceId": "i-99999999", "instanceType": "m3.xlarge", "instanceState": "running",
            "imageId": "ami-99999999", "launchTime": iso8601(now),
            "tags": [{"key": "GeneratedFindingInstanceTag1", "value": "GeneratedFindingInstanceValue1"}]}})
    };
    let ts = iso8601(now);
    json!({
        "accountId": account,
        "arn": format!("arn:aws:guardduty:{region}:{account}:detector/{detector_id}/finding/{id}"),
        "createdAt": ts,
        "updatedAt": ts,
        "description": description,
        "id": id,
        "partition": "aws",
        "region": region,
        "resource": resource,
        "schemaVersion": "2.0",
        "service": {"archived": false, "count": 1, "detectorId": detector_id, "eventFirstSeen": ts,
                    "eventLastSeen": ts, "serviceName": "guardduty", "resourceRole": "TARGET",
                    "additionalInfo": {"value": "{\"sample\":true}", "type": "default"}},
        "severity": severity,
        "title": description,
        "type": finding_type,
    })
}

fn create_sample_findings(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let mut types = input.strings("findingTypes")?;
    for t in &types {
        let well_formed = t.len() <= 100 && t.split_once(':').is_some_and(|(_, rest)| rest.contains('/'));
        if !well_formed {
            return Err(invalid_parameter("findingTypes"));
        }
    }
    if types.is_empty() {
        types = SAMPLE_TYPES.iter().map(|s| s.to_string()).collect();
    }
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    detector(&w, account, region, &id)?;
    let now = w.now();
    for t in &types {
        let fid = w.ids.hex(32);
        let f = sample_finding(account, region, &id, t, &fid, now);
        detector_mut(&mut w, account, region, &id)?.findings.insert(fid, f);
    }
    w.mutated("guardduty:CreateSampleFindings", &id, account, region);
    ok(json!({}))
}

/// A statistics group: (count, last generated, highest severity, a representative finding).
type Group<'a> = (i64, Millis, f64, &'a Value);

fn severity_key(s: f64) -> String {
    format!("{s:.1}")
}

fn get_findings_statistics(call: &Call<'_>) -> AwsResult<Response> {
    let id = path_detector(call);
    let input = body(call)?;
    let types = input.strings("findingStatisticTypes")?;
    if types.iter().any(|t| t != "COUNT_BY_SEVERITY") {
        return Err(invalid_parameter("findingStatisticTypes"));
    }
    let group_by = match input.str("groupBy")? {
        None => None,
        Some(g @ ("ACCOUNT" | "DATE" | "FINDING_TYPE" | "RESOURCE" | "SEVERITY")) => Some(g.to_string()),
        Some(_) => return Err(invalid_parameter("groupBy")),
    };
    let desc = match input.str("orderBy")? {
        None | Some("DESC") => true,
        Some("ASC") => false,
        Some(_) => return Err(invalid_parameter("orderBy")),
    };
    let limit = match input.i64("maxResults")? {
        None => 25,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(_) => return Err(invalid_parameter("maxResults")),
    };
    let criteria = parse_criteria(&input)?;
    let w = call.read();
    let d = detector(&w, call.account(), call.region, &id)?;
    let list: Vec<&Value> = visible(&w, call.region, d).into_iter().filter(|f| matches_all(f, &criteria)).collect();
    let severity = |f: &Value| f.get("severity").and_then(Value::as_f64).unwrap_or(0.0);
    let generated = |f: &Value| parse_iso8601(finding_str(f, "updatedAt")).unwrap_or(0);

    let mut stats = Map::new();
    if group_by.is_none() || !types.is_empty() {
        let mut by_sev: BTreeMap<String, i64> = BTreeMap::new();
        for f in &list {
            *by_sev.entry(severity_key(severity(f))).or_default() += 1;
        }
        stats.insert("countBySeverity".into(), json!(by_sev));
    }
    if let Some(g) = group_by {
        let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
        for f in &list {
            let key = match g.as_str() {
                "ACCOUNT" => finding_str(f, "accountId").to_string(),
                "FINDING_TYPE" => finding_str(f, "type").to_string(),
                "SEVERITY" => severity_key(severity(f)),
                "RESOURCE" => resource_id(f),
                _ => iso8601(generated(f) - generated(f).rem_euclid(86_400_000))[..10].to_string(),
            };
            let e = groups.entry(key).or_insert((0, 0, 0.0, f));
            e.0 += 1;
            e.1 = e.1.max(generated(f));
            e.2 = e.2.max(severity(f));
        }
        let mut rows: Vec<(String, Group<'_>)> = groups.into_iter().collect();
        rows.sort_by(|a, b| {
            let o = a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(&a.0));
            if desc { o.reverse() } else { o }
        });
        rows.truncate(limit);
        let (field, values): (&str, Vec<Value>) = match g.as_str() {
            "ACCOUNT" => (
                "groupedByAccount",
                rows.iter()
                    .map(|(k, (n, last, _, _))| json!({"accountId": k, "lastGeneratedAt": epoch_seconds(*last), "totalFindings": n}))
                    .collect(),
            ),
            "FINDING_TYPE" => (
                "groupedByFindingType",
                rows.iter()
                    .map(|(k, (n, last, _, _))| json!({"findingType": k, "lastGeneratedAt": epoch_seconds(*last), "totalFindings": n}))
                    .collect(),
            ),
            "SEVERITY" => (
                "groupedBySeverity",
                rows.iter()
                    .map(|(_, (n, last, sev, _))| json!({"severity": sev, "lastGeneratedAt": epoch_seconds(*last), "totalFindings": n}))
                    .collect(),
            ),
            "RESOURCE" => (
                "groupedByResource",
                rows.iter()
                    .map(|(k, (n, last, _, f))| {
                        json!({"accountId": finding_str(f, "accountId"), "resourceId": k,
                               "resourceType": f.pointer("/resource/resourceType").and_then(Value::as_str).unwrap_or_default(),
                               "lastGeneratedAt": epoch_seconds(*last), "totalFindings": n})
                    })
                    .collect(),
            ),
            _ => (
                "groupedByDate",
                rows.iter()
                    .map(|(k, (n, last, sev, _))| {
                        let day = parse_iso8601(&format!("{k}T00:00:00Z")).unwrap_or(0);
                        json!({"date": epoch_seconds(day), "lastGeneratedAt": epoch_seconds(*last), "severity": sev, "totalFindings": n})
                    })
                    .collect(),
            ),
        };
        stats.insert(field.into(), Value::Array(values));
    }
    ok(json!({"findingStatistics": stats}))
}

fn resource_id(f: &Value) -> String {
    [
        "/resource/instanceDetails/instanceId",
        "/resource/accessKeyDetails/accessKeyId",
        "/resource/accessKeyDetails/userName",
    ]
    .iter()
    .find_map(|p| f.pointer(p).and_then(Value::as_str))
    .unwrap_or_default()
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Tags

/// The caller's detector named by the ARN in `/tags/{arn}`.
fn tagged_detector(call: &Call<'_>, w: &World) -> AwsResult<String> {
    let arn = call.req.segments().get(1).cloned().unwrap_or_default();
    let (account, region) = (call.account(), call.region);
    let d = any_detector(w, account, region)
        .filter(|d| arn == format!("arn:aws:guardduty:{region}:{account}:detector/{}", d.id))
        .ok_or_else(|| bad(format!("The request is rejected because the resource {arn} does not exist or is not owned by the current account.")))?;
    Ok(d.id.clone())
}

fn list_tags(call: &Call<'_>) -> AwsResult<Response> {
    let w = call.read();
    let id = tagged_detector(call, &w)?;
    let d = detector(&w, call.account(), call.region, &id)?;
    ok(json!({"tags": d.tags}))
}

fn tag_resource(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let tags = string_map(&input, "tags")?;
    if tags.is_empty() {
        return Err(invalid_parameter("tags"));
    }
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let id = tagged_detector(call, &w)?;
    detector_mut(&mut w, account, region, &id)?.tags.extend(tags);
    w.mutated("guardduty:TagResource", &id, account, region);
    Ok(Response::json(&json!({})).with_status(204))
}

fn untag_resource(call: &Call<'_>) -> AwsResult<Response> {
    let keys: Vec<String> = call.req.query.iter().filter(|(k, _)| k == "tagKeys").map(|(_, v)| v.clone()).collect();
    if keys.is_empty() {
        return Err(invalid_parameter("tagKeys"));
    }
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let id = tagged_detector(call, &w)?;
    let d = detector_mut(&mut w, account, region, &id)?;
    for k in &keys {
        d.tags.remove(k);
    }
    w.mutated("guardduty:UntagResource", &id, account, region);
    Ok(Response::json(&json!({})).with_status(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_paths() {
        assert!(crate::wire::wildcard("Crypto*", "CryptoCurrency:EC2/BitcoinTool.B!DNS"));
        assert!(crate::wire::wildcard("*Bitcoin*", "CryptoCurrency:EC2/BitcoinTool.B!DNS"));
        assert!(!crate::wire::wildcard("Recon*", "CryptoCurrency:EC2/BitcoinTool.B!DNS"));
        assert!(crate::wire::wildcard("i-?", "i-1"));
        let f = json!({"resource": {"instanceDetails": {"tags": [{"key": "Name", "value": "miner-1"}]}}, "severity": 8.0,
                       "service": {"archived": false}});
        let vals: Vec<String> = values_at(&f, "resource.instanceDetails.tags.value").into_iter().map(text).collect();
        assert_eq!(vals, vec!["miner-1"]);
        let eq = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(holds(&f, "severity", &eq(json!({"gte": 7}))));
        assert!(!holds(&f, "severity", &eq(json!({"lt": 7}))));
        assert!(holds(&f, "severity", &eq(json!({"eq": ["8"]}))));
        assert!(holds(&f, "service.archived", &eq(json!({"eq": ["false"]}))));
        assert!(holds(&f, "type", &eq(json!({"neq": ["x"]}))));
        assert!(!holds(&f, "type", &eq(json!({"eq": ["x"]}))));
    }
}
