//! Compiles the orchestrator API's protocol buffers (`proto/orgsec/v1/`) into an encoded
//! `FileDescriptorSet` for gRPC server reflection. The Rust types themselves come from the
//! `orgsec-proto` crate; this only records what reflection tells clients such as `grpcurl`.
//!
//! `protoc` comes from `protoc-bin-vendored`, so building needs nothing installed.

use std::path::PathBuf;
use std::process::Command;

const PROTOS: [&str; 6] = [
    "orgsec/v1/accounts.proto",
    "orgsec/v1/bindings.proto",
    "orgsec/v1/evidence.proto",
    "orgsec/v1/findings.proto",
    "orgsec/v1/posture.proto",
    "orgsec/v1/remediation.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("orgsec_v1_descriptor.bin");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(proto).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let status = Command::new(protoc_bin_vendored::protoc_bin_path()?)
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("-I{}", protoc_bin_vendored::include_path()?.display()))
        .args(PROTOS)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed ({status}) compiling {PROTOS:?}").into());
    }
    Ok(())
}
