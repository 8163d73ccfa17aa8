//! Enrollment: `orgsec enroll --all | --account ID` and the watch `orgsec serve` runs.
//!
//! 1. **Discovery** (admin credentials, Organizations): the organization's accounts with their
//!    name, email and status, their OU path (`Root/Prod/Web`, spelled as the provider's
//!    `orgsec_organization` data source spells it) and their tags. Every account found is
//!    recorded in the store, selected or not: collection and scoring read `ou_path` and tags
//!    (`orgsec:criticality`) from there. Tags take one call an account at Organizations' rate:
//!    `orgsec enroll` reads every account's, the service's [`watch`] those of new accounts and
//!    the [`TAG_REFRESH_PER_WATCH`] read longest ago.
//! 2. **The member role** of each selected account, up to [`CONCURRENCY`] at a time, one
//!    account's failure never stopping the others: it is assumed with the ExternalId
//!    ([`Aws::check_role`]); if that fails, the account is `failed` with the reason, recorded at
//!    once, and nothing is changed in AWS for it.
//! 3. **Memberships**, in every region of [`Aws::regions`], fifty accounts a call: the admin
//!    reads what exists (GetMembers of its Security Hub and of its GuardDuty detector) and
//!    creates only what is missing (CreateMembers), so a second run changes nothing.
//!    CreateMembers is all it takes for an account of the organization when the admin is the
//!    organization's delegated administrator (AWS associates it at once).
//! 4. **Per account** again: where CreateMembers left an account only created or invited (an
//!    account outside the organization, or an admin that is not the delegated administrator),
//!    it is invited, and the invitation is accepted from inside the member through its role
//!    when the role may do so; if not, the account stays `invited` with the reason. The outcome
//!    is written to the store as soon as the account is done, so an interrupted run loses
//!    nothing: the next run completes it, and re-verifies enrolled accounts with reads only
//!    (one AssumeRole each, and two GetMembers per region for every fifty accounts).

//! ## States ([`AccountState`])
//!
//! | state | meaning |
//! |---|---|
//! | `discovered` | known from the organization, not enrolled yet (never selected) |
//! | `enrolled` | role assumable; Security Hub and GuardDuty member in every region |
//! | `invited` | invitations sent; the member has not accepted yet (see the reason) |
//! | `failed` | something must be fixed first; the reason says what |
//! | `admin` | the delegated-admin account orgsec runs in |
//! | `management` | the organization's management account, left out of `--all` |
//! | `suspended` | suspended or closing in the organization: AWS refuses calls into it |
//!
//! **The management account** is recorded but not enrolled by `--all`. orgsec's member role is
//! not meant to exist there: a role in the management account that the security account may
//! assume would give the security account a path to the organization's root of trust, which
//! AWS's multi-account guidance keeps out of reach of every other account. An organization that
//! wants its management account's findings anyway deploys the member role there and names the
//! account explicitly (`orgsec enroll --account <id>`); from then on `--all` re-verifies it like
//! any other enrolled account.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_guardduty::types::AccountDetail;
use aws_sdk_securityhub::types::AccountDetails;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::{self, AccessError, Aws};
use crate::collect::limits::Limits;
use crate::collect::paced;
use crate::store::{AccountRecord, Store, StoreError};

/// Accounts enrolled at the same time: enough to hide latency. The admin account's API rates,
/// which every enrollment spends, are kept by pacing each call (`collect::paced`), not by this.
pub const CONCURRENCY: usize = 8;
/// Accounts whose tags the service's watch reads again each time, oldest read first, besides
/// new accounts: at Organizations' 5/s, 20 s a watch; 1,000 accounts refreshed every ten.
pub const TAG_REFRESH_PER_WATCH: usize = 100;
/// How often `orgsec serve` looks for new accounts, by default.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(600);
/// The name every OU path starts with.
const ROOT: &str = "Root";
/// Stops a malformed or cyclic organization tree from being walked forever.
const MAX_OUS: usize = 10_000;

/// Which accounts to enroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every account of the organization except the admin, the management account and
    /// suspended accounts.
    All,
    /// These accounts, in the organization or not (outside it, through invitations).
    Accounts(Vec<String>),
}

/// Where an account stands. See the module documentation for the meaning of each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Discovered,
    Enrolled,
    Invited,
    Failed,
    Admin,
    Management,
    Suspended,
}

impl AccountState {
    pub const ALL: [AccountState; 7] = [
        AccountState::Discovered,
        AccountState::Enrolled,
        AccountState::Invited,
        AccountState::Failed,
        AccountState::Admin,
        AccountState::Management,
        AccountState::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Discovered => "discovered",
            AccountState::Enrolled => "enrolled",
            AccountState::Invited => "invited",
            AccountState::Failed => "failed",
            AccountState::Admin => "admin",
            AccountState::Management => "management",
            AccountState::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<AccountState> {
        AccountState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account's membership in one region, as the admin sees it: the member status words of
/// Security Hub (`Enabled`, `Created`, `Invited`, ...) and GuardDuty (`Enabled`, `Invited`,
/// ...); `-` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionMembership {
    pub securityhub: String,
    pub guardduty: String,
}

/// Reported after each account is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub account: String,
    pub state: AccountState,
}

/// What a run did, per account it looked at.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollReport {
    pub admin_account: String,
    /// `None` when the admin account is not in an organization.
    pub management_account: Option<String>,
    pub regions: Vec<String>,
    pub accounts: Vec<AccountOutcome>,
}

/// One account's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct AccountOutcome {
    pub account_id: String,
    pub name: String,
    pub ou_path: Option<String>,
    pub state: AccountState,
    pub reason: Option<String>,
    pub securityhub: String,
    pub guardduty: String,
    /// `ok`, `not checked`, or why the role could not be assumed.
    pub role: String,
}

impl EnrollReport {
    /// How many accounts ended in `state`.
    pub fn count(&self, state: AccountState) -> usize {
        self.accounts.iter().filter(|a| a.state == state).count()
    }

    /// One line: "6 accounts: 4 enrolled, 1 admin, 1 management".
    pub fn summary(&self) -> String {
        let parts: Vec<String> = AccountState::ALL
            .into_iter()
            .filter_map(|s| match self.count(s) {
                0 => None,
                n => Some(format!("{n} {s}")),
            })
            .collect();
        let n = self.accounts.len();
        format!(
            "{n} account{}{}{}",
            if n == 1 { "" } else { "s" },
            if parts.is_empty() { "" } else { ": " },
            parts.join(", ")
        )
    }
}

