//! The one place the orchestrator builds AWS clients.
//!
//! The admin (delegated-admin security) account's credentials, region and endpoints come from
//! the standard AWS chain and environment (`AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` and its per-service variants, ...), so pointing `AWS_ENDPOINT_URL` at the
//! emulator is all a demo needs. Every member account is reached through its member role
//! (`arn:aws:iam::<member>:role/<member_role_name>`), assumed with the configured ExternalId:
//! the ExternalId is what keeps another tenant of the same admin from steering orgsec into an
//! account that is not theirs (the confused deputy).
//!
//! Costs are kept flat however many accounts, regions and concurrent callers there are:
//!
//! - one AssumeRole per member account per credential lifetime: credentials are cached per
//!   account and refreshed [`REFRESH_BEFORE_EXPIRY`] before they expire, behind a per-account
//!   guard so that concurrent callers wait for one refresh instead of each calling STS;
//! - one set of clients per (account, region), each service's built on first use and then
//!   shared by every clone;
//! - one HTTP client (one connection pool) under every client: the base configuration's.
//!
//! **Architecture Invariant:** only this module builds AWS SDK clients; the rest of the
//! orchestrator asks [`Aws`] for [`Clients`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::identity::SharedIdentityCache;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use parking_lot::Mutex;

use crate::settings::Settings;

/// The session name of every AssumeRole, so that a member account's CloudTrail shows orgsec's
/// calls as `assumed-role/<role>/orgsec`.
pub const SESSION_NAME: &str = "orgsec";
/// Member credentials are replaced this long before they expire, so that no call starts with
/// credentials that die on the way (a paginated GetFindings can take minutes).
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Attempts per call in the SDK's standard retry mode (throttling and transient errors, with
/// exponential backoff and the client-side retry budget).
pub const MAX_ATTEMPTS: u32 = 4;
/// The region used when neither the settings nor the AWS configuration name one.
pub const DEFAULT_REGION: &str = "us-east-1";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client waits for member credentials: an AssumeRole with its retries, or another
/// caller's refresh of the same account.
const CREDENTIALS_LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// AWS access for the orchestrator: the admin's own clients and, through the member role,
/// every member account's. Cheap to clone: clones share clients and cached credentials.
#[derive(Clone)]
pub struct Aws {
    inner: Arc<Inner>,
}

struct Inner {
    base: SdkConfig,
    member_role_name: String,
    external_id: Option<String>,
    regions: Vec<String>,
    retry: RetryConfig,
    /// Shared by member clients: holds member credentials until [`REFRESH_BEFORE_EXPIRY`]
    /// before they expire, so that the SDK asks [`MemberCredentials`] exactly when its own
    /// cache would refresh too.
    member_identity_cache: SharedIdentityCache,
    interceptors: Mutex<Vec<SharedInterceptor>>,
    caller: tokio::sync::OnceCell<String>,
    sts: Mutex<Option<aws_sdk_sts::Client>>,
    admin_clients: Mutex<HashMap<String, Clients>>,
    member_clients: Mutex<HashMap<(String, String), Clients>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

/// The clients of one account in one region, one per service, each built on first use (a
/// sync calls four of the eight services; building a client costs about a quarter of a
/// millisecond, so building all eight for every account delayed a large organization's first
/// reads). Cloning is cheap: clones share the built clients.
#[derive(Clone)]
pub struct Clients {
    /// The account the clients act in (for the admin's own clients, empty until
    /// [`Aws::caller_account`] has run once).
    pub account_id: String,
    pub region: String,
    /// Who the clients act as: the member role's ARN, or a description of the admin's own
    /// credentials. Errors name it so that the reader knows whose permissions to change.
    pub principal: String,
    services: Arc<Services>,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// What building a client of one account and region needs, and the clients built so far.
struct Services {
    base: SdkConfig,
    region: String,
    retry: RetryConfig,
    /// The member role's credentials and the cache they share; `None` for the admin's own.
    member: Option<(SharedCredentialsProvider, SharedIdentityCache)>,
    /// The interceptors of the [`Aws`] when these clients were handed out.
    interceptors: Vec<SharedInterceptor>,
    securityhub: OnceLock<aws_sdk_securityhub::Client>,
    guardduty: OnceLock<aws_sdk_guardduty::Client>,
    config: OnceLock<aws_sdk_config::Client>,
    accessanalyzer: OnceLock<aws_sdk_accessanalyzer::Client>,
    organizations: OnceLock<aws_sdk_organizations::Client>,
    ec2: OnceLock<aws_sdk_ec2::Client>,
    iam: OnceLock<aws_sdk_iam::Client>,
    s3control: OnceLock<aws_sdk_s3control::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
}

/// Builds the client of one service from [`Services`]; `$customize` adjusts its builder.
macro_rules! service_client {
    ($s:expr, $sdk:ident) => {
        service_client!($s, $sdk, |b| b)
    };
    ($s:expr, $sdk:ident, $customize:expr) => {{
        let s: &Services = $s;
        let mut b =
            $sdk::config::Builder::from(&s.base).region(Region::new(s.region.clone())).retry_config(s.retry.clone());
        if let Some((credentials, cache)) = &s.member {
            b.set_credentials_provider(Some(credentials.clone()));
            b.set_identity_cache(cache.clone());
        }
        for i in &s.interceptors {
            b.push_interceptor(i.clone());
        }
        $sdk::Client::from_conf($customize(b).build())
    }};
}

impl Clients {
    /// Security Hub.
    pub fn securityhub(&self) -> aws_sdk_securityhub::Client {
        self.services.securityhub.get_or_init(|| service_client!(&self.services, aws_sdk_securityhub)).clone()
    }

