//! CheckPutEvents: what publishing would do, without publishing. For a source, whether any
//! subscription on the channel receives its events; for an event, whether it would be routed
//! anywhere and, if not, why: it is invalid (naming the attribute), it repeats an event already
//! published, no subscription listens to its source, every one that does is stopped, or each
//! one's filter rejects it. Nothing is stored or delivered. Filters are judged by the routing code
//! itself ([`RouteTable`]), one subscription at a time.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::Engine;
use super::list::load_all;
use super::routing::RouteTable;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::model::event::CloudEvent;
use crate::model::subscription::{Subscription, SubscriptionStatus};
use crate::model::validate::MAX_EVENTS_PER_CALL;

/// Why an event or source would, or would not, be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// At least one subscription takes it.
    Routed,
    /// The channel does not exist.
    ChannelNotFound,
    /// The event is not a valid CloudEvent.
    InvalidEvent,
    /// The same `(source, id)` was published within the retention window, or earlier in the call:
    /// it would be acknowledged but not routed again.
    Duplicate,
    /// No subscription on the channel listens to the source.
    NoSubscription,
    /// Every subscription of the source is stopped (disabled, frozen or in error).
    AllStopped,
    /// Every running subscription of the source has a filter that rejects the event.
    FilterNotMatched,
}

impl Verdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "ROUTED",
            Self::ChannelNotFound => "CHANNEL_NOT_FOUND",
            Self::InvalidEvent => "INVALID_EVENT",
            Self::Duplicate => "DUPLICATE",
            Self::NoSubscription => "NO_SUBSCRIPTION",
            Self::AllStopped => "SUBSCRIPTIONS_STOPPED",
            Self::FilterNotMatched => "FILTER_NOT_MATCHED",
        }
    }
}

/// How one subscription of the source judged an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Its filter accepts the event.
    Matched,
    /// Its filter rejects the event.
    FilterNotMatched,
    /// Its stored filter does not compile, so it receives nothing.
    FilterInvalid,
    /// It is stopped.
    Stopped,
}

impl Judgement {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "MATCHED",
            Self::FilterNotMatched => "FILTER_NOT_MATCHED",
            Self::FilterInvalid => "FILTER_INVALID",
            Self::Stopped => "STOPPED",
        }
    }
}

/// One subscription of the source, and its judgement.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Subscription id.
    pub subscription_id: String,
    /// Subscription name.
    pub subscription_name: String,
    /// Its status.
    pub status: SubscriptionStatus,
    /// Its filter, as stored.
    pub filter: Value,
    /// How it judged (for a source check: `Matched` when running).
    pub judgement: Judgement,
}

/// The check of one event or source.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// A sentence saying why.
    pub detail: String,
    /// For an invalid event, the field at fault (`events[2].time`).
    pub field: Option<String>,
    /// The subscriptions of the source, each judged.
    pub candidates: Vec<Candidate>,
}

impl Checked {
    /// Whether publishing would route it somewhere.
    pub fn routed(&self) -> bool {
        self.verdict == Verdict::Routed
    }

    /// A refusal with no subscription to show.
    pub fn refused(verdict: Verdict, detail: String) -> Self {
        Self { verdict, detail, field: None, candidates: Vec::new() }
    }
}

/// A channel's subscriptions, each compiled on its own for judging.
struct Judge {
    channel: Channel,
    subscriptions: Vec<(Subscription, RouteTable)>,
}

impl Judge {
    fn of_source(&self, source: &str) -> Vec<&(Subscription, RouteTable)> {
        self.subscriptions.iter().filter(|(s, _)| s.sources.first().is_some_and(|x| x.name == source)).collect()
    }

