//! `orgsec_config_recorder`: the AWS Config configuration recorder of the provider's account and
//! region, with its delivery channel and recording status, as one resource.
//!
//! AWS orders the three parts strictly: the delivery channel needs a recorder, and starting the
//! recorder needs a channel. Create goes recorder -> channel -> start; delete goes stop -> channel
//! -> recorder. Read reports each part: the recorder gone means the resource is gone, while a
//! channel deleted or a recorder stopped outside Terraform is an in-place update.
//!
//! Import: `terraform import orgsec_config_recorder.this default` (the recorder name).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup, ResourceType};

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct ConfigRecorder;

/// AWS's own name for the recorder (and the delivery channel) when none is given.
const DEFAULT_NAME: &str = "default";
/// The longest recorder name AWS accepts.
const MAX_NAME: usize = 256;

impl Resource for ConfigRecorder {
    fn type_name(&self) -> &'static str {
        "orgsec_config_recorder"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "The AWS Config configuration recorder of the provider's account and region, with its delivery channel and recording status. An account has at most one recorder per region. Destroying it stops recording and deletes the delivery channel and the recorder; the recorded history in the bucket stays.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The recorder name.").use_state_for_unknown(),
                    Attribute::optional_computed(
                        "name",
                        Type::String,
                        "The recorder name, 1 to 256 characters. Defaults to `default`, AWS's own choice. Changing it replaces the recorder.",
                    )
                    .requires_replace()
                    .default_value(DEFAULT_NAME),
                    Attribute::required(
                        "role_arn",
                        Type::String,
                        "ARN of the IAM role AWS Config assumes to describe the account's resources, such as the service-linked role `arn:aws:iam::<account>:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig`.",
                    ),
                    Attribute::optional_computed(
                        "all_supported",
                        Type::Bool,
                        "Whether to record every supported resource type, including types AWS adds later. Defaults to `true`. Set `false` to record only `resource_types`.",
                    )
                    .default_value(true),
                    Attribute::optional_computed(
                        "include_global_resource_types",
                        Type::Bool,
                        "Whether to also record the global IAM resource types (users, groups, roles, customer managed policies). Defaults to `false`: they are the same in every region, so record them in one region only (the home region) or every region records and bills them again. Needs `all_supported = true`.",
                    )
                    .default_value(false),
                    Attribute::optional(
                        "resource_types",
                        Type::set(Type::String),
                        "With `all_supported = false`: the resource types to record, such as `AWS::S3::Bucket`.",
                    ),
                    Attribute::required(
                        "delivery_bucket",
                        Type::String,
                        "Name of the S3 bucket the delivery channel writes configuration history and snapshots to. The bucket must exist; a bucket in another account needs a policy that lets `config.amazonaws.com` write to it. Changed in place; other settings of an existing delivery channel are kept.",
                    ),
                    Attribute::optional_computed(
                        "recording",
                        Type::Bool,
                        "Whether the recorder records (StartConfigurationRecorder) or is stopped (StopConfigurationRecorder). Defaults to `true`. Config rules evaluate only while it records.",
                    )
                    .default_value(true),
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
                "Invalid recorder name",
                format!(
                    "\"{name}\" is not a valid recorder name: it must be 1 to {MAX_NAME} characters, not all blank."
                ),
            );
        }
        if let Some(arn) = config.get_attr("role_arn").and_then(Value::as_str)
            && !valid_role_arn(arn)
        {
            diags.error_at(
                AttrPath::root("role_arn"),
                "Invalid role ARN",
                format!(
                    "\"{arn}\" is not an IAM role ARN: it must look like arn:aws:iam::123456789012:role/NAME (a path may come before NAME)."
                ),
            );
        }
        if let Some(bucket) = config.get_attr("delivery_bucket").and_then(Value::as_str)
            && !valid_bucket_name(bucket)
        {
            diags.error_at(
                AttrPath::root("delivery_bucket"),
                "Invalid bucket name",
                format!(
                    "\"{bucket}\" is not an S3 bucket name: it must be 3 to 63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit."
                ),
            );
        }
        validate_recording_group(config, diags);
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let wanted = Settings::from(planned);
            let name = wanted.name.clone();
            if let Some(existing) = find_any(&ctx.aws).await? {
                return Err(ctx.aws.error(
                    &format!("creating AWS Config recorder {name}"),
                    format!(
                        "The account already has a configuration recorder in this region ({existing}), and AWS allows only one. Bring it under Terraform with: terraform import <address> {existing}"
                    ),
                ));
            }
            put_recorder(&ctx.aws, &wanted).await?;
            let channel = find_channel(&ctx.aws).await?;
            let rest = async {
                put_channel(&ctx.aws, &wanted, channel.as_ref()).await?;
                if wanted.recording {
                    start(&ctx.aws, &name).await?;
                }
                Ok::<(), Diagnostics>(())
            };
            if let Err(d) = rest.await {
                // Leave nothing half made behind: the next apply would find the recorder and fail.
                rollback(&ctx.aws, &name, channel.is_none()).await;
                return Err(d);
            }
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(ctx.aws.error(
                    "reading the AWS Config recorder after creating it",
                    format!("recorder {name} is not there"),
                )),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = recorder_name(current) else {
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
            let Some(name) = recorder_name(prior) else {
                return Err(ctx.aws.error("updating the AWS Config recorder", "the state has no name".into()));
            };
            let (before, wanted) = (Settings::from(prior), Settings { name: name.clone(), ..Settings::from(planned) });
            if before.recorder_differs(&wanted) {
                put_recorder(&ctx.aws, &wanted).await?;
            }
            // The channel as it is now, not as the state remembers it: it may be gone.
            let channel = find_channel(&ctx.aws).await?;
            if channel.as_ref().and_then(DeliveryChannel::s3_bucket_name) != Some(wanted.bucket.as_str()) {
                put_channel(&ctx.aws, &wanted, channel.as_ref()).await?;
            }
            match (before.recording, wanted.recording) {
                (false, true) => start(&ctx.aws, &name).await?,
                (true, false) => stop(&ctx.aws, &name).await?,
                _ => {}
            }
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(ctx.aws.error(
                    "updating the AWS Config recorder",
                    format!("recorder {name} was deleted outside Terraform"),
                )),
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let Some(name) = recorder_name(state) else {
                return Ok(());
            };
            // Reverse order: a running recorder keeps its channel from being deleted.
            match ctx.aws.config().stop_configuration_recorder().configuration_recorder_name(&name).send().await {
                Ok(_) => {}
                Err(e) if aws::code(&e) == Some("NoSuchConfigurationRecorderException") => {}
                Err(e) => {
                    return Err(ctx.aws.error(&format!("stopping AWS Config recorder {name}"), aws::describe(&e)));
                }
            }
            if let Some(channel) = find_channel(&ctx.aws).await? {
                delete_channel(&ctx.aws, channel.name().unwrap_or(DEFAULT_NAME)).await?;
            }
            match ctx.aws.config().delete_configuration_recorder().configuration_recorder_name(&name).send().await {
                Ok(_) => Ok(()),
                Err(e) if aws::code(&e) == Some("NoSuchConfigurationRecorderException") => Ok(()),
                Err(e) => Err(ctx.aws.error(&format!("deleting AWS Config recorder {name}"), aws::describe(&e))),
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            if find(&ctx.aws, id).await?.is_none() {
                let mut d = Diagnostics::default();
                d.error(
                    "Cannot import AWS Config recorder",
                    format!(
                        "There is no configuration recorder \"{id}\" in account {}, region {}. The import id is the recorder's name (usually \"default\"); list them with DescribeConfigurationRecorders.",
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

/// The checks between `all_supported`, `include_global_resource_types` and `resource_types`
/// that AWS would otherwise answer with InvalidRecordingGroupException at apply time.
fn validate_recording_group(config: &Value, diags: &mut Diagnostics) {
    // Left out means the default; unknown cannot be checked yet.
    let flag = |name: &str, default: bool| match config.get_attr(name) {
        None | Some(Value::Null) => Some(default),
        Some(v) => v.as_bool(),
    };
    let all = flag("all_supported", true);
    let global = flag("include_global_resource_types", false);
    let types = config.get_attr("resource_types").unwrap_or(&Value::Null);
    // An unknown list, or a list with an unknown element, may or may not name types yet.
    let any_types = types.as_elements().is_some_and(|es| !es.is_empty());
    let no_types = types.is_null() || types.as_elements().is_some_and(<[Value]>::is_empty);
    for t in types.as_elements().unwrap_or_default().iter().filter_map(Value::as_str) {
        if !valid_resource_type(t) {
            diags.error_at(
                AttrPath::root("resource_types"),
                "Invalid resource type",
                format!("\"{t}\" is not a resource type: it must look like AWS::S3::Bucket."),
            );
        }
    }
    match all {
        Some(true) if any_types => diags.error_at(
            AttrPath::root("resource_types"),
            "resource_types needs all_supported = false",
            "resource_types lists the only types to record, which contradicts recording all supported types. Set all_supported = false, or remove resource_types.",
        ),
        Some(false) if no_types => diags.error_at(
            AttrPath::root("all_supported"),
            "Nothing to record",
            "With all_supported = false the recorder records only the types in resource_types, and there are none. Name them in resource_types, or set all_supported = true.",
        ),
        _ => {}
    }
    if all == Some(false) && global == Some(true) {
        diags.error_at(
            AttrPath::root("include_global_resource_types"),
            "include_global_resource_types needs all_supported = true",
            "AWS records the global IAM types this way only when it records all supported types. With all_supported = false, list the IAM types in resource_types instead.",
        );
    }
}

/// What the plan (or state) asks of the recorder, its channel and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    name: String,
    role_arn: String,
    all_supported: bool,
    include_global: bool,
    resource_types: BTreeSet<String>,
    bucket: String,
    recording: bool,
}

impl Settings {
    fn from(v: &Value) -> Settings {
        let text = |name: &str| v.get_attr(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let flag = |name: &str, default: bool| v.get_attr(name).and_then(Value::as_bool).unwrap_or(default);
        Settings {
            name: recorder_name(v).unwrap_or_else(|| DEFAULT_NAME.to_string()),
            role_arn: text("role_arn"),
            all_supported: flag("all_supported", true),
            include_global: flag("include_global_resource_types", false),
            resource_types: super::string_set(v.get_attr("resource_types").unwrap_or(&Value::Null)),
            bucket: text("delivery_bucket"),
            recording: flag("recording", true),
        }
    }

    /// Whether PutConfigurationRecorder is needed to go from `self` to `wanted`.
    fn recorder_differs(&self, wanted: &Settings) -> bool {
        (&self.role_arn, self.all_supported, self.include_global, &self.resource_types)
            != (&wanted.role_arn, wanted.all_supported, wanted.include_global, &wanted.resource_types)
    }

    fn recording_group(&self) -> RecordingGroup {
        let mut group = RecordingGroup::builder()
            .all_supported(self.all_supported)
            .include_global_resource_types(self.include_global);
        for t in &self.resource_types {
            group = group.resource_types(ResourceType::from(t.as_str()));
        }
        group.build()
    }
}

/// What AWS Config says about the recorder, the account-region's delivery channel and whether the
/// recorder records.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    role_arn: String,
    all_supported: bool,
    include_global: bool,
    resource_types: BTreeSet<String>,
    channel: Option<DeliveryChannel>,
    recording: bool,
}

impl Found {
    fn bucket(&self) -> Option<&str> {
        self.channel.as_ref().and_then(DeliveryChannel::s3_bucket_name).filter(|b| !b.is_empty())
    }
}

fn recorder_name(v: &Value) -> Option<String> {
    super::name_or_id(v)
}

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_NAME).contains(&n) && !name.trim().is_empty()
}

/// `arn:<partition>:iam::<12 digits>:role/<path and name>`.
fn valid_role_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:") else { return false };
    let Some((partition, rest)) = rest.split_once(":iam::") else { return false };
    let Some((account, role)) = rest.split_once(":role/") else { return false };
    partition.starts_with("aws")
        && partition.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && !role.ends_with('/')
        && !role.contains(char::is_whitespace)
}

/// S3's bucket naming rules (general purpose buckets).
fn valid_bucket_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..")
}

