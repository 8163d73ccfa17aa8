//! Wire-level plumbing shared by every service: the request as received, which service and protocol
//! it speaks, typed access to JSON and form inputs with protocol-correct validation errors, an XML
//! writer, timestamp formats, and rendering of responses and errors per protocol.

use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::{AwsError, AwsResult};

/// The AWS services the emulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Organizations,
    Sts,
    Iam,
    Ec2,
    S3,
    S3Control,
    SecurityHub,
    GuardDuty,
    Config,
    AccessAnalyzer,
}

impl Service {
    pub const ALL: [Service; 10] = [
        Service::Organizations,
        Service::Sts,
        Service::Iam,
        Service::Ec2,
        Service::S3,
        Service::S3Control,
        Service::SecurityHub,
        Service::GuardDuty,
        Service::Config,
        Service::AccessAnalyzer,
    ];

    /// The prefix of IAM actions for this service (`securityhub:GetFindings`).
    pub fn iam_prefix(self) -> &'static str {
        match self {
            Service::Organizations => "organizations",
            Service::Sts => "sts",
            Service::Iam => "iam",
            Service::Ec2 => "ec2",
            Service::S3 | Service::S3Control => "s3",
            Service::SecurityHub => "securityhub",
            Service::GuardDuty => "guardduty",
            Service::Config => "config",
            Service::AccessAnalyzer => "access-analyzer",
        }
    }

    /// A stable short name used in admin endpoints, counters and rate-limit keys.
    pub fn name(self) -> &'static str {
        match self {
            Service::S3Control => "s3control",
            other => other.iam_prefix(),
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Service::Organizations | Service::Config => Protocol::AwsJson11,
            Service::Sts | Service::Iam => Protocol::AwsQuery,
            Service::Ec2 => Protocol::Ec2Query,
            Service::S3 => Protocol::RestXmlUnwrapped,
            Service::S3Control => Protocol::RestXml,
            Service::SecurityHub | Service::GuardDuty | Service::AccessAnalyzer => Protocol::RestJson,
        }
    }
}

/// How a service frames its requests, responses and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    AwsJson11,
    RestJson,
    AwsQuery,
    Ec2Query,
    /// restXml with `<ErrorResponse><Error>..` (S3 Control).
    RestXml,
    /// restXml whose errors are a bare `<Error>` (S3).
    RestXmlUnwrapped,
}

/// A request as the emulator received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string, still percent-encoded.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The Host header (used for S3 virtual-host-style addressing).
    pub host: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Path segments, percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
    }
}

pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The parts of a SigV4 credential scope that identify the caller and the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// Reads the credential scope from the `Authorization` header or, for presigned URLs, from
/// `X-Amz-Credential` in the query.
pub fn credential_scope(req: &Request) -> Option<CredentialScope> {
    let cred = if let Some(auth) = req.header("authorization") {
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
        let start = rest.find("Credential=")? + "Credential=".len();
        let rest = &rest[start..];
        let end = rest.find([',', ' ']).unwrap_or(rest.len());
        rest[..end].to_string()
    } else {
        req.query_param("X-Amz-Credential")?.to_string()
    };
    let mut parts = cred.split('/');
    let access_key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    if access_key.is_empty() || region.is_empty() {
        return None;
    }
    Some(CredentialScope { access_key, region, service })
}

/// Picks the service from the signing name (and, for `s3`, the S3 Control path prefix).
pub fn service_for(scope: &CredentialScope, req: &Request) -> Option<Service> {
    Some(match scope.service.as_str() {
        "organizations" => Service::Organizations,
        "sts" => Service::Sts,
        "iam" => Service::Iam,
        "ec2" => Service::Ec2,
        "s3" if req.path.starts_with("/v20180820/") => Service::S3Control,
        "s3" => Service::S3,
        "securityhub" => Service::SecurityHub,
        "guardduty" => Service::GuardDuty,
        "config" => Service::Config,
        "access-analyzer" => Service::AccessAnalyzer,
        _ => return None,
    })
}

/// Best guess at the protocol of an unsigned or unroutable request, so that even a request we
/// cannot attribute gets an error its client can parse.
pub fn guess_protocol(req: &Request) -> Protocol {
    if let Some(target) = req.header("x-amz-target") {
        let _ = target;
        return Protocol::AwsJson11;
    }
    let ct = req.header("content-type").unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        let body = String::from_utf8_lossy(&req.body);
        if body.contains("Version=2016-11-15") {
            return Protocol::Ec2Query;
        }
        return Protocol::AwsQuery;
    }
    if req.path.starts_with("/v20180820/") {
        return Protocol::RestXml;
    }
    if ct.contains("xml") {
        return Protocol::RestXmlUnwrapped;
    }
    Protocol::RestJson
}

