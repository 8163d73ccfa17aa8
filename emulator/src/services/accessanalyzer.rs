//! IAM Access Analyzer (restJson1): analyzers, their archive rules, and the external-access
//! findings the world's resources produce (public buckets, roles trusted outside the zone of
//! trust). Findings are derived in [`crate::world::eval`]; this module serves them and records
//! the changes callers make to their status.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, decode_token, encode_token};
use crate::wire::{Input, Request, Response, iso8601};
use crate::world::{Analyzer, AnalyzerFinding, ArchiveRule, World};

const INVALID: &str = "ValidationException";
const SERVICE_PRINCIPAL: &str = "access-analyzer.amazonaws.com";

const ANALYZER_TYPES: &[&str] = &[
    "ACCOUNT",
    "ORGANIZATION",
    "ACCOUNT_UNUSED_ACCESS",
    "ORGANIZATION_UNUSED_ACCESS",
    "ACCOUNT_INTERNAL_ACCESS",
    "ORGANIZATION_INTERNAL_ACCESS",
];

/// Finding attributes that filters may name (besides `condition.<key>` and `principal.<key>`).
const FILTER_KEYS: &[&str] = &[
    "id",
    "status",
    "resource",
    "resourceType",
    "resourceOwnerAccount",
    "isPublic",
    "action",
    "error",
    "findingType",
    "createdAt",
    "updatedAt",
    "analyzedAt",
];

/// Attributes findings can be sorted by.
const SORT_KEYS: &[&str] = &[
    "id",
    "status",
    "resource",
    "resourceType",
    "resourceOwnerAccount",
    "isPublic",
    "createdAt",
    "updatedAt",
    "analyzedAt",
];

pub fn operation(req: &Request) -> Option<&'static str> {
    let segments = req.segments();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match (req.method.as_str(), s.as_slice()) {
        ("PUT", ["analyzer"]) => "CreateAnalyzer",
        ("GET", ["analyzer"]) => "ListAnalyzers",
        ("GET", ["analyzer", _]) => "GetAnalyzer",
        ("DELETE", ["analyzer", _]) => "DeleteAnalyzer",
        ("PUT", ["analyzer", _, "archive-rule"]) => "CreateArchiveRule",
        ("GET", ["analyzer", _, "archive-rule"]) => "ListArchiveRules",
        ("GET", ["analyzer", _, "archive-rule", _]) => "GetArchiveRule",
        ("PUT", ["analyzer", _, "archive-rule", _]) => "UpdateArchiveRule",
        ("DELETE", ["analyzer", _, "archive-rule", _]) => "DeleteArchiveRule",
        ("PUT", ["archive-rule"]) => "ApplyArchiveRule",
        ("POST", ["finding"]) => "ListFindings",
        ("PUT", ["finding"]) => "UpdateFindings",
        ("GET", ["finding", _]) => "GetFinding",
        ("POST", ["findingv2"]) => "ListFindingsV2",
        ("GET", ["findingv2", _]) => "GetFindingV2",
        ("POST", ["resource", "scan"]) => "StartResourceScan",
        ("GET", ["analyzed-resource"]) => "GetAnalyzedResource",
        ("GET", ["tags", _]) => "ListTagsForResource",
        ("POST", ["tags", _]) => "TagResource",
        ("DELETE", ["tags", _]) => "UntagResource",
        _ => return None,
    })
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    match op {
        "CreateAnalyzer" => create_analyzer(call),
        "ListAnalyzers" => list_analyzers(call),
        "GetAnalyzer" => get_analyzer(call),
        "DeleteAnalyzer" => delete_analyzer(call),
        "CreateArchiveRule" => create_archive_rule(call),
        "ListArchiveRules" => list_archive_rules(call),
        "GetArchiveRule" => get_archive_rule(call),
        "UpdateArchiveRule" => update_archive_rule(call),
        "DeleteArchiveRule" => delete_archive_rule(call),
        "ApplyArchiveRule" => apply_archive_rule(call),
        "ListFindings" => list_findings(call, false),
        "ListFindingsV2" => list_findings(call, true),
        "GetFinding" => get_finding(call, false),
        "GetFindingV2" => get_finding(call, true),
        "UpdateFindings" => update_findings(call),
        "StartResourceScan" => start_resource_scan(call),
        "GetAnalyzedResource" => get_analyzed_resource(call),
        "ListTagsForResource" => list_tags(call),
        "TagResource" => tag_resource(call),
        "UntagResource" => untag_resource(call),
        other => Err(invalid(format!("The operation {other} is not supported."))),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, INVALID, message)
}

fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFoundException", message)
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", message)
}

fn denied(message: impl Into<String>) -> AwsError {
    AwsError::new(403, "AccessDeniedException", message)
}

fn body(call: &Call<'_>) -> AwsResult<Input> {
    Input::parse(&call.req.body, INVALID)
}

fn ok(value: Value) -> AwsResult<Response> {
    Ok(Response::json(&value))
}

fn segment(call: &Call<'_>, i: usize) -> String {
    call.req.segments().get(i).cloned().unwrap_or_default()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn analyzer<'w>(w: &'w World, account: &str, region: &str, name: &str) -> AwsResult<&'w Analyzer> {
    w.region(account, region)
        .and_then(|r| r.analyzers.get(name))
        .ok_or_else(|| not_found(format!("Analyzer {name} not found.")))
}

fn analyzer_mut<'w>(w: &'w mut World, account: &str, region: &str, name: &str) -> AwsResult<&'w mut Analyzer> {
    w.regions
        .get_mut(&(account.to_string(), region.to_string()))
        .and_then(|r| r.analyzers.get_mut(name))
        .ok_or_else(|| not_found(format!("Analyzer {name} not found.")))
}

/// The caller's analyzer with this ARN; its name.
fn analyzer_by_arn(w: &World, account: &str, region: &str, arn: &str) -> AwsResult<String> {
    if !arn.starts_with("arn:") || !arn.contains(":analyzer/") {
        return Err(invalid(format!("Invalid analyzer ARN: {arn}")));
    }
    w.region(account, region)
        .and_then(|r| r.analyzers.values().find(|a| a.arn == arn))
        .map(|a| a.name.clone())
        .ok_or_else(|| not_found(format!("Analyzer {arn} not found.")))
}

/// `maxResults` from the body or query: at least 1, default `default`.
fn page_size(value: Option<i64>, default: usize) -> AwsResult<usize> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(n) => Err(invalid(format!("maxResults must be at least 1, got {n}."))),
    }
}

fn query_page_size(req: &Request, default: usize) -> AwsResult<usize> {
    match req.query_param("maxResults") {
        None => Ok(default),
        Some(v) => page_size(Some(v.parse::<i64>().map_err(|_| invalid("maxResults must be an integer."))?), default),
    }
}

fn token_offset(token: Option<&str>) -> AwsResult<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => decode_token(t).ok_or_else(|| invalid("Invalid nextToken.")),
    }
}

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
                _ => Err(invalid(format!("{name} must map strings to strings."))),
            })
            .collect(),
        Some(_) => Err(invalid(format!("{name} must be a map."))),
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

fn known_filter_key(key: &str) -> bool {
    FILTER_KEYS.contains(&key)
        || key.strip_prefix("condition.").is_some_and(|k| !k.is_empty())
        || key.strip_prefix("principal.").is_some_and(|k| !k.is_empty())
}

/// Validates a filter (`{key: {eq|neq|contains: [..], exists: bool}}`) and returns it.
fn parse_filter(value: Option<&Value>, field: &str) -> AwsResult<Value> {
    let Some(value) = value else {
        return Ok(json!({}));
    };
    let Value::Object(m) = value else {
        return Err(invalid(format!("{field} must be a map of criteria.")));
    };
    for (key, crit) in m {
        if !known_filter_key(key) {
            return Err(invalid(format!("Invalid filter key: {key}")));
        }
        let Value::Object(ops) = crit else {
            return Err(invalid(format!("The criterion for {key} must be an object.")));
        };
        if ops.is_empty() {
            return Err(invalid(format!("The criterion for {key} must set one of eq, neq, contains or exists.")));
        }
        for (op, arg) in ops {
            let ok = match op.as_str() {
                "eq" | "neq" | "contains" => {
                    arg.as_array().is_some_and(|a| !a.is_empty() && a.len() <= 20 && a.iter().all(Value::is_string))
                }
                "exists" => arg.is_boolean(),
                _ => false,
            };
            if !ok {
                return Err(invalid(format!("Invalid criterion {op} for filter key {key}.")));
            }
        }
    }
    Ok(value.clone())
}

