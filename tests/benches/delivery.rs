//! Delivery benchmark: the local runner on the file-backed embedded backend, a webhook receiver on
//! loopback, and publishers, all in this process (so they share the machine's cores).
//!
//! - Throughput: publishers send batches of 100 events as fast as they are accepted; reports
//!   delivered events per second (first publish to last delivery).
//! - Latency: events published at a steady rate (batches of 10 every 10 ms = 1,000 events/s);
//!   reports p50/p99/max from just before the PutEvents request is sent to the webhook receiving
//!   the event.
//!
//! - `--drain N`: the two halves apart: N events published with no worker running (ingest alone),
//!   then delivered by a worker started afterwards (delivery alone).
//!
//! `cargo bench -p switchyard-e2e --bench delivery` (add `-- --events N --rate R --seconds S
//! --publishers P`, `--memory 1` for the in-memory store, `--drain N` to change what runs).
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchyard::Engine;
use switchyard::config::{BackendConfig, Config};
use switchyard::local::{RunnerOptions, start};
use switchyard::ports::AddressPolicy;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "sy_bench-operator-token-0123456789";

#[derive(Default)]
struct Seen {
    at: HashMap<String, Instant>,
}

async fn receive(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap, _body: Bytes) -> &'static str {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    seen.lock().at.entry(id).or_insert_with(Instant::now);
    "ok"
}

#[derive(Clone)]
struct Bench {
    engine: Engine,
    base: String,
    channel: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Seen>>,
}

impl Bench {
    async fn start(dir: &std::path::Path) -> (Self, switchyard::local::Running) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });

        let path = (arg("--memory", 0) == 0).then(|| dir.join("data"));
        let mut config = Config { backend: BackendConfig::Embedded(path), ..Config::default() };
        config.delivery.address_policy = AddressPolicy { allow_loopback: true, allow_private: false };
        let engine = Engine::open(config).await.unwrap();
        engine.ensure_operator_token(Some(TOKEN)).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let workers = arg("--drain", 0) == 0;
        let running = start(listener, engine.clone(), RunnerOptions { workers, ..RunnerOptions::default() }).unwrap();
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let channel: Value = client
            .post(format!("{base}/v1/bench/channels"))
            .header("X-Auth-Token", TOKEN)
            .json(&json!({ "name": "bench" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let channel = channel["id"].as_str().unwrap().to_owned();
        let sub = json!({
            "name": "bench-hook", "channel_id": channel,
            "sources": [{ "name": "bench", "provider_type": "CUSTOM", "filter": {} }],
            "targets": [{ "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": hook }, "transform": { "type": "ORIGINAL" } }]
        });
        let r = client
            .post(format!("{base}/v1/bench/subscriptions"))
            .header("X-Auth-Token", TOKEN)
            .json(&sub)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        (Self { engine, base, channel, client, seen }, running)
    }

    async fn publish(&self, ids: &[String]) {
        let events: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "id": id, "source": "bench", "specversion": "1.0", "type": "bench.event", "data": { "order": id, "amount": 42.5, "tags": ["a", "b"] } }))
            .collect();
        let url = format!("{}/v1/bench/channels/{}/events", self.base, self.channel);
        let r = self
            .client
            .post(url)
            .header("X-Auth-Token", TOKEN)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["failed_count"], 0, "{body}");
    }

    async fn wait_delivered(&self, ids: &[String], timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        // Ids before `next` are known delivered: each check resumes there, so waiting costs one
        // pass over the ids in all, not one per check (which would starve the system measured).
        let mut next = 0;
        loop {
            {
                let seen = self.seen.lock();
                while next < ids.len() && seen.at.contains_key(&ids[next]) {
                    next += 1;
                }
                if next == ids.len() {
                    return ids.iter().filter_map(|id| seen.at.get(id)).max().copied();
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn throughput(bench: &Bench, total: usize, publishers: usize) {
    let ids: Vec<String> = (0..total).map(|i| format!("t{i}")).collect();
    let batches: Vec<Vec<String>> = ids.chunks(100).map(<[String]>::to_vec).collect();
    let queue = Arc::new(Mutex::new(batches));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let queue = queue.clone();
        let bench = bench.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(batch) = queue.lock().pop() else { break };
                bench.publish(&batch).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = started.elapsed();
    let last = bench.wait_delivered(&ids, Duration::from_secs(300)).await.expect("every event delivered");
    let elapsed = last - started;
    println!(
        "throughput: {total} events, accepted in {:.2} s ({:.0}/s), delivered in {:.2} s: {:.0} events/s delivered",
        accepted.as_secs_f64(),
        total as f64 / accepted.as_secs_f64(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}

async fn latency(bench: &Bench, rate: usize, seconds: usize) {
    let per_tick = (rate / 100).max(1);
    let mut sent: Vec<(String, Instant)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut handles = Vec::new();
    for t in 0..(seconds * 100) {
        tick.tick().await;
        let ids: Vec<String> = (0..per_tick).map(|i| format!("l{t}-{i}")).collect();
        let at = Instant::now();
        sent.extend(ids.iter().map(|id| (id.clone(), at)));
        let b = bench.clone();
        handles.push(tokio::spawn(async move { b.publish(&ids).await }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    bench.wait_delivered(&ids, Duration::from_secs(60)).await.expect("every event delivered");
    let seen = bench.seen.lock();
    let mut latencies: Vec<Duration> = sent.iter().map(|(id, at)| seen.at[id].saturating_duration_since(*at)).collect();
    latencies.sort();
    println!(
        "latency at {} events/s for {seconds} s ({} events): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        per_tick * 100,
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}

async fn drain(bench: &Bench, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let started = Instant::now();
    for wave in ids.chunks(800) {
        let tasks: Vec<_> = wave
            .chunks(100)
            .map(|batch| {
                let (b, batch) = (bench.clone(), batch.to_vec());
                tokio::spawn(async move { b.publish(&batch).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    println!("ingest alone: {:.0} events/s accepted", n as f64 / started.elapsed().as_secs_f64());
    let started = Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(switchyard::local::delivery_loop(bench.engine.clone(), cancel.clone()));
    bench.wait_delivered(&ids, Duration::from_secs(300)).await.expect("every event delivered");
    println!("delivery alone: {:.0} events/s delivered", n as f64 / started.elapsed().as_secs_f64());
    cancel.cancel();
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, running) = Bench::start(dir.path()).await;
    if arg("--drain", 0) > 0 {
        drain(&bench, arg("--drain", 0)).await;
        running.stop().await;
        return;
    }
    // Warm up connections and caches.
    let warm: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    for chunk in warm.chunks(100) {
        bench.publish(chunk).await;
    }
    bench.wait_delivered(&warm, Duration::from_secs(30)).await.expect("warm-up delivered");

    latency(&bench, arg("--rate", 1000), arg("--seconds", 10)).await;
    throughput(&bench, arg("--events", 100_000), arg("--publishers", 4)).await;
    running.stop().await;
}
