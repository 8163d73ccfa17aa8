//! Organizations: the demo org's structure (root, OUs, accounts, parents, children), tags,
//! delegated administrators, trusted service access, creating OUs and accounts, moving accounts,
//! who may read and who may change, and malformed requests on the wire.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{ChildType, CreateAccountState, ParentType, Tag};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, MANAGEMENT, PROD_A, PROD_B, SANDBOX};

const ALL: [&str; 6] = [MANAGEMENT, ADMIN, PROD_A, PROD_B, DEV, SANDBOX];

fn org(em: &Emulator, account: &str) -> Client {
    Client::new(&support::config(em, account))
}

fn set<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    ids.into_iter().map(str::to_string).collect()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

async fn root_id(c: &Client) -> String {
    let out = c.list_roots().send().await.expect("ListRoots");
    out.roots()[0].id().expect("root id").to_string()
}

/// OU name -> id under the root.
async fn top_ous(c: &Client) -> BTreeMap<String, String> {
    let root = root_id(c).await;
    let out = c
        .list_organizational_units_for_parent()
        .parent_id(root)
        .send()
        .await
        .expect("ListOrganizationalUnitsForParent");
    out.organizational_units().iter().map(|o| (o.name().unwrap().to_string(), o.id().unwrap().to_string())).collect()
}

/// Every account id in the org, following NextToken with `page` accounts a page.
async fn all_account_ids(c: &Client, page: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let out = c.list_accounts().max_results(page).set_next_token(token).send().await.expect("ListAccounts");
        assert!(out.accounts().len() <= page as usize);
        ids.extend(out.accounts().iter().map(|a| a.id().unwrap().to_string()));
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    ids
}

async fn accounts_in(c: &Client, parent: &str) -> BTreeSet<String> {
    let out = c.list_accounts_for_parent().parent_id(parent).send().await.expect("ListAccountsForParent");
    out.accounts().iter().map(|a| a.id().unwrap().to_string()).collect()
}

async fn parent_of(c: &Client, child: &str) -> (String, ParentType) {
    let out = c.list_parents().child_id(child).send().await.expect("ListParents");
    assert_eq!(out.parents().len(), 1);
    let p = &out.parents()[0];
    (p.id().unwrap().to_string(), p.r#type().unwrap().clone())
}

async fn tags_of(c: &Client, id: &str) -> BTreeMap<String, String> {
    let out = c.list_tags_for_resource().resource_id(id).send().await.expect("ListTagsForResource");
    out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

async fn delegated_admins(c: &Client, principal: Option<&str>) -> BTreeSet<String> {
    let out = c
        .list_delegated_administrators()
        .set_service_principal(principal.map(str::to_string))
        .send()
        .await
        .expect("ListDelegatedAdministrators");
    out.delegated_administrators().iter().map(|a| a.id().unwrap().to_string()).collect()
}

#[tokio::test]
async fn describe_organization_from_members_and_management() {
    let em = support::demo().await;
    let mut ids = BTreeSet::new();
    for account in ALL {
        let out = org(&em, account).describe_organization().send().await.expect("DescribeOrganization");
        let o = out.organization().expect("organization");
        assert_eq!(o.master_account_id(), Some(MANAGEMENT));
        assert_eq!(o.master_account_email(), Some("aws-management@example.com"));
        assert_eq!(o.feature_set(), Some(&aws_sdk_organizations::types::OrganizationFeatureSet::All));
        let id = o.id().expect("org id");
        assert!(id.starts_with("o-"), "{id}");
        assert_eq!(o.arn(), Some(format!("arn:aws:organizations::{MANAGEMENT}:organization/{id}").as_str()));
        ids.insert(id.to_string());
    }
    assert_eq!(ids.len(), 1, "every member sees the same organization");
}

#[tokio::test]
async fn list_accounts_pages_through_all_six() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let ids = all_account_ids(&c, 2).await;
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(
        ids.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        ALL.into_iter().collect(),
        "no duplicates, none missing"
    );

    // One page of all of them, with names and emails from the scenario.
    let out = c.list_accounts().send().await.expect("ListAccounts");
    assert_eq!(out.accounts().len(), 6);
    assert!(out.next_token().is_none());
    let prod_web = out.accounts().iter().find(|a| a.id() == Some(PROD_A)).expect("prod-web");
    assert_eq!(prod_web.name(), Some("prod-web"));
    assert_eq!(prod_web.email(), Some("aws-prod-web@example.com"));
    assert_eq!(prod_web.status(), Some(&aws_sdk_organizations::types::AccountStatus::Active));

    // The SDK paginator agrees.
    let mut paged = Vec::new();
    let mut pages = c.list_accounts().max_results(4).into_paginator().send();
    while let Some(p) = pages.next().await {
        paged.extend(p.expect("page").accounts().iter().map(|a| a.id().unwrap().to_string()));
    }
    assert_eq!(paged, ids);
}

#[tokio::test]
async fn list_accounts_bad_paging_input_is_rejected() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let err = c.list_accounts().next_token("not-a-token").send().await.expect_err("garbage token");
    assert_eq!(support::code(&err), "InvalidInputException");
    let err = c.list_accounts().max_results(0).send().await.expect_err("zero page size");
    assert_eq!(support::code(&err), "InvalidInputException");
}

