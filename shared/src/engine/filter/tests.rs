//! Table-driven tests of the filter language: each rule through the native form and, where
//! EventBridge has the same rule, through the EventBridge form.

use serde_json::{Value, json};

use super::*;

fn event() -> Value {
    json!({
        "id": "e-1", "source": "orders", "type": "order.created", "specversion": "1.0",
        "subject": "Invoices/2024/INV-7.PDF", "time": "2024-05-01T10:00:00Z", "tenant": "t1",
        "datacontenttype": "application/json",
        "data": {
            "count": 2, "amount": 12.5, "name": "Ärger GmbH", "active": true, "nothing": null,
            "tags": ["a", "b"], "scores": [1, 5, 9], "flags": [true], "maybe": [null, 1], "empty": [],
            "ip": "10.1.2.3", "ip6": "2001:db8::7", "str_num": "2",
            "customer": { "tier": "gold", "age": 40, "address": { "city": "Lyon" } },
            "deep": { "l2": { "l3": { "l4": { "l5": { "l6": { "l7": { "l8": "bottom" } } } } } } }
        }
    })
}

/// An EventBridge pattern: `pattern` marked with `$pattern`.
fn eb(mut pattern: Value) -> Value {
    pattern.as_object_mut().unwrap().insert("$pattern".into(), json!("eventbridge"));
    pattern
}

/// A native filter with one condition on the field at the dotted `path`.
fn cond(path: &str, op: &str, values: Value) -> Value {
    let condition = if values.is_null() { json!({ "op": op }) } else { json!({ "op": op, "values": values }) };
    nest(path, json!([condition]))
}

/// `leaf` placed at the dotted `path`.
fn nest(path: &str, leaf: Value) -> Value {
    path.rsplit('.').fold(leaf, |inner, key| json!({ key: inner }))
}

/// GIVEN the event, WHEN each filter is compiled and evaluated, THEN it gives the expected answer.
fn check(cases: &[(&str, Value, bool)]) {
    let event = event();
    for (name, filter, expected) in cases {
        let compiled = Filter::compile("filter", filter).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(compiled.matches(&event), *expected, "{name}: {filter}");
    }
}

