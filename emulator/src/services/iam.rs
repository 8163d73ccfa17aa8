//! IAM over awsQuery: the account password policy, users and their access keys, roles with
//! trust, inline and attached policies, and instance profiles.
//!
//! IAM is global: the signed region does not matter, and every mutation re-evaluates all of the
//! account's regions (password policy and key age are account-wide checks).

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::error::{AwsError, AwsResult};
use crate::identity::CallerKind;
use crate::services::{Call, decode_token, encode_token, form_action, known};
use crate::wire::{Params, Request, Response, Xml, iso8601};
use crate::world::{AccessKey, Account, IamState, InstanceProfile, PasswordPolicy, Role, User, World};

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

const OPS: &[&str] = &[
    "GetAccountPasswordPolicy",
    "UpdateAccountPasswordPolicy",
    "DeleteAccountPasswordPolicy",
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "CreateInstanceProfile",
    "GetInstanceProfile",
    "DeleteInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
    "ListInstanceProfiles",
    "ListInstanceProfilesForRole",
];

/// Operations whose response has no `<{Op}Result>` element.
const NO_RESULT: &[&str] = &[
    "UpdateAccountPasswordPolicy",
    "DeleteAccountPasswordPolicy",
    "DeleteUser",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "DeleteInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
];

/// How IAM percent-encodes policy documents in responses: everything but unreserved characters.
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const MAX_ACCESS_KEYS: usize = 2;
const MAX_ATTACHED_POLICIES: usize = 10;
const MAX_TRUST_POLICY_CHARS: usize = 2048;
const MAX_INLINE_POLICY_CHARS: usize = 10240;
const MAX_TAGS: usize = 50;

pub fn operation(req: &Request) -> Option<&'static str> {
    known(OPS, &form_action(req)?)
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let p = Params::parse(&call.req.body, &call.req.query, "ValidationError", "ValidationError");
    let cx = Cx { call, p: &p, account: call.account(), op };
    let root = format!("{op}Response");
    let result = format!("{op}Result");
    let with_result = !NO_RESULT.contains(&op);
    let mut x = Xml::new();
    x.open_ns(&root, NS);
    if with_result {
        x.open(&result);
    }
    match op {
        "GetAccountPasswordPolicy" => get_password_policy(&cx, &mut x)?,
        "UpdateAccountPasswordPolicy" => update_password_policy(&cx)?,
        "DeleteAccountPasswordPolicy" => delete_password_policy(&cx)?,
        "CreateUser" => create_user(&cx, &mut x)?,
        "GetUser" => get_user(&cx, &mut x)?,
        "ListUsers" => list_users(&cx, &mut x)?,
        "DeleteUser" => delete_user(&cx)?,
        "CreateAccessKey" => create_access_key(&cx, &mut x)?,
        "ListAccessKeys" => list_access_keys(&cx, &mut x)?,
        "UpdateAccessKey" => update_access_key(&cx)?,
        "DeleteAccessKey" => delete_access_key(&cx)?,
        "GetAccessKeyLastUsed" => get_access_key_last_used(&cx, &mut x)?,
        "CreateRole" => create_role(&cx, &mut x)?,
        "GetRole" => get_role(&cx, &mut x)?,
        "ListRoles" => list_roles(&cx, &mut x)?,
        "DeleteRole" => delete_role(&cx)?,
        "UpdateAssumeRolePolicy" => update_assume_role_policy(&cx)?,
        "PutRolePolicy" => put_role_policy(&cx)?,
        "GetRolePolicy" => get_role_policy(&cx, &mut x)?,
        "ListRolePolicies" => list_role_policies(&cx, &mut x)?,
        "DeleteRolePolicy" => delete_role_policy(&cx)?,
        "AttachRolePolicy" => attach_role_policy(&cx)?,
        "DetachRolePolicy" => detach_role_policy(&cx)?,
        "ListAttachedRolePolicies" => list_attached_role_policies(&cx, &mut x)?,
        "CreateInstanceProfile" => create_instance_profile(&cx, &mut x)?,
        "GetInstanceProfile" => get_instance_profile(&cx, &mut x)?,
        "DeleteInstanceProfile" => delete_instance_profile(&cx)?,
        "AddRoleToInstanceProfile" => add_role_to_instance_profile(&cx)?,
        "RemoveRoleFromInstanceProfile" => remove_role_from_instance_profile(&cx)?,
        "ListInstanceProfiles" => list_instance_profiles(&cx, &mut x)?,
        "ListInstanceProfilesForRole" => list_instance_profiles_for_role(&cx, &mut x)?,
        other => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            ));
        }
    }
    if with_result {
        x.close(&result);
    }
    x.open("ResponseMetadata").leaf("RequestId", call.request_id).close("ResponseMetadata");
    x.close(&root);
    Ok(Response::xml(x.finish()))
}

