//! `enable-guardduty` (GuardDuty.1): a GuardDuty detector, enabled, in the account and region.
//! A detector that exists but is suspended is re-enabled rather than replaced, so its findings
//! and settings are kept.

use aws_sdk_guardduty::types::{DetectorStatus, FindingPublishingFrequency};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Remediation as _;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, failed, plan_of, step, text_param};
use crate::aws::Clients;

pub(crate) struct EnableGuardDuty;
super::remediation!(EnableGuardDuty, "enable-guardduty");

#[derive(Debug, Serialize, Deserialize)]
struct Desired {
    finding_publishing_frequency: String,
}

/// The region's detector: id, enabled, publishing frequency.
struct Detector {
    id: String,
    enabled: bool,
    frequency: String,
}

async fn read(c: &Clients) -> Result<Option<Detector>, RemediationError> {
    let list = c.guardduty().list_detectors().send().await.map_err(|e| failed(c, "guardduty:ListDetectors", &e))?;
    let Some(id) = list.detector_ids().first() else {
        return Ok(None);
    };
    let d = c
        .guardduty()
        .get_detector()
        .detector_id(id)
        .send()
        .await
        .map_err(|e| failed(c, "guardduty:GetDetector", &e))?;
    Ok(Some(Detector {
        id: id.clone(),
        enabled: d.status() == Some(&DetectorStatus::Enabled),
        frequency: d.finding_publishing_frequency().map(|f| f.as_str().to_string()).unwrap_or_default(),
    }))
}

/// What must change: `None` when the detector is enabled with the wanted frequency.
fn needed(now: &Option<Detector>, want: &Desired) -> Option<&'static str> {
    match now {
        None => Some("guardduty:CreateDetector"),
        Some(d) if !d.enabled || d.frequency != want.finding_publishing_frequency => Some("guardduty:UpdateDetector"),
        Some(_) => None,
    }
}

impl EnableGuardDuty {
    async fn plan(&self, c: &Clients, _t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let want = Desired { finding_publishing_frequency: text_param(&params, "finding_publishing_frequency").into() };
        let now = read(c).await?;
        let mut steps = Vec::new();
        match (needed(&now, &want), &now) {
            (Some(action), None) => steps.push(step(
                action,
                format!("create an enabled GuardDuty detector in {} ({})", c.account_id, c.region),
                json!({"finding_publishing_frequency": want.finding_publishing_frequency}),
            )),
            (Some(action), Some(d)) => steps.push(step(
                action,
                format!("enable GuardDuty detector {} in {} ({})", d.id, c.account_id, c.region),
                json!({"detector_id": d.id, "was_enabled": d.enabled, "finding_publishing_frequency": want.finding_publishing_frequency}),
            )),
            (None, _) => {}
        }
        let summary = if steps.is_empty() {
            "GuardDuty is already enabled; nothing to change".to_string()
        } else {
            "GuardDuty will watch this account and region".to_string()
        };
        plan_of(self.descriptor(), summary, params, steps, want)
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let want: Desired = super::desired(plan)?;
        let frequency = FindingPublishingFrequency::from(want.finding_publishing_frequency.as_str());
        let now = read(c).await?;
        let mut changed = Vec::new();
        let detector_id = match (needed(&now, &want), now) {
            (None, Some(d)) => d.id,
            (_, None) => {
                let out = c
                    .guardduty()
                    .create_detector()
                    .enable(true)
                    .finding_publishing_frequency(frequency)
                    .send()
                    .await
                    .map_err(|e| failed(c, "guardduty:CreateDetector", &e))?;
                let id = out.detector_id().unwrap_or_default().to_string();
                changed.push(format!("created GuardDuty detector {id} in {} ({})", c.account_id, c.region));
                id
            }
            (Some(_), Some(d)) => {
                c.guardduty()
                    .update_detector()
                    .detector_id(&d.id)
                    .enable(true)
                    .finding_publishing_frequency(frequency)
                    .send()
                    .await
                    .map_err(|e| failed(c, "guardduty:UpdateDetector", &e))?;
                changed.push(format!("enabled GuardDuty detector {} in {} ({})", d.id, c.account_id, c.region));
                d.id
            }
        };
        Ok(Outcome { changed, details: json!({"detector_id": detector_id}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let want: Desired = super::desired(plan)?;
        let now = read(c).await?;
        let ok = needed(&now, &want).is_none();
        let observed = match &now {
            None => "there is no GuardDuty detector".to_string(),
            Some(d) => format!(
                "detector {} is {}, publishing every {}",
                d.id,
                if d.enabled { "enabled" } else { "suspended" },
                d.frequency
            ),
        };
        Ok(Verified { ok, observed })
    }
}