/// `AWS::S3::Bucket`: three non-empty parts joined by `::`.
pub(crate) fn valid_resource_type(t: &str) -> bool {
    let parts: Vec<&str> = t.split("::").collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

/// The recorder, with the channel and status, or `None` when the recorder no longer exists.
async fn find(aws: &Aws, name: &str) -> Result<Option<Found>, Diagnostics> {
    let cfg = aws.config();
    let doing = || format!("reading AWS Config recorder {name}");
    let out = match cfg.describe_configuration_recorders().configuration_recorder_names(name).send().await {
        Ok(out) => out,
        Err(e) if aws::code(&e) == Some("NoSuchConfigurationRecorderException") => return Ok(None),
        Err(e) => return Err(aws.error(&doing(), aws::describe(&e))),
    };
    let Some(rec) = out.configuration_recorders().iter().find(|r| r.name() == Some(name)) else {
        return Ok(None);
    };
    let recording = match cfg.describe_configuration_recorder_status().configuration_recorder_names(name).send().await {
        Ok(out) => out.configuration_recorders_status().iter().any(|s| s.name() == Some(name) && s.recording()),
        Err(e) if aws::code(&e) == Some("NoSuchConfigurationRecorderException") => return Ok(None),
        Err(e) => return Err(aws.error(&doing(), aws::describe(&e))),
    };
    let group = rec.recording_group();
    Ok(Some(Found {
        name: name.to_string(),
        role_arn: rec.role_arn().unwrap_or_default().to_string(),
        // AWS's defaults when the recorder has no recording group.
        all_supported: group.is_none_or(RecordingGroup::all_supported),
        include_global: group.is_some_and(RecordingGroup::include_global_resource_types),
        resource_types: group
            .map(|g| g.resource_types().iter().map(|t| t.as_str().to_string()).collect())
            .unwrap_or_default(),
        channel: find_channel(aws).await?,
        recording,
    }))
}

/// The name of the account-region's customer-managed recorder, if it has one (service-linked
/// recorders, which AWS services create for themselves, do not count).
async fn find_any(aws: &Aws) -> Result<Option<String>, Diagnostics> {
    match aws.config().describe_configuration_recorders().send().await {
        Ok(out) => Ok(out
            .configuration_recorders()
            .iter()
            .filter(|r| r.service_principal().is_none())
            .find_map(|r| r.name().map(str::to_string))),
        Err(e) => Err(aws.error("listing AWS Config recorders", aws::describe(&e))),
    }
}

/// The account-region's delivery channel (there is at most one), if any.
async fn find_channel(aws: &Aws) -> Result<Option<DeliveryChannel>, Diagnostics> {
    match aws.config().describe_delivery_channels().send().await {
        Ok(out) => Ok(out.delivery_channels().first().cloned()),
        Err(e) => Err(aws.error("reading the AWS Config delivery channel", aws::describe(&e))),
    }
}

async fn put_recorder(aws: &Aws, s: &Settings) -> Result<(), Diagnostics> {
    let recorder = ConfigurationRecorder::builder()
        .name(&s.name)
        .role_arn(&s.role_arn)
        .recording_group(s.recording_group())
        .build();
    match aws.config().put_configuration_recorder().configuration_recorder(recorder).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = match aws::code(&e) {
                Some("InvalidRoleException") => format!(
                    "{}. role_arn must name a role in this account that AWS Config can assume, such as the service-linked role AWSServiceRoleForConfig.",
                    aws::describe(&e)
                ),
                _ => aws::describe(&e),
            };
            Err(aws.error(&format!("putting AWS Config recorder {}", s.name), detail))
        }
    }
}

