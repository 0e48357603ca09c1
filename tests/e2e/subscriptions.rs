//! Subscriptions: create, list, show, full-replace update, delete, and their validation.

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn spec(channel: &str, name: &str) -> Value {
    json!({
        "name": name,
        "description": "orders to the hook",
        "channel_id": channel,
        "sources": [{ "name": "shop", "provider_type": "CUSTOM", "detail": {},
                      "filter": { "data": { "count": [{ "op": "NumberIn", "values": [1, 2] }] } } }],
        "targets": [{ "name": "WEBHOOK", "provider_type": "CUSTOM", "retry_times": 5,
                      "detail": { "url": "http://127.0.0.1:9/hook" }, "transform": { "type": "ORIGINAL", "value": "" } }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_shown_listed_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let other = app.channel("p1", "payments").await;
    let created = app.post("/v1/p1/subscriptions", &spec(&ch, "to-hook")).await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.body);
    let s = &created.body;
    assert_eq!(
        (s["status"].as_str(), s["type"].as_str(), s["channel_name"].as_str()),
        (Some("CREATED"), Some("EVENT"), Some("orders"))
    );
    assert_eq!(s["sources"][0]["filter"], spec(&ch, "x")["sources"][0]["filter"]);
    assert_eq!(s["targets"][0]["retry_times"], 5);
    assert_eq!(s["targets"][0]["detail"]["url"], "http://127.0.0.1:9/hook");
    let id = s["id"].as_str().unwrap().to_owned();
    let target_id = s["targets"][0]["id"].as_str().unwrap().to_owned();

    assert_eq!(app.get(&format!("/v1/p1/subscriptions/{id}")).await.body, created.body);
    app.post("/v1/p1/subscriptions", &spec(&other, "payments-hook")).await;
    let by_channel = app.get(&format!("/v1/p1/subscriptions?channel_id={ch}")).await;
    assert_eq!(by_channel.body["total"], 1);
    assert_eq!(by_channel.body["items"][0]["id"], id.as_str());
    assert_eq!(app.get("/v1/p1/subscriptions?fuzzy_name=HOOK").await.body["total"], 2);
    assert_eq!(app.get("/v1/p1/subscriptions?name=to-hook").await.body["total"], 1);
    assert_eq!(app.get("/v1/p2/subscriptions").await.body["total"], 0, "per project");

    // Full replace: the target with the same id is updated in place, a new one is added.
    let update = json!({
        "description": "changed",
        "targets": [
            { "id": target_id, "name": "WEBHOOK", "provider_type": "CUSTOM", "retry_times": 1,
              "detail": { "url": "http://127.0.0.1:9/v2" }, "transform": { "type": "ORIGINAL" } },
            { "id": "second-target", "name": "WEBHOOK", "provider_type": "CUSTOM",
              "detail": { "url": "http://127.0.0.1:9/other" }, "transform": { "type": "ORIGINAL" } }
        ]
    });
    let replaced = app.put(&format!("/v1/p1/subscriptions/{id}"), &update).await;
    assert_eq!(replaced.status.as_u16(), 200, "{}", replaced.body);
    let r = &replaced.body;
    assert_eq!(r["description"], "changed");
    assert_eq!(r["sources"], created.body["sources"], "sources absent from the body are kept");
    assert_eq!(r["targets"].as_array().unwrap().len(), 2);
    assert_eq!(r["targets"][0]["id"], target_id.as_str());
    assert_eq!(r["targets"][0]["created_time"], created.body["targets"][0]["created_time"]);
    assert_eq!(r["targets"][0]["retry_times"], 1);
    assert_eq!(r["targets"][1]["id"], "second-target");
    assert_eq!(r["targets"][1]["retry_times"], 16, "the default");
    // Replacing again without the second target removes it and frees its id.
    let keep_first = json!({ "targets": [update["targets"][0].clone()] });
    assert_eq!(
        app.put(&format!("/v1/p1/subscriptions/{id}"), &keep_first).await.body["targets"].as_array().unwrap().len(),
        1
    );
    let mut reuse = spec(&ch, "reuses-id");
    reuse["targets"][0]["id"] = json!("second-target");
    assert_eq!(app.post("/v1/p1/subscriptions", &reuse).await.status.as_u16(), 200);

    assert_eq!(app.delete(&format!("/v1/p1/subscriptions/{id}")).await.status.as_u16(), 204);
    let gone = app.get(&format!("/v1/p1/subscriptions/{id}")).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "EG.00514001"));
    assert_eq!(app.delete(&format!("/v1/p1/subscriptions/{id}")).await.status.as_u16(), 404);
    assert_eq!(app.post("/v1/p1/subscriptions", &spec(&ch, "to-hook")).await.status.as_u16(), 200, "the name is free");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_subscriptions_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut s = spec(&ch, "s1");
        f(&mut s);
        s
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (mutate(&|s| s["name"] = json!("bad name")), "EG.00513000", "name: "),
        (mutate(&|s| s["channel_id"] = json!("missing")), "EG.00514001", "channel missing not found"),
        (mutate(&|s| s["sources"] = json!([])), "EG.00513000", "sources: exactly one source"),
        (
            mutate(&|s| {
                let x = s["sources"][0].clone();
                s["sources"] = json!([x.clone(), x]);
            }),
            "EG.00513000",
            "sources: exactly one",
        ),
        (mutate(&|s| s["targets"] = json!([])), "EG.00513000", "targets: must hold 1 to 5"),
        (
            mutate(&|s| {
                s["sources"][0].as_object_mut().unwrap().remove("filter");
            }),
            "EG.00513000",
            "sources[0].filter: is required",
        ),
        (mutate(&|s| s["sources"][0]["provider_type"] = json!("OTHER")), "EG.00513000", "sources[0].provider_type: "),
        (
            mutate(&|s| s["sources"][0]["filter"] = json!({ "type": [{ "op": "Nope", "values": ["x"] }] })),
            "EG.00513004",
            "sources[0].filter.type[0].op: unknown operator Nope",
        ),
        (
            mutate(&|s| s["sources"][0]["detail"] = json!({ "k": "x".repeat(1100) })),
            "EG.00513000",
            "sources[0].detail: ",
        ),
        (mutate(&|s| s["targets"][0]["detail"]["url"] = json!("not a url")), "EG.00513003", "targets[0].detail.url: "),
        (
            mutate(&|s| s["targets"][0]["detail"]["url"] = json!("http://10.1.2.3/hook")),
            "EG.00513003",
            "targets[0].detail.url: private address",
        ),
        (mutate(&|s| s["targets"][0]["name"] = json!("HC.SMN")), "EG.00513000", "targets[0].name: target kind HC.SMN"),
        (
            mutate(&|s| s["targets"][0]["retry_times"] = json!(65)),
            "EG.00513000",
            "targets[0].retry_times: must be from 0 to 64",
        ),
        (
            mutate(&|s| s["targets"][0]["retry_times"] = json!(-1)),
            "EG.00513000",
            "targets[0].retry_times: invalid value",
        ),
        (
            mutate(&|s| {
                s["targets"][0].as_object_mut().unwrap().remove("transform");
            }),
            "EG.00513000",
            "targets[0].transform: is required",
        ),
        (
            mutate(&|s| s["targets"][0]["transform"]["type"] = json!("WHATEVER")),
            "EG.00513000",
            "targets[0].transform.type: ",
        ),
        (mutate(&|s| s["targets"][0]["id"] = json!("Upper")), "EG.00513000", "targets[0].id: "),
        (
            mutate(&|s| s["targets"][0]["detail"]["secret"] = json!("short")),
            "EG.00513000",
            "targets[0].detail.secret: ",
        ),
    ];
    for (body, code, message) in cases {
        let r = app.post("/v1/p1/subscriptions", &body).await;
        assert_eq!(r.code(), code, "{body}: {}", r.body);
        assert!(r.message().starts_with(message), "{} should start with {message}", r.message());
    }
    assert_eq!(app.get("/v1/p1/subscriptions").await.body["total"], 0, "nothing was stored");
    let ch_body = app.get(&format!("/v1/p1/channels/{ch}")).await;
    assert_eq!(ch_body.status.as_u16(), 200);
    assert_eq!(app.delete(&format!("/v1/p1/channels/{ch}")).await.status.as_u16(), 204, "the channel is not in use");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_chosen_ids_are_unique() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    assert_eq!(app.post("/v1/p1/subscriptions", &spec(&ch, "s1")).await.status.as_u16(), 200);
    let dup = app.post("/v1/p1/subscriptions", &spec(&ch, "s1")).await;
    assert_eq!((dup.status.as_u16(), dup.code()), (400, "EG.00513001"));
    let mut chosen = spec(&ch, "s2");
    chosen["targets"][0]["id"] = json!("my-target");
    chosen["sources"][0]["id"] = json!("my-source");
    let first = app.post("/v1/p1/subscriptions", &chosen).await;
    assert_eq!(first.body["targets"][0]["id"], "my-target");
    assert_eq!(first.body["sources"][0]["id"], "my-source");
    chosen["name"] = json!("s3");
    let again = app.post("/v1/p2/subscriptions", &json!({ "name": "s3", "channel_id": app.get("/v1/p2/channels").await.body["items"][0]["id"], "sources": chosen["sources"], "targets": chosen["targets"] })).await;
    assert_eq!(again.status.as_u16(), 400, "ids are unique across projects: {}", again.body);
    assert!(again.message().contains("is already used"), "{}", again.message());
    assert_eq!(app.get("/v1/p2/subscriptions").await.body["total"], 0);
    app.stop().await;
}
