//! Publishing (spec 5.3.4 PutEvents), checking what publishing would do (5.3.6 CheckPutEvents)
//! and pull delivery.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{message, status_and_code};
use super::{Auth, EgError, EgJson, Path};
use crate::api::extract::Body;
use std::time::Duration;

use crate::api::extract::Params;
use crate::engine::Engine;
use crate::engine::check::{Checked, Judgement};
use crate::engine::pull::{MAX_PULL, PullStart};
use crate::error::Error;
use crate::model::channel::default_channel_id;

/// The PutEvents body.
#[derive(Debug, Default, Deserialize)]
pub struct PutEventsBody {
    /// The CloudEvents to publish.
    #[serde(default)]
    pub events: Vec<Value>,
}

/// PutEvents: per-event results, `failed_count`; status 200 even when some events fail.
pub async fn put(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    Body(body, _): EgJson<PutEventsBody>,
) -> Result<Json<Value>, EgError> {
    let result = engine.put_events(&auth.project, path.get("channel_id"), body.events).await?;
    let events: Vec<Value> = result
        .events
        .into_iter()
        .map(|o| match o.error {
            None => json!({ "event_id": o.event_id }),
            Some(e) => json!({ "event_id": o.event_id, "error_code": status_and_code(&e).1, "error_msg": message(&e) }),
        })
        .collect();
    Ok(Json(json!({ "failed_count": result.failed_count, "events": events })))
}

/// Events per pull when the client names no `limit`.
const DEFAULT_PULL: usize = 100;

/// `GET /v1/{project_id}/channels/{channel_id}/events?cursor=&start_time=&wait=&limit=`: pull
/// delivery. Starts after `cursor`, else at `start_time` (ms since the epoch), else now; waits up
/// to `wait` seconds (at most 20) for the first event; answers `{"events", "size", "cursor"}`.
pub async fn pull(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    params: Params,
) -> Result<Json<Value>, EgError> {
    let start =
        match (params.get("cursor").filter(|c| !c.is_empty()), params.get("start_time").filter(|t| !t.is_empty())) {
            (Some(c), _) => PullStart::Cursor(c.to_owned()),
            (None, Some(t)) => PullStart::Time(
                t.parse().map_err(|_| Error::invalid("start_time", "must be milliseconds since the epoch"))?,
            ),
            (None, None) => PullStart::Now,
        };
    let wait = match params.get("wait") {
        Some(w) => Duration::from_secs(
            w.parse::<u64>()
                .ok()
                .filter(|w| *w <= 20)
                .ok_or_else(|| Error::invalid("wait", "must be 0 to 20 seconds"))?,
        ),
        None => engine.config().watch.wait,
    };
    let limit = match params.get("limit") {
        Some(l) => {
            l.parse().map_err(|_| Error::invalid("limit", format!("must be an integer from 1 to {MAX_PULL}")))?
        }
        None => DEFAULT_PULL,
    };
    let pulled = engine.pull_channel_events(&auth.project, path.get("channel_id"), start, wait, limit).await?;
    Ok(Json(json!({ "size": pulled.events.len(), "events": pulled.events, "cursor": pulled.cursor })))
}

/// A source to check (CheckPutEvents `sources[]`).
#[derive(Debug, Default, Deserialize)]
pub struct SourceToCheck {
    /// The channel (the project's `default` channel when absent).
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The event source name (required).
    #[serde(default)]
    pub source_name: Option<String>,
}

/// The CheckPutEvents body: the specification's `sources`, and events (as PutEvents takes them)
/// to check against `channel_id`.
#[derive(Debug, Default, Deserialize)]
pub struct CheckBody {
    /// Sources to check.
    #[serde(default)]
    pub sources: Option<Vec<SourceToCheck>>,
    /// The channel the events would be published to (the `default` channel when absent).
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Events to check.
    #[serde(default)]
    pub events: Option<Vec<Value>>,
}

/// The verdict fields of a check, with each subscription of the source judged.
fn check_fields(c: &Checked) -> Value {
    let subscriptions: Vec<Value> = c
        .candidates
        .iter()
        .map(|s| {
            json!({
                "subscription_id": s.subscription_id,
                "subscription_name": s.subscription_name,
                "status": s.status.as_str(),
                "filter": s.filter,
                "result": s.judgement.as_str(),
                "matched": s.judgement == Judgement::Matched,
            })
        })
        .collect();
    json!({
        "check_result": c.routed(),
        "check_detail": c.detail,
        "reason": c.verdict.as_str(),
        "subscriptions": subscriptions,
    })
}

/// Merges `extra`'s fields into `base`.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The checks of the body's sources, each on its channel (the `default` one when absent).
async fn check_sources(engine: &Engine, project: &str, sources: Vec<SourceToCheck>) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(sources.len());
    for (i, s) in sources.into_iter().enumerate() {
        let source = s
            .source_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::invalid(format!("sources[{i}].source_name"), "is required"))?;
        let channel = s.channel_id.filter(|c| !c.is_empty()).unwrap_or_else(|| default_channel_id(project));
        let checked = engine.check_source(project, &channel, &source).await?;
        out.push(with(json!({ "channel_id": channel, "source_name": source }), check_fields(&checked)));
    }
    Ok(out)
}

/// The checks of the body's events against one channel.
async fn check_events(engine: &Engine, project: &str, channel: &str, events: Vec<Value>) -> Result<Vec<Value>, Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Value> = events.iter().map(|e| e.get("id").cloned().unwrap_or(json!(""))).collect();
    let checked = engine.check_events(project, channel, events).await?;
    let invalid = status_and_code(&Error::invalid("", "")).1;
    Ok(ids
        .into_iter()
        .zip(&checked)
        .map(|(id, c)| {
            let fields = match &c.field {
                Some(field) => json!({ "event_id": id, "field": field, "error_code": invalid }),
                None => json!({ "event_id": id }),
            };
            with(fields, check_fields(c))
        })
        .collect())
}

/// CheckPutEvents: for each source, whether a running subscription on its channel listens to
/// it; for each event, whether publishing it to `channel_id` would route it anywhere, and why
/// not. Nothing is stored or delivered. `failed_count` counts the sources and events that would
/// go nowhere.
pub async fn check(
    State(engine): State<Engine>,
    auth: Auth,
    Body(body, _): EgJson<CheckBody>,
) -> Result<Json<Value>, EgError> {
    let sources = check_sources(&engine, &auth.project, body.sources.unwrap_or_default()).await?;
    let channel = body.channel_id.filter(|c| !c.is_empty()).unwrap_or_else(|| default_channel_id(&auth.project));
    let events = check_events(&engine, &auth.project, &channel, body.events.unwrap_or_default()).await?;
    let failed = sources.iter().chain(&events).filter(|c| c["check_result"] == false).count();
    Ok(Json(json!({ "failed_count": failed, "sources": sources, "events": events })))
}
