//! AWS Config (awsJson1_1, `StarlingDoveService`): the configuration recorder and delivery channel
//! of each account-region, managed rules whose evaluations are the same checks Security Hub
//! controls run (so a fix made through EC2, IAM or S3 flips both), and aggregators through which
//! the delegated administrator sees every member's compliance.
//!
//! Evaluations are computed from the world when asked for, and only while the account-region's
//! recorder is recording; otherwise a rule has no results and its compliance is
//! `INSUFFICIENT_DATA`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{AwsError, AwsResult};
use crate::services::{Call, decode_token, encode_token, known};
use crate::wire::{Input, Millis, Request, Response, epoch_seconds, parse_iso8601};
use crate::world::eval::{self, Check};
use crate::world::{ConfigRule, Recorder, World};

const TARGET_PREFIX: &str = "StarlingDoveService.";

const OPS: &[&str] = &[
    "PutConfigurationRecorder",
    "DescribeConfigurationRecorders",
    "DescribeConfigurationRecorderStatus",
    "StartConfigurationRecorder",
    "StopConfigurationRecorder",
    "DeleteConfigurationRecorder",
    "PutDeliveryChannel",
    "DescribeDeliveryChannels",
    "DeleteDeliveryChannel",
    "PutConfigRule",
    "DescribeConfigRules",
    "DeleteConfigRule",
    "DescribeComplianceByConfigRule",
    "DescribeComplianceByResource",
    "GetComplianceDetailsByConfigRule",
    "StartConfigRulesEvaluation",
    "PutConfigurationAggregator",
    "DescribeConfigurationAggregators",
    "DeleteConfigurationAggregator",
    "DescribeAggregateComplianceByConfigRules",
    "GetAggregateComplianceDetailsByConfigRule",
];

/// Resolves the operation from `X-Amz-Target: StarlingDoveService.<Op>`.
pub fn operation(req: &Request) -> Option<&'static str> {
    let target = req.header("x-amz-target")?;
    known(OPS, target.strip_prefix(TARGET_PREFIX)?)
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    // Malformed JSON is a serialization error; a well-formed body with wrong member types is a
    // validation error.
    let parsed = Input::parse(&call.req.body, "SerializationException")?;
    let input = Input::from_map(parsed.map().clone(), "ValidationException");
    let out = match op {
        "PutConfigurationRecorder" => put_recorder(call, &input),
        "DescribeConfigurationRecorders" => describe_recorders(call, &input),
        "DescribeConfigurationRecorderStatus" => describe_recorder_status(call, &input),
        "StartConfigurationRecorder" => set_recording(call, &input, true),
        "StopConfigurationRecorder" => set_recording(call, &input, false),
        "DeleteConfigurationRecorder" => delete_recorder(call, &input),
        "PutDeliveryChannel" => put_channel(call, &input),
        "DescribeDeliveryChannels" => describe_channels(call, &input),
        "DeleteDeliveryChannel" => delete_channel(call, &input),
        "PutConfigRule" => put_rule(call, &input),
        "DescribeConfigRules" => describe_rules(call, &input),
        "DeleteConfigRule" => delete_rule(call, &input),
        "DescribeComplianceByConfigRule" => compliance_by_rule(call, &input),
        "DescribeComplianceByResource" => compliance_by_resource(call, &input),
        "GetComplianceDetailsByConfigRule" => compliance_details(call, &input),
        "StartConfigRulesEvaluation" => start_rules_evaluation(call, &input),
        "PutConfigurationAggregator" => put_aggregator(call, &input),
        "DescribeConfigurationAggregators" => describe_aggregators(call, &input),
        "DeleteConfigurationAggregator" => delete_aggregator(call, &input),
        "DescribeAggregateComplianceByConfigRules" => aggregate_compliance(call, &input),
        "GetAggregateComplianceDetailsByConfigRule" => aggregate_details(call, &input),
        other => Err(AwsError::new(400, "UnknownOperationException", format!("Unknown operation {other}"))),
    }?;
    Ok(Response::json11(&out))
}

// ---------------------------------------------------------------------------------------------
// Input helpers

fn err(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, code, message)
}

fn validation(message: impl Into<String>) -> AwsError {
    err("ValidationException", message)
}

/// A name-like string of 1..=`max` characters.
fn check_name(field: &str, value: &str, max: usize) -> AwsResult<()> {
    let n = value.chars().count();
    if n == 0 || n > max || value.trim().is_empty() {
        return Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have length between 1 and {max}"
        )));
    }
    Ok(())
}

fn req_name(input: &Input, field: &str, max: usize) -> AwsResult<String> {
    let v = input.str(field)?.ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })?;
    check_name(field, v, max)?;
    Ok(v.to_string())
}

fn opt_name(input: &Input, field: &str, max: usize) -> AwsResult<Option<String>> {
    match input.str(field)? {
        None => Ok(None),
        Some(v) => {
            check_name(field, v, max)?;
            Ok(Some(v.to_string()))
        }
    }
}

/// `Limit`: 0 or absent means the default, which is also the maximum.
fn limit(input: &Input, field: &str, max: usize) -> AwsResult<usize> {
    match input.i64(field)? {
        None | Some(0) => Ok(max),
        Some(n) if n > 0 && (n as usize) <= max => Ok(n as usize),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value between 0 and {max}"
        ))),
    }
}

fn paginate<T>(items: Vec<T>, token: Option<&str>, size: usize) -> AwsResult<(Vec<T>, Option<String>)> {
    let start = match token {
        None => 0,
        Some(t) => decode_token(t)
            .filter(|o| *o <= items.len())
            .ok_or_else(|| err("InvalidNextTokenException", "The nextToken provided is invalid"))?,
    };
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| encode_token(end));
    Ok((items.into_iter().skip(start).take(end - start).collect(), next))
}

fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let (Some(t), Some(o)) = (next, out.as_object_mut()) {
        o.insert("NextToken".into(), Value::String(t));
    }
    out
}

const COMPLIANCE_TYPES: &[&str] = &["COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"];

fn check_compliance_type(field: &str, value: &str, allow_insufficient: bool) -> AwsResult<()> {
    if !COMPLIANCE_TYPES.contains(&value) {
        return Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA]"
        )));
    }
    if !allow_insufficient && value == "INSUFFICIENT_DATA" {
        return Err(err(
            "InvalidParameterValueException",
            "INSUFFICIENT_DATA is not a valid ComplianceType for filtering results.",
        ));
    }
    Ok(())
}

