//! Pull delivery: a channel's events read by cursor, for consumers that cannot expose a webhook.
//! Same guarantees as the resource watch: every event once, in order, no gap, and a clear error
//! once the cursor has aged out of the channel's retention.

use std::time::Duration;

use serde_json::Value;

use super::Engine;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::keys;

/// Most events in one answer.
pub const MAX_PULL: usize = 1000;

/// Where a pull starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullStart {
    /// After the position of this cursor.
    Cursor(String),
    /// At the first event received at or after this time (ms since the epoch).
    Time(i64),
    /// After the last event received so far.
    Now,
}

/// What a pull returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// The events (CloudEvents), oldest first.
    pub events: Vec<Value>,
    /// Where to continue from.
    pub cursor: String,
}

impl Engine {
    /// Reads a channel's events after `start`, waiting up to `wait` for the first one.
    pub async fn pull_channel_events(
        &self,
        project: &str,
        channel_id: &str,
        start: PullStart,
        wait: Duration,
        limit: usize,
    ) -> Result<Pulled> {
        if !(1..=MAX_PULL).contains(&limit) {
            return Err(Error::invalid("limit", format!("must be from 1 to {MAX_PULL}")));
        }
        self.channel(project, channel_id).await?;
        let stream = keys::channel_log(project, channel_id);
        let retention = self.config().retention.channel_events;
        let after = match start {
            PullStart::Cursor(token) => self.decode_cursor("cursor", &token, &stream, retention).await?.seq,
            PullStart::Time(ms) => self.log_position_at(&stream, ms, retention).await?,
            PullStart::Now => self.log_end(&stream).await?,
        };
        let wait = wait.min(self.config().watch.wait);
        let followed = self.follow_log(&stream, after, wait, limit, |_| true).await?;
        let time_ms = match followed.entries.last() {
            Some(last) => last.time_ms,
            None => followed.position_time_ms.max(self.now_ms()),
        };
        let cursor = self.encode_cursor(&Cursor { stream, seq: followed.position, time_ms }).await?;
        let events = followed.entries.into_iter().filter_map(|e| e.data.get("event").cloned()).collect();
        Ok(Pulled { events, cursor })
    }
}
