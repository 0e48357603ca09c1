//! Event traces (spec 5.3.1 ShowDetailOfEventTrace, 5.3.2 ShowDetailOfEvent, 5.3.3
//! ListTracedEvents). The trace operations use the field names the specification gives them,
//! camelCase in the trace detail included.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{Auth, EgError, Path};
use crate::api::extract::Params;
use crate::engine::Engine;
use crate::engine::trace::{Attempt, AttemptStatus};
use crate::engine::traces::{DeliveryState, SubscriptionTrace, TraceQuery, TracedRow};
use crate::error::{Error, Result};
use crate::model::format_time;
use crate::model::validate::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

/// A required, non-empty query parameter.
fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str> {
    params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| Error::invalid(name, "is required"))
}

/// An optional, non-empty query parameter.
fn optional(params: &Params, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A time in milliseconds since the epoch.
fn millis(params: &Params, name: &str) -> Result<i64> {
    required(params, name)?
        .parse()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| Error::invalid(name, "must be milliseconds since the epoch"))
}

/// The ListTracedEvents query; each error names its parameter.
pub fn trace_query(params: &Params) -> Result<TraceQuery> {
    let channel_id = required(params, "channel_id")?.to_owned();
    let (start_ms, end_ms) = (millis(params, "start_time")?, millis(params, "end_time")?);
    let offset = match optional(params, "offset") {
        Some(o) => o.parse().map_err(|_| Error::invalid("offset", "must be an integer of at least 0"))?,
        None => 0,
    };
    let limit = match optional(params, "limit") {
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| *l <= MAX_PAGE_LIMIT)
            .ok_or_else(|| Error::invalid("limit", format!("must be an integer from 0 to {MAX_PAGE_LIMIT}")))?,
        None => DEFAULT_PAGE_LIMIT,
    };
    Ok(TraceQuery {
        channel_id,
        start_ms,
        end_ms,
        event_id: optional(params, "event_id"),
        source_name: optional(params, "source_name"),
        event_type: optional(params, "event_type"),
        subscription_name: optional(params, "subscription_name"),
        offset,
        limit,
    })
}

/// A row of the list (the spec's `result` object, with the trace id and subscription id).
fn row(r: TracedRow) -> Value {
    let (subscription_id, subscription_name) = r.subscription.map_or((None, String::new()), |(id, n)| (Some(id), n));
    json!({
        "trace_id": r.trace_id,
        "event_id": r.event.event_id,
        "source_name": r.event.source,
        "source_provider": "CUSTOM",
        "event_type": r.event.event_type,
        "event_received_time": r.event.received_ms,
        "subscription_name": subscription_name,
        "subscription_id": subscription_id,
    })
}

/// ListTracedEvents: `{"total","size","result"}` as the specification has it, with the same rows
/// under `items` as every other list.
pub async fn list(State(engine): State<Engine>, auth: Auth, params: Params) -> Result<Json<Value>, EgError> {
    let q = trace_query(&params)?;
    let listing = engine.list_traced_events(&auth.project, &q).await?;
    let rows: Vec<Value> = listing.items.into_iter().map(row).collect();
    Ok(Json(json!({ "total": listing.total, "size": rows.len(), "result": rows, "items": rows })))
}

/// One attempt (DeliverDetail).
fn detail(a: Attempt) -> Value {
    let status = if a.status == AttemptStatus::Success { "SUCCESS" } else { "FAILED" };
    json!({
        "deliverTime": format_time(a.time_ms),
        "deliverStatus": status,
        "deliverConsuming": a.duration_ms.to_string(),
        "deliverRspCode": a.response_code.map(|c| c.to_string()).unwrap_or_default(),
        "deliverAttempt": a.attempt,
        "deliverErrorReason": a.error.unwrap_or_default(),
        "deadLettered": a.dead_lettered,
    })
}

/// One subscription's deliveries (DeliverItem).
fn deliver_item(s: SubscriptionTrace) -> Value {
    let (success, failed, attempts) = (s.count(DeliveryState::Success), s.count(DeliveryState::Failed), s.attempts());
    let targets: Vec<Value> = s
        .targets
        .into_iter()
        .map(|t| {
            json!({
                "deliverTargetId": t.target_id,
                "deliverTargetName": t.target_name,
                "deliverStatus": t.state.as_str(),
                "deliverDetailList": t.attempts.into_iter().map(detail).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "subscriptionId": s.subscription_id,
        "subscriptionName": s.subscription_name,
        "successCounts": success,
        "failCounts": failed,
        "allDeliverTimes": attempts,
        "deliverTargetList": targets,
    })
}

/// ShowDetailOfEventTrace: where the event was routed, and every delivery attempt.
pub async fn show_trace(
    State(engine): State<Engine>,
    auth: Auth,
    path: Path,
    params: Params,
) -> Result<Json<Value>, EgError> {
    let channel_id = required(&params, "channel_id")?;
    let trace = engine.event_trace(&auth.project, channel_id, path.get("trace_id")).await?;
    Ok(Json(json!({
        "traceId": trace.trace_id,
        "eventId": trace.event.event_id,
        "eventSource": trace.event.source,
        "eventType": trace.event.event_type,
        "receiveTime": format_time(trace.event.received_ms),
        "channelId": trace.channel.id,
        "channelName": trace.channel.name,
        "deliverList": trace.deliveries.into_iter().map(deliver_item).collect::<Vec<_>>(),
    })))
}

/// ShowDetailOfEvent: the CloudEvent as it was published.
pub async fn show_event(State(engine): State<Engine>, auth: Auth, path: Path) -> Result<Json<Value>, EgError> {
    Ok(Json(engine.traced_event_content(&auth.project, path.get("trace_id")).await?))
}