fn compliance_types(input: &Input, field: &str, allow_insufficient: bool) -> AwsResult<Vec<String>> {
    let types = input.strings(field)?;
    for t in &types {
        check_compliance_type(field, t, allow_insufficient)?;
    }
    Ok(types)
}

const FREQUENCIES: &[&str] = &["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"];

fn check_frequency(field: &str, value: &str) -> AwsResult<()> {
    if FREQUENCIES.contains(&value) {
        return Ok(());
    }
    Err(validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [One_Hour, Three_Hours, Six_Hours, Twelve_Hours, TwentyFour_Hours]"
    )))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn ms_or_null(ms: Option<Millis>) -> Value {
    ms.map(epoch_seconds).unwrap_or(Value::Null)
}

/// Drops null members so optional fields are absent rather than `null`.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration recorder

fn default_recording_group() -> Value {
    json!({"allSupported": true, "includeGlobalResourceTypes": false, "resourceTypes": []})
}

fn no_recorder(name: &str) -> AwsError {
    err(
        "NoSuchConfigurationRecorderException",
        format!("Cannot find configuration recorder with the specified name '{name}'."),
    )
}

fn put_recorder(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let rec = input.object("ConfigurationRecorder")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'configurationRecorder' failed to satisfy constraint: Member must not be null")
    })?;
    let name = opt_name(&rec, "name", 256)?.unwrap_or_else(|| "default".to_string());
    let role = rec.str("roleARN")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'configurationRecorder.roleARN' failed to satisfy constraint: Member must not be null")
    })?;
    let role_ok = role
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(acct, rest)| is_account_id(acct) && !rest.is_empty());
    if !role_ok {
        return Err(err("InvalidRoleException", format!("The role ARN '{role}' is not valid.")));
    }
    let group = match rec.object("recordingGroup")? {
        None => default_recording_group(),
        Some(g) => {
            let all = g.bool("allSupported")?.unwrap_or(false);
            let types = g.strings("resourceTypes")?;
            let global = g.bool("includeGlobalResourceTypes")?.unwrap_or(false);
            if all && !types.is_empty() {
                return Err(err(
                    "InvalidRecordingGroupException",
                    "The recording group provided is not valid: resourceTypes must be empty when allSupported is true.",
                ));
            }
            if global && !all {
                return Err(err(
                    "InvalidRecordingGroupException",
                    "The recording group provided is not valid: includeGlobalResourceTypes requires allSupported.",
                ));
            }
            Value::Object(g.map().clone())
        }
    };
    if let Some(mode) = rec.object("recordingMode")?
        && let Some(f) = mode.str("recordingFrequency")?
        && f != "CONTINUOUS"
        && f != "DAILY"
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{f}' at 'configurationRecorder.recordingMode.recordingFrequency' failed to satisfy constraint: Member must satisfy enum value set: [CONTINUOUS, DAILY]"
        )));
    }
    let account = call.account();
    let mut w = call.write();
    let cfg = &mut w.region_mut(account, call.region).config;
    if let Some(existing) = &cfg.recorder
        && existing.name != name
    {
        return Err(err(
            "MaxNumberOfConfigurationRecordersExceededException",
            format!(
                "Failed to put configuration recorder '{name}' because the maximum number of configuration recorders: 1 is reached."
            ),
        ));
    }
    cfg.recorder = Some(Recorder { name: name.clone(), role_arn: role.to_string(), recording_group: group });
    w.mutated("config:PutConfigurationRecorder", &name, account, call.region);
    Ok(json!({}))
}

