//! Reading traces back: a channel's traced events of a time range (ListTracedEvents), one event's
//! routes and delivery attempts (ShowDetailOfEventTrace), and the event itself
//! (ShowDetailOfEvent). A trace lives as long as the trace retention; the event's content as long
//! as the channel's event retention.

use serde_json::Value;

use super::Engine;
use super::list::Listing;
use super::trace::{Attempt, AttemptStatus, Routed, TraceId, TracedEvent};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::ports::store::log_sk;
use crate::ports::{Order, Query, SkRange};

/// Items read per page of the traced events partition.
const PAGE: usize = 1000;

/// Which traced events to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// The channel.
    pub channel_id: String,
    /// Received at or after (ms).
    pub start_ms: i64,
    /// Received at or before (ms).
    pub end_ms: i64,
    /// Exact event `id`.
    pub event_id: Option<String>,
    /// Exact event `source`.
    pub source_name: Option<String>,
    /// Exact event `type`.
    pub event_type: Option<String>,
    /// Exact name of a subscription the event was routed to.
    pub subscription_name: Option<String>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most.
    pub limit: usize,
}

/// One row of the list: a traced event and one subscription it was routed to (none when it was
/// routed nowhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedRow {
    /// The trace id.
    pub trace_id: String,
    /// The event.
    pub event: TracedEvent,
    /// The subscription (id, name), if the event was routed to one.
    pub subscription: Option<(String, String)>,
}

/// Where the deliveries to one target stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// An attempt succeeded.
    Success,
    /// Given up: dead-lettered, or discarded because the subscription stopped.
    Failed,
    /// Not attempted yet, or failed with attempts left.
    Pending,
}

