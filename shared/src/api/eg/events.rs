//! Publishing (spec 5.3.4 PutEvents).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{message, status_and_code};
use super::{Auth, EgError, EgJson, Path};
use crate::api::extract::Body;
use crate::engine::Engine;

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
