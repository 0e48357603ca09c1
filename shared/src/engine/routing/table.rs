//! The route table: a channel's active subscriptions compiled for routing, and indexed so that an
//! event is checked only against the filters it can pass.
//!
//! Routes are grouped by source name: an event goes only to subscriptions of its `source`. Within
//! a group, a route whose filter as a whole (not only inside an alternative) requires of one field
//! that it
//! - equals one of some strings (`StringIn`, exact strings in an EventBridge leaf) is filed in a
//!   hash map under each string;
//! - starts with one of some strings (`StringStartsWith`, `prefix`, or the text before the first
//!   star of a wildcard) is filed under each prefix ([`PrefixIndex`]);
//! - is a number in one of some intervals (`NumberIn`, `NumberInRange`, the comparisons,
//!   `numeric`, exact numbers) is filed under each interval ([`IntervalIndex`]);
//!
//! and an event evaluates the route's filter only when its field (or an element of it) meets the
//! requirement; not even then when the requirement is the whole filter (a single condition of
//! these kinds, other than a wildcard). The other routes (negative conditions, `anything-but`,
//! `exists`, case-insensitive tests, alternatives) are evaluated for every event of their source.
//! A route with several requirements is filed under one: an equality before a prefix before an
//! interval, then the path that most routes of its group can be filed under (so that an event
//! looks few paths up), then the fewest values; `source` comes last, since all events of a group
//! share it.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::index::{IntervalIndex, PrefixIndex};
use crate::engine::filter::{Filter, Indexable, Requirement, lookup};
use crate::model::subscription::Subscription;

/// One subscription, compiled for routing.
#[derive(Debug)]
pub struct Route {
    /// Subscription id.
    pub subscription_id: String,
    /// The event source it listens to.
    pub source_name: String,
    /// Its filter.
    pub filter: Filter,
    /// Its target ids.
    pub targets: Vec<String>,
}

/// A channel's routes at one routing revision.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub(super) rev: u64,
    routes: Vec<Route>,
    /// By position in `routes`: whether the route is filed under its whole filter, so that
    /// finding it in the index is a match.
    decided: Vec<bool>,
    sources: HashMap<String, SourceIndex>,
}

/// The routes filed under each string a field may equal, by position in [`RouteTable::routes`].
type ValueIndex = HashMap<String, Vec<usize>>;

/// The routes of one source, by position in [`RouteTable::routes`].
#[derive(Debug, Default)]
struct SourceIndex {
    /// Paths with the routes filed under each string a field there may equal.
    exact: Vec<(Vec<String>, ValueIndex)>,
    /// Paths with the routes filed under prefixes of a string there.
    prefix: Vec<(Vec<String>, PrefixIndex)>,
    /// Paths with the routes filed under intervals holding a number there.
    range: Vec<(Vec<String>, IntervalIndex)>,
    /// Routes evaluated for every event of the source.
    scan: Vec<usize>,
}

/// The kinds of requirement, in the order a route prefers to be filed under them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Range,
    Prefix,
    Exact,
}

fn kind(r: &Requirement<'_>) -> Kind {
    match r {
        Requirement::Equals(_) => Kind::Exact,
        Requirement::StartsWith(_) => Kind::Prefix,
        Requirement::Within(_) => Kind::Range,
    }
}

fn values(r: &Requirement<'_>) -> usize {
    match r {
        Requirement::Equals(v) => v.len(),
        Requirement::StartsWith(v) => v.len(),
        Requirement::Within(v) => v.len(),
    }
}

/// The slot of `path` in one of the index's lists, added when missing.
fn slot<T: Default>(list: &mut Vec<(Vec<String>, T)>, path: &[String]) -> usize {
    match list.iter().position(|(p, _)| p == path) {
        Some(slot) => slot,
        None => {
            list.push((path.to_vec(), T::default()));
            list.len() - 1
        }
    }
}

