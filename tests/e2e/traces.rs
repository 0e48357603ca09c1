//! Traces: every accepted event is listed by channel and time, shows where it was routed and
//! every delivery attempt, gives back its content, and is gone once the trace retention is over.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::ports::Clock;

use crate::helpers::{Backend, Hook, Receiver, TestApp, aws_configured, event, eventually};

const WAIT: Duration = Duration::from_secs(10);

/// The list of a channel's traced events from `start` to `end` (ms), with more parameters.
async fn traced(app: &TestApp, channel: &str, start: i64, end: i64, more: &str) -> Value {
    let r =
        app.get(&format!("/v1/p1/traced-events?channel_id={channel}&start_time={start}&end_time={end}{more}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["result"], r.body["items"], "the spec's `result` and the usual `items` agree");
    r.body
}

/// `(event_id, subscription_name)` of each row.
fn rows(list: &Value) -> Vec<(String, String)> {
    list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap().to_owned(), r["subscription_name"].as_str().unwrap().to_owned()))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_failed_then_succeeded_shows_both_attempts_in_its_trace() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.script(&[500]);
    let ch = app.channel("p1", "orders").await;
    let sub = app.subscribe("p1", &ch, Hook::new("flaky", "shop", &rx.url("hook")).retries(3)).await;
    let start = now_ms();
    let published = event("e1", "shop", "order.created", json!({ "n": 1 }));
    app.put_events("p1", &ch, json!([published])).await;
    assert_eq!(rx.wait_for(2, WAIT).await.len(), 2);

    let list = traced(&app, &ch, start, now_ms(), "").await;
    assert_eq!((list["total"].as_u64(), list["size"].as_u64()), (Some(1), Some(1)));
    let row = &list["result"][0];
    assert_eq!(
        (&row["event_id"], &row["source_name"], &row["event_type"], &row["subscription_name"]),
        (&json!("e1"), &json!("shop"), &json!("order.created"), &json!("flaky"))
    );
    assert_eq!(
        (row["source_provider"].as_str(), row["subscription_id"].as_str()),
        (Some("CUSTOM"), sub["id"].as_str())
    );
    let received = row["event_received_time"].as_i64().unwrap();
    assert!(received >= start && received <= now_ms(), "received at {received}");
    let trace_id = row["trace_id"].as_str().unwrap().to_owned();

    let path = format!("/v1/p1/events/trace/detail/{trace_id}?channel_id={ch}");
    let done = eventually(WAIT, || async { app.get(&path).await.body["deliverList"][0]["successCounts"] == 1 }).await;
    assert!(done, "the second attempt is recorded");
    let trace = app.get(&path).await.body;
    assert_eq!(
        (&trace["eventId"], &trace["eventSource"], &trace["eventType"], &trace["channelId"], &trace["channelName"]),
        (&json!("e1"), &json!("shop"), &json!("order.created"), &json!(ch), &json!("orders"))
    );
    assert_eq!(trace["receiveTime"].as_str().unwrap().len(), "2023-03-17 18:37:38".len());
    let item = &trace["deliverList"][0];
    assert_eq!((&item["subscriptionId"], &item["subscriptionName"]), (&sub["id"], &json!("flaky")));
    assert_eq!(
        (item["successCounts"].as_u64(), item["failCounts"].as_u64(), item["allDeliverTimes"].as_u64()),
        (Some(1), Some(0), Some(2))
    );
    let target = &item["deliverTargetList"][0];
    assert_eq!(
        (&target["deliverTargetId"], &target["deliverTargetName"]),
        (&sub["targets"][0]["id"], &json!("WEBHOOK"))
    );
    assert_eq!(target["deliverStatus"], "SUCCESS");
    let attempts = target["deliverDetailList"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64, &str)> = attempts
        .iter()
        .map(|a| {
            let (status, code) = (a["deliverStatus"].as_str().unwrap(), a["deliverRspCode"].as_str().unwrap());
            (status, code, a["deliverAttempt"].as_u64().unwrap(), a["deliverErrorReason"].as_str().unwrap())
        })
        .collect();
    assert_eq!(summary, vec![("FAILED", "500", 1, "the target answered 500"), ("SUCCESS", "200", 2, "")]);
    for a in attempts {
        let ms: u64 = a["deliverConsuming"].as_str().unwrap().parse().expect("duration in ms");
        assert!(ms < 2000, "{ms} ms");
        assert!(!a["deliverTime"].as_str().unwrap().is_empty());
    }

    let content = app.get(&format!("/v1/p1/events/detail/{trace_id}")).await;
    assert_eq!((content.status.as_u16(), &content.body), (200, &published), "the event as published");

    let elsewhere = app.channel("p1", "other").await;
    let wrong = app.get(&format!("/v1/p1/events/trace/detail/{trace_id}?channel_id={elsewhere}")).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (404, "EG.00514001"));
    let missing = app.get(&format!("/v1/p1/events/trace/detail/{trace_id}")).await;
    assert_eq!((missing.status.as_u16(), missing.message()), (400, "channel_id: is required"));
    let malformed = app.get(&format!("/v1/p1/events/trace/detail/e1?channel_id={ch}")).await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.message().starts_with("trace_id: "), "{}", malformed.message());
    let other_project = app.get(&format!("/v1/p2/events/detail/{trace_id}")).await;
    assert_eq!((other_project.status.as_u16(), other_project.code()), (404, "EG.00514001"));
    app.stop().await;
}

