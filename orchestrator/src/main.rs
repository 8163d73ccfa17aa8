//! `orgsec`: the orchestrator's CLI and service. Flags and printing only; the work is in the
//! library.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use orgsec::api::Api;
use orgsec::auth::{Tokens, hash_token};
use orgsec::aws::Aws;
use orgsec::binding::{self, BindingFile, BindingSpec};
use orgsec::catalogue::catalogue;
use orgsec::collect::{Collector, SyncOptions, limits::Limits};
use orgsec::enroll::{self, AccountState, Selection};
use orgsec::finding::{Severity, Source};
use orgsec::playbooks::{self, CATALOGUE};
use orgsec::score::{ScopeKind, ScopeRef, Weights};
use orgsec::service::{Bindings, Remediations, ServiceError};
use orgsec::settings::{DEFAULT_CONFIG_FILE, Settings};
use orgsec::store::{FindingQuery, Store};
use orgsec::{posture, render};

/// orgsec: enroll, assess, score and remediate an AWS Organization from its delegated-admin
/// security account.
#[derive(Debug, Parser)]
#[command(name = "orgsec", version)]
struct Cli {
    /// Settings file (TOML); each setting can be overridden by its ORGSEC_* variable.
    #[arg(long, global = true, value_name = "FILE", env = "ORGSEC_CONFIG")]
    config: Option<PathBuf>,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// How logs are written to stderr (the level comes from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole loop on an emulated organization, with no AWS account: start the emulator
    /// in-process with the demo org, enroll, sync, score, bind every playbook, remediate (an
    /// admin's approval scripted), verify, score again; print before and after, and write an
    /// HTML report and an evidence bundle.
    Demo {
        /// Where the demo keeps its database (replaced at each run).
        #[arg(long, value_name = "DIR", default_value = "orgsec-demo")]
        dir: PathBuf,
    },
    /// Serve the gRPC API (bindings, playbooks) and /healthz on the `listen` address.
    Serve,
    /// Discover the organization and make accounts Security Hub and GuardDuty members of this
    /// (delegated-admin) account, checking that the member role can be assumed.
    Enroll {
        /// Every account of the organization (except this one, the management account and
        /// suspended accounts).
        #[arg(long, conflicts_with = "account", required_unless_present = "account")]
        all: bool,
        /// This account (repeatable); accounts outside the organization are invited.
        #[arg(long, value_name = "ID")]
        account: Vec<String>,
    },
    /// Collect findings from Security Hub, GuardDuty, Config and Access Analyzer in every
    /// enrolled account and region, then score.
    Sync {
        /// Only these sources (repeatable): securityhub, guardduty, config, access-analyzer.
        #[arg(long, value_name = "SOURCE", value_parser = parse_source)]
        source: Vec<Source>,
        /// Calls in flight at the same time (every account is read at once, each paced by its
        /// own rate budget; this bounds the pages in memory).
        #[arg(long, default_value_t = orgsec::collect::DEFAULT_CONCURRENCY)]
        concurrency: usize,
    },
    /// Scores (0-100, 100 = low risk) by scope.
    Score {
        /// Which scopes to list; the org's score is always given first.
        #[arg(long, value_enum, default_value_t = By::Account)]
        by: By,
        /// Explain one score of the `--by` kind (its id: an account id, an OU path, a resource
        /// type or ARN; nothing for the org): what each control or finding type takes off it.
        #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
        explain: Option<String>,
    },
    /// Controls ranked by improvement potential: the points a scope's score would gain if the
    /// control passed everywhere in it.
    Priorities {
        /// In this account only.
        #[arg(long, value_name = "ID", conflicts_with = "ou")]
        account: Option<String>,
        /// In this OU only (`Root/Prod`).
        #[arg(long, value_name = "PATH")]
        ou: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Stored findings, filtered (each filter is repeatable; values within one filter are ORed).
    Findings {
        #[arg(long, value_name = "ID")]
        account: Vec<String>,
        #[arg(long, value_name = "SOURCE", value_parser = parse_source)]
        source: Vec<Source>,
        #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
        severity: Vec<Severity>,
        #[arg(long, value_name = "CONTROL")]
        control: Vec<String>,
        /// failing | passing | a workflow status (NEW, NOTIFIED, RESOLVED, SUPPRESSED) | a
        /// compliance status (PASSED, FAILED, WARNING, NOT_AVAILABLE).
        #[arg(long, value_name = "STATUS")]
        status: Vec<String>,
        /// At most this many (use --after with the last uid for the next page).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, value_name = "UID")]
        after: Option<String>,
        /// Include each finding's source document (JSON output).
        #[arg(long)]
        raw: bool,
    },
    /// Remediation bindings in the store.
    Bindings {
        #[command(subcommand)]
        command: BindingsCommand,
    },
    /// Remediate once, without `orgsec serve`: match failing findings to the bindings, run and
    /// verify every job that is due (approved ones included), then collect the accounts it
    /// changed again and rescore. Jobs waiting for approval stay waiting. Fails when a job
    /// failed or jobs were still running when the time ran out.
    Remediate {
        /// How long to wait for jobs still running or backing off before a retry; they carry on
        /// at the next run (or in `orgsec serve`).
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        timeout: u64,
    },
    /// Remediation jobs: list them, approve or reject those waiting for approval.
    Remediations {
        #[command(subcommand)]
        command: RemediationsCommand,
    },
    /// The monitor's change log, newest first: remediations, resources that appeared or went
    /// away, checks that started failing, and full assessments (`orgsec serve` records them).
    Changes {
        /// Only these kinds (repeatable): remediation, resource_new, resource_deleted,
        /// check_failing, assessment.
        #[arg(long, value_name = "KIND", value_parser = parse_change_kind)]
        kind: Vec<orgsec::monitor::ChangeKind>,
        /// Only changes at or after this time (RFC 3339, such as 2026-11-23T09:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Evidence for auditors: export a tamper-evident bundle for a framework, or verify one.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// The playbook catalogue; `policy` prints the member role's IAM policy.
    Playbooks {
        #[command(subcommand)]
        command: Option<PlaybooksCommand>,
    },
    /// API tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    Org,
    Ou,
    Account,
    ResourceType,
    Resource,
}

fn parse_source(s: &str) -> Result<Source, String> {
    Source::parse(s)
        .ok_or_else(|| format!("unknown source {s:?}: use securityhub, guardduty, config or access-analyzer"))
}

async fn evidence(settings: impl Fn() -> Result<Settings>, command: EvidenceCommand, output: Output) -> Result<()> {
    match command {
        EvidenceCommand::Export { framework, account, ou, since, out, offline } => {
            let settings = settings()?;
            let store = open_store(&settings).await?;
            let aws = if offline { None } else { Some(Aws::from_env(&settings).await) };
            let opts = orgsec::evidence::ExportOptions { framework, account, ou, since };
            let bundle = orgsec::evidence::export(&store, aws.as_ref(), &opts, time::OffsetDateTime::now_utc()).await;
            store.close().await;
            let bundle = bundle?;
            // Written beside the target and renamed: a reader never sees half a bundle.
            let tmp = out.with_extension("zip.partial");
            std::fs::write(&tmp, &bundle.bytes).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &out).with_context(|| format!("moving the bundle to {}", out.display()))?;
            let m = &bundle.manifest;
            match output {
                Output::Json => print(serde_json::to_string_pretty(m)?),
                Output::Table => {
                    let count = |k: &str| m.counts.get(k).copied().unwrap_or(0);
                    print(format!(
                        "Wrote {} ({} bytes): {} controls x {} accounts of {} ({} failed, {} passed, {} disabled, {} without data), {} findings, {} audit records (chain head {}), {} disabled controls.",
                        out.display(),
                        bundle.bytes.len(),
                        count("controls"),
                        count("accounts"),
                        m.framework,
                        count("control_status_failed"),
                        count("control_status_passed"),
                        count("control_status_disabled"),
                        count("control_status_no_data"),
                        count("findings"),
                        count("audit_records"),
                        m.audit_chain.head_seq,
                        count("disabled_controls"),
                    ));
                    for n in &m.notes {
                        eprintln!("note: {n}");
                    }
                    eprintln!("Check it with `orgsec evidence verify {}`.", out.display());
                }
            }
            Ok(())
        }
        EvidenceCommand::Verify { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let verified =
                orgsec::evidence::verify(&bytes).map_err(|e| anyhow!("{} does not verify: {e}", file.display()))?;
            match output {
                Output::Json => print(serde_json::to_string_pretty(&verified)?),
                Output::Table => print(format!(
                    "{} verifies: {} files match the manifest, {} audit records chain to head {} ({}), the archive is as orgsec wrote it. Framework {}, scope {} {}, generated {}.",
                    file.display(),
                    verified.files,
                    verified.audit_records,
                    verified.manifest.audit_chain.head_seq,
                    verified.manifest.audit_chain.head_hash,
                    verified.manifest.framework,
                    verified.manifest.scope.kind,
                    verified.manifest.scope.id,
                    verified.manifest.generated_at,
                )),
            }
            Ok(())
        }
    }
}

fn parse_change_kind(s: &str) -> Result<orgsec::monitor::ChangeKind, String> {
    orgsec::monitor::ChangeKind::parse(s).ok_or_else(|| {
        let known: Vec<&str> = orgsec::monitor::ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind of change {s:?}; use one of {}", known.join(", "))
    })
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-23T09:00:00Z ({e})"))
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s)
        .ok_or_else(|| format!("unknown severity {s:?}: use CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL"))
}

