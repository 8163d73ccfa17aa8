//! `terraform-provider-orgsec`: the Terraform provider for an AWS Organization's security
//! baseline. Terraform starts it and speaks the plugin protocol v6 to it; run by hand, it says what
//! it is and how it is used.

use terraform_provider_orgsec::framework::Provider;
use terraform_provider_orgsec::grpc::ProviderService;
use terraform_provider_orgsec::{data_sources, plugin, resources};

/// The go-plugin handshake cookie Terraform sets for providers.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn main() -> std::process::ExitCode {
    let launched_by_terraform = std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE);
    if !launched_by_terraform {
        eprintln!(
            "terraform-provider-orgsec {}\n\n\
             This is a Terraform provider plugin: Terraform starts it, it is not meant to be run by hand.\n\
             Declare it in a configuration:\n\n  terraform {{\n    required_providers {{\n      \
             orgsec = {{ source = \"orgsec/orgsec\" }}\n    }}\n  }}\n\n\
             To use a local build, point a dev_overrides block in your Terraform CLI configuration at\n\
             the folder holding this binary (see go.mod-free-notes.md).",
            env!("CARGO_PKG_VERSION")
        );
        return std::process::ExitCode::FAILURE;
    }
    // stdout carries the handshake line only; everything else goes to stderr, which Terraform
    // records in its log (TF_LOG=debug).
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORGSEC_PROVIDER_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-orgsec: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let provider = Provider::default().with_resources(resources::all()).with_data_sources(data_sources::all());
    match runtime.block_on(plugin::serve(ProviderService::new(provider))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-orgsec: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
