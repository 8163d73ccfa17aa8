use std::sync::atomic::{AtomicUsize, Ordering};

use orgsec::binding::{BindingSpec, Mode, Scope};
use orgsec::store::Store;

/// A store on a fresh database: SQLite always, PostgreSQL when ORGSEC_TEST_POSTGRES_URL is set.
/// The temporary directory (for SQLite) lives as long as the guard.
pub(crate) struct TestStore {
    pub(crate) store: Store,
    pub(crate) label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("orgsec.db").display());
    TestStore { store: Store::open(&url).await.expect("open sqlite"), label: "sqlite", _dir: Some(dir) }
}

/// A new, empty database in the PostgreSQL that ORGSEC_TEST_POSTGRES_URL points at.
pub(crate) async fn postgres() -> Option<TestStore> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let url = std::env::var("ORGSEC_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("orgsec_it_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let admin = sqlx::PgPool::connect(&url).await.expect("connect to ORGSEC_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create database");
    admin.close().await;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (url.clone(), String::new()),
    };
    // postgres://user:password@host:port[/database]: keep everything before the database.
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(i) => base[..authority_start + i].to_string(),
        None => base,
    };
    let db_url = format!("{server}/{name}{query}");
    Some(TestStore { store: Store::open(&db_url).await.expect("open postgres"), label: "postgres", _dir: None })
}

/// A store per backend available here.
pub(crate) async fn stores() -> Vec<TestStore> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}

pub(crate) fn spec(name: &str) -> BindingSpec {
    BindingSpec {
        name: name.into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode: Mode::Approve,
        scope: Scope { accounts: vec!["333333333333".into()], ..Default::default() },
        ..Default::default()
    }
}

/// The demo organization's ExternalId, and the account orgsec runs in.
pub(crate) const EXTERNAL_ID: &str = "orgsec-demo";
pub(crate) const ADMIN: &str = "222222222222";

/// An in-process emulator running `scenario` (`demo` or a TOML file), rate limits off so that
/// tests do not wait on throttling retries.
pub(crate) async fn emulator(scenario: &str) -> orgsec_emulator::Emulator {
    orgsec_emulator::Emulator::builder().scenario(scenario).rate_limits(false).start().await.expect("emulator starts")
}

/// An SDK configuration signing in as `account`'s administrator (`AKID<account>`) at the
/// emulator, in us-east-1.
pub(crate) fn sdk_config(em: &orgsec_emulator::Emulator, account: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(em.url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(format!("AKID{account}"), "secret", None, None, "test"),
        ))
        .build()
}

/// orgsec's AWS access as the demo's delegated admin, with `external_id` and `regions` (empty:
/// the configuration's us-east-1).
pub(crate) fn admin_aws(
    em: &orgsec_emulator::Emulator,
    external_id: Option<&str>,
    regions: &[&str],
) -> orgsec::aws::Aws {
    let mut settings =
        orgsec::settings::Settings::load(std::path::Path::new("/nonexistent/orgsec.toml"), false, |_| None)
            .expect("default settings");
    settings.external_id = external_id.map(str::to_string);
    settings.regions = regions.iter().map(|r| r.to_string()).collect();
    orgsec::aws::Aws::new(sdk_config(em, ADMIN), &settings)
}

/// The id of the security group named `name` in `account`.
pub(crate) async fn group_id(em: &orgsec_emulator::Emulator, account: &str, name: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(em, account));
    let groups = ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(name).build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    groups.security_groups().first().and_then(|g| g.group_id()).expect("the group").to_string()
}

/// Opens TCP `port` of `group` in `account` to 0.0.0.0/0, as someone would by hand.
pub(crate) async fn open_to_world(em: &orgsec_emulator::Emulator, account: &str, group: &str, port: i32) {
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(em, account));
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .expect("AuthorizeSecurityGroupIngress");
}