#[test]
fn string_operators() {
    check(&[
        ("StringIn", cond("data.customer.tier", "StringIn", json!(["x", "gold"])), true),
        ("StringIn miss", cond("data.customer.tier", "StringIn", json!(["silver"])), false),
        ("eb exact", eb(nest("data.customer.tier", json!(["x", "gold"]))), true),
        ("eb exact miss", eb(nest("data.customer.tier", json!(["silver"]))), false),
        ("StringNotIn", cond("data.customer.tier", "StringNotIn", json!(["silver", "bronze"])), true),
        ("StringNotIn miss", cond("data.customer.tier", "StringNotIn", json!(["silver", "gold"])), false),
        (
            "eb anything-but list",
            eb(nest("data.customer.tier", json!([{ "anything-but": ["silver", "bronze"] }]))),
            true,
        ),
        (
            "eb anything-but list miss",
            eb(nest("data.customer.tier", json!([{ "anything-but": ["silver", "gold"] }]))),
            false,
        ),
        ("StringStartsWith", cond("subject", "StringStartsWith", json!(["Invoices/"])), true),
        ("StringStartsWith case", cond("subject", "StringStartsWith", json!(["invoices/"])), false),
        ("eb prefix", eb(json!({ "subject": [{ "prefix": "Invoices/" }] })), true),
        ("eb prefix case", eb(json!({ "subject": [{ "prefix": "invoices/" }] })), false),
        (
            "eb prefix ignore case",
            eb(json!({ "subject": [{ "prefix": { "equals-ignore-case": "INVOICES/" } }] })),
            true,
        ),
        ("StringNotStartsWith", cond("subject", "StringNotStartsWith", json!(["Receipts/"])), true),
        ("StringNotStartsWith miss", cond("subject", "StringNotStartsWith", json!(["Invoices/"])), false),
        ("eb anything-but prefix", eb(json!({ "subject": [{ "anything-but": { "prefix": "Receipts/" } }] })), true),
        ("eb anything-but prefix miss", eb(json!({ "subject": [{ "anything-but": { "prefix": "Inv" } }] })), false),
        ("StringEndsWith", cond("subject", "StringEndsWith", json!([".PDF"])), true),
        ("StringEndsWith case", cond("subject", "StringEndsWith", json!([".pdf"])), false),
        ("eb suffix", eb(json!({ "subject": [{ "suffix": ".PDF" }] })), true),
        ("eb suffix ignore case", eb(json!({ "subject": [{ "suffix": { "equals-ignore-case": ".pdf" } }] })), true),
        ("StringNotEndsWith", cond("subject", "StringNotEndsWith", json!([".png"])), true),
        ("StringNotEndsWith miss", cond("subject", "StringNotEndsWith", json!([".png", ".PDF"])), false),
        ("eb anything-but suffix", eb(json!({ "subject": [{ "anything-but": { "suffix": ".png" } }] })), true),
        ("eb anything-but suffix miss", eb(json!({ "subject": [{ "anything-but": { "suffix": ".PDF" } }] })), false),
        ("StringContains", cond("subject", "StringContains", json!(["2025", "/2024/"])), true),
        ("StringContains miss", cond("subject", "StringContains", json!(["2025"])), false),
        ("StringNotContains", cond("subject", "StringNotContains", json!(["2025"])), true),
        ("StringNotContains miss", cond("subject", "StringNotContains", json!(["2025", "2024"])), false),
        ("StringWildcard", cond("subject", "StringWildcard", json!(["Invoices/*/INV-*.PDF"])), true),
        ("StringWildcard miss", cond("subject", "StringWildcard", json!(["Invoices/*.png"])), false),
        ("StringWildcard literal star", cond("subject", "StringWildcard", json!([r"Invoices/\*"])), false),
        ("eb wildcard", eb(json!({ "subject": [{ "wildcard": "Invoices/*/INV-*.PDF" }] })), true),
        ("eb wildcard miss", eb(json!({ "subject": [{ "wildcard": "*.png" }] })), false),
        ("eb anything-but wildcard", eb(json!({ "subject": [{ "anything-but": { "wildcard": "*.png" } }] })), true),
        ("StringEqualsIgnoreCase", cond("data.name", "StringEqualsIgnoreCase", json!(["ärger gmbh"])), true),
        ("StringEqualsIgnoreCase miss", cond("data.name", "StringEqualsIgnoreCase", json!(["ärger"])), false),
        ("eb equals-ignore-case", eb(nest("data.name", json!([{ "equals-ignore-case": "ÄRGER GMBH" }]))), true),
        (
            "eb anything-but equals-ignore-case",
            eb(nest("data.name", json!([{ "anything-but": { "equals-ignore-case": ["ärger gmbh"] } }]))),
            false,
        ),
        ("IpInCidr v4", cond("data.ip", "IpInCidr", json!(["192.168.0.0/16", "10.0.0.0/8"])), true),
        ("IpInCidr v4 miss", cond("data.ip", "IpInCidr", json!(["192.168.0.0/16"])), false),
        ("IpInCidr v6", cond("data.ip6", "IpInCidr", json!(["2001:db8::/32"])), true),
        ("IpInCidr v6 miss", cond("data.ip6", "IpInCidr", json!(["2001:db9::/32", "10.0.0.0/8"])), false),
        ("eb cidr", eb(nest("data.ip", json!([{ "cidr": "10.1.0.0/16" }]))), true),
        ("eb cidr miss", eb(nest("data.ip", json!([{ "cidr": "10.2.0.0/16" }]))), false),
    ]);
}

