//! Security Hub (restJson1): the hub, standards and controls, membership (org-managed and by
//! invitation), findings (GetFindings, BatchImportFindings, BatchUpdateFindings), action targets,
//! automation rules and the security control catalogue.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use crate::error::{AwsError, AwsResult};
use crate::services::Call;
use crate::wire::{Input, Millis, Request, Response, iso8601, percent_decode};
use crate::world::catalogue::{Standard, catalogue};
use crate::world::findings::{Filters, FindingStore, StoredFinding, sort_key};
use crate::world::{ActionTarget, Hub, HubAdministrator, HubMember, Invitation, StandardsSubscription, World};

const INVALID: &str = "InvalidInputException";

fn invalid(m: impl Into<String>) -> AwsError {
    AwsError::new(400, INVALID, m)
}

fn not_subscribed(account: &str) -> AwsError {
    AwsError::new(401, "InvalidAccessException", format!("Account {account} is not subscribed to AWS Security Hub"))
}

fn not_found(m: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFoundException", m)
}

pub fn operation(req: &Request) -> Option<&'static str> {
    let m = req.method.as_str();
    if let Some(rest) = req.path.strip_prefix("/standards/controls/") {
        return (m == "GET" && !rest.is_empty()).then_some("DescribeStandardsControls");
    }
    if let Some(rest) = req.path.strip_prefix("/standards/control/") {
        return (m == "PATCH" && !rest.is_empty()).then_some("UpdateStandardsControl");
    }
    let segs = req.segments();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    Some(match (m, s.as_slice()) {
        ("POST", ["accounts"]) => "EnableSecurityHub",
        ("GET", ["accounts"]) => "DescribeHub",
        ("DELETE", ["accounts"]) => "DisableSecurityHub",
        ("PATCH", ["accounts"]) => "UpdateSecurityHubConfiguration",
        ("POST", ["members"]) => "CreateMembers",
        ("GET", ["members"]) => "ListMembers",
        ("POST", ["members", "get"]) => "GetMembers",
        ("POST", ["members", "disassociate"]) => "DisassociateMembers",
        ("POST", ["members", "delete"]) => "DeleteMembers",
        ("POST", ["members", "invite"]) => "InviteMembers",
        ("POST", ["administrator"]) => "AcceptAdministratorInvitation",
        ("GET", ["administrator"]) => "GetAdministratorAccount",
        ("POST", ["administrator", "disassociate"]) => "DisassociateFromAdministratorAccount",
        ("GET", ["invitations"]) => "ListInvitations",
        ("POST", ["organization", "admin", "enable"]) => "EnableOrganizationAdminAccount",
        ("POST", ["organization", "admin", "disable"]) => "DisableOrganizationAdminAccount",
        ("GET", ["organization", "admin"]) => "ListOrganizationAdminAccounts",
        ("POST", ["organization", "configuration"]) => "UpdateOrganizationConfiguration",
        ("GET", ["organization", "configuration"]) => "DescribeOrganizationConfiguration",
        ("POST", ["standards", "register"]) => "BatchEnableStandards",
        ("POST", ["standards", "deregister"]) => "BatchDisableStandards",
        ("POST", ["standards", "get"]) => "GetEnabledStandards",
        ("GET", ["standards"]) => "DescribeStandards",
        ("POST", ["findings"]) => "GetFindings",
        ("POST", ["findings", "import"]) => "BatchImportFindings",
        ("PATCH", ["findings", "batchupdate"]) => "BatchUpdateFindings",
        ("POST", ["actionTargets"]) => "CreateActionTarget",
        ("POST", ["actionTargets", "get"]) => "DescribeActionTargets",
        ("POST", ["automationrules", "create"]) => "CreateAutomationRule",
        ("GET", ["automationrules", "list"]) => "ListAutomationRules",
        ("POST", ["securityControls", "batchGet"]) => "BatchGetSecurityControls",
        ("GET", ["securityControls", "definitions"]) => "ListSecurityControlDefinitions",
        _ => return None,
    })
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let input = Input::parse(&call.req.body, INVALID)?;
    let out = match op {
        "EnableSecurityHub" => enable_security_hub(call, &input)?,
        "DescribeHub" => describe_hub(call)?,
        "DisableSecurityHub" => disable_security_hub(call)?,
        "UpdateSecurityHubConfiguration" => update_hub_configuration(call, &input)?,
        "CreateMembers" => create_members(call, &input)?,
        "ListMembers" => list_members(call)?,
        "GetMembers" => get_members(call, &input)?,
        "DisassociateMembers" => disassociate_members(call, &input)?,
        "DeleteMembers" => delete_members(call, &input)?,
        "InviteMembers" => invite_members(call, &input)?,
        "AcceptAdministratorInvitation" => accept_invitation(call, &input)?,
        "GetAdministratorAccount" => get_administrator(call)?,
        "DisassociateFromAdministratorAccount" => leave_administrator(call)?,
        "ListInvitations" => list_invitations(call)?,
        "EnableOrganizationAdminAccount" => enable_org_admin(call, &input)?,
        "DisableOrganizationAdminAccount" => disable_org_admin(call, &input)?,
        "ListOrganizationAdminAccounts" => list_org_admins(call)?,
        "UpdateOrganizationConfiguration" => update_org_configuration(call, &input)?,
        "DescribeOrganizationConfiguration" => describe_org_configuration(call)?,
        "BatchEnableStandards" => batch_enable_standards(call, &input)?,
        "BatchDisableStandards" => batch_disable_standards(call, &input)?,
        "GetEnabledStandards" => get_enabled_standards(call, &input)?,
        "DescribeStandards" => describe_standards(call)?,
        "DescribeStandardsControls" => describe_standards_controls(call)?,
        "UpdateStandardsControl" => update_standards_control(call, &input)?,
        "GetFindings" => return get_findings(call, &input),
        "BatchImportFindings" => batch_import_findings(call, &input)?,
        "BatchUpdateFindings" => batch_update_findings(call, &input)?,
        "CreateActionTarget" => create_action_target(call, &input)?,
        "DescribeActionTargets" => describe_action_targets(call, &input)?,
        "CreateAutomationRule" => create_automation_rule(call, &input)?,
        "ListAutomationRules" => list_automation_rules(call)?,
        "BatchGetSecurityControls" => batch_get_security_controls(call, &input)?,
        "ListSecurityControlDefinitions" => list_security_control_definitions(call)?,
        other => return Err(invalid(format!("Unsupported operation {other}"))),
    };
    Ok(Response::json(&out))
}

// ---------------------------------------------------------------------------------------------
// helpers

fn hub<'w>(w: &'w World, account: &str, region: &str) -> AwsResult<&'w Hub> {
    w.region(account, region).and_then(|r| r.hub.as_ref()).ok_or_else(|| not_subscribed(account))
}

