//! The closed loop against the emulator's demo organization: a binding matches a collected
//! finding, the dispatcher enqueues a job, a worker plans, executes and verifies it through the
//! member role, the finding is marked in Security Hub, and the next sync raises the score.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_securityhub::types::{AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
use orgsec::binding::{BindingSpec, Mode, Scope};
use orgsec::dispatch;
use orgsec::jobs::{JobState, Worker, WorkerConfig};
use orgsec::notify::Notifier;
use orgsec::posture;
use orgsec::remediate::PlaybookRunner;
use orgsec::score::{ScopeRef, Weights};
use orgsec::store::{FindingQuery, Store};
use orgsec_emulator::Emulator;
use time::OffsetDateTime;

use crate::support::{self, EXTERNAL_ID, admin_aws, sdk_config};

const PROD_WEB: &str = "333333333333";
const REGION: &str = "us-east-1";

fn web_admin_rules(em: &Emulator) -> Vec<(i64, String)> {
    let w = orgsec_emulator::admin::state_json(&em.shared().world.read());
    let rs = w["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == PROD_WEB && r["region"] == REGION)
        .cloned()
        .unwrap();
    let g = rs["security_groups"].as_array().unwrap().iter().find(|g| g["name"] == "web-admin").unwrap().clone();
    let mut rules: Vec<(i64, String)> = g["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from_port"].as_i64().unwrap(), r["source"]["cidr"].as_str().unwrap_or_default().to_string()))
        .collect();
    rules.sort();
    rules
}

fn binding(name: &str, mode: Mode) -> BindingSpec {
    BindingSpec {
        name: name.into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode,
        scope: Scope { accounts: vec![PROD_WEB.into()], ..Scope::default() },
        ..BindingSpec::default()
    }
}

/// The demo org enrolled and collected into `store`: the accounts read.
async fn enrolled_and_synced(em: &Emulator, store: &Store) -> Vec<String> {
    let accounts = crate::sync::enroll_all(em, store).await;
    crate::sync::sync(em, store, &accounts).await;
    accounts
}

/// An `approve` binding isolating every instance caught mining crypto-currency.
fn quarantine_miners() -> BindingSpec {
    BindingSpec {
        name: "quarantine-miners".into(),
        finding_types: vec!["CryptoCurrency:EC2/".into()],
        playbook: "isolate-instance".into(),
        mode: Mode::Approve,
        ..BindingSpec::default()
    }
}

/// The Security Hub finding `id` as the member account's own administrator reads it.
async fn security_hub_finding(em: &Emulator, id: &str) -> aws_sdk_securityhub::types::AwsSecurityFinding {
    let hub = aws_sdk_securityhub::Client::new(&sdk_config(em, PROD_WEB));
    let filter = StringFilter::builder().value(id).comparison(StringFilterComparison::Equals).build();
    let out = hub
        .get_findings()
        .filters(AwsSecurityFindingFilters::builder().id(filter).build())
        .send()
        .await
        .expect("GetFindings");
    out.findings().first().cloned().expect("the finding is in Security Hub")
}

async fn account_score(store: &Store, account: &str) -> f64 {
    posture::scoreboard(store, Weights::default()).await.expect("scoreboard").score(&ScopeRef::account(account)).score
}