#[test]
fn number_bool_and_null_operators() {
    check(&[
        ("NumberIn", cond("data.count", "NumberIn", json!([1, 2])), true),
        ("NumberIn miss", cond("data.count", "NumberIn", json!([3])), false),
        ("NumberIn float", cond("data.amount", "NumberIn", json!([12.5])), true),
        ("eb exact number", eb(nest("data.count", json!([1, 2]))), true),
        ("eb exact number miss", eb(nest("data.count", json!([3]))), false),
        ("NumberNotIn", cond("data.count", "NumberNotIn", json!([3, 4])), true),
        ("NumberNotIn miss", cond("data.count", "NumberNotIn", json!([3, 2])), false),
        ("eb anything-but number", eb(nest("data.count", json!([{ "anything-but": [3, 4] }]))), true),
        ("eb anything-but number miss", eb(nest("data.count", json!([{ "anything-but": 2 }]))), false),
        ("NumberGreaterThan", cond("data.amount", "NumberGreaterThan", json!([12])), true),
        ("NumberGreaterThan edge", cond("data.amount", "NumberGreaterThan", json!([12.5])), false),
        ("eb >", eb(nest("data.amount", json!([{ "numeric": [">", 12] }]))), true),
        ("eb > edge", eb(nest("data.amount", json!([{ "numeric": [">", 12.5] }]))), false),
        ("NumberGreaterThanOrEquals", cond("data.amount", "NumberGreaterThanOrEquals", json!([12.5])), true),
        ("NumberGreaterThanOrEquals miss", cond("data.amount", "NumberGreaterThanOrEquals", json!([13])), false),
        ("eb >=", eb(nest("data.amount", json!([{ "numeric": [">=", 12.5] }]))), true),
        ("NumberLessThan", cond("data.amount", "NumberLessThan", json!([13])), true),
        ("NumberLessThan edge", cond("data.amount", "NumberLessThan", json!([12.5])), false),
        ("eb <", eb(nest("data.amount", json!([{ "numeric": ["<", 12.5] }]))), false),
        ("NumberLessThanOrEquals", cond("data.amount", "NumberLessThanOrEquals", json!([12.5])), true),
        ("NumberLessThanOrEquals miss", cond("data.amount", "NumberLessThanOrEquals", json!([12])), false),
        ("eb <=", eb(nest("data.amount", json!([{ "numeric": ["<=", 12.5] }]))), true),
        ("eb =", eb(nest("data.count", json!([{ "numeric": ["=", 2] }]))), true),
        ("NumberInRange", cond("data.amount", "NumberInRange", json!([[0, 1], [10, 12.5]])), true),
        ("NumberInRange miss", cond("data.amount", "NumberInRange", json!([[0, 1], [13, 20]])), false),
        ("eb range", eb(nest("data.amount", json!([{ "numeric": [">=", 10, "<=", 12.5] }]))), true),
        ("eb range open end", eb(nest("data.amount", json!([{ "numeric": [">", 10, "<", 12.5] }]))), false),
        ("NumberNotInRange", cond("data.amount", "NumberNotInRange", json!([[0, 1], [13, 20]])), true),
        ("NumberNotInRange inclusive", cond("data.amount", "NumberNotInRange", json!([[12.5, 13]])), false),
        ("BoolEquals", cond("data.active", "BoolEquals", json!([true])), true),
        ("BoolEquals miss", cond("data.active", "BoolEquals", json!([false])), false),
        ("eb exact bool", eb(nest("data.active", json!([true]))), true),
        ("eb exact bool miss", eb(nest("data.active", json!([false]))), false),
        ("IsNull", cond("data.nothing", "IsNull", Value::Null), true),
        ("IsNull miss", cond("data.count", "IsNull", Value::Null), false),
        ("eb null", eb(nest("data.nothing", json!([null]))), true),
        ("eb null miss", eb(nest("data.count", json!([null]))), false),
        ("IsNotNull", cond("data.count", "IsNotNull", Value::Null), true),
        ("IsNotNull miss", cond("data.nothing", "IsNotNull", Value::Null), false),
        ("IsUndefined", cond("data.absent", "IsUndefined", Value::Null), true),
        ("IsUndefined miss", cond("data.nothing", "IsUndefined", Value::Null), false),
        ("eb exists false", eb(nest("data.absent", json!([{ "exists": false }]))), true),
        ("eb exists false miss", eb(nest("data.nothing", json!([{ "exists": false }]))), false),
        ("IsNotUndefined", cond("data.nothing", "IsNotUndefined", Value::Null), true),
        ("IsNotUndefined object", cond("data.customer", "IsNotUndefined", json!([])), true),
        ("IsNotUndefined miss", cond("data.absent", "IsNotUndefined", Value::Null), false),
        ("eb exists true", eb(nest("data.nothing", json!([{ "exists": true }]))), true),
        ("eb exists true miss", eb(nest("data.absent", json!([{ "exists": true }]))), false),
    ]);
}

