//! `orgsec-emulator`: serve the emulated AWS organization on loopback.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// An AWS emulator speaking the real wire protocols of Organizations, STS, IAM, EC2, S3,
/// S3 Control, Security Hub, GuardDuty, Config and IAM Access Analyzer over one coherent
/// organization. Point any AWS SDK or the AWS CLI at it with AWS_ENDPOINT_URL and access key
/// AKID<account-id> (any secret), e.g. AKID222222222222 for the demo's security account.
#[derive(Debug, Parser)]
#[command(name = "orgsec-emulator", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4566", env = "ORGSEC_EMULATOR_LISTEN")]
    listen: SocketAddr,
    /// `demo`, a TOML scenario file, or `generate:accounts=N,resources=M,seed=S`.
    #[arg(long, default_value = "demo", env = "ORGSEC_EMULATOR_SCENARIO")]
    scenario: String,
    /// Turn off per-(account, region, operation) rate limits.
    #[arg(long)]
    no_rate_limits: bool,
    /// Delay in milliseconds between a change and the findings it causes.
    #[arg(long, default_value_t = 0)]
    evaluation_delay_ms: i64,
    /// How long a newly enabled Security Hub standard stays PENDING, in milliseconds.
    #[arg(long, default_value_t = 0)]
    standards_ready_ms: i64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Inject faults: `[service[:Operation]:]throttle=P,error=P,latency_ms=N` (repeatable),
    /// e.g. `--fault securityhub:GetFindings:throttle=0.2`.
    #[arg(long = "fault", value_name = "SPEC", value_parser = orgsec_emulator::faults::FaultRule::parse)]
    faults: Vec<orgsec_emulator::faults::FaultRule>,
    /// Override a rate limit: `service:Operation=RATE/BURST` (repeatable), e.g.
    /// `--rate-limit securityhub:GetFindings=3/6`.
    #[arg(long = "rate-limit", value_name = "SPEC", value_parser = orgsec_emulator::faults::parse_rate)]
    rate_limits: Vec<(String, orgsec_emulator::faults::Rate)>,
    /// Seed for generated ids and fault rolls.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match args.log_format.as_str() {
        "json" => tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_env_filter(filter).init(),
        "text" => tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init(),
        other => anyhow::bail!("--log-format must be text or json, not {other}"),
    }
    let started = std::time::Instant::now();
    let mut builder = orgsec_emulator::Emulator::builder();
    for f in args.faults {
        builder = builder.fault(f);
    }
    for (key, rate) in args.rate_limits {
        builder = builder.rate_limit(key, rate);
    }
    let em = builder
        .scenario(&args.scenario)
        .listen(args.listen)
        .rate_limits(!args.no_rate_limits)
        .evaluation_delay_ms(args.evaluation_delay_ms)
        .standards_ready_ms(args.standards_ready_ms)
        .max_body_bytes(args.max_body_bytes)
        .seed(args.seed)
        .start()
        .await
        .with_context(|| format!("starting the emulator with scenario '{}'", args.scenario))?;
    let (accounts, findings) = {
        let w = em.shared().world.read();
        (w.accounts.len(), w.findings.values().map(|s| s.len()).sum::<usize>())
    };
    tracing::info!(
        url = %em.url(), scenario = %args.scenario, accounts, findings,
        load_ms = started.elapsed().as_millis() as u64, "orgsec-emulator listening"
    );
    println!("orgsec-emulator listening on {}", em.url());
    println!(
        "  export AWS_ENDPOINT_URL={} AWS_ACCESS_KEY_ID=AKID222222222222 AWS_SECRET_ACCESS_KEY=any AWS_REGION=us-east-1",
        em.url()
    );
    println!("  admin: {}/_emulator/state   (Ctrl-C to stop)", em.url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    em.shutdown().await;
    Ok(())
}
