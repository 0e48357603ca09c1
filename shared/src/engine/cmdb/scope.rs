//! Business-set scopes (`bk_scope`): which businesses of the tenant a business set contains.
//!
//! ```json
//! {"match_all": true}
//! {"match_all": false, "filter": {"condition": "AND", "rules": [
//!     {"field": "bk_biz_id", "operator": "in", "value": [1, 2]},
//!     {"condition": "OR", "rules": [
//!         {"field": "bk_biz_maintainer", "operator": "contains", "value": "alice"},
//!         {"field": "life_cycle", "operator": "equal", "value": "online"}]}]}}
//! ```
//!
//! A rule is a group (`condition` `AND`/`OR` over `rules`, nesting up to 3 deep) or a comparison of
//! one field of the business. Operators (the query builder's names): `equal`, `not_equal`, `in`,
//! `not_in`, `less`, `less_or_equal`, `greater`, `greater_or_equal` (numbers), `contains`,
//! `not_contains`, `begins_with`, `ends_with` (strings), `exist`, `not_exist` (no value). Numbers
//! compare by value (1 equals 1.0). A field holding a list matches a positive comparison when an
//! element does, and a negative one (`not_…`) when none does. A field the business lacks matches
//! only `not_equal`, `not_in`, `not_contains` and `not_exist`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Deepest nesting of groups.
const MAX_DEPTH: usize = 3;
/// Most rules in one group.
const MAX_RULES: usize = 50;

/// A compiled scope.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Every business of the tenant.
    All,
    /// The businesses the rule accepts.
    Filter(Rule),
}

/// A rule of a scope.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Every (AND) or any (OR) of the rules.
    Group {
        /// AND when true, OR when false.
        all: bool,
        /// The rules.
        rules: Vec<Rule>,
    },
    /// One field compared.
    Compare {
        /// The business field.
        field: String,
        /// The comparison.
        op: Op,
        /// The operand (`Null` for `exist`/`not_exist`).
        value: Value,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Equal to the value.
    Equal,
    /// Not equal to the value.
    NotEqual,
    /// Equal to one of the values.
    In,
    /// Equal to none of the values.
    NotIn,
    /// Number below the value.
    Less,
    /// Number at most the value.
    LessOrEqual,
    /// Number above the value.
    Greater,
    /// Number at least the value.
    GreaterOrEqual,
    /// String containing the value.
    Contains,
    /// String not containing the value.
    NotContains,
    /// String starting with the value.
    BeginsWith,
    /// String ending with the value.
    EndsWith,
    /// The field is present.
    Exist,
    /// The field is absent.
    NotExist,
}

