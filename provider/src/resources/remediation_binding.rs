//! `orgsec_remediation_binding`: which findings a playbook remediates, how, and where — kept in
//! the orgsec orchestrator through its API, so that remediation policy is declared, reviewed and
//! drift-checked like the rest of the baseline.
//!
//! Import: `terraform import orgsec_remediation_binding.this <binding-name>`.

use std::collections::BTreeMap;

use orgsec_proto::orgsec::v1 as api;
use tonic::Code;

use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::orchestrator::Orchestrator;
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct RemediationBinding;

const MODES: &[&str] = &["auto", "approve", "notify", "dry_run"];
const DEFAULT_MODE: &str = "approve";
const WHAT: &str = "A remediation binding";

impl Resource for RemediationBinding {
    fn type_name(&self) -> &'static str {
        "orgsec_remediation_binding"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Orchestrator("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "A remediation binding in the orgsec orchestrator: findings of these controls or types, in this scope, are remediated by this playbook in this mode. Needs the provider's `orchestrator` block.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The binding name.").use_state_for_unknown(),
                    Attribute::required(
                        "name",
                        Type::String,
                        "Unique name of the binding: 1 to 128 letters, digits, `.`, `_` or `-`. Changing it replaces the binding.",
                    )
                    .requires_replace(),
                    Attribute::optional(
                        "controls",
                        Type::set(Type::String),
                        "Security Hub control ids whose failed findings the binding matches, such as `EC2.13`. Set `controls`, `finding_types` or both.",
                    ),
                    Attribute::optional(
                        "finding_types",
                        Type::set(Type::String),
                        "Finding types (a GuardDuty type or an ASFF type prefix) the binding matches, such as `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`.",
                    ),
                    Attribute::required(
                        "playbook",
                        Type::String,
                        "The playbook that remediates, such as `revoke-public-ingress` (`orgsec playbooks` lists them). Checked against the orchestrator's catalogue at plan time.",
                    ),
                    Attribute::optional_computed(
                        "mode",
                        Type::String,
                        "`auto` (remediate at once), `approve` (wait for an admin's approval; the default), `notify` (change nothing, send the plan to `notify`) or `dry_run` (record the plan only).",
                    )
                    .default_value(DEFAULT_MODE),
                    Attribute::optional(
                        "notify",
                        Type::set(Type::String),
                        "Names of the orchestrator's notification targets (Slack, webhook, Splunk) told about each remediation.",
                    ),
                    Attribute::optional(
                        "parameters",
                        Type::map(Type::String),
                        "Playbook parameters, as the playbook declares them (`orgsec playbooks` shows them).",
                    ),
                    Attribute::computed("revision", Type::Number, "Counts the binding's changes in the orchestrator, from 1."),
                    Attribute::computed("created_by", Type::String, "The name of the token that created the binding.")
                        .use_state_for_unknown(),
                ],
                blocks: vec![NestedBlock {
                    name: "scope",
                    nesting: Nesting::Single,
                    min_items: 0,
                    max_items: 0,
                    block: Block {
                        description: "Where the binding applies. Without it, or with a list left empty, there is no restriction on that dimension.",
                        attributes: vec![
                            Attribute::optional("accounts", Type::set(Type::String), "12-digit account ids."),
                            Attribute::optional(
                                "organizational_units",
                                Type::set(Type::String),
                                "OU paths such as `Root/Prod`; accounts at or below them match.",
                            ),
                            Attribute::optional(
                                "tags",
                                Type::map(Type::String),
                                "Account tags that must all match, such as `{ team = \"web\" }`.",
                            ),
                        ],
                        blocks: vec![],
                    },
                }],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = config.get_attr("name").and_then(Value::as_str)
            && !valid_name(name)
        {
            diags.error_at(
                AttrPath::root("name"),
                "Invalid binding name",
                format!("\"{name}\" is not a valid binding name: use 1 to 128 letters, digits, '.', '_' or '-'."),
            );
        }
        let controls = config.get_attr("controls").unwrap_or(&Value::Null);
        let types = config.get_attr("finding_types").unwrap_or(&Value::Null);
        let empty = |v: &Value| v.is_null() || v.as_elements().is_some_and(<[Value]>::is_empty);
        if empty(controls) && empty(types) {
            diags.error_at(
                AttrPath::root("controls"),
                "Binding matches nothing",
                "Set `controls` (Security Hub control ids such as \"EC2.13\"), `finding_types`, or both.",
            );
        }
        for c in strings(controls) {
            if !valid_control(c) {
                diags.error_at(
                    AttrPath::root("controls"),
                    "Invalid control id",
                    format!("\"{c}\" is not a Security Hub control id: write it as the service and a number, such as \"EC2.13\" or \"IAM.7\"."),
                );
            }
        }
        if let Some(mode) = config.get_attr("mode").and_then(Value::as_str)
            && !MODES.contains(&mode)
        {
            diags.error_at(
                AttrPath::root("mode"),
                "Invalid mode",
                format!("\"{mode}\" is not one of {}.", MODES.join(", ")),
            );
        }
        let scope = config.get_attr("scope").unwrap_or(&Value::Null);
        let path = AttrPath::root("scope");
        for a in strings(scope.get_attr("accounts").unwrap_or(&Value::Null)) {
            if !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) {
                diags.error_at(
                    path.attr("accounts"),
                    "Invalid account id",
                    format!("\"{a}\" is not an AWS account id (12 digits)."),
                );
            }
        }
        for ou in strings(scope.get_attr("organizational_units").unwrap_or(&Value::Null)) {
            if ou != "Root" && ou.strip_prefix("Root/").is_none_or(|rest| rest.split('/').any(str::is_empty)) {
                diags.error_at(
                    path.attr("organizational_units"),
                    "Invalid OU path",
                    format!("\"{ou}\" is not an OU path: write the OU names from Root down, as in \"Root/Prod\"."),
                );
            }
        }
    }

    fn check_plan<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Diagnostics> {
        Box::pin(async move {
            let Some(orch) = &ctx.orchestrator else {
                return Orchestrator::missing(WHAT);
            };
            let mut d = Diagnostics::default();
            if !settings_known(planned) {
                // Checked at apply instead, once every value is known.
                return d;
            }
            let request = api::ValidateBindingRequest { binding: Some(to_api(planned)) };
            match orch.bindings().validate_binding(request).await {
                Ok(r) => {
                    for v in r.into_inner().violations {
                        d.error_at(field_path(&v.field), "Invalid remediation binding", v.description);
                    }
                }
                // Down or unreachable: the plan goes on, and apply checks again.
                Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Unimplemented) => d.warning(
                    "Remediation binding not checked",
                    format!(
                        "The binding could not be checked against the orchestrator's playbook catalogue, so it will be at apply: {}",
                        orch.describe(&s)
                    ),
                ),
                // A refused token or a scope it does not cover fails apply too: say so now.
                Err(s) => d.0.extend(orch.error("checking the remediation binding", &s).0),
            }
            d
        })
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let orch = orchestrator(ctx)?;
            let binding = to_api(planned);
            let name = binding.name.clone();
            match orch.bindings().create_binding(api::CreateBindingRequest { binding: Some(binding) }).await {
                Ok(b) => Ok(state(planned, &b.into_inner())),
                Err(s) if s.code() == Code::AlreadyExists => {
                    let mut d = Diagnostics::default();
                    d.error(
                        format!("Error creating remediation binding {name}"),
                        format!(
                            "A binding named {name} already exists in the orchestrator at {}. Choose another name, or bring it under Terraform with: terraform import <address> {name}",
                            orch.endpoint()
                        ),
                    );
                    Err(d)
                }
                Err(s) => Err(orch.error(&format!("creating remediation binding {name}"), &s)),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let orch = orchestrator(ctx)?;
            let Some(name) = binding_name(current) else { return Ok(None) };
            Ok(find(orch, &name).await?.map(|b| state(current, &b)))
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        _prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let orch = orchestrator(ctx)?;
            let binding = to_api(planned);
            let name = binding.name.clone();
            let request = api::UpdateBindingRequest { binding: Some(binding), allow_missing: false };
            match orch.bindings().update_binding(request).await {
                Ok(b) => Ok(state(planned, &b.into_inner())),
                Err(s) if s.code() == Code::NotFound => {
                    let mut d = Diagnostics::default();
                    d.error(
                        format!("Error updating remediation binding {name}"),
                        "The binding was deleted outside Terraform; run terraform apply again to create it.",
                    );
                    Err(d)
                }
                Err(s) => Err(orch.error(&format!("updating remediation binding {name}"), &s)),
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let orch = orchestrator(ctx)?;
            let Some(name) = binding_name(state) else { return Ok(()) };
            let request = api::DeleteBindingRequest { name: name.clone(), allow_missing: true };
            match orch.bindings().delete_binding(request).await {
                Ok(_) => Ok(()),
                Err(s) if s.code() == Code::NotFound => Ok(()),
                Err(s) => Err(orch.error(&format!("deleting remediation binding {name}"), &s)),
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let orch = orchestrator(ctx)?;
            if find(orch, id).await?.is_none() {
                let mut d = Diagnostics::default();
                d.error(
                    "Cannot import remediation binding",
                    format!(
                        "The orchestrator at {} has no binding named \"{id}\". The import id is the binding's name; `orgsec bindings list` shows them.",
                        orch.endpoint()
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

/// Whether every setting (all but the computed attributes) is known.
fn settings_known(v: &Value) -> bool {
    ["name", "controls", "finding_types", "playbook", "mode", "notify", "parameters", "scope"]
        .iter()
        .all(|a| v.get_attr(a).is_none_or(Value::is_known_fully))
}

fn orchestrator(ctx: &Ctx) -> Result<&Orchestrator, Diagnostics> {
    ctx.orchestrator.as_ref().ok_or_else(|| Orchestrator::missing(WHAT))
}

/// The binding, or `None` when the orchestrator has none by that name.
async fn find(orch: &Orchestrator, name: &str) -> Result<Option<api::Binding>, Diagnostics> {
    match orch.bindings().get_binding(api::GetBindingRequest { name: name.to_string() }).await {
        Ok(b) => Ok(Some(b.into_inner())),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(orch.error(&format!("reading remediation binding {name}"), &s)),
    }
}

/// 1 to 128 letters, digits, `.`, `_` or `-`.
fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A service name starting with a letter, a dot, a number: `EC2.13`, `IAM.7`, `APIGateway.1`.
fn valid_control(id: &str) -> bool {
    id.split_once('.').is_some_and(|(service, n)| {
        service.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && service.chars().all(|c| c.is_ascii_alphanumeric())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

fn binding_name(v: &Value) -> Option<String> {
    super::name_or_id(v)
}

/// The known strings of a set or list.
fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_elements().unwrap_or_default().iter().filter_map(Value::as_str)
}

fn string_map(v: &Value) -> std::collections::HashMap<String, String> {
    v.as_map()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

fn mode_to_api(mode: &str) -> api::Mode {
    match mode {
        "auto" => api::Mode::Auto,
        "approve" => api::Mode::Approve,
        "notify" => api::Mode::Notify,
        "dry_run" => api::Mode::DryRun,
        _ => api::Mode::Unspecified,
    }
}

fn mode_from_api(mode: i32) -> &'static str {
    match api::Mode::try_from(mode) {
        Ok(api::Mode::Auto) => "auto",
        Ok(api::Mode::Notify) => "notify",
        Ok(api::Mode::DryRun) => "dry_run",
        // Unspecified is stored as the default.
        _ => "approve",
    }
}

/// The planned binding as the API takes it.
fn to_api(v: &Value) -> api::Binding {
    let list = |name: &str| strings(v.get_attr(name).unwrap_or(&Value::Null)).map(str::to_string).collect();
    let scope = v.get_attr("scope").filter(|s| !s.is_null()).map(|s| {
        let list = |name: &str| strings(s.get_attr(name).unwrap_or(&Value::Null)).map(str::to_string).collect();
        api::Scope {
            accounts: list("accounts"),
            organizational_units: list("organizational_units"),
            tags: string_map(s.get_attr("tags").unwrap_or(&Value::Null)),
        }
    });
    api::Binding {
        name: binding_name(v).unwrap_or_default(),
        controls: list("controls"),
        finding_types: list("finding_types"),
        playbook: v.get_attr("playbook").and_then(Value::as_str).unwrap_or_default().to_string(),
        mode: mode_to_api(v.get_attr("mode").and_then(Value::as_str).unwrap_or(DEFAULT_MODE)) as i32,
        scope,
        notify: list("notify"),
        parameters: string_map(v.get_attr("parameters").unwrap_or(&Value::Null)),
        ..Default::default()
    }
}

/// A set of strings, or null when empty and `base` (the configuration's value) is null, so an
/// omitted attribute never shows as a diff against an empty one.
fn set_or_null(items: &[String], base: Option<&Value>) -> Value {
    if items.is_empty() && base.is_none_or(Value::is_null) {
        return Value::Null;
    }
    let mut sorted = items.to_vec();
    sorted.sort();
    sorted.dedup();
    Value::Set(sorted.into_iter().map(Value::String).collect())
}

fn map_or_null(items: &std::collections::HashMap<String, String>, base: Option<&Value>) -> Value {
    if items.is_empty() && base.is_none_or(Value::is_null) {
        return Value::Null;
    }
    Value::Map(items.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<BTreeMap<_, _>>())
}

/// The state: what the orchestrator holds, shaped like the configuration in `base`.
fn state(base: &Value, b: &api::Binding) -> Value {
    let at = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown());
    let base_scope = at("scope").filter(|s| !s.is_null());
    let scope = match &b.scope {
        Some(s)
            if base_scope.is_some()
                || !(s.accounts.is_empty() && s.organizational_units.is_empty() && s.tags.is_empty()) =>
        {
            let inner = |name: &str| base_scope.and_then(|bs| bs.get_attr(name));
            Value::Object(BTreeMap::from([
                ("accounts".to_string(), set_or_null(&s.accounts, inner("accounts"))),
                (
                    "organizational_units".to_string(),
                    set_or_null(&s.organizational_units, inner("organizational_units")),
                ),
                ("tags".to_string(), map_or_null(&s.tags, inner("tags"))),
            ]))
        }
        _ => Value::Null,
    };
    Value::Object(BTreeMap::from([
        ("id".to_string(), Value::String(b.name.clone())),
        ("name".to_string(), Value::String(b.name.clone())),
        ("controls".to_string(), set_or_null(&b.controls, at("controls"))),
        ("finding_types".to_string(), set_or_null(&b.finding_types, at("finding_types"))),
        ("playbook".to_string(), Value::String(b.playbook.clone())),
        ("mode".to_string(), Value::String(mode_from_api(b.mode).to_string())),
        ("notify".to_string(), set_or_null(&b.notify, at("notify"))),
        ("parameters".to_string(), map_or_null(&b.parameters, at("parameters"))),
        ("revision".to_string(), Value::from(b.revision)),
        ("created_by".to_string(), Value::String(b.created_by.clone())),
        ("scope".to_string(), scope),
    ]))
}

/// A violation's field (`playbook`, `controls[2]`, `parameters.min_length`, `scope.accounts[0]`)
/// as the attribute path Terraform points at. Set elements cannot be addressed, so an index
/// stops at its set.
fn field_path(field: &str) -> AttrPath {
    let mut parts = field.split('.');
    let clean = |p: &str| p.split('[').next().unwrap_or(p).to_string();
    let Some(first) = parts.next().map(clean).filter(|f| !f.is_empty()) else {
        return AttrPath::default();
    };
    match first.as_str() {
        "parameters" => match parts.next() {
            Some(key) => AttrPath::root("parameters").key(key),
            None => AttrPath::root("parameters"),
        },
        "scope" => match parts.next().map(clean) {
            Some(inner) if inner == "tags" => match parts.next() {
                Some(key) => AttrPath::root("scope").attr("tags").key(key),
                None => AttrPath::root("scope").attr("tags"),
            },
            Some(inner) => AttrPath::root("scope").attr(&inner),
            None => AttrPath::root("scope"),
        },
        other => AttrPath::root(other),
    }
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

    #[test]
    fn names_and_controls_are_checked() {
        assert!(valid_name("ec2-public-ingress_v1.2"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"x".repeat(129)));
        assert!(valid_control("EC2.13") && valid_control("APIGateway.1") && valid_control("IAM.7"));
        assert!(!valid_control("EC2") && !valid_control("EC2.") && !valid_control(".1") && !valid_control("1.10"));
    }

    #[test]
    fn violations_point_at_their_attribute() {
        assert_eq!(field_path("playbook"), AttrPath::root("playbook"));
        assert_eq!(field_path("controls[2]"), AttrPath::root("controls"));
        assert_eq!(field_path("parameters.min_length"), AttrPath::root("parameters").key("min_length"));
        assert_eq!(field_path("scope.accounts[0]"), AttrPath::root("scope").attr("accounts"));
        assert_eq!(field_path("scope.tags.team"), AttrPath::root("scope").attr("tags").key("team"));
        assert_eq!(field_path(""), AttrPath::default());
    }

    #[test]
    fn the_api_binding_round_trips_through_state() {
        let planned = obj(&[
            ("name", Value::String("ingress".into())),
            ("controls", set(&["EC2.13", "EC2.14"])),
            ("finding_types", Value::Null),
            ("playbook", Value::String("revoke-public-ingress".into())),
            ("mode", Value::String("auto".into())),
            ("notify", Value::Null),
            ("parameters", Value::Map(BTreeMap::from([("ports".into(), Value::String("22,3389".into()))]))),
            (
                "scope",
                obj(&[
                    ("accounts", set(&["333333333333"])),
                    ("organizational_units", Value::Null),
                    ("tags", Value::Null),
                ]),
            ),
        ]);
        let mut b = to_api(&planned);
        assert_eq!(b.mode, api::Mode::Auto as i32);
        assert_eq!(b.scope.as_ref().map(|s| s.accounts.clone()), Some(vec!["333333333333".to_string()]));
        b.revision = 1;
        b.created_by = "platform".into();
        let s = state(&planned, &b);
        for attr in ["name", "controls", "finding_types", "playbook", "mode", "notify", "parameters", "scope"] {
            assert_eq!(s.get_attr(attr), planned.get_attr(attr), "{attr}");
        }
        assert_eq!(s.get_attr("revision"), Some(&Value::from(1)));
        assert_eq!(s.get_attr("id"), Some(&Value::String("ingress".into())));
    }

    #[test]
    fn empty_collections_in_the_orchestrator_follow_the_configuration() {
        let b = api::Binding { name: "x".into(), playbook: "p".into(), ..Default::default() };
        let s = state(&obj(&[("controls", set(&[]))]), &b);
        assert_eq!(s.get_attr("controls"), Some(&set(&[])));
        assert_eq!(s.get_attr("finding_types"), Some(&Value::Null));
        assert_eq!(s.get_attr("scope"), Some(&Value::Null));
        assert_eq!(s.get_attr("mode"), Some(&Value::String("approve".into())));
        // Added outside Terraform: it shows, so the plan puts it back.
        let drifted = api::Binding { notify: vec!["slack".into()], ..b };
        assert_eq!(state(&obj(&[]), &drifted).get_attr("notify"), Some(&set(&["slack"])));
    }
}
