//! The go-plugin side of the provider: how Terraform starts it, finds it and talks to it.
//!
//! Terraform launches the provider binary with HashiCorp's go-plugin protocol:
//!
//! 1. The environment carries the magic cookie, the plugin protocol versions Terraform speaks
//!    (`PLUGIN_PROTOCOL_VERSIONS`), a port range (`PLUGIN_MIN_PORT`, `PLUGIN_MAX_PORT`) and,
//!    for automatic mutual TLS, the certificate Terraform generated for this launch
//!    (`PLUGIN_CLIENT_CERT`, PEM).
//! 2. The provider listens on 127.0.0.1, generates a self-signed server certificate and prints
//!    one handshake line on stdout: `1|6|tcp|127.0.0.1:PORT|grpc|<server certificate>`, the
//!    certificate being its DER in unpadded standard base64. Nothing else may ever be written to
//!    stdout; logs go to stderr, which go-plugin forwards to Terraform's log.
//! 3. Terraform connects over TLS, presents the certificate it announced, and trusts only the
//!    server certificate from the handshake line (as a root, for the name `localhost`).
//! 4. It calls `tfplugin6.Provider`, may check `grpc.health.v1.Health` for the service
//!    `plugin` and open `plugin.GRPCStdio`, and ends with `plugin.GRPCController/Shutdown`.
//!
//! [`serve`] does all of this from the process environment. Its pieces ([`PluginEnv`],
//! [`Tls`], [`listen`], [`PluginServer`], [`handshake_line`]) are public so that a test can run
//! the server in-process and read the handshake line instead of stdout.

use std::fmt;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use orgsec_proto::plugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use orgsec_proto::plugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use orgsec_proto::plugin::{Empty, StdioData};
use orgsec_proto::tfplugin6::provider_server::{Provider, ProviderServer};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime, alg_id};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};

/// The environment variable go-plugin checks to tell a launch by Terraform from a launch by hand.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value Terraform gives [`MAGIC_COOKIE_KEY`] for providers.
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own protocol version: the first field of the handshake line.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol this provider speaks: the second field of the handshake line.
pub const PROTOCOL_VERSION: u32 = 6;

/// The service name go-plugin's health check asks about.
const HEALTH_SERVICE: &str = "plugin";
/// How long a client may take to complete the TLS handshake before its connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests still running at shutdown get before the server stops regardless.
/// Terraform itself kills the provider two seconds after asking it to shut down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Largest gRPC message accepted or sent on the provider service. tonic's default (4 MiB) is
/// too small for large plans and states; Terraform bounds what it sends itself.
const MAX_MESSAGE_SIZE: usize = 256 << 20;
/// The validity of the server certificate: a launch lasts minutes, but clocks may be skewed.
const CERT_VALID_BEFORE_NOW: Duration = Duration::from_secs(60 * 60);
const CERT_VALID_AFTER_NOW: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Runs the provider as a Terraform plugin: reads and checks the launch environment, binds a
/// local port, prints the handshake line on stdout and serves gRPC over mutual TLS until
/// Terraform calls `GRPCController/Shutdown` or closes its connection.
///
/// Interrupts (Ctrl-C reaches the whole process group) are ignored, as go-plugin does:
/// Terraform stops a provider itself, with `StopProvider` and then `Shutdown`.
pub async fn serve<P: Provider>(provider: P) -> anyhow::Result<()> {
    let env = PluginEnv::from_env()?;
    ignore_interrupts().context("could not take over interrupt handling")?;
    let tls = Tls::new(&env.client_cert_pem)?;
    let server = PluginServer::new(listen(env.ports).await?, tls)?;
    announce(&server.handshake_line())?;
    server.run(provider).await
}

/// The handshake line go-plugin reads from the plugin's stdout (without the newline):
/// `1|6|tcp|ADDRESS|grpc|CERT`, CERT being the server certificate's DER in standard base64
/// without padding.
pub fn handshake_line(addr: SocketAddr, server_cert_der: &[u8]) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|tcp|{addr}|grpc|{}", STANDARD_NO_PAD.encode(server_cert_der))
}

/// Writes the handshake line to stdout and flushes it: Terraform waits for it.
fn announce(line: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("could not write the handshake line to stdout, where Terraform reads it")
}

// ---------------------------------------------------------------------------------------------
// Launch environment

/// What Terraform tells the provider through its environment, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEnv {
    /// `PLUGIN_CLIENT_CERT`: the PEM certificate Terraform will present when it connects.
    pub client_cert_pem: String,
    /// `PLUGIN_MIN_PORT` and `PLUGIN_MAX_PORT`.
    pub ports: PortRange,
}

/// The local ports the provider may listen on. A minimum of 0 (or unset) means any free port,
/// as in go-plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    /// Any free port.
    pub const ANY: PortRange = PortRange { min: 0, max: 0 };
}

/// A launch environment the provider cannot serve in. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "{MAGIC_COOKIE_KEY} is not set to Terraform's value: this is a Terraform provider plugin, \
         which Terraform starts itself; declare it in a configuration's required_providers and run terraform"
    )]
    NotLaunchedByTerraform,
    #[error(
        "PLUGIN_PROTOCOL_VERSIONS is not set: this provider speaks Terraform plugin protocol 6 only, \
         which Terraform negotiates through that variable; use Terraform 1.0 or newer"
    )]
    NoProtocolVersions,
    #[error(
        "PLUGIN_PROTOCOL_VERSIONS does not offer version 6 (it offers \"{offered}\"): this provider speaks \
         Terraform plugin protocol 6 only; use Terraform 1.0 or newer"
    )]
    Version6NotOffered { offered: String },
    #[error("{name} is \"{value}\", which is not a port number from 0 to 65535: give a port number or unset it")]
    BadPort { name: &'static str, value: String },
    #[error(
        "PLUGIN_MIN_PORT ({min}) is greater than PLUGIN_MAX_PORT ({max}): give a range whose minimum is not above \
         its maximum"
    )]
    PortRangeReversed { min: u16, max: u16 },
    #[error(
        "PLUGIN_CLIENT_CERT is not set: Terraform passes its certificate there for mutual TLS, and this provider \
         does not serve without it; let Terraform start the provider"
    )]
    NoClientCert,
}