    /// GuardDuty.
    pub fn guardduty(&self) -> aws_sdk_guardduty::Client {
        self.services.guardduty.get_or_init(|| service_client!(&self.services, aws_sdk_guardduty)).clone()
    }

    /// AWS Config.
    pub fn config(&self) -> aws_sdk_config::Client {
        self.services.config.get_or_init(|| service_client!(&self.services, aws_sdk_config)).clone()
    }

    /// IAM Access Analyzer.
    pub fn accessanalyzer(&self) -> aws_sdk_accessanalyzer::Client {
        self.services.accessanalyzer.get_or_init(|| service_client!(&self.services, aws_sdk_accessanalyzer)).clone()
    }

    /// Organizations.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        self.services.organizations.get_or_init(|| service_client!(&self.services, aws_sdk_organizations)).clone()
    }

    /// EC2.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        self.services.ec2.get_or_init(|| service_client!(&self.services, aws_sdk_ec2)).clone()
    }

    /// IAM.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.services.iam.get_or_init(|| service_client!(&self.services, aws_sdk_iam)).clone()
    }

    /// S3 buckets' own settings. Against a custom endpoint it addresses buckets by path: the
    /// default puts the bucket in front of the host name, which an emulator's address lacks.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let s = &self.services;
        s.s3.get_or_init(|| {
            let custom = s.base.endpoint_url().is_some();
            service_client!(s, aws_sdk_s3, |b: aws_sdk_s3::config::Builder| b.force_path_style(custom))
        })
        .clone()
    }

    /// Account-level S3 settings (Block Public Access). Against a custom endpoint it is pinned
    /// to that endpoint: S3 Control otherwise puts the account id in front of the host name.
    pub fn s3control(&self) -> aws_sdk_s3control::Client {
        let s = &self.services;
        s.s3control
            .get_or_init(|| {
                let endpoint = s.base.endpoint_url().map(str::to_string);
                service_client!(s, aws_sdk_s3control, |b: aws_sdk_s3control::config::Builder| match endpoint {
                    Some(url) => b.endpoint_resolver(FixedEndpoint(url)),
                    None => b,
                })
            })
            .clone()
    }
}

