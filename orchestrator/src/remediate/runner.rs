//! The jobs engine's [`Runner`] over the real playbooks: each step finds the job's finding in
//! the store, reaches the finding's account through the member role, and calls the playbook.
//!
//! After a verification that the fix holds, the finding is marked in Security Hub
//! (`BatchUpdateFindings`, by the finding's own account through the member role, else by the
//! delegated admin): Workflow RESOLVED, with a note starting `[orgsec]`
//! that names the playbook, the job and what changed. This happens inside the verify step, so a
//! worker that dies before recording the job's success marks it again on the next try
//! (`BatchUpdateFindings` with the same values changes nothing). A job that fails after its
//! change was made (verification never saw the fix) marks the finding NOTIFIED with a note and
//! raises an alert: a log line at error level and a notification to the binding's targets.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_securityhub::types::{AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Outcome, Plan, Remediation, RemediationError, Target, clients_for};
use crate::aws::{AccessError, Aws, describe, error_code, is_access_denied};
use crate::finding::{Finding, Source};
use crate::jobs::{Job, JobState, RunError, Runner, Step, Verification};
use crate::notify::{Event, Notifier};
use crate::store::Store;

/// Security Hub keeps at most this many characters of a note.
const NOTE_MAX: usize = 512;
/// Who the notes name as their author.
const NOTE_AUTHOR: &str = "orgsec";

/// Accounts whose findings changed through remediation, waiting to be collected again so that
/// the store and the scores catch up (see `orgsec serve`).
#[derive(Debug, Default)]
pub struct Changed {
    accounts: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Changed {
    /// Records that `account` changed and wakes whoever waits.
    pub fn mark(&self, account: &str) {
        self.accounts.lock().insert(account.to_string());
        self.wake.notify_one();
    }

    /// Takes the accounts changed so far, without waiting.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.accounts.lock())
    }

    /// Waits until some account changed, then takes them all.
    pub async fn next(&self) -> BTreeSet<String> {
        loop {
            let taken = self.take();
            if !taken.is_empty() {
                return taken;
            }
            self.wake.notified().await;
        }
    }
}

/// Runs jobs with the playbooks of [`super::registry`].
#[derive(Debug, Clone)]
pub struct PlaybookRunner {
    aws: Aws,
    store: Store,
    notifier: Notifier,
    changed: Arc<Changed>,
}

impl PlaybookRunner {
    pub fn new(aws: Aws, store: Store, notifier: Notifier) -> PlaybookRunner {
        PlaybookRunner { aws, store, notifier, changed: Arc::new(Changed::default()) }
    }

    /// The accounts this runner changed, for re-collection.
    pub fn changed(&self) -> Arc<Changed> {
        self.changed.clone()
    }

    /// The job's finding (with its document), playbook and target.
    async fn context(&self, job: &Job) -> Result<(Finding, &'static dyn Remediation, Target), RunError> {
        let r = super::find(&job.playbook).ok_or_else(|| {
            RunError::permanent(format!(
                "no playbook named {} in this version of orgsec; `orgsec playbooks` lists them",
                job.playbook
            ))
        })?;
        let finding = self
            .store
            .finding(&job.finding_uid)
            .await
            .map_err(|e| RunError::retryable(format!("cannot read the finding from the store: {e}")))?
            .ok_or_else(|| {
                RunError::permanent(format!(
                    "the finding {} is no longer stored; nothing to remediate",
                    job.finding_uid
                ))
            })?;
        let target = Target::from_finding(&finding);
        Ok((finding, r, target))
    }

    async fn clients(&self, t: &Target) -> Result<crate::aws::Clients, RunError> {
        clients_for(&self.aws, t).await.map_err(run_error)
    }

