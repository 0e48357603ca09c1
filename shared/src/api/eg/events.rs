//! Publishing (spec 5.3.4 PutEvents).

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
use crate::engine::pull::{MAX_PULL, PullStart};
use crate::error::Error;

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
