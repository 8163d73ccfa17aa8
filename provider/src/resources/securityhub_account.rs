//! `orgsec_securityhub_account`: Security Hub enabled in the provider's account and region.
//!
//! Import: `terraform import orgsec_securityhub_account.this 123456789012` (the account id).

use std::collections::BTreeMap;

use aws_sdk_securityhub::types::ControlFindingGenerator;

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct SecurityHubAccount;

const GENERATORS: &[&str] = &["SECURITY_CONTROL", "STANDARD_CONTROL"];

impl Resource for SecurityHubAccount {
    fn type_name(&self) -> &'static str {
        "orgsec_securityhub_account"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "Enables AWS Security Hub in the provider's account and region. Destroying it disables Security Hub there.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The account id.").use_state_for_unknown(),
                    Attribute::optional(
                        "enable_default_standards",
                        Type::Bool,
                        "Whether Security Hub enables its default standards (FSBP and CIS 1.2) when it is first enabled. Defaults to `false`: manage standards with `orgsec_standard`. Only read at creation.",
                    ),
                    Attribute::optional_computed(
                        "control_finding_generator",
                        Type::String,
                        "`SECURITY_CONTROL` (one consolidated finding per control and resource, the default) or `STANDARD_CONTROL` (one per standard).",
                    ),
                    Attribute::optional_computed(
                        "auto_enable_controls",
                        Type::Bool,
                        "Whether new controls of enabled standards are enabled automatically. Defaults to `true`.",
                    ),
                    Attribute::computed("hub_arn", Type::String, "ARN of the hub.").use_state_for_unknown(),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(g) = config.get_attr("control_finding_generator").and_then(Value::as_str)
            && !GENERATORS.contains(&g)
        {
            diags.error_at(
                AttrPath::root("control_finding_generator"),
                "Invalid control finding generator",
                format!("\"{g}\" is not one of {}.", GENERATORS.join(", ")),
            );
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let hub = ctx.aws.securityhub();
            let defaults = planned.get_attr("enable_default_standards").and_then(Value::as_bool).unwrap_or(false);
            let generator = planned.get_attr("control_finding_generator").and_then(Value::as_str);
            let mut req = hub.enable_security_hub().enable_default_standards(defaults);
            if let Some(g) = generator {
                req = req.control_finding_generator(ControlFindingGenerator::from(g));
            }
            if let Err(e) = req.send().await {
                let detail = if aws::code(&e) == Some("ResourceConflictException") {
                    format!(
                        "Security Hub is already enabled in account {}. Bring it under Terraform with: terraform import <address> {}",
                        ctx.aws.account_id, ctx.aws.account_id
                    )
                } else {
                    aws::describe(&e)
                };
                return Err(ctx.aws.error("enabling Security Hub", detail));
            }
            if let Some(auto) = planned.get_attr("auto_enable_controls").and_then(Value::as_bool) {
                configure(&ctx.aws, Some(auto), None).await?;
            }
            match find(&ctx.aws).await? {
                Some(found) => Ok(state(&ctx.aws, planned, &found)),
                None => Err(ctx.aws.error("reading Security Hub after enabling it", "the hub is not there".into())),
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move { Ok(find(&ctx.aws).await?.map(|found| state(&ctx.aws, current, &found))) })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let changed = |name: &str| {
                planned.get_attr(name).filter(|v| !v.is_null()).filter(|v| prior.get_attr(name) != Some(*v))
            };
            let auto = changed("auto_enable_controls").and_then(Value::as_bool);
            let generator = changed("control_finding_generator").and_then(Value::as_str).map(str::to_string);
            if auto.is_some() || generator.is_some() {
                configure(&ctx.aws, auto, generator.as_deref()).await?;
            }
            match find(&ctx.aws).await? {
                Some(found) => Ok(state(&ctx.aws, planned, &found)),
                None => {
                    Err(ctx.aws.error("updating Security Hub", "Security Hub was disabled outside Terraform".into()))
                }
            }
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, _state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            match ctx.aws.securityhub().disable_security_hub().send().await {
                Ok(_) => Ok(()),
                Err(e) if aws::code(&e) == Some("InvalidAccessException") => Ok(()),
                Err(e) => Err(ctx.aws.error("disabling Security Hub", aws::describe(&e))),
            }
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            if id != ctx.aws.account_id {
                let mut d = Diagnostics::default();
                d.error(
                    "Wrong account for import",
                    format!(
                        "The import id is the account id the provider acts in ({}), not \"{id}\". To import another account's hub, configure the provider with a role in that account.",
                        ctx.aws.account_id
                    ),
                );
                return Err(d);
            }
            let mut attrs = self.schema().block.null_state();
            attrs.insert("id".into(), Value::String(id.to_string()));
            Ok(Value::Object(attrs))
        })
    }
}

/// What DescribeHub says about the hub.
#[derive(Debug, Clone)]
struct Found {
    hub_arn: String,
    auto_enable_controls: bool,
    control_finding_generator: String,
}

/// The hub, or `None` when Security Hub is not enabled.
async fn find(aws: &Aws) -> Result<Option<Found>, Diagnostics> {
    match aws.securityhub().describe_hub().send().await {
        Ok(h) => Ok(Some(Found {
            hub_arn: h.hub_arn().unwrap_or_default().to_string(),
            auto_enable_controls: h.auto_enable_controls().unwrap_or(true),
            control_finding_generator: h
                .control_finding_generator()
                .map(|g| g.as_str().to_string())
                .unwrap_or_else(|| "SECURITY_CONTROL".into()),
        })),
        Err(e) if aws::code(&e) == Some("InvalidAccessException") => Ok(None),
        Err(e) => Err(aws.error("reading Security Hub", aws::describe(&e))),
    }
}

async fn configure(aws: &Aws, auto: Option<bool>, generator: Option<&str>) -> Result<(), Diagnostics> {
    let mut req = aws.securityhub().update_security_hub_configuration();
    if let Some(a) = auto {
        req = req.auto_enable_controls(a);
    }
    if let Some(g) = generator {
        req = req.control_finding_generator(ControlFindingGenerator::from(g));
    }
    req.send().await.map(|_| ()).map_err(|e| aws.error("configuring Security Hub", aws::describe(&e)))
}

/// The state after a call: what AWS reports, plus what only the configuration knows.
fn state(aws: &Aws, base: &Value, found: &Found) -> Value {
    let keep = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown()).cloned().unwrap_or(Value::Null);
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(aws.account_id.clone()));
    attrs.insert("enable_default_standards".to_string(), keep("enable_default_standards"));
    attrs.insert("control_finding_generator".to_string(), Value::String(found.control_finding_generator.clone()));
    attrs.insert("auto_enable_controls".to_string(), Value::Bool(found.auto_enable_controls));
    attrs.insert("hub_arn".to_string(), Value::String(found.hub_arn.clone()));
    Value::Object(attrs)
}
