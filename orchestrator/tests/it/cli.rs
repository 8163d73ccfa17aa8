use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use orgsec::auth::hash_token;
use orgsec_proto::orgsec::v1 as pb;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_orgsec");

/// `orgsec ARGS` in `dir` with only the given ORGSEC_* variables (and a database in `dir`).
pub(crate) fn orgsec(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGSEC_")) {
        cmd.env_remove(k);
    }
    cmd.env("ORGSEC_DATABASE_URL", format!("sqlite://{}", dir.join("orgsec.db").display()));
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("spawn orgsec");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or_default().as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("orgsec runs")
}

pub(crate) fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn tokens_hash_prints_the_sha256_of_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = orgsec(dir.path(), &["tokens", "hash"], &[], Some("s3cret\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash_token("s3cret"));
    let empty = orgsec(dir.path(), &["tokens", "hash"], &[], Some(""));
    assert!(!empty.status.success() && text(&empty).contains("no token on stdin"));
}

#[test]
fn playbooks_print_as_table_json_and_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = orgsec(dir.path(), &["playbooks"], &[], None);
    assert!(table.status.success() && text(&table).contains("revoke-public-ingress"), "{}", text(&table));
    let all = json(&orgsec(dir.path(), &["playbooks", "--output", "json"], &[], None));
    assert_eq!(all.as_array().map(Vec::len), Some(8));
    let policy = json(&orgsec(dir.path(), &["playbooks", "policy", "--all"], &[], None));
    assert_eq!(
        policy["Statement"].as_array().map(Vec::len),
        Some(11),
        "collection, invitations, 8 playbooks, marking findings"
    );
    let none = orgsec(dir.path(), &["playbooks", "policy"], &[], None);
    assert!(text(&none).contains("No binding uses a playbook yet"), "{}", text(&none));
    let none = json(&none);
    let sids: Vec<&str> =
        none["Statement"].as_array().expect("statements").iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["OrgsecCollect", "OrgsecAcceptInvitation"]);
}

#[test]
fn bindings_are_put_listed_and_deleted_in_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let file = d.join("binding.json");
    std::fs::write(
        &file,
        r#"{"name": "ingress", "controls": ["EC2.13"], "playbook": "revoke-public-ingress", "mode": "auto",
            "scope": {"accounts": ["333333333333"]}}"#,
    )
    .expect("write");
    let f = file.to_str().expect("path");
    let put = json(&orgsec(d, &["--output", "json", "bindings", "put", "--file", f], &[], None));
    assert_eq!((put["revision"].as_i64(), put["created_by"].as_str()), (Some(1), Some("cli")));

    // The listed JSON, edited, goes back in.
    let listed = json(&orgsec(d, &["bindings", "list", "--output", "json"], &[], None));
    let mut first = listed[0].clone();
    first["mode"] = "dry_run".into();
    std::fs::write(&file, first.to_string()).expect("write");
    let put = json(&orgsec(d, &["bindings", "put", "--file", f, "--output", "json"], &[], None));
    assert_eq!((put["revision"].as_i64(), put["mode"].as_str()), (Some(2), Some("dry_run")));
    let table = orgsec(d, &["bindings", "list"], &[], None);
    assert!(text(&table).contains("dry_run") && text(&table).contains("ingress"), "{}", text(&table));

    std::fs::write(
        &file,
        r#"{"name": "bad", "controls": ["S3.1"], "playbook": "revoke-public-ingress", "scope": {"accounts": ["42"]}}"#,
    )
    .expect("write");
    let bad = orgsec(d, &["bindings", "put", "--file", f], &[], None);
    let t = text(&bad);
    assert!(!bad.status.success(), "{t}");
    assert!(t.contains("binding bad is not valid:\n  controls[0]: revoke-public-ingress does not fix S3.1"), "{t}");
    assert!(t.contains("\n  scope.accounts[0]: \"42\" is not an AWS account id"), "{t}");
    std::fs::write(&file, r#"{"name": "typo", "contorls": ["EC2.13"], "playbook": "revoke-public-ingress"}"#)
        .expect("write");
    let typo = orgsec(d, &["bindings", "put", "--file", f], &[], None);
    assert!(!typo.status.success() && text(&typo).contains("unknown field `contorls`"), "{}", text(&typo));

    let deleted = orgsec(d, &["bindings", "delete", "ingress"], &[], None);
    assert!(deleted.status.success(), "{}", text(&deleted));
    let again = orgsec(d, &["bindings", "delete", "ingress"], &[], None);
    assert!(!again.status.success() && text(&again).contains("there is no binding named ingress"));
    assert!(orgsec(d, &["bindings", "delete", "ingress", "--allow-missing"], &[], None).status.success());
    assert_eq!(json(&orgsec(d, &["bindings", "list", "--output", "json"], &[], None)), serde_json::json!([]));
}

