//! `orgsec_standard`: a Security Hub standard enabled in the provider's account and region, with
//! the controls the configuration disables (each with its reason).
//!
//! Import: `terraform import orgsec_standard.this <subscription-arn>`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_securityhub::types::{ControlStatus, StandardsSubscription, StandardsSubscriptionRequest};
use tokio::time::Instant;

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct Standard;

/// How long an enabled standard may take to become READY, and a disabled one to go away.
const ENABLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const DISABLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Pages are bounded so that an API that keeps handing out tokens cannot keep us looping.
const MAX_PAGES: usize = 200;
/// How many control ids an unknown-control error lists.
const LISTED_CONTROLS: usize = 12;
const MAX_CONTROL_ID_LEN: usize = 64;

const READY: &str = "READY";
const DELETING: &str = "DELETING";

impl Resource for Standard {
    fn type_name(&self) -> &'static str {
        "orgsec_standard"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "A Security Hub standard enabled in the provider's account and region, with the controls it disables and why. Security Hub must be enabled first (`orgsec_securityhub_account`). Creating it waits until the standard is READY; destroying it disables the standard and waits until it is gone.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The subscription ARN.").use_state_for_unknown(),
                    Attribute::required(
                        "standard",
                        Type::String,
                        "The standard: its short id, such as `aws-foundational-security-best-practices/v/1.0.0`, `cis-aws-foundations-benchmark/v/3.0.0`, `cis-aws-foundations-benchmark/v/1.2.0`, `pci-dss/v/3.2.1` or `nist-800-53/v/5.0.0`, or its full standards ARN. A short id names the standard Security Hub offers in the provider's region. Changing it to another standard replaces the subscription; spelling the same standard differently (short id or ARN) is an in-place change.",
                    )
                    .requires_replace()
                    .equivalent_when(same_standard),
                    Attribute::optional(
                        "disabled_controls",
                        Type::map(Type::String),
                        "Controls of this standard to disable, by control id, each with the reason it is disabled (required and kept as evidence for auditors). The id is the `ControlId` that DescribeStandardsControls reports for the standard, such as `IAM.1`; the last part of the control's ARN (such as `1.10` in CIS AWS Foundations v1.2.0) is accepted too. Every other control is enabled: removing an entry re-enables its control, and a control disabled outside Terraform shows as drift and is enabled again.",
                    ),
                    Attribute::computed(
                        "standards_arn",
                        Type::String,
                        "ARN of the standard, for example `arn:aws:securityhub:us-east-1::standards/pci-dss/v/3.2.1`.",
                    )
                    .use_state_for_unknown(),
                    Attribute::computed(
                        "subscription_arn",
                        Type::String,
                        "ARN of the account's subscription to the standard (the import id).",
                    )
                    .use_state_for_unknown(),
                    Attribute::computed(
                        "status",
                        Type::String,
                        "The subscription's status as Security Hub reports it: `READY` after a successful apply; `PENDING`, `INCOMPLETE`, `FAILED` or `DELETING` otherwise.",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(s) = config.get_attr("standard").and_then(Value::as_str)
            && let Err(why) = check_standard(s)
        {
            diags.error_at(AttrPath::root("standard"), "Invalid standard", why);
        }
        if let Some(controls) = config.get_attr("disabled_controls").and_then(Value::as_map) {
            for (id, reason) in controls {
                let path = AttrPath::root("disabled_controls").key(id);
                if !valid_control_id(id) {
                    diags.error_at(
                        path.clone(),
                        "Invalid control id",
                        format!(
                            "\"{id}\" is not a control id: use the id Security Hub shows for the control in this standard, such as \"IAM.1\" or \"1.10\" (1 to {MAX_CONTROL_ID_LEN} letters, digits, '.', '-' or '_')."
                        ),
                    );
                }
                if let Some(r) = reason.as_str()
                    && r.trim().is_empty()
                {
                    diags.error_at(
                        path,
                        "Missing reason for a disabled control",
                        format!(
                            "Say why control {id} is disabled: Security Hub requires a reason, and auditors read it as evidence."
                        ),
                    );
                }
            }
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let aws = &ctx.aws;
            let Some(wanted) = planned.get_attr("standard").and_then(Value::as_str) else {
                return Err(aws.error("enabling the Security Hub standard", "the plan has no standard".into()));
            };
            let doing = format!("enabling Security Hub standard {wanted}");
            let offered = describe_standards(aws, &doing).await?;
            let Some(standards_arn) = resolve(wanted, &offered) else {
                return Err(aws.error(&doing, unknown_standard(wanted, &aws.region, &offered)));
            };
            let subs = list_subscriptions(aws, &doing).await?.ok_or_else(|| hub_off(aws, &doing, None))?;
            if let Some(existing) = subs.iter().find(|s| s.standards_arn == standards_arn && s.status != DELETING) {
                return Err(aws.error(
                    &doing,
                    format!(
                        "The standard is already enabled in this account and region (subscription {}, {}). Bring it under Terraform with: terraform import <address> {}",
                        existing.arn, existing.status, existing.arn
                    ),
                ));
            }
            let sub_arn = enable(aws, &standards_arn, &doing).await?;
            // From here on the standard is enabled: if the rest fails, it is disabled again so that
            // nothing is left that Terraform does not track.
            match converge(aws, &sub_arn, planned, &doing).await {
                Ok(state) => Ok(state),
                Err(mut d) => {
                    roll_back(aws, &sub_arn, &mut d).await;
                    Err(d)
                }
            }
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(sub_arn) = subscription_arn(current) else {
                return Ok(None);
            };
            find(&ctx.aws, &sub_arn, "reading the Security Hub standard").await.map(|found| {
                found.filter(|(sub, _)| sub.status != DELETING).map(|(sub, controls)| state(current, &sub, &controls))
            })
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let aws = &ctx.aws;
            let Some(sub_arn) = subscription_arn(prior) else {
                return Err(aws.error("updating the Security Hub standard", "the state has no subscription ARN".into()));
            };
            converge(aws, &sub_arn, planned, &format!("updating Security Hub standard {sub_arn}")).await
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let aws = &ctx.aws;
            let Some(sub_arn) = subscription_arn(state) else {
                return Ok(());
            };
            let doing = format!("disabling Security Hub standard {sub_arn}");
            match aws.securityhub().batch_disable_standards().standards_subscription_arns(&sub_arn).send().await {
                Ok(_) => {}
                // Already disabled, or Security Hub itself is: either way the standard is gone.
                Err(e) if matches!(aws::code(&e), Some("ResourceNotFoundException" | "InvalidAccessException")) => {
                    return Ok(());
                }
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
            wait_gone(aws, &sub_arn, &doing).await
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let aws = &ctx.aws;
            let cannot = |detail: String| {
                let mut d = Diagnostics::default();
                d.error("Cannot import Security Hub standard", detail);
                d
            };
            if !is_subscription_arn(id) {
                return Err(cannot(format!(
                    "\"{id}\" is not a standards subscription ARN. The import id is the subscription ARN of a standard enabled in account {}, region {}, such as arn:aws:securityhub:{}:{}:subscription/aws-foundational-security-best-practices/v/1.0.0; GetEnabledStandards lists them.",
                    aws.account_id, aws.region, aws.region, aws.account_id
                )));
            }
            let doing = "importing the Security Hub standard";
            let Some(subs) = list_subscriptions(aws, doing).await? else {
                return Err(hub_off(aws, doing, None));
            };
            if !subs.iter().any(|s| s.arn == id && s.status != DELETING) {
                let enabled: Vec<&str> = subs.iter().map(|s| s.arn.as_str()).collect();
                let listed = if enabled.is_empty() { "none".to_string() } else { enabled.join(", ") };
                return Err(cannot(format!(
                    "No standard with subscription {id} is enabled in account {}, region {}. Enabled there: {listed}.",
                    aws.account_id, aws.region
                )));
            }
            let mut attrs = self.schema().block.null_state();
            attrs.insert("id".into(), Value::String(id.to_string()));
            attrs.insert("subscription_arn".into(), Value::String(id.to_string()));
            Ok(Value::Object(attrs))
        })
    }
}

