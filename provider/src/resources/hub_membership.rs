//! `orgsec_hub_membership`: an account made a member of the provider's account in Security Hub and
//! GuardDuty, run in the administrator account (the organization's delegated administrator for
//! accounts in the organization; any account with the services on, by invitation, for the others).
//!
//! Create runs the whole sequence and waits, polling until a deadline, until every service reports
//! the member `Enabled`: Security Hub CreateMembers (+ InviteMembers); GuardDuty ListDetectors, then
//! CreateMembers (+ InviteMembers); with `accept_role_arn`, AcceptAdministratorInvitation in the
//! member account. Errors that only mean "not yet" (the delegation has not reached the service, the
//! invitation has not arrived) are retried until the deadline.
//!
//! Import: `terraform import orgsec_hub_membership.this 666666666666` (the member account id).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_securityhub::types::AccountDetails;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

use crate::aws::{self, Aws};
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct HubMembership;

/// What `timeout` is when the configuration leaves it out.
const DEFAULT_TIMEOUT: &str = "5m";
/// The longest `timeout` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Polling starts this fast and slows down to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);
const ENABLED: &str = "Enabled";
/// Member statuses that mean the account is no longer a member (the record only remains).
const ENDED: &[&str] = &["Removed", "Resigned", "Deleted", "EmailVerificationFailed"];

/// A service a membership spans, in the order the resource enrolls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Service {
    SecurityHub,
    GuardDuty,
}

impl Service {
    const ALL: [Service; 2] = [Service::SecurityHub, Service::GuardDuty];