/// The values of a finding attribute, as strings (empty when the finding has none).
fn finding_values(f: &AnalyzerFinding, key: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match key {
        "id" => one(&f.id),
        "status" => one(&f.status),
        "resource" => one(&f.resource),
        "resourceType" => one(&f.resource_type),
        "resourceOwnerAccount" => one(&f.resource_owner),
        "isPublic" => one(if f.is_public { "true" } else { "false" }),
        "action" => f.action.clone(),
        "findingType" => one("ExternalAccess"),
        "createdAt" => one(&iso8601(f.created_ms)),
        "updatedAt" => one(&iso8601(f.updated_ms)),
        "analyzedAt" => one(&iso8601(f.analyzed_ms)),
        k => {
            if let Some(c) = k.strip_prefix("condition.") {
                f.condition.get(c).cloned().into_iter().collect()
            } else if let Some(p) = k.strip_prefix("principal.") {
                f.principal.get(p).cloned().into_iter().collect()
            } else {
                Vec::new()
            }
        }
    }
}

fn criterion_holds(crit: &Value, values: &[String]) -> bool {
    let list = |k: &str| -> Option<Vec<&str>> {
        crit.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect())
    };
    let eq_ok = list("eq").is_none_or(|eq| values.iter().any(|v| eq.contains(&v.as_str())));
    let neq_ok = list("neq").is_none_or(|neq| !values.iter().any(|v| neq.contains(&v.as_str())));
    let contains_ok = list("contains").is_none_or(|c| values.iter().any(|v| c.iter().any(|x| v.contains(x))));
    let exists_ok = crit.get("exists").and_then(Value::as_bool).is_none_or(|exists| values.is_empty() != exists);
    eq_ok && neq_ok && contains_ok && exists_ok
}

fn filter_matches(filter: &Value, f: &AnalyzerFinding) -> bool {
    filter.as_object().is_some_and(|m| m.iter().all(|(k, crit)| criterion_holds(crit, &finding_values(f, k))))
}

// ---------------------------------------------------------------------------------------------
// Analyzers

fn analyzer_json(a: &Analyzer) -> Value {
    let mut v = json!({
        "arn": a.arn,
        "name": a.name,
        "type": a.kind,
        "createdAt": iso8601(a.created_ms),
        "tags": a.tags,
        "status": "ACTIVE",
    });
    if let (Some(last), Some(obj)) = (a.findings.values().max_by_key(|f| f.analyzed_ms), v.as_object_mut()) {
        obj.insert("lastResourceAnalyzed".into(), json!(last.resource));
        obj.insert("lastResourceAnalyzedAt".into(), json!(iso8601(last.analyzed_ms)));
    }
    v
}

fn inline_rules(input: &Input, now: i64) -> AwsResult<BTreeMap<String, ArchiveRule>> {
    let mut rules = BTreeMap::new();
    for r in input.objects("archiveRules")? {
        let name = r.req_str("ruleName")?.to_string();
        if !valid_name(&name) {
            return Err(invalid(format!("Invalid archive rule name: {name}")));
        }
        let filter = parse_filter(r.raw("filter"), "filter")?;
        if rules.contains_key(&name) {
            return Err(invalid(format!("Duplicate archive rule name: {name}")));
        }
        rules.insert(name.clone(), ArchiveRule { name, filter, created_ms: now, updated_ms: now });
    }
    Ok(rules)
}