    fn sources(&self) -> String {
        let names: BTreeSet<&str> =
            self.subscriptions.iter().filter_map(|(s, _)| s.sources.first()).map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            "the channel has no subscription".to_owned()
        } else {
            format!("its subscriptions listen to {}", names.into_iter().collect::<Vec<_>>().join(", "))
        }
    }

    /// Refuses a source no running subscription listens to; otherwise returns its subscriptions.
    fn source(&self, source: &str) -> Result<Vec<&(Subscription, RouteTable)>, Checked> {
        let candidates = self.of_source(source);
        if candidates.is_empty() {
            let detail = format!(
                "no subscription on channel {} listens to source {source}; {}",
                self.channel.name,
                self.sources()
            );
            return Err(Checked::refused(Verdict::NoSubscription, detail));
        }
        if candidates.iter().all(|(s, _)| !s.status.receives_events()) {
            let stopped: Vec<String> =
                candidates.iter().map(|(s, _)| format!("{} ({})", s.name, s.status.as_str())).collect();
            let detail = format!("every subscription of source {source} is stopped: {}", stopped.join(", "));
            let candidates = candidates.into_iter().map(|(s, _)| candidate(s, Judgement::Stopped)).collect();
            return Err(Checked { candidates, ..Checked::refused(Verdict::AllStopped, detail) });
        }
        Ok(candidates)
    }

    fn event(&self, event: &Value, source: &str) -> Checked {
        let candidates = match self.source(source) {
            Ok(c) => c,
            Err(refused) => return refused,
        };
        let judged: Vec<Candidate> = candidates
            .into_iter()
            .map(|(s, table)| {
                let judgement = if !s.status.receives_events() {
                    Judgement::Stopped
                } else if table.is_empty() {
                    Judgement::FilterInvalid
                } else if table.matching(event).next().is_some() {
                    Judgement::Matched
                } else {
                    Judgement::FilterNotMatched
                };
                candidate(s, judgement)
            })
            .collect();
        let names = |j: Judgement| -> Vec<&str> {
            judged.iter().filter(|c| c.judgement == j).map(|c| c.subscription_name.as_str()).collect()
        };
        let matched = names(Judgement::Matched);
        let (verdict, detail) = if matched.is_empty() {
            let rejected: Vec<&str> = judged
                .iter()
                .filter(|c| c.judgement != Judgement::Stopped)
                .map(|c| c.subscription_name.as_str())
                .collect();
            (
                Verdict::FilterNotMatched,
                format!(
                    "the filters of the running subscriptions of source {source} reject it: {}",
                    rejected.join(", ")
                ),
            )
        } else {
            (Verdict::Routed, format!("routed to {}", matched.join(", ")))
        };
        Checked { verdict, detail, field: None, candidates: judged }
    }
}

fn candidate(s: &Subscription, judgement: Judgement) -> Candidate {
    Candidate {
        subscription_id: s.id.clone(),
        subscription_name: s.name.clone(),
        status: s.status,
        filter: s.sources.first().map(|x| x.filter.clone()).unwrap_or(Value::Null),
        judgement,
    }
}

impl Engine {
    /// A channel's subscriptions, each compiled alone by the router.
    async fn judge(&self, project: &str, channel_id: &str) -> Result<Judge> {
        let (channel, _) = self.channel(project, channel_id).await?;
        let mut all: Vec<Subscription> =
            load_all(self.store(), &keys::project(project), keys::SUBSCRIPTION_PREFIX).await?;
        all.retain(|s| s.channel_id == channel.id);
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let subscriptions = all
            .into_iter()
            .map(|s| {
                let table = RouteTable::compile(0, std::slice::from_ref(&s));
                (s, table)
            })
            .collect();
        Ok(Judge { channel, subscriptions })
    }

    /// Whether events of `source` published to a channel would reach a running subscription.
    pub async fn check_source(&self, project: &str, channel_id: &str, source: &str) -> Result<Checked> {
        let judge = match self.judge(project, channel_id).await {
            Ok(j) => j,
            Err(Error::NotFound { .. }) => {
                return Ok(Checked::refused(Verdict::ChannelNotFound, format!("channel {channel_id} not found")));
            }
            Err(e) => return Err(e),
        };
        Ok(match judge.source(source) {
            Err(refused) => refused,
            Ok(candidates) => {
                let judged: Vec<Candidate> = candidates
                    .into_iter()
                    .map(|(s, _)| {
                        candidate(s, if s.status.receives_events() { Judgement::Matched } else { Judgement::Stopped })
                    })
                    .collect();
                let running: Vec<&str> = judged
                    .iter()
                    .filter(|c| c.judgement == Judgement::Matched)
                    .map(|c| c.subscription_name.as_str())
                    .collect();
                let detail = format!("events of source {source} reach {} (filters permitting)", running.join(", "));
                Checked { verdict: Verdict::Routed, detail, field: None, candidates: judged }
            }
        })
    }

