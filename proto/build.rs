//! Generates the Rust bindings for the protocol definitions in this crate.
//!
//! The protobuf compiler comes from the `protoc-bin-vendored` crate, together
//! with the well-known `google/protobuf/*.proto` includes, so building needs
//! nothing installed on the machine.

use std::path::PathBuf;

const PROTOS: [&str; 9] = [
    "tfplugin6.proto",
    "grpc_controller.proto",
    "grpc_stdio.proto",
    "orgsec/v1/accounts.proto",
    "orgsec/v1/bindings.proto",
    "orgsec/v1/evidence.proto",
    "orgsec/v1/findings.proto",
    "orgsec/v1/posture.proto",
    "orgsec/v1/remediation.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| manifest_dir.join(p)).collect();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    // Setting the PROTOC variable for this process would need `unsafe`
    // (`std::env::set_var`), which the workspace forbids, so the vendored
    // binary is handed to prost directly instead.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let includes = [manifest_dir, protoc_bin_vendored::include_path()?];

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &protos, &includes)?;
    Ok(())
}
