//! Engine tests of the per-part subscription operations.

use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::engine::subscriptions::MASK;
use crate::model::channel::ChannelSpec;
use crate::model::subscription::SubscriptionSpec;

async fn engine() -> Engine {
    let mut config = Config { target_queues: vec!["orders-q".into()], ..Config::default() };
    config.delivery.address_policy.allow_loopback = true;
    Engine::open(config).await.unwrap()
}

async fn channel(engine: &Engine, project: &str, name: &str) -> String {
    engine.create_channel(project, ChannelSpec { name: Some(name.into()), ..ChannelSpec::default() }).await.unwrap().id
}

fn spec(channel: &str, name: &str, target: Value) -> SubscriptionSpec {
    serde_json::from_value(json!({
        "name": name, "channel_id": channel,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }],
        "targets": [target],
    }))
    .unwrap()
}

fn http(headers: Value) -> Value {
    json!({ "name": "HTTP", "provider_type": "CUSTOM", "transform": { "type": "ORIGINAL" },
            "apigw_detail": { "url": "http://127.0.0.1:9/h", "invocation_http_parameters": { "header_parameters": headers } } })
}

fn eg(project: &str, channel: &str) -> Value {
    json!({ "name": "EG", "provider_type": "OFFICIAL", "transform": { "type": "ORIGINAL" },
            "eg_detail": { "target_project_id": project, "target_channel_id": channel, "target_region": "local" } })
}

fn sqs(queue: &str) -> Value {
    json!({ "name": "SQS", "provider_type": "OFFICIAL", "transform": { "type": "ORIGINAL" }, "detail": { "queue_url": queue } })
}

#[tokio::test]
async fn invalid_targets_are_refused_naming_the_field() {
    let engine = engine().await;
    let ch = channel(&engine, "p1", "orders").await;
    let other = channel(&engine, "p2", "elsewhere").await;
    let mut no_detail = http(json!([]));
    no_detail.as_object_mut().unwrap().remove("apigw_detail");
    let mut kafka_dlq = sqs("orders-q");
    kafka_dlq["dead_letter_queue"] = json!({ "type": "KAFKA", "topic": "t" });
    let mut unknown_dlq = sqs("orders-q");
    unknown_dlq["dead_letter_queue"] = json!({ "type": "SQS", "topic": "nope" });
    let mut cross_region = eg("p2", &other);
    cross_region["eg_detail"]["cross_region"] = json!(true);
    let cases: Vec<(Value, &str)> = vec![
        (no_detail, "targets[0].apigw_detail: is required for HTTP targets"),
        (
            http(json!([{ "key": "Content-Type", "value": "x" }])),
            "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].key: Content-Type is set by the delivery",
        ),
        (
            http(json!([{ "key": "a", "value": "1" }, { "key": "A", "value": "2" }])),
            "targets[0].apigw_detail.invocation_http_parameters.header_parameters[1].key: A appears twice",
        ),
        (
            http(json!([{ "key": "x", "value": "a\r\nb: c" }])),
            "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].value: ",
        ),
        (
            http(json!([{ "key": "x", "value": MASK, "is_value_secret": true }])),
            "targets[0].apigw_detail.invocation_http_parameters.header_parameters[0].value: ****** keeps a stored secret",
        ),
        (http(json!("nope")), "targets[0].apigw_detail.invocation_http_parameters.header_parameters: must be a list"),
        (eg("p2", ""), "targets[0].eg_detail.target_channel_id: is required"),
        (eg("p2", "missing"), "targets[0].eg_detail.target_channel_id: channel missing not found in project p2"),
        (eg("p1", &ch), "targets[0].eg_detail.target_channel_id: must not be the subscription's own channel"),
        (eg("bad#project", "x"), "targets[0].eg_detail.target_project_id: "),
        (cross_region, "targets[0].eg_detail.cross_region: cross-region forwarding is not supported"),
        (
            json!({ "name": "EG", "provider_type": "CUSTOM", "transform": { "type": "ORIGINAL" } }),
            "targets[0].name: target kind EG (CUSTOM) is not supported; use WEBHOOK (CUSTOM), HTTP (CUSTOM), EG (OFFICIAL), SQS (OFFICIAL)",
        ),
        (sqs("nope"), "targets[0].detail.queue_url: queue nope is not declared"),
        (sqs("delivery"), "targets[0].detail.queue_url: delivery is one of Switchyard's own queues"),
        (sqs(""), "targets[0].detail.queue_url: is required"),
        (kafka_dlq, "targets[0].dead_letter_queue.type: must be SQS"),
        (unknown_dlq, "targets[0].dead_letter_queue.topic: queue nope is not declared"),
    ];
    for (target, message) in cases {
        let e = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", target.clone())).await;
        let e = e.unwrap_err().to_string();
        assert!(e.starts_with(message), "{target}: {e}");
    }
    // A project's token may not forward into another project; the operator may.
    let project_token = Principal::Project("p1".into());
    let e = engine.create_subscription(&project_token, "p1", spec(&ch, "s", eg("p2", &other))).await.unwrap_err();
    assert!(matches!(&e, Error::Forbidden(m) if m.starts_with("targets[0].eg_detail.target_project_id: ")), "{e}");
    let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", eg("p2", &other))).await.unwrap();
    assert_eq!(s.targets[0].granted_by, Some(Principal::Operator));
    let own = channel(&engine, "p1", "copies").await;
    let s = engine.create_subscription(&project_token, "p1", spec(&ch, "s2", eg("p1", &own))).await.unwrap();
    assert_eq!(s.targets[0].granted_by, Some(project_token));
}

