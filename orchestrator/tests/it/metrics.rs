use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use orgsec::api::Api;
use orgsec::auth::Tokens;
use orgsec::finding::Source;
use orgsec::metrics::{AwsCallCounter, Metrics};
use orgsec_emulator::Emulator;
use orgsec_emulator::faults::{FaultRule, Rate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The delegated-admin account of the demo organization.
const ADMIN_KEY: &str = "AKID222222222222";

async fn sdk_config(endpoint: &str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ADMIN_KEY, "secret", None, None, "static"))
        .retry_config(retry)
        .load()
        .await
}

fn securityhub(config: &SdkConfig, metrics: &Arc<Metrics>) -> aws_sdk_securityhub::Client {
    let conf =
        aws_sdk_securityhub::config::Builder::from(config).interceptor(AwsCallCounter::new(metrics.clone())).build();
    aws_sdk_securityhub::Client::from_conf(conf)
}

/// The value of the series `series` (as rendered: `name{labels}`), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn calls(text: &str, operation: &str, outcome: &str) -> Option<f64> {
    value(
        text,
        &format!(r#"orgsec_aws_calls_total{{service="securityhub",operation="{operation}",outcome="{outcome}"}}"#),
    )
}

#[tokio::test]
async fn every_attempt_is_counted_by_outcome() {
    let em = Emulator::builder()
        .scenario("demo")
        // One call, then nothing for a thousand seconds: the second and third calls are throttled
        // whatever the speed of the machine.
        .rate_limit("securityhub:DescribeHub", Rate { rate: 0.001, burst: 1.0 })
        .fault(FaultRule {
            service: Some("securityhub".into()),
            operation: Some("GetEnabledStandards".into()),
            error: 1.0,
            ..Default::default()
        })
        .fault(FaultRule {
            service: Some("securityhub".into()),
            operation: Some("ListMembers".into()),
            throttle: 1.0,
            ..Default::default()
        })
        .start()
        .await
        .expect("start the emulator");
    let metrics = Arc::new(Metrics::new());

    // One attempt per call.
    let once = securityhub(&sdk_config(&em.url(), RetryConfig::disabled()).await, &metrics);
    once.describe_hub().send().await.expect("the first DescribeHub fits the rate limit");
    for _ in 0..2 {
        let err = once.describe_hub().send().await.expect_err("throttled");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429), "{err:?}");
    }
    once.describe_standards_controls()
        .standards_subscription_arn("arn:aws:securityhub:us-east-1:222222222222:subscription/no-such-standard/v/1.0.0")
        .send()
        .await
        .expect_err("an unknown subscription is the caller's mistake");

    // Retries: every attempt counts, not just the call.
    let retrying = securityhub(
        &sdk_config(
            &em.url(),
            RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1)),
        )
        .await,
        &metrics,
    );
    retrying.get_enabled_standards().send().await.expect_err("every attempt fails with a 500");
    retrying.list_members().send().await.expect_err("every attempt is throttled");

    let text = metrics.render();
    assert_eq!(calls(&text, "DescribeHub", "ok"), Some(1.0), "{text}");
    assert_eq!(calls(&text, "DescribeHub", "throttled"), Some(2.0), "{text}");
    assert_eq!(calls(&text, "DescribeStandardsControls", "client_error"), Some(1.0), "{text}");
    assert_eq!(calls(&text, "GetEnabledStandards", "server_error"), Some(3.0), "{text}");
    assert_eq!(calls(&text, "ListMembers", "throttled"), Some(3.0), "{text}");
    assert_eq!(value(&text, r#"orgsec_aws_throttles_total{service="securityhub"}"#), Some(5.0), "{text}");
    // Nothing else was counted.
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("orgsec_aws_calls_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 10.0, "{text}");
    em.shutdown().await;
}

#[tokio::test]
async fn a_call_that_gets_no_answer_is_a_transport_error() {
    // A port that was free a moment ago and that nobody listens on.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let metrics = Arc::new(Metrics::new());
    let client = securityhub(&sdk_config(&format!("http://{closed}"), RetryConfig::disabled()).await, &metrics);
    client.describe_hub().send().await.expect_err("nobody listens");
    let text = metrics.render();
    assert_eq!(calls(&text, "DescribeHub", "transport_error"), Some(1.0), "{text}");
    assert_eq!(value(&text, r#"orgsec_aws_throttles_total{service="securityhub"}"#), None, "{text}");
}

#[tokio::test]
async fn metrics_are_served_over_http1_without_a_token() {
    let store = crate::support::sqlite().await;
    let metrics = Arc::new(Metrics::new());
    metrics.findings_ingested(Source::GuardDuty, 4);
    metrics.set_queue_depth("collect_writer", 2);
    // No tokens at all: the gRPC services would refuse every call, /metrics still answers.
    let api = Api::new(store.store.clone(), Tokens::default()).with_metrics(metrics.clone());
    assert!(Arc::ptr_eq(api.metrics(), &metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        api.serve(listener, async {
            let _ = stopped.await;
        })
        .await
    });

    // Counted after the server started: the scrape sees the live registry, not a copy.
    metrics.findings_ingested(Source::GuardDuty, 1);
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: orgsec\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).await.expect("read");

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    assert!(
        head.lines().any(|l| l.eq_ignore_ascii_case("content-type: text/plain; version=0.0.4; charset=utf-8")),
        "{head}"
    );
    assert!(body.contains("# TYPE orgsec_findings_ingested_total counter\n"), "{body}");
    assert_eq!(value(body, r#"orgsec_findings_ingested_total{source="guardduty"}"#), Some(5.0), "{body}");
    assert_eq!(value(body, r#"orgsec_findings_ingested_total{source="securityhub"}"#), Some(0.0), "{body}");
    assert_eq!(value(body, r#"orgsec_queue_depth{queue="collect_writer"}"#), Some(2.0), "{body}");

    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