#[test]
fn keys_conditions_and_values_combine() {
    let two_keys = |tier: &str| {
        json!({
            "type": [{ "op": "StringIn", "values": ["order.created"] }],
            "data": { "customer": { "tier": [{ "op": "StringIn", "values": [tier] }] } }
        })
    };
    let two_keys_eb = |tier: &str| eb(json!({ "type": ["order.created"], "data": { "customer": { "tier": [tier] } } }));
    let on_one_key = |second: i64| {
        json!({ "data": { "count": [
            { "op": "NumberGreaterThan", "values": [1] }, { "op": "NumberIn", "values": [second] }
        ] } })
    };
    check(&[
        ("every key holds", two_keys("gold"), true),
        ("one key fails", two_keys("silver"), false),
        ("eb every key holds", two_keys_eb("gold"), true),
        ("eb one key fails", two_keys_eb("silver"), false),
        ("every condition on a key holds", on_one_key(2), true),
        ("one condition on a key fails", on_one_key(3), false),
        ("values of a condition OR", cond("type", "StringIn", json!(["a", "order.created", "b"])), true),
        ("eb values of a leaf OR", eb(json!({ "type": ["a", { "prefix": "order." }, 7] })), true),
        ("eb values of a leaf OR miss", eb(json!({ "type": ["a", { "prefix": "x" }, 7] })), false),
        ("empty filter", json!({}), true),
        ("empty pattern", eb(json!({})), true),
        ("extension attribute", cond("tenant", "StringIn", json!(["t1"])), true),
        ("eb extension attribute", eb(json!({ "tenant": ["t1"] })), true),
        ("spec example NumberIn", json!({ "data": { "count": [{ "op": "NumberIn", "values": [1, 2] }] } }), true),
        ("spec example StringIn", json!({ "source": [{ "op": "StringIn", "values": ["ghm"] }] }), false),
    ]);
}

#[test]
fn eventbridge_or_patterns() {
    check(&[
        ("$or first", eb(json!({ "$or": [{ "type": ["order.created"] }, { "data": { "count": [9] } }] })), true),
        ("$or second", eb(json!({ "$or": [{ "type": ["x"] }, { "data": { "count": [2] } }] })), true),
        ("$or none", eb(json!({ "$or": [{ "type": ["x"] }, { "data": { "count": [9] } }] })), false),
        (
            "$or under data with a sibling",
            eb(json!({ "data": { "active": [true], "$or": [{ "count": [9] }, { "customer": { "age": [40] } }] } })),
            true,
        ),
        (
            "$or and a failing sibling",
            eb(json!({ "type": ["x"], "$or": [{ "tenant": ["t1"] }, { "id": ["e-1"] }] })),
            false,
        ),
    ]);
}

#[test]
fn negative_conditions_need_every_value_to_fail() {
    check(&[
        ("NotIn none hit", cond("type", "StringNotIn", json!(["a", "b"])), true),
        ("NotIn one hits", cond("type", "StringNotIn", json!(["a", "order.created"])), false),
        ("NotStartsWith one hits", cond("type", "StringNotStartsWith", json!(["x", "order"])), false),
        ("NotEndsWith none hit", cond("type", "StringNotEndsWith", json!(["x", "y"])), true),
        ("NotContains one hits", cond("type", "StringNotContains", json!(["x", "der"])), false),
        ("NumberNotIn none hit", cond("data.count", "NumberNotIn", json!([1, 3])), true),
        ("NumberNotInRange one hits", cond("data.count", "NumberNotInRange", json!([[5, 6], [2, 2]])), false),
        ("eb anything-but one hits", eb(json!({ "type": [{ "anything-but": ["a", "order.created"] }] })), false),
        ("eb anything-but none hit", eb(json!({ "type": [{ "anything-but": ["a", "b"] }] })), true),
        ("eb anything-but prefix hits", eb(json!({ "type": [{ "anything-but": { "prefix": "order" } }] })), false),
        ("eb anything-but suffix none hit", eb(json!({ "type": [{ "anything-but": { "suffix": "x" } }] })), true),
        (
            "eb anything-but ignore case one hits",
            eb(json!({ "type": [{ "anything-but": { "equals-ignore-case": ["x", "ORDER.CREATED"] } }] })),
            false,
        ),
        (
            "eb anything-but wildcard one hits",
            eb(json!({ "type": [{ "anything-but": { "wildcard": ["x*", "*created"] } }] })),
            false,
        ),
        ("eb anything-but numbers none hit", eb(nest("data.count", json!([{ "anything-but": [1, 3] }]))), true),
    ]);
}

