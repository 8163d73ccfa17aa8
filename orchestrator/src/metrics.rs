//! The orchestrator's Prometheus metrics, served as text (exposition format 0.0.4) on
//! `GET /metrics` by [`crate::api`].
//!
//! One [`Metrics`] is shared (`Arc`) by everything that counts: collection (findings ingested
//! and rejected per source), the AWS layer (every call attempt through [`AwsCallCounter`], and
//! AssumeRole outcomes), the writers and job runners (queue depths), sync runs and scoring.
//! Updates are an atomic add or a short lock over a small map, so counting never competes with
//! the work it counts.
//!
//! The exposition is written here rather than through a metrics crate: it is a few dozen lines
//! of text, and owning it keeps the output deterministic (families in a fixed order, series
//! sorted by label), which makes it testable line by line.
//!
//! What `/metrics` reveals: counts, queue depths, sync times, and posture scores by
//! organization, OU id and account id. It holds no token, credential, finding content or
//! resource id, which is why it is served without a token, like `/healthz` (Prometheus scrapers
//! rarely carry one). The scores do tell which accounts are weakest: where that matters, expose
//! the API port only to the monitoring network.
//!
//! Cardinality is bounded by construction: label values come from closed sets (sources, call
//! outcomes, SDK service and operation names, queue names, org/OU/account scopes). As a last
//! guard, a family stops taking new series at [`MAX_SERIES_PER_FAMILY`]; what it refuses is
//! counted in `orgsec_metrics_series_dropped_total` rather than growing memory without end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use parking_lot::Mutex;

use crate::finding::Source;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The most series one labelled family keeps; updates that would add more are dropped and
/// counted in `orgsec_metrics_series_dropped_total`. Far above what an organization of
/// thousands of accounts produces, far below what would hurt a scraper.
pub const MAX_SERIES_PER_FAMILY: usize = 10_000;

/// Error codes that mean "slow down": the same codes the AWS SDK's retry classifier treats as
/// throttling, so that a throttle counted here is one the SDK backs off from.
pub const THROTTLING_ERRORS: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error bodies larger than this are not searched for an error code (AWS error bodies are a
/// few hundred bytes; anything larger is not an error document).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The outcome of one AWS call attempt: the `outcome` label of `orgsec_aws_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A 2xx answer the SDK could read.
    Ok,
    /// HTTP 429, or a throttling error code ([`THROTTLING_ERRORS`]) with any status.
    Throttled,
    /// Any other answer below 500, a 2xx the SDK could not read, or a failure before the
    /// request left (credentials, signing): something to fix on our side.
    ClientError,
    /// Any other answer of 500 or above: AWS's side.
    ServerError,
    /// No answer: the connection failed or timed out.
    TransportError,
    /// An outcome passed to [`Metrics::aws_call`] that is none of the above.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Throttled,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::TransportError,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::TransportError => "transport_error",
            Outcome::Error => "error",
        }
    }

    /// The outcome a caller's string stands for. A throttling error code counts as
    /// [`Outcome::Throttled`]; anything unknown as [`Outcome::Error`], so that free-form input
    /// (an error code, a message) cannot grow the label's cardinality.
    pub fn parse(s: &str) -> Outcome {
        if let Some(o) = Outcome::ALL.into_iter().find(|o| o.as_str() == s) {
            return o;
        }
        if THROTTLING_ERRORS.contains(&s) { Outcome::Throttled } else { Outcome::Error }
    }
}

/// The orchestrator's metrics. `Send + Sync`; share it as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By `Source::ALL` index.
    ingested: [AtomicU64; Source::ALL.len()],
    rejected: [AtomicU64; Source::ALL.len()],
    aws_calls: Mutex<BTreeMap<(String, String, Outcome), u64>>,
    throttles: Mutex<BTreeMap<String, u64>>,
    assume_role: Mutex<BTreeMap<String, u64>>,
    queues: Mutex<BTreeMap<String, u64>>,
    syncs: Mutex<Syncs>,
    scores: Mutex<BTreeMap<(String, String), f64>>,
    dropped: AtomicU64,
}

