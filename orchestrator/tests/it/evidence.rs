//! Evidence bundles from the demo organization: what they hold, that they verify, and that one
//! flipped byte anywhere makes verification fail and name where.

use std::sync::Arc;

use aws_sdk_securityhub::types::ControlStatus;
use orgsec::binding::{BindingSpec, Mode, Scope};
use orgsec::evidence::{self, ExportOptions};
use orgsec::jobs::{Worker, WorkerConfig};
use orgsec::notify::Notifier;
use orgsec::remediate::PlaybookRunner;
use orgsec::score::Weights;
use orgsec::store::Store;
use time::OffsetDateTime;

use crate::support::{self, EXTERNAL_ID, admin_aws, sdk_config};

const WEB: &str = "333333333333";

/// Disables CIS 1.2's control `id` in `account` with `reason`, as a platform team's baseline does.
async fn disable(em: &orgsec_emulator::Emulator, account: &str, id: &str, reason: &str) {
    let hub = aws_sdk_securityhub::Client::new(&sdk_config(em, account));
    let subs = hub.get_enabled_standards().send().await.expect("GetEnabledStandards");
    let sub = subs
        .standards_subscriptions()
        .iter()
        .find(|s| s.standards_arn().is_some_and(|a| a.ends_with("cis-aws-foundations-benchmark/v/1.2.0")))
        .and_then(|s| s.standards_subscription_arn())
        .expect("CIS 1.2 is enabled in the demo")
        .to_string();
    let controls = hub
        .describe_standards_controls()
        .standards_subscription_arn(sub)
        .max_results(100)
        .send()
        .await
        .expect("controls");
    let arn = controls
        .controls()
        .iter()
        .find(|c| c.control_id() == Some(id))
        .and_then(|c| c.standards_control_arn())
        .expect("the control")
        .to_string();
    hub.update_standards_control()
        .standards_control_arn(arn)
        .control_status(ControlStatus::Disabled)
        .disabled_reason(reason)
        .send()
        .await
        .expect("UpdateStandardsControl");
}

/// The demo organization enrolled, synced, scored, with one remediation done and a control
/// disabled: a store with something of everything.
async fn populated(em: &orgsec_emulator::Emulator) -> support::TestStore {
    let ts = support::sqlite().await;
    let store = &ts.store;
    disable(em, WEB, "IAM.6", "hardware MFA for root is managed by the central team").await;
    let accounts = crate::sync::enroll_all(em, store).await;
    crate::sync::sync(em, store, &accounts).await;
    let board = orgsec::posture::scoreboard(store, Weights::default()).await.expect("board");
    orgsec::posture::snapshot(store, &board, 1_800_000_000_000).await.expect("snapshot");
    let binding = BindingSpec {
        name: "close-ssh".into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode: Mode::Auto,
        scope: Scope { accounts: vec![WEB.into()], ..Scope::default() },
        ..BindingSpec::default()
    };
    store.put_binding(&binding, "test", OffsetDateTime::now_utc()).await.expect("binding");
    orgsec::dispatch::dispatch(store, OffsetDateTime::now_utc()).await.expect("dispatch");
    let runner = Arc::new(PlaybookRunner::new(admin_aws(em, Some(EXTERNAL_ID), &[]), store.clone(), Notifier::none()));
    assert_eq!(Worker::new(store.clone(), runner, WorkerConfig::new("test")).tick().await.expect("tick"), 1);
    crate::sync::sync(em, store, &accounts).await;
    ts
}

async fn export(em: &orgsec_emulator::Emulator, store: &Store, opts: &ExportOptions) -> evidence::Bundle {
    let aws = admin_aws(em, Some(EXTERNAL_ID), &[]);
    evidence::export(store, Some(&aws), opts, OffsetDateTime::now_utc()).await.expect("export")
}

