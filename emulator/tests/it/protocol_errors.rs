//! Bad input on the wire: malformed JSON and XML, unknown operations, wrong types, oversized
//! bodies, missing credentials. Each gets its protocol's error shape and a 4xx, never a panic, a
//! hang or a 500.

use orgsec_emulator::Emulator;

use crate::support::{self, ADMIN, MANAGEMENT, auth};

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    service: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const JSON11: &str = "application/x-amz-json-1.1";
const FORM: &str = "application/x-www-form-urlencoded";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "securityhub GetFindings",
            method: "POST",
            path: "/findings",
            service: "securityhub",
            headers: &[("content-type", "application/json")],
        },
        Case {
            name: "securityhub BatchUpdateFindings",
            method: "PATCH",
            path: "/findings/batchupdate",
            service: "securityhub",
            headers: &[("content-type", "application/json")],
        },
        Case {
            name: "guardduty CreateDetector",
            method: "POST",
            path: "/detector",
            service: "guardduty",
            headers: &[("content-type", "application/json")],
        },
        Case {
            name: "access-analyzer CreateAnalyzer",
            method: "PUT",
            path: "/analyzer",
            service: "access-analyzer",
            headers: &[("content-type", "application/json")],
        },
        Case {
            name: "organizations ListAccounts",
            method: "POST",
            path: "/",
            service: "organizations",
            headers: &[("content-type", JSON11), ("x-amz-target", "AWSOrganizationsV20161128.ListAccounts")],
        },
        Case {
            name: "config PutConfigRule",
            method: "POST",
            path: "/",
            service: "config",
            headers: &[("content-type", JSON11), ("x-amz-target", "StarlingDoveService.PutConfigRule")],
        },
        Case { name: "sts AssumeRole", method: "POST", path: "/", service: "sts", headers: &[("content-type", FORM)] },
        Case {
            name: "iam UpdateAccountPasswordPolicy",
            method: "POST",
            path: "/",
            service: "iam",
            headers: &[("content-type", FORM)],
        },
        Case {
            name: "ec2 AuthorizeSecurityGroupIngress",
            method: "POST",
            path: "/",
            service: "ec2",
            headers: &[("content-type", FORM)],
        },
        Case {
            name: "s3control PutPublicAccessBlock",
            method: "PUT",
            path: "/v20180820/configuration/publicAccessBlock",
            service: "s3",
            headers: &[("x-amz-account-id", "222222222222")],
        },
        Case {
            name: "s3 PutPublicAccessBlock",
            method: "PUT",
            path: "/some-bucket?publicAccessBlock",
            service: "s3",
            headers: &[],
        },
    ]
}

async fn send(em: &Emulator, c: &Case, account: &str, body: &[u8]) -> (u16, String) {
    let a = auth(account, c.service);
    let mut headers: Vec<(&str, &str)> = vec![("authorization", a.as_str())];
    headers.extend_from_slice(c.headers);
    support::raw(&em.url(), c.method, c.path, &headers, body).await
}

#[tokio::test]
async fn malformed_json_gets_each_services_validation_error() {
    let em = support::demo().await;
    let expect = [
        ("securityhub GetFindings", "InvalidInputException"),
        ("guardduty CreateDetector", "BadRequestException"),
        ("access-analyzer CreateAnalyzer", "ValidationException"),
        ("organizations ListAccounts", "SerializationException"),
        ("config PutConfigRule", "SerializationException"),
    ];
    for (name, code) in expect {
        let c = cases().into_iter().find(|c| c.name == name).unwrap();
        let (status, body) = send(&em, &c, MANAGEMENT, b"{\"Filters\": [unterminated").await;
        assert_eq!(status, 400, "{name}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: error body is not JSON ({e}): {body}"));
        assert_eq!(v["__type"], code, "{name}: {body}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {body}");
    }
}

