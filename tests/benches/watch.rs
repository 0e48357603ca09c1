//! Resource watch benchmark: the local runner on the file-backed embedded backend, with writers
//! and watchers as HTTP clients in this process (sharing the machine's cores).
//!
//! - Latency: 100 watchers follow the `host` stream, chaining cursors, while one writer updates a
//!   host `--rate` times a second; reports p50/p99/max from just before each write is sent to each
//!   watcher receiving its event.
//! - Throughput: `--writers` concurrent writers update hosts (one stream) as fast as they are
//!   acknowledged for `--seconds`; reports writes per second.
//!
//! `cargo bench -p switchyard-e2e --bench watch` (options after `--`; `--memory` runs on the
//! in-memory backend, to tell the storage's share from the rest).
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchyard::Engine;
use switchyard::config::{BackendConfig, Config};
use switchyard::local::{RunnerOptions, Running, start};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "sy_bench-operator-token-0123456789";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// One HTTP/1.1 connection to the runner, with as little client-side work per call as hyper's
/// connection API allows: the load generators share the 2 cores with the server, so a heavier
/// client (URL parsing, pooling, generic JSON values) would be measured as server latency.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: bool,
    message: String,
    data: Option<T>,
}

#[derive(Deserialize)]
struct Created {
    bk_host_id: u64,
}

#[derive(Deserialize)]
struct Watched {
    bk_watched: bool,
    bk_events: Vec<WatchedEvent>,
}

#[derive(Deserialize)]
struct WatchedEvent {
    bk_cursor: String,
    bk_detail: Option<Stamp>,
}

#[derive(Deserialize)]
struct Stamp {
    t: Option<u64>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        Self { send }
    }

    async fn call<T: DeserializeOwned>(&mut self, method: Method, path: &str, body: &Value) -> Option<T> {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "bench")
            .header("X-Auth-Token", TOKEN)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
            .unwrap();
        self.send.ready().await.unwrap();
        let response = self.send.send_request(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).unwrap();
        assert!(envelope.result, "{}", envelope.message);
        envelope.data
    }
}

async fn latency(addr: SocketAddr, epoch: Instant, host: u64, watchers: usize, rate: u64, seconds: u64) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let (samples, stop, ready) = (samples.clone(), stop.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let path = "/api/v3/event/watch/resource/host";
            let start = json!({ "bk_fields": ["t"], "bk_start_from": 0 });
            let data: Watched = conn.call(Method::POST, path, &start).await.unwrap();
            let mut cursor = data.bk_events.last().unwrap().bk_cursor.clone();
            ready.fetch_add(1, Ordering::SeqCst);
            let mut mine = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let next = json!({ "bk_fields": ["t"], "bk_cursor": cursor });
                let data: Watched = conn.call(Method::POST, path, &next).await.unwrap();
                let now = epoch.elapsed();
                if data.bk_watched {
                    for e in &data.bk_events {
                        let sent = e.bk_detail.as_ref().and_then(|d| d.t).unwrap();
                        mine.push((sent, now.saturating_sub(Duration::from_micros(sent))));
                    }
                }
                cursor = data.bk_events.last().unwrap().bk_cursor.clone();
            }
            samples.lock().extend(mine);
        }));
    }
    while ready.load(Ordering::SeqCst) < watchers as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut writer = Conn::open(addr).await;
    let path = format!("/api/v3/resources/host/{host}");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut acks = Vec::new();
    for _ in 0..rate * seconds {
        tick.tick().await;
        let t = epoch.elapsed().as_micros() as u64;
        writer.call::<Value>(Method::PUT, &path, &json!({ "t": t })).await;
        acks.push(epoch.elapsed().saturating_sub(Duration::from_micros(t)));
    }
    acks.sort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    // Wake the watchers so they notice the stop.
    writer.call::<Value>(Method::PUT, &path, &json!({ "t": epoch.elapsed().as_micros() as u64 })).await;
    for t in tasks {
        t.await.unwrap();
    }
    let by_write = std::mem::take(&mut *samples.lock());
    let mut first_and_last: std::collections::HashMap<u64, (Duration, Duration)> = std::collections::HashMap::new();
    for (sent, took) in &by_write {
        let e = first_and_last.entry(*sent).or_insert((*took, *took));
        *e = (e.0.min(*took), e.1.max(*took));
    }
    let mut firsts: Vec<Duration> = first_and_last.values().map(|v| v.0).collect();
    let mut lasts: Vec<Duration> = first_and_last.values().map(|v| v.1).collect();
    firsts.sort();
    lasts.sort();
    let mut samples: Vec<Duration> = by_write.into_iter().map(|(_, took)| took).collect();
    samples.sort();
    println!(
        "watch latency, {watchers} watchers, {rate} writes/s for {seconds} s ({} deliveries): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "  first watcher of each write: p50 {:.2} ms; last: p50 {:.2} ms",
        percentile(&firsts, 0.5).as_secs_f64() * 1e3,
        percentile(&lasts, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "  the write's own round trip (HTTP, commit, fsync): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&acks, 0.5).as_secs_f64() * 1e3,
        percentile(&acks, 0.99).as_secs_f64() * 1e3
    );
}

async fn throughput(addr: SocketAddr, hosts: &[u64], seconds: u64) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = hosts
        .iter()
        .map(|host| {
            let (done, host) = (done.clone(), *host);
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await;
                let path = format!("/api/v3/resources/host/{host}");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    conn.call::<Value>(Method::PUT, &path, &json!({ "n": n })).await;
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

/// Starts the local runner on a runtime of its own, as `switchyard serve` runs in a process of its
/// own: the load generators then wait on their own runtime, and a watcher's receive time is when
/// its bytes arrive, not when the server's scheduler gets round to polling the client's socket.
fn serve(memory: bool) -> (tokio::runtime::Runtime, Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = (!memory).then(|| dir.path().join("data"));
    let config = Config { backend: BackendConfig::Embedded(path), ..Config::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("server").build().unwrap();
    let running = runtime.block_on(async {
        let engine = Engine::open(config).await.unwrap();
        engine.ensure_operator_token(Some(TOKEN)).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        start(listener, engine, RunnerOptions { workers: false, ..RunnerOptions::default() }).unwrap()
    });
    (runtime, running, dir)
}

fn main() {
    let (server, running, _dir) = serve(flag("--memory"));
    let clients = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("client").build().unwrap();
    clients.block_on(drive(running.addr));
    server.block_on(running.stop());
}

async fn drive(addr: SocketAddr) {
    let mut conn = Conn::open(addr).await;
    let writers = arg("--writers", 32);
    let mut hosts = Vec::new();
    for i in 0..writers {
        let body = json!({ "bk_host_innerip": format!("10.9.0.{i}") });
        let created: Created = conn.call(Method::POST, "/api/v3/resources/host", &body).await.unwrap();
        hosts.push(created.bk_host_id);
    }
    let epoch = Instant::now();
    latency(addr, epoch, hosts[0], arg("--watchers", 100) as usize, arg("--rate", 20), arg("--latency-seconds", 10))
        .await;
    throughput(addr, &hosts, arg("--seconds", 5)).await;
}