/// The scalars of a field: the field, or its elements; whether there are several.
fn scalars(field: Option<&Value>) -> (&[Value], bool) {
    match field {
        None => (&[], false),
        Some(Value::Array(items)) => (items, items.len() > 1),
        Some(v) => (std::slice::from_ref(v), false),
    }
}

impl RouteTable {
    /// Compiles the active subscriptions among `subscriptions`.
    pub fn compile(rev: u64, subscriptions: &[Subscription]) -> Self {
        let mut routes = Vec::new();
        for s in subscriptions.iter().filter(|s| s.status.receives_events()) {
            let Some(source) = s.sources.first() else { continue };
            match Filter::compile("filter", &source.filter) {
                Ok(filter) => routes.push(Route {
                    subscription_id: s.id.clone(),
                    source_name: source.name.clone(),
                    filter,
                    targets: s.targets.iter().map(|t| t.id.clone()).collect(),
                }),
                Err(e) => tracing::error!(subscription = %s.id, error = %e, "stored filter does not compile; skipped"),
            }
        }
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            groups.entry(r.source_name.as_str()).or_default().push(i);
        }
        let mut decided = vec![false; routes.len()];
        let sources = groups
            .into_iter()
            .map(|(name, members)| (name.to_owned(), SourceIndex::build(&routes, &members, &mut decided)))
            .collect();
        Self { rev, routes, decided, sources }
    }

    /// The routes an event goes to: its source is the route's source and it passes the filter.
    /// The order is unspecified.
    pub fn matching<'a>(&'a self, event: &'a Value) -> impl Iterator<Item = &'a Route> + 'a {
        let source = event.get("source").and_then(Value::as_str).unwrap_or_default();
        let candidates = self.sources.get(source).map(|index| index.candidates(event)).unwrap_or_default();
        candidates
            .into_iter()
            .filter(move |&i| self.decided[i] || self.routes[i].filter.matches(event))
            .map(|i| &self.routes[i])
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn is_source(path: &[String]) -> bool {
    matches!(path, [only] if only == "source")
}

impl SourceIndex {
    /// Files the routes at positions `members` (one source's routes), marking in `decided` those
    /// filed under their whole filter.
    fn build(routes: &[Route], members: &[usize], decided: &mut [bool]) -> Self {
        let requirements: Vec<_> = members.iter().map(|&i| (i, routes[i].filter.requirements())).collect();
        let mut fileable: HashMap<(Kind, &[String]), usize> = HashMap::new();
        for (_, reqs) in &requirements {
            let keys: HashSet<(Kind, &[String])> = reqs.iter().map(|r| (kind(&r.requirement), r.path)).collect();
            for key in keys {
                *fileable.entry(key).or_default() += 1;
            }
        }
        let mut index = Self::default();
        for (i, reqs) in requirements {
            let best = reqs.into_iter().max_by_key(|r| {
                let kind = kind(&r.requirement);
                (!is_source(r.path), kind, fileable[&(kind, r.path)], Reverse(values(&r.requirement)))
            });
            let Some(Indexable { path, requirement, whole }) = best else {
                index.scan.push(i);
                continue;
            };
            decided[i] = whole;
            match requirement {
                Requirement::Equals(values) => {
                    let slot = slot(&mut index.exact, path);
                    for value in values {
                        let filed = index.exact[slot].1.entry(value.clone()).or_default();
                        if filed.last() != Some(&i) {
                            filed.push(i);
                        }
                    }
                }
                Requirement::StartsWith(prefixes) => {
                    let slot = slot(&mut index.prefix, path);
                    index.prefix[slot].1.insert(i, &prefixes);
                }
                Requirement::Within(intervals) => {
                    let slot = slot(&mut index.range, path);
                    index.range[slot].1.insert(i, &intervals);
                }
            }
        }
        for (_, intervals) in &mut index.range {
            intervals.build();
        }
        index
    }

