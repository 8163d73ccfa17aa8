//! `orgsec_config_rule`: an AWS managed AWS Config rule in the provider's account and region.
//!
//! `input_parameters` is a JSON object. AWS Config hands every parameter to the rule as a string,
//! so numbers and booleans are accepted and sent as their JSON text (`90` is sent as `"90"`);
//! nested objects, arrays and null are refused at validation. The state keeps the configured
//! string as long as AWS's parameters mean the same, so key order, whitespace and `90` versus
//! `"90"` never show as a diff.
//!
//! Import: `terraform import orgsec_config_rule.this <rule-name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_config::types::{ConfigRule as AwsRule, ConfigRuleState, Owner, Scope, Source};

use super::config_recorder::valid_resource_type;
use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct ConfigRule;

const MAX_NAME: usize = 128;
const MAX_IDENTIFIER: usize = 256;
const MAX_DESCRIPTION: usize = 256;
const MAX_RESOURCE_TYPES: usize = 100;
/// The compliance of a rule that has evaluated nothing (yet).
const INSUFFICIENT_DATA: &str = "INSUFFICIENT_DATA";
/// How long a delete keeps retrying while AWS Config is still evaluating the rule.
const DELETE_DEADLINE: Duration = Duration::from_secs(120);
const DELETE_POLL: Duration = Duration::from_secs(3);

