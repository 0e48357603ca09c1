//! Transform tests: write-time checks (each error names the field and the problem) and
//! rendering (placeholders, defaults, escaping, content types, binary-mode headers).

use serde_json::{Value, json};

use super::*;

fn event() -> Value {
    json!({
        "id": "evt-1", "source": "shop", "specversion": "1.0", "type": "order.created",
        "subject": "orders/42", "time": "2024-05-01T10:00:00Z", "datacontenttype": "application/json",
        "tenant": "t 1", "priority": 3,
        "data": {
            "string": "plain", "object": { "a": 1, "b": [true, null] }, "count": 7, "flag": false,
            "nothing": null, "items": [{ "sku": "A" }, { "sku": "B" }],
            "tricky": "say \"hi\" \\ back\nline\ttab \u{1} é ✓ 😀"
        }
    })
}

fn variable(value: &Value, template: &str) -> Transform {
    Transform { kind: TransformKind::Variable, value: Some(value.to_string()), template: Some(template.to_owned()) }
}

fn compile(t: &Transform) -> Result<CompiledTransform> {
    CompiledTransform::compile("targets[0].transform", t)
}

/// The rendered body as text, and its content type.
fn render(value: Value, template: &str, event: &Value) -> (String, String) {
    let payload = compile(&variable(&value, template)).unwrap().payload(event).unwrap();
    (String::from_utf8(payload.body.to_vec()).unwrap(), payload.headers[0].1.clone())
}

/// GIVEN the spec's CreateSubscription example with its escaping decoded, WHEN an event is
/// rendered, THEN booleans and objects go in bare, strings inside their quotes, and the defaults
/// stand in for what the event lacks.
#[test]
fn the_spec_example_renders() {
    let value = concat!(
        r#"{"contant_boolean": true, "contant_string": "constant", "#,
        r#""variable_string": "$.data.string", "variable_json_object": "$.data.object"}"#
    );
    let template = concat!(
        r#"{"contant_boolean": ${contant_boolean}, "contant_string": "${contant_string!"default"}", "#,
        r#""variable_string": "${contant_boolean}", "variable_json_object": ${variable_json_object!"null"}}"#
    );
    let t = Transform { kind: TransformKind::Variable, value: Some(value.into()), template: Some(template.into()) };
    let compiled = compile(&t).unwrap();
    let body = |event: &Value| -> Value { serde_json::from_slice(&compiled.payload(event).unwrap().body).unwrap() };
    assert_eq!(
        body(&event()),
        json!({ "contant_boolean": true, "contant_string": "constant", "variable_string": "true",
                "variable_json_object": { "a": 1, "b": [true, null] } })
    );
    let without_data = json!({ "id": "e", "source": "s", "specversion": "1.0", "type": "t" });
    assert_eq!(body(&without_data)["variable_json_object"], Value::Null, "the default \"null\" prints null");
    assert_eq!(compiled.payload(&event()).unwrap().headers[0], ("content-type".into(), JSON.into()));
}