/// Points the delivery channel at `s.bucket`: the existing channel, keeping its other settings,
/// or a new one named after the recorder.
async fn put_channel(aws: &Aws, s: &Settings, existing: Option<&DeliveryChannel>) -> Result<(), Diagnostics> {
    let channel = match existing {
        Some(c) => DeliveryChannel::builder()
            .name(c.name().unwrap_or(&s.name))
            .s3_bucket_name(&s.bucket)
            .set_s3_key_prefix(c.s3_key_prefix().map(str::to_string))
            .set_s3_kms_key_arn(c.s3_kms_key_arn().map(str::to_string))
            .set_sns_topic_arn(c.sns_topic_arn().map(str::to_string))
            .set_config_snapshot_delivery_properties(c.config_snapshot_delivery_properties().cloned())
            .build(),
        None => DeliveryChannel::builder().name(&s.name).s3_bucket_name(&s.bucket).build(),
    };
    match aws.config().put_delivery_channel().delivery_channel(channel).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let bucket = &s.bucket;
            let detail = match aws::code(&e) {
                Some("NoSuchBucketException") => format!(
                    "{}. Create the S3 bucket {bucket} first (for example with an aws_s3_bucket resource the recorder references), or set delivery_bucket to an existing bucket.",
                    aws::describe(&e)
                ),
                Some("InsufficientDeliveryPolicyException") => format!(
                    "{}. The bucket {bucket} must let config.amazonaws.com check its ACL and write under AWSLogs/{}/Config/: add that to its bucket policy.",
                    aws::describe(&e),
                    aws.account_id
                ),
                _ => aws::describe(&e),
            };
            Err(aws.error(&format!("putting the AWS Config delivery channel to bucket {bucket}"), detail))
        }
    }
}

