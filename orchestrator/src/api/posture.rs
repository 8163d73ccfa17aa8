//! `orgsec.v1.PostureService`: scores and priorities from the latest scoring, as prost types.
//!
//! Every role may read posture (app teams and auditors read everything; they change nothing
//! here). Until the first scoring has run, every call is NOT_FOUND with a message saying so.
//! When the store holds a newer score snapshot than the one published (an `orgsec sync` or
//! `orgsec remediate` ran beside the service), a call rescores first: callers never read scores
//! older than the store's.

use orgsec_proto::orgsec::v1 as pb;
use tonic::{Request, Response, Status};

use super::Api;
use crate::catalogue::catalogue;
use crate::score::{ScopeKind, ScopeRef, Scoreboard};

fn kind_from_pb(k: i32) -> Result<ScopeKind, Status> {
    Ok(match pb::ScopeKind::try_from(k).unwrap_or(pb::ScopeKind::Unspecified) {
        pb::ScopeKind::Unspecified | pb::ScopeKind::Org => ScopeKind::Org,
        pb::ScopeKind::Ou => ScopeKind::Ou,
        pb::ScopeKind::Account => ScopeKind::Account,
        pb::ScopeKind::ResourceType => ScopeKind::ResourceType,
        pb::ScopeKind::Resource => ScopeKind::Resource,
    })
}

fn kind_to_pb(k: ScopeKind) -> pb::ScopeKind {
    match k {
        ScopeKind::Org => pb::ScopeKind::Org,
        ScopeKind::Ou => pb::ScopeKind::Ou,
        ScopeKind::Account => pb::ScopeKind::Account,
        ScopeKind::ResourceType => pb::ScopeKind::ResourceType,
        ScopeKind::Resource => pb::ScopeKind::Resource,
    }
}

/// The scope a request names; the org's id may be empty or "org".
fn scope_of(kind: ScopeKind, id: &str) -> Result<ScopeRef, Status> {
    match kind {
        ScopeKind::Org => Ok(ScopeRef::org()),
        ScopeKind::Ou => Ok(ScopeRef::ou(id)),
        _ if id.is_empty() => Err(Status::invalid_argument(format!("a {kind} scope needs an id"))),
        _ => Ok(ScopeRef::new(kind, id)),
    }
}

fn timestamp(t: Option<time::OffsetDateTime>) -> Option<prost_types::Timestamp> {
    t.map(|t| prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: t.nanosecond() as i32 })
}

impl Api {
    /// Rescores and publishes when the store's newest snapshot is newer than the published
    /// scores. One cheap query when nothing changed.
    async fn fresh_posture(&self) -> Result<(), Status> {
        let failed = |e: crate::store::StoreError| Status::internal(format!("the orchestrator's database failed: {e}"));
        let Some(latest) = self.store.latest_snapshot_at().await.map_err(failed)? else { return Ok(()) };
        let published = self.posture.read().computed_at.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
        if published.is_some_and(|p| p >= latest) {
            return Ok(());
        }
        let board = crate::posture::scoreboard(&self.store, crate::score::Weights::default()).await.map_err(failed)?;
        crate::posture::publish(&self.posture, board, time::OffsetDateTime::now_utc());
        Ok(())
    }
}

fn not_scored() -> Status {
    Status::not_found(
        "nothing has been scored yet: the orchestrator scores after each sync (`orgsec sync`, or the loop in `orgsec serve`)",
    )
}

/// Whether the board knows the scope.
fn known(board: &Scoreboard, scope: &ScopeRef) -> bool {
    scope.kind == ScopeKind::Org || board.scores(scope.kind).iter().any(|s| s.id == scope.id)
}