#[derive(Debug, Subcommand)]
enum BindingsCommand {
    /// Create a binding, or replace the settings of the one with its name, from a JSON file
    /// (`-` reads stdin). The output of `bindings list --output json` can be edited and put back.
    Put {
        #[arg(long, short, value_name = "FILE")]
        file: PathBuf,
    },
    /// Every binding, in name order.
    List,
    /// Delete the binding named NAME.
    Delete {
        name: String,
        /// Succeed when there is no such binding.
        #[arg(long)]
        allow_missing: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RemediationsCommand {
    /// Remediation jobs, newest first.
    List {
        /// Only jobs in this state (PENDING_APPROVAL, QUEUED, RUNNING, VERIFYING, SUCCEEDED,
        /// FAILED, REJECTED, EXPIRED, PLANNED, NOTIFIED); repeat for several.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// Only jobs in this account.
        #[arg(long)]
        account: Option<String>,
        /// At most this many (up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print only the jobs' ids, one a line (for `approve $(...)`).
        #[arg(long)]
        ids: bool,
    },
    /// Approve the jobs ID..., waiting in PENDING_APPROVAL: `orgsec serve` (or `orgsec
    /// remediate`) runs them next.
    Approve {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Reject the jobs ID..., waiting in PENDING_APPROVAL: nothing is changed.
    Reject {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Why, for the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum PlaybooksCommand {
    /// The least-privilege IAM policy (JSON) that the member role needs: collection's reads,
    /// accepting invitations, and the playbooks the stored bindings use.
    Policy {
        /// For every playbook in the catalogue instead.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Write a bundle: controls x accounts, findings (ASFF and OCSF), the audit records,
    /// disabled controls, score history, and a manifest of SHA-256 hashes.
    Export {
        /// fsbp, cis-1.2, cis-1.4, cis-3.0, pci-3.2.1 or nist-800-53-r5.
        #[arg(long)]
        framework: String,
        /// Only this account.
        #[arg(long, value_name = "ID", conflicts_with = "ou")]
        account: Option<String>,
        /// Only the accounts of this OU (`Root/Prod`).
        #[arg(long, value_name = "PATH")]
        ou: Option<String>,
        /// Only findings updated and records written at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
        #[arg(long, value_name = "FILE", default_value = "evidence.zip")]
        out: PathBuf,
        /// Do not read the disabled controls from Security Hub (no AWS calls).
        #[arg(long)]
        offline: bool,
    },
    /// Check a bundle: the manifest, every file's SHA-256, every audit record's place in the
    /// chain, and the archive itself. Names the file (and record) of the first damage found.
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Read a token on stdin and print its SHA-256, which is what the tokens file stores.
    Hash,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo speaks for itself: only warnings in its logs.
    init_logging(cli.log_format, if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "orgsec=info,warn" });
    // The AWS SDK's deserializers recurse deeply on large Security Hub pages: give the workers
    // room, and run everything on them rather than on the main thread.
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(32 << 20).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async { tokio::spawn(run(cli)).await.unwrap_or_else(|e| Err(anyhow!("{e}"))) });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let settings = || -> Result<Settings> {
        let (path, required) = match &cli.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        Ok(Settings::from_env(&path, required)?)
    };
    match cli.command {
        Command::Demo { dir } => demo(&dir, cli.output).await,
        Command::Serve => serve(settings()?).await,
        Command::Enroll { all, account } => {
            let settings = settings()?;
            let store = open_store(&settings).await?;
            let aws = Aws::from_env(&settings).await;
            let selection = if all { Selection::All } else { Selection::Accounts(account) };
            let bar = progress_bar("enrolling");
            let report = enroll::run(&aws, &store, &selection, &|p| {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                bar.set_message(format!("{} {}", p.account, p.state));
            })
            .await;
            bar.finish_and_clear();
            store.close().await;
            let report = report?;
            print(match cli.output {
                Output::Table => enroll::render_table(&report),
                Output::Json => serde_json::to_string_pretty(&report)?,
            });
            Ok(())
        }
        Command::Sync { source, concurrency } => {
            let settings = settings()?;
            let store = open_store(&settings).await?;
            let result = sync(&settings, &store, source, concurrency, cli.output).await;
            store.close().await;
            result
        }
        Command::Score { by, explain } => {
            let store = open_store(&settings()?).await?;
            let board = posture::scoreboard(&store, Weights::default()).await;
            let names = account_names(&store).await;
            store.close().await;
            let board = board?;
            let kind = match by {
                By::Org => ScopeKind::Org,
                By::Ou => ScopeKind::Ou,
                By::Account => ScopeKind::Account,
                By::ResourceType => ScopeKind::ResourceType,
                By::Resource => ScopeKind::Resource,
            };
            if let Some(id) = explain {
                let scope = match kind {
                    ScopeKind::Org => ScopeRef::org(),
                    ScopeKind::Ou => ScopeRef::ou(&id),
                    _ if id.is_empty() => bail!("--explain needs the id of the {kind} to explain"),
                    _ => ScopeRef::new(kind, id),
                };
                if kind != ScopeKind::Org && !board.scores(kind).iter().any(|s| s.id == scope.id) {
                    bail!("no {kind} {:?} has been scored; `orgsec score --by {}` lists them", scope.id, kind.as_str());
                }
                let score = board.score(&scope);
                let contributions = board.explain(&scope);
                print(match cli.output {
                    Output::Table => format!(
                        "{} {} scores {:.1}: {} of {} checks failing.\n{}",
                        kind,
                        scope.id,
                        score.score,
                        score.failing_checks,
                        score.checks,
                        render::contributions_table(&contributions)
                    ),
                    Output::Json => serde_json::to_string_pretty(
                        &serde_json::json!({"score": score, "contributions": contributions}),
                    )?,
                });
                return Ok(());
            }
            let mut scores = vec![board.score(&ScopeRef::org())];
            if kind != ScopeKind::Org {
                scores.extend(board.scores(kind));
            }
            if board.is_empty() && cli.output == Output::Table {
                eprintln!("Nothing collected yet: run `orgsec enroll --all`, then `orgsec sync`.");
            }
            print(match cli.output {
                Output::Table => render::scores_table(&scores, &|id| names.get(id).cloned()),
                Output::Json => serde_json::to_string_pretty(&scores)?,
            });
            Ok(())
        }
        Command::Priorities { account, ou, limit } => {
            let store = open_store(&settings()?).await?;
            let board = posture::scoreboard(&store, Weights::default()).await;
            store.close().await;
            let board = board?;
            let scope = match (account, ou) {
                (Some(a), _) => ScopeRef::account(a),
                (None, Some(ou)) => ScopeRef::ou(&ou),
                (None, None) => ScopeRef::org(),
            };
            let list = board.priorities(&scope, limit);
            print(match cli.output {
                Output::Table => render::priorities_table(&list, &|c| catalogue().get(c).map(|c| c.title.clone())),
                Output::Json => serde_json::to_string_pretty(&list)?,
            });
            Ok(())
        }
        Command::Findings { account, source, severity, control, status, limit, after, raw } => {
            let mut q = FindingQuery {
                accounts: account,
                sources: source,
                severities: severity,
                controls: control,
                limit: Some(limit),
                after,
                with_raw: raw,
                ..FindingQuery::default()
            };
            for s in &status {
                orgsec::service::add_status_filter(&mut q, s).map_err(|e| anyhow!(e))?;
            }
            let store = open_store(&settings()?).await?;
            let found = store.findings(&q).await;
            store.close().await;
            let found = found?;
            print(match cli.output {
                Output::Table => render::findings_table(&found),
                Output::Json => render::findings_json(&found, raw),
            });
            Ok(())
        }
        Command::Bindings { command } => {
            let store = open_store(&settings()?).await?;
            let result = bindings(&store, command, cli.output).await;
            store.close().await;
            result
        }
        Command::Evidence { command } => evidence(settings, command, cli.output).await,
        Command::Changes { kind, since, limit } => {
            let store = open_store(&settings()?).await?;
            let result = async {
                let changes = store.list_changes(since, &kind, limit).await?;
                let counted = store.changes_since_assessment().await?;
                match cli.output {
                    Output::Table if changes.is_empty() => {
                        eprintln!(
                            "No changes logged{}. `orgsec serve` logs them as it reads the accounts again.",
                            if kind.is_empty() && since.is_none() { "" } else { " match" }
                        );
                    }
                    Output::Table => print(render::changes_table(&changes, counted)),
                    Output::Json => print(render::changes_json(&changes, counted)),
                }
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result
        }
        Command::Remediate { timeout } => {
            let settings = settings()?;
            let store = open_store(&settings).await?;
            let result = remediate(&settings, &store, timeout, cli.output).await;
            store.close().await;
            result
        }
        Command::Remediations { command } => {
            let store = open_store(&settings()?).await?;
            let result = remediations(&store, command, cli.output).await;
            store.close().await;
            result
        }
        Command::Playbooks { command: None } => {
            print(match cli.output {
                Output::Table => render::playbooks_table(CATALOGUE),
                Output::Json => render::playbooks_json(CATALOGUE),
            });
            Ok(())
        }
        Command::Playbooks { command: Some(PlaybooksCommand::Policy { all }) } => {
            let used: Vec<&playbooks::Playbook> = if all {
                CATALOGUE.iter().collect()
            } else {
                let store = open_store(&settings()?).await?;
                let bound = Bindings::new(store.clone()).all(&Bindings::cli_principal()).await;
                store.close().await;
                let bound = bound?;
                CATALOGUE.iter().filter(|p| bound.iter().any(|b| b.spec.playbook == p.name)).collect()
            };
            if used.is_empty() {
                eprintln!(
                    "No binding uses a playbook yet: this is what collection and enrollment need. `--all` adds every playbook's permissions."
                );
            }
            print(serde_json::to_string_pretty(&playbooks::member_role_policy(&used))?);
            Ok(())
        }
        Command::Tokens { command: TokensCommand::Hash } => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token).context("reading the token from stdin")?;
            let token = token.trim_end_matches(['\r', '\n']);
            if token.is_empty() {
                bail!("no token on stdin: run `printf %s \"$TOKEN\" | orgsec tokens hash`");
            }
            print(hash_token(token));
            Ok(())
        }
    }
}

/// `orgsec demo`: the emulator in-process, then enroll, sync and score as a user would.
async fn demo(dir: &Path, output: Output) -> Result<()> {
    let say = move |line: String| {
        if output == Output::Table {
            eprintln!("{line}");
        }
    };
    let r = orgsec::demo::run(dir, &say).await?;
    match output {
        Output::Table => {
            print(
                "\nTop priorities before (points the organization's score gains when the control passes everywhere):"
                    .to_string(),
            );
            print(render::priorities_table(&r.priorities_before, &|c| catalogue().get(c).map(|c| c.title.clone())));
            print("\nRemediations:".to_string());
            print(render::demo_remediations_table(&r.remediations));
            print("\nScores before and after:".to_string());
            print(render::demo_scores_table(&r));
            print(format!(
                "\nOrganization score {:.1} -> {:.1}/100 in {:.1} s.\nReport: {}\nEvidence: {} (check it: orgsec evidence verify {})\n\nTry next, on the demo's database:\n  export ORGSEC_DATABASE_URL=sqlite://{}/orgsec.db\n  orgsec remediations list\n  orgsec findings --status failing --severity CRITICAL\n  orgsec score --by account --explain 333333333333",
                r.before.org_score,
                r.after.org_score,
                r.seconds,
                r.report_html.display(),
                r.evidence_zip.display(),
                r.evidence_zip.display(),
                dir.display(),
            ));
        }
        Output::Json => print(serde_json::to_string_pretty(&r)?),
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (logs, pipes, CI).
fn progress_bar(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}} {{msg}}")) {
        bar.set_style(style);
    }
    bar
}

async fn account_names(store: &Store) -> std::collections::HashMap<String, String> {
    store.accounts().await.unwrap_or_default().into_iter().map(|a| (a.account_id, a.name)).collect()
}

async fn sync(
    settings: &Settings,
    store: &Store,
    sources: Vec<Source>,
    concurrency: usize,
    output: Output,
) -> Result<()> {
    let accounts: Vec<String> = store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
        .map(|a| a.account_id)
        .collect();
    if accounts.is_empty() {
        bail!("no enrolled accounts to read: run `orgsec enroll --all` (or `--account ID`) first");
    }
    let aws = Aws::from_env(settings).await;
    let collector = Collector::new(aws, store.clone(), std::sync::Arc::new(Limits::default()));
    let options = SyncOptions { sources, concurrency, ..SyncOptions::default() };
    let bar = progress_bar("collecting");
    let report = collector
        .sync(&accounts, &options, &|p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(format!("{} findings", p.collected));
        })
        .await;
    bar.finish_and_clear();
    let report = report?;
    let board = posture::scoreboard(store, Weights::default()).await?;
    posture::snapshot(store, &board, report.finished_at).await?;
    let org = board.score(&ScopeRef::org());
    match output {
        Output::Table => {
            print(render::sync_table(&report));
            print(format!(
                "Organization score: {:.1} ({} of {} checks failing)",
                org.score, org.failing_checks, org.checks
            ));
        }
        Output::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["org_score"] = serde_json::json!(org.score);
            print(serde_json::to_string_pretty(&v)?);
        }
    }
    let failed = report.errors().count();
    if failed > 0 {
        bail!(
            "{failed} of {} reads failed (listed above); everything else was collected and stored",
            report.units.len()
        );
    }
    Ok(())
}

