//! The native (event grid) filter form: an object mirroring the event, with a list of
//! `{"op": …, "values": […]}` conditions at each leaf.

use serde_json::{Map, Value};

use super::condition::{Bound, Node, Path, Range, Test};
use super::text::fold;
use super::{Budget, MAX_DEPTH, MAX_VALUES, at, cidr, glob, string};
use crate::error::{Error, Result};

/// What an operator tests, before its values are read.
#[derive(Clone, Copy)]
enum Kind {
    Equals,
    EqualsIgnoreCase,
    Prefix,
    Suffix,
    Contains,
    Wildcard,
    Cidr,
    Number,
    Greater { inclusive: bool },
    Less { inclusive: bool },
    InRange,
    Bool,
    Null,
    NotNull,
    Present,
}

/// Every operator: its name, what it tests, and whether it is the negation of that test.
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringIn", Kind::Equals, false),
    ("StringNotIn", Kind::Equals, true),
    ("StringStartsWith", Kind::Prefix, false),
    ("StringNotStartsWith", Kind::Prefix, true),
    ("StringEndsWith", Kind::Suffix, false),
    ("StringNotEndsWith", Kind::Suffix, true),
    ("StringContains", Kind::Contains, false),
    ("StringNotContains", Kind::Contains, true),
    ("StringWildcard", Kind::Wildcard, false),
    ("StringEqualsIgnoreCase", Kind::EqualsIgnoreCase, false),
    ("IpInCidr", Kind::Cidr, false),
    ("NumberIn", Kind::Number, false),
    ("NumberNotIn", Kind::Number, true),
    ("NumberGreaterThan", Kind::Greater { inclusive: false }, false),
    ("NumberGreaterThanOrEquals", Kind::Greater { inclusive: true }, false),
    ("NumberLessThan", Kind::Less { inclusive: false }, false),
    ("NumberLessThanOrEquals", Kind::Less { inclusive: true }, false),
    ("NumberInRange", Kind::InRange, false),
    ("NumberNotInRange", Kind::InRange, true),
    ("BoolEquals", Kind::Bool, false),
    ("IsNull", Kind::Null, false),
    ("IsNotNull", Kind::NotNull, false),
    ("IsUndefined", Kind::Present, true),
    ("IsNotUndefined", Kind::Present, false),
];

/// Compiles a native filter's keys (at `field`) into the nodes that must all hold.
pub(super) fn compile(field: &str, filter: &Map<String, Value>, budget: &mut Budget) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for (key, value) in filter {
        if key.starts_with('$') {
            return Err(Error::filter(
                format!("{field}.{key}"),
                "top-level keys starting with $ are reserved; the only one is \"$pattern\": \"eventbridge\"",
            ));
        }
        walk(field, vec![key.clone()], value, budget, &mut nodes)?;
    }
    Ok(nodes)
}

fn walk(field: &str, path: Path, value: &Value, budget: &mut Budget, out: &mut Vec<Node>) -> Result<()> {
    let here = at(field, &path);
    match value {
        Value::Array(conditions) if conditions.is_empty() => Err(Error::filter(here, "needs at least one condition")),
        Value::Array(conditions) => {
            for (i, c) in conditions.iter().enumerate() {
                let at = format!("{here}[{i}]");
                budget.take(&at)?;
                out.push(condition(&at, &path, c)?);
            }
            Ok(())
        }
        Value::Object(nested) if path[0] == "data" => {
            if path.len() > MAX_DEPTH {
                return Err(Error::filter(here, format!("nests deeper than {MAX_DEPTH} levels under data")));
            }
            for (key, value) in nested {
                let mut deeper = path.clone();
                deeper.push(key.clone());
                walk(field, deeper, value, budget, out)?;
            }
            Ok(())
        }
        Value::Object(_) => {
            Err(Error::filter(here, "only keys under data may nest; an attribute takes a list of conditions"))
        }
        _ => Err(Error::filter(
            here,
            "must be a list of conditions such as [{\"op\": \"StringIn\", \"values\": [\"x\"]}]",
        )),
    }
}

