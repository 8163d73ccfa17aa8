//! The one place that talks to the orgsec orchestrator's API (for remediation bindings and
//! posture): the channel, the bearer token on every call, and the one-sentence errors a failed
//! call turns into.
//!
//! The channel connects lazily, so a provider block naming an orchestrator costs nothing until a
//! binding or the posture data source is used, and an orchestrator that is down only fails the
//! resources that need it.

use std::time::Duration;

use orgsec_proto::orgsec::v1::binding_service_client::BindingServiceClient;
use orgsec_proto::orgsec::v1::playbook_service_client::PlaybookServiceClient;
use orgsec_proto::orgsec::v1::posture_service_client::PostureServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::framework::Diagnostics;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A configured orchestrator API.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    endpoint: String,
    channel: Channel,
    bearer: Bearer,
}

impl Orchestrator {
    /// Prepares the channel to `endpoint` (http:// or https://) without connecting yet.
    pub fn new(endpoint: &str, token: Option<&str>) -> Result<Orchestrator, String> {
        let mut ep = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("\"{endpoint}\" is not a usable orchestrator endpoint: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        if endpoint.starts_with("https://") {
            ep = ep
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("cannot set up TLS to the orchestrator at {endpoint}: {e}"))?;
        }
        let bearer = match token {
            None => None,
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| "the orchestrator token has characters that cannot go in a header".to_string())?,
            ),
        };
        Ok(Orchestrator { endpoint: endpoint.to_string(), channel: ep.connect_lazy(), bearer: Bearer(bearer) })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn bindings(&self) -> BindingServiceClient<Authed> {
        BindingServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn playbooks(&self) -> PlaybookServiceClient<Authed> {
        PlaybookServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn posture(&self) -> PostureServiceClient<Authed> {
        PostureServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The error diagnostic of a failed call: "Error <doing>", then what went wrong and what to do.
    pub fn error(&self, doing: &str, status: &Status) -> Diagnostics {
        let mut d = Diagnostics::default();
        d.error(format!("Error {doing}"), self.describe(status));
        d
    }

    /// One sentence for a failed call.
    pub fn describe(&self, status: &Status) -> String {
        let at = &self.endpoint;
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => format!(
                "cannot reach the orchestrator at {at}: {}. Is `orgsec serve` running there, and is the endpoint right?",
                status.message()
            ),
            Code::Unauthenticated => format!(
                "the orchestrator at {at} did not accept the token ({}). Set `token` in the provider's orchestrator block, or ORGSEC_TOKEN.",
                status.message()
            ),
            Code::PermissionDenied => {
                format!(
                    "the orchestrator at {at} refused: {}. The token's role or scope does not cover this.",
                    status.message()
                )
            }
            Code::Unimplemented => format!(
                "the orchestrator at {at} does not offer this call ({}). Is it an older orgsec version?",
                status.message()
            ),
            _ => format!("{:?}: {}", status.code(), status.message()),
        }
    }

    /// A not-configured error for a resource or data source that needs the orchestrator.
    pub fn missing(what: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        d.error(
            "No orchestrator configured",
            format!(
                "{what} lives in the orgsec orchestrator. Add `orchestrator {{ endpoint = \"https://...\" }}` to the orgsec provider block (the token from `token` or ORGSEC_TOKEN)."
            ),
        );
        d
    }
}
