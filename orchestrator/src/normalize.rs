//! Turning each source's documents into [`Finding`]s.
//!
//! Every function takes one document as raw JSON and either returns a finding or says why the
//! document cannot be one ([`Rejected`]): malformed JSON, a missing required field, or a document
//! larger than Security Hub accepts. A rejected document is counted and reported by the
//! collector; it never stops the documents around it. Pages are split into raw documents first
//! ([`page`]), so one bad finding cannot spoil its page.
//!
//! Parsing borrows from the input wherever it can: this is the hot path of collection.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::catalogue::Control;
use crate::finding::{Compliance, Finding, Severity, Source, Workflow, control_check_key};

/// The largest finding accepted: Security Hub's own limit for one ASFF finding (240 KB).
pub const MAX_FINDING_BYTES: usize = 240 * 1024;

/// The tag that sets a resource's (or an account's) criticality for scoring.
pub const CRITICALITY_TAG: &str = "orgsec:criticality";

/// Why a document is not a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejected {
    /// The document's id when it could be read.
    pub id: Option<String>,
    pub reason: String,
}

impl Rejected {
    fn new(id: Option<&str>, reason: impl Into<String>) -> Rejected {
        Rejected { id: id.map(str::to_string), reason: reason.into() }
    }
}

/// A page of a list response: its documents, raw, and the next token.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<&'a RawValue>,
    pub next_token: Option<String>,
}

/// Splits a list response `{"<key>": [...], "<token_key>": "..."}` into raw documents.
///
/// One pass over the body: the list's documents are borrowed as they are found and every other
/// member is skipped, so a page costs one scan here and one per document when it is normalized.
pub fn page<'a>(body: &'a str, key: &str, token_key: &str) -> Result<Page<'a>, String> {
    let problem = std::cell::RefCell::new(None);
    let seed = PageSeed { key, token_key, problem: &problem };
    let mut de = serde_json::Deserializer::from_str(body);
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|page| de.end().map(|()| page));
    parsed.map_err(|e| problem.into_inner().unwrap_or_else(|| format!("the response is not a JSON object: {e}")))
}

/// Reads a page as [`page`] describes; a member of the wrong shape leaves its own message in
/// `problem`, so that the error names it rather than the page.
struct PageSeed<'k> {
    key: &'k str,
    token_key: &'k str,
    problem: &'k std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Page<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Page<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed<'_> {
    type Value = Page<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Page<'de>, A::Error> {
        let mut page = Page { items: Vec::new(), next_token: None };
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if k == self.key {
                page.items = map
                    .next_value::<Option<Vec<&'de RawValue>>>()
                    .map_err(|e| {
                        *self.problem.borrow_mut() = Some(format!("`{}` is not a list: {e}", self.key));
                        e
                    })?
                    .unwrap_or_default();
            } else if k == self.token_key {
                page.next_token = map
                    .next_value::<Option<String>>()
                    .map_err(|e| {
                        *self.problem.borrow_mut() = Some(format!("`{}` is not a string: {e}", self.token_key));
                        e
                    })?
                    .filter(|t| !t.is_empty());
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(page)
    }
}

fn check_size(raw: &RawValue) -> Result<(), Rejected> {
    let n = raw.get().len();
    if n > MAX_FINDING_BYTES {
        // Find the id without parsing the whole document as a finding.
        #[derive(Deserialize)]
        struct IdOnly<'a> {
            #[serde(rename = "Id", alias = "id", borrow)]
            id: Option<Cow<'a, str>>,
        }
        let id = serde_json::from_str::<IdOnly<'_>>(raw.get()).ok().and_then(|d| d.id).map(|c| c.into_owned());
        return Err(Rejected { id, reason: format!("oversized: {n} bytes (the limit is {MAX_FINDING_BYTES})") });
    }
    Ok(())
}

/// Unix milliseconds from an ISO-8601 / RFC 3339 timestamp or a number of epoch seconds.
pub fn parse_time(value: &TimeValue<'_>) -> Option<i64> {
    match value {
        TimeValue::Text(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
        }
        TimeValue::Seconds(s) if s.is_finite() => Some((s * 1000.0).round() as i64),
        TimeValue::Seconds(_) => None,
    }
}