    /// The name in `services` and `status`.
    fn name(self) -> &'static str {
        match self {
            Service::SecurityHub => "securityhub",
            Service::GuardDuty => "guardduty",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Service::SecurityHub => "Security Hub",
            Service::GuardDuty => "GuardDuty",
        }
    }

    fn parse(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl Resource for HubMembership {
    fn type_name(&self) -> &'static str {
        "orgsec_hub_membership"
    }

    fn identity(&self) -> Option<crate::framework::Identity> {
        Some(crate::framework::Identity::Aws("id"))
    }

    fn schema(&self) -> Schema {
        let all_services = Value::Set(Service::ALL.iter().map(|s| Value::String(s.name().into())).collect());
        Schema {
            version: 0,
            block: Block {
                description: "Makes an account a member of the provider's account in Security Hub and GuardDuty, and waits until both report it `Enabled`. Use it in the organization's delegated administrator account for accounts of the organization, or with `invite = true` for accounts outside it. Destroying it disassociates and deletes the member in each service.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "The member account id.").use_state_for_unknown(),
                    Attribute::required(
                        "account_id",
                        Type::String,
                        "The 12-digit id of the member account. Changing it replaces the membership.",
                    )
                    .requires_replace(),
                    Attribute::optional_computed(
                        "email",
                        Type::String,
                        "Email address of the member account's owner. Required with `invite = true` (the invitation goes to it); optional for accounts of the organization. When left out, it is what the services report. Changing it replaces the membership.",
                    )
                    .requires_replace()
                    .use_state_for_unknown(),
                    Attribute::optional_computed(
                        "services",
                        Type::set(Type::String),
                        "The services the account is a member in: `securityhub`, `guardduty` or both (the default). Adding or removing one changes the membership in place.",
                    )
                    .default_value(all_services),
                    Attribute::optional_computed(
                        "invite",
                        Type::Bool,
                        "`true` for an account outside the organization: it is invited, and is a member once it accepts (see `accept_role_arn`). Defaults to `false`: the organization path, where the delegated administrator enables the account directly. Used when a service is added.",
                    )
                    .default_value(false),
                    Attribute::optional(
                        "accept_role_arn",
                        Type::String,
                        "With `invite = true`: a role in the member account that the provider assumes to accept the invitations (AcceptAdministratorInvitation in each service). Security Hub and a GuardDuty detector must already be on in the member account. Without it, the member accepts by itself and the resource waits for it. Used when a service is added.",
                    ),
                    Attribute::optional(
                        "accept_external_id",
                        Type::String,
                        "The external ID the trust policy of `accept_role_arn` requires, if any.",
                    )
                    .sensitive(),
                    Attribute::optional_computed(
                        "timeout",
                        Type::String,
                        "How long creating or adding a service may wait for every service to report the member `Enabled`, as a duration such as `90s`, `5m` (the default) or `1h30m`. Errors that only mean \"not yet\" (a delegation or invitation still on its way) are retried until then.",
                    )
                    .default_value(DEFAULT_TIMEOUT),
                    Attribute::computed(
                        "status",
                        Type::map(Type::String),
                        "The member's status per service as the service reports it: Security Hub's MemberStatus and GuardDuty's RelationshipStatus (`Enabled` once applied).",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let text = |name: &str| config.get_attr(name).and_then(Value::as_str);
        let is_null = |name: &str| config.get_attr(name).is_none_or(Value::is_null);
        let account = text("account_id");
        if let Some(a) = account
            && !valid_account_id(a)
        {
            diags.error_at(
                AttrPath::root("account_id"),
                "Invalid account id",
                format!("\"{a}\" is not an AWS account id: it must be exactly 12 digits."),
            );
        }
        if let Some(names) = config.get_attr("services").and_then(Value::as_elements) {
            let path = AttrPath::root("services");
            if names.is_empty() {
                diags.error_at(
                    path.clone(),
                    "No services",
                    "services must name at least one of securityhub and guardduty; to end the membership, remove the resource.",
                );
            }
            for name in names.iter().filter_map(Value::as_str).filter(|n| Service::parse(n).is_none()) {
                diags.error_at(
                    path.clone(),
                    "Unknown service",
                    format!("\"{name}\" is not a service a membership can span: use securityhub, guardduty or both."),
                );
            }
        }
        if let Some(e) = text("email")
            && !valid_email(e)
        {
            diags.error_at(
                AttrPath::root("email"),
                "Invalid email",
                format!("\"{e}\" is not an email address: it needs one @ and a domain with a dot, 6 to 64 characters, no spaces."),
            );
        }
        // Left out means false; an unknown value cannot be checked yet.
        let invite = match config.get_attr("invite") {
            None | Some(Value::Null) => Some(false),
            Some(v) => v.as_bool(),
        };
        if invite == Some(true) && is_null("email") {
            diags.error_at(
                AttrPath::root("invite"),
                "An invitation needs an email",
                "With invite = true, set email to the member account's email address: the invitation is sent to it.",
            );
        }
        if let Some(arn) = text("accept_role_arn") {
            let path = AttrPath::root("accept_role_arn");
            match role_account(arn) {
                None => diags.error_at(
                    path,
                    "Invalid role ARN",
                    format!("\"{arn}\" is not an IAM role ARN such as arn:aws:iam::123456789012:role/Name."),
                ),
                Some(owner) if account.is_some_and(|a| valid_account_id(a) && a != owner) => diags.error_at(
                    path,
                    "The accepting role must be in the member account",
                    format!(
                        "{arn} is a role in account {owner}, but the member account is {}: the invitation can only be accepted in the member account.",
                        account.unwrap_or_default()
                    ),
                ),
                Some(_) if invite == Some(false) => diags.error_at(
                    path,
                    "accept_role_arn needs invite = true",
                    "Only an invitation is accepted: accounts of the organization are enabled by the delegated administrator directly. Set invite = true, or remove accept_role_arn.",
                ),
                Some(_) => {}
            }
        }
        if !is_null("accept_external_id") && is_null("accept_role_arn") {
            diags.error_at(
                AttrPath::root("accept_external_id"),
                "accept_external_id needs accept_role_arn",
                "The external ID is only sent when assuming accept_role_arn. Set accept_role_arn, or remove accept_external_id.",
            );
        }
        if let Some(t) = text("timeout")
            && parse_duration(t).is_none()
        {
            diags.error_at(
                AttrPath::root("timeout"),
                "Invalid timeout",
                format!(
                    "\"{t}\" is not a duration from 1s to 24h: write a number and a unit (h, m or s), such as 90s, 5m or 1h30m."
                ),
            );
        }
    }

    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let w = Wanted::from(planned).map_err(|e| ctx.aws.error("adding the member account", e))?;
            if w.account == ctx.aws.account_id {
                return Err(ctx.aws.error(
                    &format!("adding member account {}", w.account),
                    "An account cannot be a member of itself: account_id must be another account than the one the provider acts in.".into(),
                ));
            }
            let mut pacer = Pacer::new(w.timeout);
            join(ctx, &w, &w.services, &mut pacer).await?;
            let found = find(&ctx.aws, &w.account, &w.services).await?;
            Ok(state(planned, &w.account, &w.services, &found))
        })
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, current: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let Some(account) = account_of(current) else {
                return Ok(None);
            };
            // Only the services this resource manages: a membership in another service is someone
            // else's. After an import nothing is managed yet, so both are read.
            let managed = services_of(current).filter(|s| !s.is_empty()).unwrap_or_else(|| Service::ALL.to_vec());
            let found = find(&ctx.aws, &account, &managed).await?;
            let present = member_services(&found);
            if present.is_empty() {
                return Ok(None);
            }
            Ok(Some(state(current, &account, &present, &found)))
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let w = Wanted::from(planned).map_err(|e| ctx.aws.error("updating the membership", e))?;
            let before = services_of(prior).unwrap_or_default();
            let (added, removed) = service_changes(&before, &w.services);
            for s in removed {
                remove(&ctx.aws, s, &w.account).await?;
            }
            if !added.is_empty() {
                let mut pacer = Pacer::new(w.timeout);
                join(ctx, &w, &added, &mut pacer).await?;
            }
            let found = find(&ctx.aws, &w.account, &w.services).await?;
            Ok(state(planned, &w.account, &w.services, &found))
        })
    }

    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let Some(account) = account_of(state) else {
                return Ok(());
            };
            for s in services_of(state).unwrap_or_else(|| Service::ALL.to_vec()) {
                remove(&ctx.aws, s, &account).await?;
            }
            Ok(())
        })
    }

    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let mut d = Diagnostics::default();
            if !valid_account_id(id) {
                d.error(
                    "Cannot import hub membership",
                    format!("\"{id}\" is not an account id: the import id is the 12-digit id of the member account."),
                );
                return Err(d);
            }
            let found = find(&ctx.aws, id, &Service::ALL).await?;
            if member_services(&found).is_empty() {
                d.error(
                    "Cannot import hub membership",
                    format!(
                        "Account {id} is not a member of account {} in Security Hub or GuardDuty in {}. The import id is the id of a member account of the administrator the provider acts as; list them with ListMembers.",
                        ctx.aws.account_id, ctx.aws.region
                    ),
                );
                return Err(d);
            }
            // An account outside the organization can only have joined by invitation.
            let invited = in_organization(&ctx.aws, id).await == Some(false);
            let mut attrs = self.schema().block.null_state();
            attrs.insert("id".into(), Value::String(id.to_string()));
            attrs.insert("account_id".into(), Value::String(id.to_string()));
            attrs.insert("invite".into(), Value::Bool(invited));
            Ok(Value::Object(attrs))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// What the plan asks for

/// The membership a plan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    account: String,
    email: Option<String>,
    services: Vec<Service>,
    invite: bool,
    /// The role to assume in the member account to accept, with its external ID.
    accept: Option<(String, Option<String>)>,
    timeout: Duration,
}

impl Wanted {
    fn from(planned: &Value) -> Result<Wanted, String> {
        let text = |name: &str| planned.get_attr(name).and_then(Value::as_str).map(str::to_string);
        let account = account_of(planned).ok_or("the plan has no account_id")?;
        let default_timeout = parse_duration(DEFAULT_TIMEOUT).unwrap_or(Duration::from_secs(300));
        Ok(Wanted {
            account,
            email: text("email").filter(|e| !e.is_empty()),
            services: services_of(planned).unwrap_or_else(|| Service::ALL.to_vec()),
            invite: planned.get_attr("invite").and_then(Value::as_bool).unwrap_or(false),
            accept: text("accept_role_arn").map(|role| (role, text("accept_external_id"))),
            timeout: text("timeout").as_deref().and_then(parse_duration).unwrap_or(default_timeout),
        })
    }
}

