//! `block-public-bucket` (S3.8, Access Analyzer's public-bucket findings): all four S3 Block
//! Public Access settings on the one bucket the finding names, which then override the bucket's
//! ACLs and policy; nothing else in the account changes.

use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use serde_json::json;

use super::Remediation as _;
use super::bpa::{Settings, all_on, describe, from_flags};
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, code, failed, plan_of, step};
use crate::aws::Clients;

pub(crate) struct BlockPublicBucket;
super::remediation!(BlockPublicBucket, "block-public-bucket");

/// The bucket a finding names: `arn:<partition>:s3:::name`, or a bare name.
fn bucket_of(t: &Target) -> Result<String, RemediationError> {
    let id = t.resource_id.as_str();
    let name = match id.strip_prefix("arn:") {
        Some(rest) => rest.split_once(":s3:::").map(|(_, name)| name).unwrap_or_default(),
        None => id,
    };
    // A bucket ARN may carry a key path (`bucket/key`); the bucket is what comes before it.
    let name = name.split('/').next().unwrap_or_default();
    let valid = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid {
        return Err(RemediationError::Invalid(format!(
            "block-public-bucket needs an S3 bucket, and the finding names {id:?} ({})",
            t.resource_type
        )));
    }
    Ok(name.to_string())
}

async fn read(c: &Clients, bucket: &str) -> Result<Settings, RemediationError> {
    match c.s3().get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().map(|b| {
            from_flags([
                b.block_public_acls(),
                b.ignore_public_acls(),
                b.block_public_policy(),
                b.restrict_public_buckets(),
            ])
        })),
        Err(e) if code(&e) == "NoSuchPublicAccessBlockConfiguration" => Ok(None),
        Err(e) if code(&e) == "NoSuchBucket" => Err(RemediationError::NotFound(format!("bucket {bucket}"))),
        Err(e) => Err(failed(c, "s3:GetBucketPublicAccessBlock", &e)),
    }
}

impl BlockPublicBucket {
    async fn plan(&self, c: &Clients, t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let bucket = bucket_of(t)?;
        let now = read(c, &bucket).await?;
        let mut steps = Vec::new();
        if !all_on(now) {
            steps.push(step(
                "s3:PutBucketPublicAccessBlock",
                format!("turn on all four Block Public Access settings of bucket {bucket} (now {})", describe(now)),
                json!({"Bucket": bucket, "BlockPublicAcls": true, "IgnorePublicAcls": true,
                       "BlockPublicPolicy": true, "RestrictPublicBuckets": true}),
            ));
        }
        let summary = if steps.is_empty() {
            format!("bucket {bucket} already blocks public access; nothing to change")
        } else {
            format!("bucket {bucket} can no longer be public through its ACLs or policy; other buckets are untouched")
        };
        plan_of(self.descriptor(), summary, params, steps, json!({"bucket": bucket}))
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let bucket = planned_bucket(plan)?;
        let now = read(c, &bucket).await?;
        let mut changed = Vec::new();
        if !all_on(now) {
            let all = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            c.s3()
                .put_public_access_block()
                .bucket(&bucket)
                .public_access_block_configuration(all)
                .send()
                .await
                .map_err(|e| failed(c, "s3:PutBucketPublicAccessBlock", &e))?;
            changed.push(format!("turned on S3 Block Public Access for bucket {bucket} (was {})", describe(now)));
        }
        Ok(Outcome { changed, details: json!({"bucket": bucket, "previous": describe(now)}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let bucket = planned_bucket(plan)?;
        let now = read(c, &bucket).await?;
        Ok(Verified { ok: all_on(now), observed: format!("bucket {bucket} Block Public Access: {}", describe(now)) })
    }
}

/// The bucket the plan was made for: execute and verify act on it alone.
fn planned_bucket(plan: &Plan) -> Result<String, RemediationError> {
    #[derive(serde::Deserialize)]
    struct Desired {
        bucket: String,
    }
    Ok(super::desired::<Desired>(plan)?.bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> Target {
        Target {
            account_id: "555555555555".into(),
            region: "us-east-1".into(),
            resource_type: "AwsS3Bucket".into(),
            resource_id: id.into(),
            control_id: Some("S3.8".into()),
            finding_type: None,
            finding_id: "f".into(),
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_bucket_comes_from_its_arn_or_name() {
        assert_eq!(bucket_of(&t("arn:aws:s3:::logs.example-1")).unwrap(), "logs.example-1");
        assert_eq!(bucket_of(&t("arn:aws-us-gov:s3:::gov-bucket")).unwrap(), "gov-bucket");
        assert_eq!(bucket_of(&t("arn:aws:s3:::data-bucket/some/key")).unwrap(), "data-bucket");
        assert_eq!(bucket_of(&t("plain-bucket")).unwrap(), "plain-bucket");
        for bad in ["arn:aws:ec2:us-east-1:555555555555:instance/i-1", "AWS::::Account:555555555555", "ab", ""] {
            assert!(matches!(bucket_of(&t(bad)), Err(RemediationError::Invalid(_))), "{bad}");
        }
    }
}
