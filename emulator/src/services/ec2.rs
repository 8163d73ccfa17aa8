//! EC2 over ec2Query: security groups and their rules, instances, EBS volumes, snapshots and
//! default encryption, IAM instance profile associations, tags, VPCs and regions.
//!
//! Every operation reads or changes the caller's account in the signed region; mutations go
//! through [`World::mutated`] so that Security Hub, Config and GuardDuty see their effect.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, decode_token, encode_token, form_action, known};
use crate::wire::{Params, Request, Response, Xml, iso8601};
use crate::world::{Instance, RegionState, RuleSource, SecurityGroup, SgRule, Snapshot, Volume, Vpc, World};

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

const OPS: &[&str] = &[
    "DescribeSecurityGroups",
    "DescribeSecurityGroupRules",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "DescribeInstances",
    "RunInstances",
    "TerminateInstances",
    "ModifyInstanceAttribute",
    "DescribeInstanceAttribute",
    "ModifyInstanceMetadataOptions",
    "DescribeIamInstanceProfileAssociations",
    "AssociateIamInstanceProfile",
    "DisassociateIamInstanceProfile",
    "DescribeVolumes",
    "CreateSnapshot",
    "DescribeSnapshots",
    "DeleteSnapshot",
    "GetEbsEncryptionByDefault",
    "EnableEbsEncryptionByDefault",
    "DisableEbsEncryptionByDefault",
    "CreateTags",
    "DeleteTags",
    "DescribeVpcs",
    "CreateVpc",
    "DescribeRegions",
];

/// Regions every account has enabled.
const DEFAULT_REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Opt-in regions, listed only with `AllRegions=true`.
const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
];

/// Rules per direction in one security group (the AWS default quota).
const MAX_RULES: usize = 60;
/// Tags per resource.
const MAX_TAGS: usize = 50;
/// Instances one RunInstances call may launch.
const MAX_LAUNCH: i64 = 20;

static EMPTY_REGION: LazyLock<RegionState> = LazyLock::new(RegionState::default);

pub fn operation(req: &Request) -> Option<&'static str> {
    known(OPS, &form_action(req)?)
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let p = Params::parse(&call.req.body, &call.req.query, "InvalidParameterValue", "MissingParameter");
    if p.bool("DryRun")? == Some(true) {
        return Err(AwsError::new(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."));
    }
    let cx = Cx { call, p: &p, account: call.account(), region: call.region };
    let root = format!("{op}Response");
    let mut x = Xml::new();
    x.open_ns(&root, NS);
    x.leaf("requestId", call.request_id);
    match op {
        "DescribeSecurityGroups" => describe_security_groups(&cx, &mut x)?,
        "DescribeSecurityGroupRules" => describe_security_group_rules(&cx, &mut x)?,
        "CreateSecurityGroup" => create_security_group(&cx, &mut x)?,
        "DeleteSecurityGroup" => delete_security_group(&cx, &mut x)?,
        "AuthorizeSecurityGroupIngress" => authorize(&cx, &mut x, false)?,
        "AuthorizeSecurityGroupEgress" => authorize(&cx, &mut x, true)?,
        "RevokeSecurityGroupIngress" => revoke(&cx, &mut x, false)?,
        "RevokeSecurityGroupEgress" => revoke(&cx, &mut x, true)?,
        "DescribeInstances" => describe_instances(&cx, &mut x)?,
        "RunInstances" => run_instances(&cx, &mut x)?,
        "TerminateInstances" => terminate_instances(&cx, &mut x)?,
        "ModifyInstanceAttribute" => modify_instance_attribute(&cx, &mut x)?,
        "DescribeInstanceAttribute" => describe_instance_attribute(&cx, &mut x)?,
        "ModifyInstanceMetadataOptions" => modify_instance_metadata_options(&cx, &mut x)?,
        "DescribeIamInstanceProfileAssociations" => describe_profile_associations(&cx, &mut x)?,
        "AssociateIamInstanceProfile" => associate_profile(&cx, &mut x)?,
        "DisassociateIamInstanceProfile" => disassociate_profile(&cx, &mut x)?,
        "DescribeVolumes" => describe_volumes(&cx, &mut x)?,
        "CreateSnapshot" => create_snapshot(&cx, &mut x)?,
        "DescribeSnapshots" => describe_snapshots(&cx, &mut x)?,
        "DeleteSnapshot" => delete_snapshot(&cx, &mut x)?,
        "GetEbsEncryptionByDefault" => get_ebs_default(&cx, &mut x),
        "EnableEbsEncryptionByDefault" => set_ebs_default(&cx, &mut x, true, op),
        "DisableEbsEncryptionByDefault" => set_ebs_default(&cx, &mut x, false, op),
        "CreateTags" => create_tags(&cx, &mut x)?,
        "DeleteTags" => delete_tags(&cx, &mut x)?,
        "DescribeVpcs" => describe_vpcs(&cx, &mut x)?,
        "CreateVpc" => create_vpc(&cx, &mut x)?,
        "DescribeRegions" => describe_regions(&cx, &mut x)?,
        other => {
            return Err(bad("InvalidAction", format!("The action {other} is not valid for this web service.")));
        }
    }
    x.close(&root);
    Ok(Response::xml(x.finish()))
}

/// One call: its parameters and where it acts.
struct Cx<'a> {
    call: &'a Call<'a>,
    p: &'a Params,
    account: &'a str,
    region: &'a str,
}

impl Cx<'_> {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{}:{}:{kind}/{id}", self.region, self.account)
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message)
}

fn region_of<'w>(w: &'w World, account: &str, region: &str) -> &'w RegionState {
    w.region(account, region).unwrap_or(&EMPTY_REGION)
}

fn b(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

// ---------------------------------------------------------------------------------------------
// Ids, lookups and errors

/// Checks the shape of a resource id (`sg-0abc...`): the prefix and then letters and digits.
fn check_id(id: &str, prefix: &str, code: &'static str) -> AwsResult<()> {
    let ok = id.strip_prefix(prefix).is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_alphanumeric()));
    if ok { Ok(()) } else { Err(bad(code, format!("Invalid id: \"{id}\" (expecting \"{prefix}...\")"))) }
}

fn group_not_found(id: &str) -> AwsError {
    bad("InvalidGroup.NotFound", format!("The security group '{id}' does not exist"))
}

fn instances_not_found(missing: &[String]) -> AwsError {
    if missing.len() == 1 {
        bad("InvalidInstanceID.NotFound", format!("The instance ID '{}' does not exist", missing[0]))
    } else {
        bad("InvalidInstanceID.NotFound", format!("The instance IDs '{}' do not exist", missing.join(", ")))
    }
}

fn volume_not_found(id: &str) -> AwsError {
    bad("InvalidVolume.NotFound", format!("The volume '{id}' does not exist."))
}

fn snapshot_not_found(id: &str) -> AwsError {
    bad("InvalidSnapshot.NotFound", format!("The snapshot '{id}' does not exist."))
}

fn vpc_not_found(id: &str) -> AwsError {
    bad("InvalidVpcID.NotFound", format!("The vpc ID '{id}' does not exist"))
}

fn group<'a>(rs: &'a RegionState, id: &str) -> AwsResult<&'a SecurityGroup> {
    check_id(id, "sg-", "InvalidGroupId.Malformed")?;
    rs.ec2.security_groups.get(id).ok_or_else(|| group_not_found(id))
}

fn instance<'a>(rs: &'a RegionState, id: &str) -> AwsResult<&'a Instance> {
    check_id(id, "i-", "InvalidInstanceID.Malformed")?;
    rs.ec2.instances.get(id).ok_or_else(|| instances_not_found(&[id.to_string()]))
}

fn default_vpc(rs: &RegionState) -> Option<&Vpc> {
    rs.ec2.vpcs.values().find(|v| v.is_default)
}

/// A group by name in the default VPC, as EC2 resolves `GroupName` parameters.
fn group_by_name<'a>(rs: &'a RegionState, name: &str) -> AwsResult<&'a SecurityGroup> {
    let Some(vpc) = default_vpc(rs) else {
        return Err(bad(
            "VPCIdNotSpecified",
            "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.",
        ));
    };
    rs.ec2.security_groups.values().find(|g| g.name == name && g.vpc_id == vpc.id).ok_or_else(|| {
        bad("InvalidGroup.NotFound", format!("The security group '{name}' does not exist in default VPC '{}'", vpc.id))
    })
}

/// The group a call acts on: `GroupId`, or `GroupName` in the default VPC.
fn target_group(rs: &RegionState, p: &Params, allow_name: bool) -> AwsResult<String> {
    if let Some(id) = p.get("GroupId").filter(|s| !s.is_empty()) {
        return Ok(group(rs, id)?.id.clone());
    }
    match p.get("GroupName").filter(|s| !s.is_empty()) {
        Some(name) if allow_name => Ok(group_by_name(rs, name)?.id.clone()),
        _ => Err(bad("MissingParameter", "The request must contain the parameter groupId")),
    }
}

/// The stored reference to a group: `sg-x` in the same account, `<account>/sg-x` across accounts.
fn group_ref(stored: &str, account: &str) -> (String, String) {
    match stored.split_once('/') {
        Some((owner, id)) => (owner.to_string(), id.to_string()),
        None => (account.to_string(), stored.to_string()),
    }
}

/// The ARN and id of an instance profile an instance carries (stored as its ARN, or a name).
fn profile_ref(w: &World, account: &str, stored: &str) -> (String, String) {
    let name = if stored.starts_with("arn:") { stored.rsplit('/').next().unwrap_or(stored) } else { stored };
    let arn = if stored.starts_with("arn:") {
        stored.to_string()
    } else {
        format!("arn:aws:iam::{account}:instance-profile/{name}")
    };
    let id =
        w.accounts.get(account).and_then(|a| a.iam.instance_profiles.get(name)).map(|p| p.id.clone()).unwrap_or_else(
            || {
                let digest = name
                    .bytes()
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3));
                format!("AIPA{:017X}", digest & 0x0fff_ffff_ffff_ffff_u64).chars().take(21).collect()
            },
        );
    (arn, id)
}