fn print(text: String) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`orgsec ... | head`) is not an error worth reporting.
    let _ = writeln!(out, "{}", text.trim_end()).and_then(|()| out.flush());
}

async fn open_store(settings: &Settings) -> Result<Store> {
    Store::open(&settings.database_url)
        .await
        .with_context(|| "opening the store (set database_url in orgsec.toml or ORGSEC_DATABASE_URL)".to_string())
}

async fn bindings(store: &Store, command: BindingsCommand, output: Output) -> Result<()> {
    let service = Bindings::new(store.clone());
    let cli = Bindings::cli_principal();
    let show = |list: &[binding::Binding]| match output {
        Output::Table => render::bindings_table(list),
        Output::Json => render::bindings_json(list),
    };
    match command {
        BindingsCommand::Put { file } => {
            let spec = read_binding(&file)?;
            let name = spec.name.clone();
            let b = service.update(&cli, spec, vec![], true).await.map_err(|e| explain(&name, e))?;
            print(match output {
                Output::Table => render::bindings_table(std::slice::from_ref(&b)),
                Output::Json => serde_json::to_string_pretty(&b)?,
            });
        }
        BindingsCommand::List => {
            let all = service.all(&cli).await?;
            if all.is_empty() && output == Output::Table {
                eprintln!("No bindings. Add one with `orgsec bindings put --file binding.json`.");
            } else {
                print(show(&all));
            }
        }
        BindingsCommand::Delete { name, allow_missing } => {
            service.delete(&cli, &name, allow_missing).await.map_err(|e| explain(&name, e))?;
            eprintln!("Deleted binding {name}.");
        }
    }
    Ok(())
}