fn account_of(v: &Value) -> Option<String> {
    ["account_id", "id"]
        .iter()
        .find_map(|name| v.get_attr(name).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The known services of a configuration, plan or state, sorted; `None` when null or unknown.
fn services_of(v: &Value) -> Option<Vec<Service>> {
    let names = v.get_attr("services")?.as_elements()?;
    let set: BTreeSet<Service> = names.iter().filter_map(Value::as_str).filter_map(Service::parse).collect();
    Some(set.into_iter().collect())
}

/// The services to add and to remove to go from `before` to `after`.
fn service_changes(before: &[Service], after: &[Service]) -> (Vec<Service>, Vec<Service>) {
    let added = after.iter().filter(|s| !before.contains(s)).copied().collect();
    let removed = before.iter().filter(|s| !after.contains(s)).copied().collect();
    (added, removed)
}

fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The rules GuardDuty states for a member's email, loosely: 6 to 64 ASCII characters, one `@`,
/// something before it and a dotted domain after it, no whitespace.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    (6..=64).contains(&e.len())
        && e.is_ascii()
        && !e.chars().any(char::is_whitespace)
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
}

/// The account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<name>`), if it is one.
fn role_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("role/")?;
    (partition.starts_with("aws") && valid_account_id(account) && !name.is_empty()).then_some(account)
}

/// A duration such as `90s`, `5m` or `1h30m` (numbers each followed by `h`, `m` or `s`), from one
/// second to [`MAX_TIMEOUT`].
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut units = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let seconds = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(seconds)?)?;
        units += 1;
    }
    let d = Duration::from_secs(total);
    (digits.is_empty() && units > 0 && total > 0 && d <= MAX_TIMEOUT).then_some(d)
}

/// `90s`, `5m`, `1h30m`: how a duration is shown in messages.
fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    let mut out = String::new();
    for (n, unit) in [(s / 3600, 'h'), (s / 60 % 60, 'm'), (s % 60, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

// ---------------------------------------------------------------------------------------------
// State

/// A member record as a service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    status: String,
    email: Option<String>,
}

/// The services in which the account is a member (its record has not ended).
fn member_services(found: &BTreeMap<Service, Member>) -> Vec<Service> {
    found.iter().filter(|(_, m)| !ENDED.contains(&m.status.as_str())).map(|(s, _)| *s).collect()
}

/// The state after a call: `services` and what they report, plus what only the configuration
/// knows.
fn state(base: &Value, account: &str, services: &[Service], found: &BTreeMap<Service, Member>) -> Value {
    let keep = |name: &str| base.get_attr(name).filter(|v| !v.is_unknown()).cloned().unwrap_or(Value::Null);
    // The configured email stands (the services may not echo it back); else what they report.
    let reported = [Service::GuardDuty, Service::SecurityHub]
        .iter()
        .filter_map(|s| found.get(s)?.email.clone())
        .find(|e| !e.is_empty());
    let email = match keep("email") {
        Value::Null => reported.map(Value::String).unwrap_or(Value::Null),
        kept => kept,
    };
    let status = services
        .iter()
        .filter_map(|s| Some((s.name().to_string(), Value::String(found.get(s)?.status.clone()))))
        .collect();
    let or = |v: Value, default: Value| if v.is_null() { default } else { v };
    let mut attrs = BTreeMap::new();
    attrs.insert("id".to_string(), Value::String(account.to_string()));
    attrs.insert("account_id".to_string(), Value::String(account.to_string()));
    attrs.insert("email".to_string(), email);
    attrs.insert("services".to_string(), Value::Set(services.iter().map(|s| Value::String(s.name().into())).collect()));
    attrs.insert("invite".to_string(), or(keep("invite"), Value::Bool(false)));
    attrs.insert("accept_role_arn".to_string(), keep("accept_role_arn"));
    attrs.insert("accept_external_id".to_string(), keep("accept_external_id"));
    attrs.insert("timeout".to_string(), or(keep("timeout"), Value::String(DEFAULT_TIMEOUT.into())));
    attrs.insert("status".to_string(), Value::Map(status));
    Value::Object(attrs)
}

// ---------------------------------------------------------------------------------------------
// The sequence

/// Paces polling until a deadline: short pauses first, longer ones later.
struct Pacer {
    started: Instant,
    deadline: Instant,
    pause: Duration,
}

impl Pacer {
    fn new(timeout: Duration) -> Pacer {
        let started = Instant::now();
        Pacer { started, deadline: started + timeout, pause: FIRST_PAUSE }
    }

    /// Waits before the next attempt; `false`, without waiting, once the deadline has passed.
    async fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }

    /// How long the caller has waited, for messages.
    fn waited(&self) -> String {
        show_duration(self.deadline.saturating_duration_since(self.started))
    }
}

/// Makes `account` a member in `services` and waits until each reports it enabled.
async fn join(ctx: &Ctx, w: &Wanted, services: &[Service], pacer: &mut Pacer) -> Result<(), Diagnostics> {
    if !w.invite {
        check_in_organization(&ctx.aws, &w.account).await?;
    }
    for s in services {
        match s {
            Service::SecurityHub => enroll_securityhub(&ctx.aws, w, pacer).await?,
            Service::GuardDuty => enroll_guardduty(&ctx.aws, w, pacer).await?,
        }
    }
    if w.invite
        && let Some((role, external_id)) = &w.accept
    {
        accept(&ctx.aws, w, role, external_id.as_deref(), services, pacer).await?;
    }
    wait_enabled(&ctx.aws, w, services, pacer).await
}

