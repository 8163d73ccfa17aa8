//! EC2 through aws-sdk-ec2: security groups and rules (authorize, describe, revoke by
//! permission and by rule id, AWS's default-VPC and non-default-VPC revoke semantics),
//! instances, volumes, snapshots, default EBS encryption, instance profile associations, tags,
//! VPCs and regions, with not-found, invalid-input and least-privilege denials.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IamInstanceProfileSpecification, InstanceAttributeName, InstanceStateName,
    IpPermission, IpRange, ResourceType, Tag, TagSpecification,
};
use orgsec_emulator::Emulator;

use crate::support::{self, DEV, EXTERNAL_ID, PROD_A, PROD_B};

const REMEDIATION: &str = "OrgSecRemediationRole";

fn ec2(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

async fn ec2_remediation(em: &Emulator, account: &str) -> Client {
    Client::new(&support::assume(em, support::ADMIN, account, REMEDIATION, Some(EXTERNAL_ID)).await)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tcp(port: i32, cidr: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}

/// The security group named `name` in the account's default VPC.
async fn group_id(c: &Client, name: &str) -> String {
    let out = c.describe_security_groups().filters(filter("group-name", name)).send().await.expect("describe groups");
    assert_eq!(out.security_groups().len(), 1, "one group named {name}");
    out.security_groups()[0].group_id().expect("group id").to_string()
}

/// (port, cidr) of each ingress IP range of a group, sorted.
async fn ingress(c: &Client, gid: &str) -> Vec<(i32, String)> {
    let out = c.describe_security_groups().group_ids(gid).send().await.expect("describe group");
    let mut v: Vec<(i32, String)> = out.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges().iter().map(|r| (p.from_port().unwrap_or(-1), r.cidr_ip().unwrap_or_default().to_string()))
        })
        .collect();
    v.sort();
    v
}

async fn miner(c: &Client) -> aws_sdk_ec2::types::Instance {
    let out = c.describe_instances().filters(filter("tag:Name", "miner-1")).send().await.expect("describe instances");
    let all: Vec<_> = out.reservations().iter().flat_map(|r| r.instances().iter().cloned()).collect();
    assert_eq!(all.len(), 1, "one instance named miner-1");
    all.into_iter().next().expect("miner-1")
}

fn mutations(em: &Emulator, op: &str) -> u64 {
    em.shared().world.read().counters.by_operation.get(op).copied().unwrap_or(0)
}

