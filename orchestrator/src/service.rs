//! The orchestrator's operations as plain Rust, for the gRPC API and the CLI alike: who may do
//! what (through [`Principal`]), validation against the playbook catalogue, and the store.
//! Nothing here sees protobuf types.

use time::OffsetDateTime;

use crate::auth::{Denied, Principal, Role};
use crate::binding::{self, Binding, BindingSpec, Violation};
use crate::finding::{Compliance, Workflow};
use crate::jobs::{self, Job, JobError, JobState};
use crate::store::{FindingQuery, JobFilter, Store, StoreError};

/// Bindings per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most bindings one page holds.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request does not validate: every problem, each with its field.
    #[error("the binding is not valid: {}", binding::describe_violations(.0))]
    Invalid(Vec<Violation>),
    /// A malformed request other than a binding's settings (a page token, say).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("a binding named {0} already exists")]
    AlreadyExists(String),
    #[error("there is no binding named {0}")]
    NotFound(String),
    #[error("binding {0} changed while this request ran; retry")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::AlreadyExists { key, .. } => ServiceError::AlreadyExists(key),
            StoreError::NotFound { key, .. } => ServiceError::NotFound(key),
            StoreError::Conflict { key, .. } => ServiceError::Conflict(key),
            other => ServiceError::Store(other),
        }
    }
}

/// A page of bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub bindings: Vec<Binding>,
    /// Where the next page starts; `None` on the last.
    pub next_page_token: Option<String>,
}

/// Remediation bindings: create, read, update, delete, list and validate.
#[derive(Debug, Clone)]
pub struct Bindings {
    store: Store,
}

impl Bindings {
    pub fn new(store: Store) -> Bindings {
        Bindings { store }
    }

    /// The principal the CLI acts as: it holds the database itself, so it is an admin.
    pub fn cli_principal() -> Principal {
        Principal { name: "cli".into(), role: Role::Admin, accounts: vec![], organizational_units: vec![] }
    }

    /// Checks `spec` as `who` would create it: the violations (`extra` first: problems the
    /// caller found translating the request), or, for a valid binding, whether `who` may bind
    /// its scope.
    pub fn validate(
        &self,
        who: &Principal,
        spec: &BindingSpec,
        extra: Vec<Violation>,
    ) -> Result<Vec<Violation>, ServiceError> {
        who.may_write()?;
        let mut violations = extra;
        violations.extend(binding::validate(spec));
        if violations.is_empty() {
            who.may_bind(&spec.scope)?;
        }
        Ok(violations)
    }

    /// Creates a binding.
    pub async fn create(
        &self,
        who: &Principal,
        spec: BindingSpec,
        extra: Vec<Violation>,
    ) -> Result<Binding, ServiceError> {
        let spec = self.checked(who, spec, extra)?;
        Ok(self.store.insert_binding(&spec, &who.name, now()).await?)
    }

    pub async fn get(&self, _who: &Principal, name: &str) -> Result<Binding, ServiceError> {
        self.store.get_binding(name).await?.ok_or_else(|| ServiceError::NotFound(name.to_string()))
    }

    /// Replaces a binding's settings; with `allow_missing`, creates it when there is none. An
    /// app team may change only a binding whose current scope is within its own, too.
    pub async fn update(
        &self,
        who: &Principal,
        spec: BindingSpec,
        extra: Vec<Violation>,
        allow_missing: bool,
    ) -> Result<Binding, ServiceError> {
        let spec = self.checked(who, spec, extra)?;
        match self.store.get_binding(&spec.name).await? {
            Some(old) => {
                who.may_bind(&old.spec.scope)?;
                Ok(self.store.update_binding(&spec, &who.name, now(), Some(old.revision)).await?)
            }
            None if allow_missing => Ok(self.store.insert_binding(&spec, &who.name, now()).await?),
            None => Err(ServiceError::NotFound(spec.name)),
        }
    }

    /// Deletes a binding; with `allow_missing`, a missing one is not an error.
    pub async fn delete(&self, who: &Principal, name: &str, allow_missing: bool) -> Result<(), ServiceError> {
        who.may_write()?;
        match self.store.get_binding(name).await? {
            Some(old) => {
                who.may_bind(&old.spec.scope)?;
                self.store.delete_binding(name, Some(old.revision)).await?;
                Ok(())
            }
            None if allow_missing => Ok(()),
            None => Err(ServiceError::NotFound(name.to_string())),
        }
    }

    /// A page of bindings in name order. `page_size` 0 means [`DEFAULT_PAGE_SIZE`]; the token
    /// is the previous page's `next_page_token`.
    pub async fn list(&self, _who: &Principal, page_size: u32, page_token: Option<&str>) -> Result<Page, ServiceError> {
        let size = if page_size == 0 { DEFAULT_PAGE_SIZE } else { page_size.min(MAX_PAGE_SIZE) };
        if let Some(t) = page_token
            && !binding::valid_name(t)
        {
            return Err(ServiceError::BadRequest(format!(
                "\"{t}\" is not a page token from a previous ListBindings response"
            )));
        }
        // One more than asked, to know whether another page follows.
        let mut bindings = self.store.list_bindings(page_token, size + 1).await?;
        let next_page_token = if bindings.len() > size as usize {
            bindings.truncate(size as usize);
            bindings.last().map(|b| b.spec.name.clone())
        } else {
            None
        };
        Ok(Page { bindings, next_page_token })
    }

