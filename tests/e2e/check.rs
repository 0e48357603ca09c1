//! CheckPutEvents: says whether each source and event would be routed anywhere, and why not,
//! without storing or delivering anything.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::keys;
use switchyard::model::channel::default_channel_id;

use crate::helpers::{Hook, Receiver, TestApp, event};

const WAIT: Duration = Duration::from_secs(10);

/// Disables a subscription through ExecuteSubscriptionOperation.
async fn disable(app: &TestApp, project: &str, id: &str) {
    let r = app
        .post(
            &format!("/v1/{project}/subscriptions/operation"),
            &json!({ "subscription_ids": [id], "operation": "DISABLE" }),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["failed_count"].as_u64()), (200, Some(0)), "{}", r.body);
}

fn reasons(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|c| c["reason"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_put_events_says_why_an_event_would_go_nowhere_without_publishing_it() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let created = json!({ "type": [{ "op": "StringIn", "values": ["order.created"] }] });
    app.subscribe("p1", &ch, Hook::new("created-only", "shop", &rx.url("a")).filter(created.clone())).await;
    let legacy = app.subscribe("p1", &ch, Hook::new("legacy-hook", "legacy", &rx.url("b"))).await;
    disable(&app, "p1", legacy["id"].as_str().unwrap()).await;
    app.put_events("p1", &ch, json!([event("seen", "shop", "order.created", json!({}))])).await;
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
    let log = keys::channel_log("p1", &ch);
    let head = app.engine.store().log_head(&log).await.unwrap();

    let body = json!({
        "channel_id": ch,
        "events": [
            event("a", "shop", "order.created", json!({})),
            event("b", "shop", "order.paid", json!({})),
            event("c", "legacy", "x", json!({})),
            event("d", "nobody", "x", json!({})),
            { "id": "e", "source": "shop", "specversion": "1.0" },
            event("seen", "shop", "order.created", json!({})),
            event("a", "shop", "order.created", json!({})),
        ],
        "sources": [
            { "channel_id": ch, "source_name": "shop" },
            { "channel_id": ch, "source_name": "legacy" },
            { "source_name": "shop" },
            { "channel_id": "nope", "source_name": "shop" },
        ],
    });
    let r = app.post("/v1/p1/events/check", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = &r.body["events"];
    assert_eq!(
        reasons(events),
        vec![
            "ROUTED",
            "FILTER_NOT_MATCHED",
            "SUBSCRIPTIONS_STOPPED",
            "NO_SUBSCRIPTION",
            "INVALID_EVENT",
            "DUPLICATE",
            "DUPLICATE"
        ]
    );
    let ids: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["a", "b", "c", "d", "e", "seen", "a"]);
    assert_eq!(
        (&events[0]["check_result"], &events[0]["check_detail"]),
        (&json!(true), &json!("routed to created-only"))
    );
    let rejected = &events[1]["subscriptions"][0];
    assert_eq!(
        (&rejected["subscription_name"], &rejected["status"], &rejected["result"], &rejected["matched"]),
        (&json!("created-only"), &json!("CREATED"), &json!("FILTER_NOT_MATCHED"), &json!(false))
    );
    assert_eq!(rejected["filter"], created, "the filter that rejected it is shown");
    assert_eq!(events[2]["subscriptions"][0]["status"], "DISABLED");
    assert!(events[3]["check_detail"].as_str().unwrap().contains("listen to legacy, shop"), "{}", events[3]);
    assert_eq!(
        (&events[4]["field"], &events[4]["error_code"], &events[4]["check_detail"]),
        (&json!("events[4].type"), &json!("EG.00513000"), &json!("events[4].type: is required"))
    );
    assert!(events[5]["check_detail"].as_str().unwrap().contains("within the retention window"));
    assert!(events[6]["check_detail"].as_str().unwrap().contains("earlier in this call"));

    let sources = &r.body["sources"];
    assert_eq!(reasons(sources), vec!["ROUTED", "SUBSCRIPTIONS_STOPPED", "NO_SUBSCRIPTION", "CHANNEL_NOT_FOUND"]);
    assert_eq!((&sources[0]["source_name"], &sources[0]["check_result"]), (&json!("shop"), &json!(true)));
    assert_eq!(sources[2]["channel_id"], default_channel_id("p1"), "no channel_id: the default channel");
    assert_eq!(r.body["failed_count"], 6 + 3);

    // Nothing was stored or delivered: the log is as it was, and the checked event, published
    // now, is new and delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), 1);
    assert_eq!(app.engine.store().log_head(&log).await.unwrap(), head);
    app.put_events("p1", &ch, json!([event("a", "shop", "order.created", json!({}))])).await;
    assert_eq!(rx.wait_for(2, WAIT).await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_put_events_refuses_bad_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let empty = app.post("/v1/p1/events/check", &json!({})).await;
    assert_eq!(empty.body, json!({ "failed_count": 0, "sources": [], "events": [] }));
    let too_many: Vec<Value> = (0..101).map(|i| event(&i.to_string(), "s", "t", json!({}))).collect();
    for (body, status, start) in [
        (json!({ "sources": [{ "channel_id": ch }] }), 400, "sources[0].source_name: is required"),
        (json!({ "sources": [{ "source_name": 5 }] }), 400, "sources[0].source_name: invalid type"),
        (json!({ "events": "x" }), 400, "events: invalid type"),
        (json!({ "channel_id": ch, "events": too_many }), 400, "events: at most 100 events"),
        (json!({ "channel_id": "nope", "events": [event("a", "s", "t", json!({}))] }), 404, "channel nope not found"),
    ] {
        let r = app.post("/v1/p1/events/check", &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.message().starts_with(start), "{body}: {}", r.message());
    }
    app.stop().await;
}