/// A response ready to be written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn json(value: &Value) -> Response {
        Response::json_bytes(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
    }

    pub fn json_bytes(body: impl Into<Bytes>) -> Response {
        Response { status: 200, content_type: "application/json", headers: Vec::new(), body: body.into() }
    }

    /// awsJson1_1 responses carry their own content type.
    pub fn json11(value: &Value) -> Response {
        let mut r = Response::json(value);
        r.content_type = "application/x-amz-json-1.1";
        r
    }

    pub fn xml(body: String) -> Response {
        Response { status: 200, content_type: "text/xml", headers: Vec::new(), body: body.into() }
    }

    pub fn empty(status: u16) -> Response {
        Response { status, content_type: "application/xml", headers: Vec::new(), body: Bytes::new() }
    }

    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }
}

/// Renders an error in the shape its protocol's clients parse.
pub fn render_error(protocol: Protocol, err: &AwsError, request_id: &str) -> Response {
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(ms) = err.retry_after_ms {
        headers.push(("x-amz-retry-after", ms.to_string()));
    }
    let (content_type, body) = match protocol {
        Protocol::AwsJson11 | Protocol::RestJson => {
            headers.push(("x-amzn-errortype", err.code.to_string()));
            let body = serde_json::json!({ "__type": err.code, "message": err.message, "Message": err.message });
            let ct = if protocol == Protocol::AwsJson11 { "application/x-amz-json-1.1" } else { "application/json" };
            (ct, serde_json::to_vec(&body).unwrap_or_default())
        }
        Protocol::AwsQuery | Protocol::RestXml => {
            let mut x = Xml::new();
            x.open("ErrorResponse");
            x.open("Error");
            x.leaf("Type", if err.sender_fault { "Sender" } else { "Receiver" });
            x.leaf("Code", &err.code);
            x.leaf("Message", &err.message);
            x.close("Error");
            x.leaf("RequestId", request_id);
            x.close("ErrorResponse");
            ("text/xml", x.finish().into_bytes())
        }
        Protocol::Ec2Query => {
            let mut x = Xml::new();
            x.open("Response");
            x.open("Errors");
            x.open("Error");
            x.leaf("Code", &err.code);
            x.leaf("Message", &err.message);
            x.close("Error");
            x.close("Errors");
            x.leaf("RequestID", request_id);
            x.close("Response");
            ("text/xml", x.finish().into_bytes())
        }
        Protocol::RestXmlUnwrapped => {
            let mut x = Xml::new();
            x.open("Error");
            x.leaf("Code", &err.code);
            x.leaf("Message", &err.message);
            x.leaf("RequestId", request_id);
            x.close("Error");
            ("application/xml", x.finish().into_bytes())
        }
    };
    Response { status: err.status, content_type, headers, body: body.into() }
}

// ---------------------------------------------------------------------------------------------
// JSON input

/// A JSON object from a request body, with typed getters that fail with the service's own
/// validation error code (`InvalidInputException`, `BadRequestException`, ...).
#[derive(Debug, Clone)]
pub struct Input {
    map: Map<String, Value>,
    invalid: &'static str,
}

