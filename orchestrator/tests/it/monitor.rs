//! The monitor against the demo organization: a new security group open to the world is logged
//! as a new resource and newly failing checks, its deletion as a resource gone; remediations are
//! logged; enough changes trigger a full assessment, which resets the count.

use std::sync::Arc;
use std::time::Duration;

use orgsec::binding::{BindingSpec, Mode, Scope};
use orgsec::collect::Collector;
use orgsec::collect::limits::Limits;
use orgsec::jobs::{JobState, Worker, WorkerConfig};
use orgsec::metrics::Metrics;
use orgsec::monitor::{Change, ChangeKind, Monitor};
use orgsec::notify::Notifier;
use orgsec::posture::SharedPosture;
use orgsec::remediate::PlaybookRunner;
use orgsec::rounds::Rounds;
use orgsec::store::Store;
use time::OffsetDateTime;

use crate::support::{self, EXTERNAL_ID, admin_aws, sdk_config, stores};

const WEB: &str = "333333333333";

fn rounds(em: &orgsec_emulator::Emulator, store: &Store, threshold: u64) -> Rounds {
    let aws = admin_aws(em, Some(EXTERNAL_ID), &[]);
    Rounds {
        collector: Collector::new(aws.clone(), store.clone(), Arc::new(Limits::default())),
        aws,
        store: store.clone(),
        posture: SharedPosture::default(),
        metrics: Arc::new(Metrics::new()),
        monitor: Arc::new(Monitor::new(store.clone(), threshold)),
    }
}

async fn logged(store: &Store, kind: ChangeKind) -> Vec<Change> {
    store.list_changes(None, &[kind], 1000).await.expect("changes")
}

#[tokio::test]
async fn the_change_log_is_kept_and_counted_on_every_backend() {
    for ts in stores().await {
        let store = &ts.store;
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap();
        let change = |s: i64, kind: ChangeKind, subject: &str| Change {
            at: at(s),
            kind,
            account_id: Some(WEB.into()),
            region: Some("us-east-1".into()),
            subject: subject.into(),
            detail: "d".into(),
        };
        assert_eq!(store.changes_since_assessment().await.unwrap(), (None, 0), "{}", ts.label);
        let many: Vec<Change> = (0..450).map(|i| change(i, ChangeKind::CheckFailing, &format!("c{i}"))).collect();
        store.record_changes(&many).await.unwrap();
        assert_eq!(store.changes_since_assessment().await.unwrap(), (None, 450), "{}", ts.label);
        store.record_changes(&[change(500, ChangeKind::Assessment, "full")]).await.unwrap();
        store.record_changes(&[change(501, ChangeKind::ResourceNew, "sg-1")]).await.unwrap();
        assert_eq!(store.changes_since_assessment().await.unwrap(), (Some(at(500)), 1), "{}", ts.label);
        let newest = store.list_changes(None, &[], 2).await.unwrap();
        assert_eq!(newest.iter().map(|c| c.subject.as_str()).collect::<Vec<_>>(), ["sg-1", "full"], "{}", ts.label);
        let since = store.list_changes(Some(at(449)), &[ChangeKind::CheckFailing], 10).await.unwrap();
        assert_eq!(since, [change(449, ChangeKind::CheckFailing, "c449")], "{}", ts.label);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_and_deleted_resources_failing_checks_and_remediations_are_logged_and_trigger_a_reassessment() {
    let em = support::emulator("demo").await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    crate::sync::enroll_all(&em, store).await;
    // A threshold the new group alone reaches: it appears and fails EC2.13 and EC2.19 at least.
    let rounds = rounds(&em, store, 3);
    rounds.round().await.expect("first round");
    assert!(store.list_changes(None, &[], 10).await.unwrap().is_empty(), "the first read is a baseline");

    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(&em, WEB));
    let vpc = ec2.describe_vpcs().send().await.expect("vpcs").vpcs()[0].vpc_id().expect("vpc").to_string();
    let group = ec2
        .create_security_group()
        .group_name("monitor-test")
        .description("opened by the monitor test")
        .vpc_id(vpc)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .expect("group id")
        .to_string();
    support::open_to_world(&em, WEB, &group, 22).await;
    rounds.round().await.expect("second round");

    let new = logged(store, ChangeKind::ResourceNew).await;
    assert!(new.iter().any(|c| c.subject.ends_with(&group) && c.account_id.as_deref() == Some(WEB)), "{new:#?}");
    let failing = logged(store, ChangeKind::CheckFailing).await;
    assert!(failing.iter().any(|c| c.subject.contains("EC2.13") && c.detail.contains(&group)), "{failing:#?}");
    let assessments = logged(store, ChangeKind::Assessment).await;
    assert_eq!(assessments.len(), 1, "the changes reached the threshold: one full assessment: {assessments:#?}");
    assert_eq!(store.changes_since_assessment().await.unwrap().1, 0, "the assessment starts the count again");

    // A remediation is logged with the job and what it changed.
    let now = OffsetDateTime::now_utc();
    let binding = BindingSpec {
        name: "close-ssh".into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode: Mode::Auto,
        scope: Scope { accounts: vec![WEB.into()], ..Scope::default() },
        ..BindingSpec::default()
    };
    store.put_binding(&binding, "test", now).await.expect("binding");
    rounds.dispatch().await;
    let runner = Arc::new(PlaybookRunner::new(admin_aws(&em, Some(EXTERNAL_ID), &[]), store.clone(), Notifier::none()));
    let worker = Worker::new(store.clone(), runner, WorkerConfig::new("test"));
    assert_eq!(worker.tick().await.expect("tick"), 2, "the demo's open SSH and the new group's");
    let jobs = store.list_jobs(&Default::default()).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.state == JobState::Succeeded), "{jobs:#?}");
    // The runner logs outcomes off the worker's path: wait for both entries.
    let mut remediations = Vec::new();
    for _ in 0..100 {
        remediations = logged(store, ChangeKind::Remediation).await;
        if remediations.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut subjects: Vec<&str> = remediations.iter().map(|c| c.subject.as_str()).collect();
    subjects.sort_unstable();
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(subjects, ids, "one entry per job: {remediations:#?}");
    assert!(remediations.iter().all(|c| c.detail.contains("revoked tcp 22")), "{remediations:#?}");

    // The group goes away: its findings are archived, and the next read logs it.
    ec2.delete_security_group().group_id(&group).send().await.expect("DeleteSecurityGroup");
    rounds.round().await.expect("third round");
    let deleted = logged(store, ChangeKind::ResourceDeleted).await;
    assert!(deleted.iter().any(|c| c.subject.ends_with(&group)), "{deleted:#?}");
}