impl DeliveryState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Pending => "PENDING",
        }
    }

    /// The state after these attempts (in order).
    pub fn of(attempts: &[Attempt]) -> Self {
        if attempts.iter().any(|a| a.status == AttemptStatus::Success) {
            return Self::Success;
        }
        match attempts.last() {
            Some(a) if a.dead_lettered || a.status == AttemptStatus::Discarded => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// The deliveries of an event to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetTrace {
    /// Target id.
    pub target_id: String,
    /// Target name.
    pub target_name: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

/// The deliveries of an event to one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionTrace {
    /// Subscription id.
    pub subscription_id: String,
    /// Subscription name.
    pub subscription_name: String,
    /// Its targets.
    pub targets: Vec<TargetTrace>,
}

impl SubscriptionTrace {
    /// Targets in this state.
    pub fn count(&self, state: DeliveryState) -> usize {
        self.targets.iter().filter(|t| t.state == state).count()
    }

    /// Attempts over every target.
    pub fn attempts(&self) -> usize {
        self.targets.iter().map(|t| t.attempts.len()).sum()
    }
}

/// One event's trace.
#[derive(Clone, Debug, PartialEq)]
pub struct EventTrace {
    /// The trace id.
    pub trace_id: String,
    /// The channel.
    pub channel: Channel,
    /// The event.
    pub event: TracedEvent,
    /// Its deliveries, by subscription.
    pub deliveries: Vec<SubscriptionTrace>,
}

/// The deliveries of an event: the routes ingest gave it, each with its attempts, then any
/// attempt of a route it did not record (the sweeper routed the event with newer routes).
/// `attempts` is in key order: by subscription, target and attempt number.
pub fn deliveries(routes: &[Routed], attempts: Vec<Attempt>) -> Vec<SubscriptionTrace> {
    let mut out: Vec<SubscriptionTrace> = routes
        .iter()
        .map(|r| SubscriptionTrace {
            subscription_id: r.subscription_id.clone(),
            subscription_name: r.subscription_name.clone(),
            targets: r
                .targets
                .iter()
                .map(|(id, name)| TargetTrace {
                    target_id: id.clone(),
                    target_name: name.clone(),
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                })
                .collect(),
        })
        .collect();
    for a in attempts {
        let s = match out.iter().position(|s| s.subscription_id == a.subscription_id) {
            Some(i) => i,
            None => {
                out.push(SubscriptionTrace {
                    subscription_id: a.subscription_id.clone(),
                    subscription_name: a.subscription_name.clone(),
                    targets: Vec::new(),
                });
                out.len() - 1
            }
        };
        let targets = &mut out[s].targets;
        let t = match targets.iter().position(|t| t.target_id == a.target_id) {
            Some(i) => i,
            None => {
                targets.push(TargetTrace {
                    target_id: a.target_id.clone(),
                    target_name: a.target_name.clone(),
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                });
                targets.len() - 1
            }
        };
        targets[t].attempts.push(a);
    }
    for t in out.iter_mut().flat_map(|s| s.targets.iter_mut()) {
        t.state = DeliveryState::of(&t.attempts);
    }
    out
}

fn wanted(filter: Option<&String>, value: &str) -> bool {
    filter.is_none_or(|f| f == value)
}

/// The rows of one traced event that pass the query's filters.
fn rows_of(channel_id: &str, sk: &str, event: TracedEvent, q: &TraceQuery) -> Vec<TracedRow> {
    if !wanted(q.event_id.as_ref(), &event.event_id)
        || !wanted(q.source_name.as_ref(), &event.source)
        || !wanted(q.event_type.as_ref(), &event.event_type)
    {
        return Vec::new();
    }
    let Some(id) = TraceId::from_sk(channel_id, sk) else { return Vec::new() };
    let trace_id = id.to_string();
    let subscriptions: Vec<Option<(String, String)>> = match &event.routes {
        Some(routes) if !routes.is_empty() => {
            routes.iter().map(|r| Some((r.subscription_id.clone(), r.subscription_name.clone()))).collect()
        }
        _ => vec![None],
    };
    subscriptions
        .into_iter()
        .filter(|s| q.subscription_name.as_ref().is_none_or(|n| s.as_ref().is_some_and(|(_, name)| name == n)))
        .map(|subscription| TracedRow { trace_id: trace_id.clone(), event: event.clone(), subscription })
        .collect()
}

impl Engine {
    /// The traced events of a channel received in a time range, newest first: one row per
    /// subscription each was routed to (or one row when it was routed nowhere).
    pub async fn list_traced_events(&self, project: &str, q: &TraceQuery) -> Result<Listing<TracedRow>> {
        if q.end_ms < q.start_ms {
            return Err(Error::invalid("end_time", "must not be before start_time"));
        }
        self.channel(project, &q.channel_id).await?;
        let pk = keys::traced_events(project, &q.channel_id);
        let range = SkRange::Between(
            format!("{:013}", q.start_ms.max(0)),
            format!("{:013}#~", q.end_ms.clamp(0, 9_999_999_999_999)),
        );
        let mut listing = Listing { total: 0, items: Vec::new() };
        let mut resume = None;
        loop {
            let query = Query { range: range.clone(), order: Order::Desc, resume, ..Query::partition(&pk, PAGE) };
            let page = self.store().query(query).await?;
            for item in page.items {
                for row in rows_of(&q.channel_id, &item.sk, item.decode()?, q) {
                    if listing.total >= q.offset && listing.items.len() < q.limit {
                        listing.items.push(row);
                    }
                    listing.total += 1;
                }
            }
            match page.resume {
                Some(r) => resume = Some(r),
                None => return Ok(listing),
            }
        }
    }

    /// A traced event by its id (`trace_id` names the parameter in errors).
    async fn traced_event(&self, project: &str, trace_id: &str) -> Result<(TraceId, TracedEvent)> {
        let id = TraceId::parse("trace_id", trace_id)?;
        let item = self.store().get(&keys::traced_events(project, &id.channel_id), &id.sk()).await?;
        let item = item.ok_or_else(|| Error::not_found("traced event", trace_id))?;
        Ok((id, item.decode()?))
    }

    /// One event's trace: where it was routed and every delivery attempt. The event must have been
    /// published to `channel_id`.
    pub async fn event_trace(&self, project: &str, channel_id: &str, trace_id: &str) -> Result<EventTrace> {
        let (id, event) = self.traced_event(project, trace_id).await?;
        if id.channel_id != channel_id {
            return Err(Error::not_found("traced event", format!("{trace_id} in channel {channel_id}")));
        }
        let (channel, _) = self.channel(project, channel_id).await?;
        let attempts = self.attempts(project, channel_id, event.seq()).await?;
        let deliveries = deliveries(event.routes.as_deref().unwrap_or_default(), attempts);
        Ok(EventTrace { trace_id: id.to_string(), channel, event, deliveries })
    }

    /// The CloudEvent a trace is about, as it was published.
    pub async fn traced_event_content(&self, project: &str, trace_id: &str) -> Result<Value> {
        let (id, event) = self.traced_event(project, trace_id).await?;
        let entry = self.store().get(&keys::channel_log(project, &id.channel_id), &log_sk(event.seq())).await?;
        entry
            .and_then(|e| e.data.get("event").cloned())
            .ok_or_else(|| Error::not_found("event", format!("{trace_id} (no longer retained)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(sub: &str, target: &str, n: u32, status: AttemptStatus, dead: bool) -> Attempt {
        Attempt {
            subscription_id: sub.into(),
            subscription_name: format!("{sub}-name"),
            target_id: target.into(),
            target_name: "WEBHOOK".into(),
            attempt: n,
            time_ms: 1000 * i64::from(n),
            status,
            response_code: Some(if status == AttemptStatus::Success { 200 } else { 500 }),
            duration_ms: 3,
            error: None,
            dead_lettered: dead,
        }
    }

    fn route(sub: &str, targets: &[&str]) -> Routed {
        Routed {
            subscription_id: sub.into(),
            subscription_name: format!("{sub}-name"),
            targets: targets.iter().map(|t| ((*t).to_owned(), "WEBHOOK".to_owned())).collect(),
        }
    }

    fn states(d: &[SubscriptionTrace]) -> Vec<(&str, &str, DeliveryState, usize)> {
        d.iter()
            .flat_map(|s| {
                s.targets.iter().map(|t| (s.subscription_id.as_str(), t.target_id.as_str(), t.state, t.attempts.len()))
            })
            .collect()
    }

    #[test]
    fn each_target_shows_where_its_deliveries_stand() {
        use AttemptStatus::*;
        use DeliveryState as S;
        // GIVEN routes to two subscriptions (one with two targets) and attempts for some targets
        let routes = [route("a", &["t1", "t2"]), route("b", &["t3"])];
        let attempts = vec![
            attempt("a", "t1", 1, Failed, false),
            attempt("a", "t1", 2, Success, false),
            attempt("b", "t3", 1, Failed, false),
            attempt("b", "t3", 2, Failed, true),
        ];
        // WHEN they are put together
        let d = deliveries(&routes, attempts);
        // THEN a success wins, a dead letter fails, no attempt yet is pending
        assert_eq!(states(&d), vec![("a", "t1", S::Success, 2), ("a", "t2", S::Pending, 0), ("b", "t3", S::Failed, 2)]);
        assert_eq!((d[0].count(S::Success), d[0].count(S::Failed), d[0].attempts()), (1, 0, 2));
        assert_eq!((d[1].count(S::Success), d[1].count(S::Failed), d[1].attempts()), (0, 1, 2));
    }

    #[test]
    fn retries_left_are_pending_discards_are_failed_and_unrecorded_routes_are_added() {
        use AttemptStatus::*;
        use DeliveryState as S;
        // GIVEN no recorded routes (unreadable at ingest) and attempts of two subscriptions
        let attempts = vec![attempt("a", "t1", 1, Failed, false), attempt("c", "t9", 1, Discarded, false)];
        // WHEN they are put together
        let d = deliveries(&[], attempts);
        // THEN each attempted target appears, named by its attempts
        assert_eq!(states(&d), vec![("a", "t1", S::Pending, 1), ("c", "t9", S::Failed, 1)]);
        assert_eq!(d[1].subscription_name, "c-name");
    }

    #[test]
    fn rows_follow_routes_and_filters() {
        let event = TracedEvent {
            event_id: "e1".into(),
            source: "shop".into(),
            event_type: "order.created".into(),
            received_ms: 5,
            k: 0,
            first: 1,
            routes: Some(vec![route("a", &["t1"]), route("b", &["t2"])]),
        };
        let sk = keys::traced_event(5, 0xab);
        let q = TraceQuery { channel_id: "ch".into(), ..TraceQuery::default() };
        let rows = rows_of("ch", &sk, event.clone(), &q);
        assert_eq!(rows.len(), 2, "one row per subscription");
        assert_eq!(rows[0].trace_id, "ch.0000000000005.00000000000000ab");
        let by_name = TraceQuery { subscription_name: Some("b-name".into()), ..q.clone() };
        assert_eq!(rows_of("ch", &sk, event.clone(), &by_name)[0].subscription, Some(("b".into(), "b-name".into())));
        let by_type = TraceQuery { event_type: Some("order.paid".into()), ..q.clone() };
        assert!(rows_of("ch", &sk, event.clone(), &by_type).is_empty());
        let nowhere = TracedEvent { routes: Some(vec![]), ..event };
        let rows = rows_of("ch", &sk, nowhere.clone(), &q);
        assert_eq!((rows.len(), rows[0].subscription.clone()), (1, None), "an unrouted event still has its row");
        assert!(rows_of("ch", &sk, nowhere, &by_name).is_empty());
    }
}