fn create_analyzer(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let name = input.req_str("analyzerName")?.to_string();
    if !valid_name(&name) {
        return Err(invalid(format!(
            "Invalid analyzer name {name}: it must start with a letter and contain only letters, digits, '_', '.' and '-' (at most 255)."
        )));
    }
    let kind = input.req_str("type")?.to_string();
    if !ANALYZER_TYPES.contains(&kind.as_str()) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            ANALYZER_TYPES.join(", ")
        )));
    }
    let tags = string_map(&input, "tags")?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let now = w.now();
    let rules = inline_rules(&input, now)?;
    if kind.starts_with("ORGANIZATION") {
        let Some(org) = w.org.as_ref().filter(|_| w.accounts.get(account).is_some_and(|a| a.in_org())) else {
            return Err(invalid(
                "You must belong to an organization to create an analyzer with the organization as the zone of trust.",
            ));
        };
        if !org.service_access.contains(SERVICE_PRINCIPAL) {
            return Err(invalid("Service not enabled for AWS Organizations"));
        }
        let delegated = org.delegated_admins.contains(&(account.to_string(), SERVICE_PRINCIPAL.to_string()));
        if org.management_account != account && !delegated {
            return Err(denied(format!("Account {account} is not a delegated administrator")));
        }
    }
    if w.region(account, region).is_some_and(|r| r.analyzers.contains_key(&name)) {
        return Err(conflict(format!("Analyzer {name} already exists.")));
    }
    let arn = format!("arn:{}:access-analyzer:{region}:{account}:analyzer/{name}", w.partition());
    let a = Analyzer {
        arn: arn.clone(),
        name: name.clone(),
        kind,
        created_ms: now,
        tags,
        archive_rules: rules,
        findings: BTreeMap::new(),
    };
    w.region_mut(account, region).analyzers.insert(name.clone(), a);
    w.mutated("access-analyzer:CreateAnalyzer", &arn, account, region);
    ok(json!({"arn": arn}))
}

fn list_analyzers(call: &Call<'_>) -> AwsResult<Response> {
    let size = query_page_size(call.req, 100)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let kind = call.req.query_param("type");
    if let Some(k) = kind
        && !ANALYZER_TYPES.contains(&k)
    {
        return Err(invalid(format!("Invalid analyzer type: {k}")));
    }
    let w = call.read();
    let list: Vec<Value> = w
        .region(call.account(), call.region)
        .map(|r| r.analyzers.values().filter(|a| kind.is_none_or(|k| a.kind == k)).map(analyzer_json).collect())
        .unwrap_or_default();
    let (page, next) = paginate(&list, offset, size);
    ok(with_token(json!({"analyzers": page}), next))
}

fn get_analyzer(call: &Call<'_>) -> AwsResult<Response> {
    let name = segment(call, 1);
    let w = call.read();
    let a = analyzer(&w, call.account(), call.region, &name)?;
    ok(json!({"analyzer": analyzer_json(a)}))
}

