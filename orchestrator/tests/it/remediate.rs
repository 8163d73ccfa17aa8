//! Remediation playbooks against the in-process emulator's demo organization: each playbook's
//! plan, execute and verify on the demo's real misconfiguration through the member role, with the
//! role's policy generated from the playbook's descriptor; a second execute changes nothing
//! (mutation counters); refusals (ExternalId, missing permission) name the role and change nothing.

use std::collections::BTreeMap;

use orgsec::aws::{AccessError, Aws, Clients};
use orgsec::playbooks;
use orgsec::remediate::{self, Outcome, Parameters, Plan, RemediationError, Target, Verified};
use orgsec_emulator::Emulator;
use serde_json::{Value, json};

use crate::support::{EXTERNAL_ID, admin_aws, emulator};

const PROD_WEB: &str = "333333333333";
const PROD_DATA: &str = "444444444444";
const DEV: &str = "555555555555";
const SANDBOX: &str = "666666666666";
const REGION: &str = "us-east-1";
const ROLE: &str = "OrgSecRemediationRole";

/// Mutation counters by operation, without AssumeRole (which changes nothing in an account).
fn mutations(em: &Emulator) -> BTreeMap<String, u64> {
    let w = em.shared().world.read();
    w.counters.by_operation.iter().filter(|(op, _)| *op != "sts:AssumeRole").map(|(k, v)| (k.clone(), *v)).collect()
}

/// The emulator's world as JSON.
fn world(em: &Emulator) -> Value {
    orgsec_emulator::admin::state_json(&em.shared().world.read())
}