    /// The routes an event of this source may pass: those filed under a requirement the event
    /// meets, and those evaluated for every event; each once.
    fn candidates(&self, event: &Value) -> Vec<usize> {
        let mut hits = Vec::new();
        let mut repeats = false;
        for (path, by_value) in &self.exact {
            let (values, several) = scalars(lookup(event, path));
            repeats |= several;
            for s in values.iter().filter_map(Value::as_str) {
                hits.extend(by_value.get(s).into_iter().flatten());
            }
        }
        for (path, prefixes) in &self.prefix {
            let (values, several) = scalars(lookup(event, path));
            let before = hits.len();
            for s in values.iter().filter_map(Value::as_str) {
                prefixes.find(s, &mut hits);
            }
            repeats |= hits.len() > before + 1 && (several || prefixes.repeats);
        }
        for (path, intervals) in &self.range {
            let (values, several) = scalars(lookup(event, path));
            let before = hits.len();
            for n in values.iter().filter_map(Value::as_f64) {
                intervals.find(n, &mut hits);
            }
            repeats |= hits.len() > before + 1 && (several || intervals.repeats);
        }
        if repeats {
            hits.sort_unstable();
            hits.dedup();
        }
        hits.extend_from_slice(&self.scan);
        hits
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::ProviderType;
    use crate::model::subscription::{SubscriptionSource, SubscriptionStatus};

    /// An active subscription with no targets.
    pub(crate) fn subscription(id: &str, source: &str, filter: Value) -> Subscription {
        Subscription {
            id: id.to_owned(),
            project: "p".into(),
            name: id.to_owned(),
            description: String::new(),
            channel_id: "c".into(),
            status: SubscriptionStatus::Enabled,
            sources: vec![SubscriptionSource {
                id: format!("{id}-source"),
                name: source.to_owned(),
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

    fn string_in(path: &str, values: Value) -> Value {
        let leaf = json!([{ "op": "StringIn", "values": values }]);
        path.rsplit('.').fold(leaf, |inner, key| json!({ key: inner }))
    }

    fn matched(table: &RouteTable, event: &Value) -> Vec<String> {
        let mut ids: Vec<String> = table.matching(event).map(|r| r.subscription_id.clone()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn routes_by_source_index_and_scan() {
        let mut disabled = subscription("off", "shop", json!({}));
        disabled.status = SubscriptionStatus::Disabled;
        let subscriptions = [
            subscription("created", "shop", string_in("type", json!(["order.created"]))),
            subscription("created-or-paid", "shop", string_in("type", json!(["order.created", "order.paid"]))),
            subscription("any-order", "shop", json!({ "type": [{ "op": "StringStartsWith", "values": ["order."] }] })),
            subscription("gold", "shop", string_in("data.tier", json!(["gold"]))),
            subscription("source-only", "shop", string_in("source", json!(["shop"]))),
            subscription("eb-created", "shop", json!({ "$pattern": "eventbridge", "type": ["order.created"] })),
            subscription("other-source", "bank", string_in("type", json!(["order.created"]))),
            subscription("broken", "shop", json!({ "type": "not a list" })),
            disabled,
        ];
        let table = RouteTable::compile(7, &subscriptions);
        assert_eq!(table.len(), 7, "the disabled and the broken one are left out");
        let cases = [
            (
                json!({ "source": "shop", "type": "order.created", "data": { "tier": "gold" } }),
                vec!["any-order", "created", "created-or-paid", "eb-created", "gold", "source-only"],
            ),
            (json!({ "source": "shop", "type": "order.paid" }), vec!["any-order", "created-or-paid", "source-only"]),
            (json!({ "source": "shop", "type": "refund" }), vec!["source-only"]),
            (
                json!({ "source": "shop", "type": ["order.paid", "order.created"] }),
                vec!["any-order", "created", "created-or-paid", "eb-created", "source-only"],
            ),
            (json!({ "source": "shop", "data": { "tier": ["silver", "gold"] } }), vec!["gold", "source-only"]),
            (json!({ "source": "bank", "type": "order.created" }), vec!["other-source"]),
            (json!({ "source": "elsewhere", "type": "order.created" }), vec![]),
            (json!({ "type": "order.created" }), vec![]),
        ];
        for (event, expected) in cases {
            assert_eq!(matched(&table, &event), expected, "{event}");
        }
    }

    #[test]
    fn routes_are_filed_under_the_most_shared_path() {
        let subscriptions = [
            subscription(
                "a",
                "s",
                json!({ "type": [{ "op": "StringIn", "values": ["t1"] }],
                                            "subject": [{ "op": "StringIn", "values": ["x"] }] }),
            ),
            subscription("b", "s", string_in("type", json!(["t2"]))),
            subscription("c", "s", string_in("type", json!(["t3"]))),
            subscription("d", "s", json!({ "type": [{ "op": "StringNotIn", "values": ["t1"] }] })),
        ];
        let table = RouteTable::compile(1, &subscriptions);
        let index = &table.sources["s"];
        assert_eq!(index.exact.len(), 1, "one path for the whole group");
        assert_eq!(index.exact[0].0, vec!["type".to_owned()]);
        assert_eq!(index.scan, vec![3], "a negative condition is not indexed");
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t1", "subject": "x" })), vec!["a"]);
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t1", "subject": "y" })), Vec::<String>::new());
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t2" })), vec!["b", "d"]);
    }

    /// GIVEN routes requiring prefixes, wildcards and numbers, WHEN they are filed, THEN each
    /// kind has its index, an equality wins over the others, and events find exactly their routes.
    #[test]
    fn prefixes_wildcards_and_numbers_are_indexed() {
        let subscriptions = [
            subscription("prefix", "s", json!({ "subject": [{ "op": "StringStartsWith", "values": ["a/", "b/"] }] })),
            subscription("eb-prefix", "s", json!({ "$pattern": "eventbridge", "subject": [{ "prefix": "a/x" }] })),
            subscription("wildcard", "s", json!({ "subject": [{ "op": "StringWildcard", "values": ["a/*.pdf"] }] })),
            subscription("range", "s", json!({ "data": { "n": [{ "op": "NumberInRange", "values": [[1, 5]] }] } })),
            subscription("above", "s", json!({ "data": { "n": [{ "op": "NumberGreaterThan", "values": [4] }] } })),
            subscription(
                "eb-numeric",
                "s",
                json!({ "$pattern": "eventbridge", "data": { "n": [{ "numeric": [">", 0, "<", 2] }], "tier": ["gold"] } }),
            ),
            subscription("star-first", "s", json!({ "subject": [{ "op": "StringWildcard", "values": ["*.pdf"] }] })),
        ];
        let table = RouteTable::compile(1, &subscriptions);
        let index = &table.sources["s"];
        assert_eq!((index.exact.len(), index.prefix.len(), index.range.len()), (1, 1, 1));
        assert!(index.scan.is_empty(), "a wildcard starting with a star is filed under the empty prefix");
        let decided: Vec<bool> = table.routes.iter().enumerate().map(|(i, _)| table.decided[i]).collect();
        assert_eq!(
            decided,
            vec![true, true, false, true, true, false, false],
            "a single prefix or range condition is decided by the index; wildcards and pairs are evaluated"
        );
        let cases = [
            (json!({ "source": "s", "subject": "a/x.pdf" }), vec!["eb-prefix", "prefix", "star-first", "wildcard"]),
            (json!({ "source": "s", "subject": ["b/1", "a/xy"] }), vec!["eb-prefix", "prefix"]),
            (json!({ "source": "s", "subject": "c/x.pdf" }), vec!["star-first"]),
            (json!({ "source": "s", "data": { "n": 1, "tier": "gold" } }), vec!["eb-numeric", "range"]),
            (json!({ "source": "s", "data": { "n": 5 } }), vec!["above", "range"]),
            (json!({ "source": "s", "data": { "n": [0, 5.5] } }), vec!["above"]),
            (json!({ "source": "s", "data": { "n": "3" } }), vec![]),
        ];
        for (event, expected) in cases {
            assert_eq!(matched(&table, &event), expected, "{event}");
        }
    }
}