/// Sync runs: counts, and the last run (absent until one finishes, so that a dashboard shows
/// "never" rather than a run at 1970).
#[derive(Debug, Default)]
struct Syncs {
    ok: u64,
    failed: u64,
    last_duration_seconds: Option<f64>,
    last_timestamp_seconds: Option<f64>,
    last_success_timestamp_seconds: Option<f64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts `n` findings of `source` stored by collection.
    pub fn findings_ingested(&self, source: Source, n: u64) {
        self.ingested[source_index(source)].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` findings of `source` that collection could not normalize or store.
    pub fn findings_rejected(&self, source: Source, n: u64) {
        self.rejected[source_index(source)].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one AWS call attempt. `outcome` is one of `ok`, `throttled`, `client_error`,
    /// `server_error`, `transport_error` (see [`Outcome`]); a throttling error code counts as
    /// `throttled` and anything else as `error`. This does not count a throttle in
    /// `orgsec_aws_throttles_total`: call [`Metrics::throttled`] too ([`AwsCallCounter`] does).
    pub fn aws_call(&self, service: &str, operation: &str, outcome: &str) {
        let key = (service.to_string(), operation.to_string(), Outcome::parse(outcome));
        self.bump(&self.aws_calls, key, 1);
    }

    /// Counts one throttled AWS call attempt to `service`.
    pub fn throttled(&self, service: &str) {
        self.bump(&self.throttles, service.to_string(), 1);
    }

    /// Sets the number of items waiting in `queue` (e.g. `collect_writer`, `remediation_jobs`).
    pub fn set_queue_depth(&self, queue: &str, depth: u64) {
        self.put(&self.queues, queue.to_string(), depth);
    }

    /// Counts one AssumeRole into a member account, by outcome (`ok`, `denied`, `error`, ...:
    /// a small closed set chosen by the caller, never an error message).
    pub fn assume_role(&self, outcome: &str) {
        self.bump(&self.assume_role, outcome.to_string(), 1);
    }

    /// Records a finished sync run that took `seconds`, now.
    pub fn sync_finished(&self, seconds: f64, ok: bool) {
        self.sync_finished_at(seconds, ok, unix_now());
    }

    /// Records a finished sync run that took `seconds` and ended at `at` (seconds since the Unix
    /// epoch).
    fn sync_finished_at(&self, seconds: f64, ok: bool, at: f64) {
        let mut s = self.syncs.lock();
        if ok {
            s.ok += 1;
            s.last_success_timestamp_seconds = Some(at);
        } else {
            s.failed += 1;
        }
        s.last_duration_seconds = Some(seconds);
        s.last_timestamp_seconds = Some(at);
    }

    /// Sets the posture score (0-100) of one scope: `org`, `ou` or `account`, and its id. Finer
    /// scopes (resources) belong in the API, not in a time-series database.
    pub fn set_score(&self, scope: &str, id: &str, score: f64) {
        self.put(&self.scores, (scope.to_string(), id.to_string()), score);
    }

    /// Adds `n` to the series `key` of `family`, unless that would add a series beyond the cap.
    fn bump<K: Ord>(&self, family: &Mutex<BTreeMap<K, u64>>, key: K, n: u64) {
        let mut map = family.lock();
        if let Some(v) = map.get_mut(&key) {
            *v = v.saturating_add(n);
        } else if map.len() < MAX_SERIES_PER_FAMILY {
            map.insert(key, n);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets the series `key` of `family` to `value`, unless that would add a series beyond the cap.
    fn put<K: Ord, V>(&self, family: &Mutex<BTreeMap<K, V>>, key: K, value: V) {
        let mut map = family.lock();
        if map.len() < MAX_SERIES_PER_FAMILY || map.contains_key(&key) {
            map.insert(key, value);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The metrics in Prometheus text format 0.0.4. Every family is listed (its `# HELP` and
    /// `# TYPE` once) in a fixed order, with its series sorted by label values, so that equal
    /// metrics render to equal text.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();

        out.family("orgsec_build_info", "gauge", "The running orgsec version; always 1.");
        out.sample("orgsec_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1u64);

        for (name, counts, help) in [
            ("orgsec_findings_ingested_total", &self.ingested, "Findings stored by collection, by source."),
            (
                "orgsec_findings_rejected_total",
                &self.rejected,
                "Findings collection could not normalize or store, by source.",
            ),
        ] {
            out.family(name, "counter", help);
            for (source, n) in Source::ALL.iter().zip(counts) {
                out.sample(name, &[("source", source.as_str())], n.load(Ordering::Relaxed));
            }
        }

        out.family(
            "orgsec_aws_calls_total",
            "counter",
            "AWS API call attempts (each retry counts), by service, operation and outcome.",
        );
        for ((service, operation, outcome), n) in self.aws_calls.lock().iter() {
            out.sample(
                "orgsec_aws_calls_total",
                &[("service", service), ("operation", operation), ("outcome", outcome.as_str())],
                *n,
            );
        }

        out.family("orgsec_aws_throttles_total", "counter", "AWS API call attempts throttled, by service.");
        for (service, n) in self.throttles.lock().iter() {
            out.sample("orgsec_aws_throttles_total", &[("service", service)], *n);
        }

        out.family("orgsec_assume_role_total", "counter", "AssumeRole calls into member accounts, by outcome.");
        for (outcome, n) in self.assume_role.lock().iter() {
            out.sample("orgsec_assume_role_total", &[("outcome", outcome)], *n);
        }

        out.family("orgsec_queue_depth", "gauge", "Items waiting in each internal queue.");
        for (queue, n) in self.queues.lock().iter() {
            out.sample("orgsec_queue_depth", &[("queue", queue)], *n);
        }

        {
            let s = self.syncs.lock();
            out.family("orgsec_sync_runs_total", "counter", "Finished sync runs, by outcome.");
            out.sample("orgsec_sync_runs_total", &[("outcome", "ok")], s.ok);
            out.sample("orgsec_sync_runs_total", &[("outcome", "error")], s.failed);
            for (name, value, help) in [
                ("orgsec_last_sync_duration_seconds", s.last_duration_seconds, "How long the last sync run took."),
                (
                    "orgsec_last_sync_timestamp_seconds",
                    s.last_timestamp_seconds,
                    "When the last sync run finished, in seconds since the Unix epoch.",
                ),
                (
                    "orgsec_last_successful_sync_timestamp_seconds",
                    s.last_success_timestamp_seconds,
                    "When the last successful sync run finished, in seconds since the Unix epoch.",
                ),
            ] {
                out.family(name, "gauge", help);
                if let Some(v) = value {
                    out.sample(name, &[], v);
                }
            }
        }

        out.family(
            "orgsec_score",
            "gauge",
            "Posture score (0-100, 100 = low risk), by scope (org, ou, account) and id.",
        );
        for ((scope, id), score) in self.scores.lock().iter() {
            out.sample("orgsec_score", &[("scope", scope), ("id", id)], *score);
        }

        out.family(
            "orgsec_metrics_series_dropped_total",
            "counter",
            "Metric updates dropped because their family already had the most series it keeps.",
        );
        out.sample("orgsec_metrics_series_dropped_total", &[], self.dropped.load(Ordering::Relaxed));

        out.text
    }
}

fn source_index(source: Source) -> usize {
    match source {
        Source::SecurityHub => 0,
        Source::GuardDuty => 1,
        Source::Config => 2,
        Source::AccessAnalyzer => 3,
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A sample's value as the text format writes it.
trait Value {
    fn write(&self, out: &mut String);
}

impl Value for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// Text format 0.0.4 being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.text.push_str("# HELP ");
        self.text.push_str(name);
        self.text.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.text.push_str("\\\\"),
                '\n' => self.text.push_str("\\n"),
                c => self.text.push(c),
            }
        }
        self.text.push('\n');
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_label_value(v, &mut self.text);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write(&mut self.text);
        self.text.push('\n');
    }
}

