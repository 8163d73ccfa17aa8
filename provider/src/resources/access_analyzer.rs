//! `orgsec_access_analyzer`: an IAM Access Analyzer analyzer in the provider's account and region.
//!
//! Import: `terraform import orgsec_access_analyzer.this <analyzer-name>`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_accessanalyzer::types::{AnalyzerConfiguration, AnalyzerSummary, UnusedAccessConfiguration};

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct AccessAnalyzer;

const TYPES: &[&str] = &["ACCOUNT", "ORGANIZATION", "ACCOUNT_UNUSED_ACCESS", "ORGANIZATION_UNUSED_ACCESS"];
const DEFAULT_TYPE: &str = "ACCOUNT";
/// The range of days AWS accepts for `unusedAccessAge`.
const MIN_AGE: i64 = 1;
const MAX_AGE: i64 = 365;
/// What AWS uses when `unusedAccessAge` is left out.
const DEFAULT_AGE: i64 = 90;

impl Resource for AccessAnalyzer {
    fn type_name(&self) -> &'static str {
        "orgsec_access_analyzer"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "An IAM Access Analyzer analyzer in the provider's account and region. Destroying it deletes the analyzer, its archive rules and its findings.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The analyzer name.").use_state_for_unknown(),
                    Attribute::required(
                        "name",
                        Type::String,
                        "The analyzer name: 1 to 255 letters, digits, `.`, `_` or `-`, starting with a letter. Changing it replaces the analyzer.",
                    )
                    .requires_replace(),
                    Attribute::optional_computed(
                        "type",
                        Type::String,
                        "The zone of trust and kind of analysis: `ACCOUNT` (the default), `ORGANIZATION`, `ACCOUNT_UNUSED_ACCESS` or `ORGANIZATION_UNUSED_ACCESS`. The organization types need the management account or a delegated administrator. Changing it replaces the analyzer.",
                    )
                    .requires_replace(),
                    Attribute::optional(
                        "unused_access_age",
                        Type::Number,
                        "For the unused-access types only: after how many days without use access counts as unused (1 to 365; AWS defaults to 90). Changing it replaces the analyzer.",
                    )
                    .requires_replace(),
                    Attribute::optional("tags", Type::map(Type::String), "Tags of the analyzer. Changed in place."),
                    Attribute::computed("arn", Type::String, "ARN of the analyzer.").use_state_for_unknown(),
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
                "Invalid analyzer name",
                format!(
                    "\"{name}\" is not a valid analyzer name: it must be 1 to 255 letters, digits, '.', '_' or '-', starting with a letter."
                ),
            );
        }
        // Left out means ACCOUNT; an unknown type cannot be checked yet.
        let kind = match config.get_attr("type") {
            None | Some(Value::Null) => Some(DEFAULT_TYPE),
            Some(v) => v.as_str(),
        };
        if let Some(k) = kind
            && !TYPES.contains(&k)
        {
            diags.error_at(
                AttrPath::root("type"),
                "Invalid analyzer type",
                format!("\"{k}\" is not one of {}.", TYPES.join(", ")),
            );
        }
        if let Some(age) = config.get_attr("unused_access_age").filter(|v| !v.is_null() && !v.is_unknown()) {
            let path = AttrPath::root("unused_access_age");
            match age.as_i64().filter(|_| age.as_number().is_some_and(|n| n.is_integer())) {
                Some(days) if (MIN_AGE..=MAX_AGE).contains(&days) => {}
                _ => diags.error_at(
                    path.clone(),
                    "Invalid unused access age",
                    format!("unused_access_age must be a whole number of days from {MIN_AGE} to {MAX_AGE}."),
                ),
            }
            // Only a known type can be checked; an unknown one is checked by AWS at creation.
            if let Some(k) = kind
                && TYPES.contains(&k)
                && !unused_access(k)
            {
                diags.error_at(
                    path,
                    "unused_access_age needs an unused-access analyzer",
                    format!(
                        "unused_access_age only applies to the ACCOUNT_UNUSED_ACCESS and ORGANIZATION_UNUSED_ACCESS types, not to {k}. Remove it, or change type."
                    ),
                );
            }
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = analyzer_name(planned) else {
                return Err(ctx.aws.error("creating the Access Analyzer analyzer", "the plan has no name".into()));
            };
            let kind = planned.get_attr("type").and_then(Value::as_str).unwrap_or(DEFAULT_TYPE);
            let mut req = ctx
                .aws
                .accessanalyzer()
                .create_analyzer()
                .analyzer_name(&name)
                .r#type(aws_sdk_accessanalyzer::types::Type::from(kind));
            if let Some(days) = planned.get_attr("unused_access_age").and_then(Value::as_i64) {
                let days = i32::try_from(days).unwrap_or(i32::MAX);
                req = req.configuration(AnalyzerConfiguration::UnusedAccess(
                    UnusedAccessConfiguration::builder().unused_access_age(days).build(),
                ));
            }
            let tags = tags_of(planned);
            if !tags.is_empty() {
                req = req.set_tags(Some(tags.into_iter().collect::<HashMap<_, _>>()));
            }
            if let Err(e) = req.send().await {
                let detail = if aws::code(&e) == Some("ConflictException") {
                    format!(
                        "An analyzer named {name} already exists in account {}, region {}. Choose another name, or bring it under Terraform with: terraform import <address> {name}",
                        ctx.aws.account_id, ctx.aws.region
                    )
                } else {
                    aws::describe(&e)
                };
                return Err(ctx.aws.error(&format!("creating Access Analyzer analyzer {name}"), detail));
            }
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(ctx.aws.error(
                    "reading the Access Analyzer analyzer after creating it",
                    format!("analyzer {name} is not there"),
                )),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(name) = analyzer_name(current) else {
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
            let Some(name) = analyzer_name(prior) else {
                return Err(ctx.aws.error("updating the Access Analyzer analyzer", "the state has no name".into()));
            };
            let arn = match prior.get_attr("arn").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(arn) => arn.to_string(),
                None => match find(&ctx.aws, &name).await? {
                    Some(found) => found.arn,
                    None => return Err(gone_during_update(&ctx.aws, &name)),
                },
            };
            let (set, remove) = tag_changes(&tags_of(prior), &tags_of(planned));
            let aa = ctx.aws.accessanalyzer();
            if !remove.is_empty() {
                aa.untag_resource().resource_arn(&arn).set_tag_keys(Some(remove)).send().await.map_err(|e| {
                    ctx.aws.error(&format!("untagging Access Analyzer analyzer {name}"), aws::describe(&e))
                })?;
            }
            if !set.is_empty() {
                aa.tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(set.into_iter().collect::<HashMap<_, _>>()))
                    .send()
                    .await
                    .map_err(|e| {
                        ctx.aws.error(&format!("tagging Access Analyzer analyzer {name}"), aws::describe(&e))
                    })?;
            }
            match find(&ctx.aws, &name).await? {
                Some(found) => Ok(state(planned, &found)),
                None => Err(gone_during_update(&ctx.aws, &name)),
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let Some(name) = analyzer_name(state) else {
                return Ok(());
            };
            match ctx.aws.accessanalyzer().delete_analyzer().analyzer_name(&name).send().await {
                Ok(_) => Ok(()),
                Err(e) if aws::code(&e) == Some("ResourceNotFoundException") => Ok(()),
                Err(e) => Err(ctx.aws.error(&format!("deleting Access Analyzer analyzer {name}"), aws::describe(&e))),
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            if find(&ctx.aws, id).await?.is_none() {
                let mut d = Diagnostics::default();
                d.error(
                    "Cannot import Access Analyzer analyzer",
                    format!(
                        "There is no analyzer \"{id}\" in account {}, region {}. The import id is the name of an analyzer in the account and region the provider acts in; list them with ListAnalyzers.",
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

/// What GetAnalyzer says about the analyzer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    name: String,
    arn: String,
    kind: String,
    /// Only when the API reports an unused-access configuration.
    unused_access_age: Option<i64>,
    tags: BTreeMap<String, String>,
}

impl Found {
    fn from(a: &AnalyzerSummary) -> Found {
        Found {
            name: a.name().to_string(),
            arn: a.arn().to_string(),
            kind: a.r#type().as_str().to_string(),
            unused_access_age: a
                .configuration()
                .and_then(|c| c.as_unused_access().ok())
                .and_then(UnusedAccessConfiguration::unused_access_age)
                .map(i64::from),
            tags: a.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
        }
    }
}

fn gone_during_update(aws: &Aws, name: &str) -> Diagnostics {
    aws.error("updating the Access Analyzer analyzer", format!("analyzer {name} was deleted outside Terraform"))
}

/// 1 to 255 letters, digits, `.`, `_` or `-`, starting with a letter.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn unused_access(kind: &str) -> bool {
    kind.ends_with("_UNUSED_ACCESS")
}

fn analyzer_name(v: &Value) -> Option<String> {
    super::name_or_id(v)
}

/// The known string tags of a configuration, plan or state.
fn tags_of(v: &Value) -> BTreeMap<String, String> {
    v.get_attr("tags")
        .and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// The tags to set (new or changed) and the keys to remove to go from `prior` to `planned`.
fn tag_changes(
    prior: &BTreeMap<String, String>,
    planned: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = planned.iter().filter(|(k, v)| prior.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let remove = prior.keys().filter(|k| !planned.contains_key(*k)).cloned().collect();
    (set, remove)
}

/// The analyzer, or `None` when it no longer exists in the account and region.
async fn find(aws: &Aws, name: &str) -> Result<Option<Found>, Diagnostics> {
    match aws.accessanalyzer().get_analyzer().analyzer_name(name).send().await {
        Ok(out) => match out.analyzer() {
            Some(a) => Ok(Some(Found::from(a))),
            None => Ok(None),
        },
        Err(e) if aws::code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(aws.error(&format!("reading Access Analyzer analyzer {name}"), aws::describe(&e))),
    }
}

/// The state after a call: what Access Analyzer reports, plus what only the configuration knows.
fn state(base: &Value, found: &Found) -> Value {
    let keep = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown()).cloned().unwrap_or(Value::Null);
    // The age as AWS reports it, kept from the configuration when the API leaves it out. AWS's
    // default stays null when the configuration sets none (an omitted age means the default).
    let unused_access_age = match (found.unused_access_age, keep("unused_access_age")) {
        (Some(days), Value::Null) if days == DEFAULT_AGE => Value::Null,
        (Some(days), _) => Value::from(days),
        (None, kept) => kept,
    };
    // No tags stay null when the configuration sets none, so an omitted `tags` never drifts.
    let tags = if found.tags.is_empty() && keep("tags").is_null() {
        Value::Null
    } else {
        Value::Map(found.tags.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(found.name.clone()));
    attrs.insert("name".to_string(), Value::String(found.name.clone()));
    attrs.insert("type".to_string(), Value::String(found.kind.clone()));
    attrs.insert("unused_access_age".to_string(), unused_access_age);
    attrs.insert("tags".to_string(), tags);
    attrs.insert("arn".to_string(), Value::String(found.arn.clone()));
    Value::Object(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn tags(pairs: &[(&str, &str)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
    }

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn found(tag_pairs: &[(&str, &str)]) -> Found {
        Found {
            name: "main".into(),
            arn: "arn:aws:access-analyzer:us-east-1:666666666666:analyzer/main".into(),
            kind: "ACCOUNT".into(),
            unused_access_age: None,
            tags: strings(tag_pairs),
        }
    }

    fn paths(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::default();
        AccessAnalyzer.validate(config, &mut diags);
        diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect()
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in AccessAnalyzer.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn names_follow_the_api_pattern() {
        assert!(valid_name("main"));
        assert!(valid_name("a.b_c-1"));
        assert!(valid_name(&"a".repeat(255)));
        assert!(!valid_name(""));
        assert!(!valid_name("1main"));
        assert!(!valid_name("-main"));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn invalid_name_type_and_age_are_reported_on_their_attributes() {
        assert_eq!(paths(&obj(&[("name", Value::String("9lives".into()))])), ["name"]);
        assert_eq!(paths(&obj(&[("type", Value::String("EVERYTHING".into()))])), ["type"]);
        assert_eq!(paths(&obj(&[("unused_access_age", Value::from(30))])), ["unused_access_age"]);
        let on_account = obj(&[("type", Value::String("ACCOUNT".into())), ("unused_access_age", Value::from(30))]);
        assert_eq!(paths(&on_account), ["unused_access_age"]);
        let too_old =
            obj(&[("type", Value::String("ACCOUNT_UNUSED_ACCESS".into())), ("unused_access_age", Value::from(400))]);
        assert_eq!(paths(&too_old), ["unused_access_age"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        for config in [
            obj(&[("name", Value::String("main".into()))]),
            obj(&[("name", Value::Unknown), ("type", Value::Unknown), ("unused_access_age", Value::from(30))]),
            obj(&[
                ("name", Value::String("unused".into())),
                ("type", Value::String("ORGANIZATION_UNUSED_ACCESS".into())),
                ("unused_access_age", Value::from(90)),
            ]),
            obj(&[("type", Value::String("ACCOUNT_UNUSED_ACCESS".into())), ("unused_access_age", Value::Unknown)]),
        ] {
            assert!(paths(&config).is_empty(), "{config:?}");
        }
    }

    #[test]
    fn tag_changes_set_new_and_changed_and_remove_dropped_keys() {
        let (set, remove) = tag_changes(
            &strings(&[("a", "1"), ("b", "2"), ("c", "3")]),
            &strings(&[("a", "1"), ("b", "9"), ("d", "4")]),
        );
        assert_eq!(set, strings(&[("b", "9"), ("d", "4")]));
        assert_eq!(remove, ["c"]);
        assert_eq!(tag_changes(&strings(&[("a", "1")]), &strings(&[("a", "1")])), (BTreeMap::new(), vec![]));
    }

    #[test]
    fn state_reports_tags_from_the_api_and_keeps_omitted_tags_null() {
        let s = state(&obj(&[("tags", Value::Null)]), &found(&[]));
        assert_eq!(s.get_attr("tags"), Some(&Value::Null));
        let s = state(&obj(&[("tags", tags(&[("env", "dev")]))]), &found(&[("env", "prod")]));
        assert_eq!(s.get_attr("tags"), Some(&tags(&[("env", "prod")])));
        let s = state(&obj(&[]), &found(&[("added", "outside")]));
        assert_eq!(s.get_attr("tags"), Some(&tags(&[("added", "outside")])));
        assert_eq!(s.get_attr("id"), Some(&Value::String("main".into())));
        assert_eq!(s.get_attr("type"), Some(&Value::String("ACCOUNT".into())));
    }

    #[test]
    fn state_keeps_the_configured_age_when_the_api_omits_it() {
        let base = obj(&[("unused_access_age", Value::from(30))]);
        assert_eq!(state(&base, &found(&[])).get_attr("unused_access_age"), Some(&Value::from(30)));
        let reported = Found { unused_access_age: Some(45), ..found(&[]) };
        assert_eq!(state(&base, &reported).get_attr("unused_access_age"), Some(&Value::from(45)));
        assert_eq!(state(&obj(&[]), &reported).get_attr("unused_access_age"), Some(&Value::from(45)));
        let default = Found { unused_access_age: Some(DEFAULT_AGE), ..found(&[]) };
        assert_eq!(state(&obj(&[]), &default).get_attr("unused_access_age"), Some(&Value::Null));
    }
}
