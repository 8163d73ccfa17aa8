//! Collection against the emulator's demo organization: enroll, sync, and compare what was
//! stored with what each source holds, read independently through each account's own
//! administrator; then score.

use std::collections::BTreeSet;
use std::sync::Arc;

use orgsec::collect::{Collector, SyncOptions, SyncReport, limits::Limits};
use orgsec::enroll::{self, AccountState, Selection};
use orgsec::finding::{Severity, Source};
use orgsec::posture;
use orgsec::score::{ScopeKind, ScopeRef, Weights};
use orgsec::store::{FindingQuery, Store};
use orgsec_emulator::Emulator;

use crate::support::{self, admin_aws, sdk_config};

async fn demo() -> Emulator {
    Emulator::builder().scenario("demo").start().await.expect("start the emulator")
}

/// Enrolls every account and returns those collection reads (enrolled ones and the admin).
pub(crate) async fn enroll_all(em: &Emulator, store: &Store) -> Vec<String> {
    let aws = admin_aws(em, Some("orgsec-demo"), &[]);
    enroll::run(&aws, store, &Selection::All, &|_| {}).await.expect("enroll");
    store
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .filter(|a| matches!(a.state, AccountState::Enrolled | AccountState::Admin))
        .map(|a| a.account_id)
        .collect()
}

/// Config rules as a baseline would lay them down, so that Config holds non-compliant
/// evaluations too (the demo scenario records, but has no rules).
async fn add_config_rules(em: &Emulator) {
    for (account, name, identifier) in [
        ("333333333333", "restricted-ssh", "INCOMING_SSH_DISABLED"),
        ("333333333333", "ebs-default-encryption", "EC2_EBS_ENCRYPTION_BY_DEFAULT"),
        ("444444444444", "password-policy", "IAM_PASSWORD_POLICY"),
        ("555555555555", "account-public-access", "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC"),
    ] {
        let config = aws_sdk_config::Client::new(&sdk_config(em, account));
        let rule = aws_sdk_config::types::ConfigRule::builder()
            .config_rule_name(name)
            .source(
                aws_sdk_config::types::Source::builder()
                    .owner(aws_sdk_config::types::Owner::Aws)
                    .source_identifier(identifier)
                    .build()
                    .expect("source"),
            )
            .build();
        config.put_config_rule().config_rule(rule).send().await.expect("put config rule");
    }
}

pub(crate) async fn sync(em: &Emulator, store: &Store, accounts: &[String]) -> SyncReport {
    sync_with(em, store, accounts, &SyncOptions::default()).await
}

async fn sync_with(em: &Emulator, store: &Store, accounts: &[String], options: &SyncOptions) -> SyncReport {
    let collector = Collector::new(admin_aws(em, Some("orgsec-demo"), &[]), store.clone(), Arc::new(Limits::default()));
    collector.sync(accounts, options, &|_| {}).await.expect("sync")
}

