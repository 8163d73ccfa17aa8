//! The one place that builds AWS clients: region, profile, endpoint override, timeouts, retries and
//! credentials (including the assumed role with its external ID) come from the provider
//! configuration here and nowhere else. [`Aws::connect`] also proves the credentials work, so a
//! bad provider block fails at configure time with one clear sentence instead of later, or never.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::framework::config::ProviderConfig;

/// Configured AWS access for one provider instance.
#[derive(Debug, Clone)]
pub struct Aws {
    sdk: SdkConfig,
    clients: Clients,
    /// The account every call acts in (after assuming the role, if any).
    pub account_id: String,
    pub region: String,
}

/// One client per service, built once: a client owns its connection pool, so building one per
/// call would open a new connection (and, against AWS, a new TLS session) for every call.
/// Cloning a client is cheap (it shares its internals).
#[derive(Debug, Clone)]
struct Clients {
    securityhub: aws_sdk_securityhub::Client,
    guardduty: aws_sdk_guardduty::Client,
    accessanalyzer: aws_sdk_accessanalyzer::Client,
    config: aws_sdk_config::Client,
    organizations: aws_sdk_organizations::Client,
}

impl Clients {
    fn new(sdk: &SdkConfig) -> Clients {
        Clients {
            securityhub: aws_sdk_securityhub::Client::new(sdk),
            guardduty: aws_sdk_guardduty::Client::new(sdk),
            accessanalyzer: aws_sdk_accessanalyzer::Client::new(sdk),
            config: aws_sdk_config::Client::new(sdk),
            organizations: aws_sdk_organizations::Client::new(sdk),
        }
    }
}

/// How long one AWS call may take before it is abandoned (with retries inside).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Aws {
    /// Builds the clients' configuration and checks it with `sts:GetCallerIdentity` (after
    /// `sts:AssumeRole` when a role is configured).
    pub async fn connect(c: &ProviderConfig) -> Result<Aws, String> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
        if let Some(r) = &c.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &c.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &c.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let base = loader.load().await;
        let Some(region) = base.region().map(|r| r.to_string()) else {
            return Err("no AWS region is configured: set `region` in the provider block, or AWS_REGION".into());
        };
        if base.credentials_provider().is_none() {
            return Err(
                "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or `profile`".into()
            );
        }
        let sdk = match &c.assume_role {
            None => base,
            Some(ar) => {
                let mut b = aws_config::sts::AssumeRoleProvider::builder(&ar.role_arn)
                    .session_name(&ar.session_name)
                    .configure(&base);
                if let Some(x) = &ar.external_id {
                    b = b.external_id(x);
                }
                let provider = b.build().await;
                base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
            }
        };
        let sts = aws_sdk_sts::Client::new(&sdk);
        let who = sts.get_caller_identity().send().await.map_err(|e| {
            let place = c.endpoint_url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default();
            match &c.assume_role {
                Some(ar) => format!("cannot act as {} through AWS{place}: {}", ar.role_arn, describe(&e)),
                None => format!("the AWS credentials do not work{place}: {}", describe(&e)),
            }
        })?;
        let account_id = who.account().unwrap_or_default().to_string();
        Ok(Aws { clients: Clients::new(&sdk), sdk, account_id, region })
    }

    /// Access built elsewhere, taken as is (no credential check): for embedding and tests.
    pub fn from_parts(sdk: SdkConfig, account_id: &str, region: &str) -> Aws {
        Aws { clients: Clients::new(&sdk), sdk, account_id: account_id.to_string(), region: region.to_string() }
    }

    pub fn securityhub(&self) -> aws_sdk_securityhub::Client {
        self.clients.securityhub.clone()
    }

    pub fn guardduty(&self) -> aws_sdk_guardduty::Client {
        self.clients.guardduty.clone()
    }

    pub fn accessanalyzer(&self) -> aws_sdk_accessanalyzer::Client {
        self.clients.accessanalyzer.clone()
    }

    pub fn config(&self) -> aws_sdk_config::Client {
        self.clients.config.clone()
    }

    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        self.clients.organizations.clone()
    }

    /// The same access, acting as `role_arn` (for a step that must run in another account, such
    /// as a member accepting an invitation). Proves the role with `sts:GetCallerIdentity`.
    pub async fn assume(&self, role_arn: &str, external_id: Option<&str>, session_name: &str) -> Result<Aws, String> {
        let mut b =
            aws_config::sts::AssumeRoleProvider::builder(role_arn).session_name(session_name).configure(&self.sdk);
        if let Some(x) = external_id {
            b = b.external_id(x);
        }
        let provider = b.build().await;
        let sdk = self.sdk.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
        let who = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| format!("cannot act as {role_arn}: {}", describe(&e)))?;
        Ok(Aws {
            clients: Clients::new(&sdk),
            sdk,
            account_id: who.account().unwrap_or_default().to_string(),
            region: self.region.clone(),
        })
    }

    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The error diagnostic of a failed AWS step: "Error <doing> (account X, region)", the cause
    /// as detail.
    pub fn error(&self, doing: &str, detail: String) -> crate::framework::Diagnostics {
        let mut d = crate::framework::Diagnostics::default();
        d.error(format!("Error {doing} (account {}, {})", self.account_id, self.region), detail);
        d
    }
}

/// One line for an AWS failure: the service's code and message, or what kept the call from
/// reaching AWS at all.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
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
        SdkError::TimeoutError(_) => "the call timed out; is the endpoint reachable?".into(),
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                "could not connect (is the endpoint URL right, and is the service running?)".into()
            } else {
                format!("could not send the request: {d:?}")
            }
        }
        other => {
            use std::error::Error;
            let mut msg = other.to_string();
            let mut src = other.source();
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        }
    }
}

/// The AWS error code of a failed call, if the service answered.
pub fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}