#[tokio::test]
async fn describe_security_groups_by_name_id_filters_and_pages() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);

    let out = c.describe_security_groups().filters(filter("group-name", "web-admin")).send().await.unwrap();
    let sg = &out.security_groups()[0];
    assert_eq!(sg.group_name(), Some("web-admin"));
    assert_eq!(sg.owner_id(), Some(PROD_A));
    assert!(sg.vpc_id().is_some_and(|v| v.starts_with("vpc-")));
    let gid = sg.group_id().unwrap().to_string();
    assert!(sg.security_group_arn().unwrap().ends_with(&format!(":{PROD_A}:security-group/{gid}")));
    let ports: Vec<(String, i32, i32, String)> = sg
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges().iter().map(|r| {
                (
                    p.ip_protocol().unwrap().to_string(),
                    p.from_port().unwrap(),
                    p.to_port().unwrap(),
                    r.cidr_ip().unwrap().to_string(),
                )
            })
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("tcp".into(), 22, 22, "0.0.0.0/0".into()),
            ("tcp".into(), 3389, 3389, "0.0.0.0/0".into()),
            ("tcp".into(), 443, 443, "10.0.0.0/8".into())
        ]
    );
    let ssh = sg.ip_permissions().iter().find(|p| p.from_port() == Some(22)).unwrap();
    assert_eq!(ssh.ip_ranges()[0].description(), Some("ssh from anywhere"));
    let egress = sg.ip_permissions_egress();
    assert_eq!(egress.len(), 1);
    assert_eq!(egress[0].ip_protocol(), Some("-1"));
    assert_eq!(egress[0].from_port(), None);
    assert_eq!(egress[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));

    // By id, and the default group by name with AWS's default rules (self-referencing ingress).
    let by_id = c.describe_security_groups().group_ids(&gid).send().await.unwrap();
    assert_eq!(by_id.security_groups()[0].group_name(), Some("web-admin"));
    let default = c.describe_security_groups().group_names("default").send().await.unwrap();
    let d = &default.security_groups()[0];
    assert_eq!(d.ip_permissions()[0].ip_protocol(), Some("-1"));
    assert_eq!(d.ip_permissions()[0].user_id_group_pairs()[0].group_id(), d.group_id());
    assert_eq!(d.ip_permissions()[0].user_id_group_pairs()[0].user_id(), Some(PROD_A));

    // Filters: vpc-id, a rule's CIDR, and wildcards.
    let vpc = sg.vpc_id().unwrap();
    let in_vpc = c.describe_security_groups().filters(filter("vpc-id", vpc)).send().await.unwrap();
    assert_eq!(in_vpc.security_groups().len(), 2);
    let open = c.describe_security_groups().filters(filter("ip-permission.cidr", "0.0.0.0/0")).send().await.unwrap();
    assert_eq!(open.security_groups().len(), 1);
    let wild = c.describe_security_groups().filters(filter("group-name", "web-*")).send().await.unwrap();
    assert_eq!(wild.security_groups().len(), 1);

    // Not found, malformed, unknown filter.
    let err = c.describe_security_groups().group_ids("sg-doesnotexist").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    let err = c.describe_security_groups().group_ids("nope").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroupId.Malformed");
    let err = c.describe_security_groups().group_names("no-such-group").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    let err = c.describe_security_groups().filters(filter("colour", "blue")).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");

    // Pagination across more groups than one page holds.
    for i in 0..6 {
        c.create_security_group().group_name(format!("page-{i}")).description("paging").send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = c.describe_security_groups().max_results(5).set_next_token(token).send().await.unwrap();
        pages += 1;
        seen.extend(out.security_groups().iter().map(|g| g.group_id().unwrap().to_string()));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 8);
    seen.dedup();
    assert_eq!(seen.len(), 8);
    let err = c.describe_security_groups().max_results(2).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");

    // Another account sees only its own groups.
    let other = ec2(&em, PROD_B).describe_security_groups().send().await.unwrap();
    assert_eq!(other.security_groups().len(), 1);
    assert_eq!(other.security_groups()[0].group_name(), Some("default"));
}

