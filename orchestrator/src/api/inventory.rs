//! `orgsec.v1.AccountService` and `orgsec.v1.FindingService`: what enrollment and collection
//! stored, as prost types, within the caller's reach (an app-team token reads its own accounts
//! only; see [`crate::auth::Principal::may_read_account`]).

use std::collections::HashMap;

use orgsec_proto::orgsec::v1 as pb;
use tonic::{Request, Response, Status};

use super::Api;
use crate::auth::Principal;
use crate::finding::{Finding, Severity, Source};
use crate::service::add_status_filter;
use crate::store::{AccountRecord, FindingQuery};

/// Findings per page when the caller does not say, and at most.
const DEFAULT_PAGE_SIZE: i32 = 100;
const MAX_PAGE_SIZE: i32 = 1000;

fn timestamp_ms(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

fn account_to_pb(a: &AccountRecord) -> pb::Account {
    pb::Account {
        account_id: a.account_id.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        ou_path: a.ou_path.clone().unwrap_or_default(),
        tags: a.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        state: a.state.as_str().to_string(),
        reason: a.reason.clone().unwrap_or_default(),
        securityhub_status: a.securityhub_status.clone(),
        guardduty_status: a.guardduty_status.clone(),
        updated_at: Some(prost_types::Timestamp {
            seconds: a.updated_at.unix_timestamp(),
            nanos: a.updated_at.nanosecond() as i32,
        }),
    }
}

fn finding_to_pb(f: Finding) -> pb::Finding {
    pb::Finding {
        failing: f.is_failing(),
        uid: f.uid,
        source: f.source.as_str().to_string(),
        product_arn: f.product_arn,
        id: f.id,
        account_id: f.account_id,
        region: f.region,
        resource_type: f.resource_type,
        resource_id: f.resource_id,
        resource_tags: f.resource_tags.into_iter().collect(),
        control_id: f.control_id.unwrap_or_default(),
        finding_type: f.finding_type.unwrap_or_default(),
        title: f.title,
        severity: f.severity.as_str().to_string(),
        workflow_status: f.workflow_status.as_str().to_string(),
        compliance_status: f.compliance_status.map(|c| c.as_str().to_string()).unwrap_or_default(),
        active: f.active,
        created_at: Some(timestamp_ms(f.created_at)),
        updated_at: Some(timestamp_ms(f.updated_at)),
        check_key: f.check_key,
        raw: f.raw,
    }
}

fn store_error(e: crate::store::StoreError) -> Status {
    tracing::error!(error = %e, "store");
    Status::internal(format!("the orchestrator's database failed: {e}"))
}

fn out_of_scope(who: &Principal, account: &str) -> Status {
    Status::permission_denied(format!(
        "token \"{}\" ({}) may not read account {account}: it is outside the token's accounts and OUs",
        who.name, who.role
    ))
}

impl Api {
    /// Every account the store knows, by id.
    async fn accounts_by_id(&self) -> Result<HashMap<String, AccountRecord>, Status> {
        Ok(self.store.accounts().await.map_err(store_error)?.into_iter().map(|a| (a.account_id.clone(), a)).collect())
    }
}

#[tonic::async_trait]
impl pb::account_service_server::AccountService for Api {
    async fn list_accounts(
        &self,
        r: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let mut accounts: Vec<AccountRecord> = self
            .accounts_by_id()
            .await?
            .into_values()
            .filter(|a| who.may_read_account(&a.account_id, a.ou_path.as_deref()))
            .collect();
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        Ok(Response::new(pb::ListAccountsResponse { accounts: accounts.iter().map(account_to_pb).collect() }))
    }

    async fn get_account(&self, r: Request<pb::GetAccountRequest>) -> Result<Response<pb::Account>, Status> {
        let who = self.caller(&r)?.clone();
        let id = r.into_inner().account_id;
        let account = self.store.account(&id).await.map_err(store_error)?;
        let Some(a) = account else {
            return if who.may_read_account(&id, None) {
                Err(Status::not_found(format!("no account {id} has been discovered: run `orgsec enroll`")))
            } else {
                Err(out_of_scope(&who, &id))
            };
        };
        if !who.may_read_account(&a.account_id, a.ou_path.as_deref()) {
            return Err(out_of_scope(&who, &id));
        }
        Ok(Response::new(account_to_pb(&a)))
    }
}

#[tonic::async_trait]
impl pb::finding_service_server::FindingService for Api {
    async fn list_findings(
        &self,
        r: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        let page_size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "page_size {n} is out of range: give 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE}"
                )));
            }
        };
        let mut q = FindingQuery {
            controls: req.control_ids,
            after: (!req.page_token.is_empty()).then_some(req.page_token),
            limit: Some(page_size as u32 + 1),
            with_raw: req.include_raw,
            ..FindingQuery::default()
        };
        for s in &req.sources {
            q.sources.push(Source::parse(s).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "sources: unknown source {s:?}; use securityhub, guardduty, config or access-analyzer"
                ))
            })?);
        }
        for s in &req.severities {
            q.severities.push(Severity::parse(s).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "severities: unknown severity {s:?}; use CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL"
                ))
            })?);
        }
        for s in &req.statuses {
            add_status_filter(&mut q, s).map_err(|e| Status::invalid_argument(format!("statuses: {e}")))?;
        }
        // An app team reads its own accounts: the ones it names must be within its reach, and
        // naming none means all of those.
        if who.role == crate::auth::Role::AppTeam {
            let known = self.accounts_by_id().await?;
            let ou = |id: &str| known.get(id).and_then(|a| a.ou_path.clone());
            if req.account_ids.is_empty() {
                let mut mine: Vec<String> = known
                    .values()
                    .filter(|a| who.may_read_account(&a.account_id, a.ou_path.as_deref()))
                    .map(|a| a.account_id.clone())
                    .collect();
                mine.extend(who.accounts.iter().cloned());
                mine.sort();
                mine.dedup();
                if mine.is_empty() {
                    return Ok(Response::new(pb::ListFindingsResponse::default()));
                }
                q.accounts = mine;
            } else {
                if let Some(bad) = req.account_ids.iter().find(|a| !who.may_read_account(a, ou(a).as_deref())) {
                    return Err(out_of_scope(&who, bad));
                }
                q.accounts = req.account_ids;
            }
        } else {
            q.accounts = req.account_ids;
        }
        let mut found = self.store.findings(&q).await.map_err(store_error)?;
        let next_page_token = if found.len() > page_size as usize {
            found.truncate(page_size as usize);
            found.last().map(|f| f.uid.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListFindingsResponse {
            findings: found.into_iter().map(finding_to_pb).collect(),
            next_page_token,
        }))
    }
}