impl Resource for ConfigRule {
    fn type_name(&self) -> &'static str {
        "orgsec_config_rule"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "An AWS managed AWS Config rule in the provider's account and region. It needs the region's configuration recorder: declare an `orgsec_config_recorder` and make the rule depend on it. Rules evaluate only while the recorder records.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The rule name.").use_state_for_unknown(),
                    Attribute::required(
                        "name",
                        Type::String,
                        "The rule name, 1 to 128 characters. Changing it replaces the rule.",
                    )
                    .requires_replace(),
                    Attribute::required(
                        "source_identifier",
                        Type::String,
                        "The AWS managed rule to run, such as `S3_BUCKET_PUBLIC_READ_PROHIBITED` or `IAM_PASSWORD_POLICY` (upper-case letters, digits and `_`). Changed in place.",
                    ),
                    Attribute::optional(
                        "input_parameters",
                        Type::String,
                        "The rule's parameters as a JSON object, for example `jsonencode({ maxAccessKeyAge = \"90\" })`. Values are strings; numbers and booleans are accepted and passed to the rule as strings, as AWS Config does. Key order and whitespace never cause a diff. Changed in place.",
                    ),
                    Attribute::optional(
                        "resource_types",
                        Type::set(Type::String),
                        "The rule's scope: the resource types it evaluates, such as `AWS::S3::Bucket` (at most 100). Left out, the managed rule's own scope applies. Changed in place.",
                    ),
                    Attribute::optional(
                        "description",
                        Type::String,
                        "A description of the rule, up to 256 characters. Changed in place.",
                    ),
                    Attribute::computed("arn", Type::String, "ARN of the rule.").use_state_for_unknown(),
                    Attribute::computed(
                        "compliance",
                        Type::String,
                        "The rule's compliance when last read, from DescribeComplianceByConfigRule: `COMPLIANT`, `NON_COMPLIANT` or `INSUFFICIENT_DATA` (nothing evaluated yet, or the recorder is not recording).",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = config.get_attr("name").and_then(Value::as_str)
            && !valid_name(name)
        {
            diags.error_at(
                AttrPath::root("name"),
                "Invalid rule name",
                format!("\"{name}\" is not a valid rule name: it must be 1 to {MAX_NAME} characters, not all blank."),
            );
        }
        if let Some(id) = config.get_attr("source_identifier").and_then(Value::as_str)
            && !valid_identifier(id)
        {
            diags.error_at(
                AttrPath::root("source_identifier"),
                "Invalid source identifier",
                format!(
                    "\"{id}\" is not an AWS managed rule identifier: those are upper-case letters, digits and '_', such as S3_BUCKET_PUBLIC_READ_PROHIBITED. The AWS Config developer guide lists them."
                ),
            );
        }
        if let Some(text) = config.get_attr("input_parameters").and_then(Value::as_str)
            && let Err(why) = parse_parameters(text)
        {
            diags.error_at(AttrPath::root("input_parameters"), "Invalid input parameters", why);
        }
        if let Some(types) = config.get_attr("resource_types").and_then(Value::as_elements) {
            let path = AttrPath::root("resource_types");
            if types.len() > MAX_RESOURCE_TYPES {
                diags.error_at(
                    path.clone(),
                    "Too many resource types",
                    format!("A rule's scope names at most {MAX_RESOURCE_TYPES} resource types, not {}.", types.len()),
                );
            }
            for t in types.iter().filter_map(Value::as_str).filter(|t| !valid_resource_type(t)) {
                diags.error_at(
                    path.clone(),
                    "Invalid resource type",
                    format!("\"{t}\" is not a resource type: it must look like AWS::S3::Bucket."),
                );
            }
        }
        if let Some(d) = config.get_attr("description").and_then(Value::as_str)
            && d.chars().count() > MAX_DESCRIPTION
        {
            diags.error_at(
                AttrPath::root("description"),
                "Description too long",
                format!("The description has {} characters; AWS allows {MAX_DESCRIPTION}.", d.chars().count()),
            );
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = rule_name(planned) else {
                return Err(ctx.aws.error("creating the AWS Config rule", "the plan has no name".into()));
            };
            if find(&ctx.aws, &name).await?.is_some() {
                return Err(ctx.aws.error(
                    &format!("creating AWS Config rule {name}"),
                    format!(
                        "A rule named {name} already exists in account {}, region {}. Choose another name, or bring it under Terraform with: terraform import <address> {name}",
                        ctx.aws.account_id, ctx.aws.region
                    ),
                ));
            }
            put(&ctx.aws, &name, planned, &format!("creating AWS Config rule {name}")).await?;
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(ctx
                    .aws
                    .error("reading the AWS Config rule after creating it", format!("rule {name} is not there"))),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = rule_name(current) else {
                return Ok(None);
            };
            Ok(find(&ctx.aws, &name).await?.map(|found| state(current, &found)))
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = rule_name(prior) else {
                return Err(ctx.aws.error("updating the AWS Config rule", "the state has no name".into()));
            };
            put(&ctx.aws, &name, planned, &format!("updating AWS Config rule {name}")).await?;
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(ctx
                    .aws
                    .error("updating the AWS Config rule", format!("rule {name} was deleted outside Terraform"))),
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let Some(name) = rule_name(state) else {
                return Ok(());
            };
            let deadline = tokio::time::Instant::now() + DELETE_DEADLINE;
            loop {
                match ctx.aws.config().delete_config_rule().config_rule_name(&name).send().await {
                    Ok(_) => return Ok(()),
                    Err(e) if aws::code(&e) == Some("NoSuchConfigRuleException") => return Ok(()),
                    // AWS Config refuses while it is still evaluating the rule: poll, within bounds.
                    Err(e)
                        if aws::code(&e) == Some("ResourceInUseException")
                            && tokio::time::Instant::now() + DELETE_POLL < deadline =>
                    {
                        tokio::time::sleep(DELETE_POLL).await;
                    }
                    Err(e) => {
                        return Err(ctx.aws.error(&format!("deleting AWS Config rule {name}"), aws::describe(&e)));
                    }
                }
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            if find(&ctx.aws, id).await?.is_none() {
                let mut d = Diagnostics::default();
                d.error(
                    "Cannot import AWS Config rule",
                    format!(
                        "There is no rule \"{id}\" in account {}, region {}. The import id is the rule's name; list them with DescribeConfigRules.",
                        ctx.aws.account_id, ctx.aws.region
                    ),
                );
                return Err(d);
            }
            let mut attrs = self.schema().block.null_state();
            attrs.insert("id".into(), Value::String(id.to_string()));
            attrs.insert("name".into(), Value::String(id.to_string()));
            Ok(Value::Object(attrs))
        })
    }
}

/// Parses `input_parameters`: a JSON object whose values are strings, numbers or booleans.
/// Returns the parameters as AWS Config passes them to a rule, every value a string; the error
/// says what is wrong, for the diagnostic.
fn parse_parameters(text: &str) -> Result<BTreeMap<String, String>, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("input_parameters is not valid JSON: {e}."))?;
    let serde_json::Value::Object(members) = parsed else {
        return Err(format!(
            "input_parameters must be a JSON object of parameter names and values, such as {{\"maxAccessKeyAge\": \"90\"}}, not {}.",
            json_kind(&parsed)
        ));
    };
    let mut out = BTreeMap::new();
    for (key, value) in members {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "The value of parameter \"{key}\" is {}; AWS Config passes each parameter to the rule as a string. Give a string (a number or boolean is turned into one).",
                    json_kind(&other)
                ));
            }
        };
        out.insert(key, text);
    }
    Ok(out)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The JSON sent to AWS for `params`: keys sorted, values strings, no whitespace. No parameters