struct Cx<'a> {
    call: &'a Call<'a>,
    p: &'a Params,
    account: &'a str,
    op: &'a str,
}

impl Cx<'_> {
    /// Records a mutation and re-evaluates the account (IAM is global).
    fn touched(&self, w: &mut World, resource: &str) {
        w.counters.record(&format!("iam:{}", self.op), resource);
        w.schedule_account(self.account);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and validation

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationError", message)
}

fn no_such(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "NoSuchEntity", message)
}

fn exists(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "EntityAlreadyExists", message)
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "DeleteConflict", message)
}

fn limit(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "LimitExceeded", message)
}

fn malformed(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "MalformedPolicyDocument", message)
}

fn no_user(name: &str) -> AwsError {
    no_such(format!("The user with name {name} cannot be found."))
}

fn no_role(name: &str) -> AwsError {
    no_such(format!("The role with name {name} cannot be found."))
}

fn no_profile(name: &str) -> AwsError {
    no_such(format!("Instance Profile {name} cannot be found."))
}

fn no_key(id: &str) -> AwsError {
    no_such(format!("The Access Key with id {id} cannot be found."))
}

fn b(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

/// A required name parameter matching `[\w+=,.@-]+` of at most `max` characters.
fn name<'p>(p: &'p Params, param: &str, field: &str, max: usize) -> AwsResult<&'p str> {
    let Some(v) = p.get(param) else {
        return Err(invalid(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        )));
    };
    check_name(v, field, max)?;
    Ok(v)
}

fn check_name(v: &str, field: &str, max: usize) -> AwsResult<()> {
    let len = v.chars().count();
    if len == 0 || len > max {
        return Err(invalid(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must have length between 1 and {max}"
        )));
    }
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// `Path`: `/` or `/segments/`, printable ASCII.
fn path(p: &Params) -> AwsResult<String> {
    let Some(v) = p.get("Path") else {
        return Ok("/".into());
    };
    let ok = v.len() <= 512
        && v.starts_with('/')
        && v.ends_with('/')
        && v.bytes().all(|c| (0x21..=0x7e).contains(&c))
        && !v.contains("//");
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters: {v}"
        )))
    }
}

fn path_prefix(p: &Params) -> AwsResult<String> {
    match p.get("PathPrefix") {
        None => Ok("/".into()),
        Some(v) if v.starts_with('/') && v.len() <= 512 => Ok(v.to_string()),
        Some(v) => Err(invalid(format!("The specified value for pathPrefix is invalid: {v}"))),
    }
}

/// `Tags.member.N.Key` / `.Value`.
fn tags(p: &Params) -> AwsResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in p.structs("Tags") {
        let k = t.get("Key").unwrap_or_default();
        let v = t.get("Value").unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid(format!(
                "1 validation error detected: Value '{k}' at 'tags.member.key' failed to satisfy constraint: keys must have 1 to 128 characters and values at most 256"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("Tag keys starting with 'aws:' are reserved for internal use"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(limit(format!("Cannot exceed quota for TagsPerEntity: {MAX_TAGS}")));
    }
    Ok(out)
}

/// `Marker` / `MaxItems` (1..=1000, default 100).
fn paginate<T>(items: Vec<T>, p: &Params) -> AwsResult<(Vec<T>, Option<String>)> {
    let max = match p.i64("MaxItems")? {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
            )));
        }
    };
    let start = match p.get("Marker").filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => {
            decode_token(m).filter(|o| *o <= items.len()).ok_or_else(|| invalid(format!("Invalid Marker: {m}")))?
        }
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > max {
        rest.truncate(max);
        Some(encode_token(start + max))
    } else {
        None
    };
    Ok((rest, next))
}

fn list_end(x: &mut Xml, next: Option<String>) {
    x.leaf("IsTruncated", b(next.is_some()));
    x.leaf_opt("Marker", next.as_deref());
}