/// Escapes a label value as the text format requires: `\` `"` and newline.
fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// An SDK interceptor that counts every AWS call attempt (retries included) in
/// `orgsec_aws_calls_total` by service, operation and [`Outcome`], and throttled attempts in
/// `orgsec_aws_throttles_total`. Add it to each client's config; it never fails a call.
///
/// The service label is the SDK's service name in lowercase (`securityhub`, `guardduty`,
/// `accessanalyzer`, `configservice`, `sts`, ...), the operation its operation name
/// (`GetFindings`).
#[derive(Debug, Clone)]
pub struct AwsCallCounter {
    metrics: Arc<Metrics>,
}

impl AwsCallCounter {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AwsCallCounter { metrics }
    }
}

impl Intercept for AwsCallCounter {
    fn name(&self) -> &'static str {
        "AwsCallCounter"
    }

    /// Runs after every attempt, whether it got an answer or not.
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_ascii_lowercase(), m.name()),
            None => ("unknown".to_string(), "unknown"),
        };
        let outcome = attempt_outcome(context);
        self.metrics.bump(&self.metrics.aws_calls, (service.clone(), operation.to_string(), outcome), 1);
        if outcome == Outcome::Throttled {
            self.metrics.throttled(&service);
        }
        Ok(())
    }
}

