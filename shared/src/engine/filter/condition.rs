//! The compiled form both filter forms share: tests on one field each, combined by all/any.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::text::{self, Glob};

/// Where a field is: the keys from the event's root, e.g. `["data", "customer", "tier"]`.
pub(crate) type Path = Vec<String>;

/// One end of a numeric interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bound {
    /// The limit.
    pub value: f64,
    /// Whether the limit itself is inside.
    pub inclusive: bool,
}

/// A numeric interval; a missing end is unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(crate) struct Range {
    /// The lower end.
    pub low: Option<Bound>,
    /// The upper end.
    pub high: Option<Bound>,
}

impl Range {
    fn contains(&self, n: f64) -> bool {
        let above = self.low.is_none_or(|b| if b.inclusive { n >= b.value } else { n > b.value });
        above && self.high.is_none_or(|b| if b.inclusive { n <= b.value } else { n < b.value })
    }
}

/// What one condition asks of a single value; every test but [`Test::Present`] holds for a value
/// if it holds for any of the test's values (OR).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Test {
    /// A string equal to a value.
    Equals(Vec<String>),
    /// A string equal to a value ignoring case (values folded).
    EqualsFolded(Vec<String>),
    /// A string starting with a value.
    Prefix(Vec<String>),
    /// A string starting with a value ignoring case (values folded).
    PrefixFolded(Vec<String>),
    /// A string ending with a value.
    Suffix(Vec<String>),
    /// A string ending with a value ignoring case (values folded).
    SuffixFolded(Vec<String>),
    /// A string containing a value.
    Contains(Vec<String>),
    /// A string matching a wildcard pattern.
    Wildcard(Vec<Glob>),
    /// A string holding an IP address inside a network.
    Cidr(Vec<IpNet>),
    /// A number equal to a value.
    Number(Vec<f64>),
    /// A number inside an interval.
    Range(Vec<Range>),
    /// A boolean equal to a value.
    Bool(Vec<bool>),
    /// JSON null.
    Null,
    /// The field exists (whatever it holds). Tests the field, not its elements.
    Present,
}

impl Test {
    /// Whether the test holds for one (non-array) value; other types than the test's never do.
    fn holds(&self, v: &Value) -> bool {
        match (self, v) {
            (Self::Equals(xs), Value::String(s)) => xs.iter().any(|x| x == s),
            (Self::EqualsFolded(xs), Value::String(s)) => xs.iter().any(|x| text::equals_folded(s, x)),
            (Self::Prefix(xs), Value::String(s)) => xs.iter().any(|x| s.starts_with(x.as_str())),
            (Self::PrefixFolded(xs), Value::String(s)) => xs.iter().any(|x| text::starts_with_folded(s, x)),
            (Self::Suffix(xs), Value::String(s)) => xs.iter().any(|x| s.ends_with(x.as_str())),
            (Self::SuffixFolded(xs), Value::String(s)) => xs.iter().any(|x| text::ends_with_folded(s, x)),
            (Self::Contains(xs), Value::String(s)) => xs.iter().any(|x| s.contains(x.as_str())),
            (Self::Wildcard(globs), Value::String(s)) => globs.iter().any(|g| g.matches(s)),
            (Self::Cidr(nets), Value::String(s)) => {
                s.parse::<IpAddr>().is_ok_and(|ip| nets.iter().any(|net| net.contains(&ip)))
            }
            (Self::Number(xs), Value::Number(n)) => n.as_f64().is_some_and(|n| xs.contains(&n)),
            (Self::Range(ranges), Value::Number(n)) => n.as_f64().is_some_and(|n| ranges.iter().any(|r| r.contains(n))),
            (Self::Bool(xs), Value::Bool(b)) => xs.contains(b),
            (Self::Null, Value::Null) | (Self::Present, _) => true,
            _ => false,
        }
    }

    /// Whether the test holds for a field: a missing field fails, an array passes when an
    /// element does.
    fn holds_for(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (_, None) => false,
            (Self::Present, Some(_)) => true,
            (_, Some(Value::Array(items))) => items.iter().any(|item| self.holds(item)),
            (_, Some(v)) => self.holds(v),
        }
    }
}

/// One test on one field, possibly negated (a negated test holds exactly when the test fails).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    /// The field.
    pub path: Path,
    /// The test.
    pub test: Test,
    /// Whether the outcome is inverted.
    pub negated: bool,
}

/// A compiled filter expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// One condition.
    Leaf(Condition),
    /// Every child holds.
    All(Vec<Node>),
    /// Some child holds.
    Any(Vec<Node>),
}

impl Node {
    /// `test` on the field at `path`.
    pub(crate) fn test(path: &[String], test: Test) -> Self {
        Self::Leaf(Condition { path: path.to_vec(), test, negated: false })
    }

    /// The negation of `test` on the field at `path`.
    pub(crate) fn not(path: &[String], test: Test) -> Self {
        Self::Leaf(Condition { path: path.to_vec(), test, negated: true })
    }

    /// The field at `path` exists and fails `test` (`anything-but`, `IsNotNull`).
    pub(crate) fn present_and_not(path: &[String], test: Test) -> Self {
        Self::All(vec![Self::test(path, Test::Present), Self::not(path, test)])
    }

    /// One node for several alternatives.
    pub(crate) fn any(mut alternatives: Vec<Node>) -> Self {
        if alternatives.len() == 1 { alternatives.remove(0) } else { Self::Any(alternatives) }
    }

    /// Whether the event passes.
    pub(crate) fn matches(&self, event: &Value) -> bool {
        match self {
            Self::Leaf(c) => c.test.holds_for(lookup(event, &c.path)) != c.negated,
            Self::All(nodes) => nodes.iter().all(|n| n.matches(event)),
            Self::Any(nodes) => nodes.iter().any(|n| n.matches(event)),
        }
    }
}

/// The field at `path`: object keys only (a path does not descend into arrays).
pub(crate) fn lookup<'a>(event: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(event, |v, key| v.as_object()?.get(key.as_str()))
}