/// Validates a policy document: a JSON object with a valid version and statements that have
/// an effect and actions; trust policies name principals and no resources, identity policies
/// the reverse.
fn parse_policy(doc: &str, trust: bool) -> AwsResult<Value> {
    if doc.trim().is_empty() {
        return Err(invalid("1 validation error detected: the policy document must have at least 1 character"));
    }
    let v: Value = serde_json::from_str(doc).map_err(|_| malformed("This policy contains invalid Json"))?;
    let Value::Object(o) = &v else {
        return Err(malformed("This policy contains invalid Json"));
    };
    if let Some(ver) = o.get("Version")
        && !matches!(ver.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(malformed("The policy must contain a valid version string"));
    }
    let statements: Vec<&Value> = match o.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err(malformed("Syntax errors in policy.")),
    };
    let strings = |v: Option<&Value>| match v {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty() && a.iter().all(Value::is_string),
        _ => false,
    };
    for st in statements {
        let Value::Object(s) = st else {
            return Err(malformed("Syntax errors in policy."));
        };
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            Some(e) => return Err(malformed(format!("Invalid effect: {e}"))),
            None => return Err(malformed("Missing required field Effect")),
        }
        if !strings(s.get("Action")) && !strings(s.get("NotAction")) {
            return Err(malformed("Policy statement must contain actions."));
        }
        let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
        let has_resource = s.contains_key("Resource") || s.contains_key("NotResource");
        if trust {
            if !has_principal {
                return Err(malformed("Missing required field Principal"));
            }
            if has_resource {
                return Err(malformed("Has prohibited field Resource"));
            }
        } else {
            if has_principal {
                return Err(malformed("Policy document should not specify a principal."));
            }
            if !has_resource {
                return Err(malformed("Policy statement must contain resources."));
            }
        }
    }
    Ok(v)
}

/// Policy size as IAM counts it: characters other than whitespace.
fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// A policy document as IAM returns it: JSON, percent-encoded.
fn encode_policy(v: &Value) -> String {
    let json = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    utf8_percent_encode(&json, POLICY_ENCODE).to_string()
}

fn account<'w>(w: &'w World, id: &str) -> AwsResult<&'w Account> {
    w.accounts.get(id).ok_or_else(|| no_such(format!("The account {id} cannot be found.")))
}

fn iam_mut<'w>(w: &'w mut World, id: &str) -> AwsResult<&'w mut IamState> {
    w.accounts.get_mut(id).map(|a| &mut a.iam).ok_or_else(|| no_such(format!("The account {id} cannot be found.")))
}

fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

fn tags_xml(x: &mut Xml, tags: &BTreeMap<String, String>) {
    if tags.is_empty() {
        return;
    }
    x.open("Tags");
    for (k, v) in tags {
        x.open("member").leaf("Key", k).leaf("Value", v).close("member");
    }
    x.close("Tags");
}

// ---------------------------------------------------------------------------------------------
// Password policy

fn get_password_policy(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let w = cx.call.read();
    let Some(pp) = account(&w, cx.account)?.iam.password_policy.clone() else {
        return Err(no_such(format!("The Password Policy with domain name {} cannot be found.", cx.account)));
    };
    x.open("PasswordPolicy");
    x.leaf("MinimumPasswordLength", &pp.minimum_password_length.to_string());
    x.leaf("RequireSymbols", b(pp.require_symbols));
    x.leaf("RequireNumbers", b(pp.require_numbers));
    x.leaf("RequireUppercaseCharacters", b(pp.require_uppercase));
    x.leaf("RequireLowercaseCharacters", b(pp.require_lowercase));
    x.leaf("AllowUsersToChangePassword", b(pp.allow_users_to_change_password));
    x.leaf("ExpirePasswords", b(pp.max_password_age.is_some()));
    if let Some(age) = pp.max_password_age {
        x.leaf("MaxPasswordAge", &age.to_string());
    }
    if let Some(n) = pp.password_reuse_prevention {
        x.leaf("PasswordReusePrevention", &n.to_string());
    }
    x.leaf("HardExpiry", b(pp.hard_expiry));
    x.close("PasswordPolicy");
    Ok(())
}

fn ranged(p: &Params, param: &str, field: &str, lo: i64, hi: i64) -> AwsResult<Option<i64>> {
    match p.i64(param)? {
        Some(n) if !(lo..=hi).contains(&n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value between {lo} and {hi}"
        ))),
        other => Ok(other),
    }
}

/// Replaces the whole policy, as IAM does: parameters left out take their defaults.
fn update_password_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let p = cx.p;
    let pp = PasswordPolicy {
        minimum_password_length: ranged(p, "MinimumPasswordLength", "minimumPasswordLength", 6, 128)?.unwrap_or(6),
        require_symbols: p.bool("RequireSymbols")?.unwrap_or(false),
        require_numbers: p.bool("RequireNumbers")?.unwrap_or(false),
        require_uppercase: p.bool("RequireUppercaseCharacters")?.unwrap_or(false),
        require_lowercase: p.bool("RequireLowercaseCharacters")?.unwrap_or(false),
        allow_users_to_change_password: p.bool("AllowUsersToChangePassword")?.unwrap_or(false),
        max_password_age: ranged(p, "MaxPasswordAge", "maxPasswordAge", 1, 1095)?,
        password_reuse_prevention: ranged(p, "PasswordReusePrevention", "passwordReusePrevention", 1, 24)?,
        hard_expiry: p.bool("HardExpiry")?.unwrap_or(false),
    };
    let mut guard = cx.call.write();
    let w = &mut *guard;
    iam_mut(w, cx.account)?.password_policy = Some(pp);
    cx.touched(w, cx.account);
    Ok(())
}

