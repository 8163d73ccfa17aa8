//! `deactivate-access-key` (GuardDuty IAMUser credential findings): the key the finding names
//! is made Inactive. It is not deleted, so that it can be examined and, if the finding was a
//! false alarm, reactivated; the user's other keys are left alone.

use aws_sdk_iam::types::StatusType;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Remediation as _;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, failed, plan_of, step};
use crate::aws::Clients;

pub(crate) struct DeactivateAccessKey;
super::remediation!(DeactivateAccessKey, "deactivate-access-key");

#[derive(Debug, Serialize, Deserialize)]
struct Desired {
    user_name: String,
    access_key_id: String,
}

/// The key and its owner, from the finding: GuardDuty's `resource.accessKeyDetails`, or the
/// Security Hub copy's resource.
fn key_of(t: &Target) -> Result<Desired, RemediationError> {
    let access_key_id = t
        .resource_id
        .strip_prefix("AWS::IAM::AccessKey:")
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .or_else(|| {
            t.raw_str(&["/resource/accessKeyDetails/accessKeyId", "/Resources/0/Details/AwsIamAccessKey/AccessKeyId"])
        })
        .ok_or_else(|| RemediationError::Invalid(format!("the finding {} names no access key", t.finding_id)))?;
    let user_type =
        t.raw_str(&["/resource/accessKeyDetails/userType", "/Resources/0/Details/AwsIamAccessKey/PrincipalType"]);
    if user_type.as_deref() == Some("Root") {
        return Err(RemediationError::Invalid(format!(
            "access key {access_key_id} belongs to the root user of {}, which no role can change; sign in as root and deactivate it",
            t.account_id
        )));
    }
    let user_name = t
        .raw_str(&[
            "/resource/accessKeyDetails/userName",
            "/Resources/0/Details/AwsIamAccessKey/UserName",
            "/Resources/0/Details/AwsIamAccessKey/PrincipalName",
        ])
        .ok_or_else(|| {
            RemediationError::Invalid(format!(
                "the finding {} does not name the user owning access key {access_key_id}",
                t.finding_id
            ))
        })?;
    Ok(Desired { user_name, access_key_id })
}

/// Whether the key is active now.
async fn is_active(c: &Clients, d: &Desired) -> Result<bool, RemediationError> {
    let out = c.iam().list_access_keys().user_name(&d.user_name).send().await.map_err(|e| match super::code(&e) {
        "NoSuchEntity" => RemediationError::NotFound(format!("IAM user {} in {}", d.user_name, c.account_id)),
        _ => failed(c, "iam:ListAccessKeys", &e),
    })?;
    let key =
        out.access_key_metadata().iter().find(|k| k.access_key_id() == Some(d.access_key_id.as_str())).ok_or_else(
            || RemediationError::NotFound(format!("access key {} of IAM user {}", d.access_key_id, d.user_name)),
        )?;
    Ok(key.status() == Some(&StatusType::Active))
}

impl DeactivateAccessKey {
    async fn plan(&self, c: &Clients, t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let d = key_of(t)?;
        let active = is_active(c, &d).await?;
        let last_used = c
            .iam()
            .get_access_key_last_used()
            .access_key_id(&d.access_key_id)
            .send()
            .await
            .map_err(|e| failed(c, "iam:GetAccessKeyLastUsed", &e))?;
        let last = last_used.access_key_last_used().map(|u| {
            json!({
                "date": u.last_used_date().map(|d| d.to_string()),
                "service": u.service_name(),
                "region": u.region(),
            })
        });
        let mut steps = Vec::new();
        if active {
            steps.push(step(
                "iam:UpdateAccessKey",
                format!("deactivate access key {} of IAM user {} (the key is kept)", d.access_key_id, d.user_name),
                json!({"user_name": d.user_name, "access_key_id": d.access_key_id, "last_used": last}),
            ));
        }
        let summary = if active {
            format!("access key {} stops working; applications using it will fail until given another", d.access_key_id)
        } else {
            format!("access key {} is already inactive; nothing to change", d.access_key_id)
        };
        plan_of(self.descriptor(), summary, params, steps, d)
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let mut changed = Vec::new();
        if is_active(c, &d).await? {
            c.iam()
                .update_access_key()
                .user_name(&d.user_name)
                .access_key_id(&d.access_key_id)
                .status(StatusType::Inactive)
                .send()
                .await
                .map_err(|e| failed(c, "iam:UpdateAccessKey", &e))?;
            changed.push(format!("deactivated access key {} of IAM user {}", d.access_key_id, d.user_name));
        }
        Ok(Outcome { changed, details: json!({"user_name": d.user_name, "access_key_id": d.access_key_id}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let active = is_active(c, &d).await?;
        Ok(Verified {
            ok: !active,
            observed: format!(
                "access key {} of {} is {}",
                d.access_key_id,
                d.user_name,
                if active { "active" } else { "inactive" }
            ),
        })
    }
}
