//! AWS Config through aws-sdk-config: recorders, delivery channels, managed rules evaluated from
//! the same world the other services change, and the delegated admin's organization aggregator.

use aws_sdk_config::Client;
use aws_sdk_config::types::{
    AccountAggregationSource, ComplianceType, ConfigRule, ConfigRuleComplianceFilters,
    ConfigSnapshotDeliveryProperties, ConfigurationRecorder, DeliveryChannel, MaximumExecutionFrequency,
    OrganizationAggregationSource, Owner, RecordingGroup, Source,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, EXTERNAL_ID, PROD_A, PROD_B, SANDBOX};

fn client(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

fn managed_rule(name: &str, identifier: &str) -> ConfigRule {
    ConfigRule::builder()
        .config_rule_name(name)
        .source(Source::builder().owner(Owner::Aws).source_identifier(identifier).build().expect("source"))
        .build()
}

async fn put_rule(cfg: &Client, name: &str, identifier: &str) {
    cfg.put_config_rule().config_rule(managed_rule(name, identifier)).send().await.expect("PutConfigRule");
}

async fn rule_compliance(cfg: &Client, name: &str) -> ComplianceType {
    let out = cfg
        .describe_compliance_by_config_rule()
        .config_rule_names(name)
        .send()
        .await
        .expect("DescribeComplianceByConfigRule");
    let rules = out.compliance_by_config_rules();
    assert_eq!(rules.len(), 1, "one entry for {name}: {rules:?}");
    assert_eq!(rules[0].config_rule_name(), Some(name));
    rules[0].compliance().and_then(|c| c.compliance_type()).cloned().expect("compliance type")
}

/// (resource type, resource id, compliance) of every evaluation of a rule.
async fn details(cfg: &Client, name: &str) -> Vec<(String, String, ComplianceType)> {
    let out = cfg
        .get_compliance_details_by_config_rule()
        .config_rule_name(name)
        .send()
        .await
        .expect("GetComplianceDetailsByConfigRule");
    out.evaluation_results()
        .iter()
        .map(|r| {
            let q = r.evaluation_result_identifier().and_then(|i| i.evaluation_result_qualifier()).expect("qualifier");
            assert_eq!(q.config_rule_name(), Some(name));
            assert!(r.result_recorded_time().is_some() && r.config_rule_invoked_time().is_some());
            (
                q.resource_type().unwrap_or_default().to_string(),
                q.resource_id().unwrap_or_default().to_string(),
                r.compliance_type().cloned().expect("compliance type"),
            )
        })
        .collect()
}

async fn web_admin_id(em: &Emulator) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&support::config(em, PROD_A));
    let groups = ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("web-admin").build())
        .send()
        .await
        .expect("DescribeSecurityGroups");
    groups.security_groups()[0].group_id().expect("group id").to_string()
}