#[tokio::test]
async fn list_accounts_from_a_plain_member_is_denied() {
    let em = support::demo().await;
    for account in [PROD_A, PROD_B, DEV, SANDBOX] {
        let err = org(&em, account).list_accounts().send().await.expect_err("member cannot list");
        assert_eq!(support::code(&err), "AccessDeniedException", "{account}");
    }
}

#[tokio::test]
async fn list_accounts_from_the_delegated_admin_is_allowed() {
    let em = support::demo().await;
    let ids = all_account_ids(&org(&em, ADMIN), 20).await;
    assert_eq!(ids.iter().map(String::as_str).collect::<BTreeSet<_>>(), ALL.into_iter().collect());
}

#[tokio::test]
async fn list_roots() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let org_id = c.describe_organization().send().await.unwrap().organization().unwrap().id().unwrap().to_string();
    let out = c.list_roots().send().await.expect("ListRoots");
    assert_eq!(out.roots().len(), 1);
    let root = &out.roots()[0];
    let id = root.id().unwrap();
    assert!(id.starts_with("r-"), "{id}");
    assert_eq!(root.name(), Some("Root"));
    assert_eq!(root.arn(), Some(format!("arn:aws:organizations::{MANAGEMENT}:root/{org_id}/{id}").as_str()));
    // The delegated admin reads the same root.
    assert_eq!(root_id(&org(&em, ADMIN)).await, id);
}

#[tokio::test]
async fn list_organizational_units_for_root() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let root = root_id(&c).await;
    let ous = top_ous(&c).await;
    assert_eq!(
        ous.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        set(["Prod", "Dev", "Sandbox"]).iter().map(String::as_str).collect()
    );
    for id in ous.values() {
        assert!(id.starts_with(&format!("ou-{}-", &root[2..])), "{id}");
        // No nested OUs in the demo.
        let out = c.list_organizational_units_for_parent().parent_id(id).send().await.expect("children OUs");
        assert!(out.organizational_units().is_empty());
    }
    let err =
        c.list_organizational_units_for_parent().parent_id("ou-zzzz-nothere").send().await.expect_err("unknown parent");
    assert_eq!(support::code(&err), "ParentNotFoundException");
}

#[tokio::test]
async fn list_accounts_for_parent() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let ous = top_ous(&c).await;
    assert_eq!(accounts_in(&c, &ous["Prod"]).await, set([ADMIN, PROD_A, PROD_B]));
    assert_eq!(accounts_in(&c, &ous["Dev"]).await, set([DEV]));
    assert_eq!(accounts_in(&c, &ous["Sandbox"]).await, set([SANDBOX]));
    assert_eq!(accounts_in(&c, &root_id(&c).await).await, set([MANAGEMENT]));
    let err = c.list_accounts_for_parent().parent_id("ou-zzzz-nothere").send().await.expect_err("unknown parent");
    assert_eq!(support::code(&err), "ParentNotFoundException");
}