async fn start(aws: &Aws, name: &str) -> Result<(), Diagnostics> {
    aws.config()
        .start_configuration_recorder()
        .configuration_recorder_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.error(&format!("starting AWS Config recorder {name}"), aws::describe(&e)))
}

async fn stop(aws: &Aws, name: &str) -> Result<(), Diagnostics> {
    aws.config()
        .stop_configuration_recorder()
        .configuration_recorder_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.error(&format!("stopping AWS Config recorder {name}"), aws::describe(&e)))
}

async fn delete_channel(aws: &Aws, name: &str) -> Result<(), Diagnostics> {
    match aws.config().delete_delivery_channel().delivery_channel_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if aws::code(&e) == Some("NoSuchDeliveryChannelException") => Ok(()),
        Err(e) => Err(aws.error(&format!("deleting AWS Config delivery channel {name}"), aws::describe(&e))),
    }
}

/// Best-effort undo of a failed create: stop and delete the recorder, and the channel when the
/// create made it. Failures here are not reported: the create's own error is the one to show.
async fn rollback(aws: &Aws, name: &str, delete_created_channel: bool) {
    let cfg = aws.config();
    let _ = cfg.stop_configuration_recorder().configuration_recorder_name(name).send().await;
    if delete_created_channel && let Ok(Some(channel)) = find_channel(aws).await {
        let _ = delete_channel(aws, channel.name().unwrap_or(DEFAULT_NAME)).await;
    }
    let _ = cfg.delete_configuration_recorder().configuration_recorder_name(name).send().await;
}

