//! orgsec-emulator: an AWS emulator on loopback that speaks the real wire protocols of
//! Organizations, STS, IAM, EC2, S3, S3 Control, Security Hub, GuardDuty, Config and IAM Access
//! Analyzer over one coherent world, so that the real AWS SDKs and real Terraform talk to it
//! unchanged.
//!
//! Run it in-process (tests, `orgsec demo`):
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await?;
//! println!("AWS_ENDPOINT_URL={}", em.url());
//! em.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! or as the `orgsec-emulator` binary.

pub mod admin;
pub mod error;
pub mod faults;
pub mod identity;
pub mod scenario;
pub mod server;
pub mod services;
pub mod wire;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

pub use error::AwsError;
pub use scenario::ScenarioError;
pub use world::{World, WorldConfig};

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub world: RwLock<World>,
    /// The world as loaded, for `/_emulator/reset`.
    pub initial: World,
    pub faults: Mutex<faults::Faults>,
    pub max_body_bytes: usize,
    pub request_seq: AtomicU64,
}

/// Settings for an emulator instance.
#[derive(Debug, Clone)]
pub struct Builder {
    scenario: String,
    listen: SocketAddr,
    rate_limits: bool,
    world: WorldConfig,
    max_body_bytes: usize,
    seed: u64,
    faults: Vec<faults::FaultRule>,
    rate_overrides: Vec<(String, faults::Rate)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            scenario: "demo".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_limits: true,
            world: WorldConfig::default(),
            max_body_bytes: 8 * 1024 * 1024,
            seed: 1,
            faults: Vec::new(),
            rate_overrides: Vec::new(),
        }
    }
}

impl Builder {
    /// `demo`, `generate:accounts=N,resources=M,seed=S`, or a path to a TOML scenario.
    pub fn scenario(mut self, s: impl Into<String>) -> Self {
        self.scenario = s.into();
        self
    }

    /// Address to listen on; port 0 picks a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Enforce per-(account, region, operation) rate limits (on by default).
    pub fn rate_limits(mut self, on: bool) -> Self {
        self.rate_limits = on;
        self
    }

    /// Delay between a change and the findings it causes (default 0).
    pub fn evaluation_delay_ms(mut self, ms: i64) -> Self {
        self.world.evaluation_delay_ms = ms;
        self
    }

    /// How long a newly enabled standard stays PENDING (default 0).
    pub fn standards_ready_ms(mut self, ms: i64) -> Self {
        self.world.standards_ready_ms = ms;
        self
    }

    /// Largest request body accepted (default 8 MiB); larger bodies get the protocol's error.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Seed for ids and fault rolls.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a fault rule (also settable at run time through `/_emulator/faults`).
    pub fn fault(mut self, rule: faults::FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Overrides the rate limit of `service:Operation` (or `service:*`).
    pub fn rate_limit(mut self, key: impl Into<String>, rate: faults::Rate) -> Self {
        self.rate_overrides.push((key.into(), rate));
        self
    }

    /// Loads the scenario and builds the shared state without serving it.
    pub fn build(self) -> Result<Arc<Shared>, ScenarioError> {
        let world = scenario::load(&self.scenario, self.world.clone(), self.seed)?;
        let mut f = faults::Faults::new(self.rate_limits, self.seed);
        f.rules = self.faults;
        f.overrides = self.rate_overrides.into_iter().collect();
        Ok(Arc::new(Shared {
            initial: world.clone(),
            world: RwLock::new(world),
            faults: Mutex::new(f),
            max_body_bytes: self.max_body_bytes,
            request_seq: AtomicU64::new(0),
        }))
    }

    /// Loads the scenario, binds, and serves in the background on the current tokio runtime.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let listen = self.listen;
        let shared = self.build()?;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| StartError::Bind(listen, e))?;
        let addr = listener.local_addr().map_err(|e| StartError::Bind(listen, e))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server::serve(listener, shared.clone(), rx));
        Ok(Emulator { addr, shared, shutdown: Some(tx), task: Some(task) })
    }
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `http://127.0.0.1:PORT`: the one endpoint for every service.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to the shared state (tests, the demo).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