impl Input {
    /// Parses a body; an empty body is an empty object.
    pub fn parse(body: &[u8], invalid: &'static str) -> AwsResult<Input> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Input { map: Map::new(), invalid });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Input { map, invalid }),
            Ok(_) => Err(AwsError::new(400, invalid, "The request body must be a JSON object.")),
            Err(e) => Err(AwsError::new(400, invalid, format!("The request body is not valid JSON: {e}"))),
        }
    }

    pub fn from_map(map: Map<String, Value>, invalid: &'static str) -> Input {
        Input { map, invalid }
    }

    pub fn invalid(&self, message: impl Into<String>) -> AwsError {
        AwsError::new(400, self.invalid, message)
    }

    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    pub fn str(&self, name: &str) -> AwsResult<Option<&str>> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(format!("{name} must be a string."))),
        }
    }

    pub fn req_str(&self, name: &str) -> AwsResult<&str> {
        self.str(name)?.ok_or_else(|| self.invalid(format!("{name} is required.")))
    }

    pub fn bool(&self, name: &str) -> AwsResult<Option<bool>> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(format!("{name} must be a boolean."))),
        }
    }

    pub fn i64(&self, name: &str) -> AwsResult<Option<i64>> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| self.invalid(format!("{name} must be an integer.")))
            }
            Some(_) => Err(self.invalid(format!("{name} must be a number."))),
        }
    }

    pub fn array(&self, name: &str) -> AwsResult<&[Value]> {
        match self.raw(name) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.invalid(format!("{name} must be a list."))),
        }
    }

    /// A list of strings.
    pub fn strings(&self, name: &str) -> AwsResult<Vec<String>> {
        self.array(name)?
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| self.invalid(format!("{name} must be a list of strings.")))
            })
            .collect()
    }

    /// A list of objects, each as an `Input` with the same error code.
    pub fn objects(&self, name: &str) -> AwsResult<Vec<Input>> {
        self.array(name)?
            .iter()
            .map(|v| match v {
                Value::Object(m) => Ok(Input { map: m.clone(), invalid: self.invalid }),
                _ => Err(self.invalid(format!("{name} must be a list of objects."))),
            })
            .collect()
    }

    pub fn object(&self, name: &str) -> AwsResult<Option<Input>> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input { map: m.clone(), invalid: self.invalid })),
            Some(_) => Err(self.invalid(format!("{name} must be an object."))),
        }
    }

    /// Page size from `MaxResults`/`maxResults`, bounded by `max`.
    pub fn max_results(&self, name: &str, default: usize, max: usize) -> AwsResult<usize> {
        match self.i64(name)? {
            None => Ok(default),
            Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
            Some(n) => Err(self.invalid(format!("{name} must be between 1 and {max}, got {n}."))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Form (awsQuery / ec2Query) input

/// Form parameters of an awsQuery or ec2Query request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    invalid: &'static str,
    missing: &'static str,
}

impl Params {
    pub fn parse(body: &[u8], query: &[(String, String)], invalid: &'static str, missing: &'static str) -> Params {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        pairs.extend(query.iter().cloned());
        Params { pairs, invalid, missing }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn req(&self, name: &str) -> AwsResult<&str> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AwsError::new(400, self.missing, format!("The request must contain the parameter {name}")))
    }

    pub fn invalid(&self, message: impl Into<String>) -> AwsError {
        AwsError::new(400, self.invalid, message)
    }

    pub fn bool(&self, name: &str) -> AwsResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(self.invalid(format!("Invalid value '{v}' for {name}: expected true or false"))),
        }
    }

    pub fn i64(&self, name: &str) -> AwsResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(format!("Invalid value '{v}' for {name}: expected an integer"))),
        }
    }

    /// Values of a flattened list: `Prefix.1`, `Prefix.2`, ... (ec2Query) or
    /// `Prefix.member.1`, ... (awsQuery), in index order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = Vec::new();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
            let rest = rest.strip_prefix("member.").unwrap_or(rest);
            if let Ok(i) = rest.parse::<u32>() {
                items.push((i, v.clone()));
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Sub-parameter groups of a list of structures: for `IpPermissions.1.FromPort=22`, returns
    /// one `Params` per index holding `FromPort=22`.
    pub fn structs(&self, prefix: &str) -> Vec<Params> {
        let mut groups: std::collections::BTreeMap<u32, Vec<(String, String)>> = Default::default();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
            let rest = rest.strip_prefix("member.").unwrap_or(rest);
            let Some((idx, field)) = rest.split_once('.') else { continue };
            if let Ok(i) = idx.parse::<u32>() {
                groups.entry(i).or_default().push((field.to_string(), v.clone()));
            }
        }
        groups.into_values().map(|pairs| Params { pairs, invalid: self.invalid, missing: self.missing }).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// XML output

/// A minimal XML writer: elements and escaped text, nothing more.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Xml {
        Xml { out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") }
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag}>");
        self
    }

    pub fn open_ns(&mut self, tag: &str, ns: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag} xmlns=\"{ns}\">");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "</{tag}>");
        self
    }

    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag}>");
        escape_into(&mut self.out, text);
        let _ = write!(self.out, "</{tag}>");
        self
    }

    pub fn leaf_opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `text` with XML's five special characters escaped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Case-sensitive wildcard match: `*` for any run of characters, `?` for one (EC2 filter values,