#[tokio::test]
async fn describe_organizational_unit() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let org_id = c.describe_organization().send().await.unwrap().organization().unwrap().id().unwrap().to_string();
    let ous = top_ous(&c).await;
    let prod = &ous["Prod"];
    let out =
        c.describe_organizational_unit().organizational_unit_id(prod).send().await.expect("DescribeOrganizationalUnit");
    let ou = out.organizational_unit().expect("ou");
    assert_eq!(ou.id(), Some(prod.as_str()));
    assert_eq!(ou.name(), Some("Prod"));
    assert_eq!(ou.arn(), Some(format!("arn:aws:organizations::{MANAGEMENT}:ou/{org_id}/{prod}").as_str()));
    let err = c
        .describe_organizational_unit()
        .organizational_unit_id("ou-zzzz-nothere")
        .send()
        .await
        .expect_err("unknown OU");
    assert_eq!(support::code(&err), "OrganizationalUnitNotFoundException");
}

#[tokio::test]
async fn describe_account() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let out = c.describe_account().account_id(PROD_B).send().await.expect("DescribeAccount");
    let a = out.account().expect("account");
    assert_eq!(a.id(), Some(PROD_B));
    assert_eq!(a.name(), Some("prod-data"));
    assert_eq!(a.email(), Some("aws-prod-data@example.com"));
    assert_eq!(a.joined_method(), Some(&aws_sdk_organizations::types::AccountJoinedMethod::Created));
    assert!(a.arn().unwrap().ends_with(&format!("/{PROD_B}")), "{:?}", a.arn());
    let mgmt = c.describe_account().account_id(MANAGEMENT).send().await.expect("DescribeAccount management");
    assert_eq!(
        mgmt.account().unwrap().joined_method(),
        Some(&aws_sdk_organizations::types::AccountJoinedMethod::Invited)
    );

    // The delegated admin may read too.
    let out = org(&em, ADMIN)
        .describe_account()
        .account_id(SANDBOX)
        .send()
        .await
        .expect("DescribeAccount as delegated admin");
    assert_eq!(out.account().unwrap().name(), Some("sandbox"));

    let err = c.describe_account().account_id("999999999999").send().await.expect_err("unknown account");
    assert_eq!(support::code(&err), "AccountNotFoundException");
}

#[tokio::test]
async fn list_parents() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let root = root_id(&c).await;
    let ous = top_ous(&c).await;
    assert_eq!(parent_of(&c, PROD_A).await, (ous["Prod"].clone(), ParentType::OrganizationalUnit));
    assert_eq!(parent_of(&c, ADMIN).await, (ous["Prod"].clone(), ParentType::OrganizationalUnit));
    assert_eq!(parent_of(&c, DEV).await, (ous["Dev"].clone(), ParentType::OrganizationalUnit));
    assert_eq!(parent_of(&c, SANDBOX).await, (ous["Sandbox"].clone(), ParentType::OrganizationalUnit));
    assert_eq!(parent_of(&c, MANAGEMENT).await, (root.clone(), ParentType::Root));
    for ou in ous.values() {
        assert_eq!(parent_of(&c, ou).await, (root.clone(), ParentType::Root));
    }
    for unknown in ["999999999999", "ou-zzzz-nothere"] {
        let err = c.list_parents().child_id(unknown).send().await.expect_err("unknown child");
        assert_eq!(support::code(&err), "ChildNotFoundException", "{unknown}");
    }
}