#[test]
fn settings_errors_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let missing = orgsec(d, &["--config", "nope.toml", "bindings", "list"], &[], None);
    assert!(!missing.status.success() && text(&missing).contains("cannot read the config file nope.toml"));
    let no_tokens = orgsec(d, &["serve"], &[], None);
    assert!(text(&no_tokens).contains("orgsec serve needs a tokens file"), "{}", text(&no_tokens));
    std::fs::write(d.join("tokens.toml"), "[[token]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"plaintext\"\n")
        .expect("write");
    let plaintext = orgsec(d, &["serve"], &[("ORGSEC_TOKENS_FILE", "tokens.toml")], None);
    assert!(text(&plaintext).contains("never the token itself"), "{}", text(&plaintext));
}

#[test]
fn serve_prints_its_address_when_ready_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("orgsec.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\ndatabase_url = \"sqlite://{}\"\n",
            d.join("o.db").display()
        ),
    )
    .expect("config");
    std::fs::write(
        d.join("tokens.toml"),
        format!("[[token]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{}\"\n", hash_token("t")),
    )
    .expect("tokens");
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "serve"])
        .current_dir(d)
        .env_remove("ORGSEC_DATABASE_URL")
        .env_remove("ORGSEC_LISTEN")
        .env_remove("ORGSEC_TOKENS_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let url = line.trim().strip_prefix("orgsec API listening on ").map(str::to_string);
    let result = url.clone().map(|url| {
        tokio::runtime::Runtime::new().expect("runtime").block_on(async move {
            let mut r = tonic::Request::new(pb::ListPlaybooksRequest {});
            r.metadata_mut().insert("authorization", "Bearer t".parse().expect("header"));
            pb::playbook_service_client::PlaybookServiceClient::connect(url)
                .await?
                .list_playbooks(r)
                .await
                .map_err(Into::into)
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.as_deref().is_some_and(|u| u.starts_with("http://127.0.0.1:")), "{line:?}");
    let playbooks: Result<tonic::Response<pb::ListPlaybooksResponse>, Box<dyn std::error::Error + Send + Sync>> =
        result.expect("ran");
    assert_eq!(playbooks.expect("list").into_inner().playbooks.len(), 8);
}

/// The AWS environment of the demo's delegated admin at the emulator, as a user would export it.
pub(crate) fn aws_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", url.to_string()),
        ("AWS_ACCESS_KEY_ID", "AKID222222222222".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("ORGSEC_EXTERNAL_ID", "orgsec-demo".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_sync_score_priorities_and_findings_from_the_command_line() {
    let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let env_owned = aws_env(&em.url());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| orgsec(dir.path(), args, &env, None);

    let none = run(&["sync"]);
    assert!(!none.status.success() && text(&none).contains("orgsec enroll --all"), "{}", text(&none));

    let enrolled = json(&run(&["enroll", "--all", "--output", "json"]));
    let states: Vec<(&str, &str)> = enrolled["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| (a["account_id"].as_str().unwrap_or_default(), a["state"].as_str().unwrap_or_default()))
        .collect();
    assert!(states.contains(&("666666666666", "enrolled")), "{states:?}");

    let synced = json(&run(&["sync", "--output", "json"]));
    assert!(synced["collected"]["securityhub"].as_u64().unwrap_or(0) > 0, "{synced}");
    assert!(synced["org_score"].as_f64().is_some_and(|s| (0.0..100.0).contains(&s)), "{synced}");

    let scores = json(&run(&["score", "--by", "account", "--output", "json"]));
    let scores = scores.as_array().expect("scores");
    assert_eq!(scores[0]["scope"], "org");
    assert!(scores.iter().any(|s| s["scope"] == "account" && s["id"] == "333333333333"), "{scores:?}");
    for s in scores {
        assert!(s["score"].as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)), "{s}");
    }
    let why = json(&run(&["score", "--by", "account", "--explain", "333333333333", "--output", "json"]));
    let lost: f64 =
        why["contributions"].as_array().expect("contributions").iter().filter_map(|c| c["points"].as_f64()).sum();
    let score = why["score"]["score"].as_f64().expect("score");
    assert!((100.0 - score - lost).abs() < 0.2, "the contributions explain the score: {why}");
    let org_why = run(&["score", "--by", "org", "--explain"]);
    assert!(org_why.status.success() && text(&org_why).contains("EC2.19"), "{}", text(&org_why));
    let unknown = run(&["score", "--by", "account", "--explain", "999999999999"]);
    assert!(!unknown.status.success() && text(&unknown).contains("has been scored"), "{}", text(&unknown));
    let table = run(&["score", "--by", "ou"]);
    assert!(table.status.success() && text(&table).contains("Root/Prod"), "{}", text(&table));

    let priorities = json(&run(&["priorities", "--output", "json"]));
    let first = &priorities[0];
    assert!(first["control_id"].is_string() && first["improvement_potential"].as_f64().is_some_and(|p| p > 0.0));
    assert!(first["failing_resources"].as_u64().is_some_and(|n| n > 0), "{first}");
    assert!(matches!(first["severity"].as_str(), Some("HIGH" | "CRITICAL")), "{first}");
    // The demo's open SSH/RDP group fails EC2.19 (critical: high-risk ports open to the world)
    // as well as CIS 1.2's EC2.13 and EC2.14.
    let top3: Vec<&str> =
        priorities.as_array().expect("list").iter().take(3).filter_map(|p| p["control_id"].as_str()).collect();
    assert!(top3.contains(&"EC2.19"), "{priorities}");

    let findings = json(&run(&["findings", "--source", "guardduty", "--status", "failing", "--output", "json"]));
    let findings = findings.as_array().expect("findings");
    assert!(!findings.is_empty());
    for f in findings {
        for field in [
            "id",
            "source",
            "account_id",
            "region",
            "resource_id",
            "resource_type",
            "control_id",
            "severity",
            "workflow_status",
            "compliance_status",
        ] {
            assert!(f.get(field).is_some(), "{field} missing from {f}");
        }
        assert_eq!(f["source"], "guardduty");
    }
    let bad = run(&["findings", "--status", "sideways"]);
    assert!(!bad.status.success() && text(&bad).contains("unknown status"), "{}", text(&bad));
    em.shutdown().await;
}

#[test]
fn demo_runs_the_loop_on_the_embedded_emulator_and_raises_the_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = orgsec(dir.path(), &["demo", "--dir", "run", "--output", "json"], &[], None);
    let v = json(&out);
    let before = v["before"]["org_score"].as_f64().expect("before.org_score");
    let after = v["after"]["org_score"].as_f64().expect("after.org_score");
    assert!(before > 0.0 && after > before && after <= 100.0, "the score rises: {before} -> {after}");
    assert!(v["priorities_before"][0]["control_id"].is_string(), "{v}");
    let jobs = v["remediations"].as_array().expect("remediations");
    let ok = |playbook: &str| jobs.iter().any(|j| j["playbook"] == playbook && j["state"] == "SUCCEEDED");
    for playbook in
        ["revoke-public-ingress", "set-password-policy", "enable-s3-account-bpa", "enable-ebs-default-encryption"]
    {
        assert!(ok(playbook), "{playbook} remediated: {jobs:#?}");
    }
    // isolate-instance waited for approval and was approved by the scripted admin.
    let iso = jobs.iter().find(|j| j["playbook"] == "isolate-instance").expect("isolate-instance job");
    assert_eq!((iso["state"].as_str(), iso["approved_by"].as_str()), (Some("SUCCEEDED"), Some("demo-admin")), "{iso}");
    assert!(jobs.iter().all(|j| j["state"] == "SUCCEEDED"), "{jobs:#?}");
    // The report and a bundle that verifies.
    let report = std::fs::read_to_string(dir.path().join("run/report.html")).expect("report.html");
    assert!(
        report.contains("id=\"trend\"")
            && report.contains("isolate-instance")
            && report.contains(&format!("{after:.1}"))
    );
    let verified = orgsec(dir.path(), &["evidence", "verify", "run/evidence.zip"], &[], None);
    assert!(verified.status.success(), "{}", text(&verified));
    // Run twice: the demo starts afresh each time.
    let again = json(&orgsec(dir.path(), &["demo", "--dir", "run", "--output", "json"], &[], None));
    assert_eq!(again["before"]["org_score"], v["before"]["org_score"]);
    let table = orgsec(dir.path(), &["demo", "--dir", "run"], &[], None);
    let t = text(&table);
    assert!(table.status.success() && t.contains("Top priorities") && t.contains("Scores before and after"), "{t}");
}

/// `orgsec serve` in `dir` with `env`; returns the child and the API's URL from its ready line.
fn start_serve(dir: &Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["--log-format", "json", "serve"]).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGSEC_")) {
        cmd.env_remove(k);
    }
    cmd.env("ORGSEC_DATABASE_URL", format!("sqlite://{}", dir.join("orgsec.db").display()));
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("spawn orgsec serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let url = line.trim().strip_prefix("orgsec API listening on ").map(str::to_string);
    match url {
        Some(u) => (child, u),
        None => {
            let _ = child.kill();
            panic!("orgsec serve did not say where it listens: {line:?}");
        }
    }
}

/// Kills the child when dropped, so that a failed assertion leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The EC2.13 finding of the demo's web-admin group, as the member's own administrator reads
/// it: (compliance, workflow, note).
async fn ssh_finding(em: &orgsec_emulator::Emulator) -> Option<(String, String, String)> {
    use aws_sdk_securityhub::types::{AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
    let hub = aws_sdk_securityhub::Client::new(&crate::support::sdk_config(em, "333333333333"));
    let eq = |v: &str| StringFilter::builder().value(v).comparison(StringFilterComparison::Equals).build();
    let filters = AwsSecurityFindingFilters::builder().compliance_security_control_id(eq("EC2.13")).build();
    let out = hub.get_findings().filters(filters).send().await.ok()?;
    let f = out
        .findings()
        .iter()
        .find(|f| f.resources().iter().any(|r| r.id().is_some_and(|id| id.contains("security-group"))))?;
    Some((
        f.compliance().and_then(|c| c.status()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        f.workflow().and_then(|w| w.status()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        f.note().and_then(|n| n.text()).unwrap_or_default().to_string(),
    ))
}

async fn open_ssh_again(em: &orgsec_emulator::Emulator) {
    let group = crate::support::group_id(em, "333333333333", "web-admin").await;
    crate::support::open_to_world(em, "333333333333", &group, 22).await;
}

/// Polls `check` every 100 ms until it holds; a generous deadline only guards against a hang
/// (the time a fix takes is measured by `orgsec-bench remediation`, not asserted here).
async fn eventually<F, Fut>(what: &str, mut check: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "gave up waiting: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_remediates_an_auto_binding_and_again_when_the_finding_comes_back() {
    let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("tokens.toml"),
        format!("[[token]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{}\"\n", hash_token("t")),
    )
    .expect("tokens");
    let mut env_owned = aws_env(&em.url());
    env_owned.extend([
        ("ORGSEC_TOKENS_FILE", "tokens.toml".to_string()),
        ("ORGSEC_LISTEN", "127.0.0.1:0".to_string()),
        ("ORGSEC_SYNC_INTERVAL", "1".to_string()),
    ]);
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str], stdin: Option<&str>| orgsec(d, args, &env, stdin);

    assert!(run(&["enroll", "--all"], None).status.success());
    assert!(run(&["sync"], None).status.success());
    let scores = json(&run(&["score", "--by", "account", "--output", "json"], None));
    let before = scores
        .as_array()
        .expect("scores")
        .iter()
        .find(|s| s["id"] == "333333333333")
        .and_then(|s| s["score"].as_f64())
        .expect("account score");
    assert_eq!(ssh_finding(&em).await.map(|f| f.0), Some("FAILED".to_string()));
    let binding = r#"{"name": "close-ssh", "controls": ["EC2.13"], "playbook": "revoke-public-ingress",
                      "mode": "auto", "scope": {"accounts": ["333333333333"]}}"#;
    assert!(run(&["bindings", "put", "--file", "-"], Some(binding)).status.success());

    let (child, url) = start_serve(d, &env);
    let _serve = KillOnDrop(child);
    let resolved = |note_has: &'static str| {
        let em = &em;
        move || async move {
            ssh_finding(em).await.is_some_and(|(c, w, note)| {
                c == "PASSED"
                    && w == "RESOLVED"
                    && note.starts_with("[orgsec] revoke-public-ingress")
                    && note.contains(note_has)
            })
        }
    };
    let took = eventually("the open SSH rule is revoked and the finding resolved", resolved("job")).await;
    eprintln!("first fix {took:?} after serve started");

    // The account's score, as the API serves it, rises once the fix is collected.
    let score = || {
        let url = url.clone();
        async move {
            let mut r = tonic::Request::new(pb::GetScoreRequest {
                scope: pb::ScopeKind::Account as i32,
                id: "333333333333".into(),
            });
            r.metadata_mut().insert("authorization", "Bearer t".parse().expect("header"));
            let Ok(mut client) = pb::posture_service_client::PostureServiceClient::connect(url).await else {
                return None;
            };
            client.get_score(r).await.ok().map(|s| s.into_inner().score)
        }
    };
    eventually("the account's score rises", || async { score().await.is_some_and(|s| s > before) }).await;

    // The rule comes back: the finding fails again, with a new generation, and gets a new job.
    open_ssh_again(&em).await;
    assert_eq!(ssh_finding(&em).await.map(|f| f.0), Some("FAILED".to_string()));
    let took = eventually("the reopened rule is revoked again", resolved("job")).await;
    eprintln!("second fix {took:?} after the finding came back");
    let jobs = json(&run(&["remediations", "list", "--output", "json"], None));
    let jobs = jobs.as_array().expect("jobs");
    assert_eq!(jobs.len(), 2, "one job per generation of the finding: {jobs:#?}");
    assert!(jobs.iter().all(|j| j["state"] == "SUCCEEDED"), "{jobs:#?}");
    em.shutdown().await;
}

#[test]
fn changes_list_the_monitors_log_with_the_count_since_the_last_assessment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let empty = orgsec(d, &["changes"], &[], None);
    assert!(empty.status.success() && text(&empty).contains("No changes logged"), "{}", text(&empty));
    let v = json(&orgsec(d, &["changes", "--output", "json"], &[], None));
    assert_eq!(v["changes"], serde_json::json!([]));
    assert_eq!(v["since_last_assessment"], 0);
    assert_eq!(v["last_assessment"], serde_json::Value::Null);
    let bad = orgsec(d, &["changes", "--kind", "weather"], &[], None);
    assert!(!bad.status.success() && text(&bad).contains("resource_new"), "{}", text(&bad));
    let bad = orgsec(d, &["changes", "--since", "yesterday"], &[], None);
    assert!(!bad.status.success() && text(&bad).contains("RFC 3339"), "{}", text(&bad));
}
