//! Rate limits and fault injection. Token buckets per (account, region, service, operation),
//! defaulting to the published Security Hub TPS and to documented choices elsewhere (see
//! `docs/emulator.md`), plus probabilistic throttling, 5xx errors and added latency per operation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::AwsError;
use crate::wire::{Millis, Service};
use crate::world::IdGen;

/// A rate: sustained requests per second and burst size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub rate: f64,
    pub burst: f64,
}

/// Parses a rate-limit override `service:Operation=RATE/BURST` (or `service:*=RATE/BURST`),
/// e.g. `securityhub:GetFindings=3/6`.
pub fn parse_rate(spec: &str) -> Result<(String, Rate), String> {
    let bad = |why: &str| format!("bad rate limit '{spec}': {why} (expected e.g. securityhub:GetFindings=3/6)");
    let (key, value) = spec.split_once('=').ok_or_else(|| bad("missing '='"))?;
    let (service, op) = key.split_once(':').ok_or_else(|| bad("the key is service:Operation"))?;
    if Service::from_name(service).is_none() || op.is_empty() {
        return Err(bad("unknown service or empty operation"));
    }
    let (rate, burst) = value.split_once('/').ok_or_else(|| bad("the value is RATE/BURST"))?;
    let rate: f64 = rate.trim().parse().map_err(|_| bad("RATE is a number"))?;
    let burst: f64 = burst.trim().parse().map_err(|_| bad("BURST is a number"))?;
    if rate <= 0.0 || burst < 1.0 {
        return Err(bad("RATE must be > 0 and BURST >= 1"));
    }
    Ok((key.to_string(), Rate { rate, burst }))
}

/// The default limit for an operation (per account and region).
pub fn default_rate(service: Service, op: &str) -> Rate {
    let r = |rate: f64, burst: f64| Rate { rate, burst };
    match (service, op) {
        // Published in the Security Hub API reference.
        (Service::SecurityHub, "GetFindings") => r(3.0, 6.0),
        (Service::SecurityHub, "BatchEnableStandards") => r(1.0, 1.0),
        (Service::SecurityHub, "UpdateStandardsControl") => r(1.0, 5.0),
        (Service::SecurityHub, _) => r(10.0, 30.0),
        // Config: StartConfigRulesEvaluation at most once per minute (published).
        (Service::Config, "StartConfigRulesEvaluation") => r(1.0 / 60.0, 1.0),
        // EC2 publishes token buckets: non-mutating 100 burst / 20 per second, mutating
        // 200 burst / 5 per second.
        (Service::Ec2, op) if op.starts_with("Describe") || op.starts_with("Get") => r(20.0, 100.0),
        (Service::Ec2, _) => r(5.0, 200.0),
        // S3 publishes per-prefix request rates far above what a baseline needs.
        (Service::S3 | Service::S3Control, _) => r(3500.0, 5500.0),
        // No published TPS: our choices, documented in docs/emulator.md.
        (Service::GuardDuty, _) => r(20.0, 40.0),
        (Service::Config, _) => r(10.0, 20.0),
        (Service::AccessAnalyzer, _) => r(20.0, 40.0),
        (Service::Organizations, _) => r(10.0, 20.0),
        (Service::Sts, _) => r(50.0, 100.0),
        (Service::Iam, _) => r(20.0, 40.0),
    }
}

/// The throttling error a service returns.
pub fn throttled(service: Service) -> AwsError {
    let msg = "Rate exceeded";
    match service {
        Service::SecurityHub => AwsError::new(429, "TooManyRequestsException", msg),
        Service::AccessAnalyzer => AwsError::new(429, "ThrottlingException", msg),
        Service::GuardDuty => AwsError::new(429, "TooManyRequestsException", msg),
        Service::Organizations => AwsError::new(400, "TooManyRequestsException", msg),
        Service::Config => AwsError::new(400, "ThrottlingException", msg),
        Service::Sts | Service::Iam => AwsError::new(400, "Throttling", msg),
        Service::Ec2 => AwsError::new(503, "RequestLimitExceeded", "Request limit exceeded."),
        Service::S3 | Service::S3Control => AwsError::new(503, "SlowDown", "Please reduce your request rate."),
    }
}