fn score_to_pb(board: &Scoreboard, scope: &ScopeRef, at: Option<time::OffsetDateTime>) -> pb::Score {
    let s = board.score(scope);
    let contributions = board.explain(scope);
    let failing_resources = contributions.iter().map(|c| c.failing_resources).max().unwrap_or(0);
    pb::Score {
        scope: kind_to_pb(s.scope) as i32,
        id: s.id.clone(),
        score: s.score,
        failing_findings: s.failing_checks as i64,
        failing_resources: failing_resources as i64,
        resources: s.checks as i64,
        computed_at: timestamp(at),
        contributions: contributions
            .iter()
            .filter(|c| c.failing_weight > 0)
            .map(|c| pb::Contribution {
                control_id: c.label.clone(),
                points: c.points,
                failing_resources: c.failing_resources as i64,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::posture_service_server::PostureService for Api {
    async fn get_score(&self, r: Request<pb::GetScoreRequest>) -> Result<Response<pb::Score>, Status> {
        self.caller(&r)?;
        let req = r.into_inner();
        let scope = scope_of(kind_from_pb(req.scope)?, &req.id)?;
        self.fresh_posture().await?;
        let latest = self.posture.read();
        let board = latest.board.as_ref().ok_or_else(not_scored)?;
        if !known(board, &scope) {
            return Err(Status::not_found(format!("no {} named {:?} has been scored", scope.kind, scope.id)));
        }
        Ok(Response::new(score_to_pb(board, &scope, latest.computed_at)))
    }

    async fn list_scores(&self, r: Request<pb::ListScoresRequest>) -> Result<Response<pb::ListScoresResponse>, Status> {
        self.caller(&r)?;
        let kind = kind_from_pb(r.into_inner().scope)?;
        self.fresh_posture().await?;
        let latest = self.posture.read();
        let board = latest.board.as_ref().ok_or_else(not_scored)?;
        let mut scores = if kind == ScopeKind::Org { vec![board.score(&ScopeRef::org())] } else { board.scores(kind) };
        scores.sort_by(|a, b| a.score.total_cmp(&b.score).then_with(|| a.id.cmp(&b.id)));
        let scores = scores.iter().map(|s| score_to_pb(board, &s.scope_ref(), latest.computed_at)).collect();
        Ok(Response::new(pb::ListScoresResponse { scores }))
    }

    async fn list_priorities(
        &self,
        r: Request<pb::ListPrioritiesRequest>,
    ) -> Result<Response<pb::ListPrioritiesResponse>, Status> {
        self.caller(&r)?;
        let req = r.into_inner();
        let scope = scope_of(kind_from_pb(req.scope)?, &req.id)?;
        if req.limit < 0 {
            return Err(Status::invalid_argument("limit must be 0 (all) or more"));
        }
        self.fresh_posture().await?;
        let latest = self.posture.read();
        let board = latest.board.as_ref().ok_or_else(not_scored)?;
        if !known(board, &scope) {
            return Err(Status::not_found(format!("no {} named {:?} has been scored", scope.kind, scope.id)));
        }
        let limit = if req.limit == 0 { usize::MAX } else { req.limit as usize };
        let priorities = board
            .priorities(&scope, limit)
            .into_iter()
            .map(|p| pb::Priority {
                title: catalogue().get(&p.control_id).map(|c| c.title.clone()).unwrap_or_default(),
                control_id: p.control_id,
                severity: p.severity.as_str().to_string(),
                improvement_potential: p.improvement_potential,
                failing_resources: p.failing_resources as i64,
            })
            .collect();
        Ok(Response::new(pb::ListPrioritiesResponse { priorities }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_needs_no_id_and_others_do() {
        assert_eq!(scope_of(ScopeKind::Org, "").unwrap().id, crate::score::ORG_ID);
        assert!(scope_of(ScopeKind::Account, "").is_err());
        assert_eq!(scope_of(ScopeKind::Ou, "Prod").unwrap().id, "Root/Prod");
        assert_eq!(kind_from_pb(0).unwrap(), ScopeKind::Org);
        assert_eq!(kind_from_pb(99).unwrap(), ScopeKind::Org);
    }
}
