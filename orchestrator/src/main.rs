//! `orgsec`: the orchestrator's CLI and service. Flags and printing only; the work is in the
//! library.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use orgsec::api::Api;
use orgsec::auth::{Tokens, hash_token};
use orgsec::binding::{self, BindingFile, BindingSpec};
use orgsec::playbooks::{self, CATALOGUE};
use orgsec::render;
use orgsec::service::{Bindings, ServiceError};
use orgsec::settings::{DEFAULT_CONFIG_FILE, Settings};
use orgsec::store::Store;

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
    /// Serve the gRPC API (bindings, playbooks) and /healthz on the `listen` address.
    Serve,
    /// Remediation bindings in the store.
    Bindings {
        #[command(subcommand)]
        command: BindingsCommand,
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
enum PlaybooksCommand {
    /// The least-privilege IAM policy (JSON) that the member role needs for the playbooks the
    /// stored bindings use.
    Policy {
        /// For every playbook in the catalogue instead.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Read a token on stdin and print its SHA-256, which is what the tokens file stores.
    Hash,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("orgsec=info,warn"));
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
        Command::Serve => serve(settings()?).await,
        Command::Bindings { command } => {
            let store = open_store(&settings()?).await?;
            let result = bindings(&store, command, cli.output).await;
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
                bail!(
                    "no binding uses a playbook yet, so the member role needs none; `--all` prints the policy for every playbook"
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
    let store = open_store(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen).await.with_context(|| {
        format!("cannot listen on {} (set listen in orgsec.toml or ORGSEC_LISTEN)", settings.listen)
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = ?store.backend(), tokens = tokens.len(), "serving");
    print(format!("orgsec API listening on http://{addr}"));
    Api::new(store.clone(), tokens).serve(listener, shutdown_signal()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
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
