//! Traces: what became of each accepted event. Ingest writes a traced event per accepted event, in
//! the transaction that appends the event to its channel's log, with the routes it was given then
//! ([`TracedEvent`]); delivery writes one record per attempt ([`Attempt`]). Both are kept for the
//! trace retention period; [`super::traces`] reads them back.
//!
//! A traced event is found by its [`TraceId`]: its channel and its key in the channel's traced
//! events partition, which sorts by the time the event was received, so that listing a channel's
//! events of a time range is one query of one partition.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::list::load_all;
use super::routing::RouteTable;
use super::{Engine, secs};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::model::event::CloudEvent;
use crate::model::subscription::Subscription;
use crate::ports::{Cond, Item, Write};

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AttemptStatus {
    /// The target accepted the event.
    Success,
    /// The attempt failed.
    Failed,
    /// The delivery was abandoned without an attempt (its subscription is gone or disabled).
    Discarded,
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Subscription.
    pub subscription_id: String,
    /// Subscription name at the time.
    pub subscription_name: String,
    /// Target.
    pub target_id: String,
    /// Target kind name.
    pub target_name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started (ms).
    pub time_ms: i64,
    /// How it ended.
    pub status: AttemptStatus,
    /// HTTP status of the answer, if any.
    pub response_code: Option<u16>,
    /// How long it took (ms).
    pub duration_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Whether this was the last attempt and the event went to the dead-letter queue.
    pub dead_lettered: bool,
}

impl Engine {
    /// Records an attempt to deliver event `seq` of a channel.
    pub async fn record_attempt(&self, project: &str, channel_id: &str, seq: u64, attempt: &Attempt) -> Result<()> {
        let expires = self.now_secs() + secs(self.config().retention.traces);
        let item = Item::new(
            keys::trace(project, channel_id, seq),
            keys::attempt(&attempt.subscription_id, &attempt.target_id, attempt.attempt),
            serde_json::to_value(attempt)?,
        )
        .expiring(expires);
        self.store().put(item, Cond::Any).await?;
        Ok(())
    }

    /// Every recorded attempt to deliver event `seq` of a channel, by subscription, target and
    /// attempt number.
    pub async fn attempts(&self, project: &str, channel_id: &str, seq: u64) -> Result<Vec<Attempt>> {
        super::list::load_all(self.store(), &keys::trace(project, channel_id, seq), "").await
    }
}

/// One subscription an event was routed to at ingest, with the names it and its targets had then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    /// Subscription id.
    pub subscription_id: String,
    /// Subscription name.
    pub subscription_name: String,
    /// Its targets: id and name.
    pub targets: Vec<(String, String)>,
}

/// An accepted event as its trace records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedEvent {
    /// The event's `id`.
    pub event_id: String,
    /// The event's `source`.
    pub source: String,
    /// The event's `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was accepted (ms).
    #[serde(default)]
    pub received_ms: i64,
    /// Its position among the entries its transaction appended to the channel's log.
    #[serde(default)]
    pub k: u64,
    /// The first sequence number that transaction appended (set by the store: the item is a
    /// receipt of the channel's log).
    #[serde(default)]
    pub first: u64,
    /// Where it was routed at ingest; `None` when the routes could not be read then (it was routed
    /// later from the outbox, and its attempts are still recorded).
    #[serde(default)]
    pub routes: Option<Vec<Routed>>,
}

impl TracedEvent {
    /// The trace of a validated event, before it is routed and appended.
    pub fn of(event: &CloudEvent) -> Self {
        Self {
            event_id: event.id().to_owned(),
            source: event.source().to_owned(),
            event_type: event.event_type().to_owned(),
            received_ms: 0,
            k: 0,
            first: 0,
            routes: None,
        }
    }

    /// The event's sequence number in its channel's log.
    pub fn seq(&self) -> u64 {
        self.first + self.k
    }
}

/// Longest millisecond time a trace key holds (13 digits, the year 2286).
const MAX_TRACE_MS: i64 = 9_999_999_999_999;

/// The id of a traced event: `{channel_id}.{received ms, 13 digits}.{nonce, 16 hex digits}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceId {
    /// The channel the event was published to.
    pub channel_id: String,
    /// When it was received (ms).
    pub received_ms: i64,
    /// Tells apart events received in the same millisecond.
    pub nonce: u64,
}

impl TraceId {
    /// Parses a trace id; errors name `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let malformed = || Error::invalid(field, "is not a trace id (as ListTracedEvents returns them)");
        let mut parts = text.rsplitn(3, '.');
        let (Some(nonce), Some(ms), Some(channel_id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        let channel_ok = !channel_id.is_empty()
            && channel_id.len() <= 64
            && channel_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !channel_ok || ms.len() != 13 || nonce.len() != 16 || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let received_ms = ms.parse().map_err(|_| malformed())?;
        let nonce = u64::from_str_radix(nonce, 16).map_err(|_| malformed())?;
        Ok(Self { channel_id: channel_id.to_owned(), received_ms, nonce })
    }

    /// The sort key of the traced event in its channel's partition.
    pub fn sk(&self) -> String {
        keys::traced_event(self.received_ms, self.nonce)
    }

    /// The id of the traced event stored under `sk` in `channel_id`'s partition.
    pub fn from_sk(channel_id: &str, sk: &str) -> Option<Self> {
        let (ms, nonce) = sk.split_once('#')?;
        Some(Self {
            channel_id: channel_id.to_owned(),
            received_ms: ms.parse().ok()?,
            nonce: u64::from_str_radix(nonce, 16).ok()?,
        })
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:013}.{:016x}", self.channel_id, self.received_ms.clamp(0, MAX_TRACE_MS), self.nonce)
    }
}