/// Recording-group members are camelCase on the wire, whatever case they were stored in.
fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key =
                        chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default();
                    (key, camel_keys(v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn recorder_json(r: &Recorder) -> Value {
    let group = if r.recording_group.is_object() { camel_keys(&r.recording_group) } else { default_recording_group() };
    json!({
        "name": r.name,
        "roleARN": r.role_arn,
        "recordingGroup": group,
        "recordingMode": {"recordingFrequency": "CONTINUOUS"},
        "recordingScope": "PAID",
    })
}

fn describe_recorders(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = input.strings("ConfigurationRecorderNames")?;
    let w = call.read();
    let rec = w.region(call.account(), call.region).and_then(|r| r.config.recorder.as_ref());
    for n in &names {
        if rec.is_none_or(|r| &r.name != n) {
            return Err(no_recorder(n));
        }
    }
    let list: Vec<Value> = rec.map(recorder_json).into_iter().collect();
    Ok(json!({"ConfigurationRecorders": list}))
}

fn describe_recorder_status(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = input.strings("ConfigurationRecorderNames")?;
    let w = call.read();
    let cfg = w.region(call.account(), call.region).map(|r| &r.config);
    let rec = cfg.and_then(|c| c.recorder.as_ref());
    for n in &names {
        if rec.is_none_or(|r| &r.name != n) {
            return Err(no_recorder(n));
        }
    }
    let list: Vec<Value> = match (cfg, rec) {
        (Some(c), Some(r)) => {
            let changed = c.last_start_ms.max(c.last_stop_ms);
            vec![compact(json!({
                "name": r.name,
                "lastStartTime": ms_or_null(c.last_start_ms),
                "lastStopTime": ms_or_null(c.last_stop_ms),
                "recording": c.recording,
                "lastStatus": if c.last_start_ms.is_some() { "SUCCESS" } else { "PENDING" },
                "lastStatusChangeTime": ms_or_null(changed),
            }))]
        }
        _ => Vec::new(),
    };
    Ok(json!({"ConfigurationRecordersStatus": list}))
}

fn set_recording(call: &Call<'_>, input: &Input, on: bool) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationRecorderName", 256)?;
    let account = call.account();
    let mut w = call.write();
    let now = w.now();
    let cfg = &mut w.region_mut(account, call.region).config;
    if cfg.recorder.as_ref().is_none_or(|r| r.name != name) {
        return Err(no_recorder(&name));
    }
    if on {
        if cfg.delivery_channel.is_none() {
            return Err(err(
                "NoAvailableDeliveryChannelException",
                "Delivery channel is not available to start configuration recorder.",
            ));
        }
        cfg.recording = true;
        cfg.last_start_ms = Some(now);
    } else {
        cfg.recording = false;
        cfg.last_stop_ms = Some(now);
    }
    let op = if on { "config:StartConfigurationRecorder" } else { "config:StopConfigurationRecorder" };
    w.mutated(op, &name, account, call.region);
    Ok(json!({}))
}

fn delete_recorder(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationRecorderName", 256)?;
    let account = call.account();
    let mut w = call.write();
    let cfg = &mut w.region_mut(account, call.region).config;
    if cfg.recorder.as_ref().is_none_or(|r| r.name != name) {
        return Err(no_recorder(&name));
    }
    cfg.recorder = None;
    cfg.recording = false;
    w.mutated("config:DeleteConfigurationRecorder", &name, account, call.region);
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Delivery channel

fn channel_name(v: &Value) -> String {
    v.get("name").and_then(Value::as_str).unwrap_or("default").to_string()
}

fn no_channel(name: &str) -> AwsError {
    err("NoSuchDeliveryChannelException", format!("Cannot find delivery channel with specified name '{name}'."))
}

fn put_channel(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let ch = input.object("DeliveryChannel")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'deliveryChannel' failed to satisfy constraint: Member must not be null")
    })?;
    let name = opt_name(&ch, "name", 256)?.unwrap_or_else(|| "default".to_string());
    let bucket = ch.str("s3BucketName")?.unwrap_or_default().to_string();
    if bucket.is_empty() {
        return Err(err("NoSuchBucketException", "Cannot find a S3 bucket with an empty bucket name."));
    }
    let prefix = ch.str("s3KeyPrefix")?.map(str::to_string);
    if prefix.as_deref().is_some_and(|p| p.starts_with('/') || p.contains("AWSLogs")) {
        return Err(err(
            "InvalidS3KeyPrefixException",
            "The s3 key prefix must not start with '/' or contain 'AWSLogs'.",
        ));
    }
    let kms = ch.str("s3KmsKeyArn")?.map(str::to_string);
    if kms.as_deref().is_some_and(|k| !k.starts_with("arn:aws:kms:")) {
        return Err(err("InvalidS3KmsKeyArnException", "The KMS key ARN is not valid."));
    }
    let sns = ch.str("snsTopicARN")?.map(str::to_string);
    if sns.as_deref().is_some_and(|s| !s.starts_with("arn:aws:sns:")) {
        return Err(err("InvalidSNSTopicARNException", "The sns topic arn is not valid."));
    }
    let mut props = Value::Null;
    if let Some(p) = ch.object("configSnapshotDeliveryProperties")? {
        match p.str("deliveryFrequency")? {
            Some(f) => {
                check_frequency("deliveryChannel.configSnapshotDeliveryProperties.deliveryFrequency", f)?;
                props = json!({"deliveryFrequency": f});
            }
            None => props = json!({}),
        }
    }
    let account = call.account();
    let mut w = call.write();
    match w.buckets.get(&bucket) {
        None => {
            return Err(err("NoSuchBucketException", format!("Cannot find a S3 bucket with name '{bucket}'.")));
        }
        Some(b) if b.owner != account && !b.policy.as_deref().is_some_and(|p| p.contains("config.amazonaws.com")) => {
            return Err(err(
                "InsufficientDeliveryPolicyException",
                format!(
                    "Insufficient delivery policy to s3 bucket: {bucket}, unable to write to bucket, provided s3 key prefix is '{}'.",
                    prefix.as_deref().unwrap_or("null")
                ),
            ));
        }
        Some(_) => {}
    }
    let cfg = &mut w.region_mut(account, call.region).config;
    if cfg.recorder.is_none() {
        return Err(err(
            "NoAvailableConfigurationRecorderException",
            "Configuration recorder is not available to put delivery channel.",
        ));
    }
    if let Some(existing) = &cfg.delivery_channel
        && channel_name(existing) != name
    {
        return Err(err(
            "MaxNumberOfDeliveryChannelsExceededException",
            format!(
                "Failed to put delivery channel '{name}' because the maximum number of delivery channels: 1 is reached."
            ),
        ));
    }
    cfg.delivery_channel = Some(compact(json!({
        "name": name,
        "s3BucketName": bucket,
        "s3KeyPrefix": prefix,
        "s3KmsKeyArn": kms,
        "snsTopicARN": sns,
        "configSnapshotDeliveryProperties": props,
    })));
    w.mutated("config:PutDeliveryChannel", &name, account, call.region);
    Ok(json!({}))
}

fn describe_channels(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = input.strings("DeliveryChannelNames")?;
    let w = call.read();
    let ch = w.region(call.account(), call.region).and_then(|r| r.config.delivery_channel.as_ref());
    for n in &names {
        if ch.is_none_or(|c| &channel_name(c) != n) {
            return Err(no_channel(n));
        }
    }
    let list: Vec<Value> = ch
        .map(|c| {
            let mut m = c.as_object().cloned().unwrap_or_default();
            m.insert("name".into(), Value::String(channel_name(c)));
            compact(Value::Object(m))
        })
        .into_iter()
        .collect();
    Ok(json!({"DeliveryChannels": list}))
}

fn delete_channel(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "DeliveryChannelName", 256)?;
    let account = call.account();
    let mut w = call.write();
    let cfg = &mut w.region_mut(account, call.region).config;
    if cfg.delivery_channel.as_ref().is_none_or(|c| channel_name(c) != name) {
        return Err(no_channel(&name));
    }
    if cfg.recording {
        return Err(err(
            "LastDeliveryChannelDeleteFailedException",
            format!(
                "Failed to delete last specified delivery channel with name '{name}', because there is a running configuration recorder."
            ),
        ));
    }
    cfg.delivery_channel = None;
    w.mutated("config:DeleteDeliveryChannel", &name, account, call.region);
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Rules

fn no_rule(name: &str) -> AwsError {
    err(
        "NoSuchConfigRuleException",
        format!("The ConfigRule '{name}' provided in the request is invalid. Please check the configRule name."),
    )
}

const OWNERS: &[&str] = &["AWS", "CUSTOM_LAMBDA", "CUSTOM_POLICY"];

fn put_rule(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let r = input.object("ConfigRule")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'configRule' failed to satisfy constraint: Member must not be null")
    })?;
    let source = r.object("Source")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'configRule.source' failed to satisfy constraint: Member must not be null")
    })?;
    let owner = source.str("Owner")?.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'configRule.source.owner' failed to satisfy constraint: Member must not be null")
    })?;
    if !OWNERS.contains(&owner) {
        return Err(validation(format!(
            "1 validation error detected: Value '{owner}' at 'configRule.source.owner' failed to satisfy constraint: Member must satisfy enum value set: [CUSTOM_POLICY, CUSTOM_LAMBDA, AWS]"
        )));
    }
    let identifier = source.str("SourceIdentifier")?.unwrap_or_default().to_string();
    let _ = source.objects("SourceDetails")?;
    match owner {
        "AWS" => {
            let valid = !identifier.is_empty()
                && identifier.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(err(
                    "InvalidParameterValueException",
                    format!(
                        "The sourceIdentifier '{identifier}' is invalid. Please refer to the documentation for a list of valid sourceIdentifiers that can be used when AWS is the Owner."
                    ),
                ));
            }
        }
        "CUSTOM_LAMBDA" => {
            if !identifier.starts_with("arn:aws:lambda:") {
                return Err(err(
                    "InvalidParameterValueException",
                    "The sourceIdentifier of a CUSTOM_LAMBDA rule must be the ARN of a Lambda function.",
                ));
            }
        }
        _ => {
            if source.object("CustomPolicyDetails")?.is_none() {
                return Err(err(
                    "InvalidParameterValueException",
                    "CustomPolicyDetails is required when the Owner is CUSTOM_POLICY.",
                ));
            }
        }
    }
    let name = opt_name(&r, "ConfigRuleName", 128)?;
    let arn = r.str("ConfigRuleArn")?.map(str::to_string);
    let id = r.str("ConfigRuleId")?.map(str::to_string);
    let params = r.str("InputParameters")?.map(str::to_string);
    if let Some(p) = &params
        && !serde_json::from_str::<Value>(p).is_ok_and(|v| v.is_object())
    {
        return Err(err("InvalidParameterValueException", "Blank or invalid input parameters"));
    }
    let description = r.str("Description")?.map(str::to_string);
    if description.as_deref().is_some_and(|d| d.chars().count() > 256) {
        return Err(validation(
            "1 validation error detected: Value at 'configRule.description' failed to satisfy constraint: Member must have length less than or equal to 256",
        ));
    }
    let scope = match r.object("Scope")? {
        None => None,
        Some(s) => {
            let types = s.strings("ComplianceResourceTypes")?;
            if types.len() > 100 {
                return Err(validation("ComplianceResourceTypes must have at most 100 members."));
            }
            let _ = (s.str("TagKey")?, s.str("TagValue")?, s.str("ComplianceResourceId")?);
            if s.str("ComplianceResourceId")?.is_some() && types.len() != 1 {
                return Err(err(
                    "InvalidParameterValueException",
                    "ComplianceResourceId requires exactly one ComplianceResourceType.",
                ));
            }
            Some(Value::Object(s.map().clone()))
        }
    };
    let frequency = r.str("MaximumExecutionFrequency")?.map(str::to_string);
    if let Some(f) = &frequency {
        check_frequency("configRule.maximumExecutionFrequency", f)?;
    }

    let account = call.account();
    let region = call.region;
    let mut w = call.write();
    let (has_recorder, existing) = {
        let cfg = w.region(account, region).map(|r| &r.config);
        let existing = cfg.and_then(|c| match &name {
            Some(n) => c.rules.get(n).cloned(),
            None => c
                .rules
                .values()
                .find(|r| arn.as_deref() == Some(r.arn.as_str()) || id.as_deref() == Some(r.id.as_str()))
                .cloned(),
        });
        (cfg.is_some_and(|c| c.recorder.is_some()), existing)
    };
    if !has_recorder {
        return Err(err(
            "NoAvailableConfigurationRecorderException",
            "There are no configuration recorders available to provide the configuration item.",
        ));
    }
    let rule = match existing {
        Some(old) => {
            if arn.as_deref().is_some_and(|a| a != old.arn) || id.as_deref().is_some_and(|i| i != old.id) {
                return Err(err(
                    "InvalidParameterValueException",
                    "The ConfigRuleArn or ConfigRuleId does not match the rule named in the request.",
                ));
            }
            ConfigRule {
                name: old.name.clone(),
                arn: old.arn,
                id: old.id,
                source_owner: owner.to_string(),
                source_identifier: identifier,
                input_parameters: params,
                description,
                scope,
                maximum_execution_frequency: frequency,
                created_by: old.created_by,
            }
        }
        None => {
            let Some(name) = name else {
                return match (arn, id) {
                    (Some(a), _) => Err(no_rule(&a)),
                    (None, Some(i)) => Err(no_rule(&i)),
                    (None, None) => Err(err(
                        "InvalidParameterValueException",
                        "One of ConfigRuleName, ConfigRuleArn or ConfigRuleId is required.",
                    )),
                };
            };
            if arn.is_some() || id.is_some() {
                return Err(err(
                    "InvalidParameterValueException",
                    "ConfigRuleArn and ConfigRuleId can only be given to update an existing rule.",
                ));
            }
            let id = format!("config-rule-{}", w.ids.hex(6));
            ConfigRule {
                arn: format!("arn:aws:config:{region}:{account}:config-rule/{id}"),
                id,
                name,
                source_owner: owner.to_string(),
                source_identifier: identifier,
                input_parameters: params,
                description,
                scope,
                maximum_execution_frequency: frequency,
                created_by: None,
            }
        }
    };
    let rule_name = rule.name.clone();
    w.region_mut(account, region).config.rules.insert(rule_name.clone(), rule);
    w.mutated("config:PutConfigRule", &rule_name, account, region);
    Ok(json!({}))
}

