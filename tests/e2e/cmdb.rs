//! The CMDB resource API and resource watch, end to end: every watch rule, on the embedded backend
//! and on DynamoDB (through moto).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::Engine;
use switchyard::config::BackendConfig;
use switchyard::ports::TestClock;

use crate::helpers::{Backend, OPERATOR, TestApp, aws_configured, test_config};

/// A CMDB client of a test app, acting for one supplier account.
pub struct Cmdb<'a> {
    pub app: &'a TestApp,
    pub tenant: &'a str,
    pub token: String,
}

impl<'a> Cmdb<'a> {
    pub fn new(app: &'a TestApp, tenant: &'a str) -> Self {
        Self { app, tenant, token: OPERATOR.to_owned() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.base))
            .header("X-Auth-Token", &self.token)
            .header("HTTP_BLUEKING_SUPPLIER_ID", self.tenant);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let request_id = response.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert!(body.get("result").is_some(), "CMDB envelope: {body}");
        assert_eq!(body["request_id"], request_id.as_str(), "the envelope carries the request's id: {body}");
        body
    }

    /// The envelope of a create.
    pub async fn try_create(&self, kind: &str, fields: Value) -> Value {
        self.send(reqwest::Method::POST, &format!("/api/v3/resources/{kind}"), Some(fields)).await
    }

    /// Creates a resource and returns its id.
    pub async fn create(&self, kind: &str, fields: Value) -> u64 {
        let body = self.try_create(kind, fields).await;
        assert_eq!(body["result"], true, "{body}");
        let id_field = switchyard::model::cmdb::Kind::parse(kind).unwrap().id_field();
        body["data"][id_field].as_u64().unwrap()
    }

    pub async fn update(&self, kind: &str, id: u64, fields: Value) -> Value {
        self.send(reqwest::Method::PUT, &format!("/api/v3/resources/{kind}/{id}"), Some(fields)).await
    }

    pub async fn delete(&self, kind: &str, id: u64) -> Value {
        self.send(reqwest::Method::DELETE, &format!("/api/v3/resources/{kind}/{id}"), None).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn transfer(&self, host: u64, biz: u64, set: u64, module: u64) -> Value {
        let body = json!({ "bk_host_id": host, "bk_biz_id": biz, "bk_set_id": set, "bk_module_id": module });
        self.send(reqwest::Method::POST, "/api/v3/hosts/transfer", Some(body)).await
    }

    /// The envelope of a watch.
    pub async fn watch(&self, kind: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, &format!("/api/v3/event/watch/resource/{kind}"), Some(body)).await
    }

    /// A watch that must succeed with events: returns them.
    pub async fn events(&self, kind: &str, body: Value) -> Vec<Value> {
        let r = self.watch(kind, body).await;
        assert_eq!(r["result"], true, "{r}");
        assert_eq!(r["data"]["bk_watched"], true, "{r}");
        r["data"]["bk_events"].as_array().unwrap().clone()
    }
}

/// A start time before everything a test wrote.
fn since_start() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 60
}

fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["bk_event_type"].as_str().unwrap().to_owned()).collect()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::TestApp::spawn().await).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if crate::helpers::aws_configured() {
                        super::$name(crate::helpers::TestApp::spawn_on(crate::helpers::Backend::Aws, true).await).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    start_modes_and_cursor_continuation,
    event_types_filter_moves_the_cursor_on,
    fields_projection_and_host_rule,
    sub_resource_selects_one_model,
    answers_hold_at_most_200_events,
    forged_and_foreign_cursors_are_refused,
    tenants_never_see_each_other,
    biz_set_relations_follow_scopes_and_businesses,
    host_transfer_produces_relation_events,
    resource_api_validates_and_pages,
);