/// The names of a channel's subscriptions and of their targets, at one routing revision.
#[derive(Debug, Default)]
pub(crate) struct RouteNames {
    rev: u64,
    subscriptions: HashMap<String, (String, HashMap<String, String>)>,
}

/// [`RouteNames`] by (project, channel).
#[derive(Default)]
pub(crate) struct RouteNameCache {
    entries: Mutex<HashMap<(String, String), Arc<RouteNames>>>,
}

/// The routes ingest gives accepted events, with the names their traces record.
pub(crate) struct IngestRouting {
    /// The channel's route table.
    pub table: Arc<RouteTable>,
    names: Arc<RouteNames>,
}

impl IngestRouting {
    /// Where `event` goes, named, by subscription name.
    pub fn routes_of(&self, event: &Value) -> Vec<Routed> {
        let mut routes: Vec<Routed> = self
            .table
            .matching(event)
            .map(|route| {
                let (name, targets) = self.names.subscriptions.get(&route.subscription_id).cloned().unwrap_or_default();
                Routed {
                    subscription_id: route.subscription_id.clone(),
                    subscription_name: name,
                    targets: route
                        .targets
                        .iter()
                        .map(|t| (t.clone(), targets.get(t).cloned().unwrap_or_default()))
                        .collect(),
                }
            })
            .collect();
        routes.sort_by(|a, b| a.subscription_name.cmp(&b.subscription_name));
        routes
    }
}

impl Engine {
    /// The routes of a channel as ingest records them; `None` (logged) when they cannot be read
    /// now: the events are accepted all the same and routed from the outbox.
    pub(crate) async fn ingest_routing(&self, channel: &Channel) -> Option<IngestRouting> {
        let read = async {
            Ok::<_, Error>(IngestRouting {
                table: self.route_table(channel).await?,
                names: self.route_names(channel).await?,
            })
        };
        match read.await {
            Ok(routing) => Some(routing),
            Err(e) => {
                tracing::warn!(channel = %channel.id, error = %e, "routes unreadable at ingest; traces record none");
                None
            }
        }
    }

    /// The names of a channel's subscriptions and targets at its current routing revision.
    async fn route_names(&self, channel: &Channel) -> Result<Arc<RouteNames>> {
        let key = (channel.project.clone(), channel.id.clone());
        if let Some(n) = self.route_name_cache().entries.lock().get(&key)
            && n.rev == channel.routes_rev
        {
            return Ok(Arc::clone(n));
        }
        let subscriptions: Vec<Subscription> =
            load_all(self.store(), &keys::project(&channel.project), keys::SUBSCRIPTION_PREFIX).await?;
        let names = Arc::new(RouteNames {
            rev: channel.routes_rev,
            subscriptions: subscriptions
                .into_iter()
                .filter(|s| s.channel_id == channel.id)
                .map(|s| (s.id, (s.name, s.targets.into_iter().map(|t| (t.id, t.name)).collect())))
                .collect(),
        });
        self.route_name_cache().entries.lock().insert(key, Arc::clone(&names));
        Ok(names)
    }

    /// The write that records accepted event `k` of a transaction appending to a channel's log:
    /// a receipt of that log, so the store records where the event landed.
    pub(crate) fn traced_event_write(
        &self,
        project: &str,
        channel_id: &str,
        received_ms: i64,
        k: u64,
        traced: &TracedEvent,
    ) -> Result<Write> {
        let record = TracedEvent { received_ms, k, ..traced.clone() };
        let expires = self.now_secs() + secs(self.config().retention.traces);
        let sk = keys::traced_event(received_ms.clamp(0, MAX_TRACE_MS), rand::random());
        let item =
            Item::new(keys::traced_events(project, channel_id), sk, serde_json::to_value(&record)?).expiring(expires);
        Ok(Write::Receipt { item, log: keys::channel_log(project, channel_id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_round_trip_and_refuse_anything_else() {
        let id = TraceId {
            channel_id: "0b6e1a52-9a3c-4c1e-8f1a-2d3c4b5a6978".into(),
            received_ms: 1_677_651_126_823,
            nonce: 0xfe,
        };
        let text = id.to_string();
        assert_eq!(text, "0b6e1a52-9a3c-4c1e-8f1a-2d3c4b5a6978.1677651126823.00000000000000fe");
        assert_eq!(TraceId::parse("trace_id", &text).unwrap(), id);
        assert_eq!(TraceId::from_sk(&id.channel_id, &id.sk()), Some(id));
        for bad in [
            "",
            "evt-1",
            "ch.1677651126823",
            "ch.167765112682.00000000000000fe",
            "ch.1677651126823.fe",
            "c#h.1677651126823.00000000000000fe",
            ".1677651126823.00000000000000fe",
            "ch.167765112682x.00000000000000fe",
            "ch.1677651126823.00000000000000fg",
        ] {
            let e = TraceId::parse("trace_id", bad).unwrap_err().to_string();
            assert!(e.starts_with("trace_id: "), "{bad}: {e}");
        }
    }
}
