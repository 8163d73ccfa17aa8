//! `terraform-provider-orgsec`: the Terraform provider for an AWS Organization's security
//! baseline. Terraform starts it; run by hand, it says what it is and how it is used.
//!
//! The plugin server (tfplugin6 over gRPC with AutoMTLS) is the provider issue's work; until
//! then the binary refuses to pretend: it explains itself and exits non-zero.

/// The go-plugin handshake cookie Terraform sets for providers.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn main() -> std::process::ExitCode {
    let launched_by_terraform = std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE);
    if !launched_by_terraform {
        eprintln!(
            "terraform-provider-orgsec {}\n\nThis is a Terraform provider plugin: Terraform starts it, it is not meant to be run by hand.\n\
             Declare it in a configuration:\n\n  terraform {{\n    required_providers {{\n      orgsec = {{ source = \"orgsec/orgsec\" }}\n    }}\n  }}\n",
            env!("CARGO_PKG_VERSION")
        );
        return std::process::ExitCode::FAILURE;
    }
    eprintln!("terraform-provider-orgsec: the plugin server is not built into this version yet");
    std::process::ExitCode::FAILURE
}