/// On the organization path, fails early and clearly for an account that is not in the
/// organization. Any other answer (no permission to read the organization) leaves it to the
/// services.
async fn check_in_organization(aws: &Aws, account: &str) -> Result<(), Diagnostics> {
    match aws.organizations().describe_account().account_id(account).send().await {
        Ok(_) => Ok(()),
        Err(e) => match aws::code(&e) {
            Some("AccountNotFoundException") => Err(aws.error(
                &format!("adding member account {account}"),
                format!(
                    "Account {account} is not in the organization. Check account_id; to add an account outside the organization, set invite = true and email so that it is invited."
                ),
            )),
            Some("AWSOrganizationsNotInUseException") => Err(aws.error(
                &format!("adding member account {account}"),
                format!(
                    "Account {} is not in an organization, so it cannot enable members directly: set invite = true and email to invite account {account}.",
                    aws.account_id
                ),
            )),
            _ => {
                tracing::debug!("cannot check that {account} is in the organization: {}", aws::describe(&e));
                Ok(())
            }
        },
    }
}

/// Whether `account` is in the provider's organization; `None` when Organizations does not say.
async fn in_organization(aws: &Aws, account: &str) -> Option<bool> {
    match aws.organizations().describe_account().account_id(account).send().await {
        Ok(_) => Some(true),
        Err(e) if aws::code(&e) == Some("AccountNotFoundException") => Some(false),
        Err(_) => None,
    }
}

/// The error of a caller that the service does not take as the organization's administrator.
fn not_administrator(aws: &Aws, service: Service, account: &str, cause: &str) -> Diagnostics {
    aws.error(
        &format!("adding member account {account} to {}", service.title()),
        format!(
            "Account {admin} is not the organization's {title} delegated administrator in {region} ({cause}). Run this with the delegated administrator's credentials, or have the management account call {title} EnableOrganizationAdminAccount for {admin} first. To add an account outside the organization instead, set invite = true.",
            admin = aws.account_id,
            title = service.title(),
            region = aws.region,
        ),
    )
}

/// The error of a member the service refused to add.
fn refused(aws: &Aws, service: Service, account: &str, why: &str) -> Diagnostics {
    let lower = why.to_ascii_lowercase();
    let detail = if lower.contains("not exist") || lower.contains("not found") || lower.contains("invalid") {
        format!("{} did not find AWS account {account} ({why}). Check account_id.", service.title())
    } else if lower.contains("different administrator") || lower.contains("already a member") {
        format!(
            "{} says: {why}. An account has one administrator: disassociate it from the other one first.",
            service.title()
        )
    } else {
        format!("{} did not add account {account}: {why}", service.title())
    };
    aws.error(&format!("adding member account {account} to {}", service.title()), detail)
}

/// A status in which the administrator still has to invite the member.
fn needs_invitation(status: &str) -> bool {
    status == "Created" || ENDED.contains(&status)
}

/// The error of an organization-path member that the service only created, without enabling it.
fn not_associated(aws: &Aws, service: Service, account: &str) -> Diagnostics {
    aws.error(
        &format!("adding member account {account} to {}", service.title()),
        format!(
            "{} created account {account} as a member but did not enable it, which it does for accounts of the organization when account {} is the delegated administrator. For an account outside the organization, set invite = true and email.",
            service.title(),
            aws.account_id
        ),
    )
}

fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, codes: &[&str]) -> bool {
    aws::code(e).is_some_and(|c| codes.contains(&c))
}

fn message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> &str {
    match e {
        SdkError::ServiceError(s) => s.err().message().unwrap_or_default(),
        _ => "",
    }
}

/// Security Hub answers a caller that is not (yet) the administrator with these.
const SECURITYHUB_NOT_ADMIN: &[&str] = &["InvalidAccessException", "AccessDeniedException"];

async fn enroll_securityhub(aws: &Aws, w: &Wanted, pacer: &mut Pacer) -> Result<(), Diagnostics> {
    let hub = aws.securityhub();
    let account = w.account.as_str();
    let doing = format!("adding member account {account} to Security Hub");
    if !w.invite {
        loop {
            match hub.describe_organization_configuration().send().await {
                Ok(_) => break,
                Err(e) if is_code(&e, SECURITYHUB_NOT_ADMIN) => {
                    if !pacer.wait().await {
                        return Err(not_administrator(aws, Service::SecurityHub, account, &aws::describe(&e)));
                    }
                }
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
        }
    }
    let out = loop {
        let details = AccountDetails::builder().account_id(account).set_email(w.email.clone()).build();
        match hub.create_members().account_details(details).send().await {
            Ok(out) => break out,
            Err(e) if is_code(&e, SECURITYHUB_NOT_ADMIN) => {
                if !pacer.wait().await {
                    return Err(aws.error(
                        &doing,
                        format!(
                            "{}. Security Hub must be enabled in account {}, the administrator: enable it, or run this in the delegated administrator account.",
                            aws::describe(&e),
                            aws.account_id
                        ),
                    ));
                }
            }
            Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
        }
    };
    if let Some(r) = out.unprocessed_accounts().iter().find(|r| r.account_id() == Some(account)) {
        return Err(refused(aws, Service::SecurityHub, account, r.processing_result().unwrap_or("no reason given")));
    }
    let status = find_securityhub(aws, account).await?.map(|m| m.status).unwrap_or_default();
    if !w.invite {
        return if status == "Created" { Err(not_associated(aws, Service::SecurityHub, account)) } else { Ok(()) };
    }
    if needs_invitation(&status) {
        let out =
            hub.invite_members().account_ids(account).send().await.map_err(|e| aws.error(&doing, aws::describe(&e)))?;
        if let Some(r) = out.unprocessed_accounts().iter().find(|r| r.account_id() == Some(account)) {
            let why = r.processing_result().unwrap_or("no reason given");
            return Err(aws.error(&doing, format!("Security Hub did not invite account {account}: {why}")));
        }
    }
    Ok(())
}

/// GuardDuty answers a caller that is not (yet) the administrator with these.
fn guardduty_not_admin<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    is_code(e, &["AccessDeniedException"])
        || (is_code(e, &["BadRequestException"]) && message(e).to_ascii_lowercase().contains("administrator"))
}