#[test]
fn placeholders_defaults_and_missing_values() {
    let e = event();
    let vars = json!({ "s": "$.data.string", "n": "$.data.count", "o": "$.data.object", "none": "$.data.absent",
                       "null": "$.data.nothing", "skus": "$.data.items[*].sku", "k": 12.5, "b": false, "c": "web" });
    let cases: &[(&str, &str)] = &[
        ("${s}", "plain"),
        ("n=${n} k=${k} b=${b} c=${c}", "n=7 k=12.5 b=false c=web"),
        ("${o}", r#"{"a":1,"b":[true,null]}"#),
        ("${skus}", r#"["A","B"]"#),
        ("${null}", "null"),
        ("<${none}>", "<>"),
        ("<${none!}>", "<>"),
        (r#"<${none!"dflt"}>"#, "<dflt>"),
        ("[${none}]", "[null]"),
        (r#"${s!"unused"}"#, "plain"),
        (r#"${none!"quote \" and \\ and \u00e9"}"#, "quote \" and \\ and é"),
        ("$s and $ and {s} and ${s}${s}", "$s and $ and {s} and plainplain"),
        (
            r#"{"o": ${o}, "n": ${n}, "s": "${s}", "none": ${none}}"#,
            r#"{"o": {"a":1,"b":[true,null]}, "n": 7, "s": "plain", "none": null}"#,
        ),
        (r#"{"none": "${none}", "dflt": "${none!"x"}"}"#, r#"{"none": "", "dflt": "x"}"#),
        (r#"["${o}", "${n}"]"#, r#"["{\"a\":1,\"b\":[true,null]}", "7"]"#),
    ];
    for (template, expected) in cases {
        assert_eq!(render(vars.clone(), template, &e).0, *expected, "{template}");
    }
}

/// GIVEN string variables holding quotes, backslashes, control characters and non-ASCII text,
/// WHEN they are placed inside string literals of a JSON template, THEN the body is JSON and
/// holds them unchanged.
#[test]
fn strings_inside_quotes_are_escaped() {
    let vars = json!({ "t": "$.data.tricky", "k": "a\"b\\c\u{7}" });
    let template = r#"{"tricky": "${t}", "twice": "<${t}|${t}>", "constant": "${k}", "default": "${x!"\"d\"\n"}"}"#;
    let vars = {
        let mut v = vars;
        v["x"] = json!("$.data.absent");
        v
    };
    let (body, content_type) = render(vars, template, &event());
    let parsed: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let tricky = event()["data"]["tricky"].as_str().unwrap().to_owned();
    assert_eq!(parsed["tricky"], tricky.as_str());
    assert_eq!(parsed["twice"], format!("<{tricky}|{tricky}>"));
    assert_eq!(parsed["constant"], "a\"b\\c\u{7}");
    assert_eq!(parsed["default"], "\"d\"\n");
    assert!(body.contains("é ✓ 😀"), "non-ASCII characters are kept as they are: {body}");
    assert!(body.contains(r"\u0001"), "control characters are escaped: {body}");
    assert_eq!(content_type, JSON);
}

#[test]
fn text_templates_are_not_escaped_and_say_what_they_are() {
    let vars = json!({ "t": "$.data.tricky", "id": "$.id" });
    let (body, content_type) = render(vars.clone(), r#"event ${id}: "${t}""#, &event());
    assert_eq!(body, format!("event evt-1: \"{}\"", event()["data"]["tricky"].as_str().unwrap()));
    assert_eq!(content_type, TEXT);
    let (body, content_type) = render(vars, r#"  "${id}""#, &event());
    assert_eq!((body.as_str(), content_type.as_str()), (r#"  "evt-1""#, JSON), "a text body that is JSON is JSON");
}

/// GIVEN a JSON template whose string variable is outside quotes, WHEN it renders, THEN the
/// failure names the reason (the write-time check cannot know the variable is a string).
#[test]
fn a_json_template_rendering_other_than_json_fails_with_a_reason() {
    let compiled = compile(&variable(&json!({ "s": "$.data.string" }), r#"{"s": ${s}}"#)).unwrap();
    let reason = compiled.payload(&event()).unwrap_err();
    assert!(reason.starts_with("transform: the rendered body is not JSON"), "{reason}");
    assert!(reason.contains("variables: s"), "{reason}");
    let number = json!({ "id": "e", "source": "s", "specversion": "1.0", "type": "t", "data": { "string": 5 } });
    assert_eq!(&compiled.payload(&number).unwrap().body[..], br#"{"s": 5}"#);
}

#[test]
fn constants_and_originals() {
    let constant = |value: &str| Transform { kind: TransformKind::Constant, value: Some(value.into()), template: None };
    let payload = compile(&constant(r#"{"fixed": true}"#)).unwrap().payload(&event()).unwrap();
    assert_eq!((&payload.body[..], payload.headers[0].1.as_str()), (&br#"{"fixed": true}"#[..], JSON));
    let payload = compile(&constant("${not} a template")).unwrap().payload(&event()).unwrap();
    assert_eq!((&payload.body[..], payload.headers[0].1.as_str()), (&b"${not} a template"[..], TEXT));
    let original = Transform { kind: TransformKind::Original, value: Some(String::new()), template: None };
    let payload = compile(&original).unwrap().payload(&event()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&payload.body).unwrap(), event());
    assert_eq!(payload.headers, vec![("content-type".to_owned(), STRUCTURED.to_owned())]);
}

/// GIVEN a rendered body, THEN the event's attributes travel as percent-encoded `ce-*` headers,
/// without the data and its content type.
#[test]
fn rendered_bodies_go_in_binary_mode() {
    let payload = compile(&variable(&json!({ "n": "$.data.count" }), "${n}")).unwrap().payload(&event()).unwrap();
    let headers: Vec<(&str, &str)> = payload.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        headers,
        vec![
            ("content-type", JSON),
            ("ce-id", "evt-1"),
            ("ce-source", "shop"),
            ("ce-specversion", "1.0"),
            ("ce-type", "order.created"),
            ("ce-subject", "orders/42"),
            ("ce-time", "2024-05-01T10:00:00Z"),
            ("ce-tenant", "t%201"),
            ("ce-priority", "3"),
        ]
    );
    assert_eq!(percent_encode("a\"b%c é"), "a%22b%25c%20%C3%A9");
}

/// GIVEN an invalid transform, WHEN it is compiled, THEN the error is `Invalid` (EG.00513000)
/// and names the field and the problem.
#[test]
fn invalid_transforms_name_the_field_and_problem() {
    let hundred: serde_json::Map<String, Value> = (0..100).map(|i| (format!("v{i}"), json!("$.id"))).collect();
    let mut one_too_many = hundred.clone();
    one_too_many.insert("v100".into(), json!("$.id"));
    let long_path = format!("$.data.{}", "x".repeat(1020));
    let just_fits = format!("$.data.{}", "x".repeat(1017));
    assert_eq!(just_fits.chars().count(), 1024);
    assert!(compile(&variable(&Value::Object(hundred), "${v0}${v99}")).is_ok(), "100 variables are allowed");
    assert!(compile(&variable(&json!({ "x": just_fits }), "${x}")).is_ok(), "a 1024-character path is allowed");
    assert!(compile(&variable(&json!({ "a".repeat(64): 1 }), "x")).is_ok(), "a 64-character name is allowed");
    let with = |value: Option<&str>, template: Option<&str>| Transform {
        kind: TransformKind::Variable,
        value: value.map(str::to_owned),
        template: template.map(str::to_owned),
    };
    let v = |value: Value, template: &str| variable(&value, template);
    let cases = [
        (with(None, Some("x")), "targets[0].transform.value: is required"),
        (with(Some("{}"), None), "targets[0].transform.template: is required"),
        (with(Some("[1]"), Some("x")), "targets[0].transform.value: must be a JSON object of variables"),
        (with(Some("{\"a\": "), Some("x")), "targets[0].transform.value: must be a JSON object of variables"),
        (v(Value::Object(one_too_many), "x"), "targets[0].transform.value: defines 101 variables; at most 100"),
        (
            v(json!({ "HC.name": 1 }), "x"),
            "targets[0].transform.value: variable \"HC.name\" must not start with \"HC.\"",
        ),
        (v(json!({ "a".repeat(65): 1 }), "x"), "targets[0].transform.value: variable \"aaaa"),
        (v(json!({ "_x": 1 }), "x"), "targets[0].transform.value: variable \"_x\" must start with a letter or digit"),
        (v(json!({ "a b": 1 }), "x"), "targets[0].transform.value: variable \"a b\" may hold only letters"),
        (
            v(json!({ "p": "$.data[" }), "x"),
            "targets[0].transform.value: variable \"p\" is not a valid JSONPath (RFC 9535)",
        ),
        (v(json!({ "p": "$..[?@.a ==]" }), "x"), "targets[0].transform.value: variable \"p\" is not a valid JSONPath"),
        (
            v(json!({ "p": long_path }), "x"),
            "targets[0].transform.value: variable \"p\" is longer than 1024 characters",
        ),
        (v(json!({ "c": "x".repeat(1025) }), "x"), "targets[0].transform.value: variable \"c\" is longer than 1024"),
        (
            v(json!({ "o": { "a": "$.id" } }), "x"),
            "targets[0].transform.value: variable \"o\" must be a constant or a JSONPath string; variables do not nest",
        ),
        (v(json!({ "a": 1 }), "${b}"), "targets[0].transform.template: ${b} names no variable"),
        (v(json!({ "a": 1 }), "x ${a"), "targets[0].transform.template: the placeholder at byte 2 is not closed"),
        (v(json!({ "a": 1 }), "${}"), "targets[0].transform.template: the placeholder at byte 0 has no variable name"),
        (
            v(json!({ "a": 1 }), "${a b}"),
            "targets[0].transform.template: the placeholder at byte 0 has \" \" after its name",
        ),
        (
            v(json!({ "a": 1 }), "${a!\"x}"),
            "targets[0].transform.template: the placeholder at byte 0 has an unterminated default",
        ),
        (
            v(json!({ "a": 1 }), "${a!\"x\" }"),
            "targets[0].transform.template: the placeholder at byte 0 does not end with }",
        ),
        (
            v(json!({ "a": 1 }), "${a!\"\\q\"}"),
            "targets[0].transform.template: the placeholder at byte 0 has a default that is not a JSON string",
        ),
        (
            v(json!({ "a": 1 }), "${a!x}"),
            "targets[0].transform.template: the placeholder at byte 0 has \"!\" after its name",
        ),
        (
            v(json!({ "s": "text" }), r#"{"s": ${s}}"#),
            "targets[0].transform.template: starts like JSON but is not JSON once its variables are filled in",
        ),
        (
            v(json!({ "p": "$.id" }), r#"{"p": ${p!"oops"}}"#),
            "targets[0].transform.template: starts like JSON but is not JSON once the defaults are filled in",
        ),
        (
            v(json!({ "p": "$.id" }), r#"{"p": ${p},}"#),
            "targets[0].transform.template: starts like JSON but is not JSON",
        ),
        (
            Transform { kind: TransformKind::Constant, value: None, template: None },
            "targets[0].transform.value: is required",
        ),
        (
            Transform { kind: TransformKind::Constant, value: Some("x".repeat(64 * 1024 + 1)), template: None },
            "targets[0].transform.value: is 65537 bytes; at most 65536",
        ),
    ];
    for (transform, expected) in cases {
        let e = compile(&transform).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert!(e.to_string().starts_with(expected), "{e}\n  should start with\n{expected}");
    }
}

/// GIVEN a compiled transform in the cache, WHEN the target's version or transform changes,
/// THEN it is compiled again; otherwise the same compiled transform is reused.
#[test]
fn the_cache_follows_the_target_version() {
    let target = |updated_ms: i64, template: &str| SubscriptionTarget {
        id: "t1".into(),
        name: "WEBHOOK".into(),
        provider_type: crate::model::ProviderType::Custom,
        connection_id: None,
        detail: json!({}),
        kafka_detail: None,
        smn_detail: None,
        eg_detail: None,
        apigw_detail: None,
        rocketmq_detail: None,
        retry_times: 0,
        transform: variable(&json!({ "id": "$.id" }), template),
        dead_letter_queue: None,
        granted_by: None,
        created_ms: 0,
        updated_ms,
    };
    let cache = TransformCache::default();
    let first = cache.get("s1", &target(1, "a ${id}")).unwrap();
    assert!(Arc::ptr_eq(&first, &cache.get("s1", &target(1, "a ${id}")).unwrap()), "reused");
    let same_ms = cache.get("s1", &target(1, "b ${id}")).unwrap();
    assert_eq!(&same_ms.payload(&event()).unwrap().body[..], b"b evt-1", "a new transform in the same ms");
    let later = cache.get("s1", &target(2, "c ${id}")).unwrap();
    assert_eq!(&later.payload(&event()).unwrap().body[..], b"c evt-1");
    let broken = target(3, "${nope}");
    assert!(cache.get("s1", &broken).unwrap_err().starts_with("the stored transform does not compile: "));
}