    /// Every binding, page by page.
    pub async fn all(&self, who: &Principal) -> Result<Vec<Binding>, ServiceError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self.list(who, MAX_PAGE_SIZE, token.as_deref()).await?;
            out.extend(page.bindings);
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// `spec`, normalized, when it is valid and `who` may bind its scope.
    fn checked(&self, who: &Principal, spec: BindingSpec, extra: Vec<Violation>) -> Result<BindingSpec, ServiceError> {
        let violations = self.validate(who, &spec, extra)?;
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        Ok(spec.normalized())
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Remediation jobs as people see them: listed within the caller's reach, approved or rejected
/// by an admin.
#[derive(Debug, Clone)]
pub struct Remediations {
    store: Store,
}

/// Why a remediation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemediationServiceError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{0}")]
    BadRequest(String),
}

/// Jobs listed when the caller does not say how many.
pub const DEFAULT_JOBS: u32 = 100;
/// The most jobs one listing returns.
pub const MAX_JOBS: u32 = 1000;

impl Remediations {
    pub fn new(store: Store) -> Remediations {
        Remediations { store }
    }

    /// Jobs in `states` (all when empty), newest first, at most `limit` (0: [`DEFAULT_JOBS`]),
    /// of the accounts `who` may read.
    pub async fn list(
        &self,
        who: &Principal,
        states: &[String],
        account: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Job>, RemediationServiceError> {
        let mut parsed = Vec::new();
        for s in states {
            let state = JobState::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                let known: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                RemediationServiceError::BadRequest(format!("unknown state \"{s}\": use one of {}", known.join(", ")))
            })?;
            parsed.push(state);
        }
        let limit = if limit == 0 { DEFAULT_JOBS } else { limit.min(MAX_JOBS) };
        let filter = JobFilter {
            states: parsed,
            account_id: account.map(str::to_string),
            limit: Some(limit),
            ..JobFilter::default()
        };
        let jobs = self.store.list_jobs(&filter).await.map_err(JobError::from)?;
        if who.role != Role::AppTeam {
            return Ok(jobs);
        }
        let ous: std::collections::HashMap<String, Option<String>> = self
            .store
            .accounts()
            .await
            .map_err(JobError::from)?
            .into_iter()
            .map(|a| (a.account_id, a.ou_path))
            .collect();
        Ok(jobs
            .into_iter()
            .filter(|j| who.may_read_account(&j.account_id, ous.get(&j.account_id).and_then(|o| o.as_deref())))
            .collect())
    }

    /// Approves a job waiting for approval; admins only.
    pub async fn approve(&self, who: &Principal, id: &str) -> Result<Job, RemediationServiceError> {
        may_decide(who)?;
        Ok(jobs::approve(&self.store, id, &who.name, now()).await?)
    }

    /// Rejects a job waiting for approval, with a reason; admins only.
    pub async fn reject(&self, who: &Principal, id: &str, reason: &str) -> Result<Job, RemediationServiceError> {
        may_decide(who)?;
        let reason = if reason.trim().is_empty() { "no reason given" } else { reason.trim() };
        Ok(jobs::reject(&self.store, id, &who.name, reason, now()).await?)
    }
}

fn may_decide(who: &Principal) -> Result<(), Denied> {
    who.may_write()?;
    if who.role != Role::Admin {
        return Err(Denied::PermissionDenied(format!(
            "token \"{}\" ({}) may not approve or reject remediations: that takes an admin token",
            who.name, who.role
        )));
    }
    Ok(())
}

/// Adds a status filter to a findings query: `failing`, `passing`, a workflow status (NEW,
/// NOTIFIED, RESOLVED, SUPPRESSED) or a compliance status (PASSED, FAILED, WARNING,
/// NOT_AVAILABLE), in any case. The error says what is accepted.
pub fn add_status_filter(q: &mut FindingQuery, status: &str) -> Result<(), String> {
    match status.to_ascii_lowercase().as_str() {
        "failing" => q.failing = Some(true),
        "passing" => q.failing = Some(false),
        _ => {
            if let Some(w) = Workflow::parse(status) {
                q.workflow.push(w);
            } else if let Some(c) = Compliance::parse(status) {
                q.compliance.push(c);
            } else {
                return Err(format!(
                    "unknown status {status:?}: use failing, passing, a workflow status (NEW, NOTIFIED, RESOLVED, SUPPRESSED) or a compliance status (PASSED, FAILED, WARNING, NOT_AVAILABLE)"
                ));
            }
        }
    }
    Ok(())
}
