//! Delivery traces: one record per attempt to deliver an event to a subscription target, kept for
//! the trace retention period and read back by the trace operations.

use serde::{Deserialize, Serialize};

use super::{Engine, secs};
use crate::error::Result;
use crate::keys;
use crate::ports::{Cond, Item};

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