#[tokio::test]
async fn list_children() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let root = root_id(&c).await;
    let ous = top_ous(&c).await;
    let children = |parent: String, kind: ChildType| {
        let c = c.clone();
        async move {
            let out = c.list_children().parent_id(parent).child_type(kind.clone()).send().await.expect("ListChildren");
            assert!(out.children().iter().all(|ch| ch.r#type() == Some(&kind)));
            out.children().iter().map(|ch| ch.id().unwrap().to_string()).collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(children(root.clone(), ChildType::OrganizationalUnit).await, ous.values().cloned().collect());
    assert_eq!(children(root.clone(), ChildType::Account).await, set([MANAGEMENT]));
    assert_eq!(children(ous["Prod"].clone(), ChildType::Account).await, set([ADMIN, PROD_A, PROD_B]));
    assert_eq!(children(ous["Sandbox"].clone(), ChildType::Account).await, set([SANDBOX]));
    assert!(children(ous["Dev"].clone(), ChildType::OrganizationalUnit).await.is_empty());

    // Paging over children.
    let first = c
        .list_children()
        .parent_id(&ous["Prod"])
        .child_type(ChildType::Account)
        .max_results(2)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first.children().len(), 2);
    let second = c
        .list_children()
        .parent_id(&ous["Prod"])
        .child_type(ChildType::Account)
        .max_results(2)
        .next_token(first.next_token().expect("more"))
        .send()
        .await
        .expect("page 2");
    assert_eq!(second.children().len(), 1);
    assert!(second.next_token().is_none());

    let err = c
        .list_children()
        .parent_id("ou-zzzz-nothere")
        .child_type(ChildType::Account)
        .send()
        .await
        .expect_err("unknown parent");
    assert_eq!(support::code(&err), "ParentNotFoundException");
}

#[tokio::test]
async fn list_tags_for_resource_shows_the_demo_tags() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let tags = tags_of(&c, PROD_A).await;
    assert_eq!(tags.get("orgsec:criticality").map(String::as_str), Some("4"));
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(tags_of(&c, ADMIN).await.get("orgsec:criticality").map(String::as_str), Some("5"));
    assert!(tags_of(&c, MANAGEMENT).await.is_empty());
    // The delegated admin sees the same tags.
    assert_eq!(tags_of(&org(&em, ADMIN), PROD_A).await, tags);
    let err = c.list_tags_for_resource().resource_id("999999999999").send().await.expect_err("unknown target");
    assert_eq!(support::code(&err), "TargetNotFoundException");
}

#[tokio::test]
async fn tag_then_untag_round_trip() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    c.tag_resource()
        .resource_id(DEV)
        .tags(tag("owner", "alice"))
        .tags(tag("orgsec:criticality", "3"))
        .send()
        .await
        .expect("TagResource");
    let tags = tags_of(&c, DEV).await;
    assert_eq!(tags.get("owner").map(String::as_str), Some("alice"));
    assert_eq!(tags.get("orgsec:criticality").map(String::as_str), Some("3"), "overwritten");
    assert_eq!(tags.get("team").map(String::as_str), Some("web"), "untouched");

    c.untag_resource().resource_id(DEV).tag_keys("owner").tag_keys("not-there").send().await.expect("UntagResource");
    let tags = tags_of(&c, DEV).await;
    assert!(!tags.contains_key("owner"));
    assert_eq!(tags.get("orgsec:criticality").map(String::as_str), Some("3"));
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));

    let err =
        c.tag_resource().resource_id("999999999999").tags(tag("a", "b")).send().await.expect_err("unknown target");
    assert_eq!(support::code(&err), "TargetNotFoundException");
}

#[tokio::test]
async fn list_delegated_administrators_includes_the_security_account() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    assert_eq!(delegated_admins(&c, None).await, set([ADMIN]));
    assert_eq!(delegated_admins(&c, Some("securityhub.amazonaws.com")).await, set([ADMIN]));
    assert_eq!(delegated_admins(&c, Some("guardduty.amazonaws.com")).await, set([ADMIN]));
    assert!(delegated_admins(&c, Some("ec2.amazonaws.com")).await.is_empty());
    // The delegated admin can read the list too.
    assert_eq!(delegated_admins(&org(&em, ADMIN), None).await, set([ADMIN]));
}