fn delete_password_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let mut guard = cx.call.write();
    let w = &mut *guard;
    if iam_mut(w, cx.account)?.password_policy.take().is_none() {
        return Err(no_such(format!("The Password Policy with domain name {} cannot be found.", cx.account)));
    }
    cx.touched(w, cx.account);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Users and access keys

fn user_xml(x: &mut Xml, tag: &str, u: &User, with_tags: bool) {
    x.open(tag);
    x.leaf("Path", &u.path);
    x.leaf("UserName", &u.name);
    x.leaf("UserId", &u.id);
    x.leaf("Arn", &u.arn);
    x.leaf("CreateDate", &iso8601(u.created_ms));
    if with_tags {
        tags_xml(x, &u.tags);
    }
    x.close(tag);
}

fn create_user(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let user_name = name(p, "UserName", "userName", 64)?;
    let user_path = path(p)?;
    let user_tags = tags(p)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    if account(w, cx.account)?.iam.users.keys().any(|k| k.eq_ignore_ascii_case(user_name)) {
        return Err(exists(format!("User with name {user_name} already exists.")));
    }
    let user = User {
        name: user_name.to_string(),
        id: format!("AIDA{}", w.ids.upper(17)),
        arn: arn(cx.account, "user", &user_path, user_name),
        path: user_path,
        created_ms: w.now(),
        access_keys: Vec::new(),
        tags: user_tags,
    };
    user_xml(x, "User", &user, true);
    iam_mut(w, cx.account)?.users.insert(user_name.to_string(), user);
    cx.touched(w, user_name);
    Ok(())
}

/// The user a call names, or for calls that may leave it out, an error for callers that are not
/// IAM users (every caller of the emulator is an account root or a role session).
fn user_param(p: &Params) -> AwsResult<&str> {
    match p.get("UserName") {
        Some(n) => {
            check_name(n, "userName", 128)?;
            Ok(n)
        }
        None => Err(invalid("Must specify userName when calling with non-User credentials")),
    }
}

fn get_user(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let w = cx.call.read();
    let iam = &account(&w, cx.account)?.iam;
    match cx.p.get("UserName") {
        Some(n) => {
            check_name(n, "userName", 128)?;
            let u = iam.users.get(n).ok_or_else(|| no_user(n))?;
            user_xml(x, "User", u, true);
        }
        None => match &cx.call.caller.kind {
            CallerKind::Admin => {
                let acct = account(&w, cx.account)?;
                x.open("User");
                x.leaf("UserId", cx.account);
                x.leaf("Arn", &format!("arn:aws:iam::{}:root", cx.account));
                x.leaf("CreateDate", &iso8601(acct.joined_ms));
                x.close("User");
            }
            CallerKind::Role { .. } => {
                return Err(invalid("Must specify userName when calling with non-User credentials"));
            }
        },
    }
    Ok(())
}

fn list_users(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let prefix = path_prefix(cx.p)?;
    let w = cx.call.read();
    let users: Vec<&User> =
        account(&w, cx.account)?.iam.users.values().filter(|u| u.path.starts_with(&prefix)).collect();
    let (items, next) = paginate(users, cx.p)?;
    x.open("Users");
    for u in items {
        user_xml(x, "member", u, false);
    }
    x.close("Users");
    list_end(x, next);
    Ok(())
}

fn delete_user(cx: &Cx<'_>) -> AwsResult<()> {
    let user_name = name(cx.p, "UserName", "userName", 128)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    let u = iam.users.get(user_name).ok_or_else(|| no_user(user_name))?;
    if !u.access_keys.is_empty() {
        return Err(conflict("Cannot delete entity, must delete access keys first."));
    }
    iam.users.remove(user_name);
    cx.touched(w, user_name);
    Ok(())
}

fn secret(w: &mut World) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..40).map(|_| ALPHABET[(w.ids.next_u64() % 64) as usize] as char).collect()
}

fn key_xml(x: &mut Xml, tag: &str, user: &str, k: &AccessKey, with_secret: bool) {
    x.open(tag);
    x.leaf("UserName", user);
    x.leaf("AccessKeyId", &k.id);
    x.leaf("Status", &k.status);
    if with_secret {
        x.leaf("SecretAccessKey", &k.secret);
    }
    x.leaf("CreateDate", &iso8601(k.created_ms));
    x.close(tag);
}

fn create_access_key(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let user_name = user_param(cx.p)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let count = account(w, cx.account)?.iam.users.get(user_name).ok_or_else(|| no_user(user_name))?.access_keys.len();
    if count >= MAX_ACCESS_KEYS {
        return Err(limit(format!("Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")));
    }
    let key = AccessKey {
        id: format!("AKIA{}", w.ids.upper(16)),
        secret: secret(w),
        status: "Active".into(),
        created_ms: w.now(),
    };
    key_xml(x, "AccessKey", user_name, &key, true);
    let id = key.id.clone();
    if let Some(u) = iam_mut(w, cx.account)?.users.get_mut(user_name) {
        u.access_keys.push(key);
    }
    cx.touched(w, &id);
    Ok(())
}

