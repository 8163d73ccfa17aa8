//! Integration tests of the orgsec orchestrator: one binary, a module per area.

// The store against SQLite, and PostgreSQL when ORGSEC_TEST_POSTGRES_URL is set.
mod store;
// The gRPC API through a tonic client against an in-process server: semantics and auth.
mod api;
// The `orgsec` binary: serve's ready line, bindings put/list/delete, playbooks, tokens.
mod cli;
// Prometheus metrics: the AWS call counter against the emulator, and `/metrics` over HTTP/1.1.
mod metrics;
// Shared helpers: stores on each backend, bindings.
mod support;
// Enrollment against the in-process emulator: discovery, memberships, idempotency, invitations.
mod enroll;
// Collection from the demo org: every finding of the four sources, scores, malformed findings.
mod sync;
// `orgsec sync` killed with SIGKILL at random points and rerun: nothing lost or stored twice.
mod crash;
// Remediation playbooks on the demo org: plan, idempotent execute, verify, refusals.
mod remediate;
// Remediation jobs and the audit log: idempotency, leases, approvals, retries, breaker, crashes.
mod jobs;
// The closed loop on the demo org: binding, dispatch, worker, Security Hub marked, score up.
mod closed_loop;
// Notifications against local receivers: formats, signatures, retries, dead targets.
mod notify;
// The monitor's change log and the full assessments it triggers.
mod monitor;
// Evidence bundles: contents, verification, and a flipped byte anywhere found and placed.
mod evidence;
