//! terraform-provider-orgsec: a Terraform provider for an AWS Organization's security baseline,
//! speaking the Terraform plugin protocol v6 without HashiCorp's Go SDKs.
//!
//! - [`plugin`]: the go-plugin side: handshake, AutoMTLS, serving gRPC until Terraform says stop.
//! - [`tfvalue`]: Terraform's value model and its msgpack / JSON encodings.
//! - [`framework`]: schemas, diagnostics and the provider logic, free of protobuf types.
//! - [`grpc`]: the tfplugin6 service; it only translates between protobuf and [`framework`].
//! - [`aws`]: the one place that builds AWS clients; [`orchestrator`]: the one client of the
//!   orchestrator's API.

pub mod aws;
pub mod data_sources;
pub mod docs;
pub mod framework;
pub mod grpc;
pub mod orchestrator;
pub mod plugin;
pub mod resources;
pub mod tfvalue;