/// The administrator's detector, waiting for it (it appears shortly after a delegation).
async fn admin_detector(aws: &Aws, account: &str, pacer: &mut Pacer) -> Result<String, Diagnostics> {
    let doing = format!("adding member account {account} to GuardDuty");
    loop {
        match find_detector(aws).await {
            Ok(Some(id)) => return Ok(id),
            Ok(None) => {
                if !pacer.wait().await {
                    return Err(aws.error(
                        &doing,
                        format!(
                            "Account {} has no GuardDuty detector in {}: GuardDuty must be on in the administrator account. Run this in the delegated administrator account, or enable GuardDuty here first.",
                            aws.account_id, aws.region
                        ),
                    ));
                }
            }
            Err(e) => return Err(aws.error(&doing, e)),
        }
    }
}

async fn enroll_guardduty(aws: &Aws, w: &Wanted, pacer: &mut Pacer) -> Result<(), Diagnostics> {
    let gd = aws.guardduty();
    let account = w.account.as_str();
    let doing = format!("adding member account {account} to GuardDuty");
    let detector = admin_detector(aws, account, pacer).await?;
    if !w.invite {
        loop {
            match gd.describe_organization_configuration().detector_id(&detector).send().await {
                Ok(_) => break,
                Err(e) if guardduty_not_admin(&e) => {
                    if !pacer.wait().await {
                        return Err(not_administrator(aws, Service::GuardDuty, account, &aws::describe(&e)));
                    }
                }
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
        }
    }
    let out = loop {
        let details =
            aws_sdk_guardduty::types::AccountDetail::builder().account_id(account).set_email(w.email.clone()).build();
        match gd.create_members().detector_id(&detector).account_details(details).send().await {
            Ok(out) => break out,
            Err(e) if guardduty_not_admin(&e) => {
                if !pacer.wait().await {
                    return Err(not_administrator(aws, Service::GuardDuty, account, &aws::describe(&e)));
                }
            }
            Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
        }
    };
    if let Some(r) = out.unprocessed_accounts().iter().find(|r| r.account_id() == Some(account)) {
        return Err(refused(aws, Service::GuardDuty, account, r.result().unwrap_or("no reason given")));
    }
    let status = find_guardduty(aws, account).await?.map(|m| m.status).unwrap_or_default();
    if !w.invite {
        return if status == "Created" { Err(not_associated(aws, Service::GuardDuty, account)) } else { Ok(()) };
    }
    if needs_invitation(&status) {
        let out = gd
            .invite_members()
            .detector_id(&detector)
            .account_ids(account)
            .send()
            .await
            .map_err(|e| aws.error(&doing, aws::describe(&e)))?;
        if let Some(r) = out.unprocessed_accounts().iter().find(|r| r.account_id() == Some(account)) {
            let why = r.result().unwrap_or("no reason given");
            // Already enabled is what the invitation is for.
            if !why.contains("already associated with the current account") {
                return Err(aws.error(&doing, format!("GuardDuty did not invite account {account}: {why}")));
            }
        }
    }
    Ok(())
}

/// Accepts the invitations of `services` that are not enabled yet, as `role` in the member account.
async fn accept(
    aws: &Aws,
    w: &Wanted,
    role: &str,
    external_id: Option<&str>,
    services: &[Service],
    pacer: &mut Pacer,
) -> Result<(), Diagnostics> {
    let account = w.account.as_str();
    let found = find(aws, account, services).await?;
    let pending: Vec<Service> =
        services.iter().copied().filter(|s| found.get(s).is_none_or(|m| m.status != ENABLED)).collect();
    if pending.is_empty() {
        return Ok(());
    }
    let doing = format!("accepting the invitation in member account {account}");
    let member = aws.assume(role, external_id, "orgsec-accept").await.map_err(|e| {
        aws.error(
            &doing,
            format!(
                "{e}. accept_role_arn must name a role in the member account whose trust policy lets account {} assume it (with accept_external_id if it requires one).",
                aws.account_id
            ),
        )
    })?;
    if member.account_id != account {
        return Err(aws.error(
            &doing,
            format!("{role} acts in account {}, not in the member account {account}.", member.account_id),
        ));
    }
    for s in pending {
        match s {
            Service::SecurityHub => accept_securityhub(&member, &aws.account_id, pacer).await?,
            Service::GuardDuty => accept_guardduty(&member, &aws.account_id, pacer).await?,
        }
    }
    Ok(())
}

/// The error of an invitation that never reached the member.
fn no_invitation(member: &Aws, service: Service, admin: &str, waited: &str) -> Diagnostics {
    member.error(
        &format!("accepting the {} invitation", service.title()),
        format!(
            "No {} invitation from account {admin} reached account {} within {waited}. Apply again to keep waiting, or raise timeout.",
            service.title(),
            member.account_id
        ),
    )
}

async fn accept_securityhub(member: &Aws, admin: &str, pacer: &mut Pacer) -> Result<(), Diagnostics> {
    let hub = member.securityhub();
    let doing = "accepting the Security Hub invitation";
    let invitation = loop {
        let out = hub.list_invitations().send().await.map_err(|e| {
            let detail = if is_code(&e, &["InvalidAccessException"]) {
                format!(
                    "Security Hub is not enabled in the member account {} ({}): enable it there first, for example with orgsec_securityhub_account in that account, then apply again.",
                    member.account_id,
                    aws::describe(&e)
                )
            } else {
                aws::describe(&e)
            };
            member.error(doing, detail)
        })?;
        let id = out.invitations().iter().find(|i| i.account_id() == Some(admin)).and_then(|i| i.invitation_id());
        if let Some(id) = id {
            break id.to_string();
        }
        if !pacer.wait().await {
            return Err(no_invitation(member, Service::SecurityHub, admin, &pacer.waited()));
        }
    };
    hub.accept_administrator_invitation()
        .administrator_id(admin)
        .invitation_id(invitation)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| member.error(doing, aws::describe(&e)))
}