fn list_access_keys(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let user_name = user_param(cx.p)?;
    let w = cx.call.read();
    let u = account(&w, cx.account)?.iam.users.get(user_name).ok_or_else(|| no_user(user_name))?;
    let keys: Vec<&AccessKey> = u.access_keys.iter().collect();
    let (items, next) = paginate(keys, cx.p)?;
    x.open("AccessKeyMetadata");
    for k in items {
        key_xml(x, "member", &u.name, k, false);
    }
    x.close("AccessKeyMetadata");
    list_end(x, next);
    Ok(())
}

fn key_id(p: &Params) -> AwsResult<&str> {
    let Some(id) = p.get("AccessKeyId") else {
        return Err(invalid(
            "1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null",
        ));
    };
    let ok = (16..=128).contains(&id.len()) && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !ok {
        return Err(invalid(format!(
            "1 validation error detected: Value '{id}' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+"
        )));
    }
    Ok(id)
}

/// The user holding a key: the named user (which must exist and hold it), or any user of the
/// account when no name is given.
fn key_owner(iam: &IamState, user: Option<&str>, id: &str) -> AwsResult<String> {
    match user {
        Some(n) => {
            let u = iam.users.get(n).ok_or_else(|| no_user(n))?;
            if u.access_keys.iter().any(|k| k.id == id) { Ok(u.name.clone()) } else { Err(no_key(id)) }
        }
        None => iam
            .users
            .values()
            .find(|u| u.access_keys.iter().any(|k| k.id == id))
            .map(|u| u.name.clone())
            .ok_or_else(|| no_key(id)),
    }
}

fn update_access_key(cx: &Cx<'_>) -> AwsResult<()> {
    let p = cx.p;
    let id = key_id(p)?;
    let status = match p.get("Status") {
        Some(s @ ("Active" | "Inactive")) => s,
        other => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]",
                other.unwrap_or("null")
            )));
        }
    };
    let user = p.get("UserName");
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    let owner = key_owner(iam, user, id)?;
    if let Some(k) = iam.users.get_mut(&owner).and_then(|u| u.access_keys.iter_mut().find(|k| k.id == id)) {
        k.status = status.to_string();
    }
    cx.touched(w, id);
    Ok(())
}

fn delete_access_key(cx: &Cx<'_>) -> AwsResult<()> {
    let id = key_id(cx.p)?;
    let user = cx.p.get("UserName");
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    let owner = key_owner(iam, user, id)?;
    if let Some(u) = iam.users.get_mut(&owner) {
        u.access_keys.retain(|k| k.id != id);
    }
    cx.touched(w, id);
    Ok(())
}

/// Keys only sign requests to the emulator through its own credentials, so a user's key has never
/// been used: IAM reports `N/A` for the service and region of such keys.
fn get_access_key_last_used(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let id = key_id(cx.p)?;
    let w = cx.call.read();
    let owner = key_owner(&account(&w, cx.account)?.iam, None, id)?;
    x.leaf("UserName", &owner);
    x.open("AccessKeyLastUsed").leaf("ServiceName", "N/A").leaf("Region", "N/A").close("AccessKeyLastUsed");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Roles and their policies

fn role_xml(x: &mut Xml, tag: &str, r: &Role, full: bool) {
    x.open(tag);
    x.leaf("Path", &r.path);
    x.leaf("RoleName", &r.name);
    x.leaf("RoleId", &r.id);
    x.leaf("Arn", &r.arn);
    x.leaf("CreateDate", &iso8601(r.created_ms));
    x.leaf("AssumeRolePolicyDocument", &encode_policy(&r.trust_policy));
    if !r.description.is_empty() {
        x.leaf("Description", &r.description);
    }
    x.leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    if full {
        tags_xml(x, &r.tags);
        x.open("RoleLastUsed").close("RoleLastUsed");
    }
    x.close(tag);
}

fn role<'a>(iam: &'a IamState, role_name: &str) -> AwsResult<&'a Role> {
    iam.roles.get(role_name).ok_or_else(|| no_role(role_name))
}

fn role_mut<'a>(iam: &'a mut IamState, role_name: &str) -> AwsResult<&'a mut Role> {
    iam.roles.get_mut(role_name).ok_or_else(|| no_role(role_name))
}

