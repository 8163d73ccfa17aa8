//! The provider itself, as plain Rust: its schema, configuration, and (as they land) its
//! resources and data sources. Knows nothing of protobuf or gRPC.

use std::sync::RwLock;

use super::config::{self, ProviderConfig};
use super::data_source::DataSource;
use super::diag::Diagnostics;
use super::resource::{Ctx, Resource};
use super::schema::Schema;
use crate::aws::Aws;
use crate::orchestrator::Orchestrator;
use crate::tfvalue::Value;

/// Source of environment variables (the process environment, or a map in tests).
pub type Env = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Provider {
    env: Env,
    configured: RwLock<Option<ProviderConfig>>,
    aws: RwLock<Option<Aws>>,
    orchestrator: RwLock<Option<Orchestrator>>,
    resources: Vec<Box<dyn Resource>>,
    data_sources: Vec<Box<dyn DataSource>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("configured", &self.configured).finish_non_exhaustive()
    }
}

impl Default for Provider {
    fn default() -> Self {
        Provider::new(Box::new(|k| std::env::var(k).ok()))
    }
}

impl Provider {
    pub fn new(env: Env) -> Provider {
        Provider {
            env,
            configured: RwLock::new(None),
            aws: RwLock::new(None),
            orchestrator: RwLock::new(None),
            resources: Vec::new(),
            data_sources: Vec::new(),
        }
    }

    pub fn schema(&self) -> Schema {
        config::schema()
    }

    /// Resource type names, e.g. `orgsec_securityhub_account`.
    pub fn resource_types(&self) -> Vec<&'static str> {
        self.resources.iter().map(|r| r.type_name()).collect()
    }

    /// The provider with these managed resources offered.
    pub fn with_resources(mut self, r: Vec<Box<dyn Resource>>) -> Self {
        self.resources = r;
        self
    }

    /// The managed resource named `type_name`, if the provider offers it.
    pub fn resource(&self, type_name: &str) -> Option<&dyn Resource> {
        self.resources.iter().find(|r| r.type_name() == type_name).map(|r| &**r)
    }

    /// The provider with these data sources offered.
    pub fn with_data_sources(mut self, d: Vec<Box<dyn DataSource>>) -> Self {
        self.data_sources = d;
        self
    }

    /// Data source type names, e.g. `orgsec_organization`.
    pub fn data_source_types(&self) -> Vec<&'static str> {
        self.data_sources.iter().map(|d| d.type_name()).collect()
    }

    /// The data source named `type_name`, if the provider offers it.
    pub fn data_source(&self, type_name: &str) -> Option<&dyn DataSource> {
        self.data_sources.iter().find(|d| d.type_name() == type_name).map(|d| &**d)
    }

    /// The provider already configured with `aws`, as if ConfigureProvider had succeeded: for
    /// embedding and tests.
    pub fn configured_with(self, aws: Aws, orchestrator: Option<Orchestrator>) -> Self {
        set(&self.aws, Some(aws));
        set(&self.orchestrator, orchestrator);
        self
    }

    /// Checks the provider block as written (values may still be unknown).
    pub fn validate_config(&self, config: &Value) -> Diagnostics {
        config::from_value(config, &*self.env).1
    }

    /// Accepts the provider block for the rest of the run: validates it, connects to AWS and checks
    /// the credentials (after assuming the role), so that a bad configuration fails here, once,
    /// with one clear error.
    pub async fn configure(&self, config: &Value) -> Diagnostics {
        let (c, mut d) = config::from_value(config, &*self.env);
        if d.has_errors() {
            return d;
        }
        if let Some(o) = &c.orchestrator {
            match Orchestrator::new(&o.endpoint, o.token.as_deref()) {
                Ok(orch) => set(&self.orchestrator, Some(orch)),
                Err(why) => {
                    d.error_at(
                        super::AttrPath::root("orchestrator").attr("endpoint"),
                        "Invalid orchestrator endpoint",
                        why,
                    );
                    return d;
                }
            }
        }
        match Aws::connect(&c).await {
            Ok(aws) => {
                tracing::info!(account = %aws.account_id, region = %aws.region, "provider configured");
                set(&self.aws, Some(aws));
                set(&self.configured, Some(c));
            }
            Err(why) => d.error("Cannot connect to AWS", why),
        }
        d
    }

    /// What resource calls need; an error when ConfigureProvider has not succeeded.
    pub fn ctx(&self) -> Result<Ctx, Diagnostics> {
        let aws = match self.aws.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match aws {
            Some(aws) => {
                let orchestrator = match self.orchestrator.read() {
                    Ok(o) => o.clone(),
                    Err(poisoned) => poisoned.into_inner().clone(),
                };
                Ok(Ctx { aws, orchestrator })
            }
            None => {
                let mut d = Diagnostics::default();
                d.error("Provider not configured", "The orgsec provider was used before it was configured.");
                Err(d)
            }
        }
    }

    /// The configuration accepted by [`Provider::configure`], if any.
    pub fn config(&self) -> Option<ProviderConfig> {
        match self.configured.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn set<T>(slot: &RwLock<T>, value: T) {
    match slot.write() {
        Ok(mut s) => *s = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}
