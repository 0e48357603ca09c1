//! Channels: the default channel, name rules, uniqueness, policy, listing, and no deletion while
//! in use.

use serde_json::json;

use crate::helpers::{Hook, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_project_has_a_read_only_default_channel() {
    let app = TestApp::spawn().await;
    let list = app.get("/v1/p1/channels").await;
    assert_eq!(list.body["total"], 1);
    let default = &list.body["items"][0];
    assert_eq!((default["name"].as_str(), default["provider_type"].as_str()), (Some("default"), Some("OFFICIAL")));
    let id = default["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/p1/channels/{id}")).await.body["name"], "default");
    let update = app.put(&format!("/v1/p1/channels/{id}"), &json!({ "description": "mine" })).await;
    assert_eq!((update.status.as_u16(), update.code()), (403, "EG.00514004"));
    let delete = app.delete(&format!("/v1/p1/channels/{id}")).await;
    assert_eq!((delete.status.as_u16(), delete.code()), (403, "EG.00514004"));
    let named = app.post("/v1/p1/channels", &json!({ "name": "default" })).await;
    assert_eq!((named.status.as_u16(), named.code()), (400, "EG.00513000"));
    assert!(named.message().starts_with("name: "));
    // Another project has its own.
    let other = app.get("/v1/p2/channels").await.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(other, id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_created_updated_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let policy = json!({ "stmt1": { "Sid": "allow", "Effect": "Allow", "Action": "eg:channels:putEvents" } });
    let created =
        app.post("/v1/p1/channels", &json!({ "name": "orders.v1", "description": "d", "policy": policy })).await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.body);
    let b = &created.body;
    assert_eq!(
        (b["name"].as_str(), b["provider_type"].as_str(), b["description"].as_str()),
        (Some("orders.v1"), Some("CUSTOM"), Some("d"))
    );
    assert_eq!(b["policy"], policy, "the policy is stored and returned");
    let time = b["created_time"].as_str().unwrap();
    assert!(time.len() == 19 && time.as_bytes()[10] == b' ', "{time}");
    let id = b["id"].as_str().unwrap().to_owned();

    let dup = app.post("/v1/p1/channels", &json!({ "name": "orders.v1" })).await;
    assert_eq!((dup.status.as_u16(), dup.code()), (400, "EG.00513001"));
    app.post("/v1/p1/channels", &json!({ "name": "payments" })).await;
    app.post("/v1/p1/channels", &json!({ "name": "orders-archive" })).await;
    assert_eq!(
        app.post("/v1/p2/channels", &json!({ "name": "orders.v1" })).await.status.as_u16(),
        200,
        "names are per project"
    );

    let fuzzy = app.get("/v1/p1/channels?fuzzy_name=ORDERS").await;
    assert_eq!(fuzzy.body["total"], 2);
    let exact = app.get("/v1/p1/channels?name=payments").await;
    assert_eq!((exact.body["total"].as_u64(), exact.body["items"][0]["name"].as_str()), (Some(1), Some("payments")));
    let page = app.get("/v1/p1/channels?offset=1&limit=2&sort=name:asc").await;
    assert_eq!(page.body["total"], 4);
    assert_eq!(page.body["size"], 2);
    let names: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["orders-archive", "orders.v1"]);
    let custom = app.get("/v1/p1/channels?provider_type=CUSTOM").await;
    assert_eq!(custom.body["total"], 3);
    for (query, field) in
        [("offset=-1", "offset"), ("limit=0", "limit"), ("limit=1001", "limit"), ("sort=size", "sort")]
    {
        let bad = app.get(&format!("/v1/p1/channels?{query}")).await;
        assert_eq!((bad.status.as_u16(), bad.code()), (400, "EG.00513000"), "{query}");
        assert!(bad.message().starts_with(&format!("{field}: ")), "{}", bad.message());
    }

    let updated = app.put(&format!("/v1/p1/channels/{id}"), &json!({ "description": "new", "policy": {} })).await;
    assert_eq!(updated.body["description"], "new");
    assert_eq!(updated.body["name"], "orders.v1", "the name does not change");
    assert_eq!(app.get(&format!("/v1/p1/channels/{id}")).await.body["policy"], json!({}));

    assert_eq!(app.delete(&format!("/v1/p1/channels/{id}")).await.status.as_u16(), 204);
    let gone = app.get(&format!("/v1/p1/channels/{id}")).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "EG.00514001"));
    assert_eq!(
        app.post("/v1/p1/channels", &json!({ "name": "orders.v1" })).await.status.as_u16(),
        200,
        "the name is free again"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_names_follow_the_rules() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({ "name": "-x" }), "name"),
        (json!({ "name": "a b" }), "name"),
        (json!({ "name": "x".repeat(129) }), "name"),
        (json!({ "name": "ok", "description": "d".repeat(256) }), "description"),
        (json!({ "name": "ok", "provider_type": "OFFICIAL" }), "provider_type"),
        (json!({ "name": "ok", "policy": [1] }), "policy"),
        (json!({ "name": 7 }), "name"),
    ] {
        let r = app.post("/v1/p1/channels", &body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"), "{body}");
        assert!(r.message().starts_with(&format!("{field}: ")), "{}", r.message());
    }
    assert_eq!(app.get("/v1/p1/channels").await.body["total"], 1, "nothing was created");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_used_by_a_subscription_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let sub = app.subscribe("p1", &ch, Hook::new("s1", "shop", "http://127.0.0.1:9/h")).await;
    let r = app.delete(&format!("/v1/p1/channels/{ch}")).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "EG.00514002"));
    assert_eq!(app.get(&format!("/v1/p1/channels/{ch}")).await.status.as_u16(), 200);
    let sub_id = sub["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/p1/subscriptions/{sub_id}")).await.status.as_u16(), 204);
    assert_eq!(app.delete(&format!("/v1/p1/channels/{ch}")).await.status.as_u16(), 204);
    app.stop().await;
}
