//! Transforms end to end: a `VARIABLE` subscription's receiver gets the rendered body in
//! CloudEvents binary mode; a transform that cannot be rendered is refused when written or, when
//! only the event shows it, dead-lettered with the reason in the trace.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::config::queues;
use switchyard::engine::trace::AttemptStatus;

use crate::helpers::{Receiver, TestApp, event, eventually};

const WAIT: Duration = Duration::from_secs(10);

/// A subscription of `shop` events whose webhook target has `transform`.
fn spec(channel: &str, name: &str, url: &str, transform: Value) -> Value {
    json!({
        "name": name, "channel_id": channel,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }],
        "targets": [{ "name": "WEBHOOK", "provider_type": "CUSTOM", "retry_times": 0,
                      "detail": { "url": url }, "transform": transform }]
    })
}

/// GIVEN a subscription with a VARIABLE transform, WHEN one event is published, THEN the
/// receiver gets the rendered body as JSON, with the event's attributes in `ce-*` headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_transform_delivers_the_rendered_body() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let transform = json!({
        "type": "VARIABLE",
        "value": json!({ "order": "$.data.order", "customer": "$.data.customer", "note": "$.data.note",
                         "coupon": "$.data.coupon", "channel": "web" }).to_string(),
        "template": concat!(
            r#"{"order": ${order}, "customer": ${customer}, "note": "${note}", "#,
            r#""via": "${channel}", "coupon": "${coupon!"none"}"}"#
        )
    });
    let r = app.post("/v1/p1/subscriptions", &spec(&ch, "rendered", &rx.url("hook"), transform.clone())).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["targets"][0]["transform"], transform, "the transform is stored as given");

    let note = "said \"ship it\" \\ ✓";
    let published =
        event("evt-7", "shop", "order.created", json!({ "order": 42, "customer": { "id": "c-1" }, "note": note }));
    let r = app.put_events("p1", &ch, json!([published])).await;
    assert_eq!(r.body["failed_count"], 0, "{}", r.body);

    let hits = rx.wait_for(1, WAIT).await;
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(
        hit.json(),
        json!({ "order": 42, "customer": { "id": "c-1" }, "note": note, "via": "web", "coupon": "none" })
    );
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(hit.headers["ce-id"], "evt-7");
    assert_eq!(hit.headers["ce-source"], "shop");
    assert_eq!(hit.headers["ce-type"], "order.created");
    assert_eq!(hit.headers["ce-specversion"], "1.0");
    assert_eq!(hit.headers["webhook-id"], "evt-7");
    app.stop().await;
}

/// GIVEN transforms that cannot work, WHEN they are written, THEN they are refused with
/// EG.00513000 naming the field; GIVEN one that only the event breaks, THEN the delivery is
/// dead-lettered and the trace says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_transforms_are_refused_or_dead_lettered_with_the_reason() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let refused = [
        (json!({ "type": "VARIABLE", "value": "{\"HC.x\": 1}", "template": "${HC.x}" }), "must not start with \"HC.\""),
        (json!({ "type": "VARIABLE", "value": "{\"p\": \"$.data[\"}", "template": "${p}" }), "is not a valid JSONPath"),
        (json!({ "type": "VARIABLE", "value": "{\"p\": \"$.id\"}", "template": "${q}" }), "${q} names no variable"),
        (json!({ "type": "CONSTANT" }), "is required"),
    ];
    for (transform, problem) in refused {
        let r = app.post("/v1/p1/subscriptions", &spec(&ch, "refused", &rx.url("hook"), transform)).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"), "{}", r.body);
        assert!(r.message().starts_with("targets[0].transform."), "{}", r.message());
        assert!(r.message().contains(problem), "{} should say {problem}", r.message());
    }

    let unquoted = json!({ "type": "VARIABLE", "value": "{\"s\": \"$.data.s\"}", "template": "{\"s\": ${s}}" });
    let r = app.post("/v1/p1/subscriptions", &spec(&ch, "unquoted", &rx.url("hook"), unquoted)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    app.put_events("p1", &ch, json!([event("e1", "shop", "t", json!({ "s": "a string" }))])).await;

    let engine = app.engine.clone();
    assert!(eventually(WAIT, || async { engine.attempts("p1", &ch, 1).await.unwrap().len() == 1 }).await);
    let attempt = &app.engine.attempts("p1", &ch, 1).await.unwrap()[0];
    assert_eq!((attempt.status, attempt.dead_lettered), (AttemptStatus::Failed, true));
    let reason = attempt.error.clone().unwrap_or_default();
    assert!(reason.starts_with("transform: the rendered body is not JSON"), "{reason}");
    let dead = app.engine.queue().receive(queues::DEAD_LETTER, 10, Duration::from_secs(1), WAIT).await.unwrap();
    assert_eq!(dead.len(), 1);
    let body: Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(body["reason"], reason.as_str());
    assert!(rx.hits().is_empty(), "nothing was sent");
    app.stop().await;
}

