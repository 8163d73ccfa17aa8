//! The orchestrator's gRPC API (`proto/orgsec/v1/`) over tonic: `BindingService`,
//! `PlaybookService`, `PostureService`, `AccountService`, `FindingService` and
//! `RemediationService` and `EvidenceService` (bundles for auditors), server reflection, `GET /healthz` and `GET /metrics` (Prometheus text) on the same port (HTTP/1.1; TLS
//! when configured).
//!
//! `/healthz` and `/metrics` take no token: probes and scrapers rarely carry one, and neither
//! answer holds a secret (see [`crate::metrics`] for what `/metrics` does show).
//!
//! The handlers only translate: prost types in, plain Rust to [`crate::service`], prost types
//! out, and [`ServiceError`] to a gRPC status. `PostureService` answers from the latest scoring
//! ([`crate::posture::SharedPosture`]), NOT_FOUND until there is one.
//!
//! **Architecture Invariant:** only `api` sees protobuf and tonic types.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::{Request, Status};

use crate::auth::{Denied, Principal, Tokens};
use crate::metrics::Metrics;
use crate::posture::SharedPosture;
use crate::service::{Bindings, Remediations, ServiceError};
use crate::store::Store;

mod bindings;
mod evidence;
mod inventory;
mod playbooks;
mod posture;
mod remediations;

/// The encoded descriptors of `proto/orgsec/v1/`, for reflection.
const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/orgsec_v1_descriptor.bin"));

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Api {
    tokens: Arc<Tokens>,
    store: Store,
    bindings: Bindings,
    remediations: Remediations,
    metrics: Arc<Metrics>,
    posture: SharedPosture,
    /// For what evidence reads from AWS (disabled controls); without it, bundles say so.
    aws: Option<crate::aws::Aws>,
}

/// The server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot set up gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Api {
    pub fn new(store: Store, tokens: Tokens) -> Api {
        Api {
            tokens: Arc::new(tokens),
            bindings: Bindings::new(store.clone()),
            remediations: Remediations::new(store.clone()),
            store,
            metrics: Arc::new(Metrics::new()),
            posture: SharedPosture::default(),
            aws: None,
        }
    }

    /// Reads AWS through `aws` where the API needs to (evidence bundles' disabled controls).
    pub fn with_aws(mut self, aws: crate::aws::Aws) -> Api {
        self.aws = Some(aws);
        self
    }

    /// Serves `metrics` on `/metrics`: the registry the rest of the process counts into. Without
    /// it the API serves a registry of its own, which nothing else updates.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Api {
        self.metrics = metrics;
        self
    }

    /// Serve posture from `posture` (which `orgsec serve`'s sync loop keeps up to date).
    pub fn with_posture(mut self, posture: SharedPosture) -> Api {
        self.posture = posture;
        self
    }

    /// The registry served on `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The caller of `r`, from its bearer token.
    fn caller<T>(&self, r: &Request<T>) -> Result<&Principal, Status> {
        let header = r.metadata().get("authorization").and_then(|v| v.to_str().ok());
        self.tokens.authenticate(header).map_err(denied)
    }

    /// The gRPC services, reflection, `/healthz` and `/metrics`, as one set of routes.
    pub fn routes(&self) -> Result<tonic::service::Routes, ServeError> {
        use orgsec_proto::orgsec::v1::account_service_server::AccountServiceServer;
        use orgsec_proto::orgsec::v1::binding_service_server::BindingServiceServer;
        use orgsec_proto::orgsec::v1::evidence_service_server::EvidenceServiceServer;
        use orgsec_proto::orgsec::v1::finding_service_server::FindingServiceServer;
        use orgsec_proto::orgsec::v1::playbook_service_server::PlaybookServiceServer;
        use orgsec_proto::orgsec::v1::posture_service_server::PostureServiceServer;
        use orgsec_proto::orgsec::v1::remediation_service_server::RemediationServiceServer;

        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let mut routes = tonic::service::Routes::new(BindingServiceServer::new(self.clone()))
            .add_service(PlaybookServiceServer::new(self.clone()))
            .add_service(PostureServiceServer::new(self.clone()))
            .add_service(AccountServiceServer::new(self.clone()))
            .add_service(FindingServiceServer::new(self.clone()))
            .add_service(RemediationServiceServer::new(self.clone()))
            .add_service(EvidenceServiceServer::new(self.clone()))
            .add_service(reflection);
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let health = axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || {
                let store = store.clone();
                async move {
                    match store.ping().await {
                        Ok(()) => (axum::http::StatusCode::OK, "ok\n".to_string()),
                        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
                    }
                }
            }),
        );
        let health = health.route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        axum::http::StatusCode::OK,
                        [(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
                        metrics.render(),
                    )
                }
            }),
        );
        let router = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = router.merge(health);
        Ok(routes)
    }

    /// Serves the API on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        self.serve_tls(listener, None, shutdown).await
    }

    /// Serves the API on `listener`, over TLS with `tls` (certificate chain and key, PEM) when
    /// given, until `shutdown` completes.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Option<(&[u8], &[u8])>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let routes = self.routes()?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key)) = tls {
            let identity = tonic::transport::Identity::from_pem(cert, key);
            builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
        }
        builder.accept_http1(true).add_routes(routes).serve_with_incoming_shutdown(incoming, shutdown).await?;
        Ok(())
    }
}

fn denied(d: Denied) -> Status {
    match d {
        Denied::Unauthenticated(m) => Status::unauthenticated(m),
        Denied::PermissionDenied(m) => Status::permission_denied(m),
    }
}

/// The status a failed operation answers with.
fn status(e: ServiceError) -> Status {
    match e {
        ServiceError::Invalid(_) | ServiceError::BadRequest(_) => Status::invalid_argument(e.to_string()),
        ServiceError::Denied(d) => denied(d),
        ServiceError::AlreadyExists(_) => Status::already_exists(e.to_string()),
        ServiceError::NotFound(_) => Status::not_found(e.to_string()),
        ServiceError::Conflict(_) => Status::aborted(e.to_string()),
        ServiceError::Store(s) => {
            tracing::error!(error = %s, "store");
            Status::internal(format!("the orchestrator's database failed: {s}"))
        }
    }
}
