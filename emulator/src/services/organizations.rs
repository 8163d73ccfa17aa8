//! AWS Organizations (awsJson1_1): the organization, its root, OUs, accounts, tags, delegated
//! administrators and trusted service access. Reads are open to the management account and to
//! delegated administrators; changes only to the management account.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, known};
use crate::wire::{Input, Request, Response, epoch_seconds};
use crate::world::{Account, IamState, Organization, Ou, Role, World};

const OPS: &[&str] = &[
    "DescribeOrganization",
    "ListAccounts",
    "ListAccountsForParent",
    "DescribeAccount",
    "ListRoots",
    "ListOrganizationalUnitsForParent",
    "DescribeOrganizationalUnit",
    "ListParents",
    "ListChildren",
    "ListTagsForResource",
    "TagResource",
    "UntagResource",
    "ListDelegatedAdministrators",
    "RegisterDelegatedAdministrator",
    "DeregisterDelegatedAdministrator",
    "EnableAWSServiceAccess",
    "ListAWSServiceAccessForOrganization",
    "CreateAccount",
    "DescribeCreateAccountStatus",
    "MoveAccount",
    "RemoveAccountFromOrganization",
    "CreateOrganizationalUnit",
];

pub fn operation(req: &Request) -> Option<&'static str> {
    let target = req.header("x-amz-target")?;
    known(OPS, target.strip_prefix("AWSOrganizationsV20161128.")?)
}