/// A service's internal error.
pub fn internal(service: Service) -> AwsError {
    let msg = "An internal error occurred (injected by the emulator)";
    match service {
        Service::SecurityHub => AwsError::new(500, "InternalException", msg),
        Service::GuardDuty => AwsError::new(500, "InternalServerErrorException", msg),
        Service::AccessAnalyzer => AwsError::new(500, "InternalServerException", msg),
        Service::Organizations => AwsError::new(500, "ServiceException", msg),
        Service::Config => AwsError::new(500, "InternalFailure", msg),
        Service::Sts | Service::Iam => AwsError::new(500, "ServiceFailure", msg),
        Service::Ec2 => AwsError::new(503, "Unavailable", msg),
        Service::S3 | Service::S3Control => AwsError::new(500, "InternalError", msg),
    }
}

/// A fault rule: matches a service and/or operation (both optional) and injects faults with
/// the given probabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    /// Probability in [0, 1] of answering with the service's throttling error.
    #[serde(default)]
    pub throttle: f64,
    /// Probability in [0, 1] of answering with a 5xx error.
    #[serde(default)]
    pub error: f64,
    /// Milliseconds added before answering.
    #[serde(default)]
    pub latency_ms: u64,
}

impl FaultRule {
    /// Parses `[service[:Operation]]:key=value,...` with keys `throttle`, `error` (probabilities)
    /// and `latency_ms`, e.g. `securityhub:GetFindings:throttle=0.2,latency_ms=50` or
    /// `ec2:error=0.1`. `*` stands for any service or operation.
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let bad = |why: &str| {
            format!(
                "bad fault '{spec}': {why} (expected e.g. securityhub:GetFindings:throttle=0.2,error=0.1,latency_ms=50)"
            )
        };
        let (scope, settings) = match spec.rsplit_once(':') {
            Some((scope, settings)) if settings.contains('=') => (scope, settings),
            None if spec.contains('=') => ("", spec),
            _ => return Err(bad("no settings")),
        };
        let mut parts = scope.split(':').filter(|p| !p.is_empty() && *p != "*");
        let service = parts.next().map(str::to_string);
        let operation = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return Err(bad("too many ':'"));
        }
        if let Some(s) = &service
            && Service::from_name(s).is_none()
        {
            return Err(bad(&format!("unknown service '{s}'")));
        }
        let mut rule = FaultRule { service, operation, ..FaultRule::default() };
        for kv in settings.split(',') {
            let (k, v) = kv.split_once('=').ok_or_else(|| bad("settings are key=value"))?;
            match k.trim() {
                "throttle" | "error" => {
                    let p: f64 = v.trim().parse().map_err(|_| bad("probabilities are numbers"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(bad("probabilities are in [0, 1]"));
                    }
                    if k.trim() == "throttle" { rule.throttle = p } else { rule.error = p }
                }
                "latency_ms" => rule.latency_ms = v.trim().parse().map_err(|_| bad("latency_ms is a whole number"))?,
                other => return Err(bad(&format!("unknown setting '{other}'"))),
            }
        }
        Ok(rule)
    }

    fn matches(&self, service: Service, op: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service.name()) && self.operation.as_deref().is_none_or(|o| o == op)
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last_ms: Millis,
}

/// Everything fault-related, behind one lock.
#[derive(Debug)]
pub struct Faults {
    pub rate_limits: bool,
    /// Overrides of the default rates, by `service:Operation` or `service:*`.
    pub overrides: HashMap<String, Rate>,
    pub rules: Vec<FaultRule>,
    buckets: HashMap<(String, String, Service, String), Bucket>,
    rng: IdGen,
}

/// What to do with a request.
#[derive(Debug)]
pub struct Verdict {
    pub error: Option<AwsError>,
    pub latency_ms: u64,
}

impl Faults {
    pub fn new(rate_limits: bool, seed: u64) -> Faults {
        Faults {
            rate_limits,
            overrides: HashMap::new(),
            rules: Vec::new(),
            buckets: HashMap::new(),
            rng: IdGen::new(seed),
        }
    }

    pub fn rate_for(&self, service: Service, op: &str) -> Rate {
        self.overrides
            .get(&format!("{}:{op}", service.name()))
            .or_else(|| self.overrides.get(&format!("{}:*", service.name())))
            .copied()
            .unwrap_or_else(|| default_rate(service, op))
    }