/// Every finding the four sources hold for `account`, as `(source, id)`, read with the
/// account's own administrator and the SDK's own parsing (not orgsec's).
pub(crate) async fn truth(em: &Emulator, account: &str) -> BTreeSet<(Source, String)> {
    let cfg = sdk_config(em, account);
    let mut out = BTreeSet::new();

    let sh = aws_sdk_securityhub::Client::new(&cfg);
    let filter = aws_sdk_securityhub::types::AwsSecurityFindingFilters::builder()
        .aws_account_id(
            aws_sdk_securityhub::types::StringFilter::builder()
                .comparison(aws_sdk_securityhub::types::StringFilterComparison::Equals)
                .value(account)
                .build(),
        )
        .build();
    let mut token = None;
    loop {
        let page = sh.get_findings().filters(filter.clone()).set_next_token(token).send().await;
        let Ok(page) = page else { break }; // no hub in this account: nothing to hold
        for f in page.findings() {
            out.insert((Source::SecurityHub, f.id().unwrap_or_default().to_string()));
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            break;
        }
    }

    let gd = aws_sdk_guardduty::Client::new(&cfg);
    for detector in gd.list_detectors().send().await.expect("list detectors").detector_ids() {
        let mut token = None;
        loop {
            let page =
                gd.list_findings().detector_id(detector).set_next_token(token).send().await.expect("list findings");
            for id in page.finding_ids() {
                out.insert((Source::GuardDuty, id.clone()));
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }

    let config = aws_sdk_config::Client::new(&cfg);
    let rules = config.describe_config_rules().send().await.expect("describe rules");
    for rule in rules.config_rules() {
        let name = rule.config_rule_name().unwrap_or_default();
        let mut token = None;
        loop {
            let page = config
                .get_compliance_details_by_config_rule()
                .config_rule_name(name)
                .compliance_types(aws_sdk_config::types::ComplianceType::NonCompliant)
                .set_next_token(token)
                .send()
                .await
                .expect("compliance details");
            for r in page.evaluation_results() {
                let q =
                    r.evaluation_result_identifier().and_then(|i| i.evaluation_result_qualifier()).expect("qualifier");
                out.insert((
                    Source::Config,
                    format!("{name}/{}/{}", q.resource_type().unwrap_or_default(), q.resource_id().unwrap_or_default()),
                ));
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }

    let aa = aws_sdk_accessanalyzer::Client::new(&cfg);
    for analyzer in aa.list_analyzers().send().await.expect("list analyzers").analyzers() {
        let mut token = None;
        loop {
            let page = aa
                .list_findings()
                .analyzer_arn(analyzer.arn())
                .set_next_token(token)
                .send()
                .await
                .expect("aa findings");
            for f in page.findings() {
                out.insert((Source::AccessAnalyzer, f.id().to_string()));
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    out
}

pub(crate) async fn stored(store: &Store) -> Vec<(Source, String)> {
    store.findings(&FindingQuery::default()).await.expect("findings").into_iter().map(|f| (f.source, f.id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_then_sync_collects_every_finding_of_the_demo_org() {
    for ts in support::stores().await {
        let em = demo().await;
        let store = &ts.store;
        let accounts = enroll_all(&em, store).await;
        add_config_rules(&em).await;
        assert!(accounts.contains(&"666666666666".to_string()), "the new account is enrolled: {accounts:?}");

        let report = sync(&em, store, &accounts).await;
        let errors: Vec<_> = report.errors().collect();
        assert!(errors.is_empty(), "[{}] reads failed: {errors:#?}", ts.label);
        assert_eq!(report.rejected.values().sum::<u64>(), 0, "[{}] the emulator's findings are well formed", ts.label);

        let mut expected = BTreeSet::new();
        for a in &accounts {
            expected.extend(truth(&em, a).await);
        }
        for source in Source::ALL {
            assert!(expected.iter().any(|(s, _)| *s == source), "[{}] the demo org holds {source} findings", ts.label);
        }
        let got = stored(store).await;
        let got_set: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(got.len(), got_set.len(), "[{}] no finding stored twice", ts.label);
        let missing: Vec<_> = expected.difference(&got_set).collect();
        let extra: Vec<_> = got_set.difference(&expected).collect();
        assert!(missing.is_empty() && extra.is_empty(), "[{}] missing {missing:#?}\nextra {extra:#?}", ts.label);

        // Two sources reporting one check make one check: GuardDuty's findings and their copies
        // in Security Hub; the Config rules and Security Hub's control findings.
        let all = store.findings(&FindingQuery::default()).await.expect("findings");
        for gd in all.iter().filter(|f| f.source == Source::GuardDuty) {
            let copies = all.iter().filter(|f| f.source == Source::SecurityHub && f.check_key == gd.check_key).count();
            assert_eq!(copies, 1, "[{}] {} has its Security Hub copy", ts.label, gd.id);
        }
        let shared_with_config = all
            .iter()
            .filter(|f| f.source == Source::Config)
            .filter(|c| all.iter().any(|f| f.source == Source::SecurityHub && f.check_key == c.check_key))
            .count();
        assert!(shared_with_config > 0, "[{}] Config and Security Hub agree on some checks", ts.label);

        // Scores are bounded; the prioritized list starts with high-weight controls.
        let board = posture::scoreboard(store, Weights::default()).await.expect("scoreboard");
        assert!(board.len() < all.len(), "[{}] duplicates are counted once", ts.label);
        for kind in [ScopeKind::Org, ScopeKind::Ou, ScopeKind::Account, ScopeKind::ResourceType, ScopeKind::Resource] {
            for s in board.scores(kind) {
                assert!((0.0..=100.0).contains(&s.score), "[{}] {kind} {} scores {}", ts.label, s.id, s.score);
            }
        }
        let org = board.score(&ScopeRef::org());
        assert!(org.score < 100.0 && org.failing_checks > 0, "[{}] the demo org has problems: {org:?}", ts.label);
        let top = board.priorities(&ScopeRef::org(), 5);
        assert!(top[0].severity >= Severity::High, "[{}] first priority {:?}", ts.label, top[0]);
        assert!(top.iter().any(|p| p.control_id == "EC2.13"), "[{}] EC2.13 is near the top: {top:#?}", ts.label);
        let n = posture::snapshot(store, &board, report.finished_at).await.expect("snapshot");
        assert!(n > 0);
        assert_eq!(store.snapshots("org", "org").await.expect("snapshots").len(), 1);

        // A second sync reads only what changed since the watermark (with no look-back here:
        // the demo's findings are all minutes old) and stores nothing twice.
        let no_lookback = SyncOptions { lookback: std::time::Duration::ZERO, ..SyncOptions::default() };
        let again = sync_with(&em, store, &accounts, &no_lookback).await;
        assert!(again.errors().next().is_none());
        assert!(
            again.collected[&Source::SecurityHub] < report.collected[&Source::SecurityHub],
            "[{}] Security Hub is read from its watermark: {} then {}",
            ts.label,
            report.collected[&Source::SecurityHub],
            again.collected[&Source::SecurityHub]
        );
        let got_again = stored(store).await;
        assert_eq!(got_again.len(), got.len(), "[{}] nothing duplicated or lost", ts.label);
        em.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_findings_are_counted_and_never_block_the_others() {
    let em = demo().await;
    let ts = support::sqlite().await;
    let store = &ts.store;
    let accounts = enroll_all(&em, store).await;

    // Findings Security Hub accepts (every required field is there) but orgsec cannot read:
    // an unknown severity label, an unknown workflow status; and one good finding between them.
    let doc = |id: &str, label: &str, workflow: &str| {
        serde_json::json!({
            "SchemaVersion": "2018-10-08", "Id": id, "ProductArn": "arn:aws:securityhub:us-east-1:333333333333:product/333333333333/default",
            "GeneratorId": "custom", "AwsAccountId": "333333333333", "Title": "custom check", "Description": "d",
            "CreatedAt": "2026-11-01T10:00:00Z", "UpdatedAt": "2026-11-01T10:00:00Z",
            "Severity": {"Label": label}, "Types": ["Software and Configuration Checks"], "Workflow": {"Status": workflow},
            "Resources": [{"Type": "Other", "Id": "thing-1"}]
        })
    };
    let docs =
        [doc("bad-severity", "EXTREME", "NEW"), doc("good", "LOW", "NEW"), doc("bad-workflow", "LOW", "PENDING")];
    let body = serde_json::json!({"Findings": docs});
    // Sent as raw JSON, exactly as a third-party product might.
    let answer = post_as_member(&em, "/findings/import", &body.to_string()).await;
    assert!(answer.contains("\"SuccessCount\":3"), "the emulator took all three: {answer}");

    let report = sync(&em, store, &accounts).await;
    assert!(report.errors().next().is_none(), "{:#?}", report.errors().collect::<Vec<_>>());
    assert_eq!(report.rejected.get(&Source::SecurityHub).copied(), Some(2));
    let ids: BTreeSet<String> = stored(store).await.into_iter().map(|(_, id)| id).collect();
    assert!(ids.contains("good"), "the good finding between the bad ones is stored");
    assert!(!ids.contains("bad-severity") && !ids.contains("bad-workflow"));
    let rejected = store.rejected_findings().await.expect("rejected");
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().any(|r| r.finding_id.as_deref() == Some("bad-severity") && r.reason.contains("EXTREME")));
    assert!(rejected.iter().any(|r| r.finding_id.as_deref() == Some("bad-workflow") && r.reason.contains("PENDING")));
    em.shutdown().await;
}

/// POSTs a JSON body to the emulator as 333333333333's administrator, signed only as far as
/// the emulator needs (it routes on the credential scope and reads the access key id).
async fn post_as_member(em: &Emulator, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = em.addr();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKID333333333333/20261122/us-east-1/securityhub/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}