async fn remediations(store: &Store, command: RemediationsCommand, output: Output) -> Result<()> {
    let service = Remediations::new(store.clone());
    let cli = Bindings::cli_principal();
    let show = |jobs: &[orgsec::jobs::Job]| match output {
        Output::Table => render::jobs_table(jobs),
        Output::Json => render::jobs_json(jobs),
    };
    match command {
        RemediationsCommand::List { states, account, limit, ids } => {
            let jobs = service.list(&cli, &states, account.as_deref(), limit).await?;
            if ids {
                let lines: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
                if !lines.is_empty() {
                    print(lines.join("\n"));
                }
            } else if jobs.is_empty() && output == Output::Table {
                eprintln!(
                    "No remediation jobs{}. Jobs appear when a binding matches a failing finding during `orgsec serve`.",
                    if states.is_empty() && account.is_none() { "" } else { " match" }
                );
            } else {
                print(show(&jobs));
            }
        }
        RemediationsCommand::Approve { ids } => {
            let mut done = Vec::new();
            for id in &ids {
                match service.approve(&cli, id).await {
                    Ok(job) => done.push(job),
                    Err(e) => return Err(partly(&done, "approved", e, &show)),
                }
            }
            print(show(&done));
            eprintln!(
                "Approved {}: `orgsec serve` (or `orgsec remediate`) runs {} next.",
                ids.join(", "),
                if ids.len() == 1 { "it" } else { "them" }
            );
        }
        RemediationsCommand::Reject { ids, reason } => {
            let mut done = Vec::new();
            for id in &ids {
                match service.reject(&cli, id, &reason).await {
                    Ok(job) => done.push(job),
                    Err(e) => return Err(partly(&done, "rejected", e, &show)),
                }
            }
            print(show(&done));
            eprintln!("Rejected {}: nothing was changed.", ids.join(", "));
        }
    }
    Ok(())
}