    /// Decides whether a request proceeds, at time `now`.
    pub fn check(&mut self, account: &str, region: &str, service: Service, op: &str, now: Millis) -> Verdict {
        let mut latency_ms = 0;
        let mut throttle = 0.0f64;
        let mut error = 0.0f64;
        for rule in self.rules.iter().filter(|r| r.matches(service, op)) {
            latency_ms = latency_ms.max(rule.latency_ms);
            throttle = throttle.max(rule.throttle);
            error = error.max(rule.error);
        }
        if throttle > 0.0 && self.roll() < throttle {
            return Verdict { error: Some(throttled(service)), latency_ms };
        }
        if error > 0.0 && self.roll() < error {
            return Verdict { error: Some(internal(service)), latency_ms };
        }
        if self.rate_limits {
            let rate = self.rate_for(service, op);
            let key = (account.to_string(), region.to_string(), service, op.to_string());
            let b = self.buckets.entry(key).or_insert(Bucket { tokens: rate.burst, last_ms: now });
            let elapsed = (now - b.last_ms).max(0) as f64 / 1000.0;
            b.tokens = (b.tokens + elapsed * rate.rate).min(rate.burst);
            b.last_ms = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
            } else {
                let wait_ms = (((1.0 - b.tokens) / rate.rate.max(1e-9)) * 1000.0).ceil() as u64;
                return Verdict { error: Some(throttled(service).with_retry_after(wait_ms)), latency_ms };
            }
        }
        Verdict { error: None, latency_ms }
    }

    fn roll(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn reset_buckets(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_burst_then_throttles_then_refills() {
        let mut f = Faults::new(true, 1);
        for _ in 0..6 {
            assert!(f.check("1", "r", Service::SecurityHub, "GetFindings", 0).error.is_none());
        }
        let v = f.check("1", "r", Service::SecurityHub, "GetFindings", 0);
        assert_eq!(v.error.as_ref().map(|e| e.status), Some(429));
        // Another account has its own bucket.
        assert!(f.check("2", "r", Service::SecurityHub, "GetFindings", 0).error.is_none());
        // After one second, three more tokens.
        for _ in 0..3 {
            assert!(f.check("1", "r", Service::SecurityHub, "GetFindings", 1000).error.is_none());
        }
        assert!(f.check("1", "r", Service::SecurityHub, "GetFindings", 1000).error.is_some());
    }

    #[test]
    fn fault_and_rate_specs_parse_or_say_why_not() {
        let r = FaultRule::parse("securityhub:GetFindings:throttle=0.2,latency_ms=50").unwrap();
        assert_eq!(r.service.as_deref(), Some("securityhub"));
        assert_eq!(r.operation.as_deref(), Some("GetFindings"));
        assert_eq!((r.throttle, r.error, r.latency_ms), (0.2, 0.0, 50));
        let r = FaultRule::parse("error=0.5").unwrap();
        assert_eq!((r.service, r.error), (None, 0.5));
        assert!(FaultRule::parse("ec2:error=0.1").unwrap().operation.is_none());
        assert!(FaultRule::parse("ec2:throttle=2").unwrap_err().contains("[0, 1]"));
        assert!(FaultRule::parse("nosuch:error=0.1").unwrap_err().contains("unknown service"));
        assert!(FaultRule::parse("ec2:oops=1").unwrap_err().contains("unknown setting"));
        assert_eq!(parse_rate("guardduty:ListFindings=5/10").unwrap().1, Rate { rate: 5.0, burst: 10.0 });
        assert!(parse_rate("guardduty:ListFindings=0/10").is_err());
        assert!(parse_rate("ListFindings=5/10").is_err());
    }

    #[test]
    fn fault_rules_inject_by_probability() {
        let mut f = Faults::new(false, 1);
        f.rules.push(FaultRule { service: Some("ec2".into()), error: 1.0, ..Default::default() });
        assert_eq!(f.check("1", "r", Service::Ec2, "DescribeInstances", 0).error.map(|e| e.status), Some(503));
        assert!(f.check("1", "r", Service::Iam, "ListUsers", 0).error.is_none());
    }
}