/// One enabled standard, as GetEnabledStandards reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subscription {
    arn: String,
    standards_arn: String,
    status: String,
    /// `StandardsStatusReason.StatusReasonCode`, when Security Hub gives one.
    reason: Option<String>,
}

impl Subscription {
    fn from(s: &StandardsSubscription) -> Subscription {
        Subscription {
            arn: s.standards_subscription_arn().unwrap_or_default().to_string(),
            standards_arn: s.standards_arn().unwrap_or_default().to_string(),
            status: s.standards_status().map(|x| x.as_str().to_string()).unwrap_or_default(),
            reason: s.standards_status_reason().and_then(|r| r.status_reason_code()).map(|c| c.as_str().to_string()),
        }
    }
}

/// One control of a subscribed standard, as DescribeStandardsControls reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Control {
    id: String,
    arn: String,
    /// The reason, when the control is disabled.
    disabled: Option<String>,
}

impl Control {
    /// The last part of the control's ARN, which some standards use instead of the `ControlId`
    /// (`1.10` for CIS v1.2.0's `CIS.1.10`).
    fn arn_tail(&self) -> Option<&str> {
        self.arn.rsplit_once('/').map(|(_, tail)| tail).filter(|t| !t.is_empty())
    }

    /// Whether the configuration's key `key` names this control.
    fn named(&self, key: &str) -> bool {
        self.id == key || self.arn_tail() == Some(key)
    }
}