/// The outcome of the attempt that `context` has just finished.
fn attempt_outcome(context: &FinalizerInterceptorContextRef<'_>) -> Outcome {
    let failed = match context.output_or_error() {
        Some(Err(e)) if e.is_connector_error() || e.is_timeout_error() => return Outcome::TransportError,
        Some(Err(_)) => true,
        Some(Ok(_)) | None => false,
    };
    match context.response() {
        Some(response) => match response_outcome(response) {
            // The service said yes but the SDK could not read the answer.
            Outcome::Ok if failed => Outcome::ClientError,
            o => o,
        },
        // Failed before anything was sent: credentials, signing, an interceptor.
        None if failed => Outcome::ClientError,
        None => Outcome::Ok,
    }
}

/// The outcome an HTTP answer stands for, from its status and error code.
fn response_outcome(response: &HttpResponse) -> Outcome {
    let status = response.status().as_u16();
    if status == 429 {
        return Outcome::Throttled;
    }
    if response.status().is_success() {
        return Outcome::Ok;
    }
    if error_code(response).is_some_and(|code| THROTTLING_ERRORS.contains(&code.as_str())) {
        return Outcome::Throttled;
    }
    if status >= 500 { Outcome::ServerError } else { Outcome::ClientError }
}

/// The AWS error code of an error answer: the `x-amzn-ErrorType` header (JSON protocols), else
/// the body's `code` or `__type` (JSON) or `<Code>` (XML: awsQuery, ec2Query, restXml), when the
/// body is in memory.
fn error_code(response: &HttpResponse) -> Option<String> {
    if let Some(h) = response.headers().get("x-amzn-ErrorType") {
        return Some(sanitize_code(h));
    }
    let body = response.body().bytes().filter(|b| b.len() <= MAX_ERROR_BODY)?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'{' {
        let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
        let code = doc.get("code").or_else(|| doc.get("__type")).and_then(serde_json::Value::as_str)?;
        return Some(sanitize_code(code));
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(sanitize_code(&text[start..start + len]))
}

/// `aws.protocols#Code:http://internal...` -> `Code`, as the SDK reads error codes.
fn sanitize_code(raw: &str) -> String {
    let code = raw.split(':').next().unwrap_or(raw);
    let code = code.rsplit('#').next().unwrap_or(code);
    code.trim().to_string()
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn response(status: u16, headers: &[(&'static str, &'static str)], body: &'static str) -> HttpResponse {
        let mut r = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
        for (k, v) in headers {
            r.headers_mut().insert(*k, *v);
        }
        r
    }

    /// The value of the series `name{labels}` in `text`, where `labels` is written as rendered.
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_string))
    }

    #[test]
    fn source_index_follows_source_all() {
        for (i, s) in Source::ALL.into_iter().enumerate() {
            assert_eq!(source_index(s), i, "{s}");
        }
    }

    #[test]
    fn metrics_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Metrics>();
        check::<AwsCallCounter>();
    }

    #[test]
    fn every_family_has_help_and_type_exactly_once() {
        let m = Metrics::new();
        m.aws_call("securityhub", "GetFindings", "ok");
        m.aws_call("securityhub", "GetFindings", "throttled");
        m.aws_call("guardduty", "ListFindings", "ok");
        m.set_queue_depth("collect_writer", 3);
        m.set_queue_depth("remediation_jobs", 1);
        m.set_score("account", "333333333333", 80.0);
        m.set_score("org", "o-1", 90.0);
        let text = m.render();
        let families = [
            ("orgsec_build_info", "gauge"),
            ("orgsec_findings_ingested_total", "counter"),
            ("orgsec_findings_rejected_total", "counter"),
            ("orgsec_aws_calls_total", "counter"),
            ("orgsec_aws_throttles_total", "counter"),
            ("orgsec_assume_role_total", "counter"),
            ("orgsec_queue_depth", "gauge"),
            ("orgsec_sync_runs_total", "counter"),
            ("orgsec_last_sync_duration_seconds", "gauge"),
            ("orgsec_last_sync_timestamp_seconds", "gauge"),
            ("orgsec_last_successful_sync_timestamp_seconds", "gauge"),
            ("orgsec_score", "gauge"),
            ("orgsec_metrics_series_dropped_total", "counter"),
        ];
        for (name, kind) in families {
            let help = format!("# HELP {name} ");
            let ty = format!("# TYPE {name} {kind}");
            assert_eq!(text.lines().filter(|l| l.starts_with(&help)).count(), 1, "{name}\n{text}");
            assert_eq!(text.lines().filter(|l| *l == ty).count(), 1, "{name}\n{text}");
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE ")).count(), families.len(), "{text}");
        // Every sample line belongs to a declared family and has a parseable value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, v) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            assert!(families.iter().any(|(f, _)| *f == name), "undeclared {name}");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn counts_add_up_and_sources_start_at_zero() {
        let m = Metrics::new();
        m.findings_ingested(Source::SecurityHub, 5);
        m.findings_ingested(Source::SecurityHub, 2);
        m.findings_rejected(Source::Config, 1);
        m.aws_call("securityhub", "GetFindings", "ok");
        m.aws_call("securityhub", "GetFindings", "ok");
        m.throttled("securityhub");
        m.assume_role("ok");
        m.assume_role("ok");
        m.assume_role("denied");
        m.set_queue_depth("collect_writer", 7);
        m.set_queue_depth("collect_writer", 2);
        let text = m.render();
        let v = |s: &str| value(&text, s);
        assert_eq!(v(r#"orgsec_findings_ingested_total{source="securityhub"}"#).as_deref(), Some("7"));
        assert_eq!(v(r#"orgsec_findings_ingested_total{source="guardduty"}"#).as_deref(), Some("0"));
        assert_eq!(v(r#"orgsec_findings_ingested_total{source="access-analyzer"}"#).as_deref(), Some("0"));
        assert_eq!(v(r#"orgsec_findings_rejected_total{source="config"}"#).as_deref(), Some("1"));
        assert_eq!(
            v(r#"orgsec_aws_calls_total{service="securityhub",operation="GetFindings",outcome="ok"}"#).as_deref(),
            Some("2")
        );
        assert_eq!(v(r#"orgsec_aws_throttles_total{service="securityhub"}"#).as_deref(), Some("1"));
        assert_eq!(v(r#"orgsec_assume_role_total{outcome="ok"}"#).as_deref(), Some("2"));
        assert_eq!(v(r#"orgsec_assume_role_total{outcome="denied"}"#).as_deref(), Some("1"));
        // A gauge holds the last value set.
        assert_eq!(v(r#"orgsec_queue_depth{queue="collect_writer"}"#).as_deref(), Some("2"));
    }

    #[test]
    fn outcomes_stay_in_a_closed_set() {
        let m = Metrics::new();
        for o in ["ok", "client_error", "ThrottlingException", "SlowDown", "AccessDenied", "boom\n"] {
            m.aws_call("sts", "AssumeRole", o);
        }
        let text = m.render();
        let outcomes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("orgsec_aws_calls_total{"))
            .map(|l| l.split("outcome=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert_eq!(outcomes, ["ok", "throttled", "client_error", "error"], "{text}");
        assert_eq!(
            value(&text, r#"orgsec_aws_calls_total{service="sts",operation="AssumeRole",outcome="throttled"}"#)
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            value(&text, r#"orgsec_aws_calls_total{service="sts",operation="AssumeRole",outcome="error"}"#).as_deref(),
            Some("2")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.set_queue_depth("a\\b\"c\nd", 1);
        let text = m.render();
        assert!(text.contains("orgsec_queue_depth{queue=\"a\\\\b\\\"c\\nd\"} 1\n"), "{text}");
        // The newline was escaped, so the sample is one line.
        assert_eq!(text.lines().filter(|l| l.starts_with("orgsec_queue_depth{")).count(), 1);
    }

    #[test]
    fn rendering_is_deterministic_whatever_the_order_of_updates() {
        let a = Metrics::new();
        a.set_score("account", "444444444444", 50.0);
        a.set_score("account", "333333333333", 75.5);
        a.aws_call("guardduty", "ListFindings", "ok");
        a.aws_call("securityhub", "GetFindings", "throttled");
        a.set_queue_depth("remediation_jobs", 1);
        a.set_queue_depth("collect_writer", 2);
        let b = Metrics::new();
        b.set_queue_depth("collect_writer", 2);
        b.set_queue_depth("remediation_jobs", 1);
        b.aws_call("securityhub", "GetFindings", "throttled");
        b.aws_call("guardduty", "ListFindings", "ok");
        b.set_score("account", "333333333333", 75.5);
        b.set_score("account", "444444444444", 50.0);
        assert_eq!(a.render(), b.render());
        assert_eq!(a.render(), a.render());
        let text = a.render();
        let first = text.find("id=\"333333333333\"").unwrap();
        let second = text.find("id=\"444444444444\"").unwrap();
        assert!(first < second, "{text}");
    }

    #[test]
    fn sync_gauges_appear_after_the_first_run() {
        let m = Metrics::new();
        let before = m.render();
        assert!(before.contains("# TYPE orgsec_last_sync_timestamp_seconds gauge\n"));
        assert_eq!(value(&before, "orgsec_last_sync_timestamp_seconds"), None, "{before}");
        assert_eq!(value(&before, r#"orgsec_sync_runs_total{outcome="ok"}"#).as_deref(), Some("0"));

        m.sync_finished_at(12.5, true, 1_700_000_000.0);
        m.sync_finished_at(3.25, false, 1_700_000_600.0);
        let text = m.render();
        let v = |s: &str| value(&text, s);
        assert_eq!(v(r#"orgsec_sync_runs_total{outcome="ok"}"#).as_deref(), Some("1"));
        assert_eq!(v(r#"orgsec_sync_runs_total{outcome="error"}"#).as_deref(), Some("1"));
        assert_eq!(v("orgsec_last_sync_duration_seconds").as_deref(), Some("3.25"));
        assert_eq!(v("orgsec_last_sync_timestamp_seconds").as_deref(), Some("1700000600"));
        assert_eq!(v("orgsec_last_successful_sync_timestamp_seconds").as_deref(), Some("1700000000"));
    }

    #[test]
    fn special_floats_use_prometheus_spelling() {
        let m = Metrics::new();
        m.set_score("org", "a", f64::NAN);
        m.set_score("org", "b", f64::INFINITY);
        m.set_score("org", "c", f64::NEG_INFINITY);
        m.set_score("org", "d", 0.1);
        let text = m.render();
        assert_eq!(value(&text, r#"orgsec_score{scope="org",id="a"}"#).as_deref(), Some("NaN"));
        assert_eq!(value(&text, r#"orgsec_score{scope="org",id="b"}"#).as_deref(), Some("+Inf"));
        assert_eq!(value(&text, r#"orgsec_score{scope="org",id="c"}"#).as_deref(), Some("-Inf"));
        assert_eq!(value(&text, r#"orgsec_score{scope="org",id="d"}"#).as_deref(), Some("0.1"));
    }

    #[test]
    fn a_family_stops_growing_at_the_cap_and_counts_what_it_drops() {
        let m = Metrics::new();
        for i in 0..MAX_SERIES_PER_FAMILY + 2 {
            m.set_queue_depth(&format!("q{i}"), 1);
        }
        // Existing series still update at the cap.
        m.set_queue_depth("q0", 9);
        let text = m.render();
        assert_eq!(text.lines().filter(|l| l.starts_with("orgsec_queue_depth{")).count(), MAX_SERIES_PER_FAMILY);
        assert_eq!(value(&text, r#"orgsec_queue_depth{queue="q0"}"#).as_deref(), Some("9"));
        assert_eq!(value(&text, "orgsec_metrics_series_dropped_total").as_deref(), Some("2"));
    }

    /// Status, headers, body, and the outcome they stand for.
    type Case = (u16, &'static [(&'static str, &'static str)], &'static str, Outcome);

    #[test]
    fn answers_are_classified_by_status_and_error_code() {
        let cases: &[Case] = &[
            (200, &[], "{}", Outcome::Ok),
            (204, &[], "", Outcome::Ok),
            // A bare 429 is a throttle even without a code.
            (429, &[], "", Outcome::Throttled),
            // JSON protocols: the header names the code, possibly with a suffix or namespace.
            (400, &[("x-amzn-ErrorType", "TooManyRequestsException")], "{}", Outcome::Throttled),
            (
                400,
                &[("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.x/")],
                "",
                Outcome::Throttled,
            ),
            (400, &[], r#"{"__type":"com.amazonaws.config#ThrottlingException","message":"x"}"#, Outcome::Throttled),
            (400, &[("x-amzn-ErrorType", "InvalidInputException")], "{}", Outcome::ClientError),
            // awsQuery (STS, IAM): 400 with the code in the XML body.
            (
                400,
                &[],
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
                 </Error></ErrorResponse>",
                Outcome::Throttled,
            ),
            (403, &[], "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>", Outcome::ClientError),
            // ec2Query: RequestLimitExceeded, with a 503.
            (
                503,
                &[],
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>",
                Outcome::Throttled,
            ),
            (503, &[], "<Error><Code>SlowDown</Code></Error>", Outcome::Throttled),
            (500, &[("x-amzn-ErrorType", "InternalException")], "{}", Outcome::ServerError),
            (502, &[], "<html>bad gateway</html>", Outcome::ServerError),
            (404, &[], "not json, not xml", Outcome::ClientError),
            // Truncated or malformed bodies never panic.
            (400, &[], "<Code>Throttl", Outcome::ClientError),
            (400, &[], "{\"__type\":", Outcome::ClientError),
        ];
        for (status, headers, body, want) in cases {
            let r = response(*status, headers, body);
            assert_eq!(response_outcome(&r), *want, "{status} {headers:?} {body}");
        }
    }

    #[test]
    fn error_codes_are_read_as_the_sdk_reads_them() {
        assert_eq!(sanitize_code("aws.protocoltests#Throttling:http://x"), "Throttling");
        assert_eq!(sanitize_code("SlowDown"), "SlowDown");
        let r = response(400, &[], r#"{"code":"LimitExceededException","__type":"Other"}"#);
        assert_eq!(error_code(&r).as_deref(), Some("LimitExceededException"));
    }
}