impl Op {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "equal" => Op::Equal,
            "not_equal" => Op::NotEqual,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "less" => Op::Less,
            "less_or_equal" => Op::LessOrEqual,
            "greater" => Op::Greater,
            "greater_or_equal" => Op::GreaterOrEqual,
            "contains" => Op::Contains,
            "not_contains" => Op::NotContains,
            "begins_with" => Op::BeginsWith,
            "ends_with" => Op::EndsWith,
            "exist" => Op::Exist,
            "not_exist" => Op::NotExist,
            _ => return None,
        })
    }

    fn negative(self) -> bool {
        matches!(self, Op::NotEqual | Op::NotIn | Op::NotContains | Op::NotExist)
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// Whether one scalar satisfies a positive form of `op`.
fn scalar(op: Op, v: &Value, operand: &Value) -> bool {
    let num = |f: fn(f64, f64) -> bool| match (v.as_f64(), operand.as_f64()) {
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    };
    let text = |f: fn(&str, &str) -> bool| match (v.as_str(), operand.as_str()) {
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    };
    match op {
        Op::Equal | Op::NotEqual => same(v, operand),
        Op::In | Op::NotIn => operand.as_array().is_some_and(|list| list.iter().any(|x| same(v, x))),
        Op::Less => num(|a, b| a < b),
        Op::LessOrEqual => num(|a, b| a <= b),
        Op::Greater => num(|a, b| a > b),
        Op::GreaterOrEqual => num(|a, b| a >= b),
        Op::Contains | Op::NotContains => text(|a, b| a.contains(b)),
        Op::BeginsWith => text(|a, b| a.starts_with(b)),
        Op::EndsWith => text(|a, b| a.ends_with(b)),
        Op::Exist | Op::NotExist => true,
    }
}

impl Rule {
    /// Whether a business document satisfies the rule.
    pub fn matches(&self, biz: &Value) -> bool {
        match self {
            Rule::Group { all: true, rules } => rules.iter().all(|r| r.matches(biz)),
            Rule::Group { all: false, rules } => rules.iter().any(|r| r.matches(biz)),
            Rule::Compare { field, op, value } => {
                let Some(found) = biz.get(field).filter(|v| !v.is_null() || matches!(op, Op::Equal | Op::NotEqual))
                else {
                    return op.negative();
                };
                let hit = match found {
                    Value::Array(items) if !matches!(op, Op::Exist | Op::NotExist) => {
                        items.iter().any(|i| scalar(*op, i, value))
                    }
                    v => scalar(*op, v, value),
                };
                hit != op.negative()
            }
        }
    }

    fn compile(field: &str, rule: &Value, depth: usize) -> Result<Self> {
        let Value::Object(r) = rule else { return Err(Error::invalid(field, "a rule must be an object")) };
        if let Some(condition) = r.get("condition") {
            if depth >= MAX_DEPTH {
                return Err(Error::invalid(field, format!("groups nest at most {MAX_DEPTH} deep")));
            }
            let all = match condition.as_str() {
                Some("AND") => true,
                Some("OR") => false,
                _ => return Err(Error::invalid(format!("{field}.condition"), "must be AND or OR")),
            };
            let rules = match r.get("rules") {
                Some(Value::Array(rules)) if !rules.is_empty() && rules.len() <= MAX_RULES => rules,
                _ => return Err(Error::invalid(format!("{field}.rules"), format!("must hold 1 to {MAX_RULES} rules"))),
            };
            let rules = rules
                .iter()
                .enumerate()
                .map(|(i, r)| Rule::compile(&format!("{field}.rules[{i}]"), r, depth + 1))
                .collect::<Result<_>>()?;
            return Ok(Rule::Group { all, rules });
        }
        let name = r.get("field").and_then(Value::as_str).filter(|f| !f.is_empty());
        let name = name.ok_or_else(|| Error::invalid(format!("{field}.field"), "is required"))?;
        let op_name = r.get("operator").and_then(Value::as_str).unwrap_or_default();
        let op = Op::parse(op_name)
            .ok_or_else(|| Error::invalid(format!("{field}.operator"), format!("unknown operator {op_name:?}")))?;
        let value = r.get("value").cloned().unwrap_or(Value::Null);
        let bad = |what: &str| Err(Error::invalid(format!("{field}.value"), format!("{op_name} takes {what}")));
        match op {
            Op::In | Op::NotIn if !value.is_array() => return bad("a list"),
            Op::Less | Op::LessOrEqual | Op::Greater | Op::GreaterOrEqual if !value.is_number() => {
                return bad("a number");
            }
            Op::Contains | Op::NotContains | Op::BeginsWith | Op::EndsWith if !value.is_string() => {
                return bad("a string");
            }
            Op::Equal | Op::NotEqual if value.is_array() || value.is_object() => return bad("a single value"),
            _ => {}
        }
        Ok(Rule::Compare { field: name.to_owned(), op, value })
    }
}

impl Scope {
    /// Compiles a `bk_scope`; errors name the offending part.
    pub fn compile(scope: &Value) -> Result<Self> {
        let Value::Object(s) = scope else { return Err(Error::invalid("bk_scope", "must be an object")) };
        match s.get("match_all") {
            Some(Value::Bool(true)) => return Ok(Scope::All),
            Some(Value::Bool(false)) | None => {}
            Some(_) => return Err(Error::invalid("bk_scope.match_all", "must be a boolean")),
        }
        let filter =
            s.get("filter").ok_or_else(|| Error::invalid("bk_scope.filter", "is required unless match_all is true"))?;
        Ok(Scope::Filter(Rule::compile("bk_scope.filter", filter, 0)?))
    }

    /// Whether the scope contains a business.
    pub fn contains(&self, biz: &Value) -> bool {
        match self {
            Scope::All => true,
            Scope::Filter(rule) => rule.matches(biz),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contains(scope: Value, biz: Value) -> bool {
        Scope::compile(&scope).unwrap().contains(&biz)
    }

    fn rule(field: &str, op: &str, value: Value) -> Value {
        json!({ "match_all": false, "filter": { "field": field, "operator": op, "value": value } })
    }

    #[test]
    fn every_operator_behaves_as_documented() {
        let biz = json!({ "bk_biz_id": 3, "name": "payments", "tags": ["pci", "eu"], "level": 2.0, "note": null });
        let cases = [
            (rule("bk_biz_id", "equal", json!(3)), true),
            (rule("level", "equal", json!(2)), true),
            (rule("bk_biz_id", "not_equal", json!(3)), false),
            (rule("bk_biz_id", "in", json!([1, 3])), true),
            (rule("bk_biz_id", "not_in", json!([1, 3])), false),
            (rule("bk_biz_id", "less", json!(4)), true),
            (rule("bk_biz_id", "less_or_equal", json!(3)), true),
            (rule("bk_biz_id", "greater", json!(3)), false),
            (rule("bk_biz_id", "greater_or_equal", json!(3)), true),
            (rule("name", "contains", json!("pay")), true),
            (rule("name", "not_contains", json!("pay")), false),
            (rule("name", "begins_with", json!("pay")), true),
            (rule("name", "ends_with", json!("ments")), true),
            (rule("name", "exist", Value::Null), true),
            (rule("absent", "exist", Value::Null), false),
            (rule("absent", "not_exist", Value::Null), true),
            (rule("note", "exist", Value::Null), false),
            (rule("tags", "in", json!(["eu"])), true),
            (rule("tags", "not_in", json!(["us"])), true),
            (rule("tags", "equal", json!("pci")), true),
            (rule("absent", "equal", json!(1)), false),
            (rule("absent", "not_equal", json!(1)), true),
            (rule("name", "less", json!(1)), false),
        ];
        for (scope, expected) in cases {
            assert_eq!(contains(scope.clone(), biz.clone()), expected, "{scope}");
        }
    }

    #[test]
    fn groups_and_match_all() {
        let biz = json!({ "bk_biz_id": 3, "name": "payments" });
        assert!(contains(json!({ "match_all": true }), biz.clone()));
        let and = json!({ "filter": { "condition": "AND", "rules": [
            { "field": "bk_biz_id", "operator": "equal", "value": 3 },
            { "condition": "OR", "rules": [
                { "field": "name", "operator": "equal", "value": "x" },
                { "field": "name", "operator": "begins_with", "value": "pay" }]}]}});
        assert!(contains(and, biz.clone()));
        let or = json!({ "filter": { "condition": "OR", "rules": [
            { "field": "bk_biz_id", "operator": "equal", "value": 4 },
            { "field": "name", "operator": "equal", "value": "x" }]}});
        assert!(!contains(or, biz));
    }

    #[test]
    fn invalid_scopes_name_the_part() {
        let cases = [
            (json!([]), "bk_scope: must be an object"),
            (json!({ "match_all": "yes" }), "bk_scope.match_all: "),
            (json!({ "match_all": false }), "bk_scope.filter: is required"),
            (json!({ "filter": { "condition": "XOR", "rules": [] } }), "bk_scope.filter.condition: "),
            (json!({ "filter": { "condition": "AND", "rules": [] } }), "bk_scope.filter.rules: "),
            (
                json!({ "filter": { "condition": "AND", "rules": [{ "field": "a", "operator": "like", "value": 1 }] } }),
                "bk_scope.filter.rules[0].operator: unknown operator",
            ),
            (
                json!({ "filter": { "field": "a", "operator": "in", "value": 1 } }),
                "bk_scope.filter.value: in takes a list",
            ),
            (json!({ "filter": { "operator": "equal", "value": 1 } }), "bk_scope.filter.field: is required"),
        ];
        for (scope, expected) in cases {
            let e = Scope::compile(&scope).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{e} should start with {expected}");
        }
    }
}
