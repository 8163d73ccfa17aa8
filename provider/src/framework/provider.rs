//! The provider itself, as plain Rust: its schema, configuration, and (as they land) its
//! resources and data sources. Knows nothing of protobuf or gRPC.

use std::sync::RwLock;

use super::config::{self, ProviderConfig};
use super::diag::Diagnostics;
use super::schema::Schema;
use crate::tfvalue::Value;

/// Source of environment variables (the process environment, or a map in tests).
pub type Env = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Provider {
    env: Env,
    configured: RwLock<Option<ProviderConfig>>,
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
        Provider { env, configured: RwLock::new(None) }
    }

    pub fn schema(&self) -> Schema {
        config::schema()
    }

    /// Resource type names, e.g. `orgsec_securityhub_account`.
    pub fn resource_types(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Data source type names.
    pub fn data_source_types(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Checks the provider block as written (values may still be unknown).
    pub fn validate_config(&self, config: &Value) -> Diagnostics {
        config::from_value(config, &*self.env).1
    }

    /// Accepts the provider block for the rest of the run.
    pub fn configure(&self, config: &Value) -> Diagnostics {
        let (c, d) = config::from_value(config, &*self.env);
        if !d.has_errors() {
            match self.configured.write() {
                Ok(mut slot) => *slot = Some(c),
                Err(poisoned) => *poisoned.into_inner() = Some(c),
            }
        }
        d
    }

    /// The configuration accepted by [`Provider::configure`], if any.
    pub fn config(&self) -> Option<ProviderConfig> {
        match self.configured.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
