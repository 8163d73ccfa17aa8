//! `orgsec`: the orchestrator that runs in an AWS Organization's delegated-admin security
//! account. Today: settings, the store, the playbook catalogue, remediation bindings, bearer
//! token auth, and the gRPC API that serves them (`orgsec serve`). Enrollment, collection,
//! scoring and remediation arrive with their issues.
//!
//! Layers, from the outside in: `main.rs` (the CLI) and [`api`] (gRPC) translate; [`service`]
//! holds the operations, deciding with [`auth`] who may do what and with [`binding`] and
//! [`playbooks`] what is valid; [`store`] alone knows SQL.

pub mod api;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod binding;
pub mod catalogue;
pub mod collect;
pub mod demo;
pub mod dispatch;
pub mod enroll;
pub mod evidence;
pub mod finding;
pub mod jobs;
pub mod metrics;
pub mod monitor;
pub mod normalize;
pub mod notify;
pub mod playbooks;
pub mod posture;
pub mod remediate;
pub mod render;
pub mod rounds;
pub mod score;
pub mod service;
pub mod settings;
pub mod store;
