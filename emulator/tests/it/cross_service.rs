//! Cause and effect across services: an open security group fails EC2.13 in the delegated
//! admin's view, a revoke through the assumed remediation role fixes it, and Security Hub turns
//! the finding PASSED and RESOLVED by itself.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, ComplianceStatus, StandardsSubscriptionRequest, StringFilter,
    StringFilterComparison, WorkflowStatus,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, EXTERNAL_ID, PROD_A};

fn eq(v: &str) -> StringFilter {
    StringFilter::builder().value(v).comparison(StringFilterComparison::Equals).build()
}

async fn ec2_13_findings(hub: &aws_sdk_securityhub::Client, sg_arn: &str) -> Vec<AwsSecurityFinding> {
    let filters = AwsSecurityFindingFilters::builder()
        .compliance_security_control_id(eq("EC2.13"))
        .aws_account_id(eq(PROD_A))
        .resource_id(eq(sg_arn))
        .build();
    hub.get_findings().filters(filters).send().await.expect("GetFindings").findings().to_vec()
}

async fn web_admin_group(em: &Emulator) -> (aws_sdk_ec2::Client, String) {
    let ec2 =
        aws_sdk_ec2::Client::new(&support::assume(em, ADMIN, PROD_A, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await);
    let groups = ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("web-admin").build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let id = groups.security_groups()[0].group_id().expect("group id").to_string();
    (ec2, id)
}

async fn enable_cis_1_2(em: &Emulator) {
    // EC2.13 belongs to CIS 1.2 (and PCI, NIST), not to the demo's FSBP + CIS 3.0.
    let member_hub = aws_sdk_securityhub::Client::new(&support::config(em, PROD_A));
    member_hub
        .batch_enable_standards()
        .standards_subscription_requests(
            StandardsSubscriptionRequest::builder()
                .standards_arn("arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0")
                .build(),
        )
        .send()
        .await
        .expect("BatchEnableStandards");
}

fn revoke_ssh(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
) -> aws_sdk_ec2::operation::revoke_security_group_ingress::builders::RevokeSecurityGroupIngressFluentBuilder {
    ec2.revoke_security_group_ingress().group_id(group).ip_permissions(
        aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build(),
    )
}

#[tokio::test]
async fn open_ssh_fails_ec2_13_then_revoke_through_the_remediation_role_resolves_it() {
    let em = support::demo().await;
    enable_cis_1_2(&em).await;
    let (ec2, group) = web_admin_group(&em).await;
    let sg_arn = format!("arn:aws:ec2:us-east-1:{PROD_A}:security-group/{group}");

    // The delegated admin sees the member's failing control.
    let hub = aws_sdk_securityhub::Client::new(&support::config(&em, ADMIN));
    let before = ec2_13_findings(&hub, &sg_arn).await;
    assert_eq!(before.len(), 1, "one EC2.13 finding for the open group");
    let f = &before[0];
    assert_eq!(f.compliance().and_then(|c| c.status()), Some(&ComplianceStatus::Failed));
    assert_eq!(f.workflow().and_then(|w| w.status()), Some(&WorkflowStatus::New));
    assert!(
        f.compliance().unwrap().related_requirements().iter().any(|r| r == "CIS AWS Foundations Benchmark v1.2.0/4.1"),
        "{:?}",
        f.compliance()
    );

    // Fix it through the member's remediation role.
    revoke_ssh(&ec2, &group).send().await.expect("RevokeSecurityGroupIngress");

    let after = ec2_13_findings(&hub, &sg_arn).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id(), f.id(), "the same finding is updated, not replaced");
    assert_eq!(after[0].compliance().and_then(|c| c.status()), Some(&ComplianceStatus::Passed));
    assert_eq!(after[0].workflow().and_then(|w| w.status()), Some(&WorkflowStatus::Resolved));
    assert_ne!(after[0].updated_at(), f.updated_at());

    // The other rules stayed: 3389 is still open, so EC2.14 still fails.
    let groups = ec2.describe_security_groups().group_ids(&group).send().await.unwrap();
    let ports: Vec<i32> = groups.security_groups()[0].ip_permissions().iter().filter_map(|p| p.from_port()).collect();
    assert!(ports.contains(&3389) && ports.contains(&443) && !ports.contains(&22), "{ports:?}");

    // Exactly one revoke reached the group.
    let (_, counters) = support::raw(&em.url(), "GET", "/_emulator/counters", &[], b"").await;
    let counters: serde_json::Value = serde_json::from_str(&counters).unwrap();
    let revokes: Vec<&serde_json::Value> = counters["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "ec2:RevokeSecurityGroupIngress" && r["resource"] == group.as_str())
        .collect();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0]["count"], 1);
}

#[tokio::test]
async fn findings_follow_the_fix_only_after_the_evaluation_delay() {
    let em =
        Emulator::builder().scenario("demo").rate_limits(false).evaluation_delay_ms(600_000).start().await.unwrap();
    // Enabling the standard is itself a change that waits for the delay.
    enable_cis_1_2(&em).await;
    support::raw(&em.url(), "POST", "/_emulator/clock", &[], br#"{"advance_ms": 600001}"#).await;
    let (ec2, group) = web_admin_group(&em).await;
    let sg_arn = format!("arn:aws:ec2:us-east-1:{PROD_A}:security-group/{group}");
    let hub = aws_sdk_securityhub::Client::new(&support::config(&em, ADMIN));
    assert_eq!(
        ec2_13_findings(&hub, &sg_arn).await[0].compliance().and_then(|c| c.status()),
        Some(&ComplianceStatus::Failed)
    );

    revoke_ssh(&ec2, &group).send().await.expect("revoke");
    // Not yet evaluated.
    assert_eq!(
        ec2_13_findings(&hub, &sg_arn).await[0].compliance().and_then(|c| c.status()),
        Some(&ComplianceStatus::Failed)
    );
    // After the delay, by itself.
    let (status, _) = support::raw(&em.url(), "POST", "/_emulator/clock", &[], br#"{"advance_ms": 600001}"#).await;
    assert_eq!(status, 200);
    let after = ec2_13_findings(&hub, &sg_arn).await;
    assert_eq!(after[0].compliance().and_then(|c| c.status()), Some(&ComplianceStatus::Passed));
    assert_eq!(after[0].workflow().and_then(|w| w.status()), Some(&WorkflowStatus::Resolved));
}

#[tokio::test]
async fn reopening_the_port_makes_the_resolved_finding_new_again() {
    let em = support::demo().await;
    enable_cis_1_2(&em).await;
    let (ec2, group) = web_admin_group(&em).await;
    let sg_arn = format!("arn:aws:ec2:us-east-1:{PROD_A}:security-group/{group}");
    revoke_ssh(&ec2, &group).send().await.unwrap();
    // The remediation role cannot open ports; the account's own admin can.
    let admin_ec2 = aws_sdk_ec2::Client::new(&support::config(&em, PROD_A));
    admin_ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .expect("authorize");
    let hub = aws_sdk_securityhub::Client::new(&support::config(&em, ADMIN));
    let f = &ec2_13_findings(&hub, &sg_arn).await[0];
    assert_eq!(f.compliance().and_then(|c| c.status()), Some(&ComplianceStatus::Failed));
    assert_eq!(f.workflow().and_then(|w| w.status()), Some(&WorkflowStatus::New));
}