    /// Marks `finding` in Security Hub with `status` and `note`. Findings of other sources are
    /// not Security Hub's to mark: `Ok(false)`.
    ///
    /// The finding's own account marks it, through the member role: Security Hub lets a member
    /// update its own findings, and each account has its own `BatchUpdateFindings` budget (10
    /// requests/s), where the delegated admin's one budget would pace every remediation of the
    /// organization (10,000 findings would take over 16 minutes). A member role without
    /// `securityhub:BatchUpdateFindings` falls back to the delegated admin.
    async fn mark(&self, finding: &Finding, status: WorkflowStatus, note: &str) -> Result<bool, String> {
        if finding.source != Source::SecurityHub {
            return Ok(false);
        }
        let target = Target::from_finding(finding);
        match clients_for(&self.aws, &target).await {
            Ok(member) => match self.mark_as(&member, finding, status.clone(), note).await {
                Err(MarkError::Denied(why)) => {
                    tracing::warn!(
                        account = %finding.account_id, role = %self.aws.role_arn(&finding.account_id), error = %why,
                        "the member role may not mark its findings (securityhub:BatchUpdateFindings); marking through the delegated admin"
                    );
                }
                other => return other.map(|()| true).map_err(MarkError::into_message),
            },
            Err(e) => tracing::warn!(
                account = %finding.account_id, error = %e,
                "cannot reach the member role to mark the finding; marking through the delegated admin"
            ),
        }
        let admin = self.aws.admin(&finding.region);
        self.mark_as(&admin, finding, status, note).await.map(|()| true).map_err(MarkError::into_message)
    }

    async fn mark_as(
        &self,
        c: &crate::aws::Clients,
        finding: &Finding,
        status: WorkflowStatus,
        note: &str,
    ) -> Result<(), MarkError> {
        let id = AwsSecurityFindingIdentifier::builder().id(&finding.id).product_arn(&finding.product_arn).build();
        let note = NoteUpdate::builder().text(truncate(note, NOTE_MAX)).updated_by(NOTE_AUTHOR).build();
        let out = c
            .securityhub()
            .batch_update_findings()
            .finding_identifiers(id)
            .workflow(WorkflowUpdate::builder().status(status).build())
            .note(note)
            .send()
            .await
            .map_err(|e| {
                let message = format!("securityhub:BatchUpdateFindings failed in {}: {}", c.account_id, describe(&e));
                if is_access_denied(error_code(&e)) { MarkError::Denied(message) } else { MarkError::Failed(message) }
            })?;
        if let Some(u) = out.unprocessed_findings().first() {
            return Err(MarkError::Failed(format!(
                "securityhub:BatchUpdateFindings did not update the finding: {} {}",
                u.error_code().unwrap_or("-"),
                u.error_message().unwrap_or("no message")
            )));
        }
        Ok(())
    }

    fn event(
        &self,
        job: &Job,
        finding: Option<&Finding>,
        kind: &str,
        actions: Vec<String>,
        error: Option<String>,
    ) -> Event {
        Event {
            event: format!("remediation.{kind}"),
            job_id: job.id.clone(),
            binding: job.binding.clone(),
            playbook: job.playbook.clone(),
            mode: job.mode.as_str().to_string(),
            finding_uid: job.finding_uid.clone(),
            account_id: job.account_id.clone(),
            region: job.region.clone(),
            resource_type: finding.map(|f| f.resource_type.clone()).unwrap_or_default(),
            resource_id: finding.map(|f| f.resource_id.clone()).unwrap_or_default(),
            control_id: finding.and_then(|f| f.control_id.clone()),
            finding_type: finding.and_then(|f| f.finding_type.clone()),
            title: finding.map(|f| f.title.clone()).unwrap_or_default(),
            actions,
            outcome: job.state.as_str().to_string(),
            error,
            time: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    /// The binding's notification targets (none when the binding is gone).
    async fn targets(&self, job: &Job) -> Vec<String> {
        match self.store.get_binding(&job.binding).await {
            Ok(Some(b)) => b.spec.notify,
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "cannot read the binding's notification targets");
                Vec::new()
            }
        }
    }

