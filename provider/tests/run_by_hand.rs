//! Run by hand (no magic cookie), the provider says what it is and how it is used, prints nothing on
//! stdout, and exits non-zero.

#[test]
fn run_by_hand_the_binary_explains_itself() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_terraform-provider-orgsec"))
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .expect("run the provider binary");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "stdout is reserved for the handshake line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Terraform provider plugin") && err.contains("orgsec/orgsec"), "{err}");
}