fn hub_mut<'w>(w: &'w mut World, account: &str, region: &str) -> AwsResult<&'w mut Hub> {
    if w.region(account, region).and_then(|r| r.hub.as_ref()).is_none() {
        return Err(not_subscribed(account));
    }
    w.region_mut(account, region).hub.as_mut().ok_or_else(|| not_subscribed(account))
}

fn query_usize(req: &Request, name: &str, default: usize, max: usize) -> AwsResult<usize> {
    match req.query_param(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid(format!("{name} must be an integer between 1 and {max}"))),
        },
    }
}

fn token_offset(token: Option<&str>) -> AwsResult<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => super::decode_token(t).ok_or_else(|| invalid("The NextToken is not valid")),
    }
}

/// A page of `items` from `offset`, with the next token if more remain.
fn page<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<String>) {
    let end = (offset + size).min(items.len());
    let slice = items.get(offset.min(items.len())..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| super::encode_token(end));
    (slice, next)
}

fn account_ids(input: &Input, name: &str) -> AwsResult<Vec<String>> {
    let ids = input.strings(name)?;
    if ids.is_empty() {
        return Err(invalid(format!("{name} must contain at least one account id")));
    }
    Ok(ids)
}

fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn member_json(m: &HubMember, admin: &str) -> Value {
    let mut v = json!({
        "AccountId": m.account_id,
        "MasterId": admin,
        "AdministratorId": admin,
        "MemberStatus": m.status,
        "UpdatedAt": iso8601(m.updated_ms),
    });
    if let Some(e) = &m.email {
        v["Email"] = json!(e);
    }
    if let Some(t) = m.invited_ms {
        v["InvitedAt"] = json!(iso8601(t));
    }
    v
}

fn unprocessed(id: &str, why: &str) -> Value {
    json!({"AccountId": id, "ProcessingResult": why})
}

fn subscription_json(s: &StandardsSubscription, now: Millis, status: Option<&str>) -> Value {
    let st = status.unwrap_or(if now >= s.ready_ms { "READY" } else { "PENDING" });
    json!({
        "StandardsSubscriptionArn": s.subscription_arn,
        "StandardsArn": s.standards_arn,
        "StandardsInput": s.input,
        "StandardsStatus": st,
        "StandardsControlsUpdatable": if st == "READY" { "READY_FOR_UPDATES" } else { "NOT_READY_FOR_UPDATES" },
    })
}

/// Accounts whose findings `account` sees in `region`: its own and its enabled members'.
pub fn visible_accounts(w: &World, account: &str, region: &str) -> HashSet<String> {
    let mut set = HashSet::from([account.to_string()]);
    if let Some(h) = w.region(account, region).and_then(|r| r.hub.as_ref()) {
        set.extend(
            h.members
                .values()
                .filter(|m| m.status == "Enabled" || m.status == "Associated")
                .map(|m| m.account_id.clone()),
        );
    }
    set
}

// ---------------------------------------------------------------------------------------------
// the hub