    /// What a job's outcome tells people and Security Hub; see the module's documentation.
    async fn report_outcome(&self, job: &Job) {
        let finding = self.store.finding(&job.finding_uid).await.ok().flatten();
        let changed = changes(job);
        if job.state == JobState::Succeeded && !changed.is_empty() {
            let logged =
                crate::monitor::Monitor::remediated(&self.store, &job.account_id, &job.region, &job.id, &changed).await;
            if let Err(e) = logged {
                tracing::warn!(job = %job.id, error = %e, "cannot log the remediation in the change log");
            }
        }
        let failed_after_change = job.state == JobState::Failed && job.step == Step::Executed;
        if failed_after_change {
            let error = job.error.clone().unwrap_or_default();
            tracing::error!(
                job = %job.id, playbook = %job.playbook, account = %job.account_id, finding = %job.finding_uid,
                error = %error, "ALERT: a remediation was applied but the fix does not hold"
            );
            if let Some(f) = &finding {
                let note = format!(
                    "[orgsec] {} (job {}) changed the resource but verification failed: {error}. Review it by hand.",
                    job.playbook, job.id
                );
                if let Err(e) = self.mark(f, WorkflowStatus::Notified, &note).await {
                    tracing::warn!(job = %job.id, error = %e, "cannot mark the finding NOTIFIED");
                }
            }
        }
        let targets = self.targets(job).await;
        if targets.is_empty() {
            return;
        }
        let kind = if job.state == JobState::Succeeded { "succeeded" } else { "failed" };
        let event = self.event(job, finding.as_ref(), kind, changed, job.error.clone());
        self.notifier.send(&targets, &event).await;
    }
}

/// Why marking a finding failed: the caller may not (try someone else), or anything else.
enum MarkError {
    Denied(String),
    Failed(String),
}

impl MarkError {
    fn into_message(self) -> String {
        match self {
            MarkError::Denied(m) | MarkError::Failed(m) => m,
        }
    }
}

/// A playbook's error as the jobs engine sees it: worth another try, or not.
fn run_error(e: RemediationError) -> RunError {
    let retryable = match &e {
        RemediationError::Access(a) => {
            matches!(**a, AccessError::StsUnavailable { .. } | AccessError::Credentials { .. })
        }
        RemediationError::Aws { .. } => true,
        RemediationError::AccessDenied { .. } | RemediationError::NotFound(_) | RemediationError::Invalid(_) => false,
    };
    RunError { message: e.to_string(), retryable }
}

/// A plan's steps for people, one line each (`action: description`); its summary when it has
/// no step.
fn plan_actions(plan: &Plan) -> Vec<String> {
    let actions: Vec<String> = plan.steps.iter().map(|s| format!("{}: {}", s.action, s.description)).collect();
    if actions.is_empty() { vec![plan.summary.clone()] } else { actions }
}

