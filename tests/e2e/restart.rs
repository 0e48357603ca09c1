//! Durability across restarts of the local runner.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, Hook, Receiver, TestApp, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_accepted_before_a_restart_are_delivered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let rx = Receiver::start().await;

    // The first runner accepts events but dies before delivering them (no workers).
    let first = TestApp::spawn_on(Backend::File(path.clone()), false).await;
    let ch = first.channel("p1", "orders").await;
    first.subscribe("p1", &ch, Hook::new("s", "shop", &rx.url("h")).retries(3)).await;
    let events: Vec<_> = (0..20).map(|i| event(&format!("e{i}"), "shop", "t", json!({ "i": i }))).collect();
    assert_eq!(first.put_events("p1", &ch, json!(events)).await.body["failed_count"], 0);
    first.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.hits().is_empty());

    // The second runner on the same data delivers every one of them, once.
    let second = TestApp::spawn_on(Backend::File(path), true).await;
    let hits = rx.wait_for(20, Duration::from_secs(10)).await;
    let mut ids: Vec<String> = hits.iter().map(|h| h.json()["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    // Resources survived too.
    assert_eq!(second.get(&format!("/v1/p1/channels/{ch}")).await.body["name"], "orders");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 20);
    second.stop().await;
}
