//! Delivery: once, signed, retried with backoff, dead-lettered when retries are spent, routed by
//! source and filter, deduplicated, and never lost when routing is interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard::config::queues;
use switchyard::engine::Ports;
use switchyard::engine::trace::AttemptStatus;
use switchyard::keys;
use switchyard::ports::{Message, Queue, QueueError, Received, SystemClock};
use switchyard::{Engine, backend::embedded::Embedded, config::queue_specs};

use crate::helpers::{Backend, Hook, Receiver, TestApp, aws_configured, event, eventually, test_config};

const WAIT: Duration = Duration::from_secs(10);

/// Verifies a Standard Webhooks signature with an implementation of our own.
fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|s| s == expected)
}

async fn delivered_once_with_signed_headers_and_body(app: TestApp) {
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("all-orders", "shop", &rx.url("hook")).retries(3)).await;
    let published = event("evt-1", "shop", "order.created", json!({ "order": 42, "items": ["a", "b"] }));
    let r = app.put_events("p1", &ch, json!([published])).await;
    assert_eq!(r.body, json!({ "failed_count": 0, "events": [{ "event_id": "evt-1" }] }));

    let hits = rx.wait_for(1, WAIT).await;
    assert_eq!(hits.len(), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.hits().len(), 1, "delivered exactly once");
    let hit = &hits[0];
    assert_eq!(hit.json(), published, "the body is the event as published");
    assert!(hit.headers["content-type"].starts_with("application/cloudevents+json"));
    assert_eq!(hit.headers["webhook-id"], "evt-1", "the event id is the idempotency key");
    let ts: i64 = hit.headers["webhook-timestamp"].parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - ts).abs() < 60);
    let secret = app.get("/v1/p1/signing-secret").await.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(verify(&secret, "evt-1", &hit.headers["webhook-timestamp"], &hit.body, &hit.headers["webhook-signature"]));
    assert!(!verify(&secret, "evt-2", &hit.headers["webhook-timestamp"], &hit.body, &hit.headers["webhook-signature"]));
    let stored = app.engine.store().get(&keys::project("p1"), keys::SETTINGS).await.unwrap().unwrap();
    assert!(!stored.data.to_string().contains(&secret), "the project secret is stored sealed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_once_with_signed_headers_and_body_embedded() {
    delivered_once_with_signed_headers_and_body(TestApp::spawn().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_once_with_signed_headers_and_body_aws() {
    if aws_configured() {
        delivered_once_with_signed_headers_and_body(TestApp::spawn_on(Backend::Aws, true).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_secret_signs_instead_of_the_project_secret() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = json!({
        "name": "own-secret", "channel_id": ch,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }],
        "targets": [{ "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": rx.url("h"), "secret": secret },
                      "transform": { "type": "ORIGINAL" } }]
    });
    let created = app.post("/v1/p1/subscriptions", &body).await;
    assert_eq!(created.body["targets"][0]["detail"]["secret"], "******", "secrets are never shown");
    let id = created.body["id"].as_str().unwrap();
    let stored = app.engine.store().get(&keys::project("p1"), &keys::subscription(id)).await.unwrap().unwrap();
    assert!(!stored.data.to_string().contains(secret), "the secret is stored sealed, not as given");
    app.put_events("p1", &ch, json!([event("e", "shop", "t", json!(1))])).await;
    let hit = rx.wait_for(1, WAIT).await.remove(0);
    assert!(verify(secret, "e", &hit.headers["webhook-timestamp"], &hit.body, &hit.headers["webhook-signature"]));

    // Sent back masked, the stored secret is kept and still signs.
    let mut replaced = created.body.clone();
    replaced["description"] = json!("kept secret");
    let r = app.put(&format!("/v1/p1/subscriptions/{id}"), &replaced).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    app.put_events("p1", &ch, json!([event("e2", "shop", "t", json!(2))])).await;
    let hit = rx.wait_for(2, WAIT).await.remove(1);
    assert!(verify(secret, "e2", &hit.headers["webhook-timestamp"], &hit.body, &hit.headers["webhook-signature"]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.script(&[500, 503]);
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("flaky", "shop", &rx.url("hook")).retries(3)).await;
    app.put_events("p1", &ch, json!([event("e1", "shop", "t", json!({}))])).await;

    let hits = rx.wait_for(3, WAIT).await;
    assert_eq!(hits.iter().map(|h| h.status).collect::<Vec<_>>(), vec![500, 503, 200]);
    // Backoff: about 100 ms, then about 200 ms (±20 %).
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(75), "{:?}", hits[1].at - hits[0].at);
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(150), "{:?}", hits[2].at - hits[1].at);
    assert!(hits.iter().all(|h| h.json()["id"] == "e1"));

    let engine = app.engine.clone();
    assert!(eventually(WAIT, || async { engine.attempts("p1", &ch, 1).await.unwrap().len() == 3 }).await);
    let attempts = app.engine.attempts("p1", &ch, 1).await.unwrap();
    let summary: Vec<(u32, AttemptStatus, Option<u16>)> =
        attempts.iter().map(|a| (a.attempt, a.status, a.response_code)).collect();
    assert_eq!(
        summary,
        vec![
            (1, AttemptStatus::Failed, Some(500)),
            (2, AttemptStatus::Failed, Some(503)),
            (3, AttemptStatus::Success, Some(200))
        ]
    );
    assert!(attempts.iter().all(|a| a.subscription_name == "flaky" && a.target_name == "WEBHOOK" && !a.dead_lettered));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 3, "no attempt after the success");
    app.stop().await;
}

