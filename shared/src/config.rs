//! Configuration: what the engine needs to know about its deployment. The Lambda functions read it
//! from the environment `template.yaml` sets ([`Config::from_env`]); the local runner builds it from
//! its command line. This is the only module that reads the environment.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::aws::AwsResources;
use crate::ports::{AddressPolicy, QueueSpec};

/// The logical queue names the engine uses.
pub mod queues {
    /// One message per (event, target) delivery, retried in place with growing visibility.
    pub const DELIVERY: &str = "delivery";
    /// Where deliveries go after their last attempt, and poison messages after
    /// [`MAX_RECEIVES`] receives.
    pub const DEAD_LETTER: &str = "dead-letter";
    /// Receives after which the queue itself dead-letters a message (a safety net above the
    /// largest `retry_times`; the worker dead-letters spent deliveries itself).
    pub const MAX_RECEIVES: u32 = 100;
}

/// The queues a backend with this configuration provides: [`queue_specs`] and the target queues.
pub fn all_queue_specs(config: &Config) -> Vec<QueueSpec> {
    let mut specs = queue_specs();
    specs.extend(config.target_queues.iter().map(|name| QueueSpec { name: name.clone(), dead_letter: None }));
    specs
}

/// The queues every backend provides.
pub fn queue_specs() -> Vec<QueueSpec> {
    vec![
        QueueSpec { name: queues::DEAD_LETTER.into(), dead_letter: None },
        QueueSpec {
            name: queues::DELIVERY.into(),
            dead_letter: Some((queues::DEAD_LETTER.into(), queues::MAX_RECEIVES)),
        },
    ]
}

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendConfig {
    /// The embedded databases: in this directory, or in memory when `None`.
    Embedded(Option<PathBuf>),
    /// DynamoDB and SQS.
    Aws(AwsResources),
}

/// When failed deliveries are tried again: attempt `n + 1` comes `first × 2^(n-1)` after attempt
/// `n`, capped at `cap`, with ±20 % jitter. With the defaults: 1 s, 2 s, 4 s, 8 s, … 256 s, then
/// every 300 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay before the first retry.
    pub first: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self { first: Duration::from_secs(1), cap: Duration::from_secs(300) }
    }
}

impl RetrySchedule {
    /// The delay after failed attempt `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.first.saturating_mul(factor).min(self.cap)
    }

    /// The delay with ±20 % jitter, so that many failing deliveries do not retry in step.
    pub fn jittered(&self, attempt: u32) -> Duration {
        let base = self.delay(attempt);
        let spread = rand::random::<f64>() * 0.4 + 0.8;
        base.mul_f64(spread)
    }
}

/// How deliveries are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Per-attempt timeout of a webhook request.
    pub timeout: Duration,
    /// Retry schedule.
    pub retry: RetrySchedule,
    /// Which addresses webhooks may reach.
    pub address_policy: AddressPolicy,
    /// Deliveries in flight at once in the local runner's worker.
    pub concurrency: usize,
    /// Deliveries in flight at once to one target, per process (the local runner, or one Lambda
    /// instance). A delivery to a target at its bound waits up to [`SLOT_WAIT`] for a slot (a fast
    /// receiver frees one well within it); failing that it is put back on the queue for
    /// [`DEFER_DELAY`] without counting as an attempt, so one slow receiver holds at most this
    /// many of the worker's slots, plus those briefly waiting.
    pub per_target_in_flight: usize,
}

/// How long a delivery to a target at its in-flight bound waits for a slot before it is deferred.
pub const SLOT_WAIT: Duration = Duration::from_millis(50);

/// How long a deferred delivery stays hidden, before jitter, when its target stayed at its bound.
pub const DEFER_DELAY: Duration = Duration::from_millis(500);

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry: RetrySchedule::default(),
            address_policy: AddressPolicy::default(),
            concurrency: 256,
            per_target_in_flight: 64,
        }
    }
}

/// How long things are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Events published to channels (their change log, dedup keys and stored content).
    pub channel_events: Duration,
    /// Change events of CMDB resources (3 hours, as the resource watch API specifies).
    pub resource_events: Duration,
    /// Delivery traces.
    pub traces: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            channel_events: Duration::from_secs(24 * 3600),
            resource_events: Duration::from_secs(3 * 3600),
            traces: Duration::from_secs(24 * 3600),
        }
    }
}