/// A timestamp as the wire carries it: text (REST JSON protocols) or epoch seconds (awsJson).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TimeValue<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Seconds(f64),
}

fn time_field(v: Option<&TimeValue<'_>>, name: &str, id: &str) -> Result<i64, Rejected> {
    let v = v.ok_or_else(|| Rejected::new(Some(id), format!("incomplete: {name} is missing")))?;
    parse_time(v).ok_or_else(|| Rejected::new(Some(id), format!("malformed: {name} is not a timestamp")))
}

/// Criticality from a tag map, when the tag holds a number.
pub fn criticality_tag(tags: &BTreeMap<String, String>) -> Option<f64> {
    tags.get(CRITICALITY_TAG).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------------
// Security Hub (ASFF)

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Asff<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    product_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    generator_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<TimeValue<'a>>,
    #[serde(borrow)]
    updated_at: Option<TimeValue<'a>>,
    severity: Option<AsffSeverity<'a>>,
    #[serde(borrow)]
    types: Option<Vec<Cow<'a, str>>>,
    workflow: Option<AsffWorkflow<'a>>,
    #[serde(borrow)]
    workflow_state: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record_state: Option<Cow<'a, str>>,
    compliance: Option<AsffCompliance<'a>>,
    #[serde(borrow)]
    resources: Option<Vec<AsffResource<'a>>>,
    #[serde(borrow)]
    product_fields: Option<AsffProductFields<'a>>,
}

/// The one product field read: the control id of findings that carry it nowhere else. The
/// others are skipped rather than collected, since every finding carries several.
#[derive(Deserialize)]
struct AsffProductFields<'a> {
    #[serde(rename = "ControlId", borrow)]
    control_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffSeverity<'a> {
    #[serde(borrow)]
    label: Option<Cow<'a, str>>,
    normalized: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffWorkflow<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffCompliance<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    security_control_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    tags: Option<BTreeMap<String, String>>,
}

/// The severity label for ASFF's normalized 0-100 severity.
fn severity_from_normalized(n: f64) -> Severity {
    match n {
        n if n >= 90.0 => Severity::Critical,
        n if n >= 70.0 => Severity::High,
        n if n >= 40.0 => Severity::Medium,
        n if n >= 1.0 => Severity::Low,
        _ => Severity::Informational,
    }
}

