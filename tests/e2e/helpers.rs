//! The harness: a Switchyard runner on a free loopback port (the same `local::start` that
//! `switchyard serve` runs), a real HTTP client, and a real webhook receiver.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchyard::backend::aws::provision;
use switchyard::config::{BackendConfig, Config, RetrySchedule, queue_specs};
use switchyard::local::{RunnerOptions, Running, start};
use switchyard::ports::{AddressPolicy, TestClock};
use switchyard::{Engine, config};

/// The operator token every test app starts with.
pub const OPERATOR: &str = "sy_test-operator-token-0123456789";

/// Where a test app keeps its data.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded backend in memory.
    Memory,
    /// The embedded backend in this directory.
    File(std::path::PathBuf),
    /// DynamoDB and SQS on the emulator (fresh table and queues).
    Aws,
}

/// Whether the emulator is configured (the AWS variants of tests skip otherwise).
pub fn aws_configured() -> bool {
    let configured = config::env("AWS_ENDPOINT_URL").is_some();
    if !configured {
        assert!(config::env("SWITCHYARD_REQUIRE_AWS").as_deref() != Some("1"), "AWS_ENDPOINT_URL is not set");
        eprintln!("skipped: no AWS endpoint configured");
    }
    configured
}

/// A configuration with short retry delays and grace periods, so tests run fast.
pub fn test_config(backend: BackendConfig) -> Config {
    let mut c = Config { backend, ..Config::default() };
    c.delivery.retry = RetrySchedule { first: Duration::from_millis(100), cap: Duration::from_millis(400) };
    c.delivery.timeout = Duration::from_secs(2);
    c.delivery.address_policy = AddressPolicy { allow_loopback: true, allow_private: false };
    c.outbox_grace = Duration::from_millis(300);
    c.watch.wait = Duration::from_secs(1);
    c
}

/// A running Switchyard with a client.
pub struct TestApp {
    /// Base URL of the API.
    pub base: String,
    /// The engine behind it (to inspect the store and queues).
    pub engine: Engine,
    /// HTTP client.
    pub client: reqwest::Client,
    running: Option<Running>,
}

