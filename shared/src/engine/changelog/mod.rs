//! Change logs as seen by watchers: a stream is one log partition of the store (dense sequence
//! numbers in commit order). This module reads entries after a position, finds the position of a
//! point in time, turns positions into cursors and back, and waits for new entries: a write in this
//! process wakes its watchers at once; writes made elsewhere (other Lambda functions) are found by
//! polling every `watch.poll`. When the store reports its appends, watchers follow the stream's
//! [`tail`] and read the store only when they are behind it.
//!
//! Guarantees, for a watcher that passes each answer's position to the next call: it sees every
//! entry once, in sequence order, with no gap. When entries it has not seen are gone (expired), it
//! gets [`Error::CursorExpired`], never a silent skip.

pub(crate) mod tail;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::Engine;
use crate::cursor::{Cursor, CursorError};
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::store::parse_log_sk;
use crate::ports::{Cond, Item, Query, StoreError};
use tail::{Known, Stream};

/// Most entries read from the store at once while scanning.
const SCAN: usize = 500;

/// One entry of a change log.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Its sequence number.
    pub seq: u64,
    /// When it was written (ms).
    pub time_ms: i64,
    /// The entry's document.
    pub data: Value,
    /// The token of the position after this entry, once made (every watcher of a stream gets the
    /// same one, so a kept entry makes it once).
    token: OnceLock<String>,
}

impl PartialEq for LogEntry {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && self.time_ms == other.time_ms && self.data == other.data
    }
}

impl LogEntry {
    /// An entry read from a stream.
    pub fn new(seq: u64, time_ms: i64, data: Value) -> Self {
        Self { seq, time_ms, data, token: OnceLock::new() }
    }

    /// The cursor token of the position after this entry in `stream`, signed with `key`.
    pub fn cursor(&self, stream: &str, key: &[u8]) -> String {
        self.token
            .get_or_init(|| Cursor { stream: stream.to_owned(), seq: self.seq, time_ms: self.time_ms }.encode(key))
            .clone()
    }
}

/// What following a log returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Followed {
    /// The entries accepted, oldest first.
    pub entries: Vec<Arc<LogEntry>>,
    /// The position reached: every entry up to it was seen (accepted or passed over).
    pub position: u64,
    /// The time of the entry at that position (0 when nothing was read).
    pub position_time_ms: i64,
}

fn expired(what: &str) -> Error {
    Error::CursorExpired(format!(
        "{what} is older than the events kept; watch again from a point in time (bk_start_from) or from now (no cursor)"
    ))
}

impl Engine {
    /// Wakes the watchers of a stream after entries were appended to it in this process (when the
    /// store reports its appends, the report has woken them already).
    pub(crate) fn notify_log(&self, stream: &str) {
        if !self.tails().complete()
            && let Some(tail) = self.tails().existing(stream)
        {
            tail.notify.notify_waiters();
        }
    }

    /// The server's secret key (cursors are signed with it), created on first use.
    pub async fn server_secret(&self) -> Result<Vec<u8>> {
        self.secret_cell()
            .get_or_try_init(|| async {
                loop {
                    if let Some(item) = self.store().get(keys::META, keys::SERVER_SECRET).await?
                        && let Some(key) =
                            item.data.get("key").and_then(Value::as_str).and_then(|k| hex::decode(k).ok())
                    {
                        return Ok(key);
                    }
                    let key: [u8; 32] = rand::random();
                    let item =
                        Item::new(keys::META, keys::SERVER_SECRET, serde_json::json!({ "key": hex::encode(key) }));
                    match self.store().put(item, Cond::Absent).await {
                        Ok(()) => return Ok(key.to_vec()),
                        Err(StoreError::ConditionFailed { .. }) => continue,
                        Err(e) => return Err(Error::from(e)),
                    }
                }
            })
            .await
            .cloned()
    }

    /// The token of a position in a stream.
    pub async fn encode_cursor(&self, cursor: &Cursor) -> Result<String> {
        Ok(cursor.encode(&self.server_secret().await?))
    }

