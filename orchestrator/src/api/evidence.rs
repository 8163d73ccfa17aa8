//! `orgsec.v1.EvidenceService`: a bundle (see [`crate::evidence`]) streamed in chunks. Admins
//! and auditors export any scope; an app team only one of its own accounts or OUs.

use std::pin::Pin;

use futures_util::Stream;
use orgsec_proto::orgsec::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, denied};
use crate::auth::{Denied, Role};
use crate::evidence::{EvidenceError, ExportOptions, FRAMEWORKS};

/// Bytes per streamed chunk (well under gRPC's 4 MiB message limit).
const CHUNK: usize = 1 << 20;

/// The framework's short name, from a short name or the standard's path as Security Hub names it.
fn framework(given: &str) -> Result<String, Status> {
    let given = given.trim().trim_start_matches("standards/");
    FRAMEWORKS
        .iter()
        .find(|(short, path)| *short == given || *path == given)
        .map(|(short, _)| short.to_string())
        .ok_or_else(|| {
            let known: Vec<String> = FRAMEWORKS.iter().map(|(s, p)| format!("{s} ({p})")).collect();
            Status::invalid_argument(format!("unknown framework {given:?}; use one of {}", known.join(", ")))
        })
}

#[tonic::async_trait]
impl pb::evidence_service_server::EvidenceService for Api {
    type ExportEvidenceStream = Pin<Box<dyn Stream<Item = Result<pb::EvidenceChunk, Status>> + Send + 'static>>;

    async fn export_evidence(
        &self,
        r: Request<pb::ExportEvidenceRequest>,
    ) -> Result<Response<Self::ExportEvidenceStream>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        let opts = ExportOptions {
            framework: framework(&req.framework)?,
            account: Some(req.account_id).filter(|a| !a.is_empty()),
            ou: Some(req.ou_path).filter(|o| !o.is_empty()),
            since: req
                .since
                .map(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds))
                .transpose()
                .map_err(|e| Status::invalid_argument(format!("since: {e}")))?,
        };
        if who.role == Role::AppTeam {
            let allowed = match (&opts.account, &opts.ou) {
                (Some(a), None) => who.accounts.contains(a),
                (None, Some(ou)) => who.organizational_units.iter().any(|o| crate::binding::ou_within(ou, o)),
                _ => false,
            };
            if !allowed {
                return Err(denied(Denied::PermissionDenied(format!(
                    "token \"{}\" is an app-team token: export evidence for one of its own accounts or OUs",
                    who.name
                ))));
            }
        }
        let bundle = crate::evidence::export(&self.store, self.aws.as_ref(), &opts, time::OffsetDateTime::now_utc())
            .await
            .map_err(|e| match e {
                EvidenceError::UnknownFramework { .. } | EvidenceError::Scope(_) => {
                    Status::invalid_argument(e.to_string())
                }
                EvidenceError::Store(s) => {
                    tracing::error!(error = %s, "store");
                    Status::internal(format!("the orchestrator's database failed: {s}"))
                }
                EvidenceError::Write(w) => Status::internal(w),
            })?;
        tracing::info!(caller = %who.name, framework = %opts.framework, bytes = bundle.bytes.len(), "evidence exported");
        let chunks: Vec<Result<pb::EvidenceChunk, Status>> =
            bundle.bytes.chunks(CHUNK).map(|c| Ok(pb::EvidenceChunk { data: c.to_vec() })).collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(chunks))))
    }
}
