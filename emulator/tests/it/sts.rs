//! STS: who the caller is, AssumeRole against the demo's trust policies (principals and
//! `sts:ExternalId`), input validation, role sessions held to the role's policy, and expiry on
//! the world's clock.

use std::time::SystemTime;

use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_smithy_types::DateTime;
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, EXTERNAL_ID, MANAGEMENT, PROD_A, PROD_B, SANDBOX};

const REMEDIATION: &str = "OrgSecRemediationRole";
const ORG_ACCESS: &str = "OrganizationAccountAccessRole";

fn role_arn(account: &str, role: &str) -> String {
    format!("arn:aws:iam::{account}:role/{role}")
}

fn sts(em: &Emulator, account: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&support::config(em, account))
}

/// An STS client signing with the temporary credentials an AssumeRole returned.
fn sts_as(em: &Emulator, out: &AssumeRoleOutput) -> aws_sdk_sts::Client {
    let c = out.credentials().expect("credentials");
    aws_sdk_sts::Client::new(&support::config_with_key(em, c.access_key_id(), Some(c.session_token().to_string())))
}

async fn assume_remediation(em: &Emulator, target: &str, session: &str, duration: Option<i32>) -> AssumeRoleOutput {
    sts(em, ADMIN)
        .assume_role()
        .role_arn(role_arn(target, REMEDIATION))
        .role_session_name(session)
        .external_id(EXTERNAL_ID)
        .set_duration_seconds(duration)
        .send()
        .await
        .expect("AssumeRole of the remediation role")
}

fn secs_from_now(t: &DateTime) -> i64 {
    t.secs() - DateTime::from(SystemTime::now()).secs()
}

