//! The contract every data source implements. The framework (see [`crate::grpc`]) decodes the
//! configuration, calls [`DataSource::read`] and checks that the result is wholly known and
//! keeps what the configuration set.

use super::diag::Diagnostics;
use super::resource::{BoxFuture, Ctx};
use super::schema::Schema;
use crate::tfvalue::Value;

pub trait DataSource: Send + Sync {
    /// `orgsec_organization`.
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks beyond types and required-ness, each diagnostic on its attribute. Values may be
    /// unknown here: skip those.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Reads the data: the configuration with every computed attribute filled in. Terraform
    /// only calls this once the configuration is wholly known.
    fn read<'a>(&'a self, ctx: &'a Ctx, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>>;
}
