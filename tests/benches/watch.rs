//! Resource watch benchmark: the local runner on the file-backed embedded backend, with writers
//! and watchers as HTTP clients in this process (sharing the machine's cores).
//!
//! - Latency: 100 watchers follow the `host` stream, chaining cursors, while one writer updates a
//!   host `--rate` times a second; reports p50/p99/max from just before each write is sent to each
//!   watcher receiving its event.
//! - Throughput: `--writers` concurrent writers update hosts (one stream) as fast as they are
//!   acknowledged for `--seconds`; reports writes per second.
//!
//! `cargo bench -p switchyard-e2e --bench watch` (options after `--`).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use switchyard::Engine;
use switchyard::config::{BackendConfig, Config};
use switchyard::local::{RunnerOptions, start};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "sy_bench-operator-token-0123456789";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

#[derive(Clone)]
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["result"], true, "{body}");
        body["data"].clone()
    }
}

async fn latency(client: &Client, epoch: Instant, host: u64, watchers: usize, rate: u64, seconds: u64) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let (client, samples, stop, ready) = (client.clone(), samples.clone(), stop.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let fields = json!(["t"]);
            let data = client
                .call(
                    reqwest::Method::POST,
                    "/api/v3/event/watch/resource/host",
                    json!({ "bk_fields": fields, "bk_start_from": 0 }),
                )
                .await;
            let mut cursor = data["bk_events"].as_array().unwrap().last().unwrap()["bk_cursor"].clone();
            ready.fetch_add(1, Ordering::SeqCst);
            let mut mine = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let data = client
                    .call(
                        reqwest::Method::POST,
                        "/api/v3/event/watch/resource/host",
                        json!({ "bk_fields": fields, "bk_cursor": cursor }),
                    )
                    .await;
                let now = epoch.elapsed();
                let events = data["bk_events"].as_array().unwrap();
                if data["bk_watched"] == true {
                    for e in events {
                        let sent = Duration::from_micros(e["bk_detail"]["t"].as_u64().unwrap());
                        mine.push(now.saturating_sub(sent));
                    }
                }
                cursor = events.last().unwrap()["bk_cursor"].clone();
            }
            samples.lock().extend(mine);
        }));
    }
    while ready.load(Ordering::SeqCst) < watchers as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut acks = Vec::new();
    for _ in 0..rate * seconds {
        tick.tick().await;
        let t = epoch.elapsed().as_micros() as u64;
        client.call(reqwest::Method::PUT, &format!("/api/v3/resources/host/{host}"), json!({ "t": t })).await;
        acks.push(epoch.elapsed().saturating_sub(Duration::from_micros(t)));
    }
    acks.sort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    // Wake the watchers so they notice the stop.
    client
        .call(
            reqwest::Method::PUT,
            &format!("/api/v3/resources/host/{host}"),
            json!({ "t": epoch.elapsed().as_micros() as u64 }),
        )
        .await;
    for t in tasks {
        t.await.unwrap();
    }
    let mut samples = std::mem::take(&mut *samples.lock());
    samples.sort();
    println!(
        "watch latency, {watchers} watchers, {rate} writes/s for {seconds} s ({} deliveries): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "  of which the write's own round trip (HTTP, commit, fsync): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&acks, 0.5).as_secs_f64() * 1e3,
        percentile(&acks, 0.99).as_secs_f64() * 1e3
    );
}

async fn throughput(client: &Client, hosts: &[u64], seconds: u64) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = hosts
        .iter()
        .map(|host| {
            let (client, done, host) = (client.clone(), done.clone(), *host);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    client
                        .call(reqwest::Method::PUT, &format!("/api/v3/resources/host/{host}"), json!({ "n": n }))
                        .await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let writes = done.load(Ordering::Relaxed);
    println!(
        "resource writes on one stream, {} writers: {writes} in {:.1} s = {:.0} writes/s",
        hosts.len(),
        started.elapsed().as_secs_f64(),
        writes as f64 / started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { backend: BackendConfig::Embedded(Some(dir.path().join("data"))), ..Config::default() };
    let engine = Engine::open(config).await.unwrap();
    engine.ensure_operator_token(Some(TOKEN)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = start(listener, engine, RunnerOptions { workers: false, ..RunnerOptions::default() }).unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let client = Client { base: format!("http://{}", running.addr), http };
    let writers = arg("--writers", 32);
    let mut hosts = Vec::new();
    for i in 0..writers {
        let data = client
            .call(reqwest::Method::POST, "/api/v3/resources/host", json!({ "bk_host_innerip": format!("10.9.0.{i}") }))
            .await;
        hosts.push(data["bk_host_id"].as_u64().unwrap());
    }
    let epoch = Instant::now();
    latency(&client, epoch, hosts[0], arg("--watchers", 100) as usize, arg("--rate", 20), arg("--latency-seconds", 10))
        .await;
    throughput(&client, &hosts, arg("--seconds", 5)).await;
    running.stop().await;
}
