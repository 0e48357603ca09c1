//! Bad requests: each gets the event grid error with a message naming the field, and nothing is
//! stored for the failed part.

use reqwest::Method;
use serde_json::json;
use switchyard::keys;

use crate::helpers::{OPERATOR, TestApp, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_required_and_bound_to_their_project() {
    let app = TestApp::spawn().await;
    let none = app.call(Method::GET, "/v1/p1/channels", "", None).await;
    assert_eq!((none.status.as_u16(), none.code()), (401, "APIGW.0301"));
    let wrong = app.call(Method::GET, "/v1/p1/channels", "sy_not-a-real-token-xyz", None).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (401, "APIGW.0301"));

    let issued = app.post("/admin/v1/projects/p1/tokens", &json!({})).await;
    assert_eq!(issued.status.as_u16(), 201, "{}", issued.body);
    let token = issued.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sy_"));
    let mine = app.call(Method::GET, "/v1/p1/channels", &token, None).await;
    assert_eq!(mine.status.as_u16(), 200);
    let bearer = app.client.get(format!("{}/v1/p1/channels", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status().as_u16(), 200, "Authorization: Bearer works too");
    let theirs = app.call(Method::GET, "/v1/p2/channels", &token, None).await;
    assert_eq!((theirs.status.as_u16(), theirs.code()), (403, "EG.00512000"));
    let put = app.call(Method::POST, "/v1/p2/channels", &token, Some(&json!({ "name": "x" }))).await;
    assert_eq!(put.status.as_u16(), 403);
    assert_eq!(app.get("/v1/p2/channels").await.body["total"], 1, "nothing was created in p2");
    // Only the operator issues tokens.
    let escalate = app.call(Method::POST, "/admin/v1/projects/p2/tokens", &token, Some(&json!({}))).await;
    assert_eq!((escalate.status.as_u16(), escalate.code()), (403, "EG.00512000"));
    // The operator acts anywhere; health needs nothing.
    assert_eq!(app.call(Method::GET, "/v1/p2/channels", OPERATOR, None).await.status.as_u16(), 200);
    assert_eq!(app.call(Method::GET, "/health", "", None).await.status.as_u16(), 200);
    // Every response carries a request id.
    assert!(mine.headers.get("x-request-id").is_some());
    assert!(theirs.headers.get("x-request-id").is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_event_among_good_ones_fails_alone_and_is_not_stored() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let oversized = event("big", "shop", "t", json!("x".repeat(256 * 1024)));
    let events = json!([
        event("ok-1", "shop", "t", json!({})),
        { "id": "no-type", "source": "shop", "specversion": "1.0" },
        event("ok-2", "shop", "t", json!({})),
        oversized,
        { "id": "bad-time", "source": "shop", "specversion": "1.0", "type": "t", "time": "noon" },
    ]);
    let r = app.put_events("p1", &ch, events).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body["failed_count"], 3);
    let results = r.body["events"].as_array().unwrap();
    assert_eq!(results[0], json!({ "event_id": "ok-1" }));
    assert_eq!(results[1]["error_code"], "EG.00513000");
    assert_eq!(results[1]["error_msg"], "events[1].type: is required");
    assert_eq!(results[2], json!({ "event_id": "ok-2" }));
    assert!(results[3]["error_msg"].as_str().unwrap().starts_with("events[3]: event is"), "{}", results[3]);
    assert!(results[4]["error_msg"].as_str().unwrap().starts_with("events[4].time: must be an RFC 3339"));
    let log = keys::channel_log("p1", &ch);
    assert_eq!(app.engine.store().log_head(&log).await.unwrap(), 2, "only the good events are logged");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_misdirected_calls_get_the_dialect_error() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let path = format!("{}/v1/p1/channels/{ch}/events", app.base);
    let send = |body: String| {
        app.client
            .post(&path)
            .header("X-Auth-Token", OPERATOR)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let malformed = send("{\"events\": [".into()).await.unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(body["error_code"], "EG.00513000");
    assert!(body["error_msg"].as_str().unwrap().starts_with("body: is not valid JSON"), "{body}");

    let wrong_type = app.post(&format!("/v1/p1/channels/{ch}/events"), &json!({ "events": "nope" })).await;
    assert_eq!(wrong_type.status.as_u16(), 400);
    assert!(wrong_type.message().starts_with("events: invalid type"), "{}", wrong_type.message());

    let huge = format!("{{\"events\": [{{\"data\": \"{}\"}}]}}", "x".repeat(4 * 1024 * 1024 + 10));
    let too_big = send(huge).await.unwrap();
    assert_eq!(too_big.status().as_u16(), 400);
    let body: serde_json::Value = too_big.json().await.unwrap();
    assert!(body["error_msg"].as_str().unwrap().starts_with("body: is too large"), "{body}");

    let many: Vec<_> = (0..101).map(|i| event(&i.to_string(), "s", "t", json!({}))).collect();
    let r = app.put_events("p1", &ch, json!(many)).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"));
    assert!(r.message().starts_with("events: at most 100 events"), "{}", r.message());

    let unknown = app.put_events("p1", "no-such-channel", json!([event("1", "s", "t", json!({}))])).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "EG.00514001"));
    assert_eq!(unknown.message(), "channel no-such-channel not found");

    let log = keys::channel_log("p1", &ch);
    assert_eq!(app.engine.store().log_head(&log).await.unwrap(), 0, "nothing was stored");
    let method = app.call(Method::PATCH, "/v1/p1/channels", OPERATOR, None).await;
    assert_eq!(method.status.as_u16(), 405);
    let route = app.get("/v1/p1/nothing-here").await;
    assert_eq!((route.status.as_u16(), route.code()), (404, "EG.00514001"));
    app.stop().await;
}
