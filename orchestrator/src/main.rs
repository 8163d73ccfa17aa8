//! `orgsec`: enroll member accounts, aggregate findings, score, remediate and export evidence
//! from the delegated-admin security account.
//!
//! The commands arrive with the orchestrator issue. Until then the binary only reports its
//! version, so that nothing pretends to work.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("orgsec {}", env!("CARGO_PKG_VERSION"));
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!(
        "orgsec {}: no commands are built into this version yet.\n\
         To explore the emulated organization meanwhile, run: cargo run --locked -p orgsec-emulator -- --scenario demo",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::FAILURE
}