fn region_state(em: &Emulator, account: &str) -> Value {
    world(em)["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == account && r["region"] == REGION)
        .cloned()
        .unwrap_or(Value::Null)
}

fn account_state(em: &Emulator, account: &str) -> Value {
    world(em)["accounts"].as_array().unwrap().iter().find(|a| a["id"] == account).cloned().unwrap()
}

/// Gives the member role in `account` exactly the policy the catalogue generates for `playbook`,
/// less the actions in `without`: the descriptor's permissions must be enough to run it.
fn grant(em: &Emulator, account: &str, playbook: &str, without: &[&str]) {
    let p = playbooks::find(playbook).unwrap();
    let mut policy = playbooks::member_role_policy(&[p]);
    for st in policy["Statement"].as_array_mut().unwrap() {
        st["Action"].as_array_mut().unwrap().retain(|a| !without.contains(&a.as_str().unwrap()));
    }
    let mut w = em.shared().world.write();
    let role = w.accounts.get_mut(account).unwrap().iam.roles.get_mut(ROLE).expect("the demo's member role");
    role.inline_policies = BTreeMap::from([("orgsec".to_string(), policy)]);
}

fn target(account: &str, resource_type: &str, resource_id: &str) -> Target {
    Target {
        account_id: account.into(),
        region: REGION.into(),
        resource_type: resource_type.into(),
        resource_id: resource_id.into(),
        control_id: None,
        finding_type: None,
        finding_id: "finding-1".into(),
        raw: Value::Null,
    }
}

fn account_target(account: &str, control: &str) -> Target {
    Target { control_id: Some(control.into()), ..target(account, "AwsAccount", &format!("AWS::::Account:{account}")) }
}

async fn member(aws: &Aws, t: &Target) -> Clients {
    remediate::clients_for(aws, t).await.expect("the member role is assumed")
}

/// Plans, executes and verifies `playbook` on `t`, then executes again and checks that the
/// second run changed nothing; returns the plan and the first outcome.
async fn run(em: &Emulator, playbook: &str, t: &Target, params: Parameters) -> (Plan, Outcome) {
    grant(em, &t.account_id, playbook, &[]);
    let aws = admin_aws(em, Some(EXTERNAL_ID), &[]);
    let c = member(&aws, t).await;
    let r = remediate::find(playbook).expect("registered");
    assert_eq!(r.descriptor().name, playbook);

    let before = mutations(em);
    let plan = r.plan(&c, t, &params).await.expect("plan");
    assert_eq!(mutations(em), before, "{playbook}: planning changes nothing");
    assert!(!plan.is_noop(), "{playbook}: the demo's misconfiguration needs fixing: {plan:#?}");
    assert!(!r.verify(&c, t, &plan).await.expect("verify before").ok, "{playbook}: not fixed before");
    // A plan survives being stored.
    let plan: Plan = serde_json::from_value(serde_json::to_value(&plan).unwrap()).unwrap();

    let outcome = r.execute(&c, t, &plan).await.expect("execute");
    assert!(!outcome.changed.is_empty(), "{playbook}: {outcome:#?}");
    let Verified { ok, observed } = r.verify(&c, t, &plan).await.expect("verify");
    assert!(ok, "{playbook}: {observed}");

    let after = mutations(em);
    let again = r.execute(&c, t, &plan).await.expect("second execute");
    assert_eq!(again.changed, Vec::<String>::new(), "{playbook}: second execute");
    assert_eq!(mutations(em), after, "{playbook}: a second execute changes nothing");
    assert!(r.plan(&c, t, &params).await.expect("plan again").is_noop(), "{playbook}: nothing left to do");
    (plan, outcome)
}

fn web_admin(em: &Emulator) -> (String, Vec<Value>) {
    let rs = region_state(em, PROD_WEB);
    let g = rs["security_groups"].as_array().unwrap().iter().find(|g| g["name"] == "web-admin").unwrap().clone();
    (g["id"].as_str().unwrap().to_string(), g["ingress"].as_array().unwrap().clone())
}

fn rule_set(rules: &[Value]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = rules
        .iter()
        .map(|r| (r["from_port"].as_i64().unwrap(), r["source"]["cidr"].as_str().unwrap_or_default().to_string()))
        .collect();
    v.sort();
    v
}

fn sg_target(em: &Emulator, control: &str) -> Target {
    let (id, _) = web_admin(em);
    Target {
        control_id: Some(control.into()),
        ..target(PROD_WEB, "AwsEc2SecurityGroup", &format!("arn:aws:ec2:{REGION}:{PROD_WEB}:security-group/{id}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_public_ingress_for_ec2_13_revokes_ssh_and_keeps_rdp_and_the_private_rule() {
    let em = emulator("demo").await;
    let (_, rules) = web_admin(&em);
    assert_eq!(rule_set(&rules), [(22, "0.0.0.0/0".into()), (443, "10.0.0.0/8".into()), (3389, "0.0.0.0/0".into())]);

    let (plan, outcome) = run(&em, "revoke-public-ingress", &sg_target(&em, "EC2.13"), Parameters::new()).await;
    assert_eq!(plan.steps.len(), 1, "{plan:#?}");
    assert_eq!(plan.steps[0].action, "ec2:RevokeSecurityGroupIngress");
    assert_eq!(plan.steps[0].details["from_port"], 22);
    assert!(plan.summary.contains("2 other ingress rule(s) stay"), "{}", plan.summary);
    assert_eq!(outcome.changed.len(), 1);

    let (_, rules) = web_admin(&em);
    assert_eq!(rule_set(&rules), [(443, "10.0.0.0/8".into()), (3389, "0.0.0.0/0".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_public_ingress_with_ports_given_closes_those_ports_only() {
    let em = emulator("demo").await;
    let params = Parameters::from([("ports".to_string(), "3000-3400,443".to_string())]);
    run(&em, "revoke-public-ingress", &sg_target(&em, "EC2.19"), params).await;
    let (_, rules) = web_admin(&em);
    assert_eq!(rule_set(&rules), [(22, "0.0.0.0/0".into()), (443, "10.0.0.0/8".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn isolate_instance_performs_every_step_of_the_runbook() {
    let em = emulator("demo").await;
    let rs = region_state(&em, PROD_WEB);
    let miner = rs["instances"].as_array().unwrap().iter().find(|i| i["tags"]["Name"] == "miner-1").unwrap().clone();
    let id = miner["id"].as_str().unwrap().to_string();
    assert!(miner["iam_instance_profile"].is_string() && miner["disable_api_termination"] == false);
    let snapshots_before = rs["snapshots"].as_array().unwrap().len();
    let t = Target {
        finding_type: Some("CryptoCurrency:EC2/BitcoinTool.B!DNS".into()),
        finding_id: "gd-miner".into(),
        ..target(PROD_WEB, "AwsEc2Instance", &format!("arn:aws:ec2:{REGION}:{PROD_WEB}:instance/{id}"))
    };

    let (plan, outcome) = run(&em, "isolate-instance", &t, Parameters::new()).await;
    let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ec2:DescribeInstances",
            "ec2:CreateSnapshot",
            "ec2:ModifyInstanceAttribute",
            "ec2:DisassociateIamInstanceProfile",
            "ec2:CreateSecurityGroup",
            "ec2:ModifyInstanceAttribute",
            "ec2:CreateTags",
        ]
    );
    let steps: Vec<(&str, &str)> = outcome.details["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("save metadata", "saved"),
            ("snapshot volumes", "done"),
            ("enable termination protection", "done"),
            ("detach instance profile", "done"),
            ("move to quarantine group", "done"),
            ("tag instance", "done"),
        ]
    );
    assert_eq!(outcome.details["metadata"]["instance_id"], id.as_str());
    assert!(
        outcome.details["metadata"]["iam_instance_profile"].as_str().unwrap().ends_with("instance-profile/web-app")
    );

    let rs = region_state(&em, PROD_WEB);
    let inst = rs["instances"].as_array().unwrap().iter().find(|i| i["id"] == id.as_str()).unwrap().clone();
    let q =
        rs["security_groups"].as_array().unwrap().iter().find(|g| g["name"] == "orgsec-quarantine").unwrap().clone();
    assert_eq!(inst["security_groups"], json!([q["id"]]));
    assert_eq!((q["ingress"].as_array().unwrap().len(), q["egress"].as_array().unwrap().len()), (0, 0));
    assert_eq!(inst["disable_api_termination"], true);
    assert!(inst["iam_instance_profile"].is_null());
    assert_eq!(inst["tags"]["orgsec:isolated"], id.as_str());
    assert_eq!(inst["tags"]["orgsec:finding"], "gd-miner");
    assert_eq!(inst["state"], "running", "the instance keeps running: memory is evidence");
    assert_eq!(rs["snapshots"].as_array().unwrap().len(), snapshots_before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivate_access_key_deactivates_the_leaked_key_only() {
    let em = emulator("demo").await;
    // A second key of the same user, which must stay active.
    let other = {
        let iam = aws_sdk_iam::Client::new(&crate::support::sdk_config(&em, PROD_DATA));
        iam.create_access_key()
            .user_name("ci-deployer")
            .send()
            .await
            .unwrap()
            .access_key()
            .unwrap()
            .access_key_id()
            .to_string()
    };
    let acct = account_state(&em, PROD_DATA);
    let user = acct["users"].as_array().unwrap().iter().find(|u| u["name"] == "ci-deployer").unwrap().clone();
    let leaked = user["access_keys"].as_array().unwrap().iter().find(|k| k["id"] != other.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Target {
        finding_type: Some("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS".into()),
        raw: json!({"resource": {"resourceType": "AccessKey", "accessKeyDetails": {
            "accessKeyId": leaked, "userName": "ci-deployer", "userType": "IAMUser"}}}),
        ..target(PROD_DATA, "AwsIamAccessKey", &format!("AWS::IAM::AccessKey:{leaked}"))
    };
    run(&em, "deactivate-access-key", &t, Parameters::new()).await;

    let acct = account_state(&em, PROD_DATA);
    let keys: BTreeMap<String, String> =
        acct["users"].as_array().unwrap().iter().find(|u| u["name"] == "ci-deployer").unwrap()["access_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["id"].as_str().unwrap().to_string(), k["status"].as_str().unwrap().to_string()))
            .collect();
    assert_eq!(keys, BTreeMap::from([(leaked, "Inactive".to_string()), (other, "Active".to_string())]));
}

#[tokio::test(flavor = "multi_thread")]
async fn set_password_policy_sets_the_parameters() {
    let em = emulator("demo").await;
    assert!(account_state(&em, PROD_DATA)["password_policy"].is_null());
    let params = Parameters::from([("minimum_password_length".to_string(), "16".to_string())]);
    run(&em, "set-password-policy", &account_target(PROD_DATA, "IAM.15"), params).await;
    let p = &account_state(&em, PROD_DATA)["password_policy"];
    assert_eq!(p["minimum_password_length"], 16);
    assert_eq!(p["password_reuse_prevention"], 24);
    assert_eq!(p["max_password_age"], 90);
    assert_eq!((p["require_symbols"].clone(), p["require_uppercase"].clone()), (json!(true), json!(true)));
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_ebs_default_encryption_turns_it_on() {
    let em = emulator("demo").await;
    assert_eq!(region_state(&em, PROD_WEB)["ebs_encryption_by_default"], false);
    run(&em, "enable-ebs-default-encryption", &account_target(PROD_WEB, "EC2.7"), Parameters::new()).await;
    assert_eq!(region_state(&em, PROD_WEB)["ebs_encryption_by_default"], true);
    assert_eq!(region_state(&em, DEV)["ebs_encryption_by_default"], false, "another account is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_s3_account_bpa_turns_on_all_four_settings() {
    let em = emulator("demo").await;
    assert_ne!(account_state(&em, DEV)["s3_public_access_block"], true);
    let bucket = |em: &Emulator| {
        world(em)["buckets"].as_array().unwrap().iter().find(|b| b["owner"] == DEV).unwrap()["public"].clone()
    };
    assert_eq!(bucket(&em), true);
    run(&em, "enable-s3-account-bpa", &account_target(DEV, "S3.1"), Parameters::new()).await;
    assert_eq!(account_state(&em, DEV)["s3_public_access_block"], true);
    assert_eq!(bucket(&em), false, "the public bucket is no longer public");
}

#[tokio::test(flavor = "multi_thread")]
async fn block_public_bucket_blocks_the_named_bucket_only() {
    let em = emulator("demo").await;
    let public = |em: &Emulator| {
        world(em)["buckets"].as_array().unwrap().iter().find(|b| b["owner"] == DEV).unwrap()["public"].clone()
    };
    assert_eq!(public(&em), true);
    let name = "orgsec-demo-public-555555555555";
    let t = Target { control_id: Some("S3.8".into()), ..target(DEV, "AwsS3Bucket", &format!("arn:aws:s3:::{name}")) };
    let (plan, outcome) = run(&em, "block-public-bucket", &t, Parameters::new()).await;
    assert_eq!(plan.steps[0].action, "s3:PutBucketPublicAccessBlock");
    assert!(outcome.changed[0].contains(name), "{outcome:#?}");
    assert_eq!(public(&em), false, "the bucket is no longer public");
    assert_ne!(account_state(&em, DEV)["s3_public_access_block"], true, "the account's own settings are untouched");

    // Not a bucket: refused before anything is called.
    let grant_all = remediate::find("block-public-bucket").unwrap();
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let instance = target(DEV, "AwsEc2Instance", "arn:aws:ec2:us-east-1:555555555555:instance/i-1");
    let c = member(&aws, &instance).await;
    let e = grant_all.plan(&c, &instance, &Parameters::new()).await.unwrap_err();
    assert!(matches!(e, RemediationError::Invalid(_)) && e.to_string().contains("needs an S3 bucket"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_guardduty_creates_the_detector() {
    let em = emulator("demo").await;
    assert!(region_state(&em, SANDBOX)["guardduty"].is_null());
    let params = Parameters::from([("finding_publishing_frequency".to_string(), "FIFTEEN_MINUTES".to_string())]);
    let (_, outcome) = run(&em, "enable-guardduty", &account_target(SANDBOX, "GuardDuty.1"), params).await;
    let gd = &region_state(&em, SANDBOX)["guardduty"];
    assert_eq!(gd["status"], "ENABLED");
    assert_eq!(gd["detector_id"], outcome.details["detector_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_external_id_fails_naming_the_role_and_changes_nothing() {
    let em = emulator("demo").await;
    let t = sg_target(&em, "EC2.13");
    for external_id in [None, Some("not-the-demo")] {
        let before = mutations(&em);
        let aws = admin_aws(&em, external_id, &[]);
        let err = remediate::clients_for(&aws, &t).await.unwrap_err();
        assert!(
            matches!(&err, RemediationError::Access(e) if matches!(**e, AccessError::RoleRefused { .. })),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("arn:aws:iam::{PROD_WEB}:role/{ROLE}")), "{text}");
        assert!(text.contains("ExternalId"), "{text}");
        assert_eq!(mutations(&em), before, "{external_id:?}");
    }
    assert_eq!(web_admin(&em).1.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_permission_is_access_denied_naming_the_action_and_the_role() {
    let em = emulator("demo").await;
    grant(&em, PROD_WEB, "revoke-public-ingress", &["ec2:RevokeSecurityGroupIngress"]);
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let t = sg_target(&em, "EC2.13");
    let c = member(&aws, &t).await;
    let r = remediate::find("revoke-public-ingress").unwrap();
    let plan = r.plan(&c, &t, &Parameters::new()).await.expect("reading is allowed");
    let before = mutations(&em);
    let err = r.execute(&c, &t, &plan).await.unwrap_err();
    match &err {
        RemediationError::AccessDenied { principal, action, account, .. } => {
            assert_eq!(principal, &format!("arn:aws:iam::{PROD_WEB}:role/{ROLE}"));
            assert_eq!(action, "ec2:RevokeSecurityGroupIngress");
            assert_eq!(account, PROD_WEB);
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    assert!(err.to_string().contains("add ec2:RevokeSecurityGroupIngress to its permissions policy"), "{err}");
    assert_eq!(mutations(&em), before);
    assert_eq!(web_admin(&em).1.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_control_reaches_the_emulator_through_the_member_role() {
    let em = emulator("demo").await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let c = aws.member(PROD_WEB, REGION).await.unwrap();
    let out = c.s3control().get_public_access_block().account_id(PROD_WEB).send().await.expect("GetPublicAccessBlock");
    assert_eq!(out.public_access_block_configuration().and_then(|b| b.block_public_acls()), Some(true));
    assert_eq!(c.principal, format!("arn:aws:iam::{PROD_WEB}:role/{ROLE}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_of_another_playbook_or_a_wrong_target_is_refused() {
    let em = emulator("demo").await;
    let aws = admin_aws(&em, Some(EXTERNAL_ID), &[]);
    let t = sg_target(&em, "EC2.13");
    let c = member(&aws, &t).await;
    let plan = remediate::find("revoke-public-ingress").unwrap().plan(&c, &t, &Parameters::new()).await.unwrap();
    let err = remediate::find("enable-guardduty").unwrap().execute(&c, &t, &plan).await.unwrap_err();
    assert!(err.to_string().contains("the plan was made by revoke-public-ingress"), "{err}");

    let instance = remediate::find("isolate-instance").unwrap();
    let err = instance.plan(&c, &t, &Parameters::new()).await.unwrap_err();
    assert!(matches!(err, RemediationError::Invalid(_)), "{err:?}");
    let bad = Parameters::from([("snapshot_volumes".to_string(), "maybe".to_string())]);
    assert!(instance.plan(&c, &t, &bad).await.unwrap_err().to_string().contains("snapshot_volumes"));
}