    /// The position a cursor token names, checked: issued by this service, for `stream`, and not
    /// older than `retention`. Errors name `field`.
    pub async fn decode_cursor(&self, field: &str, token: &str, stream: &str, retention: Duration) -> Result<Cursor> {
        let cursor = Cursor::decode(token, &self.server_secret().await?).map_err(|e| match e {
            CursorError::Malformed | CursorError::Forged => Error::invalid(field, e.to_string()),
        })?;
        if cursor.stream != stream {
            return Err(Error::invalid(field, "belongs to another resource or tenant"));
        }
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        if cursor.time_ms.saturating_add(retention_ms) < self.now_ms() {
            return Err(expired(field));
        }
        Ok(cursor)
    }

    /// The position before the first entry written at or after `time_ms`.
    pub async fn log_position_at(&self, stream: &str, time_ms: i64, retention: Duration) -> Result<u64> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        if time_ms.saturating_add(retention_ms) < self.now_ms() {
            return Err(expired("the start time"));
        }
        let head = self.store().log_head(stream).await?;
        // Entries are in time order (up to clock skew between writers, of no consequence at the
        // granularity clients ask for); missing ones have expired, so they are older.
        let (mut low, mut high) = (1u64, head + 1);
        while low < high {
            let mid = low + (high - low) / 2;
            let entry = self.store().get(stream, &crate::ports::store::log_sk(mid)).await?;
            let time = entry.as_ref().and_then(|e| e.data.get("time_ms")).and_then(Value::as_i64);
            if time.is_none_or(|t| t < time_ms) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok(low - 1)
    }

    /// The current end of a stream.
    pub async fn log_end(&self, stream: &str) -> Result<u64> {
        Ok(self.store().log_head(stream).await?)
    }

    /// Entries after `after`, contiguous, at most `limit`. Fails with `CursorExpired` when the next
    /// entry is gone.
    async fn read_log(&self, stream: &str, tail: &Stream, after: u64, limit: usize) -> Result<Vec<Arc<LogEntry>>> {
        let mut items = self.store().query(Query::log(stream, after + 1, u64::MAX, limit)).await?.items;
        if items.is_empty() {
            // Maybe nothing was written, maybe what was written is gone: the head tells.
            let head = self.store().log_head(stream).await?;
            self.tails().saw_head(tail, head);
            if head <= after {
                return Ok(Vec::new());
            }
            items = self.store().query(Query::log(stream, after + 1, u64::MAX, limit)).await?.items;
        }
        let mut entries = Vec::with_capacity(items.len());
        let mut expect = after + 1;
        for item in items {
            let Some(seq) = parse_log_sk(&item.sk) else { continue };
            if seq != expect {
                // The entry at `expect` is gone; stop before the gap (the next read reports it).
                break;
            }
            let time_ms = item.data.get("time_ms").and_then(Value::as_i64).unwrap_or_default();
            entries.push(Arc::new(LogEntry::new(seq, time_ms, item.data)));
            expect += 1;
        }
        if entries.is_empty() {
            return Err(expired("the cursor"));
        }
        Ok(entries)
    }

    /// Follows a stream from position `after`: returns as soon as `accept` takes at least one entry
    /// (at most `limit`), or when `wait` has passed. Entries `accept` refuses still move the
    /// position on.
    pub async fn follow_log(
        &self,
        stream: &str,
        after: u64,
        wait: Duration,
        limit: usize,
        accept: impl Fn(&LogEntry) -> bool,
    ) -> Result<Followed> {
        let deadline = tokio::time::Instant::now() + wait;
        let tail = self.tails().stream(stream);
        let mut followed = Followed { entries: Vec::new(), position: after, position_time_ms: 0 };
        loop {
            let woken = tail.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let entries = match self.tails().after(&tail, followed.position, SCAN, self.now_secs()) {
                Known::Entries(entries) => entries,
                Known::UpToDate => Vec::new(),
                Known::Unknown => self.read_log(stream, &tail, followed.position, SCAN).await?,
            };
            let more = entries.len() == SCAN;
            for entry in entries {
                followed.position = entry.seq;
                followed.position_time_ms = entry.time_ms;
                if accept(&entry) {
                    followed.entries.push(entry);
                    if followed.entries.len() >= limit {
                        return Ok(followed);
                    }
                }
            }
            if !followed.entries.is_empty() {
                return Ok(followed);
            }
            if more {
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(followed);
            }
            let poll = deadline.min(now + self.config().watch.poll);
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(poll) => {}
            }
        }
    }
}
