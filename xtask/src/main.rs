//! Development commands, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy, every Rust test, the botocore
//!   second-client suite, the acceptance suite with real Terraform, and the benchmarks in quick
//!   mode. `.ci/run` calls exactly this.
//! - `test`: the Rust tests (the orchestrator's also on a throwaway PostgreSQL), the botocore
//!   suite and the acceptance suite, without lints.
//! - `bench`: the benchmarks in release mode with full-size inputs (figures for
//!   docs/benchmarks.md). The provider benchmark needs Terraform, which `scripts/acceptance.sh`
//!   installs into .venv.
//! - `demo`: `orgsec demo`, the whole loop on the emulated demo organization.
//! - `docs`: regenerates the provider reference in docs/provider/ from the schemas and examples/
//!   (a test fails when it is stale).

use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => {
            step("formatting", &["cargo", "fmt", "--all", "--", "--check"])?;
            step("clippy", &["cargo", "clippy", "--locked", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
            tests()?;
            step(
                "benchmarks (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "emulator-findings", "--quick"],
            )?;
            step(
                "rescoring benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "rescoring", "--quick"],
            )?;
            step(
                "ingest benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "ingest", "--quick"],
            )?;
            step(
                "sync benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "sync", "--quick"],
            )?;
            // Installs Chromium with apt when it is missing.
            step("demo report in headless Chromium", &["bash", "scripts/check-report.sh"])?;
            step(
                "remediation benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "remediation", "--quick"],
            )?;
            step(
                "fix latency benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "fix-latency", "--quick"],
            )?;
            // Uses the debug provider and the Terraform that the acceptance step built and installed.
            step(
                "provider benchmark (quick mode)",
                &["cargo", "run", "--locked", "-q", "-p", "orgsec-bench", "--", "provider", "--quick"],
            )?;
            println!("\nci: all checks passed");
            Ok(())
        }
        Some("test") => tests(),
        Some("bench") => {
            step(
                "emulator findings throughput (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "emulator-findings"],
            )?;
            step(
                "ingest of 1,000,000 findings (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "ingest"],
            )?;
            step(
                "sync of 200 accounts under rate limits (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "sync"],
            )?;
            step(
                "10,000 remediations across 1,000 accounts (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "remediation"],
            )?;
            step(
                "fix latency of orgsec serve (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "fix-latency"],
            )?;
            // The provider benchmark runs the provider built with its own profile.
            step(
                "provider build (release)",
                &["cargo", "build", "--locked", "--release", "-p", "terraform-provider-orgsec"],
            )?;
            step(
                "provider vs terraform_data (release)",
                &["cargo", "run", "--locked", "--release", "-q", "-p", "orgsec-bench", "--", "provider"],
            )
        }
        Some("demo") => step(
            "orgsec demo on the emulated demo organization",
            &["cargo", "run", "--locked", "-q", "-p", "orgsec", "--", "demo"],
        ),
        Some("docs") => {
            // The docs test writes the pages instead of comparing them when this is set.
            env_step(
                "provider reference (docs/provider)",
                &["cargo", "test", "--locked", "-q", "-p", "terraform-provider-orgsec", "--test", "docs"],
                ("ORGSEC_UPDATE_DOCS", "1"),
            )
        }
        other => {
            eprintln!("usage: cargo xtask <ci|test|bench|demo|docs>");
            if let Some(o) = other {
                bail!("unknown command '{o}'");
            }
            bail!("no command given")
        }
    }
}

fn tests() -> anyhow::Result<()> {
    step("rust tests", &["cargo", "test", "--locked", "--workspace"])?;
    // The orchestrator's store tests again, against a throwaway PostgreSQL (installed with apt
    // when its binaries are missing).
    step(
        "orchestrator tests on PostgreSQL",
        &["bash", "scripts/with-postgres.sh", "cargo", "test", "--locked", "-q", "-p", "orgsec"],
    )?;
    step("botocore second-client tests", &["bash", "scripts/botocore-tests.sh"])?;
    step("acceptance tests with real Terraform", &["bash", "scripts/acceptance.sh"])
}

fn step(name: &str, cmd: &[&str]) -> anyhow::Result<()> {
    run(name, Command::new(cmd[0]).args(&cmd[1..]), cmd)
}

/// A step with one extra environment variable for the child (this process's environment is left
/// alone).
fn env_step(name: &str, cmd: &[&str], (key, value): (&str, &str)) -> anyhow::Result<()> {
    run(name, Command::new(cmd[0]).args(&cmd[1..]).env(key, value), cmd)
}

fn run(name: &str, command: &mut Command, cmd: &[&str]) -> anyhow::Result<()> {
    println!("\n==> {name}: {}", cmd.join(" "));
    let started = std::time::Instant::now();
    let status = command.status().with_context(|| format!("running {}", cmd[0]))?;
    if !status.success() {
        bail!("{name} failed ({status}) after {:.0} s", started.elapsed().as_secs_f64());
    }
    println!("==> {name}: ok in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