fn trust_document(p: &Params, param: &str) -> AwsResult<Value> {
    let Some(doc) = p.get(param) else {
        return Err(invalid(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            param[..1].to_ascii_lowercase() + &param[1..]
        )));
    };
    if policy_size(doc) > MAX_TRUST_POLICY_CHARS {
        return Err(limit(format!("Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_CHARS}")));
    }
    parse_policy(doc, true)
}

fn create_role(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let role_name = name(p, "RoleName", "roleName", 64)?;
    let role_path = path(p)?;
    let trust = trust_document(p, "AssumeRolePolicyDocument")?;
    let description = p.get("Description").unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(invalid(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    let max_session = ranged(p, "MaxSessionDuration", "maxSessionDuration", 3600, 43200)?.unwrap_or(3600);
    let role_tags = tags(p)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    if account(w, cx.account)?.iam.roles.keys().any(|k| k.eq_ignore_ascii_case(role_name)) {
        return Err(exists(format!("Role with name {role_name} already exists.")));
    }
    let r = Role {
        name: role_name.to_string(),
        id: format!("AROA{}", w.ids.upper(17)),
        arn: arn(cx.account, "role", &role_path, role_name),
        path: role_path,
        created_ms: w.now(),
        description: description.to_string(),
        max_session_duration: max_session,
        trust_policy: trust,
        inline_policies: BTreeMap::new(),
        attached_policies: Default::default(),
        tags: role_tags,
    };
    role_xml(x, "Role", &r, false);
    iam_mut(w, cx.account)?.roles.insert(role_name.to_string(), r);
    cx.touched(w, role_name);
    Ok(())
}

fn get_role(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let w = cx.call.read();
    role_xml(x, "Role", role(&account(&w, cx.account)?.iam, role_name)?, true);
    Ok(())
}

fn list_roles(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let prefix = path_prefix(cx.p)?;
    let w = cx.call.read();
    let roles: Vec<&Role> =
        account(&w, cx.account)?.iam.roles.values().filter(|r| r.path.starts_with(&prefix)).collect();
    let (items, next) = paginate(roles, cx.p)?;
    x.open("Roles");
    for r in items {
        role_xml(x, "member", r, false);
    }
    x.close("Roles");
    list_end(x, next);
    Ok(())
}

fn delete_role(cx: &Cx<'_>) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    let r = role(iam, role_name)?;
    if !r.inline_policies.is_empty() {
        return Err(conflict("Cannot delete entity, must delete policies first."));
    }
    if !r.attached_policies.is_empty() {
        return Err(conflict("Cannot delete entity, must detach all policies first."));
    }
    if iam.instance_profiles.values().any(|ip| ip.roles.iter().any(|n| n == role_name)) {
        return Err(conflict("Cannot delete entity, must remove roles from instance profile first."));
    }
    iam.roles.remove(role_name);
    cx.touched(w, role_name);
    Ok(())
}

fn update_assume_role_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let trust = trust_document(cx.p, "PolicyDocument")?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    role_mut(iam_mut(w, cx.account)?, role_name)?.trust_policy = trust;
    cx.touched(w, role_name);
    Ok(())
}

fn put_role_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let p = cx.p;
    let role_name = name(p, "RoleName", "roleName", 64)?;
    let policy_name = name(p, "PolicyName", "policyName", 128)?;
    let Some(doc) = p.get("PolicyDocument") else {
        return Err(invalid(
            "1 validation error detected: Value null at 'policyDocument' failed to satisfy constraint: Member must not be null",
        ));
    };
    let v = parse_policy(doc, false)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let r = role_mut(iam_mut(w, cx.account)?, role_name)?;
    let others: usize = r
        .inline_policies
        .iter()
        .filter(|(n, _)| n.as_str() != policy_name)
        .map(|(_, d)| serde_json::to_string(d).map(|s| policy_size(&s)).unwrap_or(0))
        .sum();
    if others + policy_size(doc) > MAX_INLINE_POLICY_CHARS {
        return Err(limit(format!(
            "Maximum policy size of {MAX_INLINE_POLICY_CHARS} bytes exceeded for role {role_name}"
        )));
    }
    r.inline_policies.insert(policy_name.to_string(), v);
    cx.touched(w, role_name);
    Ok(())
}

fn get_role_policy(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let policy_name = name(cx.p, "PolicyName", "policyName", 128)?;
    let w = cx.call.read();
    let r = role(&account(&w, cx.account)?.iam, role_name)?;
    let doc = r
        .inline_policies
        .get(policy_name)
        .ok_or_else(|| no_such(format!("The role policy with name {policy_name} cannot be found.")))?;
    x.leaf("RoleName", &r.name);
    x.leaf("PolicyName", policy_name);
    x.leaf("PolicyDocument", &encode_policy(doc));
    Ok(())
}

