//! Publishing: PutEvents. Each event is validated on its own (one bad event does not fail the
//! others), deduplicated by `(source, id)` within the retention window, appended to the channel's
//! log with a dedup key, a traced event (with the routes it is given) and an outbox entry in one
//! transaction per chunk, then routed.
//!
//! An event forwarded from another channel (by an `EG` target) is deduplicated by `(source, id)`
//! and its forward count ([`crate::model::event::HOPS_ATTRIBUTE`]): a forward repeated after a retry is acknowledged
//! once, while the same event coming round a forwarding loop counts as new until its hop limit.
//!
//! An event counts as accepted once its transaction has committed; from then on it is delivered
//! or dead-lettered whatever happens to this process: if routing does not finish, the outbox
//! entry makes the sweeper route it.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::routing::{DeliveryJob, RouteTable, outbox_receipt};
use super::trace::TracedEvent;
use super::{Engine, secs};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::model::event::{CloudEvent, hops_of};
use crate::model::validate::MAX_EVENTS_PER_CALL;
use crate::ports::store::json_size;
use crate::ports::{Cond, Item, StoreError, Write};

/// Bytes a transaction leaves for other things than the events (keys, the outbox entry).
const TX_SLACK_BYTES: usize = 256 * 1024;

/// What happened to one published event.
#[derive(Debug)]
pub struct PutOutcome {
    /// The event's `id` as sent (empty when it had none).
    pub event_id: String,
    /// Why it was refused, if it was.
    pub error: Option<Error>,
}

/// What happened to a PutEvents call.
#[derive(Debug)]
pub struct PutResult {
    /// How many events were refused.
    pub failed_count: usize,
    /// One outcome per event, in order.
    pub events: Vec<PutOutcome>,
}

/// Events appended to a channel's log, and the outbox entries that record them.
#[derive(Default)]
struct Logged {
    events: Vec<(u64, Value)>,
    outbox: Vec<(String, String)>,
}

/// An event on its way into the log.
struct Accepted {
    index: usize,
    event: Value,
    dedup_sk: String,
    /// Bytes it adds to a transaction (the event and its trace).
    size: usize,
    trace: TracedEvent,
}