#[tokio::test]
async fn register_and_deregister_delegated_administrator() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let sp = "inspector2.amazonaws.com";
    // Before: a plain member cannot read the org.
    let err = org(&em, DEV).list_accounts().send().await.expect_err("plain member");
    assert_eq!(support::code(&err), "AccessDeniedException");

    c.register_delegated_administrator().account_id(DEV).service_principal(sp).send().await.expect("Register");
    assert_eq!(delegated_admins(&c, Some(sp)).await, set([DEV]));
    assert_eq!(delegated_admins(&c, None).await, set([ADMIN, DEV]));
    // As a delegated admin it may read the org, but still not change it.
    assert_eq!(all_account_ids(&org(&em, DEV), 20).await.len(), 6);
    let err = org(&em, DEV)
        .tag_resource()
        .resource_id(DEV)
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("delegated admins cannot write");
    assert_eq!(support::code(&err), "AccessDeniedException");

    let err =
        c.register_delegated_administrator().account_id(DEV).service_principal(sp).send().await.expect_err("twice");
    assert_eq!(support::code(&err), "AccountAlreadyRegisteredException");

    c.deregister_delegated_administrator().account_id(DEV).service_principal(sp).send().await.expect("Deregister");
    assert!(delegated_admins(&c, Some(sp)).await.is_empty());
    assert_eq!(delegated_admins(&c, None).await, set([ADMIN]));
    let err = org(&em, DEV).list_accounts().send().await.expect_err("no longer delegated");
    assert_eq!(support::code(&err), "AccessDeniedException");

    let err = c
        .deregister_delegated_administrator()
        .account_id(DEV)
        .service_principal(sp)
        .send()
        .await
        .expect_err("not registered");
    assert_eq!(support::code(&err), "AccountNotRegisteredException");
}