async fn start_modes_and_cursor_continuation(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let fields = json!(["bk_host_innerip", "bk_cpu"]);
    let h = c.create("host", json!({ "bk_host_innerip": "10.0.0.1", "bk_cpu": 2, "bk_mac": "aa" })).await;
    assert_eq!(c.update("host", h, json!({ "bk_cpu": 4 })).await["result"], true);
    assert_eq!(c.delete("host", h).await["result"], true);

    // From a time: all three, oldest first, with the full detail after each change.
    let events = c.events("host", json!({ "bk_fields": fields, "bk_start_from": since_start() })).await;
    assert_eq!(types(&events), vec!["create", "update", "delete"]);
    assert!(events.iter().all(|e| e["bk_resource"] == "host"));
    assert_eq!(events[0]["bk_detail"], json!({ "bk_host_innerip": "10.0.0.1", "bk_cpu": 2 }));
    assert_eq!(events[1]["bk_detail"]["bk_cpu"], 4);
    assert_eq!(events[2]["bk_detail"]["bk_cpu"], 4, "a delete carries the last state");

    // By cursor: what follows it.
    let after_first = c.events("host", json!({ "bk_fields": fields, "bk_cursor": events[0]["bk_cursor"] })).await;
    assert_eq!(types(&after_first), vec!["update", "delete"]);
    assert_eq!(after_first[0]["bk_cursor"], events[1]["bk_cursor"]);

    // From now: nothing within the wait, and one event to continue with.
    let started = Instant::now();
    let idle = c.watch("host", json!({ "bk_fields": fields })).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for events");
    assert_eq!(idle["data"]["bk_watched"], false);
    let idle_events = idle["data"]["bk_events"].as_array().unwrap();
    assert_eq!(idle_events.len(), 1);
    assert_eq!(idle_events[0]["bk_resource"], "host");
    assert_eq!(idle_events[0]["bk_detail"], Value::Null);
    let h2 = c.create("host", json!({ "bk_host_innerip": "10.0.0.2" })).await;
    let next = c.events("host", json!({ "bk_fields": ["bk_host_id"], "bk_cursor": idle_events[0]["bk_cursor"] })).await;
    assert_eq!(next.len(), 1, "only what came after the idle cursor");
    assert_eq!(next[0]["bk_detail"], json!({ "bk_host_id": h2 }));
    // The last cursor with nothing new: not watched, and the cursor does not go back.
    let quiet = c.watch("host", json!({ "bk_fields": ["bk_host_id"], "bk_cursor": next[0]["bk_cursor"] })).await;
    assert_eq!(quiet["data"]["bk_watched"], false);
    let again = c.create("host", json!({ "bk_host_innerip": "10.0.0.3" })).await;
    let continued = c
        .events("host", json!({ "bk_fields": ["bk_host_id"], "bk_cursor": quiet["data"]["bk_events"][0]["bk_cursor"] }))
        .await;
    assert_eq!(continued.len(), 1);
    assert_eq!(continued[0]["bk_detail"]["bk_host_id"], again);
    app.stop().await;
}

async fn event_types_filter_moves_the_cursor_on(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let b = c.create("biz", json!({ "bk_biz_name": "shop" })).await;
    for i in 0..3 {
        c.update("biz", b, json!({ "n": i })).await;
    }
    let creates = c.events("biz", json!({ "bk_event_types": ["create"], "bk_start_from": since_start() })).await;
    assert_eq!(types(&creates), vec!["create"]);
    // Only updates follow: a delete-only watch passes over them and says so.
    let none = c.watch("biz", json!({ "bk_event_types": ["delete"], "bk_cursor": creates[0]["bk_cursor"] })).await;
    assert_eq!(none["data"]["bk_watched"], false);
    let cursor = none["data"]["bk_events"][0]["bk_cursor"].clone();
    // The cursor moved past the updates: watching everything from it shows only what is new.
    c.delete("biz", b).await;
    let rest = c.events("biz", json!({ "bk_cursor": cursor })).await;
    assert_eq!(types(&rest), vec!["delete"]);
    let bad = c.watch("biz", json!({ "bk_event_types": ["created"] })).await;
    assert_eq!((bad["result"].as_bool(), bad["code"].as_i64()), (Some(false), Some(1199006)));
    assert!(bad["message"].as_str().unwrap().starts_with("bk_event_types[0]: "), "{bad}");
    app.stop().await;
}

async fn fields_projection_and_host_rule(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let r = c.watch("host", json!({})).await;
    assert_eq!(r["code"], 1199006);
    assert!(r["message"].as_str().unwrap().starts_with("bk_fields: "), "{r}");
    c.create("plat", json!({ "bk_cloud_name": "cloud-a", "region": "north" })).await;
    let all = c.events("plat", json!({ "bk_start_from": since_start() })).await;
    let detail = &all[0]["bk_detail"];
    for f in ["bk_cloud_id", "bk_cloud_name", "region", "bk_supplier_account", "create_time", "last_time"] {
        assert!(detail.get(f).is_some(), "{f} in {detail}");
    }
    let some = c.events("plat", json!({ "bk_start_from": since_start(), "bk_fields": ["region", "absent"] })).await;
    assert_eq!(some[0]["bk_detail"], json!({ "region": "north" }));
    app.stop().await;
}