async fn raw_config(em: &Emulator, op: &str, body: &str) -> (u16, String) {
    let auth = support::auth(PROD_A, "config");
    let target = format!("StarlingDoveService.{op}");
    support::raw(
        &em.url(),
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
            ("authorization", auth.as_str()),
        ],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn demo_recorder_and_channel_are_described() {
    let em = support::demo().await;
    let cfg = client(&em, PROD_A);

    let recorders = cfg.describe_configuration_recorders().send().await.expect("DescribeConfigurationRecorders");
    let rec = &recorders.configuration_recorders()[0];
    assert_eq!(rec.name(), Some("default"));
    assert!(rec.role_arn().is_some_and(|r| r.starts_with("arn:aws:iam::333333333333:role/")));
    assert_eq!(rec.recording_group().map(|g| g.all_supported()), Some(true));

    let status = cfg
        .describe_configuration_recorder_status()
        .configuration_recorder_names("default")
        .send()
        .await
        .expect("DescribeConfigurationRecorderStatus");
    let st = &status.configuration_recorders_status()[0];
    assert!(st.recording());
    assert!(st.last_start_time().is_some());

    let channels = cfg.describe_delivery_channels().send().await.expect("DescribeDeliveryChannels");
    assert_eq!(channels.delivery_channels()[0].name(), Some("default"));
    assert_eq!(channels.delivery_channels()[0].s3_bucket_name(), Some("config-bucket-333333333333"));

    let e = cfg.describe_configuration_recorders().configuration_recorder_names("nope").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationRecorderException");
    let e = cfg.describe_delivery_channels().delivery_channel_names("nope").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchDeliveryChannelException");

    // The sandbox account has no recorder at all.
    let sandbox = client(&em, SANDBOX);
    let out = sandbox.describe_configuration_recorders().send().await.expect("DescribeConfigurationRecorders");
    assert!(out.configuration_recorders().is_empty());
    let out = sandbox.describe_configuration_recorder_status().send().await.expect("status");
    assert!(out.configuration_recorders_status().is_empty());
}

#[tokio::test]
async fn recorder_and_channel_lifecycle_in_a_bare_account() {
    let em = support::demo().await;
    let cfg = client(&em, SANDBOX);
    let s3 = support::s3(&support::config(&em, SANDBOX));
    s3.create_bucket().bucket("sandbox-config-logs").send().await.expect("CreateBucket");

    let channel = |bucket: &str| {
        DeliveryChannel::builder()
            .name("default")
            .s3_bucket_name(bucket)
            .config_snapshot_delivery_properties(
                ConfigSnapshotDeliveryProperties::builder()
                    .delivery_frequency(MaximumExecutionFrequency::TwentyFourHours)
                    .build(),
            )
            .build()
    };

    // No recorder yet: no delivery channel either.
    let e = cfg.put_delivery_channel().delivery_channel(channel("sandbox-config-logs")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoAvailableConfigurationRecorderException");

    let recorder = |name: &str| {
        ConfigurationRecorder::builder()
            .name(name)
            .role_arn("arn:aws:iam::666666666666:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig")
            .recording_group(RecordingGroup::builder().all_supported(true).include_global_resource_types(true).build())
            .build()
    };
    cfg.put_configuration_recorder()
        .configuration_recorder(recorder("default"))
        .send()
        .await
        .expect("PutConfigurationRecorder");
    let e = cfg.put_configuration_recorder().configuration_recorder(recorder("second")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "MaxNumberOfConfigurationRecordersExceededException");

    // Starting needs a delivery channel.
    let e = cfg.start_configuration_recorder().configuration_recorder_name("default").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoAvailableDeliveryChannelException");
    let e = cfg.start_configuration_recorder().configuration_recorder_name("other").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationRecorderException");

    // The channel's bucket must exist, and a foreign bucket must let Config write.
    let e = cfg.put_delivery_channel().delivery_channel(channel("no-such-bucket-anywhere")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucketException");
    let e = cfg
        .put_delivery_channel()
        .delivery_channel(channel("orgsec-demo-public-555555555555"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "InsufficientDeliveryPolicyException");
    cfg.put_delivery_channel()
        .delivery_channel(channel("sandbox-config-logs"))
        .send()
        .await
        .expect("PutDeliveryChannel");
    let channels = cfg.describe_delivery_channels().delivery_channel_names("default").send().await.expect("describe");
    let ch = &channels.delivery_channels()[0];
    assert_eq!(ch.s3_bucket_name(), Some("sandbox-config-logs"));
    assert_eq!(
        ch.config_snapshot_delivery_properties().and_then(|p| p.delivery_frequency()),
        Some(&MaximumExecutionFrequency::TwentyFourHours)
    );

    cfg.start_configuration_recorder().configuration_recorder_name("default").send().await.expect("Start");
    let status = cfg.describe_configuration_recorder_status().send().await.expect("status");
    assert!(status.configuration_recorders_status()[0].recording());
    let recorders = cfg.describe_configuration_recorders().send().await.expect("describe");
    assert_eq!(
        recorders.configuration_recorders()[0].recording_group().map(|g| g.include_global_resource_types()),
        Some(true)
    );

    // A running recorder keeps its channel.
    let e = cfg.delete_delivery_channel().delivery_channel_name("default").send().await.unwrap_err();
    assert_eq!(support::code(&e), "LastDeliveryChannelDeleteFailedException");

    cfg.stop_configuration_recorder().configuration_recorder_name("default").send().await.expect("Stop");
    let status = cfg.describe_configuration_recorder_status().send().await.expect("status");
    assert!(!status.configuration_recorders_status()[0].recording());
    assert!(status.configuration_recorders_status()[0].last_stop_time().is_some());

    cfg.delete_delivery_channel().delivery_channel_name("default").send().await.expect("DeleteDeliveryChannel");
    let e = cfg.delete_delivery_channel().delivery_channel_name("default").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchDeliveryChannelException");
    cfg.delete_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .expect("DeleteConfigurationRecorder");
    let e = cfg.delete_configuration_recorder().configuration_recorder_name("default").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationRecorderException");
    assert!(
        cfg.describe_configuration_recorders().send().await.expect("describe").configuration_recorders().is_empty()
    );
}

#[tokio::test]
async fn managed_rules_evaluate_the_world_and_flip_after_fixes() {
    let em = support::demo().await;
    let cfg = client(&em, PROD_A);
    put_rule(&cfg, "restricted-ssh", "INCOMING_SSH_DISABLED").await;
    cfg.put_config_rule()
        .config_rule(
            ConfigRule::builder()
                .config_rule_name("restricted-rdp")
                .description("No RDP from anywhere")
                .input_parameters(r#"{"blockedPort1":"3389"}"#)
                .source(
                    Source::builder()
                        .owner(Owner::Aws)
                        .source_identifier("RESTRICTED_INCOMING_TRAFFIC")
                        .build()
                        .expect("source"),
                )
                .scope(
                    aws_sdk_config::types::Scope::builder()
                        .compliance_resource_types("AWS::EC2::SecurityGroup")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutConfigRule");
    put_rule(&cfg, "ebs-encryption-by-default", "EC2_EBS_ENCRYPTION_BY_DEFAULT").await;
    put_rule(&cfg, "password-policy", "IAM_PASSWORD_POLICY").await;

    let rules = cfg.describe_config_rules().send().await.expect("DescribeConfigRules");
    let names: Vec<&str> = rules.config_rules().iter().filter_map(|r| r.config_rule_name()).collect();
    assert_eq!(names, ["ebs-encryption-by-default", "password-policy", "restricted-rdp", "restricted-ssh"]);
    let rdp = cfg.describe_config_rules().config_rule_names("restricted-rdp").send().await.expect("describe");
    let rdp = &rdp.config_rules()[0];
    assert!(
        rdp.config_rule_arn()
            .is_some_and(|a| a.starts_with("arn:aws:config:us-east-1:333333333333:config-rule/config-rule-"))
    );
    assert_eq!(rdp.source().and_then(|s| s.source_identifier()), Some("RESTRICTED_INCOMING_TRAFFIC"));
    assert_eq!(rdp.input_parameters(), Some(r#"{"blockedPort1":"3389"}"#));
    assert_eq!(rdp.config_rule_state(), Some(&aws_sdk_config::types::ConfigRuleState::Active));

    let sg = web_admin_id(&em).await;
    assert_eq!(rule_compliance(&cfg, "restricted-ssh").await, ComplianceType::NonCompliant);
    assert_eq!(rule_compliance(&cfg, "restricted-rdp").await, ComplianceType::NonCompliant);
    assert_eq!(rule_compliance(&cfg, "ebs-encryption-by-default").await, ComplianceType::NonCompliant);
    assert_eq!(rule_compliance(&cfg, "password-policy").await, ComplianceType::Compliant);

    // Only compliant / non-compliant rules, by filter.
    let out = cfg
        .describe_compliance_by_config_rule()
        .compliance_types(ComplianceType::NonCompliant)
        .send()
        .await
        .expect("DescribeComplianceByConfigRule");
    let failing: Vec<&str> = out.compliance_by_config_rules().iter().filter_map(|c| c.config_rule_name()).collect();
    assert_eq!(failing, ["ebs-encryption-by-default", "restricted-rdp", "restricted-ssh"]);
    let count = out.compliance_by_config_rules()[2].compliance().and_then(|c| c.compliance_contributor_count());
    assert_eq!(count.map(|c| c.capped_count()), Some(1));

    // The evaluations name the resources Config knows them by.
    let ssh = details(&cfg, "restricted-ssh").await;
    assert_eq!(ssh.len(), 2, "the default group and web-admin: {ssh:?}");
    assert!(ssh.contains(&("AWS::EC2::SecurityGroup".into(), sg.clone(), ComplianceType::NonCompliant)));
    assert_eq!(ssh.iter().filter(|e| e.2 == ComplianceType::Compliant).count(), 1);
    let ebs = details(&cfg, "ebs-encryption-by-default").await;
    assert_eq!(ebs, [("AWS::::Account".to_string(), PROD_A.to_string(), ComplianceType::NonCompliant)]);

    // ComplianceTypes filter and pagination.
    let only_failing = cfg
        .get_compliance_details_by_config_rule()
        .config_rule_name("restricted-ssh")
        .compliance_types(ComplianceType::NonCompliant)
        .send()
        .await
        .expect("filtered");
    assert_eq!(only_failing.evaluation_results().len(), 1);
    let first = cfg
        .get_compliance_details_by_config_rule()
        .config_rule_name("restricted-ssh")
        .limit(1)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first.evaluation_results().len(), 1);
    let token = first.next_token().expect("a second page").to_string();
    let second = cfg
        .get_compliance_details_by_config_rule()
        .config_rule_name("restricted-ssh")
        .limit(1)
        .next_token(token)
        .send()
        .await
        .expect("page 2");
    assert_eq!(second.evaluation_results().len(), 1);
    assert!(second.next_token().is_none());
    assert_ne!(first.evaluation_results()[0], second.evaluation_results()[0]);

    // Per resource: web-admin fails two rules.
    let by_resource = cfg
        .describe_compliance_by_resource()
        .resource_type("AWS::EC2::SecurityGroup")
        .resource_id(&sg)
        .send()
        .await
        .expect("DescribeComplianceByResource");
    let c = by_resource.compliance_by_resources()[0].compliance().expect("compliance");
    assert_eq!(c.compliance_type(), Some(&ComplianceType::NonCompliant));
    assert_eq!(c.compliance_contributor_count().map(|n| n.capped_count()), Some(2));
    let all = cfg.describe_compliance_by_resource().send().await.expect("all resources");
    assert!(all.compliance_by_resources().iter().any(|r| r.resource_type() == Some("AWS::::Account")));

    // Fix through EC2 (as the remediation role) and the rules turn compliant.
    let ec2 = aws_sdk_ec2::Client::new(
        &support::assume(&em, ADMIN, PROD_A, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await,
    );
    for port in [22, 3389] {
        ec2.revoke_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .build(),
            )
            .send()
            .await
            .expect("RevokeSecurityGroupIngress");
    }
    ec2.enable_ebs_encryption_by_default().send().await.expect("EnableEbsEncryptionByDefault");
    assert_eq!(rule_compliance(&cfg, "restricted-ssh").await, ComplianceType::Compliant);
    assert_eq!(rule_compliance(&cfg, "restricted-rdp").await, ComplianceType::Compliant);
    assert_eq!(rule_compliance(&cfg, "ebs-encryption-by-default").await, ComplianceType::Compliant);
    let by_resource = cfg
        .describe_compliance_by_resource()
        .resource_type("AWS::EC2::SecurityGroup")
        .resource_id(&sg)
        .send()
        .await
        .expect("DescribeComplianceByResource");
    assert_eq!(
        by_resource.compliance_by_resources()[0].compliance().and_then(|c| c.compliance_type()),
        Some(&ComplianceType::Compliant)
    );

    // Deleting a rule removes it.
    cfg.delete_config_rule().config_rule_name("password-policy").send().await.expect("DeleteConfigRule");
    let e = cfg.describe_config_rules().config_rule_names("password-policy").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");
}

#[tokio::test]
async fn password_policy_and_s3_rules_follow_iam_and_s3_control() {
    let em = support::demo().await;
    // 444444444444 has no password policy.
    let cfg = client(&em, PROD_B);
    put_rule(&cfg, "password-policy", "IAM_PASSWORD_POLICY").await;
    put_rule(&cfg, "access-keys-rotated", "ACCESS_KEYS_ROTATED").await;
    assert_eq!(rule_compliance(&cfg, "password-policy").await, ComplianceType::NonCompliant);
    let keys = details(&cfg, "access-keys-rotated").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].0, "AWS::IAM::User");
    let iam = aws_sdk_iam::Client::new(&support::config(&em, PROD_B));
    iam.update_account_password_policy()
        .minimum_password_length(14)
        .require_symbols(true)
        .require_numbers(true)
        .require_uppercase_characters(true)
        .require_lowercase_characters(true)
        .send()
        .await
        .expect("UpdateAccountPasswordPolicy");
    assert_eq!(rule_compliance(&cfg, "password-policy").await, ComplianceType::Compliant);

    // 555555555555: account Block Public Access off, one public bucket.
    let cfg = client(&em, DEV);
    put_rule(&cfg, "s3-account-bpa", "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC").await;
    put_rule(&cfg, "s3-bucket-bpa", "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED").await;
    assert_eq!(rule_compliance(&cfg, "s3-account-bpa").await, ComplianceType::NonCompliant);
    assert_eq!(
        details(&cfg, "s3-bucket-bpa").await,
        [("AWS::S3::Bucket".to_string(), "orgsec-demo-public-555555555555".to_string(), ComplianceType::NonCompliant)]
    );

    let remediation = support::assume(&em, ADMIN, DEV, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await;
    let all_on = aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    support::s3control(&remediation, &em.url())
        .put_public_access_block()
        .account_id(DEV)
        .public_access_block_configuration(all_on)
        .send()
        .await
        .expect("s3control PutPublicAccessBlock");
    assert_eq!(rule_compliance(&cfg, "s3-account-bpa").await, ComplianceType::Compliant);

    let bucket_bpa = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    support::s3(&remediation)
        .put_public_access_block()
        .bucket("orgsec-demo-public-555555555555")
        .public_access_block_configuration(bucket_bpa)
        .send()
        .await
        .expect("s3 PutPublicAccessBlock");
    assert_eq!(rule_compliance(&cfg, "s3-bucket-bpa").await, ComplianceType::Compliant);
}

#[tokio::test]
async fn evaluations_need_a_recording_recorder() {
    let em = support::demo().await;
    let cfg = client(&em, PROD_A);
    put_rule(&cfg, "restricted-ssh", "INCOMING_SSH_DISABLED").await;
    put_rule(&cfg, "custom", "SOME_RULE_THE_EMULATOR_DOES_NOT_EVALUATE").await;
    assert_eq!(rule_compliance(&cfg, "restricted-ssh").await, ComplianceType::NonCompliant);
    assert_eq!(rule_compliance(&cfg, "custom").await, ComplianceType::InsufficientData);

    cfg.stop_configuration_recorder().configuration_recorder_name("default").send().await.expect("Stop");
    assert_eq!(rule_compliance(&cfg, "restricted-ssh").await, ComplianceType::InsufficientData);
    assert!(details(&cfg, "restricted-ssh").await.is_empty());

    cfg.start_configuration_recorder().configuration_recorder_name("default").send().await.expect("Start");
    assert_eq!(rule_compliance(&cfg, "restricted-ssh").await, ComplianceType::NonCompliant);
}

#[tokio::test]
async fn rule_errors_and_rate_limits() {
    let em = support::demo().await;
    let cfg = client(&em, PROD_A);

    // Source is required.
    let e = cfg
        .put_config_rule()
        .config_rule(ConfigRule::builder().config_rule_name("no-source").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "ValidationException");
    let e = cfg.put_config_rule().config_rule(managed_rule("bad", "not a rule")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "InvalidParameterValueException");
    let e = cfg
        .put_config_rule()
        .config_rule(
            ConfigRule::builder()
                .config_rule_name("bad-params")
                .input_parameters("not json")
                .source(
                    Source::builder().owner(Owner::Aws).source_identifier("INCOMING_SSH_DISABLED").build().expect("s"),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "InvalidParameterValueException");

    // Unknown rules.
    let e = cfg.describe_config_rules().config_rule_names("missing").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");
    let e = cfg.delete_config_rule().config_rule_name("missing").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");
    let e = cfg.get_compliance_details_by_config_rule().config_rule_name("missing").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");
    let e = cfg.describe_compliance_by_config_rule().config_rule_names("missing").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");
    let e = cfg.start_config_rules_evaluation().config_rule_names("missing").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigRuleException");

    // INSUFFICIENT_DATA cannot be a filter for details.
    put_rule(&cfg, "restricted-ssh", "INCOMING_SSH_DISABLED").await;
    let e = cfg
        .get_compliance_details_by_config_rule()
        .config_rule_name("restricted-ssh")
        .compliance_types(ComplianceType::InsufficientData)
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "InvalidParameterValueException");

    // Updating keeps the rule's identity.
    let before = cfg.describe_config_rules().send().await.expect("describe").config_rules()[0].clone();
    cfg.put_config_rule()
        .config_rule(
            ConfigRule::builder()
                .config_rule_name("restricted-ssh")
                .description("updated")
                .source(
                    Source::builder().owner(Owner::Aws).source_identifier("INCOMING_SSH_DISABLED").build().expect("s"),
                )
                .build(),
        )
        .send()
        .await
        .expect("update");
    let after = cfg.describe_config_rules().send().await.expect("describe").config_rules()[0].clone();
    assert_eq!(after.config_rule_arn(), before.config_rule_arn());
    assert_eq!(after.config_rule_id(), before.config_rule_id());
    assert_eq!(after.description(), Some("updated"));

    // One evaluation per rule per minute.
    cfg.start_config_rules_evaluation().config_rule_names("restricted-ssh").send().await.expect("first evaluation");
    let e = cfg.start_config_rules_evaluation().config_rule_names("restricted-ssh").send().await.unwrap_err();
    assert_eq!(support::code(&e), "LimitExceededException");
    let out =
        cfg.get_compliance_details_by_config_rule().config_rule_name("restricted-ssh").send().await.expect("details");
    assert!(!out.evaluation_results().is_empty());

    // An account without a recorder cannot have rules.
    let e = client(&em, SANDBOX)
        .put_config_rule()
        .config_rule(managed_rule("restricted-ssh", "INCOMING_SSH_DISABLED"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "NoAvailableConfigurationRecorderException");

    // The remediation role may read Config but not write it.
    let role = Client::new(&support::assume(&em, ADMIN, PROD_A, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await);
    role.describe_config_rules().send().await.expect("read as the remediation role");
    let e = role.put_config_rule().config_rule(managed_rule("x", "INCOMING_SSH_DISABLED")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDeniedException");
}

#[tokio::test]
async fn malformed_and_mistyped_json() {
    let em = support::demo().await;
    let (status, body) = raw_config(&em, "DescribeConfigRules", "{not json").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("SerializationException"), "{body}");
    let (status, body) = raw_config(&em, "DescribeConfigRules", r#"{"ConfigRuleNames": "not-a-list"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ValidationException"), "{body}");
    let (status, body) = raw_config(&em, "PutConfigRule", r#"{"ConfigRule": {"ConfigRuleName": "x"}}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ValidationException"), "{body}");
    let (status, body) = raw_config(&em, "NoSuchOperation", "{}").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UnknownOperationException"), "{body}");
}

#[tokio::test]
async fn the_delegated_admin_aggregator_sees_every_member() {
    let em = support::demo().await;
    for account in [ADMIN, PROD_A, PROD_B, DEV] {
        put_rule(&client(&em, account), "s3-account-bpa", "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS_PERIODIC").await;
    }
    let admin = client(&em, ADMIN);
    let aggs = admin.describe_configuration_aggregators().send().await.expect("DescribeConfigurationAggregators");
    let agg = &aggs.configuration_aggregators()[0];
    let name = agg.configuration_aggregator_name().expect("name").to_string();
    assert!(agg.organization_aggregation_source().is_some_and(|s| s.all_aws_regions()));
    assert!(agg.creation_time().is_some_and(|t| t.secs() > 1_600_000_000 && t.secs() < 5_000_000_000));

    let out = admin
        .describe_aggregate_compliance_by_config_rules()
        .configuration_aggregator_name(&name)
        .filters(ConfigRuleComplianceFilters::builder().config_rule_name("s3-account-bpa").build())
        .send()
        .await
        .expect("DescribeAggregateComplianceByConfigRules");
    let mut seen: Vec<(String, ComplianceType)> = out
        .aggregate_compliance_by_config_rules()
        .iter()
        .map(|c| {
            assert_eq!(c.aws_region(), Some("us-east-1"));
            (
                c.account_id().unwrap_or_default().to_string(),
                c.compliance().and_then(|c| c.compliance_type()).cloned().expect("type"),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (ADMIN.to_string(), ComplianceType::Compliant),
            (PROD_A.to_string(), ComplianceType::Compliant),
            (PROD_B.to_string(), ComplianceType::Compliant),
            (DEV.to_string(), ComplianceType::NonCompliant),
        ]
    );

    let failing = admin
        .get_aggregate_compliance_details_by_config_rule()
        .configuration_aggregator_name(&name)
        .config_rule_name("s3-account-bpa")
        .account_id(DEV)
        .aws_region("us-east-1")
        .compliance_type(ComplianceType::NonCompliant)
        .send()
        .await
        .expect("GetAggregateComplianceDetailsByConfigRule");
    let results = failing.aggregate_evaluation_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].account_id(), Some(DEV));
    let q = results[0].evaluation_result_identifier().and_then(|i| i.evaluation_result_qualifier()).expect("qualifier");
    assert_eq!((q.resource_type(), q.resource_id()), (Some("AWS::::Account"), Some(DEV)));

    // Remediate the member from the admin account; the aggregate view follows.
    let remediation = support::assume(&em, ADMIN, DEV, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await;
    support::s3control(&remediation, &em.url())
        .put_public_access_block()
        .account_id(DEV)
        .public_access_block_configuration(
            aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("PutPublicAccessBlock");
    let out = admin
        .describe_aggregate_compliance_by_config_rules()
        .configuration_aggregator_name(&name)
        .filters(ConfigRuleComplianceFilters::builder().compliance_type(ComplianceType::NonCompliant).build())
        .send()
        .await
        .expect("DescribeAggregateComplianceByConfigRules");
    assert!(out.aggregate_compliance_by_config_rules().is_empty(), "{out:?}");
    let all = admin
        .get_aggregate_compliance_details_by_config_rule()
        .configuration_aggregator_name(&name)
        .config_rule_name("s3-account-bpa")
        .account_id(DEV)
        .aws_region("us-east-1")
        .send()
        .await
        .expect("details");
    assert_eq!(all.aggregate_evaluation_results()[0].compliance_type(), Some(&ComplianceType::Compliant));

    let e = admin
        .describe_aggregate_compliance_by_config_rules()
        .configuration_aggregator_name("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationAggregatorException");
}

#[tokio::test]
async fn aggregator_lifecycle() {
    let em = support::demo().await;
    let admin = client(&em, ADMIN);
    let org_source = OrganizationAggregationSource::builder()
        .role_arn("arn:aws:iam::222222222222:role/service-role/ConfigAggregatorRole")
        .all_aws_regions(true)
        .build()
        .expect("source");
    let out = admin
        .put_configuration_aggregator()
        .configuration_aggregator_name("second")
        .organization_aggregation_source(org_source.clone())
        .send()
        .await
        .expect("PutConfigurationAggregator");
    let created = out.configuration_aggregator().expect("aggregator");
    let arn = created.configuration_aggregator_arn().expect("arn").to_string();
    assert!(arn.starts_with("arn:aws:config:us-east-1:222222222222:config-aggregator/"));

    // A member is not allowed an organization aggregator...
    let e = client(&em, PROD_A)
        .put_configuration_aggregator()
        .configuration_aggregator_name("mine")
        .organization_aggregation_source(org_source.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&e), "OrganizationAccessDeniedException");
    // ...but may aggregate accounts it names.
    client(&em, PROD_A)
        .put_configuration_aggregator()
        .configuration_aggregator_name("mine")
        .account_aggregation_sources(
            AccountAggregationSource::builder().account_ids(PROD_A).aws_regions("us-east-1").build().expect("source"),
        )
        .send()
        .await
        .expect("account aggregator");
    put_rule(&client(&em, PROD_A), "restricted-ssh", "INCOMING_SSH_DISABLED").await;
    let out = client(&em, PROD_A)
        .describe_aggregate_compliance_by_config_rules()
        .configuration_aggregator_name("mine")
        .send()
        .await
        .expect("aggregate");
    assert_eq!(out.aggregate_compliance_by_config_rules().len(), 1);
    assert_eq!(
        out.aggregate_compliance_by_config_rules()[0].compliance().and_then(|c| c.compliance_type()),
        Some(&ComplianceType::NonCompliant)
    );

    // Neither or both sources is invalid.
    let e = admin.put_configuration_aggregator().configuration_aggregator_name("none").send().await.unwrap_err();
    assert_eq!(support::code(&e), "InvalidParameterValueException");

    // Updating keeps the ARN; describe, page and delete.
    admin
        .put_configuration_aggregator()
        .configuration_aggregator_name("second")
        .organization_aggregation_source(org_source)
        .send()
        .await
        .expect("update");
    let aggs = admin
        .describe_configuration_aggregators()
        .configuration_aggregator_names("second")
        .send()
        .await
        .expect("describe");
    assert_eq!(aggs.configuration_aggregators()[0].configuration_aggregator_arn(), Some(arn.as_str()));
    let page = admin.describe_configuration_aggregators().limit(1).send().await.expect("page");
    assert_eq!(page.configuration_aggregators().len(), 1);
    assert!(page.next_token().is_some());
    admin.delete_configuration_aggregator().configuration_aggregator_name("second").send().await.expect("delete");
    let e =
        admin.describe_configuration_aggregators().configuration_aggregator_names("second").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationAggregatorException");
    let e = admin.delete_configuration_aggregator().configuration_aggregator_name("second").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchConfigurationAggregatorException");
}
