//! IAM through aws-sdk-iam: the account password policy, users and access keys, roles with
//! trust, inline and attached policies, and instance profiles, with not-found, invalid-input
//! and least-privilege denials through the assumed remediation role.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::StatusType;
use orgsec_emulator::Emulator;
use serde_json::{Value, json};

use crate::support::{self, EXTERNAL_ID, MANAGEMENT, PROD_A, PROD_B, SANDBOX};

const REMEDIATION: &str = "OrgSecRemediationRole";
const ORG_ACCESS: &str = "OrganizationAccountAccessRole";

fn iam(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

async fn iam_remediation(em: &Emulator, account: &str) -> Client {
    Client::new(&support::assume(em, support::ADMIN, account, REMEDIATION, Some(EXTERNAL_ID)).await)
}

/// IAM returns policy documents percent-encoded.
fn decode(doc: &str) -> Value {
    let bytes = doc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    serde_json::from_slice(&out).expect("policy document is JSON")
}

fn trust_ec2() -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        .to_string()
}

fn mutations(em: &Emulator, op: &str) -> u64 {
    em.shared().world.read().counters.by_operation.get(op).copied().unwrap_or(0)
}

#[tokio::test]
async fn password_policy_round_trip() {
    let em = support::demo().await;
    let admin = iam(&em, PROD_B);

    // prod-data has none.
    let err = admin.get_account_password_policy().send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    assert!(format!("{err:?}").contains(&format!("The Password Policy with domain name {PROD_B} cannot be found.")));

    // The remediation role sets a CIS-strength policy.
    let role = iam_remediation(&em, PROD_B).await;
    role.update_account_password_policy()
        .minimum_password_length(14)
        .require_symbols(true)
        .require_numbers(true)
        .require_uppercase_characters(true)
        .require_lowercase_characters(true)
        .allow_users_to_change_password(true)
        .max_password_age(90)
        .password_reuse_prevention(24)
        .send()
        .await
        .unwrap();
    assert_eq!(mutations(&em, "iam:UpdateAccountPasswordPolicy"), 1);
    let pp = admin.get_account_password_policy().send().await.unwrap();
    let pp = pp.password_policy().unwrap();
    assert_eq!(pp.minimum_password_length(), Some(14));
    assert!(
        pp.require_symbols()
            && pp.require_numbers()
            && pp.require_uppercase_characters()
            && pp.require_lowercase_characters()
    );
    assert!(pp.allow_users_to_change_password());
    assert!(pp.expire_passwords());
    assert_eq!(pp.max_password_age(), Some(90));
    assert_eq!(pp.password_reuse_prevention(), Some(24));
    assert_eq!(pp.hard_expiry(), Some(false));

    // An update replaces the whole policy: what is left out goes back to its default.
    admin.update_account_password_policy().minimum_password_length(8).send().await.unwrap();
    let pp = admin.get_account_password_policy().send().await.unwrap();
    let pp = pp.password_policy().unwrap();
    assert_eq!(pp.minimum_password_length(), Some(8));
    assert!(!pp.require_symbols());
    assert!(!pp.expire_passwords());
    assert_eq!(pp.max_password_age(), None);

    // Out-of-range values are rejected and change nothing.
    let err = admin.update_account_password_policy().minimum_password_length(3).send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
    let err = admin.update_account_password_policy().password_reuse_prevention(25).send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
    let pp = admin.get_account_password_policy().send().await.unwrap();
    assert_eq!(pp.password_policy().unwrap().minimum_password_length(), Some(8));

    // The remediation role may not delete it; the administrator may, once.
    let err = role.delete_account_password_policy().send().await.unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");
    admin.delete_account_password_policy().send().await.unwrap();
    let err = admin.get_account_password_policy().send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let err = admin.delete_account_password_policy().send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    // Accounts with the baseline have a strong policy.
    let pp = iam(&em, PROD_A).get_account_password_policy().send().await.unwrap();
    assert_eq!(pp.password_policy().unwrap().minimum_password_length(), Some(14));
}