fn rule_json(r: &ConfigRule) -> Value {
    let mut source = Map::new();
    source.insert("Owner".into(), json!(r.source_owner));
    if !r.source_identifier.is_empty() {
        source.insert("SourceIdentifier".into(), json!(r.source_identifier));
    }
    compact(json!({
        "ConfigRuleName": r.name,
        "ConfigRuleArn": r.arn,
        "ConfigRuleId": r.id,
        "Description": r.description,
        "Scope": r.scope,
        "Source": source,
        "InputParameters": r.input_parameters,
        "MaximumExecutionFrequency": r.maximum_execution_frequency,
        "ConfigRuleState": "ACTIVE",
        "CreatedBy": r.created_by,
        "EvaluationModes": [{"Mode": "DETECTIVE"}],
    }))
}

/// The rules of the caller's account-region named in `names` (all when empty), in name order.
fn select_rules(world: &World, account: &str, region: &str, names: &[String]) -> AwsResult<Vec<ConfigRule>> {
    let rules = world.region(account, region).map(|r| &r.config.rules);
    if names.is_empty() {
        return Ok(rules.map(|r| r.values().cloned().collect()).unwrap_or_default());
    }
    let mut out = Vec::new();
    for n in names {
        let rule = rules.and_then(|r| r.get(n)).ok_or_else(|| no_rule(n))?;
        if !out.iter().any(|r: &ConfigRule| &r.name == n) {
            out.push(rule.clone());
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn rule_names(input: &Input) -> AwsResult<Vec<String>> {
    let names = input.strings("ConfigRuleNames")?;
    if names.len() > 25 {
        return Err(validation(
            "1 validation error detected: Value at 'configRuleNames' failed to satisfy constraint: Member must have length less than or equal to 25",
        ));
    }
    for n in &names {
        check_name("configRuleNames", n, 128)?;
    }
    Ok(names)
}

fn describe_rules(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = rule_names(input)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let rules = select_rules(&w, call.account(), call.region, &names)?;
    let (page, next) = paginate(rules, token, 25)?;
    let list: Vec<Value> = page.iter().map(rule_json).collect();
    Ok(with_token(json!({"ConfigRules": list}), next))
}

fn delete_rule(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigRuleName", 128)?;
    let account = call.account();
    let mut w = call.write();
    let cfg = &mut w.region_mut(account, call.region).config;
    if cfg.rules.remove(&name).is_none() {
        return Err(no_rule(&name));
    }
    cfg.rule_evaluations.remove(&name);
    w.mutated("config:DeleteConfigRule", &name, account, call.region);
    Ok(json!({}))
}

fn start_rules_evaluation(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = rule_names(input)?;
    let account = call.account();
    let mut w = call.write();
    let now = w.now();
    let rules = select_rules(&w, account, call.region, &names)?;
    let cfg = &mut w.region_mut(account, call.region).config;
    for r in &rules {
        if cfg.rule_evaluations.get(&r.name).is_some_and(|t| now - *t < 60_000) {
            return Err(err(
                "LimitExceededException",
                format!("An evaluation of rule '{}' was started less than a minute ago; try again later.", r.name),
            ));
        }
    }
    for r in &rules {
        cfg.rule_evaluations.insert(r.name.clone(), now);
    }
    cfg.last_rules_evaluation_ms = Some(now);
    let joined = rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(",");
    w.mutated("config:StartConfigRulesEvaluation", &joined, account, call.region);
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Evaluations

/// One rule's verdict on one resource.
#[derive(Debug, Clone)]
struct Evaluation {
    resource_type: &'static str,
    resource_id: String,
    compliant: bool,
}

/// The Security Hub control whose check a managed rule is; `None` for rules the emulator does
/// not evaluate (custom rules, managed rules it has no check for).
fn rule_control(rule: &ConfigRule) -> Option<&'static str> {
    if rule.source_owner != "AWS" {
        return None;
    }
    Some(match rule.source_identifier.as_str() {
        "INCOMING_SSH_DISABLED" => "EC2.13",
        "RESTRICTED_INCOMING_TRAFFIC" => {
            let mut ports: Vec<i64> = rule
                .input_parameters
                .as_deref()
                .and_then(|p| serde_json::from_str::<Map<String, Value>>(p).ok())
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.starts_with("blockedPort"))
                        .filter_map(|(_, v)| match v {
                            Value::String(s) => s.trim().parse().ok(),
                            Value::Number(n) => n.as_i64(),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            ports.sort_unstable();
            ports.dedup();
            match ports.as_slice() {
                [22] => "EC2.13",
                [3389] => "EC2.14",
                _ => "EC2.19",
            }
        }
        "VPC_DEFAULT_SECURITY_GROUP_CLOSED" => "EC2.2",
        "VPC_SG_PORT_RESTRICTION_CHECK" => "EC2.53",
        "EC2_EBS_ENCRYPTION_BY_DEFAULT" => "EC2.7",
        "IAM_PASSWORD_POLICY" => "IAM.7",
        "ACCESS_KEYS_ROTATED" => "IAM.3",
        "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC" | "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS" => "S3.1",
        "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED" => "S3.8",
        "GUARDDUTY_ENABLED_CENTRALIZED" => "GuardDuty.1",
        _ => return None,
    })
}

/// What Config knows about one account-region: the checks, while its recorder is recording.
struct Recorded {
    checks: Option<Vec<Check>>,
    /// When evaluations were last invoked, per rule.
    invoked: BTreeMap<String, Millis>,
    default_invoked: Millis,
}

fn recorded(world: &World, account: &str, region: &str) -> Recorded {
    let now = world.now();
    let Some(rs) = world.region(account, region) else {
        return Recorded { checks: None, invoked: BTreeMap::new(), default_invoked: now };
    };
    let cfg = &rs.config;
    let recording = cfg.recorder.is_some() && cfg.recording;
    Recorded {
        checks: recording.then(|| eval::checks(world, account, region)),
        invoked: cfg.rule_evaluations.clone(),
        default_invoked: cfg.last_start_ms.unwrap_or(now),
    }
}

impl Recorded {
    fn invoked_ms(&self, rule: &str) -> Millis {
        self.invoked.get(rule).map_or(self.default_invoked, |t| (*t).max(self.default_invoked))
    }
}

/// Config's resource type and id for a check's resource.
fn config_resource(world: &World, account: &str, check: &Check) -> (&'static str, String) {
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    match check.resource_type {
        "AwsEc2SecurityGroup" => ("AWS::EC2::SecurityGroup", last(&check.resource_id)),
        "AwsAccount" => ("AWS::::Account", account.to_string()),
        "AwsIamUser" => {
            let id = world
                .accounts
                .get(account)
                .and_then(|a| a.iam.users.values().find(|u| u.arn == check.resource_id))
                .map(|u| u.id.clone())
                .unwrap_or_else(|| last(&check.resource_id));
            ("AWS::IAM::User", id)
        }
        "AwsS3Bucket" => (
            "AWS::S3::Bucket",
            check.resource_id.strip_prefix("arn:aws:s3:::").unwrap_or(&check.resource_id).to_string(),
        ),
        _ => ("AWS::::Account", account.to_string()),
    }
}

fn in_scope(rule: &ConfigRule, rtype: &str, rid: &str, check: &Check) -> bool {
    let Some(scope) = rule.scope.as_ref() else {
        return true;
    };
    let types: Vec<&str> = scope
        .get("ComplianceResourceTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !types.is_empty() && !types.contains(&rtype) {
        return false;
    }
    if scope.get("ComplianceResourceId").and_then(Value::as_str).is_some_and(|id| id != rid) {
        return false;
    }
    if let Some(key) = scope.get("TagKey").and_then(Value::as_str) {
        match check.tags.get(key) {
            None => return false,
            Some(v) => {
                if scope.get("TagValue").and_then(Value::as_str).is_some_and(|want| want != v) {
                    return false;
                }
            }
        }
    }
    true
}

/// The evaluations of a rule; empty when the recorder is off or the rule is not evaluated.
fn evaluations(world: &World, account: &str, rule: &ConfigRule, rec: &Recorded) -> Vec<Evaluation> {
    let (Some(checks), Some(control)) = (rec.checks.as_ref(), rule_control(rule)) else {
        return Vec::new();
    };
    let mut out: Vec<Evaluation> = checks
        .iter()
        .filter(|c| c.control == control)
        .filter_map(|c| {
            let (rtype, rid) = config_resource(world, account, c);
            in_scope(rule, rtype, &rid, c).then_some(Evaluation {
                resource_type: rtype,
                resource_id: rid,
                compliant: c.passed,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.resource_type, &a.resource_id).cmp(&(b.resource_type, &b.resource_id)));
    out
}

/// A rule's overall compliance type and its `Compliance` structure.
fn compliance(evals: &[Evaluation]) -> (&'static str, Value) {
    if evals.is_empty() {
        return ("INSUFFICIENT_DATA", json!({"ComplianceType": "INSUFFICIENT_DATA"}));
    }
    let failing = evals.iter().filter(|e| !e.compliant).count();
    if failing == 0 {
        return ("COMPLIANT", json!({"ComplianceType": "COMPLIANT"}));
    }
    (
        "NON_COMPLIANT",
        json!({
            "ComplianceType": "NON_COMPLIANT",
            "ComplianceContributorCount": {"CappedCount": failing.min(100), "CapExceeded": failing > 100},
        }),
    )
}

fn compliance_word(compliant: bool) -> &'static str {
    if compliant { "COMPLIANT" } else { "NON_COMPLIANT" }
}

fn evaluation_result(rule: &str, e: &Evaluation, invoked: Millis, place: Option<(&str, &str)>) -> Value {
    let ts = epoch_seconds(invoked);
    let mut v = json!({
        "EvaluationResultIdentifier": {
            "EvaluationResultQualifier": {
                "ConfigRuleName": rule,
                "ResourceType": e.resource_type,
                "ResourceId": e.resource_id,
                "EvaluationMode": "DETECTIVE",
            },
            "OrderingTimestamp": ts,
        },
        "ComplianceType": compliance_word(e.compliant),
        "ResultRecordedTime": ts,
        "ConfigRuleInvokedTime": ts,
    });
    if let (Some((account, region)), Some(o)) = (place, v.as_object_mut()) {
        o.insert("AccountId".into(), json!(account));
        o.insert("AwsRegion".into(), json!(region));
    }
    v
}

fn compliance_by_rule(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = rule_names(input)?;
    let types = compliance_types(input, "ComplianceTypes", true)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let (account, region) = (call.account(), call.region);
    let rules = select_rules(&w, account, region, &names)?;
    let rec = recorded(&w, account, region);
    let items: Vec<Value> = rules
        .iter()
        .filter_map(|r| {
            let (kind, c) = compliance(&evaluations(&w, account, r, &rec));
            (types.is_empty() || types.iter().any(|t| t == kind))
                .then(|| json!({"ConfigRuleName": r.name, "Compliance": c}))
        })
        .collect();
    let (page, next) = paginate(items, token, 100)?;
    Ok(with_token(json!({"ComplianceByConfigRules": page}), next))
}

fn compliance_by_resource(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let rtype = input.str("ResourceType")?.map(str::to_string);
    let rid = input.str("ResourceId")?.map(str::to_string);
    if rid.is_some() && rtype.is_none() {
        return Err(err("InvalidParameterValueException", "ResourceType is required when ResourceId is given."));
    }
    let types = compliance_types(input, "ComplianceTypes", true)?;
    let size = limit(input, "Limit", 100)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let (account, region) = (call.account(), call.region);
    let rules = select_rules(&w, account, region, &[])?;
    let rec = recorded(&w, account, region);
    // (type, id) -> number of rules it fails, and whether any rule evaluated it.
    let mut by_resource: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    for r in &rules {
        for e in evaluations(&w, account, r, &rec) {
            if rtype.as_deref().is_some_and(|t| t != e.resource_type)
                || rid.as_deref().is_some_and(|i| i != e.resource_id)
            {
                continue;
            }
            *by_resource.entry((e.resource_type, e.resource_id)).or_default() += usize::from(!e.compliant);
        }
    }
    let mut items: Vec<(String, Value)> = by_resource
        .into_iter()
        .map(|((t, id), failing)| {
            let c = if failing == 0 {
                json!({"ComplianceType": "COMPLIANT"})
            } else {
                json!({"ComplianceType": "NON_COMPLIANT",
                       "ComplianceContributorCount": {"CappedCount": failing.min(100), "CapExceeded": failing > 100}})
            };
            let kind = if failing == 0 { "COMPLIANT" } else { "NON_COMPLIANT" };
            (kind.to_string(), json!({"ResourceType": t, "ResourceId": id, "Compliance": c}))
        })
        .collect();
    if items.is_empty()
        && let (Some(t), Some(id)) = (&rtype, &rid)
    {
        items.push((
            "INSUFFICIENT_DATA".into(),
            json!({"ResourceType": t, "ResourceId": id, "Compliance": {"ComplianceType": "INSUFFICIENT_DATA"}}),
        ));
    }
    let items: Vec<Value> =
        items.into_iter().filter(|(k, _)| types.is_empty() || types.contains(k)).map(|(_, v)| v).collect();
    let (page, next) = paginate(items, token, size)?;
    Ok(with_token(json!({"ComplianceByResources": page}), next))
}

fn compliance_details(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigRuleName", 128)?;
    let types = compliance_types(input, "ComplianceTypes", false)?;
    let size = limit(input, "Limit", 100)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let (account, region) = (call.account(), call.region);
    let rule = select_rules(&w, account, region, std::slice::from_ref(&name))?;
    let rec = recorded(&w, account, region);
    let invoked = rec.invoked_ms(&name);
    let items: Vec<Value> = rule
        .iter()
        .flat_map(|r| evaluations(&w, account, r, &rec))
        .filter(|e| types.is_empty() || types.iter().any(|t| t == compliance_word(e.compliant)))
        .map(|e| evaluation_result(&name, &e, invoked, None))
        .collect();
    let (page, next) = paginate(items, token, size)?;
    Ok(with_token(json!({"EvaluationResults": page}), next))
}

// ---------------------------------------------------------------------------------------------
// Aggregators

fn no_aggregator(name: &str) -> AwsError {
    err("NoSuchConfigurationAggregatorException", format!("The configuration aggregator '{name}' does not exist."))
}

/// `AllAwsRegions` / `AwsRegions` of a source: exactly one of them.
fn source_regions(src: &Input, what: &str) -> AwsResult<Value> {
    let all = src.bool("AllAwsRegions")?.unwrap_or(false);
    let regions = src.strings("AwsRegions")?;
    if all != regions.is_empty() {
        return Err(err(
            "InvalidParameterValueException",
            format!("{what}: specify either AllAwsRegions as true or a list of AwsRegions, not both."),
        ));
    }
    Ok(if all { json!({"AllAwsRegions": true}) } else { json!({"AwsRegions": regions, "AllAwsRegions": false}) })
}

fn put_aggregator(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationAggregatorName", 256)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'configurationAggregatorName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w\\-]+"
        )));
    }
    let org_source = input.object("OrganizationAggregationSource")?;
    let account_sources = input.objects("AccountAggregationSources")?;
    if org_source.is_some() != account_sources.is_empty() {
        return Err(err(
            "InvalidParameterValueException",
            "Specify either AccountAggregationSources or OrganizationAggregationSource.",
        ));
    }
    let account = call.account();
    let region = call.region;
    let mut w = call.write();
    let source_field = match &org_source {
        Some(src) => {
            let role = src.str("RoleArn")?.ok_or_else(|| {
                validation("1 validation error detected: Value null at 'organizationAggregationSource.roleArn' failed to satisfy constraint: Member must not be null")
            })?;
            if !role.starts_with("arn:aws:iam::") || !role.contains(":role/") {
                return Err(err("InvalidRoleException", format!("The role ARN '{role}' is not valid.")));
            }
            let in_org = w.accounts.get(account).is_some_and(|a| a.in_org());
            let Some(org) = w.org.as_ref().filter(|_| in_org) else {
                return Err(err(
                    "NoAvailableOrganizationException",
                    "Organization is not available: the account is not a member of an organization.",
                ));
            };
            let allowed = org.management_account == account
                || org.delegated_admins.iter().any(|(a, p)| a == account && p.starts_with("config"));
            if !allowed {
                return Err(err(
                    "OrganizationAccessDeniedException",
                    "This action can only be performed if you are a registered delegated administrator for AWS Config with permissions to call ListDelegatedAdministrators API.",
                ));
            }
            let mut v = source_regions(src, "OrganizationAggregationSource")?;
            if let Some(o) = v.as_object_mut() {
                o.insert("RoleArn".into(), json!(role));
            }
            ("OrganizationAggregationSource", v)
        }
        None => {
            let mut list = Vec::new();
            for src in &account_sources {
                let ids = src.strings("AccountIds")?;
                if ids.is_empty() || ids.iter().any(|i| !is_account_id(i)) {
                    return Err(err(
                        "InvalidParameterValueException",
                        "AccountIds must be a non-empty list of 12-digit account ids.",
                    ));
                }
                let mut v = source_regions(src, "AccountAggregationSources")?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("AccountIds".into(), json!(ids));
                }
                list.push(v);
            }
            ("AccountAggregationSources", Value::Array(list))
        }
    };
    let now = w.now();
    let existing = w.region(account, region).and_then(|r| r.config.aggregators.get(&name)).cloned();
    let (arn, created) = match &existing {
        Some(old) => (
            old.get("ConfigurationAggregatorArn").and_then(Value::as_str).map(str::to_string),
            old.get("CreationTime").map(|v| timestamp(Some(v), now)),
        ),
        None => (None, None),
    };
    let arn = match arn {
        Some(a) => a,
        None => format!("arn:aws:config:{region}:{account}:config-aggregator/config-aggregator-{}", w.ids.hex(8)),
    };
    let mut agg = Map::new();
    agg.insert("ConfigurationAggregatorName".into(), json!(name));
    agg.insert("ConfigurationAggregatorArn".into(), json!(arn));
    agg.insert(source_field.0.into(), source_field.1);
    agg.insert("CreationTime".into(), created.unwrap_or_else(|| epoch_seconds(now)));
    agg.insert("LastUpdatedTime".into(), epoch_seconds(now));
    let agg = Value::Object(agg);
    w.region_mut(account, region).config.aggregators.insert(name.clone(), agg.clone());
    w.mutated("config:PutConfigurationAggregator", &name, account, region);
    Ok(json!({"ConfigurationAggregator": agg}))
}