/// are sent as `{}`, so that an update that removes them clears them.
fn canonical(params: &BTreeMap<String, String>) -> String {
    serde_json::to_string(params).unwrap_or_else(|_| "{}".to_string())
}

/// Whether two `input_parameters` texts (`None`: no parameters) give a rule the same parameters.
/// Text that does not parse is only the same as identical text.
fn same_parameters(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |t: Option<&str>| match t {
        None => Some(BTreeMap::new()),
        Some(t) => parse_parameters(t).ok(),
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `input_parameters` for the state: the configured text (null included) when AWS's parameters
/// mean the same, else AWS's own text, so that a real change shows as drift.
fn parameters_state(configured: &Value, from_aws: Option<&str>) -> Value {
    let configured = if configured.is_unknown() { &Value::Null } else { configured };
    if same_parameters(configured.as_str(), from_aws) {
        configured.clone()
    } else {
        from_aws.map(str::to_string).into()
    }
}

/// What DescribeConfigRules and DescribeComplianceByConfigRule say about the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    name: String,
    arn: String,
    source_identifier: String,
    input_parameters: Option<String>,
    resource_types: BTreeSet<String>,
    description: Option<String>,
    compliance: String,
}

impl Found {
    fn from(rule: &AwsRule, compliance: String) -> Found {
        Found {
            name: rule.config_rule_name().unwrap_or_default().to_string(),
            arn: rule.config_rule_arn().unwrap_or_default().to_string(),
            source_identifier: rule.source().and_then(Source::source_identifier).unwrap_or_default().to_string(),
            input_parameters: rule.input_parameters().filter(|p| !p.is_empty()).map(str::to_string),
            resource_types: rule
                .scope()
                .map(|s| s.compliance_resource_types().iter().cloned().collect())
                .unwrap_or_default(),
            description: rule.description().map(str::to_string),
            compliance,
        }
    }
}

fn rule_name(v: &Value) -> Option<String> {
    super::name_or_id(v)
}

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_NAME).contains(&n) && !name.trim().is_empty()
}