/// A Security Hub finding (ASFF), as GetFindings returns it. `region` is the region it was read
/// in, used when the document has no `Region`. `lookup` finds a control in the catalogue (for a
/// severity when the finding has none).
pub fn securityhub(
    raw: &RawValue,
    region: &str,
    lookup: impl Fn(&str) -> Option<&'static Control>,
) -> Result<Finding, Rejected> {
    check_size(raw)?;
    let mut d: Asff<'_> =
        serde_json::from_str(raw.get()).map_err(|e| Rejected::new(None, format!("malformed: {e}")))?;
    // The finding keeps the tags: moved out, not copied.
    let resource_tags =
        d.resources.as_mut().and_then(|r| r.first_mut()).and_then(|r| r.tags.take()).unwrap_or_default();
    let id =
        d.id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| Rejected::new(None, "incomplete: Id is missing"))?;
    let missing = |what: &str| Rejected::new(Some(id), format!("incomplete: {what} is missing"));
    let product_arn = d.product_arn.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("ProductArn"))?;
    let account = d.aws_account_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("AwsAccountId"))?;
    let resource = d.resources.as_ref().and_then(|r| r.first()).ok_or_else(|| missing("Resources"))?;
    let resource_id = resource.id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("Resources[0].Id"))?;
    let resource_type =
        resource.kind.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("Resources[0].Type"))?;
    let created_at = time_field(d.created_at.as_ref(), "CreatedAt", id)?;
    let updated_at = time_field(d.updated_at.as_ref(), "UpdatedAt", id)?;
    let region = d.region.as_deref().filter(|s| !s.is_empty()).unwrap_or(region);

    let control_id: Option<String> = d
        .compliance
        .as_ref()
        .and_then(|c| c.security_control_id.as_deref())
        .or_else(|| d.product_fields.as_ref().and_then(|p| p.control_id.as_deref()))
        .or_else(|| d.generator_id.as_deref().and_then(|g| g.strip_prefix("security-control/")))
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let severity = match d.severity.as_ref() {
        Some(AsffSeverity { label: Some(l), .. }) => {
            Severity::parse(l).ok_or_else(|| Rejected::new(Some(id), format!("malformed: Severity.Label {l}")))?
        }
        Some(AsffSeverity { normalized: Some(n), .. }) => severity_from_normalized(*n),
        _ => control_id.as_deref().and_then(&lookup).map(|c| c.severity).ok_or_else(|| missing("Severity"))?,
    };
    let workflow_status = match (d.workflow.as_ref().and_then(|w| w.status.as_deref()), d.workflow_state.as_deref()) {
        (Some(s), _) => {
            Workflow::parse(s).ok_or_else(|| Rejected::new(Some(id), format!("malformed: Workflow.Status {s}")))?
        }
        (None, Some("RESOLVED")) => Workflow::Resolved,
        (None, Some("DEFERRED")) => Workflow::Suppressed,
        _ => Workflow::New,
    };
    let compliance_status = match d.compliance.as_ref().and_then(|c| c.status.as_deref()) {
        Some(s) => Some(
            Compliance::parse(s).ok_or_else(|| Rejected::new(Some(id), format!("malformed: Compliance.Status {s}")))?,
        ),
        None => None,
    };
    let active = d.record_state.as_deref() != Some("ARCHIVED");
    let check_key = if product_arn.ends_with(":product/aws/guardduty") {
        threat_key(id)
    } else if product_arn.ends_with(":product/aws/access-analyzer") {
        exposure_key(id)
    } else if let Some(c) = control_id.as_deref() {
        control_check_key(account, region, c, resource_id)
    } else {
        format!("finding|{product_arn}|{id}")
    };
    Ok(Finding {
        uid: Finding::uid_of(Source::SecurityHub, product_arn, id),
        source: Source::SecurityHub,
        product_arn: product_arn.to_string(),
        id: id.to_string(),
        account_id: account.to_string(),
        region: region.to_string(),
        resource_type: resource_type.to_string(),
        resource_id: resource_id.to_string(),
        resource_tags,
        control_id,
        finding_type: d.types.as_ref().and_then(|t| t.first()).map(|t| t.to_string()),
        title: d.title.as_deref().unwrap_or_default().to_string(),
        severity,
        workflow_status,
        compliance_status,
        active,
        created_at,
        updated_at,
        check_key,
        raw: raw.get().to_string(),
    })
}

/// The check key of a GuardDuty finding, from its ARN (Security Hub's copy has it as its Id).
fn threat_key(finding_arn: &str) -> String {
    format!("threat|guardduty|{finding_arn}")
}

/// The check key of an Access Analyzer finding, `<analyzer ARN>/<finding id>` (Security Hub's
/// copy has it as its Id).
fn exposure_key(analyzer_finding: &str) -> String {
    format!("exposure|access-analyzer|{analyzer_finding}")
}

// ---------------------------------------------------------------------------------------------
// GuardDuty

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdFinding<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    severity: Option<f64>,
    #[serde(borrow)]
    created_at: Option<TimeValue<'a>>,
    #[serde(borrow)]
    updated_at: Option<TimeValue<'a>>,
    resource: Option<GdResource<'a>>,
    service: Option<GdService<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdResource<'a> {
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    instance_details: Option<GdInstance<'a>>,
    access_key_details: Option<GdAccessKey<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdInstance<'a> {
    #[serde(borrow)]
    instance_id: Option<Cow<'a, str>>,
    tags: Option<Vec<GdTag>>,
}

#[derive(Deserialize)]
struct GdTag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdAccessKey<'a> {
    #[serde(borrow)]
    access_key_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdService<'a> {
    archived: Option<bool>,
    #[serde(borrow)]
    detector_id: Option<Cow<'a, str>>,
}