fn delete_analyzer(call: &Call<'_>) -> AwsResult<Response> {
    let name = segment(call, 1);
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let arn = analyzer(&w, account, region, &name)?.arn.clone();
    w.region_mut(account, region).analyzers.remove(&name);
    w.mutated("access-analyzer:DeleteAnalyzer", &arn, account, region);
    ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Archive rules

fn rule_json(r: &ArchiveRule) -> Value {
    json!({
        "ruleName": r.name,
        "filter": r.filter,
        "createdAt": iso8601(r.created_ms),
        "updatedAt": iso8601(r.updated_ms),
    })
}

/// Archives the active findings of an analyzer that a filter matches; returns their ids.
fn archive_matching(a: &mut Analyzer, filter: &Value, now: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for f in a.findings.values_mut() {
        if f.status == "ACTIVE" && filter_matches(filter, f) {
            f.status = "ARCHIVED".into();
            f.updated_ms = now;
            ids.push(f.id.clone());
        }
    }
    ids
}

fn create_archive_rule(call: &Call<'_>) -> AwsResult<Response> {
    let analyzer_name = segment(call, 1);
    let input = body(call)?;
    let rule = input.req_str("ruleName")?.to_string();
    if !valid_name(&rule) {
        return Err(invalid(format!("Invalid archive rule name: {rule}")));
    }
    let filter = parse_filter(Some(input.raw("filter").ok_or_else(|| invalid("filter is required."))?), "filter")?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let now = w.now();
    let a = analyzer_mut(&mut w, account, region, &analyzer_name)?;
    if a.archive_rules.contains_key(&rule) {
        return Err(conflict(format!("Archive rule {rule} already exists for analyzer {analyzer_name}.")));
    }
    a.archive_rules.insert(
        rule.clone(),
        ArchiveRule { name: rule.clone(), filter: filter.clone(), created_ms: now, updated_ms: now },
    );
    archive_matching(a, &filter, now);
    w.mutated("access-analyzer:CreateArchiveRule", &format!("{analyzer_name}/{rule}"), account, region);
    ok(json!({}))
}

fn list_archive_rules(call: &Call<'_>) -> AwsResult<Response> {
    let analyzer_name = segment(call, 1);
    let size = query_page_size(call.req, 100)?;
    let offset = token_offset(call.req.query_param("nextToken"))?;
    let w = call.read();
    let a = analyzer(&w, call.account(), call.region, &analyzer_name)?;
    let list: Vec<Value> = a.archive_rules.values().map(rule_json).collect();
    let (page, next) = paginate(&list, offset, size);
    ok(with_token(json!({"archiveRules": page}), next))
}

fn get_archive_rule(call: &Call<'_>) -> AwsResult<Response> {
    let (analyzer_name, rule) = (segment(call, 1), segment(call, 3));
    let w = call.read();
    let a = analyzer(&w, call.account(), call.region, &analyzer_name)?;
    let r = a.archive_rules.get(&rule).ok_or_else(|| not_found(format!("Archive rule {rule} not found.")))?;
    ok(json!({"archiveRule": rule_json(r)}))
}

fn update_archive_rule(call: &Call<'_>) -> AwsResult<Response> {
    let (analyzer_name, rule) = (segment(call, 1), segment(call, 3));
    let input = body(call)?;
    let filter = parse_filter(Some(input.raw("filter").ok_or_else(|| invalid("filter is required."))?), "filter")?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let now = w.now();
    let a = analyzer_mut(&mut w, account, region, &analyzer_name)?;
    let r = a.archive_rules.get_mut(&rule).ok_or_else(|| not_found(format!("Archive rule {rule} not found.")))?;
    r.filter = filter;
    r.updated_ms = now;
    w.mutated("access-analyzer:UpdateArchiveRule", &format!("{analyzer_name}/{rule}"), account, region);
    ok(json!({}))
}

fn delete_archive_rule(call: &Call<'_>) -> AwsResult<Response> {
    let (analyzer_name, rule) = (segment(call, 1), segment(call, 3));
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let a = analyzer_mut(&mut w, account, region, &analyzer_name)?;
    if a.archive_rules.remove(&rule).is_none() {
        return Err(not_found(format!("Archive rule {rule} not found.")));
    }
    w.mutated("access-analyzer:DeleteArchiveRule", &format!("{analyzer_name}/{rule}"), account, region);
    ok(json!({}))
}

fn apply_archive_rule(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let arn = input.req_str("analyzerArn")?.to_string();
    let rule = input.req_str("ruleName")?.to_string();
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let now = w.now();
    let a = analyzer_mut(&mut w, account, region, &name)?;
    let filter = a
        .archive_rules
        .get(&rule)
        .map(|r| r.filter.clone())
        .ok_or_else(|| not_found(format!("Archive rule {rule} not found.")))?;
    archive_matching(a, &filter, now);
    w.mutated("access-analyzer:ApplyArchiveRule", &format!("{name}/{rule}"), account, region);
    ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Findings

/// What grants the access: a bucket's ACL when its policy is not public, otherwise a policy.
fn sources(w: &World, f: &AnalyzerFinding) -> Value {
    let via_acl = f.resource_type == "AWS::S3::Bucket"
        && f.resource.strip_prefix("arn:aws:s3:::").and_then(|b| w.buckets.get(b)).is_some_and(|b| {
            b.public_acl.is_some() && !b.policy.as_deref().is_some_and(crate::world::eval::policy_is_public)
        });
    json!([{"type": if via_acl { "BUCKET_ACL" } else { "POLICY" }}])
}

fn finding_json(w: &World, f: &AnalyzerFinding) -> Value {
    json!({
        "id": f.id,
        "principal": f.principal,
        "action": f.action,
        "resource": f.resource,
        "isPublic": f.is_public,
        "resourceType": f.resource_type,
        "condition": f.condition,
        "createdAt": iso8601(f.created_ms),
        "analyzedAt": iso8601(f.analyzed_ms),
        "updatedAt": iso8601(f.updated_ms),
        "status": f.status,
        "resourceOwnerAccount": f.resource_owner,
        "sources": sources(w, f),
    })
}

fn finding_v2_json(f: &AnalyzerFinding) -> Value {
    json!({
        "id": f.id,
        "resource": f.resource,
        "resourceType": f.resource_type,
        "resourceOwnerAccount": f.resource_owner,
        "createdAt": iso8601(f.created_ms),
        "analyzedAt": iso8601(f.analyzed_ms),
        "updatedAt": iso8601(f.updated_ms),
        "status": f.status,
        "findingType": "ExternalAccess",
    })
}

fn parse_sort(input: &Input) -> AwsResult<Option<(String, bool)>> {
    let Some(s) = input.object("sort")? else {
        return Ok(None);
    };
    let Some(attr) = s.str("attributeName")? else {
        return Ok(None);
    };
    if !SORT_KEYS.contains(&attr) {
        return Err(invalid(format!("Invalid sort attribute: {attr}")));
    }
    let desc = match s.str("orderBy")? {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(o) => return Err(invalid(format!("Invalid orderBy: {o}"))),
    };
    Ok(Some((attr.to_string(), desc)))
}

fn compare(a: &AnalyzerFinding, b: &AnalyzerFinding, attr: &str) -> Ordering {
    match attr {
        "createdAt" => a.created_ms.cmp(&b.created_ms),
        "updatedAt" => a.updated_ms.cmp(&b.updated_ms),
        "analyzedAt" => a.analyzed_ms.cmp(&b.analyzed_ms),
        other => finding_values(a, other).cmp(&finding_values(b, other)),
    }
}

fn list_findings(call: &Call<'_>, v2: bool) -> AwsResult<Response> {
    let input = body(call)?;
    let arn = input.req_str("analyzerArn")?.to_string();
    let filter = parse_filter(input.raw("filter"), "filter")?;
    let sort = parse_sort(&input)?;
    let size = page_size(input.i64("maxResults")?, 100)?;
    let offset = token_offset(input.str("nextToken")?)?;
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let a = analyzer(&w, account, region, &name)?;
    let mut list: Vec<&AnalyzerFinding> = a.findings.values().filter(|f| filter_matches(&filter, f)).collect();
    match &sort {
        Some((attr, desc)) => list.sort_by(|x, y| {
            let o = compare(x, y, attr).then_with(|| x.id.cmp(&y.id));
            if *desc { o.reverse() } else { o }
        }),
        None => list.sort_by(|x, y| x.created_ms.cmp(&y.created_ms).then_with(|| x.id.cmp(&y.id))),
    }
    let rendered: Vec<Value> = list.iter().map(|f| if v2 { finding_v2_json(f) } else { finding_json(&w, f) }).collect();
    let (page, next) = paginate(&rendered, offset, size);
    ok(with_token(json!({"findings": page}), next))
}

fn get_finding(call: &Call<'_>, v2: bool) -> AwsResult<Response> {
    let id = segment(call, 1);
    let arn = call.req.query_param("analyzerArn").ok_or_else(|| invalid("analyzerArn is required."))?.to_string();
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let a = analyzer(&w, account, region, &name)?;
    let f = a.findings.get(&id).ok_or_else(|| not_found(format!("Finding {id} not found.")))?;
    if !v2 {
        return ok(json!({"finding": finding_json(&w, f)}));
    }
    let mut v = finding_v2_json(f);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "findingDetails".into(),
            json!([{"externalAccessDetails": {
                "action": f.action,
                "condition": f.condition,
                "isPublic": f.is_public,
                "principal": f.principal,
                "sources": sources(&w, f),
            }}]),
        );
    }
    ok(v)
}