fn file<'a>(entries: &'a [evidence::zip::Entry], name: &str) -> &'a str {
    std::str::from_utf8(&entries.iter().find(|e| e.name == name).expect(name).data).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_links_controls_findings_and_remediations_and_verifies() {
    let em = support::emulator("demo").await;
    let ts = populated(&em).await;
    let opts = ExportOptions { framework: "cis-1.2".into(), ..ExportOptions::default() };
    let bundle = export(&em, &ts.store, &opts).await;
    let verified = evidence::verify(&bundle.bytes).expect("a fresh bundle verifies");
    assert_eq!(verified.manifest, bundle.manifest);
    let m = &bundle.manifest;
    assert_eq!((m.framework.as_str(), m.scope.kind.as_str()), ("cis-1.2", "org"));
    assert!(m.scope.accounts.contains(&WEB.to_string()));

    let entries = evidence::zip::read(&bundle.bytes).expect("entries");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "manifest.sha256",
            "controls.csv",
            "findings.jsonl",
            "findings.ocsf.jsonl",
            "remediations.jsonl",
            "disabled-controls.csv",
            "scores.csv"
        ]
    );
    // controls.csv: EC2.13 (CIS 4.1) in the web account, fixed by the remediation: PASSED now.
    let controls = file(&entries, "controls.csv");
    let row = controls.lines().find(|l| l.starts_with("cis-1.2,EC2.13,4.1,") && l.contains(WEB)).expect("EC2.13 row");
    assert!(row.contains(",PASSED,"), "{row}");
    assert!(
        controls.lines().any(|l| l.contains(",IAM.6,") && l.contains(WEB) && l.contains(",DISABLED,")),
        "{controls}"
    );
    // The disabled control with its reason.
    let disabled = file(&entries, "disabled-controls.csv");
    assert!(
        disabled.lines().any(|l| l.contains(WEB) && l.contains("IAM.6") && l.contains("managed by the central team")),
        "{disabled}"
    );
    // ASFF and OCSF: one document per line, the same findings of the framework's controls.
    let asff: Vec<serde_json::Value> =
        file(&entries, "findings.jsonl").lines().map(|l| serde_json::from_str(l).expect("ASFF")).collect();
    assert!(!asff.is_empty() && asff.iter().all(|f| f["SchemaVersion"] == "2018-10-08"));
    let ocsf: Vec<serde_json::Value> =
        file(&entries, "findings.ocsf.jsonl").lines().map(|l| serde_json::from_str(l).expect("OCSF")).collect();
    assert!(ocsf.len() >= asff.len() && ocsf.iter().all(|f| f["class_uid"] == 2003));
    assert!(ocsf.iter().any(|f| f["compliance"]["control"] == "EC2.13" && f["compliance"]["requirements"][0] == "4.1"));
    // The remediation's records, in the chain the manifest closes.
    let records = file(&entries, "remediations.jsonl");
    for action in ["job.enqueued", "job.planned", "job.executed", "job.succeeded"] {
        assert!(records.contains(&format!("\"action\":\"{action}\"")), "{action}: {records}");
    }
    assert_eq!(verified.audit_records, m.audit_chain.records);
    assert!(m.audit_chain.head_seq >= 4);
    assert!(file(&entries, "scores.csv").lines().count() > 1, "the score history");

    // Scoped to another account: the web account's records are not in it.
    let opts =
        ExportOptions { framework: "cis-1.2".into(), account: Some("555555555555".into()), ..ExportOptions::default() };
    let other = export(&em, &ts.store, &opts).await;
    evidence::verify(&other.bytes).expect("verifies");
    assert_eq!(other.manifest.scope.accounts, ["555555555555"]);
    assert_eq!(other.manifest.audit_chain.records, 0, "no record of that account");
    let bad = ExportOptions { framework: "cis-9".into(), ..ExportOptions::default() };
    let e = evidence::export(&ts.store, None, &bad, OffsetDateTime::now_utc()).await.unwrap_err().to_string();
    assert!(e.contains("cis-1.2") && e.contains("nist-800-53-r5"), "{e}");
}

/// A small deterministic generator, so that a failure names its positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_flipped_byte_anywhere_fails_verification_and_is_placed() {
    let em = support::emulator("demo").await;
    let ts = populated(&em).await;
    let opts = ExportOptions { framework: "cis-1.2".into(), ..ExportOptions::default() };
    let bytes = export(&em, &ts.store, &opts).await.bytes;
    let entries = evidence::zip::read(&bytes).expect("entries");

    // Every byte of every header and of the archive's directory and comment, every byte of the
    // manifest and its hash, and 40 random bytes of each other file's content.
    let mut positions: Vec<usize> = Vec::new();
    let mut rng = Rng(0x5eed);
    for e in &entries {
        let header = 30 + e.name.len();
        let data = e.span.start + header..e.span.end;
        positions.extend(e.span.start..data.start);
        if e.name.starts_with("manifest") || data.len() <= 40 {
            positions.extend(data.clone());
        } else {
            positions.extend((0..40).map(|_| data.start + rng.next(data.len())));
        }
    }
    positions.extend(entries.last().expect("entries").span.end..bytes.len());
    positions.sort_unstable();
    positions.dedup();
    assert!(positions.len() > 1000, "{}", positions.len());

    for &at in &positions {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            let e = match evidence::verify(&bad) {
                Ok(_) => panic!("byte {at} flipped (bit {bit:#x}) and the bundle still verifies"),
                Err(e) => e,
            };
            // Within a file's content, the error names that file; within the audit records,
            // the record too.
            if let Some(entry) = entries.iter().find(|x| (x.span.start + 30 + x.name.len()..x.span.end).contains(&at)) {
                assert_eq!(e.file.as_deref(), Some(entry.name.as_str()), "byte {at} in {}: {e}", entry.name);
                if entry.name == "remediations.jsonl" {
                    assert!(e.record.is_some(), "byte {at}: the record is named: {e}");
                }
            }
        }
    }
}
