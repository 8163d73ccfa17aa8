//! The provider's own model, free of protobuf types: schemas, diagnostics with attribute paths,
//! resource identity, and the provider configuration. [`crate::grpc`] translates between this and tfplugin6.

pub mod config;
pub mod data_source;
pub mod diag;
pub mod identity;
pub mod plan;
pub mod provider;
pub mod resource;
pub mod schema;

pub use data_source::DataSource;
pub use diag::{AttrPath, Diagnostic, Diagnostics, Severity};
pub use identity::Identity;
pub use provider::Provider;
pub use resource::{BoxFuture, Ctx, Resource};
pub use schema::{Attribute, Block, NestedBlock, Nesting, Schema};