/// A response: status and JSON body (`Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The event grid error code.
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or_default()
    }

    /// The event grid error message.
    pub fn message(&self) -> &str {
        self.body["error_msg"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// A test app on the in-memory embedded backend with workers.
    pub async fn spawn() -> Self {
        Self::spawn_on(Backend::Memory, true).await
    }

    /// A test app on `backend`, with or without the workers.
    pub async fn spawn_on(backend: Backend, workers: bool) -> Self {
        let backend = match backend {
            Backend::Memory => BackendConfig::Embedded(None),
            Backend::File(path) => BackendConfig::Embedded(Some(path)),
            Backend::Aws => {
                let unique = uuid_suffix();
                let resources = provision(&format!("e2e-{unique}"), &queue_specs(), &format!("e2e-{unique}-"))
                    .await
                    .expect("provision AWS resources");
                BackendConfig::Aws(resources)
            }
        };
        Self::spawn_with(test_config(backend), workers).await
    }

    /// A test app on the in-memory embedded backend whose runner declares these target queues.
    pub async fn spawn_with_queues(queues: &[&str]) -> Self {
        let mut config = test_config(BackendConfig::Embedded(None));
        config.target_queues = queues.iter().map(|q| (*q).to_owned()).collect();
        Self::spawn_with(config, true).await
    }

    /// A test app with this configuration.
    pub async fn spawn_with(config: Config, workers: bool) -> Self {
        let engine = Engine::open(config).await.expect("engine");
        Self::spawn_engine(engine, workers).await
    }

    /// A test app on `backend` (with workers) whose clock the test moves.
    pub async fn spawn_with_clock(backend: Backend) -> (Self, Arc<TestClock>) {
        let clock = Arc::new(TestClock::now());
        let config = match backend {
            Backend::Memory => test_config(BackendConfig::Embedded(None)),
            Backend::File(path) => test_config(BackendConfig::Embedded(Some(path))),
            Backend::Aws => {
                let unique = uuid_suffix();
                let resources = provision(&format!("e2e-{unique}"), &queue_specs(), &format!("e2e-{unique}-"))
                    .await
                    .expect("provision AWS resources");
                test_config(BackendConfig::Aws(resources))
            }
        };
        let engine = Engine::open_with_clock(config, clock.clone()).await.expect("engine");
        (Self::spawn_engine(engine, true).await, clock)
    }

    /// A test app serving this engine.
    pub async fn spawn_engine(engine: Engine, workers: bool) -> Self {
        engine.ensure_operator_token(Some(OPERATOR)).await.expect("operator token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let options = RunnerOptions { workers, sweep_every: Duration::from_millis(200) };
        let running = start(listener, engine.clone(), options).expect("start");
        let base = format!("http://{}", running.addr);
        Self { base, engine, client: reqwest::Client::new(), running: Some(running) }
    }

    /// Stops the runner and waits for it.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// A request with a token (none when `token` is empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.expect("request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        Reply { status, body, headers }
    }

    /// GET with the operator token.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, path, OPERATOR, None).await
    }

    /// POST with the operator token.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(reqwest::Method::POST, path, OPERATOR, Some(body)).await
    }

    /// PUT with the operator token.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(reqwest::Method::PUT, path, OPERATOR, Some(body)).await
    }

    /// DELETE with the operator token.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(reqwest::Method::DELETE, path, OPERATOR, None).await
    }

    /// Creates a channel and returns its id.
    pub async fn channel(&self, project: &str, name: &str) -> String {
        let r = self.post(&format!("/v1/{project}/channels"), &json!({ "name": name })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Subscribes a webhook to `source` events of a channel; returns the subscription.
    pub async fn subscribe(&self, project: &str, channel: &str, hook: Hook<'_>) -> Value {
        let body = json!({
            "name": hook.name,
            "channel_id": channel,
            "sources": [{ "name": hook.source, "provider_type": "CUSTOM", "filter": hook.filter }],
            "targets": [{
                "name": "WEBHOOK", "provider_type": "CUSTOM", "retry_times": hook.retry_times,
                "detail": { "url": hook.url }, "transform": { "type": "ORIGINAL" }
            }]
        });
        let r = self.post(&format!("/v1/{project}/subscriptions"), &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Publishes events.
    pub async fn put_events(&self, project: &str, channel: &str, events: Value) -> Reply {
        self.post(&format!("/v1/{project}/channels/{channel}/events"), &json!({ "events": events })).await
    }
}

/// A webhook subscription to make.
pub struct Hook<'a> {
    /// Subscription name.
    pub name: &'a str,
    /// Event source it listens to.
    pub source: &'a str,
    /// Its filter.
    pub filter: Value,
    /// Webhook URL.
    pub url: &'a str,
    /// Retries after the first attempt.
    pub retry_times: u32,
}

impl<'a> Hook<'a> {
    /// A subscription of `source` events (no filter, no retries) to `url`.
    pub fn new(name: &'a str, source: &'a str, url: &'a str) -> Self {
        Self { name, source, filter: json!({}), url, retry_times: 0 }
    }

    /// With this filter.
    pub fn filter(mut self, filter: Value) -> Self {
        self.filter = filter;
        self
    }

    /// With this many retries.
    pub fn retries(mut self, n: u32) -> Self {
        self.retry_times = n;
        self
    }
}

/// A CloudEvent.
pub fn event(id: &str, source: &str, kind: &str, data: Value) -> Value {
    json!({ "id": id, "source": source, "specversion": "1.0", "type": kind, "data": data })
}

fn uuid_suffix() -> String {
    let n: u64 = rand_u64();
    format!("{n:016x}")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    pub at: Instant,
    pub status: u16,
}

impl Hit {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON delivery")
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: Vec<Hit>,
    script: VecDeque<u16>,
    always: Option<u16>,
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// A webhook receiver on a free loopback port: answers 200 unless scripted otherwise.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

async fn receive(State(state): State<Arc<Mutex<ReceiverState>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = {
        let mut s = state.lock();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = state.lock();
    s.in_flight -= 1;
    let status = s.script.pop_front().or(s.always).unwrap_or(200);
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
    s.hits.push(Hit { headers, body, at: Instant::now(), status });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, state }
    }

    /// The URL of a path on the receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Answers the next requests with these statuses, then 200.
    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().script.extend(statuses);
    }

    /// Answers every request with this status.
    pub fn always(&self, status: u16) {
        self.state.lock().always = Some(status);
    }

    /// Answers every request only after `delay`.
    pub fn slow(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().max_in_flight
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().hits.clone()
    }

    /// Waits until at least `n` requests arrived (or the timeout passes) and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits = self.hits();
            if hits.len() >= n || Instant::now() >= deadline {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `check` holds (or the timeout passes); returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
