//! Subscription targets: the per-target operations, the source update, the catalog, and each
//! target kind delivering (HTTP headers with sealed secrets, forwarding between channels with its
//! hop limit, queues).

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::engine::trace::AttemptStatus;

use crate::helpers::{Backend, Hook, Receiver, TestApp, aws_configured, event, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn webhook(url: &str) -> Value {
    json!({ "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": url }, "transform": { "type": "ORIGINAL" } })
}

fn http(url: &str, headers: Value) -> Value {
    json!({ "name": "HTTP", "provider_type": "CUSTOM", "transform": { "type": "ORIGINAL" }, "retry_times": 0,
            "apigw_detail": { "url": url, "invocation_http_parameters": { "header_parameters": headers } } })
}

fn eg(project: &str, channel: &str) -> Value {
    json!({ "name": "EG", "provider_type": "OFFICIAL", "transform": { "type": "ORIGINAL" }, "retry_times": 0,
            "eg_detail": { "target_project_id": project, "target_channel_id": channel, "target_region": "local",
                           "cross_region": false, "agency_name": "EG_TARGET_AGENCY" } })
}

fn sqs(queue: &str) -> Value {
    json!({ "name": "SQS", "provider_type": "OFFICIAL", "detail": { "queue_url": queue }, "transform": { "type": "ORIGINAL" } })
}