#[tokio::test]
async fn secret_header_values_are_sealed_masked_and_kept_on_update() {
    let engine = engine().await;
    let ch = channel(&engine, "p1", "orders").await;
    let headers = json!([{ "key": "X-Api-Key", "value": "s3cr3t", "is_value_secret": true },
                         { "key": "X-Plain", "value": "visible" }]);
    let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", http(headers))).await.unwrap();
    let stored = serde_json::to_string(&s).unwrap();
    assert!(!stored.contains("s3cr3t"), "stored sealed: {stored}");
    let sealer = engine.sealer().await.unwrap();
    let opened = s.targets[0].open_headers("p1", &sealer).unwrap();
    assert_eq!(opened, vec![("X-Api-Key".into(), "s3cr3t".into()), ("X-Plain".into(), "visible".into())]);
    let shown = s.clone().redacted();
    let shown_headers =
        &shown.targets[0].apigw_detail.as_ref().unwrap()["invocation_http_parameters"]["header_parameters"];
    assert_eq!(shown_headers[0]["value"], MASK);
    assert_eq!(shown_headers[1]["value"], "visible");

    // Sent back masked, the stored secret is kept (even with the name's case changed).
    let mut again: TargetSpec =
        serde_json::from_value(http(json!([{ "key": "x-api-key", "value": MASK, "is_value_secret": true }]))).unwrap();
    again.retry_times = Some(2);
    let t =
        engine.update_subscription_target(&Principal::Operator, "p1", &s.id, &s.targets[0].id, again).await.unwrap();
    assert_eq!(t.retry_times, 2);
    assert_eq!(t.open_headers("p1", &sealer).unwrap(), vec![("x-api-key".into(), "s3cr3t".into())]);
    // A sealed value moved to another target does not open there.
    let mut moved = t.clone();
    moved.id = "another".into();
    assert!(moved.open_headers("p1", &sealer).is_err());
}

