//! Routing: which subscription targets an event goes to, and the outbox that makes sure every
//! accepted event is routed even if the function that accepted it dies before routing it.
//!
//! Each channel's subscriptions are compiled into a [`RouteTable`] once per routing revision of the
//! channel (every subscription write moves it) and cached. An accepted batch leaves an outbox entry
//! in the same transaction as its log entries; routing deletes the entry once the deliveries are
//! enqueued; the sweeper routes entries older than the grace period.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use self::table::{Route, RouteTable};
use super::Engine;
use super::list::load_all;
use crate::config::queues;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::channel::Channel;
use crate::model::subscription::Subscription;
use crate::ports::store::parse_log_sk;
use crate::ports::{Cond, Item, Message, Order, Query, SkRange, StoreError, Write};

mod index;
#[cfg(test)]
mod proptests;
mod table;

/// One delivery to make: an event of a channel's log to one target of one subscription. This is
/// the body of a delivery queue message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// Project.
    #[serde(rename = "p")]
    pub project: String,
    /// Channel.
    #[serde(rename = "c")]
    pub channel_id: String,
    /// Sequence number of the event in the channel's log.
    #[serde(rename = "s")]
    pub seq: u64,
    /// Subscription.
    #[serde(rename = "sub")]
    pub subscription_id: String,
    /// Target of the subscription.
    #[serde(rename = "t")]
    pub target_id: String,
}

/// Compiled route tables by (project, channel).
#[derive(Default)]
pub(crate) struct RouteCache {
    tables: Mutex<HashMap<(String, String), Arc<RouteTable>>>,
}

/// An outbox entry: events of a channel's log that are accepted but maybe not routed yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OutboxEntry {
    project: String,
    channel: String,
    first: u64,
    last: u64,
    #[serde(default)]
    claimed_until_ms: i64,
}

/// The outbox entry for a batch of events appended to a channel's log: written in the same
/// transaction, it records the sequence numbers the store assigned to them.
/// Returns the write and the entry's key.
pub(crate) fn outbox_receipt(project: &str, channel_id: &str, now_ms: i64) -> (Write, (String, String)) {
    let pk = keys::outbox(keys::outbox_shard(project, channel_id));
    let sk = keys::outbox_entry(now_ms, &uuid::Uuid::new_v4().simple().to_string());
    let item = Item::new(pk.clone(), sk.clone(), json!({ "project": project, "channel": channel_id }));
    (Write::Receipt { item, log: keys::channel_log(project, channel_id) }, (pk, sk))
}

impl Engine {
    /// The route table of a channel at its current routing revision.
    pub async fn route_table(&self, channel: &Channel) -> Result<Arc<RouteTable>> {
        let key = (channel.project.clone(), channel.id.clone());
        if let Some(t) = self.routes().tables.lock().get(&key)
            && t.rev == channel.routes_rev
        {
            return Ok(Arc::clone(t));
        }
        let mut subscriptions: Vec<Subscription> =
            load_all(self.store(), &keys::project(&channel.project), keys::SUBSCRIPTION_PREFIX).await?;
        subscriptions.retain(|s| s.channel_id == channel.id);
        let table = Arc::new(RouteTable::compile(channel.routes_rev, &subscriptions));
        self.routes().tables.lock().insert(key, Arc::clone(&table));
        Ok(table)
    }

    /// The deliveries of one logged event.
    pub(crate) fn jobs_for(
        table: &RouteTable,
        project: &str,
        channel_id: &str,
        seq: u64,
        event: &Value,
    ) -> Vec<DeliveryJob> {
        table
            .matching(event)
            .flat_map(|route| {
                route.targets.iter().map(|t| DeliveryJob {
                    project: project.to_owned(),
                    channel_id: channel_id.to_owned(),
                    seq,
                    subscription_id: route.subscription_id.clone(),
                    target_id: t.clone(),
                })
            })
            .collect()
    }

    /// Puts deliveries on the delivery queue.
    pub(crate) async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let messages =
            jobs.iter().map(|j| serde_json::to_string(j).map(Message::now)).collect::<Result<Vec<_>, _>>()?;
        self.queue().send_batch(queues::DELIVERY, messages).await?;
        Ok(())
    }

    /// Routes events already in a channel's log, reading them back (the sweeper's path).
    async fn route_logged(&self, project: &str, channel_id: &str, seqs: RangeInclusive<u64>) -> Result<usize> {
        let channel = match self.channel(project, channel_id).await {
            Ok((c, _)) => c,
            Err(Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let table = self.route_table(&channel).await?;
        let pk = keys::channel_log(project, channel_id);
        let entries = self.store().query(Query::log(pk, *seqs.start(), *seqs.end(), 1000)).await?;
        let mut jobs = Vec::new();
        for item in &entries.items {
            let Some(seq) = parse_log_sk(&item.sk) else { continue };
            if let Some(event) = item.data.get("event") {
                jobs.extend(Self::jobs_for(&table, project, channel_id, seq, event));
            }
        }
        self.enqueue(&jobs).await?;
        Ok(jobs.len())
    }

    /// Routes every outbox entry older than the grace period; returns how many deliveries were
    /// enqueued. Run periodically (a scheduled function on AWS, a loop in the local runner).
    pub async fn sweep_outbox(&self) -> Result<usize> {
        let now = self.now_ms();
        let before = now - i64::try_from(self.config().outbox_grace.as_millis()).unwrap_or(i64::MAX);
        let mut enqueued = 0;
        for shard in 0..keys::OUTBOX_SHARDS {
            let pk = keys::outbox(shard);
            let range = SkRange::Between("0".into(), keys::outbox_entry(before, "~"));
            let page = self.store().query(Query { range, order: Order::Asc, ..Query::partition(&pk, 100) }).await?;
            for item in page.items {
                enqueued += self.sweep_entry(item, now).await?;
            }
        }
        Ok(enqueued)
    }

    async fn sweep_entry(&self, item: Item, now: i64) -> Result<usize> {
        let mut entry: OutboxEntry = item.decode()?;
        if entry.claimed_until_ms > now {
            return Ok(0);
        }
        // Claim the entry so that concurrent sweepers do not route it twice.
        entry.claimed_until_ms = now + 60_000;
        let claimed = Item { data: serde_json::to_value(&entry)?, ..item.clone() };
        match self.store().put(claimed, Cond::Version(item.version)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        let n = self.route_logged(&entry.project, &entry.channel, entry.first..=entry.last).await?;
        self.store().delete(&item.pk, &item.sk, Cond::Any).await?;
        tracing::info!(project = %entry.project, channel = %entry.channel, deliveries = n, "routed events left in the outbox");
        Ok(n)
    }
}