fn invalid(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidInputException", m)
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let input = Input::parse(&call.req.body, "SerializationException")?;
    let input = Input::from_map(input.map().clone(), "InvalidInputException");
    let mutating = matches!(
        op,
        "TagResource"
            | "UntagResource"
            | "RegisterDelegatedAdministrator"
            | "DeregisterDelegatedAdministrator"
            | "EnableAWSServiceAccess"
            | "CreateAccount"
            | "MoveAccount"
            | "RemoveAccountFromOrganization"
            | "CreateOrganizationalUnit"
    );
    if mutating {
        let mut w = call.write();
        check_access(&w, call.account(), true)?;
        let out = mutate(op, call, &input, &mut w)?;
        return Ok(Response::json11(&out));
    }
    let w = call.read();
    if op == "DescribeOrganization" {
        let org = org_of(&w, call.account())?;
        let mgmt = w.accounts.get(&org.management_account);
        return Ok(Response::json11(&json!({"Organization": {
            "Id": org.id,
            "Arn": format!("arn:aws:organizations::{}:organization/{}", org.management_account, org.id),
            "FeatureSet": "ALL",
            "MasterAccountArn": format!("arn:aws:organizations::{0}:account/{1}/{0}", org.management_account, org.id),
            "MasterAccountId": org.management_account,
            "MasterAccountEmail": mgmt.map(|a| a.email.as_str()).unwrap_or_default(),
            "AvailablePolicyTypes": [],
        }})));
    }
    check_access(&w, call.account(), false)?;
    let org = org_of(&w, call.account())?;
    let out = match op {
        "ListAccounts" => {
            let all: Vec<Value> = w.accounts.values().filter(|a| a.in_org()).map(|a| account_json(org, a)).collect();
            paged(&input, "Accounts", all, 20)?
        }
        "ListAccountsForParent" => {
            let parent = input.req_str("ParentId")?;
            parent_exists(org, parent)?;
            let all: Vec<Value> = w
                .accounts
                .values()
                .filter(|a| a.parent_id.as_deref() == Some(parent))
                .map(|a| account_json(org, a))
                .collect();
            paged(&input, "Accounts", all, 20)?
        }
        "DescribeAccount" => {
            let id = input.req_str("AccountId")?;
            let a = w.accounts.get(id).filter(|a| a.in_org()).ok_or_else(|| {
                AwsError::new(
                    400,
                    "AccountNotFoundException",
                    format!("You specified an account that doesn't exist: {id}"),
                )
            })?;
            json!({"Account": account_json(org, a)})
        }
        "ListRoots" => json!({"Roots": [{
            "Id": org.root_id,
            "Arn": format!("arn:aws:organizations::{}:root/{}/{}", org.management_account, org.id, org.root_id),
            "Name": "Root",
            "PolicyTypes": [],
        }]}),
        "ListOrganizationalUnitsForParent" => {
            let parent = input.req_str("ParentId")?;
            parent_exists(org, parent)?;
            let all: Vec<Value> = org.ous.values().filter(|o| o.parent_id == parent).map(|o| ou_json(org, o)).collect();
            paged(&input, "OrganizationalUnits", all, 20)?
        }
        "DescribeOrganizationalUnit" => {
            let id = input.req_str("OrganizationalUnitId")?;
            let ou = org.ous.get(id).ok_or_else(|| {
                AwsError::new(
                    400,
                    "OrganizationalUnitNotFoundException",
                    format!("You specified an organizational unit that doesn't exist: {id}"),
                )
            })?;
            json!({"OrganizationalUnit": ou_json(org, ou)})
        }
        "ListParents" => {
            let child = input.req_str("ChildId")?;
            let parent = if let Some(a) = w.accounts.get(child).filter(|a| a.in_org()) {
                a.parent_id.clone().unwrap_or_default()
            } else if let Some(ou) = org.ous.get(child) {
                ou.parent_id.clone()
            } else {
                return Err(AwsError::new(
                    400,
                    "ChildNotFoundException",
                    format!("You specified a child that doesn't exist: {child}"),
                ));
            };
            let kind = if parent == org.root_id { "ROOT" } else { "ORGANIZATIONAL_UNIT" };
            json!({"Parents": [{"Id": parent, "Type": kind}]})
        }
        "ListChildren" => {
            let parent = input.req_str("ParentId")?;
            parent_exists(org, parent)?;
            let kind = input.req_str("ChildType")?;
            let all: Vec<Value> = match kind {
                "ACCOUNT" => w
                    .accounts
                    .values()
                    .filter(|a| a.parent_id.as_deref() == Some(parent))
                    .map(|a| json!({"Id": a.id, "Type": "ACCOUNT"}))
                    .collect(),
                "ORGANIZATIONAL_UNIT" => org
                    .ous
                    .values()
                    .filter(|o| o.parent_id == parent)
                    .map(|o| json!({"Id": o.id, "Type": "ORGANIZATIONAL_UNIT"}))
                    .collect(),
                other => return Err(invalid(format!("ChildType must be ACCOUNT or ORGANIZATIONAL_UNIT, not {other}"))),
            };
            paged(&input, "Children", all, 20)?
        }
        "ListTagsForResource" => {
            let id = input.req_str("ResourceId")?;
            let tags =
                w.accounts.get(id).filter(|a| a.in_org()).map(|a| &a.tags).ok_or_else(|| target_not_found(id))?;
            json!({"Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()})
        }
        "ListDelegatedAdministrators" => {
            let sp = input.str("ServicePrincipal")?;
            let mut seen = BTreeMap::new();
            for (acct, principal) in &org.delegated_admins {
                if sp.is_none_or(|s| s == principal)
                    && let Some(a) = w.accounts.get(acct)
                {
                    let mut v = account_json(org, a);
                    v["DelegationEnabledDate"] = epoch_seconds(org.created_ms);
                    seen.insert(acct.clone(), v);
                }
            }
            paged(&input, "DelegatedAdministrators", seen.into_values().collect(), 20)?
        }
        "ListAWSServiceAccessForOrganization" => {
            let all: Vec<Value> = org
                .service_access
                .iter()
                .map(|s| json!({"ServicePrincipal": s, "DateEnabled": epoch_seconds(org.created_ms)}))
                .collect();
            paged(&input, "EnabledServicePrincipals", all, 20)?
        }
        "DescribeCreateAccountStatus" => {
            let id = input.req_str("CreateAccountRequestId")?;
            // `car-` and the account id zero-padded to 32 digits (see `create_status`).
            let account = id
                .strip_prefix("car-")
                .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit()))
                .map(|s| &s[20..])
                .unwrap_or_default();
            let a = w.accounts.get(account).filter(|a| a.joined_method == "CREATED").ok_or_else(|| {
                AwsError::new(400, "CreateAccountStatusNotFoundException", format!("No create account request {id}"))
            })?;
            json!({"CreateAccountStatus": create_status(a)})
        }
        other => return Err(AwsError::new(400, "UnknownOperationException", format!("Unknown operation {other}"))),
    };
    Ok(Response::json11(&out))
}

