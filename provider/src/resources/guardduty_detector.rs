//! `orgsec_guardduty_detector`: the GuardDuty detector of the provider's account and region.
//!
//! Import: `terraform import orgsec_guardduty_detector.this <detector-id>`.

use std::collections::BTreeMap;

use aws_sdk_guardduty::types::{
    DetectorFeature, DetectorFeatureConfiguration, FeatureStatus, FindingPublishingFrequency,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct GuardDutyDetector;

const FREQUENCIES: &[&str] = &["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"];
const STATUSES: &[&str] = &["ENABLED", "DISABLED"];

impl Resource for GuardDutyDetector {
    fn type_name(&self) -> &'static str {
        "orgsec_guardduty_detector"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "The GuardDuty detector of the provider's account and region. Destroying it deletes the detector and its findings.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The detector id.").use_state_for_unknown(),
                    Attribute::computed("detector_id", Type::String, "The detector id.").use_state_for_unknown(),
                    Attribute::optional(
                        "enable",
                        Type::Bool,
                        "Whether the detector is enabled (it publishes findings). Defaults to `true`.",
                    ),
                    Attribute::optional_computed(
                        "finding_publishing_frequency",
                        Type::String,
                        "How often updated findings are exported: `FIFTEEN_MINUTES`, `ONE_HOUR` or `SIX_HOURS` (the GuardDuty default).",
                    ),
                    Attribute::optional(
                        "features",
                        Type::map(Type::String),
                        "Detector features (protection plans) by name, e.g. `S3_DATA_EVENTS`, each `ENABLED` or `DISABLED`. Only the features named here are managed; the others keep whatever they are set to.",
                    ),
                    Attribute::optional(
                        "adopt_existing",
                        Type::Bool,
                        "When the account already has a detector in this region, take it over (update it to this configuration and manage it) instead of failing. Defaults to `false`. Only read at creation.",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(f) = config.get_attr("finding_publishing_frequency").and_then(Value::as_str)
            && !FREQUENCIES.contains(&f)
        {
            diags.error_at(
                AttrPath::root("finding_publishing_frequency"),
                "Invalid finding publishing frequency",
                format!("\"{f}\" is not one of {}.", FREQUENCIES.join(", ")),
            );
        }
        if let Some(features) = config.get_attr("features").and_then(Value::as_map) {
            for (name, status) in features {
                let path = AttrPath::root("features").key(name);
                if name.is_empty() {
                    diags.error_at(path.clone(), "Invalid feature name", "A feature name cannot be empty.");
                }
                if let Some(s) = status.as_str()
                    && !STATUSES.contains(&s)
                {
                    diags.error_at(
                        path,
                        "Invalid feature status",
                        format!("\"{s}\" for feature {name} is not one of {}.", STATUSES.join(", ")),
                    );
                }
            }
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let gd = ctx.aws.guardduty();
            let settings = Settings::from(planned);
            let mut req = gd.create_detector().enable(settings.enable).set_features(settings.features());
            if let Some(f) = &settings.frequency {
                req = req.finding_publishing_frequency(FindingPublishingFrequency::from(f.as_str()));
            }
            let id = match req.send().await {
                Ok(out) => out.detector_id().unwrap_or_default().to_string(),
                Err(e) if already_exists(&e) => {
                    let Some(existing) = find_any(&ctx.aws).await? else {
                        return Err(ctx.aws.error("creating the GuardDuty detector", aws::describe(&e)));
                    };
                    let adopt = planned.get_attr("adopt_existing").and_then(Value::as_bool).unwrap_or(false);
                    if !adopt {
                        return Err(ctx.aws.error("creating the GuardDuty detector",
                            format!(
                                "The account already has a GuardDuty detector in this region ({existing}). Set adopt_existing = true to take it over, or bring it under Terraform with: terraform import <address> {existing}"
                            ),
                        ));
                    }
                    configure(&ctx.aws, &existing, &settings).await?;
                    existing
                }
                Err(e) => return Err(ctx.aws.error("creating the GuardDuty detector", aws::describe(&e))),
            };
            match find(&ctx.aws, &id).await? {
                Some(found) => Ok(state(planned, &id, &found)),
                None => Err(ctx
                    .aws
                    .error("reading the GuardDuty detector after creating it", format!("detector {id} is not there"))),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(id) = detector_id(current) else {
                return Ok(None);
            };
            Ok(find(&ctx.aws, &id).await?.map(|found| state(current, &id, &found)))
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let Some(id) = detector_id(prior) else {
                return Err(ctx.aws.error("updating the GuardDuty detector", "the state has no detector id".into()));
            };
            configure(&ctx.aws, &id, &Settings::from(planned)).await?;
            match find(&ctx.aws, &id).await? {
                Some(found) => Ok(state(planned, &id, &found)),
                None => Err(ctx
                    .aws
                    .error("updating the GuardDuty detector", format!("detector {id} was deleted outside Terraform"))),
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let Some(id) = detector_id(state) else {
                return Ok(());
            };
            match ctx.aws.guardduty().delete_detector().detector_id(&id).send().await {
                Ok(_) => Ok(()),
                Err(e) if gone(&e) => Ok(()),
                Err(e) => Err(ctx.aws.error(&format!("deleting GuardDuty detector {id}"), aws::describe(&e))),
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            if find(&ctx.aws, id).await?.is_none() {
                let mut d = Diagnostics::default();
                d.error(
                    "Cannot import GuardDuty detector",
                    format!(
                        "There is no detector \"{id}\" in account {}, region {}. The import id is the id of a detector in the account and region the provider acts in; list them with ListDetectors.",
                        ctx.aws.account_id, ctx.aws.region
                    ),
                );
                return Err(d);
            }
            let mut attrs = self.schema().block.null_state();
            attrs.insert("id".into(), Value::String(id.to_string()));
            attrs.insert("detector_id".into(), Value::String(id.to_string()));
            Ok(Value::Object(attrs))
        })
    }
}

/// What the configuration (or plan) asks of the detector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    enable: bool,
    frequency: Option<String>,
    features: BTreeMap<String, String>,
}

impl Settings {
    fn from(planned: &Value) -> Settings {
        let features = planned
            .get_attr("features")
            .and_then(Value::as_map)
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
            .unwrap_or_default();
        Settings {
            enable: planned.get_attr("enable").and_then(Value::as_bool).unwrap_or(true),
            frequency: planned.get_attr("finding_publishing_frequency").and_then(Value::as_str).map(str::to_string),
            features,
        }
    }

    /// The features to send, or `None` when the configuration names none.
    fn features(&self) -> Option<Vec<DetectorFeatureConfiguration>> {
        if self.features.is_empty() {
            return None;
        }
        Some(
            self.features
                .iter()
                .map(|(name, status)| {
                    DetectorFeatureConfiguration::builder()
                        .name(DetectorFeature::from(name.as_str()))
                        .status(FeatureStatus::from(status.as_str()))
                        .build()
                })
                .collect(),
        )
    }
}

/// What GetDetector says about the detector.
#[derive(Debug, Clone)]
struct Found {
    enabled: bool,
    frequency: String,
    features: BTreeMap<String, String>,
}

fn detector_id(v: &Value) -> Option<String> {
    ["detector_id", "id"]
        .iter()
        .find_map(|name| v.get_attr(name).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// GuardDuty answers a detector id that is not (or no longer) the account's with a
/// `BadRequestException` saying it is not owned by the current account.
fn gone<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match aws::code(e) {
        Some("ResourceNotFoundException") => true,
        Some("BadRequestException") => message(e).is_some_and(|m| m.contains("not owned by the current account")),
        _ => false,
    }
}

fn already_exists<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    aws::code(e) == Some("BadRequestException") && message(e).is_some_and(|m| m.contains("already exists"))
}

fn message<E, R>(e: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(s) => s.err().message(),
        _ => None,
    }
}