/// Why orgsec cannot act in an account. Each message names the principal involved and what to
/// check; none holds a secret (the ExternalId is not one, but only whether it is set is shown).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    /// The admin account's own credentials do not work (`sts:GetCallerIdentity` failed).
    #[error(
        "the AWS credentials orgsec runs with do not work: {detail}; check AWS_PROFILE or \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION, and AWS_ENDPOINT_URL when using an emulator"
    )]
    Credentials { detail: String },
    /// AWS refused AssumeRole into a member's role: the role is missing, does not trust the
    /// admin account, or wants another ExternalId.
    #[error(
        "cannot assume {role_arn}: {detail}; check that the role exists in account {account}, that its trust \
         policy allows the admin account {admin_account}, and that its sts:ExternalId condition matches \
         ORGSEC_EXTERNAL_ID (set: {})",
        if *external_id_set { "yes" } else { "no" }
    )]
    RoleRefused { role_arn: String, account: String, admin_account: String, external_id_set: bool, detail: String },
    /// AssumeRole did not get an answer from STS (network, endpoint, timeouts).
    #[error("cannot assume {role_arn}: {detail}; check the network, AWS_REGION and AWS_ENDPOINT_URL, then retry")]
    StsUnavailable { role_arn: String, detail: String },
    /// A call made as `principal` (the member role, or the admin's own credentials) was denied.
    #[error("{action} in account {account} ({region}) was denied to {principal}: {detail}; {hint}")]
    Denied { principal: String, account: String, region: String, action: String, detail: String, hint: String },
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("member_role_name", &self.inner.member_role_name)
            .field("external_id_set", &self.inner.external_id.is_some())
            .field("regions", &self.inner.regions)
            .finish_non_exhaustive()
    }
}

/// A configuration that signs in to the emulator at `endpoint` as `account`'s administrator
/// (access key `AKID<account>`), in us-east-1: what `orgsec demo` and the benchmarks use.
pub fn emulator_config(endpoint: &str, account: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(DEFAULT_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            format!("AKID{account}"),
            "emulator",
            None,
            None,
            "orgsec-emulator",
        )))
        .build()
}