#[tokio::test]
async fn register_delegated_administrator_errors() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let err = c
        .register_delegated_administrator()
        .account_id(MANAGEMENT)
        .service_principal("securityhub.amazonaws.com")
        .send()
        .await
        .expect_err("management account");
    assert_eq!(support::code(&err), "ConstraintViolationException");
    let err = c
        .register_delegated_administrator()
        .account_id(ADMIN)
        .service_principal("securityhub.amazonaws.com")
        .send()
        .await
        .expect_err("already the demo's delegated admin");
    assert_eq!(support::code(&err), "AccountAlreadyRegisteredException");
    let err = c
        .register_delegated_administrator()
        .account_id("999999999999")
        .service_principal("securityhub.amazonaws.com")
        .send()
        .await
        .expect_err("unknown account");
    assert_eq!(support::code(&err), "AccountNotFoundException");
    // Only the management account registers.
    let err = org(&em, ADMIN)
        .register_delegated_administrator()
        .account_id(PROD_A)
        .service_principal("securityhub.amazonaws.com")
        .send()
        .await
        .expect_err("delegated admin cannot register");
    assert_eq!(support::code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn enable_aws_service_access_then_list() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let enabled = |c: Client| async move {
        let out =
            c.list_aws_service_access_for_organization().send().await.expect("ListAWSServiceAccessForOrganization");
        out.enabled_service_principals()
            .iter()
            .map(|p| p.service_principal().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let before = enabled(c.clone()).await;
    for sp in [
        "securityhub.amazonaws.com",
        "guardduty.amazonaws.com",
        "config.amazonaws.com",
        "access-analyzer.amazonaws.com",
    ] {
        assert!(before.contains(sp), "{sp} in {before:?}");
    }
    assert!(!before.contains("inspector2.amazonaws.com"));

    c.enable_aws_service_access()
        .service_principal("inspector2.amazonaws.com")
        .send()
        .await
        .expect("EnableAWSServiceAccess");
    // Enabling twice is harmless.
    c.enable_aws_service_access()
        .service_principal("inspector2.amazonaws.com")
        .send()
        .await
        .expect("EnableAWSServiceAccess again");
    let after = enabled(c.clone()).await;
    assert!(after.contains("inspector2.amazonaws.com"));
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(enabled(org(&em, ADMIN)).await, after, "the delegated admin reads the same list");

    let err = org(&em, ADMIN)
        .enable_aws_service_access()
        .service_principal("macie.amazonaws.com")
        .send()
        .await
        .expect_err("not management");
    assert_eq!(support::code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn create_organizational_unit() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let root = root_id(&c).await;
    let out =
        c.create_organizational_unit().parent_id(&root).name("Staging").send().await.expect("CreateOrganizationalUnit");
    let ou = out.organizational_unit().expect("ou");
    let id = ou.id().unwrap().to_string();
    assert_eq!(ou.name(), Some("Staging"));
    assert!(id.starts_with(&format!("ou-{}-", &root[2..])), "{id}");

    let ous = top_ous(&c).await;
    assert_eq!(ous.len(), 4);
    assert_eq!(ous.get("Staging"), Some(&id));
    assert_eq!(parent_of(&c, &id).await, (root.clone(), ParentType::Root));
    assert!(accounts_in(&c, &id).await.is_empty());

    let err = c.create_organizational_unit().parent_id(&root).name("Staging").send().await.expect_err("duplicate");
    assert_eq!(support::code(&err), "DuplicateOrganizationalUnitException");
    let err =
        c.create_organizational_unit().parent_id(&root).name("Prod").send().await.expect_err("duplicate of a demo OU");
    assert_eq!(support::code(&err), "DuplicateOrganizationalUnitException");

    // The same name under another parent is fine: a nested OU.
    let nested = c.create_organizational_unit().parent_id(&id).name("Prod").send().await.expect("nested OU");
    let nested_id = nested.organizational_unit().unwrap().id().unwrap().to_string();
    assert_eq!(parent_of(&c, &nested_id).await, (id.clone(), ParentType::OrganizationalUnit));
    let under = c.list_organizational_units_for_parent().parent_id(&id).send().await.unwrap();
    assert_eq!(under.organizational_units().len(), 1);

    let err =
        c.create_organizational_unit().parent_id("ou-zzzz-nothere").name("X").send().await.expect_err("unknown parent");
    assert_eq!(support::code(&err), "ParentNotFoundException");
    let err = org(&em, ADMIN)
        .create_organizational_unit()
        .parent_id(&root)
        .name("Rogue")
        .send()
        .await
        .expect_err("not management");
    assert_eq!(support::code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn create_account_then_enter_it() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let out = c
        .create_account()
        .email("aws-new@example.com")
        .account_name("new-workload")
        .tags(tag("orgsec:criticality", "3"))
        .send()
        .await
        .expect("CreateAccount");
    let status = out.create_account_status().expect("status");
    assert_eq!(status.state(), Some(&CreateAccountState::Succeeded));
    let request_id = status.id().expect("request id").to_string();
    let account = status.account_id().expect("account id").to_string();
    assert_eq!(account.len(), 12);
    assert!(account.bytes().all(|b| b.is_ascii_digit()), "{account}");
    assert!(!ALL.contains(&account.as_str()));

    let described = c
        .describe_create_account_status()
        .create_account_request_id(&request_id)
        .send()
        .await
        .expect("DescribeCreateAccountStatus");
    let s = described.create_account_status().expect("status");
    assert_eq!(s.state(), Some(&CreateAccountState::Succeeded));
    assert_eq!(s.account_id(), Some(account.as_str()));
    assert_eq!(s.account_name(), Some("new-workload"));

    // It is in the org, in the root, with its tags.
    let ids = all_account_ids(&c, 2).await;
    assert_eq!(ids.len(), 7);
    assert!(ids.contains(&account));
    let a = c.describe_account().account_id(&account).send().await.expect("DescribeAccount");
    assert_eq!(a.account().unwrap().email(), Some("aws-new@example.com"));
    assert_eq!(parent_of(&c, &account).await, (root_id(&c).await, ParentType::Root));
    assert_eq!(tags_of(&c, &account).await.get("orgsec:criticality").map(String::as_str), Some("3"));

    // The management account enters it through OrganizationAccountAccessRole.
    let conf = support::assume(&em, MANAGEMENT, &account, "OrganizationAccountAccessRole", None).await;
    let me = aws_sdk_sts::Client::new(&conf).get_caller_identity().send().await.expect("GetCallerIdentity");
    assert_eq!(me.account(), Some(account.as_str()));
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::{account}:assumed-role/OrganizationAccountAccessRole/orgsec-test").as_str())
    );
    // Nobody else is trusted.
    let err = aws_sdk_sts::Client::new(&support::config(&em, ADMIN))
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
        .role_session_name("orgsec")
        .send()
        .await
        .expect_err("only the management account is trusted");
    assert_eq!(support::code(&err), "AccessDenied");
}

#[tokio::test]
async fn create_account_errors() {
    let em = support::demo().await;
    let err = org(&em, MANAGEMENT)
        .create_account()
        .email("not-an-email")
        .account_name("x")
        .send()
        .await
        .expect_err("bad email");
    assert_eq!(support::code(&err), "InvalidInputException");
    let err = org(&em, ADMIN)
        .create_account()
        .email("a@example.com")
        .account_name("x")
        .send()
        .await
        .expect_err("not management");
    assert_eq!(support::code(&err), "AccessDeniedException");
    for unknown in ["car-nothere", "car-0000000000000000000000999999999999", "no-prefix", "car-ééééééa"] {
        let err = org(&em, MANAGEMENT)
            .describe_create_account_status()
            .create_account_request_id(unknown)
            .send()
            .await
            .expect_err("unknown request");
        assert_eq!(support::code(&err), "CreateAccountStatusNotFoundException", "{unknown}");
    }
}

#[tokio::test]
async fn move_account_between_ous() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    let ous = top_ous(&c).await;
    c.move_account()
        .account_id(SANDBOX)
        .source_parent_id(&ous["Sandbox"])
        .destination_parent_id(&ous["Dev"])
        .send()
        .await
        .expect("MoveAccount");
    assert_eq!(parent_of(&c, SANDBOX).await, (ous["Dev"].clone(), ParentType::OrganizationalUnit));
    assert_eq!(accounts_in(&c, &ous["Dev"]).await, set([DEV, SANDBOX]));
    assert!(accounts_in(&c, &ous["Sandbox"]).await.is_empty());

    // Back to the root.
    let root = root_id(&c).await;
    c.move_account()
        .account_id(SANDBOX)
        .source_parent_id(&ous["Dev"])
        .destination_parent_id(&root)
        .send()
        .await
        .expect("MoveAccount to root");
    assert_eq!(parent_of(&c, SANDBOX).await, (root.clone(), ParentType::Root));
    assert_eq!(accounts_in(&c, &root).await, set([MANAGEMENT, SANDBOX]));

    // A source the account is not in.
    let err = c
        .move_account()
        .account_id(DEV)
        .source_parent_id(&ous["Prod"])
        .destination_parent_id(&ous["Sandbox"])
        .send()
        .await
        .expect_err("wrong source");
    assert_eq!(support::code(&err), "SourceParentNotFoundException");
    assert_eq!(parent_of(&c, DEV).await, (ous["Dev"].clone(), ParentType::OrganizationalUnit), "unmoved");

    let err = c
        .move_account()
        .account_id(DEV)
        .source_parent_id(&ous["Dev"])
        .destination_parent_id("ou-zzzz-nothere")
        .send()
        .await
        .expect_err("unknown destination");
    assert_eq!(support::code(&err), "ParentNotFoundException");
    let err = c
        .move_account()
        .account_id("999999999999")
        .source_parent_id(&ous["Dev"])
        .destination_parent_id(&ous["Prod"])
        .send()
        .await
        .expect_err("unknown account");
    assert_eq!(support::code(&err), "AccountNotFoundException");
    let err = org(&em, ADMIN)
        .move_account()
        .account_id(DEV)
        .source_parent_id(&ous["Dev"])
        .destination_parent_id(&ous["Prod"])
        .send()
        .await
        .expect_err("not management");
    assert_eq!(support::code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn non_management_accounts_cannot_tag() {
    let em = support::demo().await;
    for account in [ADMIN, PROD_A, SANDBOX] {
        let err = org(&em, account)
            .tag_resource()
            .resource_id(PROD_A)
            .tags(tag("orgsec:criticality", "1"))
            .send()
            .await
            .expect_err("not management");
        assert_eq!(support::code(&err), "AccessDeniedException", "{account}");
        let err = org(&em, account)
            .untag_resource()
            .resource_id(PROD_A)
            .tag_keys("team")
            .send()
            .await
            .expect_err("not management");
        assert_eq!(support::code(&err), "AccessDeniedException", "{account}");
    }
    let tags = tags_of(&org(&em, MANAGEMENT), PROD_A).await;
    assert_eq!(tags.get("orgsec:criticality").map(String::as_str), Some("4"), "unchanged");
    assert_eq!(tags.get("team").map(String::as_str), Some("web"), "unchanged");
}

#[tokio::test]
async fn malformed_json_is_a_serialization_exception() {
    let em = support::demo().await;
    let auth = support::auth(MANAGEMENT, "organizations");
    let headers = [
        ("x-amz-target", "AWSOrganizationsV20161128.ListRoots"),
        ("content-type", "application/x-amz-json-1.1"),
        ("authorization", auth.as_str()),
    ];
    for body in [&b"{not json"[..], b"[1, 2", b"\"a string\"", b"[]"] {
        let (status, text) = support::raw(&em.url(), "POST", "/", &headers, body).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("SerializationException"), "{text}");
    }
    // An empty body is an empty input.
    let (status, text) = support::raw(&em.url(), "POST", "/", &headers, b"").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"Roots\""), "{text}");
}

#[tokio::test]
async fn unknown_target_is_an_unknown_operation() {
    let em = support::demo().await;
    let auth = support::auth(MANAGEMENT, "organizations");
    for target in ["AWSOrganizationsV20161128.FrobnicateAccounts", "SomethingElse.ListRoots"] {
        let headers = [
            ("x-amz-target", target),
            ("content-type", "application/x-amz-json-1.1"),
            ("authorization", auth.as_str()),
        ];
        let (status, text) = support::raw(&em.url(), "POST", "/", &headers, b"{}").await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("UnknownOperationException"), "{text}");
    }
}

