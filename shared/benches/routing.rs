//! Routing benchmark: synthetic events routed through a channel's [`RouteTable`] of 10, 1,000 and
//! 10,000 subscriptions, on one thread.
//!
//! Every subscription listens to the same source (the route table's grouping by source does not
//! help), and the filters cycle through five kinds:
//!
//! 1. exact: `type` is one of two event types (native `StringIn`);
//! 2. prefix: `subject` starts with a tenant's path (native `StringStartsWith`, or EventBridge
//!    `prefix`);
//! 3. numeric range: `data.amount` inside a narrow interval (EventBridge `numeric`, or native
//!    `NumberInRange`);
//! 4. wildcard: `subject` matches `tenant-N/*/invoice-*.pdf` (native `StringWildcard`);
//! 5. anything-but: an EventBridge pattern that excludes regions or test statuses, next to a
//!    tenant prefix or an event type, as EventBridge rules usually pair them (an `anything-but`
//!    alone matches nearly every event, so its cost is its matches, not the routing).
//!
//! Events draw their type from 1,000, their tenant from 1,000 and their amount from 0 to 100,000,
//! so matches per event grow with the number of subscriptions as they would on a busy channel.
//! Prints, per table size, events per second on one core, nanoseconds per event and matches per
//! event.
//!
//! Then the transform: a `VARIABLE` transform of 20 variables (15 JSONPaths into the event, 5
//! constants) rendered into a JSON template for the same events, with the binary-mode headers;
//! prints payloads per second on one core and nanoseconds per payload.
//!
//! `cargo bench -p switchyard --bench routing`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::engine::routing::RouteTable;
use switchyard::engine::transform::CompiledTransform;
use switchyard::model::ProviderType;
use switchyard::model::subscription::{Subscription, SubscriptionSource, SubscriptionStatus, Transform, TransformKind};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SOURCE: &str = "shop";
const TYPES: u64 = 1_000;
const TENANTS: u64 = 1_000;
const MAX_AMOUNT: u64 = 100_000;
const EVENTS: usize = 10_000;
/// How long each table size is measured for.
const MEASURE: Duration = Duration::from_secs(2);

/// A small deterministic generator (SplitMix64), so every run routes the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn event_type(n: u64) -> String {
    format!("com.example.order.type-{n}")
}

fn eb(mut pattern: Value) -> Value {
    pattern["$pattern"] = json!("eventbridge");
    pattern
}

/// The filter of the `i`-th subscription.
fn filter(i: usize, rng: &mut Rng) -> Value {
    let tenant = rng.below(TENANTS);
    let low = rng.below(MAX_AMOUNT);
    let width = 1 + rng.below(200);
    match (i % 5, i.is_multiple_of(2)) {
        (0, _) => {
            let types = [event_type(rng.below(TYPES)), event_type(rng.below(TYPES))];
            json!({ "type": [{ "op": "StringIn", "values": types }] })
        }
        (1, true) => json!({ "subject": [{ "op": "StringStartsWith", "values": [format!("tenant-{tenant}/")] }] }),
        (1, false) => eb(json!({ "subject": [{ "prefix": format!("tenant-{tenant}/orders/") }] })),
        (2, true) => eb(json!({ "data": { "amount": [{ "numeric": [">=", low, "<", low + width] }] } })),
        (2, false) => json!({ "data": { "amount": [{ "op": "NumberInRange", "values": [[low, low + width]] }] } }),
        (3, _) => {
            json!({ "subject": [{ "op": "StringWildcard", "values": [format!("tenant-{tenant}/*/invoice-*.pdf")] }] })
        }
        (_, true) => eb(json!({
            "subject": [{ "prefix": format!("tenant-{tenant}/") }],
            "data": { "region": [{ "anything-but": ["eu-1", "eu-2"] }] }
        })),
        (_, false) => eb(json!({
            "type": [event_type(rng.below(TYPES))],
            "data": { "status": [{ "anything-but": { "prefix": "test" } }] }
        })),
    }
}

fn subscription(i: usize, filter: Value) -> Subscription {
    Subscription {
        id: format!("sub-{i}"),
        project: "bench".into(),
        name: format!("sub-{i}"),
        description: String::new(),
        channel_id: "channel".into(),
        status: SubscriptionStatus::Enabled,
        sources: vec![SubscriptionSource {
            id: format!("source-{i}"),
            name: SOURCE.into(),
            provider_type: ProviderType::Custom,
            detail: json!({}),
            filter,
            created_ms: 0,
            updated_ms: 0,
        }],
        targets: Vec::new(),
        status_reason: None,
        resumed_ms: 0,
        created_ms: 0,
        updated_ms: 0,
    }
}

fn events(rng: &mut Rng) -> Vec<Value> {
    const REGIONS: &[&str] = &["eu-1", "eu-2", "us-1", "ap-1"];
    const STATUSES: &[&str] = &["ok", "pending", "test-run"];
    (0..EVENTS)
        .map(|n| {
            let tenant = rng.below(TENANTS);
            let subject = if n.is_multiple_of(2) {
                format!("tenant-{tenant}/orders/invoice-{n}.pdf")
            } else {
                format!("tenant-{tenant}/users/{n}")
            };
            json!({
                "id": format!("evt-{n}"), "source": SOURCE, "specversion": "1.0",
                "type": event_type(rng.below(TYPES)), "subject": subject, "time": "2024-05-01T10:00:00Z",
                "datacontenttype": "application/json",
                "data": {
                    "amount": rng.below(MAX_AMOUNT * 100) as f64 / 100.0,
                    "region": REGIONS[rng.below(REGIONS.len() as u64) as usize],
                    "status": STATUSES[rng.below(STATUSES.len() as u64) as usize],
                    "customer": { "id": format!("c-{}", rng.below(1_000_000)), "tier": "gold" },
                    "items": [{ "sku": "A-1", "qty": 2 }, { "sku": "B-7", "qty": 1 }]
                }
            })
        })
        .collect()
}