fn mutate(op: &str, call: &Call<'_>, input: &Input, w: &mut World) -> AwsResult<Value> {
    let mgmt = call.account().to_string();
    match op {
        "TagResource" | "UntagResource" => {
            let id = input.req_str("ResourceId")?.to_string();
            let acct = w.accounts.get_mut(&id).filter(|a| a.in_org()).ok_or_else(|| target_not_found(&id))?;
            if op == "TagResource" {
                for t in input.objects("Tags")? {
                    acct.tags.insert(t.req_str("Key")?.to_string(), t.req_str("Value")?.to_string());
                }
            } else {
                for k in input.strings("TagKeys")? {
                    acct.tags.remove(&k);
                }
            }
            w.counters.record(&format!("organizations:{op}"), &id);
            w.schedule_account(&id);
            Ok(json!({}))
        }
        "RegisterDelegatedAdministrator" | "DeregisterDelegatedAdministrator" => {
            let id = input.req_str("AccountId")?.to_string();
            let sp = input.req_str("ServicePrincipal")?.to_string();
            if id == mgmt {
                return Err(AwsError::new(
                    400,
                    "ConstraintViolationException",
                    "The management account cannot be a delegated administrator",
                ));
            }
            if !w.accounts.get(&id).is_some_and(Account::in_org) {
                return Err(AwsError::new(
                    400,
                    "AccountNotFoundException",
                    format!("You specified an account that doesn't exist: {id}"),
                ));
            }
            let org = w.org.as_mut().ok_or_else(not_in_use)?;
            let key = (id.clone(), sp.clone());
            if op == "RegisterDelegatedAdministrator" {
                if !org.delegated_admins.insert(key) {
                    return Err(AwsError::new(
                        400,
                        "AccountAlreadyRegisteredException",
                        format!("Account {id} is already a delegated administrator for {sp}"),
                    ));
                }
            } else if !org.delegated_admins.remove(&key) {
                return Err(AwsError::new(
                    400,
                    "AccountNotRegisteredException",
                    format!("Account {id} is not a delegated administrator for {sp}"),
                ));
            }
            w.counters.record(&format!("organizations:{op}"), &id);
            Ok(json!({}))
        }
        "EnableAWSServiceAccess" => {
            let sp = input.req_str("ServicePrincipal")?.to_string();
            w.org.as_mut().ok_or_else(not_in_use)?.service_access.insert(sp.clone());
            w.counters.record("organizations:EnableAWSServiceAccess", &sp);
            Ok(json!({}))
        }
        "CreateOrganizationalUnit" => {
            let parent = input.req_str("ParentId")?.to_string();
            let name = input.req_str("Name")?.to_string();
            let suffix = w.ids.hex(8);
            let org = w.org.as_mut().ok_or_else(not_in_use)?;
            parent_exists(org, &parent)?;
            if org.ous.values().any(|o| o.parent_id == parent && o.name == name) {
                return Err(AwsError::new(
                    400,
                    "DuplicateOrganizationalUnitException",
                    format!("An OU named {name} already exists in {parent}"),
                ));
            }
            let id = format!("ou-{}-{suffix}", &org.root_id[2..]);
            let ou = Ou { id: id.clone(), name, parent_id: parent };
            let out = json!({"OrganizationalUnit": ou_json(org, &ou)});
            org.ous.insert(id.clone(), ou);
            w.counters.record("organizations:CreateOrganizationalUnit", &id);
            Ok(out)
        }
        "MoveAccount" => {
            let id = input.req_str("AccountId")?.to_string();
            let src = input.req_str("SourceParentId")?.to_string();
            let dst = input.req_str("DestinationParentId")?.to_string();
            let org = w.org.as_ref().ok_or_else(not_in_use)?;
            parent_exists(org, &dst)?;
            let acct = w.accounts.get_mut(&id).filter(|a| a.in_org()).ok_or_else(|| {
                AwsError::new(
                    400,
                    "AccountNotFoundException",
                    format!("You specified an account that doesn't exist: {id}"),
                )
            })?;
            if acct.parent_id.as_deref() != Some(src.as_str()) {
                return Err(AwsError::new(
                    400,
                    "SourceParentNotFoundException",
                    format!("Account {id} is not in {src}"),
                ));
            }
            acct.parent_id = Some(dst);
            w.counters.record("organizations:MoveAccount", &id);
            Ok(json!({}))
        }
        "RemoveAccountFromOrganization" => {
            // The account becomes standalone: it keeps its resources, roles and any hub
            // memberships (AWS would disassociate organization-managed members; not emulated).
            let id = input.req_str("AccountId")?.to_string();
            if id == mgmt {
                return Err(AwsError::new(
                    400,
                    "MasterCannotLeaveOrganizationException",
                    "The management account cannot be removed from its organization",
                ));
            }
            let org = w.org.as_ref().ok_or_else(not_in_use)?;
            if org.delegated_admins.iter().any(|(a, _)| *a == id) || w.org_admins.values().any(|a| *a == id) {
                return Err(AwsError::new(
                    400,
                    "ConstraintViolationException",
                    format!("Account {id} is a delegated administrator: deregister it before removing it"),
                ));
            }
            let acct = w.accounts.get_mut(&id).filter(|a| a.in_org()).ok_or_else(|| {
                AwsError::new(
                    400,
                    "AccountNotFoundException",
                    format!("You specified an account that doesn't exist: {id}"),
                )
            })?;
            acct.parent_id = None;
            w.counters.record("organizations:RemoveAccountFromOrganization", &id);
            Ok(json!({}))
        }
        "CreateAccount" => {
            let email = input.req_str("Email")?.to_string();
            let name = input.req_str("AccountName")?.to_string();
            if !email.contains('@') {
                return Err(invalid(format!("Email {email} is not a valid email address")));
            }
            let role_name = input.str("RoleName")?.unwrap_or("OrganizationAccountAccessRole").to_string();
            let tags: BTreeMap<String, String> = input
                .objects("Tags")?
                .iter()
                .map(|t| Ok((t.req_str("Key")?.to_string(), t.req_str("Value")?.to_string())))
                .collect::<AwsResult<_>>()?;
            let id = loop {
                let n = w.ids.next_u64() % 900_000_000_000 + 100_000_000_000;
                let candidate = n.to_string();
                if !w.accounts.contains_key(&candidate) {
                    break candidate;
                }
            };
            let account = create_account(w, &mgmt, &id, &name, &email, &role_name, tags, call.region)?;
            w.counters.record("organizations:CreateAccount", &id);
            Ok(json!({"CreateAccountStatus": create_status(&account)}))
        }
        other => Err(AwsError::new(400, "UnknownOperationException", format!("Unknown operation {other}"))),
    }
}

