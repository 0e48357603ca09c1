//! The route table: a channel's active subscriptions compiled for routing, and indexed so that an
//! event is checked only against the filters it can pass.
//!
//! Routes are grouped by source name: an event goes only to subscriptions of its `source`. Within
//! a group, a route whose filter requires a string field to equal one of some values (a `StringIn`
//! condition, or exact strings in an EventBridge leaf) is filed under each (path, value) pair of one
//! such condition, and an event evaluates it only when its field (or an element of it) holds one of
//! those values. The other routes are evaluated for every event of their source. A route is filed
//! under the path that most routes of its group can be filed under, so that an event looks few
//! paths up; `source` comes last, since all events of a group share it.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::engine::filter::{Filter, lookup};
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
    sources: HashMap<String, SourceIndex>,
}

/// The routes filed under each value of one path, by position in [`RouteTable::routes`].
type ValueIndex = HashMap<String, Vec<usize>>;

/// The routes of one source, by position in [`RouteTable::routes`].
#[derive(Debug, Default)]
struct SourceIndex {
    /// Indexed paths, each with the routes filed under each of its values.
    by_value: Vec<(Vec<String>, ValueIndex)>,
    /// Routes evaluated for every event of the source.
    scan: Vec<usize>,
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
        let sources = groups
            .into_iter()
            .map(|(name, members)| (name.to_owned(), SourceIndex::build(&routes, &members)))
            .collect();
        Self { rev, routes, sources }
    }

    /// The routes an event goes to: its source is the route's source and it passes the filter.
    /// The order is unspecified.
    pub fn matching<'a>(&'a self, event: &'a Value) -> impl Iterator<Item = &'a Route> + 'a {
        let source = event.get("source").and_then(Value::as_str).unwrap_or_default();
        let candidates = self.sources.get(source).map(|index| index.candidates(event)).unwrap_or_default();
        candidates.into_iter().map(|i| &self.routes[i]).filter(move |r| r.filter.matches(event))
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
    /// Files the routes at positions `members` (one source's routes).
    fn build(routes: &[Route], members: &[usize]) -> Self {
        let mut fileable: HashMap<&[String], usize> = HashMap::new();
        for &i in members {
            let paths: HashSet<&[String]> = routes[i].filter.equalities().map(|(path, _)| path).collect();
            for path in paths {
                *fileable.entry(path).or_default() += 1;
            }
        }
        let mut index = Self::default();
        for &i in members {
            let best = routes[i]
                .filter
                .equalities()
                .max_by_key(|(path, values)| (!is_source(path), fileable[path], Reverse(values.len())));
            let Some((path, values)) = best else {
                index.scan.push(i);
                continue;
            };
            let slot = match index.by_value.iter().position(|(p, _)| p == path) {
                Some(slot) => slot,
                None => {
                    index.by_value.push((path.to_vec(), HashMap::new()));
                    index.by_value.len() - 1
                }
            };
            for value in values {
                let filed = index.by_value[slot].1.entry(value.clone()).or_default();
                if filed.last() != Some(&i) {
                    filed.push(i);
                }
            }
        }
        index
    }

    /// The routes an event of this source may pass: those filed under a value the event holds,
    /// and those evaluated for every event.
    fn candidates(&self, event: &Value) -> Vec<usize> {
        let mut hits = Vec::new();
        let mut repeats = false;
        for (path, by_value) in &self.by_value {
            match lookup(event, path) {
                Some(Value::String(s)) => hits.extend(by_value.get(s.as_str()).into_iter().flatten()),
                Some(Value::Array(items)) => {
                    repeats = true;
                    let filed = items.iter().filter_map(Value::as_str).filter_map(|s| by_value.get(s));
                    hits.extend(filed.flatten());
                }
                _ => {}
            }
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
        assert_eq!(index.by_value.len(), 1, "one path for the whole group");
        assert_eq!(index.by_value[0].0, vec!["type".to_owned()]);
        assert_eq!(index.scan, vec![3], "a negative condition is not indexed");
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t1", "subject": "x" })), vec!["a"]);
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t1", "subject": "y" })), Vec::<String>::new());
        assert_eq!(matched(&table, &json!({ "source": "s", "type": "t2" })), vec!["b", "d"]);
    }
}
