//! Shared helpers: an in-process emulator on a free port and SDK configs pointed at it.

#![allow(dead_code, unreachable_pub)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use orgsec_emulator::Emulator;

pub const REGION: &str = "us-east-1";
pub const MANAGEMENT: &str = "111111111111";
pub const ADMIN: &str = "222222222222";
pub const PROD_A: &str = "333333333333";
pub const PROD_B: &str = "444444444444";
pub const DEV: &str = "555555555555";
pub const SANDBOX: &str = "666666666666";
pub const EXTERNAL_ID: &str = "orgsec-demo";

/// The demo org with rate limits off (tests that need limits turn them on through the builder).
pub async fn demo() -> Emulator {
    Emulator::builder().scenario("demo").rate_limits(false).start().await.expect("emulator starts")
}

/// An SDK config signing in as `account`'s administrator (`AKID<account>`).
pub fn config(em: &Emulator, account: &str) -> SdkConfig {
    config_with_key(em, &format!("AKID{account}"), None)
}

pub fn config_with_key(em: &Emulator, access_key: &str, token: Option<String>) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(em.url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
            access_key, "secret", token, None, "test",
        )))
        .build()
}

/// Assumes `role` in `account` from `from`'s administrator, with `external_id`.
pub async fn assume(em: &Emulator, from: &str, account: &str, role: &str, external_id: Option<&str>) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(&config(em, from));
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("orgsec-test")
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
        .expect("assume role");
    let c = out.credentials().expect("credentials");
    config_with_key(em, c.access_key_id(), Some(c.session_token().to_string()))
}

/// S3 needs path-style addressing on loopback.
pub fn s3(conf: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(conf).force_path_style(true).build())
}

/// S3 Control prefixes the host with the account id; pin the endpoint instead.
pub fn s3control(conf: &SdkConfig, url: &str) -> aws_sdk_s3control::Client {
    #[derive(Debug)]
    struct Fixed(String);
    impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for Fixed {
        fn resolve_endpoint<'a>(
            &'a self,
            _params: &'a aws_sdk_s3control::config::endpoint::Params,
        ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
            aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(
                aws_smithy_types::endpoint::Endpoint::builder().url(self.0.clone()).build(),
            ))
        }
    }
    aws_sdk_s3control::Client::from_conf(
        aws_sdk_s3control::config::Builder::from(conf).endpoint_resolver(Fixed(url.to_string())).build(),
    )
}

/// The AWS error code of a failed call.
pub fn code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("<no code>").to_string(),
        other => format!("<not a service error: {other:?}>"),
    }
}

/// Raw HTTP against the emulator, for malformed-input tests and admin endpoints.
pub async fn raw(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut b = hyper::Request::builder().method(method).uri(format!("{url}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp =
        client.request(b.body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An Authorization header that routes to `service` as `account`'s administrator.
pub fn auth(account: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKID{account}/20261122/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}
