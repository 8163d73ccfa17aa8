//! S3 and S3 Control through aws-sdk-s3 / aws-sdk-s3control: bucket lifecycle, the settings that
//! make a bucket public, both addressing styles, and account-level Block Public Access.

use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration, Tag, Tagging,
};
use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, DEV, EXTERNAL_ID, PROD_A, PROD_B};

const PUBLIC_BUCKET: &str = "orgsec-demo-public-555555555555";

fn all_on() -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

fn control_all_on() -> aws_sdk_s3control::types::PublicAccessBlockConfiguration {
    aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

fn public_policy(bucket: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]})
    .to_string()
}

async fn is_public(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    let out = s3.get_bucket_policy_status().bucket(bucket).send().await.expect("GetBucketPolicyStatus");
    out.policy_status().and_then(|p| p.is_public()).expect("IsPublic")
}

async fn remediation(em: &Emulator, account: &str) -> aws_config::SdkConfig {
    support::assume(em, ADMIN, account, "OrgSecRemediationRole", Some(EXTERNAL_ID)).await
}

#[tokio::test]
async fn bucket_lifecycle() {
    let em = support::demo().await;
    let s3 = support::s3(&support::config(&em, PROD_A));

    let created = s3.create_bucket().bucket("prod-a-logs").send().await.expect("CreateBucket");
    assert_eq!(created.location(), Some("/prod-a-logs"));
    s3.create_bucket()
        .bucket("prod-a-eu")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::EuWest1).build(),
        )
        .send()
        .await
        .expect("CreateBucket in eu-west-1");

    // Names are global: taken by me, taken by someone else, or not a name at all.
    let e = s3.create_bucket().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "BucketAlreadyOwnedByYou");
    let other = support::s3(&support::config(&em, PROD_B));
    let e = other.create_bucket().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "BucketAlreadyExists");
    let e = s3.create_bucket().bucket("Not_A_Bucket").send().await.unwrap_err();
    assert_eq!(support::code(&e), "InvalidBucketName");

    let listed = s3.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<(&str, &str)> = listed
        .buckets()
        .iter()
        .map(|b| (b.name().unwrap_or_default(), b.bucket_region().unwrap_or_default()))
        .collect();
    assert_eq!(names, [("prod-a-eu", "eu-west-1"), ("prod-a-logs", "us-east-1")]);
    assert!(listed.buckets()[0].creation_date().is_some());
    assert!(listed.owner().and_then(|o| o.id()).is_some_and(|id| id.len() == 64));
    let page = s3.list_buckets().max_buckets(1).send().await.expect("ListBuckets page");
    assert_eq!(page.buckets().len(), 1);
    let token = page.continuation_token().expect("continuation token").to_string();
    let rest = s3.list_buckets().max_buckets(1).continuation_token(token).send().await.expect("page 2");
    assert_eq!(rest.buckets()[0].name(), Some("prod-a-logs"));
    assert!(rest.continuation_token().is_none());
    // Other accounts do not see my buckets.
    assert!(other.list_buckets().send().await.expect("ListBuckets").buckets().is_empty());

    let head = s3.head_bucket().bucket("prod-a-eu").send().await.expect("HeadBucket");
    assert_eq!(head.bucket_region(), Some("eu-west-1"));
    let loc = s3.get_bucket_location().bucket("prod-a-eu").send().await.expect("GetBucketLocation");
    assert_eq!(loc.location_constraint(), Some(&BucketLocationConstraint::EuWest1));
    let loc = s3.get_bucket_location().bucket("prod-a-logs").send().await.expect("GetBucketLocation");
    assert!(loc.location_constraint().is_none_or(|c| c.as_str().is_empty()));

    // New buckets block public access.
    let bpa = s3.get_public_access_block().bucket("prod-a-logs").send().await.expect("GetPublicAccessBlock");
    assert_eq!(bpa.public_access_block_configuration(), Some(&all_on()));

    // Tags.
    let e = s3.get_bucket_tagging().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchTagSet");
    s3.put_bucket_tagging()
        .bucket("prod-a-logs")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("team").value("web").build().expect("tag"))
                .tag_set(Tag::builder().key("cost & centre").value("").build().expect("tag"))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("PutBucketTagging");
    let tags = s3.get_bucket_tagging().bucket("prod-a-logs").send().await.expect("GetBucketTagging");
    let tags: Vec<(&str, &str)> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("cost & centre", ""), ("team", "web")]);
    s3.delete_bucket_tagging().bucket("prod-a-logs").send().await.expect("DeleteBucketTagging");
    let e = s3.get_bucket_tagging().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchTagSet");

    // A private policy round-trips; its status is not public.
    let e = s3.get_bucket_policy().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucketPolicy");
    let private = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::prod-a-logs/*"}]})
    .to_string();
    s3.put_bucket_policy().bucket("prod-a-logs").policy(&private).send().await.expect("PutBucketPolicy");
    let got = s3.get_bucket_policy().bucket("prod-a-logs").send().await.expect("GetBucketPolicy");
    assert_eq!(got.policy(), Some(private.as_str()));
    assert!(!is_public(&s3, "prod-a-logs").await);
    let e = s3.put_bucket_policy().bucket("prod-a-logs").policy("{\"no\": \"statement\"}").send().await.unwrap_err();
    assert_eq!(support::code(&e), "MalformedPolicy");
    // Block Public Access refuses a public policy.
    let e = s3.put_bucket_policy().bucket("prod-a-logs").policy(public_policy("prod-a-logs")).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");
    s3.delete_bucket_policy().bucket("prod-a-logs").send().await.expect("DeleteBucketPolicy");
    let e = s3.get_bucket_policy_status().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucketPolicy");

    // Someone else's bucket is off limits.
    let e = other.get_bucket_location().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");

    s3.delete_bucket().bucket("prod-a-logs").send().await.expect("DeleteBucket");
    let e = s3.head_bucket().bucket("prod-a-logs").send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|e| e.is_not_found()), "{e:?}");
    let e = s3.get_bucket_location().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucket");
    let e = s3.delete_bucket().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucket");
    let e = s3.get_public_access_block().bucket("prod-a-logs").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchBucket");
}

#[tokio::test]
async fn the_public_bucket_turns_private_with_bucket_block_public_access() {
    let em = support::demo().await;
    let owner = support::s3(&support::config(&em, DEV));
    assert!(is_public(&owner, PUBLIC_BUCKET).await);
    let e = owner.get_public_access_block().bucket(PUBLIC_BUCKET).send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchPublicAccessBlockConfiguration");

    // The remediation role may block public access on the bucket.
    let s3 = support::s3(&remediation(&em, DEV).await);
    s3.put_public_access_block()
        .bucket(PUBLIC_BUCKET)
        .public_access_block_configuration(all_on())
        .send()
        .await
        .expect("PutPublicAccessBlock");
    assert!(!is_public(&s3, PUBLIC_BUCKET).await);
    let got = s3.get_public_access_block().bucket(PUBLIC_BUCKET).send().await.expect("GetPublicAccessBlock");
    assert_eq!(got.public_access_block_configuration(), Some(&all_on()));

    // ...but not create or delete buckets.
    let e = s3.create_bucket().bucket("remediation-should-not-create").send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");
    let e = s3.delete_bucket().bucket(PUBLIC_BUCKET).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");

    // Removing the bucket's setting makes it public again.
    owner.delete_public_access_block().bucket(PUBLIC_BUCKET).send().await.expect("DeletePublicAccessBlock");
    assert!(is_public(&owner, PUBLIC_BUCKET).await);
}

#[tokio::test]
async fn canned_acls_and_block_public_access() {
    let em = support::demo().await;
    let s3 = support::s3(&support::config(&em, DEV));
    s3.create_bucket().bucket("dev-acl-test").send().await.expect("CreateBucket");

    // Block Public Access is on for new buckets: a public ACL is refused.
    let e = s3.put_bucket_acl().bucket("dev-acl-test").acl(BucketCannedAcl::PublicRead).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");

    s3.delete_public_access_block().bucket("dev-acl-test").send().await.expect("DeletePublicAccessBlock");
    let e = s3.get_public_access_block().bucket("dev-acl-test").send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchPublicAccessBlockConfiguration");
    s3.put_bucket_acl().bucket("dev-acl-test").acl(BucketCannedAcl::PublicRead).send().await.expect("PutBucketAcl");
    let acl = s3.get_bucket_acl().bucket("dev-acl-test").send().await.expect("GetBucketAcl");
    let all_users = acl.grants().iter().any(|g| {
        g.grantee().and_then(|g| g.uri()) == Some("http://acs.amazonaws.com/groups/global/AllUsers")
            && g.permission() == Some(&aws_sdk_s3::types::Permission::Read)
    });
    assert!(all_users, "{acl:?}");
    assert!(acl.owner().and_then(|o| o.id()).is_some());

    s3.put_bucket_acl()
        .bucket("dev-acl-test")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("PutBucketAcl private");
    let acl = s3.get_bucket_acl().bucket("dev-acl-test").send().await.expect("GetBucketAcl");
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(acl.grants()[0].permission(), Some(&aws_sdk_s3::types::Permission::FullControl));
}

#[tokio::test]
async fn malformed_xml_is_rejected() {
    let em = support::demo().await;
    let auth = support::auth(DEV, "s3");
    let path = format!("/{PUBLIC_BUCKET}?publicAccessBlock");
    let (status, body) = support::raw(
        &em.url(),
        "PUT",
        &path,
        &[("authorization", auth.as_str()), ("content-type", "application/xml")],
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>MalformedXML</Code>"), "{body}");
    let (status, body) = support::raw(
        &em.url(),
        "PUT",
        &path,
        &[("authorization", auth.as_str())],
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls></PublicAccessBlockConfiguration>",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>MalformedXML</Code>"), "{body}");

    // Tagging and CreateBucket bodies too.
    let (status, body) = support::raw(
        &em.url(),
        "PUT",
        &format!("/{PUBLIC_BUCKET}?tagging"),
        &[("authorization", auth.as_str())],
        b"<Tagging><TagSet>",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MalformedXML"), "{body}");
    let (status, body) =
        support::raw(&em.url(), "PUT", "/fresh-bucket-name", &[("authorization", auth.as_str())], b"<<>>").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MalformedXML"), "{body}");

    // Nothing changed.
    let s3 = support::s3(&support::config(&em, DEV));
    assert!(is_public(&s3, PUBLIC_BUCKET).await);
}

#[tokio::test]
async fn virtual_host_style_addressing() {
    let em = support::demo().await;
    let auth = support::auth(DEV, "s3");
    let host = format!("{PUBLIC_BUCKET}.{}", em.addr());
    let headers = [("authorization", auth.as_str()), ("host", host.as_str())];

    let (status, body) = support::raw(&em.url(), "GET", "/?policyStatus", &headers, b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<IsPublic>true</IsPublic>"), "{body}");
    assert!(body.contains("http://s3.amazonaws.com/doc/2006-03-01/"), "{body}");

    let (status, body) = support::raw(&em.url(), "GET", "/?location", &headers, b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<LocationConstraint"), "{body}");

    let bpa = b"<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>";
    let (status, body) = support::raw(&em.url(), "PUT", "/?publicAccessBlock", &headers, bpa).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = support::raw(&em.url(), "GET", "/?policyStatus", &headers, b"").await;
    assert!(body.contains("<IsPublic>false</IsPublic>"), "{body}");

    // The same change is visible path-style through the SDK.
    let s3 = support::s3(&support::config(&em, DEV));
    assert!(!is_public(&s3, PUBLIC_BUCKET).await);

    // A virtual-host bucket that does not exist.
    let missing = format!("no-such-bucket-here.{}", em.addr());
    let (status, body) = support::raw(
        &em.url(),
        "GET",
        "/?location",
        &[("authorization", auth.as_str()), ("host", missing.as_str())],
        b"",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("<Code>NoSuchBucket</Code>"), "{body}");
}

#[tokio::test]
async fn put_bucket_policy_through_the_sdk_makes_a_bucket_public() {
    let em = support::demo().await;
    let s3 = support::s3(&support::config(&em, DEV));
    s3.create_bucket().bucket("dev-website").send().await.expect("CreateBucket");
    s3.put_public_access_block()
        .bucket("dev-website")
        .public_access_block_configuration(PublicAccessBlockConfiguration::builder().build())
        .send()
        .await
        .expect("PutPublicAccessBlock all off");
    s3.put_bucket_policy()
        .bucket("dev-website")
        .policy(public_policy("dev-website"))
        .send()
        .await
        .expect("PutBucketPolicy");
    assert!(is_public(&s3, "dev-website").await);
}

#[tokio::test]
async fn account_block_public_access_through_s3_control() {
    let em = support::demo().await;
    let dev = support::config(&em, DEV);
    let control = support::s3control(&dev, &em.url());

    let e = control.get_public_access_block().account_id(DEV).send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchPublicAccessBlockConfiguration");
    // Accounts with the setting on report it.
    let prod = support::s3control(&support::config(&em, PROD_A), &em.url());
    let got = prod.get_public_access_block().account_id(PROD_A).send().await.expect("GetPublicAccessBlock");
    assert_eq!(got.public_access_block_configuration(), Some(&control_all_on()));
    // The account id must be the caller's.
    let e = prod.get_public_access_block().account_id(DEV).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");

    // The remediation role turns it on; the public bucket is no longer public.
    let s3 = support::s3(&dev);
    assert!(is_public(&s3, PUBLIC_BUCKET).await);
    support::s3control(&remediation(&em, DEV).await, &em.url())
        .put_public_access_block()
        .account_id(DEV)
        .public_access_block_configuration(control_all_on())
        .send()
        .await
        .expect("PutPublicAccessBlock");
    let got = control.get_public_access_block().account_id(DEV).send().await.expect("GetPublicAccessBlock");
    assert_eq!(got.public_access_block_configuration(), Some(&control_all_on()));
    assert!(!is_public(&s3, PUBLIC_BUCKET).await);
    // ...and a public policy cannot be put on any bucket now.
    let e = s3.put_bucket_policy().bucket(PUBLIC_BUCKET).policy(public_policy(PUBLIC_BUCKET)).send().await.unwrap_err();
    assert_eq!(support::code(&e), "AccessDenied");

    control.delete_public_access_block().account_id(DEV).send().await.expect("DeletePublicAccessBlock");
    let e = control.get_public_access_block().account_id(DEV).send().await.unwrap_err();
    assert_eq!(support::code(&e), "NoSuchPublicAccessBlockConfiguration");
    assert!(is_public(&s3, PUBLIC_BUCKET).await);

    // Malformed XML through S3 Control.
    let auth = support::auth(DEV, "s3");
    let (status, body) = support::raw(
        &em.url(),
        "PUT",
        "/v20180820/configuration/publicAccessBlock",
        &[("authorization", auth.as_str()), ("x-amz-account-id", DEV)],
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<ErrorResponse>") && body.contains("<Code>MalformedXML</Code>"), "{body}");
}