/// A stored timestamp as epoch seconds: numbers too large to be seconds are milliseconds, strings
/// are ISO-8601, anything else is `now`.
fn timestamp(v: Option<&Value>, now: Millis) -> Value {
    match v {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f > 1e11 => epoch_seconds(f as Millis),
            Some(_) => Value::Number(n.clone()),
            None => epoch_seconds(now),
        },
        Some(Value::String(s)) => epoch_seconds(parse_iso8601(s).unwrap_or(now)),
        _ => epoch_seconds(now),
    }
}

/// An aggregator as the API returns it, whatever shape it was stored in.
fn aggregator_json(name: &str, stored: &Value, account: &str, region: &str, now: Millis) -> Value {
    let mut m = stored.as_object().cloned().unwrap_or_default();
    m.insert("ConfigurationAggregatorName".into(), json!(name));
    if !m.get("ConfigurationAggregatorArn").is_some_and(Value::is_string) {
        m.insert(
            "ConfigurationAggregatorArn".into(),
            json!(format!("arn:aws:config:{region}:{account}:config-aggregator/config-aggregator-{name}")),
        );
    }
    for k in ["CreationTime", "LastUpdatedTime"] {
        let ts = timestamp(m.get(k), now);
        m.insert(k.into(), ts);
    }
    if !m.contains_key("OrganizationAggregationSource") && !m.contains_key("AccountAggregationSources") {
        m.insert("OrganizationAggregationSource".into(), json!({"AllAwsRegions": true}));
    }
    Value::Object(m)
}

