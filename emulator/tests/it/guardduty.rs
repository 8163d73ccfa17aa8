//! GuardDuty: every operation through aws-sdk-guardduty, with not-owned detectors, invalid input,
//! the detector-already-exists conflict, organization-managed and invitation membership, and the
//! administrator's view of its members' findings (archiving included, down to Security Hub).
//!
//! Deprecated fields (`eq`/`neq`/`gte`, `countBySeverity`, GetMasterAccount, ...) are still sent by
//! real clients, so they are exercised on purpose.
#![allow(deprecated)]

use aws_sdk_guardduty::Client;
use aws_sdk_guardduty::types::{
    AccountDetail, AutoEnableMembers, Condition, DetectorFeature, DetectorFeatureConfiguration, DetectorFeatureResult,
    DetectorStatus, FeatureStatus, FindingCriteria, FindingPublishingFrequency, FindingStatisticType, GroupByType,
    OrderBy, SortCriteria,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, MANAGEMENT, PROD_A, PROD_B, REGION, SANDBOX, code};

const CRYPTO: &str = "CryptoCurrency:EC2/BitcoinTool.B!DNS";
const EXFIL: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";

fn gd(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

/// The caller's detector id, discovered through ListDetectors.
async fn detector_id(c: &Client) -> String {
    let out = c.list_detectors().send().await.expect("ListDetectors");
    assert_eq!(out.detector_ids().len(), 1, "{out:?}");
    out.detector_ids()[0].clone()
}

fn criteria(pairs: Vec<(&str, Condition)>) -> FindingCriteria {
    pairs.into_iter().fold(FindingCriteria::builder(), |b, (k, c)| b.criterion(k, c)).build()
}

fn eq(v: &str) -> Condition {
    Condition::builder().eq(v).build()
}

async fn finding_ids(c: &Client, det: &str, crit: Option<FindingCriteria>) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_findings()
            .detector_id(det)
            .set_finding_criteria(crit.clone())
            .max_results(1)
            .set_next_token(token)
            .send()
            .await
            .expect("ListFindings");
        out.extend(r.finding_ids().iter().cloned());
        token = r.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

fn counter(em: &Emulator, op: &str) -> u64 {
    em.shared().world.read().counters.by_operation.get(op).copied().unwrap_or(0)
}

/// RecordState of the Security Hub copy of a GuardDuty finding.
fn hub_record_state(em: &Emulator, finding_arn: &str) -> Option<String> {
    let w = em.shared().world.read();
    let store = w.findings.get(REGION)?;
    let product = format!("arn:aws:securityhub:{REGION}::product/aws/guardduty");
    let seq = store.seq_of(&product, finding_arn)?;
    store.get(seq)?.str_field("RecordState").map(str::to_string)
}

#[tokio::test]
async fn detector_lifecycle_with_conflict_and_not_owned_ids() {
    let em = support::demo().await;
    let c = gd(&em, SANDBOX);
    assert!(c.list_detectors().send().await.unwrap().detector_ids().is_empty());

    let created = c
        .create_detector()
        .enable(true)
        .finding_publishing_frequency(FindingPublishingFrequency::FifteenMinutes)
        .tags("team", "sandbox")
        .features(
            DetectorFeatureConfiguration::builder()
                .name(DetectorFeature::RuntimeMonitoring)
                .status(FeatureStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("CreateDetector");
    let id = created.detector_id().expect("detector id").to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(counter(&em, "guardduty:CreateDetector"), 1);

    // The known pain point: a second detector in the same account and region is refused.
    let again = c.create_detector().enable(true).send().await.unwrap_err();
    assert_eq!(code(&again), "BadRequestException");
    assert!(format!("{again:?}").contains("A detector already exists for the current account."));

    let got = c.get_detector().detector_id(&id).send().await.expect("GetDetector");
    assert_eq!(got.status(), Some(&DetectorStatus::Enabled));
    assert_eq!(got.finding_publishing_frequency(), Some(&FindingPublishingFrequency::FifteenMinutes));
    assert_eq!(got.tags().and_then(|t| t.get("team")).map(String::as_str), Some("sandbox"));
    assert!(got.service_role().is_some_and(|r| r.contains(SANDBOX)));
    assert!(got.created_at().is_some_and(|t| t.ends_with('Z')));
    let runtime =
        got.features().iter().find(|f| f.name() == Some(&DetectorFeatureResult::RuntimeMonitoring)).expect("feature");
    assert_eq!(runtime.status(), Some(&FeatureStatus::Enabled));
    assert!(runtime.updated_at().is_some());
    let s3 = got.data_sources().and_then(|d| d.s3_logs()).and_then(|s| s.status()).cloned();
    assert_eq!(s3, Some(aws_sdk_guardduty::types::DataSourceStatus::Enabled));

    c.update_detector()
        .detector_id(&id)
        .enable(false)
        .finding_publishing_frequency(FindingPublishingFrequency::OneHour)
        .features(
            DetectorFeatureConfiguration::builder()
                .name(DetectorFeature::S3DataEvents)
                .status(FeatureStatus::Disabled)
                .build(),
        )
        .send()
        .await
        .expect("UpdateDetector");
    let got = c.get_detector().detector_id(&id).send().await.unwrap();
    assert_eq!(got.status(), Some(&DetectorStatus::Disabled));
    assert_eq!(got.finding_publishing_frequency(), Some(&FindingPublishingFrequency::OneHour));
    let s3 =
        got.features().iter().find(|f| f.name() == Some(&DetectorFeatureResult::S3DataEvents)).and_then(|f| f.status());
    assert_eq!(s3, Some(&FeatureStatus::Disabled));
    assert_eq!(detector_id(&c).await, id);

    // Tags on the detector ARN.
    let arn = format!("arn:aws:guardduty:{REGION}:{SANDBOX}:detector/{id}");
    c.tag_resource().resource_arn(&arn).tags("owner", "secops").send().await.expect("TagResource");
    let tags = c.list_tags_for_resource().resource_arn(&arn).send().await.expect("ListTagsForResource");
    assert_eq!(tags.tags().map(|t| t.len()), Some(2));
    c.untag_resource().resource_arn(&arn).tag_keys("team").send().await.expect("UntagResource");
    let tags = c.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().map(|t| t.keys().cloned().collect::<Vec<_>>()), Some(vec!["owner".to_string()]));

    // Another account's detector id is not owned by the caller: 400, not 404.
    let prod_det = detector_id(&gd(&em, PROD_A)).await;
    let e = c.get_detector().detector_id(&prod_det).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    assert!(format!("{e:?}").contains("not owned by the current account"));
    let e = c.get_detector().detector_id("0123456789abcdef0123456789abcdef").send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");

    c.delete_detector().detector_id(&id).send().await.expect("DeleteDetector");
    assert!(c.list_detectors().send().await.unwrap().detector_ids().is_empty());
    let e = c.get_detector().detector_id(&id).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    // And a new one can be created after.
    c.create_detector().enable(true).send().await.expect("CreateDetector after delete");
}

#[tokio::test]
async fn member_findings_are_listed_filtered_sorted_and_fetched() {
    let em = support::demo().await;
    let c = gd(&em, PROD_A);
    let det = detector_id(&c).await;
    let ids = finding_ids(&c, &det, None).await;
    assert_eq!(ids.len(), 1, "{ids:?}");

    let got = c.get_findings().detector_id(&det).finding_ids(&ids[0]).send().await.expect("GetFindings");
    let f = &got.findings()[0];
    assert_eq!(f.r#type(), Some(CRYPTO));
    assert_eq!(f.account_id(), Some(PROD_A));
    assert_eq!(f.severity(), Some(8.0));
    assert_eq!(f.service().and_then(|s| s.archived()), Some(false));
    assert_eq!(f.service().and_then(|s| s.detector_id()), Some(det.as_str()));
    let inst = f.resource().and_then(|r| r.instance_details()).expect("instance details");
    assert!(inst.instance_id().is_some_and(|i| i.starts_with("i-")));
    assert!(inst.tags().iter().any(|t| t.key() == Some("Name") && t.value() == Some("miner-1")));
    assert_eq!(f.resource().and_then(|r| r.resource_type()), Some("Instance"));

    let count = |crit: FindingCriteria| {
        let c = c.clone();
        let det = det.clone();
        async move { finding_ids(&c, &det, Some(crit)).await.len() }
    };
    assert_eq!(count(criteria(vec![("type", eq(CRYPTO))])).await, 1);
    assert_eq!(count(criteria(vec![("type", Condition::builder().neq(CRYPTO).build())])).await, 0);
    assert_eq!(count(criteria(vec![("severity", Condition::builder().gte(7).build())])).await, 1);
    assert_eq!(count(criteria(vec![("severity", Condition::builder().lt(7).build())])).await, 0);
    assert_eq!(count(criteria(vec![("service.archived", eq("false"))])).await, 1);
    assert_eq!(count(criteria(vec![("accountId", eq(PROD_A)), ("resource.resourceType", eq("Instance"))])).await, 1);
    assert_eq!(count(criteria(vec![("resource.instanceDetails.tags.value", eq("miner-1"))])).await, 1);
    let hour_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
            - 3_600_000;
    assert_eq!(
        count(criteria(vec![("updatedAt", Condition::builder().greater_than_or_equal(hour_ago).build())])).await,
        1
    );
    assert_eq!(count(criteria(vec![("updatedAt", Condition::builder().less_than(hour_ago).build())])).await, 0);

    // Invalid input: an unknown attribute, more than 50 ids, too large a page.
    let e = c
        .list_findings()
        .detector_id(&det)
        .finding_criteria(criteria(vec![("nope", eq("x"))]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    let many: Vec<String> = (0..51).map(|i| format!("{i:032x}")).collect();
    let e = c.get_findings().detector_id(&det).set_finding_ids(Some(many)).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    let e = c.list_findings().detector_id(&det).max_results(51).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");

    // Sample findings join the real one.
    c.create_sample_findings().detector_id(&det).finding_types(EXFIL).send().await.expect("CreateSampleFindings");
    let all = finding_ids(&c, &det, None).await;
    assert_eq!(all.len(), 2);
    let sorted = c
        .list_findings()
        .detector_id(&det)
        .sort_criteria(SortCriteria::builder().attribute_name("type").order_by(OrderBy::Desc).build())
        .send()
        .await
        .unwrap();
    let got =
        c.get_findings().detector_id(&det).set_finding_ids(Some(sorted.finding_ids().to_vec())).send().await.unwrap();
    let types: Vec<&str> = got.findings().iter().filter_map(|f| f.r#type()).collect();
    assert_eq!(types, vec![EXFIL, CRYPTO]);
    assert!(got.findings().iter().any(|f| f.service().and_then(|s| s.additional_info()).is_some()));
}

#[tokio::test]
async fn administrator_sees_and_archives_member_findings() {
    let em = support::demo().await;
    let admin = gd(&em, ADMIN);
    let det = detector_id(&admin).await;
    let ids = finding_ids(&admin, &det, None).await;
    assert_eq!(ids.len(), 2, "the administrator sees both members' findings: {ids:?}");
    let got = admin.get_findings().detector_id(&det).set_finding_ids(Some(ids.clone())).send().await.unwrap();
    let mut owners: Vec<(&str, &str)> =
        got.findings().iter().filter_map(|f| Some((f.account_id()?, f.r#type()?))).collect();
    owners.sort();
    assert_eq!(owners, vec![(PROD_A, CRYPTO), (PROD_B, EXFIL)]);
    let exfil = got.findings().iter().find(|f| f.r#type() == Some(EXFIL)).unwrap();
    assert_eq!(exfil.resource().and_then(|r| r.access_key_details()).and_then(|k| k.user_name()), Some("ci-deployer"));
    let only_b = finding_ids(&admin, &det, Some(criteria(vec![("accountId", eq(PROD_B))]))).await;
    assert_eq!(only_b.len(), 1);

    let crypto = got.findings().iter().find(|f| f.r#type() == Some(CRYPTO)).unwrap();
    let crypto_id = crypto.id().unwrap().to_string();
    let crypto_arn = crypto.arn().unwrap().to_string();
    assert_eq!(hub_record_state(&em, &crypto_arn).as_deref(), Some("ACTIVE"));

    // A member may not archive its own findings; its administrator may.
    let member = gd(&em, PROD_A);
    let member_det = detector_id(&member).await;
    let e = member.archive_findings().detector_id(&member_det).finding_ids(&crypto_id).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");

    admin.archive_findings().detector_id(&det).finding_ids(&crypto_id).send().await.expect("ArchiveFindings");
    assert_eq!(counter(&em, "guardduty:ArchiveFindings"), 1);
    let seen = member.get_findings().detector_id(&member_det).finding_ids(&crypto_id).send().await.unwrap();
    assert_eq!(seen.findings()[0].service().and_then(|s| s.archived()), Some(true));
    assert_eq!(hub_record_state(&em, &crypto_arn).as_deref(), Some("ARCHIVED"));
    let active = finding_ids(&admin, &det, Some(criteria(vec![("service.archived", eq("false"))]))).await;
    assert_eq!(active, only_b);

    let stats = admin
        .get_findings_statistics()
        .detector_id(&det)
        .finding_statistic_types(FindingStatisticType::CountBySeverity)
        .send()
        .await
        .expect("GetFindingsStatistics");
    let by_sev = stats.finding_statistics().and_then(|s| s.count_by_severity()).cloned().unwrap_or_default();
    assert_eq!(by_sev.values().sum::<i32>(), 2);
    let grouped = admin
        .get_findings_statistics()
        .detector_id(&det)
        .group_by(GroupByType::Account)
        .finding_criteria(criteria(vec![("service.archived", eq("false"))]))
        .send()
        .await
        .unwrap();
    let accounts: Vec<(&str, i32)> = grouped
        .finding_statistics()
        .map(|s| s.grouped_by_account().iter().filter_map(|a| Some((a.account_id()?, a.total_findings()?))).collect())
        .unwrap_or_default();
    assert_eq!(accounts, vec![(PROD_B, 1)]);

    admin.unarchive_findings().detector_id(&det).finding_ids(&crypto_id).send().await.expect("UnarchiveFindings");
    let seen = admin.get_findings().detector_id(&det).finding_ids(&crypto_id).send().await.unwrap();
    assert_eq!(seen.findings()[0].service().and_then(|s| s.archived()), Some(false));
    assert_eq!(hub_record_state(&em, &crypto_arn).as_deref(), Some("ACTIVE"));
}

#[tokio::test]
async fn organization_members_are_enabled_by_the_delegated_admin() {
    let em = support::demo().await;
    let admin = gd(&em, ADMIN);
    let det = detector_id(&admin).await;

    let members = admin.list_members().detector_id(&det).send().await.expect("ListMembers");
    let mut listed: Vec<(&str, &str)> =
        members.members().iter().filter_map(|m| Some((m.account_id()?, m.relationship_status()?))).collect();
    listed.sort();
    assert_eq!(listed, vec![(PROD_A, "Enabled"), (PROD_B, "Enabled"), (DEV, "Enabled")]);
    assert!(members.members().iter().all(|m| m.detector_id().is_some() && m.administrator_id() == Some(ADMIN)));

    let got =
        admin.get_members().detector_id(&det).account_ids(PROD_A).account_ids("999999999999").send().await.unwrap();
    assert_eq!(got.members().len(), 1);
    assert_eq!(got.unprocessed_accounts().len(), 1);
    assert_eq!(got.unprocessed_accounts()[0].account_id(), Some("999999999999"));

    let member = gd(&em, PROD_A);
    let member_det = detector_id(&member).await;
    let a = member.get_administrator_account().detector_id(&member_det).send().await.expect("GetAdministratorAccount");
    assert_eq!(a.administrator().and_then(|x| x.account_id()), Some(ADMIN));
    assert_eq!(a.administrator().and_then(|x| x.relationship_status()), Some("Enabled"));
    let m = member.get_master_account().detector_id(&member_det).send().await.expect("GetMasterAccount");
    assert_eq!(m.master().and_then(|x| x.account_id()), Some(ADMIN));
    // An organization-managed member cannot leave on its own.
    let e = member.disassociate_from_administrator_account().detector_id(&member_det).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");

    let org = admin.describe_organization_configuration().detector_id(&det).send().await.expect("Describe");
    assert_eq!(org.auto_enable(), Some(true));
    assert_eq!(org.auto_enable_organization_members(), Some(&AutoEnableMembers::New));
    let e = member.describe_organization_configuration().detector_id(&member_det).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");

    // The sandbox turns GuardDuty on, then the delegated admin makes it a member: Enabled at once.
    let sandbox = gd(&em, SANDBOX);
    sandbox.create_detector().enable(true).send().await.unwrap();
    let sandbox_det = detector_id(&sandbox).await;
    let out = admin
        .create_members()
        .detector_id(&det)
        .account_details(AccountDetail::builder().account_id(SANDBOX).email("aws-sandbox@example.com").build())
        .account_details(AccountDetail::builder().account_id("12345").email("x@example.com").build())
        .send()
        .await
        .expect("CreateMembers");
    let bad: Vec<&str> = out.unprocessed_accounts().iter().filter_map(|u| u.account_id()).collect();
    assert_eq!(bad, vec!["12345"]);
    let got = admin.get_members().detector_id(&det).account_ids(SANDBOX).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Enabled"));
    assert_eq!(got.members()[0].detector_id(), Some(sandbox_det.as_str()));
    let a = sandbox.get_administrator_account().detector_id(&sandbox_det).send().await.unwrap();
    assert_eq!(a.administrator().and_then(|x| x.account_id()), Some(ADMIN));

    // An org account without a detector gets one when it is made a member.
    let mgmt = gd(&em, MANAGEMENT);
    assert!(mgmt.list_detectors().send().await.unwrap().detector_ids().is_empty());
    admin
        .create_members()
        .detector_id(&det)
        .account_details(AccountDetail::builder().account_id(MANAGEMENT).email("aws-management@example.com").build())
        .send()
        .await
        .unwrap();
    let mgmt_det = detector_id(&mgmt).await;
    let status = mgmt.get_detector().detector_id(&mgmt_det).send().await.unwrap();
    assert_eq!(status.status(), Some(&DetectorStatus::Enabled));

    // Disassociate: gone from the associated list, still there with onlyAssociated=false.
    let out = admin.disassociate_members().detector_id(&det).account_ids(SANDBOX).send().await.expect("Disassociate");
    assert!(out.unprocessed_accounts().is_empty());
    let assoc = admin.list_members().detector_id(&det).send().await.unwrap();
    assert!(assoc.members().iter().all(|m| m.account_id() != Some(SANDBOX)));
    let all = admin.list_members().detector_id(&det).only_associated("false").send().await.unwrap();
    let sandbox_member = all.members().iter().find(|m| m.account_id() == Some(SANDBOX)).expect("still listed");
    assert_eq!(sandbox_member.relationship_status(), Some("Removed"));
    let a = sandbox.get_administrator_account().detector_id(&sandbox_det).send().await.unwrap();
    assert_eq!(a.administrator().and_then(|x| x.account_id()), None);

    let out =
        admin.delete_members().detector_id(&det).account_ids(SANDBOX).account_ids("999999999999").send().await.unwrap();
    let bad: Vec<&str> = out.unprocessed_accounts().iter().filter_map(|u| u.account_id()).collect();
    assert_eq!(bad, vec!["999999999999"]);
    let all = admin.list_members().detector_id(&det).only_associated("false").send().await.unwrap();
    assert!(all.members().iter().all(|m| m.account_id() != Some(SANDBOX)));
}

#[tokio::test]
async fn auto_enable_all_enrolls_every_organization_account() {
    let em = support::demo().await;
    let admin = gd(&em, ADMIN);
    let det = detector_id(&admin).await;
    admin
        .update_organization_configuration()
        .detector_id(&det)
        .auto_enable_organization_members(AutoEnableMembers::All)
        .send()
        .await
        .expect("UpdateOrganizationConfiguration");
    let org = admin.describe_organization_configuration().detector_id(&det).send().await.unwrap();
    assert_eq!(org.auto_enable_organization_members(), Some(&AutoEnableMembers::All));
    let members = admin.list_members().detector_id(&det).max_results(50).send().await.unwrap();
    let mut ids: Vec<&str> = members.members().iter().filter_map(|m| m.account_id()).collect();
    ids.sort();
    assert_eq!(ids, vec![MANAGEMENT, PROD_A, PROD_B, DEV, SANDBOX]);
    assert!(members.members().iter().all(|m| m.relationship_status() == Some("Enabled")));
    assert_eq!(gd(&em, SANDBOX).list_detectors().send().await.unwrap().detector_ids().len(), 1);
    // With ALL, an organization member cannot be disassociated.
    let out = admin.disassociate_members().detector_id(&det).account_ids(SANDBOX).send().await.unwrap();
    assert_eq!(out.unprocessed_accounts().len(), 1);
}

#[tokio::test]
async fn organization_admin_is_managed_from_the_management_account() {
    let em = support::demo().await;
    let mgmt = gd(&em, MANAGEMENT);
    let admins = mgmt.list_organization_admin_accounts().send().await.expect("ListOrganizationAdminAccounts");
    let listed: Vec<&str> = admins.admin_accounts().iter().filter_map(|a| a.admin_account_id()).collect();
    assert_eq!(listed, vec![ADMIN]);

    let e = gd(&em, PROD_A).list_organization_admin_accounts().send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    let e = gd(&em, ADMIN).enable_organization_admin_account().admin_account_id(PROD_A).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    let e = mgmt.enable_organization_admin_account().admin_account_id(PROD_A).send().await.unwrap_err();
    assert_eq!(code(&e), "BadRequestException", "only one administrator per organization");
    mgmt.enable_organization_admin_account().admin_account_id(ADMIN).send().await.expect("idempotent");

    mgmt.disable_organization_admin_account().admin_account_id(ADMIN).send().await.expect("Disable");
    assert!(mgmt.list_organization_admin_accounts().send().await.unwrap().admin_accounts().is_empty());
    // No longer the administrator: organization accounts it adds are merely Created.
    let admin = gd(&em, ADMIN);
    let det = detector_id(&admin).await;
    gd(&em, SANDBOX).create_detector().enable(true).send().await.unwrap();
    admin
        .create_members()
        .detector_id(&det)
        .account_details(AccountDetail::builder().account_id(SANDBOX).email("aws-sandbox@example.com").build())
        .send()
        .await
        .unwrap();
    let got = admin.get_members().detector_id(&det).account_ids(SANDBOX).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Created"));

    mgmt.enable_organization_admin_account().admin_account_id(PROD_A).send().await.expect("Enable");
    let listed = mgmt.list_organization_admin_accounts().send().await.unwrap();
    assert_eq!(listed.admin_accounts()[0].admin_account_id(), Some(PROD_A));
    let w = em.shared().world.read();
    let org = w.org.as_ref().expect("org");
    assert!(org.delegated_admins.contains(&(PROD_A.to_string(), "guardduty.amazonaws.com".to_string())));
}

const OUTSIDER: &str = "777777777777";

/// The demo's security account plus one account outside the organization with a threat.
fn invitation_scenario() -> std::path::PathBuf {
    let text = format!(
        r#"name = "gd-invitations"
[organization]
management = "{MANAGEMENT}"
delegated_admin = "{ADMIN}"

[[account]]
id = "{MANAGEMENT}"
name = "management"
baseline = false

[[account]]
id = "{ADMIN}"
name = "security"

[[account]]
id = "{OUTSIDER}"
name = "partner"
outside_org = true
hub_member = false

[[instance]]
account = "{OUTSIDER}"
name = "rogue-1"

[[threat]]
account = "{OUTSIDER}"
type = "{CRYPTO}"
instance = "rogue-1"
"#
    );
    let path = std::env::temp_dir().join(format!("orgsec-gd-invitations-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[tokio::test]
async fn invitation_flow_for_an_account_outside_the_organization() {
    let path = invitation_scenario();
    let em = Emulator::builder()
        .scenario(path.to_string_lossy().to_string())
        .rate_limits(false)
        .start()
        .await
        .expect("emulator starts");
    let admin = gd(&em, ADMIN);
    let det = detector_id(&admin).await;
    let partner = gd(&em, OUTSIDER);
    let partner_det = detector_id(&partner).await;
    assert!(finding_ids(&admin, &det, None).await.is_empty());

    admin
        .create_members()
        .detector_id(&det)
        .account_details(AccountDetail::builder().account_id(OUTSIDER).email("partner@example.com").build())
        .send()
        .await
        .unwrap();
    let got = admin.get_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Created"));
    assert!(partner.list_invitations().send().await.unwrap().invitations().is_empty());

    let out = admin.invite_members().detector_id(&det).account_ids(OUTSIDER).send().await.expect("InviteMembers");
    assert!(out.unprocessed_accounts().is_empty());
    let got = admin.get_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Invited"));
    assert!(got.members()[0].invited_at().is_some());
    let inv = partner.list_invitations().send().await.expect("ListInvitations");
    assert_eq!(inv.invitations().len(), 1);
    assert_eq!(inv.invitations()[0].account_id(), Some(ADMIN));
    let invitation_id = inv.invitations()[0].invitation_id().expect("invitation id").to_string();
    assert_eq!(partner.get_invitations_count().send().await.unwrap().invitations_count(), Some(1));
    // Invited is not yet a relationship: no findings for the administrator.
    assert!(finding_ids(&admin, &det, None).await.is_empty());

    let e = partner
        .accept_administrator_invitation()
        .detector_id(&partner_det)
        .administrator_id(ADMIN)
        .invitation_id("not-the-invitation")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BadRequestException");
    partner
        .accept_administrator_invitation()
        .detector_id(&partner_det)
        .administrator_id(ADMIN)
        .invitation_id(&invitation_id)
        .send()
        .await
        .expect("AcceptAdministratorInvitation");
    let got = admin.get_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Enabled"));
    assert_eq!(got.members()[0].detector_id(), Some(partner_det.as_str()));
    let a = partner.get_administrator_account().detector_id(&partner_det).send().await.unwrap();
    assert_eq!(a.administrator().and_then(|x| x.account_id()), Some(ADMIN));
    assert_eq!(a.administrator().and_then(|x| x.relationship_status()), Some("Enabled"));
    assert_eq!(a.administrator().and_then(|x| x.invitation_id()), Some(invitation_id.as_str()));
    assert!(partner.list_invitations().send().await.unwrap().invitations().is_empty());
    let ids = finding_ids(&admin, &det, None).await;
    assert_eq!(ids.len(), 1, "the administrator now sees the partner's finding");

    // Invitation members may leave on their own.
    partner
        .disassociate_from_administrator_account()
        .detector_id(&partner_det)
        .send()
        .await
        .expect("DisassociateFromAdministratorAccount");
    let got = admin.get_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Resigned"));
    assert!(finding_ids(&admin, &det, None).await.is_empty());

    // Re-invited, then declined.
    admin.invite_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(partner.get_invitations_count().send().await.unwrap().invitations_count(), Some(1));
    let out = partner.decline_invitations().account_ids(ADMIN).send().await.expect("DeclineInvitations");
    assert!(out.unprocessed_accounts().is_empty());
    assert_eq!(partner.get_invitations_count().send().await.unwrap().invitations_count(), Some(0));
    let got = admin.get_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    assert_eq!(got.members()[0].relationship_status(), Some("Removed"));

    // The older master-account operations behave the same.
    admin.invite_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    let inv = partner.list_invitations().send().await.unwrap();
    let invitation_id = inv.invitations()[0].invitation_id().expect("invitation id").to_string();
    partner
        .accept_invitation()
        .detector_id(&partner_det)
        .master_id(ADMIN)
        .invitation_id(&invitation_id)
        .send()
        .await
        .expect("AcceptInvitation");
    let m = partner.get_master_account().detector_id(&partner_det).send().await.unwrap();
    assert_eq!(m.master().and_then(|x| x.relationship_status()), Some("Enabled"));
    assert_eq!(finding_ids(&admin, &det, None).await.len(), 1);
    partner
        .disassociate_from_master_account()
        .detector_id(&partner_det)
        .send()
        .await
        .expect("DisassociateFromMasterAccount");
    assert!(finding_ids(&admin, &det, None).await.is_empty());

    admin.invite_members().detector_id(&det).account_ids(OUTSIDER).send().await.unwrap();
    let out = partner
        .delete_invitations()
        .account_ids(ADMIN)
        .account_ids(MANAGEMENT)
        .send()
        .await
        .expect("DeleteInvitations");
    let bad: Vec<&str> = out.unprocessed_accounts().iter().filter_map(|u| u.account_id()).collect();
    assert_eq!(bad, vec![MANAGEMENT]);
    assert!(partner.list_invitations().send().await.unwrap().invitations().is_empty());
    let _ = std::fs::remove_file(path);
}
