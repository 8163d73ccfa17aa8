//! Security Hub: every operation through aws-sdk-securityhub, with not-found, access-denied,
//! invalid-input and throttled-then-retried paths.

use std::collections::HashSet;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{
    AccountDetails, AutomationRulesAction, AutomationRulesActionType, AutomationRulesFindingFieldsUpdate,
    AutomationRulesFindingFilters, AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier,
    ComplianceStatus, ControlStatus, NoteUpdate, RecordState, Resource, Severity, SortCriterion, SortOrder,
    StandardsStatus, StandardsSubscriptionRequest, StringFilter, StringFilterComparison, WorkflowStatus,
    WorkflowUpdate,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, MANAGEMENT, PROD_A, PROD_B, SANDBOX, code};

const FSBP: &str = "arn:aws:securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0";
const CIS_3: &str = "arn:aws:securityhub:us-east-1::standards/cis-aws-foundations-benchmark/v/3.0.0";
const NIST: &str = "arn:aws:securityhub:us-east-1::standards/nist-800-53/v/5.0.0";

fn hub(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

fn eq(v: &str) -> StringFilter {
    StringFilter::builder().value(v).comparison(StringFilterComparison::Equals).build()
}

async fn all_findings(c: &Client, filters: Option<AwsSecurityFindingFilters>, page: i32) -> Vec<AwsSecurityFinding> {
    pages(c, filters, None, page, async || {}).await
}

/// Every page of a listing, `MaxResults` `page`, with `between` run after the first page.
async fn pages(
    c: &Client,
    filters: Option<AwsSecurityFindingFilters>,
    sort: Option<SortCriterion>,
    page: i32,
    between: impl AsyncFnOnce(),
) -> Vec<AwsSecurityFinding> {
    let mut out = Vec::new();
    let mut token = None;
    let mut between = Some(between);
    loop {
        let r = c
            .get_findings()
            .set_filters(filters.clone())
            .set_sort_criteria(sort.clone().map(|s| vec![s]))
            .max_results(page)
            .set_next_token(token)
            .send()
            .await
            .expect("GetFindings");
        out.extend(r.findings().iter().cloned());
        if let Some(f) = between.take() {
            f().await;
        }
        token = r.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

#[tokio::test]
async fn hub_lifecycle_enable_describe_update_disable() {
    let em = support::demo().await;
    let c = hub(&em, SANDBOX);
    let e = c.describe_hub().send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidAccessException");

    c.enable_security_hub().enable_default_standards(true).send().await.expect("enable");
    let again = c.enable_security_hub().send().await.unwrap_err();
    assert_eq!(code(&again), "ResourceConflictException");

    let h = c.describe_hub().send().await.unwrap();
    assert_eq!(h.hub_arn(), Some("arn:aws:securityhub:us-east-1:666666666666:hub/default"));
    assert_eq!(h.auto_enable_controls(), Some(true));
    assert!(h.subscribed_at().is_some());
    // Default standards: FSBP and CIS 1.2.
    let enabled = c.get_enabled_standards().send().await.unwrap();
    let arns: Vec<&str> = enabled.standards_subscriptions().iter().filter_map(|s| s.standards_arn()).collect();
    assert!(
        arns.contains(&FSBP) && arns.contains(&"arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"),
        "{arns:?}"
    );
    let wrong =
        c.describe_hub().hub_arn("arn:aws:securityhub:us-east-1:666666666666:hub/other").send().await.unwrap_err();
    assert_eq!(code(&wrong), "ResourceNotFoundException");

    c.update_security_hub_configuration().auto_enable_controls(false).send().await.expect("update");
    assert_eq!(c.describe_hub().send().await.unwrap().auto_enable_controls(), Some(false));
    let bad = c
        .update_security_hub_configuration()
        .control_finding_generator(aws_sdk_securityhub::types::ControlFindingGenerator::from("NOPE"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidInputException");

    // The sandbox now has its own control findings; disabling archives them.
    let own = all_findings(&c, None, 100).await;
    assert!(own.iter().any(|f| f.record_state() == Some(&RecordState::Active)));
    c.disable_security_hub().send().await.expect("disable");
    assert_eq!(code(&c.describe_hub().send().await.unwrap_err()), "InvalidAccessException");
    let w = em.shared().world.read();
    assert!(
        w.findings["us-east-1"]
            .iter()
            .filter(|f| f.account == SANDBOX)
            .all(|f| f.str_field("RecordState") == Some("ARCHIVED"))
    );
}

#[tokio::test]
async fn admin_cannot_disable_while_it_has_members() {
    let em = support::demo().await;
    let e = hub(&em, ADMIN).disable_security_hub().send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidInputException");
}

#[tokio::test]
async fn org_managed_membership_enables_the_member_and_shows_its_findings() {
    let em = support::demo().await;
    let admin = hub(&em, ADMIN);
    let r = admin
        .create_members()
        .account_details(AccountDetails::builder().account_id(SANDBOX).build())
        .account_details(AccountDetails::builder().account_id("12345").build())
        .account_details(AccountDetails::builder().account_id(ADMIN).build())
        .send()
        .await
        .unwrap();
    let failed: HashSet<&str> = r.unprocessed_accounts().iter().filter_map(|u| u.account_id()).collect();
    assert_eq!(failed, HashSet::from(["12345", ADMIN]));

    let got = admin.get_members().account_ids(SANDBOX).account_ids("999999999999").send().await.unwrap();
    assert_eq!(got.members()[0].member_status(), Some("Enabled"));
    assert_eq!(got.members()[0].administrator_id(), Some(ADMIN));
    assert_eq!(got.unprocessed_accounts()[0].account_id(), Some("999999999999"));
    // The member's hub was enabled for it, and it knows its administrator.
    let member = hub(&em, SANDBOX);
    assert!(member.describe_hub().send().await.is_ok());
    let adm = member.get_administrator_account().send().await.unwrap();
    assert_eq!(adm.administrator().and_then(|a| a.account_id()), Some(ADMIN));
    // An org-managed member cannot leave by itself.
    let leave = member.disassociate_from_administrator_account().send().await.unwrap_err();
    assert_eq!(code(&leave), "InvalidInputException");

    // The admin now sees the sandbox's findings.
    let f = AwsSecurityFindingFilters::builder().aws_account_id(eq(SANDBOX)).build();
    assert!(!all_findings(&admin, Some(f.clone()), 100).await.is_empty());

    // List pagination: 4 associated members, pages of 3.
    let p1 = admin.list_members().max_results(3).send().await.unwrap();
    assert_eq!(p1.members().len(), 3);
    let p2 = admin.list_members().max_results(3).next_token(p1.next_token().unwrap()).send().await.unwrap();
    assert_eq!(p2.members().len(), 1);
    assert!(p2.next_token().is_none());

    admin.disassociate_members().account_ids(SANDBOX).send().await.unwrap();
    let got = admin.get_members().account_ids(SANDBOX).send().await.unwrap();
    assert_eq!(got.members()[0].member_status(), Some("Removed"));
    assert!(all_findings(&admin, Some(f), 100).await.is_empty(), "a removed member's findings are no longer visible");
    let all = admin.list_members().only_associated(false).send().await.unwrap();
    assert_eq!(all.members().len(), 4);

    let del = admin.delete_members().account_ids(SANDBOX).account_ids("999999999999").send().await.unwrap();
    assert_eq!(del.unprocessed_accounts().len(), 1);
    assert!(admin.get_members().account_ids(SANDBOX).send().await.unwrap().members().is_empty());
    let missing = admin.disassociate_members().account_ids(SANDBOX).send().await.unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");
}

#[tokio::test]
async fn invitation_membership_for_an_account_outside_the_org() {
    let dir = std::env::temp_dir().join(format!("orgsec-sh-invite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("org.toml");
    std::fs::write(
        &path,
        r#"
name = "invite"
[organization]
management = "111111111111"
delegated_admin = "222222222222"
[[account]]
id = "111111111111"
name = "management"
baseline = false
[[account]]
id = "222222222222"
name = "security"
[[account]]
id = "777777777777"
name = "partner"
outside_org = true
hub_member = false
"#,
    )
    .unwrap();
    let em = Emulator::builder().scenario(path.to_string_lossy()).rate_limits(false).start().await.unwrap();
    let admin = hub(&em, ADMIN);
    admin
        .create_members()
        .account_details(AccountDetails::builder().account_id("777777777777").email("partner@example.com").build())
        .send()
        .await
        .unwrap();
    let status = |r: aws_sdk_securityhub::operation::get_members::GetMembersOutput| {
        r.members()[0].member_status().unwrap().to_string()
    };
    assert_eq!(status(admin.get_members().account_ids("777777777777").send().await.unwrap()), "Created");
    // Not associated yet: not listed by default.
    assert!(admin.list_members().send().await.unwrap().members().is_empty());

    admin.invite_members().account_ids("777777777777").send().await.unwrap();
    assert_eq!(status(admin.get_members().account_ids("777777777777").send().await.unwrap()), "Invited");

    let partner = hub(&em, "777777777777");
    let invitations = partner.list_invitations().send().await.unwrap();
    let inv = &invitations.invitations()[0];
    assert_eq!(inv.account_id(), Some(ADMIN));
    let wrong = partner
        .accept_administrator_invitation()
        .administrator_id(ADMIN)
        .invitation_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong), "InvalidInputException");
    partner
        .accept_administrator_invitation()
        .administrator_id(ADMIN)
        .invitation_id(inv.invitation_id().unwrap())
        .send()
        .await
        .expect("accept");
    assert_eq!(status(admin.get_members().account_ids("777777777777").send().await.unwrap()), "Enabled");
    let f = AwsSecurityFindingFilters::builder().aws_account_id(eq("777777777777")).build();
    assert!(!all_findings(&admin, Some(f), 100).await.is_empty());

    // An invited member may leave.
    partner.disassociate_from_administrator_account().send().await.expect("leave");
    assert_eq!(status(admin.get_members().account_ids("777777777777").send().await.unwrap()), "Resigned");
    assert!(partner.get_administrator_account().send().await.unwrap().administrator().is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn organization_admin_and_configuration() {
    let em = support::demo().await;
    let mgmt = hub(&em, MANAGEMENT);
    let admins = mgmt.list_organization_admin_accounts().send().await.unwrap();
    assert_eq!(admins.admin_accounts()[0].account_id(), Some(ADMIN));
    let denied =
        hub(&em, PROD_A).enable_organization_admin_account().admin_account_id(PROD_A).send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDeniedException");
    let conflict = mgmt.enable_organization_admin_account().admin_account_id(PROD_A).send().await.unwrap_err();
    assert_eq!(code(&conflict), "InvalidInputException");
    let same = mgmt.enable_organization_admin_account().admin_account_id(ADMIN).send().await.unwrap();
    assert_eq!(same.admin_account_id(), Some(ADMIN));

    let admin = hub(&em, ADMIN);
    let conf = admin.describe_organization_configuration().send().await.unwrap();
    assert_eq!(conf.auto_enable(), Some(true));
    admin
        .update_organization_configuration()
        .auto_enable(false)
        .auto_enable_standards(aws_sdk_securityhub::types::AutoEnableStandards::None)
        .send()
        .await
        .unwrap();
    let conf = admin.describe_organization_configuration().send().await.unwrap();
    assert_eq!(conf.auto_enable(), Some(false));
    assert_eq!(conf.auto_enable_standards().map(|s| s.as_str()), Some("NONE"));
    let denied = hub(&em, PROD_A).describe_organization_configuration().send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDeniedException");

    mgmt.disable_organization_admin_account().admin_account_id(ADMIN).send().await.unwrap();
    assert!(mgmt.list_organization_admin_accounts().send().await.unwrap().admin_accounts().is_empty());
    mgmt.enable_organization_admin_account().admin_account_id(PROD_A).send().await.unwrap();
    assert_eq!(
        mgmt.list_organization_admin_accounts().send().await.unwrap().admin_accounts()[0].account_id(),
        Some(PROD_A)
    );
}

#[tokio::test]
async fn standards_enable_pending_then_ready_and_disable() {
    let em = Emulator::builder().scenario("demo").rate_limits(false).standards_ready_ms(60_000).start().await.unwrap();
    let c = hub(&em, PROD_A);
    let described = c.describe_standards().send().await.unwrap();
    assert_eq!(described.standards().len(), 6);

    let r = c
        .batch_enable_standards()
        .standards_subscription_requests(StandardsSubscriptionRequest::builder().standards_arn(NIST).build())
        .send()
        .await
        .unwrap();
    assert_eq!(r.standards_subscriptions()[0].standards_status(), Some(&StandardsStatus::Pending));
    let sub_arn = r.standards_subscriptions()[0].standards_subscription_arn().unwrap().to_string();
    let status_of = |out: aws_sdk_securityhub::operation::get_enabled_standards::GetEnabledStandardsOutput| {
        out.standards_subscriptions()
            .iter()
            .find(|s| s.standards_arn() == Some(NIST))
            .and_then(|s| s.standards_status().cloned())
    };
    assert_eq!(status_of(c.get_enabled_standards().send().await.unwrap()), Some(StandardsStatus::Pending));
    support::raw(&em.url(), "POST", "/_emulator/clock", &[], br#"{"advance_ms": 60001}"#).await;
    assert_eq!(status_of(c.get_enabled_standards().send().await.unwrap()), Some(StandardsStatus::Ready));

    let unknown = c
        .batch_enable_standards()
        .standards_subscription_requests(
            StandardsSubscriptionRequest::builder().standards_arn("arn:aws:securityhub:::nope").build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unknown), "InvalidInputException");

    let d = c.batch_disable_standards().standards_subscription_arns(&sub_arn).send().await.unwrap();
    assert_eq!(d.standards_subscriptions()[0].standards_status(), Some(&StandardsStatus::Deleting));
    assert_eq!(status_of(c.get_enabled_standards().send().await.unwrap()), None);
    let gone = c.batch_disable_standards().standards_subscription_arns(&sub_arn).send().await.unwrap_err();
    assert_eq!(code(&gone), "ResourceNotFoundException");
}

#[tokio::test]
async fn controls_of_a_pending_standard_cannot_be_updated_until_it_is_ready() {
    let em = Emulator::builder().scenario("demo").rate_limits(false).standards_ready_ms(60_000).start().await.unwrap();
    let c = hub(&em, PROD_A);
    let r = c
        .batch_enable_standards()
        .standards_subscription_requests(StandardsSubscriptionRequest::builder().standards_arn(NIST).build())
        .send()
        .await
        .unwrap();
    let sub_arn = r.standards_subscriptions()[0].standards_subscription_arn().unwrap().to_string();
    let controls = c.describe_standards_controls().standards_subscription_arn(&sub_arn).send().await.unwrap();
    let arn = controls.controls()[0].standards_control_arn().unwrap().to_string();
    let disable = || {
        c.update_standards_control()
            .standards_control_arn(&arn)
            .control_status(ControlStatus::Disabled)
            .disabled_reason("Not applicable to this account")
            .send()
    };
    let pending = disable().await.unwrap_err();
    assert_eq!(code(&pending), "InvalidInputException");
    support::raw(&em.url(), "POST", "/_emulator/clock", &[], br#"{"advance_ms": 60001}"#).await;
    disable().await.unwrap();
}

#[tokio::test]
async fn disabling_a_control_with_a_reason_archives_its_findings() {
    let em = support::demo().await;
    let c = hub(&em, PROD_A);
    let subs = c.get_enabled_standards().send().await.unwrap();
    let fsbp = subs.standards_subscriptions().iter().find(|s| s.standards_arn() == Some(FSBP)).unwrap();
    let fsbp_sub = fsbp.standards_subscription_arn().unwrap();

    // Paginated control listing.
    let mut controls = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .describe_standards_controls()
            .standards_subscription_arn(fsbp_sub)
            .max_results(20)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        controls.extend(r.controls().iter().cloned());
        token = r.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let ec2_7 = controls.iter().find(|c| c.control_id() == Some("EC2.7")).expect("EC2.7 is in FSBP");
    assert_eq!(ec2_7.control_status(), Some(&ControlStatus::Enabled));
    assert!(controls.len() > 40);
    let arn = ec2_7.standards_control_arn().unwrap().to_string();

    let no_reason = c
        .update_standards_control()
        .standards_control_arn(&arn)
        .control_status(ControlStatus::Disabled)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_reason), "InvalidInputException");
    let missing = c
        .update_standards_control()
        .standards_control_arn(arn.replace("EC2.7", "EC2.13"))
        .control_status(ControlStatus::Disabled)
        .disabled_reason("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException", "EC2.13 is not part of FSBP");

    let filters = AwsSecurityFindingFilters::builder()
        .compliance_security_control_id(eq("EC2.7"))
        .aws_account_id(eq(PROD_A))
        .build();
    let before = all_findings(&c, Some(filters.clone()), 100).await;
    assert_eq!(before[0].record_state(), Some(&RecordState::Active));
    assert_eq!(before[0].compliance().and_then(|x| x.status()), Some(&ComplianceStatus::Failed));

    c.update_standards_control()
        .standards_control_arn(&arn)
        .control_status(ControlStatus::Disabled)
        .disabled_reason("Volumes are encrypted per workload by policy")
        .send()
        .await
        .unwrap();
    let after = all_findings(&c, Some(filters.clone()), 100).await;
    // EC2.7 is also in CIS 3.0 (2.2.1): the finding stays, now associated with CIS only.
    assert_eq!(after[0].record_state(), Some(&RecordState::Active));
    let assoc: Vec<&str> =
        after[0].compliance().unwrap().associated_standards().iter().filter_map(|s| s.standards_id()).collect();
    assert_eq!(assoc, vec!["standards/cis-aws-foundations-benchmark/v/3.0.0"]);
    let cis_sub = subs
        .standards_subscriptions()
        .iter()
        .find(|s| s.standards_arn() == Some(CIS_3))
        .unwrap()
        .standards_subscription_arn()
        .unwrap();
    let cis_controls = c.describe_standards_controls().standards_subscription_arn(cis_sub).send().await.unwrap();
    let cis_arn = cis_controls
        .controls()
        .iter()
        .find(|x| x.control_id() == Some("EC2.7"))
        .unwrap()
        .standards_control_arn()
        .unwrap()
        .to_string();
    c.update_standards_control()
        .standards_control_arn(&cis_arn)
        .control_status(ControlStatus::Disabled)
        .disabled_reason("same")
        .send()
        .await
        .unwrap();
    let archived = all_findings(&c, Some(filters.clone()), 100).await;
    assert_eq!(archived[0].record_state(), Some(&RecordState::Archived));
    let desc =
        c.describe_standards_controls().standards_subscription_arn(fsbp_sub).max_results(100).send().await.unwrap();
    let disabled = desc.controls().iter().find(|x| x.control_id() == Some("EC2.7")).unwrap();
    assert_eq!(disabled.control_status(), Some(&ControlStatus::Disabled));
    assert_eq!(disabled.disabled_reason(), Some("Volumes are encrypted per workload by policy"));
    let sc = c
        .batch_get_security_controls()
        .security_control_ids("EC2.7")
        .security_control_ids("Nope.1")
        .send()
        .await
        .unwrap();
    assert_eq!(sc.security_controls()[0].security_control_status().map(|s| s.as_str()), Some("DISABLED"));
    assert_eq!(sc.unprocessed_ids()[0].security_control_id(), Some("Nope.1"));

    // Re-enabling brings it back.
    c.update_standards_control()
        .standards_control_arn(&arn)
        .control_status(ControlStatus::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(all_findings(&c, Some(filters), 100).await[0].record_state(), Some(&RecordState::Active));
}

#[tokio::test]
async fn get_findings_pages_filters_sorts_and_respects_visibility() {
    let em = support::demo().await;
    let admin = hub(&em, ADMIN);
    let everything = all_findings(&admin, None, 100).await;
    let by_small_pages = all_findings(&admin, None, 7).await;
    assert_eq!(everything.len(), by_small_pages.len());
    let ids: HashSet<&str> = by_small_pages.iter().filter_map(|f| f.id()).collect();
    assert_eq!(ids.len(), by_small_pages.len(), "no finding is served twice across pages");
    let accounts: HashSet<&str> = everything.iter().filter_map(|f| f.aws_account_id()).collect();
    assert_eq!(accounts, HashSet::from([ADMIN, PROD_A, PROD_B, DEV]));

    // A member only sees its own.
    let member = all_findings(&hub(&em, PROD_B), None, 100).await;
    assert!(!member.is_empty() && member.iter().all(|f| f.aws_account_id() == Some(PROD_B)));

    // Filters: failed HIGH or CRITICAL, active, not resolved.
    let f = AwsSecurityFindingFilters::builder()
        .compliance_status(eq("FAILED"))
        .severity_label(eq("HIGH"))
        .severity_label(eq("CRITICAL"))
        .record_state(eq("ACTIVE"))
        .workflow_status(
            StringFilter::builder().value("RESOLVED").comparison(StringFilterComparison::NotEquals).build(),
        )
        .build();
    let failed = all_findings(&admin, Some(f), 100).await;
    assert!(!failed.is_empty());
    for x in &failed {
        assert_eq!(x.compliance().and_then(|c| c.status()), Some(&ComplianceStatus::Failed));
        let label = x.severity().and_then(|s| s.label()).map(|l| l.as_str().to_string()).unwrap();
        assert!(label == "HIGH" || label == "CRITICAL", "{label}");
    }
    // The GuardDuty and Access Analyzer findings arrive through their product ARNs.
    let gd = AwsSecurityFindingFilters::builder()
        .product_arn(eq("arn:aws:securityhub:us-east-1::product/aws/guardduty"))
        .build();
    let gd = all_findings(&admin, Some(gd), 100).await;
    assert_eq!(gd.len(), 2, "crypto mining in 333333333333 and exposed credentials in 444444444444");
    let aa = AwsSecurityFindingFilters::builder()
        .product_arn(eq("arn:aws:securityhub:us-east-1::product/aws/access-analyzer"))
        .resource_type(eq("AwsS3Bucket"))
        .build();
    assert_eq!(all_findings(&admin, Some(aa), 100).await.len(), 1);

    // Sorting by severity, descending, across pages.
    let sorted = admin
        .get_findings()
        .sort_criteria(SortCriterion::builder().field("SeverityNormalized").sort_order(SortOrder::Descending).build())
        .max_results(5)
        .send()
        .await
        .unwrap();
    let sev: Vec<i32> = sorted.findings().iter().filter_map(|f| f.severity().and_then(|s| s.normalized())).collect();
    assert!(sev.windows(2).all(|w| w[0] >= w[1]), "{sev:?}");
    let next = admin
        .get_findings()
        .sort_criteria(SortCriterion::builder().field("SeverityNormalized").sort_order(SortOrder::Descending).build())
        .max_results(5)
        .next_token(sorted.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert!(next.findings()[0].severity().and_then(|s| s.normalized()) <= sev.last().copied());

    // Bad inputs.
    let bad = admin.get_findings().max_results(101).send().await.unwrap_err();
    assert_eq!(code(&bad), "InvalidInputException");
    let bad = admin.get_findings().next_token("garbage").send().await.unwrap_err();
    assert_eq!(code(&bad), "InvalidInputException");
    let not_subscribed = hub(&em, SANDBOX).get_findings().send().await.unwrap_err();
    assert_eq!(code(&not_subscribed), "InvalidAccessException");
}

fn sample_finding(id: &str, account: &str) -> AwsSecurityFinding {
    AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(id)
        .product_arn(format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default"))
        .generator_id("orgsec-test")
        .aws_account_id(account)
        .types("Software and Configuration Checks")
        .created_at("2026-11-01T00:00:00.000Z")
        .updated_at("2026-11-01T00:00:00.000Z")
        .severity(Severity::builder().label(aws_sdk_securityhub::types::SeverityLabel::Medium).build())
        .title("A custom finding")
        .description("Imported by a test")
        .resources(Resource::builder().r#type("Other").id("thing-1").build())
        .build()
}

/// Every page of a listing sorted by `UpdatedAt`, with `between` run after the first page.
async fn sorted_pages(
    c: &Client,
    filters: AwsSecurityFindingFilters,
    page: i32,
    between: impl AsyncFnOnce(),
) -> Vec<AwsSecurityFinding> {
    let sort = SortCriterion::builder().field("UpdatedAt").sort_order(SortOrder::Ascending).build();
    pages(c, Some(filters), Some(sort), page, between).await
}

#[tokio::test]
async fn sorted_pages_of_one_account_serve_each_finding_once_and_see_changes() {
    let em = support::demo().await;
    let admin = hub(&em, ADMIN);
    let mine = AwsSecurityFindingFilters::builder().aws_account_id(eq(DEV)).build();
    let unsorted = all_findings(&admin, Some(mine.clone()), 100).await;
    assert!(unsorted.len() > 6, "the demo's {DEV} has pages of 3 to page through");

    let sorted = sorted_pages(&admin, mine.clone(), 3, async || {}).await;
    let ids = |v: &[AwsSecurityFinding]| v.iter().filter_map(|f| f.id().map(str::to_string)).collect::<Vec<_>>();
    let (want, got) = (ids(&unsorted), ids(&sorted));
    assert_eq!(got.len(), want.len(), "each finding once");
    assert_eq!(got.iter().collect::<HashSet<_>>(), want.iter().collect::<HashSet<_>>());
    let stamps: Vec<&str> = sorted.iter().filter_map(|f| f.updated_at()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "sorted by UpdatedAt: {stamps:?}");

    // A finding updated after the first page moves to the end of the order; the pages after
    // the first reflect it instead of serving the order the first page saw. (The token is an
    // offset: the order shifting under it makes the next page skip the finding at the page
    // boundary, as the finding served twice shows.)
    let first = sorted[0].clone();
    let moved = sorted_pages(&admin, mine, 3, async || {
        let ident = AwsSecurityFindingIdentifier::builder()
            .id(first.id().unwrap())
            .product_arn(first.product_arn().unwrap())
            .build();
        let note = NoteUpdate::builder().text("touched").updated_by("test").build();
        admin.batch_update_findings().finding_identifiers(ident).note(note).send().await.unwrap();
    })
    .await;
    let moved_ids = ids(&moved);
    assert_eq!(moved_ids.first(), got.first(), "the first page was served before the change");
    assert_eq!(moved_ids.last(), got.first(), "after the change it sorts last, and is served again there");
    assert_eq!(moved_ids.len(), got.len());
}

#[tokio::test]
async fn import_then_update_findings() {
    let em = support::demo().await;
    let c = hub(&em, PROD_A);
    let mut broken = sample_finding("f-2", PROD_A);
    broken.title = None;
    let r = c
        .batch_import_findings()
        .findings(sample_finding("f-1", PROD_A))
        .findings(broken)
        .findings(sample_finding("f-3", PROD_B))
        .send()
        .await
        .unwrap();
    assert_eq!(r.success_count(), Some(1));
    assert_eq!(r.failed_count(), Some(2));
    let reasons: Vec<&str> = r.failed_findings().iter().filter_map(|f| f.error_message()).collect();
    assert!(reasons.iter().any(|m| m.contains("Title")), "{reasons:?}");

    let product = format!("arn:aws:securityhub:us-east-1:{PROD_A}:product/{PROD_A}/default");
    let ident = AwsSecurityFindingIdentifier::builder().id("f-1").product_arn(&product).build();
    let missing = AwsSecurityFindingIdentifier::builder().id("nope").product_arn(&product).build();
    let u = c
        .batch_update_findings()
        .finding_identifiers(ident.clone())
        .finding_identifiers(missing)
        .note(NoteUpdate::builder().text("Ticket SEC-1").updated_by("orgsec").build())
        .workflow(WorkflowUpdate::builder().status(aws_sdk_securityhub::types::WorkflowStatus::Notified).build())
        .send()
        .await
        .unwrap();
    assert_eq!(u.processed_findings().len(), 1);
    assert_eq!(u.unprocessed_findings()[0].error_code(), Some("FindingNotFound"));
    let f = AwsSecurityFindingFilters::builder().id(eq("f-1")).build();
    let got = all_findings(&c, Some(f.clone()), 10).await;
    assert_eq!(got[0].note().and_then(|n| n.text()), Some("Ticket SEC-1"));
    assert_eq!(got[0].workflow().and_then(|w| w.status()), Some(&WorkflowStatus::Notified));

    // Re-importing keeps what BatchUpdateFindings owns.
    c.batch_import_findings().findings(sample_finding("f-1", PROD_A)).send().await.unwrap();
    let got = all_findings(&c, Some(f), 10).await;
    assert_eq!(got[0].workflow().and_then(|w| w.status()), Some(&WorkflowStatus::Notified));

    // The admin resolves a member's control finding with a note.
    let admin = hub(&em, ADMIN);
    let ec2_7 = AwsSecurityFindingFilters::builder()
        .compliance_security_control_id(eq("EC2.7"))
        .aws_account_id(eq(DEV))
        .build();
    let target = &all_findings(&admin, Some(ec2_7.clone()), 10).await[0];
    admin
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(target.id().unwrap())
                .product_arn(target.product_arn().unwrap())
                .build(),
        )
        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Suppressed).build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        all_findings(&admin, Some(ec2_7), 10).await[0].workflow().and_then(|w| w.status()),
        Some(&WorkflowStatus::Suppressed)
    );
    // Another member cannot touch it.
    let other = hub(&em, PROD_B)
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(target.id().unwrap())
                .product_arn(target.product_arn().unwrap())
                .build(),
        )
        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Resolved).build())
        .send()
        .await
        .unwrap();
    assert_eq!(other.unprocessed_findings().len(), 1);

    let nothing = c.batch_update_findings().finding_identifiers(ident).send().await.unwrap_err();
    assert_eq!(code(&nothing), "InvalidInputException");
}

#[tokio::test]
async fn action_targets_automation_rules_and_control_definitions() {
    let em = support::demo().await;
    let c = hub(&em, ADMIN);
    let arn =
        c.create_action_target().name("Remediate").description("Send to orgsec").id("orgsecfix").send().await.unwrap();
    assert_eq!(arn.action_target_arn(), Some("arn:aws:securityhub:us-east-1:222222222222:action/custom/orgsecfix"));
    let dup = c.create_action_target().name("Remediate").description("d").id("orgsecfix").send().await.unwrap_err();
    assert_eq!(code(&dup), "ResourceConflictException");
    let described =
        c.describe_action_targets().action_target_arns(arn.action_target_arn().unwrap()).send().await.unwrap();
    assert_eq!(described.action_targets()[0].name(), Some("Remediate"));

    let rule = c
        .create_automation_rule()
        .rule_name("suppress-sandbox")
        .rule_order(1)
        .description("Sandbox findings are informational")
        .criteria(AutomationRulesFindingFilters::builder().aws_account_id(eq(SANDBOX)).build())
        .actions(
            AutomationRulesAction::builder()
                .r#type(AutomationRulesActionType::FindingFieldsUpdate)
                .finding_fields_update(
                    AutomationRulesFindingFieldsUpdate::builder()
                        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Suppressed).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(rule.rule_arn().unwrap().contains(":automation-rule/"));
    let rules = c.list_automation_rules().send().await.unwrap();
    assert_eq!(rules.automation_rules_metadata()[0].rule_name(), Some("suppress-sandbox"));
    let bad = c.create_automation_rule().rule_name("x").rule_order(0).description("d").send().await.unwrap_err();
    assert_eq!(code(&bad), "InvalidInputException");

    let defs = c.list_security_control_definitions().standards_arn(FSBP).max_results(100).send().await.unwrap();
    assert!(defs.security_control_definitions().iter().any(|d| d.security_control_id() == Some("EC2.19")));
    assert!(!defs.security_control_definitions().iter().any(|d| d.security_control_id() == Some("EC2.13")));
}

#[tokio::test]
async fn throttled_get_findings_is_retried_by_the_sdk() {
    // Published limit: GetFindings 3 per second, burst 6, per account and region.
    let em = Emulator::builder().scenario("demo").rate_limits(true).start().await.unwrap();
    let c = hub(&em, ADMIN);
    for _ in 0..9 {
        c.get_findings().max_results(1).send().await.expect("the SDK retries throttled calls");
    }
    // Without retries the limit shows: raw calls past the burst get 429 with the throttling code.
    let auth = support::auth(ADMIN, "securityhub");
    let mut codes = Vec::new();
    for _ in 0..8 {
        let (status, body) = support::raw(
            &em.url(),
            "POST",
            "/findings",
            &[("authorization", &auth), ("content-type", "application/json")],
            b"{}",
        )
        .await;
        codes.push((status, body.contains("TooManyRequestsException")));
    }
    assert!(codes.contains(&(429, true)), "{codes:?}");
    // Another account has its own budget.
    hub(&em, PROD_A).get_findings().max_results(1).send().await.unwrap();
}

#[tokio::test]
async fn injected_faults_are_retried_or_surface_with_their_codes() {
    let em = support::demo().await;
    let c = hub(&em, ADMIN);
    let url = em.url();
    let set = |body: &'static str| {
        let url = url.clone();
        async move { support::raw(&url, "PUT", "/_emulator/faults", &[], body.as_bytes()).await }
    };
    // Always a 5xx: the SDK retries (3 attempts) then reports the service's code.
    assert_eq!(
        set(r#"{"rules": [{"service": "securityhub", "operation": "DescribeHub", "error": 1.0}]}"#).await.0,
        200
    );
    let e = c.describe_hub().send().await.unwrap_err();
    assert_eq!(code(&e), "InternalException");
    // Only other operations are unaffected.
    c.get_enabled_standards().send().await.unwrap();
    // Throttling half of the calls: with retries, calls still succeed.
    set(r#"{"rules": [{"service": "securityhub", "throttle": 0.3}]}"#).await;
    for _ in 0..5 {
        c.describe_hub().send().await.expect("retried through throttling");
    }
    let (status, _) = set(r#"{"rules": [{"throttle": 2.0}]}"#).await;
    assert_eq!(status, 400, "probabilities are validated");
    set(r#"{"rules": []}"#).await;
    c.describe_hub().send().await.unwrap();
}
