//! Property test: random events routed through a [`RouteTable`] of random filters (native and
//! EventBridge) go exactly where a plain reference evaluator, written here from the filter rules
//! and sharing no code with the engine, says they should.

use std::net::IpAddr;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use super::RouteTable;
use super::table::tests::subscription;
use crate::engine::filter::Filter;

const SOURCES: &[&str] = &["s1", "s2"];
const PATHS: &[&str] = &["type", "subject", "data.s", "data.n", "data.b", "data.z", "data.arr", "data.o.k"];
const STRINGS: &[&str] = &["a", "ab", "A", "b.c", "x*y", "10.0.0.1", "::1", "", "order.created"];
/// The values of most equality conditions, and of most strings in event arrays, so that indexed
/// lookups hit often.
const KEYS: &[&str] = &["a", "ab", "order.created"];
const NUMBERS: &[f64] = &[-1.0, 0.0, 1.0, 2.5, 10.0];
const PATTERNS: &[&str] = &["a*", "*b*", "*", "x\\*y", "A", "*.c", "a*b"];
const CIDRS: &[&str] = &["10.0.0.0/8", "::/0", "192.168.0.0/16", "10.0.0.1/32"];
const OPS: &[&str] = &[
    "StringIn",
    "StringNotIn",
    "StringStartsWith",
    "StringNotStartsWith",
    "StringEndsWith",
    "StringNotEndsWith",
    "StringContains",
    "StringNotContains",
    "StringWildcard",
    "StringEqualsIgnoreCase",
    "IpInCidr",
    "NumberIn",
    "NumberNotIn",
    "NumberGreaterThan",
    "NumberGreaterThanOrEquals",
    "NumberLessThan",
    "NumberLessThanOrEquals",
    "NumberInRange",
    "NumberNotInRange",
    "BoolEquals",
    "IsNull",
    "IsNotNull",
    "IsUndefined",
    "IsNotUndefined",
];

// ---- the reference evaluator -------------------------------------------------------------

fn field<'a>(event: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut here = event;
    for key in path {
        match here {
            Value::Object(map) => here = map.get(key)?,
            _ => return None,
        }
    }
    Some(here)
}

/// `test` on a field: a missing field fails; an array passes when one of its elements does.
fn some_element(field: Option<&Value>, test: &dyn Fn(&Value) -> bool) -> bool {
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(test),
        Some(v) => test(v),
    }
}