#[tokio::test]
async fn wrong_types_are_validation_errors() {
    let em = support::demo().await;
    let c = &cases()[0];
    let (status, body) = send(&em, c, ADMIN, br#"{"MaxResults": "ten"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("InvalidInputException") && body.contains("MaxResults"), "{body}");
    let (status, body) = send(&em, c, ADMIN, br#"{"Filters": {"SeverityLabel": "HIGH"}}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(&em, c, ADMIN, b"[1, 2, 3]").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(&em, &cases()[1], ADMIN, br#"{"FindingIdentifiers": "all"}"#).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn malformed_xml_is_malformed_xml() {
    let em = support::demo().await;
    let c = cases().into_iter().find(|c| c.name == "s3control PutPublicAccessBlock").unwrap();
    let (status, body) = send(&em, &c, ADMIN, b"<PublicAccessBlockConfiguration><BlockPublicAcls>true").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<ErrorResponse>") && body.contains("<Code>MalformedXML</Code>"), "{body}");
}

#[tokio::test]
async fn unknown_operations_get_each_protocols_error() {
    let em = support::demo().await;
    let a = auth(MANAGEMENT, "organizations");
    let (status, body) = support::raw(
        &em.url(),
        "POST",
        "/",
        &[("authorization", &a), ("content-type", JSON11), ("x-amz-target", "AWSOrganizationsV20161128.LaunchRockets")],
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");

    let a = auth(MANAGEMENT, "sts");
    let (status, body) = support::raw(
        &em.url(),
        "POST",
        "/",
        &[("authorization", &a), ("content-type", FORM)],
        b"Action=LaunchRockets&Version=2011-06-15",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("<ErrorResponse>") && body.contains("<Code>InvalidAction</Code>"), "{body}");

    let a = auth(MANAGEMENT, "ec2");
    let (status, body) = support::raw(
        &em.url(),
        "POST",
        "/",
        &[("authorization", &a), ("content-type", FORM)],
        b"Action=LaunchRockets&Version=2016-11-15",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("<Response><Errors><Error><Code>InvalidAction</Code>"), "{body}");

    let a = auth(ADMIN, "securityhub");
    let (status, body) = support::raw(&em.url(), "GET", "/rockets", &[("authorization", &a)], b"").await;
    assert_eq!(status, 404);
    assert!(body.contains("UnknownOperationException"), "{body}");

    let a = auth(ADMIN, "kinesis");
    let (status, body) = support::raw(
        &em.url(),
        "POST",
        "/",
        &[("authorization", &a), ("content-type", JSON11), ("x-amz-target", "Kinesis_20131202.ListStreams")],
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownService") && body.contains("kinesis"), "{body}");
}

#[tokio::test]
async fn missing_or_unknown_credentials() {
    let em = support::demo().await;
    let (status, body) =
        support::raw(&em.url(), "POST", "/findings", &[("content-type", "application/json")], b"{}").await;
    assert_eq!(status, 403);
    assert!(body.contains("MissingAuthenticationTokenException"), "{body}");
    let a = auth("999999999999", "securityhub");
    let (status, body) = support::raw(&em.url(), "POST", "/findings", &[("authorization", &a)], b"{}").await;
    assert_eq!(status, 403);
    assert!(body.contains("UnrecognizedClientException"), "{body}");
    let a = auth("999999999999", "iam");
    let (status, body) = support::raw(
        &em.url(),
        "POST",
        "/",
        &[("authorization", &a), ("content-type", FORM)],
        b"Action=ListUsers&Version=2010-05-08",
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>InvalidClientTokenId</Code>"), "{body}");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_the_protocols_error() {
    let em = Emulator::builder().scenario("demo").rate_limits(false).max_body_bytes(4096).start().await.unwrap();
    let big = vec![b'a'; 10_000];
    for c in cases() {
        let (status, body) = send(&em, &c, ADMIN, &big).await;
        assert_eq!(status, 413, "{}: {body}", c.name);
        assert!(body.contains("RequestEntityTooLarge"), "{}: {body}", c.name);
    }
    // The server is still answering.
    let (status, _) = support::raw(&em.url(), "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(status, 200);
}

/// Deterministic garbage (splitmix64) of assorted shapes against every protocol: the emulator
/// always answers, never with a 5xx.
#[tokio::test]
async fn garbage_never_gets_a_5xx_or_a_dropped_connection() {
    let em = support::demo().await;
    let mut state: u64 = 7;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let shapes: [&[u8]; 10] = [
        b"",
        b"{}",
        b"null",
        b"{\"Findings\": [{}]}",
        b"{\"FindingIdentifiers\": [{\"Id\": 1}]}",
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/x&RoleSessionName=s",
        b"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1.FromPort=abc",
        b"Action=UpdateAccountPasswordPolicy&Version=2010-05-08&MinimumPasswordLength=-1",
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls></PublicAccessBlockConfiguration>",
        b"\xff\xfe\x00garbage\x00",
    ];
    for round in 0..120 {
        let c = &cases()[(next() % cases().len() as u64) as usize];
        let mut body = shapes[(next() % shapes.len() as u64) as usize].to_vec();
        // Flip a few bytes now and then.
        if round % 3 == 0 && !body.is_empty() {
            for _ in 0..3 {
                let i = (next() % body.len() as u64) as usize;
                body[i] = (next() & 0xff) as u8;
            }
        }
        let account = [ADMIN, MANAGEMENT, "333333333333"][(next() % 3) as usize];
        let (status, text) = send(&em, c, account, &body).await;
        assert!(
            (200..500).contains(&status),
            "{} with {:?} -> {status}: {text}",
            c.name,
            String::from_utf8_lossy(&body)
        );
    }
}