impl Aws {
    /// The standard AWS chain and environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...),
    /// with orgsec's timeouts and, unless AWS_MAX_ATTEMPTS or AWS_RETRY_MODE say otherwise,
    /// the standard retry mode with [`MAX_ATTEMPTS`] attempts.
    pub async fn from_env(settings: &Settings) -> Aws {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            loader = loader.retry_config(default_retry());
        }
        let base = with_shared_http_client(loader.load().await).await;
        Aws::new(base, settings)
    }

    /// From a ready configuration (tests: the emulator's URL, static credentials, a region).
    /// Every client shares `base`'s HTTP client; a configuration without one gets a
    /// connection pool per client (`from_env` always provides one).
    pub fn new(base: SdkConfig, settings: &Settings) -> Aws {
        let retry = base.retry_config().cloned().unwrap_or_else(default_retry);
        let regions = if settings.regions.is_empty() {
            vec![base.region().map(|r| r.to_string()).unwrap_or_else(|| DEFAULT_REGION.to_string())]
        } else {
            settings.regions.clone()
        };
        let member_identity_cache =
            IdentityCache::lazy().buffer_time(REFRESH_BEFORE_EXPIRY).load_timeout(CREDENTIALS_LOAD_TIMEOUT).build();
        Aws {
            inner: Arc::new(Inner {
                base,
                member_role_name: settings.member_role_name.clone(),
                external_id: settings.external_id.clone(),
                regions,
                retry,
                member_identity_cache,
                interceptors: Mutex::new(Vec::new()),
                caller: tokio::sync::OnceCell::new(),
                sts: Mutex::new(None),
                admin_clients: Mutex::new(HashMap::new()),
                member_clients: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adds an interceptor to every client built from now on (metrics, raw body capture).
    /// Clients built before are dropped from the caches, so every client handed out after
    /// this call has it. Clones of this `Aws` share the interceptor.
    pub fn with_interceptor(self, i: impl Intercept + 'static) -> Aws {
        self.inner.interceptors.lock().push(SharedInterceptor::new(i));
        self.inner.admin_clients.lock().clear();
        self.inner.member_clients.lock().clear();
        *self.inner.sts.lock() = None;
        self
    }

    /// The regions orgsec works in: the settings' `regions`, else the AWS configuration's
    /// region, else [`DEFAULT_REGION`].
    pub fn regions(&self) -> Vec<String> {
        self.inner.regions.clone()
    }

    /// The base configuration's region, or the first of [`Aws::regions`]: where STS and
    /// Organizations are called.
    fn home_region(&self) -> String {
        self.inner
            .base
            .region()
            .map(|r| r.to_string())
            .or_else(|| self.inner.regions.first().cloned())
            .unwrap_or_else(|| DEFAULT_REGION.to_string())
    }

    /// The role name assumed in member accounts.
    pub fn member_role_name(&self) -> &str {
        &self.inner.member_role_name
    }

    /// Whether an ExternalId is configured (ORGSEC_EXTERNAL_ID / `external_id`).
    pub fn external_id_set(&self) -> bool {
        self.inner.external_id.is_some()
    }

    /// The admin (caller) account id via `sts:GetCallerIdentity`, cached after the first
    /// success.
    pub async fn caller_account(&self) -> Result<String, AccessError> {
        self.inner
            .caller
            .get_or_try_init(|| async {
                let out = self
                    .sts()
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| AccessError::Credentials { detail: describe(&e) })?;
                match out.account() {
                    Some(a) if !a.is_empty() => Ok(a.to_string()),
                    _ => Err(AccessError::Credentials { detail: "GetCallerIdentity returned no account id".into() }),
                }
            })
            .await
            .cloned()
    }

    /// `arn:aws:iam::<account>:role/<member_role_name>`.
    pub fn role_arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{}", self.inner.member_role_name)
    }

    /// Clients with the admin's own credentials in `region`.
    pub fn admin(&self, region: &str) -> Clients {
        let known = self.inner.caller.get().cloned().unwrap_or_default();
        let mut cache = self.inner.admin_clients.lock();
        let clients = cache.entry(region.to_string()).or_insert_with(|| self.build(&known, region, None));
        let mut out = clients.clone();
        if out.account_id.is_empty() {
            out.account_id = known;
        }
        out
    }

    /// Clients in `account`/`region` through the member role (AssumeRole with the ExternalId);
    /// the admin's own account gets [`Aws::admin`] clients. The role's credentials are
    /// obtained here (from the cache when still fresh), so that a refusal is an
    /// [`AccessError`] now rather than a credentials error inside some later call.
    pub async fn member(&self, account: &str, region: &str) -> Result<Clients, AccessError> {
        let admin = self.caller_account().await?;
        if account == admin {
            return Ok(self.admin(region));
        }
        let provider = self.provider(account, &admin);
        provider.credentials().await?;
        let key = (account.to_string(), region.to_string());
        let mut cache = self.inner.member_clients.lock();
        let clients = cache
            .entry(key)
            .or_insert_with(|| self.build(account, region, Some(SharedCredentialsProvider::new(provider.clone()))));
        Ok(clients.clone())
    }

    /// Assumes the member role now, whatever the cache holds: enrollment's proof that the role
    /// exists, trusts the admin and accepts the ExternalId. On success the credentials are
    /// cached for [`Aws::member`]. The admin's own account needs no role and always passes.
    pub async fn check_role(&self, account: &str) -> Result<(), AccessError> {
        let admin = self.caller_account().await?;
        if account == admin {
            return Ok(());
        }
        let provider = self.provider(account, &admin);
        let _guard = provider.session.refresh.lock().await;
        provider.assume().await.map(|_| ())
    }

    /// How many AssumeRole calls were made for `account` (metrics and benchmarks).
    pub fn assume_role_calls(&self, account: &str) -> u64 {
        self.inner.sessions.lock().get(account).map_or(0, |s| s.calls.load(Ordering::Relaxed))
    }

    /// The error for a call that AWS denied: it names who was denied what, and what to change.
    /// `account` is where the call was made; a member's call goes through its role.
    pub fn denied(&self, account: &str, region: &str, action: &str, detail: String) -> AccessError {
        let is_admin = self.inner.caller.get().is_some_and(|a| a == account);
        let (principal, hint) = if is_admin {
            (
                format!("the admin account {account}'s credentials"),
                format!("allow {action} to the principal orgsec runs as"),
            )
        } else {
            (
                self.role_arn(account),
                format!(
                    "add {action} to the permissions policy of {} in account {account}",
                    self.inner.member_role_name
                ),
            )
        };
        AccessError::Denied {
            principal,
            account: account.to_string(),
            region: region.to_string(),
            action: action.to_string(),
            detail,
            hint,
        }
    }

    /// The STS client with the admin's own credentials, in the home region.
    fn sts(&self) -> aws_sdk_sts::Client {
        let mut slot = self.inner.sts.lock();
        slot.get_or_insert_with(|| {
            let mut b = aws_sdk_sts::config::Builder::from(&self.inner.base)
                .region(Region::new(self.home_region()))
                .retry_config(self.inner.retry.clone());
            for i in self.inner.interceptors.lock().iter() {
                b.push_interceptor(i.clone());
            }
            aws_sdk_sts::Client::from_conf(b.build())
        })
        .clone()
    }

    /// The member credentials provider of `account` (its session is created on first use).
    fn provider(&self, account: &str, admin: &str) -> MemberCredentials {
        let session = self
            .inner
            .sessions
            .lock()
            .entry(account.to_string())
            .or_insert_with(|| {
                Arc::new(Session {
                    account: account.to_string(),
                    admin_account: admin.to_string(),
                    role_arn: self.role_arn(account),
                    cached: Mutex::new(None),
                    refresh: tokio::sync::Mutex::new(()),
                    calls: AtomicU64::new(0),
                })
            })
            .clone();
        MemberCredentials { session, sts: self.sts(), external_id: self.inner.external_id.clone() }
    }

    /// The clients of one account and region, none built yet; `credentials` replaces the base
    /// configuration's (the admin's) for members.
    fn build(&self, account: &str, region: &str, credentials: Option<SharedCredentialsProvider>) -> Clients {
        let principal = match &credentials {
            Some(_) => self.role_arn(account),
            None if account.is_empty() => "the admin account's credentials".to_string(),
            None => format!("the admin account {account}'s credentials"),
        };
        Clients {
            account_id: account.to_string(),
            region: region.to_string(),
            principal,
            services: Arc::new(Services {
                base: self.inner.base.clone(),
                region: region.to_string(),
                retry: self.inner.retry.clone(),
                member: credentials.map(|c| (c, self.inner.member_identity_cache.clone())),
                interceptors: self.inner.interceptors.lock().clone(),
                securityhub: OnceLock::new(),
                guardduty: OnceLock::new(),
                config: OnceLock::new(),
                accessanalyzer: OnceLock::new(),
                organizations: OnceLock::new(),
                ec2: OnceLock::new(),
                iam: OnceLock::new(),
                s3control: OnceLock::new(),
                s3: OnceLock::new(),
            }),
        }
    }
}

/// S3 Control's endpoint when one URL serves every service (an emulator, LocalStack): the
/// default resolver would prefix the host with the account id (`123456789012.127.0.0.1`), which
/// does not resolve. The account id still travels in the `x-amz-account-id` header.
#[derive(Debug)]
struct FixedEndpoint(String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(aws_smithy_types::endpoint::Endpoint::builder()
            .url(self.0.clone())
            .build()))
    }
}

