//! The EventBridge filter form: an AWS EventBridge event pattern written against the CloudEvent
//! JSON, compiled into the same nodes as the native form.

use serde_json::{Map, Value};

use super::condition::{Bound, Node, Range, Test};
use super::text::fold;
use super::{Budget, MAX_DEPTH, MAX_VALUES, at, cidr, glob, string};
use crate::error::{Error, Result};

/// Compiles a pattern's keys (at `field`, `$pattern` left out) into the nodes that must all hold.
pub(super) fn compile(field: &str, pattern: &Map<String, Value>, budget: &mut Budget) -> Result<Vec<Node>> {
    let keys = pattern.iter().filter(|(k, _)| k.as_str() != "$pattern");
    object(field, &[], keys, budget)
}

/// The nodes of one pattern object whose keys live under `path`.
fn object<'a>(
    field: &str,
    path: &[String],
    keys: impl Iterator<Item = (&'a String, &'a Value)>,
    budget: &mut Budget,
) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for (key, value) in keys {
        let mut here = path.to_vec();
        here.push(key.clone());
        if key == "$or" {
            nodes.push(or(field, path, &here, value, budget)?);
            continue;
        }
        if key.starts_with('$') {
            return Err(Error::filter(at(field, &here), format!("unknown EventBridge operator {key}")));
        }
        match value {
            Value::Array(list) => nodes.push(leaf(field, &here, list, budget)?),
            Value::Object(nested) if here[0] == "data" => {
                if here.len() > MAX_DEPTH {
                    return Err(Error::filter(
                        at(field, &here),
                        format!("nests deeper than {MAX_DEPTH} levels under data"),
                    ));
                }
                nodes.extend(object(field, &here, nested.iter(), budget)?);
            }
            Value::Object(_) => {
                return Err(Error::filter(
                    at(field, &here),
                    "only keys under data may nest; an attribute takes a list of values or matchers",
                ));
            }
            _ => {
                return Err(Error::filter(
                    at(field, &here),
                    "must be a list of values or matchers such as [\"x\"] or [{\"prefix\": \"x\"}]",
                ));
            }
        }
    }
    Ok(nodes)
}

/// `"$or": [pattern, …]` at `path`: some of the patterns hold.
fn or(field: &str, path: &[String], here: &[String], value: &Value, budget: &mut Budget) -> Result<Node> {
    let alternatives = match value {
        Value::Array(list) if !list.is_empty() => list,
        _ => return Err(Error::filter(at(field, here), "$or takes a non-empty list of patterns")),
    };
    let mut nodes = Vec::with_capacity(alternatives.len());
    for (i, alternative) in alternatives.iter().enumerate() {
        let Value::Object(keys) = alternative else {
            return Err(Error::filter(
                format!("{}[{i}]", at(field, here)),
                "$or: each alternative must be a pattern object",
            ));
        };
        nodes.push(Node::All(object(field, path, keys.iter(), budget)?));
    }
    Ok(Node::Any(nodes))
}

/// A leaf list at `path`: exact values and matcher objects, any of which may match.
fn leaf(field: &str, path: &[String], list: &[Value], budget: &mut Budget) -> Result<Node> {
    let here = at(field, path);
    if list.is_empty() {
        return Err(Error::filter(here, "needs at least one value or matcher"));
    }
    if list.len() > MAX_VALUES {
        return Err(Error::filter(here, format!("takes at most {MAX_VALUES} values and matchers")));
    }
    let (mut strings, mut numbers, mut bools, mut null) = (Vec::new(), Vec::new(), Vec::new(), false);
    let mut alternatives = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("{here}[{i}]");
        match item {
            Value::String(_) => strings.push(string(&at, "an exact value", item)?.to_owned()),
            Value::Number(n) => numbers.push(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => bools.push(*b),
            Value::Null => null = true,
            Value::Object(matcher) => {
                budget.take(&at)?;
                alternatives.push(self::matcher(&at, path, matcher)?);
            }
            Value::Array(_) => return Err(Error::filter(at, "lists do not nest in a pattern")),
        }
    }
    if !strings.is_empty() || !numbers.is_empty() || !bools.is_empty() || null {
        budget.take(&here)?;
    }
    let exact = [
        (!strings.is_empty()).then_some(Test::Equals(strings)),
        (!numbers.is_empty()).then_some(Test::Number(numbers)),
        (!bools.is_empty()).then_some(Test::Bool(bools)),
        null.then_some(Test::Null),
    ];
    let mut nodes: Vec<Node> = exact.into_iter().flatten().map(|t| Node::test(path, t)).collect();
    nodes.append(&mut alternatives);
    Ok(Node::any(nodes))
}