#[tokio::test]
async fn targets_are_added_replaced_and_removed_but_never_the_last() {
    let engine = engine().await;
    let ch = channel(&engine, "p1", "orders").await;
    let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", sqs("orders-q"))).await.unwrap();
    let first = s.targets[0].id.clone();
    let e = engine.delete_subscription_target("p1", &s.id, &first).await.unwrap_err().to_string();
    assert!(e.starts_with("target_id: a subscription keeps at least one target"), "{e}");
    let mut chosen: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
    chosen.id = Some("second".into());
    let added = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, chosen.clone()).await.unwrap();
    assert_eq!(added.id, "second");
    let e = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, chosen).await.unwrap_err();
    assert!(e.to_string().starts_with("id: target id second is already used"), "{e}");
    for _ in 0..3 {
        let spec: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
        engine.create_subscription_target(&Principal::Operator, "p1", &s.id, spec).await.unwrap();
    }
    let spec: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
    let e = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, spec).await.unwrap_err();
    assert!(matches!(e, Error::QuotaExceeded { limit: 5, .. }), "{e}");
    engine.delete_subscription_target("p1", &s.id, &first).await.unwrap();
    let (now, _) = engine.subscription("p1", &s.id).await.unwrap();
    assert_eq!(now.targets.len(), 4);
    assert!(now.target(&first).is_none());
    let e = engine.subscription_target("p1", &s.id, &first).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { kind: "subscription target", .. }), "{e}");
    // The removed target's id is free again.
    let mut reuse: TargetSpec = serde_json::from_value(sqs("orders-q")).unwrap();
    reuse.id = Some(first.clone());
    let reused = engine.create_subscription_target(&Principal::Operator, "p1", &s.id, reuse).await.unwrap();
    assert_eq!(reused.id, first);
}

#[tokio::test]
async fn status_operations_move_the_lifecycle_and_fail_per_subscription() {
    let engine = engine().await;
    let ch = channel(&engine, "p1", "orders").await;
    let s = engine.create_subscription(&Principal::Operator, "p1", spec(&ch, "s", sqs("orders-q"))).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Created);
    let (_, version) = engine.channel("p1", &ch).await.unwrap();
    let enabled = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
    assert_eq!((enabled.status, enabled.resumed_ms), (SubscriptionStatus::Enabled, 0), "was receiving: no cut-off");
    let disabled = engine.operate_subscription("p1", &s.id, Operation::Disable).await.unwrap();
    assert_eq!(disabled.status, SubscriptionStatus::Disabled);
    let again = engine.operate_subscription("p1", &s.id, Operation::Disable).await.unwrap();
    assert_eq!(again.updated_ms, disabled.updated_ms, "nothing to change");
    let resumed = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
    assert!(resumed.resumed_ms > 0 && resumed.status == SubscriptionStatus::Enabled);
    assert!(engine.channel("p1", &ch).await.unwrap().1 > version, "routers reload");

    engine.mark_subscription_error("p1", &s.id, "target t: queue gone").await.unwrap();
    let (broken, _) = engine.subscription("p1", &s.id).await.unwrap();
    assert_eq!(
        (broken.status, broken.status_reason.as_deref()),
        (SubscriptionStatus::Error, Some("target t: queue gone"))
    );
    let fixed = engine.operate_subscription("p1", &s.id, Operation::Enable).await.unwrap();
    assert_eq!((fixed.status, fixed.status_reason), (SubscriptionStatus::Enabled, None));

    let ids = vec![s.id.clone(), "missing".to_owned()];
    let outcomes = engine.operate_subscriptions("p1", &ids, Operation::Disable).await.unwrap();
    assert!(outcomes[0].1.is_none());
    assert!(matches!(outcomes[1].1, Some(Error::NotFound { .. })));
    let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let e = engine.operate_subscriptions("p1", &eleven, Operation::Disable).await.unwrap_err().to_string();
    assert!(e.starts_with("subscription_ids: must name 1 to 10"), "{e}");
    assert!(engine.operate_subscriptions("p1", &[], Operation::Disable).await.is_err());
}

#[test]
fn operations_are_parsed_by_name() {
    assert_eq!(Operation::parse("operation", "ENABLE").unwrap(), Operation::Enable);
    assert_eq!(Operation::parse("operation", "DISABLE").unwrap(), Operation::Disable);
    let e = Operation::parse("operation", "enable").unwrap_err().to_string();
    assert!(e.starts_with("operation: must be ENABLE or DISABLE"), "{e}");
}