/// Creates an account in the root with the role the management account can assume, and a
/// default VPC, as AWS does for accounts created through Organizations.
#[allow(clippy::too_many_arguments)]
fn create_account(
    w: &mut World,
    mgmt: &str,
    id: &str,
    name: &str,
    email: &str,
    role_name: &str,
    tags: BTreeMap<String, String>,
    region: &str,
) -> AwsResult<Account> {
    let root = w.org.as_ref().ok_or_else(not_in_use)?.root_id.clone();
    let now = w.now();
    let mut iam = IamState::default();
    iam.roles.insert(
        role_name.to_string(),
        Role {
            name: role_name.to_string(),
            id: format!("AROA{}", w.ids.upper(17)),
            arn: format!("arn:aws:iam::{id}:role/{role_name}"),
            path: "/".into(),
            created_ms: now,
            description: String::new(),
            max_session_duration: 3600,
            trust_policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{mgmt}:root")}, "Action": "sts:AssumeRole"}]}),
            inline_policies: BTreeMap::new(),
            attached_policies: ["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into_iter().collect(),
            tags: BTreeMap::new(),
        },
    );
    let account = Account {
        id: id.to_string(),
        name: name.to_string(),
        email: email.to_string(),
        status: "ACTIVE".into(),
        parent_id: Some(root),
        joined_ms: now,
        joined_method: "CREATED".into(),
        tags,
        iam,
        s3_public_access_block: None,
    };
    w.accounts.insert(id.to_string(), account.clone());
    w.add_default_vpc(id, region);
    Ok(account)
}

fn create_status(a: &Account) -> Value {
    json!({
        "Id": format!("car-{:0>32}", a.id),
        "AccountName": a.name,
        "State": "SUCCEEDED",
        "RequestedTimestamp": epoch_seconds(a.joined_ms),
        "CompletedTimestamp": epoch_seconds(a.joined_ms),
        "AccountId": a.id,
    })
}

fn not_in_use() -> AwsError {
    AwsError::new(400, "AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
}

fn target_not_found(id: &str) -> AwsError {
    AwsError::new(400, "TargetNotFoundException", format!("You specified a target that doesn't exist: {id}"))
}

fn org_of<'w>(w: &'w World, account: &str) -> AwsResult<&'w Organization> {
    match (&w.org, w.accounts.get(account)) {
        (Some(o), Some(a)) if a.in_org() => Ok(o),
        _ => Err(not_in_use()),
    }
}