/// The detector, or `None` when it no longer exists in the account and region.
async fn find(aws: &Aws, id: &str) -> Result<Option<Found>, Diagnostics> {
    match aws.guardduty().get_detector().detector_id(id).send().await {
        Ok(d) => Ok(Some(Found {
            enabled: d.status().is_none_or(|s| s.as_str() == "ENABLED"),
            frequency: d
                .finding_publishing_frequency()
                .map(|f| f.as_str().to_string())
                .unwrap_or_else(|| "SIX_HOURS".into()),
            features: d
                .features()
                .iter()
                .filter_map(|f| Some((f.name()?.as_str().to_string(), f.status()?.as_str().to_string())))
                .collect(),
        })),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(aws.error(&format!("reading GuardDuty detector {id}"), aws::describe(&e))),
    }
}

/// The account's detector in the region, if it has one.
async fn find_any(aws: &Aws) -> Result<Option<String>, Diagnostics> {
    match aws.guardduty().list_detectors().send().await {
        Ok(out) => Ok(out.detector_ids().first().cloned()),
        Err(e) => Err(aws.error("listing GuardDuty detectors", aws::describe(&e))),
    }
}

async fn configure(aws: &Aws, id: &str, settings: &Settings) -> Result<(), Diagnostics> {
    let mut req =
        aws.guardduty().update_detector().detector_id(id).enable(settings.enable).set_features(settings.features());
    if let Some(f) = &settings.frequency {
        req = req.finding_publishing_frequency(FindingPublishingFrequency::from(f.as_str()));
    }
    req.send().await.map(|_| ()).map_err(|e| aws.error(&format!("updating GuardDuty detector {id}"), aws::describe(&e)))
}

