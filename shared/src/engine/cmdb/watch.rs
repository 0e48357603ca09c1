//! The resource watch: a tenant's change events of one resource kind, by cursor, by start time, or
//! from now, with the semantics of the CMDB `resource_watch` API made precise:
//!
//! - start: the cursor if given, else `bk_start_from` (the first event at or after that second;
//!   older than the retention is the expired error), else now;
//! - `bk_event_types` keeps those types (none: all); `bk_fields` projects each event's detail
//!   (required for `host`); `bk_sub_resource` keeps one model's instances (instances only);
//! - answers as soon as one matching event exists, with at most [`MAX_EVENTS`], oldest first; when
//!   none comes within the wait, answers `bk_watched: false` with one event whose cursor continues
//!   after everything already passed over. Events filtered out still move the cursor on.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::cursor::Cursor;
use crate::engine::Engine;
use crate::engine::changelog::LogEntry;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::cmdb::{EventType, Kind};

/// Most events in one answer.
pub const MAX_EVENTS: usize = 200;

/// Where a watch starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// After the position of this cursor.
    Cursor(String),
    /// At the first event written at or after this Unix second.
    Time(i64),
    /// After the last event written so far.
    Now,
}

/// A watch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    /// The supplier account.
    pub tenant: String,
    /// Which resource.
    pub kind: Kind,
    /// Which event types (empty: all).
    pub event_types: Vec<EventType>,
    /// Which detail fields (empty: all).
    pub fields: Vec<String>,
    /// Where to start.
    pub start: WatchStart,
    /// Only instances of this model.
    pub sub_resource: Option<String>,
    /// How long to wait for an event (capped by the configuration).
    pub wait: Duration,
}

/// One event of an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedEvent {
    /// The position after this event.
    pub cursor: String,
    /// The resource kind.
    pub kind: Kind,
    /// What happened (`None` in a no-event answer).
    pub event_type: Option<EventType>,
    /// The resource (projected), or `None` in a no-event answer.
    pub detail: Option<Value>,
}

/// A watch answer.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchAnswer {
    /// Whether events came.
    pub watched: bool,
    /// The events, or the one continuation event when none came.
    pub events: Vec<WatchedEvent>,
}

fn project(detail: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return detail.clone();
    }
    let Some(doc) = detail.as_object() else { return detail.clone() };
    let kept: Map<String, Value> = fields.iter().filter_map(|f| doc.get(f).map(|v| (f.clone(), v.clone()))).collect();
    Value::Object(kept)
}

impl WatchRequest {
    fn check(&self) -> Result<()> {
        if self.kind == Kind::Host && self.fields.is_empty() {
            return Err(Error::invalid("bk_fields", "is required when watching host"));
        }
        if self.sub_resource.is_some() && !self.kind.has_model() {
            return Err(Error::invalid(
                "bk_filter.bk_sub_resource",
                "is only for object_instance and mainline_instance",
            ));
        }
        Ok(())
    }

    fn accepts(&self, entry: &LogEntry) -> bool {
        let kind = entry.data.get("type").and_then(Value::as_str).and_then(EventType::parse);
        let type_ok = self.event_types.is_empty() || kind.is_some_and(|k| self.event_types.contains(&k));
        let model_ok =
            self.sub_resource.as_deref().is_none_or(|m| entry.data.get("obj").and_then(Value::as_str) == Some(m));
        type_ok && model_ok
    }
}

impl Engine {
    /// Watches a tenant's change events of one resource kind.
    pub async fn watch_resources(&self, req: WatchRequest) -> Result<WatchAnswer> {
        req.check()?;
        let stream = keys::resource_log(&req.tenant, req.kind.as_str());
        let retention = self.config().retention.resource_events;
        let start = match &req.start {
            WatchStart::Cursor(token) => self.decode_cursor("bk_cursor", token, &stream, retention).await?.seq,
            WatchStart::Time(secs) => self.log_position_at(&stream, secs.saturating_mul(1000), retention).await?,
            WatchStart::Now => self.log_end(&stream).await?,
        };
        let wait = req.wait.min(self.config().watch.wait);
        let followed = self.follow_log(&stream, start, wait, MAX_EVENTS, |e| req.accepts(e)).await?;
        let key = self.server_secret().await?;
        let cursor = |seq: u64, time_ms: i64| Cursor { stream: stream.clone(), seq, time_ms }.encode(&key);
        if followed.entries.is_empty() {
            let time_ms = followed.position_time_ms.max(self.now_ms());
            let event = WatchedEvent {
                cursor: cursor(followed.position, time_ms),
                kind: req.kind,
                event_type: None,
                detail: None,
            };
            return Ok(WatchAnswer { watched: false, events: vec![event] });
        }
        let events = followed
            .entries
            .iter()
            .map(|e| WatchedEvent {
                cursor: e.cursor(&stream, &key),
                kind: req.kind,
                event_type: e.data.get("type").and_then(Value::as_str).and_then(EventType::parse),
                detail: Some(project(e.data.get("detail").unwrap_or(&Value::Null), &req.fields)),
            })
            .collect();
        Ok(WatchAnswer { watched: true, events })
    }
}
