//! Enrollment against the in-process emulator: discovery into the store, org-managed and
//! invitation memberships, idempotency (proved with the emulator's mutation counters and
//! state), refusals, the watch, and the member credentials cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use orgsec::aws::{AccessError, Aws};
use orgsec::enroll::{self, AccountState, EnrollError, Progress, Selection};
use orgsec::store::{AccountRecord, Store};
use orgsec_emulator::Emulator;
use parking_lot::Mutex;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{self, ADMIN, EXTERNAL_ID, admin_aws, emulator, sdk_config};

const MANAGEMENT: &str = "111111111111";
const PROD_WEB: &str = "333333333333";
const PROD_DATA: &str = "444444444444";
const DEV: &str = "555555555555";
const SANDBOX: &str = "666666666666";
const REGION: &str = "us-east-1";

/// Mutation counters by operation, without AssumeRole (which changes nothing in an account;
/// the emulator counts it to let tests see credential caching).
fn mutations(em: &Emulator) -> BTreeMap<String, u64> {
    let w = em.shared().world.read();
    w.counters.by_operation.iter().filter(|(op, _)| *op != "sts:AssumeRole").map(|(k, v)| (k.clone(), *v)).collect()
}

fn assume_role_count(em: &Emulator, account: &str) -> u64 {
    let role = format!("arn:aws:iam::{account}:role/OrgSecRemediationRole");
    let w = em.shared().world.read();
    w.counters.by_resource.get(&("sts:AssumeRole".to_string(), role)).copied().unwrap_or(0)
}

/// The emulator's world as JSON, without its clock.
fn world(em: &Emulator) -> Value {
    let mut v = orgsec_emulator::admin::state_json(&em.shared().world.read());
    if let Some(o) = v.as_object_mut() {
        o.remove("now");
    }
    v
}

/// The member statuses of the admin's hub and detector in us-east-1.
fn admin_members(em: &Emulator) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let w = em.shared().world.read();
    let rs = w.region(ADMIN, REGION).expect("admin region state");
    let hub = rs.hub.as_ref().expect("admin hub").members.values().map(|m| (m.account_id.clone(), m.status.clone()));
    let det = rs
        .detector
        .as_ref()
        .expect("admin detector")
        .members
        .values()
        .map(|m| (m.account_id.clone(), m.relationship_status.clone()));
    (hub.collect(), det.collect())
}

fn states(report: &enroll::EnrollReport) -> BTreeMap<String, AccountState> {
    report.accounts.iter().map(|a| (a.account_id.clone(), a.state)).collect()
}

async fn run(aws: &Aws, store: &Store, selection: Selection) -> Result<enroll::EnrollReport, EnrollError> {
    enroll::run(aws, store, &selection, &|_| {}).await
}

/// Adds the member role to `account` in the emulator, trusting the demo's admin with the demo's
/// ExternalId, with `policy` as its permissions (what a platform team's StackSet would do).
fn add_member_role(em: &Emulator, account: &str, policy: Value) {
    let mut w = em.shared().world.write();
    let now = w.now();
    let a = w.accounts.get_mut(account).expect("account exists");
    a.iam.roles.insert(
        "OrgSecRemediationRole".into(),
        orgsec_emulator::world::Role {
            name: "OrgSecRemediationRole".into(),
            id: format!("AROA{account}TEST1"),
            arn: format!("arn:aws:iam::{account}:role/OrgSecRemediationRole"),
            path: "/".into(),
            created_ms: now,
            description: String::new(),
            max_session_duration: 3600,
            trust_policy: json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ADMIN}:root")}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]}),
            inline_policies: BTreeMap::from([("orgsec".to_string(), policy)]),
            attached_policies: BTreeSet::new(),
            tags: BTreeMap::new(),
        },
    );
}