#[test]
fn missing_keys() {
    check(&[
        ("positive fails", cond("dataschema", "StringIn", json!(["x"])), false),
        ("number positive fails", cond("data.absent", "NumberGreaterThan", json!([0])), false),
        ("negative holds", cond("dataschema", "StringNotIn", json!(["x"])), true),
        ("NotStartsWith holds", cond("data.absent", "StringNotStartsWith", json!(["x"])), true),
        ("NumberNotInRange holds", cond("data.absent", "NumberNotInRange", json!([[0, 1]])), true),
        ("IsNull fails", cond("data.absent", "IsNull", Value::Null), false),
        ("IsNotNull fails", cond("data.absent", "IsNotNull", Value::Null), false),
        ("IsUndefined holds", cond("data.absent", "IsUndefined", Value::Null), true),
        ("IsNotUndefined fails", cond("data.absent", "IsNotUndefined", Value::Null), false),
        ("below a missing object", cond("data.nope.deeper", "NumberIn", json!([1])), false),
        ("below a scalar", cond("data.count.deeper", "IsUndefined", Value::Null), true),
        ("whole data missing", json!({ "data": { "x": [{ "op": "StringNotIn", "values": ["y"] }] } }), true),
        ("eb exact fails", eb(json!({ "dataschema": ["x"] })), false),
        ("eb anything-but fails", eb(json!({ "dataschema": [{ "anything-but": "x" }] })), false),
        (
            "eb anything-but prefix fails",
            eb(nest("data.absent", json!([{ "anything-but": { "prefix": "x" } }]))),
            false,
        ),
        ("eb null fails", eb(nest("data.absent", json!([null]))), false),
        ("eb prefix fails", eb(nest("data.absent", json!([{ "prefix": "" }]))), false),
        ("eb numeric fails", eb(nest("data.absent", json!([{ "numeric": [">", 0] }]))), false),
        ("eb anything-but number fails", eb(nest("data.absent", json!([{ "anything-but": [1] }]))), false),
        ("eb exists false holds", eb(json!({ "dataschema": [{ "exists": false }] })), true),
    ]);
}

#[test]
fn array_fields() {
    check(&[
        ("positive: some element", cond("data.tags", "StringIn", json!(["b"])), true),
        ("positive: no element", cond("data.tags", "StringIn", json!(["c"])), false),
        ("negative: some element hits", cond("data.tags", "StringNotIn", json!(["b"])), false),
        ("negative: no element hits", cond("data.tags", "StringNotIn", json!(["c"])), true),
        ("numbers: some element", cond("data.scores", "NumberGreaterThan", json!([8])), true),
        ("numbers: no element", cond("data.scores", "NumberLessThan", json!([0])), false),
        ("not in range: some element in", cond("data.scores", "NumberNotInRange", json!([[0, 4]])), false),
        ("not in range: none in", cond("data.scores", "NumberNotInRange", json!([[10, 20]])), true),
        ("booleans", cond("data.flags", "BoolEquals", json!([true])), true),
        ("empty: positive fails", cond("data.empty", "StringIn", json!(["x"])), false),
        ("empty: negative holds", cond("data.empty", "StringNotIn", json!(["x"])), true),
        ("empty: IsNotNull holds", cond("data.empty", "IsNotNull", Value::Null), true),
        ("a null element: IsNull", cond("data.maybe", "IsNull", Value::Null), true),
        ("a null element: IsNotNull", cond("data.maybe", "IsNotNull", Value::Null), false),
        ("eb: some element", eb(nest("data.tags", json!(["b"]))), true),
        ("eb: no element", eb(nest("data.tags", json!(["c"]))), false),
        ("eb anything-but: some element hits", eb(nest("data.tags", json!([{ "anything-but": "b" }]))), false),
        ("eb anything-but: no element hits", eb(nest("data.tags", json!([{ "anything-but": "c" }]))), true),
        ("eb numeric: some element", eb(nest("data.scores", json!([{ "numeric": [">", 8] }]))), true),
        ("eb empty: exact fails", eb(nest("data.empty", json!(["x"]))), false),
        ("eb empty: anything-but holds", eb(nest("data.empty", json!([{ "anything-but": "x" }]))), true),
        ("eb a null element", eb(nest("data.maybe", json!([null]))), true),
    ]);
}