fn default_retry() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// One member account's role credentials, shared by every client of that account.
#[derive(Debug)]
struct Session {
    account: String,
    admin_account: String,
    role_arn: String,
    cached: Mutex<Option<Credentials>>,
    /// Held while calling AssumeRole, so that one caller refreshes and the others wait.
    refresh: tokio::sync::Mutex<()>,
    calls: AtomicU64,
}

impl Session {
    /// The cached credentials if they stay valid for longer than [`REFRESH_BEFORE_EXPIRY`].
    fn fresh(&self, now: SystemTime) -> Option<Credentials> {
        self.cached.lock().as_ref().filter(|c| is_fresh(c.expiry(), now)).cloned()
    }
}

/// Whether credentials expiring at `expiry` can still be handed out at `now`.
fn is_fresh(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    match expiry {
        None => true,
        Some(at) => at.duration_since(now).is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY),
    }
}

/// The credentials provider of member clients: AssumeRole into the member role with the
/// ExternalId and session name [`SESSION_NAME`], at most once per credential lifetime per
/// account whatever the number of clients and concurrent callers.
#[derive(Debug, Clone)]
struct MemberCredentials {
    session: Arc<Session>,
    /// With the admin's own credentials.
    sts: aws_sdk_sts::Client,
    external_id: Option<String>,
}