impl PluginEnv {
    /// Reads the launch environment of this process.
    pub fn from_env() -> Result<PluginEnv, EnvError> {
        PluginEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the launch environment through `lookup` (a variable's value, if set). Empty values
    /// count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<PluginEnv, EnvError> {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());

        if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(EnvError::NotLaunchedByTerraform);
        }

        let offered = get("PLUGIN_PROTOCOL_VERSIONS").ok_or(EnvError::NoProtocolVersions)?;
        // go-plugin skips entries that are not numbers; so does this.
        if !offered.split(',').filter_map(|v| v.trim().parse::<u32>().ok()).any(|v| v == PROTOCOL_VERSION) {
            return Err(EnvError::Version6NotOffered { offered });
        }

        let port = |name: &'static str| match get(name) {
            None => Ok(0),
            Some(value) => value.trim().parse::<u16>().map_err(|_| EnvError::BadPort { name, value }),
        };
        let ports = PortRange { min: port("PLUGIN_MIN_PORT")?, max: port("PLUGIN_MAX_PORT")? };
        if ports.min > ports.max {
            return Err(EnvError::PortRangeReversed { min: ports.min, max: ports.max });
        }

        let client_cert_pem = get("PLUGIN_CLIENT_CERT").ok_or(EnvError::NoClientCert)?;
        Ok(PluginEnv { client_cert_pem, ports })
    }
}

/// Listens on 127.0.0.1: on any free port when `ports.min` is 0, else on the first free port
/// from `ports.min` to `ports.max`, trying them in order as go-plugin does.
pub async fn listen(ports: PortRange) -> anyhow::Result<TcpListener> {
    if ports.min == 0 {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("could not listen on 127.0.0.1, where Terraform connects to the provider");
    }
    let mut last_error = None;
    for port in ports.min..=ports.max {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    let last_error = last_error.map_or_else(String::new, |e| format!(" (last error: {e})"));
    anyhow::bail!(
        "could not listen on 127.0.0.1 on any port from {} to {}{last_error}: free a port in that range or widen \
         PLUGIN_MIN_PORT and PLUGIN_MAX_PORT",
        ports.min,
        ports.max
    )
}

// ---------------------------------------------------------------------------------------------
// TLS

/// The provider's side of go-plugin's automatic mutual TLS: a fresh self-signed server
/// certificate, and a TLS server that accepts exactly one client certificate, the one Terraform
/// passed in `PLUGIN_CLIENT_CERT`.
pub struct Tls {
    server_cert: CertificateDer<'static>,
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("server_cert_len", &self.server_cert.len()).finish_non_exhaustive()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "PLUGIN_CLIENT_CERT holds no PEM certificate ({0}): it must be the certificate Terraform generated for \
         this launch; let Terraform start the provider"
    )]
    ClientCertNotPem(String),
    #[error(
        "the certificate in PLUGIN_CLIENT_CERT cannot be parsed ({0}): it must be the certificate Terraform \
         generated for this launch; let Terraform start the provider"
    )]
    ClientCertInvalid(rustls::Error),
    #[error(
        "the certificate in PLUGIN_CLIENT_CERT has a key of type {key}, and this build's TLS crypto provider \
         cannot verify that key's signatures, so Terraform could never connect: build the provider with a rustls \
         crypto provider that verifies {key} signatures (Terraform's keys are ECDSA P-521, which aws-lc-rs \
         verifies and ring does not)"
    )]
    UnsupportedClientKey { key: &'static str },
    #[error("could not generate the provider's TLS certificate ({0}); this is a bug in the provider, please report it")]
    ServerCert(#[from] rcgen::Error),
    #[error("could not set up the provider's TLS server ({0}); this is a bug in the provider, please report it")]
    Config(#[from] rustls::Error),
}

impl Tls {
    /// Generates the server certificate and the TLS configuration that accepts only the client
    /// certificate in `client_cert_pem` (the first `CERTIFICATE` block).
    pub fn new(client_cert_pem: &str) -> Result<Tls, TlsError> {
        let provider = crypto_provider();
        let algorithms = provider.signature_verification_algorithms;

        let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
            .map_err(|e| TlsError::ClientCertNotPem(e.to_string()))?;
        check_client_key(&client_cert, &algorithms)?;

        let (server_cert, server_key) = generate_server_cert()?;
        let verifier = Arc::new(ExactClientCert { expected: client_cert, algorithms });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.clone()], server_key)?;
        // gRPC clients insist on negotiating HTTP/2.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls { server_cert, config: Arc::new(config) })
    }

    /// The server certificate, DER, as announced in the handshake line.
    pub fn server_cert_der(&self) -> &CertificateDer<'static> {
        &self.server_cert
    }
}