#[test]
fn nesting_under_data() {
    check(&[
        ("three levels", cond("data.customer.address.city", "StringIn", json!(["Lyon"])), true),
        ("three levels miss", cond("data.customer.address.city", "StringIn", json!(["Paris"])), false),
        ("eight levels", cond("data.deep.l2.l3.l4.l5.l6.l7.l8", "StringIn", json!(["bottom"])), true),
        ("eb three levels", eb(nest("data.customer.address.city", json!(["Lyon"]))), true),
        ("eb eight levels", eb(nest("data.deep.l2.l3.l4.l5.l6.l7.l8", json!(["bottom"]))), true),
        ("a condition on data itself", cond("data", "IsNotNull", Value::Null), true),
    ]);
}

#[test]
fn type_mismatches_never_pass_positive_conditions() {
    check(&[
        ("number vs string", cond("data.count", "StringIn", json!(["2"])), false),
        ("string vs number", cond("data.str_num", "NumberIn", json!([2])), false),
        ("bool vs string", cond("data.active", "StringIn", json!(["true"])), false),
        ("null vs string", cond("data.nothing", "StringIn", json!(["null"])), false),
        ("object vs string", cond("data.customer", "StringStartsWith", json!([""])), false),
        ("number vs bool", cond("data.count", "BoolEquals", json!([true])), false),
        ("number vs range of strings", cond("data.str_num", "NumberInRange", json!([[0, 5]])), false),
        ("not an ip", cond("data.name", "IpInCidr", json!(["0.0.0.0/0"])), false),
        ("number vs wildcard", cond("data.count", "StringWildcard", json!(["*"])), false),
        ("the negation holds", cond("data.count", "StringNotIn", json!(["2"])), true),
        ("eb number vs string", eb(nest("data.count", json!(["2"]))), false),
        ("eb string vs number", eb(nest("data.str_num", json!([2]))), false),
        ("eb bool vs string", eb(nest("data.active", json!(["true"]))), false),
        ("eb string vs numeric", eb(nest("data.str_num", json!([{ "numeric": [">", 0] }]))), false),
        ("eb anything-but of another type", eb(nest("data.count", json!([{ "anything-but": "2" }]))), true),
    ]);
}

