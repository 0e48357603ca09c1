//! Pull delivery: a channel's events by cursor, with the watch's guarantees.

use serde_json::json;

use crate::helpers::{TestApp, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_is_pulled_by_cursor_in_order_without_gaps() {
    let app = TestApp::spawn().await;
    let ch = app.channel("p1", "orders").await;
    let base = format!("/v1/p1/channels/{ch}/events");
    // From now: nothing yet, and a cursor to continue with.
    let idle = app.get(&format!("{base}?wait=0")).await;
    assert_eq!(idle.status.as_u16(), 200, "{}", idle.body);
    assert_eq!(idle.body["size"], 0);
    let cursor = idle.body["cursor"].as_str().unwrap().to_owned();

    let published: Vec<_> = (0..7).map(|i| event(&format!("e{i}"), "shop", "t", json!({ "i": i }))).collect();
    app.put_events("p1", &ch, json!(published)).await;
    let first = app.get(&format!("{base}?cursor={cursor}&limit=5")).await;
    assert_eq!(first.body["size"], 5);
    assert_eq!(first.body["events"].as_array().unwrap(), &published[..5].to_vec());
    let rest = app.get(&format!("{base}?cursor={}&limit=5", first.body["cursor"].as_str().unwrap())).await;
    assert_eq!(rest.body["events"].as_array().unwrap(), &published[5..].to_vec());
    // From a time, everything.
    let all = app.get(&format!("{base}?start_time={}", idle_time() - 60_000)).await;
    assert_eq!(all.body["size"], 7);

    for (query, field) in
        [("limit=0", "limit"), ("wait=99", "wait"), ("cursor=xyz", "cursor"), ("start_time=soon", "start_time")]
    {
        let r = app.get(&format!("{base}?{query}")).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "EG.00513000"), "{query}");
        assert!(r.message().starts_with(&format!("{field}: ")), "{}", r.message());
    }
    let other = app.channel("p1", "other").await;
    let foreign = app.get(&format!("/v1/p1/channels/{other}/events?cursor={cursor}")).await;
    assert!(foreign.message().contains("another resource"), "{}", foreign.message());
    let missing = app.get("/v1/p1/channels/nope/events").await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, "EG.00514001"));
    app.stop().await;
}

fn idle_time() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `switchyard watch`'s follower resumes from its saved cursor after a restart, for both kinds
/// of target, and refuses an expired cursor instead of skipping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_resumes_from_its_saved_cursor() {
    use switchyard::follow::{Follower, Target};
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = app.channel("p1", "orders").await;
    let channel = Target::Channel { project: "p1".into(), channel: ch.clone() };
    let state = dir.path().join("channel.cursor");
    let mut follower = Follower::new(&app.base, crate::helpers::OPERATOR, channel.clone(), state.clone()).unwrap();
    assert!(follower.poll().await.unwrap().is_empty(), "starts from now");
    follower.save().unwrap();
    app.put_events("p1", &ch, json!([event("a", "s", "t", json!(1)), event("b", "s", "t", json!(2))])).await;
    let got = follower.poll().await.unwrap();
    assert_eq!(got.iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(), vec!["a", "b"]);
    follower.save().unwrap();
    drop(follower);
    app.put_events("p1", &ch, json!([event("c", "s", "t", json!(3))])).await;
    let mut restarted = Follower::new(&app.base, crate::helpers::OPERATOR, channel, state).unwrap();
    let got = restarted.poll().await.unwrap();
    assert_eq!(
        got.iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["c"],
        "nothing twice, nothing missed"
    );

    let resource =
        Target::Resource { tenant: "0".into(), kind: "biz".into(), fields: vec![], types: vec![], sub_resource: None };
    let state = dir.path().join("biz.cursor");
    let mut follower = Follower::new(&app.base, crate::helpers::OPERATOR, resource.clone(), state.clone()).unwrap();
    assert!(follower.poll().await.unwrap().is_empty());
    follower.save().unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("bk_biz_name".into(), json!("shop"));
    app.engine.create_resource("0", switchyard::model::cmdb::Kind::Biz, fields).await.unwrap();
    let mut restarted = Follower::new(&app.base, crate::helpers::OPERATOR, resource.clone(), state.clone()).unwrap();
    let got = restarted.poll().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["bk_detail"]["bk_biz_name"], "shop");

    std::fs::write(&state, "forged").unwrap();
    let mut broken = Follower::new(&app.base, crate::helpers::OPERATOR, resource, state).unwrap();
    let error = broken.poll().await.unwrap_err().to_string();
    assert!(error.contains("bk_cursor"), "{error}");
    app.stop().await;
}