#[tokio::test]
async fn remove_account_from_organization_makes_it_standalone() {
    let em = support::demo().await;
    let c = org(&em, MANAGEMENT);
    for (account, code) in [
        (MANAGEMENT, "MasterCannotLeaveOrganizationException"),
        (ADMIN, "ConstraintViolationException"),
        ("999999999999", "AccountNotFoundException"),
    ] {
        let err = c.remove_account_from_organization().account_id(account).send().await.expect_err(account);
        assert_eq!(support::code(&err), code, "{account}");
    }
    let err = org(&em, ADMIN)
        .remove_account_from_organization()
        .account_id(SANDBOX)
        .send()
        .await
        .expect_err("only the management account");
    assert_eq!(support::code(&err), "AccessDeniedException");

    c.remove_account_from_organization().account_id(SANDBOX).send().await.expect("RemoveAccountFromOrganization");
    assert!(!all_account_ids(&c, 20).await.contains(&SANDBOX.to_string()));
    let err = c.describe_account().account_id(SANDBOX).send().await.expect_err("gone from the organization");
    assert_eq!(support::code(&err), "AccountNotFoundException");
    let err = c.remove_account_from_organization().account_id(SANDBOX).send().await.expect_err("already out");
    assert_eq!(support::code(&err), "AccountNotFoundException");

    // Outside the organization, the delegated admin's CreateMembers no longer associates it: it
    // is a member by invitation, `Created` until invited.
    let hub = aws_sdk_securityhub::Client::new(&support::config(&em, ADMIN));
    let details = aws_sdk_securityhub::types::AccountDetails::builder().account_id(SANDBOX).build();
    hub.create_members().account_details(details).send().await.expect("CreateMembers");
    let out = hub.get_members().account_ids(SANDBOX).send().await.expect("GetMembers");
    assert_eq!(out.members().first().and_then(|m| m.member_status()), Some("Created"));
}
