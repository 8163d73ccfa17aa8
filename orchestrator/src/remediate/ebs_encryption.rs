//! `enable-ebs-default-encryption` (EC2.7): new EBS volumes in the account and region are
//! encrypted, optionally with a customer managed KMS key. Existing volumes are not touched:
//! encrypting them means copying them, which is a migration, not a remediation.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Remediation as _;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, failed, plan_of, step, text_param};
use crate::aws::Clients;

pub(crate) struct EnableEbsDefaultEncryption;
super::remediation!(EnableEbsDefaultEncryption, "enable-ebs-default-encryption");

#[derive(Debug, Serialize, Deserialize)]
struct Desired {
    /// Empty: keep the AWS managed key (or whatever default key is set).
    kms_key_id: String,
}

/// The account's current settings.
struct Current {
    enabled: bool,
    /// Read only when a key is wanted (it needs `ec2:GetEbsDefaultKmsKeyId`).
    kms_key_id: Option<String>,
}

async fn read(c: &Clients, want_key: bool) -> Result<Current, RemediationError> {
    let out = c
        .ec2()
        .get_ebs_encryption_by_default()
        .send()
        .await
        .map_err(|e| failed(c, "ec2:GetEbsEncryptionByDefault", &e))?;
    let kms_key_id = if want_key {
        let k = c
            .ec2()
            .get_ebs_default_kms_key_id()
            .send()
            .await
            .map_err(|e| failed(c, "ec2:GetEbsDefaultKmsKeyId", &e))?;
        Some(k.kms_key_id().unwrap_or_default().to_string())
    } else {
        None
    };
    Ok(Current { enabled: out.ebs_encryption_by_default().unwrap_or(false), kms_key_id })
}

impl EnableEbsDefaultEncryption {
    async fn plan(&self, c: &Clients, _t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let d = Desired { kms_key_id: text_param(&params, "kms_key_id").to_string() };
        let now = read(c, !d.kms_key_id.is_empty()).await?;
        let mut steps = Vec::new();
        if !now.enabled {
            steps.push(step(
                "ec2:EnableEbsEncryptionByDefault",
                format!("turn on EBS encryption by default in {} ({})", c.account_id, c.region),
                json!({}),
            ));
        }
        if now.kms_key_id.as_deref().is_some_and(|k| k != d.kms_key_id) {
            steps.push(step(
                "ec2:ModifyEbsDefaultKmsKeyId",
                format!("encrypt new volumes with {}", d.kms_key_id),
                json!({"from": now.kms_key_id, "to": d.kms_key_id}),
            ));
        }
        let summary = if steps.is_empty() {
            "EBS encryption by default is already on; nothing to change".to_string()
        } else {
            "new EBS volumes will be encrypted; existing volumes are unchanged".to_string()
        };
        plan_of(self.descriptor(), summary, params, steps, d)
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let now = read(c, !d.kms_key_id.is_empty()).await?;
        let mut changed = Vec::new();
        if !now.enabled {
            c.ec2()
                .enable_ebs_encryption_by_default()
                .send()
                .await
                .map_err(|e| failed(c, "ec2:EnableEbsEncryptionByDefault", &e))?;
            changed.push(format!("turned on EBS encryption by default in {} ({})", c.account_id, c.region));
        }
        if now.kms_key_id.as_deref().is_some_and(|k| k != d.kms_key_id) {
            c.ec2()
                .modify_ebs_default_kms_key_id()
                .kms_key_id(&d.kms_key_id)
                .send()
                .await
                .map_err(|e| failed(c, "ec2:ModifyEbsDefaultKmsKeyId", &e))?;
            changed.push(format!("set the default EBS key to {}", d.kms_key_id));
        }
        Ok(Outcome { changed, details: json!({"was_enabled": now.enabled, "previous_kms_key_id": now.kms_key_id}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let now = read(c, !d.kms_key_id.is_empty()).await?;
        let key_ok = now.kms_key_id.as_deref().is_none_or(|k| k == d.kms_key_id);
        Ok(Verified {
            ok: now.enabled && key_ok,
            observed: match (now.enabled, key_ok) {
                (true, true) => "EBS encryption by default is on".into(),
                (false, _) => "EBS encryption by default is still off".into(),
                (true, false) => format!(
                    "EBS encryption by default is on, but with key {} instead of {}",
                    now.kms_key_id.unwrap_or_default(),
                    d.kms_key_id
                ),
            },
        })
    }
}