/// The demo's member role policy, plus accepting administrator invitations.
fn policy_that_accepts_invitations() -> Value {
    let mut p = orgsec_emulator::scenario::remediation_role_policy();
    p["Statement"].as_array_mut().expect("statements").push(json!({
        "Sid": "Enroll", "Effect": "Allow", "Resource": "*",
        "Action": ["securityhub:AcceptAdministratorInvitation", "guardduty:AcceptAdministratorInvitation"]}));
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn all_enrolls_the_sandbox_records_every_account_and_a_second_run_changes_nothing() {
    for s in support::stores().await {
        let em = emulator("demo").await;
        let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
        assert!(em.shared().world.read().region(SANDBOX, REGION).is_none_or(|r| r.hub.is_none()));
        assert!(!admin_members(&em).0.contains_key(SANDBOX), "the sandbox starts outside the hub");

        let seen = Mutex::new(Vec::new());
        let progress = |p: &Progress| seen.lock().push(p.clone());
        let report = enroll::run(&aws, &s.store, &Selection::All, &progress).await.expect("enroll --all");
        assert_eq!(
            states(&report),
            BTreeMap::from([
                (MANAGEMENT.into(), AccountState::Management),
                (ADMIN.into(), AccountState::Admin),
                (PROD_WEB.into(), AccountState::Enrolled),
                (PROD_DATA.into(), AccountState::Enrolled),
                (DEV.into(), AccountState::Enrolled),
                (SANDBOX.into(), AccountState::Enrolled),
            ]),
            "{}: {report:#?}",
            s.label
        );
        assert_eq!((report.admin_account.as_str(), report.management_account.as_deref()), (ADMIN, Some(MANAGEMENT)));
        let sandbox = report.accounts.iter().find(|a| a.account_id == SANDBOX).unwrap();
        assert_eq!(
            (sandbox.securityhub.as_str(), sandbox.guardduty.as_str(), sandbox.role.as_str()),
            ("Enabled", "Enabled", "ok")
        );
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 4, "one progress report per member enrolled");
        assert!(seen.iter().all(|p| p.total == 4) && seen.last().unwrap().done == 4);

        // In AWS: the sandbox is an org-managed member of the admin's hub and detector, with
        // Security Hub and GuardDuty turned on in it.
        let (hub, det) = admin_members(&em);
        assert_eq!(hub.get(SANDBOX).map(String::as_str), Some("Enabled"));
        assert_eq!(det.get(SANDBOX).map(String::as_str), Some("Enabled"));
        {
            let w = em.shared().world.read();
            let rs = w.region(SANDBOX, REGION).unwrap();
            let administrator = rs.hub.as_ref().and_then(|h| h.administrator.as_ref()).map(|a| a.account_id.clone());
            assert_eq!(administrator.as_deref(), Some(ADMIN));
            assert!(rs.detector.is_some());
        }

        // In the store: every account, with its OU path and tags.
        let records: BTreeMap<String, AccountRecord> =
            s.store.accounts().await.unwrap().into_iter().map(|r| (r.account_id.clone(), r)).collect();
        assert_eq!(records.len(), 6, "{}", s.label);
        let ou = |id: &str| records[id].ou_path.clone();
        assert_eq!(
            [ou(MANAGEMENT), ou(ADMIN), ou(PROD_WEB), ou(DEV), ou(SANDBOX)],
            [
                Some("Root".into()),
                Some("Root/Prod".into()),
                Some("Root/Prod".into()),
                Some("Root/Dev".into()),
                Some("Root/Sandbox".into())
            ]
        );
        assert_eq!(records[PROD_WEB].tags.get("orgsec:criticality").map(String::as_str), Some("4"));
        assert_eq!(records[PROD_WEB].tags.get("team").map(String::as_str), Some("web"));
        assert_eq!(records[SANDBOX].tags, BTreeMap::from([("orgsec:criticality".to_string(), "1".to_string())]));
        assert_eq!(records[SANDBOX].name, "sandbox");
        assert_eq!(records[SANDBOX].email, "aws-sandbox@example.com");
        assert_eq!(records[SANDBOX].org_status.as_deref(), Some("ACTIVE"));
        assert_eq!(records[SANDBOX].state, AccountState::Enrolled);
        assert_eq!(records[SANDBOX].role_ok, Some(true));
        assert_eq!(
            (records[SANDBOX].securityhub_status.as_str(), records[SANDBOX].guardduty_status.as_str()),
            ("Enabled", "Enabled")
        );
        assert!(records[SANDBOX].enrolled_at.is_some() && records[SANDBOX].checked_at.is_some());
        assert_eq!(records[MANAGEMENT].role_ok, None, "the management account is left alone");
        assert!(records[MANAGEMENT].reason.as_deref().unwrap().contains("--account"));
        let first_enrolled = records[SANDBOX].enrolled_at;

        // A second run: the same outcome, and not one change in AWS.
        let (before_counters, before_world) = (mutations(&em), world(&em));
        let again = run(&aws, &s.store, Selection::All).await.expect("second run");
        assert_eq!(states(&again), states(&report));
        assert_eq!(mutations(&em), before_counters, "{}: the second run changed something in AWS", s.label);
        assert_eq!(world(&em), before_world);
        let sandbox = s.store.account(SANDBOX).await.unwrap().unwrap();
        assert_eq!(sandbox.enrolled_at, first_enrolled, "enrolled_at is the first time");
        em.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_external_id_fails_every_member_with_the_role_named_and_changes_nothing() {
    let em = emulator("demo").await;
    let store = support::sqlite().await;
    let aws = admin_aws(&em, Some("not-the-demo-id"), &[]);
    let before = world(&em);
    let report = run(&aws, &store.store, Selection::All).await.expect("the run itself succeeds");
    for id in [PROD_WEB, PROD_DATA, DEV, SANDBOX] {
        let a = report.accounts.iter().find(|a| a.account_id == id).unwrap();
        assert_eq!(a.state, AccountState::Failed, "{id}");
        let reason = a.reason.as_deref().unwrap();
        assert!(
            reason.starts_with(&format!("cannot assume arn:aws:iam::{id}:role/OrgSecRemediationRole: AccessDenied")),
            "{reason}"
        );
        assert!(reason.contains("allows the admin account 222222222222"), "{reason}");
        assert!(reason.contains("ORGSEC_EXTERNAL_ID (set: yes)"), "{reason}");
        assert_eq!(a.role, reason, "the role column says why");
        assert_eq!(store.store.account(id).await.unwrap().unwrap().role_ok, Some(false));
    }
    assert!(mutations(&em).is_empty(), "nothing was changed: {:?}", mutations(&em));
    assert_eq!(world(&em), before);
    assert!(!admin_members(&em).0.contains_key(SANDBOX));
    assert!(enroll::render_table(&report).contains("refused"));

    // The same refusal from `member`, as a typed error.
    match aws.member(PROD_WEB, REGION).await {
        Err(e @ AccessError::RoleRefused { .. }) => {
            assert!(e.to_string().contains("arn:aws:iam::333333333333:role/OrgSecRemediationRole"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Without any ExternalId the message says it is not set.
    let unset = admin_aws(&em, None, &[]);
    let e = unset.check_role(PROD_WEB).await.unwrap_err().to_string();
    assert!(e.contains("ORGSEC_EXTERNAL_ID (set: no)"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_account_is_enrolled_by_id_and_the_others_are_only_recorded() {
    let em = emulator("demo").await;
    let store = support::sqlite().await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let report = run(&aws, &store.store, Selection::Accounts(vec![SANDBOX.into()])).await.unwrap();
    assert_eq!(states(&report), BTreeMap::from([(SANDBOX.to_string(), AccountState::Enrolled)]));
    assert_eq!(report.accounts[0].ou_path.as_deref(), Some("Root/Sandbox"));
    assert_eq!(assume_role_count(&em, PROD_WEB), 0, "unselected accounts are not touched");

    let recorded: BTreeMap<String, AccountState> =
        store.store.accounts().await.unwrap().into_iter().map(|r| (r.account_id, r.state)).collect();
    assert_eq!(
        recorded,
        BTreeMap::from([
            (MANAGEMENT.into(), AccountState::Management),
            (ADMIN.into(), AccountState::Admin),
            (PROD_WEB.into(), AccountState::Discovered),
            (PROD_DATA.into(), AccountState::Discovered),
            (DEV.into(), AccountState::Discovered),
            (SANDBOX.into(), AccountState::Enrolled),
        ])
    );

    // The admin named explicitly is reported, not enrolled.
    let report = run(&aws, &store.store, Selection::Accounts(vec![ADMIN.into()])).await.unwrap();
    assert_eq!(states(&report), BTreeMap::from([(ADMIN.to_string(), AccountState::Admin)]));

    match run(&aws, &store.store, Selection::Accounts(vec!["12345".into()])).await {
        Err(e @ EnrollError::InvalidAccount(_)) => assert!(e.to_string().contains("12 digits"), "{e}"),
        other => panic!("expected an invalid account id, got {other:?}"),
    }
}

/// An organization with two accounts outside it, each with Security Hub and GuardDuty on.
const OUTSIDE: &str = r#"
name = "outside"
region = "us-east-1"

[organization]
management = "111111111111"
delegated_admin = "222222222222"
ous = ["Prod"]

[[account]]
id = "111111111111"
name = "management"
baseline = false

[[account]]
id = "222222222222"
name = "security"
ou = "Prod"

[[account]]
id = "777777777777"
name = "partner-a"
outside_org = true

[[account]]
id = "888888888888"
name = "partner-b"
outside_org = true
"#;

#[tokio::test(flavor = "multi_thread")]
async fn accounts_outside_the_organization_are_invited_and_accept_through_their_role() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outside.toml");
    std::fs::write(&path, OUTSIDE).unwrap();
    let em = emulator(path.to_str().unwrap()).await;
    // 777's role may accept invitations; 888's has the demo's policy, which may not.
    add_member_role(&em, "777777777777", policy_that_accepts_invitations());
    add_member_role(&em, "888888888888", orgsec_emulator::scenario::remediation_role_policy());
    let store = support::sqlite().await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);

    let report =
        run(&aws, &store.store, Selection::Accounts(vec!["777777777777".into(), "888888888888".into()])).await.unwrap();
    let a = &report.accounts[0];
    assert_eq!((a.account_id.as_str(), a.state, a.ou_path.as_deref()), ("777777777777", AccountState::Enrolled, None));
    assert_eq!((a.securityhub.as_str(), a.guardduty.as_str()), ("Enabled", "Enabled"));
    let b = &report.accounts[1];
    assert_eq!((b.account_id.as_str(), b.state), ("888888888888", AccountState::Invited));
    assert_eq!((b.securityhub.as_str(), b.guardduty.as_str()), ("Invited", "Invited"));
    let reason = b.reason.as_deref().unwrap();
    for text in [
        "securityhub:AcceptAdministratorInvitation",
        "guardduty:AcceptAdministratorInvitation",
        "arn:aws:iam::888888888888:role/OrgSecRemediationRole",
    ] {
        assert!(reason.contains(text), "{text} missing from: {reason}");
    }
    let (hub, det) = admin_members(&em);
    assert_eq!((hub["777777777777"].as_str(), det["777777777777"].as_str()), ("Enabled", "Enabled"));
    assert_eq!((hub["888888888888"].as_str(), det["888888888888"].as_str()), ("Invited", "Invited"));
    assert_eq!(store.store.account("888888888888").await.unwrap().unwrap().ou_path, None);

    // Re-running invites nobody twice.
    let before = mutations(&em);
    run(&aws, &store.store, Selection::Accounts(vec!["777777777777".into(), "888888888888".into()])).await.unwrap();
    assert_eq!(mutations(&em), before);

    // 888's owner accepts by hand; the watch notices and records it enrolled.
    let own = sdk_config(&em, "888888888888");
    let sh = aws_sdk_securityhub::Client::new(&own);
    let inv = sh.list_invitations().send().await.unwrap();
    let id = inv.invitations()[0].invitation_id().unwrap().to_string();
    sh.accept_administrator_invitation().administrator_id(ADMIN).invitation_id(id).send().await.unwrap();
    let gd = aws_sdk_guardduty::Client::new(&own);
    let det_id = gd.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let inv = gd.list_invitations().send().await.unwrap();
    let id = inv.invitations()[0].invitation_id().unwrap().to_string();
    gd.accept_administrator_invitation()
        .detector_id(det_id)
        .administrator_id(ADMIN)
        .invitation_id(id)
        .send()
        .await
        .unwrap();

    let watched = enroll::watch(&aws, &store.store, &|_| {}).await.unwrap();
    assert_eq!(states(&watched), BTreeMap::from([("888888888888".to_string(), AccountState::Enrolled)]));
    assert_eq!(store.store.account("888888888888").await.unwrap().unwrap().reason, None);
    // Nothing is left unfinished.
    assert!(enroll::watch(&aws, &store.store, &|_| {}).await.unwrap().accounts.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_enrolls_accounts_that_join_later_and_retries_failed_ones() {
    let em = emulator("demo").await;
    let store = support::sqlite().await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    run(&aws, &store.store, Selection::All).await.unwrap();
    let read = store.store.tags_read_at().await.unwrap();
    assert_eq!(read.len(), 6, "every account's tags were read: {read:?}");
    assert!(enroll::watch(&aws, &store.store, &|_| {}).await.unwrap().accounts.is_empty(), "nothing new yet");

    // Two accounts join; the platform team deploys the member role in the first only.
    let org = aws_sdk_organizations::Client::new(&sdk_config(&em, MANAGEMENT));
    let mut created = Vec::new();
    for name in ["payments", "analytics"] {
        let out = org
            .create_account()
            .account_name(name)
            .email(format!("aws-{name}@example.com"))
            .tags(aws_sdk_organizations::types::Tag::builder().key("orgsec:criticality").value("3").build().unwrap())
            .send()
            .await
            .unwrap();
        created.push(out.create_account_status().unwrap().account_id().unwrap().to_string());
    }
    let (with_role, without) = (created[0].clone(), created[1].clone());
    add_member_role(&em, &with_role, orgsec_emulator::scenario::remediation_role_policy());

    let report = enroll::watch(&aws, &store.store, &|_| {}).await.unwrap();
    assert_eq!(
        states(&report),
        BTreeMap::from([(with_role.clone(), AccountState::Enrolled), (without.clone(), AccountState::Failed)])
    );
    let joined = store.store.account(&with_role).await.unwrap().unwrap();
    assert_eq!((joined.name.as_str(), joined.ou_path.as_deref()), ("payments", Some("Root")));
    assert_eq!(joined.tags.get("orgsec:criticality").map(String::as_str), Some("3"));
    let (hub, det) = admin_members(&em);
    assert_eq!((hub[&with_role].as_str(), det[&with_role].as_str()), ("Enabled", "Enabled"));
    assert!(!hub.contains_key(&without), "a refused role stops enrollment before any change");

    // The role arrives in the second account: the next round enrolls it.
    add_member_role(&em, &without, orgsec_emulator::scenario::remediation_role_policy());
    let report = enroll::watch(&aws, &store.store, &|_| {}).await.unwrap();
    assert_eq!(states(&report), BTreeMap::from([(without.clone(), AccountState::Enrolled)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_is_completed_by_the_next() {
    let em = emulator("demo").await;
    let store = support::sqlite().await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    // The first run got as far as the sandbox's Security Hub membership, then stopped.
    let sh = aws.admin(REGION).securityhub();
    sh.create_members()
        .account_details(aws_sdk_securityhub::types::AccountDetails::builder().account_id(SANDBOX).build())
        .send()
        .await
        .unwrap();
    let before = mutations(&em);
    let report = run(&aws, &store.store, Selection::All).await.unwrap();
    assert_eq!(report.accounts.iter().find(|a| a.account_id == SANDBOX).unwrap().state, AccountState::Enrolled);
    let mut added: Vec<String> =
        mutations(&em).into_iter().filter(|(op, n)| before.get(op) != Some(n)).map(|(op, _)| op).collect();
    added.sort();
    assert_eq!(added, ["guardduty:CreateMembers"], "only what was missing is done");
}

#[tokio::test(flavor = "multi_thread")]
async fn member_credentials_are_assumed_once_per_account_whatever_the_callers() {
    let em = emulator("demo").await;
    let regions = ["us-east-1", "eu-west-1", "ap-south-1"];
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &regions);
    assert_eq!(aws.regions(), regions);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..48 {
        let aws = aws.clone();
        tasks.spawn(async move {
            let c = aws.member(PROD_WEB, regions[i % 3]).await.expect("member clients");
            assert_eq!((c.account_id.as_str(), c.region.as_str()), (PROD_WEB, regions[i % 3]));
            match i % 4 {
                0 => c.guardduty().list_detectors().send().await.map(|_| ()).map_err(|e| format!("{e:?}")),
                1 => {
                    c.config().describe_configuration_recorders().send().await.map(|_| ()).map_err(|e| format!("{e:?}"))
                }
                2 => c.accessanalyzer().list_analyzers().send().await.map(|_| ()).map_err(|e| format!("{e:?}")),
                _ => c.securityhub().get_enabled_standards().send().await.map(|_| ()).map_err(|e| format!("{e:?}")),
            }
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        // Services off in some regions answer with errors; the credentials are what matters.
        if r.expect("task").is_ok() {
            ok += 1;
        }
    }
    assert!(ok >= 24, "calls through the role work ({ok} of 48)");
    assert_eq!(aws.assume_role_calls(PROD_WEB), 1);
    assert_eq!(assume_role_count(&em, PROD_WEB), 1, "STS saw one AssumeRole");

    // check_role ignores the cache and primes it.
    aws.check_role(PROD_DATA).await.unwrap();
    aws.member(PROD_DATA, "eu-west-1").await.unwrap().guardduty().list_detectors().send().await.unwrap();
    assert_eq!(aws.assume_role_calls(PROD_DATA), 1);
    aws.check_role(PROD_DATA).await.unwrap();
    assert_eq!(aws.assume_role_calls(PROD_DATA), 2);

    // The admin's own account needs no role.
    let own = aws.member(ADMIN, REGION).await.unwrap();
    assert_eq!(own.account_id, ADMIN);
    own.guardduty().list_detectors().send().await.unwrap();
    assert_eq!(aws.assume_role_calls(ADMIN), 0);
    assert_eq!(aws.caller_account().await.unwrap(), ADMIN);
}

/// Counts requests sent.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interceptors_see_the_calls_of_admin_and_member_clients() {
    let em = emulator("demo").await;
    let count = CountRequests::default();
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]).with_interceptor(count.clone());
    aws.admin(REGION).guardduty().list_detectors().send().await.unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    aws.member(PROD_WEB, REGION).await.unwrap().guardduty().list_detectors().send().await.unwrap();
    // GetCallerIdentity and AssumeRole (STS) and ListDetectors.
    assert_eq!(count.0.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_records_round_trip_and_keep_their_first_sighting() {
    for s in support::stores().await {
        let t0 = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let mut r = AccountRecord::new(PROD_WEB, AccountState::Discovered, t0);
        r.name = "prod-web".into();
        r.ou_path = Some("Root/Prod".into());
        r.tags = BTreeMap::from([("orgsec:criticality".into(), "4".into())]);
        s.store.upsert_account(&r).await.unwrap();
        assert_eq!(s.store.account(PROD_WEB).await.unwrap().as_ref(), Some(&r), "{}", s.label);

        let t1 = t0 + time::Duration::hours(1);
        let mut later = r.clone();
        later.first_seen_at = t1;
        later.updated_at = t1;
        later.state = AccountState::Enrolled;
        later.role_ok = Some(true);
        later.reason = None;
        later.regions = BTreeMap::from([(
            "us-east-1".into(),
            enroll::RegionMembership { securityhub: "Enabled".into(), guardduty: "Enabled".into() },
        )]);
        later.checked_at = Some(t1);
        later.enrolled_at = Some(t1);
        s.store.upsert_account(&later).await.unwrap();
        let back = s.store.account(PROD_WEB).await.unwrap().unwrap();
        assert_eq!(back.first_seen_at, t0, "{}: the first sighting is kept", s.label);
        assert_eq!(back, AccountRecord { first_seen_at: t0, ..later });
        assert_eq!(s.store.accounts().await.unwrap().len(), 1);
        assert_eq!(s.store.account(DEV).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_organization_enrolls_under_the_published_rate_limits() {
    // Every enrollment calls the admin's GetMembers and CreateMembers, in one bucket per API:
    // unpaced, 60 accounts at once ran past its burst and the SDK's retries gave up (20 failed).
    let em = Emulator::builder()
        .scenario("generate:accounts=60,resources=4,seed=3")
        .rate_limits(true)
        .start()
        .await
        .expect("emulator starts");
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let s = support::sqlite().await;
    let report = run(&aws, &s.store, Selection::All).await.expect("enroll --all");
    let not_enrolled: Vec<_> = report
        .accounts
        .iter()
        .filter(|a| !matches!(a.state, AccountState::Enrolled | AccountState::Admin | AccountState::Management))
        .map(|a| format!("{} {}: {}", a.account_id, a.state, a.reason.as_deref().unwrap_or("-")))
        .collect();
    assert!(not_enrolled.is_empty(), "{not_enrolled:#?}");
    let enrolled = report.accounts.iter().filter(|a| a.state == AccountState::Enrolled).count();
    assert_eq!(enrolled, 60, "{}", report.summary());
    let (hub, detector) = admin_members(&em);
    assert_eq!(hub.values().filter(|s| *s == "Enabled").count(), 60, "{hub:?}");
    assert_eq!(detector.values().filter(|s| *s == "Enabled").count(), 60, "{detector:?}");
}