/// GIVEN three subscriptions of one source — two whose filters (native and EventBridge form)
/// match and one whose filter does not — with four targets of different kinds and transforms,
/// WHEN one event is published, THEN each matching target gets its own rendering of it exactly
/// once and the third subscription's receiver gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_fans_out_to_every_matching_target_each_with_its_own_transform() {
    let app = TestApp::spawn().await;
    let receivers =
        [Receiver::start().await, Receiver::start().await, Receiver::start().await, Receiver::start().await];
    let elsewhere = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let subscription = |name: &str, filter: Value, targets: Value| {
        json!({ "name": name, "channel_id": ch, "targets": targets,
                "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": filter }] })
    };
    let webhook = |url: String, transform: Value| json!({ "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": url }, "transform": transform });
    let all = subscription(
        "all-orders",
        json!({}),
        json!([
            webhook(receivers[0].url("original"), json!({ "type": "ORIGINAL" })),
            webhook(receivers[1].url("constant"), json!({ "type": "CONSTANT", "value": "an order came in" })),
        ]),
    );
    let big = subscription(
        "big-orders",
        json!({ "$pattern": "eventbridge", "data": { "amount": [{ "numeric": [">", 100] }] } }),
        json!([
            webhook(
                receivers[2].url("variable"),
                json!({ "type": "VARIABLE", "value": json!({ "amount": "$.data.amount" }).to_string(),
                        "template": r#"{"big": ${amount}}"# }),
            ),
            { "name": "HTTP", "provider_type": "CUSTOM",
              "transform": { "type": "VARIABLE", "value": json!({ "who": "$.data.customer" }).to_string(),
                             "template": "customer ${who}" },
              "apigw_detail": { "url": receivers[3].url("http"), "invocation_http_parameters": {
                  "header_parameters": [{ "key": "X-Team", "value": "billing", "is_value_secret": false }] } } },
        ]),
    );
    let eu = subscription(
        "eu-orders",
        json!({ "data": { "region": [{ "op": "StringIn", "values": ["eu-1"] }] } }),
        json!([webhook(elsewhere.url("eu"), json!({ "type": "ORIGINAL" }))]),
    );
    for body in [all, big, eu] {
        let r = app.post("/v1/p1/subscriptions", &body).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    }

    let published =
        event("evt-fan", "shop", "order.created", json!({ "amount": 250, "customer": "c-9", "region": "us-1" }));
    let r = app.put_events("p1", &ch, json!([published.clone()])).await;
    assert_eq!(r.body["failed_count"], 0, "{}", r.body);

    let bodies: Vec<Vec<u8>> = {
        let mut out = Vec::new();
        for rx in &receivers {
            let hits = rx.wait_for(1, WAIT).await;
            assert_eq!(hits.len(), 1, "each target gets the event once");
            out.push(hits[0].body.to_vec());
        }
        out
    };
    assert_eq!(serde_json::from_slice::<Value>(&bodies[0]).unwrap(), published, "ORIGINAL: the event itself");
    assert_eq!(bodies[1], b"an order came in", "CONSTANT: the value");
    assert_eq!(serde_json::from_slice::<Value>(&bodies[2]).unwrap(), json!({ "big": 250 }), "VARIABLE: rendered");
    assert_eq!(bodies[3], b"customer c-9", "VARIABLE text through an HTTP target");
    let http = &receivers[3].hits()[0];
    assert_eq!(
        (http.headers["x-team"].as_str(), http.headers["content-type"].as_str()),
        ("billing", "text/plain; charset=utf-8")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(elsewhere.hits().is_empty(), "the eu-only subscription's filter rejects the event");
    for rx in &receivers {
        assert_eq!(rx.hits().len(), 1, "no target got it twice");
    }
    app.stop().await;
}
