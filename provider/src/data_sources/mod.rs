//! Data sources, one file each: schema (a description on every attribute), then read.

pub mod organization;
pub mod posture;

use crate::framework::DataSource;

/// Every data source the provider offers.
pub fn all() -> Vec<Box<dyn DataSource>> {
    vec![Box::new(organization::Organization), Box::new(posture::Posture)]
}