async fn dead_letters(app: &TestApp) -> Vec<Received> {
    app.engine.queue().receive(queues::DEAD_LETTER, 10, Duration::from_secs(1), Duration::from_secs(30)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_always_fails_leaves_the_event_dead_lettered_with_every_attempt_recorded() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.always(500);
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("broken", "shop", &rx.url("hook")).retries(2)).await;
    let published = event("doomed", "shop", "t", json!({ "x": 1 }));
    app.put_events("p1", &ch, json!([published])).await;

    assert_eq!(rx.wait_for(3, WAIT).await.len(), 3);
    let engine = app.engine.clone();
    assert!(eventually(WAIT, || async { engine.attempts("p1", &ch, 1).await.unwrap().len() == 3 }).await);
    let attempts = app.engine.attempts("p1", &ch, 1).await.unwrap();
    assert!(attempts.iter().all(|a| a.status == AttemptStatus::Failed && a.response_code == Some(500)));
    assert_eq!(attempts.iter().map(|a| a.dead_lettered).collect::<Vec<_>>(), vec![false, false, true]);

    let dead = dead_letters(&app).await;
    assert_eq!(dead.len(), 1);
    let body: Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(body["event"], published);
    assert_eq!(body["attempts"], 3);
    assert_eq!(body["last_response_code"], 500);
    assert_eq!(body["delivery"]["c"], ch.as_str());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.hits().len(), 3, "no attempt after the last retry");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_routed_by_source_and_filter_to_every_matching_subscription() {
    let app = TestApp::spawn().await;
    let (rx_a, rx_b) = (Receiver::start().await, Receiver::start().await);
    let ch = app.channel("p1", "orders").await;
    let big = json!({ "data": { "amount": [{ "op": "NumberIn", "values": [100, 200] }] } });
    let created = json!({ "type": [{ "op": "StringIn", "values": ["order.created"] }] });
    app.subscribe("p1", &ch, Hook::new("big-orders", "shop", &rx_a.url("a")).filter(big)).await;
    app.subscribe("p1", &ch, Hook::new("created", "shop", &rx_b.url("b")).filter(created)).await;
    let events = json!([
        event("1", "shop", "order.created", json!({ "amount": 100 })),
        event("2", "shop", "order.paid", json!({ "amount": 200 })),
        event("3", "shop", "order.created", json!({ "amount": 5 })),
        event("4", "elsewhere", "order.created", json!({ "amount": 100 })),
    ]);
    assert_eq!(app.put_events("p1", &ch, events).await.body["failed_count"], 0);
    let a = rx_a.wait_for(2, WAIT).await;
    let b = rx_b.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = |hits: Vec<crate::helpers::Hit>| {
        let mut ids: Vec<String> = hits.iter().map(|h| h.json()["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(a), vec!["1", "2"]);
    assert_eq!(ids(b), vec!["1", "3"]);
    assert_eq!(ids(rx_a.hits()), vec!["1", "2"], "nothing more arrived");
    assert_eq!(ids(rx_b.hits()), vec!["1", "3"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_acknowledged_but_routed_once() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("all", "shop", &rx.url("h"))).await;
    let e = event("same", "shop", "t", json!({}));
    let first = app.put_events("p1", &ch, json!([e, e])).await;
    assert_eq!(first.body, json!({ "failed_count": 0, "events": [{ "event_id": "same" }, { "event_id": "same" }] }));
    let again = app.put_events("p1", &ch, json!([e])).await;
    assert_eq!(again.body["failed_count"], 0);
    // The same id from another source is another event.
    app.put_events("p1", &ch, json!([event("same", "other", "t", json!({}))])).await;
    rx.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.hits().len(), 1);
    assert_eq!(app.engine.store().log_head(&switchyard::keys::channel_log("p1", &ch)).await.unwrap(), 2);
    app.stop().await;
}

/// A queue whose first sends to the delivery queue fail, as if the function died before routing.
struct FailingFirstSends {
    inner: Arc<dyn Queue>,
    failures_left: AtomicUsize,
}

#[async_trait]
impl Queue for FailingFirstSends {
    async fn send_batch(&self, queue: &str, messages: Vec<Message>) -> Result<(), QueueError> {
        if queue == queues::DELIVERY && self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable("injected failure".into()));
        }
        self.inner.send_batch(queue, messages).await
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
        vis: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(queue, max, wait, vis).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(&self, queue: &str, receipt: &str, vis: Duration) -> Result<(), QueueError> {
        self.inner.change_visibility(queue, receipt, vis).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_event_whose_routing_failed_is_routed_by_the_sweeper() {
    let config = test_config(switchyard::config::BackendConfig::Embedded(None));
    let embedded = Embedded::in_memory(Arc::new(SystemClock), queue_specs()).await.unwrap();
    let queue = Arc::new(FailingFirstSends { inner: Arc::new(embedded.queue), failures_left: AtomicUsize::new(1) });
    let ports = Ports {
        store: Arc::new(embedded.store),
        queue,
        clock: Arc::new(SystemClock),
        outbound: switchyard::ports::outbound::shared(config.delivery.address_policy).unwrap(),
    };
    let app = TestApp::spawn_engine(Engine::new(ports, config), true).await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("all", "shop", &rx.url("h"))).await;
    let published = std::time::Instant::now();
    let r = app.put_events("p1", &ch, json!([event("kept", "shop", "t", json!({}))])).await;
    assert_eq!(
        r.body,
        json!({ "failed_count": 0, "events": [{ "event_id": "kept" }] }),
        "accepted despite the failure"
    );
    let hits = rx.wait_for(1, WAIT).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].json()["id"], "kept");
    assert!(hits[0].at - published >= Duration::from_millis(300), "routed by the sweeper after the grace period");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.hits().len(), 1, "the sweeper routed it once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_a_refused_address_is_rejected_when_subscribing() {
    // Without the local runner's loopback allowance, loopback targets are refused.
    let mut config = test_config(switchyard::config::BackendConfig::Embedded(None));
    config.delivery.address_policy = switchyard::ports::AddressPolicy::default();
    let app = TestApp::spawn_with(config, true).await;
    let ch = app.channel("p1", "orders").await;
    let r = app
        .post(
            "/v1/p1/subscriptions",
            &json!({
                "name": "to-localhost", "channel_id": ch,
                "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }],
                "targets": [{ "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": "http://127.0.0.1:9/x" },
                              "transform": { "type": "ORIGINAL" } }]
            }),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "EG.00513003");
    assert!(r.message().starts_with("targets[0].detail.url: loopback address"), "{}", r.message());
    app.stop().await;
}
