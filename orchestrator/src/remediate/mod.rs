//! Remediation playbooks: code that fixes what a finding reports, in one member account and
//! region, through the member role.
//!
//! Each playbook has three phases, so that a human can approve a change before it happens and a
//! job can be retried without fear:
//!
//! - [`Remediation::plan`] reads the resource and computes exactly what would change (the
//!   security group rules to revoke, the policy to set). It changes nothing. The [`Plan`] is
//!   shown for approval and stored as JSON.
//! - [`Remediation::execute`] applies a plan. It re-reads the resource first and only does what
//!   is still needed, so that running it twice (a retried job, a redelivered message) changes
//!   nothing the second time. It never does more than the plan says: a rule that appeared after
//!   the plan was approved is not revoked by it.
//! - [`Remediation::verify`] re-reads the resource and says whether the fix holds.
//!
//! What each playbook fixes, its parameters and the IAM actions it needs are data in
//! [`crate::playbooks`]; each implementation here is tied to its descriptor by name, and a
//! test checks that the member role policy built from the descriptor is enough to run it.
//!
//! Nothing here knows of jobs, bindings or approvals: callers get [`Clients`] for the target's
//! account and region (see [`clients_for`]) and call the phases.

mod block_public_bucket;
mod bpa;
mod deactivate_access_key;
mod ebs_encryption;
mod enable_guardduty;
mod isolate_instance;
mod password_policy;
mod revoke_public_ingress;
pub mod runner;
mod s3_account_bpa;

use std::collections::BTreeMap;
use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::aws::{self, AccessError, Aws, Clients};
use crate::finding::Finding;
use crate::playbooks::{self, Playbook};

pub use runner::{Changed, PlaybookRunner};

/// A playbook's parameters by name, as a binding gives them; [`resolve_parameters`] fills in
/// the defaults and checks the values.
pub type Parameters = BTreeMap<String, String>;

/// What a remediation acts on: the resource a finding names, where it lives, and the finding
/// itself (some playbooks read details from it, such as the user owning a leaked key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub account_id: String,
    pub region: String,
    /// ASFF resource type, such as `AwsEc2SecurityGroup`.
    pub resource_type: String,
    /// The resource as the finding names it: an ARN, `AWS::::Account:<id>`, ...
    pub resource_id: String,
    /// The Security Hub control the finding checks, if any (`EC2.13`).
    pub control_id: Option<String>,
    /// The finding type, if any (`CryptoCurrency:EC2/BitcoinTool.B!DNS`).
    pub finding_type: Option<String>,
    /// The finding's id at its source, recorded on what a playbook tags.
    pub finding_id: String,
    /// The source's finding document; `null` when it could not be parsed.
    pub raw: serde_json::Value,
}

impl Target {
    pub fn from_finding(f: &Finding) -> Target {
        Target {
            account_id: f.account_id.clone(),
            region: f.region.clone(),
            resource_type: f.resource_type.clone(),
            resource_id: f.resource_id.clone(),
            control_id: f.control_id.clone(),
            finding_type: f.finding_type.clone(),
            finding_id: f.id.clone(),
            raw: serde_json::from_str(&f.raw).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The first string found at any of `pointers` (JSON pointers) in the raw finding.
    fn raw_str(&self, pointers: &[&str]) -> Option<String> {
        pointers
            .iter()
            .find_map(|p| self.raw.pointer(p).and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()))
            .map(str::to_string)
    }
}

/// What a playbook would change, computed from the resource's current state. Shown for approval
/// and stored as JSON; [`Remediation::execute`] reads only this (and the resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub playbook: String,
    /// One line for people: what changes, or that nothing needs to.
    pub summary: String,
    /// The parameters the plan was computed with, defaults filled in.
    pub parameters: Parameters,
    /// The changes, in the order they are made; empty when nothing needs changing.
    pub steps: Vec<Step>,
    /// The playbook's own description of the intended state, which `execute` and `verify` read.
    pub desired: serde_json::Value,
}

impl Plan {
    /// Whether the resource already is as the playbook would make it.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}

/// One change a plan makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The IAM action that makes the change, such as `ec2:RevokeSecurityGroupIngress`.
    pub action: String,
    pub description: String,
    pub details: serde_json::Value,
}

/// What an execution did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// One line per change made in the account; empty when everything was already done.
    pub changed: Vec<String>,
    /// The playbook's record of what it did and saw (for the audit log and evidence).
    pub details: serde_json::Value,
}

