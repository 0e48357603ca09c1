//! The Lambda adapters, fed the events AWS sends: an API Gateway HTTP API request through an
//! operation's router, and an SQS batch through the delivery worker with partial batch failures.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchyard::api::{self, ops};
use switchyard::config::queues;
use switchyard::lambda::handle_sqs_batch;
use tower::ServiceExt;

use crate::helpers::{Hook, Receiver, TestApp, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_gateway_request_reaches_its_operation() {
    let app = TestApp::spawn_on(crate::helpers::Backend::Memory, false).await;
    let fixture = include_str!("../fixtures/apigw-v2-create-channel.json");
    let request = lambda_http::request::from_str(fixture).unwrap().map(axum::body::Body::new);
    let router = api::op_router(ops::find("CreateChannel").unwrap(), app.engine.clone());
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["name"], "from-lambda");
    assert_eq!(app.get("/v1/p1/channels?name=from-lambda").await.body["total"], 1);

    // Another operation's function does not serve this route.
    let request = lambda_http::request::from_str(fixture).unwrap().map(axum::body::Body::new);
    let other = api::op_router(ops::find("ListChannels").unwrap(), app.engine.clone());
    assert_eq!(other.oneshot(request).await.unwrap().status().as_u16(), 405);
    app.stop().await;
}

fn sqs_event(records: &[switchyard::ports::Received]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "messageId": r.message_id, "receiptHandle": r.receipt, "body": r.body,
                "attributes": { "ApproximateReceiveCount": r.receive_count.to_string() },
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:delivery", "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqs_worker_reports_deliveries_to_retry_as_batch_item_failures() {
    let app = TestApp::spawn_on(crate::helpers::Backend::Memory, false).await;
    let rx = Receiver::start().await;
    rx.script(&[500]);
    let ch = app.channel("p1", "orders").await;
    app.subscribe("p1", &ch, Hook::new("s", "shop", &rx.url("h")).retries(3)).await;
    app.put_events("p1", &ch, json!([event("a", "shop", "t", json!({})), event("b", "shop", "t", json!({}))])).await;
    let queue = app.engine.queue();
    let batch = queue.receive(queues::DELIVERY, 10, Duration::from_secs(2), Duration::from_secs(30)).await.unwrap();
    assert_eq!(batch.len(), 2);

    let response = handle_sqs_batch(&app.engine, sqs_event(&batch)).await;
    let failures = response["batchItemFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{response}");
    let failed_id = failures[0]["itemIdentifier"].as_str().unwrap();
    assert!(batch.iter().any(|m| m.message_id == failed_id));
    assert_eq!(rx.hits().len(), 2);

    // The failed one comes back after its backoff and succeeds.
    let retried = queue.receive(queues::DELIVERY, 10, Duration::from_secs(5), Duration::from_secs(30)).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].message_id, failed_id);
    assert_eq!(retried[0].receive_count, 2);
    let response = handle_sqs_batch(&app.engine, sqs_event(&retried)).await;
    assert_eq!(response, json!({ "batchItemFailures": [] }));
    assert_eq!(rx.hits().len(), 3);
    app.stop().await;
}