impl MemberCredentials {
    /// Fresh cached credentials, or new ones from one AssumeRole (callers arriving meanwhile
    /// wait for it and take its result from the cache).
    async fn credentials(&self) -> Result<Credentials, AccessError> {
        if let Some(c) = self.session.fresh(SystemTime::now()) {
            return Ok(c);
        }
        let _guard = self.session.refresh.lock().await;
        if let Some(c) = self.session.fresh(SystemTime::now()) {
            return Ok(c);
        }
        self.assume().await
    }

    /// One AssumeRole call; the caller holds the session's refresh guard.
    async fn assume(&self) -> Result<Credentials, AccessError> {
        let s = &self.session;
        s.calls.fetch_add(1, Ordering::Relaxed);
        let out = self
            .sts
            .assume_role()
            .role_arn(&s.role_arn)
            .role_session_name(SESSION_NAME)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| self.refused(&e))?;
        let Some(c) = out.credentials() else {
            return Err(AccessError::StsUnavailable {
                role_arn: s.role_arn.clone(),
                detail: "AssumeRole answered without credentials".into(),
            });
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "orgsec-member-role",
        );
        *s.cached.lock() = Some(creds.clone());
        tracing::debug!(account = %s.account, role = %s.role_arn, "assumed the member role");
        Ok(creds)
    }

    fn refused<E, R>(&self, e: &SdkError<E, R>) -> AccessError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let s = &self.session;
        match e {
            SdkError::ServiceError(_) => AccessError::RoleRefused {
                role_arn: s.role_arn.clone(),
                account: s.account.clone(),
                admin_account: s.admin_account.clone(),
                external_id_set: self.external_id.is_some(),
                detail: describe(e),
            },
            _ => AccessError::StsUnavailable { role_arn: s.role_arn.clone(), detail: describe(e) },
        }
    }
}

impl ProvideCredentials for MemberCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// Gives `base` an HTTP client when it has none, so that every client built from it shares
/// one connection pool (and, against AWS, reuses TLS sessions) instead of each opening its own.
///
/// The SDK only creates its default client inside a client's runtime; this takes the one it
/// creates for a GetCallerIdentity that an interceptor stops before it is serialized, so
/// nothing is sent. If that ever yields nothing, `base` is returned unchanged.
async fn with_shared_http_client(base: SdkConfig) -> SdkConfig {
    if base.http_client().is_some() {
        return base;
    }
    let take = TakeHttpClient::default();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&base).region(Region::new(DEFAULT_REGION)).interceptor(take.clone()).build(),
    );
    // Fails by design: the interceptor stops the request before it is serialized.
    let _ = sts.get_caller_identity().send().await;
    let taken = take.0.lock().take();
    match taken {
        Some(client) => base.into_builder().http_client(client).build(),
        None => base,
    }
}

/// Takes the HTTP client out of a request's runtime and stops the request.
#[derive(Debug, Default, Clone)]
struct TakeHttpClient(Arc<Mutex<Option<SharedHttpClient>>>);

impl Intercept for TakeHttpClient {
    fn name(&self) -> &'static str {
        "TakeHttpClient"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock() = runtime_components.http_client();
        Err("stopped on purpose: only the HTTP client was wanted".into())
    }
}

/// One line for a failed AWS call: the service's code and message, or what kept the call from
/// reaching AWS at all.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => err.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "the call timed out (is the endpoint reachable?)".into(),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
            "could not connect (is the endpoint URL right, and is the service up?)".into()
        }
        other => {
            use std::error::Error;
            let mut msg = other.to_string();
            let mut source = other.source();
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        }
    }
}

/// The AWS error code of a failed call, when the service answered.
pub fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Whether an error code means "not allowed" in any of the services orgsec calls.
pub fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationErrorException")
    )
}

#[cfg(test)]
mod tests {
    use aws_credential_types::provider::SharedCredentialsProvider;