async fn sub_resource_selects_one_model(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    c.create("object_instance", json!({ "bk_obj_id": "switch", "bk_inst_name": "sw1" })).await;
    c.create("object_instance", json!({ "bk_obj_id": "router", "bk_inst_name": "r1" })).await;
    c.create("object_instance", json!({ "bk_obj_id": "switch", "bk_inst_name": "sw2" })).await;
    let switches = c
        .events(
            "object_instance",
            json!({ "bk_start_from": since_start(), "bk_filter": { "bk_sub_resource": "switch" } }),
        )
        .await;
    let names: Vec<&str> = switches.iter().map(|e| e["bk_detail"]["bk_inst_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["sw1", "sw2"]);
    assert_eq!(c.events("object_instance", json!({ "bk_start_from": since_start() })).await.len(), 3);
    let wrong = c.watch("biz", json!({ "bk_filter": { "bk_sub_resource": "switch" } })).await;
    assert_eq!(wrong["code"], 1199006);
    assert!(wrong["message"].as_str().unwrap().starts_with("bk_filter.bk_sub_resource: "));
    let missing = c.try_create("mainline_instance", json!({ "bk_inst_name": "x" })).await;
    assert!(missing["message"].as_str().unwrap().starts_with("bk_obj_id: "), "{missing}");
    app.stop().await;
}

async fn answers_hold_at_most_200_events(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let p = c.create("project", json!({ "bk_project_name": "p" })).await;
    for i in 0..249 {
        c.update("project", p, json!({ "i": i })).await;
    }
    let first = c.events("project", json!({ "bk_start_from": since_start() })).await;
    assert_eq!(first.len(), 200);
    let rest = c.events("project", json!({ "bk_cursor": first[199]["bk_cursor"] })).await;
    assert_eq!(rest.len(), 50);
    assert_eq!(rest[49]["bk_detail"]["i"], 248);
    app.stop().await;
}

async fn forged_and_foreign_cursors_are_refused(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    c.create("biz", json!({ "bk_biz_name": "a" })).await;
    let events = c.events("biz", json!({ "bk_start_from": since_start() })).await;
    let cursor = events[0]["bk_cursor"].as_str().unwrap().to_owned();
    let mut forged = cursor.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (token, why) in
        [(forged.as_str(), "altered"), ("MQ0yDTE1ODkyMDcyODENMQ01ZWI3ZWZjNTBiOTA5ZTYyMGFmYWQzZGY=", "not a cursor")]
    {
        let r = c.watch("biz", json!({ "bk_cursor": token })).await;
        assert_eq!((r["result"].as_bool(), r["code"].as_i64()), (Some(false), Some(1199006)), "{why}: {r}");
        assert!(r["message"].as_str().unwrap().starts_with("bk_cursor: "));
    }
    let other_kind = c.watch("set", json!({ "bk_cursor": cursor })).await;
    assert_eq!(other_kind["code"], 1199006);
    assert!(other_kind["message"].as_str().unwrap().contains("another resource"));
    let other_tenant = Cmdb::new(&app, "t2").watch("biz", json!({ "bk_cursor": cursor })).await;
    assert_eq!(other_tenant["code"], 1199006);
    let unknown = c.watch("hosts", json!({})).await;
    assert!(unknown["message"].as_str().unwrap().starts_with("bk_resource: unknown resource \"hosts\""), "{unknown}");
    app.stop().await;
}

async fn tenants_never_see_each_other(app: TestApp) {
    let zero = Cmdb::new(&app, "0");
    let other = Cmdb::new(&app, "t1");
    zero.create("biz", json!({ "bk_biz_name": "zero" })).await;
    other.create("biz", json!({ "bk_biz_name": "one" })).await;
    // Ids are per tenant: this one exists in 0 only.
    let only_zero = zero.create("biz", json!({ "bk_biz_name": "zero-2" })).await;
    let seen = zero.events("biz", json!({ "bk_start_from": since_start() })).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["bk_detail"]["bk_biz_name"], "zero");
    assert_eq!(seen[0]["bk_detail"]["bk_supplier_account"], "0");
    let listed = other.get("/api/v3/resources/biz").await;
    assert_eq!(listed["data"]["count"], 1);
    let across = other.get(&format!("/api/v3/resources/biz/{only_zero}")).await;
    assert_eq!(across["code"], 1199019, "another tenant's resource is not found: {across}");
    // A project token acts only for its own supplier account.
    let issued = app.post("/admin/v1/projects/t1/tokens", &json!({})).await;
    let mut scoped = Cmdb::new(&app, "t1");
    scoped.token = issued.body["token"].as_str().unwrap().to_owned();
    assert_eq!(scoped.events("biz", json!({ "bk_start_from": since_start() })).await.len(), 1);
    let mut trespass = Cmdb::new(&app, "0");
    trespass.token = scoped.token.clone();
    let refused = trespass.watch("biz", json!({})).await;
    assert_eq!((refused["result"].as_bool(), refused["code"].as_i64()), (Some(false), Some(1199047)), "{refused}");
    // The body's supplier account wins over the header; the body's bk_app_secret is a credential.
    let response = app
        .client
        .post(format!("{}/api/c/compapi/v2/cc/resource_watch/", app.base))
        .json(&json!({ "bk_resource": "biz", "bk_supplier_account": "t1", "bk_app_code": "x",
                       "bk_app_secret": scoped.token, "bk_start_from": since_start() }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["bk_events"][0]["bk_detail"]["bk_biz_name"], "one", "{body}");
    let anonymous =
        app.client.post(format!("{}/api/v3/event/watch/resource/biz", app.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    app.stop().await;
}

async fn biz_set_relations_follow_scopes_and_businesses(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let b1 = c.create("biz", json!({ "bk_biz_name": "alpha", "tier": 1 })).await;
    let b2 = c.create("biz", json!({ "bk_biz_name": "beta", "tier": 2 })).await;
    let all = c.create("biz_set", json!({ "bk_biz_set_name": "all", "bk_scope": { "match_all": true } })).await;
    let tier1 = c
        .create(
            "biz_set",
            json!({ "bk_biz_set_name": "tier1", "bk_scope": { "match_all": false,
                "filter": { "field": "tier", "operator": "equal", "value": 1 } } }),
        )
        .await;
    let relation = |set: u64, ids: Vec<u64>| json!({ "bk_biz_set_id": set, "bk_biz_ids": ids });
    let start = json!({ "bk_start_from": since_start() });
    let events = c.events("biz_set_relation", start.clone()).await;
    assert_eq!(
        events.iter().map(|e| e["bk_detail"].clone()).collect::<Vec<_>>(),
        vec![relation(all, vec![b1, b2]), relation(tier1, vec![b1])]
    );
    assert!(types(&events).iter().all(|t| t == "update"), "relation events are always updates");

    // A new business joins the sets that contain it (only those).
    let b3 = c.create("biz", json!({ "bk_biz_name": "gamma", "tier": 1 })).await;
    // A business leaving a set changes that set only.
    c.update("biz", b1, json!({ "tier": 3 })).await;
    // A change that moves no business changes nothing.
    c.update("biz", b2, json!({ "bk_biz_name": "beta2" })).await;
    // A new scope recomputes the set; deleting a set empties it.
    c.update(
        "biz_set",
        all,
        json!({ "bk_scope": { "filter": { "field": "tier", "operator": "greater", "value": 1 } } }),
    )
    .await;
    c.delete("biz_set", tier1).await;
    // Deleting a business updates the sets it was in.
    c.delete("biz", b2).await;
    let later = c.events("biz_set_relation", json!({ "bk_cursor": events[1]["bk_cursor"] })).await;
    let details: Vec<Value> = later.iter().map(|e| e["bk_detail"].clone()).collect();
    assert_eq!(
        details,
        vec![
            relation(all, vec![b1, b2, b3]),
            relation(tier1, vec![b1, b3]),
            relation(tier1, vec![b3]),
            relation(all, vec![b1, b2]),
            relation(tier1, vec![]),
            relation(all, vec![b1]),
        ]
    );
    let bad = c
        .try_create(
            "biz_set",
            json!({ "bk_biz_set_name": "x", "bk_scope": { "filter": { "field": "a", "operator": "like" } } }),
        )
        .await;
    assert!(bad["message"].as_str().unwrap().starts_with("bk_scope.filter.operator: "), "{bad}");
    app.stop().await;
}

async fn host_transfer_produces_relation_events(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    let biz = c.create("biz", json!({ "bk_biz_name": "shop" })).await;
    let set = c.create("set", json!({ "bk_set_name": "web", "bk_biz_id": biz })).await;
    let m1 = c.create("module", json!({ "bk_module_name": "nginx", "bk_set_id": set })).await;
    let m2 = c.create("module", json!({ "bk_module_name": "php", "bk_set_id": set })).await;
    let module = c.get(&format!("/api/v3/resources/module/{m1}")).await;
    assert_eq!(module["data"]["bk_biz_id"], biz, "a module belongs to its set's business");
    let host = c.create("host", json!({ "bk_host_innerip": "10.0.0.9" })).await;
    let rel = |m: u64| json!({ "bk_biz_id": biz, "bk_host_id": host, "bk_module_id": m, "bk_set_id": set, "bk_supplier_account": "0" });

    assert_eq!(c.transfer(host, biz, set, m1).await["data"], rel(m1));
    assert_eq!(c.transfer(host, biz, set, m2).await["data"], rel(m2));
    let events = c.events("host_relation", json!({ "bk_start_from": since_start() })).await;
    let seen: Vec<(String, Value)> =
        events.iter().map(|e| (e["bk_event_type"].as_str().unwrap().to_owned(), e["bk_detail"].clone())).collect();
    assert_eq!(seen, vec![("create".into(), rel(m1)), ("delete".into(), rel(m1)), ("create".into(), rel(m2))]);

    let in_use = c.delete("module", m2).await;
    assert_eq!((in_use["result"].as_bool(), in_use["code"].as_i64()), (Some(false), Some(1199056)), "{in_use}");
    let wrong = c.transfer(host, biz, set, 999_999).await;
    assert!(wrong["message"].as_str().unwrap().starts_with("bk_module_id: "), "{wrong}");
    let other_biz = c.create("biz", json!({ "bk_biz_name": "other" })).await;
    let mismatch = c.transfer(host, other_biz, set, m1).await;
    assert!(mismatch["message"].as_str().unwrap().starts_with("bk_set_id: set"), "{mismatch}");
    // Deleting the host ends its relation.
    c.delete("host", host).await;
    let after = c.events("host_relation", json!({ "bk_cursor": events[2]["bk_cursor"] })).await;
    assert_eq!(types(&after), vec!["delete"]);
    assert_eq!(after[0]["bk_detail"], rel(m2));
    assert_eq!(c.delete("module", m2).await["result"], true, "free again");
    app.stop().await;
}

async fn resource_api_validates_and_pages(app: TestApp) {
    let c = Cmdb::new(&app, "0");
    for (kind, body, field) in [
        ("biz", json!({}), "bk_biz_name"),
        ("biz", json!({ "bk_biz_name": 5 }), "bk_biz_name"),
        ("biz", json!({ "bk_biz_name": "x", "bk_biz_id": 3 }), "bk_biz_id"),
        ("biz", json!({ "bk_biz_name": "x", "bad-field": 1 }), "bad-field"),
        ("set", json!({ "bk_set_name": "s" }), "bk_biz_id"),
        ("set", json!({ "bk_set_name": "s", "bk_biz_id": 424242 }), "bk_biz_id"),
        ("biz_set", json!({ "bk_biz_set_name": "s" }), "bk_scope"),
        ("host_relation", json!({}), "bk_resource"),
        ("nothing", json!({}), "bk_resource"),
    ] {
        let r = c.try_create(kind, body.clone()).await;
        assert_eq!((r["result"].as_bool(), r["code"].as_i64()), (Some(false), Some(1199006)), "{kind} {body}: {r}");
        assert!(r["message"].as_str().unwrap().starts_with(&format!("{field}: ")), "{r}");
    }
    let malformed = app
        .client
        .post(format!("{}/api/v3/resources/biz", app.base))
        .header("X-Auth-Token", OPERATOR)
        .header("content-type", "application/json")
        .body("{\"bk_biz_name\": ")
        .send()
        .await
        .unwrap();
    let body: Value = malformed.json().await.unwrap();
    assert_eq!((body["result"].as_bool(), body["code"].as_i64()), (Some(false), Some(1199000)), "{body}");
    assert_eq!(c.get("/api/v3/resources/biz").await["data"]["count"], 0, "nothing was stored");

    let ids: Vec<u64> =
        futures::future::join_all((0..5).map(|i| c.create("biz", json!({ "bk_biz_name": format!("b{i}") })))).await;
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 5, "server-assigned ids are unique");
    let page = c.get("/api/v3/resources/biz?start=1&limit=2").await;
    assert_eq!(page["data"]["count"], 5);
    assert_eq!(page["data"]["info"].as_array().unwrap().len(), 2);
    assert_eq!(c.get("/api/v3/resources/biz?limit=0").await["code"], 1199006);
    let missing = c.get("/api/v3/resources/biz/999999").await;
    assert_eq!(missing["code"], 1199019);
    let updated = c.update("biz", ids[0], json!({ "bk_biz_name": "renamed", "owner": "ann" })).await;
    assert_eq!(
        (updated["data"]["bk_biz_name"].as_str(), updated["data"]["owner"].as_str()),
        (Some("renamed"), Some("ann"))
    );
    let fixed = c.update("biz", ids[0], json!({ "bk_biz_id": 7 })).await;
    assert!(fixed["message"].as_str().unwrap().starts_with("bk_biz_id: "), "{fixed}");
    app.stop().await;
}

/// An app whose clock the test moves.
async fn app_with_clock(backend: Backend) -> (TestApp, Arc<TestClock>) {
    let clock = Arc::new(TestClock::now());
    let config = match backend {
        Backend::Aws => {
            let unique = format!("{:x}", rand_suffix());
            let resources = switchyard::backend::aws::provision(
                &format!("e2e-clock-{unique}"),
                &switchyard::config::queue_specs(),
                &format!("e2e-clock-{unique}-"),
            )
            .await
            .unwrap();
            test_config(BackendConfig::Aws(resources))
        }
        _ => test_config(BackendConfig::Embedded(None)),
    };
    let engine = Engine::open_with_clock(config, clock.clone()).await.unwrap();
    (TestApp::spawn_engine(engine, true).await, clock)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id())
}

async fn expired_cursors_and_start_times_get_their_own_code(backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    let c = Cmdb::new(&app, "0");
    c.create("biz", json!({ "bk_biz_name": "old" })).await;
    let now = switchyard::ports::Clock::now_secs(clock.as_ref());
    let events = c.events("biz", json!({ "bk_start_from": now - 5 })).await;
    let cursor = events[0]["bk_cursor"].clone();
    clock.advance(Duration::from_secs(3 * 3600 + 1));
    for body in [json!({ "bk_cursor": cursor }), json!({ "bk_start_from": now - 5 })] {
        let r = c.watch("biz", body.clone()).await;
        assert_eq!((r["result"].as_bool(), r["code"].as_i64()), (Some(false), Some(1103007)), "{body}: {r}");
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("from a point in time") && message.contains("from now"), "{message}");
    }
    // Watching from now works, and sees what comes next.
    let fresh = c.watch("biz", json!({})).await;
    assert_eq!(fresh["data"]["bk_watched"], false);
    c.create("biz", json!({ "bk_biz_name": "new" })).await;
    let next = c.events("biz", json!({ "bk_cursor": fresh["data"]["bk_events"][0]["bk_cursor"] })).await;
    assert_eq!(next[0]["bk_detail"]["bk_biz_name"], "new");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cursors_and_start_times_get_their_own_code_embedded() {
    expired_cursors_and_start_times_get_their_own_code(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cursors_and_start_times_get_their_own_code_aws() {
    if aws_configured() {
        expired_cursors_and_start_times_get_their_own_code(Backend::Aws).await;
    }
}

/// Writers change hosts concurrently; watchers chaining cursors each see every change once, in
/// the order each writer made them, with nothing missing.
async fn concurrent_writers_and_chaining_watchers(app: TestApp, writers: u64, changes: u64, watchers: usize) {
    let start = since_start();
    let hosts: Vec<u64> = {
        let c = Cmdb::new(&app, "0");
        let mut ids = Vec::new();
        for w in 0..writers {
            ids.push(c.create("host", json!({ "bk_host_innerip": format!("10.1.0.{w}"), "w": w, "n": 0 })).await);
        }
        ids
    };
    let total = (writers * (changes + 1)) as usize;
    let watch_tasks: Vec<_> =
        (0..watchers)
            .map(|_| {
                let (base, client) = (app.base.clone(), app.client.clone());
                tokio::spawn(async move {
                    let mut seen: Vec<(u64, u64)> = Vec::with_capacity(total);
                    let mut body = json!({ "bk_fields": ["w", "n"], "bk_start_from": start });
                    while seen.len() < total {
                        let r: Value = client
                            .post(format!("{base}/api/v3/event/watch/resource/host"))
                            .header("X-Auth-Token", OPERATOR)
                            .json(&body)
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        assert_eq!(r["result"], true, "{r}");
                        let events = r["data"]["bk_events"].as_array().unwrap();
                        if r["data"]["bk_watched"] == true {
                            seen.extend(events.iter().map(|e| {
                                (e["bk_detail"]["w"].as_u64().unwrap(), e["bk_detail"]["n"].as_u64().unwrap())
                            }));
                        }
                        body = json!({ "bk_fields": ["w", "n"], "bk_cursor": events.last().unwrap()["bk_cursor"] });
                    }
                    seen
                })
            })
            .collect();
    let write_tasks: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(w, host)| {
            let (base, client, host) = (app.base.clone(), app.client.clone(), *host);
            tokio::spawn(async move {
                for n in 1..=changes {
                    let r: Value = client
                        .put(format!("{base}/api/v3/resources/host/{host}"))
                        .header("X-Auth-Token", OPERATOR)
                        .json(&json!({ "n": n, "w": w }))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(r["result"], true, "{r}");
                }
            })
        })
        .collect();
    for t in write_tasks {
        t.await.unwrap();
    }
    for t in watch_tasks {
        let seen = t.await.unwrap();
        assert_eq!(seen.len(), total, "every change once");
        for w in 0..writers {
            let mine: Vec<u64> = seen.iter().filter(|(sw, _)| *sw == w).map(|(_, n)| *n).collect();
            assert_eq!(mine, (0..=changes).collect::<Vec<_>>(), "writer {w}'s changes, all, in order");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_chaining_watchers_embedded() {
    concurrent_writers_and_chaining_watchers(TestApp::spawn().await, 8, 500, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_chaining_watchers_aws() {
    if aws_configured() {
        concurrent_writers_and_chaining_watchers(TestApp::spawn_on(Backend::Aws, true).await, 4, 15, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_watcher_is_woken_by_the_write_itself() {
    // Polling is set far beyond the wait: only the write's own signal can answer in time.
    let mut config = test_config(BackendConfig::Embedded(None));
    config.watch.wait = Duration::from_secs(10);
    config.watch.poll = Duration::from_secs(60);
    let app = TestApp::spawn_with(config, false).await;
    let c = Cmdb::new(&app, "0");
    let biz = c.create("biz", json!({ "bk_biz_name": "b" })).await;
    let mut best = Duration::MAX;
    for round in 0..5 {
        let idle = c.watch("biz", json!({ "bk_start_from": since_start() })).await;
        let cursor = idle["data"]["bk_events"].as_array().unwrap().last().unwrap()["bk_cursor"].clone();
        let (base, client) = (app.base.clone(), app.client.clone());
        let waiting = tokio::spawn(async move {
            let r: Value = client
                .post(format!("{base}/api/v3/event/watch/resource/biz"))
                .header("X-Auth-Token", OPERATOR)
                .json(&json!({ "bk_cursor": cursor }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (r, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fields = serde_json::Map::new();
        fields.insert("round".into(), json!(round));
        app.engine.update_resource("0", switchyard::model::cmdb::Kind::Biz, biz, fields).await.unwrap();
        let written = Instant::now();
        let (answer, answered) = waiting.await.unwrap();
        assert_eq!(answer["data"]["bk_events"][0]["bk_detail"]["round"], round);
        let latency = answered.saturating_duration_since(written);
        assert!(latency < Duration::from_secs(1), "answered {latency:?} after the write, not by polling");
        best = best.min(latency);
    }
    assert!(best < Duration::from_millis(5), "best answer came {best:?} after its write");
    app.stop().await;
}
