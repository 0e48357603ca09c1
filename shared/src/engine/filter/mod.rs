//! Subscription filters: compiled once when a subscription is written, evaluated per event.
//!
//! A filter comes in one of two forms, said explicitly and never guessed. Both compile into the
//! same matcher ([`Filter`]) and are written against the CloudEvent JSON: top-level keys are
//! CloudEvents attributes (`id`, `source`, `type`, `subject`, `time`, `datacontenttype`,
//! `dataschema`, extension attributes) and keys under `data` nest, as literal object keys, up to
//! [`MAX_DEPTH`] levels. Only `data` nests. A path addresses object keys; it does not descend into
//! arrays. `{}` matches every event.
//!
//! # Native form
//!
//! An object mirroring the event; at each leaf a list of conditions `{"op": …, "values": […]}`:
//!
//! ```json
//! { "type": [{ "op": "StringIn", "values": ["order.created"] }],
//!   "data": { "amount": [{ "op": "NumberInRange", "values": [[10, 100]] }] } }
//! ```
//!
//! | operator | holds for a value that is |
//! |---|---|
//! | `StringIn` / `StringNotIn` | a string equal to a value |
//! | `StringStartsWith` / `StringNotStartsWith` | a string starting with a value |
//! | `StringEndsWith` / `StringNotEndsWith` | a string ending with a value |
//! | `StringContains` / `StringNotContains` | a string containing a value |
//! | `StringWildcard` | a string matching a pattern: `*` any run of characters, `\*` a star, `\\` a backslash |
//! | `StringEqualsIgnoreCase` | a string equal to a value, ignoring case (Unicode lowercase) |
//! | `IpInCidr` | a string holding an IPv4 or IPv6 address inside a network (`10.0.0.0/8`, `2001:db8::/32`) |
//! | `NumberIn` / `NumberNotIn` | a number equal to a value |
//! | `NumberGreaterThan`, `…OrEquals`, `NumberLessThan`, `…OrEquals` | a number above / below a value |
//! | `NumberInRange` / `NumberNotInRange` | a number inside a `[low, high]` pair (both ends included) |
//! | `BoolEquals` | a boolean equal to a value |
//! | `IsNull` | JSON null (no values) |
//! | `IsNotNull` | a field that exists and is not null (no values) |
//! | `IsUndefined` / `IsNotUndefined` | a missing / an existing field, whatever it holds (no values) |
//!
//! Semantics:
//! - all keys must hold (AND), and all conditions on one key (AND);
//! - a positive condition holds when any of its values does (OR); a negative one (`…Not…`) is the
//!   exact negation of its positive twin, so it holds when every value fails;
//! - a field holding an array passes a positive condition when some element does, hence a
//!   negative one when no element does (an empty array passes only negative conditions);
//! - a missing field fails every positive condition and passes every negative one; `IsUndefined`
//!   holds and `IsNotUndefined`, `IsNull` (null is not missing) and `IsNotNull` fail;
//! - `IsNotNull` means "exists and `IsNull` fails": it fails for `[null, 1]`, holds for `[]`;
//! - a value of another type than the operator's never passes a positive condition (no
//!   coercion: `"2"` is not `2`), so it passes the negative one;
//! - numbers compare as 64-bit floats.
//!
//! Top-level keys starting with `$` are reserved.
//!
//! # EventBridge form
//!
//! The top-level key `"$pattern": "eventbridge"` marks the rest of the object as an AWS
//! EventBridge event pattern. It is matched against the CloudEvent as it is: there is no
//! `detail`/`detail-type` translation, so the payload is under `data`:
//!
//! ```json
//! { "$pattern": "eventbridge", "type": ["order.created"],
//!   "data": { "amount": [{ "numeric": [">", 0, "<=", 100] }], "region": [{ "anything-but": "eu" }] } }
//! ```
//!
//! A leaf is a list whose entries OR together: exact values (strings, numbers, booleans, null) and
//! matchers: `prefix` and `suffix` (a string or `{"equals-ignore-case": …}`), `equals-ignore-case`,
//! `wildcard`, `cidr`, `numeric` (`<`, `<=`, `=`, `>`, `>=`; at most one lower and one upper
//! bound, `=` alone), `exists` (`true`: the field exists; `false`: it is missing), and
//! `anything-but` (a string, a number, a list of either, or `{"prefix"|"suffix"|
//! "equals-ignore-case"|"wildcard": …}`). `"$or": [pattern, …]` at any level holds when one of its
//! patterns does. As in EventBridge, every field a pattern names must exist except under
//! `exists: false`: `anything-but` fails on a missing field. On arrays, entries hold when an element
//! matches, and `anything-but` when no element is excluded (the native rules above).
//!
//! # Limits
//!
//! At most [`MAX_FILTER_BYTES`] serialized, [`MAX_CONDITIONS`] conditions (an EventBridge leaf counts
//! one for its exact values and one per matcher), [`MAX_VALUES`] values per condition,
//! [`MAX_DEPTH`] levels under `data`, [`MAX_STRING_CHARS`] characters per string value. An invalid
//! filter is an [`Error::InvalidFilter`] naming the key path and the operator, e.g.
//! `sources[0].filter.data.count[0].op: unknown operator Foo`.

