//! `set-password-policy` (IAM.7, IAM.11-IAM.17): the account's IAM password policy, as the
//! parameters say. UpdateAccountPasswordPolicy replaces the whole policy, so the plan shows the
//! policy before and after.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Remediation as _;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, bool_param, code, failed, int_param};
use super::{plan_of, step};
use crate::aws::Clients;

pub(crate) struct SetPasswordPolicy;
super::remediation!(SetPasswordPolicy, "set-password-policy");

/// A password policy, in the terms of the playbook's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Policy {
    minimum_password_length: i32,
    require_symbols: bool,
    require_numbers: bool,
    require_uppercase_characters: bool,
    require_lowercase_characters: bool,
    allow_users_to_change_password: bool,
    max_password_age: i32,
    password_reuse_prevention: i32,
    hard_expiry: bool,
}

impl Policy {
    fn from_params(p: &Parameters) -> Result<Policy, RemediationError> {
        Ok(Policy {
            minimum_password_length: int_param(p, "minimum_password_length")?,
            require_symbols: bool_param(p, "require_symbols"),
            require_numbers: bool_param(p, "require_numbers"),
            require_uppercase_characters: bool_param(p, "require_uppercase_characters"),
            require_lowercase_characters: bool_param(p, "require_lowercase_characters"),
            allow_users_to_change_password: bool_param(p, "allow_users_to_change_password"),
            max_password_age: int_param(p, "max_password_age")?,
            password_reuse_prevention: int_param(p, "password_reuse_prevention")?,
            hard_expiry: bool_param(p, "hard_expiry"),
        })
    }
}

/// The current policy; `None` when the account has none (IAM's NoSuchEntity).
async fn read(c: &Clients) -> Result<Option<Policy>, RemediationError> {
    match c.iam().get_account_password_policy().send().await {
        Ok(out) => Ok(out.password_policy().map(|p| Policy {
            minimum_password_length: p.minimum_password_length().unwrap_or(0),
            require_symbols: p.require_symbols(),
            require_numbers: p.require_numbers(),
            require_uppercase_characters: p.require_uppercase_characters(),
            require_lowercase_characters: p.require_lowercase_characters(),
            allow_users_to_change_password: p.allow_users_to_change_password(),
            max_password_age: p.max_password_age().unwrap_or(0),
            password_reuse_prevention: p.password_reuse_prevention().unwrap_or(0),
            hard_expiry: p.hard_expiry().unwrap_or(false),
        })),
        Err(e) if code(&e) == "NoSuchEntity" => Ok(None),
        Err(e) => Err(failed(c, "iam:GetAccountPasswordPolicy", &e)),
    }
}

impl SetPasswordPolicy {
    async fn plan(&self, c: &Clients, _t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let want = Policy::from_params(&params)?;
        let now = read(c).await?;
        let mut steps = Vec::new();
        if now.as_ref() != Some(&want) {
            steps.push(step(
                "iam:UpdateAccountPasswordPolicy",
                format!(
                    "set the IAM password policy of account {} (minimum length {}, reuse prevention {}, expiry {} days)",
                    c.account_id, want.minimum_password_length, want.password_reuse_prevention, want.max_password_age
                ),
                json!({"before": now, "after": want}),
            ));
        }
        let summary = match (&now, steps.is_empty()) {
            (_, true) => "the password policy already is as asked; nothing to change".to_string(),
            (None, false) => "the account has no password policy; one will be set".to_string(),
            (Some(_), false) => "the password policy will be replaced".to_string(),
        };
        plan_of(self.descriptor(), summary, params, steps, want)
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let want: Policy = super::desired(plan)?;
        let now = read(c).await?;
        let mut changed = Vec::new();
        if now.as_ref() != Some(&want) {
            c.iam()
                .update_account_password_policy()
                .minimum_password_length(want.minimum_password_length)
                .require_symbols(want.require_symbols)
                .require_numbers(want.require_numbers)
                .require_uppercase_characters(want.require_uppercase_characters)
                .require_lowercase_characters(want.require_lowercase_characters)
                .allow_users_to_change_password(want.allow_users_to_change_password)
                .max_password_age(want.max_password_age)
                .password_reuse_prevention(want.password_reuse_prevention)
                .hard_expiry(want.hard_expiry)
                .send()
                .await
                .map_err(|e| failed(c, "iam:UpdateAccountPasswordPolicy", &e))?;
            changed.push(format!("set the IAM password policy of account {}", c.account_id));
        }
        Ok(Outcome { changed, details: json!({"before": now, "after": want}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let want: Policy = super::desired(plan)?;
        let now = read(c).await?;
        Ok(match now {
            Some(p) if p == want => Verified { ok: true, observed: "the password policy is as planned".into() },
            Some(p) => {
                Verified { ok: false, observed: format!("the password policy differs from the plan: {}", json!(p)) }
            }
            None => Verified { ok: false, observed: "the account has no password policy".into() },
        })
    }
}
