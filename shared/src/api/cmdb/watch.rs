//! The resource watch, in both forms existing clients call: `POST /api/v3/event/watch/resource/
//! {bk_resource}` and the gateway form `POST /api/c/compapi/v2/cc/resource_watch/` (with
//! `bk_resource` in the body).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::error::{Envelope, ok};
use super::resources::{Path, kind_of};
use super::{CmdbError, authorize, tenant};
use crate::api::extract::{Params, parse_json};
use crate::engine::Engine;
use crate::engine::cmdb::watch::{WatchAnswer, WatchRequest, WatchStart};
use crate::error::{Error, Result};
use crate::model::cmdb::EventType;

fn strings(body: &Value, field: &str) -> Result<Vec<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| Error::invalid(format!("{field}[{i}]"), "must be a string"))
            })
            .collect(),
        Some(_) => Err(Error::invalid(field, "must be a list of strings")),
    }
}

/// Reads a watch request body.
fn request(engine: &Engine, tenant: String, resource: &str, body: &Value) -> Result<WatchRequest> {
    if !body.is_object() {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    let kind = kind_of(resource)?;
    let event_types = strings(body, "bk_event_types")?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            EventType::parse(t)
                .ok_or_else(|| Error::invalid(format!("bk_event_types[{i}]"), "must be create, update or delete"))
        })
        .collect::<Result<_>>()?;
    let fields = strings(body, "bk_fields")?;
    let cursor = match body.get("bk_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.is_empty() => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => return Err(Error::invalid("bk_cursor", "must be a string")),
    };
    let start_from = match body.get("bk_start_from") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(0) => None,
            Some(secs) if secs > 0 => Some(secs),
            _ => return Err(Error::invalid("bk_start_from", "must be Unix seconds")),
        },
    };
    let sub_resource = match body.get("bk_filter") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => match f.get("bk_sub_resource") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(Error::invalid("bk_filter.bk_sub_resource", "must be a model id")),
        },
        Some(_) => return Err(Error::invalid("bk_filter", "must be an object")),
    };
    let start = match (cursor, start_from) {
        (Some(c), _) => WatchStart::Cursor(c),
        (None, Some(secs)) => WatchStart::Time(secs),
        (None, None) => WatchStart::Now,
    };
    Ok(WatchRequest { tenant, kind, event_types, fields, start, sub_resource, wait: engine.config().watch.wait })
}

/// A watch answer as the CMDB renders it.
#[derive(Serialize)]
pub struct Rendered {
    bk_watched: bool,
    bk_events: Vec<RenderedEvent>,
}

/// One event of a watch answer.
#[derive(Serialize)]
struct RenderedEvent {
    bk_cursor: String,
    bk_resource: &'static str,
    bk_event_type: &'static str,
    bk_detail: Option<Value>,
}

fn render(answer: WatchAnswer) -> Rendered {
    let bk_events = answer
        .events
        .into_iter()
        .map(|e| RenderedEvent {
            bk_cursor: e.cursor,
            bk_resource: e.kind.as_str(),
            bk_event_type: e.event_type.map_or("", EventType::as_str),
            bk_detail: e.detail,
        })
        .collect();
    Rendered { bk_watched: answer.watched, bk_events }
}

async fn watch_named(
    engine: &Engine,
    headers: &HeaderMap,
    params: &Params,
    resource: Option<&str>,
    body: &[u8],
) -> Result<Rendered> {
    let parsed: Result<Value> = parse_json(body);
    let tenant = tenant(headers, parsed.as_ref().ok(), params.get("bk_supplier_account"));
    authorize(engine, headers, parsed.as_ref().ok(), &tenant).await?;
    let body = parsed?;
    let resource = match resource {
        Some(r) => r.to_owned(),
        None => body
            .get("bk_resource")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("bk_resource", "is required"))?
            .to_owned(),
    };
    let request = request(engine, tenant, &resource, &body)?;
    Ok(render(engine.watch_resources(request).await?))
}

/// `POST /api/v3/event/watch/resource/{bk_resource}`.
pub async fn watch(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
    body: Bytes,
) -> Result<Json<Envelope<Rendered>>, CmdbError> {
    Ok(ok(watch_named(&engine, &headers, &params, Some(path.get("bk_resource")), &body).await?))
}

/// `POST /api/c/compapi/v2/cc/resource_watch/` (the gateway form: `bk_resource` in the body).
pub async fn watch_gateway(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<Json<Envelope<Rendered>>, CmdbError> {
    Ok(ok(watch_named(&engine, &headers, &params, None, &body).await?))
}