/// The rustls crypto provider: the process-wide default if the binary installed one, else
/// aws-lc-rs, which verifies the ECDSA P-521 signatures of Terraform's certificates (ring does not).
fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Fails early when the client certificate's key is of a type whose signatures the crypto
/// provider cannot verify: the TLS handshake could never succeed.
fn check_client_key(cert: &CertificateDer<'_>, algorithms: &WebPkiSupportedAlgorithms) -> Result<(), TlsError> {
    let parsed = ParsedCertificate::try_from(cert).map_err(TlsError::ClientCertInvalid)?;
    let spki = parsed.subject_public_key_info();
    let key_algorithm = der_element(spki.as_ref(), DER_SEQUENCE)
        .and_then(|(spki, _)| der_element(spki, DER_SEQUENCE))
        .map(|(algorithm, _)| algorithm)
        .ok_or(TlsError::ClientCertInvalid(rustls::Error::InvalidCertificate(CertificateError::BadEncoding)))?;
    if algorithms.all.iter().any(|alg| alg.public_key_alg_id().as_ref() == key_algorithm) {
        Ok(())
    } else {
        Err(TlsError::UnsupportedClientKey { key: key_type_name(key_algorithm) })
    }
}

fn key_type_name(algorithm: &[u8]) -> &'static str {
    [
        (alg_id::ECDSA_P256, "ECDSA P-256"),
        (alg_id::ECDSA_P384, "ECDSA P-384"),
        (alg_id::ECDSA_P521, "ECDSA P-521"),
        (alg_id::ED25519, "Ed25519"),
        (alg_id::RSA_ENCRYPTION, "RSA"),
    ]
    .into_iter()
    .find(|(id, _)| id.as_ref() == algorithm)
    .map_or("unrecognised", |(_, name)| name)
}

const DER_SEQUENCE: u8 = 0x30;

/// Splits one DER element with tag `tag` off the front of `input`: its contents and the rest.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, rest) = if length < 0x80 {
        (usize::from(length), rest)
    } else {
        let count = usize::from(length & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// A self-signed certificate shaped like go-plugin's own (`mtls.go`): a CA (Terraform adds it to
/// its root pool and verifies the server against it), named `localhost` in CN and SAN (the name
/// Terraform verifies), for server and client authentication. The key is ECDSA P-256.
fn generate_server_cert() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    use rcgen::{BasicConstraints, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};

    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "orgsec");
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let now = SystemTime::now();
    params.not_before = (now - CERT_VALID_BEFORE_NOW).into();
    params.not_after = (now + CERT_VALID_AFTER_NOW).into();
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key))
}

/// Accepts exactly one client certificate, compared byte for byte, and checks the client's
/// handshake signatures against it. No path building: Terraform's certificate is self-signed,
/// and pinning it is the whole point.
#[derive(Debug)]
struct ExactClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ExactClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hint: the client sends the one certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Serving

/// A bound, TLS-ready plugin server that has not started serving yet.
#[derive(Debug)]
pub struct PluginServer {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Tls,
}

impl PluginServer {
    /// A server on `listener` (see [`listen`]) using `tls`.
    pub fn new(listener: TcpListener, tls: Tls) -> io::Result<PluginServer> {
        let addr = listener.local_addr()?;
        Ok(PluginServer { listener, addr, tls })
    }

    /// The address Terraform connects to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The line that tells Terraform where and how to connect; see [`handshake_line`].
    pub fn handshake_line(&self) -> String {
        handshake_line(self.addr, self.tls.server_cert_der())
    }

    /// Serves `tfplugin6.Provider` (with `provider`), `plugin.GRPCController`,
    /// `plugin.GRPCStdio` and `grpc.health.v1.Health` over mutual TLS. Returns `Ok` once
    /// Terraform has called `GRPCController/Shutdown`, or has closed every connection it opened,
    /// and the requests still running have finished (or [`SHUTDOWN_GRACE`] has passed).
    pub async fn run<P: Provider>(self, provider: P) -> anyhow::Result<()> {
        let PluginServer { listener, addr, tls } = self;
        let stopper = Stopper::new();

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving).await;

        let (connections, incoming) = mpsc::channel(8);
        let accepting =
            tokio::spawn(accept_connections(listener, TlsAcceptor::from(tls.config), stopper.clone(), connections));
        let incoming = ReceiverStream::new(incoming).map(Ok::<_, io::Error>);

        let serving = tonic::transport::Server::builder()
            .add_service(
                ProviderServer::new(provider)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
            )
            .add_service(GrpcControllerServer::new(Controller { stopper: stopper.clone() }))
            .add_service(GrpcStdioServer::new(Stdio { stopper: stopper.clone() }))
            .add_service(health_service)
            .serve_with_incoming_shutdown(incoming, stopper.stopped());
        let stopped = stopper.stopped();
        let grace_over = async move {
            stopped.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };

        info!(address = %addr, "serving Terraform plugin protocol {PROTOCOL_VERSION}");
        let outcome = tokio::select! {
            result = serving => result.context("the provider's gRPC server failed"),
            () = grace_over => {
                warn!("requests still running {SHUTDOWN_GRACE:?} after shutdown was asked for; stopping regardless");
                Ok(())
            }
        };
        accepting.abort();
        outcome
    }
}

/// Accepts TCP connections and completes their TLS handshakes off the accept path, so that a
/// slow or refused client holds up no one; hands the authenticated ones to the gRPC server.
async fn accept_connections(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stopper: Stopper,
    connections: mpsc::Sender<TlsConnection>,
) {
    let stopped = stopper.stopped();
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small request/response messages: without this each response waits for Terraform's
        // delayed ACK (about 40 ms), which made every RPC, and so every plan, slow.
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let stopper = stopper.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    debug!(%peer, "client authenticated");
                    let connection = TlsConnection { stream, _open: stopper.connection_opened() };
                    // Fails only when the server has stopped; the connection is then dropped.
                    let _ = connections.send(connection).await;
                }
                Ok(Err(error)) => warn!(
                    %peer,
                    %error,
                    "refused a connection: TLS handshake failed (only the certificate in PLUGIN_CLIENT_CERT is accepted)"
                ),
                Err(_) => warn!(%peer, "refused a connection: no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}"),
            }
        });
    }
}

