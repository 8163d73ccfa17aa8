//! `orgsec.v1.RemediationService`: remediation jobs within the caller's reach; approving and
//! rejecting take an admin token.

use orgsec_proto::orgsec::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, denied};
use crate::jobs::{Job, JobError};
use crate::service::RemediationServiceError;

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: t.nanosecond() as i32 }
}

fn job_to_pb(j: Job) -> pb::Remediation {
    pb::Remediation {
        id: j.id,
        binding: j.binding,
        playbook: j.playbook,
        finding_uid: j.finding_uid,
        account_id: j.account_id,
        state: j.state.as_str().to_string(),
        plan: j.plan.unwrap_or_default(),
        error: j.error.unwrap_or_default(),
        created_at: Some(timestamp(j.created_at)),
        updated_at: Some(timestamp(j.updated_at)),
    }
}

fn status(e: RemediationServiceError) -> Status {
    match e {
        RemediationServiceError::Denied(d) => denied(d),
        RemediationServiceError::BadRequest(m) => Status::invalid_argument(m),
        RemediationServiceError::Job(JobError::NotFound(_)) => Status::not_found(e.to_string()),
        RemediationServiceError::Job(JobError::NotPending { .. } | JobError::Expired(_)) => {
            Status::failed_precondition(e.to_string())
        }
        RemediationServiceError::Job(JobError::Store(s)) => {
            tracing::error!(error = %s, "store");
            Status::internal(format!("the orchestrator's database failed: {s}"))
        }
    }
}

#[tonic::async_trait]
impl pb::remediation_service_server::RemediationService for Api {
    async fn list_remediations(
        &self,
        r: Request<pb::ListRemediationsRequest>,
    ) -> Result<Response<pb::ListRemediationsResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        let jobs = self.remediations.list(&who, &req.states, None, crate::service::MAX_JOBS).await.map_err(status)?;
        Ok(Response::new(pb::ListRemediationsResponse { remediations: jobs.into_iter().map(job_to_pb).collect() }))
    }

    async fn approve_remediation(
        &self,
        r: Request<pb::ApproveRemediationRequest>,
    ) -> Result<Response<pb::Remediation>, Status> {
        let who = self.caller(&r)?.clone();
        let id = r.into_inner().id;
        Ok(Response::new(job_to_pb(self.remediations.approve(&who, &id).await.map_err(status)?)))
    }

    async fn reject_remediation(
        &self,
        r: Request<pb::RejectRemediationRequest>,
    ) -> Result<Response<pb::Remediation>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        Ok(Response::new(job_to_pb(self.remediations.reject(&who, &req.id, &req.reason).await.map_err(status)?)))
    }
}
