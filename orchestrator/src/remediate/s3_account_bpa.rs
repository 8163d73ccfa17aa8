//! `enable-s3-account-bpa` (S3.1): all four S3 Block Public Access settings for the whole
//! account, which then override any bucket's ACLs and policies that would make it public.

use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
use serde_json::json;

use super::Remediation as _;
use super::bpa::{Settings, all_on, describe, from_flags};
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, code, failed, plan_of, step};
use crate::aws::Clients;

pub(crate) struct EnableS3AccountBpa;
super::remediation!(EnableS3AccountBpa, "enable-s3-account-bpa");

async fn read(c: &Clients) -> Result<Settings, RemediationError> {
    match c.s3control().get_public_access_block().account_id(&c.account_id).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().map(|b| {
            from_flags([
                b.block_public_acls(),
                b.ignore_public_acls(),
                b.block_public_policy(),
                b.restrict_public_buckets(),
            ])
        })),
        Err(e) if code(&e) == "NoSuchPublicAccessBlockConfiguration" => Ok(None),
        Err(e) => Err(failed(c, "s3:GetAccountPublicAccessBlock", &e)),
    }
}

impl EnableS3AccountBpa {
    async fn plan(&self, c: &Clients, _t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let now = read(c).await?;
        let mut steps = Vec::new();
        if !all_on(now) {
            steps.push(step(
                "s3:PutAccountPublicAccessBlock",
                format!("turn on all four Block Public Access settings for account {} (now {})", c.account_id, describe(now)),
                json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}),
            ));
        }
        let summary = if steps.is_empty() {
            "account-level Block Public Access is already fully on; nothing to change".into()
        } else {
            "no bucket in the account can be made public through ACLs or policies".into()
        };
        plan_of(self.descriptor(), summary, params, steps, json!({}))
    }

    async fn execute(&self, c: &Clients, _t: &Target, _plan: &Plan) -> Result<Outcome, RemediationError> {
        let now = read(c).await?;
        let mut changed = Vec::new();
        if !all_on(now) {
            let all = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            c.s3control()
                .put_public_access_block()
                .account_id(&c.account_id)
                .public_access_block_configuration(all)
                .send()
                .await
                .map_err(|e| failed(c, "s3:PutAccountPublicAccessBlock", &e))?;
            changed.push(format!(
                "turned on account-level S3 Block Public Access in {} (was {})",
                c.account_id,
                describe(now)
            ));
        }
        Ok(Outcome { changed, details: json!({"previous": describe(now)}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, _plan: &Plan) -> Result<Verified, RemediationError> {
        let now = read(c).await?;
        Ok(Verified { ok: all_on(now), observed: format!("account-level Block Public Access: {}", describe(now)) })
    }
}