/// One control to change: disable with the reason, or enable (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    arn: String,
    id: String,
    disable: Option<String>,
}

/// A short id, or a standards ARN (`arn:<partition>:securityhub:<region>::standards/<id>`, or
/// `ruleset/<id>` for CIS v1.2.0, whose ARN has no region).
fn check_standard(s: &str) -> Result<(), String> {
    const EXAMPLES: &str = "such as \"aws-foundational-security-best-practices/v/1.0.0\" or \"arn:aws:securityhub:us-east-1::standards/pci-dss/v/3.2.1\"";
    if is_subscription_arn(s) {
        return Err(format!(
            "\"{s}\" is a subscription ARN, not a standard. Name the standard by its short id or standards ARN, {EXAMPLES}; to manage a standard that is already enabled, import it with this subscription ARN."
        ));
    }
    if s.starts_with("arn:") {
        if standards_arn_id(s).is_some_and(valid_short_id) {
            return Ok(());
        }
        return Err(format!(
            "\"{s}\" is not a Security Hub standards ARN: it must look like arn:<partition>:securityhub:<region>::standards/<name>/v/<version> (CIS v1.2.0: arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0)."
        ));
    }
    if valid_short_id(s) {
        return Ok(());
    }
    Err(format!(
        "\"{s}\" is not a standard id: it must be <name>/v/<version> in lower case, {EXAMPLES}. DescribeStandards lists the standards of a region."
    ))
}

/// `<name>/v/<version>`: name of lower-case letters, digits and `-`; version of digits and dots.
fn valid_short_id(s: &str) -> bool {
    let Some((name, version)) = s.split_once("/v/") else { return false };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let version_ok =
        !version.is_empty() && version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && version_ok
}

/// The short id inside a standards ARN: what follows `standards/` or `ruleset/`, if the ARN is one
/// of Security Hub's standards ARNs (no account).
fn standards_arn_id(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("securityhub"), Some(_region), Some(""), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if partition.is_empty() {
        return None;
    }
    resource.strip_prefix("standards/").or_else(|| resource.strip_prefix("ruleset/"))
}

/// `arn:<partition>:securityhub:<region>:<account>:subscription/<id>`.
fn is_subscription_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "securityhub", region, account, resource]
            if !partition.is_empty() && !region.is_empty() && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("subscription/").is_some_and(|id| !id.is_empty())
    )
}

/// Whether two spellings of `standard` (short id, standards ARN) name the same standard, so that
/// switching between them updates the state in place instead of replacing the subscription.
fn same_standard(a: &Value, b: &Value) -> bool {
    let key = |s: &str| standards_arn_id(s).unwrap_or(s).to_string();
    matches!((a.as_str(), b.as_str()), (Some(x), Some(y)) if key(x) == key(y))
}

/// Whether the configured `standard` (short id or ARN) names the standard `standards_arn`.
fn names(standard: &str, standards_arn: &str) -> bool {
    standard == standards_arn || standards_arn_id(standards_arn) == Some(standard)
}

/// The offered standards ARN that `standard` names, if any.
fn resolve(standard: &str, offered: &[(String, String)]) -> Option<String> {
    offered.iter().map(|(arn, _)| arn).find(|arn| names(standard, arn)).cloned()
}

