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
