//! Notifications: what a remediation planned, did or failed to do, sent to the targets a binding
//! names (`notify = ["secops-slack"]`), which the settings define:
//!
//! ```toml
//! [notifications.secops-slack]
//! kind = "slack"                      # a Slack incoming webhook
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//!
//! [notifications.soar]
//! kind = "webhook"                    # JSON, signed with HMAC-SHA256
//! url = "https://soar.example.com/orgsec"
//! secret_env = "ORGSEC_SOAR_SECRET"   # the signing key, from the environment
//!
//! [notifications.splunk]
//! kind = "splunk"                     # Splunk HTTP Event Collector
//! url = "https://splunk.example.com:8088/services/collector/event"
//! token_env = "ORGSEC_SPLUNK_TOKEN"
//! ```
//!
//! A generic webhook's request carries `X-Orgsec-Timestamp` (Unix seconds) and
//! `X-Orgsec-Signature: sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<body>` under the secret:
//! the receiver recomputes it, compares in constant time and refuses old timestamps (replays).
//!
//! Every delivery is tried [`ATTEMPTS`] times, [`ATTEMPT_TIMEOUT`] each, with a growing pause
//! between tries, on connection errors, timeouts, 429 and 5xx. A target that stays down costs a
//! delivery, never a remediation: outcome notifications are sent after the job's state is
//! stored, and the worker does not wait for them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Tries per delivery.
pub const ATTEMPTS: u32 = 3;
/// How long one try may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after the first failed try; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// What kind of receiver a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Slack,
    Webhook,
    Splunk,
}

/// A notification target as the settings define it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub kind: Kind,
    pub url: String,
    /// The webhook's signing key, given inline (prefer `secret_env`).
    #[serde(default)]
    pub secret: Option<String>,
    /// The environment variable holding the webhook's signing key.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The Splunk HEC token, given inline (prefer `token_env`).
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding the Splunk HEC token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl fmt::Debug for TargetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSettings")
            .field("kind", &self.kind)
            .field("url", &redact(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("secret_env", &self.secret_env)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("token_env", &self.token_env)
            .finish()
    }
}

/// A target ready to send to: its key or token read.
#[derive(Clone)]
struct Target {
    kind: Kind,
    url: hyper::Uri,
    /// The webhook's signing key or the Splunk token.
    credential: Option<String>,
}

/// Why the notification settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notifications.{target}: {why}")]
pub struct TargetError {
    pub target: String,
    pub why: String,
}

/// What happened in a remediation, as a notification tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `remediation.planned` (notify mode), `remediation.pending_approval`,
    /// `remediation.succeeded`, `remediation.failed`.
    pub event: String,
    pub job_id: String,
    pub binding: String,
    pub playbook: String,
    pub mode: String,
    pub finding_uid: String,
    pub account_id: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub control_id: Option<String>,
    pub finding_type: Option<String>,
    pub title: String,
    /// What was or would be done, one line per change.
    pub actions: Vec<String>,
    /// SUCCEEDED, FAILED, PLANNED, PENDING_APPROVAL.
    pub outcome: String,
    /// The error, for a failure.
    pub error: Option<String>,
    /// Unix seconds.
    pub time: i64,
}

impl Event {
    /// One message for people (Slack): the finding, account, resource, action and outcome.
    pub fn text(&self) -> String {
        let what = self.control_id.as_deref().or(self.finding_type.as_deref()).unwrap_or("finding");
        let actions = if self.actions.is_empty() { "nothing to change".to_string() } else { self.actions.join("; ") };
        let mut text = format!(
            "[orgsec] {outcome}: {playbook} for {what} \"{title}\"\nAccount: {account} ({region})\nResource: {rtype} {rid}\n\
             Action: {actions}\nJob: {job} (binding {binding}, mode {mode})",
            outcome = self.outcome,
            playbook = self.playbook,
            title = self.title,
            account = self.account_id,
            region = self.region,
            rtype = self.resource_type,
            rid = self.resource_id,
            job = self.job_id,
            binding = self.binding,
            mode = self.mode,
        );
        if let Some(e) = &self.error {
            text.push_str(&format!("\nError: {e}"));
        }
        text
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub target: String,
    /// Tries made.
    pub attempts: u32,
    /// `None` when delivered; else why not.
    pub error: Option<String>,
}

/// Sends events to the configured targets. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    targets: Arc<BTreeMap<String, Target>>,
    /// `None` only without targets.
    client: Option<Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").field("targets", &self.targets.keys().collect::<Vec<_>>()).finish()
    }
}