/// A GuardDuty finding as GetFindings returns it, read in `region`.
pub fn guardduty(raw: &RawValue, region: &str) -> Result<Finding, Rejected> {
    check_size(raw)?;
    let d: GdFinding<'_> =
        serde_json::from_str(raw.get()).map_err(|e| Rejected::new(None, format!("malformed: {e}")))?;
    let id =
        d.id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| Rejected::new(None, "incomplete: id is missing"))?;
    let missing = |what: &str| Rejected::new(Some(id), format!("incomplete: {what} is missing"));
    let account = d.account_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("accountId"))?;
    let kind = d.kind.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("type"))?;
    let severity = d.severity.ok_or_else(|| missing("severity"))?;
    let created_at = time_field(d.created_at.as_ref(), "createdAt", id)?;
    let updated_at = time_field(d.updated_at.as_ref(), "updatedAt", id)?;
    let region = d.region.as_deref().filter(|s| !s.is_empty()).unwrap_or(region);
    let detector = d.service.as_ref().and_then(|s| s.detector_id.as_deref()).unwrap_or_default();
    let arn = match d.arn.as_deref().filter(|s| !s.is_empty()) {
        Some(a) => a.to_string(),
        None => format!("arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{id}"),
    };
    let (resource_type, resource_id, tags) = match d.resource.as_ref() {
        Some(r) if r.resource_type.as_deref() == Some("Instance") => {
            let inst = r.instance_details.as_ref();
            let iid = inst.and_then(|i| i.instance_id.as_deref()).unwrap_or_default();
            let tags = inst
                .and_then(|i| i.tags.as_ref())
                .map(|t| t.iter().map(|t| (t.key.clone(), t.value.clone())).collect())
                .unwrap_or_default();
            ("AwsEc2Instance".to_string(), format!("arn:aws:ec2:{region}:{account}:instance/{iid}"), tags)
        }
        Some(r) if r.resource_type.as_deref() == Some("AccessKey") => {
            let key = r.access_key_details.as_ref().and_then(|k| k.access_key_id.as_deref()).unwrap_or_default();
            ("AwsIamAccessKey".to_string(), format!("AWS::IAM::AccessKey:{key}"), BTreeMap::new())
        }
        Some(r) => {
            let t = r.resource_type.as_deref().unwrap_or("Other");
            (format!("Other{t}"), format!("AWS::::Account:{account}"), BTreeMap::new())
        }
        None => ("AwsAccount".to_string(), format!("AWS::::Account:{account}"), BTreeMap::new()),
    };
    let archived = d.service.as_ref().and_then(|s| s.archived).unwrap_or(false);
    let product_arn = format!("arn:aws:guardduty:{region}:{account}:detector/{detector}");
    Ok(Finding {
        uid: Finding::uid_of(Source::GuardDuty, &product_arn, id),
        source: Source::GuardDuty,
        check_key: threat_key(&arn),
        product_arn,
        id: id.to_string(),
        account_id: account.to_string(),
        region: region.to_string(),
        resource_type,
        resource_id,
        resource_tags: tags,
        control_id: None,
        finding_type: Some(kind.to_string()),
        title: d.title.as_deref().unwrap_or(kind).to_string(),
        severity: Severity::from_guardduty(severity),
        workflow_status: Workflow::New,
        compliance_status: None,
        active: !archived,
        created_at,
        updated_at,
        raw: raw.get().to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// AWS Config

/// The rule an evaluation belongs to.
#[derive(Debug, Clone)]
pub struct ConfigRule<'c> {
    pub account_id: &'c str,
    pub region: &'c str,
    pub name: &'c str,
    pub arn: &'c str,
    /// The Security Hub control the rule checks, when it checks one.
    pub control: Option<&'static Control>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Evaluation<'a> {
    evaluation_result_identifier: Option<EvalId<'a>>,
    #[serde(borrow)]
    compliance_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    result_recorded_time: Option<TimeValue<'a>>,
    #[serde(borrow)]
    config_rule_invoked_time: Option<TimeValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EvalId<'a> {
    #[serde(borrow)]
    evaluation_result_qualifier: Option<Qualifier<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Qualifier<'a> {
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_id: Option<Cow<'a, str>>,
}

/// Config's resource type (`AWS::EC2::SecurityGroup`) as ASFF spells it (`AwsEc2SecurityGroup`).
pub fn asff_resource_type(config_type: &str) -> String {
    let mut out = String::from("Aws");
    for part in config_type.split("::").skip(1).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            // A service name in capitals (EC2, IAM) is written Ec2, Iam; a resource name keeps
            // its camel case.
            let rest: String = chars.collect();
            if part.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                out.push_str(&rest.to_ascii_lowercase());
            } else {
                out.push_str(&rest);
            }
        }
    }
    out
}