#[tokio::test]
async fn users_and_access_keys() {
    let em = support::demo().await;
    let admin = iam(&em, PROD_B);
    let role = iam_remediation(&em, PROD_B).await;

    let users = role.list_users().send().await.unwrap();
    assert_eq!(users.users().len(), 1);
    let u = &users.users()[0];
    assert_eq!(u.user_name(), "ci-deployer");
    assert!(u.user_id().starts_with("AIDA"));
    assert_eq!(u.arn(), format!("arn:aws:iam::{PROD_B}:user/ci-deployer"));
    assert_eq!(u.path(), "/");
    assert!(!users.is_truncated());
    let got = admin.get_user().user_name("ci-deployer").send().await.unwrap();
    assert_eq!(got.user().unwrap().user_id(), u.user_id());
    let err = admin.get_user().user_name("nobody").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let me = admin.get_user().send().await.unwrap();
    assert_eq!(me.user().unwrap().arn(), format!("arn:aws:iam::{PROD_B}:root"));
    let err = role.get_user().send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");

    // ci-deployer's key: the remediation role deactivates it.
    let keys = role.list_access_keys().user_name("ci-deployer").send().await.unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1);
    let key = &keys.access_key_metadata()[0];
    let key_id = key.access_key_id().unwrap().to_string();
    assert!(key_id.starts_with("AKIA") && key_id.len() == 20);
    assert_eq!(key.status(), Some(&StatusType::Active));
    let last = role.get_access_key_last_used().access_key_id(&key_id).send().await.unwrap();
    assert_eq!(last.user_name(), Some("ci-deployer"));
    assert_eq!(last.access_key_last_used().unwrap().service_name(), "N/A");
    role.update_access_key()
        .user_name("ci-deployer")
        .access_key_id(&key_id)
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let keys = admin.list_access_keys().user_name("ci-deployer").send().await.unwrap();
    assert_eq!(keys.access_key_metadata()[0].status(), Some(&StatusType::Inactive));
    assert_eq!(mutations(&em, "iam:UpdateAccessKey"), 1);
    let err = role
        .update_access_key()
        .user_name("ci-deployer")
        .access_key_id("AKIAAAAAAAAAAAAAAAAA")
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let err =
        admin.update_access_key().access_key_id(&key_id).status(StatusType::from("Paused")).send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");

    // The remediation role may not create users or delete keys.
    let err = role.create_user().user_name("backdoor").send().await.unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");
    let err = role.delete_access_key().user_name("ci-deployer").access_key_id(&key_id).send().await.unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");

    // The administrator's user lifecycle.
    let created = admin
        .create_user()
        .user_name("auditor")
        .path("/people/")
        .tags(aws_sdk_iam::types::Tag::builder().key("team").value("audit").build().unwrap())
        .send()
        .await
        .unwrap();
    let user = created.user().unwrap();
    assert_eq!(user.arn(), format!("arn:aws:iam::{PROD_B}:user/people/auditor"));
    assert_eq!(user.tags()[0].value(), "audit");
    let err = admin.create_user().user_name("AUDITOR").send().await.unwrap_err();
    assert_eq!(support::code(&err), "EntityAlreadyExists");
    let err = admin.create_user().user_name("not valid!").send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
    let people = admin.list_users().path_prefix("/people/").send().await.unwrap();
    assert_eq!(people.users().len(), 1);

    let k1 = admin.create_access_key().user_name("auditor").send().await.unwrap();
    let k1 = k1.access_key().unwrap();
    assert!(k1.access_key_id().starts_with("AKIA"));
    assert_eq!(k1.secret_access_key().len(), 40);
    assert_eq!(k1.status(), &StatusType::Active);
    let k2 = admin.create_access_key().user_name("auditor").send().await.unwrap();
    let err = admin.create_access_key().user_name("auditor").send().await.unwrap_err();
    assert_eq!(support::code(&err), "LimitExceeded");
    let err = admin.create_access_key().user_name("nobody").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    let err = admin.delete_user().user_name("auditor").send().await.unwrap_err();
    assert_eq!(support::code(&err), "DeleteConflict");
    admin.delete_access_key().user_name("auditor").access_key_id(k1.access_key_id()).send().await.unwrap();
    admin.delete_access_key().access_key_id(k2.access_key().unwrap().access_key_id()).send().await.unwrap();
    assert!(admin.list_access_keys().user_name("auditor").send().await.unwrap().access_key_metadata().is_empty());
    let err =
        admin.delete_access_key().user_name("auditor").access_key_id(k1.access_key_id()).send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    admin.delete_user().user_name("auditor").send().await.unwrap();
    let err = admin.get_user().user_name("auditor").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let err = admin.delete_user().user_name("auditor").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
}