/// The state after a call: what AWS Config reports for all three parts.
fn state(base: &Value, found: &Found) -> Value {
    // No types stay null when the configuration sets none, so an omitted `resource_types` never
    // drifts.
    let configured_types = base.get_attr("resource_types").is_some_and(|v| !v.is_null() && !v.is_unknown());
    let resource_types = if found.resource_types.is_empty() && !configured_types {
        Value::Null
    } else {
        Value::Set(found.resource_types.iter().map(|t| Value::String(t.clone())).collect())
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(found.name.clone()));
    attrs.insert("name".to_string(), Value::String(found.name.clone()));
    attrs.insert("role_arn".to_string(), Value::String(found.role_arn.clone()));
    attrs.insert("all_supported".to_string(), Value::Bool(found.all_supported));
    attrs.insert("include_global_resource_types".to_string(), Value::Bool(found.include_global));
    attrs.insert("resource_types".to_string(), resource_types);
    // A deleted channel reads as no bucket: the plan then puts it back in place.
    attrs.insert("delivery_bucket".to_string(), found.bucket().map(str::to_string).into());
    attrs.insert("recording".to_string(), Value::Bool(found.recording));
    Value::Object(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn set(items: &[&str]) -> Value {
        Value::Set(items.iter().map(|s| Value::String(s.to_string())).collect())
    }

    fn found(types: &[&str], bucket: Option<&str>, recording: bool) -> Found {
        Found {
            name: "default".into(),
            role_arn: "arn:aws:iam::666666666666:role/config".into(),
            all_supported: types.is_empty(),
            include_global: false,
            resource_types: types.iter().map(|t| t.to_string()).collect(),
            channel: bucket.map(|b| DeliveryChannel::builder().name("default").s3_bucket_name(b).build()),
            recording,
        }
    }

    fn paths(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::default();
        ConfigRecorder.validate(config, &mut diags);
        diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect()
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in ConfigRecorder.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn role_arns_bucket_names_and_resource_types_follow_aws_rules() {
        assert!(valid_role_arn("arn:aws:iam::666666666666:role/config"));
        assert!(valid_role_arn(
            "arn:aws:iam::666666666666:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
        ));
        assert!(valid_role_arn("arn:aws-us-gov:iam::666666666666:role/config"));
        for bad in [
            "",
            "config",
            "arn:aws:iam::66666666666:role/config",
            "arn:aws:iam::666666666666:user/config",
            "arn:aws:iam::666666666666:role/",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::666666666666:role/has space",
        ] {
            assert!(!valid_role_arn(bad), "{bad}");
        }
        assert!(valid_bucket_name("config-history-666666666666"));
        assert!(valid_bucket_name("a.b-c"));
        for bad in ["ab", "Upper", "-start", "end-", "a..b", "under_score", &"a".repeat(64)] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        assert!(valid_resource_type("AWS::S3::Bucket"));
        assert!(!valid_resource_type("S3::Bucket"));
        assert!(!valid_resource_type("AWS::S3::"));
    }

    #[test]
    fn invalid_values_are_reported_on_their_attributes() {
        let config = obj(&[
            ("name", Value::String(" ".into())),
            ("role_arn", Value::String("config-role".into())),
            ("delivery_bucket", Value::String("Not_A_Bucket".into())),
        ]);
        assert_eq!(paths(&config), ["name", "role_arn", "delivery_bucket"]);
    }

    #[test]
    fn recording_group_contradictions_are_reported_on_the_attribute_to_change() {
        assert_eq!(paths(&obj(&[("resource_types", set(&["AWS::S3::Bucket"]))])), ["resource_types"]);
        assert_eq!(paths(&obj(&[("all_supported", Value::Bool(false))])), ["all_supported"]);
        let global_without_all = obj(&[
            ("all_supported", Value::Bool(false)),
            ("include_global_resource_types", Value::Bool(true)),
            ("resource_types", set(&["AWS::IAM::Role"])),
        ]);
        assert_eq!(paths(&global_without_all), ["include_global_resource_types"]);
        let bad_type = obj(&[("all_supported", Value::Bool(false)), ("resource_types", set(&["Bucket"]))]);
        assert_eq!(paths(&bad_type), ["resource_types"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        for config in [
            obj(&[
                ("role_arn", Value::String("arn:aws:iam::666666666666:role/config".into())),
                ("delivery_bucket", Value::String("config-666666666666".into())),
            ]),
            obj(&[("all_supported", Value::Bool(false)), ("resource_types", set(&["AWS::S3::Bucket"]))]),
            obj(&[("all_supported", Value::Bool(false)), ("resource_types", Value::Unknown)]),
            obj(&[("all_supported", Value::Unknown), ("resource_types", set(&["AWS::S3::Bucket"]))]),
            obj(&[("all_supported", Value::Bool(false)), ("resource_types", Value::Set(vec![Value::Unknown]))]),
            obj(&[("role_arn", Value::Unknown), ("delivery_bucket", Value::Unknown), ("name", Value::Unknown)]),
        ] {
            assert!(paths(&config).is_empty(), "{config:?}");
        }
    }

    #[test]
    fn settings_use_the_planned_defaults_and_send_types_only_when_listed() {
        let s = Settings::from(&obj(&[
            ("role_arn", Value::String("arn:aws:iam::666666666666:role/config".into())),
            ("delivery_bucket", Value::String("b-1".into())),
        ]));
        assert_eq!((s.name.as_str(), s.all_supported, s.include_global, s.recording), ("default", true, false, true));
        let group = s.recording_group();
        assert!(group.all_supported() && group.resource_types().is_empty());
        let narrow =
            Settings { all_supported: false, resource_types: ["AWS::S3::Bucket".to_string()].into(), ..s.clone() };
        assert_eq!(narrow.recording_group().resource_types(), [ResourceType::from("AWS::S3::Bucket")]);
        assert!(s.recorder_differs(&narrow));
        assert!(!s.recorder_differs(&Settings { bucket: "b-2".into(), recording: false, ..s.clone() }));
    }

    #[test]
    fn state_reports_each_part_and_keeps_omitted_types_null() {
        let s = state(&obj(&[]), &found(&[], Some("b-1"), true));
        assert_eq!(s.get_attr("resource_types"), Some(&Value::Null));
        assert_eq!(s.get_attr("delivery_bucket"), Some(&Value::String("b-1".into())));
        assert_eq!(s.get_attr("recording"), Some(&Value::Bool(true)));
        assert_eq!(s.get_attr("id"), Some(&Value::String("default".into())));

        // The channel deleted and the recorder stopped outside Terraform: both show as drift.
        let s = state(&obj(&[]), &found(&[], None, false));
        assert_eq!(s.get_attr("delivery_bucket"), Some(&Value::Null));
        assert_eq!(s.get_attr("recording"), Some(&Value::Bool(false)));

        let s = state(&obj(&[("resource_types", set(&["AWS::S3::Bucket"]))]), &found(&["AWS::S3::Bucket"], None, true));
        assert_eq!(s.get_attr("resource_types"), Some(&set(&["AWS::S3::Bucket"])));
        assert_eq!(s.get_attr("all_supported"), Some(&Value::Bool(false)));
    }
}