fn list_role_policies(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let w = cx.call.read();
    let r = role(&account(&w, cx.account)?.iam, role_name)?;
    let names: Vec<&String> = r.inline_policies.keys().collect();
    let (items, next) = paginate(names, cx.p)?;
    x.open("PolicyNames");
    for n in items {
        x.leaf("member", n);
    }
    x.close("PolicyNames");
    list_end(x, next);
    Ok(())
}

fn delete_role_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let policy_name = name(cx.p, "PolicyName", "policyName", 128)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let r = role_mut(iam_mut(w, cx.account)?, role_name)?;
    if r.inline_policies.remove(policy_name).is_none() {
        return Err(no_such(format!("The role policy with name {policy_name} cannot be found.")));
    }
    cx.touched(w, role_name);
    Ok(())
}

/// `PolicyArn`: an AWS managed policy (`arn:aws:iam::aws:policy/...`) or a customer managed one
/// in this account (which cannot exist: the emulator has no CreatePolicy).
fn policy_arn(p: &Params) -> AwsResult<&str> {
    let Some(a) = p.get("PolicyArn") else {
        return Err(invalid(
            "1 validation error detected: Value null at 'policyArn' failed to satisfy constraint: Member must not be null",
        ));
    };
    let rest = a.strip_prefix("arn:aws:iam::").and_then(|r| r.split_once(":policy/"));
    match rest {
        Some(("aws", n)) if !n.is_empty() => Ok(a),
        Some((acct, n)) if acct.len() == 12 && acct.bytes().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            Err(no_such(format!("Policy {a} does not exist or is not attachable.")))
        }
        _ => Err(AwsError::new(400, "InvalidInput", format!("ARN {a} is not valid."))),
    }
}

fn attach_role_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let a = policy_arn(cx.p)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let r = role_mut(iam_mut(w, cx.account)?, role_name)?;
    if !r.attached_policies.contains(a) && r.attached_policies.len() >= MAX_ATTACHED_POLICIES {
        return Err(limit(format!("Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_POLICIES}")));
    }
    r.attached_policies.insert(a.to_string());
    cx.touched(w, role_name);
    Ok(())
}

fn detach_role_policy(cx: &Cx<'_>) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let Some(a) = cx.p.get("PolicyArn") else {
        return Err(invalid(
            "1 validation error detected: Value null at 'policyArn' failed to satisfy constraint: Member must not be null",
        ));
    };
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let r = role_mut(iam_mut(w, cx.account)?, role_name)?;
    if !r.attached_policies.remove(a) {
        return Err(no_such(format!("Policy {a} was not found.")));
    }
    cx.touched(w, role_name);
    Ok(())
}

fn list_attached_role_policies(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let prefix = path_prefix(cx.p)?;
    let w = cx.call.read();
    let r = role(&account(&w, cx.account)?.iam, role_name)?;
    let arns: Vec<&String> = r
        .attached_policies
        .iter()
        .filter(|a| {
            let after = a.split_once(":policy").map(|(_, rest)| rest).unwrap_or("/");
            after.starts_with(&prefix)
        })
        .collect();
    let (items, next) = paginate(arns, cx.p)?;
    x.open("AttachedPolicies");
    for a in items {
        x.open("member");
        x.leaf("PolicyName", a.rsplit('/').next().unwrap_or(a));
        x.leaf("PolicyArn", a);
        x.close("member");
    }
    x.close("AttachedPolicies");
    list_end(x, next);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instance profiles

fn profile_xml(x: &mut Xml, tag: &str, ip: &InstanceProfile, iam: &IamState) {
    x.open(tag);
    x.leaf("Path", "/");
    x.leaf("InstanceProfileName", &ip.name);
    x.leaf("InstanceProfileId", &ip.id);
    x.leaf("Arn", &ip.arn);
    x.leaf("CreateDate", &iso8601(ip.created_ms));
    x.open("Roles");
    for r in ip.roles.iter().filter_map(|n| iam.roles.get(n)) {
        role_xml(x, "member", r, false);
    }
    x.close("Roles");
    x.close(tag);
}

fn profile<'a>(iam: &'a IamState, profile_name: &str) -> AwsResult<&'a InstanceProfile> {
    iam.instance_profiles.get(profile_name).ok_or_else(|| no_profile(profile_name))
}