fn update_findings(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let arn = input.req_str("analyzerArn")?.to_string();
    let status = input.req_str("status")?.to_string();
    if status != "ACTIVE" && status != "ARCHIVED" {
        return Err(invalid(format!("Invalid status {status}: must be ACTIVE or ARCHIVED.")));
    }
    let ids = input.strings("ids")?;
    let resource = input.str("resourceArn")?.map(str::to_string);
    if ids.is_empty() && resource.is_none() {
        return Err(invalid("Either ids or resourceArn must be specified."));
    }
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let now = w.now();
    let a = analyzer_mut(&mut w, account, region, &name)?;
    if let Some(missing) = ids.iter().find(|i| !a.findings.contains_key(*i)) {
        return Err(not_found(format!("Finding {missing} not found.")));
    }
    let mut changed = Vec::new();
    for f in a.findings.values_mut() {
        let selected = ids.contains(&f.id) || resource.as_deref() == Some(f.resource.as_str());
        if selected && f.status != "RESOLVED" && f.status != status {
            f.status = status.clone();
            f.updated_ms = now;
            changed.push(f.id.clone());
        }
    }
    if changed.is_empty() {
        w.mutated("access-analyzer:UpdateFindings", &arn, account, region);
    }
    for id in &changed {
        w.mutated("access-analyzer:UpdateFindings", id, account, region);
    }
    ok(json!({}))
}