/// How long polls wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// Longest a watch waits for an event before answering that none came (20 s by default; API
    /// Gateway cuts requests at 29 s).
    pub wait: Duration,
    /// How often a waiting watch reads the log again. A watch is woken at once by writes made in
    /// the same process; this interval covers writes made elsewhere (other Lambda functions).
    pub poll: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self { wait: Duration::from_secs(20), poll: Duration::from_millis(500) }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where the data lives.
    pub backend: BackendConfig,
    /// Delivery settings.
    pub delivery: DeliveryConfig,
    /// Retention periods.
    pub retention: Retention,
    /// Long-poll settings.
    pub watch: WatchConfig,
    /// How long an accepted event may wait in the outbox before the sweeper routes it (it is
    /// normally routed at once; the outbox covers a function that died in between).
    pub outbox_grace: Duration,
    /// Queues the embedded backend provides for `SQS` targets and dead-letter queues, by name (on
    /// AWS, targets name SQS queue URLs instead).
    pub target_queues: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: BackendConfig::Embedded(None),
            delivery: DeliveryConfig::default(),
            retention: Retention::default(),
            watch: WatchConfig::default(),
            outbox_grace: Duration::from_secs(30),
            target_queues: Vec::new(),
        }
    }
}

/// Reads a variable of the environment.
pub fn env(name: &str) -> Option<String> {
    #[allow(clippy::disallowed_methods)]
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_secs(name: &str) -> anyhow::Result<Option<Duration>> {
    env(name)
        .map(|v| v.parse::<u64>().map(Duration::from_secs).map_err(|_| anyhow::anyhow!("{name} must be whole seconds")))
        .transpose()
}

fn env_bool(name: &str) -> bool {
    env(name).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

impl Config {
    /// The configuration of a Lambda function: AWS resources named by the environment.
    ///
    /// `SWITCHYARD_TABLE`, `SWITCHYARD_DELIVERY_QUEUE_URL`, `SWITCHYARD_DEAD_LETTER_QUEUE_URL` name the
    /// resources; `SWITCHYARD_ALLOW_PRIVATE_TARGETS`, `SWITCHYARD_DELIVERY_TIMEOUT_SECONDS`,
    /// `SWITCHYARD_PER_TARGET_IN_FLIGHT`, `SWITCHYARD_EVENT_RETENTION_SECONDS` and
    /// `SWITCHYARD_TRACE_RETENTION_SECONDS` tune it.
    pub fn from_env() -> anyhow::Result<Self> {
        let table = env("SWITCHYARD_TABLE").ok_or_else(|| anyhow::anyhow!("SWITCHYARD_TABLE is not set"))?;
        let mut queue_urls = std::collections::HashMap::new();
        for (name, var) in [
            (queues::DELIVERY, "SWITCHYARD_DELIVERY_QUEUE_URL"),
            (queues::DEAD_LETTER, "SWITCHYARD_DEAD_LETTER_QUEUE_URL"),
        ] {
            if let Some(url) = env(var) {
                queue_urls.insert(name.to_owned(), url);
            }
        }
        let mut config =
            Config { backend: BackendConfig::Aws(AwsResources { table, queue_urls }), ..Config::default() };
        config.delivery.address_policy.allow_private = env_bool("SWITCHYARD_ALLOW_PRIVATE_TARGETS");
        if let Some(t) = env_secs("SWITCHYARD_DELIVERY_TIMEOUT_SECONDS")? {
            config.delivery.timeout = t;
        }
        if let Some(n) = env("SWITCHYARD_PER_TARGET_IN_FLIGHT") {
            config.delivery.per_target_in_flight = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| anyhow::anyhow!("SWITCHYARD_PER_TARGET_IN_FLIGHT must be a positive integer"))?;
        }
        if let Some(r) = env_secs("SWITCHYARD_EVENT_RETENTION_SECONDS")? {
            config.retention.channel_events = r;
        }
        if let Some(r) = env_secs("SWITCHYARD_TRACE_RETENTION_SECONDS")? {
            config.retention.traces = r;
        }
        if let Some(r) = env_secs("SWITCHYARD_RESOURCE_EVENT_RETENTION_SECONDS")? {
            config.retention.resource_events = r;
        }
        if let Some(w) = env_secs("SWITCHYARD_WATCH_WAIT_SECONDS")? {
            config.watch.wait = w.min(Duration::from_secs(25));
        }
        config.watch.poll = Duration::from_millis(200);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_doubles_from_one_second_and_caps() {
        let s = RetrySchedule::default();
        let delays: Vec<u64> = (1..=11).map(|n| s.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(s.delay(60).as_secs(), 300);
        for n in 1..10 {
            let j = s.jittered(n).as_secs_f64();
            let d = s.delay(n).as_secs_f64();
            assert!(j >= d * 0.79 && j <= d * 1.21, "attempt {n}: {j} vs {d}");
        }
    }
}
