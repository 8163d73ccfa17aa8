//! Amazon S3 (restXml, bare `<Error>` errors): buckets and the bucket settings that decide
//! whether a bucket is public (Block Public Access, policy, canned ACL), plus location and tags.
//! Buckets are addressed path-style (`/{bucket}`) or virtual-host-style (`Host: {bucket}.<host>`);
//! names are global across accounts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, decode_token, encode_token};
use crate::wire::{Request, Response, Xml, iso8601};
use crate::world::eval::{effective_bpa, policy_is_public};
use crate::world::{Bucket, PublicAccessBlock, World};

const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

// ---------------------------------------------------------------------------------------------
// Addressing

/// The bucket named by a virtual-host-style `Host` header, if any.
pub fn bucket_from_host(host: &str) -> Option<String> {
    if host.starts_with('[') {
        return None;
    }
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host == "localhost" || host.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    for marker in [".s3.", ".s3-"] {
        if let Some(i) = host.find(marker) {
            return nonempty(&host[..i]);
        }
    }
    if let Some(prefix) = host.strip_suffix(".localhost") {
        return nonempty(prefix);
    }
    for (i, c) in host.char_indices() {
        if c == '.' && host[i + 1..].parse::<Ipv4Addr>().is_ok() {
            return nonempty(&host[..i]);
        }
    }
    None
}

/// The bucket and whether an object key follows it, from either addressing style.
fn target(req: &Request) -> (Option<String>, bool) {
    let segments = req.segments();
    match bucket_from_host(&req.host) {
        Some(b) => (Some(b), !segments.is_empty()),
        None => {
            let mut it = segments.into_iter();
            let bucket = it.next();
            (bucket, it.next().is_some())
        }
    }
}

fn has(req: &Request, key: &str) -> bool {
    req.query.iter().any(|(k, _)| k == key)
}

/// Whether the request names no sub-resource (only the SDK's `x-id` marker, if anything).
fn bare(req: &Request) -> bool {
    req.query.iter().all(|(k, _)| k == "x-id")
}