/// Whether a fix holds, after re-reading the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub ok: bool,
    /// What was observed, for people: what holds, or what still does not.
    pub observed: String,
}

/// Why a remediation could not be planned, executed or verified. Each message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemediationError {
    /// The member role (or the admin's credentials) lacks an action the playbook needs.
    #[error(
        "{action} in account {account} ({region}) was denied to {principal}: {message}; add {action} to its \
         permissions policy (`orgsec playbooks policy` prints the policy the playbooks need)"
    )]
    AccessDenied { principal: String, account: String, region: String, action: String, message: String },
    /// The account could not be reached at all: AssumeRole was refused (no role, wrong trust or
    /// ExternalId), or STS did not answer. Nothing was changed.
    #[error(transparent)]
    Access(Box<AccessError>),
    /// The resource the finding names does not exist (any more).
    #[error("{0} was not found; it may have been deleted since the finding was reported")]
    NotFound(String),
    /// Another AWS error.
    #[error("{action} failed: {message}")]
    Aws { action: String, message: String },
    /// The target, the parameters or the plan cannot be used with this playbook.
    #[error("{0}")]
    Invalid(String),
}

impl From<AccessError> for RemediationError {
    fn from(e: AccessError) -> RemediationError {
        RemediationError::Access(Box::new(e))
    }
}

/// A playbook's code. Object safe, so that the [`registry`] can hand out `&'static dyn
/// Remediation` by name.
pub trait Remediation: Send + Sync {
    /// The playbook's catalogue entry: what it fixes, its parameters and permissions.
    fn descriptor(&self) -> &'static Playbook;

    /// Reads the target and computes what would change; changes nothing. `params` are the
    /// binding's, checked and completed with defaults here.
    fn plan<'a>(
        &'a self,
        c: &'a Clients,
        t: &'a Target,
        params: &'a Parameters,
    ) -> BoxFuture<'a, Result<Plan, RemediationError>>;

    /// Applies `plan`, doing only what is still needed: a second run changes nothing.
    fn execute<'a>(
        &'a self,
        c: &'a Clients,
        t: &'a Target,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Outcome, RemediationError>>;

    /// Re-reads the target and says whether the plan's intended state holds.
    fn verify<'a>(
        &'a self,
        c: &'a Clients,
        t: &'a Target,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Verified, RemediationError>>;
}

impl fmt::Debug for dyn Remediation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Remediation").field(&self.descriptor().name).finish()
    }
}

/// Implements [`Remediation`] for a playbook type with inherent `async fn plan(&self, &Clients,
/// &Target, &Parameters)` (parameters already resolved), `execute` and `verify`.
macro_rules! remediation {
    ($ty:ty, $name:literal) => {
        impl $crate::remediate::Remediation for $ty {
            fn descriptor(&self) -> &'static $crate::playbooks::Playbook {
                $crate::remediate::descriptor($name)
            }

            fn plan<'a>(
                &'a self,
                c: &'a $crate::aws::Clients,
                t: &'a $crate::remediate::Target,
                params: &'a $crate::remediate::Parameters,
            ) -> futures_util::future::BoxFuture<'a, Result<$crate::remediate::Plan, $crate::remediate::RemediationError>>
            {
                Box::pin(async move {
                    let params = $crate::remediate::resolve_parameters(self.descriptor(), params)?;
                    <$ty>::plan(self, c, t, params).await
                })
            }

            fn execute<'a>(
                &'a self,
                c: &'a $crate::aws::Clients,
                t: &'a $crate::remediate::Target,
                plan: &'a $crate::remediate::Plan,
            ) -> futures_util::future::BoxFuture<
                'a,
                Result<$crate::remediate::Outcome, $crate::remediate::RemediationError>,
            > {
                Box::pin(async move {
                    $crate::remediate::check_plan(self.descriptor(), t, plan)?;
                    <$ty>::execute(self, c, t, plan).await
                })
            }

            fn verify<'a>(
                &'a self,
                c: &'a $crate::aws::Clients,
                t: &'a $crate::remediate::Target,
                plan: &'a $crate::remediate::Plan,
            ) -> futures_util::future::BoxFuture<
                'a,
                Result<$crate::remediate::Verified, $crate::remediate::RemediationError>,
            > {
                Box::pin(async move {
                    $crate::remediate::check_plan(self.descriptor(), t, plan)?;
                    <$ty>::verify(self, c, t, plan).await
                })
            }
        }
    };
}
pub(crate) use remediation;