mod condition;
mod eventbridge;
mod native;
#[cfg(test)]
mod tests;
mod text;

use ipnet::IpNet;
use serde_json::Value;

pub(crate) use self::condition::lookup;
use self::condition::{Node, Test};
use self::text::Glob;
use crate::error::{Error, Result};
use crate::model::validate::MAX_FILTER_BYTES;

/// Most values in one condition.
pub const MAX_VALUES: usize = 100;
/// Deepest nesting of keys under `data`.
pub const MAX_DEPTH: usize = 8;
/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 64;
/// Longest string value of a condition, in characters.
pub const MAX_STRING_CHARS: usize = 256;

/// A compiled filter: the nodes that must all hold.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Filter {
    nodes: Vec<Node>,
}

impl Filter {
    /// Compiles a filter in either form; errors name the offending key (prefixed with `field`)
    /// and operator.
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
        let mut budget = Budget::default();
        let nodes = match keys.get("$pattern") {
            None => native::compile(field, keys, &mut budget)?,
            Some(Value::String(form)) if form == "eventbridge" => eventbridge::compile(field, keys, &mut budget)?,
            Some(other) => {
                return Err(Error::filter(
                    format!("{field}.$pattern"),
                    format!("unknown filter form {other}; the only one is \"eventbridge\""),
                ));
            }
        };
        Ok(Self { nodes })
    }

    /// Whether an event (a CloudEvents JSON object) passes the filter.
    pub fn matches(&self, event: &Value) -> bool {
        self.nodes.iter().all(|n| n.matches(event))
    }

    /// The requirements every passing event meets, each on one field: the positive conditions
    /// that hold for the filter as a whole, not only inside an alternative. An index may file the
    /// filter under one of them and skip it for events that fail it.
    pub(crate) fn requirements(&self) -> Vec<Indexable<'_>> {
        let mut out = Vec::new();
        let mut stack: Vec<&Node> = self.nodes.iter().collect();
        while let Some(node) = stack.pop() {
            match node {
                Node::All(children) => stack.extend(children),
                Node::Leaf(c) if !c.negated => {
                    if let Some((requirement, exact)) = Requirement::of(&c.test) {
                        let whole =
                            exact && matches!(self.nodes.as_slice(), [Node::Leaf(only)] if std::ptr::eq(only, c));
                        out.push(Indexable { path: &c.path, requirement, whole });
                    }
                }
                Node::Leaf(_) | Node::Any(_) => {}
            }
        }
        out
    }
}

/// A requirement of a filter on one field, as an index sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Indexable<'a> {
    /// The field's path from the event's root.
    pub path: &'a [String],
    /// What the field must meet.
    pub requirement: Requirement<'a>,
    /// Whether the filter holds exactly when the requirement does (it is the filter's only
    /// condition), so that an event meeting it need not evaluate the filter.
    pub whole: bool,
}