fn start_resource_scan(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let arn = input.req_str("analyzerArn")?.to_string();
    let resource = input.req_str("resourceArn")?.to_string();
    let owner = input.str("resourceOwnerAccount")?.map(str::to_string);
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let account_zone = analyzer(&w, account, region, &name)?.kind.starts_with("ACCOUNT");
    if account_zone && owner.as_deref().is_some_and(|o| o != account) {
        return Err(invalid("resourceOwnerAccount must be the analyzer's own account for an account analyzer."));
    }
    let now = w.now();
    for f in analyzer_mut(&mut w, account, region, &name)?.findings.values_mut().filter(|f| f.resource == resource) {
        f.analyzed_ms = now;
    }
    w.mutated("access-analyzer:StartResourceScan", &resource, account, region);
    ok(json!({}))
}

/// The type of a resource the analyzer covers, if it exists in the caller's account.
fn resource_type_of(w: &World, account: &str, region: &str, arn: &str) -> Option<&'static str> {
    if let Some(bucket) = arn.strip_prefix("arn:aws:s3:::") {
        return w.buckets.get(bucket).filter(|b| b.owner == account && b.region == region).map(|_| "AWS::S3::Bucket");
    }
    let acct = w.accounts.get(account)?;
    acct.iam.roles.values().any(|r| r.arn == arn).then_some("AWS::IAM::Role")
}

fn get_analyzed_resource(call: &Call<'_>) -> AwsResult<Response> {
    let arn = call.req.query_param("analyzerArn").ok_or_else(|| invalid("analyzerArn is required."))?.to_string();
    let resource = call.req.query_param("resourceArn").ok_or_else(|| invalid("resourceArn is required."))?.to_string();
    let (account, region) = (call.account(), call.region);
    let w = call.read();
    let name = analyzer_by_arn(&w, account, region, &arn)?;
    let a = analyzer(&w, account, region, &name)?;
    let Some(rtype) = resource_type_of(&w, account, region, &resource) else {
        return Err(not_found(format!("Analyzed resource {resource} not found.")));
    };
    let findings: Vec<&AnalyzerFinding> = a.findings.values().filter(|f| f.resource == resource).collect();
    let mut out: Map<String, Value> = Map::new();
    out.insert("resourceArn".into(), json!(resource));
    out.insert("resourceType".into(), json!(rtype));
    out.insert("resourceOwnerAccount".into(), json!(account));
    let created = findings.iter().map(|f| f.created_ms).min().unwrap_or(a.created_ms);
    let analyzed = findings.iter().map(|f| f.analyzed_ms).max().unwrap_or(a.created_ms);
    let updated = findings.iter().map(|f| f.updated_ms).max().unwrap_or(a.created_ms);
    out.insert("createdAt".into(), json!(iso8601(created)));
    out.insert("analyzedAt".into(), json!(iso8601(analyzed)));
    out.insert("updatedAt".into(), json!(iso8601(updated)));
    let live: Vec<&&AnalyzerFinding> = findings.iter().filter(|f| f.status != "RESOLVED").collect();
    out.insert("isPublic".into(), json!(live.iter().any(|f| f.is_public)));
    if !live.is_empty() {
        let mut actions: Vec<String> = live.iter().flat_map(|f| f.action.iter().cloned()).collect();
        actions.sort();
        actions.dedup();
        out.insert("actions".into(), json!(actions));
        let status = if live.iter().any(|f| f.status == "ACTIVE") { "ACTIVE" } else { "ARCHIVED" };
        out.insert("status".into(), json!(status));
    }
    ok(json!({"resource": out}))
}