fn enable_security_hub(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let with_defaults = input.bool("EnableDefaultStandards")?.unwrap_or(true);
    let generator = input.str("ControlFindingGenerator")?.unwrap_or("SECURITY_CONTROL").to_string();
    if generator != "SECURITY_CONTROL" && generator != "STANDARD_CONTROL" {
        return Err(invalid("ControlFindingGenerator must be SECURITY_CONTROL or STANDARD_CONTROL"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    if w.region(&account, &region).is_some_and(|r| r.hub.is_some()) {
        return Err(AwsError::new(
            409,
            "ResourceConflictException",
            format!("Account {account} is already subscribed to Security Hub"),
        ));
    }
    let now = w.now();
    let ready = now + w.config.standards_ready_ms;
    let standards = if with_defaults { default_standards(&region, &account, ready) } else { BTreeMap::new() };
    w.region_mut(&account, &region).hub = Some(new_hub(&account, &region, now, generator, standards));
    w.mutated("securityhub:EnableSecurityHub", &account, &account, &region);
    Ok(json!({}))
}

/// Subscriptions to the standards Security Hub enables by default (FSBP and CIS 1.2).
fn default_standards(region: &str, account: &str, ready_ms: Millis) -> BTreeMap<String, StandardsSubscription> {
    Standard::ALL
        .into_iter()
        .filter(|s| s.enabled_by_default())
        .map(|s| {
            let sub = StandardsSubscription {
                subscription_arn: s.subscription_arn(region, account),
                standards_arn: s.arn(region),
                ready_ms,
                input: BTreeMap::new(),
            };
            (s.arn(region), sub)
        })
        .collect()
}

fn new_hub(
    account: &str,
    region: &str,
    now: Millis,
    generator: String,
    standards: BTreeMap<String, StandardsSubscription>,
) -> Hub {
    Hub {
        arn: format!("arn:aws:securityhub:{region}:{account}:hub/default"),
        subscribed_ms: now,
        auto_enable_controls: true,
        control_finding_generator: generator,
        standards,
        disabled_controls: BTreeMap::new(),
        members: BTreeMap::new(),
        administrator: None,
        action_targets: BTreeMap::new(),
        automation_rules: BTreeMap::new(),
        org_auto_enable: false,
        org_auto_enable_standards: "DEFAULT".into(),
    }
}

fn describe_hub(call: &Call<'_>) -> AwsResult<Value> {
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    if let Some(arn) = call.req.query_param("HubArn")
        && arn != h.arn
    {
        return Err(not_found(format!("Hub {arn} does not exist")));
    }
    Ok(json!({
        "HubArn": h.arn,
        "SubscribedAt": iso8601(h.subscribed_ms),
        "AutoEnableControls": h.auto_enable_controls,
        "ControlFindingGenerator": h.control_finding_generator,
    }))
}

fn disable_security_hub(call: &Call<'_>) -> AwsResult<Value> {
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let h = hub(&w, &account, &region)?;
    if h.members.values().any(|m| m.status == "Enabled") {
        return Err(invalid(
            "The administrator account has member accounts. Disassociate them before disabling Security Hub.",
        ));
    }
    if h.administrator.as_ref().is_some_and(|a| a.status == "Enabled") {
        return Err(invalid(format!(
            "Account {account} is a member of an administrator account. Disassociate it first."
        )));
    }
    w.region_mut(&account, &region).hub = None;
    w.mutated("securityhub:DisableSecurityHub", &account, &account, &region);
    Ok(json!({}))
}

fn update_hub_configuration(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let auto = input.bool("AutoEnableControls")?;
    let generator = input.str("ControlFindingGenerator")?.map(str::to_string);
    if let Some(g) = &generator
        && g != "SECURITY_CONTROL"
        && g != "STANDARD_CONTROL"
    {
        return Err(invalid("ControlFindingGenerator must be SECURITY_CONTROL or STANDARD_CONTROL"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let h = hub_mut(&mut w, &account, &region)?;
    if let Some(a) = auto {
        h.auto_enable_controls = a;
    }
    if let Some(g) = generator {
        h.control_finding_generator = g;
    }
    w.mutated("securityhub:UpdateSecurityHubConfiguration", &account, &account, &region);
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// membership

fn is_org_admin(w: &World, account: &str, region: &str) -> bool {
    w.org_admins.get(&("securityhub".to_string(), region.to_string())).is_some_and(|a| a == account)
}

fn create_members(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let details = input.objects("AccountDetails")?;
    if details.is_empty() {
        return Err(invalid("AccountDetails must contain at least one account"));
    }
    let (admin, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    hub(&w, &admin, &region)?;
    let now = w.now();
    let org_admin = is_org_admin(&w, &admin, &region);
    let mut failed = Vec::new();
    for d in details {
        let id = d.req_str("AccountId")?.to_string();
        let email = d.str("Email")?.map(str::to_string);
        if !valid_account_id(&id) {
            failed.push(unprocessed(&id, "Invalid account id"));
            continue;
        }
        if id == admin {
            failed.push(unprocessed(&id, "The administrator account cannot be added as a member"));
            continue;
        }
        let Some(acct) = w.accounts.get(&id) else {
            failed.push(unprocessed(&id, "The account does not exist"));
            continue;
        };
        let in_org = acct.in_org();
        let email = email.or_else(|| Some(acct.email.clone()));
        if let Some(existing) = hub(&w, &admin, &region)?.members.get(&id)
            && (existing.status == "Enabled" || existing.status == "Invited")
        {
            continue;
        }
        if let Some(other) = w.region(&id, &region).and_then(|r| r.hub.as_ref()).and_then(|h| h.administrator.as_ref())
            && other.account_id != admin
            && other.status == "Enabled"
        {
            failed.push(unprocessed(
                &id,
                &format!("The account is already a member of administrator {}", other.account_id),
            ));
            continue;
        }
        if in_org && org_admin {
            // Organization-managed: the member's hub is enabled if it was not, and it is
            // associated at once.
            let standards_mode = hub(&w, &admin, &region)?.org_auto_enable_standards.clone();
            let ready = now + w.config.standards_ready_ms;
            let rs = w.region_mut(&id, &region);
            if rs.hub.is_none() {
                let standards =
                    if standards_mode == "DEFAULT" { default_standards(&region, &id, ready) } else { BTreeMap::new() };
                rs.hub = Some(new_hub(&id, &region, now, "SECURITY_CONTROL".into(), standards));
            }
            if let Some(h) = rs.hub.as_mut() {
                h.administrator = Some(HubAdministrator {
                    account_id: admin.clone(),
                    invitation_id: String::new(),
                    invited_ms: now,
                    status: "Enabled".into(),
                });
            }
            hub_mut(&mut w, &admin, &region)?.members.insert(
                id.clone(),
                HubMember {
                    account_id: id.clone(),
                    email,
                    status: "Enabled".into(),
                    invited_ms: None,
                    updated_ms: now,
                    org_managed: true,
                },
            );
            w.mutated("securityhub:CreateMembers", &id, &id, &region);
        } else {
            hub_mut(&mut w, &admin, &region)?.members.insert(
                id.clone(),
                HubMember {
                    account_id: id.clone(),
                    email,
                    status: "Created".into(),
                    invited_ms: None,
                    updated_ms: now,
                    org_managed: false,
                },
            );
            w.counters.record("securityhub:CreateMembers", &id);
        }
    }
    w.schedule(&admin, &region);
    Ok(json!({"UnprocessedAccounts": failed}))
}

fn list_members(call: &Call<'_>) -> AwsResult<Value> {
    let only_associated = call.req.query_param("OnlyAssociated").is_none_or(|v| v != "false");
    let size = query_usize(call.req, "MaxResults", 50, 50)?;
    let offset = token_offset(call.req.query_param("NextToken"))?;
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    let all: Vec<Value> = h
        .members
        .values()
        .filter(|m| !only_associated || m.status == "Enabled" || m.status == "Associated")
        .map(|m| member_json(m, call.account()))
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"Members": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn get_members(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = account_ids(input, "AccountIds")?;
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    let mut members = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        match h.members.get(&id) {
            Some(m) => members.push(member_json(m, call.account())),
            None => failed.push(unprocessed(&id, "The account is not a member")),
        }
    }
    Ok(json!({"Members": members, "UnprocessedAccounts": failed}))
}

fn disassociate_members(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = account_ids(input, "AccountIds")?;
    let (admin, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let now = w.now();
    for id in &ids {
        let h = hub_mut(&mut w, &admin, &region)?;
        let Some(m) = h.members.get_mut(id) else {
            return Err(not_found(format!("Account {id} is not a member of {admin}")));
        };
        m.status = "Removed".into();
        m.updated_ms = now;
        if let Some(mh) = w.region_mut(id, &region).hub.as_mut()
            && mh.administrator.as_ref().is_some_and(|a| a.account_id == admin)
        {
            mh.administrator = None;
        }
        w.mutated("securityhub:DisassociateMembers", id, id, &region);
    }
    Ok(json!({}))
}

fn delete_members(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = account_ids(input, "AccountIds")?;
    let (admin, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let mut failed = Vec::new();
    for id in &ids {
        let h = hub_mut(&mut w, &admin, &region)?;
        if h.members.remove(id).is_none() {
            failed.push(unprocessed(id, "The account is not a member"));
            continue;
        }
        if let Some(mh) = w.region_mut(id, &region).hub.as_mut()
            && mh.administrator.as_ref().is_some_and(|a| a.account_id == admin)
        {
            mh.administrator = None;
        }
        if let Some(inv) = w.hub_invitations.get_mut(&(id.clone(), region.clone())) {
            inv.remove(&admin);
        }
        w.mutated("securityhub:DeleteMembers", id, id, &region);
    }
    Ok(json!({"UnprocessedAccounts": failed}))
}

fn invite_members(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = account_ids(input, "AccountIds")?;
    let (admin, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let now = w.now();
    let mut failed = Vec::new();
    for id in &ids {
        let invitation_id = w.ids.hex(32);
        let h = hub_mut(&mut w, &admin, &region)?;
        let Some(m) = h.members.get_mut(id) else {
            failed.push(unprocessed(id, "The account is not a member: call CreateMembers first"));
            continue;
        };
        if m.status == "Enabled" {
            continue;
        }
        m.status = "Invited".into();
        m.invited_ms = Some(now);
        m.updated_ms = now;
        w.hub_invitations.entry((id.clone(), region.clone())).or_default().insert(
            admin.clone(),
            Invitation { account_id: admin.clone(), invitation_id, invited_ms: now, status: "Invited".into() },
        );
        w.counters.record("securityhub:InviteMembers", id);
    }
    Ok(json!({"UnprocessedAccounts": failed}))
}

fn accept_invitation(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let admin = input
        .str("AdministratorId")?
        .or(input.str("Master")?)
        .ok_or_else(|| invalid("AdministratorId is required"))?
        .to_string();
    let invitation_id = input.req_str("InvitationId")?.to_string();
    let (member, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    hub(&w, &member, &region)?;
    let inv = w
        .hub_invitations
        .get(&(member.clone(), region.clone()))
        .and_then(|m| m.get(&admin))
        .cloned()
        .ok_or_else(|| not_found(format!("No invitation from {admin} to {member}")))?;
    if inv.invitation_id != invitation_id {
        return Err(invalid(format!("Invitation {invitation_id} does not match the invitation from {admin}")));
    }
    let now = w.now();
    if let Some(m) = w.region_mut(&admin, &region).hub.as_mut().and_then(|h| h.members.get_mut(&member)) {
        m.status = "Enabled".into();
        m.updated_ms = now;
    } else {
        return Err(not_found(format!("Account {admin} no longer has {member} as a member")));
    }
    hub_mut(&mut w, &member, &region)?.administrator = Some(HubAdministrator {
        account_id: admin.clone(),
        invitation_id,
        invited_ms: inv.invited_ms,
        status: "Enabled".into(),
    });
    if let Some(m) = w.hub_invitations.get_mut(&(member.clone(), region.clone())) {
        m.remove(&admin);
    }
    w.mutated("securityhub:AcceptAdministratorInvitation", &member, &member, &region);
    w.schedule(&admin, &region);
    Ok(json!({}))
}

fn get_administrator(call: &Call<'_>) -> AwsResult<Value> {
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    Ok(match &h.administrator {
        Some(a) => json!({"Administrator": {"AccountId": a.account_id, "InvitationId": a.invitation_id,
                                            "InvitedAt": iso8601(a.invited_ms), "MemberStatus": a.status}}),
        None => json!({}),
    })
}

fn leave_administrator(call: &Call<'_>) -> AwsResult<Value> {
    let (member, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let now = w.now();
    let admin = hub(&w, &member, &region)?
        .administrator
        .clone()
        .ok_or_else(|| not_found(format!("Account {member} has no administrator")))?;
    let org_managed = w
        .region(&admin.account_id, &region)
        .and_then(|r| r.hub.as_ref())
        .and_then(|h| h.members.get(&member))
        .is_some_and(|m| m.org_managed);
    if org_managed {
        return Err(invalid(
            "An organization-managed member cannot disassociate itself; the administrator must do it.",
        ));
    }
    hub_mut(&mut w, &member, &region)?.administrator = None;
    if let Some(m) = w.region_mut(&admin.account_id, &region).hub.as_mut().and_then(|h| h.members.get_mut(&member)) {
        m.status = "Resigned".into();
        m.updated_ms = now;
    }
    w.mutated("securityhub:DisassociateFromAdministratorAccount", &member, &member, &region);
    Ok(json!({}))
}

fn list_invitations(call: &Call<'_>) -> AwsResult<Value> {
    let w = call.read();
    hub(&w, call.account(), call.region)?;
    let list: Vec<Value> = w
        .hub_invitations
        .get(&(call.account().to_string(), call.region.to_string()))
        .map(|m| {
            m.values()
                .map(|i| json!({"AccountId": i.account_id, "InvitationId": i.invitation_id, "InvitedAt": iso8601(i.invited_ms), "MemberStatus": i.status}))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({"Invitations": list}))
}

// ---------------------------------------------------------------------------------------------
// organization

fn require_management(w: &World, account: &str) -> AwsResult<()> {
    match &w.org {
        Some(o) if o.management_account == account => Ok(()),
        _ => Err(AwsError::new(
            403,
            "AccessDeniedException",
            format!("Account {account} is not the management account of an organization"),
        )),
    }
}

fn enable_org_admin(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let id = input.req_str("AdminAccountId")?.to_string();
    let region = call.region.to_string();
    let mut w = call.write();
    require_management(&w, call.account())?;
    if !w.accounts.get(&id).is_some_and(|a| a.in_org()) {
        return Err(invalid(format!("Account {id} is not a member of the organization")));
    }
    if let Some(cur) = w.org_admins.get(&("securityhub".to_string(), region.clone()))
        && cur != &id
    {
        return Err(invalid(format!("Account {cur} is already the Security Hub administrator; disable it first")));
    }
    w.org_admins.insert(("securityhub".into(), region.clone()), id.clone());
    if let Some(o) = w.org.as_mut() {
        o.delegated_admins.insert((id.clone(), "securityhub.amazonaws.com".into()));
    }
    let now = w.now();
    let rs = w.region_mut(&id, &region);
    if rs.hub.is_none() {
        rs.hub = Some(new_hub(&id, &region, now, "SECURITY_CONTROL".into(), BTreeMap::new()));
    }
    w.mutated("securityhub:EnableOrganizationAdminAccount", &id, &id, &region);
    Ok(json!({"AdminAccountId": id, "Feature": "SecurityHub"}))
}

fn disable_org_admin(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let id = input.req_str("AdminAccountId")?.to_string();
    let region = call.region.to_string();
    let mut w = call.write();
    require_management(&w, call.account())?;
    let key = ("securityhub".to_string(), region.clone());
    if w.org_admins.get(&key) != Some(&id) {
        return Err(not_found(format!("Account {id} is not the Security Hub administrator")));
    }
    w.org_admins.remove(&key);
    if let Some(o) = w.org.as_mut() {
        o.delegated_admins.remove(&(id.clone(), "securityhub.amazonaws.com".into()));
    }
    w.counters.record("securityhub:DisableOrganizationAdminAccount", &id);
    Ok(json!({}))
}

fn list_org_admins(call: &Call<'_>) -> AwsResult<Value> {
    let w = call.read();
    let region = call.region.to_string();
    let admin = w.org_admins.get(&("securityhub".to_string(), region)).cloned();
    let is_mgmt = w.org.as_ref().is_some_and(|o| o.management_account == call.account());
    if !is_mgmt && admin.as_deref() != Some(call.account()) {
        return Err(AwsError::new(
            403,
            "AccessDeniedException",
            "Only the management account or the administrator can list administrators",
        ));
    }
    let list: Vec<Value> = admin.into_iter().map(|a| json!({"AccountId": a, "Status": "ENABLED"})).collect();
    Ok(json!({"AdminAccounts": list}))
}

fn update_org_configuration(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let auto = input.bool("AutoEnable")?;
    let standards = input.str("AutoEnableStandards")?.map(str::to_string);
    if let Some(s) = &standards
        && s != "DEFAULT"
        && s != "NONE"
    {
        return Err(invalid("AutoEnableStandards must be DEFAULT or NONE"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    if !is_org_admin(&w, &account, &region) {
        return Err(AwsError::new(
            403,
            "AccessDeniedException",
            format!("Account {account} is not the Security Hub administrator"),
        ));
    }
    let h = hub_mut(&mut w, &account, &region)?;
    if let Some(a) = auto {
        h.org_auto_enable = a;
    }
    if let Some(s) = standards {
        h.org_auto_enable_standards = s;
    }
    w.counters.record("securityhub:UpdateOrganizationConfiguration", &account);
    Ok(json!({}))
}

fn describe_org_configuration(call: &Call<'_>) -> AwsResult<Value> {
    let w = call.read();
    if !is_org_admin(&w, call.account(), call.region) {
        return Err(AwsError::new(
            403,
            "AccessDeniedException",
            format!("Account {} is not the Security Hub administrator", call.account()),
        ));
    }
    let h = hub(&w, call.account(), call.region)?;
    Ok(json!({
        "AutoEnable": h.org_auto_enable,
        "MemberAccountLimitReached": false,
        "AutoEnableStandards": h.org_auto_enable_standards,
        "OrganizationConfiguration": {"ConfigurationType": "LOCAL", "Status": "ENABLED"},
    }))
}

// ---------------------------------------------------------------------------------------------
// standards and controls

fn batch_enable_standards(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let reqs = input.objects("StandardsSubscriptionRequests")?;
    if reqs.is_empty() || reqs.len() > 25 {
        return Err(invalid("StandardsSubscriptionRequests must hold between 1 and 25 requests"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut parsed = Vec::new();
    for r in &reqs {
        let arn = r.req_str("StandardsArn")?;
        let std =
            Standard::from_arn(arn).ok_or_else(|| invalid(format!("StandardsArn {arn} is not a known standard")))?;
        let input_map: BTreeMap<String, String> = match r.raw("StandardsInput") {
            Some(Value::Object(m)) => {
                m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
            }
            Some(_) => return Err(invalid("StandardsInput must be a map of strings")),
            None => BTreeMap::new(),
        };
        parsed.push((std, input_map));
    }
    let mut w = call.write();
    let now = w.now();
    let ready = now + w.config.standards_ready_ms;
    let mut out = Vec::new();
    {
        let h = hub_mut(&mut w, &account, &region)?;
        for (std, input_map) in parsed {
            let sub = h.standards.entry(std.arn(&region)).or_insert_with(|| StandardsSubscription {
                subscription_arn: std.subscription_arn(&region, &account),
                standards_arn: std.arn(&region),
                ready_ms: ready,
                input: input_map,
            });
            out.push(subscription_json(
                sub,
                now,
                if sub.ready_ms > now || sub.ready_ms == ready { Some("PENDING") } else { None },
            ));
        }
    }
    w.mutated("securityhub:BatchEnableStandards", &account, &account, &region);
    Ok(json!({"StandardsSubscriptions": out}))
}

fn batch_disable_standards(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.strings("StandardsSubscriptionArns")?;
    if arns.is_empty() || arns.len() > 25 {
        return Err(invalid("StandardsSubscriptionArns must hold between 1 and 25 ARNs"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let now = w.now();
    let mut out = Vec::new();
    {
        let h = hub_mut(&mut w, &account, &region)?;
        for arn in &arns {
            let key = h.standards.iter().find(|(_, s)| &s.subscription_arn == arn).map(|(k, _)| k.clone());
            let Some(key) = key else {
                return Err(not_found(format!("Subscription {arn} does not exist")));
            };
            if let Some(sub) = h.standards.remove(&key) {
                out.push(subscription_json(&sub, now, Some("DELETING")));
            }
        }
    }
    w.mutated("securityhub:BatchDisableStandards", &account, &account, &region);
    Ok(json!({"StandardsSubscriptions": out}))
}

fn get_enabled_standards(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let filter = input.strings("StandardsSubscriptionArns")?;
    let size = input.max_results("MaxResults", 100, 100)?;
    let offset = token_offset(input.str("NextToken")?)?;
    let w = call.read();
    let now = w.now();
    let h = hub(&w, call.account(), call.region)?;
    let all: Vec<Value> = h
        .standards
        .values()
        .filter(|s| filter.is_empty() || filter.contains(&s.subscription_arn))
        .map(|s| subscription_json(s, now, None))
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"StandardsSubscriptions": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn describe_standards(call: &Call<'_>) -> AwsResult<Value> {
    let size = query_usize(call.req, "MaxResults", 100, 100)?;
    let offset = token_offset(call.req.query_param("NextToken"))?;
    let all: Vec<Value> = Standard::ALL
        .into_iter()
        .map(|s| {
            json!({"StandardsArn": s.arn(call.region), "Name": s.name(), "Description": s.description(),
                   "EnabledByDefault": s.enabled_by_default(),
                   "StandardsManagedBy": {"Company": "AWS", "Product": "Security Hub"}})
        })
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"Standards": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn describe_standards_controls(call: &Call<'_>) -> AwsResult<Value> {
    let raw = call.req.path.strip_prefix("/standards/controls/").unwrap_or_default();
    let arn = percent_decode(raw);
    let std = Standard::from_subscription_arn(&arn)
        .ok_or_else(|| invalid(format!("{arn} is not a standards subscription ARN")))?;
    let size = query_usize(call.req, "MaxResults", 100, 100)?;
    let offset = token_offset(call.req.query_param("NextToken"))?;
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    if !h.standards.values().any(|s| s.subscription_arn == arn) {
        return Err(not_found(format!("Subscription {arn} does not exist")));
    }
    let all: Vec<Value> = catalogue()
        .in_standard(std)
        .map(|c| {
            let disabled = h.disabled_controls.get(&(std.arn(call.region), c.id.clone()));
            let related: Vec<String> =
                std.requirements(c).unwrap_or_default().iter().map(|r| std.related_requirement(r)).collect();
            let mut v = json!({
                "StandardsControlArn": std.control_arn(call.region, call.account(), &c.id),
                "ControlStatus": if disabled.is_some() { "DISABLED" } else { "ENABLED" },
                "ControlStatusUpdatedAt": iso8601(disabled.map(|d| d.1).unwrap_or(h.subscribed_ms)),
                "ControlId": c.id,
                "Title": c.title,
                "Description": c.title,
                "RemediationUrl": format!("https://docs.aws.amazon.com/console/securityhub/{}/remediation", c.id),
                "SeverityRating": c.severity,
                "RelatedRequirements": related,
            });
            if let Some((reason, _)) = disabled {
                v["DisabledReason"] = json!(reason);
            }
            v
        })
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"Controls": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn update_standards_control(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let raw = call.req.path.strip_prefix("/standards/control/").unwrap_or_default();
    let arn = percent_decode(raw);
    let status = input.req_str("ControlStatus")?.to_string();
    let reason = input.str("DisabledReason")?.map(str::to_string);
    // arn:aws:securityhub:<region>:<account>:control/<standard path>/<control id>
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (Some(acct), Some(rest)) = (parts.get(4), parts.get(5)) else {
        return Err(invalid(format!("{arn} is not a standards control ARN")));
    };
    let rest = rest.strip_prefix("control/").ok_or_else(|| invalid(format!("{arn} is not a standards control ARN")))?;
    let (path, control_id) =
        rest.rsplit_once('/').ok_or_else(|| invalid(format!("{arn} is not a standards control ARN")))?;
    let std = Standard::ALL
        .into_iter()
        .find(|s| s.path() == path)
        .ok_or_else(|| not_found(format!("Standard {path} does not exist")))?;
    if *acct != call.account() {
        return Err(AwsError::new(403, "AccessDeniedException", format!("Control {arn} belongs to another account")));
    }
    let control = catalogue()
        .get(control_id)
        .filter(|c| std.requirements(c).is_some())
        .ok_or_else(|| not_found(format!("Control {control_id} is not part of {}", std.name())))?;
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let now = w.now();
    let h = hub_mut(&mut w, &account, &region)?;
    match h.standards.get(&std.arn(&region)) {
        None => return Err(invalid(format!("Standard {} is not enabled", std.name()))),
        // Controls are only updatable once the subscription is READY (READY_FOR_UPDATES).
        Some(sub) if sub.ready_ms > now => {
            return Err(invalid(format!(
                "Standard {} is not ready for control updates yet (PENDING): wait until it is READY",
                std.name()
            )));
        }
        Some(_) => {}
    }
    let key = (std.arn(&region), control.id.clone());
    match status.as_str() {
        "DISABLED" => {
            let reason = reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| invalid("DisabledReason is required when ControlStatus is DISABLED"))?;
            h.disabled_controls.insert(key, (reason, now));
        }
        "ENABLED" => {
            h.disabled_controls.remove(&key);
        }
        other => return Err(invalid(format!("ControlStatus must be ENABLED or DISABLED, not {other}"))),
    }
    w.mutated("securityhub:UpdateStandardsControl", &arn, &account, &region);
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// findings

fn get_findings(call: &Call<'_>, input: &Input) -> AwsResult<Response> {
    let size = input.max_results("MaxResults", 100, 100)?;
    let token = input.str("NextToken")?;
    let sort: Vec<(String, bool)> = input
        .objects("SortCriteria")?
        .iter()
        .map(|s| -> AwsResult<(String, bool)> {
            let field = s.req_str("Field")?.to_string();
            let desc = match s.str("SortOrder")? {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(o) => return Err(invalid(format!("SortOrder must be asc or desc, not {o}"))),
            };
            Ok((field, desc))
        })
        .collect::<AwsResult<_>>()?;
    let w = call.read();
    hub(&w, call.account(), call.region)?;
    let filters = Filters::parse(input.raw("Filters"), w.now())?;
    let visible = visible_accounts(&w, call.account(), call.region);
    let Some(store) = w.findings.get(call.region) else {
        return Ok(Response::json_bytes(&b"{\"Findings\":[]}"[..]));
    };
    let pinned = filters.pinned("AwsAccountId");
    let mut body = Vec::with_capacity(size * 2048 + 64);
    body.extend_from_slice(b"{\"Findings\":[");
    let mut next: Option<String> = None;
    let mut n = 0usize;
    if sort.is_empty() {
        let after = match token {
            None | Some("") => None,
            Some(t) => Some(
                t.strip_prefix("seq-")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid("The NextToken is not valid"))?,
            ),
        };
        let mut last = None;
        // A filter that pins the account (as a member reading its own findings does) reads
        // that account's index instead of the region's every finding.
        for f in candidates(store, pinned.as_deref(), after) {
            if !visible.contains(&f.account) || !filters.matches(&f.doc) {
                continue;
            }
            if n == size {
                next = last.map(|s: u64| format!("seq-{s:x}"));
                break;
            }
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&f.json);
            n += 1;
            last = Some(f.seq);
        }
    } else {
        let offset = token_offset(token)?;
        // What identifies this listing: who asks, whom they see, and how they filter and sort.
        let request = {
            let mut seen: Vec<&str> = visible.iter().map(String::as_str).collect();
            seen.sort_unstable();
            format!(
                "{}|{}|{}|{}",
                call.account(),
                seen.join(","),
                input.raw("Filters").map(Value::to_string).unwrap_or_default(),
                input.raw("SortCriteria").map(Value::to_string).unwrap_or_default()
            )
        };
        // The first page sorts afresh; the pages after it reuse that list while nothing changed.
        let kept = if offset > 0 { store.sorted_listing(&request) } else { None };
        let matched = match kept {
            Some(list) => list,
            None => {
                let list = std::sync::Arc::new(sorted_listing(store, pinned.as_deref(), &visible, &filters, &sort)?);
                store.keep_sorted_listing(request, list.clone());
                list
            }
        };
        let end = (offset + size).min(matched.len());
        for seq in matched.get(offset.min(matched.len())..end).unwrap_or_default() {
            if let Some(f) = store.get(*seq) {
                if n > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&f.json);
                n += 1;
            }
        }
        if end < matched.len() {
            next = Some(super::encode_token(end));
        }
    }
    body.push(b']');
    if let Some(t) = next {
        body.extend_from_slice(b",\"NextToken\":");
        body.extend_from_slice(&serde_json::to_vec(&t).unwrap_or_default());
    }
    body.push(b'}');
    Ok(Response::json_bytes(body))
}

/// The findings after sequence number `after`, in order: only the `pinned` accounts' when a
/// filter pins them (a member reading itself), so that the rest of the region is not visited.
fn candidates<'a>(
    store: &'a FindingStore,
    pinned: Option<&[&str]>,
    after: Option<u64>,
) -> Box<dyn Iterator<Item = &'a StoredFinding> + 'a> {
    match pinned {
        Some(accounts) => Box::new(store.accounts_after(accounts, after).into_iter()),
        None => Box::new(store.iter_after(after)),
    }
}

/// The sequence numbers of the findings `visible` to the caller that pass `filters`, in the order
/// of `sort` (then arrival).
fn sorted_listing(
    store: &FindingStore,
    pinned: Option<&[&str]>,
    visible: &HashSet<String>,
    filters: &Filters,
    sort: &[(String, bool)],
) -> AwsResult<Vec<u64>> {
    let mut matched: Vec<(Vec<Option<Value>>, u64)> = Vec::new();
    for f in candidates(store, pinned, None) {
        if !visible.contains(&f.account) || !filters.matches(&f.doc) {
            continue;
        }
        let keys = sort.iter().map(|(field, _)| sort_key(&f.doc, field)).collect::<AwsResult<Vec<_>>>()?;
        matched.push((keys, f.seq));
    }
    matched.sort_by(|a, b| {
        for (i, (_, desc)) in sort.iter().enumerate() {
            let o = compare(&a.0[i], &b.0[i]);
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        a.1.cmp(&b.1)
    });
    Ok(matched.into_iter().map(|(_, seq)| seq).collect())
}

fn compare(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            _ => x.as_str().unwrap_or_default().cmp(y.as_str().unwrap_or_default()),
        },
    }
}

const REQUIRED: &[&str] = &[
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Title",
    "UpdatedAt",
];

fn batch_import_findings(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let findings = input.array("Findings")?;
    if findings.is_empty() || findings.len() > 100 {
        return Err(invalid("Findings must hold between 1 and 100 findings"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    hub(&w, &account, &region)?;
    let visible = visible_accounts(&w, &account, &region);
    let now = iso8601(w.now());
    let mut failed = Vec::new();
    let mut ok = 0;
    for f in findings {
        let id = f.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        let fail = |code: &str, msg: String| json!({"Id": id, "ErrorCode": code, "ErrorMessage": msg});
        let Value::Object(doc) = f else {
            failed.push(fail("InvalidInput", "Each finding must be an object".into()));
            continue;
        };
        if let Some(missing) = REQUIRED.iter().find(|k| doc.get(**k).is_none_or(Value::is_null)) {
            failed.push(fail("InvalidInput", format!("Finding is missing the required field {missing}")));
            continue;
        }
        if doc.get("SchemaVersion").and_then(Value::as_str) != Some("2018-10-08") {
            failed.push(fail("InvalidInput", "SchemaVersion must be 2018-10-08".into()));
            continue;
        }
        let acct = doc.get("AwsAccountId").and_then(Value::as_str).unwrap_or_default();
        if !visible.contains(acct) {
            failed.push(fail(
                "AccessDeniedException",
                format!("Account {account} cannot import findings for account {acct}"),
            ));
            continue;
        }
        if !doc.get("Resources").and_then(Value::as_array).is_some_and(|r| !r.is_empty() && r.len() <= 32) {
            failed.push(fail("InvalidInput", "Resources must hold between 1 and 32 resources".into()));
            continue;
        }
        if serde_json::to_vec(doc).map(|v| v.len()).unwrap_or(0) > 240 * 1024 {
            failed.push(fail("FindingSizeExceeded", "A finding must be at most 240 KB".into()));
            continue;
        }
        let mut doc: Map<String, Value> = doc.clone();
        let product = doc.get("ProductArn").and_then(Value::as_str).unwrap_or_default().to_string();
        let store = w.findings_mut(&region);
        if let Some(seq) = store.seq_of(&product, &id) {
            // Fields owned by BatchUpdateFindings survive a re-import.
            if let Some(cur) = store.get(seq) {
                for k in ["Workflow", "WorkflowState", "Note", "UserDefinedFields", "VerificationState"] {
                    if let Some(v) = cur.doc.get(k) {
                        doc.insert(k.to_string(), v.clone());
                    }
                }
            }
        } else {
            doc.entry("Workflow").or_insert_with(|| json!({"Status": "NEW"}));
            doc.entry("WorkflowState").or_insert_with(|| json!("NEW"));
        }
        doc.entry("RecordState").or_insert_with(|| json!("ACTIVE"));
        doc.insert("ProcessedAt".into(), json!(now));
        doc.entry("Region").or_insert_with(|| json!(region));
        store.put(doc);
        ok += 1;
        w.counters.record("securityhub:BatchImportFindings", &id);
    }
    Ok(json!({"FailedCount": failed.len(), "SuccessCount": ok, "FailedFindings": failed}))
}

const WORKFLOW: &[&str] = &["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"];
const SEVERITY: &[&str] = &["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn batch_update_findings(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = input.objects("FindingIdentifiers")?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(invalid("FindingIdentifiers must hold between 1 and 100 identifiers"));
    }
    // Validate the update once, before touching anything.
    let note = match input.object("Note")? {
        Some(n) => {
            let text = n.req_str("Text")?.to_string();
            let by = n.req_str("UpdatedBy")?.to_string();
            if text.len() > 512 {
                return Err(invalid("Note.Text must be at most 512 characters"));
            }
            Some((text, by))
        }
        None => None,
    };
    let workflow = match input.object("Workflow")? {
        Some(wf) => {
            let s = wf.req_str("Status")?.to_string();
            if !WORKFLOW.contains(&s.as_str()) {
                return Err(invalid(format!("Workflow.Status must be one of {WORKFLOW:?}")));
            }
            Some(s)
        }
        None => None,
    };
    let severity = match input.object("Severity")? {
        Some(s) => {
            let label = s.str("Label")?.map(str::to_string);
            if let Some(l) = &label
                && !SEVERITY.contains(&l.as_str())
            {
                return Err(invalid(format!("Severity.Label must be one of {SEVERITY:?}")));
            }
            label
        }
        None => None,
    };
    let verification = input.str("VerificationState")?.map(str::to_string);
    let confidence = input.i64("Confidence")?;
    let criticality = input.i64("Criticality")?;
    for (name, v) in [("Confidence", confidence), ("Criticality", criticality)] {
        if v.is_some_and(|n| !(0..=100).contains(&n)) {
            return Err(invalid(format!("{name} must be between 0 and 100")));
        }
    }
    let types = input.raw("Types").cloned();
    let udf = input.raw("UserDefinedFields").cloned();
    let related = input.raw("RelatedFindings").cloned();
    if workflow.is_none()
        && note.is_none()
        && severity.is_none()
        && verification.is_none()
        && confidence.is_none()
        && criticality.is_none()
        && types.is_none()
        && udf.is_none()
        && related.is_none()
    {
        return Err(invalid("At least one attribute to update must be given"));
    }

    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    hub(&w, &account, &region)?;
    let visible = visible_accounts(&w, &account, &region);
    let now = iso8601(w.now());
    let mut processed = Vec::new();
    let mut unprocessed = Vec::new();
    for ident in ids {
        let id = ident.req_str("Id")?.to_string();
        let product = ident.req_str("ProductArn")?.to_string();
        let key = json!({"Id": id, "ProductArn": product});
        let store = w.findings_mut(&region);
        let Some(seq) =
            store.seq_of(&product, &id).filter(|s| store.get(*s).is_some_and(|f| visible.contains(&f.account)))
        else {
            unprocessed.push(
                json!({"FindingIdentifier": key, "ErrorCode": "FindingNotFound", "ErrorMessage": "Finding not found"}),
            );
            continue;
        };
        store.update(seq, |d| {
            if let Some((text, by)) = &note {
                d.insert("Note".into(), json!({"Text": text, "UpdatedBy": by, "UpdatedAt": now}));
            }
            if let Some(s) = &workflow {
                d.insert("Workflow".into(), json!({"Status": s}));
                let state = match s.as_str() {
                    "NOTIFIED" => "ASSIGNED",
                    "RESOLVED" => "RESOLVED",
                    "SUPPRESSED" => "DEFERRED",
                    _ => "NEW",
                };
                d.insert("WorkflowState".into(), json!(state));
            }
            if let Some(l) = &severity {
                let sev = d.entry("Severity").or_insert_with(|| json!({}));
                sev["Label"] = json!(l);
                sev["Normalized"] = json!(crate::world::catalogue::normalized_severity(l));
            }
            if let Some(v) = &verification {
                d.insert("VerificationState".into(), json!(v));
            }
            if let Some(c) = confidence {
                d.insert("Confidence".into(), json!(c));
            }
            if let Some(c) = criticality {
                d.insert("Criticality".into(), json!(c));
            }
            if let Some(t) = &types {
                d.insert("Types".into(), t.clone());
            }
            if let Some(u) = &udf {
                d.insert("UserDefinedFields".into(), u.clone());
            }
            if let Some(r) = &related {
                d.insert("RelatedFindings".into(), r.clone());
            }
            d.insert("UpdatedAt".into(), json!(now));
        });
        w.counters.record("securityhub:BatchUpdateFindings", &id);
        processed.push(key);
    }
    Ok(json!({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}))
}

// ---------------------------------------------------------------------------------------------
// action targets, automation rules, security controls

fn create_action_target(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("Name")?.to_string();
    let description = input.req_str("Description")?.to_string();
    let id = input.req_str("Id")?.to_string();
    if id.is_empty() || id.len() > 20 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid("Id must be 1-20 alphanumeric characters"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let arn = format!("arn:aws:securityhub:{region}:{account}:action/custom/{id}");
    let mut w = call.write();
    let h = hub_mut(&mut w, &account, &region)?;
    if h.action_targets.contains_key(&arn) {
        return Err(AwsError::new(409, "ResourceConflictException", format!("Action target {id} already exists")));
    }
    h.action_targets.insert(arn.clone(), ActionTarget { arn: arn.clone(), name, description });
    w.counters.record("securityhub:CreateActionTarget", &arn);
    Ok(json!({"ActionTargetArn": arn}))
}

fn describe_action_targets(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let arns = input.strings("ActionTargetArns")?;
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    let list: Vec<Value> = h
        .action_targets
        .values()
        .filter(|t| arns.is_empty() || arns.contains(&t.arn))
        .map(|t| json!({"ActionTargetArn": t.arn, "Name": t.name, "Description": t.description}))
        .collect();
    if !arns.is_empty() && list.len() < arns.len() {
        return Err(not_found("One or more action targets do not exist"));
    }
    Ok(json!({"ActionTargets": list}))
}

fn create_automation_rule(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("RuleName")?.to_string();
    let order = input.i64("RuleOrder")?.ok_or_else(|| invalid("RuleOrder is required"))?;
    let description = input.req_str("Description")?.to_string();
    if !(1..=1000).contains(&order) {
        return Err(invalid("RuleOrder must be between 1 and 1000"));
    }
    let criteria = input.raw("Criteria").cloned().ok_or_else(|| invalid("Criteria is required"))?;
    Filters::parse(Some(&criteria), 0)?;
    let actions = input.array("Actions")?.to_vec();
    if actions.is_empty() {
        return Err(invalid("Actions must hold at least one action"));
    }
    let (account, region) = (call.account().to_string(), call.region.to_string());
    let mut w = call.write();
    let uuid = w.ids.uuid();
    let now = iso8601(w.now());
    let arn = format!("arn:aws:securityhub:{region}:{account}:automation-rule/{uuid}");
    let rule = json!({
        "RuleArn": arn, "RuleName": name, "RuleOrder": order, "Description": description,
        "RuleStatus": input.str("RuleStatus")?.unwrap_or("ENABLED"), "IsTerminal": input.bool("IsTerminal")?.unwrap_or(false),
        "Criteria": criteria, "Actions": actions, "CreatedAt": now, "UpdatedAt": now, "CreatedBy": call.caller.arn(),
    });
    hub_mut(&mut w, &account, &region)?.automation_rules.insert(arn.clone(), rule);
    w.counters.record("securityhub:CreateAutomationRule", &arn);
    Ok(json!({"RuleArn": arn}))
}

fn list_automation_rules(call: &Call<'_>) -> AwsResult<Value> {
    let size = query_usize(call.req, "MaxResults", 100, 100)?;
    let offset = token_offset(call.req.query_param("NextToken"))?;
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    let all: Vec<Value> = h
        .automation_rules
        .values()
        .map(|r| {
            let mut m = r.clone();
            if let Some(o) = m.as_object_mut() {
                o.remove("Criteria");
                o.remove("Actions");
            }
            m
        })
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"AutomationRulesMetadata": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn batch_get_security_controls(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ids = input.strings("SecurityControlIds")?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(invalid("SecurityControlIds must hold between 1 and 100 ids"));
    }
    let w = call.read();
    let h = hub(&w, call.account(), call.region)?;
    let enabled: Vec<Standard> = h.standards.keys().filter_map(|a| Standard::from_arn(a)).collect();
    let mut controls = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        let Some(c) = catalogue().get(&id) else {
            missing.push(
                json!({"SecurityControlId": id, "ErrorCode": "NOT_FOUND", "ErrorReason": "No such security control"}),
            );
            continue;
        };
        let in_enabled: Vec<&Standard> = enabled.iter().filter(|s| s.requirements(c).is_some()).collect();
        let disabled = !in_enabled.is_empty()
            && in_enabled.iter().all(|s| h.disabled_controls.contains_key(&(s.arn(call.region), c.id.clone())));
        controls.push(json!({
            "SecurityControlId": c.id,
            "SecurityControlArn": format!("arn:aws:securityhub:{}:{}:security-control/{}", call.region, call.account(), c.id),
            "Title": c.title,
            "Description": c.title,
            "RemediationUrl": format!("https://docs.aws.amazon.com/console/securityhub/{}/remediation", c.id),
            "SeverityRating": c.severity,
            "SecurityControlStatus": if disabled { "DISABLED" } else { "ENABLED" },
            "UpdateStatus": "READY",
        }));
    }
    Ok(json!({"SecurityControls": controls, "UnprocessedIds": missing}))
}

fn list_security_control_definitions(call: &Call<'_>) -> AwsResult<Value> {
    let size = query_usize(call.req, "MaxResults", 100, 100)?;
    let offset = token_offset(call.req.query_param("NextToken"))?;
    let std = match call.req.query_param("StandardsArn") {
        None => None,
        Some(a) => {
            Some(Standard::from_arn(a).ok_or_else(|| invalid(format!("StandardsArn {a} is not a known standard")))?)
        }
    };
    let all: Vec<Value> = catalogue()
        .controls
        .iter()
        .filter(|c| std.is_none_or(|s| s.requirements(c).is_some()))
        .map(|c| {
            json!({"SecurityControlId": c.id, "Title": c.title, "Description": c.title,
                   "RemediationUrl": format!("https://docs.aws.amazon.com/console/securityhub/{}/remediation", c.id),
                   "SeverityRating": c.severity, "CurrentRegionAvailability": "AVAILABLE"})
        })
        .collect();
    let (items, next) = page(&all, offset, size);
    let mut out = json!({"SecurityControlDefinitions": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