/// Subscribes `source` events of a channel to one target; returns the subscription.
async fn subscribe(app: &TestApp, project: &str, channel: &str, name: &str, source: &str, target: Value) -> Value {
    let body = json!({
        "name": name, "channel_id": channel,
        "sources": [{ "name": source, "provider_type": "CUSTOM", "filter": {} }],
        "targets": [target],
    });
    let r = app.post(&format!("/v1/{project}/subscriptions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_and_sources_are_created_shown_replaced_and_deleted_one_at_a_time() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let s = subscribe(&app, "p1", &ch, "s1", "shop", webhook("http://127.0.0.1:9/a")).await;
    let (sid, first) = (s["id"].as_str().unwrap(), s["targets"][0]["id"].as_str().unwrap());
    let targets = format!("/v1/p1/subscriptions/{sid}/targets");

    let mut added = webhook("http://127.0.0.1:9/b");
    added["id"] = json!("second-target");
    added["retry_times"] = json!(3);
    let created = app.post(&targets, &added).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!((created.body["id"].as_str(), created.body["retry_times"].as_u64()), (Some("second-target"), Some(3)));
    let shown = app.get(&format!("{targets}/second-target")).await;
    assert_eq!(shown.body, created.body);
    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{sid}")).await.body["targets"].as_array().unwrap().len(), 2);
    let taken = app.post(&targets, &added).await;
    assert_eq!((taken.status.as_u16(), taken.code()), (400, "EG.00513000"), "{}", taken.body);

    // A full replace: the body's id is ignored, the creation time kept, unset fields reset.
    let mut replaced = webhook("http://127.0.0.1:9/c");
    replaced["id"] = json!("ignored");
    let updated = app.put(&format!("{targets}/second-target"), &replaced).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["id"], "second-target");
    assert_eq!(updated.body["detail"]["url"], "http://127.0.0.1:9/c");
    assert_eq!(updated.body["retry_times"], 16, "the default again");
    assert_eq!(updated.body["created_time"], created.body["created_time"]);
    let bad = app.put(&format!("{targets}/second-target"), &json!({ "name": "WEBHOOK", "provider_type": "CUSTOM", "retry_times": 65, "detail": { "url": "http://127.0.0.1:9/c" }, "transform": { "type": "ORIGINAL" } })).await;
    assert_eq!((bad.status.as_u16(), bad.message()), (400, "retry_times: must be from 0 to 64"));
    assert_eq!(app.get(&format!("{targets}/second-target")).await.body, updated.body, "nothing half-written");
    let missing = app.put(&format!("{targets}/nope"), &replaced).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, "EG.00514001"));

    assert_eq!(app.delete(&format!("{targets}/{first}")).await.status, 204);
    assert_eq!(app.get(&format!("{targets}/{first}")).await.status, 404);
    let last = app.delete(&format!("{targets}/second-target")).await;
    assert_eq!((last.status.as_u16(), last.code()), (400, "EG.00513000"));
    assert!(last.message().starts_with("target_id: a subscription keeps at least one target"), "{}", last.message());
    for _ in 0..4 {
        assert_eq!(app.post(&targets, &webhook("http://127.0.0.1:9/d")).await.status, 200);
    }
    let sixth = app.post(&targets, &webhook("http://127.0.0.1:9/e")).await;
    assert_eq!((sixth.status.as_u16(), sixth.code()), (403, "EG.00514003"), "{}", sixth.body);

    let source_id = s["sources"][0]["id"].as_str().unwrap();
    let source = format!("/v1/p1/subscriptions/{sid}/sources/{source_id}");
    let filter = json!({ "type": [{ "op": "StringIn", "values": ["order.created"] }] });
    let new_source = json!({ "name": "shop2", "provider_type": "CUSTOM", "filter": filter });
    let r = app.put(&source, &new_source).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["id"].as_str(), r.body["name"].as_str()), (Some(source_id), Some("shop2")));
    assert_eq!(r.body["filter"], filter);
    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{sid}")).await.body["sources"][0], r.body);
    let mut wrong_id = new_source.clone();
    wrong_id["id"] = json!("other");
    assert!(app.put(&source, &wrong_id).await.message().starts_with("id: must be the path's source id"));
    let bad_filter = json!({ "name": "shop2", "provider_type": "CUSTOM", "filter": { "type": [{ "op": "Nope", "values": ["x"] }] } });
    let r = app.put(&source, &bad_filter).await;
    assert_eq!((r.code(), r.message().starts_with("filter.type[0].op: ")), ("EG.00513004", true), "{}", r.message());
    assert_eq!(app.put(&format!("/v1/p1/subscriptions/{sid}/sources/nope"), &new_source).await.status, 404);
    assert_eq!(app.get(&format!("/v1/p2/subscriptions/{sid}/targets/second-target")).await.status, 404, "per project");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_target_sends_its_headers_and_never_shows_a_secret_value() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let ch = app.channel("p1", "orders").await;
    let headers = json!([{ "key": "X-Api-Key", "value": "s3cr3t-value", "is_value_secret": true },
                         { "key": "X-Tenant", "value": "acme", "is_value_secret": false }]);
    let s = subscribe(&app, "p1", &ch, "with-headers", "shop", http(&rx.url("h"), headers)).await;
    let (sid, tid) = (s["id"].as_str().unwrap(), s["targets"][0]["id"].as_str().unwrap());
    let target_path = format!("/v1/p1/subscriptions/{sid}/targets/{tid}");
    for shown in [
        s.clone(),
        app.get(&format!("/v1/p1/subscriptions/{sid}")).await.body,
        app.get("/v1/p1/subscriptions").await.body,
        app.get(&target_path).await.body,
    ] {
        assert!(!shown.to_string().contains("s3cr3t"), "{shown}");
    }
    let shown = app.get(&target_path).await.body;
    let params = &shown["apigw_detail"]["invocation_http_parameters"]["header_parameters"];
    assert_eq!(params[0], json!({ "key": "X-Api-Key", "value": "******", "is_value_secret": true }));
    assert_eq!(params[1], json!({ "key": "X-Tenant", "value": "acme", "is_value_secret": false }));

    app.put_events("p1", &ch, json!([event("e1", "shop", "t", json!({ "n": 1 }))])).await;
    let hit = rx.wait_for(1, WAIT).await.remove(0);
    assert_eq!((hit.headers["x-api-key"].as_str(), hit.headers["x-tenant"].as_str()), ("s3cr3t-value", "acme"));
    assert_eq!(hit.json()["id"], "e1");
    assert!(hit.headers.contains_key("webhook-signature"), "signed like a webhook");

    // Sending the mask back keeps the secret; the plain header can change meanwhile.
    let mut masked = shown.clone();
    masked["apigw_detail"]["invocation_http_parameters"]["header_parameters"][1]["value"] = json!("other");
    let r = app.put(&target_path, &masked).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.put_events("p1", &ch, json!([event("e2", "shop", "t", json!({}))])).await;
    let hit = rx.wait_for(2, WAIT).await.remove(1);
    assert_eq!((hit.headers["x-api-key"].as_str(), hit.headers["x-tenant"].as_str()), ("s3cr3t-value", "other"));
    // A reserved header is refused, naming it.
    let r = app.put(&target_path, &http(&rx.url("h"), json!([{ "key": "webhook-id", "value": "x" }]))).await;
    let field = "apigw_detail.invocation_http_parameters.header_parameters[0].key: webhook-id is set by the delivery";
    assert!(r.message().starts_with(field), "{}", r.message());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_exactly_the_target_kinds_that_work() {
    let app = TestApp::spawn_with_queues(&["catalog-q"]).await;
    let ch = app.channel("p1", "orders").await;
    let other = app.channel("p1", "copies").await;
    let all = app.get("/v1/p1/target-catalogs").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!((all.body["total"].as_u64(), all.body["size"].as_u64()), (Some(4), Some(4)));
    let kinds: Vec<(String, String)> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().to_owned(), k["provider_type"].as_str().unwrap().to_owned()))
        .collect();
    let sample = |name: &str| match name {
        "WEBHOOK" => webhook("http://127.0.0.1:9/w"),
        "HTTP" => http("http://127.0.0.1:9/h", json!([])),
        "EG" => eg("p1", &other),
        "SQS" => sqs("catalog-q"),
        other => panic!("unexpected kind {other}"),
    };
    for (i, (name, provider)) in kinds.iter().enumerate() {
        let mut target = sample(name);
        assert_eq!(target["provider_type"], provider.as_str(), "{name}");
        target["provider_type"] = json!(provider);
        subscribe(&app, "p1", &ch, &format!("kind-{i}"), "shop", target).await;
        let item = &all.body["items"][i];
        assert!(item["parameters"].as_array().unwrap().iter().any(|p| p["metadata"]["required"] == true), "{item}");
        assert_eq!(item["support_types"], json!(["SUBSCRIPTION"]));
    }
    let r = app.get("/v1/p1/target-catalogs?fuzzy_label=QUEUE").await;
    assert_eq!((r.body["total"].as_u64(), r.body["items"][0]["name"].as_str()), (Some(1), Some("SQS")));
    assert_eq!(app.get("/v1/p1/target-catalogs?support_types=FLOW").await.body["total"], 0);
    assert_eq!(app.get("/v1/p1/target-catalogs?support_types=SUBSCRIPTION").await.body["total"], 4);
    let page = app.get("/v1/p1/target-catalogs?offset=1&limit=2").await.body;
    assert_eq!((page["total"].as_u64(), page["size"].as_u64()), (Some(4), Some(2)));
    let bad = app.get("/v1/p1/target-catalogs?support_types=STREAM").await;
    assert_eq!((bad.status.as_u16(), bad.message()), (400, "support_types: must be SUBSCRIPTION or FLOW, not STREAM"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_target_receives_the_event_as_a_message() {
    let app = TestApp::spawn_with_queues(&["orders-q"]).await;
    let ch = app.channel("p1", "orders").await;
    subscribe(&app, "p1", &ch, "to-queue", "shop", sqs("orders-q")).await;
    let published = event("q1", "shop", "order.created", json!({ "order": 7 }));
    app.put_events("p1", &ch, json!([published])).await;
    let got = app.engine.queue().receive("orders-q", 10, WAIT, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).unwrap(), published);
    let engine = app.engine.clone();
    assert!(eventually(WAIT, || async { engine.attempts("p1", &ch, 1).await.unwrap().len() == 1 }).await);
    let attempt = &app.engine.attempts("p1", &ch, 1).await.unwrap()[0];
    assert_eq!((attempt.status, attempt.target_name.as_str()), (AttemptStatus::Success, "SQS"));
    let undeclared = app
        .post(
            "/v1/p1/subscriptions",
            &json!({ "name": "x", "channel_id": ch,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }], "targets": [sqs("elsewhere")] }),
        )
        .await;
    assert!(undeclared.message().starts_with("targets[0].detail.queue_url: queue elsewhere is not declared"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_target_on_aws_sends_to_the_queue_url() {
    if !aws_configured() {
        return;
    }
    let app = TestApp::spawn_on(Backend::Aws, true).await;
    let switchyard::config::BackendConfig::Aws(resources) = app.engine.config().backend.clone() else {
        unreachable!("an AWS test app")
    };
    let spec = switchyard::ports::QueueSpec { name: "target".into(), dead_letter: None };
    let prefix = format!("{}-", resources.table);
    let extra = switchyard::backend::aws::provision(&resources.table, &[spec], &prefix).await.unwrap();
    let url = extra.queue_urls["target"].clone();
    let ch = app.channel("p1", "orders").await;
    let own = resources.queue_urls[switchyard::config::queues::DELIVERY].clone();
    let body = json!({ "name": "own", "channel_id": ch,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }], "targets": [sqs(&own)] });
    let refused = app.post("/v1/p1/subscriptions", &body).await;
    assert!(refused.message().ends_with("is one of Switchyard's own queues"), "{}", refused.message());
    subscribe(&app, "p1", &ch, "to-sqs", "shop", sqs(&url)).await;
    let published = event("a1", "shop", "order.created", json!({ "order": 8 }));
    app.put_events("p1", &ch, json!([published])).await;
    let got = app.engine.queue().receive(&url, 10, WAIT, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).unwrap(), published);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_target_forwards_the_event_once_into_a_permitted_project() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let a = app.channel("p1", "orders").await;
    let b = app.channel("p2", "mirror").await;
    app.subscribe("p2", &b, Hook::new("mirror-hook", "shop", &rx.url("b"))).await;
    // A token of p1 may not forward into p2; the operator may.
    let token = app.post("/admin/v1/projects/p1/tokens", &json!({})).await.body["token"].as_str().unwrap().to_owned();
    let body = json!({ "name": "forward", "channel_id": a,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "filter": {} }], "targets": [eg("p2", &b)] });
    let refused = app.call(reqwest::Method::POST, "/v1/p1/subscriptions", &token, Some(&body)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "EG.00512000"), "{}", refused.body);
    assert!(refused.message().starts_with("targets[0].eg_detail.target_project_id: "), "{}", refused.message());
    subscribe(&app, "p1", &a, "forward", "shop", eg("p2", &b)).await;

    let published = event("f1", "shop", "order.created", json!({ "order": 1 }));
    assert_eq!(app.put_events("p1", &a, json!([published])).await.body["failed_count"], 0);
    let hits = rx.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.hits().len(), 1, "forwarded once");
    let mut expected = published.clone();
    expected["syhops"] = json!(1);
    assert_eq!(hits[0].json(), expected, "the event, one hop further");
    let log = switchyard::keys::channel_log("p2", &b);
    assert_eq!(app.engine.store().log_head(&log).await.unwrap(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_loop_stops_at_the_hop_limit_and_records_the_dropped_event() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let a = app.channel("p1", "ping").await;
    let b = app.channel("p1", "pong").await;
    subscribe(&app, "p1", &a, "a-to-b", "shop", eg("p1", &b)).await;
    subscribe(&app, "p1", &b, "b-to-a", "shop", eg("p1", &a)).await;
    app.subscribe("p1", &a, Hook::new("watch-a", "shop", &rx.url("a"))).await;
    app.put_events("p1", &a, json!([event("loop", "shop", "t", json!({}))])).await;

    // A holds hops 0, 2, 4, 6, 8; B holds 1, 3, 5, 7; the forward past 8 is dropped.
    let hits = rx.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.hits().len(), 5, "{:?}", rx.hits().iter().map(|h| h.json()).collect::<Vec<_>>());
    let mut hops: Vec<u64> = hits.iter().map(|h| h.json()["syhops"].as_u64().unwrap_or(0)).collect();
    hops.sort_unstable();
    assert_eq!(hops, vec![0, 2, 4, 6, 8]);
    let store = app.engine.store();
    assert_eq!(store.log_head(&switchyard::keys::channel_log("p1", &a)).await.unwrap(), 5);
    assert_eq!(store.log_head(&switchyard::keys::channel_log("p1", &b)).await.unwrap(), 4);

    let engine = app.engine.clone();
    let dropped = || async {
        let attempts = engine.attempts("p1", &a, 5).await.unwrap();
        attempts.into_iter().find(|t| t.target_name == "EG")
    };
    assert!(eventually(WAIT, || async { dropped().await.is_some() }).await, "the drop is traced");
    let drop = dropped().await.unwrap();
    assert_eq!((drop.status, drop.dead_lettered, drop.attempt), (AttemptStatus::Failed, true, 1));
    assert!(drop.error.as_deref().unwrap().starts_with("hop limit reached"), "{:?}", drop.error);
    let dead = app
        .engine
        .queue()
        .receive(switchyard::config::queues::DEAD_LETTER, 10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let body: Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(body["event"]["syhops"], 8);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_whose_channel_is_gone_puts_its_subscription_in_error_and_dead_letters() {
    let app = TestApp::spawn_with_queues(&["forward-dlq"]).await;
    let a = app.channel("p1", "orders").await;
    let b = app.channel("p1", "soon-gone").await;
    let mut target = eg("p1", &b);
    target["retry_times"] = json!(5);
    target["dead_letter_queue"] = json!({ "type": "SQS", "topic": "forward-dlq" });
    let s = subscribe(&app, "p1", &a, "forward", "shop", target).await;
    assert_eq!(s["targets"][0]["dead_letter_queue"]["topic"], "forward-dlq");
    assert_eq!(app.delete(&format!("/v1/p1/channels/{b}")).await.status, 204);
    app.put_events("p1", &a, json!([event("lost", "shop", "t", json!({}))])).await;

    let got = app.engine.queue().receive("forward-dlq", 10, WAIT, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1, "the target's own dead-letter queue has it");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((body["event"]["id"].as_str(), body["attempts"].as_u64()), (Some("lost"), Some(1)), "no retries");
    let id = s["id"].as_str().unwrap();
    let shown = app.get(&format!("/v1/p1/subscriptions/{id}")).await.body;
    assert_eq!(shown["status"], "ERROR");
    assert!(shown["status_reason"].as_str().unwrap().contains("no longer exists"), "{shown}");
    app.stop().await;
}