/// Resolves `IamInstanceProfile.Arn` / `.Name` against the account's IAM to the ARN stored on
/// an instance.
fn resolve_profile(w: &World, account: &str, p: &Params, prefix: &str) -> AwsResult<Option<String>> {
    let arn = p.get(&format!("{prefix}.Arn")).filter(|s| !s.is_empty());
    let name = p.get(&format!("{prefix}.Name")).filter(|s| !s.is_empty());
    let (given, param) = match (arn, name) {
        (None, None) => return Ok(None),
        (Some(a), _) => (a, "iamInstanceProfile.arn"),
        (None, Some(n)) => (n, "iamInstanceProfile.name"),
    };
    let profile_name = if given.starts_with("arn:") { given.rsplit('/').next().unwrap_or(given) } else { given };
    let profile = w.accounts.get(account).and_then(|a| a.iam.instance_profiles.get(profile_name));
    match profile {
        Some(pr) if arn.is_none_or(|a| a == pr.arn) => Ok(Some(pr.arn.clone())),
        _ => Err(bad(
            "InvalidParameterValue",
            format!(
                "Value ({given}) for parameter {param} is invalid. Invalid IAM Instance Profile {}",
                if arn.is_some() { "ARN" } else { "name" }
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Filters, pagination, tags

struct Filter {
    name: String,
    values: Vec<String>,
}

/// `Filter.N.Name` / `Filter.N.Value.M`, checked against the names the operation knows
/// (`tag:<key>`, `tag-key` and `tag-value` are always known).
fn filters(p: &Params, allowed: &[&str]) -> AwsResult<Vec<Filter>> {
    let mut out = Vec::new();
    for f in p.structs("Filter") {
        let name = f.get("Name").unwrap_or_default().to_string();
        let tag = name.strip_prefix("tag:").is_some_and(|k| !k.is_empty()) || name == "tag-key" || name == "tag-value";
        if !tag && !allowed.contains(&name.as_str()) {
            let shown = if name.is_empty() { "null" } else { name.as_str() };
            return Err(bad("InvalidParameterValue", format!("The filter '{shown}' is invalid")));
        }
        let values = f.list("Value");
        if values.is_empty() {
            return Err(bad("InvalidParameterValue", format!("The filter '{name}' requires at least one value")));
        }
        out.push(Filter { name, values });
    }
    Ok(out)
}

/// Whether a resource passes every filter; `field` gives the resource's values for a
/// non-tag filter name.
fn passes(filters: &[Filter], tags: &BTreeMap<String, String>, field: impl Fn(&str) -> Vec<String>) -> bool {
    filters.iter().all(|f| {
        let actual: Vec<String> = if let Some(k) = f.name.strip_prefix("tag:") {
            tags.get(k).cloned().into_iter().collect()
        } else if f.name == "tag-key" {
            tags.keys().cloned().collect()
        } else if f.name == "tag-value" {
            tags.values().cloned().collect()
        } else {
            field(&f.name)
        };
        actual.iter().any(|a| f.values.iter().any(|v| crate::wire::wildcard(v, a)))
    })
}

/// `MaxResults` (between 5 and `max`) and `NextToken`. `by_id` is whether the call named
/// resources by id, which EC2 does not let callers combine with `MaxResults`.
fn page<T>(items: Vec<T>, p: &Params, max: i64, by_id: bool) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match p.get("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => decode_token(t)
            .filter(|o| *o <= items.len())
            .ok_or_else(|| bad("InvalidPaginationToken", format!("Invalid pagination token: {t}")))?,
    };
    let limit = match p.i64("MaxResults")? {
        None => usize::MAX,
        Some(_) if by_id => {
            return Err(bad(
                "InvalidParameterCombination",
                "The parameter MaxResults cannot be used with resource ids; use filters instead",
            ));
        }
        Some(n) if (5..=max).contains(&n) => n as usize,
        Some(n) => {
            return Err(bad(
                "InvalidParameterValue",
                format!("Value ( {n} ) for parameter maxResults is invalid. Parameter must be between 5 and {max}."),
            ));
        }
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > limit {
        rest.truncate(limit);
        Some(encode_token(start + limit))
    } else {
        None
    };
    Ok((rest, next))
}

fn tag_set(x: &mut Xml, tags: &BTreeMap<String, String>) {
    if tags.is_empty() {
        return;
    }
    x.open("tagSet");
    for (k, v) in tags {
        x.open("item").leaf("key", k).leaf("value", v).close("item");
    }
    x.close("tagSet");
}

fn check_tag(key: &str, value: &str) -> AwsResult<()> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(bad("InvalidParameterValue", format!("Tag key '{key}' must be between 1 and 128 characters long")));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(bad("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use"));
    }
    if value.chars().count() > 256 {
        return Err(bad(
            "InvalidParameterValue",
            format!("The value of tag '{key}' must be at most 256 characters long"),
        ));
    }
    Ok(())
}

/// `Tag.N.Key` / `Tag.N.Value` pairs, validated.
fn tags_of(items: &[Params]) -> AwsResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in items {
        let key = t.get("Key").unwrap_or_default();
        let value = t.get("Value").unwrap_or_default();
        check_tag(key, value)?;
        out.insert(key.to_string(), value.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(bad("TagLimitExceeded", "The maximum number of tags for a resource has been reached."));
    }
    Ok(out)
}

/// `TagSpecification.N` by resource type, each type checked against those the call may tag.
fn tag_specs(p: &Params, allowed: &[&str]) -> AwsResult<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for spec in p.structs("TagSpecification") {
        let rt = spec.get("ResourceType").unwrap_or_default();
        if !allowed.contains(&rt) {
            return Err(bad(
                "InvalidParameterValue",
                format!("'{rt}' is not a valid taggable resource type for this operation."),
            ));
        }
        let tags = tags_of(&spec.structs("Tag"))?;
        out.entry(rt.to_string()).or_default().extend(tags);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Security group rules

/// A rule as a request describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    protocol: String,
    from: Option<i64>,
    to: Option<i64>,
    source: RuleSource,
    description: Option<String>,
}

impl Spec {
    fn matches(&self, r: &SgRule) -> bool {
        r.protocol == self.protocol && r.from_port == self.from && r.to_port == self.to && r.source == self.source
    }

    fn describe(&self, account: &str) -> String {
        let peer = match &self.source {
            RuleSource::Ipv4(c) | RuleSource::Ipv6(c) | RuleSource::PrefixList(c) => c.clone(),
            RuleSource::Group(g) => {
                let (owner, id) = group_ref(g, account);
                format!("{id}/{owner}")
            }
        };
        let proto = if self.protocol == "-1" { "ALL".to_string() } else { self.protocol.to_ascii_uppercase() };
        match (self.from, self.to) {
            (Some(f), Some(t)) => {
                format!("peer: {peer}, {proto}, from port: {f}, to port: {t}, ALLOW")
            }
            _ => format!("peer: {peer}, {proto}, ALLOW"),
        }
    }

    fn to_rule(&self, id: String) -> SgRule {
        SgRule {
            id,
            protocol: self.protocol.clone(),
            from_port: self.from,
            to_port: self.to,
            source: self.source.clone(),
            description: self.description.clone(),
        }
    }
}

/// Canonical protocol names, as EC2 stores and reports them.
fn protocol(raw: &str) -> AwsResult<String> {
    let lower = raw.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "-1" | "all" => "-1".into(),
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        n if n.parse::<u8>().is_ok() => n.to_string(),
        _ => {
            return Err(bad(
                "InvalidParameterValue",
                format!("Invalid value '{raw}' for IP protocol. Unknown protocol."),
            ));
        }
    })
}

fn ports(protocol: &str, from: Option<i64>, to: Option<i64>) -> AwsResult<(Option<i64>, Option<i64>)> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(bad(
                    "InvalidParameterValue",
                    "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
                ));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                return Err(bad(
                    "InvalidParameterValue",
                    format!(
                        "Invalid value for portRange. Ports must be between 0 and 65535 and from port ({f}) must not exceed to port ({t})."
                    ),
                ));
            }
            Ok((Some(f), Some(t)))
        }
        "icmp" | "icmpv6" => {
            let (f, t) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&f) || !(-1..=255).contains(&t) {
                return Err(bad("InvalidParameterValue", format!("Invalid value for ICMP type ({f}) or code ({t}).")));
            }
            Ok((Some(f), Some(t)))
        }
        _ => Ok((None, None)),
    }
}

fn cidr_v4_ok(c: &str) -> bool {
    c.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<Ipv4Addr>().is_ok()
            && !len.is_empty()
            && len.bytes().all(|d| d.is_ascii_digit())
            && len.parse::<u8>().is_ok_and(|n| n <= 32)
    })
}

fn cidr_v6_ok(c: &str) -> bool {
    c.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<Ipv6Addr>().is_ok()
            && !len.is_empty()
            && len.bytes().all(|d| d.is_ascii_digit())
            && len.parse::<u8>().is_ok_and(|n| n <= 128)
    })
}

fn description(p: &Params) -> AwsResult<Option<String>> {
    match p.get("Description") {
        None => Ok(None),
        Some(d) if d.chars().count() > 255 => {
            Err(bad("InvalidParameterValue", "Rule descriptions must be at most 255 characters long"))
        }
        Some(d) => Ok(Some(d.to_string())),
    }
}

/// The source group of a rule: by id (possibly in another account) or by name in `vpc_id`.
/// `lenient` (revocations) lets a group that cannot be found stand as written, so that it is
/// reported as an unknown permission rather than an error.
fn source_group(rs: &RegionState, account: &str, vpc_id: &str, g: &Params, lenient: bool) -> AwsResult<RuleSource> {
    let owner = g.get("UserId").filter(|s| !s.is_empty() && *s != account);
    if let Some(id) = g.get("GroupId").filter(|s| !s.is_empty()) {
        check_id(id, "sg-", "InvalidGroupId.Malformed")?;
        if let Some(owner) = owner {
            return Ok(RuleSource::Group(format!("{owner}/{id}")));
        }
        if !lenient && !rs.ec2.security_groups.contains_key(id) {
            return Err(group_not_found(id));
        }
        return Ok(RuleSource::Group(id.to_string()));
    }
    let Some(name) = g.get("GroupName").filter(|s| !s.is_empty()) else {
        return Err(bad("MissingParameter", "A source security group needs a GroupId or a GroupName"));
    };
    match rs.ec2.security_groups.values().find(|s| s.name == name && s.vpc_id == vpc_id) {
        Some(s) => Ok(RuleSource::Group(s.id.clone())),
        None if lenient => Ok(RuleSource::Group(name.to_string())),
        None => {
            Err(bad("InvalidGroup.NotFound", format!("The security group '{name}' does not exist in VPC '{vpc_id}'")))
        }
    }
}