fn glob(pattern: &[char], s: &[char]) -> bool {
    match pattern {
        [] => s.is_empty(),
        ['*', rest @ ..] => (0..=s.len()).any(|skip| glob(rest, &s[skip..])),
        ['\\', c, rest @ ..] => s.first() == Some(c) && glob(rest, &s[1..]),
        [c, rest @ ..] => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let len: u32 = len.parse().unwrap();
    match (ip.parse::<IpAddr>(), net.parse::<IpAddr>().unwrap()) {
        (Ok(IpAddr::V4(ip)), IpAddr::V4(net)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (Ok(IpAddr::V6(ip)), IpAddr::V6(net)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A positive native operator on one value.
fn holds(op: &str, values: &[Value], v: &Value) -> bool {
    let strs = || values.iter().map(|x| x.as_str().unwrap());
    let nums = || values.iter().map(|x| x.as_f64().unwrap());
    match (op, v) {
        ("StringIn", Value::String(s)) => strs().any(|x| x == s),
        ("StringStartsWith", Value::String(s)) => strs().any(|x| s.starts_with(x)),
        ("StringEndsWith", Value::String(s)) => strs().any(|x| s.ends_with(x)),
        ("StringContains", Value::String(s)) => strs().any(|x| s.contains(x)),
        ("StringEqualsIgnoreCase", Value::String(s)) => strs().any(|x| x.to_lowercase() == s.to_lowercase()),
        ("StringWildcard", Value::String(s)) => {
            let s: Vec<char> = s.chars().collect();
            strs().any(|x| glob(&x.chars().collect::<Vec<_>>(), &s))
        }
        ("IpInCidr", Value::String(s)) => strs().any(|x| in_cidr(s, x)),
        ("NumberIn", Value::Number(n)) => nums().any(|x| x == n.as_f64().unwrap()),
        ("NumberGreaterThan", Value::Number(n)) => nums().any(|x| n.as_f64().unwrap() > x),
        ("NumberGreaterThanOrEquals", Value::Number(n)) => nums().any(|x| n.as_f64().unwrap() >= x),
        ("NumberLessThan", Value::Number(n)) => nums().any(|x| n.as_f64().unwrap() < x),
        ("NumberLessThanOrEquals", Value::Number(n)) => nums().any(|x| n.as_f64().unwrap() <= x),
        ("NumberInRange", Value::Number(n)) => values.iter().any(|pair| {
            let n = n.as_f64().unwrap();
            pair[0].as_f64().unwrap() <= n && n <= pair[1].as_f64().unwrap()
        }),
        ("BoolEquals", Value::Bool(b)) => values.iter().any(|x| x.as_bool() == Some(*b)),
        ("IsNull", Value::Null) => true,
        _ => false,
    }
}

fn native_condition(op: &str, values: &[Value], f: Option<&Value>) -> bool {
    match op {
        "IsUndefined" => f.is_none(),
        "IsNotUndefined" => f.is_some(),
        "IsNotNull" => f.is_some() && !native_condition("IsNull", values, f),
        negative if negative.contains("Not") => !native_condition(&negative.replacen("Not", "", 1), values, f),
        positive => some_element(f, &|v| holds(positive, values, v)),
    }
}

fn native(filter: &Map<String, Value>, event: &Value, path: &[String]) -> bool {
    filter.iter().all(|(key, value)| {
        let path = [path, std::slice::from_ref(key)].concat();
        match value {
            Value::Array(conditions) => conditions.iter().all(|c| {
                let values = c.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
                native_condition(c["op"].as_str().unwrap(), &values, field(event, &path))
            }),
            Value::Object(nested) => native(nested, event, &path),
            _ => unreachable!(),
        }
    })
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Whether `v` is excluded by the argument of an `anything-but`.
fn excluded(arg: &Value, v: &Value) -> bool {
    match arg {
        Value::Array(items) => items.iter().any(|item| same_scalar(item, v)),
        Value::Object(m) => m.iter().all(|(op, x)| eventbridge_matcher(op, x, v)),
        scalar => same_scalar(scalar, v),
    }
}

/// A positive EventBridge matcher on one value.
fn eventbridge_matcher(op: &str, arg: &Value, v: &Value) -> bool {
    let Value::String(s) = v else {
        return match (op, v) {
            ("numeric", Value::Number(n)) => {
                let n = n.as_f64().unwrap();
                arg.as_array().unwrap().chunks(2).all(|pair| {
                    let x = pair[1].as_f64().unwrap();
                    match pair[0].as_str().unwrap() {
                        ">" => n > x,
                        ">=" => n >= x,
                        "<" => n < x,
                        "<=" => n <= x,
                        _ => n == x,
                    }
                })
            }
            _ => false,
        };
    };
    let folded = arg.get("equals-ignore-case").and_then(Value::as_str).map(str::to_lowercase);
    let lower = s.to_lowercase();
    match (op, arg) {
        ("prefix", Value::String(x)) => s.starts_with(x.as_str()),
        ("prefix", _) => lower.starts_with(folded.unwrap().as_str()),
        ("suffix", Value::String(x)) => s.ends_with(x.as_str()),
        ("suffix", _) => lower.ends_with(folded.unwrap().as_str()),
        ("equals-ignore-case", Value::Array(xs)) => xs.iter().any(|x| x.as_str().unwrap().to_lowercase() == lower),
        ("equals-ignore-case", x) => x.as_str().unwrap().to_lowercase() == lower,
        ("wildcard", x) => glob(&x.as_str().unwrap().chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>()),
        ("cidr", x) => in_cidr(s, x.as_str().unwrap()),
        _ => false,
    }
}

fn eventbridge_entry(entry: &Value, f: Option<&Value>) -> bool {
    let Value::Object(m) = entry else {
        return some_element(f, &|v| same_scalar(entry, v));
    };
    let (op, arg) = m.iter().next().unwrap();
    match op.as_str() {
        "exists" => f.is_some() == arg.as_bool().unwrap(),
        "anything-but" => f.is_some() && !some_element(f, &|v| excluded(arg, v)),
        _ => some_element(f, &|v| eventbridge_matcher(op, arg, v)),
    }
}

fn eventbridge(pattern: &Map<String, Value>, event: &Value, path: &[String]) -> bool {
    pattern.iter().all(|(key, value)| match (key.as_str(), value) {
        ("$pattern", _) => true,
        ("$or", Value::Array(alternatives)) => {
            alternatives.iter().any(|a| eventbridge(a.as_object().unwrap(), event, path))
        }
        (_, Value::Array(entries)) => {
            let path = [path, std::slice::from_ref(key)].concat();
            entries.iter().any(|e| eventbridge_entry(e, field(event, &path)))
        }
        (_, Value::Object(nested)) => eventbridge(nested, event, &[path, std::slice::from_ref(key)].concat()),
        _ => unreachable!(),
    })
}

fn reference(filter: &Value, event: &Value) -> bool {
    let filter = filter.as_object().unwrap();
    if filter.contains_key("$pattern") { eventbridge(filter, event, &[]) } else { native(filter, event, &[]) }
}

// ---- generators --------------------------------------------------------------------------

fn set(target: &mut Value, path: &str, value: Value) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().unwrap();
    let mut here = target;
    for key in keys {
        here = here.as_object_mut().unwrap().entry(key).or_insert_with(|| json!({}));
    }
    here.as_object_mut().unwrap().insert(last.to_owned(), value);
}

/// Appends `items` to the list at `path`, creating it.
fn append(target: &mut Value, path: &str, items: Vec<Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().unwrap();
    let mut here = target;
    for key in keys {
        here = here.as_object_mut().unwrap().entry(key).or_insert_with(|| json!({}));
    }
    let list = here.as_object_mut().unwrap().entry(last).or_insert_with(|| json!([]));
    list.as_array_mut().unwrap().extend(items);
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(STRINGS).prop_map(|s| json!(s)),
        select(NUMBERS).prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        2 => Just(None),
        6 => scalar().prop_map(Some),
        3 => vec(prop_oneof![3 => select(KEYS).prop_map(|s| json!(s)), 1 => scalar()], 0..4)
            .prop_map(|items| Some(Value::Array(items))),
    ];
    (select(SOURCES), vec(value, PATHS.len())).prop_map(|(source, values)| {
        let mut event = json!({ "id": "1", "source": source, "specversion": "1.0" });
        for (path, value) in PATHS.iter().zip(values) {
            if let Some(value) = value {
                set(&mut event, path, value);
            }
        }
        event
    })
}

/// Values for a native operator, from vocabulary picks.
fn native_values(op: &str, picks: &[usize]) -> Option<Value> {
    let from = |vocabulary: &[&str]| picks.iter().map(|p| json!(vocabulary[p % vocabulary.len()])).collect();
    let number = |p: usize| NUMBERS[p % NUMBERS.len()];
    Some(Value::Array(match op {
        "IsNull" | "IsNotNull" | "IsUndefined" | "IsNotUndefined" => return None,
        "StringWildcard" => from(PATTERNS),
        "IpInCidr" => from(CIDRS),
        "NumberInRange" | "NumberNotInRange" => picks
            .chunks(2)
            .map(|pair| {
                let (a, b) = (number(pair[0]), number(*pair.last().unwrap() / 7));
                json!([a.min(b), a.max(b)])
            })
            .collect(),
        "BoolEquals" => picks.iter().map(|p| json!(p.is_multiple_of(2))).collect(),
        op if op.starts_with("Number") => picks.iter().map(|&p| json!(number(p))).collect(),
        _ => from(STRINGS),
    }))
}

fn native_filter() -> impl Strategy<Value = Value> {
    let condition = (select(PATHS), select(OPS), vec(0usize..1000, 1..4));
    let equality = (select(&["type", "subject", "data.arr"][..]), Just("StringIn"), vec(0usize..1000, 1..3));
    vec(prop_oneof![3 => condition, 2 => equality], 0..4).prop_map(|conditions| {
        let mut filter = json!({});
        for (path, op, picks) in conditions {
            let condition = match native_values(op, &picks) {
                Some(_) if op == "StringIn" => {
                    json!({ "op": op, "values": picks.iter().map(|p| KEYS[p % KEYS.len()]).collect::<Vec<_>>() })
                }
                Some(values) => json!({ "op": op, "values": values }),
                None => json!({ "op": op }),
            };
            append(&mut filter, path, vec![condition]);
        }
        filter
    })
}

/// One entry of an EventBridge leaf, from a vocabulary pick.
fn eventbridge_entry_for(kind: usize, p: usize) -> Value {
    let s = STRINGS[p % STRINGS.len()];
    let n = NUMBERS[p % NUMBERS.len()];
    let t = STRINGS[(p / 11) % STRINGS.len()];
    let m = NUMBERS[(p / 13) % NUMBERS.len()];
    match kind % 16 {
        0 => json!(s),
        1 => json!(KEYS[p % KEYS.len()]),
        2 => json!(n),
        3 => json!(p.is_multiple_of(2)),
        4 => Value::Null,
        5 => json!({ "prefix": s }),
        6 => json!({ "suffix": { "equals-ignore-case": s } }),
        7 => json!({ "equals-ignore-case": s }),
        8 => json!({ "wildcard": PATTERNS[p % PATTERNS.len()] }),
        9 => json!({ "cidr": CIDRS[p % CIDRS.len()] }),
        10 => json!({ "exists": p.is_multiple_of(2) }),
        11 => json!({ "numeric": [">=", n.min(m), "<", n.max(m) + 0.5] }),
        12 => json!({ "numeric": ["=", n] }),
        13 => json!({ "anything-but": [s, t] }),
        14 => json!({ "anything-but": [n, m] }),
        _ => [
            json!({ "anything-but": s }),
            json!({ "anything-but": { "prefix": s } }),
            json!({ "anything-but": { "suffix": s } }),
            json!({ "anything-but": { "equals-ignore-case": s } }),
            json!({ "anything-but": { "wildcard": PATTERNS[p % PATTERNS.len()] } }),
        ][p % 5]
            .clone(),
    }
}

fn eventbridge_pattern() -> impl Strategy<Value = Value> {
    let leaf = (select(PATHS), vec((0usize..16, 0usize..1000), 1..4));
    let pattern = vec(leaf, 0..3).prop_map(|leaves| {
        let mut pattern = json!({});
        for (path, entries) in leaves {
            append(&mut pattern, path, entries.into_iter().map(|(k, p)| eventbridge_entry_for(k, p)).collect());
        }
        pattern
    });
    (pattern.clone(), prop::option::of(vec(pattern, 2..3))).prop_map(|(mut pattern, or)| {
        if let Some(alternatives) = or {
            pattern["$or"] = Value::Array(alternatives);
        }
        pattern["$pattern"] = json!("eventbridge");
        pattern
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// GIVEN random subscriptions and events, WHEN the events are routed through the compiled and
    /// indexed table, THEN each goes to exactly the subscriptions the reference evaluator picks.
    #[test]
    fn indexed_table_agrees_with_the_reference(
        filters in vec((select(SOURCES), prop_oneof![native_filter(), eventbridge_pattern()]), 1..16),
        events in vec(event(), 1..12),
    ) {
        let subscriptions: Vec<_> = filters
            .iter()
            .enumerate()
            .map(|(i, (source, filter))| subscription(&format!("sub{i:02}"), source, filter.clone()))
            .collect();
        for (_, filter) in &filters {
            prop_assert!(Filter::compile("filter", filter).is_ok(), "{filter} does not compile");
        }
        let table = RouteTable::compile(1, &subscriptions);
        for event in &events {
            let mut routed: Vec<&str> = table.matching(event).map(|r| r.subscription_id.as_str()).collect();
            routed.sort_unstable();
            let expected: Vec<&str> = subscriptions
                .iter()
                .filter(|s| event["source"] == s.sources[0].name.as_str() && reference(&s.sources[0].filter, event))
                .map(|s| s.id.as_str())
                .collect();
            prop_assert_eq!(routed, expected, "event {}", event);
        }
    }
}