/// 1 to 64 letters, digits, `.`, `-` or `_`, starting with a letter or digit.
fn valid_control_id(id: &str) -> bool {
    id.len() <= MAX_CONTROL_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn subscription_arn(v: &Value) -> Option<String> {
    ["subscription_arn", "id"]
        .iter()
        .find_map(|name| v.get_attr(name).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The controls the configuration (or plan) disables, with their reasons.
fn desired_controls(v: &Value) -> BTreeMap<String, String> {
    v.get_attr("disabled_controls")
        .and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// The calls that take `controls` to `desired`: disable each desired control that is enabled or
/// disabled for another reason, enable each other disabled control. `Err` lists the keys that name
/// no control of the standard (or a control another key already names).
fn control_changes(controls: &[Control], desired: &BTreeMap<String, String>) -> Result<Vec<Change>, Vec<String>> {
    let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (key, reason) in desired {
        match controls.iter().find(|c| c.named(key)) {
            Some(c) if !wanted.contains_key(c.arn.as_str()) => {
                wanted.insert(c.arn.as_str(), reason.as_str());
            }
            _ => unknown.push(key.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let changes = controls
        .iter()
        .filter_map(|c| {
            let disable = match (wanted.get(c.arn.as_str()), &c.disabled) {
                (Some(want), Some(have)) if *want == have.as_str() => return None,
                (Some(want), _) => Some((*want).to_string()),
                (None, Some(_)) => None,
                (None, None) => return None,
            };
            Some(Change { arn: c.arn.clone(), id: c.id.clone(), disable })
        })
        .collect();
    Ok(changes)
}

/// The disabled controls as state: keyed as `base` (the configuration, plan or prior state) names
/// them, by `ControlId` otherwise; null when `base` has none and none is disabled.
fn disabled_state(base: &Value, controls: &[Control]) -> Value {
    let keys: BTreeSet<String> = desired_controls(base).into_keys().collect();
    let disabled: BTreeMap<String, Value> = controls
        .iter()
        .filter_map(|c| {
            let reason = c.disabled.as_ref()?;
            let key = match c.arn_tail() {
                Some(tail) if !keys.contains(&c.id) && keys.contains(tail) => tail.to_string(),
                _ => c.id.clone(),
            };
            Some((key, Value::String(reason.clone())))
        })
        .collect();
    let configured = base.get_attr("disabled_controls").is_some_and(|v| !v.is_null() && !v.is_unknown());
    if disabled.is_empty() && !configured { Value::Null } else { Value::Map(disabled) }
}

/// The state: what Security Hub reports, with `standard` spelled as `base` spells it.
fn state(base: &Value, sub: &Subscription, controls: &[Control]) -> Value {
    let standard = match base.get_attr("standard").and_then(Value::as_str) {
        Some(s) if names(s, &sub.standards_arn) => s.to_string(),
        _ => standards_arn_id(&sub.standards_arn).unwrap_or(&sub.standards_arn).to_string(),
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(sub.arn.clone()));
    attrs.insert("standard".to_string(), Value::String(standard));
    attrs.insert("disabled_controls".to_string(), disabled_state(base, controls));
    attrs.insert("standards_arn".to_string(), Value::String(sub.standards_arn.clone()));
    attrs.insert("subscription_arn".to_string(), Value::String(sub.arn.clone()));
    attrs.insert("status".to_string(), Value::String(sub.status.clone()));
    Value::Object(attrs)
}

/// The detail of a standard that is not offered in the region, with those that are.
fn unknown_standard(wanted: &str, region: &str, offered: &[(String, String)]) -> String {
    let list: Vec<String> = offered
        .iter()
        .map(|(arn, name)| {
            let id = standards_arn_id(arn).unwrap_or(arn);
            if name.is_empty() { id.to_string() } else { format!("{id} ({name})") }
        })
        .collect();
    format!(
        "Security Hub offers no standard \"{wanted}\" in {region}. Use one of: {}.",
        if list.is_empty() { "(none listed)".to_string() } else { list.join(", ") }
    )
}

/// The detail of a subscription that ended FAILED or INCOMPLETE instead of READY.
fn ended_detail(sub: &Subscription) -> String {
    let reason = sub.reason.as_deref().unwrap_or("no reason given");
    let hint = match sub.reason.as_deref() {
        Some("NO_AVAILABLE_CONFIGURATION_RECORDER") => {
            " Security Hub's controls need AWS Config recording in this account and region: add orgsec_config_recorder, then apply again."
        }
        Some("MAXIMUM_NUMBER_OF_CONFIG_RULES_EXCEEDED") => {
            " The account has reached its AWS Config rules quota: remove unused rules or ask for a higher quota, then apply again."
        }
        _ => " Check the standard in the Security Hub console, then apply again.",
    };
    format!("The standard ended {} instead of READY (status reason: {reason}).{hint}", sub.status)
}

/// The error for a call that failed because Security Hub is not enabled.
fn hub_off(aws: &Aws, doing: &str, cause: Option<String>) -> Diagnostics {
    let cause = cause.map(|c| format!(" ({c})")).unwrap_or_default();
    aws.error(
        doing,
        format!(
            "Security Hub is not enabled in account {}, region {}{cause}. Enable it first: add an orgsec_securityhub_account resource to this configuration and make this standard depend on it (depends_on = [orgsec_securityhub_account.this]).",
            aws.account_id, aws.region
        ),
    )
}

/// Appends `text` to the detail of the last diagnostic.
fn append_detail(d: &mut Diagnostics, text: &str) {
    if let Some(last) = d.0.last_mut() {
        last.detail = format!("{} {text}", last.detail);
    }
}

/// Enables the standard and returns its subscription ARN.
async fn enable(aws: &Aws, standards_arn: &str, doing: &str) -> Result<String, Diagnostics> {
    let request = StandardsSubscriptionRequest::builder().standards_arn(standards_arn).build();
    let answer = aws.securityhub().batch_enable_standards().standards_subscription_requests(request).send().await;
    let enabled = match answer {
        Ok(out) => {
            out.standards_subscriptions().iter().find_map(|s| s.standards_subscription_arn()).map(str::to_string)
        }
        Err(e) if aws::code(&e) == Some("InvalidAccessException") => {
            return Err(hub_off(aws, doing, Some(aws::describe(&e))));
        }
        Err(e) => return Err(aws.error(doing, aws::describe(&e))),
    };
    if let Some(arn) = enabled {
        return Ok(arn);
    }
    // Not in the answer: look it up.
    let subs = list_subscriptions(aws, doing).await?.unwrap_or_default();
    match subs.into_iter().find(|s| s.standards_arn == standards_arn) {
        Some(s) => Ok(s.arn),
        None => {
            Err(aws
                .error(doing, "BatchEnableStandards succeeded, but the standard is not among the enabled ones".into()))
        }
    }
}

/// Waits for READY, sets the controls as `planned` wants them and reads the result back.
async fn converge(aws: &Aws, sub_arn: &str, planned: &Value, doing: &str) -> Result<Value, Diagnostics> {
    let sub = wait_ready(aws, sub_arn, doing).await?;
    let desired = desired_controls(planned);
    let controls = list_controls(aws, sub_arn, doing).await?.ok_or_else(|| gone(aws, sub_arn, doing))?;
    let changes = control_changes(&controls, &desired).map_err(|unknown| {
        let ids: Vec<&str> = controls.iter().map(|c| c.id.as_str()).collect();
        let mut listed = ids.iter().take(LISTED_CONTROLS).copied().collect::<Vec<_>>().join(", ");
        if ids.len() > LISTED_CONTROLS {
            listed.push_str(&format!(", … ({} in all; DescribeStandardsControls lists them)", ids.len()));
        }
        aws.error(
            doing,
            format!(
                "disabled_controls names {} that {} not a control of {} (or that another entry already names). Its control ids are: {listed}.",
                unknown.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "),
                if unknown.len() == 1 { "is" } else { "are" },
                sub.standards_arn
            ),
        )
    })?;
    let hub = aws.securityhub();
    for c in changes {
        let mut req = hub.update_standards_control().standards_control_arn(&c.arn);
        req = match &c.disable {
            Some(reason) => req.control_status(ControlStatus::Disabled).disabled_reason(reason),
            None => req.control_status(ControlStatus::Enabled),
        };
        req.send().await.map_err(|e| {
            let what = if c.disable.is_some() { "disabling" } else { "enabling" };
            aws.error(&format!("{what} control {} of {}", c.id, sub.standards_arn), aws::describe(&e))
        })?;
    }
    match find(aws, sub_arn, doing).await? {
        Some((sub, controls)) => Ok(state(planned, &sub, &controls)),
        None => Err(gone(aws, sub_arn, doing)),
    }
}

fn gone(aws: &Aws, sub_arn: &str, doing: &str) -> Diagnostics {
    aws.error(
        doing,
        format!("Standards subscription {sub_arn} was disabled outside Terraform. Apply again to enable it."),
    )
}

/// After a failed create: disables the standard again, and says so in `d`.
async fn roll_back(aws: &Aws, sub_arn: &str, d: &mut Diagnostics) {
    match aws.securityhub().batch_disable_standards().standards_subscription_arns(sub_arn).send().await {
        Ok(_) => append_detail(d, "The standard was disabled again, so nothing is left that Terraform does not track."),
        Err(e) if aws::code(&e) == Some("ResourceNotFoundException") => {}
        Err(e) => append_detail(
            d,
            &format!(
                "Disabling the standard again failed too ({}): it is still enabled. Disable it, or bring it under Terraform with: terraform import <address> {sub_arn}",
                aws::describe(&e)
            ),
        ),
    }
}

/// Polls with growing pauses (0.5 s doubling up to 5 s) until a deadline.
struct Poll {
    deadline: Instant,
    pause: Duration,
}

impl Poll {
    fn new(timeout: Duration) -> Poll {
        Poll { deadline: Instant::now() + timeout, pause: Duration::from_millis(500) }
    }

    /// Pauses before the next poll; `false` once the deadline has passed.
    async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = grow(self.pause);
        true
    }
}

/// The pause after `pause`: twice as long, at most 5 s.
fn grow(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_secs(5))
}

/// Waits until the subscription is READY; FAILED, INCOMPLETE, gone or the deadline is an error.
async fn wait_ready(aws: &Aws, sub_arn: &str, doing: &str) -> Result<Subscription, Diagnostics> {
    let mut poll = Poll::new(ENABLE_TIMEOUT);
    loop {
        let subs = list_subscriptions(aws, doing).await?.ok_or_else(|| hub_off(aws, doing, None))?;
        let Some(sub) = subs.into_iter().find(|s| s.arn == sub_arn) else {
            return Err(gone(aws, sub_arn, doing));
        };
        match sub.status.as_str() {
            READY => return Ok(sub),
            "FAILED" | "INCOMPLETE" | DELETING => return Err(aws.error(doing, ended_detail(&sub))),
            _ => {}
        }
        if !poll.pause().await {
            return Err(aws.error(
                doing,
                format!(
                    "The standard is still {} after {} minutes, and its controls can only be changed once it is READY. Apply again later to finish.",
                    sub.status,
                    ENABLE_TIMEOUT.as_secs() / 60
                ),
            ));
        }
    }
}

/// Waits until the subscription is gone (or Security Hub is disabled altogether).
async fn wait_gone(aws: &Aws, sub_arn: &str, doing: &str) -> Result<(), Diagnostics> {
    let mut poll = Poll::new(DISABLE_TIMEOUT);
    loop {
        let Some(subs) = list_subscriptions(aws, doing).await? else {
            return Ok(());
        };
        let Some(sub) = subs.into_iter().find(|s| s.arn == sub_arn) else {
            return Ok(());
        };
        if !poll.pause().await {
            return Err(aws.error(
                doing,
                format!(
                    "The standard is still {} after {} minutes. Check it in the Security Hub console, then destroy again.",
                    sub.status,
                    DISABLE_TIMEOUT.as_secs() / 60
                ),
            ));
        }
    }
}

/// The subscription and its controls, or `None` when it (or Security Hub) is gone.
async fn find(aws: &Aws, sub_arn: &str, doing: &str) -> Result<Option<(Subscription, Vec<Control>)>, Diagnostics> {
    let Some(subs) = list_subscriptions(aws, doing).await? else {
        return Ok(None);
    };
    let Some(sub) = subs.into_iter().find(|s| s.arn == sub_arn) else {
        return Ok(None);
    };
    Ok(list_controls(aws, sub_arn, doing).await?.map(|controls| (sub, controls)))
}

/// The standards Security Hub offers in the region: (ARN, name).
async fn describe_standards(aws: &Aws, doing: &str) -> Result<Vec<(String, String)>, Diagnostics> {
    let hub = aws.securityhub();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = match hub.describe_standards().set_next_token(token.take()).send().await {
            Ok(p) => p,
            Err(e) if aws::code(&e) == Some("InvalidAccessException") => {
                return Err(hub_off(aws, doing, Some(aws::describe(&e))));
            }
            Err(e) => return Err(aws.error(doing, format!("listing the standards: {}", aws::describe(&e)))),
        };
        out.extend(
            page.standards()
                .iter()
                .filter_map(|s| Some((s.standards_arn()?.to_string(), s.name().unwrap_or_default().to_string()))),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The account's enabled standards, or `None` when Security Hub is not enabled.
async fn list_subscriptions(aws: &Aws, doing: &str) -> Result<Option<Vec<Subscription>>, Diagnostics> {
    let hub = aws.securityhub();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = match hub.get_enabled_standards().set_next_token(token.take()).send().await {
            Ok(p) => p,
            Err(e) if aws::code(&e) == Some("InvalidAccessException") => return Ok(None),
            Err(e) => {
                return Err(aws.error(doing, format!("listing the enabled standards: {}", aws::describe(&e))));
            }
        };
        out.extend(page.standards_subscriptions().iter().map(Subscription::from));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(Some(out))
}

/// The controls of a subscription, or `None` when it (or Security Hub) is gone.
async fn list_controls(aws: &Aws, sub_arn: &str, doing: &str) -> Result<Option<Vec<Control>>, Diagnostics> {
    let hub = aws.securityhub();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let req = hub.describe_standards_controls().standards_subscription_arn(sub_arn).max_results(100);
        let page = match req.set_next_token(token.take()).send().await {
            Ok(p) => p,
            Err(e) if matches!(aws::code(&e), Some("ResourceNotFoundException" | "InvalidAccessException")) => {
                return Ok(None);
            }
            Err(e) => {
                return Err(aws.error(doing, format!("listing the controls of {sub_arn}: {}", aws::describe(&e))));
            }
        };
        out.extend(page.controls().iter().filter_map(|c| {
            let disabled = c.control_status() == Some(&ControlStatus::Disabled);
            Some(Control {
                id: c.control_id()?.to_string(),
                arn: c.standards_control_arn()?.to_string(),
                disabled: disabled.then(|| c.disabled_reason().unwrap_or_default().to_string()),
            })
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FSBP: &str = "arn:aws:securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0";
    const CIS_12: &str = "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0";
    const SUB: &str =
        "arn:aws:securityhub:us-east-1:666666666666:subscription/aws-foundational-security-best-practices/v/1.0.0";

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn map(pairs: &[(&str, &str)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
    }

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn control(id: &str, tail: &str, disabled: Option<&str>) -> Control {
        Control {
            id: id.into(),
            arn: format!(
                "arn:aws:securityhub:us-east-1:666666666666:control/cis-aws-foundations-benchmark/v/1.2.0/{tail}"
            ),
            disabled: disabled.map(str::to_string),
        }
    }

    fn sub(status: &str) -> Subscription {
        Subscription { arn: SUB.into(), standards_arn: FSBP.into(), status: status.into(), reason: None }
    }

    fn paths(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::default();
        Standard.validate(config, &mut diags);
        diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect()
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in Standard.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn standards_are_short_ids_or_standards_arns() {
        for ok in [
            "aws-foundational-security-best-practices/v/1.0.0",
            "cis-aws-foundations-benchmark/v/1.2.0",
            "nist-800-53/v/5.0.0",
            FSBP,
            CIS_12,
            "arn:aws-us-gov:securityhub:us-gov-west-1::standards/pci-dss/v/3.2.1",
        ] {
            assert!(check_standard(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "FSBP",
            "pci-dss",
            "pci-dss/v/",
            "pci-dss/v/3..1",
            "PCI-DSS/v/3.2.1",
            "pci dss/v/3.2.1",
            "arn:aws:securityhub:us-east-1:123456789012:standards/pci-dss/v/3.2.1",
            "arn:aws:s3:::standards/pci-dss/v/3.2.1",
            "arn:aws:securityhub:us-east-1::control/pci-dss/v/3.2.1",
        ] {
            assert!(check_standard(bad).is_err(), "{bad}");
        }
        let sub = check_standard(SUB).unwrap_err();
        assert!(sub.contains("subscription ARN") && sub.contains("import"), "{sub}");
    }

    #[test]
    fn short_ids_resolve_to_the_offered_arn_including_the_cis_ruleset_form() {
        let offered = vec![(FSBP.to_string(), "FSBP".to_string()), (CIS_12.to_string(), "CIS 1.2".to_string())];
        assert_eq!(resolve("aws-foundational-security-best-practices/v/1.0.0", &offered).as_deref(), Some(FSBP));
        assert_eq!(resolve("cis-aws-foundations-benchmark/v/1.2.0", &offered).as_deref(), Some(CIS_12));
        assert_eq!(resolve(FSBP, &offered).as_deref(), Some(FSBP));
        assert_eq!(resolve("pci-dss/v/3.2.1", &offered), None);
        let other_region = FSBP.replace("us-east-1", "eu-west-1");
        assert_eq!(resolve(&other_region, &offered), None);
        let text = unknown_standard("pci-dss/v/3.2.1", "us-east-1", &offered);
        assert!(text.contains("aws-foundational-security-best-practices/v/1.0.0 (FSBP)"), "{text}");
        assert!(text.contains("cis-aws-foundations-benchmark/v/1.2.0 (CIS 1.2)"), "{text}");
    }

    #[test]
    fn subscription_arns_are_recognized() {
        assert!(is_subscription_arn(SUB));
        assert!(!is_subscription_arn(FSBP));
        assert!(!is_subscription_arn("arn:aws:securityhub:us-east-1:666666666666:subscription/"));
        assert!(!is_subscription_arn("666666666666"));
    }

    #[test]
    fn control_ids_are_validated() {
        for ok in ["IAM.1", "CIS.1.10", "1.10", "PCI.AutoScaling.1", "EC2_1-x"] {
            assert!(valid_control_id(ok), "{ok}");
        }
        for bad in ["", "IAM 1", "IAM/1", ".1", &"A".repeat(65)] {
            assert!(!valid_control_id(bad), "{bad}");
        }
    }

    #[test]
    fn invalid_standard_control_id_and_empty_reason_are_reported_on_their_attributes() {
        assert_eq!(paths(&obj(&[("standard", Value::String("fsbp".into()))])), ["standard"]);
        let config = obj(&[("disabled_controls", map(&[("IAM 1", "why"), ("IAM.2", "  ")]))]);
        assert_eq!(paths(&config), ["disabled_controls[\"IAM 1\"]", "disabled_controls[\"IAM.2\"]"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        for config in [
            obj(&[
                ("standard", Value::String("pci-dss/v/3.2.1".into())),
                ("disabled_controls", map(&[("IAM.1", "x")])),
            ]),
            obj(&[("standard", Value::Unknown), ("disabled_controls", Value::Unknown)]),
            obj(&[("disabled_controls", Value::Map([("IAM.1".to_string(), Value::Unknown)].into()))]),
        ] {
            assert!(paths(&config).is_empty(), "{config:?}");
        }
    }

    #[test]
    fn changes_disable_wanted_controls_and_enable_the_others() {
        let controls = [
            control("IAM.1", "IAM.1", None),
            control("IAM.2", "IAM.2", Some("old")),
            control("IAM.3", "IAM.3", Some("kept")),
            control("IAM.4", "IAM.4", Some("out of band")),
            control("IAM.5", "IAM.5", None),
        ];
        let desired = strings(&[("IAM.1", "new"), ("IAM.2", "changed"), ("IAM.3", "kept")]);
        let changes = control_changes(&controls, &desired).unwrap();
        let summary: Vec<(&str, Option<&str>)> =
            changes.iter().map(|c| (c.id.as_str(), c.disable.as_deref())).collect();
        assert_eq!(summary, [("IAM.1", Some("new")), ("IAM.2", Some("changed")), ("IAM.4", None)]);
        assert_eq!(control_changes(&controls, &BTreeMap::new()).unwrap().len(), 3);
    }

    #[test]
    fn changes_accept_the_arn_tail_and_reject_unknown_or_repeated_controls() {
        let controls = [control("CIS.1.10", "1.10", None), control("CIS.1.11", "1.11", None)];
        let changes = control_changes(&controls, &strings(&[("1.10", "okta")])).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes.first().map(|c| c.id.as_str()), Some("CIS.1.10"));
        let err = control_changes(&controls, &strings(&[("Nope.1", "x"), ("1.11", "y")])).unwrap_err();
        assert_eq!(err, ["Nope.1"]);
        let twice = control_changes(&controls, &strings(&[("1.10", "a"), ("CIS.1.10", "b")])).unwrap_err();
        assert_eq!(twice.len(), 1);
    }

    #[test]
    fn state_keys_controls_as_the_configuration_does_and_shows_out_of_band_ones() {
        let controls = [
            control("CIS.1.10", "1.10", Some("okta")),
            control("CIS.1.11", "1.11", Some("outside")),
            control("CIS.1.12", "1.12", None),
        ];
        let base = obj(&[("disabled_controls", map(&[("1.10", "okta")]))]);
        assert_eq!(disabled_state(&base, &controls), map(&[("1.10", "okta"), ("CIS.1.11", "outside")]));
        assert_eq!(disabled_state(&obj(&[]), &controls[2..]), Value::Null);
        let empty = obj(&[("disabled_controls", map(&[]))]);
        assert_eq!(disabled_state(&empty, &controls[2..]), map(&[]));
    }

    #[test]
    fn state_keeps_the_configured_spelling_of_the_standard() {
        let short = obj(&[("standard", Value::String("aws-foundational-security-best-practices/v/1.0.0".into()))]);
        let s = state(&short, &sub("READY"), &[]);
        assert_eq!(s.get_attr("standard"), short.get_attr("standard"));
        assert_eq!(s.get_attr("standards_arn"), Some(&Value::String(FSBP.into())));
        assert_eq!(s.get_attr("id"), Some(&Value::String(SUB.into())));
        assert_eq!(s.get_attr("status"), Some(&Value::String("READY".into())));
        let arn = obj(&[("standard", Value::String(FSBP.into()))]);
        assert_eq!(state(&arn, &sub("READY"), &[]).get_attr("standard"), Some(&Value::String(FSBP.into())));
        // Imported: no spelling yet, so the short id.
        let imported = state(&obj(&[]), &sub("READY"), &[]);
        assert_eq!(
            imported.get_attr("standard"),
            Some(&Value::String("aws-foundational-security-best-practices/v/1.0.0".into()))
        );
    }

    #[test]
    fn failed_and_incomplete_subscriptions_say_why() {
        let failed = Subscription { reason: Some("NO_AVAILABLE_CONFIGURATION_RECORDER".into()), ..sub("FAILED") };
        let text = ended_detail(&failed);
        assert!(text.contains("FAILED") && text.contains("NO_AVAILABLE_CONFIGURATION_RECORDER"), "{text}");
        assert!(text.contains("orgsec_config_recorder"), "{text}");
        let text = ended_detail(&sub("INCOMPLETE"));
        assert!(text.contains("INCOMPLETE") && text.contains("no reason given"), "{text}");
    }

    #[test]
    fn polling_pauses_double_up_to_five_seconds() {
        let mut pause = Poll::new(ENABLE_TIMEOUT).pause;
        let mut seen = vec![pause];
        for _ in 0..5 {
            pause = grow(pause);
            seen.push(pause);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 5000, 5000]);
    }
}
