//! Client-side rate limits: a token bucket per (account, region, API), so that collection never
//! asks an account for more than AWS allows it, and adapts when AWS says it asked too much.
//!
//! Each member account has its own budget in each region (AWS limits are per account and
//! region), which is why collection reads every member through its own assumed role: 200
//! accounts read in parallel have 200 budgets, where the admin alone would have one.
//!
//! The defaults are the published limits where AWS publishes them (Security Hub: GetFindings 3
//! requests/s with a burst of 6, every other operation 10/s with a burst of 30) and conservative
//! choices elsewhere (GuardDuty, Config, Access Analyzer, Organizations publish none).
//!
//! Each bucket keeps one request of its burst in hand: it holds at most `burst - 1` tokens. A
//! bucket that spends exactly what AWS's does is throttled whenever two requests arrive closer
//! together than they were sent (one waited longer on the way than the next), which happens all
//! the time; one spare token on AWS's side absorbs any such jitter shorter than a request's
//! interval, for the price of one request less of burst.
//!
//! Adaptive: a throttled call halves its bucket's rate (not below a tenth of the configured
//! rate); each success gives back 5% of the configured rate, so a bucket returns to its
//! configured rate after ~20 successes once AWS stops throttling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use std::time::Instant;

/// A sustained rate (requests per second) and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_second: f64, burst: f64) -> Rate {
        Rate { per_second, burst }
    }
}

/// The default rate of `api` (`service:Operation`) per account and region.
pub fn default_rate(api: &str) -> Rate {
    match api {
        "securityhub:GetFindings" => Rate::new(3.0, 6.0),
        a if a.starts_with("securityhub:") => Rate::new(10.0, 30.0),
        a if a.starts_with("guardduty:") => Rate::new(10.0, 20.0),
        a if a.starts_with("config:") => Rate::new(5.0, 10.0),
        a if a.starts_with("access-analyzer:") => Rate::new(10.0, 20.0),
        a if a.starts_with("organizations:") => Rate::new(5.0, 10.0),
        _ => Rate::new(10.0, 20.0),
    }
}

#[derive(Debug)]
struct Bucket {
    configured: Rate,
    rate: f64,
    tokens: f64,
    last: Instant,
}

/// Requests of each burst kept in hand (see the module's documentation).
const HEADROOM: f64 = 1.0;

impl Bucket {
    fn new(configured: Rate, now: Instant) -> Bucket {
        let mut b = Bucket { configured, rate: configured.per_second, tokens: 0.0, last: now };
        b.tokens = b.capacity();
        b
    }

    /// The most tokens it holds: the burst, less the headroom, and at least one.
    fn capacity(&self) -> f64 {
        (self.configured.burst - HEADROOM).max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity());
        self.last = self.last.max(now);
    }

    /// Takes a token at `now`, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        // Waiting exactly the time a token takes may refill to a hair under one.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate.max(1e-3)))
    }
}