/// The rules a request names: `IpPermissions.N` plus the legacy top-level parameters
/// (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`).
fn parse_specs(p: &Params, rs: &RegionState, account: &str, sg: &SecurityGroup, lenient: bool) -> AwsResult<Vec<Spec>> {
    let mut out = Vec::new();
    for perm in p.structs("IpPermissions") {
        let raw = perm.get("IpProtocol").filter(|s| !s.is_empty()).ok_or_else(|| {
            bad("MissingParameter", "The request must contain the parameter ipPermissions.ipProtocol")
        })?;
        let proto = protocol(raw)?;
        let (from, to) = ports(&proto, perm.i64("FromPort")?, perm.i64("ToPort")?)?;
        let mut sources: Vec<(RuleSource, Option<String>)> = Vec::new();
        for r in perm.structs("IpRanges") {
            let c = r.get("CidrIp").unwrap_or_default();
            if !cidr_v4_ok(c) {
                return Err(bad("InvalidParameterValue", format!("CIDR block {c} is malformed")));
            }
            sources.push((RuleSource::Ipv4(c.to_string()), description(&r)?));
        }
        for r in perm.structs("Ipv6Ranges") {
            let c = r.get("CidrIpv6").unwrap_or_default();
            if !cidr_v6_ok(c) {
                return Err(bad("InvalidParameterValue", format!("CIDR block {c} is malformed")));
            }
            sources.push((RuleSource::Ipv6(c.to_ascii_lowercase()), description(&r)?));
        }
        for r in perm.structs("PrefixListIds") {
            let id = r.get("PrefixListId").unwrap_or_default();
            check_id(id, "pl-", "InvalidPrefixListId.Malformed")?;
            sources.push((RuleSource::PrefixList(id.to_string()), description(&r)?));
        }
        for g in perm.structs("Groups") {
            sources.push((source_group(rs, account, &sg.vpc_id, &g, lenient)?, description(&g)?));
        }
        if sources.is_empty() {
            return Err(bad(
                "InvalidParameterValue",
                "Each IP permission needs a source: IpRanges, Ipv6Ranges, Groups or PrefixListIds",
            ));
        }
        for (source, description) in sources {
            out.push(Spec { protocol: proto.clone(), from, to, source, description });
        }
    }
    let legacy_cidr = p.get("CidrIp").filter(|s| !s.is_empty());
    let legacy_group = p.get("SourceSecurityGroupName").filter(|s| !s.is_empty());
    if legacy_cidr.is_some() || legacy_group.is_some() || p.get("IpProtocol").is_some() {
        let proto = protocol(p.get("IpProtocol").filter(|s| !s.is_empty()).unwrap_or("-1"))?;
        let (from, to) = ports(&proto, p.i64("FromPort")?, p.i64("ToPort")?)?;
        let source = match (legacy_cidr, legacy_group) {
            (Some(c), _) => {
                if !cidr_v4_ok(c) {
                    return Err(bad("InvalidParameterValue", format!("CIDR block {c} is malformed")));
                }
                RuleSource::Ipv4(c.to_string())
            }
            (None, Some(name)) => {
                let owner = p.get("SourceSecurityGroupOwnerId").unwrap_or_default();
                let g = Params::parse(
                    format!(
                        "GroupName={}&UserId={}",
                        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>(),
                        form_urlencoded::byte_serialize(owner.as_bytes()).collect::<String>()
                    )
                    .as_bytes(),
                    &[],
                    "InvalidParameterValue",
                    "MissingParameter",
                );
                source_group(rs, account, &sg.vpc_id, &g, lenient)?
            }
            (None, None) => {
                return Err(bad(
                    "MissingParameter",
                    "The request must contain the parameter cidrIp or sourceSecurityGroupName",
                ));
            }
        };
        out.push(Spec { protocol: proto, from, to, source, description: None });
    }
    if out.is_empty() {
        return Err(bad("MissingParameter", "The request must contain the parameter ipPermissions"));
    }
    Ok(out)
}