// ---------------------------------------------------------------------------------------------
// Tags

/// The caller's analyzer named by the ARN in `/tags/{arn}`.
fn tagged_analyzer(call: &Call<'_>, w: &World) -> AwsResult<String> {
    let arn = segment(call, 1);
    w.region(call.account(), call.region)
        .and_then(|r| r.analyzers.values().find(|a| a.arn == arn))
        .map(|a| a.name.clone())
        .ok_or_else(|| not_found(format!("Resource {arn} not found.")))
}

fn list_tags(call: &Call<'_>) -> AwsResult<Response> {
    let w = call.read();
    let name = tagged_analyzer(call, &w)?;
    let a = analyzer(&w, call.account(), call.region, &name)?;
    ok(json!({"tags": a.tags}))
}

fn tag_resource(call: &Call<'_>) -> AwsResult<Response> {
    let input = body(call)?;
    let tags = string_map(&input, "tags")?;
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let name = tagged_analyzer(call, &w)?;
    let a = analyzer_mut(&mut w, account, region, &name)?;
    a.tags.extend(tags);
    let arn = a.arn.clone();
    w.mutated("access-analyzer:TagResource", &arn, account, region);
    ok(json!({}))
}

fn untag_resource(call: &Call<'_>) -> AwsResult<Response> {
    let keys: Vec<String> = call.req.query.iter().filter(|(k, _)| k == "tagKeys").map(|(_, v)| v.clone()).collect();
    let (account, region) = (call.account(), call.region);
    let mut w = call.write();
    let name = tagged_analyzer(call, &w)?;
    let a = analyzer_mut(&mut w, account, region, &name)?;
    for k in &keys {
        a.tags.remove(k);
    }
    let arn = a.arn.clone();
    w.mutated("access-analyzer:UntagResource", &arn, account, region);
    ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> AnalyzerFinding {
        AnalyzerFinding {
            id: "f1".into(),
            resource: "arn:aws:s3:::b".into(),
            resource_type: "AWS::S3::Bucket".into(),
            resource_owner: "555555555555".into(),
            principal: BTreeMap::from([("AWS".to_string(), "*".to_string())]),
            action: vec!["s3:GetObject".into()],
            condition: BTreeMap::new(),
            is_public: true,
            status: "ACTIVE".into(),
            created_ms: 0,
            updated_ms: 0,
            analyzed_ms: 0,
        }
    }

    #[test]
    fn filters() {
        let f = finding();
        assert!(filter_matches(&json!({"isPublic": {"eq": ["true"]}}), &f));
        assert!(filter_matches(&json!({"resourceType": {"neq": ["AWS::IAM::Role"]}}), &f));
        assert!(filter_matches(&json!({"resource": {"contains": [":::b"]}}), &f));
        assert!(filter_matches(&json!({"condition.sts:ExternalId": {"exists": false}}), &f));
        assert!(!filter_matches(&json!({"principal.AWS": {"exists": false}}), &f));
        assert!(!filter_matches(&json!({"status": {"eq": ["ARCHIVED"]}}), &f));
        assert!(parse_filter(Some(&json!({"bogus": {"eq": ["x"]}})), "filter").is_err());
        assert!(parse_filter(Some(&json!({"status": {}})), "filter").is_err());
        assert!(valid_name("orgsec-account-analyzer"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("a b"));
    }
}
