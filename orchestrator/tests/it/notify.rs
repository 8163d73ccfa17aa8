//! Notifications against local HTTP receivers: Slack's message, the webhook's HMAC signature,
//! Splunk's token and event; retries on 5xx; a dead target costs its own delivery only, never
//! a remediation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use orgsec::binding::{BindingSpec, Mode, Scope};
use orgsec::jobs::{JobState, Worker, WorkerConfig};
use orgsec::notify::{Event, Kind, Notifier, TargetSettings, sign};
use orgsec::remediate::PlaybookRunner;
use parking_lot::Mutex;
use serde_json::Value;
use time::OffsetDateTime;

use crate::support::{self, EXTERNAL_ID, admin_aws};

/// What a receiver got: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on a free loopback port answering `fail_first` requests with 503, then 200.
async fn receiver(fail_first: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            let mut all = seen.lock();
            all.push((headers, body));
            if all.len() <= fail_first { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

fn target(kind: Kind, url: &str) -> TargetSettings {
    TargetSettings { kind, url: url.into(), secret: None, secret_env: None, token: None, token_env: None }
}

fn event() -> Event {
    Event {
        event: "remediation.succeeded".into(),
        job_id: "job-1".into(),
        binding: "close-ssh".into(),
        playbook: "revoke-public-ingress".into(),
        mode: "auto".into(),
        finding_uid: "securityhub|arn|f-1".into(),
        account_id: "333333333333".into(),
        region: "us-east-1".into(),
        resource_type: "AwsEc2SecurityGroup".into(),
        resource_id: "arn:aws:ec2:us-east-1:333333333333:security-group/sg-1".into(),
        control_id: Some("EC2.13".into()),
        finding_type: None,
        title: "Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22".into(),
        actions: vec!["revoked tcp 22 from 0.0.0.0/0".into()],
        outcome: "SUCCEEDED".into(),
        error: None,
        time: 1_800_000_000,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_target_gets_its_format_and_a_dead_one_is_reported_not_raised() {
    let (slack_url, slack) = receiver(0).await;
    let (hook_url, hook) = receiver(1).await;
    let (splunk_url, splunk) = receiver(0).await;
    let dead = dead_url().await;
    let settings = BTreeMap::from([
        ("slack".to_string(), target(Kind::Slack, &slack_url)),
        (
            "soar".to_string(),
            TargetSettings { secret_env: Some("SOAR_KEY".into()), ..target(Kind::Webhook, &hook_url) },
        ),
        ("splunk".to_string(), TargetSettings { token: Some("hec-token".into()), ..target(Kind::Splunk, &splunk_url) }),
        ("gone".to_string(), target(Kind::Slack, &dead)),
    ]);
    let notifier = Notifier::new(&settings, |v| (v == "SOAR_KEY").then(|| "s3cret".to_string())).expect("notifier");
    let names: Vec<String> = ["slack", "soar", "splunk", "gone", "typo"].iter().map(|s| s.to_string()).collect();
    let deliveries = notifier.send(&names, &event()).await;
    let by: BTreeMap<&str, _> = deliveries.iter().map(|d| (d.target.as_str(), d)).collect();
    assert_eq!((by["slack"].attempts, by["slack"].error.as_deref()), (1, None));
    assert_eq!((by["soar"].attempts, by["soar"].error.as_deref()), (2, None), "a 503 is tried again");
    assert_eq!(by["splunk"].error, None);
    assert_eq!(by["gone"].attempts, 3);
    assert!(by["gone"].error.as_deref().is_some_and(|e| e.contains("cannot reach")), "{:?}", by["gone"]);
    assert!(by["typo"].error.as_deref().is_some_and(|e| e.contains("[notifications.typo]")), "{:?}", by["typo"]);

    let slack = slack.lock();
    let text: Value = serde_json::from_slice(&slack[0].1).expect("slack json");
    let text = text["text"].as_str().expect("text");
    for part in ["SUCCEEDED", "EC2.13", "333333333333", "security-group/sg-1", "revoked tcp 22", "job-1"] {
        assert!(text.contains(part), "{part} missing from the Slack message: {text}");
    }

    let hook = hook.lock();
    assert_eq!(hook.len(), 2);
    let (headers, body) = &hook[1];
    let ts: i64 = headers["x-orgsec-timestamp"].to_str().unwrap().parse().expect("timestamp");
    let expected = format!("sha256={}", sign(b"s3cret", ts, body));
    assert_eq!(headers["x-orgsec-signature"].to_str().unwrap(), expected, "the signature verifies");
    assert_ne!(format!("sha256={}", sign(b"wrong", ts, body)), expected);
    let sent: Value = serde_json::from_slice(body).expect("webhook json");
    assert_eq!((sent["job_id"].as_str(), sent["outcome"].as_str()), (Some("job-1"), Some("SUCCEEDED")));

    let splunk = splunk.lock();
    assert_eq!(splunk[0].0["authorization"].to_str().unwrap(), "Splunk hec-token");
    let sent: Value = serde_json::from_slice(&splunk[0].1).expect("splunk json");
    assert_eq!(sent["sourcetype"], "orgsec:remediation");
    assert_eq!(sent["event"]["account_id"], "333333333333");
}

fn binding(name: &str, mode: Mode, notify: &[&str]) -> BindingSpec {
    BindingSpec {
        name: name.into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode,
        scope: Scope { accounts: vec!["333333333333".into()], ..Scope::default() },
        notify: notify.iter().map(|s| s.to_string()).collect(),
        ..BindingSpec::default()
    }
}

/// A fresh store of the demo org, enrolled and synced, with `binding`, dispatched and worked
/// once with `notifier`: the store (kept alive) and the binding's one job as it ended.
async fn one_job(
    em: &orgsec_emulator::Emulator,
    notifier: Notifier,
    binding: BindingSpec,
) -> (support::TestStore, orgsec::jobs::Job) {
    let ts = support::sqlite().await;
    let store = &ts.store;
    let accounts = crate::sync::enroll_all(em, store).await;
    crate::sync::sync(em, store, &accounts).await;
    let now = OffsetDateTime::now_utc();
    store.put_binding(&binding, "test", now).await.expect("binding");
    let report = orgsec::dispatch::dispatch(store, now).await.expect("dispatch");
    assert_eq!(report.enqueued.len(), 1, "{report:?}");
    let runner = Arc::new(PlaybookRunner::new(admin_aws(em, Some(EXTERNAL_ID), &[]), store.clone(), notifier));
    Worker::new(store.clone(), runner, WorkerConfig::new("test")).tick().await.expect("tick");
    let job = store.get_job(&report.enqueued[0]).await.expect("job").expect("stored");
    (ts, job)
}

#[tokio::test(flavor = "multi_thread")]
async fn remediations_notify_their_outcome_and_a_dead_target_never_blocks_one() {
    let (slack_url, slack) = receiver(0).await;
    let dead = dead_url().await;
    let settings = BTreeMap::from([
        ("slack".to_string(), target(Kind::Slack, &slack_url)),
        ("gone".to_string(), target(Kind::Slack, &dead)),
    ]);
    let notifier = Notifier::new(&settings, |_| None).expect("notifier");
    let em = support::emulator("demo").await;

    // notify mode: nothing changes, the plan goes out.
    let (_ts, job) = one_job(&em, notifier.clone(), binding("tell-me", Mode::Notify, &["slack"])).await;
    assert_eq!(job.state, JobState::Notified, "{job:#?}");
    {
        let got = slack.lock();
        assert_eq!(got.len(), 1);
        let text: Value = serde_json::from_slice(&got[0].1).unwrap();
        let text = text["text"].as_str().unwrap();
        assert!(text.contains("PLANNED") && text.contains("ec2:RevokeSecurityGroupIngress"), "{text}");
    }

    // auto mode with a dead target beside a live one: the fix is not held up; the outcome goes
    // to the live one.
    let (_ts, job) = one_job(&em, notifier, binding("fix-it", Mode::Auto, &["gone", "slack"])).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    let start = std::time::Instant::now();
    while slack.lock().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "the outcome never reached the live target");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = slack.lock();
    let text: Value = serde_json::from_slice(&got[1].1).unwrap();
    assert!(text["text"].as_str().unwrap().contains("SUCCEEDED"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_waiting_for_approval_is_announced_with_how_to_approve_it() {
    let (slack_url, slack) = receiver(0).await;
    let settings = BTreeMap::from([("secops".to_string(), target(Kind::Slack, &slack_url))]);
    let notifier = Notifier::new(&settings, |_| None).expect("notifier");
    let em = support::emulator("demo").await;
    let (_ts, job) = one_job(&em, notifier, binding("ask-first", Mode::Approve, &["secops"])).await;
    assert_eq!(job.state, JobState::PendingApproval, "{job:#?}");
    let start = std::time::Instant::now();
    while slack.lock().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the pending plan was never announced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = slack.lock();
    assert_eq!(got.len(), 1);
    let text: Value = serde_json::from_slice(&got[0].1).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(text.contains("PENDING_APPROVAL") && text.contains("ec2:RevokeSecurityGroupIngress"), "{text}");
    assert!(text.contains(&format!("orgsec remediations approve {}", job.id)), "{text}");
}