/// The resource as Security Hub names it, so a Config evaluation and Security Hub's control
/// finding on one resource share a check key. Resources Config names by an opaque id (an IAM
/// user's `AIDA...`) keep that id.
pub fn asff_resource_id(config_type: &str, id: &str, account: &str, region: &str) -> String {
    match config_type {
        "AWS::EC2::SecurityGroup" => format!("arn:aws:ec2:{region}:{account}:security-group/{id}"),
        "AWS::EC2::Instance" => format!("arn:aws:ec2:{region}:{account}:instance/{id}"),
        "AWS::S3::Bucket" => format!("arn:aws:s3:::{id}"),
        "AWS::::Account" => format!("AWS::::Account:{account}"),
        _ => id.to_string(),
    }
}

/// One evaluation result of `rule` (GetComplianceDetailsByConfigRule).
pub fn config(raw: &RawValue, rule: &ConfigRule<'_>) -> Result<Finding, Rejected> {
    check_size(raw)?;
    let d: Evaluation<'_> =
        serde_json::from_str(raw.get()).map_err(|e| Rejected::new(None, format!("malformed: {e}")))?;
    let q = d
        .evaluation_result_identifier
        .as_ref()
        .and_then(|i| i.evaluation_result_qualifier.as_ref())
        .ok_or_else(|| Rejected::new(None, "incomplete: EvaluationResultIdentifier is missing"))?;
    let (Some(rtype), Some(rid)) = (q.resource_type.as_deref(), q.resource_id.as_deref()) else {
        return Err(Rejected::new(None, "incomplete: ResourceType or ResourceId is missing"));
    };
    let id = format!("{}/{rtype}/{rid}", rule.name);
    let compliance = match d.compliance_type.as_deref() {
        Some("NON_COMPLIANT") => Compliance::Failed,
        Some("COMPLIANT") => Compliance::Passed,
        Some("NOT_APPLICABLE" | "INSUFFICIENT_DATA") => Compliance::NotAvailable,
        Some(other) => return Err(Rejected::new(Some(&id), format!("malformed: ComplianceType {other}"))),
        None => return Err(Rejected::new(Some(&id), "incomplete: ComplianceType is missing")),
    };
    let updated_at = time_field(d.result_recorded_time.as_ref(), "ResultRecordedTime", &id)?;
    let created_at = d.config_rule_invoked_time.as_ref().and_then(parse_time).unwrap_or(updated_at);
    let resource_id = asff_resource_id(rtype, rid, rule.account_id, rule.region);
    let check_key = match rule.control {
        Some(c) => control_check_key(rule.account_id, rule.region, &c.id, &resource_id),
        None => format!("config|{}|{}|{}|{id}", rule.account_id, rule.region, rule.name),
    };
    let title = match rule.control {
        Some(c) => c.title.clone(),
        None => format!("Config rule {} reports {rtype} {rid} as non-compliant", rule.name),
    };
    Ok(Finding {
        uid: Finding::uid_of(Source::Config, rule.arn, &id),
        source: Source::Config,
        product_arn: rule.arn.to_string(),
        id,
        account_id: rule.account_id.to_string(),
        region: rule.region.to_string(),
        resource_type: asff_resource_type(rtype),
        resource_id,
        resource_tags: BTreeMap::new(),
        control_id: rule.control.map(|c| c.id.clone()),
        finding_type: Some("Software and Configuration Checks/AWS Config Analysis".to_string()),
        title,
        severity: rule.control.map_or(Severity::Medium, |c| c.severity),
        workflow_status: Workflow::New,
        compliance_status: Some(compliance),
        active: true,
        created_at,
        updated_at,
        check_key,
        raw: raw.get().to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// IAM Access Analyzer

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AaFinding<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_owner_account: Option<Cow<'a, str>>,
    is_public: Option<bool>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<TimeValue<'a>>,
    #[serde(borrow)]
    updated_at: Option<TimeValue<'a>>,
}

/// An Access Analyzer finding (ListFindings) of the analyzer `analyzer_arn`, read in `account`
/// and `region`.
pub fn access_analyzer(raw: &RawValue, analyzer_arn: &str, account: &str, region: &str) -> Result<Finding, Rejected> {
    check_size(raw)?;
    let d: AaFinding<'_> =
        serde_json::from_str(raw.get()).map_err(|e| Rejected::new(None, format!("malformed: {e}")))?;
    let id =
        d.id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| Rejected::new(None, "incomplete: id is missing"))?;
    let missing = |what: &str| Rejected::new(Some(id), format!("incomplete: {what} is missing"));
    let resource = d.resource.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("resource"))?;
    let rtype = d.resource_type.as_deref().ok_or_else(|| missing("resourceType"))?;
    let status = d.status.as_deref().ok_or_else(|| missing("status"))?;
    let updated_at = time_field(d.updated_at.as_ref(), "updatedAt", id)?;
    let created_at = d.created_at.as_ref().and_then(parse_time).unwrap_or(updated_at);
    let public = d.is_public.unwrap_or(false);
    let owner = d.resource_owner_account.as_deref().filter(|s| !s.is_empty()).unwrap_or(account);
    let (active, workflow) = match status {
        "ACTIVE" => (true, Workflow::New),
        "ARCHIVED" => (false, Workflow::Suppressed),
        "RESOLVED" => (false, Workflow::Resolved),
        other => return Err(Rejected::new(Some(id), format!("malformed: status {other}"))),
    };
    let what = if public { "allows public access" } else { "allows access from outside the zone of trust" };
    Ok(Finding {
        uid: Finding::uid_of(Source::AccessAnalyzer, analyzer_arn, id),
        source: Source::AccessAnalyzer,
        product_arn: analyzer_arn.to_string(),
        id: id.to_string(),
        account_id: owner.to_string(),
        region: region.to_string(),
        resource_type: asff_resource_type(rtype),
        resource_id: resource.to_string(),
        resource_tags: BTreeMap::new(),
        control_id: None,
        finding_type: Some(
            "Software and Configuration Checks/AWS Security Best Practices/External Access Granted".into(),
        ),
        title: format!("{rtype} {what}"),
        severity: if public { Severity::High } else { Severity::Low },
        workflow_status: workflow,
        compliance_status: None,
        active,
        created_at,
        updated_at,
        check_key: exposure_key(&format!("{analyzer_arn}/{id}")),
        raw: raw.get().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;

    fn raw(v: serde_json::Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn lookup(id: &str) -> Option<&'static Control> {
        catalogue().get(id)
    }

    fn control_finding() -> serde_json::Value {
        serde_json::json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:securityhub:us-east-1:333333333333:security-control/EC2.13/finding/abc",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "GeneratorId": "security-control/EC2.13",
            "AwsAccountId": "333333333333",
            "Region": "us-east-1",
            "Title": "Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22",
            "CreatedAt": "2026-11-01T10:00:00.000Z",
            "UpdatedAt": "2026-11-02T10:00:00.500Z",
            "Severity": {"Label": "HIGH", "Normalized": 70},
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
            "Workflow": {"Status": "NEW"},
            "RecordState": "ACTIVE",
            "Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.13"},
            "Resources": [{"Type": "AwsEc2SecurityGroup", "Id": "arn:aws:ec2:us-east-1:333333333333:security-group/sg-1",
                           "Tags": {"orgsec:criticality": "4"}}]
        })
    }

    #[test]
    fn a_control_finding_is_normalized() {
        let f = securityhub(&raw(control_finding()), "us-east-1", lookup).unwrap();
        assert_eq!(f.source, Source::SecurityHub);
        assert_eq!(f.control_id.as_deref(), Some("EC2.13"));
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.compliance_status, Some(Compliance::Failed));
        assert!(f.is_failing());
        assert_eq!(f.updated_at, 1_793_613_600_500);
        assert_eq!(criticality_tag(&f.resource_tags), Some(4.0));
        assert_eq!(
            f.check_key,
            "control|333333333333|us-east-1|EC2.13|arn:aws:ec2:us-east-1:333333333333:security-group/sg-1"
        );
        assert!(f.raw.contains("\"sg-1") || f.raw.contains("sg-1"));
    }

    #[test]
    fn incomplete_and_malformed_findings_are_rejected_with_a_reason() {
        let mut v = control_finding();
        v.as_object_mut().unwrap().remove("Resources");
        let e = securityhub(&raw(v), "us-east-1", lookup).unwrap_err();
        assert_eq!(
            e.id.as_deref(),
            Some("arn:aws:securityhub:us-east-1:333333333333:security-control/EC2.13/finding/abc")
        );
        assert!(e.reason.contains("Resources"), "{e}");

        let mut v = control_finding();
        v["UpdatedAt"] = serde_json::json!("yesterday");
        assert!(securityhub(&raw(v), "us-east-1", lookup).unwrap_err().reason.contains("UpdatedAt"));

        let e = securityhub(&raw(serde_json::json!({"Id": 7})), "us-east-1", lookup).unwrap_err();
        assert!(e.reason.starts_with("malformed"), "{e}");

        let mut v = control_finding();
        v["Description"] = serde_json::json!("x".repeat(MAX_FINDING_BYTES));
        let e = securityhub(&raw(v), "us-east-1", lookup).unwrap_err();
        assert!(e.reason.starts_with("oversized"), "{e}");
        assert!(e.id.is_some());
    }

    #[test]
    fn the_control_id_falls_back_to_product_fields_then_the_generator() {
        let mut v = control_finding();
        v["Compliance"].as_object_mut().unwrap().remove("SecurityControlId");
        v["GeneratorId"] = serde_json::json!("aws-foundational-security-best-practices/v/1.0.0/EC2.13");
        v["ProductFields"] =
            serde_json::json!({"StandardsArn": "arn:aws:securityhub:::standards/x", "ControlId": "EC2.2"});
        assert_eq!(securityhub(&raw(v.clone()), "us-east-1", lookup).unwrap().control_id.as_deref(), Some("EC2.2"));
        v["ProductFields"] = serde_json::json!({"StandardsArn": "arn:aws:securityhub:::standards/x"});
        v["GeneratorId"] = serde_json::json!("security-control/EC2.19");
        assert_eq!(securityhub(&raw(v.clone()), "us-east-1", lookup).unwrap().control_id.as_deref(), Some("EC2.19"));
        v.as_object_mut().unwrap().remove("GeneratorId");
        let f = securityhub(&raw(v), "us-east-1", lookup).unwrap();
        assert_eq!(f.control_id, None);
        assert!(f.check_key.starts_with("finding|"), "{}", f.check_key);
    }

    #[test]
    fn severity_falls_back_to_the_catalogue() {
        let mut v = control_finding();
        v.as_object_mut().unwrap().remove("Severity");
        v["Compliance"]["SecurityControlId"] = serde_json::json!("EC2.19");
        assert_eq!(securityhub(&raw(v), "us-east-1", lookup).unwrap().severity, Severity::Critical);
    }

    #[test]
    fn a_guardduty_finding_and_its_security_hub_copy_share_a_check() {
        let arn = "arn:aws:guardduty:us-east-1:333333333333:detector/d1/finding/f1";
        let gd = serde_json::json!({
            "id": "f1", "arn": arn, "accountId": "333333333333", "region": "us-east-1",
            "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "title": "mining", "severity": 8.0,
            "createdAt": "2026-11-01T10:00:00.000Z", "updatedAt": "2026-11-01T10:00:00.000Z",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1", "tags": [{"key": "team", "value": "web"}]}},
            "service": {"archived": false, "detectorId": "d1"}
        });
        let f = guardduty(&raw(gd), "us-east-1").unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.resource_id, "arn:aws:ec2:us-east-1:333333333333:instance/i-1");
        assert!(f.is_failing());
        let copy = serde_json::json!({
            "Id": arn, "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "AwsAccountId": "333333333333", "CreatedAt": "2026-11-01T10:00:00Z", "UpdatedAt": "2026-11-01T10:00:00Z",
            "Severity": {"Label": "HIGH"}, "Resources": [{"Type": "AwsEc2Instance", "Id": "x"}]
        });
        let c = securityhub(&raw(copy), "us-east-1", lookup).unwrap();
        assert_eq!(c.check_key, f.check_key);
        assert_ne!(c.uid, f.uid);
    }

    #[test]
    fn a_config_evaluation_shares_the_control_check() {
        let control = catalogue().get("EC2.13");
        let rule = ConfigRule {
            account_id: "333333333333",
            region: "us-east-1",
            name: "restricted-ssh",
            arn: "arn:aws:config:us-east-1:333333333333:config-rule/config-rule-1",
            control,
        };
        let ev = serde_json::json!({
            "EvaluationResultIdentifier": {"EvaluationResultQualifier": {"ConfigRuleName": "restricted-ssh",
                "ResourceType": "AWS::EC2::SecurityGroup", "ResourceId": "sg-1"}, "OrderingTimestamp": 1.7e9},
            "ComplianceType": "NON_COMPLIANT", "ResultRecordedTime": 1793613600.5, "ConfigRuleInvokedTime": 1793613600.0
        });
        let f = config(&raw(ev), &rule).unwrap();
        assert_eq!(f.resource_type, "AwsEc2SecurityGroup");
        assert_eq!(f.updated_at, 1_793_613_600_500);
        let sh = securityhub(&raw(control_finding()), "us-east-1", lookup).unwrap();
        assert_eq!(f.check_key, sh.check_key);
        assert!(f.is_failing());
    }

    #[test]
    fn resource_types_are_spelled_as_asff_does() {
        assert_eq!(asff_resource_type("AWS::EC2::SecurityGroup"), "AwsEc2SecurityGroup");
        assert_eq!(asff_resource_type("AWS::S3::Bucket"), "AwsS3Bucket");
        assert_eq!(asff_resource_type("AWS::IAM::User"), "AwsIamUser");
        assert_eq!(asff_resource_type("AWS::::Account"), "AwsAccount");
    }

    #[test]
    fn an_access_analyzer_finding_is_normalized() {
        let an = "arn:aws:access-analyzer:us-east-1:555555555555:analyzer/a";
        let v = serde_json::json!({"id": "x1", "resource": "arn:aws:s3:::b", "resourceType": "AWS::S3::Bucket",
            "resourceOwnerAccount": "555555555555", "isPublic": true, "status": "ACTIVE",
            "createdAt": "2026-11-01T10:00:00Z", "updatedAt": "2026-11-01T10:00:00Z", "analyzedAt": "2026-11-01T10:00:00Z"});
        let f = access_analyzer(&raw(v), an, "555555555555", "us-east-1").unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.check_key, format!("exposure|access-analyzer|{an}/x1"));
        assert!(f.is_failing());
    }

    #[test]
    fn pages_split_into_raw_documents() {
        let body = r#"{"Findings":[{"Id":"a"},{"Id":"b"}],"NextToken":"t"}"#;
        let p = page(body, "Findings", "NextToken").unwrap();
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.next_token.as_deref(), Some("t"));
        let p = page(r#"{"Findings":[]}"#, "Findings", "NextToken").unwrap();
        assert!(p.items.is_empty() && p.next_token.is_none());
        assert!(page("not json", "Findings", "NextToken").is_err());
    }

    #[test]
    fn a_page_of_the_wrong_shape_says_which_member_is_wrong() {
        let e = page(r#"{"Findings":7,"NextToken":"t"}"#, "Findings", "NextToken").unwrap_err();
        assert!(e.starts_with("`Findings` is not a list"), "{e}");
        let e = page(r#"{"Findings":[],"NextToken":5}"#, "Findings", "NextToken").unwrap_err();
        assert!(e.starts_with("`NextToken` is not a string"), "{e}");
        let e = page(r#"[{"Id":"a"}]"#, "Findings", "NextToken").unwrap_err();
        assert!(e.starts_with("the response is not a JSON object"), "{e}");
        let e = page(r#"{"Findings":[]} trailing"#, "Findings", "NextToken").unwrap_err();
        assert!(e.starts_with("the response is not a JSON object"), "{e}");
        // Other members are skipped whatever they hold; null list and token mean none.
        let p =
            page(r#"{"Other":{"Findings":[1]},"Findings":null,"NextToken":null}"#, "Findings", "NextToken").unwrap();
        assert!(p.items.is_empty() && p.next_token.is_none());
        let p = page(r#"{"findings":[{"id":"x"}],"nextToken":""}"#, "findings", "nextToken").unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(p.next_token.is_none(), "an empty token ends the list");
    }
}