/// Shared stop signal, and the count of open authenticated connections: when the last one
/// closes, Terraform is gone and the server stops.
#[derive(Debug, Clone)]
struct Stopper {
    inner: Arc<StopperInner>,
}

#[derive(Debug)]
struct StopperInner {
    stop: watch::Sender<bool>,
    open_connections: AtomicUsize,
}

impl Stopper {
    fn new() -> Stopper {
        let (stop, _) = watch::channel(false);
        Stopper { inner: Arc::new(StopperInner { stop, open_connections: AtomicUsize::new(0) }) }
    }

    fn stop(&self, reason: &str) {
        if !self.inner.stop.send_replace(true) {
            info!("{reason}: stopping the plugin server");
        }
    }

    /// Completes once [`Stopper::stop`] has been called (at once if it already was).
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.inner.stop.subscribe();
        async move {
            // An error means every sender is gone, which also means stopped.
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }

    fn connection_opened(&self) -> OpenConnection {
        self.inner.open_connections.fetch_add(1, Ordering::SeqCst);
        OpenConnection { stopper: self.clone() }
    }
}

/// Held by an authenticated connection for as long as it is open.
#[derive(Debug)]
struct OpenConnection {
    stopper: Stopper,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if self.stopper.inner.open_connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.stopper.stop("Terraform closed its connection");
        }
    }
}