async fn accept_guardduty(member: &Aws, admin: &str, pacer: &mut Pacer) -> Result<(), Diagnostics> {
    let gd = member.guardduty();
    let doing = "accepting the GuardDuty invitation";
    let Some(detector) = find_detector(member).await.map_err(|e| member.error(doing, e))? else {
        return Err(member.error(
            doing,
            format!(
                "The member account {} has no GuardDuty detector in {}: GuardDuty must be on there before it can accept the invitation. Create one, for example with orgsec_guardduty_detector in that account, then apply again.",
                member.account_id, member.region
            ),
        ));
    };
    let invitation = loop {
        let out = gd.list_invitations().send().await.map_err(|e| member.error(doing, aws::describe(&e)))?;
        let id = out.invitations().iter().find(|i| i.account_id() == Some(admin)).and_then(|i| i.invitation_id());
        if let Some(id) = id {
            break id.to_string();
        }
        if !pacer.wait().await {
            return Err(no_invitation(member, Service::GuardDuty, admin, &pacer.waited()));
        }
    };
    gd.accept_administrator_invitation()
        .detector_id(detector)
        .administrator_id(admin)
        .invitation_id(invitation)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| member.error(doing, aws::describe(&e)))
}

/// Polls until every service of `services` reports the member enabled.
async fn wait_enabled(aws: &Aws, w: &Wanted, services: &[Service], pacer: &mut Pacer) -> Result<(), Diagnostics> {
    loop {
        let found = find(aws, &w.account, services).await?;
        let stuck: Vec<(Service, Option<String>)> = services
            .iter()
            .filter_map(|s| {
                let status = found.get(s).map(|m| m.status.clone());
                (status.as_deref() != Some(ENABLED)).then_some((*s, status))
            })
            .collect();
        if stuck.is_empty() {
            return Ok(());
        }
        if !pacer.wait().await {
            return Err(aws.error(
                &format!("waiting for member account {} to be enabled", w.account),
                timed_out(w, &pacer.waited(), &stuck),
            ));
        }
    }
}

/// What a timeout says: which service is stuck in which status, and what that usually means.
fn timed_out(w: &Wanted, waited: &str, stuck: &[(Service, Option<String>)]) -> String {
    let parts: Vec<String> = stuck
        .iter()
        .map(|(s, status)| {
            let (shown, hint) = match status.as_deref() {
                None => ("no member record".to_string(), "the account is not a member".to_string()),
                Some(st) => (st.to_string(), hint(st, w)),
            };
            if hint.is_empty() {
                format!("{} reports {shown}", s.title())
            } else {
                format!("{} reports {shown}: {hint}", s.title())
            }
        })
        .collect();
    format!(
        "Account {} was not enabled within {waited}. {}. Apply again to keep waiting, or raise timeout.",
        w.account,
        parts.join("; ")
    )
}

/// What a member status that is not `Enabled` usually means.
fn hint(status: &str, w: &Wanted) -> String {
    match status {
        "Created" if w.invite => "it was added but not invited".into(),
        "Created" => "it was added but not enabled; for an account outside the organization set invite = true".into(),
        "Invited" if w.accept.is_some() => "the invitation was sent but is not accepted yet".into(),
        "Invited" => "the invitation waits for the member account to accept it; set accept_role_arn so that the provider accepts it, or accept it in that account".into(),
        "Associated" | "EmailVerificationInProgress" => "AWS is still enabling it".into(),
        "Disabled" => "GuardDuty is disabled in the member account; enable its detector".into(),
        s if ENDED.contains(&s) => "the membership ended (removed, resigned or deleted) while waiting".into(),
        _ => String::new(),
    }
}