/// GuardDuty `matches`; IAM's case-insensitive matching builds on it).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// Parses a small XML document into (path, text) pairs, e.g.
/// `PublicAccessBlockConfiguration/BlockPublicAcls = true`. Enough for the request bodies the
/// emulated REST-XML operations take; malformed XML is `MalformedXML`.
pub fn parse_xml_leaves(body: &[u8]) -> AwsResult<Vec<(String, String)>> {
    use quick_xml::events::Event;
    let malformed = |m: String| {
        AwsError::new(
            400,
            "MalformedXML",
            format!("The XML you provided was not well-formed or did not validate against our published schema: {m}"),
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut seen_root = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                seen_root = true;
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(name);
                text.clear();
            }
            Ok(Event::End(_)) => {
                if !text.trim().is_empty() {
                    out.push((stack.join("/"), text.trim().to_string()));
                }
                text.clear();
                stack.pop();
            }
            Ok(Event::Empty(_)) => seen_root = true,
            Ok(Event::Text(t)) => {
                let raw = String::from_utf8_lossy(t.as_ref()).into_owned();
                let unescaped = quick_xml::escape::unescape(&raw).map_err(|e| malformed(e.to_string()))?;
                text.push_str(&unescaped);
            }
            Ok(Event::GeneralRef(r)) => {
                // quick-xml reports `&amp;` and `&#38;` as their own events.
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                match r.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return Err(malformed(format!("unknown entity &{name};"))),
                    },
                    Err(e) => return Err(malformed(e.to_string())),
                }
            }
            Ok(Event::CData(c)) => text.push_str(&String::from_utf8_lossy(c.as_ref())),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(malformed(e.to_string())),
        }
        buf.clear();
    }
    if !stack.is_empty() || !seen_root {
        return Err(malformed("unexpected end of document".into()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Time

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// ISO-8601 with milliseconds, UTC (`2026-11-22T18:51:54.123Z`), as restJson and XML carry it.
pub fn iso8601(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        millis
    )
}

/// Epoch seconds with a fraction, as awsJson1_1 carries timestamps.
pub fn epoch_seconds(ms: Millis) -> Value {
    serde_json::Number::from_f64(ms as f64 / 1000.0).map(Value::Number).unwrap_or(Value::Null)
}

/// Parses an ISO-8601 / RFC 3339 timestamp into epoch milliseconds.
pub fn parse_iso8601(s: &str) -> Option<Millis> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((dt.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trips() {
        let ms = 1_795_000_000_123;
        assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn query_lists_and_structs() {
        let p = Params::parse(
            b"GroupId.1=a&GroupId.2=b&IpPermissions.1.FromPort=22&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0&Names.member.2=y&Names.member.1=x",
            &[],
            "InvalidParameterValue",
            "MissingParameter",
        );
        assert_eq!(p.list("GroupId"), vec!["a", "b"]);
        assert_eq!(p.list("Names"), vec!["x", "y"]);
        let perms = p.structs("IpPermissions");
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].get("FromPort"), Some("22"));
        assert_eq!(perms[0].structs("IpRanges")[0].get("CidrIp"), Some("0.0.0.0/0"));
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        assert!(parse_xml_leaves(b"<a><b>").is_err());
        assert!(parse_xml_leaves(b"").is_err());
        let leaves = parse_xml_leaves(b"<C xmlns=\"x\"><BlockPublicAcls>true</BlockPublicAcls></C>").unwrap();
        assert_eq!(leaves, vec![("C/BlockPublicAcls".to_string(), "true".to_string())]);
        let leaves = parse_xml_leaves(b"<T><Key>a&amp;b&#33;</Key></T>").unwrap();
        assert_eq!(leaves, vec![("T/Key".to_string(), "a&b!".to_string())]);
        assert!(parse_xml_leaves(b"<T><Key>&bogus;</Key></T>").is_err());
    }

    #[test]
    fn credential_scope_from_header() {
        let req = Request {
            method: "POST".into(),
            path: "/".into(),
            query: vec![],
            headers: vec![(
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=AKID111111111111/20261122/eu-west-1/securityhub/aws4_request, SignedHeaders=host, Signature=x".into(),
            )],
            body: Bytes::new(),
            host: "127.0.0.1".into(),
        };
        let scope = credential_scope(&req).unwrap();
        assert_eq!(scope.access_key, "AKID111111111111");
        assert_eq!(scope.region, "eu-west-1");
        assert_eq!(scope.service, "securityhub");
    }
}