impl Notifier {
    /// The targets of `settings`, with keys and tokens read through `env`. Every problem is an
    /// error naming the target, so that a typo is found at start-up, not at the first incident.
    pub fn new(
        settings: &BTreeMap<String, TargetSettings>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Notifier, TargetError> {
        let mut targets = BTreeMap::new();
        for (name, t) in settings {
            let bad = |why: String| TargetError { target: name.clone(), why };
            if !crate::binding::valid_name(name) {
                return Err(bad("a target name is 1 to 128 letters, digits, '.', '_' or '-'".into()));
            }
            let url: hyper::Uri = t.url.parse().map_err(|e| bad(format!("url \"{}\" is not a URL: {e}", t.url)))?;
            if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
                return Err(bad(format!("url \"{}\" must be http:// or https:// with a host", t.url)));
            }
            let from =
                |inline: &Option<String>, var: &Option<String>, what: &str| -> Result<Option<String>, TargetError> {
                    match (inline, var) {
                        (Some(_), Some(_)) => Err(bad(format!("give {what} or {what}_env, not both"))),
                        (Some(v), None) => Ok(Some(v.clone())),
                        (None, Some(var)) => env(var)
                            .filter(|v| !v.is_empty())
                            .map(Some)
                            .ok_or_else(|| bad(format!("{what}_env names {var}, which is not set"))),
                        (None, None) => Ok(None),
                    }
                };
            let secret = from(&t.secret, &t.secret_env, "secret")?;
            let token = from(&t.token, &t.token_env, "token")?;
            let credential = match t.kind {
                Kind::Slack => {
                    if secret.is_some() || token.is_some() {
                        return Err(bad("a Slack webhook takes no secret or token: its URL is the secret".into()));
                    }
                    None
                }
                Kind::Webhook => {
                    if token.is_some() {
                        return Err(bad("a webhook is signed with a secret, not a token".into()));
                    }
                    Some(secret.ok_or_else(|| bad("a webhook needs a secret (secret_env) to sign with".into()))?)
                }
                Kind::Splunk => {
                    if secret.is_some() {
                        return Err(bad("Splunk's collector takes a token, not a secret".into()));
                    }
                    Some(token.ok_or_else(|| bad("Splunk's collector needs a token (token_env)".into()))?)
                }
            };
            targets.insert(name.clone(), Target { kind: t.kind, url, credential });
        }
        if targets.is_empty() {
            return Ok(Notifier::none());
        }
        let connector = https_connector().map_err(|why| TargetError { target: "*".into(), why })?;
        let client = Some(Client::builder(TokioExecutor::new()).build(connector));
        Ok(Notifier { targets: Arc::new(targets), client })
    }

    /// A notifier without targets.
    pub fn none() -> Notifier {
        Notifier { targets: Arc::new(BTreeMap::new()), client: None }
    }

    /// Whether `name` is a configured target.
    pub fn has(&self, name: &str) -> bool {
        self.targets.contains_key(name)
    }

    /// Sends `event` to each of `targets`, all at once; every delivery's outcome. A name that
    /// is not configured is a failed delivery saying so.
    pub async fn send(&self, targets: &[String], event: &Event) -> Vec<Delivery> {
        let sends = targets.iter().map(|name| async move {
            let Some(t) = self.targets.get(name) else {
                return Delivery {
                    target: name.clone(),
                    attempts: 0,
                    error: Some(format!("no notification target named {name} in the settings ([notifications.{name}])")),
                };
            };
            let (attempts, error) = self.deliver(t, event).await;
            if let Some(e) = &error {
                tracing::warn!(target_name = %name, job = %event.job_id, error = %e, "a notification was not delivered");
            }
            Delivery { target: name.clone(), attempts, error }
        });
        futures_util::future::join_all(sends).await
    }

    async fn deliver(&self, t: &Target, event: &Event) -> (u32, Option<String>) {
        let Some(client) = &self.client else {
            return (0, Some("notifications are not set up".to_string()));
        };
        let mut pause = FIRST_PAUSE;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let req = match request(t, event) {
                Ok(r) => r,
                Err(e) => return (attempt, Some(e)),
            };
            match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req)).await {
                Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                Ok(Err(e)) => last = format!("cannot reach {}: {e}", redact(&t.url.to_string())),
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    if status.is_success() {
                        return (attempt, None);
                    }
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
                    last = format!("{} answered {status}: {text}", redact(&t.url.to_string()));
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return (attempt, Some(last));
                    }
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        (ATTEMPTS, Some(last))
    }
}