/// Reads need the management account or a delegated administrator; changes the management account.
fn check_access(w: &World, account: &str, write: bool) -> AwsResult<()> {
    let org = org_of(w, account)?;
    let delegated = org.delegated_admins.iter().any(|(a, _)| a == account);
    if org.management_account == account || (!write && delegated) {
        Ok(())
    } else {
        Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "You don't have permissions to access this resource: account {account} is not the management account{}",
                if write { "" } else { " or a delegated administrator" }
            ),
        ))
    }
}

fn parent_exists(org: &Organization, id: &str) -> AwsResult<()> {
    if id == org.root_id || org.ous.contains_key(id) {
        Ok(())
    } else {
        Err(AwsError::new(400, "ParentNotFoundException", format!("You specified a parent that doesn't exist: {id}")))
    }
}

fn account_json(org: &Organization, a: &Account) -> Value {
    json!({
        "Id": a.id,
        "Arn": format!("arn:aws:organizations::{}:account/{}/{}", org.management_account, org.id, a.id),
        "Email": a.email,
        "Name": a.name,
        "Status": a.status,
        "State": a.status,
        "JoinedMethod": a.joined_method,
        "JoinedTimestamp": epoch_seconds(a.joined_ms),
    })
}

fn ou_json(org: &Organization, ou: &Ou) -> Value {
    json!({"Id": ou.id, "Arn": format!("arn:aws:organizations::{}:ou/{}/{}", org.management_account, org.id, ou.id), "Name": ou.name})
}

fn paged(input: &Input, key: &str, all: Vec<Value>, max: usize) -> AwsResult<Value> {
    let size = input.max_results("MaxResults", max, max)?;
    let offset = match input.str("NextToken")? {
        None | Some("") => 0,
        Some(t) => super::decode_token(t).ok_or_else(|| invalid("The NextToken is not valid"))?,
    };
    let end = (offset + size).min(all.len());
    let mut out = json!({ key: all.get(offset.min(all.len())..end).unwrap_or_default() });
    if end < all.len() {
        out["NextToken"] = json!(super::encode_token(end));
    }
    Ok(out)
}