/// A test on one field that a route table can index: it holds for a field when it holds for the
/// field's value or for an element of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Requirement<'a> {
    /// A string equal to one of these.
    Equals(&'a [String]),
    /// A string starting with one of these (a prefix test, or the text before a wildcard's first
    /// star).
    StartsWith(Vec<&'a str>),
    /// A number inside one of these intervals.
    Within(Vec<Interval>),
}

/// A numeric interval of a [`Requirement`]; a missing end is infinite and included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interval {
    /// The low end.
    pub low: f64,
    /// Whether the low end is inside.
    pub low_inside: bool,
    /// The high end.
    pub high: f64,
    /// Whether the high end is inside.
    pub high_inside: bool,
}

impl Interval {
    /// Whether `x` is inside.
    pub(crate) fn contains(&self, x: f64) -> bool {
        (self.low < x || (self.low_inside && self.low == x)) && (x < self.high || (self.high_inside && x == self.high))
    }
}

impl<'a> Requirement<'a> {
    /// The requirement a test makes, and whether it is exactly the test (not looser).
    fn of(test: &'a Test) -> Option<(Self, bool)> {
        let point = |n: f64| Interval { low: n, low_inside: true, high: n, high_inside: true };
        let end = |b: Option<condition::Bound>, infinity: f64| b.map_or((infinity, true), |b| (b.value, b.inclusive));
        match test {
            Test::Equals(values) => Some((Self::Equals(values), true)),
            Test::Prefix(values) => Some((Self::StartsWith(values.iter().map(String::as_str).collect()), true)),
            Test::Wildcard(globs) => Some((Self::StartsWith(globs.iter().map(Glob::literal_prefix).collect()), false)),
            Test::Number(values) if values.iter().all(|n| !n.is_nan()) => {
                Some((Self::Within(values.iter().map(|&n| point(n)).collect()), true))
            }
            Test::Range(ranges) => {
                let intervals = ranges.iter().map(|r| {
                    let ((low, low_inside), (high, high_inside)) =
                        (end(r.low, f64::NEG_INFINITY), end(r.high, f64::INFINITY));
                    Interval { low, low_inside, high, high_inside }
                });
                Some((Self::Within(intervals.collect()), true))
            }
            _ => None,
        }
    }
}

/// Counts conditions against [`MAX_CONDITIONS`].
#[derive(Default)]
struct Budget {
    used: usize,
}

impl Budget {
    /// Counts the condition at `at`.
    fn take(&mut self, at: &str) -> Result<()> {
        self.used += 1;
        if self.used > MAX_CONDITIONS {
            return Err(Error::filter(
                at,
                format!("is one condition too many; a filter holds at most {MAX_CONDITIONS}"),
            ));
        }
        Ok(())
    }
}

/// The name of the key at `path` in errors: `field.data.customer.tier`.
fn at(field: &str, path: &[String]) -> String {
    let mut s = field.to_owned();
    for key in path {
        s.push('.');
        s.push_str(key);
    }
    s
}

/// A string value of operator `op` found at `at`, at most [`MAX_STRING_CHARS`] long.
fn string<'a>(at: &str, op: &str, v: &'a Value) -> Result<&'a str> {
    match v.as_str() {
        Some(s) if s.chars().count() <= MAX_STRING_CHARS => Ok(s),
        _ => Err(Error::filter(at, format!("{op} takes strings of at most {MAX_STRING_CHARS} characters"))),
    }
}

/// A wildcard pattern of operator `op` found at `at`.
fn glob(at: &str, op: &str, pattern: &str) -> Result<Glob> {
    Glob::parse(pattern).map_err(|e| Error::filter(at, format!("{op}: {e}")))
}

/// A network of operator `op` found at `at`.
fn cidr(at: &str, op: &str, s: &str) -> Result<IpNet> {
    s.parse().map_err(|_| {
        Error::filter(at, format!("{op} takes networks in CIDR notation, such as 10.0.0.0/8 or 2001:db8::/32"))
    })
}