fn describe_aggregators(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let names = input.strings("ConfigurationAggregatorNames")?;
    let size = limit(input, "Limit", 100)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let (account, region) = (call.account(), call.region);
    let now = w.now();
    let aggs = w.region(account, region).map(|r| &r.config.aggregators);
    let selected: Vec<(&String, &Value)> = if names.is_empty() {
        aggs.map(|a| a.iter().collect()).unwrap_or_default()
    } else {
        let mut out = Vec::new();
        for n in &names {
            let found = aggs.and_then(|a| a.get_key_value(n)).ok_or_else(|| no_aggregator(n))?;
            out.push(found);
        }
        out
    };
    let items: Vec<Value> = selected.into_iter().map(|(n, v)| aggregator_json(n, v, account, region, now)).collect();
    let (page, next) = paginate(items, token, size)?;
    Ok(with_token(json!({"ConfigurationAggregators": page}), next))
}

fn delete_aggregator(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationAggregatorName", 256)?;
    let account = call.account();
    let mut w = call.write();
    if w.region_mut(account, call.region).config.aggregators.remove(&name).is_none() {
        return Err(no_aggregator(&name));
    }
    w.mutated("config:DeleteConfigurationAggregator", &name, account, call.region);
    Ok(json!({}))
}

/// The (account, region) pairs an aggregator covers, in order.
fn aggregated_places(world: &World, stored: &Value) -> Vec<(String, String)> {
    let regions_of = |account: &str, src: &Value| -> Vec<String> {
        if src.get("AllAwsRegions").and_then(Value::as_bool).unwrap_or(false) || src.get("AwsRegions").is_none() {
            world.regions.keys().filter(|(a, _)| a == account).map(|(_, r)| r.clone()).collect()
        } else {
            src.get("AwsRegions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default()
        }
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let account_sources = stored.get("AccountAggregationSources").and_then(Value::as_array);
    match (stored.get("OrganizationAggregationSource"), account_sources) {
        (None, Some(sources)) => {
            for src in sources {
                let ids = src.get("AccountIds").and_then(Value::as_array).cloned().unwrap_or_default();
                for id in ids.iter().filter_map(Value::as_str) {
                    for r in regions_of(id, src) {
                        out.push((id.to_string(), r));
                    }
                }
            }
        }
        (org, _) => {
            let src = org.cloned().unwrap_or_else(|| json!({"AllAwsRegions": true}));
            for a in world.accounts.values().filter(|a| a.in_org() && a.status == "ACTIVE") {
                for r in regions_of(&a.id, &src) {
                    out.push((a.id.clone(), r));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn stored_aggregator(world: &World, account: &str, region: &str, name: &str) -> AwsResult<Value> {
    world
        .region(account, region)
        .and_then(|r| r.config.aggregators.get(name))
        .cloned()
        .ok_or_else(|| no_aggregator(name))
}

fn aggregate_compliance(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationAggregatorName", 256)?;
    let filters = input.object("Filters")?;
    let f_rule = filters.as_ref().map(|f| f.str("ConfigRuleName")).transpose()?.flatten().map(str::to_string);
    let f_type = filters.as_ref().map(|f| f.str("ComplianceType")).transpose()?.flatten().map(str::to_string);
    let f_account = filters.as_ref().map(|f| f.str("AccountId")).transpose()?.flatten().map(str::to_string);
    let f_region = filters.as_ref().map(|f| f.str("AwsRegion")).transpose()?.flatten().map(str::to_string);
    if let Some(t) = &f_type
        && t != "COMPLIANT"
        && t != "NON_COMPLIANT"
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{t}' at 'filters.complianceType' failed to satisfy constraint: Member must satisfy enum value set: [COMPLIANT, NON_COMPLIANT]"
        )));
    }
    let size = limit(input, "Limit", 1000)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let stored = stored_aggregator(&w, call.account(), call.region, &name)?;
    let mut items = Vec::new();
    for (account, region) in aggregated_places(&w, &stored) {
        if f_account.as_deref().is_some_and(|a| a != account) || f_region.as_deref().is_some_and(|r| r != region) {
            continue;
        }
        let Some(rs) = w.region(&account, &region) else {
            continue;
        };
        if rs.config.rules.is_empty() {
            continue;
        }
        let rec = recorded(&w, &account, &region);
        for rule in rs.config.rules.values() {
            if f_rule.as_deref().is_some_and(|n| n != rule.name) {
                continue;
            }
            let (kind, c) = compliance(&evaluations(&w, &account, rule, &rec));
            if f_type.as_deref().is_some_and(|t| t != kind) {
                continue;
            }
            items
                .push(json!({"ConfigRuleName": rule.name, "Compliance": c, "AccountId": account, "AwsRegion": region}));
        }
    }
    let (page, next) = paginate(items, token, size)?;
    Ok(with_token(json!({"AggregateComplianceByConfigRules": page}), next))
}

fn aggregate_details(call: &Call<'_>, input: &Input) -> AwsResult<Value> {
    let name = req_name(input, "ConfigurationAggregatorName", 256)?;
    let rule_name = req_name(input, "ConfigRuleName", 128)?;
    let f_account = input.str("AccountId")?.map(str::to_string);
    if f_account.as_deref().is_some_and(|a| !is_account_id(a)) {
        return Err(validation(
            "1 validation error detected: Value at 'accountId' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{12}",
        ));
    }
    let f_region = input.str("AwsRegion")?.map(str::to_string);
    let f_type = input.str("ComplianceType")?.map(str::to_string);
    if let Some(t) = &f_type {
        check_compliance_type("complianceType", t, false)?;
    }
    let size = limit(input, "Limit", 100)?;
    let token = input.str("NextToken")?;
    let w = call.read();
    let stored = stored_aggregator(&w, call.account(), call.region, &name)?;
    let mut items = Vec::new();
    for (account, region) in aggregated_places(&w, &stored) {
        if f_account.as_deref().is_some_and(|a| a != account) || f_region.as_deref().is_some_and(|r| r != region) {
            continue;
        }
        let Some(rule) = w.region(&account, &region).and_then(|rs| rs.config.rules.get(&rule_name)) else {
            continue;
        };
        let rec = recorded(&w, &account, &region);
        let invoked = rec.invoked_ms(&rule_name);
        for e in evaluations(&w, &account, rule, &rec) {
            if f_type.as_deref().is_some_and(|t| t != compliance_word(e.compliant)) {
                continue;
            }
            items.push(evaluation_result(&rule_name, &e, invoked, Some((&account, &region))));
        }
    }
    let (page, next) = paginate(items, token, size)?;
    Ok(with_token(json!({"AggregateEvaluationResults": page}), next))
}