/// Compiles one `{"op", "values"}` object found at `at` for the field at `path`.
fn condition(at: &str, path: &[String], condition: &Value) -> Result<Node> {
    let Value::Object(c) = condition else {
        return Err(Error::filter(at, "a condition must be an object with op and values"));
    };
    if let Some(key) = c.keys().find(|k| !matches!(k.as_str(), "op" | "values")) {
        return Err(Error::filter(format!("{at}.{key}"), "is not part of a condition; use op and values"));
    }
    let op = c.get("op").and_then(Value::as_str).ok_or_else(|| Error::filter(format!("{at}.op"), "is required"))?;
    let Some(&(_, kind, negated)) = OPERATORS.iter().find(|(name, _, _)| *name == op) else {
        return Err(Error::filter(format!("{at}.op"), format!("unknown operator {op}")));
    };
    let values_at = format!("{at}.values");
    let values: &[Value] = match c.get("values") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(values)) => values,
        Some(_) => return Err(Error::filter(values_at, format!("{op} takes a list of values"))),
    };
    let takes_values = !matches!(kind, Kind::Null | Kind::NotNull | Kind::Present);
    match (takes_values, values.len()) {
        (false, 0) | (true, 1..=MAX_VALUES) => {}
        (false, _) => return Err(Error::filter(values_at, format!("{op} takes no values"))),
        (true, 0) => return Err(Error::filter(values_at, format!("{op} needs at least one value"))),
        (true, _) => return Err(Error::filter(values_at, format!("{op} takes at most {MAX_VALUES} values"))),
    }
    let strings = || each(&values_at, values, |at, v| string(at, op, v).map(str::to_owned));
    let numbers = || each(&values_at, values, |at, v| number(at, op, v));
    let test = match kind {
        Kind::Equals => Test::Equals(strings()?),
        Kind::EqualsIgnoreCase => Test::EqualsFolded(strings()?.iter().map(|s| fold(s)).collect()),
        Kind::Prefix => Test::Prefix(strings()?),
        Kind::Suffix => Test::Suffix(strings()?),
        Kind::Contains => Test::Contains(strings()?),
        Kind::Wildcard => Test::Wildcard(each(&values_at, values, |at, v| glob(at, op, string(at, op, v)?))?),
        Kind::Cidr => Test::Cidr(each(&values_at, values, |at, v| cidr(at, op, string(at, op, v)?))?),
        Kind::Number => Test::Number(numbers()?),
        Kind::Greater { inclusive } => Test::Range(
            numbers()?.into_iter().map(|value| Range { low: Some(Bound { value, inclusive }), high: None }).collect(),
        ),
        Kind::Less { inclusive } => Test::Range(
            numbers()?.into_iter().map(|value| Range { low: None, high: Some(Bound { value, inclusive }) }).collect(),
        ),
        Kind::InRange => Test::Range(each(&values_at, values, |at, v| range(at, op, v))?),
        Kind::Bool => Test::Bool(each(&values_at, values, |at, v| {
            v.as_bool().ok_or_else(|| Error::filter(at, format!("{op} takes booleans")))
        })?),
        Kind::Null => Test::Null,
        Kind::Present => Test::Present,
        Kind::NotNull => return Ok(Node::present_and_not(path, Test::Null)),
    };
    Ok(if negated { Node::not(path, test) } else { Node::test(path, test) })
}

/// Parses every value of a condition, naming the one that fails.
fn each<T>(values_at: &str, values: &[Value], parse: impl Fn(&str, &Value) -> Result<T>) -> Result<Vec<T>> {
    values.iter().enumerate().map(|(i, v)| parse(&format!("{values_at}[{i}]"), v)).collect()
}

fn number(at: &str, op: &str, v: &Value) -> Result<f64> {
    v.as_f64().ok_or_else(|| Error::filter(at, format!("{op} takes numbers")))
}

/// A `[low, high]` pair of `NumberInRange`/`NumberNotInRange`, both ends inclusive.
fn range(at: &str, op: &str, v: &Value) -> Result<Range> {
    let pair = match v.as_array().map(Vec::as_slice) {
        Some([low, high]) => (low.as_f64(), high.as_f64()),
        _ => (None, None),
    };
    let (Some(low), Some(high)) = pair else {
        return Err(Error::filter(at, format!("{op} takes [low, high] pairs of numbers")));
    };
    if low > high {
        return Err(Error::filter(at, format!("{op}: the low end {low} is above the high end {high}")));
    }
    let bound = |value| Some(Bound { value, inclusive: true });
    Ok(Range { low: bound(low), high: bound(high) })
}