/// A bucket's key: account, region, API (`service:Operation`).
type Key = (String, String, &'static str);

/// The buckets, created on first use.
#[derive(Debug, Default)]
pub struct Limits {
    overrides: HashMap<String, Rate>,
    buckets: Mutex<HashMap<Key, Arc<Mutex<Bucket>>>>,
}

impl Limits {
    /// Limits with per-API overrides (`service:Operation` -> rate).
    pub fn new(overrides: HashMap<String, Rate>) -> Limits {
        Limits { overrides, buckets: Mutex::new(HashMap::new()) }
    }

    fn rate_of(&self, api: &str) -> Rate {
        self.overrides.get(api).copied().unwrap_or_else(|| default_rate(api))
    }

    fn bucket(&self, account: &str, region: &str, api: &'static str) -> Arc<Mutex<Bucket>> {
        let mut map = self.buckets.lock();
        map.entry((account.to_string(), region.to_string(), api))
            .or_insert_with(|| Arc::new(Mutex::new(Bucket::new(self.rate_of(api), Instant::now()))))
            .clone()
    }

    /// Waits until `api` may be called in `account`/`region`, and takes a token.
    pub async fn acquire(&self, account: &str, region: &str, api: &'static str) {
        let bucket = self.bucket(account, region, api);
        loop {
            let taken = bucket.lock().take(Instant::now());
            match taken {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// AWS throttled a call: slow the bucket down.
    pub fn throttled(&self, account: &str, region: &str, api: &'static str) {
        let bucket = self.bucket(account, region, api);
        let mut b = bucket.lock();
        let floor = b.configured.per_second / 10.0;
        b.rate = (b.rate / 2.0).max(floor);
        b.tokens = b.tokens.min(0.0);
    }

    /// A call went through: recover towards the configured rate.
    pub fn succeeded(&self, account: &str, region: &str, api: &'static str) {
        let bucket = self.bucket(account, region, api);
        let mut b = bucket.lock();
        if b.rate < b.configured.per_second {
            b.rate = (b.rate + b.configured.per_second * 0.05).min(b.configured.per_second);
        }
    }

    /// The current rate of a bucket (tests, metrics).
    pub fn current_rate(&self, account: &str, region: &str, api: &'static str) -> f64 {
        self.bucket(account, region, api).lock().rate
    }

    /// The least time `calls` calls of `api` take in one account and region at the configured
    /// rate: the whole burst is free (the headroom orgsec keeps is not counted), the rest come
    /// at the sustained rate. Benchmarks compare a sync with this bound.
    pub fn bound(&self, api: &str, calls: u64) -> Duration {
        let r = self.rate_of(api);
        let paced = (calls as f64 - r.burst).max(0.0);
        Duration::from_secs_f64(paced / r.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_less_the_headroom_then_its_rate() {
        let r = default_rate("securityhub:GetFindings");
        let t0 = Instant::now();
        let mut b = Bucket::new(r, t0);
        for _ in 0..5 {
            assert_eq!(b.take(t0), Ok(()), "the burst of 6, less one kept in hand, is immediate");
        }
        let wait = b.take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0 / 3.0).abs() < 1e-6, "{wait:?}");
        // One second later, three more tokens.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(b.take(t1), Ok(()));
        }
        assert!(b.take(t1).is_err());
        // A long pause refills only up to the burst less the headroom.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(b.take(t2), Ok(()));
        }
        assert!(b.take(t2).is_err());
        // A burst of one keeps no headroom: it would never send.
        let mut one = Bucket::new(Rate::new(1.0, 1.0), t0);
        assert_eq!(one.take(t0), Ok(()));
    }

    #[test]
    fn requests_that_arrive_closer_than_they_were_sent_still_find_a_token() {
        // AWS's bucket, fed the requests orgsec's bucket lets through, each delayed on the way
        // by up to 300 ms (a third of a second being the interval): never empty. The burst goes
        // out slowly (new connections), then trips alternate between slow and fast, so that
        // requests arrive up to 300 ms closer together than they were sent. Without the
        // headroom, the first fast one finds a tenth of a token.
        let r = default_rate("securityhub:GetFindings");
        let t0 = Instant::now();
        let mut ours = Bucket::new(r, t0);
        // AWS's side: the published bucket, nothing kept in hand.
        let (mut tokens, mut last) = (r.burst, t0);
        let mut theirs = |at: Instant| {
            tokens = (tokens + at.saturating_duration_since(last).as_secs_f64() * r.per_second).min(r.burst);
            last = last.max(at);
            if tokens < 1.0 - 1e-9 {
                return Err(tokens);
            }
            tokens -= 1.0;
            Ok(())
        };
        let mut now = t0;
        for i in 0..100u32 {
            while let Err(wait) = ours.take(now) {
                now += wait;
            }
            let trip = if i < 6 || i % 2 == 0 { Duration::from_millis(300) } else { Duration::ZERO };
            assert_eq!(theirs(now + trip), Ok(()), "request {i} throttled");
        }
    }

    #[test]
    fn throttling_halves_the_rate_and_successes_restore_it() {
        let limits = Limits::default();
        let api = "securityhub:GetFindings";
        limits.throttled("1", "r", api);
        assert_eq!(limits.current_rate("1", "r", api), 1.5);
        for _ in 0..10 {
            limits.throttled("1", "r", api);
        }
        assert!((limits.current_rate("1", "r", api) - 0.3).abs() < 1e-9, "never below a tenth");
        for _ in 0..100 {
            limits.succeeded("1", "r", api);
        }
        assert_eq!(limits.current_rate("1", "r", api), 3.0);
        assert_eq!(limits.current_rate("2", "r", api), 3.0, "other accounts are untouched");
    }

    #[test]
    fn the_bound_counts_the_burst_as_free() {
        let limits = Limits::default();
        assert_eq!(limits.bound("securityhub:GetFindings", 6), Duration::ZERO);
        assert_eq!(limits.bound("securityhub:GetFindings", 36), Duration::from_secs(10));
    }
}