    use super::*;

    fn settings(regions: &[&str], external_id: Option<&str>) -> Settings {
        let mut s = Settings::load(std::path::Path::new("/nonexistent/orgsec.toml"), false, |_| None).unwrap();
        s.regions = regions.iter().map(|r| r.to_string()).collect();
        s.external_id = external_id.map(str::to_string);
        s
    }

    fn base(region: Option<&str>) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.map(|r| Region::new(r.to_string())))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
            .build()
    }

    #[test]
    fn regions_come_from_the_settings_then_the_configuration_then_the_default() {
        assert_eq!(
            Aws::new(base(Some("eu-west-1")), &settings(&["ap-south-1", "us-west-2"], None)).regions(),
            ["ap-south-1", "us-west-2"]
        );
        assert_eq!(Aws::new(base(Some("eu-west-1")), &settings(&[], None)).regions(), ["eu-west-1"]);
        assert_eq!(Aws::new(base(None), &settings(&[], None)).regions(), ["us-east-1"]);
    }

    #[test]
    fn the_role_arn_names_the_account_and_the_configured_role() {
        let aws = Aws::new(base(None), &settings(&[], None));
        assert_eq!(aws.role_arn("333333333333"), "arn:aws:iam::333333333333:role/OrgSecRemediationRole");
    }

    #[test]
    fn credentials_are_replaced_five_minutes_before_they_expire() {
        let now = SystemTime::now();
        assert!(is_fresh(None, now), "credentials without expiry never go stale");
        assert!(is_fresh(Some(now + Duration::from_secs(301)), now));
        assert!(!is_fresh(Some(now + Duration::from_secs(299)), now));
        assert!(!is_fresh(Some(now - Duration::from_secs(1)), now));
    }

    #[test]
    fn a_refused_assume_role_says_what_to_check() {
        let e = AccessError::RoleRefused {
            role_arn: "arn:aws:iam::333333333333:role/OrgSecRemediationRole".into(),
            account: "333333333333".into(),
            admin_account: "222222222222".into(),
            external_id_set: true,
            detail: "AccessDenied: not authorized".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("cannot assume arn:aws:iam::333333333333:role/OrgSecRemediationRole: AccessDenied"));
        assert!(text.contains("allows the admin account 222222222222"), "{text}");
        assert!(text.contains("matches ORGSEC_EXTERNAL_ID (set: yes)"), "{text}");
    }

    #[test]
    fn a_denied_call_names_the_role_and_the_action() {
        let aws = Aws::new(base(None), &settings(&[], None));
        let e = aws.denied(
            "333333333333",
            "us-east-1",
            "securityhub:AcceptAdministratorInvitation",
            "AccessDeniedException: no".into(),
        );
        let text = e.to_string();
        assert!(text.contains("arn:aws:iam::333333333333:role/OrgSecRemediationRole"), "{text}");
        assert!(text.contains("add securityhub:AcceptAdministratorInvitation to the permissions policy"), "{text}");
    }

    #[test]
    fn access_denied_codes_of_every_protocol_are_recognised() {
        for code in ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"] {
            assert!(is_access_denied(Some(code)), "{code}");
        }
        assert!(!is_access_denied(Some("ThrottlingException")));
        assert!(!is_access_denied(None));
    }

    #[tokio::test]
    async fn the_base_configuration_gets_one_http_client_that_clients_then_use() {
        // Taking the client sends nothing: the endpoint is a closed port.
        let shared = with_shared_http_client(base(Some("us-east-1"))).await;
        assert!(shared.http_client().is_some());

        // And the client taken works.
        let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.unwrap();
        let conf = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(em.url())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKID222222222222",
                "secret",
                None,
                None,
                "test",
            )))
            .build();
        let conf = with_shared_http_client(conf).await;
        assert!(conf.http_client().is_some());
        let aws = Aws::new(conf, &settings(&[], Some("orgsec-demo")));
        assert_eq!(aws.caller_account().await.unwrap(), "222222222222");
        aws.member("333333333333", "us-east-1").await.unwrap().guardduty().list_detectors().send().await.unwrap();
    }
}