/// Disassociates and deletes the member in one service; a member already gone is a success.
async fn remove(aws: &Aws, service: Service, account: &str) -> Result<(), Diagnostics> {
    let doing = format!("removing member account {account} from {}", service.title());
    let why = match service {
        Service::SecurityHub => {
            let hub = aws.securityhub();
            // A hub that is off, or a member that is gone or never associated, is fine here.
            match hub.disassociate_members().account_ids(account).send().await {
                Ok(_) => {}
                Err(e) if is_code(&e, &["ResourceNotFoundException", "InvalidInputException"]) => {}
                Err(e) if is_code(&e, &["InvalidAccessException"]) => return Ok(()),
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
            match hub.delete_members().account_ids(account).send().await {
                Ok(out) => out
                    .unprocessed_accounts()
                    .iter()
                    .find(|r| r.account_id() == Some(account))
                    .map(|r| r.processing_result().unwrap_or_default().to_string()),
                Err(e) if is_code(&e, &["ResourceNotFoundException", "InvalidAccessException"]) => return Ok(()),
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
        }
        Service::GuardDuty => {
            let Some(detector) = find_detector(aws).await.map_err(|e| aws.error(&doing, e))? else {
                return Ok(());
            };
            let gd = aws.guardduty();
            let ids = vec![account.to_string()];
            match gd.disassociate_members().detector_id(&detector).set_account_ids(Some(ids.clone())).send().await {
                Ok(_) => {}
                Err(e) if detector_gone(&e) => return Ok(()),
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
            match gd.delete_members().detector_id(&detector).set_account_ids(Some(ids)).send().await {
                Ok(out) => out
                    .unprocessed_accounts()
                    .iter()
                    .find(|r| r.account_id() == Some(account))
                    .map(|r| r.result().unwrap_or_default().to_string()),
                Err(e) if detector_gone(&e) => return Ok(()),
                Err(e) => return Err(aws.error(&doing, aws::describe(&e))),
            }
        }
    };
    // Refused: an error only if the account is still a member (else it was already gone).
    match why {
        Some(why) if find_one(aws, service, account).await?.is_some() => Err(aws.error(&doing, why)),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// find_*

/// The member records of `account` in `services`, where there is one.
async fn find(aws: &Aws, account: &str, services: &[Service]) -> Result<BTreeMap<Service, Member>, Diagnostics> {
    let mut out = BTreeMap::new();
    for s in services {
        if let Some(m) = find_one(aws, *s, account).await? {
            out.insert(*s, m);
        }
    }
    Ok(out)
}

async fn find_one(aws: &Aws, service: Service, account: &str) -> Result<Option<Member>, Diagnostics> {
    match service {
        Service::SecurityHub => find_securityhub(aws, account).await,
        Service::GuardDuty => find_guardduty(aws, account).await,
    }
}

/// The Security Hub member record, or `None` (also when Security Hub is off: then it has none).
async fn find_securityhub(aws: &Aws, account: &str) -> Result<Option<Member>, Diagnostics> {
    match aws.securityhub().get_members().account_ids(account).send().await {
        Ok(out) => Ok(out.members().iter().find(|m| m.account_id() == Some(account)).map(|m| Member {
            status: m.member_status().unwrap_or_default().to_string(),
            email: m.email().map(str::to_string),
        })),
        Err(e) if is_code(&e, &["InvalidAccessException", "ResourceNotFoundException"]) => Ok(None),
        Err(e) => Err(aws.error(&format!("reading Security Hub member {account}"), aws::describe(&e))),
    }
}

/// The GuardDuty member record of the administrator's detector, or `None` (also without a detector).
async fn find_guardduty(aws: &Aws, account: &str) -> Result<Option<Member>, Diagnostics> {
    let doing = format!("reading GuardDuty member {account}");
    let Some(detector) = find_detector(aws).await.map_err(|e| aws.error(&doing, e))? else {
        return Ok(None);
    };
    match aws.guardduty().get_members().detector_id(&detector).account_ids(account).send().await {
        Ok(out) => Ok(out.members().iter().find(|m| m.account_id() == Some(account)).map(|m| Member {
            status: m.relationship_status().unwrap_or_default().to_string(),
            email: m.email().map(str::to_string),
        })),
        Err(e) if detector_gone(&e) => Ok(None),
        Err(e) => Err(aws.error(&doing, aws::describe(&e))),
    }
}

/// The account's GuardDuty detector in the region, if it has one; the error is the cause only.
async fn find_detector(aws: &Aws) -> Result<Option<String>, String> {
    match aws.guardduty().list_detectors().send().await {
        Ok(out) => Ok(out.detector_ids().first().cloned()),
        Err(e) => Err(format!("listing GuardDuty detectors: {}", aws::describe(&e))),
    }
}

/// GuardDuty's answer for a detector that is not (or no longer) the caller's.
fn detector_gone<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    is_code(e, &["ResourceNotFoundException"])
        || (is_code(e, &["BadRequestException"]) && message(e).contains("not owned by the current account"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn set(names: &[&str]) -> Value {
        Value::Set(names.iter().map(|n| s(n)).collect())
    }

    fn paths(config: &Value) -> Vec<String> {
        let mut diags = Diagnostics::default();
        HubMembership.validate(config, &mut diags);
        diags.0.iter().filter_map(|d| d.path.as_ref()).map(ToString::to_string).collect()
    }

    fn member(status: &str, email: Option<&str>) -> Member {
        Member { status: status.into(), email: email.map(str::to_string) }
    }

    fn wanted(invite: bool, accept: bool) -> Wanted {
        Wanted {
            account: "666666666666".into(),
            email: None,
            services: Service::ALL.to_vec(),
            invite,
            accept: accept.then(|| ("arn:aws:iam::666666666666:role/Accept".into(), None)),
            timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn every_attribute_has_a_description() {
        for a in HubMembership.schema().block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
    }

    #[test]
    fn durations_parse_in_hours_minutes_and_seconds() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Some(MAX_TIMEOUT));
        for bad in ["", "5", "m", "0s", "5 m", "-5m", "1.5h", "25h", "5d", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(show_duration(Duration::from_secs(300)), "5m");
        assert_eq!(show_duration(Duration::from_secs(5430)), "1h30m30s");
        assert_eq!(show_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn role_arns_name_their_account() {
        assert_eq!(role_account("arn:aws:iam::666666666666:role/OrganizationAccountAccessRole"), Some("666666666666"));
        assert_eq!(role_account("arn:aws-us-gov:iam::666666666666:role/path/Name"), Some("666666666666"));
        for bad in ["", "arn:aws:iam::66666666666:role/R", "arn:aws:iam::666666666666:user/U", "arn:aws:s3:::b"] {
            assert_eq!(role_account(bad), None, "{bad}");
        }
    }

    #[test]
    fn emails_need_an_at_and_a_dotted_domain() {
        assert!(valid_email("aws-sandbox@example.com"));
        for bad in ["nobody", "a@b", "@example.com", "a b@example.com", "a@@example.com", "a@.example.com", "x@y.c"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn each_invalid_value_is_reported_on_its_attribute() {
        assert_eq!(paths(&obj(&[("account_id", s("12345"))])), ["account_id"]);
        assert_eq!(paths(&obj(&[("services", set(&["securityhub", "inspector"]))])), ["services"]);
        assert_eq!(paths(&obj(&[("services", set(&[]))])), ["services"]);
        assert_eq!(paths(&obj(&[("email", s("nobody"))])), ["email"]);
        assert_eq!(paths(&obj(&[("invite", Value::Bool(true))])), ["invite"]);
        assert_eq!(paths(&obj(&[("timeout", s("soon"))])), ["timeout"]);
        assert_eq!(paths(&obj(&[("accept_external_id", s("x"))])), ["accept_external_id"]);
        let role = s("arn:aws:iam::666666666666:role/Accept");
        assert_eq!(paths(&obj(&[("accept_role_arn", s("Accept"))])), ["accept_role_arn"]);
        assert_eq!(paths(&obj(&[("accept_role_arn", role.clone())])), ["accept_role_arn"], "needs invite");
        let elsewhere = obj(&[
            ("account_id", s("555555555555")),
            ("invite", Value::Bool(true)),
            ("email", s("a@example.com")),
            ("accept_role_arn", role),
        ]);
        assert_eq!(paths(&elsewhere), ["accept_role_arn"]);
    }

    #[test]
    fn valid_and_unknown_values_pass_validation() {
        for config in [
            obj(&[("account_id", s("666666666666"))]),
            obj(&[("account_id", Value::Unknown), ("services", Value::Unknown), ("invite", Value::Unknown)]),
            obj(&[("services", Value::Set(vec![Value::Unknown, s("guardduty")])), ("timeout", s("1h30m"))]),
            obj(&[
                ("account_id", s("666666666666")),
                ("email", s("aws-sandbox@example.com")),
                ("invite", Value::Bool(true)),
                ("accept_role_arn", s("arn:aws:iam::666666666666:role/Accept")),
                ("accept_external_id", s("x")),
            ]),
            // An unknown invite or email cannot be checked yet.
            obj(&[("invite", Value::Unknown), ("accept_role_arn", s("arn:aws:iam::666666666666:role/A"))]),
            obj(&[("invite", Value::Bool(true)), ("email", Value::Unknown)]),
        ] {
            assert!(paths(&config).is_empty(), "{config:?}");
        }
    }

    #[test]
    fn services_are_read_sorted_and_deduplicated_and_diffed() {
        let v = obj(&[("services", set(&["guardduty", "securityhub", "guardduty"]))]);
        assert_eq!(services_of(&v), Some(vec![Service::SecurityHub, Service::GuardDuty]));
        assert_eq!(services_of(&obj(&[("services", Value::Unknown)])), None);
        assert_eq!(
            service_changes(&[Service::SecurityHub, Service::GuardDuty], &[Service::SecurityHub]),
            (vec![], vec![Service::GuardDuty])
        );
        assert_eq!(service_changes(&[Service::SecurityHub], &Service::ALL), (vec![Service::GuardDuty], vec![]));
    }

    #[test]
    fn wanted_takes_the_plan_with_its_defaults() {
        let planned = obj(&[
            ("account_id", s("666666666666")),
            ("email", Value::Unknown),
            ("services", Value::Null),
            ("accept_role_arn", s("arn:aws:iam::666666666666:role/Accept")),
            ("accept_external_id", Value::Null),
            ("timeout", s("2s")),
        ]);
        let w = Wanted::from(&planned).unwrap();
        assert_eq!(w.email, None);
        assert_eq!(w.services, Service::ALL);
        assert!(!w.invite);
        assert_eq!(w.accept, Some(("arn:aws:iam::666666666666:role/Accept".into(), None)));
        assert_eq!(w.timeout, Duration::from_secs(2));
        assert!(Wanted::from(&obj(&[])).is_err());
    }

    #[test]
    fn ended_records_are_not_memberships() {
        let found = BTreeMap::from([
            (Service::SecurityHub, member("Removed", None)),
            (Service::GuardDuty, member("Invited", None)),
        ]);
        assert_eq!(member_services(&found), [Service::GuardDuty]);
        assert!(needs_invitation("Created") && needs_invitation("Resigned") && !needs_invitation("Invited"));
    }

    #[test]
    fn state_reports_services_status_and_email_with_defaults() {
        let found = BTreeMap::from([
            (Service::SecurityHub, member("Enabled", Some("hub@example.com"))),
            (Service::GuardDuty, member("Enabled", Some("gd@example.com"))),
        ]);
        let imported = obj(&[("id", s("666666666666")), ("invite", Value::Bool(true))]);
        let st = state(&imported, "666666666666", &Service::ALL, &found);
        assert_eq!(st.get_attr("account_id"), Some(&s("666666666666")));
        assert_eq!(st.get_attr("services"), Some(&set(&["securityhub", "guardduty"])));
        let status =
            Value::Map(BTreeMap::from([("guardduty".into(), s("Enabled")), ("securityhub".into(), s("Enabled"))]));
        assert_eq!(st.get_attr("status"), Some(&status));
        assert_eq!(st.get_attr("email"), Some(&s("gd@example.com")), "GuardDuty's email first");
        assert_eq!(st.get_attr("invite"), Some(&Value::Bool(true)));
        assert_eq!(st.get_attr("timeout"), Some(&s(DEFAULT_TIMEOUT)));
        assert_eq!(st.get_attr("accept_role_arn"), Some(&Value::Null));

        let configured = obj(&[("email", s("me@example.com")), ("timeout", s("2m")), ("invite", Value::Unknown)]);
        let st = state(&configured, "666666666666", &[Service::SecurityHub], &found);
        assert_eq!(st.get_attr("email"), Some(&s("me@example.com")));
        assert_eq!(st.get_attr("timeout"), Some(&s("2m")));
        assert_eq!(st.get_attr("invite"), Some(&Value::Bool(false)));
        assert_eq!(st.get_attr("services"), Some(&set(&["securityhub"])));
        assert_eq!(st.get_attr("status"), Some(&Value::Map(BTreeMap::from([("securityhub".into(), s("Enabled"))]))));
        assert!(st.is_known_fully());
    }

    #[test]
    fn a_timeout_names_each_stuck_service_and_its_status() {
        let stuck = [(Service::SecurityHub, Some("Invited".to_string())), (Service::GuardDuty, None)];
        let text = timed_out(&wanted(true, false), "2s", &stuck);
        assert!(text.contains("Account 666666666666 was not enabled within 2s"), "{text}");
        assert!(text.contains("Security Hub reports Invited: the invitation waits"), "{text}");
        assert!(text.contains("set accept_role_arn"), "{text}");
        assert!(text.contains("GuardDuty reports no member record"), "{text}");
        let text = timed_out(&wanted(true, true), "5m", &[(Service::GuardDuty, Some("Associated".into()))]);
        assert!(text.contains("GuardDuty reports Associated: AWS is still enabling it"), "{text}");
        assert!(hint("Created", &wanted(false, false)).contains("invite = true"));
        assert_eq!(hint("Whatever", &wanted(false, false)), "");
    }
}