/// The error of the one job an approve or reject could not take, after printing those it did.
fn partly(
    done: &[orgsec::jobs::Job],
    verb: &str,
    e: impl Into<anyhow::Error>,
    show: &impl Fn(&[orgsec::jobs::Job]) -> String,
) -> anyhow::Error {
    if done.is_empty() {
        return e.into();
    }
    print(show(done));
    let ids: Vec<&str> = done.iter().map(|j| j.id.as_str()).collect();
    e.into().context(format!("{verb} {} (above); stopped at the next", ids.join(", ")))
}

fn read_binding(file: &Path) -> Result<BindingSpec> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the binding from stdin")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let parsed: BindingFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a binding: a JSON object with name, playbook, controls and/or finding_types, and optionally mode, scope, notify, parameters",
            file.display()
        )
    })?;
    Ok(parsed.into())
}

/// A failed binding operation, with every violation on its own line.
fn explain(name: &str, e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(violations) => {
            let lines: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
            anyhow!("binding {name} is not valid:\n{}", lines.join("\n"))
        }
        other => anyhow!(other),
    }
}

async fn serve(settings: Settings) -> Result<()> {
    let tokens_file = settings.tokens_file.as_ref().ok_or_else(|| {
        anyhow!(
            "orgsec serve needs a tokens file: set tokens_file in orgsec.toml or ORGSEC_TOKENS_FILE. Each entry is\n  [[token]]\n  name = \"platform\"\n  role = \"admin\"   # or \"app-team\" (with accounts/organizational_units) or \"auditor\"\n  sha256 = \"...\"   # printf %s \"$TOKEN\" | orgsec tokens hash"
        )
    })?;
    let tokens = Tokens::load(tokens_file)?;
    if tokens.is_empty() {
        bail!("the tokens file {} has no [[token]] entries, so nobody could call the API", tokens_file.display());
    }
    let tls = match &settings.tls {
        Some((cert, key)) => Some((
            std::fs::read(cert).with_context(|| format!("reading the TLS certificate {}", cert.display()))?,
            std::fs::read(key).with_context(|| format!("reading the TLS key {}", key.display()))?,
        )),
        None => None,
    };
    let store = open_store(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen).await.with_context(|| {
        format!("cannot listen on {} (set listen in orgsec.toml or ORGSEC_LISTEN)", settings.listen)
    })?;
    let addr = listener.local_addr()?;
    let metrics = std::sync::Arc::new(orgsec::metrics::Metrics::new());
    let posture = orgsec::posture::SharedPosture::default();
    let aws = Aws::from_env(&settings).await.with_interceptor(orgsec::metrics::AwsCallCounter::new(metrics.clone()));
    let notifier = orgsec::notify::Notifier::new(&settings.notifications, |v| std::env::var(v).ok())
        .context("the notification targets in the settings cannot be used")?;
    let aws_for_api = aws.clone();
    let runner = std::sync::Arc::new(orgsec::remediate::PlaybookRunner::new(aws.clone(), store.clone(), notifier));
    let changed = runner.changed();
    let owner = format!("{}:{}", hostname(), std::process::id());
    let worker = orgsec::jobs::Worker::new(store.clone(), runner, orgsec::jobs::WorkerConfig::new(owner));
    let rounds = rounds(&settings, &store, aws, metrics.clone(), posture.clone());
    // Serve what the store already holds at once; the first round refreshes it.
    if let Err(e) = rounds.rescore().await {
        tracing::warn!(error = %e, "cannot score what the store holds");
    }
    tracing::info!(%addr, database = ?store.backend(), tokens = tokens.len(), sync_interval_seconds = settings.sync_interval_seconds, "serving");
    print(format!("orgsec API listening on {}://{addr}", if tls.is_some() { "https" } else { "http" }));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let background = (settings.sync_interval_seconds > 0).then(|| {
        let every = std::time::Duration::from_secs(settings.sync_interval_seconds);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            rounds
                .run(every, Some(changed), async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        })
    });
    // Remediation jobs run whether or not rounds do: approvals arrive through the API.
    let jobs = tokio::spawn(worker.run(stopped.clone()));
    let api = Api::new(store.clone(), tokens).with_metrics(metrics).with_posture(posture).with_aws(aws_for_api);
    let tls_pair = tls.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()));
    let served = api.serve_tls(listener, tls_pair, shutdown_signal()).await;
    let _ = stop.send(true);
    if let Some(task) = background {
        let _ = task.await;
    }
    let _ = jobs.await;
    served?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// What serve's background rounds and `orgsec remediate` work with.