/// Every playbook with code, in name order.
static REGISTRY: &[&dyn Remediation] = &[
    &block_public_bucket::BlockPublicBucket,
    &deactivate_access_key::DeactivateAccessKey,
    &ebs_encryption::EnableEbsDefaultEncryption,
    &enable_guardduty::EnableGuardDuty,
    &s3_account_bpa::EnableS3AccountBpa,
    &isolate_instance::IsolateInstance,
    &revoke_public_ingress::RevokePublicIngress,
    &password_policy::SetPasswordPolicy,
];

/// The code of the playbook named `name`, if it has any.
pub fn find(name: &str) -> Option<&'static dyn Remediation> {
    REGISTRY.iter().copied().find(|r| r.descriptor().name == name)
}

/// Every playbook with code.
pub fn registry() -> &'static [&'static dyn Remediation] {
    REGISTRY
}

/// Clients in the target's account and region through the member role. A refused AssumeRole is
/// a [`RemediationError::Access`] naming the role; nothing has been called in the account then.
pub async fn clients_for(aws: &Aws, t: &Target) -> Result<Clients, RemediationError> {
    Ok(aws.member(&t.account_id, &t.region).await?)
}

/// The catalogue entry of an implemented playbook. The registry's test proves every name used
/// here exists, so the fallback is never reached in a build that passed its tests.
pub(crate) fn descriptor(name: &str) -> &'static Playbook {
    playbooks::find(name).unwrap_or(&UNKNOWN)
}

static UNKNOWN: Playbook = Playbook {
    name: "unknown",
    description: "",
    controls: &[],
    finding_types: &[],
    resource_types: &[],
    parameters: &[],
    permissions: &[],
};