fn valid_identifier(id: &str) -> bool {
    (1..=MAX_IDENTIFIER).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// PutConfigRule with the planned definition (creates or replaces the rule named `name`).
async fn put(aws: &Aws, name: &str, planned: &Value, doing: &str) -> Result<(), Diagnostics> {
    let identifier = planned.get_attr("source_identifier").and_then(Value::as_str).unwrap_or_default();
    let source = Source::builder()
        .owner(Owner::Aws)
        .source_identifier(identifier)
        .build()
        .map_err(|e| aws.error(doing, format!("cannot build the rule's source: {e}")))?;
    let mut rule = AwsRule::builder().config_rule_name(name).source(source);
    let params = match planned.get_attr("input_parameters").and_then(Value::as_str) {
        // Validation has already refused what does not parse.
        Some(text) => parse_parameters(text).map_err(|why| aws.error(doing, why))?,
        None => BTreeMap::new(),
    };
    rule = rule.input_parameters(canonical(&params));
    let types = super::string_set(planned.get_attr("resource_types").unwrap_or(&Value::Null));
    if !types.is_empty() {
        rule = rule.scope(Scope::builder().set_compliance_resource_types(Some(types.into_iter().collect())).build());
    }
    if let Some(d) = planned.get_attr("description").and_then(Value::as_str) {
        rule = rule.description(d);
    }
    match aws.config().put_config_rule().config_rule(rule.build()).send().await {
        Ok(_) => Ok(()),
        Err(e) if aws::code(&e) == Some("NoAvailableConfigurationRecorderException") => Err(aws.error(
            doing,
            format!(
                "AWS Config has no configuration recorder in account {}, region {}, and a rule cannot exist without one ({}). Add an orgsec_config_recorder resource and make this rule depend on it, e.g. depends_on = [orgsec_config_recorder.this], so that Terraform creates the recorder first and deletes it last.",
                aws.account_id,
                aws.region,
                aws::describe(&e)
            ),
        )),
        Err(e) => Err(aws.error(doing, aws::describe(&e))),
    }
}

/// The rule with its compliance, or `None` when it no longer exists (or is being deleted).
async fn find(aws: &Aws, name: &str) -> Result<Option<Found>, Diagnostics> {
    let cfg = aws.config();
    let doing = || format!("reading AWS Config rule {name}");
    let out = match cfg.describe_config_rules().config_rule_names(name).send().await {
        Ok(out) => out,
        Err(e) if aws::code(&e) == Some("NoSuchConfigRuleException") => return Ok(None),
        Err(e) => return Err(aws.error(&doing(), aws::describe(&e))),
    };
    let Some(rule) = out.config_rules().iter().find(|r| r.config_rule_name() == Some(name)) else {
        return Ok(None);
    };
    if rule
        .config_rule_state()
        .is_some_and(|s| matches!(s, ConfigRuleState::Deleting | ConfigRuleState::DeletingResults))
    {
        return Ok(None);
    }
    let compliance = match cfg.describe_compliance_by_config_rule().config_rule_names(name).send().await {
        Ok(out) => out
            .compliance_by_config_rules()
            .iter()
            .find(|c| c.config_rule_name() == Some(name))
            .and_then(|c| c.compliance())
            .and_then(|c| c.compliance_type())
            .map_or_else(|| INSUFFICIENT_DATA.to_string(), |t| t.as_str().to_string()),
        Err(e) if aws::code(&e) == Some("NoSuchConfigRuleException") => return Ok(None),
        Err(e) => return Err(aws.error(&doing(), aws::describe(&e))),
    };
    Ok(Some(Found::from(rule, compliance)))
}

/// The state after a call: what AWS Config reports, with the configured text of equivalent
/// input parameters and description kept.
fn state(base: &Value, found: &Found) -> Value {
    let kept = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown()).cloned().unwrap_or(Value::Null);
    let configured_types = !kept("resource_types").is_null();
    let resource_types = if found.resource_types.is_empty() && !configured_types {
        Value::Null
    } else {
        Value::Set(found.resource_types.iter().map(|t| Value::String(t.clone())).collect())
    };
    // An empty description is no description.
    let description = match (kept("description"), found.description.as_deref().unwrap_or_default()) {
        (d, aws) if d.as_str().unwrap_or_default() == aws => d,
        (_, aws) => Value::String(aws.to_string()),
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(found.name.clone()));
    attrs.insert("name".to_string(), Value::String(found.name.clone()));
    attrs.insert("source_identifier".to_string(), Value::String(found.source_identifier.clone()));
    attrs.insert(
        "input_parameters".to_string(),
        parameters_state(&kept("input_parameters"), found.input_parameters.as_deref()),
    );
    attrs.insert("resource_types".to_string(), resource_types);
    attrs.insert("description".to_string(), description);
    attrs.insert("arn".to_string(), Value::String(found.arn.clone()));
    attrs.insert("compliance".to_string(), Value::String(found.compliance.clone()));
    Value::Object(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn found(input_parameters: Option<&str>) -> Found {
        Found {
            name: "keys-rotated".into(),
            arn: "arn:aws:config:us-east-1:666666666666:config-rule/config-rule-abc123".into(),
            source_identifier: "ACCESS_KEYS_ROTATED".into(),
            input_parameters: input_parameters.map(str::to_string),
            resource_types: BTreeSet::new(),
            description: None,
            compliance: "COMPLIANT".into(),
        }
    }

    fn paths(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::default();
        ConfigRule.validate(config, &mut diags);
        diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect()
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in ConfigRule.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn parameters_parse_to_strings_whatever_their_json_type() {
        assert_eq!(
            parse_parameters(r#"{"maxAccessKeyAge": 90, "strict": true, "name": "x"}"#),
            Ok(params(&[("maxAccessKeyAge", "90"), ("name", "x"), ("strict", "true")]))
        );
        assert_eq!(parse_parameters("{}"), Ok(BTreeMap::new()));
        assert_eq!(parse_parameters(" {\n} "), Ok(BTreeMap::new()));
    }

    #[test]
    fn invalid_parameters_say_what_is_wrong() {
        let err = |t: &str| parse_parameters(t).err().unwrap_or_default();
        assert!(err("{not json").contains("not valid JSON"));
        assert!(err("").contains("not valid JSON"));
        assert!(err("[1, 2]").contains("not an array"));
        assert!(err("\"text\"").contains("not a string"));
        assert!(err(r#"{"ports": [22, 3389]}"#).contains("\"ports\" is an array"));
        assert!(err(r#"{"a": {"b": "c"}}"#).contains("\"a\" is an object"));
        assert!(err(r#"{"a": null}"#).contains("\"a\" is null"));
    }

    #[test]
    fn canonical_text_sorts_keys_and_drops_whitespace() {
        let p = parse_parameters("{ \"b\" : \"2\",\n \"a\": 1 }").unwrap_or_default();
        assert_eq!(canonical(&p), r#"{"a":"1","b":"2"}"#);
        assert_eq!(canonical(&BTreeMap::new()), "{}");
    }

    #[test]
    fn key_order_whitespace_and_value_types_do_not_make_parameters_differ() {
        assert!(same_parameters(Some(r#"{"a":"1","b":"2"}"#), Some("{ \"b\": 2,\n  \"a\": \"1\" }")));
        assert!(same_parameters(None, Some("{}")));
        assert!(same_parameters(Some(" { } "), None));
        assert!(!same_parameters(Some(r#"{"a":"1"}"#), Some(r#"{"a":"2"}"#)));
        assert!(!same_parameters(Some(r#"{"a":"1"}"#), None));
        assert!(!same_parameters(Some("not json"), Some("{}")));
        assert!(same_parameters(Some("not json"), Some("not json")));
    }

    #[test]
    fn state_keeps_the_configured_parameters_when_aws_means_the_same() {
        let configured = s("{ \"maxAccessKeyAge\": 90 }");
        let base = obj(&[("input_parameters", configured.clone())]);
        let st = state(&base, &found(Some(r#"{"maxAccessKeyAge":"90"}"#)));
        assert_eq!(st.get_attr("input_parameters"), Some(&configured));

        // Changed outside Terraform: AWS's text shows as drift.
        let st = state(&base, &found(Some(r#"{"maxAccessKeyAge":"30"}"#)));
        assert_eq!(st.get_attr("input_parameters"), Some(&s(r#"{"maxAccessKeyAge":"30"}"#)));

        // None configured: an empty object from AWS stays null, parameters added show.
        assert_eq!(state(&obj(&[]), &found(Some("{}"))).get_attr("input_parameters"), Some(&Value::Null));
        assert_eq!(state(&obj(&[]), &found(None)).get_attr("input_parameters"), Some(&Value::Null));
        assert_eq!(
            state(&obj(&[]), &found(Some(r#"{"a":"1"}"#))).get_attr("input_parameters"),
            Some(&s(r#"{"a":"1"}"#))
        );
        // Removed outside Terraform.
        assert_eq!(state(&base, &found(None)).get_attr("input_parameters"), Some(&Value::Null));
    }

    #[test]
    fn state_reports_scope_description_arn_and_compliance() {
        let st = state(&obj(&[]), &found(None));
        assert_eq!(st.get_attr("resource_types"), Some(&Value::Null));
        assert_eq!(st.get_attr("description"), Some(&Value::Null));
        assert_eq!(st.get_attr("compliance"), Some(&s("COMPLIANT")));
        assert_eq!(st.get_attr("id"), Some(&s("keys-rotated")));
        let scoped = Found {
            resource_types: ["AWS::IAM::User".to_string()].into(),
            description: Some("rotate keys".into()),
            ..found(None)
        };
        let st = state(&obj(&[]), &scoped);
        assert_eq!(st.get_attr("resource_types"), Some(&Value::Set(vec![s("AWS::IAM::User")])));
        assert_eq!(st.get_attr("description"), Some(&s("rotate keys")));
        let empty = obj(&[("description", s("")), ("resource_types", Value::Set(vec![]))]);
        let st = state(&empty, &found(None));
        assert_eq!(st.get_attr("description"), Some(&s("")));
        assert_eq!(st.get_attr("resource_types"), Some(&Value::Set(vec![])));
    }

    #[test]
    fn invalid_values_are_reported_on_their_attributes() {
        let config = obj(&[
            ("name", s("")),
            ("source_identifier", s("s3-bucket-public-read-prohibited")),
            ("input_parameters", s("{\"a\": ")),
            ("resource_types", Value::Set(vec![s("Bucket")])),
            ("description", s(&"d".repeat(257))),
        ]);
        assert_eq!(paths(&config), ["name", "source_identifier", "input_parameters", "resource_types", "description"]);
        assert_eq!(paths(&obj(&[("input_parameters", s("[]"))])), ["input_parameters"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        for config in [
            obj(&[
                ("name", s("s3-public-read")),
                ("source_identifier", s("S3_BUCKET_PUBLIC_READ_PROHIBITED")),
                ("input_parameters", s(r#"{"maxAccessKeyAge": 90}"#)),
                ("resource_types", Value::Set(vec![s("AWS::S3::Bucket")])),
            ]),
            obj(&[("name", Value::Unknown), ("input_parameters", Value::Unknown), ("resource_types", Value::Unknown)]),
        ] {
            assert!(paths(&config).is_empty(), "{config:?}");
        }
    }
}
