//! Subscription status and delivery fairness: a disabled subscription receives nothing and gets no
//! backlog when enabled again; ExecuteSubscriptionOperation answers per subscription; a slow
//! target cannot hold up a fast one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::config::BackendConfig;
use switchyard::engine::trace::AttemptStatus;

use crate::helpers::{Hook, Receiver, TestApp, event, eventually, test_config};

const WAIT: Duration = Duration::from_secs(10);

async fn operate(app: &TestApp, project: &str, ids: &[&str], operation: &str) -> crate::helpers::Reply {
    app.post(
        &format!("/v1/{project}/subscriptions/operation"),
        &json!({ "subscription_ids": ids, "operation": operation }),
    )
    .await
}

fn ids(hits: &[crate::helpers::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.json()["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_subscription_is_skipped_and_once_enabled_gets_only_new_events() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let s = app.subscribe("p1", &ch, Hook::new("toggled", "shop", &rx.url("h")).retries(3)).await;
    let id = s["id"].as_str().unwrap();

    app.put_events("p1", &ch, json!([event("before", "shop", "t", json!({}))])).await;
    rx.wait_for(1, WAIT).await;
    let r = operate(&app, "p1", &[id], "DISABLE").await;
    assert_eq!(r.body, json!({ "failed_count": 0, "events": [{ "subscription_id": id }] }));
    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{id}")).await.body["status"], "DISABLED");
    app.put_events("p1", &ch, json!([event("while-disabled", "shop", "t", json!({}))])).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(ids(&rx.hits()), vec!["before"], "nothing while disabled");

    assert_eq!(operate(&app, "p1", &[id], "ENABLE").await.body["failed_count"], 0);
    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{id}")).await.body["status"], "ENABLED");
    app.put_events("p1", &ch, json!([event("after", "shop", "t", json!({}))])).await;
    rx.wait_for(2, WAIT).await;
    // The sweeper and the workers run on; the event published while disabled never comes.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(ids(&rx.hits()), vec!["before", "after"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_pending_while_disabled_is_not_delivered_after_enabling() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.script(&[500]);
    let ch = app.channel("p1", "orders").await;
    let s = app.subscribe("p1", &ch, Hook::new("flaky", "shop", &rx.url("h")).retries(5)).await;
    let id = s["id"].as_str().unwrap();
    app.put_events("p1", &ch, json!([event("old", "shop", "t", json!({}))])).await;
    rx.wait_for(1, WAIT).await;
    // The retry is due in about 100 ms: disable and enable again before it comes.
    operate(&app, "p1", &[id], "DISABLE").await;
    operate(&app, "p1", &[id], "ENABLE").await;
    let engine = app.engine.clone();
    let discarded =
        || async { engine.attempts("p1", &ch, 1).await.unwrap().iter().any(|a| a.status == AttemptStatus::Discarded) };
    assert!(eventually(WAIT, discarded).await, "the retry is discarded and recorded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 1, "no backlog after enabling");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_subscription_operation_answers_for_each_subscription() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let other = app.channel("p2", "orders").await;
    let s1 = app.subscribe("p1", &ch, Hook::new("s1", "shop", "http://127.0.0.1:9/a")).await;
    let s2 = app.subscribe("p1", &ch, Hook::new("s2", "shop", "http://127.0.0.1:9/b")).await;
    let foreign = app.subscribe("p2", &other, Hook::new("s3", "shop", "http://127.0.0.1:9/c")).await;
    let (id1, id2, id3) = (s1["id"].as_str().unwrap(), s2["id"].as_str().unwrap(), foreign["id"].as_str().unwrap());

    let r = operate(&app, "p1", &[id1, "missing", id2, id3], "DISABLE").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["failed_count"], 2);
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events[0], json!({ "subscription_id": id1 }));
    assert_eq!(events[2], json!({ "subscription_id": id2 }));
    for (i, missing) in [(1, "missing"), (3, id3)] {
        assert_eq!(events[i]["subscription_id"], missing);
        assert_eq!(events[i]["error_code"], "EG.00514001", "another project's subscription is not found");
        assert_eq!(events[i]["error_msg"], format!("subscription {missing} not found"));
    }
    for id in [id1, id2] {
        assert_eq!(app.get(&format!("/v1/p1/subscriptions/{id}")).await.body["status"], "DISABLED");
    }
    assert_eq!(app.get(&format!("/v1/p2/subscriptions/{id3}")).await.body["status"], "CREATED", "untouched");

    let cases: Vec<(Value, &str)> = vec![
        (json!({ "subscription_ids": [id1], "operation": "PAUSE" }), "operation: must be ENABLE or DISABLE"),
        (json!({ "subscription_ids": [id1] }), "operation: is required"),
        (json!({ "operation": "ENABLE" }), "subscription_ids: is required"),
        (json!({ "subscription_ids": [], "operation": "ENABLE" }), "subscription_ids: must name 1 to 10"),
        (json!({ "subscription_ids": vec![id1; 11], "operation": "ENABLE" }), "subscription_ids: must name 1 to 10"),
        (json!({ "subscription_ids": "x", "operation": "ENABLE" }), "subscription_ids: invalid type"),
    ];
    for (body, message) in cases {
        let r = app.post("/v1/p1/subscriptions/operation", &body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"), "{body}");
        assert!(r.message().starts_with(message), "{} should start with {message}", r.message());
    }
    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{id1}")).await.body["status"], "DISABLED", "nothing changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_holds_at_most_its_bound_and_does_not_starve_a_fast_one() {
    let mut config = test_config(BackendConfig::Embedded(None));
    config.delivery.concurrency = 4;
    config.delivery.per_target_in_flight = 2;
    let app = TestApp::spawn_with(config, true).await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.slow(Duration::from_millis(1000));
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("slow", "slow", &slow.url("s"))).await;
    app.subscribe("p1", &ch, Hook::new("fast", "fast", &fast.url("f"))).await;
    let slow_events: Vec<Value> = (0..8).map(|i| event(&format!("s{i}"), "slow", "t", json!({}))).collect();
    let fast_events: Vec<Value> = (0..8).map(|i| event(&format!("f{i}"), "fast", "t", json!({}))).collect();
    let started = Instant::now();
    app.put_events("p1", &ch, Value::Array(slow_events)).await;
    app.put_events("p1", &ch, Value::Array(fast_events)).await;

    // Without the bound the slow target would take all four slots for about two seconds.
    let fast_hits = fast.wait_for(8, WAIT).await;
    let fast_done = started.elapsed();
    let slow_by_then = slow.hits().len();
    assert_eq!(fast_hits.len(), 8);
    assert!(fast_done < Duration::from_millis(1500), "fast target done after {fast_done:?}");
    assert!(slow_by_then < 8, "the slow target was still being served ({slow_by_then} done)");
    assert_eq!(slow.wait_for(8, WAIT * 2).await.len(), 8, "the slow target gets everything in the end");
    assert!(slow.max_in_flight() <= 2, "at most 2 in flight to the slow target, saw {}", slow.max_in_flight());
    // Deferrals are not attempts: each slow event was delivered on its first attempt.
    for seq in 1..=8 {
        let engine = app.engine.clone();
        let traced = || async { !engine.attempts("p1", &ch, seq).await.unwrap().is_empty() };
        assert!(eventually(WAIT, traced).await, "event {seq} traced");
        let attempts = app.engine.attempts("p1", &ch, seq).await.unwrap();
        assert_eq!(
            attempts.iter().map(|a| (a.attempt, a.status)).collect::<Vec<_>>(),
            vec![(1, AttemptStatus::Success)],
            "event {seq}"
        );
    }
    app.stop().await;
}