async fn traced_events_are_listed_by_time_and_filters_with_paging(backend: Backend) {
    let (app, clock) = TestApp::spawn_with_clock(backend).await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let created = json!({ "type": [{ "op": "StringIn", "values": ["order.created"] }] });
    app.subscribe("p1", &ch, Hook::new("created", "shop", &rx.url("a")).filter(created)).await;
    app.subscribe("p1", &ch, Hook::new("everything", "shop", &rx.url("b"))).await;
    let t0 = clock.now_ms();
    let first = json!([
        event("e1", "shop", "order.created", json!({})),
        event("e2", "shop", "order.paid", json!({})),
        event("e3", "elsewhere", "order.created", json!({})),
    ]);
    assert_eq!(app.put_events("p1", &ch, first).await.body["failed_count"], 0);
    clock.advance(Duration::from_secs(10));
    let t1 = clock.now_ms();
    app.put_events("p1", &ch, json!([event("e4", "shop", "order.created", json!({}))])).await;
    let other = app.channel("p1", "other").await;
    app.put_events("p1", &other, json!([event("x1", "shop", "order.created", json!({}))])).await;

    // Newest first; one row per subscription an event was routed to, one for an unrouted event.
    let all = traced(&app, &ch, t0, t1, "").await;
    assert_eq!(all["total"], 6);
    let got = rows(&all);
    assert_eq!(&got[..2], &[("e4".into(), "created".into()), ("e4".into(), "everything".into())]);
    let mut older = got[2..].to_vec();
    older.sort();
    let expected: Vec<(String, String)> = [("e1", "created"), ("e1", "everything"), ("e2", "everything"), ("e3", "")]
        .iter()
        .map(|(e, s)| ((*e).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(older, expected);
    assert_eq!(all["result"][0]["event_received_time"], t1);

    // The time range.
    assert_eq!(traced(&app, &ch, t0, t1 - 1, "").await["total"], 4);
    assert_eq!(rows(&traced(&app, &ch, t1, t1 + 5000, "").await).len(), 2);
    assert_eq!(traced(&app, &ch, t1 + 1, t1 + 5000, "").await["total"], 0);

    // Filters.
    let filtered = |more: &'static str| {
        let app = &app;
        let ch = ch.clone();
        async move { rows(&traced(app, &ch, t0, t1, more).await) }
    };
    assert_eq!(filtered("&event_id=e1").await.len(), 2);
    assert_eq!(filtered("&source_name=elsewhere").await, vec![("e3".to_owned(), String::new())]);
    assert_eq!(filtered("&event_type=order.paid").await, vec![("e2".to_owned(), "everything".to_owned())]);
    let by_subscription = filtered("&subscription_name=created").await;
    assert_eq!(by_subscription.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(), vec!["e4", "e1"]);
    assert!(filtered("&event_id=e1&source_name=elsewhere").await.is_empty());

    // Paging.
    let page = traced(&app, &ch, t0, t1, "&limit=2&offset=1").await;
    assert_eq!((page["total"].as_u64(), page["size"].as_u64()), (Some(6), Some(2)));
    assert_eq!(rows(&page), got[1..3].to_vec());
    let tail = traced(&app, &ch, t0, t1, "&offset=5&limit=10").await;
    assert_eq!((tail["size"].as_u64(), rows(&tail)), (Some(1), got[5..].to_vec()));
    assert_eq!(traced(&app, &ch, t0, t1, "&limit=0").await["size"], 0);

    // Another channel's events are its own.
    assert_eq!(rows(&traced(&app, &other, t0, t1, "").await), vec![("x1".to_owned(), String::new())]);

    // Bad parameters name themselves; an unknown channel is not found.
    for (query, field) in [
        (format!("start_time={t0}&end_time={t1}"), "channel_id"),
        (format!("channel_id={ch}&end_time={t1}"), "start_time"),
        (format!("channel_id={ch}&start_time=soon&end_time={t1}"), "start_time"),
        (format!("channel_id={ch}&start_time={t1}&end_time={t0}"), "end_time"),
        (format!("channel_id={ch}&start_time={t0}&end_time={t1}&limit=-1"), "limit"),
        (format!("channel_id={ch}&start_time={t0}&end_time={t1}&limit=1001"), "limit"),
        (format!("channel_id={ch}&start_time={t0}&end_time={t1}&offset=x"), "offset"),
    ] {
        let r = app.get(&format!("/v1/p1/traced-events?{query}")).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"), "{query}");
        assert!(r.message().starts_with(&format!("{field}: ")), "{query}: {}", r.message());
    }
    let unknown = app.get(&format!("/v1/p1/traced-events?channel_id=nope&start_time={t0}&end_time={t1}")).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "EG.00514001"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_events_are_listed_by_time_and_filters_with_paging_embedded() {
    traced_events_are_listed_by_time_and_filters_with_paging(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_events_are_listed_by_time_and_filters_with_paging_aws() {
    if aws_configured() {
        traced_events_are_listed_by_time_and_filters_with_paging(Backend::Aws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_trace_and_its_event_are_gone() {
    let (app, clock) = TestApp::spawn_with_clock(Backend::Memory).await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("all", "shop", &rx.url("h"))).await;
    let t0 = clock.now_ms();
    app.put_events("p1", &ch, json!([event("old", "shop", "t", json!({}))])).await;
    rx.wait_for(1, WAIT).await;
    let list = traced(&app, &ch, t0, t0 + 1000, "").await;
    let trace_id = list["result"][0]["trace_id"].as_str().unwrap().to_owned();
    let trace_path = format!("/v1/p1/events/trace/detail/{trace_id}?channel_id={ch}");
    let event_path = format!("/v1/p1/events/detail/{trace_id}");
    assert!(
        eventually(WAIT, || async { app.get(&trace_path).await.body["deliverList"][0]["successCounts"] == 1 }).await
    );
    assert_eq!(app.get(&event_path).await.status, 200);

    // Just before the 24 hours are over it is all there; just after, none of it.
    clock.advance(Duration::from_secs(24 * 3600 - 2));
    assert_eq!(traced(&app, &ch, t0, t0 + 1000, "").await["total"], 1);
    clock.advance(Duration::from_secs(3));
    assert_eq!(traced(&app, &ch, t0, t0 + 1000, "").await["total"], 0);
    for path in [&trace_path, &event_path] {
        let r = app.get(path).await;
        assert_eq!((r.status.as_u16(), r.code()), (404, "EG.00514001"), "{path}: {}", r.body);
    }
    app.stop().await;
}
