//! Subscription filters: compiled once when a subscription is written, evaluated per event.
//!
//! A filter is an object that mirrors the event: top-level keys are CloudEvents attributes
//! (`source`, `type`, `subject`, extensions, …); under `data`, keys nest to any depth. At a leaf
//! stands an array of conditions `{"op": …, "values": […]}`.
//!
//! Semantics: all keys must match (AND); all conditions on one key must match (AND); a condition
//! matches when the field equals any of its values (OR). A field holding an array matches when any
//! element does. A key the event lacks matches no condition. `{}` matches every event.
//!
//! Operators: `StringIn` (string equal to one of the values) and `NumberIn` (number equal to one of
//! the values).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::validate::MAX_FILTER_BYTES;

/// Most values in one condition.
pub const MAX_VALUES: usize = 100;
/// Deepest nesting of keys under `data`.
pub const MAX_DEPTH: usize = 8;
/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 64;

/// What one condition tests.
#[derive(Clone, Debug, PartialEq)]
enum Test {
    StringIn(Vec<String>),
    NumberIn(Vec<f64>),
}

impl Test {
    fn matches_scalar(&self, v: &Value) -> bool {
        match (self, v) {
            (Test::StringIn(values), Value::String(s)) => values.iter().any(|x| x == s),
            (Test::NumberIn(values), Value::Number(n)) => {
                n.as_f64().is_some_and(|n| values.iter().any(|x| (*x - n).abs() <= f64::EPSILON * n.abs().max(1.0)))
            }
            _ => false,
        }
    }

    fn matches(&self, field: Option<&Value>) -> bool {
        match field {
            None => false,
            Some(Value::Array(items)) => items.iter().any(|i| self.matches_scalar(i)),
            Some(v) => self.matches_scalar(v),
        }
    }
}

/// One condition on one field.
#[derive(Clone, Debug, PartialEq)]
struct Condition {
    path: Vec<String>,
    test: Test,
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Filter {
    conditions: Vec<Condition>,
}

/// Looks a path up in an event.
fn lookup<'a>(event: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(event, |v, key| v.get(key.as_str()))
}

impl Filter {
    /// Compiles a filter; errors name the offending key (prefixed with `field`).
    pub fn compile(field: &str, filter: &Value) -> Result<Self> {
        let size = serde_json::to_vec(filter).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_FILTER_BYTES {
            return Err(Error::filter(
                field,
                format!("is {size} bytes serialized; at most {MAX_FILTER_BYTES} are allowed"),
            ));
        }
        let Value::Object(keys) = filter else {
            return Err(Error::filter(field, "must be a JSON object"));
        };
        let mut compiled = Filter::default();
        for (key, value) in keys {
            compiled.add(field, vec![key.clone()], value)?;
        }
        if compiled.conditions.len() > MAX_CONDITIONS {
            return Err(Error::filter(field, format!("holds more than {MAX_CONDITIONS} conditions")));
        }
        Ok(compiled)
    }

    fn add(&mut self, field: &str, path: Vec<String>, value: &Value) -> Result<()> {
        let here = format!("{field}.{}", path.join("."));
        match value {
            Value::Array(conditions) => {
                if conditions.is_empty() {
                    return Err(Error::filter(here, "needs at least one condition"));
                }
                for (i, c) in conditions.iter().enumerate() {
                    let test = compile_condition(&format!("{here}[{i}]"), c)?;
                    self.conditions.push(Condition { path: path.clone(), test });
                }
                Ok(())
            }
            Value::Object(nested) if path[0] == "data" => {
                if path.len() > MAX_DEPTH {
                    return Err(Error::filter(here, format!("nests deeper than {MAX_DEPTH} levels")));
                }
                for (key, value) in nested {
                    let mut deeper = path.clone();
                    deeper.push(key.clone());
                    self.add(field, deeper, value)?;
                }
                Ok(())
            }
            Value::Object(_) => {
                Err(Error::filter(here, "only keys under data may nest; attributes take a list of conditions"))
            }
            _ => Err(Error::filter(
                here,
                "must be a list of conditions such as [{\"op\": \"StringIn\", \"values\": [\"x\"]}]",
            )),
        }
    }

    /// Whether an event (a CloudEvents JSON object) passes the filter.
    pub fn matches(&self, event: &Value) -> bool {
        self.conditions.iter().all(|c| c.test.matches(lookup(event, &c.path)))
    }
}