/// One matcher object such as `{"prefix": "x"}`, found at `at`.
fn matcher(at: &str, path: &[String], matcher: &Map<String, Value>) -> Result<Node> {
    let mut entries = matcher.iter();
    let (Some((name, arg)), None) = (entries.next(), entries.next()) else {
        return Err(Error::filter(at, "a matcher holds exactly one operator, such as {\"prefix\": \"x\"}"));
    };
    let op_at = format!("{at}.{name}");
    let op = name.as_str();
    Ok(match op {
        "prefix" => Node::test(path, affix(&op_at, op, arg, Test::Prefix, Test::PrefixFolded)?),
        "suffix" => Node::test(path, affix(&op_at, op, arg, Test::Suffix, Test::SuffixFolded)?),
        "equals-ignore-case" => Node::test(path, Test::EqualsFolded(vec![fold(string(&op_at, op, arg)?)])),
        "wildcard" => Node::test(path, Test::Wildcard(vec![glob(&op_at, op, string(&op_at, op, arg)?)?])),
        "cidr" => Node::test(path, Test::Cidr(vec![cidr(&op_at, op, string(&op_at, op, arg)?)?])),
        "exists" => match arg {
            Value::Bool(true) => Node::test(path, Test::Present),
            Value::Bool(false) => Node::not(path, Test::Present),
            _ => return Err(Error::filter(op_at, "exists takes true or false")),
        },
        "numeric" => Node::test(path, Test::Range(vec![numeric(&op_at, arg)?])),
        "anything-but" => Node::present_and_not(path, anything_but(&op_at, arg)?),
        other => return Err(Error::filter(at, format!("unknown EventBridge operator {other}"))),
    })
}

/// `prefix`/`suffix`: a string, or `{"equals-ignore-case": string}`.
fn affix(
    at: &str,
    op: &str,
    arg: &Value,
    exact: fn(Vec<String>) -> Test,
    folded: fn(Vec<String>) -> Test,
) -> Result<Test> {
    match arg {
        Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => {
            let at = format!("{at}.equals-ignore-case");
            Ok(folded(vec![fold(string(&at, op, &m["equals-ignore-case"])?)]))
        }
        Value::Object(_) => {
            Err(Error::filter(at, format!("{op} takes a string or {{\"equals-ignore-case\": string}}")))
        }
        _ => Ok(exact(vec![string(at, op, arg)?.to_owned()])),
    }
}

/// `numeric`: one comparison, or a lower and an upper bound, e.g. `[">", 0, "<=", 5]`.
fn numeric(at: &str, arg: &Value) -> Result<Range> {
    let bad = |why: &str| Error::filter(at, format!("numeric {why}"));
    let items = match arg.as_array() {
        Some(items) if items.len() == 2 || items.len() == 4 => items,
        _ => return Err(bad("takes one or two comparisons, such as [\">\", 0, \"<=\", 5]")),
    };
    let mut range = Range::default();
    for pair in items.chunks(2) {
        let (Some(op), Some(value)) = (pair[0].as_str(), pair[1].as_f64()) else {
            return Err(bad("takes comparison operators followed by numbers"));
        };
        let (low, high) = match op {
            ">" => (Some(Bound { value, inclusive: false }), None),
            ">=" => (Some(Bound { value, inclusive: true }), None),
            "<" => (None, Some(Bound { value, inclusive: false })),
            "<=" => (None, Some(Bound { value, inclusive: true })),
            "=" if items.len() == 2 => (Some(Bound { value, inclusive: true }), Some(Bound { value, inclusive: true })),
            "=" => return Err(bad("= stands alone")),
            other => return Err(bad(&format!("has no operator {other}; use <, <=, =, > or >="))),
        };
        if (low.is_some() && range.low.is_some()) || (high.is_some() && range.high.is_some()) {
            return Err(bad("takes at most one lower and one upper bound"));
        }
        range.low = range.low.or(low);
        range.high = range.high.or(high);
    }
    if let (Some(low), Some(high)) = (range.low, range.high)
        && low.value > high.value
    {
        return Err(bad("range is empty"));
    }
    Ok(range)
}

/// `anything-but`: the test its field must exist and fail.
fn anything_but(at: &str, arg: &Value) -> Result<Test> {
    let op = "anything-but";
    let strings = |at: &str, v: &Value| -> Result<Vec<String>> {
        match v {
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES => items
                .iter()
                .enumerate()
                .map(|(i, item)| string(&format!("{at}[{i}]"), op, item).map(str::to_owned))
                .collect(),
            Value::Array(_) => Err(Error::filter(at, format!("{op} takes 1 to {MAX_VALUES} values"))),
            v => Ok(vec![string(at, op, v)?.to_owned()]),
        }
    };
    match arg {
        Value::String(_) => Ok(Test::Equals(strings(at, arg)?)),
        Value::Number(n) => Ok(Test::Number(vec![n.as_f64().unwrap_or(f64::NAN)])),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Ok(Test::Number(items.iter().filter_map(Value::as_f64).collect()))
        }
        Value::Array(_) => Ok(Test::Equals(strings(at, arg)?)),
        Value::Object(m) => {
            let mut entries = m.iter();
            let (Some((name, inner)), None) = (entries.next(), entries.next()) else {
                return Err(Error::filter(at, format!("{op} holds exactly one operator")));
            };
            let at = format!("{at}.{name}");
            match name.as_str() {
                "prefix" => Ok(Test::Prefix(vec![string(&at, op, inner)?.to_owned()])),
                "suffix" => Ok(Test::Suffix(vec![string(&at, op, inner)?.to_owned()])),
                "equals-ignore-case" => Ok(Test::EqualsFolded(strings(&at, inner)?.iter().map(|s| fold(s)).collect())),
                "wildcard" => {
                    Ok(Test::Wildcard(strings(&at, inner)?.iter().map(|s| glob(&at, op, s)).collect::<Result<_>>()?))
                }
                other => Err(Error::filter(at, format!("{op} takes no operator {other}"))),
            }
        }
        _ => Err(Error::filter(
            at,
            format!(
                "{op} takes a string, a number, a list of them, or a prefix, suffix, equals-ignore-case or wildcard"
            ),
        )),
    }
}