#[tokio::test]
async fn authorize_then_describe_shows_the_rule_and_rejects_bad_input() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let gid = group_id(&c, "web-admin").await;

    let out = c
        .authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(tcp(8080, "203.0.113.0/24"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.r#return(), Some(true));
    let rule = &out.security_group_rules()[0];
    assert!(rule.security_group_rule_id().unwrap().starts_with("sgr-"));
    assert_eq!(rule.cidr_ipv4(), Some("203.0.113.0/24"));
    assert_eq!(rule.is_egress(), Some(false));
    assert_eq!(rule.from_port(), Some(8080));
    assert_eq!(
        ingress(&c, &gid).await,
        vec![
            (22, "0.0.0.0/0".to_string()),
            (443, "10.0.0.0/8".to_string()),
            (3389, "0.0.0.0/0".to_string()),
            (8080, "203.0.113.0/24".to_string())
        ]
    );
    assert_eq!(mutations(&em, "ec2:AuthorizeSecurityGroupIngress"), 1);

    // DescribeSecurityGroupRules: by group and by id.
    let rules = c.describe_security_group_rules().filters(filter("group-id", &gid)).send().await.unwrap();
    assert_eq!(rules.security_group_rules().len(), 5, "four ingress and one egress");
    let new_id = rule.security_group_rule_id().unwrap();
    let one = c.describe_security_group_rules().security_group_rule_ids(new_id).send().await.unwrap();
    assert_eq!(one.security_group_rules().len(), 1);
    assert_eq!(one.security_group_rules()[0].group_owner_id(), Some(PROD_A));
    let err = c.describe_security_group_rules().security_group_rule_ids("sgr-doesnotexist").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidSecurityGroupRuleId.NotFound");

    // Group sources render as user id / group pairs.
    let default_id = group_id(&c, "default").await;
    c.authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(aws_sdk_ec2::types::UserIdGroupPair::builder().group_id(&default_id).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sg = &c.describe_security_groups().group_ids(&gid).send().await.unwrap().security_groups()[0].clone();
    let pg = sg.ip_permissions().iter().find(|p| p.from_port() == Some(5432)).unwrap();
    assert_eq!(pg.user_id_group_pairs()[0].group_id(), Some(default_id.as_str()));

    // Duplicates, bad CIDRs, bad protocols and missing ports are rejected, changing nothing.
    let err = c
        .authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidPermission.Duplicate");
    for bad in ["10.0.0.300/8", "10.0.0.0/33", "not-a-cidr"] {
        let err =
            c.authorize_security_group_ingress().group_id(&gid).ip_permissions(tcp(25, bad)).send().await.unwrap_err();
        assert_eq!(support::code(&err), "InvalidParameterValue", "{bad}");
    }
    let err = c
        .authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("bogus")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");
    let err = c
        .authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(1)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");
    let err = c
        .authorize_security_group_ingress()
        .group_id("sg-doesnotexist")
        .ip_permissions(tcp(25, "10.0.0.0/8"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    assert_eq!(ingress(&c, &gid).await.len(), 4);
    assert_eq!(mutations(&em, "ec2:AuthorizeSecurityGroupIngress"), 2);

    // DryRun answers without changing anything.
    let err = c
        .authorize_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(tcp(25, "10.0.0.0/8"))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "DryRunOperation");
    assert_eq!(ingress(&c, &gid).await.len(), 4);
}

#[tokio::test]
async fn revoke_removes_only_the_named_permission() {
    let em = support::demo().await;
    let admin = ec2(&em, PROD_A);
    let gid = group_id(&admin, "web-admin").await;
    let role = ec2_remediation(&em, PROD_A).await;

    // The remediation role revokes ssh from anywhere by permission.
    let out =
        role.revoke_security_group_ingress().group_id(&gid).ip_permissions(tcp(22, "0.0.0.0/0")).send().await.unwrap();
    assert_eq!(out.r#return(), Some(true));
    assert!(out.unknown_ip_permissions().is_empty());
    assert_eq!(out.revoked_security_group_rules().len(), 1);
    assert_eq!(out.revoked_security_group_rules()[0].from_port(), Some(22));
    assert_eq!(out.revoked_security_group_rules()[0].cidr_ipv4(), Some("0.0.0.0/0"));
    assert_eq!(ingress(&admin, &gid).await, vec![(443, "10.0.0.0/8".to_string()), (3389, "0.0.0.0/0".to_string())]);
    assert_eq!(mutations(&em, "ec2:RevokeSecurityGroupIngress"), 1);

    // Then rdp by rule id.
    let rules = admin.describe_security_group_rules().filters(filter("group-id", &gid)).send().await.unwrap();
    let rdp = rules.security_group_rules().iter().find(|r| r.from_port() == Some(3389)).unwrap();
    let out = role
        .revoke_security_group_ingress()
        .group_id(&gid)
        .security_group_rule_ids(rdp.security_group_rule_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.revoked_security_group_rules()[0].security_group_rule_id(), rdp.security_group_rule_id());
    assert_eq!(ingress(&admin, &gid).await, vec![(443, "10.0.0.0/8".to_string())]);

    // In a default VPC, a permission that matches nothing is reported back, not an error.
    let out =
        role.revoke_security_group_ingress().group_id(&gid).ip_permissions(tcp(22, "0.0.0.0/0")).send().await.unwrap();
    assert_eq!(out.r#return(), Some(true));
    assert_eq!(out.unknown_ip_permissions().len(), 1);
    assert_eq!(out.unknown_ip_permissions()[0].from_port(), Some(22));
    assert!(out.revoked_security_group_rules().is_empty());
    assert_eq!(ingress(&admin, &gid).await.len(), 1);

    // Unknown rule ids and groups are errors.
    let err = role
        .revoke_security_group_ingress()
        .group_id(&gid)
        .security_group_rule_ids("sgr-doesnotexist")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidSecurityGroupRuleId.NotFound");
    let err = role
        .revoke_security_group_ingress()
        .group_id("sg-doesnotexist")
        .ip_permissions(tcp(443, "10.0.0.0/8"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");

    // Egress: revoke the default allow-all, then authorize a narrower one.
    let all =
        IpPermission::builder().ip_protocol("-1").ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build()).build();
    let out = role.revoke_security_group_egress().group_id(&gid).ip_permissions(all).send().await.unwrap();
    assert_eq!(out.revoked_security_group_rules().len(), 1);
    assert_eq!(out.revoked_security_group_rules()[0].is_egress(), Some(true));
    let out = admin
        .authorize_security_group_egress()
        .group_id(&gid)
        .ip_permissions(tcp(443, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.security_group_rules()[0].is_egress(), Some(true));
    let sg = admin.describe_security_groups().group_ids(&gid).send().await.unwrap();
    let egress = sg.security_groups()[0].ip_permissions_egress();
    assert_eq!(egress.len(), 1);
    assert_eq!((egress[0].ip_protocol(), egress[0].from_port()), (Some("tcp"), Some(443)));
}

#[tokio::test]
async fn revoking_an_unknown_rule_outside_a_default_vpc_is_not_found() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let vpc = c.create_vpc().cidr_block("10.20.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    assert_eq!(vpc.vpc().unwrap().is_default(), Some(false));
    // A new VPC comes with its own default group.
    let groups = c.describe_security_groups().filters(filter("vpc-id", &vpc_id)).send().await.unwrap();
    assert_eq!(groups.security_groups().len(), 1);
    assert_eq!(groups.security_groups()[0].group_name(), Some("default"));

    let sg = c.create_security_group().group_name("app").description("app tier").vpc_id(&vpc_id).send().await.unwrap();
    let gid = sg.group_id().unwrap().to_string();
    c.authorize_security_group_ingress().group_id(&gid).ip_permissions(tcp(443, "10.0.0.0/8")).send().await.unwrap();
    // One known and one unknown permission: the call fails and nothing is revoked.
    let err = c
        .revoke_security_group_ingress()
        .group_id(&gid)
        .ip_permissions(tcp(443, "10.0.0.0/8"))
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidPermission.NotFound");
    assert_eq!(ingress(&c, &gid).await, vec![(443, "10.0.0.0/8".to_string())]);
    let err = c.create_vpc().cidr_block("10.0.0.0/8").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVpc.Range");
}

#[tokio::test]
async fn create_and_delete_security_groups() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let out = c
        .create_security_group()
        .group_name("batch")
        .description("batch workers")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(Tag::builder().key("team").value("data").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let gid = out.group_id().unwrap().to_string();
    assert!(gid.starts_with("sg-"));
    assert_eq!(out.tags()[0].key(), Some("team"));
    let sg = c.describe_security_groups().filters(filter("tag:team", "data")).send().await.unwrap();
    let sg = &sg.security_groups()[0];
    assert_eq!(sg.group_id(), Some(gid.as_str()));
    assert_eq!(sg.description(), Some("batch workers"));
    assert!(sg.ip_permissions().is_empty());
    assert_eq!(sg.ip_permissions_egress()[0].ip_protocol(), Some("-1"), "new groups allow all egress");
    assert_eq!(sg.ip_permissions_egress()[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));

    let err = c.create_security_group().group_name("batch").description("again").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.Duplicate");
    let err = c.create_security_group().group_name("sg-lookalike").description("x").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");
    let err =
        c.create_security_group().group_name("x").description("x").vpc_id("vpc-doesnotexist").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVpcID.NotFound");

    // The default group cannot be deleted; a group in use by an instance neither.
    let default_id = group_id(&c, "default").await;
    let err = c.delete_security_group().group_id(&default_id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "CannotDelete");
    let web = group_id(&c, "web-admin").await;
    let err = c.delete_security_group().group_id(&web).send().await.unwrap_err();
    assert_eq!(support::code(&err), "DependencyViolation");

    // The remediation role may not delete groups.
    let role = ec2_remediation(&em, PROD_A).await;
    let err = role.delete_security_group().group_id(&gid).send().await.unwrap_err();
    assert_eq!(support::code(&err), "UnauthorizedOperation");

    let out = c.delete_security_group().group_id(&gid).send().await.unwrap();
    assert_eq!(out.r#return(), Some(true));
    let err = c.describe_security_groups().group_ids(&gid).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    let err = c.delete_security_group().group_id(&gid).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    assert_eq!(mutations(&em, "ec2:DeleteSecurityGroup"), 1);
}

#[tokio::test]
async fn describe_instances_reports_the_demo_instance() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let i = miner(&c).await;
    let id = i.instance_id().unwrap().to_string();
    assert!(id.starts_with("i-"));
    assert_eq!(i.state().unwrap().name(), Some(&InstanceStateName::Running));
    assert_eq!(i.state().unwrap().code(), Some(16));
    assert!(i.image_id().unwrap().starts_with("ami-"));
    assert!(i.instance_type().is_some());
    assert!(i.launch_time().is_some());
    assert!(i.vpc_id().unwrap().starts_with("vpc-"));
    assert!(i.subnet_id().unwrap().starts_with("subnet-"));
    assert!(i.private_ip_address().is_some());
    assert_eq!(i.security_groups()[0].group_name(), Some("web-admin"));
    let profile = i.iam_instance_profile().unwrap();
    assert_eq!(profile.arn(), Some(format!("arn:aws:iam::{PROD_A}:instance-profile/web-app").as_str()));
    assert!(profile.id().unwrap().starts_with("AIPA"));
    let bdm = i.block_device_mappings();
    assert_eq!(bdm.len(), 1);
    assert!(bdm[0].ebs().unwrap().volume_id().unwrap().starts_with("vol-"));
    assert_eq!(i.metadata_options().unwrap().http_tokens().map(|t| t.as_str()), Some("optional"));
    assert_eq!(i.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()), Some("miner-1"));

    let by_id = c.describe_instances().instance_ids(&id).send().await.unwrap();
    assert_eq!(by_id.reservations()[0].owner_id(), Some(PROD_A));
    assert_eq!(by_id.reservations()[0].instances()[0].instance_id(), Some(id.as_str()));
    let running = c.describe_instances().filters(filter("instance-state-name", "running")).send().await.unwrap();
    assert_eq!(running.reservations().len(), 1);
    let stopped = c.describe_instances().filters(filter("instance-state-name", "stopped")).send().await.unwrap();
    assert!(stopped.reservations().is_empty());
    let by_filter = c.describe_instances().filters(filter("instance-id", &id)).send().await.unwrap();
    assert_eq!(by_filter.reservations().len(), 1);

    let err = c.describe_instances().instance_ids("i-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidInstanceID.NotFound");
    let err = c.describe_instances().instance_ids("bogus").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidInstanceID.Malformed");
    // Instances are per account.
    let other = ec2(&em, DEV).describe_instances().send().await.unwrap();
    assert!(other.reservations().is_empty());
}

#[tokio::test]
async fn run_modify_and_terminate_instances() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let web = group_id(&c, "web-admin").await;
    let default_id = group_id(&c, "default").await;

    // EBS default encryption is off in this account: the root volume is not encrypted.
    let out = c
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&web)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("worker-1").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.owner_id(), Some(PROD_A));
    let inst = &out.instances()[0];
    let id = inst.instance_id().unwrap().to_string();
    assert_eq!(inst.state().unwrap().name(), Some(&InstanceStateName::Pending));
    assert_eq!(inst.security_groups()[0].group_id(), Some(web.as_str()));
    let vol = inst.block_device_mappings()[0].ebs().unwrap().volume_id().unwrap().to_string();
    let v = c.describe_volumes().volume_ids(&vol).send().await.unwrap();
    assert_eq!(v.volumes()[0].encrypted(), Some(false));
    let named = c.describe_instances().filters(filter("tag:Name", "worker-1")).send().await.unwrap();
    assert_eq!(named.reservations()[0].instances()[0].state().unwrap().name(), Some(&InstanceStateName::Running));

    // With default encryption on, new volumes are encrypted.
    c.enable_ebs_encryption_by_default().send().await.unwrap();
    let out = c.run_instances().image_id("ami-0123456789abcdef0").min_count(1).max_count(1).send().await.unwrap();
    let second = out.instances()[0].instance_id().unwrap().to_string();
    assert_eq!(
        out.instances()[0].security_groups()[0].group_id(),
        Some(default_id.as_str()),
        "the VPC's default group"
    );
    let v = c.describe_volumes().filters(filter("attachment.instance-id", &second)).send().await.unwrap();
    assert_eq!(v.volumes()[0].encrypted(), Some(true));
    let err = c
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .min_count(1)
        .max_count(1)
        .security_group_ids("sg-doesnotexist")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    let err = c.run_instances().image_id("not-an-ami").min_count(1).max_count(1).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidAMIID.Malformed");

    // Replace the groups and turn on termination protection.
    c.modify_instance_attribute().instance_id(&id).groups(&default_id).send().await.unwrap();
    c.modify_instance_attribute()
        .instance_id(&id)
        .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let attr = c
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    assert_eq!(attr.disable_api_termination().unwrap().value(), Some(true));
    let attr = c
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(InstanceAttributeName::GroupSet)
        .send()
        .await
        .unwrap();
    let groups: Vec<_> = attr.groups().iter().map(|g| g.group_id().unwrap().to_string()).collect();
    assert_eq!(groups, vec![default_id.clone()]);
    let err = c.modify_instance_attribute().instance_id(&id).groups("sg-doesnotexist").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");

    // IMDSv2.
    let out = c
        .modify_instance_metadata_options()
        .instance_id(&id)
        .http_tokens(aws_sdk_ec2::types::HttpTokensState::Required)
        .send()
        .await
        .unwrap();
    assert_eq!(out.instance_metadata_options().unwrap().http_tokens().map(|t| t.as_str()), Some("required"));
    let i = c.describe_instances().instance_ids(&id).send().await.unwrap();
    assert_eq!(
        i.reservations()[0].instances()[0].metadata_options().unwrap().http_tokens().map(|t| t.as_str()),
        Some("required")
    );

    // The remediation role may not terminate; protection stops the administrator.
    let role = ec2_remediation(&em, PROD_A).await;
    let err = role.terminate_instances().instance_ids(&id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "UnauthorizedOperation");
    let err = c.terminate_instances().instance_ids(&id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "OperationNotPermitted");
    c.modify_instance_attribute()
        .instance_id(&id)
        .disable_api_termination(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    let out = c.terminate_instances().instance_ids(&id).send().await.unwrap();
    let change = &out.terminating_instances()[0];
    assert_eq!(change.instance_id(), Some(id.as_str()));
    assert_eq!(change.previous_state().unwrap().name(), Some(&InstanceStateName::Running));
    assert_eq!(change.current_state().unwrap().name(), Some(&InstanceStateName::ShuttingDown));
    let gone = c.describe_instances().instance_ids(&id).send().await.unwrap();
    assert_eq!(gone.reservations()[0].instances()[0].state().unwrap().name(), Some(&InstanceStateName::Terminated));
    let err = c.describe_volumes().volume_ids(&vol).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVolume.NotFound");
    let err = c.terminate_instances().instance_ids("i-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidInstanceID.NotFound");
    assert_eq!(mutations(&em, "ec2:TerminateInstances"), 1);
}

#[tokio::test]
async fn volumes_snapshots_and_default_encryption() {
    let em = support::demo().await;
    let admin = ec2(&em, PROD_A);
    let role = ec2_remediation(&em, PROD_A).await;

    let vols = admin.describe_volumes().send().await.unwrap();
    assert_eq!(vols.volumes().len(), 1);
    let v = &vols.volumes()[0];
    let vol = v.volume_id().unwrap().to_string();
    assert_eq!(v.encrypted(), Some(false));
    assert_eq!(v.state().map(|s| s.as_str()), Some("in-use"));
    assert_eq!(v.size(), Some(8));
    let instance = miner(&admin).await.instance_id().unwrap().to_string();
    assert_eq!(v.attachments()[0].instance_id(), Some(instance.as_str()));
    let err = admin.describe_volumes().volume_ids("vol-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVolume.NotFound");
    let unencrypted = admin.describe_volumes().filters(filter("encrypted", "false")).send().await.unwrap();
    assert_eq!(unencrypted.volumes().len(), 1);

    // Default encryption: off in this account and in dev, on in prod-data.
    assert_eq!(admin.get_ebs_encryption_by_default().send().await.unwrap().ebs_encryption_by_default(), Some(false));
    assert_eq!(
        ec2(&em, DEV).get_ebs_encryption_by_default().send().await.unwrap().ebs_encryption_by_default(),
        Some(false)
    );
    assert_eq!(
        ec2(&em, PROD_B).get_ebs_encryption_by_default().send().await.unwrap().ebs_encryption_by_default(),
        Some(true)
    );
    let out = role.enable_ebs_encryption_by_default().send().await.unwrap();
    assert_eq!(out.ebs_encryption_by_default(), Some(true));
    assert_eq!(role.get_ebs_encryption_by_default().send().await.unwrap().ebs_encryption_by_default(), Some(true));
    assert_eq!(mutations(&em, "ec2:EnableEbsEncryptionByDefault"), 1);
    let err = role.disable_ebs_encryption_by_default().send().await.unwrap_err();
    assert_eq!(support::code(&err), "UnauthorizedOperation");
    let out = admin.disable_ebs_encryption_by_default().send().await.unwrap();
    assert_eq!(out.ebs_encryption_by_default(), Some(false));

    // Snapshots (the remediation role may take them for evidence).
    let snap = role
        .create_snapshot()
        .volume_id(&vol)
        .description("evidence")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(Tag::builder().key("case").value("42").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sid = snap.snapshot_id().unwrap().to_string();
    assert!(sid.starts_with("snap-"));
    assert_eq!(snap.volume_id(), Some(vol.as_str()));
    assert_eq!(snap.encrypted(), Some(false));
    assert_eq!(snap.volume_size(), Some(8));
    let mine = admin.describe_snapshots().owner_ids("self").send().await.unwrap();
    assert_eq!(mine.snapshots().len(), 1);
    assert_eq!(mine.snapshots()[0].state().map(|s| s.as_str()), Some("completed"));
    assert_eq!(mine.snapshots()[0].description(), Some("evidence"));
    assert_eq!(mine.snapshots()[0].tags()[0].value(), Some("42"));
    let by_volume = admin.describe_snapshots().filters(filter("volume-id", &vol)).send().await.unwrap();
    assert_eq!(by_volume.snapshots().len(), 1);
    let by_id = admin.describe_snapshots().snapshot_ids(&sid).send().await.unwrap();
    assert_eq!(by_id.snapshots()[0].owner_id(), Some(PROD_A));
    let amazon = admin.describe_snapshots().owner_ids("amazon").send().await.unwrap();
    assert!(amazon.snapshots().is_empty());
    let err = admin.describe_snapshots().snapshot_ids("snap-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidSnapshot.NotFound");
    let err = admin.create_snapshot().volume_id("vol-0123456789abcdef0").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVolume.NotFound");
    admin.delete_snapshot().snapshot_id(&sid).send().await.unwrap();
    assert!(admin.describe_snapshots().owner_ids("self").send().await.unwrap().snapshots().is_empty());
}

#[tokio::test]
async fn instance_profile_associations() {
    let em = support::demo().await;
    let admin = ec2(&em, PROD_A);
    let role = ec2_remediation(&em, PROD_A).await;
    let instance = miner(&admin).await.instance_id().unwrap().to_string();

    let out = role.describe_iam_instance_profile_associations().send().await.unwrap();
    assert_eq!(out.iam_instance_profile_associations().len(), 1);
    let assoc = &out.iam_instance_profile_associations()[0];
    assert_eq!(assoc.instance_id(), Some(instance.as_str()));
    assert_eq!(assoc.state().map(|s| s.as_str()), Some("associated"));
    assert!(assoc.iam_instance_profile().unwrap().arn().unwrap().ends_with(":instance-profile/web-app"));
    let assoc_id = assoc.association_id().unwrap().to_string();
    let filtered = admin
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", &instance))
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.iam_instance_profile_associations().len(), 1);

    // The remediation role detaches the profile from the compromised instance.
    let out = role.disassociate_iam_instance_profile().association_id(&assoc_id).send().await.unwrap();
    let a = out.iam_instance_profile_association().unwrap();
    assert_eq!(a.association_id(), Some(assoc_id.as_str()));
    assert_eq!(a.state().map(|s| s.as_str()), Some("disassociating"));
    assert!(
        role.describe_iam_instance_profile_associations()
            .send()
            .await
            .unwrap()
            .iam_instance_profile_associations()
            .is_empty()
    );
    assert!(miner(&admin).await.iam_instance_profile().is_none());
    let err = role.disassociate_iam_instance_profile().association_id(&assoc_id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidAssociationID.NotFound");
    let err = role.describe_iam_instance_profile_associations().association_ids(&assoc_id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidAssociationID.NotFound");

    // The administrator re-associates it; an unknown profile is rejected.
    let err = admin
        .associate_iam_instance_profile()
        .instance_id(&instance)
        .iam_instance_profile(IamInstanceProfileSpecification::builder().name("no-such-profile").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");
    let out = admin
        .associate_iam_instance_profile()
        .instance_id(&instance)
        .iam_instance_profile(IamInstanceProfileSpecification::builder().name("web-app").build())
        .send()
        .await
        .unwrap();
    assert_eq!(out.iam_instance_profile_association().unwrap().state().map(|s| s.as_str()), Some("associating"));
    assert!(miner(&admin).await.iam_instance_profile().is_some());
}

#[tokio::test]
async fn tags_vpcs_and_regions() {
    let em = support::demo().await;
    let c = ec2(&em, PROD_A);
    let role = ec2_remediation(&em, PROD_A).await;
    let web = group_id(&c, "web-admin").await;
    let instance = miner(&c).await;
    let iid = instance.instance_id().unwrap().to_string();
    let vol = instance.block_device_mappings()[0].ebs().unwrap().volume_id().unwrap().to_string();

    role.create_tags()
        .resources(&web)
        .resources(&iid)
        .resources(&vol)
        .tags(Tag::builder().key("orgsec:quarantine").value("true").build())
        .tags(Tag::builder().key("owner").value("web").build())
        .send()
        .await
        .unwrap();
    let quarantined = c.describe_instances().filters(filter("tag:orgsec:quarantine", "true")).send().await.unwrap();
    assert_eq!(quarantined.reservations().len(), 1);
    let sgs = c.describe_security_groups().filters(filter("tag-key", "owner")).send().await.unwrap();
    assert_eq!(sgs.security_groups()[0].group_id(), Some(web.as_str()));
    let vols = c.describe_volumes().filters(filter("tag:owner", "web")).send().await.unwrap();
    assert_eq!(vols.volumes().len(), 1);

    // DeleteTags by key, and by key and value (only when the value matches).
    c.delete_tags()
        .resources(&iid)
        .tags(Tag::builder().key("owner").value("someone-else").build())
        .send()
        .await
        .unwrap();
    let i = c.describe_instances().instance_ids(&iid).send().await.unwrap();
    assert!(i.reservations()[0].instances()[0].tags().iter().any(|t| t.key() == Some("owner")));
    c.delete_tags().resources(&iid).tags(Tag::builder().key("owner").build()).send().await.unwrap();
    let i = c.describe_instances().instance_ids(&iid).send().await.unwrap();
    let keys: Vec<_> = i.reservations()[0].instances()[0].tags().iter().filter_map(|t| t.key()).collect();
    assert!(!keys.contains(&"owner"));
    assert!(keys.contains(&"Name"));

    let err = c
        .create_tags()
        .resources("sg-doesnotexist")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidGroup.NotFound");
    let err =
        c.create_tags().resources("xyz-123").tags(Tag::builder().key("k").value("v").build()).send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidID");
    let err = c
        .create_tags()
        .resources(&web)
        .tags(Tag::builder().key("aws:reserved").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "InvalidParameterValue");
    let err = role.delete_tags().resources(&web).tags(Tag::builder().key("owner").build()).send().await.unwrap_err();
    assert_eq!(support::code(&err), "UnauthorizedOperation");

    // The account's default VPC.
    let vpcs = c.describe_vpcs().send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.is_default(), Some(true));
    assert_eq!(vpc.cidr_block(), Some("172.31.0.0/16"));
    assert_eq!(vpc.owner_id(), Some(PROD_A));
    assert_eq!(vpc.vpc_id(), instance.vpc_id());
    let defaults = c.describe_vpcs().filters(filter("is-default", "true")).send().await.unwrap();
    assert_eq!(defaults.vpcs().len(), 1);
    let err = c.describe_vpcs().vpc_ids("vpc-doesnotexist").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidVpcID.NotFound");

    // Regions: the enabled commercial regions, opt-in ones only when asked.
    let regions = c.describe_regions().send().await.unwrap();
    let names: Vec<_> = regions.regions().iter().filter_map(|r| r.region_name()).collect();
    assert!(names.contains(&"us-east-1") && names.contains(&"eu-west-1"));
    assert!(!names.contains(&"af-south-1"));
    let us_east = regions.regions().iter().find(|r| r.region_name() == Some("us-east-1")).unwrap();
    assert_eq!(us_east.endpoint(), Some("ec2.us-east-1.amazonaws.com"));
    assert_eq!(us_east.opt_in_status(), Some("opt-in-not-required"));
    let all = c.describe_regions().all_regions(true).send().await.unwrap();
    assert!(
        all.regions()
            .iter()
            .any(|r| r.region_name() == Some("af-south-1") && r.opt_in_status() == Some("not-opted-in"))
    );
    let one = c.describe_regions().region_names("eu-west-1").send().await.unwrap();
    assert_eq!(one.regions().len(), 1);
}