/// What the job's execute step changed, one line each (none before it ran).
pub fn changes(job: &Job) -> Vec<String> {
    job.result.as_deref().and_then(|r| serde_json::from_str::<Outcome>(r).ok()).map(|o| o.changed).unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn plan_from(job: &Job, plan: &serde_json::Value) -> Result<Plan, RunError> {
    serde_json::from_value(plan.clone()).map_err(|e| {
        RunError::permanent(format!(
            "the stored plan of job {} cannot be read ({e}); the job must be planned again",
            job.id
        ))
    })
}

impl Runner for PlaybookRunner {
    async fn plan(&self, job: &Job) -> Result<serde_json::Value, RunError> {
        let (_, r, target) = self.context(job).await?;
        let c = self.clients(&target).await?;
        let plan = r.plan(&c, &target, &job.parameters).await.map_err(run_error)?;
        serde_json::to_value(&plan).map_err(|e| RunError::permanent(format!("cannot record the plan: {e}")))
    }

    async fn execute(&self, job: &Job, plan: &serde_json::Value) -> Result<serde_json::Value, RunError> {
        let plan = plan_from(job, plan)?;
        let (_, r, target) = self.context(job).await?;
        let c = self.clients(&target).await?;
        let outcome = r.execute(&c, &target, &plan).await.map_err(run_error)?;
        if !outcome.changed.is_empty() {
            self.changed.mark(&job.account_id);
        }
        serde_json::to_value(&outcome).map_err(|e| RunError::permanent(format!("cannot record the outcome: {e}")))
    }

    async fn verify(&self, job: &Job, plan: &serde_json::Value) -> Result<Verification, RunError> {
        let plan = plan_from(job, plan)?;
        let (finding, r, target) = self.context(job).await?;
        let c = self.clients(&target).await?;
        let verified = r.verify(&c, &target, &plan).await.map_err(run_error)?;
        if !verified.ok {
            return Ok(Verification::NotFixed(verified.observed));
        }
        let changed = changes(job);
        let what = if changed.is_empty() { "nothing needed changing".to_string() } else { changed.join("; ") };
        let note = format!("[orgsec] {} (job {}): {what}. Verified: {}", job.playbook, job.id, verified.observed);
        self.mark(&finding, WorkflowStatus::Resolved, &note).await.map_err(RunError::retryable)?;
        self.changed.mark(&job.account_id);
        Ok(Verification::Fixed)
    }

    async fn notify(&self, job: &Job, plan: &serde_json::Value) -> Result<(), RunError> {
        let targets = self.targets(job).await;
        if targets.is_empty() {
            return Err(RunError::permanent(format!(
                "binding {} is in notify mode but names no notification targets: add some to its `notify`",
                job.binding
            )));
        }
        let finding = self.store.finding(&job.finding_uid).await.ok().flatten();
        let plan = plan_from(job, plan)?;
        let mut event = self.event(job, finding.as_ref(), "planned", plan_actions(&plan), None);
        event.outcome = "PLANNED".to_string();
        let failed: Vec<String> = self
            .notifier
            .send(&targets, &event)
            .await
            .into_iter()
            .filter_map(|d| d.error.map(|e| format!("{}: {e}", d.target)))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RunError::retryable(format!("notifications not delivered: {}", failed.join("; "))))
        }
    }

    async fn awaiting_approval(&self, job: &Job) {
        // The binding's targets hear of the plan, with how to approve it.
        let targets = self.targets(job).await;
        if targets.is_empty() {
            return;
        }
        let finding = self.store.finding(&job.finding_uid).await.ok().flatten();
        let mut actions = job
            .plan
            .as_deref()
            .and_then(|p| serde_json::from_str::<Plan>(p).ok())
            .map(|p| plan_actions(&p))
            .unwrap_or_default();
        actions.push(format!("approve: orgsec remediations approve {}", job.id));
        actions.push(format!("reject: orgsec remediations reject {} --reason \"...\"", job.id));
        let event = self.event(job, finding.as_ref(), "pending_approval", actions, None);
        self.notifier.send(&targets, &event).await;
    }

    async fn finished(&self, job: &Job) {
        self.report_outcome(job).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_what_security_hub_keeps() {
        assert_eq!(truncate("short", 512), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, 512);
        assert_eq!(cut.chars().count(), 512);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let denied = RemediationError::AccessDenied {
            principal: "p".into(),
            account: "a".into(),
            region: "r".into(),
            action: "ec2:X".into(),
            message: "m".into(),
        };
        assert!(!run_error(denied).retryable);
        assert!(!run_error(RemediationError::NotFound("sg-1".into())).retryable);
        assert!(run_error(RemediationError::Aws { action: "ec2:X".into(), message: "throttled".into() }).retryable);
        let refused = RemediationError::Access(Box::new(AccessError::RoleRefused {
            role_arn: "arn".into(),
            account: "a".into(),
            admin_account: "b".into(),
            external_id_set: false,
            detail: "d".into(),
        }));
        assert!(!run_error(refused).retryable, "a refused role does not fix itself");
        let sts = RemediationError::Access(Box::new(AccessError::StsUnavailable {
            role_arn: "arn".into(),
            detail: "d".into(),
        }));
        assert!(run_error(sts).retryable);
    }
}
