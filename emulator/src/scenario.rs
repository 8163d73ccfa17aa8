//! Scenarios.

use crate::world::{World, WorldConfig};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("unknown scenario {0}")]
    Unknown(String),
}

pub fn load(name: &str, config: WorldConfig, seed: u64) -> Result<World, ScenarioError> {
    let _ = (config, seed);
    Err(ScenarioError::Unknown(name.to_string()))
}