fn runner(em: &Emulator, store: &Store, external_id: Option<&str>) -> Arc<PlaybookRunner> {
    Arc::new(PlaybookRunner::new(admin_aws(em, external_id, &[]), store.clone(), Notifier::none()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_binding_for_ec2_13_revokes_ssh_resolves_the_finding_and_raises_the_score() {
    let em = support::emulator("demo").await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    let accounts = enrolled_and_synced(&em, store).await;
    let q = FindingQuery { controls: vec!["EC2.13".into()], failing: Some(true), ..FindingQuery::default() };
    let failing = store.findings(&q).await.expect("findings");
    let ssh: Vec<_> = failing.iter().filter(|f| f.account_id == PROD_WEB).collect();
    assert_eq!(ssh.len(), 1, "the demo's open SSH rule fails EC2.13 once in {PROD_WEB}: {failing:#?}");
    let finding = ssh[0].clone();
    let before = account_score(store, PROD_WEB).await;
    assert_eq!(
        web_admin_rules(&em),
        [(22, "0.0.0.0/0".into()), (443, "10.0.0.0/8".into()), (3389, "0.0.0.0/0".into())]
    );

    let now = OffsetDateTime::now_utc();
    store.put_binding(&binding("close-ssh", Mode::Auto), "test", now).await.expect("binding");
    let report = dispatch::dispatch(store, now).await.expect("dispatch");
    assert_eq!(report.enqueued.len(), 1, "{report:?}");
    let again = dispatch::dispatch(store, now).await.expect("dispatch again");
    assert!(again.enqueued.is_empty() && again.existing == 1, "a finding maps to the job it has: {again:?}");

    let worker = Worker::new(store.clone(), runner(&em, store, Some(EXTERNAL_ID)), WorkerConfig::new("test"));
    assert_eq!(worker.tick().await.expect("tick"), 1);
    let job = store.get_job(&report.enqueued[0]).await.expect("job").expect("stored");
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");

    // Only the world-open SSH rule went; RDP and the private rule stay.
    assert_eq!(web_admin_rules(&em), [(443, "10.0.0.0/8".into()), (3389, "0.0.0.0/0".into())]);
    let sh = security_hub_finding(&em, &finding.id).await;
    assert_eq!(sh.compliance().and_then(|c| c.status()).map(|s| s.as_str()), Some("PASSED"));
    assert_eq!(sh.workflow().and_then(|w| w.status()).map(|s| s.as_str()), Some("RESOLVED"));
    let note = sh.note().and_then(|n| n.text()).unwrap_or_default().to_string();
    assert!(
        note.starts_with(&format!("[orgsec] revoke-public-ingress (job {})", job.id)) && note.contains("22"),
        "the note names the playbook, the job and what changed: {note}"
    );

    // The next sync brings the fix into the store, and the account's score rises.
    crate::sync::sync(&em, store, &accounts).await;
    let after = account_score(store, PROD_WEB).await;
    assert!(after > before, "the score rises: {before} -> {after}");
    let still = store.findings(&q).await.expect("findings");
    assert!(still.iter().all(|f| f.uid != finding.uid), "the finding passes now");
    let third = dispatch::dispatch(store, OffsetDateTime::now_utc()).await.expect("dispatch");
    assert!(third.enqueued.is_empty(), "nothing left to remediate: {third:?}");

    // The audit trail holds every step, in order.
    let trail: Vec<String> =
        store.audit_records_for_job(&job.id).await.expect("audit").into_iter().map(|r| r.action).collect();
    assert_eq!(trail, ["job.enqueued", "job.planned", "job.executed", "job.succeeded"], "{trail:?}");
}

/// The demo org enrolled and synced into `store`, an `auto` binding for EC2.13 in PROD_WEB,
/// and the dispatch that makes its one job: the accounts and the job's id.
async fn one_ssh_job(em: &Emulator, store: &Store) -> (Vec<String>, String) {
    let accounts = enrolled_and_synced(em, store).await;
    let now = OffsetDateTime::now_utc();
    store.put_binding(&binding("close-ssh", Mode::Auto), "test", now).await.expect("binding");
    let report = dispatch::dispatch(store, now).await.expect("dispatch");
    assert_eq!(report.enqueued.len(), 1, "{report:?}");
    (accounts, report.enqueued[0].clone())
}

/// Mutation counters by operation, without AssumeRole (which changes nothing in an account).
fn mutations(em: &Emulator) -> BTreeMap<String, u64> {
    let w = em.shared().world.read();
    w.counters.by_operation.iter().filter(|(op, _)| *op != "sts:AssumeRole").map(|(k, v)| (k.clone(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_right_external_id_the_job_fails_naming_the_role_and_nothing_changes() {
    let em = support::emulator("demo").await;
    for external_id in [None, Some("not-the-one")] {
        let ts = support::sqlite().await;
        let store = &ts.store;
        let (_, job_id) = one_ssh_job(&em, store).await;
        let before = mutations(&em);

        let worker = Worker::new(store.clone(), runner(&em, store, external_id), WorkerConfig::new("test"));
        worker.tick().await.expect("tick");
        let job = store.get_job(&job_id).await.expect("job").expect("stored");
        assert_eq!(job.state, JobState::Failed, "{external_id:?}: a refused role is not retried: {job:#?}");
        let error = job.error.unwrap_or_default();
        assert!(
            error.contains("arn:aws:iam::333333333333:role/OrgSecRemediationRole") && error.contains("ExternalId"),
            "{external_id:?}: the error names the role and what to check: {error}"
        );
        assert_eq!(mutations(&em), before, "{external_id:?}: nothing was mutated");
        assert_eq!(web_admin_rules(&em).len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn isolate_instance_on_the_crypto_mining_finding_waits_for_approval_and_leaves_a_complete_trail() {
    let em = support::emulator("demo").await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    enrolled_and_synced(&em, store).await;
    let now = OffsetDateTime::now_utc();
    let spec = quarantine_miners();
    store.put_binding(&spec, "test", now).await.expect("binding");
    let report = dispatch::dispatch(store, now).await.expect("dispatch");
    assert_eq!(
        report.enqueued.len(),
        1,
        "one job for the one mining instance, whichever sources report it: {report:?}"
    );
    let id = report.enqueued[0].clone();

    let worker = Worker::new(store.clone(), runner(&em, store, Some(EXTERNAL_ID)), WorkerConfig::new("test"));
    let before = mutations(&em);
    worker.tick().await.expect("tick");
    let job = store.get_job(&id).await.expect("job").expect("stored");
    assert_eq!(job.state, JobState::PendingApproval, "{job:#?}");
    assert_eq!(mutations(&em), before, "nothing changes before approval");

    orgsec::jobs::approve(store, &id, "secops-lead", OffsetDateTime::now_utc()).await.expect("approve");
    worker.tick().await.expect("tick");
    let job = store.get_job(&id).await.expect("job").expect("stored");
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    let after = mutations(&em);
    for op in [
        "ec2:CreateSnapshot",
        "ec2:ModifyInstanceAttribute",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:CreateSecurityGroup",
        "ec2:CreateTags",
    ] {
        assert!(after.get(op) > before.get(op), "{op} was called: {after:#?}");
    }

    let trail = store.audit_records_for_job(&id).await.expect("audit");
    let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["job.enqueued", "job.planned", "job.pending_approval", "job.approved", "job.executed", "job.succeeded"]
    );
    let approved = trail.iter().find(|r| r.action == "job.approved").expect("approval recorded");
    assert_eq!(approved.actor, "secops-lead", "the trail names who approved");
    let executed = trail.iter().find(|r| r.action == "job.executed").expect("execution recorded");
    let details: serde_json::Value = serde_json::from_str(&executed.details).expect("details are JSON");
    let steps: Vec<(&str, &str)> = details["result"]["details"]["steps"]
        .as_array()
        .map(|a| a.iter().map(|s| (s["step"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    assert_eq!(
        steps,
        [
            ("save metadata", "saved"),
            ("snapshot volumes", "done"),
            ("enable termination protection", "done"),
            ("detach instance profile", "done"),
            ("move to quarantine group", "done"),
            ("tag instance", "done"),
        ],
        "every step of the runbook is in the trail"
    );
    assert!(
        details["result"]["details"]["metadata"]["instance_id"].is_string(),
        "the saved metadata is kept: {details:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_check_reported_by_two_sources_gets_one_job() {
    let em = support::emulator("demo").await;
    // A Config rule that checks what EC2.13 checks, so that Config reports the open SSH rule too.
    let config = aws_sdk_config::Client::new(&sdk_config(&em, PROD_WEB));
    let source = aws_sdk_config::types::Source::builder()
        .owner(aws_sdk_config::types::Owner::Aws)
        .source_identifier("INCOMING_SSH_DISABLED")
        .build()
        .expect("rule source");
    let rule = aws_sdk_config::types::ConfigRule::builder().config_rule_name("restricted-ssh").source(source).build();
    config.put_config_rule().config_rule(rule).send().await.expect("put config rule");

    let ts = support::sqlite().await;
    let store = &ts.store;
    enrolled_and_synced(&em, store).await;
    let q = FindingQuery { controls: vec!["EC2.13".into()], failing: Some(true), ..FindingQuery::default() };
    let reports: Vec<_> =
        store.findings(&q).await.expect("findings").into_iter().filter(|f| f.account_id == PROD_WEB).collect();
    let sources: std::collections::BTreeSet<_> = reports.iter().map(|f| f.source).collect();
    assert!(sources.len() == 2 && reports.iter().all(|f| f.check_key == reports[0].check_key), "{reports:#?}");

    let now = OffsetDateTime::now_utc();
    store.put_binding(&binding("close-ssh", Mode::Auto), "test", now).await.expect("binding");
    let report = dispatch::dispatch(store, now).await.expect("dispatch");
    assert_eq!(report.enqueued.len(), 1, "{report:?}");
    let job = store.get_job(&report.enqueued[0]).await.expect("job").expect("stored");
    assert!(job.finding_uid.starts_with("securityhub|"), "Security Hub's finding is the one remediated: {job:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_role_that_may_not_mark_findings_falls_back_to_the_delegated_admin() {
    let em = support::emulator("demo").await;
    {
        // The demo's member role in PROD_WEB, less securityhub:BatchUpdateFindings.
        let mut w = em.shared().world.write();
        let role = w.accounts.get_mut(PROD_WEB).unwrap().iam.roles.get_mut("OrgSecRemediationRole").expect("role");
        let mut removed = 0;
        for policy in role.inline_policies.values_mut() {
            for st in policy["Statement"].as_array_mut().unwrap() {
                if let Some(actions) = st["Action"].as_array_mut() {
                    let n = actions.len();
                    actions.retain(|a| a != "securityhub:BatchUpdateFindings");
                    removed += n - actions.len();
                }
            }
        }
        assert_eq!(removed, 1, "the demo's role grants marking findings once");
    }
    let ts = support::sqlite().await;
    let store = &ts.store;
    let (_, job_id) = one_ssh_job(&em, store).await;
    let job_id = &job_id;

    let worker = Worker::new(store.clone(), runner(&em, store, Some(EXTERNAL_ID)), WorkerConfig::new("test"));
    worker.tick().await.expect("tick");
    let job = store.get_job(job_id).await.expect("job").expect("stored");
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    let finding = store.finding(&job.finding_uid).await.expect("store").expect("the job's finding");
    let sh = security_hub_finding(&em, &finding.id).await;
    assert_eq!(sh.workflow().and_then(|w| w.status()).map(|s| s.as_str()), Some("RESOLVED"));
    assert!(sh.note().and_then(|n| n.text()).unwrap_or_default().starts_with("[orgsec] revoke-public-ingress"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finding_that_fails_again_before_any_read_saw_it_pass_gets_a_new_job() {
    let em = support::emulator("demo").await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    let (accounts, first) = one_ssh_job(&em, store).await;
    let worker = Worker::new(store.clone(), runner(&em, store, Some(EXTERNAL_ID)), WorkerConfig::new("test"));
    worker.tick().await.expect("tick");
    assert_eq!(web_admin_rules(&em).len(), 2, "SSH revoked");

    // SSH is opened again before orgsec reads the account: the store never sees it pass.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let group = support::group_id(&em, PROD_WEB, "web-admin").await;
    support::open_to_world(&em, PROD_WEB, &group, 22).await;
    crate::sync::sync(&em, store, &accounts).await;
    let second = dispatch::dispatch(store, OffsetDateTime::now_utc()).await.expect("dispatch");
    assert_eq!(second.enqueued.len(), 1, "the reopened rule gets a job of its own: {second:?}");
    assert_ne!(second.enqueued, [first]);
    let again = dispatch::dispatch(store, OffsetDateTime::now_utc()).await.expect("dispatch");
    assert!(again.enqueued.is_empty(), "and only one: {again:?}");
    worker.tick().await.expect("tick");
    assert_eq!(web_admin_rules(&em), [(443, "10.0.0.0/8".into()), (3389, "0.0.0.0/0".into())]);
    let job = store.get_job(&second.enqueued[0]).await.expect("job").expect("stored");
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_remediate_pass_fixes_what_is_auto_leaves_approvals_waiting_and_recollects() {
    let em = support::emulator("demo").await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    enrolled_and_synced(&em, store).await;
    let now = OffsetDateTime::now_utc();
    store.put_binding(&binding("close-ssh", Mode::Auto), "test", now).await.expect("binding");
    let quarantine = quarantine_miners();
    store.put_binding(&quarantine, "test", now).await.expect("binding");
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let rounds = orgsec::rounds::Rounds {
        collector: orgsec::collect::Collector::new(
            aws.clone(),
            store.clone(),
            Arc::new(orgsec::collect::limits::Limits::default()),
        ),
        aws: aws.clone(),
        store: store.clone(),
        posture: posture::SharedPosture::default(),
        metrics: Arc::new(orgsec::metrics::Metrics::new()),
        monitor: Arc::new(orgsec::monitor::Monitor::new(store.clone(), 500)),
    };
    let pass = |config: &str| {
        let runner = runner(&em, store, Some(EXTERNAL_ID));
        rounds.remediate_once(runner, WorkerConfig::new(config), std::time::Duration::from_secs(60))
    };
    let snapshots_before = store.latest_snapshot_at().await.expect("snapshots");

    let first = pass("first").await.expect("first pass");
    assert!(first.idle, "{first:#?}");
    assert_eq!(first.dispatch.enqueued.len(), 2, "{:?}", first.dispatch);
    let states: BTreeMap<String, JobState> = first.jobs.iter().map(|j| (j.binding.clone(), j.state)).collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("close-ssh".to_string(), JobState::Succeeded),
            ("quarantine-miners".to_string(), JobState::PendingApproval)
        ])
    );
    assert_eq!(first.refreshed, [PROD_WEB], "the changed account is collected again");
    let q = FindingQuery { controls: vec!["EC2.13".into()], failing: Some(true), ..FindingQuery::default() };
    let failing = store.findings(&q).await.expect("findings");
    assert!(failing.iter().all(|f| f.account_id != PROD_WEB), "the store saw the fix without a sync: {failing:#?}");
    assert!(store.latest_snapshot_at().await.expect("snapshots") > snapshots_before, "scores were snapshotted");

    let idle = pass("second").await.expect("second pass");
    assert!(idle.idle && idle.dispatch.enqueued.is_empty() && idle.refreshed.is_empty(), "{idle:#?}");
    assert!(idle.jobs.is_empty(), "a pass with nothing to do touches no job: {:#?}", idle.jobs);

    let waiting = first.jobs.iter().find(|j| j.state == JobState::PendingApproval).expect("waiting job");
    orgsec::jobs::approve(store, &waiting.id, "secops", OffsetDateTime::now_utc()).await.expect("approve");
    let third = pass("third").await.expect("third pass");
    assert_eq!(third.jobs.len(), 1, "only the approved job: {:#?}", third.jobs);
    assert_eq!((third.jobs[0].id.as_str(), third.jobs[0].state), (waiting.id.as_str(), JobState::Succeeded));
    assert!(third.idle && third.dispatch.enqueued.is_empty(), "{third:#?}");
}