/// A TLS connection the way tonic's server takes it: with [`Connected`].
struct TlsConnection {
    stream: TlsStream<TcpStream>,
    _open: OpenConnection,
}

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// `plugin.GRPCController`: Terraform's request to shut down.
#[derive(Debug)]
struct Controller {
    stopper: Stopper,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.stopper.stop("Terraform asked the provider to shut down");
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`: go-plugin forwards what a plugin writes to stdout and stderr through it.
/// This provider never writes to stdout after the handshake and its stderr reaches Terraform
/// directly, so the stream sends nothing; it stays open until the server stops.
#[derive(Debug)]
struct Stdio {
    stopper: Stopper,
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = ReceiverStream<Result<StdioData, Status>>;

    async fn stream_stdio(&self, _request: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        let (sender, receiver) = mpsc::channel(1);
        let stopped = self.stopper.stopped();
        tokio::spawn(async move {
            tokio::select! {
                () = stopped => {}
                () = sender.closed() => {}
            }
            // Dropping the sender ends the stream, which lets a graceful shutdown finish.
            drop(sender);
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// go-plugin ignores interrupts in the plugin: Ctrl-C reaches the whole process group, and
/// Terraform, which gets it too, stops its providers itself (`StopProvider`, then `Shutdown`).
#[cfg(unix)]
fn ignore_interrupts() -> io::Result<()> {
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut count: u64 = 0;
        while interrupts.recv().await.is_some() {
            count += 1;
            debug!(count, "ignoring an interrupt: Terraform stops the provider itself");
        }
    });
    Ok(())
}

#[cfg(windows)]
fn ignore_interrupts() -> io::Result<()> {
    let mut interrupts = tokio::signal::windows::ctrl_c()?;
    tokio::spawn(async move {
        let mut count: u64 = 0;
        while interrupts.recv().await.is_some() {
            count += 1;
            debug!(count, "ignoring an interrupt: Terraform stops the provider itself");
        }
    });
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn ignore_interrupts() -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use orgsec_proto::plugin::grpc_controller_client::GrpcControllerClient;
    use orgsec_proto::plugin::grpc_stdio_client::GrpcStdioClient;
    use orgsec_proto::tfplugin6;
    use orgsec_proto::tfplugin6::provider_client::ProviderClient;
    use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::task::JoinHandle;
    use tokio::time::timeout;
    use tokio_rustls::TlsConnector;
    use tonic::transport::{Channel, Endpoint};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    /// A certificate and key like those Terraform's go-plugin generates for each launch
    /// (`mtls.go`): ECDSA P-521, self-signed CA, `localhost`, client and server authentication.
    /// Made once for these tests (rcgen here cannot make P-521 keys); the key protects nothing.
    const TERRAFORM_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICNDCCAZWgAwIBAgIUJUDsg+Iva2PZz9xXJX2msPxwvbYwCgYIKoZIzj0EAwQw
KDESMBAGA1UECgwJSGFzaGlDb3JwMRIwEAYDVQQDDAlsb2NhbGhvc3QwIBcNMjUw
MTAxMDAwMDAwWhgPMjA1NTAxMDExMjAwMDBaMCgxEjAQBgNVBAoMCUhhc2hpQ29y
cDESMBAGA1UEAwwJbG9jYWxob3N0MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQB
8bRZ1NhV7Lx3GOmqGsRhI0/G+B9HGT8D+0vK6V6QbniiX31aktJco19PySXjDnR4
4cPkwZpnLhIRNBU5ufsZymYA0MNusFAkuQTd75jmrrf/G/r9+nSdeXq9u+E05TTq
NYdeZUJUnSnI1e6srhs3dc1TDXkf08psd9Cr0NjN+uIeBdWjWDBWMBQGA1UdEQQN
MAuCCWxvY2FsaG9zdDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwICrDAd
BgNVHSUEFjAUBggrBgEFBQcDAgYIKwYBBQUHAwEwCgYIKoZIzj0EAwQDgYwAMIGI
AkIA90toUjjezg92miXijr/T+fXDDQNWOpoQDA2x0Lrpai+5rVtxl/3SU3orcony
AKNrfAa0BQLlQn9Fd0XCQ7nWznoCQgCyhzt/vFnTUE9ZsPZgQqlIUVuIgtckTEH3
hWttFrCl3d0BzRviJt3xk8OoZBe599Dn19e4r3uNTWJPCP1igmM9HQ==
-----END CERTIFICATE-----
";
    const TERRAFORM_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIBTzhaoOdhR2qpyoqB
lA83Wk8Ks386g1Mg/kinXc40AZBgUQnYeq+5yLhBrSL6RfyjzGqItWdQznFBSomH
rOK78yehgYkDgYYABAHxtFnU2FXsvHcY6aoaxGEjT8b4H0cZPwP7S8rpXpBueKJf
fVqS0lyjX0/JJeMOdHjhw+TBmmcuEhE0FTm5+xnKZgDQw26wUCS5BN3vmOaut/8b
+v36dJ15er274TTlNOo1h15lQlSdKcjV7qyuGzd1zVMNeR/Tymx30KvQ2M364h4F
1Q==
-----END PRIVATE KEY-----
";

    const WAIT: Duration = Duration::from_secs(5);

    // -- a provider that answers GetProviderSchema and nothing else ----------------------------

    #[derive(Debug)]
    struct TestProvider;

    /// The provider schema version [`TestProvider`] reports, to recognise its answer.
    const TEST_SCHEMA_VERSION: i64 = 7;

    macro_rules! test_provider {
        ($($rpc:ident),* $(,)?) => {
            #[tonic::async_trait]
            impl Provider for TestProvider {
                type ListResourceStream = ReceiverStream<Result<tfplugin6::list_resource::Event, Status>>;
                type ReadStateBytesStream = ReceiverStream<Result<tfplugin6::read_state_bytes::Response, Status>>;
                type InvokeActionStream = ReceiverStream<Result<tfplugin6::invoke_action::Event, Status>>;

                async fn get_provider_schema(
                    &self,
                    _request: Request<tfplugin6::get_provider_schema::Request>,
                ) -> Result<Response<tfplugin6::get_provider_schema::Response>, Status> {
                    Ok(Response::new(tfplugin6::get_provider_schema::Response {
                        provider: Some(tfplugin6::Schema { version: TEST_SCHEMA_VERSION, block: None }),
                        ..Default::default()
                    }))
                }

                async fn validate_state_store_config(
                    &self,
                    _request: Request<tfplugin6::validate_state_store::Request>,
                ) -> Result<Response<tfplugin6::validate_state_store::Response>, Status> {
                    Err(Status::unimplemented("validate_state_store_config"))
                }

                async fn list_resource(
                    &self,
                    _request: Request<tfplugin6::list_resource::Request>,
                ) -> Result<Response<Self::ListResourceStream>, Status> {
                    Err(Status::unimplemented("list_resource"))
                }

                async fn read_state_bytes(
                    &self,
                    _request: Request<tfplugin6::read_state_bytes::Request>,
                ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
                    Err(Status::unimplemented("read_state_bytes"))
                }

                async fn write_state_bytes(
                    &self,
                    _request: Request<tonic::Streaming<tfplugin6::write_state_bytes::RequestChunk>>,
                ) -> Result<Response<tfplugin6::write_state_bytes::Response>, Status> {
                    Err(Status::unimplemented("write_state_bytes"))
                }

                async fn invoke_action(
                    &self,
                    _request: Request<tfplugin6::invoke_action::Request>,
                ) -> Result<Response<Self::InvokeActionStream>, Status> {
                    Err(Status::unimplemented("invoke_action"))
                }

                $(
                    async fn $rpc(
                        &self,
                        _request: Request<tfplugin6::$rpc::Request>,
                    ) -> Result<Response<tfplugin6::$rpc::Response>, Status> {
                        Err(Status::unimplemented(stringify!($rpc)))
                    }
                )*
            }
        };
    }

    test_provider!(
        get_metadata,
        validate_provider_config,
        validate_resource_config,
        validate_data_resource_config,
        upgrade_resource_state,
        get_resource_identity_schemas,
        upgrade_resource_identity,
        configure_provider,
        read_resource,
        plan_resource_change,
        apply_resource_change,
        import_resource_state,
        move_resource_state,
        read_data_source,
        generate_resource_config,
        validate_ephemeral_resource_config,
        open_ephemeral_resource,
        renew_ephemeral_resource,
        close_ephemeral_resource,
        validate_list_resource_config,
        get_functions,
        call_function,
        configure_state_store,
        lock_state,
        unlock_state,
        get_states,
        delete_state,
        plan_action,
        validate_action_config,
        stop_provider,
    );

    // -- Terraform's side: its certificate, the handshake line, mTLS connections ---------------

    struct ClientIdentity {
        pem: String,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    /// Terraform's identity: the fixed P-521 certificate and key above.
    fn terraform_identity() -> ClientIdentity {
        let cert = CertificateDer::from_pem_slice(TERRAFORM_CERT_PEM.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(TERRAFORM_KEY_PEM.as_bytes()).unwrap();
        ClientIdentity { pem: TERRAFORM_CERT_PEM.to_owned(), cert, key }
    }

    /// A fresh identity shaped like Terraform's, with an ECDSA P-384 key (rcgen here cannot make
    /// P-521 keys).
    fn client_identity() -> ClientIdentity {
        use rcgen::{BasicConstraints, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "HashiCorp");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.self_signed(&key).unwrap();
        ClientIdentity {
            pem: cert.pem(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// What go-plugin's client takes from the handshake line.
    struct Handshake {
        addr: SocketAddr,
        server_cert: CertificateDer<'static>,
    }

    fn parse_handshake(line: &str) -> Handshake {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 6, "handshake line {line:?}");
        assert_eq!(fields[..3], ["1", "6", "tcp"], "handshake line {line:?}");
        assert_eq!(fields[4], "grpc", "handshake line {line:?}");
        let addr: SocketAddr = fields[3].parse().unwrap();
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        let der = STANDARD_NO_PAD.decode(fields[5]).expect("unpadded standard base64");
        Handshake { addr, server_cert: CertificateDer::from(der) }
    }

    struct Running {
        handshake: Handshake,
        served: JoinHandle<anyhow::Result<()>>,
    }

    async fn start(client_cert_pem: &str) -> Running {
        let tls = Tls::new(client_cert_pem).unwrap();
        let server = PluginServer::new(listen(PortRange::ANY).await.unwrap(), tls).unwrap();
        let handshake = parse_handshake(&server.handshake_line());
        assert_eq!(handshake.addr, server.local_addr());
        let served = tokio::spawn(server.run(TestProvider));
        Running { handshake, served }
    }

    /// Go's client puts the handshake certificate alone in its root pool and verifies the name
    /// `localhost`; for one self-signed certificate that comes down to this pin.
    #[derive(Debug)]
    struct PinnedServerCert {
        expected: CertificateDer<'static>,
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for PinnedServerCert {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            assert_eq!(server_name.to_str(), "localhost");
            if end_entity.as_ref() == self.expected.as_ref() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    fn client_config(
        server_cert: &CertificateDer<'static>,
        identity: Option<&ClientIdentity>,
    ) -> Arc<rustls::ClientConfig> {
        let provider = crypto_provider();
        let algorithms = provider.signature_verification_algorithms;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServerCert { expected: server_cert.clone(), algorithms }));
        let mut config = match identity {
            Some(identity) => {
                builder.with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key()).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    async fn tls_connect(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(ServerName::try_from("localhost").unwrap(), tcp).await
    }

    /// Opens a TLS connection, sends the HTTP/2 preface and an empty SETTINGS frame, and returns
    /// the header of the server's first frame, or the error that ended the connection.
    async fn h2_probe(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<[u8; 9], String> {
        let exchange = async {
            let mut tls = tls_connect(addr, config).await?;
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
            tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await?;
            tls.flush().await?;
            let mut header = [0u8; 9];
            tls.read_exact(&mut header).await?;
            io::Result::Ok(header)
        };
        match timeout(WAIT, exchange).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("no answer".to_owned()),
        }
    }

    /// tonic's client has no TLS in this build, so each of its connections goes through a local
    /// plain-TCP relay that opens the mutual TLS connection to the server.
    async fn channel(handshake: &Handshake, identity: &ClientIdentity) -> Channel {
        let config = client_config(&handshake.server_cert, Some(identity));
        let server = handshake.addr;
        let relay = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let relay_addr = relay.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut plain, _)) = relay.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = tls_connect(server, config).await {
                        let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
                    }
                });
            }
        });
        Endpoint::from_shared(format!("http://{relay_addr}")).unwrap().connect().await.unwrap()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|window| window == needle)
    }

    // -- end to end ----------------------------------------------------------------------------

    #[tokio::test]
    async fn plugin_serves_terraform_over_mutual_tls_until_shutdown() {
        let terraform = terraform_identity();
        let running = start(&terraform.pem).await;
        let Handshake { addr, ref server_cert } = running.handshake;
        let channel = channel(&running.handshake, &terraform).await;

        // tfplugin6.Provider reaches the provider given to `run`.
        let schema = ProviderClient::new(channel.clone())
            .get_provider_schema(tfplugin6::get_provider_schema::Request {})
            .await
            .expect("GetProviderSchema over mutual TLS")
            .into_inner();
        assert_eq!(schema.provider.map(|p| p.version), Some(TEST_SCHEMA_VERSION));
        let status = ProviderClient::new(channel.clone())
            .stop_provider(tfplugin6::stop_provider::Request {})
            .await
            .expect_err("the test provider does not implement StopProvider");
        assert_eq!(status.code(), tonic::Code::Unimplemented);

        // go-plugin's health check.
        let health = || async {
            HealthClient::new(channel.clone())
                .check(HealthCheckRequest { service: "plugin".to_owned() })
                .await
                .expect("health check")
                .into_inner()
                .status
        };
        assert_eq!(health().await, ServingStatus::Serving as i32);

        // GRPCStdio: a stream that stays open and sends nothing.
        let mut stdio = GrpcStdioClient::new(channel.clone()).stream_stdio(()).await.expect("StreamStdio").into_inner();
        assert!(timeout(Duration::from_millis(200), stdio.message()).await.is_err(), "the stdio stream sent or ended");

        // Only Terraform's certificate gets in. The accepted probe is the control: same path,
        // right certificate, and the server answers with an HTTP/2 SETTINGS frame (type 4).
        let accepted = h2_probe(addr, client_config(server_cert, Some(&terraform))).await;
        assert_eq!(accepted.map(|header| header[3]), Ok(4), "Terraform's certificate is accepted");
        let stranger = client_identity();
        let refused = h2_probe(addr, client_config(server_cert, Some(&stranger))).await;
        assert!(refused.as_ref().is_err_and(|e| e.contains("alert")), "another certificate is refused: {refused:?}");
        let anonymous = h2_probe(addr, client_config(server_cert, None)).await;
        assert!(anonymous.as_ref().is_err_and(|e| e.contains("alert")), "no certificate is refused: {anonymous:?}");
        // Refusals leave the server running.
        assert_eq!(health().await, ServingStatus::Serving as i32);
        assert!(!running.served.is_finished());

        // Shutdown answers, then `run` returns Ok without waiting out the grace period: the open
        // stdio stream does not hold the graceful shutdown up.
        let asked = Instant::now();
        GrpcControllerClient::new(channel.clone()).shutdown(Empty {}).await.expect("Shutdown");
        let served = timeout(WAIT, running.served).await.expect("run returns after Shutdown").unwrap();
        assert!(served.is_ok(), "run ended with {served:?}");
        assert!(asked.elapsed() < SHUTDOWN_GRACE, "shutdown took {:?}", asked.elapsed());
        let stdio_end = timeout(WAIT, stdio.message()).await.expect("the stdio stream ends");
        assert!(!matches!(stdio_end, Ok(Some(_))), "the stdio stream sent {stdio_end:?}");

        // The port is closed.
        let mut closed = false;
        for _ in 0..50 {
            if TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "the listener is still open after shutdown");
    }

    #[tokio::test]
    async fn plugin_stops_when_terraform_disconnects_but_not_for_refused_clients() {
        let terraform = terraform_identity();
        let running = start(&terraform.pem).await;

        let refused = h2_probe(running.handshake.addr, client_config(&running.handshake.server_cert, None)).await;
        assert!(refused.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!running.served.is_finished(), "a refused client stopped the server");

        let channel = channel(&running.handshake, &terraform).await;
        ProviderClient::new(channel.clone())
            .get_provider_schema(tfplugin6::get_provider_schema::Request {})
            .await
            .expect("GetProviderSchema");
        assert!(!running.served.is_finished());

        drop(channel);
        let served = timeout(WAIT, running.served).await.expect("run returns once Terraform has gone").unwrap();
        assert!(served.is_ok(), "run ended with {served:?}");
    }

    // -- handshake line and certificates -------------------------------------------------------

    #[test]
    fn plugin_handshake_line_has_go_plugin_format() {
        let addr: SocketAddr = "127.0.0.1:1234".parse().unwrap();
        // Four bytes: standard base64 would pad them to "AQIDBA==".
        assert_eq!(handshake_line(addr, &[1, 2, 3, 4]), "1|6|tcp|127.0.0.1:1234|grpc|AQIDBA");
        assert_eq!(handshake_line(addr, &[0xfb, 0xff]), "1|6|tcp|127.0.0.1:1234|grpc|+/8");
    }

    #[tokio::test]
    async fn plugin_handshake_line_carries_the_server_certificate() {
        let tls = Tls::new(&client_identity().pem).unwrap();
        let server = PluginServer::new(listen(PortRange::ANY).await.unwrap(), tls).unwrap();
        let line = server.handshake_line();
        assert!(!line.contains(['\n', '=']), "{line:?}");
        let handshake = parse_handshake(&line);
        assert_eq!(handshake.addr, server.local_addr());
        assert_eq!(&handshake.server_cert, server.tls.server_cert_der());
    }

    #[test]
    fn plugin_server_certificate_is_what_go_plugin_clients_verify() {
        let tls = Tls::new(&client_identity().pem).unwrap();
        let der = tls.server_cert_der();
        ParsedCertificate::try_from(der).expect("a well-formed certificate");
        // subjectAltName dNSName "localhost": Terraform verifies the server as `localhost`.
        assert!(contains(der, b"\x82\x09localhost"));
        // basicConstraints cA TRUE: go-plugin's certificates are CAs, put in the root pool.
        assert!(contains(der, &[0x06, 0x03, 0x55, 0x1d, 0x13]));
        assert!(contains(der, &[0x30, 0x03, 0x01, 0x01, 0xff]));
        // extKeyUsage includes serverAuth (1.3.6.1.5.5.7.3.1), which Go checks.
        assert!(contains(der, &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]));
        // A fresh certificate each time.
        let again = Tls::new(&client_identity().pem).unwrap();
        assert_ne!(again.server_cert_der(), der);
    }

    #[test]
    fn plugin_tls_rejects_a_client_certificate_that_is_not_one() {
        let not_pem = Tls::new("hello").unwrap_err();
        assert!(matches!(not_pem, TlsError::ClientCertNotPem(_)), "{not_pem:?}");
        assert!(not_pem.to_string().starts_with("PLUGIN_CLIENT_CERT holds no PEM certificate"));

        let not_der = Tls::new("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(matches!(not_der, TlsError::ClientCertInvalid(_)), "{not_der:?}");
        assert!(not_der.to_string().contains("let Terraform start the provider"));
    }

    #[test]
    fn plugin_tls_accepts_terraforms_p521_certificate_only_with_a_provider_that_verifies_it() {
        let verifies_p521 = crypto_provider()
            .signature_verification_algorithms
            .all
            .iter()
            .any(|alg| alg.public_key_alg_id() == alg_id::ECDSA_P521);
        match Tls::new(TERRAFORM_CERT_PEM) {
            Ok(_) => assert!(verifies_p521, "accepted a key it cannot verify"),
            Err(error) => {
                assert!(!verifies_p521, "refused a key it can verify: {error}");
                assert!(matches!(error, TlsError::UnsupportedClientKey { key: "ECDSA P-521" }), "{error:?}");
                assert!(error.to_string().contains("aws-lc-rs"), "{error}");
            }
        }
    }

    #[test]
    fn plugin_der_element_reads_short_and_long_lengths() {
        assert_eq!(der_element(&[0x30, 0x02, 0xaa, 0xbb, 0xcc], 0x30), Some((&[0xaa, 0xbb][..], &[0xcc][..])));
        assert_eq!(der_element(&[0x30, 0x81, 0x01, 0xaa], 0x30), Some((&[0xaa][..], &[][..])));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend([7u8; 256]);
        assert_eq!(der_element(&long, 0x30).map(|(contents, rest)| (contents.len(), rest.len())), Some((256, 0)));
        assert_eq!(der_element(&[0x31, 0x00], 0x30), None, "wrong tag");
        assert_eq!(der_element(&[0x30, 0x03, 0xaa], 0x30), None, "truncated");
        assert_eq!(der_element(&[0x30, 0x80], 0x30), None, "indefinite length");
        assert_eq!(der_element(&[], 0x30), None);
    }

    // -- launch environment --------------------------------------------------------------------

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// The environment Terraform sets, with `changes` applied (`None` unsets).
    fn env_with(changes: &[(&str, Option<&str>)]) -> Result<PluginEnv, EnvError> {
        let mut vars: HashMap<String, String> = [
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
            ("PLUGIN_CLIENT_CERT", CERT_PEM),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (name, value) in changes {
            match value {
                Some(value) => vars.insert((*name).to_owned(), (*value).to_owned()),
                None => vars.remove(*name),
            };
        }
        PluginEnv::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn plugin_env_reads_terraforms_launch_environment() {
        assert_eq!(
            env_with(&[]),
            Ok(PluginEnv { client_cert_pem: CERT_PEM.to_owned(), ports: PortRange { min: 10000, max: 25000 } })
        );
        let any = env_with(&[("PLUGIN_MIN_PORT", None), ("PLUGIN_MAX_PORT", Some(""))]).unwrap();
        assert_eq!(any.ports, PortRange::ANY);
        assert!(env_with(&[("PLUGIN_PROTOCOL_VERSIONS", Some(" 6 "))]).is_ok());
        assert!(env_with(&[("PLUGIN_PROTOCOL_VERSIONS", Some("x,6,7"))]).is_ok(), "non-numbers are skipped");
    }

    #[test]
    fn plugin_env_refuses_a_launch_by_hand() {
        for cookie in [None, Some(""), Some("wrong")] {
            let error = env_with(&[(MAGIC_COOKIE_KEY, cookie)]).unwrap_err();
            assert_eq!(error, EnvError::NotLaunchedByTerraform);
            assert!(error.to_string().contains("Terraform starts itself"), "{error}");
        }
    }

    #[test]
    fn plugin_env_requires_protocol_6() {
        let error = env_with(&[("PLUGIN_PROTOCOL_VERSIONS", Some("4,5"))]).unwrap_err();
        assert_eq!(error, EnvError::Version6NotOffered { offered: "4,5".to_owned() });
        assert_eq!(
            error.to_string(),
            "PLUGIN_PROTOCOL_VERSIONS does not offer version 6 (it offers \"4,5\"): this provider speaks Terraform \
             plugin protocol 6 only; use Terraform 1.0 or newer"
        );
        let error = env_with(&[("PLUGIN_PROTOCOL_VERSIONS", None)]).unwrap_err();
        assert_eq!(error, EnvError::NoProtocolVersions);
        assert!(error.to_string().ends_with("use Terraform 1.0 or newer"), "{error}");
    }

    #[test]
    fn plugin_env_checks_the_port_range() {
        for bad in ["abc", "-1", "65536"] {
            let error = env_with(&[("PLUGIN_MAX_PORT", Some(bad))]).unwrap_err();
            assert_eq!(error, EnvError::BadPort { name: "PLUGIN_MAX_PORT", value: bad.to_owned() });
            assert!(error.to_string().starts_with(&format!("PLUGIN_MAX_PORT is \"{bad}\"")), "{error}");
        }
        let error = env_with(&[("PLUGIN_MIN_PORT", Some("3000")), ("PLUGIN_MAX_PORT", Some("2000"))]).unwrap_err();
        assert_eq!(error, EnvError::PortRangeReversed { min: 3000, max: 2000 });
        assert!(error.to_string().contains("greater than PLUGIN_MAX_PORT"), "{error}");
    }

    #[test]
    fn plugin_env_requires_terraforms_certificate() {
        let error = env_with(&[("PLUGIN_CLIENT_CERT", None)]).unwrap_err();
        assert_eq!(error, EnvError::NoClientCert);
        assert!(error.to_string().contains("let Terraform start the provider"), "{error}");
    }

    // -- listening -----------------------------------------------------------------------------

    #[tokio::test]
    async fn plugin_listens_on_localhost_within_the_range() {
        let any = listen(PortRange::ANY).await.unwrap().local_addr().unwrap();
        assert_eq!(any.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(any.port(), 0);

        // The first port of the range is taken: the next free one is used.
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let range = PortRange { min: port, max: port.saturating_add(50) };
        let next = listen(range).await.unwrap().local_addr().unwrap();
        assert_eq!(next.ip(), Ipv4Addr::LOCALHOST);
        assert!(next.port() > port && next.port() <= range.max, "{next} outside {range:?}");

        // Every port of the range is taken.
        let error = listen(PortRange { min: port, max: port }).await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("could not listen on 127.0.0.1 on any port from {port} to {port}")),
            "{error}"
        );
        assert!(error.ends_with("widen PLUGIN_MIN_PORT and PLUGIN_MAX_PORT"), "{error}");
    }
}