/// Why a run could not be made at all (one account's failure is never one of these: it is
/// recorded with the account).
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Organizations could not be read.
    #[error("cannot read the organization: {detail}; {hint}")]
    Organization { detail: String, hint: String },
    #[error("\"{0}\" is not an AWS account id: write its 12 digits, such as 123456789012")]
    InvalidAccount(String),
    #[error(
        "account {admin} is not in an AWS Organization, so there is nothing for --all to enroll: name the accounts \
         to invite with --account"
    )]
    NoOrganization { admin: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Enrolls the selected accounts (see the module documentation), calling `progress` after
/// each one.
pub async fn run(
    aws: &Aws,
    store: &Store,
    selection: &Selection,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<EnrollReport, EnrollError> {
    let target = match selection {
        Selection::All => Target::All,
        Selection::Accounts(ids) => {
            if let Some(bad) = ids.iter().find(|id| !valid_account_id(id)) {
                return Err(EnrollError::InvalidAccount(bad.clone()));
            }
            Target::Accounts(ids.iter().cloned().collect())
        }
    };
    enroll(aws, store, target, progress).await
}

/// Discovers the organization and enrolls what is new or unfinished: accounts never enrolled
/// (`discovered`, which includes accounts that joined since the last run), `invited` ones (to
/// see whether they accepted, and accept for them when the role may) and `failed` ones (the
/// cause may have been fixed). Enrolled accounts are left to collection, which notices a lost
/// role or membership by itself. What `orgsec serve` calls every [`WATCH_INTERVAL`].
pub async fn watch(
    aws: &Aws,
    store: &Store,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<EnrollReport, EnrollError> {
    enroll(aws, store, Target::Unfinished, progress).await
}

/// Runs [`watch`] every `every` until `shutdown` completes. A failed round is logged and the
/// next one tried: the watch never stops the service.
pub async fn watch_every(aws: &Aws, store: &Store, every: Duration, shutdown: impl Future<Output = ()>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => match watch(aws, store, &|_| {}).await {
                Ok(report) if !report.accounts.is_empty() => tracing::info!(summary = %report.summary(), "enrollment watch"),
                Ok(_) => tracing::debug!("enrollment watch: nothing new"),
                Err(e) => tracing::warn!(error = %e, "enrollment watch failed; trying again at the next round"),
            },
        }
    }
}

/// The accounts as a table.
pub fn render_table(report: &EnrollReport) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header([
        "ACCOUNT",
        "NAME",
        "OU",
        "STATE",
        "SECURITY HUB",
        "GUARDDUTY",
        "ROLE",
        "REASON",
    ]);
    // Not a terminal (a pipe, a file): wrap as if it were a wide one.
    if t.width().is_none() {
        t.set_width(140);
    }
    for a in &report.accounts {
        let role = match a.role.as_str() {
            "ok" => "ok",
            "not checked" => "-",
            _ => "refused",
        };
        t.add_row(vec![
            a.account_id.clone(),
            dash(&a.name),
            a.ou_path.clone().unwrap_or_else(|| "(outside the organization)".into()),
            a.state.to_string(),
            dash(&a.securityhub),
            dash(&a.guardduty),
            role.to_string(),
            a.reason.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.to_string()
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_string() }
}

fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// The run

/// Which accounts a run works on.
enum Target {
    All,
    Accounts(BTreeSet<String>),
    /// `discovered`, `invited` and `failed` accounts: what [`watch`] finishes.
    Unfinished,
}

async fn enroll(
    aws: &Aws,
    store: &Store,
    target: Target,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<EnrollReport, EnrollError> {
    let admin = aws.caller_account().await?;
    let regions = aws.regions();
    // Every call paced by the published rates: the admin's calls (ListTagsForResource,
    // GetMembers, CreateMembers, ...) share the admin's buckets, whatever the number of accounts
    // enrolled at once; a member's calls spend its own.
    let limits = Arc::new(Limits::default());
    let tags = match target {
        // The service's watch: new accounts' tags, and a few of the oldest others.
        Target::Unfinished => TagReads::Stale { read_at: store.tags_read_at().await?, refresh: TAG_REFRESH_PER_WATCH },
        Target::All | Target::Accounts(_) => TagReads::All,
    };
    let org = discover(aws, &limits, &admin, &tags).await?;
    if let Some(org) = &org {
        let read: Vec<String> = org.accounts.iter().filter(|a| a.tags.is_some()).map(|a| a.id.clone()).collect();
        store.record_tags_read(&read, OffsetDateTime::now_utc()).await?;
    }
    if org.is_none() && matches!(target, Target::All) {
        return Err(EnrollError::NoOrganization { admin });
    }
    let now = OffsetDateTime::now_utc();
    let mut records = record_discovery(store, org.as_ref(), &admin, now).await?;

    // Who is enrolled now, and who is only reported.
    let mut work = Vec::new();
    let mut reported = Vec::new();
    let selected: Vec<String> = match &target {
        Target::All => records
            .values()
            .filter(|r| r.ou_path.is_some() && !matches!(r.state, AccountState::Management))
            .map(|r| r.account_id.clone())
            .collect(),
        Target::Accounts(ids) => ids.iter().cloned().collect(),
        Target::Unfinished => records
            .values()
            .filter(|r| matches!(r.state, AccountState::Discovered | AccountState::Invited | AccountState::Failed))
            .map(|r| r.account_id.clone())
            .collect(),
    };
    for id in selected {
        let record = match records.remove(&id) {
            Some(r) => r,
            None => {
                // Named with --account and not in the organization: the invitation path.
                let r = AccountRecord::new(&id, AccountState::Discovered, now);
                store.upsert_account(&r).await?;
                r
            }
        };
        match record.state {
            AccountState::Admin | AccountState::Suspended => reported.push(record),
            _ => work.push(record),
        }
    }
    if matches!(target, Target::All) {
        reported.extend(records.into_values().filter(|r| r.state == AccountState::Management));
    }

    let detectors = admin_detectors(aws, &limits, &admin, &regions).await;
    let ctx = Arc::new(Ctx {
        limits,
        aws: aws.clone(),
        store: store.clone(),
        admin: admin.clone(),
        regions: regions.clone(),
        detectors,
    });
    let total = work.len();
    let mut done = Vec::new();
    let mut finished = |record: AccountRecord| {
        progress(&Progress { done: done.len() + 1, total, account: record.account_id.clone(), state: record.state });
        done.push(record);
    };
    // 1. The member role, account by account: an account that refuses it is not made a member.
    let mut ready = Vec::new();
    for record in each(&ctx, work, now, |ctx, r| async move { ctx.check_role(r).await }).await? {
        if record.role_ok == Some(true) {
            ready.push(record);
        } else {
            finished(record);
        }
    }
    // 2. Memberships, read and created fifty accounts a call through the admin's APIs.
    let known = Arc::new(ctx.memberships(&ready).await);
    // 3. Each account's invitations, if it needs any, and its record.
    let step = move |ctx: Arc<Ctx>, r: AccountRecord| {
        let known = known.clone();
        async move { ctx.finish(r, &known).await }
    };
    for record in each(&ctx, ready, now, step).await? {
        finished(record);
    }

    let mut accounts: Vec<AccountOutcome> = done.iter().chain(&reported).map(outcome).collect();
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(EnrollReport { admin_account: admin, management_account: org.map(|o| o.management), regions, accounts })
}

/// Runs `step` for every record, `CONCURRENCY` at a time; the records as the steps left them.
/// A step that panicked (a bug) leaves its account recorded as failed, and the run goes on.
async fn each<F, Fut>(
    ctx: &Arc<Ctx>,
    records: Vec<AccountRecord>,
    now: OffsetDateTime,
    step: F,
) -> Result<Vec<AccountRecord>, StoreError>
where
    F: Fn(Arc<Ctx>, AccountRecord) -> Fut,
    Fut: Future<Output = Result<AccountRecord, StoreError>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for record in records {
        let id = record.account_id.clone();
        let work = step(ctx.clone(), record);
        let permits = permits.clone();
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            work.await
        });
        names.insert(handle.id(), id);
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        out.push(match joined {
            Ok((_, outcome)) => outcome?,
            Err(e) => {
                let id = names.get(&e.id()).cloned().unwrap_or_default();
                let mut r =
                    ctx.store.account(&id).await?.unwrap_or_else(|| AccountRecord::new(&id, AccountState::Failed, now));
                r.state = AccountState::Failed;
                r.reason = Some(format!("enrollment stopped unexpectedly ({e}); run it again"));
                r.updated_at = OffsetDateTime::now_utc();
                ctx.store.upsert_account(&r).await?;
                r
            }
        });
    }
    Ok(out)
}