fn rounds(
    settings: &Settings,
    store: &Store,
    aws: Aws,
    metrics: std::sync::Arc<orgsec::metrics::Metrics>,
    posture: orgsec::posture::SharedPosture,
) -> orgsec::rounds::Rounds {
    orgsec::rounds::Rounds {
        collector: Collector::new(aws.clone(), store.clone(), std::sync::Arc::new(Limits::default())),
        aws,
        store: store.clone(),
        posture,
        metrics,
        monitor: std::sync::Arc::new(orgsec::monitor::Monitor::new(store.clone(), settings.reassess_after_changes)),
    }
}

/// `orgsec remediate`: one pass of dispatch and work, its jobs printed.
async fn remediate(settings: &Settings, store: &Store, timeout: u64, output: Output) -> Result<()> {
    let aws = Aws::from_env(settings).await;
    let notifier = orgsec::notify::Notifier::new(&settings.notifications, |v| std::env::var(v).ok())
        .context("the notification targets in the settings cannot be used")?;
    let runner = std::sync::Arc::new(orgsec::remediate::PlaybookRunner::new(aws.clone(), store.clone(), notifier));
    let config = orgsec::jobs::WorkerConfig::new(format!("{}:{}:cli", hostname(), std::process::id()));
    let metrics = std::sync::Arc::new(orgsec::metrics::Metrics::new());
    let rounds = rounds(settings, store, aws, metrics, orgsec::posture::SharedPosture::default());
    let pass = rounds.remediate_once(runner, config, std::time::Duration::from_secs(timeout)).await?;
    let count = |state: orgsec::jobs::JobState| pass.jobs.iter().filter(|j| j.state == state).count();
    let (succeeded, failed, waiting) = (
        count(orgsec::jobs::JobState::Succeeded),
        count(orgsec::jobs::JobState::Failed),
        count(orgsec::jobs::JobState::PendingApproval),
    );
    match output {
        Output::Table => {
            if pass.jobs.is_empty() {
                if pass.dispatch.bindings == 0 {
                    eprintln!(
                        "Nothing to remediate: there are no bindings; add one with `orgsec bindings put --file binding.json`."
                    );
                } else {
                    eprintln!(
                        "Nothing to remediate: {} failing findings match the {} bindings, and each has its job already (`orgsec remediations list`).",
                        pass.dispatch.matched, pass.dispatch.bindings
                    );
                }
            } else {
                print(render::jobs_table(&pass.jobs));
                let mut summary = format!(
                    "{} new jobs; {succeeded} succeeded and verified, {failed} failed, {waiting} wait for approval",
                    pass.dispatch.enqueued.len()
                );
                if waiting > 0 {
                    summary.push_str(" (`orgsec remediations approve ID`, then `orgsec remediate` again)");
                }
                if !pass.refreshed.is_empty() {
                    summary.push_str(&format!("; collected again: {}", pass.refreshed.join(", ")));
                }
                eprintln!("{summary}.");
            }
        }
        Output::Json => print(serde_json::to_string_pretty(&pass)?),
    }
    if !pass.idle {
        bail!(
            "jobs were still running or waiting to retry after {timeout} s: they carry on at the next `orgsec remediate` (or in `orgsec serve`); `orgsec remediations list --state QUEUED` shows them"
        );
    }
    if failed > 0 {
        bail!(
            "{failed} remediation jobs failed (their errors are above); `orgsec remediations list --state FAILED` lists them"
        );
    }
    Ok(())
}

/// The machine's name, for the remediation worker's lease owner (several replicas share one
/// PostgreSQL); `localhost` when it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