/// HTTP and HTTPS, trusting the machine's certificate authorities. Without any (a bare
/// container), HTTPS deliveries fail saying the certificate is unknown; plain HTTP still works.
fn https_connector() -> Result<hyper_rustls::HttpsConnector<HttpConnector>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "cannot read some of the machine's certificate authorities");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no certificate authorities found: HTTPS notifications will fail");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_or_http().enable_http1().build())
}

/// A target's URL as logs and errors show it: scheme, host and port only. A Slack webhook's
/// path is its secret, and a webhook's query may hold one.
fn redact(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}/..."),
            _ => "<url>".to_string(),
        },
        Err(_) => "<url>".to_string(),
    }
}

/// The request that delivers `event` to `t`.
fn request(t: &Target, event: &Event) -> Result<hyper::Request<Full<Bytes>>, String> {
    let now = event.time;
    let (body, headers): (Vec<u8>, Vec<(&str, String)>) = match t.kind {
        Kind::Slack => {
            (serde_json::to_vec(&serde_json::json!({"text": event.text()})).map_err(|e| e.to_string())?, vec![])
        }
        Kind::Webhook => {
            let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let key = t.credential.as_deref().unwrap_or_default();
            let signature = sign(key.as_bytes(), now, &body);
            (body, vec![("x-orgsec-timestamp", now.to_string()), ("x-orgsec-signature", format!("sha256={signature}"))])
        }
        Kind::Splunk => {
            let body = serde_json::to_vec(&serde_json::json!({
                "time": now, "host": "orgsec", "source": "orgsec", "sourcetype": "orgsec:remediation", "event": event,
            }))
            .map_err(|e| e.to_string())?;
            (body, vec![("authorization", format!("Splunk {}", t.credential.as_deref().unwrap_or_default()))])
        }
    };
    let mut b = hyper::Request::builder()
        .method("POST")
        .uri(t.url.clone())
        .header("content-type", "application/json")
        .header("user-agent", concat!("orgsec/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(body))).map_err(|e| format!("cannot build the request: {e}"))
}

/// The webhook signature: hex HMAC-SHA256 of `<timestamp>.<body>` under `key`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(body.len() + 24);
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    hex(&hmac_sha256(key, &message))
}

/// HMAC-SHA256 (RFC 2104): `H((K ^ opad) || H((K ^ ipad) || m))`, the key hashed first when
/// longer than SHA-256's 64-byte block.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn settings_problems_name_the_target() {
        let t = |kind: Kind| TargetSettings {
            kind,
            url: "https://example.com/hook".into(),
            secret: None,
            secret_env: None,
            token: None,
            token_env: None,
        };
        let one = |name: &str, s: TargetSettings| Notifier::new(&[(name.to_string(), s)].into(), |_| None);
        assert!(one("slack", t(Kind::Slack)).is_ok());
        let e = one("soar", t(Kind::Webhook)).unwrap_err();
        assert_eq!(e.target, "soar");
        assert!(e.why.contains("needs a secret"), "{e}");
        let e = one("soar", TargetSettings { secret_env: Some("NOPE".into()), ..t(Kind::Webhook) }).unwrap_err();
        assert!(e.to_string().contains("NOPE, which is not set"), "{e}");
        let ok = Notifier::new(
            &[("soar".to_string(), TargetSettings { secret_env: Some("KEY".into()), ..t(Kind::Webhook) })].into(),
            |v| (v == "KEY").then(|| "s3cret".to_string()),
        );
        assert!(ok.is_ok_and(|n| n.has("soar")));
        let e = one("splunk", t(Kind::Splunk)).unwrap_err();
        assert!(e.why.contains("needs a token"), "{e}");
        let e = one("x", TargetSettings { url: "ftp://example.com".into(), ..t(Kind::Slack) }).unwrap_err();
        assert!(e.why.contains("http:// or https://"), "{e}");
        let e = one("x", TargetSettings { token: Some("t".into()), ..t(Kind::Slack) }).unwrap_err();
        assert!(e.why.contains("takes no secret or token"), "{e}");
    }

    #[test]
    fn the_debug_form_hides_secrets() {
        let s = TargetSettings {
            kind: Kind::Webhook,
            url: "https://example.com".into(),
            secret: Some("hunter2".into()),
            secret_env: None,
            token: Some("tok".into()),
            token_env: None,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("tok\""), "{shown}");
        let slack =
            TargetSettings { kind: Kind::Slack, url: "https://hooks.slack.com/services/T0/B0/SECRET".into(), ..s };
        let shown = format!("{slack:?}");
        assert!(shown.contains("hooks.slack.com") && !shown.contains("SECRET"), "{shown}");
    }
}