fn compile_condition(here: &str, condition: &Value) -> Result<Test> {
    let Value::Object(c) = condition else {
        return Err(Error::filter(here, "a condition must be an object with op and values"));
    };
    let op = c.get("op").and_then(Value::as_str).ok_or_else(|| Error::filter(format!("{here}.op"), "is required"))?;
    let values = match c.get("values") {
        Some(Value::Array(v)) if !v.is_empty() => v,
        _ => return Err(Error::filter(format!("{here}.values"), format!("{op} needs a non-empty list of values"))),
    };
    if values.len() > MAX_VALUES {
        return Err(Error::filter(format!("{here}.values"), format!("{op} takes at most {MAX_VALUES} values")));
    }
    let bad = |what: &str| Error::filter(format!("{here}.values"), format!("{op} takes {what}"));
    match op {
        "StringIn" => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad("strings")))
            .collect::<Result<_>>()
            .map(Test::StringIn),
        "NumberIn" => {
            values.iter().map(|v| v.as_f64().ok_or_else(|| bad("numbers"))).collect::<Result<_>>().map(Test::NumberIn)
        }
        other => Err(Error::filter(format!("{here}.op"), format!("unknown operator {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        json!({
            "id": "1", "source": "orders", "type": "created", "specversion": "1.0", "tenant": "t1",
            "data": { "count": 2, "tags": ["a", "b"], "customer": { "tier": "gold", "age": 40 } }
        })
    }

    fn passes(filter: Value) -> bool {
        Filter::compile("filter", &filter).unwrap().matches(&event())
    }

    #[test]
    fn spec_examples_match() {
        assert!(passes(json!({ "data": { "count": [{ "op": "NumberIn", "values": [1, 2] }] } })));
        assert!(!passes(json!({ "data": { "count": [{ "op": "NumberIn", "values": [3] }] } })));
        assert!(passes(json!({ "source": [{ "op": "StringIn", "values": ["ghm", "orders"] }] })));
        assert!(!passes(json!({ "source": [{ "op": "StringIn", "values": ["ghm"] }] })));
        assert!(passes(json!({})));
    }

    #[test]
    fn keys_and_conditions_and_together() {
        let both = json!({
            "type": [{ "op": "StringIn", "values": ["created"] }],
            "data": { "customer": { "tier": [{ "op": "StringIn", "values": ["gold"] }] } }
        });
        assert!(passes(both));
        let one_fails = json!({
            "type": [{ "op": "StringIn", "values": ["created"] }],
            "data": { "customer": { "tier": [{ "op": "StringIn", "values": ["silver"] }] } }
        });
        assert!(!passes(one_fails));
        let two_on_one_key = json!({ "data": { "count": [
            { "op": "NumberIn", "values": [2] }, { "op": "NumberIn", "values": [3] }
        ] } });
        assert!(!passes(two_on_one_key));
    }

    #[test]
    fn arrays_missing_keys_and_types() {
        assert!(passes(json!({ "data": { "tags": [{ "op": "StringIn", "values": ["b"] }] } })));
        assert!(!passes(json!({ "data": { "tags": [{ "op": "StringIn", "values": ["c"] }] } })));
        assert!(!passes(json!({ "subject": [{ "op": "StringIn", "values": ["x"] }] })), "missing key");
        assert!(!passes(json!({ "data": { "nope": { "deeper": [{ "op": "NumberIn", "values": [1] }] } } })));
        assert!(!passes(json!({ "data": { "count": [{ "op": "StringIn", "values": ["2"] }] } })), "no coercion");
        assert!(passes(json!({ "tenant": [{ "op": "StringIn", "values": ["t1"] }] })), "extension attribute");
    }

    #[test]
    fn invalid_filters_name_key_and_operator() {
        let cases = [
            (json!([]), "filter: must be a JSON object"),
            (json!({ "source": "x" }), "filter.source: must be a list of conditions"),
            (json!({ "source": [] }), "filter.source: needs at least one condition"),
            (json!({ "source": [{ "op": "Bogus", "values": ["x"] }] }), "filter.source[0].op: unknown operator Bogus"),
            (json!({ "source": [{ "values": ["x"] }] }), "filter.source[0].op: is required"),
            (
                json!({ "source": [{ "op": "StringIn", "values": [1] }] }),
                "filter.source[0].values: StringIn takes strings",
            ),
            (
                json!({ "data": { "n": [{ "op": "NumberIn", "values": ["1"] }] } }),
                "filter.data.n[0].values: NumberIn takes numbers",
            ),
            (
                json!({ "data": { "n": [{ "op": "NumberIn", "values": [] }] } }),
                "filter.data.n[0].values: NumberIn needs",
            ),
            (json!({ "source": { "x": [] } }), "filter.source: only keys under data may nest"),
        ];
        for (filter, expected) in cases {
            let e = Filter::compile("filter", &filter).unwrap_err();
            assert!(matches!(e, Error::InvalidFilter { .. }));
            assert!(e.to_string().starts_with(expected), "{e} should start with {expected}");
        }
        let big = json!({ "source": [{ "op": "StringIn", "values": ["x".repeat(2100)] }] });
        assert!(Filter::compile("filter", &big).unwrap_err().to_string().contains("at most 2048"));
    }
}