fn outcome(r: &AccountRecord) -> AccountOutcome {
    let role = match r.role_ok {
        Some(true) => "ok".to_string(),
        Some(false) => r.reason.clone().unwrap_or_else(|| "refused".into()),
        None => "not checked".to_string(),
    };
    AccountOutcome {
        account_id: r.account_id.clone(),
        name: r.name.clone(),
        ou_path: r.ou_path.clone(),
        state: r.state,
        reason: r.reason.clone(),
        securityhub: r.securityhub_status.clone(),
        guardduty: r.guardduty_status.clone(),
        role,
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery

/// The organization as the admin account reads it.
struct Org {
    management: String,
    accounts: Vec<OrgAccount>,
}

struct OrgAccount {
    id: String,
    name: String,
    email: String,
    status: String,
    ou_path: String,
    /// `None` when the tags could not be read (the stored ones are kept).
    tags: Option<BTreeMap<String, String>>,
}

/// Whose tags discovery reads (one ListTagsForResource an account, at Organizations' rate).
enum TagReads {
    /// Every account's.
    All,
    /// Those never read, and the `refresh` read longest ago of the others (`read_at`: Unix
    /// milliseconds by account).
    Stale { read_at: HashMap<String, i64>, refresh: usize },
}

impl TagReads {
    /// The indexes of `accounts` to read.
    fn pick(&self, accounts: &[OrgAccount]) -> Vec<usize> {
        match self {
            TagReads::All => (0..accounts.len()).collect(),
            TagReads::Stale { read_at, refresh } => {
                let (mut known, new): (Vec<usize>, Vec<usize>) =
                    (0..accounts.len()).partition(|&i| read_at.contains_key(&accounts[i].id));
                known.sort_by_key(|&i| (read_at[&accounts[i].id], i));
                new.into_iter().chain(known.into_iter().take(*refresh)).collect()
            }
        }
    }
}

/// Reads the organization; `None` when the admin account is not in one.
async fn discover(aws: &Aws, limits: &Arc<Limits>, admin: &str, tags: &TagReads) -> Result<Option<Org>, EnrollError> {
    let region = aws.regions().into_iter().next().unwrap_or_else(|| aws::DEFAULT_REGION.to_string());
    let org = aws.admin(&region).organizations();
    let described = match org.describe_organization().send().await {
        Ok(d) => d,
        Err(e) if aws::error_code(&e) == Some("AWSOrganizationsNotInUseException") => return Ok(None),
        Err(e) => return Err(org_error("describing the organization", &e, admin)),
    };
    let management = described.organization().and_then(|o| o.master_account_id()).unwrap_or_default().to_string();
    let roots = paced(limits, admin, &region, "organizations:ListRoots", || org.list_roots().send())
        .await
        .map_err(|e| org_error("listing the roots", &e, admin))?;
    let mut queue: VecDeque<(String, String)> =
        roots.roots().iter().filter_map(|r| r.id()).map(|id| (id.to_string(), ROOT.to_string())).collect();
    let mut accounts = Vec::new();
    let mut ous = 0usize;
    while let Some((parent, path)) = queue.pop_front() {
        let mut token = None;
        loop {
            let list = || org.list_accounts_for_parent().parent_id(&parent).set_next_token(token.clone()).send();
            let page = paced(limits, admin, &region, "organizations:ListAccountsForParent", list)
                .await
                .map_err(|e| org_error(&format!("listing the accounts of {path}"), &e, admin))?;
            for a in page.accounts() {
                let status = a.state().map(|s| s.as_str()).or(a.status().map(|s| s.as_str())).unwrap_or_default();
                accounts.push(OrgAccount {
                    id: a.id().unwrap_or_default().to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    email: a.email().unwrap_or_default().to_string(),
                    status: status.to_string(),
                    ou_path: path.clone(),
                    tags: None,
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut token = None;
        loop {
            let list =
                || org.list_organizational_units_for_parent().parent_id(&parent).set_next_token(token.clone()).send();
            let page = paced(limits, admin, &region, "organizations:ListOrganizationalUnitsForParent", list)
                .await
                .map_err(|e| org_error(&format!("listing the OUs of {path}"), &e, admin))?;
            for ou in page.organizational_units() {
                queue.push_back((
                    ou.id().unwrap_or_default().to_string(),
                    format!("{path}/{}", ou.name().unwrap_or_default()),
                ));
                ous += 1;
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if ous > MAX_OUS {
            return Err(EnrollError::Organization {
                detail: format!("more than {MAX_OUS} OUs"),
                hint: "is the OU tree cyclic? report it".into(),
            });
        }
    }
    accounts.retain(|a| !a.id.is_empty());
    let wanted = tags.pick(&accounts);
    read_tags(&org, limits, admin, &region, &mut accounts, &wanted).await;
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Some(Org { management, accounts }))
}

/// Fills in the tags of the `wanted` accounts, [`CONCURRENCY`] accounts at a time (the
/// others keep `None`: their stored tags stay). An account whose tags
/// cannot be read keeps the ones stored (with a warning): tags feed scoring, and stale tags
/// are better than none, or than no enrollment at all.
async fn read_tags(
    org: &aws_sdk_organizations::Client,
    limits: &Arc<Limits>,
    admin: &str,
    region: &str,
    accounts: &mut [OrgAccount],
    wanted: &[usize],
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for &i in wanted {
        let Some(a) = accounts.get(i) else { continue };
        let (org, permits, id) = (org.clone(), permits.clone(), a.id.clone());
        let (limits, admin, region) = (limits.clone(), admin.to_string(), region.to_string());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut tags = BTreeMap::new();
            let mut token = None;
            loop {
                let list = || org.list_tags_for_resource().resource_id(&id).set_next_token(token.clone()).send();
                match paced(&limits, &admin, &region, "organizations:ListTagsForResource", list).await {
                    Ok(page) => {
                        tags.extend(page.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())));
                        token = page.next_token().map(str::to_string);
                        if token.is_none() {
                            return (i, Some(tags));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(account = %id, error = %aws::describe(&e), "cannot read the account's tags; keeping the stored ones");
                        return (i, None);
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, tags)) = joined
            && let Some(a) = accounts.get_mut(i)
        {
            a.tags = tags;
        }
    }
}

fn org_error<E, R>(doing: &str, e: &aws_smithy_runtime_api::client::result::SdkError<E, R>, admin: &str) -> EnrollError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let hint = if aws::is_access_denied(aws::error_code(e)) {
        format!(
            "orgsec reads the organization from the delegated-admin account; make {admin} a delegated administrator \
             (for Security Hub, from the management account) or allow it organizations:Describe* and organizations:List*"
        )
    } else {
        "check the network, AWS_REGION and AWS_ENDPOINT_URL, then retry".to_string()
    };
    EnrollError::Organization { detail: format!("{doing}: {}", aws::describe(e)), hint }
}

/// Merges what discovery found into the stored records and writes those that changed.
/// Returns every known account's record.
async fn record_discovery(
    store: &Store,
    org: Option<&Org>,
    admin: &str,
    now: OffsetDateTime,
) -> Result<BTreeMap<String, AccountRecord>, StoreError> {
    let stored: BTreeMap<String, AccountRecord> =
        store.accounts().await?.into_iter().map(|r| (r.account_id.clone(), r)).collect();
    let mut out = BTreeMap::new();
    let mut in_org = BTreeSet::new();
    for a in org.map(|o| o.accounts.as_slice()).unwrap_or_default() {
        in_org.insert(a.id.clone());
        let before = stored.get(&a.id);
        let mut r = before.cloned().unwrap_or_else(|| AccountRecord::new(&a.id, AccountState::Discovered, now));
        r.name = a.name.clone();
        r.email = a.email.clone();
        r.ou_path = Some(a.ou_path.clone());
        r.org_status = Some(a.status.clone());
        if let Some(tags) = &a.tags {
            r.tags = tags.clone();
        }
        let management = org.is_some_and(|o| o.management == a.id);
        let (state, reason) = classify(&r, admin, management, &a.status);
        r.state = state;
        r.reason = reason;
        if before.is_none_or(|b| *b != r) {
            r.updated_at = now;
            store.upsert_account(&r).await?;
        }
        out.insert(r.account_id.clone(), r);
    }
    // Accounts known from before that are not in the organization (any more).
    for (id, mut r) in stored {
        if in_org.contains(&id) {
            continue;
        }
        if r.ou_path.is_some() || r.org_status.is_some() {
            r.ou_path = None;
            r.org_status = None;
            r.updated_at = now;
            store.upsert_account(&r).await?;
        }
        out.insert(id, r);
    }
    Ok(out)
}

/// An account's state after discovery, from what it was and what the organization says now.
fn classify(r: &AccountRecord, admin: &str, management: bool, status: &str) -> (AccountState, Option<String>) {
    if r.account_id == admin {
        return (AccountState::Admin, None);
    }
    if matches!(status, "SUSPENDED" | "PENDING_CLOSURE" | "CLOSED") {
        return (
            AccountState::Suspended,
            Some(format!("the account is {status} in the organization; AWS refuses calls into it")),
        );
    }
    match r.state {
        // Back from suspension, or no longer the admin: start over.
        AccountState::Suspended | AccountState::Admin => (AccountState::Discovered, None),
        AccountState::Discovered if management => (
            AccountState::Management,
            Some(
                "the management account is not enrolled by --all; deploy the member role there and enroll it with \
                 --account to include it"
                    .into(),
            ),
        ),
        state => (state, r.reason.clone()),
    }
}

/// The admin's GuardDuty detector per region, or why there is none.
async fn admin_detectors(
    aws: &Aws,
    limits: &Limits,
    admin: &str,
    regions: &[String],
) -> BTreeMap<String, Result<String, String>> {
    let mut out = BTreeMap::new();
    for region in regions {
        let gd = aws.admin(region).guardduty();
        let found = match paced(limits, admin, region, "guardduty:ListDetectors", || gd.list_detectors().send()).await {
            Ok(o) => o.detector_ids().first().cloned().ok_or_else(|| {
                format!(
                    "GuardDuty is not enabled in the admin account ({region}): create its detector first \
                     (orgsec_guardduty_detector)"
                )
            }),
            Err(e) => {
                Err(format!("cannot list the admin account's GuardDuty detectors ({region}): {}", aws::describe(&e)))
            }
        };
        out.insert(region.clone(), found);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// One account

/// What every account's enrollment shares.
struct Ctx {
    /// The rate limits every call waits for (see [`paced`]).
    limits: Arc<Limits>,
    aws: Aws,
    store: Store,
    admin: String,
    regions: Vec<String>,
    detectors: BTreeMap<String, Result<String, String>>,
}

/// How one service's membership ended in one region.
enum Step {
    /// A member (`Enabled`).
    Member(String),
    /// Invited, not accepted yet: the status and why.
    Pending(String, String),
    /// Needs fixing: the status (or `-`) and why.
    Failed(String, String),
}

impl Step {
    fn status(&self) -> &str {
        match self {
            Step::Member(s) | Step::Pending(s, _) | Step::Failed(s, _) => s,
        }
    }
}

/// The most accounts Security Hub's and GuardDuty's GetMembers and CreateMembers take a call.
const MEMBERS_PER_CALL: usize = 50;

/// Which administrator API a membership is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Service {
    SecurityHub,
    GuardDuty,
}

/// An account's membership in one service and region after the batched reads and creates.
#[derive(Debug, Clone)]
enum Membership {
    /// Its status in the admin's list (`None`: not a member).
    Status(Option<String>),
    /// CreateMembers refused it: its status before, and why.
    Refused(Option<String>, String),
    /// The admin could not read or create it: why.
    Failed(String),
}

/// Memberships by (service, region, account).
type Known = HashMap<(Service, String, String), Membership>;

/// One chunk's memberships in one service and region, as the batched calls leave them.
#[derive(Debug, Default)]
struct Batch {
    /// Member statuses read, by account.
    statuses: HashMap<String, String>,
    /// Accounts CreateMembers refused, with why.
    refused: HashMap<String, String>,
    /// Accounts whose calls failed, with why.
    failed: HashMap<String, String>,
}

impl Batch {
    /// The accounts of `missing` that CreateMembers took, to read again.
    fn created(&self, missing: &[&AccountRecord]) -> Vec<String> {
        missing
            .iter()
            .map(|r| r.account_id.clone())
            .filter(|id| !self.refused.contains_key(id) && !self.failed.contains_key(id))
            .collect()
    }

    /// Every account of `ids` into `known`.
    fn record(mut self, service: Service, region: &str, ids: &[String], known: &mut Known) {
        for id in ids {
            let membership = if let Some(why) = self.failed.remove(id) {
                Membership::Failed(why)
            } else if let Some(why) = self.refused.remove(id) {
                Membership::Refused(self.statuses.get(id).cloned(), why)
            } else {
                Membership::Status(self.statuses.get(id).cloned())
            };
            known.insert((service, region.to_string(), id.clone()), membership);
        }
    }
}

/// Security Hub member statuses that mean "associated with the administrator".
fn hub_member(status: &str) -> bool {
    matches!(status, "Enabled" | "Associated")
}

impl Ctx {
    /// Checks that the member role can be assumed; an account that refuses it is recorded as
    /// failed, with why.
    async fn check_role(&self, mut r: AccountRecord) -> Result<AccountRecord, StoreError> {
        let id = r.account_id.clone();
        let now = OffsetDateTime::now_utc();
        r.checked_at = Some(now);
        r.updated_at = now;
        if let Err(e) = self.aws.check_role(&id).await {
            tracing::warn!(account = %id, error = %e, "member role refused");
            r.role_ok = Some(false);
            r.state = AccountState::Failed;
            r.reason = Some(e.to_string());
            self.store.upsert_account(&r).await?;
            return Ok(r);
        }
        r.role_ok = Some(true);
        Ok(r)
    }

    /// Every account's membership of the admin's hub and detector in every region, read, and
    /// created where missing, `MEMBERS_PER_CALL` accounts a call.
    async fn memberships(&self, accounts: &[AccountRecord]) -> Known {
        let mut known = Known::new();
        for region in &self.regions {
            for chunk in accounts.chunks(MEMBERS_PER_CALL) {
                self.hub_memberships(region, chunk, &mut known).await;
                self.detector_memberships(region, chunk, &mut known).await;
            }
        }
        known
    }

    /// Makes a member (enabled, or invited) of one account whose role was checked, in every
    /// region, and writes its record.
    async fn finish(&self, mut r: AccountRecord, known: &Known) -> Result<AccountRecord, StoreError> {
        let id = r.account_id.clone();
        let now = OffsetDateTime::now_utc();
        let mut regions = BTreeMap::new();
        let (mut failed, mut pending) = (Vec::new(), Vec::new());
        for region in &self.regions {
            let sh = self.securityhub(&r, region, known).await;
            let gd = self.guardduty(&r, region, known).await;
            for (service, step) in [("Security Hub", &sh), ("GuardDuty", &gd)] {
                match step {
                    Step::Member(_) => {}
                    Step::Pending(_, why) => pending.push(format!("{service} ({region}): {why}")),
                    Step::Failed(_, why) => failed.push(format!("{service} ({region}): {why}")),
                }
            }
            regions.insert(
                region.clone(),
                RegionMembership { securityhub: sh.status().to_string(), guardduty: gd.status().to_string() },
            );
        }
        r.securityhub_status = summarize(&regions, |m| &m.securityhub);
        r.guardduty_status = summarize(&regions, |m| &m.guardduty);
        r.regions = regions;
        (r.state, r.reason) = if !failed.is_empty() {
            (AccountState::Failed, Some(failed.into_iter().chain(pending).collect::<Vec<_>>().join("; ")))
        } else if !pending.is_empty() {
            (AccountState::Invited, Some(pending.join("; ")))
        } else {
            r.enrolled_at.get_or_insert(now);
            (AccountState::Enrolled, None)
        };
        r.updated_at = now;
        tracing::info!(account = %id, state = %r.state, "enrollment");
        self.store.upsert_account(&r).await?;
        Ok(r)
    }

    /// The membership of `id` that [`Ctx::memberships`] found, as the status to go on from.
    fn known_status(known: &Known, service: Service, region: &str, id: &str) -> Result<Option<String>, Step> {
        match known.get(&(service, region.to_string(), id.to_string())) {
            Some(Membership::Status(s)) => Ok(s.clone()),
            Some(Membership::Refused(status, why)) => {
                Err(Step::Failed(dash(status.as_deref().unwrap_or("")), format!("CreateMembers refused it: {why}")))
            }
            Some(Membership::Failed(why)) => Err(Step::Failed("-".into(), why.clone())),
            None => Err(Step::Failed("-".into(), format!("its membership in {region} was not read"))),
        }
    }

    /// Reads the hub memberships of `chunk` in `region` and creates the missing ones.
    async fn hub_memberships(&self, region: &str, chunk: &[AccountRecord], known: &mut Known) {
        let sh = self.aws.admin(region).securityhub();
        let ids: Vec<String> = chunk.iter().map(|r| r.account_id.clone()).collect();
        let statuses = match self.hub_statuses(&sh, &ids, region).await {
            Ok(s) => s,
            Err(why) => {
                for id in ids {
                    known.insert((Service::SecurityHub, region.to_string(), id), Membership::Failed(why.clone()));
                }
                return;
            }
        };
        let missing: Vec<&AccountRecord> = chunk
            .iter()
            .filter(|r| !statuses.get(&r.account_id).is_some_and(|s| hub_member(s) || s == "Created" || s == "Invited"))
            .collect();
        let mut batch = Batch { statuses, ..Batch::default() };
        if !missing.is_empty() {
            let details: Vec<AccountDetails> = missing
                .iter()
                .map(|r| AccountDetails::builder().account_id(&r.account_id).set_email(nonempty(&r.email)).build())
                .collect();
            let create = || sh.create_members().set_account_details(Some(details.clone())).send();
            match paced(&self.limits, &self.admin, region, "securityhub:CreateMembers", create).await {
                Ok(out) => {
                    for u in out.unprocessed_accounts() {
                        if let Some(id) = u.account_id() {
                            let why = u.processing_result().unwrap_or("no reason given").to_string();
                            batch.refused.insert(id.to_string(), why);
                        }
                    }
                }
                Err(e) => {
                    let why = self.admin_call_failed("securityhub:CreateMembers", region, &e);
                    batch.failed.extend(missing.iter().map(|r| (r.account_id.clone(), why.clone())));
                }
            }
            let created = batch.created(&missing);
            if !created.is_empty() {
                match self.hub_statuses(&sh, &created, region).await {
                    Ok(s) => batch.statuses.extend(s),
                    Err(why) => batch.failed.extend(created.into_iter().map(|id| (id, why.clone()))),
                }
            }
        }
        batch.record(Service::SecurityHub, region, &ids, known);
    }

    /// Makes `r` a member of the admin's Security Hub in `region`: invites and accepts where
    /// the batched create left it only created or invited.
    async fn securityhub(&self, r: &AccountRecord, region: &str, known: &Known) -> Step {
        let id = &r.account_id;
        let sh = self.aws.admin(region).securityhub();
        let status = match Self::known_status(known, Service::SecurityHub, region, id) {
            Ok(s) => s,
            Err(step) => return step,
        };
        match status.as_deref() {
            Some(s) if hub_member(s) => Step::Member(s.to_string()),
            Some("Created") => {
                let invite = || sh.invite_members().account_ids(id).send();
                if let Err(e) = paced(&self.limits, &self.admin, region, "securityhub:InviteMembers", invite).await {
                    return Step::Failed(
                        "Created".into(),
                        self.admin_call_failed("securityhub:InviteMembers", region, &e),
                    );
                }
                self.accept_hub_invitation(&sh, id, region).await
            }
            Some("Invited") => self.accept_hub_invitation(&sh, id, region).await,
            Some(other) => {
                Step::Failed(other.to_string(), format!("the admin's hub lists it as {other} after CreateMembers"))
            }
            None => Step::Failed("-".into(), "CreateMembers did not make it a member".into()),
        }
    }

    /// The member status of `id` in the admin's hub; `None` when it is not a member at all.
    async fn hub_status(
        &self,
        sh: &aws_sdk_securityhub::Client,
        id: &str,
        region: &str,
    ) -> Result<Option<String>, String> {
        Ok(self.hub_statuses(sh, &[id.to_string()], region).await?.remove(id))
    }

    /// The member statuses of `ids` (at most `MEMBERS_PER_CALL`) in the admin's hub; those
    /// that are not members are absent.
    async fn hub_statuses(
        &self,
        sh: &aws_sdk_securityhub::Client,
        ids: &[String],
        region: &str,
    ) -> Result<HashMap<String, String>, String> {
        let get = || sh.get_members().set_account_ids(Some(ids.to_vec())).send();
        let out = paced(&self.limits, &self.admin, region, "securityhub:GetMembers", get).await.map_err(|e| {
            if aws::error_code(&e) == Some("InvalidAccessException") {
                format!(
                    "Security Hub is not enabled in the admin account {} ({region}): enable it there first \
                     (orgsec_securityhub_account)",
                    self.admin
                )
            } else {
                self.admin_call_failed("securityhub:GetMembers", region, &e)
            }
        })?;
        Ok(out
            .members()
            .iter()
            .filter_map(|m| Some((m.account_id()?.to_string(), m.member_status()?.to_string())))
            .collect())
    }

    /// Accepts the admin's Security Hub invitation from inside the member, through its role.
    async fn accept_hub_invitation(&self, admin_sh: &aws_sdk_securityhub::Client, id: &str, region: &str) -> Step {
        let invited = |why: String| Step::Pending("Invited".into(), format!("invited; not accepted yet: {why}"));
        let member = match self.aws.member(id, region).await {
            Ok(c) => c,
            Err(e) => return invited(e.to_string()),
        };
        let mut token = None;
        let invitation = loop {
            let list = || member.securityhub().list_invitations().set_next_token(token.clone()).send();
            let page = match paced(&self.limits, id, region, "securityhub:ListInvitations", list).await {
                Ok(p) => p,
                Err(e) if aws::error_code(&e) == Some("InvalidAccessException") => {
                    return invited(format!(
                        "Security Hub is not enabled in {id}; enable it there (orgsec_securityhub_account) and run \
                         enroll again, or accept the invitation from {} in {id}",
                        self.admin
                    ));
                }
                Err(e) => return invited(self.member_call_failed(id, "securityhub:ListInvitations", region, &e)),
            };
            let found = page
                .invitations()
                .iter()
                .find(|i| i.account_id() == Some(self.admin.as_str()))
                .and_then(|i| i.invitation_id())
                .map(str::to_string);
            token = page.next_token().map(str::to_string);
            if found.is_some() || token.is_none() {
                break found;
            }
        };
        let Some(invitation) = invitation else {
            return invited(format!("no invitation from {} is waiting in {id}", self.admin));
        };
        let accept = || {
            member
                .securityhub()
                .accept_administrator_invitation()
                .administrator_id(&self.admin)
                .invitation_id(&invitation)
                .send()
        };
        if let Err(e) = paced(&self.limits, id, region, "securityhub:AcceptAdministratorInvitation", accept).await {
            return invited(self.member_call_failed(id, "securityhub:AcceptAdministratorInvitation", region, &e));
        }
        match self.hub_status(admin_sh, id, region).await {
            Ok(Some(s)) if hub_member(&s) => Step::Member(s),
            Ok(s) => invited(format!("accepted, yet the admin's hub lists it as {}", s.as_deref().unwrap_or("absent"))),
            Err(why) => Step::Failed("Invited".into(), why),
        }
    }

    /// Reads the detector memberships of `chunk` in `region` and creates the missing ones.
    async fn detector_memberships(&self, region: &str, chunk: &[AccountRecord], known: &mut Known) {
        let ids: Vec<String> = chunk.iter().map(|r| r.account_id.clone()).collect();
        let fail_all = |why: &str, known: &mut Known| {
            for id in &ids {
                known.insert((Service::GuardDuty, region.to_string(), id.clone()), Membership::Failed(why.to_string()));
            }
        };
        let detector = match self.detectors.get(region) {
            Some(Ok(d)) => d.clone(),
            Some(Err(why)) => return fail_all(why, known),
            None => return fail_all(&format!("no detector lookup for {region}"), known),
        };
        let gd = self.aws.admin(region).guardduty();
        let statuses = match self.detector_statuses(&gd, &detector, &ids, region).await {
            Ok(s) => s,
            Err(why) => return fail_all(&why, known),
        };
        let keep =
            |s: &str| matches!(s, "Enabled" | "Created" | "Invited" | "EmailVerificationInProgress" | "Disabled");
        let missing: Vec<&AccountRecord> =
            chunk.iter().filter(|r| !statuses.get(&r.account_id).is_some_and(|s| keep(s))).collect();
        let mut batch = Batch { statuses, ..Batch::default() };
        if !missing.is_empty() {
            let details: Vec<AccountDetail> = missing
                .iter()
                .map(|r| AccountDetail::builder().account_id(&r.account_id).set_email(nonempty(&r.email)).build())
                .collect();
            let create =
                || gd.create_members().detector_id(&detector).set_account_details(Some(details.clone())).send();
            match paced(&self.limits, &self.admin, region, "guardduty:CreateMembers", create).await {
                Ok(out) => {
                    for u in out.unprocessed_accounts() {
                        if let Some(id) = u.account_id() {
                            batch.refused.insert(id.to_string(), u.result().unwrap_or("no reason given").to_string());
                        }
                    }
                }
                Err(e) => {
                    let why = self.admin_call_failed("guardduty:CreateMembers", region, &e);
                    batch.failed.extend(missing.iter().map(|r| (r.account_id.clone(), why.clone())));
                }
            }
            let created = batch.created(&missing);
            if !created.is_empty() {
                match self.detector_statuses(&gd, &detector, &created, region).await {
                    Ok(s) => batch.statuses.extend(s),
                    Err(why) => batch.failed.extend(created.into_iter().map(|id| (id, why.clone()))),
                }
            }
        }
        batch.record(Service::GuardDuty, region, &ids, known);
    }

    /// Makes `r` a member of the admin's GuardDuty detector in `region`: invites and accepts
    /// where the batched create left it only created or invited.
    async fn guardduty(&self, r: &AccountRecord, region: &str, known: &Known) -> Step {
        let id = &r.account_id;
        let status = match Self::known_status(known, Service::GuardDuty, region, id) {
            Ok(s) => s,
            Err(step) => return step,
        };
        // Known statuses imply the region's detector was found.
        let Some(Ok(detector)) = self.detectors.get(region) else {
            return Step::Failed("-".into(), format!("no detector lookup for {region}"));
        };
        let gd = self.aws.admin(region).guardduty();
        match status.as_deref() {
            Some("Enabled") => Step::Member("Enabled".into()),
            Some("Created") => {
                let invite = || gd.invite_members().detector_id(detector).account_ids(id).send();
                if let Err(e) = paced(&self.limits, &self.admin, region, "guardduty:InviteMembers", invite).await {
                    return Step::Failed(
                        "Created".into(),
                        self.admin_call_failed("guardduty:InviteMembers", region, &e),
                    );
                }
                self.accept_detector_invitation(&gd, detector, id, region).await
            }
            Some("Invited") => self.accept_detector_invitation(&gd, detector, id, region).await,
            Some("EmailVerificationInProgress") => Step::Pending(
                "EmailVerificationInProgress".into(),
                "GuardDuty is verifying the member's email address; run enroll again later".into(),
            ),
            Some("Disabled") => Step::Failed(
                "Disabled".into(),
                format!("GuardDuty is suspended in {id}; enable its detector (orgsec_guardduty_detector)"),
            ),
            Some(other) => {
                Step::Failed(other.to_string(), format!("the admin's detector lists it as {other} after CreateMembers"))
            }
            None => Step::Failed("-".into(), "CreateMembers did not make it a member".into()),
        }
    }

    /// The relationship status of `id` with the admin's detector; `None` when not a member.
    async fn detector_status(
        &self,
        gd: &aws_sdk_guardduty::Client,
        detector: &str,
        id: &str,
        region: &str,
    ) -> Result<Option<String>, String> {
        Ok(self.detector_statuses(gd, detector, &[id.to_string()], region).await?.remove(id))
    }

    /// The relationship statuses of `ids` (at most `MEMBERS_PER_CALL`) with the admin's
    /// detector; those that are not members are absent.
    async fn detector_statuses(
        &self,
        gd: &aws_sdk_guardduty::Client,
        detector: &str,
        ids: &[String],
        region: &str,
    ) -> Result<HashMap<String, String>, String> {
        let get = || gd.get_members().detector_id(detector).set_account_ids(Some(ids.to_vec())).send();
        let out = paced(&self.limits, &self.admin, region, "guardduty:GetMembers", get)
            .await
            .map_err(|e| self.admin_call_failed("guardduty:GetMembers", region, &e))?;
        Ok(out
            .members()
            .iter()
            .filter_map(|m| Some((m.account_id()?.to_string(), m.relationship_status()?.to_string())))
            .collect())
    }

    /// Accepts the admin's GuardDuty invitation from inside the member, through its role.
    async fn accept_detector_invitation(
        &self,
        admin_gd: &aws_sdk_guardduty::Client,
        detector: &str,
        id: &str,
        region: &str,
    ) -> Step {
        let invited = |why: String| Step::Pending("Invited".into(), format!("invited; not accepted yet: {why}"));
        let member = match self.aws.member(id, region).await {
            Ok(c) => c,
            Err(e) => return invited(e.to_string()),
        };
        let own = match paced(&self.limits, id, region, "guardduty:ListDetectors", || {
            member.guardduty().list_detectors().send()
        })
        .await
        {
            Ok(o) => o.detector_ids().first().cloned(),
            Err(e) => return invited(self.member_call_failed(id, "guardduty:ListDetectors", region, &e)),
        };
        let Some(own) = own else {
            return invited(format!(
                "GuardDuty is not enabled in {id}; create its detector (orgsec_guardduty_detector) and run enroll \
                 again, or accept the invitation from {} in {id}",
                self.admin
            ));
        };
        let mut token = None;
        let invitation = loop {
            let list = || member.guardduty().list_invitations().set_next_token(token.clone()).send();
            let page = match paced(&self.limits, id, region, "guardduty:ListInvitations", list).await {
                Ok(p) => p,
                Err(e) => return invited(self.member_call_failed(id, "guardduty:ListInvitations", region, &e)),
            };
            let found = page
                .invitations()
                .iter()
                .find(|i| i.account_id() == Some(self.admin.as_str()))
                .and_then(|i| i.invitation_id())
                .map(str::to_string);
            token = page.next_token().map(str::to_string);
            if found.is_some() || token.is_none() {
                break found;
            }
        };
        let Some(invitation) = invitation else {
            return invited(format!("no invitation from {} is waiting in {id}", self.admin));
        };
        let accept = || {
            member
                .guardduty()
                .accept_administrator_invitation()
                .detector_id(&own)
                .administrator_id(&self.admin)
                .invitation_id(&invitation)
                .send()
        };
        if let Err(e) = paced(&self.limits, id, region, "guardduty:AcceptAdministratorInvitation", accept).await {
            return invited(self.member_call_failed(id, "guardduty:AcceptAdministratorInvitation", region, &e));
        }
        match self.detector_status(admin_gd, detector, id, region).await {
            Ok(Some(s)) if s == "Enabled" => Step::Member(s),
            Ok(s) => {
                invited(format!("accepted, yet the admin's detector lists it as {}", s.as_deref().unwrap_or("absent")))
            }
            Err(why) => Step::Failed("Invited".into(), why),
        }
    }

    /// Why a call with the admin's credentials failed, with what to check.
    fn admin_call_failed<E, R>(
        &self,
        action: &str,
        region: &str,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> String
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        if aws::is_access_denied(aws::error_code(e)) {
            self.aws.denied(&self.admin, region, action, aws::describe(e)).to_string()
        } else {
            format!("{action} failed: {}", aws::describe(e))
        }
    }

    /// Why a call through the member role failed, with what to check.
    fn member_call_failed<E, R>(
        &self,
        account: &str,
        action: &str,
        region: &str,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> String
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        if aws::is_access_denied(aws::error_code(e)) {
            self.aws.denied(account, region, action, aws::describe(e)).to_string()
        } else {
            format!("{action} as {} failed: {}", self.aws.role_arn(account), aws::describe(e))
        }
    }
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// One status for all regions: the common word, or each region's.
fn summarize(regions: &BTreeMap<String, RegionMembership>, pick: impl Fn(&RegionMembership) -> &String) -> String {
    let words: BTreeSet<&str> = regions.values().map(|m| pick(m).as_str()).collect();
    match words.len() {
        0 => "-".into(),
        1 => words.into_iter().next().unwrap_or("-").to_string(),
        _ => regions.iter().map(|(r, m)| format!("{r}: {}", pick(m))).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, state: AccountState) -> AccountRecord {
        AccountRecord::new(id, state, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in AccountState::ALL {
            assert_eq!(AccountState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(AccountState::parse("Enrolled"), None);
    }

    #[test]
    fn discovery_classifies_the_admin_the_management_account_and_suspended_accounts() {
        let admin = "222222222222";
        assert_eq!(classify(&record(admin, AccountState::Discovered), admin, false, "ACTIVE").0, AccountState::Admin);
        let (s, why) = classify(&record("111111111111", AccountState::Discovered), admin, true, "ACTIVE");
        assert_eq!(s, AccountState::Management);
        assert!(why.unwrap().contains("--account"));
        // Enrolled explicitly: discovery leaves it alone.
        assert_eq!(
            classify(&record("111111111111", AccountState::Enrolled), admin, true, "ACTIVE").0,
            AccountState::Enrolled
        );
        let (s, why) = classify(&record("333333333333", AccountState::Enrolled), admin, false, "SUSPENDED");
        assert_eq!(s, AccountState::Suspended);
        assert!(why.unwrap().contains("SUSPENDED"));
        // Back from suspension: enrolled again like a new account.
        assert_eq!(
            classify(&record("333333333333", AccountState::Suspended), admin, false, "ACTIVE").0,
            AccountState::Discovered
        );
    }

    #[test]
    fn the_watch_reads_new_accounts_tags_and_refreshes_the_oldest_few() {
        let account = |id: &str| OrgAccount {
            id: id.into(),
            name: String::new(),
            email: String::new(),
            status: "ACTIVE".into(),
            ou_path: "Root".into(),
            tags: None,
        };
        let accounts: Vec<OrgAccount> = ["a", "b", "c", "d", "e"].into_iter().map(account).collect();
        assert_eq!(TagReads::All.pick(&accounts), [0, 1, 2, 3, 4]);
        // b and d are new; of the others, e was read longest ago, then a, then c.
        let read_at = HashMap::from([("a".to_string(), 20), ("c".to_string(), 30), ("e".to_string(), 10)]);
        let pick = |refresh| TagReads::Stale { read_at: read_at.clone(), refresh }.pick(&accounts);
        assert_eq!(pick(0), [1, 3], "new accounts whatever the budget");
        assert_eq!(pick(2), [1, 3, 4, 0]);
        assert_eq!(pick(100), [1, 3, 4, 0, 2]);
    }

    #[test]
    fn a_status_is_summed_up_over_regions() {
        let m = |sh: &str| RegionMembership { securityhub: sh.into(), guardduty: "Enabled".into() };
        let one = BTreeMap::from([("us-east-1".to_string(), m("Enabled")), ("eu-west-1".to_string(), m("Enabled"))]);
        assert_eq!(summarize(&one, |m| &m.securityhub), "Enabled");
        let mixed = BTreeMap::from([("us-east-1".to_string(), m("Enabled")), ("eu-west-1".to_string(), m("Invited"))]);
        assert_eq!(summarize(&mixed, |m| &m.securityhub), "eu-west-1: Invited, us-east-1: Enabled");
        assert_eq!(summarize(&BTreeMap::new(), |m| &m.securityhub), "-");
    }

    #[test]
    fn the_report_sums_up_and_renders_every_account() {
        let mut failed = record("333333333333", AccountState::Failed);
        failed.role_ok = Some(false);
        failed.reason = Some("cannot assume arn:aws:iam::333333333333:role/OrgSecRemediationRole".into());
        failed.ou_path = Some("Root/Prod".into());
        let mut enrolled = record("444444444444", AccountState::Enrolled);
        enrolled.role_ok = Some(true);
        enrolled.name = "prod-data".into();
        let report = EnrollReport {
            admin_account: "222222222222".into(),
            management_account: Some("111111111111".into()),
            regions: vec!["us-east-1".into()],
            accounts: vec![outcome(&failed), outcome(&enrolled), outcome(&record("777777777777", AccountState::Admin))],
        };
        assert_eq!(report.summary(), "3 accounts: 1 enrolled, 1 failed, 1 admin");
        assert_eq!(report.accounts[0].role, failed.reason.clone().unwrap());
        assert_eq!(report.accounts[1].role, "ok");
        assert_eq!(report.accounts[2].role, "not checked");
        let table = render_table(&report);
        for text in ["333333333333", "Root/Prod", "failed", "refused", "prod-data", "(outside the organization)"] {
            assert!(table.contains(text), "{text} missing from\n{table}");
        }
    }
}