/// `given` checked against the playbook's parameters (unknown names, missing required ones,
/// values of the wrong kind: every problem in one message) and completed with the defaults.
pub fn resolve_parameters(p: &Playbook, given: &Parameters) -> Result<Parameters, RemediationError> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if p.parameter(name).is_none() {
            let known: Vec<&str> = p.parameters.iter().map(|x| x.name).collect();
            problems.push(format!(
                "unknown parameter \"{name}\" (known: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        }
    }
    let mut out = Parameters::new();
    for x in p.parameters {
        match given.get(x.name) {
            // An optional parameter whose default is empty may be given empty: "not set".
            Some(v) if v.is_empty() && x.default.is_empty() && !x.required => {
                out.insert(x.name.to_string(), String::new());
            }
            Some(v) => match x.kind.check(v) {
                Some(why) => problems.push(format!("{}: {why}", x.name)),
                None => {
                    out.insert(x.name.to_string(), v.clone());
                }
            },
            None if x.required => problems.push(format!("{} is required", x.name)),
            None => {
                out.insert(x.name.to_string(), x.default.to_string());
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(RemediationError::Invalid(format!("parameters of {}: {}", p.name, problems.join("; "))))
    }
}

/// Refuses a plan made by another playbook.
pub(crate) fn check_plan(p: &Playbook, _t: &Target, plan: &Plan) -> Result<(), RemediationError> {
    if plan.playbook != p.name {
        return Err(RemediationError::Invalid(format!(
            "the plan was made by {}, not {}; plan again with {}",
            plan.playbook, p.name, p.name
        )));
    }
    Ok(())
}

/// The plan's `desired` state as the playbook's own type.
pub(crate) fn desired<T: for<'de> Deserialize<'de>>(plan: &Plan) -> Result<T, RemediationError> {
    serde_json::from_value(plan.desired.clone()).map_err(|e| {
        RemediationError::Invalid(format!("the stored plan of {} cannot be read ({e}); plan again", plan.playbook))
    })
}

/// A plan of `playbook` with `desired` as its intended state.
pub(crate) fn plan_of(
    p: &Playbook,
    summary: String,
    parameters: Parameters,
    steps: Vec<Step>,
    desired: impl Serialize,
) -> Result<Plan, RemediationError> {
    let desired = serde_json::to_value(desired)
        .map_err(|e| RemediationError::Invalid(format!("cannot record the plan of {}: {e}", p.name)))?;
    Ok(Plan { playbook: p.name.to_string(), summary, parameters, steps, desired })
}

pub(crate) fn step(action: &str, description: impl Into<String>, details: serde_json::Value) -> Step {
    Step { action: action.to_string(), description: description.into(), details }
}

/// The parameter `name` as a boolean (values were checked by [`resolve_parameters`]).
pub(crate) fn bool_param(params: &Parameters, name: &str) -> bool {
    params.get(name).is_some_and(|v| v == "true")
}

/// The parameter `name` as text; empty when absent.
pub(crate) fn text_param<'a>(params: &'a Parameters, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// The parameter `name` as a number.
pub(crate) fn int_param(params: &Parameters, name: &str) -> Result<i32, RemediationError> {
    let v = text_param(params, name);
    v.parse().map_err(|_| RemediationError::Invalid(format!("{name}: \"{v}\" is not a whole number")))
}

/// The error for a failed call of `action` made with `c`: a denial names the principal and the
/// action, everything else keeps the service's code and message.
pub(crate) fn failed<E, R>(c: &Clients, action: &str, e: &SdkError<E, R>) -> RemediationError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    if aws::is_access_denied(aws::error_code(e)) {
        RemediationError::AccessDenied {
            principal: c.principal.clone(),
            account: c.account_id.clone(),
            region: c.region.clone(),
            action: action.to_string(),
            message: aws::describe(e),
        }
    } else {
        RemediationError::Aws { action: action.to_string(), message: aws::describe(e) }
    }
}

/// The AWS error code of a failed call.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> &str {
    aws::error_code(e).unwrap_or_default()
}

/// The last path segment of an ARN-like id after `marker` (`security-group/`, `instance/`), or
/// the id itself when it already starts with `prefix` (`sg-`, `i-`).
pub(crate) fn resource_name(id: &str, marker: &str, prefix: &str) -> Option<String> {
    if id.starts_with(prefix) {
        return Some(id.to_string());
    }
    id.rsplit_once(marker).map(|(_, rest)| rest.to_string()).filter(|s| s.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_playbook_has_a_descriptor_and_names_are_unique() {
        let mut names: Vec<&str> = registry().iter().map(|r| r.descriptor().name).collect();
        assert!(names.iter().all(|n| playbooks::find(n).is_some()), "{names:?}");
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(find("revoke-public-ingress").is_some());
        assert!(find("nope").is_none());
        let without_code: Vec<&str> =
            playbooks::CATALOGUE.iter().map(|p| p.name).filter(|n| find(n).is_none()).collect();
        assert!(without_code.is_empty(), "every playbook a binding may name has code: {without_code:?}");
    }

    #[test]
    fn parameters_get_their_defaults_and_bad_values_are_all_reported() {
        let p = playbooks::find("set-password-policy").unwrap();
        let out = resolve_parameters(p, &Parameters::new()).unwrap();
        assert_eq!(out["minimum_password_length"], "14");
        assert_eq!(out.len(), p.parameters.len());

        let bad = Parameters::from([
            ("minimum_password_length".to_string(), "3".to_string()),
            ("require_symbols".to_string(), "yes".to_string()),
            ("colour".to_string(), "blue".to_string()),
        ]);
        let text = resolve_parameters(p, &bad).unwrap_err().to_string();
        for needle in ["unknown parameter \"colour\"", "minimum_password_length", "require_symbols"] {
            assert!(text.contains(needle), "{text}");
        }

        // An optional text parameter may be given empty; ports may be left at their empty default.
        let r = playbooks::find("revoke-public-ingress").unwrap();
        assert_eq!(resolve_parameters(r, &Parameters::new()).unwrap()["ports"], "");
        assert!(resolve_parameters(r, &Parameters::from([("ports".into(), "ssh".into())])).is_err());
    }

    #[test]
    fn resource_names_come_from_arns_or_bare_ids() {
        assert_eq!(
            resource_name("arn:aws:ec2:us-east-1:333333333333:security-group/sg-1", "security-group/", "sg-"),
            Some("sg-1".into())
        );
        assert_eq!(resource_name("sg-2", "security-group/", "sg-"), Some("sg-2".into()));
        assert_eq!(resource_name("arn:aws:ec2:us-east-1:3:instance/i-9", "instance/", "i-"), Some("i-9".into()));
        assert_eq!(resource_name("AWS::::Account:3", "instance/", "i-"), None);
    }

    #[test]
    fn a_denial_says_who_lacks_which_action() {
        let e = RemediationError::AccessDenied {
            principal: "arn:aws:iam::333333333333:role/OrgSecRemediationRole".into(),
            account: "333333333333".into(),
            region: "us-east-1".into(),
            action: "ec2:RevokeSecurityGroupIngress".into(),
            message: "UnauthorizedOperation: no".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("ec2:RevokeSecurityGroupIngress in account 333333333333 (us-east-1) was denied to arn:aws:iam::333333333333:role/OrgSecRemediationRole"), "{text}");
        assert!(text.contains("add ec2:RevokeSecurityGroupIngress to its permissions policy"), "{text}");
    }
}