impl Engine {
    /// Publishes events to a channel.
    pub async fn put_events(&self, project: &str, channel_id: &str, events: Vec<Value>) -> Result<PutResult> {
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(Error::invalid(
                "events",
                format!("at most {MAX_EVENTS_PER_CALL} events per call, not {}", events.len()),
            ));
        }
        let (channel, _) = self.channel(project, channel_id).await?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut candidates = Vec::new();
        let mut seen = HashSet::new();
        for (index, raw) in events.into_iter().enumerate() {
            let event_id = raw.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            match CloudEvent::parse(raw) {
                Err(e) => {
                    let message = e.message(&format!("events[{index}]"));
                    let (field, reason) = message.split_once(": ").unwrap_or((&message, ""));
                    outcomes.push(PutOutcome { event_id, error: Some(Error::invalid(field, reason)) });
                }
                Ok(event) => {
                    outcomes.push(PutOutcome { event_id, error: None });
                    // A repeat within the call is acknowledged like a repeat of an earlier call.
                    let dedup_sk = match hops_of(event.as_json()) {
                        0 => keys::dedup_entry(event.source(), event.id()),
                        hops => keys::forwarded_dedup_entry(event.source(), event.id(), hops),
                    };
                    if seen.insert(dedup_sk.clone()) {
                        let trace = TracedEvent::of(&event);
                        let event = event.into_json();
                        candidates.push(Accepted { index, size: json_size(&event), event, dedup_sk, trace });
                    }
                }
            }
        }
        let mut fresh = self.drop_known_duplicates(&keys::dedup(project, channel_id), candidates).await?;
        if fresh.is_empty() {
            return Ok(Self::put_result(outcomes));
        }
        let routing = self.ingest_routing(&channel).await;
        for a in &mut fresh {
            a.trace.routes = routing.as_ref().map(|r| r.routes_of(&a.event));
            a.size += serde_json::to_vec(&a.trace).map_or(0, |b| b.len());
        }
        let logged = self.append_events(project, channel_id, fresh).await?;
        if !logged.events.is_empty() {
            self.notify_log(&keys::channel_log(project, channel_id));
            self.route_fresh(&channel, &logged, routing.map(|r| r.table)).await;
        }
        Ok(Self::put_result(outcomes))
    }

    fn put_result(outcomes: Vec<PutOutcome>) -> PutResult {
        let failed_count = outcomes.iter().filter(|o| o.error.is_some()).count();
        PutResult { failed_count, events: outcomes }
    }

    /// Keeps the events whose `(source, id)` has not been published within the retention window.
    async fn drop_known_duplicates(&self, pk: &str, candidates: Vec<Accepted>) -> Result<Vec<Accepted>> {
        let keys: Vec<(String, String)> = candidates.iter().map(|c| (pk.to_owned(), c.dedup_sk.clone())).collect();
        let known = self.store().get_many(&keys).await?;
        Ok(candidates.into_iter().zip(known).filter(|(_, k)| k.is_none()).map(|(c, _)| c).collect())
    }

    /// Appends events to the channel's log, in chunks that fit one transaction.
    async fn append_events(&self, project: &str, channel_id: &str, events: Vec<Accepted>) -> Result<Logged> {
        let limits = self.store().tx_limits();
        // A dedup key, a log entry and a traced event per event, plus the outbox entry and the log head.
        let events_per_tx = (limits.writes - 2) / 3;
        let bytes_per_tx = limits.bytes.saturating_sub(TX_SLACK_BYTES);
        let mut logged = Logged::default();
        let mut chunk: Vec<Accepted> = Vec::new();
        let mut bytes = 0;
        for e in events {
            if !chunk.is_empty() && (chunk.len() == events_per_tx || bytes + e.size > bytes_per_tx) {
                self.append_chunk(project, channel_id, std::mem::take(&mut chunk), &mut logged).await?;
                bytes = 0;
            }
            bytes += e.size;
            chunk.push(e);
        }
        if !chunk.is_empty() {
            self.append_chunk(project, channel_id, chunk, &mut logged).await?;
        }
        Ok(logged)
    }

    /// One transaction: a dedup key and a log entry per event, the outbox receipt, then a traced
    /// event per event (receipts of the log, locating their entries). A dedup key that turns out to
    /// exist (a concurrent publish of the same event) drops that event.
    async fn append_chunk(
        &self,
        project: &str,
        channel_id: &str,
        mut chunk: Vec<Accepted>,
        logged: &mut Logged,
    ) -> Result<()> {
        let now_ms = self.now_ms();
        let retention = self.config().retention.channel_events;
        let expires = self.now_secs() + secs(retention);
        let log = keys::channel_log(project, channel_id);
        let dedup_pk = keys::dedup(project, channel_id);
        loop {
            if chunk.is_empty() {
                return Ok(());
            }
            let mut writes = Vec::with_capacity(chunk.len() * 3 + 1);
            for a in &chunk {
                let dedup = Item::new(dedup_pk.clone(), a.dedup_sk.clone(), json!({ "at": now_ms })).expiring(expires);
                writes.push(Write::Put { item: dedup, cond: Cond::Absent });
                let entry = json!({ "event": &a.event, "time_ms": now_ms });
                writes.push(Write::Append { pk: log.clone(), data: entry, expires_at: Some(expires) });
            }
            let (receipt, outbox) = outbox_receipt(project, channel_id, now_ms);
            writes.push(receipt);
            for (k, a) in (0u64..).zip(&chunk) {
                writes.push(self.traced_event_write(project, channel_id, now_ms, k, &a.trace)?);
            }
            match self.store().transact(writes).await {
                Ok(result) => {
                    logged.events.extend(result.appended.into_iter().zip(chunk).map(|(seq, a)| (seq, a.event)));
                    logged.outbox.push(outbox);
                    return Ok(());
                }
                Err(StoreError::ConditionFailed { index }) if index % 2 == 0 && index / 2 < chunk.len() => {
                    let duplicate = chunk.remove(index / 2);
                    tracing::debug!(event = duplicate.index, "event published concurrently; acknowledged once");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Routes freshly logged events with `table` (the one their traces record; read now when
    /// there is none) and clears their outbox entries. Failures are logged, not returned: the
    /// events are accepted, and the sweeper routes whatever is left in the outbox.
    async fn route_fresh(&self, channel: &Channel, logged: &Logged, table: Option<Arc<RouteTable>>) {
        let routed = async {
            let table = match table {
                Some(t) => t,
                None => self.route_table(channel).await?,
            };
            let jobs: Vec<DeliveryJob> = logged
                .events
                .iter()
                .flat_map(|(seq, event)| Self::jobs_for(&table, &channel.project, &channel.id, *seq, event))
                .collect();
            self.enqueue(&jobs).await?;
            let cleared = logged
                .outbox
                .iter()
                .map(|(pk, sk)| Write::Delete { pk: pk.clone(), sk: sk.clone(), cond: Cond::Any })
                .collect();
            self.store().transact(cleared).await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = routed.await {
            tracing::warn!(channel = %channel.id, error = %e, "routing deferred to the outbox sweeper");
        }
    }
}
