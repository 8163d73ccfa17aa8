//! The contract every managed resource implements. The framework (see [`crate::grpc`]) turns
//! Terraform's RPCs into these calls: it decodes and encodes values, computes plans from the
//! schema (unknown computed values, requires-replace, use-state-for-unknown) and maps the
//! outcomes back. A resource only talks to AWS.

use std::future::Future;
use std::pin::Pin;

use super::diag::Diagnostics;
use super::identity::Identity;
use super::schema::Schema;
use crate::aws::Aws;
use crate::orchestrator::Orchestrator;
use crate::tfvalue::Value;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a resource call may use: the configured AWS clients, and the orchestrator's API when the
/// provider block names one.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub aws: Aws,
    pub orchestrator: Option<Orchestrator>,
}

pub trait Resource: Send + Sync {
    /// `orgsec_securityhub_account`.
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Opts the resource in to resource identity (Terraform 1.12+, `import { identity = {...} }`),
    /// naming the state attribute that holds its import id, e.g. `Some(Identity::Aws("id"))`. The
    /// framework derives, checks and returns the identity on every call
    /// (see [`super::identity`]); an identity import calls [`Resource::import`] with its `id`.
    fn identity(&self) -> Option<Identity> {
        None
    }

    /// Checks beyond types and required-ness, each diagnostic on its attribute. Values may be
    /// unknown here: skip those.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Creates the resource from the planned state (unknown computed attributes included) and
    /// returns the new state, every attribute known.
    fn create<'a>(&'a self, ctx: &'a Ctx, planned: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>>;

    /// Reads the current state; `Ok(None)` when the resource no longer exists (Terraform then
    /// drops it from state and plans to create it again).
    fn read<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>>;

    /// Checks a planned create or update against the outside world once the provider is
    /// configured (for example, a playbook name against the orchestrator's catalogue). Errors
    /// fail the plan. Values may be unknown: skip those.
    fn check_plan<'a>(&'a self, _ctx: &'a Ctx, _planned: &'a Value) -> BoxFuture<'a, Diagnostics> {
        Box::pin(async { Diagnostics::default() })
    }

    /// Applies an in-place change and returns the new state.
    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: &'a Value,
        planned: &'a Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;

    /// Deletes the resource; a resource that is already gone is a success.
    fn delete<'a>(&'a self, ctx: &'a Ctx, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>>;

    /// Turns an import id into a state that [`Resource::read`] can complete (often just the id
    /// attributes set and everything else null).
    fn import<'a>(&'a self, ctx: &'a Ctx, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>>;
}