/// Routes the events round and round for [`MEASURE`]; returns (events routed, matches, elapsed).
fn measure(table: &RouteTable, events: &[Value]) -> (u64, u64, Duration) {
    let (mut routed, mut matches) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < MEASURE {
        for event in events {
            for route in table.matching(black_box(event)) {
                // Making the deliveries reads each match's targets.
                black_box(route.targets.len());
                matches += 1;
            }
        }
        routed += events.len() as u64;
    }
    (routed, matches, start.elapsed())
}

fn routing() {
    println!(
        "routing: one channel, one source, filters cycling exact / prefix / numeric range / wildcard / anything-but"
    );
    println!(
        "{:>13} {:>12} {:>14} {:>10} {:>17} {:>12}",
        "subscriptions", "compile ms", "events/s/core", "ns/event", "matches/event", "goal"
    );
    for (n, goal) in [(10, None), (1_000, Some(500_000.0)), (10_000, Some(100_000.0))] {
        let mut rng = Rng(42);
        let subscriptions: Vec<Subscription> = (0..n).map(|i| subscription(i, filter(i, &mut rng))).collect();
        let started = Instant::now();
        let table = RouteTable::compile(1, &subscriptions);
        let compile = started.elapsed();
        assert_eq!(table.len(), n, "every filter compiles");
        let events = events(&mut Rng(7));
        measure(&table, &events[..1_000]);
        let (routed, matches, elapsed) = measure(&table, &events);
        let per_second = routed as f64 / elapsed.as_secs_f64();
        let verdict = match goal {
            Some(g) if per_second >= g => format!(">= {g:.0} ok"),
            Some(g) => format!(">= {g:.0} MISSED"),
            None => String::new(),
        };
        println!(
            "{n:>13} {:>12.1} {per_second:>14.0} {:>10.0} {:>17.2} {verdict:>12}",
            compile.as_secs_f64() * 1e3,
            elapsed.as_nanos() as f64 / routed as f64,
            matches as f64 / routed as f64,
        );
    }
}

/// A `VARIABLE` transform of 20 variables: 15 JSONPaths, 5 constants.
fn twenty_variables() -> Transform {
    let paths = [
        ("id", "$.id"),
        ("type", "$.type"),
        ("subject", "$.subject"),
        ("time", "$.time"),
        ("source", "$.source"),
        ("amount", "$.data.amount"),
        ("region", "$.data.region"),
        ("status", "$.data.status"),
        ("customer", "$.data.customer"),
        ("customer.id", "$.data.customer.id"),
        ("tier", "$.data.customer.tier"),
        ("items", "$.data.items"),
        ("first.sku", "$.data.items[0].sku"),
        ("skus", "$.data.items[*].sku"),
        ("coupon", "$.data.coupon"),
    ];
    let constants = [
        ("channel", json!("web")),
        ("version", json!(2)),
        ("test", json!(false)),
        ("team", json!("orders")),
        ("weight", json!(1.5)),
    ];
    let mut value = serde_json::Map::new();
    for (name, path) in paths {
        value.insert(name.into(), json!(path));
    }
    for (name, constant) in constants {
        value.insert(name.into(), constant);
    }
    let template = concat!(
        r#"{"eventId": "${id}", "kind": "${type}", "about": "${subject}", "at": "${time}", "from": "${source}", "#,
        r#""order": {"amount": ${amount}, "region": "${region}", "status": "${status}", "items": ${items}, "#,
        r#""first": "${first.sku}", "skus": ${skus}, "coupon": "${coupon!"none"}"}, "#,
        r#""customer": ${customer}, "customerId": "${customer.id}", "tier": "${tier}", "#,
        r#""meta": {"channel": "${channel}", "version": ${version}, "test": ${test}, "team": "${team}", "#,
        r#""weight": ${weight}}}"#
    );
    Transform {
        kind: TransformKind::Variable,
        value: Some(Value::Object(value).to_string()),
        template: Some(template.into()),
    }
}

fn transform() {
    println!();
    println!("transform: VARIABLE, 20 variables (15 JSONPaths, 5 constants), JSON template, binary-mode headers");
    let compiled = CompiledTransform::compile("transform", &twenty_variables()).expect("the transform compiles");
    let events = events(&mut Rng(7));
    let sample = compiled.payload(&events[0]).expect("renders");
    serde_json::from_slice::<Value>(&sample.body).expect("the body is JSON");
    let mut bytes = 0u64;
    let mut rendered = 0u64;
    let start = Instant::now();
    while start.elapsed() < MEASURE {
        for event in &events {
            let payload = compiled.payload(black_box(event)).expect("renders");
            bytes += black_box(payload).body.len() as u64;
        }
        rendered += events.len() as u64;
    }
    let elapsed = start.elapsed();
    println!("{:>16} {:>10} {:>12}", "payloads/s/core", "ns/payload", "body bytes");
    println!(
        "{:>16.0} {:>10.0} {:>12.0}",
        rendered as f64 / elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / rendered as f64,
        bytes as f64 / rendered as f64
    );
}

fn main() {
    routing();
    transform();
}