async fn advance_clock(em: &Emulator, ms: i64) {
    let body = format!(r#"{{"advance_ms": {ms}}}"#);
    let (status, text) =
        support::raw(&em.url(), "POST", "/_emulator/clock", &[("content-type", "application/json")], body.as_bytes())
            .await;
    assert_eq!(status, 200, "clock advance: {text}");
}

#[tokio::test]
async fn get_caller_identity_as_account_admin() {
    let em = support::demo().await;
    for account in [MANAGEMENT, ADMIN, PROD_A, SANDBOX] {
        let out = sts(&em, account).get_caller_identity().send().await.expect("GetCallerIdentity");
        assert_eq!(out.account(), Some(account));
        assert_eq!(out.arn(), Some(format!("arn:aws:iam::{account}:root").as_str()));
        assert_eq!(out.user_id(), Some(account));
    }
}

#[tokio::test]
async fn get_caller_identity_through_an_assumed_role() {
    let em = support::demo().await;
    let out = assume_remediation(&em, PROD_A, "audit-run-7", None).await;
    let user = out.assumed_role_user().expect("assumed role user");
    assert_eq!(user.arn(), format!("arn:aws:sts::{PROD_A}:assumed-role/{REMEDIATION}/audit-run-7"));
    assert!(user.assumed_role_id().starts_with("AROA"), "{}", user.assumed_role_id());
    assert!(user.assumed_role_id().ends_with(":audit-run-7"), "{}", user.assumed_role_id());

    let me = sts_as(&em, &out).get_caller_identity().send().await.expect("GetCallerIdentity as the role");
    assert_eq!(me.account(), Some(PROD_A));
    assert_eq!(me.arn(), Some(format!("arn:aws:sts::{PROD_A}:assumed-role/{REMEDIATION}/audit-run-7").as_str()));
    assert_eq!(me.user_id(), Some(user.assumed_role_id()));
}

#[tokio::test]
async fn assume_remediation_role_with_the_external_id_issues_temporary_keys() {
    let em = support::demo().await;
    let out = assume_remediation(&em, PROD_B, "orgsec", None).await;
    let c = out.credentials().expect("credentials");
    assert!(c.access_key_id().starts_with("ASIA"), "{}", c.access_key_id());
    assert_eq!(c.access_key_id().len(), 20);
    assert!(!c.secret_access_key().is_empty());
    assert!(!c.session_token().is_empty());
    let left = secs_from_now(c.expiration());
    assert!((3500..=3700).contains(&left), "default session lasts an hour, expires in {left}s");

    // A shorter session expires sooner; every call issues fresh keys.
    let short = assume_remediation(&em, PROD_B, "orgsec", Some(900)).await;
    let sc = short.credentials().expect("credentials");
    let left = secs_from_now(sc.expiration());
    assert!((850..=950).contains(&left), "900 s session expires in {left}s");
    assert_ne!(sc.access_key_id(), c.access_key_id());
}

#[tokio::test]
async fn assume_remediation_role_without_external_id_is_denied() {
    let em = support::demo().await;
    let err = sts(&em, ADMIN)
        .assume_role()
        .role_arn(role_arn(PROD_A, REMEDIATION))
        .role_session_name("orgsec")
        .send()
        .await
        .expect_err("no ExternalId");
    assert_eq!(support::code(&err), "AccessDenied");
}

#[tokio::test]
async fn assume_remediation_role_with_a_wrong_external_id_is_denied() {
    let em = support::demo().await;
    for wrong in ["orgsec-demo-x", "ORGSEC-DEMO", "something-else"] {
        let err = sts(&em, ADMIN)
            .assume_role()
            .role_arn(role_arn(PROD_A, REMEDIATION))
            .role_session_name("orgsec")
            .external_id(wrong)
            .send()
            .await
            .expect_err("wrong ExternalId");
        assert_eq!(support::code(&err), "AccessDenied", "external id {wrong}");
    }
}

#[tokio::test]
async fn assume_role_from_an_account_the_trust_policy_does_not_name_is_denied() {
    let em = support::demo().await;
    // The remediation role trusts only the security account.
    for from in [PROD_A, MANAGEMENT, DEV] {
        let err = sts(&em, from)
            .assume_role()
            .role_arn(role_arn(PROD_B, REMEDIATION))
            .role_session_name("orgsec")
            .external_id(EXTERNAL_ID)
            .send()
            .await
            .expect_err("untrusted account");
        assert_eq!(support::code(&err), "AccessDenied", "from {from}");
    }
    // The organization access role trusts only the management account.
    let err = sts(&em, ADMIN)
        .assume_role()
        .role_arn(role_arn(PROD_B, ORG_ACCESS))
        .role_session_name("orgsec")
        .send()
        .await
        .expect_err("untrusted account");
    assert_eq!(support::code(&err), "AccessDenied");
}

#[tokio::test]
async fn assume_a_role_that_does_not_exist_is_denied() {
    let em = support::demo().await;
    for arn in [
        role_arn(PROD_A, "NoSuchRole"),
        // The management account has no remediation role.
        role_arn(MANAGEMENT, REMEDIATION),
        // Nor does an account that is not in the world.
        role_arn("999999999999", REMEDIATION),
    ] {
        let err = sts(&em, ADMIN)
            .assume_role()
            .role_arn(&arn)
            .role_session_name("orgsec")
            .external_id(EXTERNAL_ID)
            .send()
            .await
            .expect_err("missing role");
        assert_eq!(support::code(&err), "AccessDenied", "{arn}");
    }
}

#[tokio::test]
async fn malformed_role_arn_is_a_validation_error() {
    let em = support::demo().await;
    for arn in [
        "not-an-arn-at-all-really".to_string(),
        format!("arn:aws:iam::12345:role/{REMEDIATION}"),
        format!("arn:aws:iam::{PROD_A}:user/{REMEDIATION}"),
        format!("arn:aws:s3:::{PROD_A}:role/{REMEDIATION}"),
    ] {
        let err = sts(&em, ADMIN)
            .assume_role()
            .role_arn(&arn)
            .role_session_name("orgsec")
            .external_id(EXTERNAL_ID)
            .send()
            .await
            .expect_err("malformed arn");
        assert_eq!(support::code(&err), "ValidationError", "{arn}");
    }
}

#[tokio::test]
async fn bad_role_session_name_is_a_validation_error() {
    let em = support::demo().await;
    let too_long = "s".repeat(65);
    for session in ["has spaces", "x", "slash/in/name", "star*", too_long.as_str()] {
        let err = sts(&em, ADMIN)
            .assume_role()
            .role_arn(role_arn(PROD_A, REMEDIATION))
            .role_session_name(session)
            .external_id(EXTERNAL_ID)
            .send()
            .await
            .expect_err("bad session name");
        assert_eq!(support::code(&err), "ValidationError", "session {session:?}");
    }
    // Every allowed character, at the length limits.
    for session in ["ab", "a+b=c,d.e@f-g_h", "s".repeat(64).as_str()] {
        assume_remediation(&em, PROD_A, session, None).await;
    }
}

#[tokio::test]
async fn duration_outside_the_roles_limits_is_a_validation_error() {
    let em = support::demo().await;
    for secs in [3601, 7200, 43200, 899, 0] {
        let err = sts(&em, ADMIN)
            .assume_role()
            .role_arn(role_arn(PROD_A, REMEDIATION))
            .role_session_name("orgsec")
            .external_id(EXTERNAL_ID)
            .duration_seconds(secs)
            .send()
            .await
            .expect_err("duration out of range");
        assert_eq!(support::code(&err), "ValidationError", "{secs} s");
    }
    // The limits themselves are accepted.
    for secs in [900, 3600] {
        let out = assume_remediation(&em, PROD_A, "orgsec", Some(secs)).await;
        let left = secs_from_now(out.credentials().unwrap().expiration());
        assert!((i64::from(secs) - 60..=i64::from(secs) + 60).contains(&left), "{secs} s session expires in {left}s");
    }
}

#[tokio::test]
async fn organization_access_role_from_management_needs_no_external_id() {
    let em = support::demo().await;
    for account in [ADMIN, PROD_A, PROD_B, DEV, SANDBOX] {
        let out = sts(&em, MANAGEMENT)
            .assume_role()
            .role_arn(role_arn(account, ORG_ACCESS))
            .role_session_name("break-glass")
            .send()
            .await
            .expect("AssumeRole of OrganizationAccountAccessRole");
        let me = sts_as(&em, &out).get_caller_identity().send().await.expect("GetCallerIdentity");
        assert_eq!(me.account(), Some(account));
        assert_eq!(me.arn(), Some(format!("arn:aws:sts::{account}:assumed-role/{ORG_ACCESS}/break-glass").as_str()));
    }
}

#[tokio::test]
async fn unknown_access_key_is_an_invalid_client_token() {
    let em = support::demo().await;
    for key in ["AKIAIOSFODNN7EXAMPLE", "AKID999999999999", "AKID12345", "ASIAUNKNOWNSESSION00"] {
        let client = aws_sdk_sts::Client::new(&support::config_with_key(&em, key, None));
        let err = client.get_caller_identity().send().await.expect_err("unknown key");
        assert_eq!(support::code(&err), "InvalidClientTokenId", "key {key}");
        let err = client
            .assume_role()
            .role_arn(role_arn(PROD_A, ORG_ACCESS))
            .role_session_name("orgsec")
            .send()
            .await
            .expect_err("unknown key");
        assert_eq!(support::code(&err), "InvalidClientTokenId", "key {key}");
    }
}

#[tokio::test]
async fn assumed_role_is_held_to_its_policy() {
    let em = support::demo().await;
    // The remediation role's policy does not grant sts:AssumeRole, so it cannot hop onwards,
    // not even to a role whose trust policy would admit it.
    let out = assume_remediation(&em, ADMIN, "orgsec", None).await;
    let as_role = sts_as(&em, &out);
    as_role.get_caller_identity().send().await.expect("GetCallerIdentity needs no permission");
    let err = as_role
        .assume_role()
        .role_arn(role_arn(PROD_A, REMEDIATION))
        .role_session_name("hop")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .expect_err("sts:AssumeRole is not in the remediation policy");
    assert_eq!(support::code(&err), "AccessDenied");

    // Organizations reads are in the policy; changes are not.
    let org = aws_sdk_organizations::Client::new(&support::config_with_key(
        &em,
        out.credentials().unwrap().access_key_id(),
        Some(out.credentials().unwrap().session_token().to_string()),
    ));
    org.describe_organization().send().await.expect("organizations:Describe* is allowed");
    let err = org
        .tag_resource()
        .resource_id(PROD_A)
        .tags(aws_sdk_organizations::types::Tag::builder().key("k").value("v").build().unwrap())
        .send()
        .await
        .expect_err("organizations:TagResource is not in the remediation policy");
    assert_eq!(support::code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn administrator_session_can_chain_but_only_for_an_hour() {
    let em = support::demo().await;
    // The security account's organization access role has AdministratorAccess, and the
    // remediation roles trust the whole security account.
    let admin_session = sts(&em, MANAGEMENT)
        .assume_role()
        .role_arn(role_arn(ADMIN, ORG_ACCESS))
        .role_session_name("first-hop")
        .send()
        .await
        .expect("first hop");
    let hop = sts_as(&em, &admin_session);
    let err = hop
        .assume_role()
        .role_arn(role_arn(PROD_A, REMEDIATION))
        .role_session_name("second-hop")
        .external_id(EXTERNAL_ID)
        .duration_seconds(3601)
        .send()
        .await
        .expect_err("chained sessions are capped at one hour");
    assert_eq!(support::code(&err), "ValidationError");
    let second = hop
        .assume_role()
        .role_arn(role_arn(PROD_A, REMEDIATION))
        .role_session_name("second-hop")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .expect("second hop");
    let me = sts_as(&em, &second).get_caller_identity().send().await.expect("GetCallerIdentity");
    assert_eq!(me.arn(), Some(format!("arn:aws:sts::{PROD_A}:assumed-role/{REMEDIATION}/second-hop").as_str()));
}

#[tokio::test]
async fn expired_session_is_rejected() {
    let em = support::demo().await;
    let out = assume_remediation(&em, PROD_A, "short-lived", Some(900)).await;
    let as_role = sts_as(&em, &out);
    as_role.get_caller_identity().send().await.expect("fresh session works");

    // Shortly before expiry it still works.
    advance_clock(&em, 850_000).await;
    as_role.get_caller_identity().send().await.expect("session still valid at 850 s");

    advance_clock(&em, 60_000).await;
    let err = as_role.get_caller_identity().send().await.expect_err("expired session");
    assert_eq!(support::code(&err), "ExpiredToken");
    let err = as_role
        .assume_role()
        .role_arn(role_arn(PROD_B, REMEDIATION))
        .role_session_name("orgsec")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .expect_err("expired session");
    assert_eq!(support::code(&err), "ExpiredToken");

    // Account administrators are unaffected, and a new session works again.
    sts(&em, ADMIN).get_caller_identity().send().await.expect("admin keys do not expire");
    let fresh = assume_remediation(&em, PROD_A, "short-lived", Some(900)).await;
    sts_as(&em, &fresh).get_caller_identity().send().await.expect("new session");
}

#[tokio::test]
async fn expired_session_after_advancing_past_duration() {
    let em = support::demo().await;
    let out = assume_remediation(&em, PROD_A, "orgsec", Some(900)).await;
    advance_clock(&em, 901_000).await;
    let err = sts_as(&em, &out).get_caller_identity().send().await.expect_err("expired");
    assert_eq!(support::code(&err), "ExpiredToken");
}