pub fn operation(req: &Request) -> Option<&'static str> {
    let (bucket, key) = target(req);
    let method = req.method.as_str();
    let Some(_) = bucket else {
        return (method == "GET").then_some("ListBuckets");
    };
    if key {
        return None;
    }
    let sub = |pairs: &[(&str, &'static str)]| pairs.iter().find(|(q, _)| has(req, q)).map(|(_, op)| *op);
    match method {
        "HEAD" => Some("HeadBucket"),
        "GET" => sub(&[
            ("location", "GetBucketLocation"),
            ("policyStatus", "GetBucketPolicyStatus"),
            ("policy", "GetBucketPolicy"),
            ("publicAccessBlock", "GetPublicAccessBlock"),
            ("tagging", "GetBucketTagging"),
            ("acl", "GetBucketAcl"),
        ]),
        "PUT" if bare(req) => Some("CreateBucket"),
        "PUT" => sub(&[
            ("policy", "PutBucketPolicy"),
            ("publicAccessBlock", "PutPublicAccessBlock"),
            ("tagging", "PutBucketTagging"),
            ("acl", "PutBucketAcl"),
        ]),
        "DELETE" if bare(req) => Some("DeleteBucket"),
        "DELETE" => sub(&[
            ("policy", "DeleteBucketPolicy"),
            ("publicAccessBlock", "DeletePublicAccessBlock"),
            ("tagging", "DeleteBucketTagging"),
        ]),
        _ => None,
    }
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    if op == "ListBuckets" {
        return list_buckets(call);
    }
    let (Some(bucket), _) = target(call.req) else {
        return Err(AwsError::new(400, "InvalidRequest", "A bucket name is required."));
    };
    match op {
        "CreateBucket" => create_bucket(call, &bucket),
        "DeleteBucket" => delete_bucket(call, &bucket),
        "HeadBucket" => head_bucket(call, &bucket),
        "GetBucketLocation" => get_location(call, &bucket),
        "GetBucketPolicyStatus" => get_policy_status(call, &bucket),
        "GetPublicAccessBlock" => get_bpa(call, &bucket),
        "PutPublicAccessBlock" => put_bpa(call, &bucket),
        "DeletePublicAccessBlock" => delete_bpa(call, &bucket),
        "PutBucketPolicy" => put_policy(call, &bucket),
        "GetBucketPolicy" => get_policy(call, &bucket),
        "DeleteBucketPolicy" => delete_policy(call, &bucket),
        "GetBucketTagging" => get_tagging(call, &bucket),
        "PutBucketTagging" => put_tagging(call, &bucket),
        "DeleteBucketTagging" => delete_tagging(call, &bucket),
        "PutBucketAcl" => put_acl(call, &bucket),
        "GetBucketAcl" => get_acl(call, &bucket),
        other => Err(AwsError::new(
            405,
            "MethodNotAllowed",
            format!("The specified method is not allowed against this resource: {other}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and small helpers

fn no_such_bucket() -> AwsError {
    AwsError::new(404, "NoSuchBucket", "The specified bucket does not exist")
}

fn access_denied() -> AwsError {
    AwsError::new(403, "AccessDenied", "Access Denied")
}

fn malformed_xml(detail: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        400,
        "MalformedXML",
        format!("The XML you provided was not well-formed or did not validate against our published schema: {detail}"),
    )
}

/// The caller's bucket, or the error S3 gives for a missing or foreign one (or one whose owner
/// is not the `x-amz-expected-bucket-owner` the caller named).
fn owned<'w>(world: &'w World, call: &Call<'_>, name: &str) -> AwsResult<&'w Bucket> {
    let b = world.buckets.get(name).ok_or_else(no_such_bucket)?;
    check_owner(call, b)?;
    Ok(b)
}

fn owned_mut<'w>(world: &'w mut World, call: &Call<'_>, name: &str) -> AwsResult<&'w mut Bucket> {
    let b = world.buckets.get_mut(name).ok_or_else(no_such_bucket)?;
    check_owner(call, b)?;
    Ok(b)
}

fn check_owner(call: &Call<'_>, b: &Bucket) -> AwsResult<()> {
    let expected = call.req.header("x-amz-expected-bucket-owner");
    if b.owner != call.account() || expected.is_some_and(|e| e != b.owner) {
        return Err(access_denied());
    }
    Ok(())
}

/// A canonical user id for an account: 64 hex characters, stable per account.
fn canonical_id(account: &str) -> String {
    let digest = Sha256::digest(format!("s3-canonical-user:{account}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn display_name(world: &World, account: &str) -> String {
    world
        .accounts
        .get(account)
        .map(|a| a.name.to_ascii_lowercase().replace(' ', "-"))
        .unwrap_or_else(|| account.to_string())
}

fn xml_response(x: Xml) -> Response {
    let mut r = Response::xml(x.finish());
    r.content_type = "application/xml";
    r
}

// ---------------------------------------------------------------------------------------------
// A small XML tree for request bodies

/// An element of a request body: its local name, text and children.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Parses a request body into its root element; anything not well-formed is `MalformedXML`.
pub fn parse_tree(body: &[u8]) -> AwsResult<Node> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut buf = Vec::new();
    let text_target = |stack: &mut Vec<Node>, s: &str| {
        if let Some(top) = stack.last_mut() {
            top.text.push_str(s);
        }
    };
    loop {
        let event = reader.read_event_into(&mut buf).map_err(malformed_xml)?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed_xml("content after the root element"));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Node { name, ..Node::default() });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let node = Node { name, ..Node::default() };
                match stack.last_mut() {
                    Some(top) => top.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => return Err(malformed_xml("content after the root element")),
                }
            }
            Event::End(_) => {
                let Some(mut node) = stack.pop() else {
                    return Err(malformed_xml("unbalanced end tag"));
                };
                node.text = node.text.trim().to_string();
                match stack.last_mut() {
                    Some(top) => top.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let raw = t.decode().map_err(malformed_xml)?;
                let s = quick_xml::escape::unescape(&raw).map_err(malformed_xml)?;
                if stack.is_empty() && !s.trim().is_empty() {
                    return Err(malformed_xml("text outside the root element"));
                }
                text_target(&mut stack, &s);
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(t.as_ref()).into_owned();
                text_target(&mut stack, &s);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(malformed_xml)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(malformed_xml)?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| malformed_xml(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                text_target(&mut stack, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(malformed_xml("unexpected end of document"));
    }
    root.ok_or_else(|| malformed_xml("the document has no root element"))
}

fn parse_bool(field: &str, v: &str) -> AwsResult<bool> {
    match v {
        "true" | "TRUE" | "True" => Ok(true),
        "false" | "FALSE" | "False" => Ok(false),
        other => Err(malformed_xml(format!("{field} must be true or false, got '{other}'"))),
    }
}

/// A `PublicAccessBlockConfiguration` body; unspecified settings are false.
pub fn parse_bpa(body: &[u8]) -> AwsResult<PublicAccessBlock> {
    let root = parse_tree(body)?;
    if root.name != "PublicAccessBlockConfiguration" {
        return Err(malformed_xml(format!("expected PublicAccessBlockConfiguration, got {}", root.name)));
    }
    let mut bpa = PublicAccessBlock::default();
    for c in &root.children {
        let v = parse_bool(&c.name, &c.text)?;
        match c.name.as_str() {
            "BlockPublicAcls" => bpa.block_public_acls = v,
            "IgnorePublicAcls" => bpa.ignore_public_acls = v,
            "BlockPublicPolicy" => bpa.block_public_policy = v,
            "RestrictPublicBuckets" => bpa.restrict_public_buckets = v,
            other => return Err(malformed_xml(format!("unexpected element {other}"))),
        }
    }
    Ok(bpa)
}

/// Writes a `PublicAccessBlockConfiguration` document in namespace `ns`.
pub fn bpa_xml(bpa: &PublicAccessBlock, ns: &str) -> Xml {
    let b = |v: bool| if v { "true" } else { "false" };
    let mut x = Xml::new();
    x.open_ns("PublicAccessBlockConfiguration", ns);
    x.leaf("BlockPublicAcls", b(bpa.block_public_acls));
    x.leaf("IgnorePublicAcls", b(bpa.ignore_public_acls));
    x.leaf("BlockPublicPolicy", b(bpa.block_public_policy));
    x.leaf("RestrictPublicBuckets", b(bpa.restrict_public_buckets));
    x.close("PublicAccessBlockConfiguration");
    x
}

// ---------------------------------------------------------------------------------------------
// Buckets

fn valid_bucket_name(name: &str) -> bool {
    let len_ok = (3..=63).contains(&name.len());
    let chars_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let no_bad_seq = !name.contains("..") && !name.contains(".-") && !name.contains("-.");
    let not_ip = name.parse::<Ipv4Addr>().is_err();
    let no_reserved = !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3");
    len_ok && chars_ok && ends_ok && no_bad_seq && not_ip && no_reserved
}

fn list_buckets(call: &Call<'_>) -> AwsResult<Response> {
    let req = call.req;
    let max = match req.query_param("max-buckets") {
        None => 10_000,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                return Err(AwsError::new(400, "InvalidArgument", "max-buckets must be between 1 and 10000"));
            }
        },
    };
    let prefix = req.query_param("prefix").unwrap_or_default();
    let region_filter = req.query_param("bucket-region");
    let start = match req.query_param("continuation-token") {
        None => 0,
        Some(t) => decode_token(t)
            .ok_or_else(|| AwsError::new(400, "InvalidArgument", "The continuation token provided is incorrect"))?,
    };
    let w = call.read();
    let account = call.account();
    let mine: Vec<&Bucket> = w
        .buckets
        .values()
        .filter(|b| b.owner == account && b.name.starts_with(prefix))
        .filter(|b| region_filter.is_none_or(|r| r == b.region))
        .collect();
    let end = start.saturating_add(max).min(mine.len());
    let mut x = Xml::new();
    x.open_ns("ListAllMyBucketsResult", NS);
    x.open("Owner");
    x.leaf("DisplayName", &display_name(&w, account));
    x.leaf("ID", &canonical_id(account));
    x.close("Owner");
    x.open("Buckets");
    for b in mine.iter().skip(start).take(end.saturating_sub(start)) {
        x.open("Bucket");
        x.leaf("Name", &b.name);
        x.leaf("CreationDate", &iso8601(b.created_ms));
        x.leaf("BucketRegion", &b.region);
        x.leaf("BucketArn", &format!("arn:aws:s3:::{}", b.name));
        x.close("Bucket");
    }
    x.close("Buckets");
    if end < mine.len() {
        x.leaf("ContinuationToken", &encode_token(end));
    }
    if !prefix.is_empty() {
        x.leaf("Prefix", prefix);
    }
    x.close("ListAllMyBucketsResult");
    Ok(xml_response(x))
}

/// A canned ACL from `x-amz-acl`, validated.
fn canned_acl(req: &Request) -> AwsResult<Option<String>> {
    const CANNED: &[&str] = &[
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    ];
    match req.header("x-amz-acl") {
        None => Ok(None),
        Some(a) if CANNED.contains(&a) => Ok(Some(a.to_string())),
        Some(a) => Err(AwsError::new(400, "InvalidArgument", format!("Invalid canned ACL: {a}"))),
    }
}

/// The public grant a canned ACL makes, as stored on the bucket.
fn public_canned(acl: &str) -> Option<String> {
    matches!(acl, "public-read" | "public-read-write" | "authenticated-read").then(|| acl.to_string())
}

fn create_bucket(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    if !valid_bucket_name(name) {
        return Err(AwsError::new(400, "InvalidBucketName", "The specified bucket is not valid."));
    }
    let mut region = call.region.to_string();
    if !call.req.body.iter().all(u8::is_ascii_whitespace) {
        let root = parse_tree(&call.req.body)?;
        if root.name != "CreateBucketConfiguration" {
            return Err(malformed_xml(format!("expected CreateBucketConfiguration, got {}", root.name)));
        }
        if let Some(lc) = root.text_of("LocationConstraint").filter(|s| !s.is_empty()) {
            let valid = lc == "EU"
                || (lc.split('-').count() >= 3
                    && lc.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            if !valid {
                return Err(AwsError::new(
                    400,
                    "InvalidLocationConstraint",
                    "The specified location-constraint is not valid",
                ));
            }
            region = if lc == "EU" { "eu-west-1".to_string() } else { lc.to_string() };
        }
    }
    let acl = canned_acl(call.req)?;
    let account = call.account();
    let mut w = call.write();
    if let Some(existing) = w.buckets.get(name) {
        return Err(if existing.owner == account {
            AwsError::new(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
        } else {
            AwsError::new(
                409,
                "BucketAlreadyExists",
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            )
        });
    }
    let now = w.now();
    w.buckets.insert(
        name.to_string(),
        Bucket {
            name: name.to_string(),
            owner: account.to_string(),
            region: region.clone(),
            created_ms: now,
            public_access_block: Some(PublicAccessBlock::ALL),
            policy: None,
            public_acl: acl.as_deref().and_then(public_canned),
            tags: BTreeMap::new(),
        },
    );
    w.mutated("s3:CreateBucket", name, account, &region);
    let mut r = Response::empty(200);
    r.headers.push(("location", format!("/{name}")));
    Ok(r)
}

fn delete_bucket(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let account = call.account();
    let mut w = call.write();
    let region = owned(&w, call, name)?.region.clone();
    w.buckets.remove(name);
    w.mutated("s3:DeleteBucket", name, account, &region);
    Ok(Response::empty(204))
}

fn head_bucket(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = w.buckets.get(name).ok_or_else(|| AwsError::new(404, "NotFound", "Not Found"))?;
    if b.owner != call.account() {
        return Err(AwsError::new(403, "Forbidden", "Forbidden"));
    }
    let mut r = Response::empty(200);
    r.headers.push(("x-amz-bucket-region", b.region.clone()));
    r.headers.push(("x-amz-access-point-alias", "false".to_string()));
    Ok(r)
}

fn get_location(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    let constraint = if b.region == "us-east-1" { String::new() } else { crate::wire::xml_escape(&b.region) };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LocationConstraint xmlns=\"{NS}\">{constraint}</LocationConstraint>"
    );
    let mut r = Response::xml(body);
    r.content_type = "application/xml";
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Block Public Access, policy, ACL

fn get_bpa(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    let bpa = b.public_access_block.ok_or_else(|| {
        AwsError::new(
            404,
            "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found",
        )
    })?;
    Ok(xml_response(bpa_xml(&bpa, NS)))
}

fn put_bpa(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let bpa = parse_bpa(&call.req.body)?;
    let account = call.account();
    let mut w = call.write();
    let b = owned_mut(&mut w, call, name)?;
    b.public_access_block = Some(bpa);
    let region = b.region.clone();
    w.mutated("s3:PutPublicAccessBlock", name, account, &region);
    Ok(Response::empty(200))
}

fn delete_bpa(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let account = call.account();
    let mut w = call.write();
    let b = owned_mut(&mut w, call, name)?;
    b.public_access_block = None;
    let region = b.region.clone();
    w.mutated("s3:DeletePublicAccessBlock", name, account, &region);
    Ok(Response::empty(204))
}

fn account_bpa(world: &World, account: &str) -> Option<PublicAccessBlock> {
    world.accounts.get(account).and_then(|a| a.s3_public_access_block)
}

fn get_policy_status(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    let policy = b.policy.as_deref().ok_or_else(no_such_policy)?;
    let bpa = effective_bpa(b, account_bpa(&w, &b.owner).as_ref());
    let public = policy_is_public(policy) && !bpa.restrict_public_buckets;
    let mut x = Xml::new();
    x.open_ns("PolicyStatus", NS);
    x.leaf("IsPublic", if public { "true" } else { "false" });
    x.close("PolicyStatus");
    Ok(xml_response(x))
}

fn no_such_policy() -> AwsError {
    AwsError::new(404, "NoSuchBucketPolicy", "The bucket policy does not exist")
}

fn malformed_policy(detail: &str) -> AwsError {
    AwsError::new(400, "MalformedPolicy", detail.to_string())
}

/// Checks the shape of a bucket policy the way S3 does before storing it.
fn validate_policy(text: &str) -> AwsResult<()> {
    if !text.trim_start().starts_with('{') {
        return Err(malformed_policy("Policies must be valid JSON and the first byte must be '{'"));
    }
    let doc: Value = serde_json::from_str(text).map_err(|_| malformed_policy("This policy contains invalid Json"))?;
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => return Err(malformed_policy("Missing required field Statement")),
    };
    for st in statements {
        match st.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => return Err(malformed_policy("Invalid effect")),
        }
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            return Err(malformed_policy("Missing required field Action"));
        }
        if st.get("Principal").is_none() && st.get("NotPrincipal").is_none() {
            return Err(malformed_policy("Missing required field Principal"));
        }
    }
    Ok(())
}

fn put_policy(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let text = std::str::from_utf8(&call.req.body)
        .map_err(|_| malformed_policy("Policies must be valid JSON and the first byte must be '{'"))?
        .to_string();
    validate_policy(&text)?;
    let account = call.account();
    let mut w = call.write();
    let acct_bpa = account_bpa(&w, account);
    let b = owned_mut(&mut w, call, name)?;
    if policy_is_public(&text) && effective_bpa(b, acct_bpa.as_ref()).block_public_policy {
        return Err(AwsError::new(
            403,
            "AccessDenied",
            "User is not authorized to perform: s3:PutBucketPolicy because public policies are blocked by the BlockPublicPolicy block public access setting.",
        ));
    }
    b.policy = Some(text);
    let region = b.region.clone();
    w.mutated("s3:PutBucketPolicy", name, account, &region);
    Ok(Response::empty(204))
}

fn get_policy(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    let policy = b.policy.clone().ok_or_else(no_such_policy)?;
    Ok(Response::json_bytes(policy))
}

fn delete_policy(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let account = call.account();
    let mut w = call.write();
    let b = owned_mut(&mut w, call, name)?;
    b.policy = None;
    let region = b.region.clone();
    w.mutated("s3:DeleteBucketPolicy", name, account, &region);
    Ok(Response::empty(204))
}

/// The public grant an ACL request makes: from `x-amz-acl`, `x-amz-grant-*` headers, or an
/// `AccessControlPolicy` body. `Ok(None)` for a private ACL.
fn requested_acl(req: &Request) -> AwsResult<Option<String>> {
    if let Some(canned) = canned_acl(req)? {
        return Ok(public_canned(&canned));
    }
    let grant_headers = [
        "x-amz-grant-read",
        "x-amz-grant-write",
        "x-amz-grant-read-acp",
        "x-amz-grant-write-acp",
        "x-amz-grant-full-control",
    ];
    let mut any_header = false;
    let mut read = false;
    let mut write = false;
    for h in grant_headers {
        if let Some(v) = req.header(h) {
            any_header = true;
            if v.contains(ALL_USERS) || v.contains(AUTHENTICATED_USERS) {
                match h {
                    "x-amz-grant-write" => write = true,
                    "x-amz-grant-full-control" => {
                        read = true;
                        write = true;
                    }
                    _ => read = true,
                }
            }
        }
    }
    if !any_header {
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Err(AwsError::new(
                400,
                "MissingSecurityHeader",
                "Your request was missing a required header: x-amz-acl",
            ));
        }
        let root = parse_tree(&req.body)?;
        if root.name != "AccessControlPolicy" {
            return Err(AwsError::new(
                400,
                "MalformedACLError",
                "The XML you provided was not well-formed or did not validate against our published schema",
            ));
        }
        for grant in root.child("AccessControlList").into_iter().flat_map(|l| l.all("Grant")) {
            let uri = grant.child("Grantee").and_then(|g| g.text_of("URI")).unwrap_or_default();
            if uri != ALL_USERS && uri != AUTHENTICATED_USERS {
                continue;
            }
            match grant.text_of("Permission").unwrap_or_default() {
                "WRITE" => write = true,
                "FULL_CONTROL" => {
                    read = true;
                    write = true;
                }
                _ => read = true,
            }
        }
    }
    Ok(match (read, write) {
        (_, true) => Some("public-read-write".to_string()),
        (true, false) => Some("public-read".to_string()),
        _ => None,
    })
}

fn put_acl(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let public = requested_acl(call.req)?;
    let account = call.account();
    let mut w = call.write();
    let acct_bpa = account_bpa(&w, account);
    let b = owned_mut(&mut w, call, name)?;
    if public.is_some() && effective_bpa(b, acct_bpa.as_ref()).block_public_acls {
        return Err(AwsError::new(403, "AccessDenied", "Access Denied"));
    }
    b.public_acl = public;
    let region = b.region.clone();
    w.mutated("s3:PutBucketAcl", name, account, &region);
    Ok(Response::empty(200))
}

fn get_acl(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    let id = canonical_id(&b.owner);
    let display = crate::wire::xml_escape(&display_name(&w, &b.owner));
    let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AccessControlPolicy xmlns=\"{NS}\"><Owner><ID>{id}</ID><DisplayName>{display}</DisplayName></Owner><AccessControlList>"
    );
    body.push_str(&format!(
        "<Grant><Grantee {xsi} xsi:type=\"CanonicalUser\"><ID>{id}</ID><DisplayName>{display}</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
    ));
    if let Some(acl) = &b.public_acl {
        let group = if acl == "authenticated-read" { AUTHENTICATED_USERS } else { ALL_USERS };
        let mut perms = vec!["READ"];
        if acl == "public-read-write" {
            perms.push("WRITE");
        }
        for p in perms {
            body.push_str(&format!(
                "<Grant><Grantee {xsi} xsi:type=\"Group\"><URI>{group}</URI></Grantee><Permission>{p}</Permission></Grant>"
            ));
        }
    }
    body.push_str("</AccessControlList></AccessControlPolicy>");
    let mut r = Response::xml(body);
    r.content_type = "application/xml";
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Tags

fn get_tagging(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let w = call.read();
    let b = owned(&w, call, name)?;
    if b.tags.is_empty() {
        return Err(AwsError::new(404, "NoSuchTagSet", "The TagSet does not exist"));
    }
    let mut x = Xml::new();
    x.open_ns("Tagging", NS);
    x.open("TagSet");
    for (k, v) in &b.tags {
        x.open("Tag");
        x.leaf("Key", k);
        x.leaf("Value", v);
        x.close("Tag");
    }
    x.close("TagSet");
    x.close("Tagging");
    Ok(xml_response(x))
}

fn invalid_tag(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidTag", message)
}

fn put_tagging(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let root = parse_tree(&call.req.body)?;
    if root.name != "Tagging" {
        return Err(malformed_xml(format!("expected Tagging, got {}", root.name)));
    }
    let set = root.child("TagSet").ok_or_else(|| malformed_xml("missing TagSet"))?;
    let mut tags = BTreeMap::new();
    for tag in set.all("Tag") {
        let key = tag.child("Key").ok_or_else(|| malformed_xml("a Tag is missing its Key"))?.text.clone();
        let value = tag.text_of("Value").unwrap_or_default().to_string();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if value.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if key.starts_with("aws:") {
            return Err(invalid_tag("System tags cannot be added/updated by requester"));
        }
        if tags.insert(key, value).is_some() {
            return Err(invalid_tag("Cannot provide multiple Tags with the same key"));
        }
    }
    if tags.len() > 50 {
        return Err(AwsError::new(400, "BadRequest", "Object tags cannot be greater than 50"));
    }
    let account = call.account();
    let mut w = call.write();
    let b = owned_mut(&mut w, call, name)?;
    b.tags = tags;
    let region = b.region.clone();
    w.mutated("s3:PutBucketTagging", name, account, &region);
    Ok(Response::empty(204))
}

fn delete_tagging(call: &Call<'_>, name: &str) -> AwsResult<Response> {
    let account = call.account();
    let mut w = call.write();
    let b = owned_mut(&mut w, call, name)?;
    b.tags.clear();
    let region = b.region.clone();
    w.mutated("s3:DeleteBucketTagging", name, account, &region);
    Ok(Response::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_host_buckets() {
        assert_eq!(bucket_from_host("127.0.0.1:4566"), None);
        assert_eq!(bucket_from_host("localhost:4566"), None);
        assert_eq!(bucket_from_host("s3.us-east-1.amazonaws.com"), None);
        assert_eq!(bucket_from_host("logs.127.0.0.1:4566").as_deref(), Some("logs"));
        assert_eq!(bucket_from_host("my.logs.s3.us-east-1.amazonaws.com").as_deref(), Some("my.logs"));
        assert_eq!(bucket_from_host("logs.s3.amazonaws.com").as_deref(), Some("logs"));
        assert_eq!(bucket_from_host("logs.localhost:4566").as_deref(), Some("logs"));
        assert_eq!(bucket_from_host("emulator:4566"), None);
    }

    #[test]
    fn tree_parses_entities_and_rejects_garbage() {
        let t = parse_tree(b"<Tagging xmlns=\"x\"><TagSet><Tag><Key>a&amp;b</Key><Value/></Tag></TagSet></Tagging>");
        let t = t.ok().unwrap_or_default();
        let tag = t.child("TagSet").and_then(|s| s.child("Tag")).cloned().unwrap_or_default();
        assert_eq!(tag.text_of("Key"), Some("a&b"));
        assert_eq!(tag.text_of("Value"), Some(""));
        assert!(parse_tree(b"<a><b></a>").is_err());
        assert!(parse_tree(b"").is_err());
        assert!(parse_tree(b"not xml").is_err());
    }

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("orgsec-logs.2026"));
        assert!(!valid_bucket_name("Upper"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("192.168.1.1"));
        assert!(!valid_bucket_name("a..b"));
    }
}
