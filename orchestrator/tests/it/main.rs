//! Integration tests of the orgsec orchestrator: one binary, a module per area.

// The store against SQLite, and PostgreSQL when ORGSEC_TEST_POSTGRES_URL is set.
mod store;
// The gRPC API through a tonic client against an in-process server: semantics and auth.
mod api;
// The `orgsec` binary: serve's ready line, bindings put/list/delete, playbooks, tokens.
mod cli;
// Shared helpers: stores on each backend, bindings.
mod support;