/// The state after a call: what GuardDuty reports, limited to what the configuration manages.
fn state(base: &Value, id: &str, found: &Found) -> Value {
    let keep = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown()).cloned().unwrap_or(Value::Null);
    // `enable` left out means `true`: an enabled detector keeps it null, a disabled one is drift.
    let enable = match keep("enable") {
        Value::Null if found.enabled => Value::Null,
        _ => Value::Bool(found.enabled),
    };
    // Only the features the configuration names: the others are not managed, so never drift.
    let features = match base.get_attr("features").and_then(Value::as_map) {
        Some(wanted) => Value::Map(
            wanted
                .keys()
                .map(|name| {
                    let status = found.features.get(name).cloned().unwrap_or_else(|| "DISABLED".into());
                    (name.clone(), Value::String(status))
                })
                .collect(),
        ),
        None => Value::Null,
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(id.to_string()));
    attrs.insert("detector_id".to_string(), Value::String(id.to_string()));
    attrs.insert("enable".to_string(), enable);
    attrs.insert("finding_publishing_frequency".to_string(), Value::String(found.frequency.clone()));
    attrs.insert("features".to_string(), features);
    attrs.insert("adopt_existing".to_string(), keep("adopt_existing"));
    Value::Object(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn features(pairs: &[(&str, &str)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
    }

    fn found(enabled: bool) -> Found {
        Found {
            enabled,
            frequency: "ONE_HOUR".into(),
            features: [("S3_DATA_EVENTS", "ENABLED"), ("RDS_LOGIN_EVENTS", "DISABLED")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in GuardDutyDetector.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn invalid_frequency_and_feature_status_are_reported_on_their_attributes() {
        let config = obj(&[
            ("finding_publishing_frequency", Value::String("HOURLY".into())),
            ("features", features(&[("S3_DATA_EVENTS", "ON"), ("EKS_AUDIT_LOGS", "ENABLED")])),
        ]);
        let mut diags = Diagnostics::default();
        GuardDutyDetector.validate(&config, &mut diags);
        let paths: Vec<String> = diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect();
        assert_eq!(paths, ["finding_publishing_frequency", "features[\"S3_DATA_EVENTS\"]"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        let config = obj(&[
            ("finding_publishing_frequency", Value::Unknown),
            ("features", features(&[("S3_DATA_EVENTS", "DISABLED")])),
        ]);
        let mut diags = Diagnostics::default();
        GuardDutyDetector.validate(&config, &mut diags);
        assert!(diags.0.is_empty(), "{diags:?}");
    }

    #[test]
    fn state_reports_only_configured_features() {
        let base =
            obj(&[("features", features(&[("S3_DATA_EVENTS", "DISABLED"), ("LAMBDA_NETWORK_LOGS", "ENABLED")]))]);
        let s = state(&base, "abc", &found(true));
        assert_eq!(
            s.get_attr("features"),
            Some(&features(&[("LAMBDA_NETWORK_LOGS", "DISABLED"), ("S3_DATA_EVENTS", "ENABLED")]))
        );
        assert_eq!(state(&obj(&[]), "abc", &found(true)).get_attr("features"), Some(&Value::Null));
    }

    #[test]
    fn omitted_enable_stays_null_while_enabled_and_shows_drift_when_disabled() {
        let base = obj(&[("enable", Value::Null)]);
        assert_eq!(state(&base, "abc", &found(true)).get_attr("enable"), Some(&Value::Null));
        assert_eq!(state(&base, "abc", &found(false)).get_attr("enable"), Some(&Value::Bool(false)));
        let explicit = obj(&[("enable", Value::Bool(true))]);
        assert_eq!(state(&explicit, "abc", &found(true)).get_attr("enable"), Some(&Value::Bool(true)));
    }

    #[test]
    fn settings_default_to_enabled_with_nothing_else() {
        let s = Settings::from(&obj(&[("finding_publishing_frequency", Value::Unknown)]));
        assert_eq!(s, Settings { enable: true, frequency: None, features: BTreeMap::new() });
        assert!(s.features().is_none());
    }
}