/// GIVEN an invalid filter, WHEN it is compiled, THEN the error names the key path and operator.
#[test]
fn invalid_filters_name_key_and_operator() {
    let many_values: Vec<i64> = (0..=100).collect();
    let mut too_many = serde_json::Map::new();
    for i in 0..=MAX_CONDITIONS {
        too_many.insert(format!("k{i}"), json!([{ "op": "IsNull" }]));
    }
    let cases = [
        (json!([]), "filter: must be a JSON object"),
        (json!({ "source": "x" }), "filter.source: must be a list of conditions"),
        (json!({ "source": [] }), "filter.source: needs at least one condition"),
        (cond("data.count", "Foo", json!([1])), "filter.data.count[0].op: unknown operator Foo"),
        (json!({ "source": [{ "values": ["x"] }] }), "filter.source[0].op: is required"),
        (
            json!({ "source": [{ "op": "StringIn", "values": ["x"], "value": 1 }] }),
            "filter.source[0].value: is not part",
        ),
        (cond("source", "StringIn", json!([1])), "filter.source[0].values[0]: StringIn takes strings"),
        (cond("source", "StringIn", json!("x")), "filter.source[0].values: StringIn takes a list of values"),
        (cond("data.n", "NumberIn", json!([1, "1"])), "filter.data.n[0].values[1]: NumberIn takes numbers"),
        (cond("data.n", "NumberIn", json!([])), "filter.data.n[0].values: NumberIn needs at least one value"),
        (cond("data.n", "IsNull", json!(["x"])), "filter.data.n[0].values: IsNull takes no values"),
        (cond("data.n", "NumberIn", json!(many_values)), "filter.data.n[0].values: NumberIn takes at most 100 values"),
        (
            cond("type", "StringIn", json!(["x".repeat(257)])),
            "filter.type[0].values[0]: StringIn takes strings of at most 256",
        ),
        (cond("data.n", "NumberInRange", json!([[5, 1]])), "filter.data.n[0].values[0]: NumberInRange: the low end 5"),
        (
            cond("data.n", "NumberInRange", json!([5])),
            "filter.data.n[0].values[0]: NumberInRange takes [low, high] pairs",
        ),
        (
            cond("data.ip", "IpInCidr", json!(["10.0.0.1"])),
            "filter.data.ip[0].values[0]: IpInCidr takes networks in CIDR",
        ),
        (
            cond("subject", "StringWildcard", json!([r"a\b"])),
            "filter.subject[0].values[0]: StringWildcard: a backslash",
        ),
        (cond("data.b", "BoolEquals", json!(["true"])), "filter.data.b[0].values[0]: BoolEquals takes booleans"),
        (json!({ "source": { "x": [] } }), "filter.source: only keys under data may nest"),
        (json!({ "$filter": [] }), "filter.$filter: top-level keys starting with $ are reserved"),
        (json!({ "$pattern": "sql" }), "filter.$pattern: unknown filter form \"sql\""),
        (cond("data.a.b.c.d.e.f.g.h.i", "IsNull", Value::Null), "filter.data.a.b.c.d.e.f.g.h: nests deeper than 8"),
        (json!({ "data": too_many }), "filter.data.k64[0]: is one condition too many; a filter holds at most 64"),
        (cond("type", "StringIn", json!(["x".repeat(2100)])), "filter: is 2"),
    ];
    let eventbridge = [
        (json!({ "source": "x" }), "filter.source: must be a list of values or matchers"),
        (json!({ "source": [] }), "filter.source: needs at least one value or matcher"),
        (json!({ "source": [["a"]] }), "filter.source[0]: lists do not nest"),
        (json!({ "source": { "x": ["a"] } }), "filter.source: only keys under data may nest"),
        (nest("data.count", json!([{ "nope": 1 }])), "filter.data.count[0]: unknown EventBridge operator nope"),
        (json!({ "subject": [{ "prefix": "a", "suffix": "b" }] }), "filter.subject[0]: a matcher holds exactly one"),
        (json!({ "subject": [{ "prefix": 1 }] }), "filter.subject[0].prefix: prefix takes strings"),
        (json!({ "subject": [{ "prefix": { "x": "a" } }] }), "filter.subject[0].prefix: prefix takes a string or"),
        (json!({ "subject": [{ "wildcard": "a\\" }] }), "filter.subject[0].wildcard: wildcard: a backslash"),
        (json!({ "subject": [{ "cidr": "x" }] }), "filter.subject[0].cidr: cidr takes networks"),
        (json!({ "subject": [{ "exists": "yes" }] }), "filter.subject[0].exists: exists takes true or false"),
        (nest("data.n", json!([{ "numeric": [">", "x"] }])), "filter.data.n[0].numeric: numeric takes comparison"),
        (nest("data.n", json!([{ "numeric": ["!", 1] }])), "filter.data.n[0].numeric: numeric has no operator !"),
        (
            nest("data.n", json!([{ "numeric": [">", 1, ">", 2] }])),
            "filter.data.n[0].numeric: numeric takes at most one",
        ),
        (nest("data.n", json!([{ "numeric": [">", 5, "<", 1] }])), "filter.data.n[0].numeric: numeric range is empty"),
        (nest("data.n", json!([{ "numeric": ["=", 1, "<", 2] }])), "filter.data.n[0].numeric: numeric = stands alone"),
        (nest("data.n", json!([{ "numeric": [">"] }])), "filter.data.n[0].numeric: numeric takes one or two"),
        (
            json!({ "subject": [{ "anything-but": { "contains": "x" } }] }),
            "filter.subject[0].anything-but.contains: anything-but takes no operator contains",
        ),
        (
            json!({ "subject": [{ "anything-but": true }] }),
            "filter.subject[0].anything-but: anything-but takes a string",
        ),
        (json!({ "subject": [{ "anything-but": ["a", 1] }] }), "filter.subject[0].anything-but[1]: anything-but takes"),
        (json!({ "$or": [] }), "filter.$or: $or takes a non-empty list"),
        (json!({ "$or": ["x"] }), "filter.$or[0]: $or: each alternative must be a pattern object"),
        (json!({ "$and": [{}] }), "filter.$and: unknown EventBridge operator $and"),
        (nest("data.a.b.c.d.e.f.g.h.i", json!(["x"])), "filter.data.a.b.c.d.e.f.g.h: nests deeper than 8"),
    ];
    let cases = cases.into_iter().chain(eventbridge.into_iter().map(|(f, e)| (eb(f), e)));
    for (filter, expected) in cases {
        let e = Filter::compile("filter", &filter).unwrap_err();
        assert!(matches!(e, Error::InvalidFilter { .. }), "{e}");
        assert!(e.to_string().starts_with(expected), "{e}\n  should start with\n{expected}");
    }
}
