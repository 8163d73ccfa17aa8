//! `orgsec_posture`: the orchestrator's score for a scope (the organization, an OU, an account, a
//! resource type or a resource) and the controls that would raise it most, so that a
//! configuration can gate on posture or publish it.

use std::collections::BTreeMap;

use orgsec_proto::orgsec::v1 as api;
use tonic::Code;

use crate::framework::DataSource;
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::orchestrator::Orchestrator;
use crate::tfvalue::{Number, Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct Posture;

const SCOPES: &[&str] = &["org", "ou", "account", "resource_type", "resource"];
const DEFAULT_TOP: i64 = 10;

fn priority_type() -> Type {
    Type::object([
        ("control_id", Type::String),
        ("title", Type::String),
        ("severity", Type::String),
        ("improvement_potential", Type::Number),
        ("failing_resources", Type::Number),
    ])
}

impl DataSource for Posture {
    fn type_name(&self) -> &'static str {
        "orgsec_posture"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "The orgsec orchestrator's posture score for a scope (0 to 100, 100 meaning low risk) and the controls that would raise it most. Needs the provider's `orchestrator` block.",
                attributes: vec![
                    Attribute::optional(
                        "scope",
                        Type::String,
                        "What to score: `org` (the default), `ou`, `account`, `resource_type` or `resource`.",
                    ),
                    Attribute::optional(
                        "id",
                        Type::String,
                        "Which one, for every scope but `org`: an OU path such as `Root/Prod`, an account id, a resource type such as `AwsEc2SecurityGroup`, or a resource ARN.",
                    ),
                    Attribute::optional("top", Type::Number, "How many priorities to return (default 10; 0 for all)."),
                    Attribute::computed("score", Type::Number, "The score, from 0 to 100."),
                    Attribute::computed("failing_findings", Type::Number, "Findings failing in the scope."),
                    Attribute::computed(
                        "failing_resources",
                        Type::Number,
                        "Resources with a failing finding in the scope.",
                    ),
                    Attribute::computed("resources", Type::Number, "Resources assessed in the scope."),
                    Attribute::computed("computed_at", Type::String, "When the score was computed (RFC 3339)."),
                    Attribute::computed(
                        "priorities",
                        Type::list(priority_type()),
                        "Failing controls ranked by improvement potential (the points the score would gain if the control passed everywhere in the scope): `control_id`, `title`, `severity`, `improvement_potential`, `failing_resources`.",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let scope = match config.get_attr("scope") {
            None | Some(Value::Null) => Some("org"),
            Some(v) => v.as_str(),
        };
        if let Some(s) = scope
            && !SCOPES.contains(&s)
        {
            diags.error_at(
                AttrPath::root("scope"),
                "Invalid scope",
                format!("\"{s}\" is not one of {}.", SCOPES.join(", ")),
            );
        }
        let id = config.get_attr("id").unwrap_or(&Value::Null);
        if let Some(s) = scope
            && s != "org"
            && SCOPES.contains(&s)
            && id.is_null()
        {
            diags.error_at(
                AttrPath::root("id"),
                "Missing id",
                format!("A `{s}` scope needs `id`: which {} to score.", s.replace('_', " ")),
            );
        }
        if let Some(top) = config.get_attr("top").filter(|v| !v.is_null() && !v.is_unknown())
            && !top.as_number().is_some_and(|n| n.is_integer() && top.as_i64().is_some_and(|t| t >= 0))
        {
            diags.error_at(AttrPath::root("top"), "Invalid top", "top must be a whole number, 0 or more.");
        }
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let Some(orch) = &ctx.orchestrator else {
                return Err(Orchestrator::missing("The posture score"));
            };
            let scope_name = config.get_attr("scope").and_then(Value::as_str).unwrap_or("org");
            let scope = scope_kind(scope_name) as i32;
            let id = config.get_attr("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let top = config.get_attr("top").and_then(Value::as_i64).unwrap_or(DEFAULT_TOP);
            let what = if id.is_empty() { scope_name.to_string() } else { format!("{scope_name} {id}") };
            let score = match orch.posture().get_score(api::GetScoreRequest { scope, id: id.clone() }).await {
                Ok(s) => s.into_inner(),
                Err(s) if s.code() == Code::NotFound => {
                    let mut d = Diagnostics::default();
                    d.error_at(
                        AttrPath::root(if id.is_empty() { "scope" } else { "id" }),
                        "No score",
                        format!(
                            "The orchestrator at {} has no score for {what}: {}. Check the id, or let `orgsec sync` run first.",
                            orch.endpoint(),
                            s.message()
                        ),
                    );
                    return Err(d);
                }
                Err(s) => return Err(orch.error(&format!("reading the posture of {what}"), &s)),
            };
            let limit = i32::try_from(top).unwrap_or(i32::MAX);
            let priorities = orch
                .posture()
                .list_priorities(api::ListPrioritiesRequest { scope, id, limit })
                .await
                .map_err(|s| orch.error(&format!("reading the priorities of {what}"), &s))?
                .into_inner()
                .priorities;
            let mut out = config.as_map().cloned().unwrap_or_default();
            out.insert("score".into(), number(score.score));
            out.insert("failing_findings".into(), Value::from(score.failing_findings));
            out.insert("failing_resources".into(), Value::from(score.failing_resources));
            out.insert("resources".into(), Value::from(score.resources));
            out.insert("computed_at".into(), Value::String(rfc3339(score.computed_at.as_ref())));
            out.insert("priorities".into(), Value::List(priorities.iter().map(priority).collect()));
            Ok(Value::Object(out))
        })
    }
}

fn scope_kind(name: &str) -> api::ScopeKind {
    match name {
        "ou" => api::ScopeKind::Ou,
        "account" => api::ScopeKind::Account,
        "resource_type" => api::ScopeKind::ResourceType,
        "resource" => api::ScopeKind::Resource,
        _ => api::ScopeKind::Org,
    }
}

/// A score or potential as a Terraform number, to two decimals (what the CLI shows); a value
/// that is not finite becomes 0.
fn number(x: f64) -> Value {
    let rounded = (x * 100.0).round() / 100.0;
    Number::from_f64(rounded).map_or(Value::from(0), Value::from)
}

fn priority(p: &api::Priority) -> Value {
    Value::Object(BTreeMap::from([
        ("control_id".to_string(), Value::String(p.control_id.clone())),
        ("title".to_string(), Value::String(p.title.clone())),
        ("severity".to_string(), Value::String(p.severity.clone())),
        ("improvement_potential".to_string(), number(p.improvement_potential)),
        ("failing_resources".to_string(), Value::from(p.failing_resources)),
    ]))
}

/// RFC 3339 in UTC, to the second; empty when the orchestrator sent no time.
fn rfc3339(t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = t else { return String::new() };
    let days = t.seconds.div_euclid(86_400);
    let secs = t.seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |seconds| rfc3339(Some(&prost_types::Timestamp { seconds, nanos: 0 }));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_305_600 + 3_723), "2026-11-22T01:02:03Z");
        assert_eq!(rfc3339(None), "");
    }

    #[test]
    fn numbers_are_rounded_to_two_decimals() {
        assert_eq!(number(72.456), Value::from(Number::from_f64(72.46).expect("finite")));
        assert_eq!(number(f64::NAN), Value::from(0));
    }
}
