//! IAM Access Analyzer: every operation through aws-sdk-accessanalyzer, with not-found, conflict,
//! invalid-input and access-denied paths, archive rules applied to existing findings, and finding
//! status changes reaching Security Hub.

use aws_sdk_accessanalyzer::Client;
use aws_sdk_accessanalyzer::types::{
    Criterion, FindingSourceType, FindingStatus, FindingStatusUpdate, FindingSummary, FindingType, InlineArchiveRule,
    OrderBy, ResourceType, SortCriteria, Type,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, MANAGEMENT, PROD_A, REGION, SANDBOX, code};

const DEMO_ANALYZER: &str = "orgsec-account-analyzer";
const PUBLIC_BUCKET: &str = "arn:aws:s3:::orgsec-demo-public-555555555555";

fn aa(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

fn eq(v: &str) -> Criterion {
    Criterion::builder().eq(v).build()
}

/// The ARN of an account's analyzer, discovered through ListAnalyzers.
async fn analyzer_arn(c: &Client, name: &str) -> String {
    let out = c.list_analyzers().send().await.expect("ListAnalyzers");
    out.analyzers().iter().find(|a| a.name() == name).map(|a| a.arn().to_string()).expect("analyzer listed")
}

async fn findings(c: &Client, arn: &str, filter: Vec<(&str, Criterion)>) -> Vec<FindingSummary> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let mut req = c.list_findings().analyzer_arn(arn).max_results(1).set_next_token(token);
        for (k, v) in &filter {
            req = req.filter(*k, v.clone());
        }
        let r = req.send().await.expect("ListFindings");
        out.extend(r.findings().iter().cloned());
        token = r.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

/// RecordState of the Security Hub copy of an Access Analyzer finding.
fn hub_record_state(em: &Emulator, analyzer_arn: &str, finding_id: &str) -> Option<String> {
    let w = em.shared().world.read();
    let store = w.findings.get(REGION)?;
    let product = format!("arn:aws:securityhub:{REGION}::product/aws/access-analyzer");
    let seq = store.seq_of(&product, &format!("{analyzer_arn}/{finding_id}"))?;
    store.get(seq)?.str_field("RecordState").map(str::to_string)
}

#[tokio::test]
async fn account_analyzer_reports_the_public_bucket_and_cross_account_roles() {
    let em = support::demo().await;
    let c = aa(&em, DEV);
    let listed = c.list_analyzers().send().await.expect("ListAnalyzers");
    assert_eq!(listed.analyzers().len(), 1);
    assert_eq!(listed.analyzers()[0].r#type(), &Type::Account);
    let orgs = c.list_analyzers().r#type(Type::Organization).send().await.unwrap();
    assert!(orgs.analyzers().is_empty());
    let got = c.get_analyzer().analyzer_name(DEMO_ANALYZER).send().await.expect("GetAnalyzer");
    let arn = got.analyzer().map(|a| a.arn().to_string()).expect("analyzer");
    assert_eq!(arn, format!("arn:aws:access-analyzer:{REGION}:{DEV}:analyzer/{DEMO_ANALYZER}"));
    assert!(got.analyzer().and_then(|a| a.last_resource_analyzed()).is_some());

    let all = findings(&c, &arn, vec![]).await;
    let bucket = all.iter().find(|f| f.resource() == Some(PUBLIC_BUCKET)).expect("public bucket finding");
    assert_eq!(bucket.is_public(), Some(true));
    assert_eq!(bucket.resource_type(), &ResourceType::AwsS3Bucket);
    assert_eq!(bucket.status(), &FindingStatus::Active);
    assert_eq!(bucket.resource_owner_account(), DEV);
    assert_eq!(bucket.sources()[0].r#type(), &FindingSourceType::Policy);
    let role = all
        .iter()
        .find(|f| f.resource().is_some_and(|r| r.ends_with("role/OrgSecRemediationRole")))
        .expect("cross-account role finding");
    assert_eq!(role.is_public(), Some(false));
    assert!(role.principal().and_then(|p| p.get("AWS")).is_some_and(|p| p.contains(ADMIN)));
    assert_eq!(role.condition().get("sts:ExternalId").map(String::as_str), Some(support::EXTERNAL_ID));

    let public = findings(&c, &arn, vec![("isPublic", eq("true"))]).await;
    assert_eq!(public.iter().filter_map(|f| f.resource()).collect::<Vec<_>>(), vec![PUBLIC_BUCKET]);
    let roles = findings(&c, &arn, vec![("resourceType", eq("AWS::IAM::Role"))]).await;
    assert!(!roles.is_empty() && roles.iter().all(|f| f.resource_type() == &ResourceType::AwsIamRole));
    let remediation = findings(
        &c,
        &arn,
        vec![
            ("resource", Criterion::builder().contains("OrgSecRemediationRole").build()),
            ("condition.sts:ExternalId", Criterion::builder().exists(true).build()),
            ("status", Criterion::builder().neq("ARCHIVED").build()),
        ],
    )
    .await;
    assert_eq!(remediation.len(), 1);

    let sorted = c
        .list_findings()
        .analyzer_arn(&arn)
        .sort(SortCriteria::builder().attribute_name("resource").order_by(OrderBy::Desc).build())
        .send()
        .await
        .unwrap();
    let resources: Vec<&str> = sorted.findings().iter().filter_map(|f| f.resource()).collect();
    let mut expected = resources.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(resources, expected);
    assert_eq!(resources.first(), Some(&PUBLIC_BUCKET));

    let v2 = c.list_findings_v2().analyzer_arn(&arn).send().await.expect("ListFindingsV2");
    assert_eq!(v2.findings().len(), all.len());
    assert!(v2.findings().iter().all(|f| f.finding_type() == Some(&FindingType::ExternalAccess)));

    let one = c.get_finding().analyzer_arn(&arn).id(bucket.id()).send().await.expect("GetFinding");
    assert_eq!(one.finding().and_then(|f| f.resource()), Some(PUBLIC_BUCKET));
    assert_eq!(one.finding().map(|f| f.action().to_vec()), Some(vec!["s3:GetObject".to_string()]));
    let two = c.get_finding_v2().analyzer_arn(&arn).id(bucket.id()).send().await.expect("GetFindingV2");
    assert_eq!(two.resource(), Some(PUBLIC_BUCKET));
    let details = two.finding_details()[0].as_external_access_details().expect("external access details");
    assert_eq!(details.is_public(), Some(true));
    assert_eq!(details.principal().and_then(|p| p.get("AWS")).map(String::as_str), Some("*"));

    // Not found and invalid input.
    let e = c.get_finding().analyzer_arn(&arn).id("no-such-finding").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = c.get_analyzer().analyzer_name("no-such-analyzer").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let other = format!("arn:aws:access-analyzer:{REGION}:{PROD_A}:analyzer/{DEMO_ANALYZER}");
    let e = c.list_findings().analyzer_arn(&other).send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = c.list_findings().analyzer_arn(&arn).filter("bogus", eq("x")).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let e = c.list_findings().analyzer_arn("not-an-arn").send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
}

#[tokio::test]
async fn analyzers_are_created_listed_tagged_and_deleted() {
    let em = support::demo().await;
    let c = aa(&em, SANDBOX);
    assert!(c.list_analyzers().send().await.unwrap().analyzers().is_empty());

    let out = c
        .create_analyzer()
        .analyzer_name("sandbox")
        .r#type(Type::Account)
        .tags("team", "sandbox")
        .archive_rules(
            InlineArchiveRule::builder()
                .rule_name("ignore-org-access")
                .filter("resource", Criterion::builder().contains("OrganizationAccountAccessRole").build())
                .build()
                .expect("inline rule"),
        )
        .send()
        .await
        .expect("CreateAnalyzer");
    let arn = out.arn().expect("arn").to_string();
    assert_eq!(arn, format!("arn:aws:access-analyzer:{REGION}:{SANDBOX}:analyzer/sandbox"));
    // Creating the analyzer makes its findings appear, the inline rule archiving its matches.
    let all = findings(&c, &arn, vec![]).await;
    let remediation =
        all.iter().find(|f| f.resource().is_some_and(|r| r.ends_with("OrgSecRemediationRole"))).expect("role finding");
    assert_eq!(remediation.status(), &FindingStatus::Active);
    let org_role = all
        .iter()
        .find(|f| f.resource().is_some_and(|r| r.ends_with("OrganizationAccountAccessRole")))
        .expect("org role");
    assert_eq!(org_role.status(), &FindingStatus::Archived);
    let rules = c.list_archive_rules().analyzer_name("sandbox").send().await.unwrap();
    assert_eq!(rules.archive_rules().len(), 1);

    let e = c.create_analyzer().analyzer_name("sandbox").r#type(Type::Account).send().await.unwrap_err();
    assert_eq!(code(&e), "ConflictException");
    let e = c.create_analyzer().analyzer_name("bogus-type").r#type(Type::from("BOGUS")).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let e = c.create_analyzer().analyzer_name("1-not-a-name").r#type(Type::Account).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");

    // Organization analyzers: only the management account or the delegated administrator.
    let e = aa(&em, PROD_A).create_analyzer().analyzer_name("org").r#type(Type::Organization).send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    aa(&em, ADMIN)
        .create_analyzer()
        .analyzer_name("org")
        .r#type(Type::Organization)
        .send()
        .await
        .expect("delegated admin");
    aa(&em, MANAGEMENT)
        .create_analyzer()
        .analyzer_name("org")
        .r#type(Type::Organization)
        .send()
        .await
        .expect("management");
    let orgs = aa(&em, ADMIN).list_analyzers().r#type(Type::Organization).send().await.unwrap();
    assert_eq!(orgs.analyzers().len(), 1);

    let listed = c.list_analyzers().send().await.unwrap();
    assert_eq!(listed.analyzers().len(), 1);
    assert_eq!(listed.analyzers()[0].tags().and_then(|t| t.get("team")).map(String::as_str), Some("sandbox"));

    c.tag_resource().resource_arn(&arn).tags("owner", "secops").send().await.expect("TagResource");
    let tags = c.list_tags_for_resource().resource_arn(&arn).send().await.expect("ListTagsForResource");
    assert_eq!(tags.tags().map(|t| t.len()), Some(2));
    c.untag_resource().resource_arn(&arn).tag_keys("team").send().await.expect("UntagResource");
    let tags = c.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().map(|t| t.keys().cloned().collect::<Vec<_>>()), Some(vec!["owner".to_string()]));

    c.delete_analyzer().analyzer_name("sandbox").send().await.expect("DeleteAnalyzer");
    let e = c.get_analyzer().analyzer_name("sandbox").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = c.delete_analyzer().analyzer_name("sandbox").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let counters = em.shared().world.read().counters.clone();
    assert_eq!(counters.by_operation.get("access-analyzer:CreateAnalyzer"), Some(&3));
    assert_eq!(counters.by_operation.get("access-analyzer:DeleteAnalyzer"), Some(&1));
}

#[tokio::test]
async fn archive_rules_and_status_updates_reach_existing_findings_and_security_hub() {
    let em = support::demo().await;
    let c = aa(&em, DEV);
    let arn = analyzer_arn(&c, DEMO_ANALYZER).await;
    let roles_before = findings(&c, &arn, vec![("resourceType", eq("AWS::IAM::Role"))]).await;
    assert!(!roles_before.is_empty());

    let e = c
        .create_archive_rule()
        .analyzer_name("nope")
        .rule_name("r")
        .filter("status", eq("ACTIVE"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = c
        .create_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("bad")
        .filter("color", eq("blue"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");

    c.create_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("trusted-roles")
        .filter("resourceType", eq("AWS::IAM::Role"))
        .send()
        .await
        .expect("CreateArchiveRule");
    // Applies to the findings that already exist.
    let active = findings(&c, &arn, vec![("status", eq("ACTIVE"))]).await;
    assert_eq!(active.iter().filter_map(|f| f.resource()).collect::<Vec<_>>(), vec![PUBLIC_BUCKET]);
    for f in &roles_before {
        assert_eq!(hub_record_state(&em, &arn, f.id()).as_deref(), Some("ARCHIVED"), "{f:?}");
    }
    let e = c
        .create_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("trusted-roles")
        .filter("resourceType", eq("AWS::IAM::Role"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ConflictException");

    let rules = c.list_archive_rules().analyzer_name(DEMO_ANALYZER).send().await.expect("ListArchiveRules");
    assert_eq!(rules.archive_rules().len(), 1);
    let rule = c
        .get_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("trusted-roles")
        .send()
        .await
        .expect("GetArchiveRule");
    assert_eq!(rule.archive_rule().map(|r| r.filter().contains_key("resourceType")), Some(true));
    c.update_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("trusted-roles")
        .filter("resource", Criterion::builder().contains("OrgSecRemediationRole").build())
        .send()
        .await
        .expect("UpdateArchiveRule");
    let rule = c.get_archive_rule().analyzer_name(DEMO_ANALYZER).rule_name("trusted-roles").send().await.unwrap();
    assert_eq!(rule.archive_rule().map(|r| r.filter().contains_key("resource")), Some(true));

    // Put the role findings back to ACTIVE by resource, then let ApplyArchiveRule archive only
    // what the updated rule matches.
    for f in &roles_before {
        c.update_findings()
            .analyzer_arn(&arn)
            .status(FindingStatusUpdate::Active)
            .resource_arn(f.resource().unwrap_or_default())
            .send()
            .await
            .expect("UpdateFindings by resource");
    }
    assert_eq!(findings(&c, &arn, vec![("status", eq("ACTIVE"))]).await.len(), roles_before.len() + 1);
    c.apply_archive_rule().analyzer_arn(&arn).rule_name("trusted-roles").send().await.expect("ApplyArchiveRule");
    let archived = findings(&c, &arn, vec![("status", eq("ARCHIVED"))]).await;
    assert_eq!(archived.len(), 1);
    assert!(archived[0].resource().is_some_and(|r| r.ends_with("OrgSecRemediationRole")));
    let e = c.apply_archive_rule().analyzer_arn(&arn).rule_name("nope").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");

    c.delete_archive_rule()
        .analyzer_name(DEMO_ANALYZER)
        .rule_name("trusted-roles")
        .send()
        .await
        .expect("DeleteArchiveRule");
    let e = c.get_archive_rule().analyzer_name(DEMO_ANALYZER).rule_name("trusted-roles").send().await.unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");

    // Archive the bucket finding by id: Security Hub's copy follows.
    let bucket = findings(&c, &arn, vec![("resource", eq(PUBLIC_BUCKET))]).await.remove(0);
    assert_eq!(hub_record_state(&em, &arn, bucket.id()).as_deref(), Some("ACTIVE"));
    c.update_findings()
        .analyzer_arn(&arn)
        .status(FindingStatusUpdate::Archived)
        .ids(bucket.id())
        .send()
        .await
        .expect("UpdateFindings by id");
    let got = c.get_finding().analyzer_arn(&arn).id(bucket.id()).send().await.unwrap();
    assert_eq!(got.finding().map(|f| f.status()), Some(&FindingStatus::Archived));
    assert_eq!(hub_record_state(&em, &arn, bucket.id()).as_deref(), Some("ARCHIVED"));

    let e = c.update_findings().analyzer_arn(&arn).status(FindingStatusUpdate::Archived).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let e = c
        .update_findings()
        .analyzer_arn(&arn)
        .status(FindingStatusUpdate::from("RESOLVED"))
        .ids(bucket.id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let e = c
        .update_findings()
        .analyzer_arn(&arn)
        .status(FindingStatusUpdate::Active)
        .ids("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn resource_scan_resolves_a_fixed_bucket() {
    let em = support::demo().await;
    let c = aa(&em, DEV);
    let arn = analyzer_arn(&c, DEMO_ANALYZER).await;
    let res = c
        .get_analyzed_resource()
        .analyzer_arn(&arn)
        .resource_arn(PUBLIC_BUCKET)
        .send()
        .await
        .expect("GetAnalyzedResource");
    let r = res.resource().expect("resource");
    assert!(r.is_public());
    assert_eq!(r.resource_type(), &ResourceType::AwsS3Bucket);
    assert_eq!(r.actions().to_vec(), vec!["s3:GetObject".to_string()]);
    let e = c
        .get_analyzed_resource()
        .analyzer_arn(&arn)
        .resource_arn("arn:aws:s3:::no-such-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");

    // Fix the bucket behind the service's back, then ask for a rescan.
    {
        let mut w = em.shared().world.write();
        let b = w.buckets.get_mut("orgsec-demo-public-555555555555").expect("bucket");
        b.policy = None;
        b.public_acl = None;
    }
    c.start_resource_scan().analyzer_arn(&arn).resource_arn(PUBLIC_BUCKET).send().await.expect("StartResourceScan");
    let bucket = findings(&c, &arn, vec![("resource", eq(PUBLIC_BUCKET))]).await;
    assert_eq!(bucket[0].status(), &FindingStatus::Resolved);
    let res = c.get_analyzed_resource().analyzer_arn(&arn).resource_arn(PUBLIC_BUCKET).send().await.unwrap();
    assert_eq!(res.resource().map(|r| r.is_public()), Some(false));
    let e = c
        .start_resource_scan()
        .analyzer_arn("arn:aws:access-analyzer:us-east-1:555555555555:analyzer/nope")
        .resource_arn(PUBLIC_BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}