#[tokio::test]
async fn roles_and_their_policies() {
    let em = support::demo().await;
    let admin = iam(&em, PROD_A);

    // The demo's roles and their trust policies.
    let roles = admin.list_roles().send().await.unwrap();
    let names: Vec<_> = roles.roles().iter().map(|r| r.role_name()).collect();
    assert!(names.contains(&ORG_ACCESS) && names.contains(&REMEDIATION), "{names:?}");
    let r = admin.get_role().role_name(REMEDIATION).send().await.unwrap();
    let r = r.role().unwrap();
    assert_eq!(r.arn(), format!("arn:aws:iam::{PROD_A}:role/{REMEDIATION}"));
    assert!(r.role_id().starts_with("AROA"));
    let doc = r.assume_role_policy_document().unwrap();
    assert!(doc.starts_with("%7B"), "percent-encoded: {doc}");
    let trust = decode(doc);
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], json!(format!("arn:aws:iam::{}:root", support::ADMIN)));
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], json!(EXTERNAL_ID));
    let org = admin.get_role().role_name(ORG_ACCESS).send().await.unwrap();
    assert_eq!(
        decode(org.role().unwrap().assume_role_policy_document().unwrap())["Statement"][0]["Principal"]["AWS"],
        json!(format!("arn:aws:iam::{MANAGEMENT}:root"))
    );
    let attached = admin.list_attached_role_policies().role_name(ORG_ACCESS).send().await.unwrap();
    assert_eq!(attached.attached_policies()[0].policy_name(), Some("AdministratorAccess"));
    let inline = admin.list_role_policies().role_name(REMEDIATION).send().await.unwrap();
    assert_eq!(inline.policy_names().len(), 1);
    let policy =
        admin.get_role_policy().role_name(REMEDIATION).policy_name(&inline.policy_names()[0]).send().await.unwrap();
    let actions = decode(policy.policy_document()).to_string();
    assert!(actions.contains("ec2:RevokeSecurityGroupIngress") && !actions.contains("ec2:TerminateInstances"));

    let err = admin.get_role().role_name("NoSuchRole").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    // The management account has no member roles; the sandbox has them like every member.
    let err = iam(&em, MANAGEMENT).get_role().role_name(REMEDIATION).send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    assert!(iam(&em, SANDBOX).get_role().role_name(ORG_ACCESS).send().await.is_ok());

    // Creating a role: trust policies are validated.
    for bad in
        ["{not json", "[]", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#]
    {
        let err = admin.create_role().role_name("app").assume_role_policy_document(bad).send().await.unwrap_err();
        assert_eq!(support::code(&err), "MalformedPolicyDocument", "{bad}");
    }
    let created = admin
        .create_role()
        .role_name("app")
        .description("application role")
        .max_session_duration(7200)
        .assume_role_policy_document(trust_ec2())
        .send()
        .await
        .unwrap();
    let role = created.role().unwrap();
    assert_eq!(role.arn(), format!("arn:aws:iam::{PROD_A}:role/app"));
    assert_eq!(
        decode(role.assume_role_policy_document().unwrap())["Statement"][0]["Principal"]["Service"],
        json!("ec2.amazonaws.com")
    );
    let err = admin.create_role().role_name("APP").assume_role_policy_document(trust_ec2()).send().await.unwrap_err();
    assert_eq!(support::code(&err), "EntityAlreadyExists");
    let err = admin
        .create_role()
        .role_name("short")
        .max_session_duration(60)
        .assume_role_policy_document(trust_ec2())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
    let got = admin.get_role().role_name("app").send().await.unwrap();
    assert_eq!(got.role().unwrap().description(), Some("application role"));
    assert_eq!(got.role().unwrap().max_session_duration(), Some(7200));

    // Trust policy update.
    let updated = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    admin.update_assume_role_policy().role_name("app").policy_document(updated.to_string()).send().await.unwrap();
    let got = admin.get_role().role_name("app").send().await.unwrap();
    assert_eq!(decode(got.role().unwrap().assume_role_policy_document().unwrap()), updated);
    let err = admin.update_assume_role_policy().role_name("app").policy_document("nope").send().await.unwrap_err();
    assert_eq!(support::code(&err), "MalformedPolicyDocument");
    let err = admin
        .update_assume_role_policy()
        .role_name("ghost")
        .policy_document(updated.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    // Inline policies.
    let read = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]});
    admin
        .put_role_policy()
        .role_name("app")
        .policy_name("read")
        .policy_document(read.to_string())
        .send()
        .await
        .unwrap();
    let got = admin.get_role_policy().role_name("app").policy_name("read").send().await.unwrap();
    assert_eq!(got.role_name(), "app");
    assert_eq!(decode(got.policy_document()), read);
    assert_eq!(admin.list_role_policies().role_name("app").send().await.unwrap().policy_names(), ["read".to_string()]);
    let with_principal = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]});
    let err = admin
        .put_role_policy()
        .role_name("app")
        .policy_name("bad")
        .policy_document(with_principal.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "MalformedPolicyDocument");
    let err =
        admin.put_role_policy().role_name("app").policy_name("bad").policy_document("{").send().await.unwrap_err();
    assert_eq!(support::code(&err), "MalformedPolicyDocument");
    let err = admin.get_role_policy().role_name("app").policy_name("missing").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    // Managed policies.
    admin
        .attach_role_policy()
        .role_name("app")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .unwrap();
    let attached = admin.list_attached_role_policies().role_name("app").send().await.unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    assert_eq!(attached.attached_policies()[0].policy_arn(), Some("arn:aws:iam::aws:policy/ReadOnlyAccess"));
    let err = admin.attach_role_policy().role_name("app").policy_arn("not-an-arn").send().await.unwrap_err();
    assert_eq!(support::code(&err), "InvalidInput");
    let err = admin
        .attach_role_policy()
        .role_name("app")
        .policy_arn(format!("arn:aws:iam::{PROD_A}:policy/custom"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    // A role with policies cannot be deleted until they are gone.
    let err = admin.delete_role().role_name("app").send().await.unwrap_err();
    assert_eq!(support::code(&err), "DeleteConflict");
    admin.delete_role_policy().role_name("app").policy_name("read").send().await.unwrap();
    let err = admin.delete_role_policy().role_name("app").policy_name("read").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let err = admin.delete_role().role_name("app").send().await.unwrap_err();
    assert_eq!(support::code(&err), "DeleteConflict");
    admin
        .detach_role_policy()
        .role_name("app")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .unwrap();
    let err = admin
        .detach_role_policy()
        .role_name("app")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    admin.delete_role().role_name("app").send().await.unwrap();
    let err = admin.get_role().role_name("app").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");

    // The remediation role reads but does not write roles.
    let role = iam_remediation(&em, PROD_A).await;
    assert!(role.get_role().role_name(ORG_ACCESS).send().await.is_ok());
    let err = role.create_role().role_name("x").assume_role_policy_document(trust_ec2()).send().await.unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");
    let err = role
        .attach_role_policy()
        .role_name(REMEDIATION)
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");
}

#[tokio::test]
async fn list_roles_pages_with_markers() {
    let em = support::demo().await;
    let admin = iam(&em, PROD_A);
    for i in 0..3 {
        admin.create_role().role_name(format!("r{i}")).assume_role_policy_document(trust_ec2()).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        let out = admin.list_roles().max_items(2).set_marker(marker).send().await.unwrap();
        pages += 1;
        names.extend(out.roles().iter().map(|r| r.role_name().to_string()));
        if !out.is_truncated() {
            assert!(out.marker().is_none());
            break;
        }
        marker = out.marker().map(str::to_string);
        assert!(marker.is_some());
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 5);
    let err = admin.list_roles().max_items(0).send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
    let err = admin.list_roles().marker("garbage").send().await.unwrap_err();
    assert_eq!(support::code(&err), "ValidationError");
}

#[tokio::test]
async fn instance_profiles() {
    let em = support::demo().await;
    let admin = iam(&em, PROD_A);

    // The demo instance's profile exists, without a role.
    let profiles = admin.list_instance_profiles().send().await.unwrap();
    assert_eq!(profiles.instance_profiles().len(), 1);
    let web = &profiles.instance_profiles()[0];
    assert_eq!(web.instance_profile_name(), "web-app");
    assert!(web.instance_profile_id().starts_with("AIPA"));
    assert_eq!(web.arn(), format!("arn:aws:iam::{PROD_A}:instance-profile/web-app"));
    assert!(web.roles().is_empty());

    admin.create_role().role_name("app").assume_role_policy_document(trust_ec2()).send().await.unwrap();
    admin.create_role().role_name("other").assume_role_policy_document(trust_ec2()).send().await.unwrap();
    let created = admin.create_instance_profile().instance_profile_name("app-profile").send().await.unwrap();
    assert!(created.instance_profile().unwrap().instance_profile_id().starts_with("AIPA"));
    let err = admin.create_instance_profile().instance_profile_name("app-profile").send().await.unwrap_err();
    assert_eq!(support::code(&err), "EntityAlreadyExists");

    admin.add_role_to_instance_profile().instance_profile_name("app-profile").role_name("app").send().await.unwrap();
    let got = admin.get_instance_profile().instance_profile_name("app-profile").send().await.unwrap();
    let roles = got.instance_profile().unwrap().roles();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role_name(), "app");
    assert!(decode(roles[0].assume_role_policy_document().unwrap())["Statement"].is_array());
    let err = admin
        .add_role_to_instance_profile()
        .instance_profile_name("app-profile")
        .role_name("other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "LimitExceeded");
    let err = admin
        .add_role_to_instance_profile()
        .instance_profile_name("app-profile")
        .role_name("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let err =
        admin.add_role_to_instance_profile().instance_profile_name("ghost").role_name("app").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    let for_role = admin.list_instance_profiles_for_role().role_name("app").send().await.unwrap();
    assert_eq!(for_role.instance_profiles()[0].instance_profile_name(), "app-profile");

    // A role in a profile cannot be deleted; neither can a profile holding a role.
    let err = admin.delete_role().role_name("app").send().await.unwrap_err();
    assert_eq!(support::code(&err), "DeleteConflict");
    let err = admin.delete_instance_profile().instance_profile_name("app-profile").send().await.unwrap_err();
    assert_eq!(support::code(&err), "DeleteConflict");

    let role = iam_remediation(&em, PROD_A).await;
    let err = role
        .remove_role_from_instance_profile()
        .instance_profile_name("app-profile")
        .role_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "AccessDenied");
    admin
        .remove_role_from_instance_profile()
        .instance_profile_name("app-profile")
        .role_name("app")
        .send()
        .await
        .unwrap();
    let err = admin
        .remove_role_from_instance_profile()
        .instance_profile_name("app-profile")
        .role_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    assert!(
        admin
            .get_instance_profile()
            .instance_profile_name("app-profile")
            .send()
            .await
            .unwrap()
            .instance_profile()
            .unwrap()
            .roles()
            .is_empty()
    );
    admin.delete_instance_profile().instance_profile_name("app-profile").send().await.unwrap();
    let err = admin.get_instance_profile().instance_profile_name("app-profile").send().await.unwrap_err();
    assert_eq!(support::code(&err), "NoSuchEntity");
    admin.delete_role().role_name("app").send().await.unwrap();
}