/// Rules as EC2 reports them in `ipPermissions`: one item per protocol and port range, with
/// every source of that range.
fn permissions(x: &mut Xml, tag: &str, rules: &[SgRule], account: &str) {
    x.open(tag);
    let mut keys: Vec<(&str, Option<i64>, Option<i64>)> = Vec::new();
    for r in rules {
        let k = (r.protocol.as_str(), r.from_port, r.to_port);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (proto, from, to) in keys {
        let same: Vec<&SgRule> =
            rules.iter().filter(|r| r.protocol == proto && r.from_port == from && r.to_port == to).collect();
        x.open("item");
        x.leaf("ipProtocol", proto);
        if let Some(f) = from {
            x.leaf("fromPort", &f.to_string());
        }
        if let Some(t) = to {
            x.leaf("toPort", &t.to_string());
        }
        x.open("groups");
        for r in &same {
            if let RuleSource::Group(g) = &r.source {
                let (owner, id) = group_ref(g, account);
                x.open("item").leaf("userId", &owner).leaf("groupId", &id);
                x.leaf_opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("groups");
        x.open("ipRanges");
        for r in &same {
            if let RuleSource::Ipv4(c) = &r.source {
                x.open("item").leaf("cidrIp", c);
                x.leaf_opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("ipRanges");
        x.open("ipv6Ranges");
        for r in &same {
            if let RuleSource::Ipv6(c) = &r.source {
                x.open("item").leaf("cidrIpv6", c);
                x.leaf_opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("ipv6Ranges");
        x.open("prefixListIds");
        for r in &same {
            if let RuleSource::PrefixList(id) = &r.source {
                x.open("item").leaf("prefixListId", id);
                x.leaf_opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("prefixListIds");
        x.close("item");
    }
    x.close(tag);
}

/// One `SecurityGroupRule` item.
fn rule_xml(cx: &Cx<'_>, x: &mut Xml, group_id: &str, r: &SgRule, egress: bool) {
    x.open("item");
    x.leaf("securityGroupRuleId", &r.id);
    x.leaf("groupId", group_id);
    x.leaf("groupOwnerId", cx.account);
    x.leaf("isEgress", b(egress));
    x.leaf("ipProtocol", &r.protocol);
    x.leaf("fromPort", &r.from_port.unwrap_or(-1).to_string());
    x.leaf("toPort", &r.to_port.unwrap_or(-1).to_string());
    match &r.source {
        RuleSource::Ipv4(c) => {
            x.leaf("cidrIpv4", c);
        }
        RuleSource::Ipv6(c) => {
            x.leaf("cidrIpv6", c);
        }
        RuleSource::PrefixList(id) => {
            x.leaf("prefixListId", id);
        }
        RuleSource::Group(g) => {
            let (owner, id) = group_ref(g, cx.account);
            x.open("referencedGroupInfo").leaf("groupId", &id).leaf("userId", &owner).close("referencedGroupInfo");
        }
    }
    x.leaf_opt("description", r.description.as_deref());
    x.leaf("securityGroupRuleArn", &cx.arn("security-group-rule", &r.id));
    x.close("item");
}

/// One `RevokedSecurityGroupRule` item.
fn revoked_xml(cx: &Cx<'_>, x: &mut Xml, group_id: &str, r: &SgRule, egress: bool) {
    x.open("item");
    x.leaf("securityGroupRuleId", &r.id);
    x.leaf("groupId", group_id);
    x.leaf("isEgress", b(egress));
    x.leaf("ipProtocol", &r.protocol);
    x.leaf("fromPort", &r.from_port.unwrap_or(-1).to_string());
    x.leaf("toPort", &r.to_port.unwrap_or(-1).to_string());
    match &r.source {
        RuleSource::Ipv4(c) => x.leaf("cidrIpv4", c),
        RuleSource::Ipv6(c) => x.leaf("cidrIpv6", c),
        RuleSource::PrefixList(id) => x.leaf("prefixListId", id),
        RuleSource::Group(g) => x.leaf("referencedGroupId", &group_ref(g, cx.account).1),
    };
    x.leaf_opt("description", r.description.as_deref());
    x.close("item");
}

fn group_xml(cx: &Cx<'_>, x: &mut Xml, sg: &SecurityGroup) {
    x.open("item");
    x.leaf("ownerId", cx.account);
    x.leaf("groupId", &sg.id);
    x.leaf("groupName", &sg.name);
    x.leaf("groupDescription", &sg.description);
    x.leaf("vpcId", &sg.vpc_id);
    permissions(x, "ipPermissions", &sg.ingress, cx.account);
    permissions(x, "ipPermissionsEgress", &sg.egress, cx.account);
    tag_set(x, &sg.tags);
    x.leaf("securityGroupArn", &cx.arn("security-group", &sg.id));
    x.close("item");
}

/// Values of a rule field across a group's rules, for the `ip-permission.*` filters.
fn rule_values(rules: &[SgRule], field: &str) -> Vec<String> {
    rules
        .iter()
        .filter_map(|r| match field {
            "cidr" => match &r.source {
                RuleSource::Ipv4(c) => Some(c.clone()),
                _ => None,
            },
            "ipv6-cidr" => match &r.source {
                RuleSource::Ipv6(c) => Some(c.clone()),
                _ => None,
            },
            "group-id" => match &r.source {
                RuleSource::Group(g) => Some(g.rsplit('/').next().unwrap_or(g).to_string()),
                _ => None,
            },
            "prefix-list-id" => match &r.source {
                RuleSource::PrefixList(id) => Some(id.clone()),
                _ => None,
            },
            "protocol" => Some(r.protocol.clone()),
            "from-port" => Some(r.from_port.unwrap_or(-1).to_string()),
            "to-port" => Some(r.to_port.unwrap_or(-1).to_string()),
            _ => None,
        })
        .collect()
}

fn describe_security_groups(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(
        p,
        &[
            "group-id",
            "group-name",
            "vpc-id",
            "description",
            "owner-id",
            "ip-permission.cidr",
            "ip-permission.ipv6-cidr",
            "ip-permission.group-id",
            "ip-permission.prefix-list-id",
            "ip-permission.protocol",
            "ip-permission.from-port",
            "ip-permission.to-port",
            "egress.ip-permission.cidr",
            "egress.ip-permission.ipv6-cidr",
            "egress.ip-permission.group-id",
            "egress.ip-permission.prefix-list-id",
            "egress.ip-permission.protocol",
            "egress.ip-permission.from-port",
            "egress.ip-permission.to-port",
        ],
    )?;
    let ids = p.list("GroupId");
    let names = p.list("GroupName");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    let mut wanted: Vec<&SecurityGroup> = Vec::new();
    for id in &ids {
        wanted.push(group(rs, id)?);
    }
    for name in &names {
        wanted.push(group_by_name(rs, name)?);
    }
    let candidates: Vec<&SecurityGroup> = if ids.is_empty() && names.is_empty() {
        rs.ec2.security_groups.values().collect()
    } else {
        rs.ec2.security_groups.values().filter(|g| wanted.iter().any(|w| w.id == g.id)).collect()
    };
    let matching: Vec<&SecurityGroup> = candidates
        .into_iter()
        .filter(|g| {
            passes(&fs, &g.tags, |name| match name {
                "group-id" => vec![g.id.clone()],
                "group-name" => vec![g.name.clone()],
                "vpc-id" => vec![g.vpc_id.clone()],
                "description" => vec![g.description.clone()],
                "owner-id" => vec![cx.account.to_string()],
                other => match (other.strip_prefix("egress.ip-permission."), other.strip_prefix("ip-permission.")) {
                    (Some(f), _) => rule_values(&g.egress, f),
                    (None, Some(f)) => rule_values(&g.ingress, f),
                    _ => Vec::new(),
                },
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty() || !names.is_empty())?;
    x.open("securityGroupInfo");
    for g in items {
        group_xml(cx, x, g);
    }
    x.close("securityGroupInfo");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn describe_security_group_rules(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(p, &["group-id", "security-group-rule-id"])?;
    let ids = p.list("SecurityGroupRuleId");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    let mut all: Vec<(&SecurityGroup, &SgRule, bool)> = Vec::new();
    for g in rs.ec2.security_groups.values() {
        all.extend(g.ingress.iter().map(|r| (g, r, false)));
        all.extend(g.egress.iter().map(|r| (g, r, true)));
    }
    for id in &ids {
        check_id(id, "sgr-", "InvalidSecurityGroupRuleId.Malformed")?;
        if !all.iter().any(|(_, r, _)| &r.id == id) {
            return Err(bad(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
    }
    let no_tags = BTreeMap::new();
    let matching: Vec<(&SecurityGroup, &SgRule, bool)> = all
        .into_iter()
        .filter(|(_, r, _)| ids.is_empty() || ids.contains(&r.id))
        .filter(|(g, r, _)| {
            passes(&fs, &no_tags, |name| match name {
                "group-id" => vec![g.id.clone()],
                "security-group-rule-id" => vec![r.id.clone()],
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty())?;
    x.open("securityGroupRuleSet");
    for (g, r, egress) in items {
        rule_xml(cx, x, &g.id, r, egress);
    }
    x.close("securityGroupRuleSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn create_security_group(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let name = p.req("GroupName")?;
    let desc = p.req("GroupDescription")?;
    if name.chars().count() > 255 || desc.chars().count() > 255 {
        return Err(bad("InvalidParameterValue", "Group names and descriptions must be at most 255 characters long"));
    }
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(bad("InvalidParameterValue", "Group names may not be in the format sg-*"));
    }
    let tags = tag_specs(p, &["security-group"])?.remove("security-group").unwrap_or_default();
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let vpc_id = {
        let rs = region_of(w, cx.account, cx.region);
        let vpc_id = match p.get("VpcId").filter(|s| !s.is_empty()) {
            Some(v) => {
                check_id(v, "vpc-", "InvalidVpcID.Malformed")?;
                rs.ec2.vpcs.get(v).ok_or_else(|| vpc_not_found(v))?.id.clone()
            }
            None => default_vpc(rs).ok_or_else(|| bad("VPCIdNotSpecified", "No default VPC for this user"))?.id.clone(),
        };
        if rs.ec2.security_groups.values().any(|g| g.vpc_id == vpc_id && g.name == name) {
            return Err(bad(
                "InvalidGroup.Duplicate",
                format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
            ));
        }
        vpc_id
    };
    let id = format!("sg-{}", w.ids.hex(17));
    let rule_id = format!("sgr-{}", w.ids.hex(17));
    let sg = SecurityGroup {
        id: id.clone(),
        name: name.to_string(),
        description: desc.to_string(),
        vpc_id,
        ingress: Vec::new(),
        egress: vec![SgRule {
            id: rule_id,
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            source: RuleSource::Ipv4("0.0.0.0/0".into()),
            description: None,
        }],
        tags: tags.clone(),
    };
    w.region_mut(cx.account, cx.region).ec2.security_groups.insert(id.clone(), sg);
    w.mutated("ec2:CreateSecurityGroup", &id, cx.account, cx.region);
    x.leaf("return", "true");
    x.leaf("groupId", &id);
    tag_set(x, &tags);
    x.leaf("securityGroupArn", &cx.arn("security-group", &id));
    Ok(())
}

fn delete_security_group(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let id = {
        let rs = region_of(w, cx.account, cx.region);
        let id = target_group(rs, cx.p, true)?;
        let sg = group(rs, &id)?;
        if sg.is_default() {
            return Err(bad(
                "CannotDelete",
                format!("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user"),
            ));
        }
        let in_use = rs.ec2.instances.values().any(|i| i.state != "terminated" && i.security_groups.contains(&id));
        let referenced = rs.ec2.security_groups.values().any(|g| {
            g.id != id && g.ingress.iter().chain(g.egress.iter()).any(|r| r.source == RuleSource::Group(id.clone()))
        });
        if in_use || referenced {
            return Err(bad("DependencyViolation", format!("resource {id} has a dependent object")));
        }
        id
    };
    w.region_mut(cx.account, cx.region).ec2.security_groups.remove(&id);
    w.mutated("ec2:DeleteSecurityGroup", &id, cx.account, cx.region);
    x.leaf("return", "true");
    x.leaf("groupId", &id);
    Ok(())
}

fn authorize(cx: &Cx<'_>, x: &mut Xml, egress: bool) -> AwsResult<()> {
    let p = cx.p;
    if !p.structs("TagSpecification").is_empty() {
        return Err(bad("InvalidParameterValue", "Tags on security group rules are not supported"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let (gid, specs) = {
        let rs = region_of(w, cx.account, cx.region);
        let gid = target_group(rs, p, !egress)?;
        let sg = group(rs, &gid)?;
        let specs = parse_specs(p, rs, cx.account, sg, false)?;
        let existing = if egress { &sg.egress } else { &sg.ingress };
        for (i, s) in specs.iter().enumerate() {
            if existing.iter().any(|r| s.matches(r)) || specs[..i].iter().any(|o| o.matches(&s.to_rule(String::new())))
            {
                return Err(bad(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"{}\" already exists", s.describe(cx.account)),
                ));
            }
        }
        if existing.len() + specs.len() > MAX_RULES {
            return Err(bad(
                "RulesPerSecurityGroupLimitExceeded",
                "The maximum number of rules per security group has been reached.",
            ));
        }
        (gid, specs)
    };
    let new: Vec<SgRule> = specs.iter().map(|s| s.to_rule(format!("sgr-{}", w.ids.hex(17)))).collect();
    let Some(sg) = w.region_mut(cx.account, cx.region).ec2.security_groups.get_mut(&gid) else {
        return Err(group_not_found(&gid));
    };
    if egress {
        sg.egress.extend(new.iter().cloned());
    } else {
        sg.ingress.extend(new.iter().cloned());
    }
    let op = if egress { "ec2:AuthorizeSecurityGroupEgress" } else { "ec2:AuthorizeSecurityGroupIngress" };
    w.mutated(op, &gid, cx.account, cx.region);
    x.leaf("return", "true");
    x.open("securityGroupRuleSet");
    for r in &new {
        rule_xml(cx, x, &gid, r, egress);
    }
    x.close("securityGroupRuleSet");
    Ok(())
}

/// Revokes rules by id or by description. In a default VPC, permissions that match no rule are
/// reported in `unknownIpPermissionSet` and the others are still revoked; in any other VPC they
/// fail the call with `InvalidPermission.NotFound` and nothing is revoked.
fn revoke(cx: &Cx<'_>, x: &mut Xml, egress: bool) -> AwsResult<()> {
    let p = cx.p;
    let rule_ids = p.list("SecurityGroupRuleId");
    let by_description = !p.structs("IpPermissions").is_empty()
        || p.get("CidrIp").is_some()
        || p.get("IpProtocol").is_some()
        || p.get("SourceSecurityGroupName").is_some();
    if !rule_ids.is_empty() && by_description {
        return Err(bad(
            "InvalidParameterCombination",
            "The parameter SecurityGroupRuleId cannot be used with IpPermissions",
        ));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let (gid, revoke_ids, unknown) = {
        let rs = region_of(w, cx.account, cx.region);
        let gid = target_group(rs, p, !egress)?;
        let sg = group(rs, &gid)?;
        let existing = if egress { &sg.egress } else { &sg.ingress };
        let mut revoke_ids: Vec<String> = Vec::new();
        let mut unknown: Vec<Spec> = Vec::new();
        if !rule_ids.is_empty() {
            for id in &rule_ids {
                check_id(id, "sgr-", "InvalidSecurityGroupRuleId.Malformed")?;
                if !existing.iter().any(|r| &r.id == id) {
                    return Err(bad(
                        "InvalidSecurityGroupRuleId.NotFound",
                        format!("The security group rule ID '{id}' does not exist in security group '{gid}'"),
                    ));
                }
                revoke_ids.push(id.clone());
            }
        } else {
            for s in parse_specs(p, rs, cx.account, sg, true)? {
                match existing.iter().find(|r| s.matches(r)) {
                    Some(r) => revoke_ids.push(r.id.clone()),
                    None => unknown.push(s),
                }
            }
            let default_vpc = rs.ec2.vpcs.get(&sg.vpc_id).is_some_and(|v| v.is_default);
            if !unknown.is_empty() && !default_vpc {
                return Err(bad(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                ));
            }
        }
        (gid, revoke_ids, unknown)
    };
    let Some(sg) = w.region_mut(cx.account, cx.region).ec2.security_groups.get_mut(&gid) else {
        return Err(group_not_found(&gid));
    };
    let rules = if egress { &mut sg.egress } else { &mut sg.ingress };
    let mut revoked = Vec::new();
    rules.retain(|r| {
        if revoke_ids.contains(&r.id) {
            revoked.push(r.clone());
            false
        } else {
            true
        }
    });
    let op = if egress { "ec2:RevokeSecurityGroupEgress" } else { "ec2:RevokeSecurityGroupIngress" };
    w.mutated(op, &gid, cx.account, cx.region);
    x.leaf("return", "true");
    if !unknown.is_empty() {
        let as_rules: Vec<SgRule> = unknown.iter().map(|s| s.to_rule(String::new())).collect();
        permissions(x, "unknownIpPermissionSet", &as_rules, cx.account);
    }
    x.open("revokedSecurityGroupRuleSet");
    for r in &revoked {
        revoked_xml(cx, x, &gid, r, egress);
    }
    x.close("revokedSecurityGroupRuleSet");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instances

fn state_code(state: &str) -> i64 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => 16,
    }
}

fn reservation_id(instance_id: &str) -> String {
    format!("r-{}", instance_id.trim_start_matches("i-"))
}

fn state_xml(x: &mut Xml, tag: &str, state: &str) {
    x.open(tag).leaf("code", &state_code(state).to_string()).leaf("name", state).close(tag);
}

fn instance_xml(cx: &Cx<'_>, x: &mut Xml, w: &World, rs: &RegionState, inst: &Instance, state: &str) {
    x.open("item");
    x.leaf("instanceId", &inst.id);
    x.leaf("imageId", &inst.image_id);
    state_xml(x, "instanceState", state);
    let dns = format!("ip-{}.ec2.internal", inst.private_ip.replace('.', "-"));
    x.leaf("privateDnsName", if state == "terminated" { "" } else { &dns });
    x.leaf("dnsName", "");
    x.leaf("amiLaunchIndex", "0");
    x.leaf("instanceType", &inst.instance_type);
    x.leaf("launchTime", &iso8601(inst.launched_ms));
    x.open("placement")
        .leaf("availabilityZone", &format!("{}a", cx.region))
        .leaf("groupName", "")
        .leaf("tenancy", "default")
        .close("placement");
    x.open("monitoring").leaf("state", "disabled").close("monitoring");
    if state != "terminated" {
        x.leaf("subnetId", &inst.subnet_id);
        x.leaf("vpcId", &inst.vpc_id);
        x.leaf("privateIpAddress", &inst.private_ip);
    }
    x.leaf("sourceDestCheck", "true");
    x.open("groupSet");
    for gid in &inst.security_groups {
        x.open("item").leaf("groupId", gid);
        x.leaf_opt("groupName", rs.ec2.security_groups.get(gid).map(|g| g.name.as_str()));
        x.close("item");
    }
    x.close("groupSet");
    if state == "terminated" {
        x.open("stateReason")
            .leaf("code", "Client.UserInitiatedShutdown")
            .leaf("message", "Client.UserInitiatedShutdown: User initiated shutdown")
            .close("stateReason");
    }
    x.leaf("architecture", "x86_64");
    x.leaf("rootDeviceType", "ebs");
    x.leaf("rootDeviceName", "/dev/xvda");
    block_devices(x, rs, inst);
    x.leaf("virtualizationType", "hvm");
    tag_set(x, &inst.tags);
    x.leaf("hypervisor", "xen");
    if let Some(stored) = &inst.iam_instance_profile {
        let (arn, id) = profile_ref(w, cx.account, stored);
        x.open("iamInstanceProfile").leaf("arn", &arn).leaf("id", &id).close("iamInstanceProfile");
    }
    x.leaf("ebsOptimized", "false");
    x.leaf("enaSupport", "true");
    metadata_xml(x, "metadataOptions", &inst.metadata_http_tokens, "applied");
    x.leaf("platformDetails", "Linux/UNIX");
    x.close("item");
}

fn block_devices(x: &mut Xml, rs: &RegionState, inst: &Instance) {
    x.open("blockDeviceMapping");
    for vid in &inst.volumes {
        let Some(v) = rs.ec2.volumes.get(vid) else {
            continue;
        };
        x.open("item");
        x.leaf("deviceName", v.device.as_deref().unwrap_or("/dev/xvda"));
        x.open("ebs")
            .leaf("volumeId", vid)
            .leaf("status", "attached")
            .leaf("attachTime", &iso8601(v.created_ms.max(inst.launched_ms)))
            .leaf("deleteOnTermination", "true")
            .close("ebs");
        x.close("item");
    }
    x.close("blockDeviceMapping");
}

fn metadata_xml(x: &mut Xml, tag: &str, tokens: &str, state: &str) {
    x.open(tag)
        .leaf("state", state)
        .leaf("httpTokens", tokens)
        .leaf("httpPutResponseHopLimit", "1")
        .leaf("httpEndpoint", "enabled")
        .leaf("httpProtocolIpv6", "disabled")
        .leaf("instanceMetadataTags", "disabled")
        .close(tag);
}

/// Instances named by `InstanceId.N`, all of which must exist.
fn named_instances(rs: &RegionState, ids: &[String]) -> AwsResult<()> {
    for id in ids {
        check_id(id, "i-", "InvalidInstanceID.Malformed")?;
    }
    let missing: Vec<String> = ids.iter().filter(|id| !rs.ec2.instances.contains_key(*id)).cloned().collect();
    if missing.is_empty() { Ok(()) } else { Err(instances_not_found(&missing)) }
}

fn describe_instances(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(
        p,
        &[
            "instance-id",
            "instance-state-name",
            "instance-state-code",
            "instance-type",
            "image-id",
            "vpc-id",
            "subnet-id",
            "private-ip-address",
            "instance.group-id",
            "instance.group-name",
            "iam-instance-profile.arn",
            "reservation-id",
            "owner-id",
            "metadata-options.http-tokens",
            "block-device-mapping.volume-id",
        ],
    )?;
    let ids = p.list("InstanceId");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    named_instances(rs, &ids)?;
    let matching: Vec<&Instance> = rs
        .ec2
        .instances
        .values()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .filter(|i| {
            passes(&fs, &i.tags, |name| match name {
                "instance-id" => vec![i.id.clone()],
                "instance-state-name" => vec![i.state.clone()],
                "instance-state-code" => vec![state_code(&i.state).to_string()],
                "instance-type" => vec![i.instance_type.clone()],
                "image-id" => vec![i.image_id.clone()],
                "vpc-id" => vec![i.vpc_id.clone()],
                "subnet-id" => vec![i.subnet_id.clone()],
                "private-ip-address" => vec![i.private_ip.clone()],
                "instance.group-id" => i.security_groups.clone(),
                "instance.group-name" => i
                    .security_groups
                    .iter()
                    .filter_map(|g| rs.ec2.security_groups.get(g).map(|s| s.name.clone()))
                    .collect(),
                "iam-instance-profile.arn" => {
                    i.iam_instance_profile.iter().map(|s| profile_ref(&w, cx.account, s).0).collect()
                }
                "reservation-id" => vec![reservation_id(&i.id)],
                "owner-id" => vec![cx.account.to_string()],
                "metadata-options.http-tokens" => vec![i.metadata_http_tokens.clone()],
                "block-device-mapping.volume-id" => i.volumes.clone(),
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty())?;
    x.open("reservationSet");
    for inst in items {
        x.open("item");
        x.leaf("reservationId", &reservation_id(&inst.id));
        x.leaf("ownerId", cx.account);
        x.open("groupSet").close("groupSet");
        x.open("instancesSet");
        instance_xml(cx, x, &w, rs, inst, &inst.state);
        x.close("instancesSet");
        x.close("item");
    }
    x.close("reservationSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn run_instances(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let image = p.req("ImageId")?;
    check_id(image, "ami-", "InvalidAMIID.Malformed")?;
    let instance_type = p.get("InstanceType").filter(|s| !s.is_empty()).unwrap_or("m1.small").to_string();
    let min = p.i64("MinCount")?.unwrap_or(1);
    let max = p.i64("MaxCount")?.unwrap_or(min);
    if min < 1 || max < min {
        return Err(bad(
            "InvalidParameterValue",
            format!("MinCount ({min}) must be at least 1 and at most MaxCount ({max})"),
        ));
    }
    if min > MAX_LAUNCH {
        return Err(bad(
            "InstanceLimitExceeded",
            format!(
                "You have requested more instances ({min}) than your current instance limit of {MAX_LAUNCH} allows for the specified instance type."
            ),
        ));
    }
    let count = max.min(MAX_LAUNCH);
    let tokens = match p.get("MetadataOptions.HttpTokens").filter(|s| !s.is_empty()) {
        None => "optional".to_string(),
        Some(t @ ("optional" | "required")) => t.to_string(),
        Some(t) => {
            return Err(bad("InvalidParameterValue", format!("Value ({t}) for parameter httpTokens is invalid.")));
        }
    };
    let disable_termination = p.bool("DisableApiTermination")?.unwrap_or(false);
    let mut specs = tag_specs(p, &["instance", "volume", "network-interface"])?;
    let instance_tags = specs.remove("instance").unwrap_or_default();
    let volume_tags = specs.remove("volume").unwrap_or_default();
    let mappings = p.structs("BlockDeviceMapping");
    let root = mappings.first();
    let size = match root.map(|m| m.i64("Ebs.VolumeSize")).transpose()?.flatten() {
        None => 8,
        Some(s) if (1..=16384).contains(&s) => s,
        Some(s) => {
            return Err(bad("InvalidParameterValue", format!("Volume of {s}GiB is outside the allowed range 1-16384")));
        }
    };
    let asked_encrypted = root.map(|m| m.bool("Ebs.Encrypted")).transpose()?.flatten().unwrap_or(false);
    let device = root.and_then(|m| m.get("DeviceName")).filter(|s| !s.is_empty()).unwrap_or("/dev/xvda").to_string();

    let mut guard = cx.call.write();
    let w = &mut *guard;
    let profile = resolve_profile(w, cx.account, p, "IamInstanceProfile")?;
    let (vpc_id, vpc_cidr, subnet_hint, groups, encrypted) = {
        let rs = region_of(w, cx.account, cx.region);
        let subnet_given = p.get("SubnetId").filter(|s| !s.is_empty());
        if let Some(s) = subnet_given {
            check_id(s, "subnet-", "InvalidSubnetID.Malformed")?;
        }
        let known_subnet_vpc = subnet_given
            .and_then(|s| rs.ec2.instances.values().find(|i| i.subnet_id == s))
            .and_then(|i| rs.ec2.vpcs.get(&i.vpc_id));
        let vpc = match known_subnet_vpc.or_else(|| default_vpc(rs)) {
            Some(v) => v,
            None => return Err(bad("VPCIdNotSpecified", "No default VPC for this user")),
        };
        let mut groups = Vec::new();
        for gid in p.list("SecurityGroupId") {
            let g = group(rs, &gid)?;
            if g.vpc_id != vpc.id {
                return Err(bad(
                    "InvalidGroup.NotFound",
                    format!("The security group '{gid}' does not exist in VPC '{}'", vpc.id),
                ));
            }
            groups.push(g.id.clone());
        }
        for name in p.list("SecurityGroup") {
            let g =
                rs.ec2.security_groups.values().find(|g| g.name == name && g.vpc_id == vpc.id).ok_or_else(|| {
                    bad(
                        "InvalidGroup.NotFound",
                        format!("The security group '{name}' does not exist in VPC '{}'", vpc.id),
                    )
                })?;
            groups.push(g.id.clone());
        }
        if groups.is_empty()
            && let Some(d) = rs.ec2.security_groups.values().find(|g| g.vpc_id == vpc.id && g.is_default())
        {
            groups.push(d.id.clone());
        }
        groups.dedup();
        let subnet = subnet_given
            .map(str::to_string)
            .or_else(|| rs.ec2.instances.values().find(|i| i.vpc_id == vpc.id).map(|i| i.subnet_id.clone()));
        (vpc.id.clone(), vpc.cidr.clone(), subnet, groups, rs.ec2.ebs_encryption_by_default || asked_encrypted)
    };
    let subnet = match subnet_hint {
        Some(s) => s,
        None => format!("subnet-{}", w.ids.hex(17)),
    };
    let net: Vec<&str> = vpc_cidr.split('/').next().unwrap_or("10.0.0.0").split('.').collect();
    let now = w.now();
    let mut launched = Vec::new();
    for _ in 0..count {
        let id = format!("i-{}", w.ids.hex(17));
        let vol_id = format!("vol-{}", w.ids.hex(17));
        let r = w.ids.next_u64();
        let private_ip = format!(
            "{}.{}.{}.{}",
            net.first().copied().unwrap_or("10"),
            net.get(1).copied().unwrap_or("0"),
            (r >> 8) % 256,
            4 + (r % 250)
        );
        let assoc = profile.as_ref().map(|_| format!("iip-assoc-{}", w.ids.hex(17)));
        let inst = Instance {
            id: id.clone(),
            instance_type: instance_type.clone(),
            image_id: image.to_string(),
            vpc_id: vpc_id.clone(),
            subnet_id: subnet.clone(),
            private_ip,
            state: "running".into(),
            security_groups: groups.clone(),
            volumes: vec![vol_id.clone()],
            iam_instance_profile: profile.clone(),
            profile_association_id: assoc,
            disable_api_termination: disable_termination,
            launched_ms: now,
            tags: instance_tags.clone(),
            metadata_http_tokens: tokens.clone(),
        };
        let vol = Volume {
            id: vol_id.clone(),
            size_gib: size,
            encrypted,
            attached_to: Some(id.clone()),
            device: Some(device.clone()),
            created_ms: now,
            tags: volume_tags.clone(),
        };
        let ec2 = &mut w.region_mut(cx.account, cx.region).ec2;
        ec2.volumes.insert(vol_id, vol);
        ec2.instances.insert(id.clone(), inst);
        launched.push(id);
    }
    for id in &launched {
        w.mutated("ec2:RunInstances", id, cx.account, cx.region);
    }
    let rs = region_of(w, cx.account, cx.region);
    x.leaf("reservationId", &launched.first().map(|i| reservation_id(i)).unwrap_or_default());
    x.leaf("ownerId", cx.account);
    x.open("groupSet").close("groupSet");
    x.open("instancesSet");
    for id in &launched {
        if let Some(inst) = rs.ec2.instances.get(id) {
            instance_xml(cx, x, w, rs, inst, "pending");
        }
    }
    x.close("instancesSet");
    Ok(())
}

fn terminate_instances(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let ids = cx.p.list("InstanceId");
    if ids.is_empty() {
        return Err(bad("MissingParameter", "The request must contain the parameter InstanceId"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    {
        let rs = region_of(w, cx.account, cx.region);
        named_instances(rs, &ids)?;
        for id in &ids {
            if rs.ec2.instances.get(id).is_some_and(|i| i.disable_api_termination && i.state != "terminated") {
                return Err(bad(
                    "OperationNotPermitted",
                    format!(
                        "The instance '{id}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again."
                    ),
                ));
            }
        }
    }
    let mut changes = Vec::new();
    for id in &ids {
        let ec2 = &mut w.region_mut(cx.account, cx.region).ec2;
        let Some(inst) = ec2.instances.get_mut(id) else {
            continue;
        };
        let previous = inst.state.clone();
        let current = if previous == "terminated" { "terminated" } else { "shutting-down" };
        inst.state = "terminated".into();
        inst.iam_instance_profile = None;
        inst.profile_association_id = None;
        let volumes = std::mem::take(&mut inst.volumes);
        for v in volumes {
            ec2.volumes.remove(&v);
        }
        changes.push((id.clone(), current, previous));
    }
    for (id, _, _) in &changes {
        w.mutated("ec2:TerminateInstances", id, cx.account, cx.region);
    }
    x.open("instancesSet");
    for (id, current, previous) in &changes {
        x.open("item").leaf("instanceId", id);
        state_xml(x, "currentState", current);
        state_xml(x, "previousState", previous);
        x.close("item");
    }
    x.close("instancesSet");
    Ok(())
}

fn modify_instance_attribute(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let id = p.req("InstanceId")?;
    let group_ids = p.list("GroupId");
    let mut disable_termination = p.bool("DisableApiTermination.Value")?;
    let mut instance_type = p.get("InstanceType.Value").filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(attr) = p.get("Attribute").filter(|s| !s.is_empty()) {
        let value = p.req("Value")?;
        match attr {
            "disableApiTermination" => {
                disable_termination = Some(match value {
                    "true" => true,
                    "false" => false,
                    v => {
                        return Err(bad(
                            "InvalidParameterValue",
                            format!("Value ({v}) for parameter value is invalid. Expected true or false."),
                        ));
                    }
                })
            }
            "instanceType" => instance_type = Some(value.to_string()),
            other => {
                return Err(bad(
                    "InvalidParameterValue",
                    format!("Value ({other}) for parameter attribute is invalid. This attribute cannot be modified."),
                ));
            }
        }
    }
    if group_ids.is_empty() && disable_termination.is_none() && instance_type.is_none() {
        return Err(bad("MissingParameter", "The request must contain an attribute to modify"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    {
        let rs = region_of(w, cx.account, cx.region);
        let inst = instance(rs, id)?;
        if inst.state == "terminated" {
            return Err(bad(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a state from which it can be modified."),
            ));
        }
        if instance_type.is_some() && inst.state != "stopped" {
            return Err(bad("IncorrectInstanceState", format!("The instance '{id}' is not in the 'stopped' state.")));
        }
        for gid in &group_ids {
            let g = group(rs, gid)?;
            if g.vpc_id != inst.vpc_id {
                return Err(bad(
                    "InvalidGroup.NotFound",
                    format!("The security group '{gid}' does not exist in VPC '{}'", inst.vpc_id),
                ));
            }
        }
    }
    let Some(inst) = w.region_mut(cx.account, cx.region).ec2.instances.get_mut(id) else {
        return Err(instances_not_found(&[id.to_string()]));
    };
    if !group_ids.is_empty() {
        let mut groups = group_ids.clone();
        groups.dedup();
        inst.security_groups = groups;
    }
    if let Some(d) = disable_termination {
        inst.disable_api_termination = d;
    }
    if let Some(t) = instance_type {
        inst.instance_type = t;
    }
    w.mutated("ec2:ModifyInstanceAttribute", id, cx.account, cx.region);
    x.leaf("return", "true");
    Ok(())
}

fn describe_instance_attribute(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let id = p.req("InstanceId")?;
    let attr = p.req("Attribute")?;
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    let inst = instance(rs, id)?;
    let value = |x: &mut Xml, tag: &str, v: &str| {
        x.open(tag).leaf("value", v).close(tag);
    };
    x.leaf("instanceId", id);
    match attr {
        "disableApiTermination" => value(x, "disableApiTermination", b(inst.disable_api_termination)),
        "disableApiStop" => value(x, "disableApiStop", "false"),
        "instanceType" => value(x, "instanceType", &inst.instance_type),
        "rootDeviceName" => value(x, "rootDeviceName", "/dev/xvda"),
        "sourceDestCheck" => value(x, "sourceDestCheck", "true"),
        "ebsOptimized" => value(x, "ebsOptimized", "false"),
        "enaSupport" => value(x, "enaSupport", "true"),
        "instanceInitiatedShutdownBehavior" => value(x, "instanceInitiatedShutdownBehavior", "stop"),
        "groupSet" => {
            x.open("groupSet");
            for gid in &inst.security_groups {
                x.open("item").leaf("groupId", gid);
                x.leaf_opt("groupName", rs.ec2.security_groups.get(gid).map(|g| g.name.as_str()));
                x.close("item");
            }
            x.close("groupSet");
        }
        "blockDeviceMapping" => block_devices(x, rs, inst),
        "userData" | "kernel" | "ramdisk" | "productCodes" | "sriovNetSupport" => {}
        other => {
            return Err(bad(
                "InvalidParameterValue",
                format!("Value ({other}) for parameter attribute is invalid. Unknown attribute."),
            ));
        }
    }
    Ok(())
}

fn modify_instance_metadata_options(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let id = p.req("InstanceId")?;
    let tokens = match p.get("HttpTokens").filter(|s| !s.is_empty()) {
        None => None,
        Some(t @ ("optional" | "required")) => Some(t.to_string()),
        Some(t) => {
            return Err(bad("InvalidParameterValue", format!("Value ({t}) for parameter httpTokens is invalid.")));
        }
    };
    if let Some(e) = p.get("HttpEndpoint").filter(|e| *e != "enabled") {
        return Err(bad(
            "InvalidParameterValue",
            format!("Value ({e}) for parameter httpEndpoint is not supported; the endpoint stays enabled."),
        ));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    {
        let rs = region_of(w, cx.account, cx.region);
        let inst = instance(rs, id)?;
        if inst.state == "terminated" {
            return Err(bad(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a state from which it can be modified."),
            ));
        }
    }
    let Some(inst) = w.region_mut(cx.account, cx.region).ec2.instances.get_mut(id) else {
        return Err(instances_not_found(&[id.to_string()]));
    };
    if let Some(t) = tokens {
        inst.metadata_http_tokens = t;
    }
    let current = inst.metadata_http_tokens.clone();
    w.mutated("ec2:ModifyInstanceMetadataOptions", id, cx.account, cx.region);
    x.leaf("instanceId", id);
    metadata_xml(x, "instanceMetadataOptions", &current, "pending");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instance profile associations

/// The `iamInstanceProfileAssociation` of Associate/DisassociateIamInstanceProfile.
fn association_xml(cx: &Cx<'_>, x: &mut Xml, w: &World, assoc: &str, instance_id: &str, profile: &str, state: &str) {
    let tag = "iamInstanceProfileAssociation";
    let (arn, id) = profile_ref(w, cx.account, profile);
    x.open(tag);
    x.leaf("associationId", assoc);
    x.leaf("instanceId", instance_id);
    x.open("iamInstanceProfile").leaf("arn", &arn).leaf("id", &id).close("iamInstanceProfile");
    x.leaf("state", state);
    x.close(tag);
}

fn describe_profile_associations(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(p, &["instance-id", "state"])?;
    let ids = p.list("AssociationId");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    let all: Vec<(&str, &Instance, &str)> = rs
        .ec2
        .instances
        .values()
        .filter_map(|i| Some((i.profile_association_id.as_deref()?, i, i.iam_instance_profile.as_deref()?)))
        .collect();
    for id in &ids {
        if !all.iter().any(|(a, _, _)| a == id) {
            return Err(bad("InvalidAssociationID.NotFound", format!("An association with ID {id} does not exist.")));
        }
    }
    let no_tags = BTreeMap::new();
    let matching: Vec<(&str, &Instance, &str)> = all
        .into_iter()
        .filter(|(a, _, _)| ids.is_empty() || ids.iter().any(|i| i == a))
        .filter(|(_, i, _)| {
            passes(&fs, &no_tags, |name| match name {
                "instance-id" => vec![i.id.clone()],
                "state" => vec!["associated".to_string()],
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty())?;
    x.open("iamInstanceProfileAssociationSet");
    for (assoc, inst, profile) in items {
        let (arn, id) = profile_ref(&w, cx.account, profile);
        x.open("item");
        x.leaf("associationId", assoc);
        x.leaf("instanceId", &inst.id);
        x.open("iamInstanceProfile").leaf("arn", &arn).leaf("id", &id).close("iamInstanceProfile");
        x.leaf("state", "associated");
        x.leaf("timestamp", &iso8601(inst.launched_ms));
        x.close("item");
    }
    x.close("iamInstanceProfileAssociationSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn associate_profile(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let id = p.req("InstanceId")?;
    let mut guard = cx.call.write();
    let w = &mut *guard;
    {
        let rs = region_of(w, cx.account, cx.region);
        let inst = instance(rs, id)?;
        if inst.state == "terminated" {
            return Err(bad(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a valid state for this operation."),
            ));
        }
        if inst.profile_association_id.is_some() {
            return Err(bad("IncorrectState", format!("There is an existing association for instance {id}")));
        }
    }
    let Some(profile) = resolve_profile(w, cx.account, p, "IamInstanceProfile")? else {
        return Err(bad("MissingParameter", "The request must contain the parameter IamInstanceProfile"));
    };
    let assoc = format!("iip-assoc-{}", w.ids.hex(17));
    let Some(inst) = w.region_mut(cx.account, cx.region).ec2.instances.get_mut(id) else {
        return Err(instances_not_found(&[id.to_string()]));
    };
    inst.iam_instance_profile = Some(profile.clone());
    inst.profile_association_id = Some(assoc.clone());
    w.mutated("ec2:AssociateIamInstanceProfile", id, cx.account, cx.region);
    association_xml(cx, x, w, &assoc, id, &profile, "associating");
    Ok(())
}

fn disassociate_profile(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let assoc = cx.p.req("AssociationId")?.to_string();
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let found = w
        .region_mut(cx.account, cx.region)
        .ec2
        .instances
        .values_mut()
        .find(|i| i.profile_association_id.as_deref() == Some(assoc.as_str()));
    let Some(inst) = found else {
        return Err(bad("InvalidAssociationID.NotFound", format!("An association with ID {assoc} does not exist.")));
    };
    let instance_id = inst.id.clone();
    let profile = inst.iam_instance_profile.take().unwrap_or_default();
    inst.profile_association_id = None;
    w.mutated("ec2:DisassociateIamInstanceProfile", &instance_id, cx.account, cx.region);
    association_xml(cx, x, w, &assoc, &instance_id, &profile, "disassociating");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Volumes, snapshots, default encryption

fn volume_xml(cx: &Cx<'_>, x: &mut Xml, v: &Volume) {
    x.open("item");
    x.leaf("volumeId", &v.id);
    x.leaf("size", &v.size_gib.to_string());
    x.leaf("snapshotId", "");
    x.leaf("availabilityZone", &format!("{}a", cx.region));
    x.leaf("status", if v.attached_to.is_some() { "in-use" } else { "available" });
    x.leaf("createTime", &iso8601(v.created_ms));
    x.open("attachmentSet");
    if let Some(i) = &v.attached_to {
        x.open("item")
            .leaf("volumeId", &v.id)
            .leaf("instanceId", i)
            .leaf("device", v.device.as_deref().unwrap_or("/dev/xvda"))
            .leaf("status", "attached")
            .leaf("attachTime", &iso8601(v.created_ms))
            .leaf("deleteOnTermination", "true")
            .close("item");
    }
    x.close("attachmentSet");
    x.leaf("volumeType", "gp3");
    x.leaf("iops", "3000");
    x.leaf("throughput", "125");
    x.leaf("encrypted", b(v.encrypted));
    tag_set(x, &v.tags);
    x.leaf("multiAttachEnabled", "false");
    x.close("item");
}

fn describe_volumes(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(
        p,
        &[
            "volume-id",
            "status",
            "encrypted",
            "size",
            "volume-type",
            "availability-zone",
            "attachment.instance-id",
            "attachment.device",
            "attachment.status",
        ],
    )?;
    let ids = p.list("VolumeId");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    for id in &ids {
        check_id(id, "vol-", "InvalidVolumeID.Malformed")?;
        if !rs.ec2.volumes.contains_key(id) {
            return Err(volume_not_found(id));
        }
    }
    let matching: Vec<&Volume> = rs
        .ec2
        .volumes
        .values()
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .filter(|v| {
            passes(&fs, &v.tags, |name| match name {
                "volume-id" => vec![v.id.clone()],
                "status" => vec![if v.attached_to.is_some() { "in-use" } else { "available" }.to_string()],
                "encrypted" => vec![b(v.encrypted).to_string()],
                "size" => vec![v.size_gib.to_string()],
                "volume-type" => vec!["gp3".to_string()],
                "availability-zone" => vec![format!("{}a", cx.region)],
                "attachment.instance-id" => v.attached_to.iter().cloned().collect(),
                "attachment.device" => v.device.iter().cloned().collect(),
                "attachment.status" => v.attached_to.iter().map(|_| "attached".to_string()).collect(),
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 500, !ids.is_empty())?;
    x.open("volumeSet");
    for v in items {
        volume_xml(cx, x, v);
    }
    x.close("volumeSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn snapshot_fields(cx: &Cx<'_>, x: &mut Xml, s: &Snapshot, completed: bool) {
    x.leaf("snapshotId", &s.id);
    x.leaf("volumeId", &s.volume_id);
    x.leaf("status", if completed { "completed" } else { "pending" });
    x.leaf("startTime", &iso8601(s.started_ms));
    x.leaf("progress", if completed { "100%" } else { "" });
    x.leaf("ownerId", cx.account);
    x.leaf("volumeSize", &s.size_gib.to_string());
    x.leaf("description", &s.description);
    x.leaf("encrypted", b(s.encrypted));
    tag_set(x, &s.tags);
    x.leaf("storageTier", "standard");
}

fn create_snapshot(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let vol_id = p.req("VolumeId")?;
    check_id(vol_id, "vol-", "InvalidVolumeID.Malformed")?;
    let desc = p.get("Description").unwrap_or_default();
    if desc.chars().count() > 255 {
        return Err(bad("InvalidParameterValue", "Snapshot descriptions must be at most 255 characters long"));
    }
    let tags = tag_specs(p, &["snapshot"])?.remove("snapshot").unwrap_or_default();
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let (size, encrypted) = {
        let rs = region_of(w, cx.account, cx.region);
        let v = rs.ec2.volumes.get(vol_id).ok_or_else(|| volume_not_found(vol_id))?;
        (v.size_gib, v.encrypted)
    };
    let id = format!("snap-{}", w.ids.hex(17));
    let snap = Snapshot {
        id: id.clone(),
        volume_id: vol_id.to_string(),
        description: desc.to_string(),
        encrypted,
        size_gib: size,
        started_ms: w.now(),
        tags,
    };
    snapshot_fields(cx, x, &snap, false);
    w.region_mut(cx.account, cx.region).ec2.snapshots.insert(id.clone(), snap);
    w.mutated("ec2:CreateSnapshot", &id, cx.account, cx.region);
    Ok(())
}

fn describe_snapshots(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(
        p,
        &["snapshot-id", "volume-id", "status", "encrypted", "owner-id", "description", "volume-size", "progress"],
    )?;
    let ids = p.list("SnapshotId");
    let owners = p.list("Owner");
    let mine = owners.is_empty() || owners.iter().any(|o| o == "self" || o == cx.account);
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    for id in &ids {
        check_id(id, "snap-", "InvalidSnapshotID.Malformed")?;
        if !rs.ec2.snapshots.contains_key(id) {
            return Err(snapshot_not_found(id));
        }
    }
    let matching: Vec<&Snapshot> = rs
        .ec2
        .snapshots
        .values()
        .filter(|_| mine)
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .filter(|s| {
            passes(&fs, &s.tags, |name| match name {
                "snapshot-id" => vec![s.id.clone()],
                "volume-id" => vec![s.volume_id.clone()],
                "status" => vec!["completed".to_string()],
                "progress" => vec!["100%".to_string()],
                "encrypted" => vec![b(s.encrypted).to_string()],
                "owner-id" => vec![cx.account.to_string()],
                "description" => vec![s.description.clone()],
                "volume-size" => vec![s.size_gib.to_string()],
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty())?;
    x.open("snapshotSet");
    for s in items {
        x.open("item");
        snapshot_fields(cx, x, s, true);
        x.close("item");
    }
    x.close("snapshotSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

fn delete_snapshot(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let id = cx.p.req("SnapshotId")?;
    check_id(id, "snap-", "InvalidSnapshotID.Malformed")?;
    let mut w = cx.call.write();
    if w.region_mut(cx.account, cx.region).ec2.snapshots.remove(id).is_none() {
        return Err(snapshot_not_found(id));
    }
    w.mutated("ec2:DeleteSnapshot", id, cx.account, cx.region);
    x.leaf("return", "true");
    Ok(())
}

fn get_ebs_default(cx: &Cx<'_>, x: &mut Xml) {
    let w = cx.call.read();
    let on = region_of(&w, cx.account, cx.region).ec2.ebs_encryption_by_default;
    x.leaf("ebsEncryptionByDefault", b(on));
    x.leaf("sseType", "sse-ebs");
}

fn set_ebs_default(cx: &Cx<'_>, x: &mut Xml, on: bool, op: &str) {
    let mut w = cx.call.write();
    w.region_mut(cx.account, cx.region).ec2.ebs_encryption_by_default = on;
    w.mutated(&format!("ec2:{op}"), cx.account, cx.account, cx.region);
    x.leaf("ebsEncryptionByDefault", b(on));
}

// ---------------------------------------------------------------------------------------------
// Tags

/// The tags of a resource by id, or the error EC2 gives for an unknown or untaggable id.
fn resource_tags<'a>(rs: &'a mut RegionState, id: &str) -> AwsResult<&'a mut BTreeMap<String, String>> {
    let ec2 = &mut rs.ec2;
    if id.starts_with("sg-") {
        ec2.security_groups.get_mut(id).map(|g| &mut g.tags).ok_or_else(|| group_not_found(id))
    } else if id.starts_with("i-") {
        ec2.instances.get_mut(id).map(|i| &mut i.tags).ok_or_else(|| instances_not_found(&[id.to_string()]))
    } else if id.starts_with("vol-") {
        ec2.volumes.get_mut(id).map(|v| &mut v.tags).ok_or_else(|| volume_not_found(id))
    } else if id.starts_with("snap-") {
        ec2.snapshots.get_mut(id).map(|s| &mut s.tags).ok_or_else(|| snapshot_not_found(id))
    } else if id.starts_with("vpc-") {
        if ec2.vpcs.contains_key(id) {
            Err(bad("InvalidParameterValue", format!("Tags on VPCs are not supported: '{id}'")))
        } else {
            Err(vpc_not_found(id))
        }
    } else {
        Err(bad("InvalidID", format!("The ID '{id}' is not valid")))
    }
}

fn create_tags(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let ids = p.list("ResourceId");
    if ids.is_empty() {
        return Err(bad("MissingParameter", "The request must contain the parameter resourceIdSet"));
    }
    let tags = tags_of(&p.structs("Tag"))?;
    if tags.is_empty() {
        return Err(bad("MissingParameter", "The request must contain the parameter tagSet"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let rs = w.region_mut(cx.account, cx.region);
    for id in &ids {
        let current = resource_tags(rs, id)?;
        let total = current.keys().chain(tags.keys()).collect::<std::collections::BTreeSet<_>>().len();
        if total > MAX_TAGS {
            return Err(bad(
                "TagLimitExceeded",
                format!("The maximum number of tags for resource '{id}' has been reached."),
            ));
        }
    }
    for id in &ids {
        resource_tags(rs, id)?.extend(tags.clone());
    }
    for id in &ids {
        w.mutated("ec2:CreateTags", id, cx.account, cx.region);
    }
    x.leaf("return", "true");
    Ok(())
}

fn delete_tags(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let ids = p.list("ResourceId");
    if ids.is_empty() {
        return Err(bad("MissingParameter", "The request must contain the parameter resourceIdSet"));
    }
    let named: Vec<(String, Option<String>)> = p
        .structs("Tag")
        .iter()
        .map(|t| (t.get("Key").unwrap_or_default().to_string(), t.get("Value").map(str::to_string)))
        .collect();
    let mut guard = cx.call.write();
    let w = &mut *guard;
    let rs = w.region_mut(cx.account, cx.region);
    for id in &ids {
        resource_tags(rs, id)?;
    }
    for id in &ids {
        let tags = resource_tags(rs, id)?;
        if named.is_empty() {
            tags.clear();
        }
        for (k, v) in &named {
            if v.as_ref().is_none_or(|v| tags.get(k) == Some(v)) {
                tags.remove(k);
            }
        }
    }
    for id in &ids {
        w.mutated("ec2:DeleteTags", id, cx.account, cx.region);
    }
    x.leaf("return", "true");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// VPCs and regions

fn vpc_fields(cx: &Cx<'_>, x: &mut Xml, v: &Vpc, state: &str) {
    let suffix = v.id.trim_start_matches("vpc-");
    x.leaf("vpcId", &v.id);
    x.leaf("ownerId", cx.account);
    x.leaf("state", state);
    x.leaf("cidrBlock", &v.cidr);
    x.open("cidrBlockAssociationSet")
        .open("item")
        .leaf("cidrBlock", &v.cidr)
        .leaf("associationId", &format!("vpc-cidr-assoc-{suffix}"))
        .open("cidrBlockState")
        .leaf("state", "associated")
        .close("cidrBlockState")
        .close("item")
        .close("cidrBlockAssociationSet");
    x.leaf("dhcpOptionsId", &format!("dopt-{}", suffix.chars().take(8).collect::<String>()));
    x.leaf("instanceTenancy", "default");
    x.leaf("isDefault", b(v.is_default));
}

fn describe_vpcs(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(p, &["vpc-id", "is-default", "cidr", "cidr-block-association.cidr-block", "state", "owner-id"])?;
    let ids = p.list("VpcId");
    let w = cx.call.read();
    let rs = region_of(&w, cx.account, cx.region);
    for id in &ids {
        check_id(id, "vpc-", "InvalidVpcID.Malformed")?;
        if !rs.ec2.vpcs.contains_key(id) {
            return Err(vpc_not_found(id));
        }
    }
    let no_tags = BTreeMap::new();
    let matching: Vec<&Vpc> = rs
        .ec2
        .vpcs
        .values()
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .filter(|v| {
            passes(&fs, &no_tags, |name| match name {
                "vpc-id" => vec![v.id.clone()],
                "is-default" => vec![b(v.is_default).to_string()],
                "cidr" | "cidr-block-association.cidr-block" => vec![v.cidr.clone()],
                "state" => vec!["available".to_string()],
                "owner-id" => vec![cx.account.to_string()],
                _ => Vec::new(),
            })
        })
        .collect();
    let (items, next) = page(matching, p, 1000, !ids.is_empty())?;
    x.open("vpcSet");
    for v in items {
        x.open("item");
        vpc_fields(cx, x, v, "available");
        x.close("item");
    }
    x.close("vpcSet");
    x.leaf_opt("nextToken", next.as_deref());
    Ok(())
}

/// Creates a VPC and, as EC2 does, its `default` security group.
fn create_vpc(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let cidr = p.req("CidrBlock")?;
    let prefix = cidr.split_once('/').and_then(|(_, n)| n.parse::<u8>().ok());
    if !cidr_v4_ok(cidr) || !prefix.is_some_and(|n| (16..=28).contains(&n)) {
        return Err(bad("InvalidVpc.Range", format!("The CIDR '{cidr}' is invalid.")));
    }
    if !p.structs("TagSpecification").is_empty() {
        return Err(bad("InvalidParameterValue", "Tags on VPCs are not supported"));
    }
    if p.bool("AmazonProvidedIpv6CidrBlock")? == Some(true) {
        return Err(bad("InvalidParameterValue", "IPv6 CIDR blocks on VPCs are not supported"));
    }
    let mut guard = cx.call.write();
    let w = &mut *guard;
    if region_of(w, cx.account, cx.region).ec2.vpcs.len() >= 5 {
        return Err(bad("VpcLimitExceeded", "The maximum number of VPCs has been reached."));
    }
    let (vpc, sg) = w.new_vpc(cidr, false);
    let (vpc_id, sg_id) = (vpc.id.clone(), sg.id.clone());
    x.open("vpc");
    vpc_fields(cx, x, &vpc, "pending");
    x.close("vpc");
    let ec2 = &mut w.region_mut(cx.account, cx.region).ec2;
    ec2.vpcs.insert(vpc_id.clone(), vpc);
    ec2.security_groups.insert(sg_id, sg);
    w.mutated("ec2:CreateVpc", &vpc_id, cx.account, cx.region);
    Ok(())
}

fn describe_regions(cx: &Cx<'_>, x: &mut Xml) -> AwsResult<()> {
    let p = cx.p;
    let fs = filters(p, &["region-name", "endpoint", "opt-in-status"])?;
    let all = p.bool("AllRegions")?.unwrap_or(false);
    let names = p.list("RegionName");
    let every: Vec<(&str, &str)> = DEFAULT_REGIONS
        .iter()
        .map(|r| (*r, "opt-in-not-required"))
        .chain(OPT_IN_REGIONS.iter().map(|r| (*r, "not-opted-in")))
        .collect();
    let unknown: Vec<&String> = names.iter().filter(|n| !every.iter().any(|(r, _)| r == n)).collect();
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        return Err(bad("InvalidParameterValue", format!("Invalid region names: [{}]", list.join(", "))));
    }
    let no_tags = BTreeMap::new();
    x.open("regionInfo");
    for (name, status) in every {
        let endpoint = format!("ec2.{name}.amazonaws.com");
        let listed =
            if names.is_empty() { all || status == "opt-in-not-required" } else { names.iter().any(|n| n == name) };
        let kept = passes(&fs, &no_tags, |f| match f {
            "region-name" => vec![name.to_string()],
            "endpoint" => vec![endpoint.clone()],
            "opt-in-status" => vec![status.to_string()],
            _ => Vec::new(),
        });
        if listed && kept {
            x.open("item")
                .leaf("regionName", name)
                .leaf("regionEndpoint", &endpoint)
                .leaf("optInStatus", status)
                .close("item");
        }
    }
    x.close("regionInfo");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_ec2_filters() {
        assert!(crate::wire::wildcard("web-*", "web-admin"));
        assert!(crate::wire::wildcard("?eb-admin", "web-admin"));
        assert!(!crate::wire::wildcard("Web-*", "web-admin"));
        assert!(crate::wire::wildcard("*", ""));
        assert!(!crate::wire::wildcard("web", "web-admin"));
    }

    #[test]
    fn cidrs_are_checked() {
        assert!(cidr_v4_ok("0.0.0.0/0"));
        assert!(cidr_v4_ok("10.0.0.0/8"));
        assert!(!cidr_v4_ok("10.0.0.300/8"));
        assert!(!cidr_v4_ok("10.0.0.0/33"));
        assert!(!cidr_v4_ok("10.0.0.0"));
        assert!(!cidr_v4_ok("10.0.0.0/+8"));
        assert!(cidr_v6_ok("::/0"));
        assert!(!cidr_v6_ok("::/129"));
    }

    #[test]
    fn protocols_are_canonical() {
        assert_eq!(protocol("TCP").ok(), Some("tcp".to_string()));
        assert_eq!(protocol("6").ok(), Some("tcp".to_string()));
        assert_eq!(protocol("all").ok(), Some("-1".to_string()));
        assert!(protocol("bogus").is_err());
        assert!(ports("tcp", Some(22), None).is_err());
        assert!(ports("tcp", Some(23), Some(22)).is_err());
        assert_eq!(ports("-1", Some(1), Some(2)).ok(), Some((None, None)));
    }
}