fn create_instance_profile(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let profile_name = name(p, "InstanceProfileName", "instanceProfileName", 128)?;
    if path(p)? != "/" {
        return Err(invalid("Instance profiles are only supported at path /"));
    }
    if !tags(p)?.is_empty() {
        return Err(invalid("Tags on instance profiles are not supported"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    if account(w, cx.account)?.iam.instance_profiles.keys().any(|k| k.eq_ignore_ascii_case(profile_name)) {
        return Err(exists(format!("Instance Profile {profile_name} already exists.")));
    }
    let ip = InstanceProfile {
        name: profile_name.to_string(),
        id: format!("AIPA{}", w.ids.upper(17)),
        arn: arn(cx.account, "instance-profile", "/", profile_name),
        roles: Vec::new(),
        created_ms: w.now(),
    };
    let iam = iam_mut(w, cx.account)?;
    profile_xml(x, "InstanceProfile", &ip, iam);
    iam.instance_profiles.insert(profile_name.to_string(), ip);
    cx.touched(w, profile_name);
    Ok(())
}

fn get_instance_profile(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let profile_name = name(cx.p, "InstanceProfileName", "instanceProfileName", 128)?;
    let w = cx.call.read();
    let iam = &account(&w, cx.account)?.iam;
    profile_xml(x, "InstanceProfile", profile(iam, profile_name)?, iam);
    Ok(())
}

fn delete_instance_profile(cx: &Cx<'_>) -> AwsResult<()> {
    let profile_name = name(cx.p, "InstanceProfileName", "instanceProfileName", 128)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    if !profile(iam, profile_name)?.roles.is_empty() {
        return Err(conflict("Cannot delete entity, must remove roles from instance profile first."));
    }
    iam.instance_profiles.remove(profile_name);
    cx.touched(w, profile_name);
    Ok(())
}

fn add_role_to_instance_profile(cx: &Cx<'_>) -> AwsResult<()> {
    let profile_name = name(cx.p, "InstanceProfileName", "instanceProfileName", 128)?;
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    role(iam, role_name)?;
    let ip = iam.instance_profiles.get_mut(profile_name).ok_or_else(|| no_profile(profile_name))?;
    if ip.roles.iter().any(|r| r == role_name) {
        return Err(exists(format!(
            "The role {role_name} is already associated with instance profile {profile_name}."
        )));
    }
    if !ip.roles.is_empty() {
        return Err(limit("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"));
    }
    ip.roles.push(role_name.to_string());
    cx.touched(w, profile_name);
    Ok(())
}

fn remove_role_from_instance_profile(cx: &Cx<'_>) -> AwsResult<()> {
    let profile_name = name(cx.p, "InstanceProfileName", "instanceProfileName", 128)?;
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let iam = iam_mut(w, cx.account)?;
    let ip = iam.instance_profiles.get_mut(profile_name).ok_or_else(|| no_profile(profile_name))?;
    if !ip.roles.iter().any(|r| r == role_name) {
        return Err(no_role(role_name));
    }
    ip.roles.retain(|r| r != role_name);
    cx.touched(w, profile_name);
    Ok(())
}

fn list_instance_profiles(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let prefix = path_prefix(cx.p)?;
    let w = cx.call.read();
    let iam = &account(&w, cx.account)?.iam;
    let profiles: Vec<&InstanceProfile> = iam.instance_profiles.values().filter(|_| "/".starts_with(&prefix)).collect();
    let (items, next) = paginate(profiles, cx.p)?;
    x.open("InstanceProfiles");
    for ip in items {
        profile_xml(x, "member", ip, iam);
    }
    x.close("InstanceProfiles");
    list_end(x, next);
    Ok(())
}

fn list_instance_profiles_for_role(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let role_name = name(cx.p, "RoleName", "roleName", 64)?;
    let w = cx.call.read();
    let iam = &account(&w, cx.account)?.iam;
    role(iam, role_name)?;
    let profiles: Vec<&InstanceProfile> =
        iam.instance_profiles.values().filter(|ip| ip.roles.iter().any(|r| r == role_name)).collect();
    let (items, next) = paginate(profiles, cx.p)?;
    x.open("InstanceProfiles");
    for ip in items {
        profile_xml(x, "member", ip, iam);
    }
    x.close("InstanceProfiles");
    list_end(x, next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_validated() {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(parse_policy(trust, true).is_ok());
        assert_eq!(parse_policy(trust, false).map_err(|e| e.code.to_string()), Err("MalformedPolicyDocument".into()));
        let identity =
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        assert!(parse_policy(identity, false).is_ok());
        for bad in [
            "{not json",
            "[]",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
        ] {
            assert_eq!(
                parse_policy(bad, false).map_err(|e| e.code.to_string()),
                Err("MalformedPolicyDocument".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn policies_are_percent_encoded_like_iam() {
        let v: Value = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole"}]});
        let enc = encode_policy(&v);
        assert!(enc.starts_with("%7B%22Statement%22%3A%5B"), "{enc}");
        assert!(enc.contains("2012-10-17"));
        assert_eq!(
            percent_encoding::percent_decode_str(&enc).decode_utf8_lossy(),
            serde_json::to_string(&v).unwrap_or_default()
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ci-deployer", "userName", 64).is_ok());
        assert!(check_name("bad name", "userName", 64).is_err());
        assert!(check_name("", "userName", 64).is_err());
        assert!(check_name(&"a".repeat(65), "userName", 64).is_err());
    }
}