    /// What publishing `events` to a channel would do with each, in order.
    pub async fn check_events(&self, project: &str, channel_id: &str, events: Vec<Value>) -> Result<Vec<Checked>> {
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(Error::invalid(
                "events",
                format!("at most {MAX_EVENTS_PER_CALL} events per call, not {}", events.len()),
            ));
        }
        let judge = self.judge(project, channel_id).await?;
        let parsed: Vec<Result<CloudEvent, Checked>> = events
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                CloudEvent::parse(raw).map_err(|e| {
                    let message = e.message(&format!("events[{i}]"));
                    let field = message.split_once(": ").map_or(message.as_str(), |(f, _)| f).to_owned();
                    Checked { field: Some(field), ..Checked::refused(Verdict::InvalidEvent, message) }
                })
            })
            .collect();
        let dedup_pk = keys::dedup(project, channel_id);
        let keys: Vec<(String, String)> =
            parsed.iter().flatten().map(|e| (dedup_pk.clone(), keys::dedup_entry(e.source(), e.id()))).collect();
        let mut published = self.store().get_many(&keys).await?.into_iter().map(|k| k.is_some());
        let mut seen = HashSet::new();
        Ok(parsed
            .into_iter()
            .map(|p| {
                let event = p?;
                let known = published.next().unwrap_or(false);
                if known || !seen.insert((event.source().to_owned(), event.id().to_owned())) {
                    let when = if known { "within the retention window" } else { "earlier in this call" };
                    let detail = format!(
                        "an event with source {} and id {} was published {when}; it would be acknowledged, not routed again",
                        event.source(),
                        event.id()
                    );
                    return Err(Checked::refused(Verdict::Duplicate, detail));
                }
                let source = event.source().to_owned();
                Ok(judge.event(&event.into_json(), &source))
            })
            .map(|r: Result<Checked, Checked>| r.unwrap_or_else(|refused| refused))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn subscription(name: &str, source: &str, status: &str, filter: Value) -> Subscription {
        serde_json::from_value(json!({
            "id": format!("id-{name}"), "project": "p", "name": name, "channel_id": "ch", "status": status,
            "sources": [{ "id": "s", "name": source, "provider_type": "CUSTOM", "detail": {}, "filter": filter,
                          "created_ms": 0, "updated_ms": 0 }],
            "targets": [{ "id": "t", "name": "WEBHOOK", "provider_type": "CUSTOM", "detail": { "url": "http://x" },
                          "retry_times": 0, "transform": { "type": "ORIGINAL" }, "created_ms": 0, "updated_ms": 0 }],
            "created_ms": 0, "updated_ms": 0
        }))
        .unwrap()
    }

    fn of_type(kind: &str) -> Value {
        json!({ "type": [{ "op": "StringIn", "values": [kind] }] })
    }

    fn judge() -> Judge {
        let subscriptions = [
            subscription("created-only", "shop", "ENABLED", of_type("order.created")),
            subscription("paid-only", "shop", "CREATED", of_type("order.paid")),
            subscription("paused", "shop", "DISABLED", json!({})),
            subscription("broken", "shop", "ENABLED", json!({ "type": [{ "op": "NoSuchOp", "values": ["x"] }] })),
            subscription("old", "legacy", "DISABLED", json!({})),
            subscription("older", "legacy", "FROZEN", json!({})),
        ];
        Judge {
            channel: Channel::default_for("p", 0),
            subscriptions: subscriptions
                .into_iter()
                .map(|s| {
                    let table = RouteTable::compile(0, std::slice::from_ref(&s));
                    (s, table)
                })
                .collect(),
        }
    }

    fn event(source: &str, kind: &str) -> Value {
        json!({ "id": "1", "source": source, "specversion": "1.0", "type": kind })
    }

    fn judgements(c: &Checked) -> Vec<(&str, Judgement)> {
        c.candidates.iter().map(|c| (c.subscription_name.as_str(), c.judgement)).collect()
    }

    #[test]
    fn an_event_is_routed_when_one_running_subscription_matches_and_each_one_says_how_it_judged() {
        // GIVEN a source with matching, rejecting, stopped and broken subscriptions
        let j = judge();
        // WHEN an order.created event of it is checked
        let c = j.event(&event("shop", "order.created"), "shop");
        // THEN it is routed, and every subscription of the source shows its judgement
        assert_eq!((c.verdict, c.detail.as_str()), (Verdict::Routed, "routed to created-only"));
        assert_eq!(
            judgements(&c),
            vec![
                ("created-only", Judgement::Matched),
                ("paid-only", Judgement::FilterNotMatched),
                ("paused", Judgement::Stopped),
                ("broken", Judgement::FilterInvalid),
            ]
        );
    }

    #[test]
    fn an_event_no_running_filter_accepts_is_not_routed_and_the_rejecting_subscriptions_are_named() {
        let c = judge().event(&event("shop", "order.refunded"), "shop");
        assert_eq!(c.verdict, Verdict::FilterNotMatched);
        assert!(c.detail.ends_with("reject it: created-only, paid-only, broken"), "{}", c.detail);
        assert!(!c.routed());
    }

    #[test]
    fn a_source_nobody_listens_to_or_whose_subscriptions_are_all_stopped_is_refused() {
        let j = judge();
        let nobody = j.event(&event("nobody", "t"), "nobody");
        assert_eq!(nobody.verdict, Verdict::NoSubscription);
        assert!(nobody.detail.ends_with("its subscriptions listen to legacy, shop"), "{}", nobody.detail);
        assert!(nobody.candidates.is_empty());
        let stopped = j.event(&event("legacy", "t"), "legacy");
        assert_eq!(stopped.verdict, Verdict::AllStopped);
        assert!(stopped.detail.ends_with("stopped: old (DISABLED), older (FROZEN)"), "{}", stopped.detail);
        assert_eq!(judgements(&stopped), vec![("old", Judgement::Stopped), ("older", Judgement::Stopped)]);
        let empty = Judge { channel: Channel::default_for("p", 0), subscriptions: Vec::new() };
        assert!(empty.event(&event("x", "t"), "x").detail.ends_with("the channel has no subscription"));
    }
}
