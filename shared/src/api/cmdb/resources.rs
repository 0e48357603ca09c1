//! The resource API: create, merge-update, delete, show and list CMDB resources, and transfer hosts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use http::HeaderMap;
use serde_json::{Value, json};

use super::error::{Envelope, ok};
use super::{CmdbError, authorize, resource_fields, tenant};
use crate::api::extract::{Params, PathParams, parse_json};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::cmdb::Kind;

/// Path parameters with CMDB rejections.
pub type Path = PathParams<CmdbError>;

/// Page size when the client names none.
const DEFAULT_LIMIT: usize = 20;
/// Largest page.
const MAX_LIMIT: usize = 500;

/// The resource kind a path names.
pub fn kind_of(name: &str) -> Result<Kind> {
    Kind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = crate::model::cmdb::ALL_KINDS.iter().map(|k| k.as_str()).collect();
        Error::invalid("bk_resource", format!("unknown resource {name:?}; one of {}", known.join(", ")))
    })
}

fn id_of(path: &Path) -> Result<u64> {
    path.get("id").parse().ok().filter(|id| *id > 0).ok_or_else(|| Error::invalid("id", "must be a positive integer"))
}

/// Parses the body, then checks the caller for the tenant it names (a malformed body is reported
/// only to a caller with a valid credential).
async fn caller_body(engine: &Engine, headers: &HeaderMap, params: &Params, body: &[u8]) -> Result<(String, Value)> {
    let parsed: Result<Value> = parse_json(body);
    let tenant = tenant(headers, parsed.as_ref().ok(), params.get("bk_supplier_account"));
    authorize(engine, headers, parsed.as_ref().ok(), &tenant).await?;
    Ok((tenant, parsed?))
}

/// `POST /api/v3/resources/{bk_resource}`: creates a resource; `data` is it, with its id.
pub async fn create(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
    body: Bytes,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let (tenant, body) = caller_body(&engine, &headers, &params, &body).await?;
    let kind = kind_of(path.get("bk_resource"))?;
    Ok(ok(engine.create_resource(&tenant, kind, resource_fields(body)?).await?))
}

/// `PUT /api/v3/resources/{bk_resource}/{id}`: merges fields into a resource.
pub async fn update(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
    body: Bytes,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let (tenant, body) = caller_body(&engine, &headers, &params, &body).await?;
    let kind = kind_of(path.get("bk_resource"))?;
    Ok(ok(engine.update_resource(&tenant, kind, id_of(&path)?, resource_fields(body)?).await?))
}

/// `DELETE /api/v3/resources/{bk_resource}/{id}`.
pub async fn delete(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let tenant = tenant(&headers, None, params.get("bk_supplier_account"));
    authorize(&engine, &headers, None, &tenant).await?;
    engine.delete_resource(&tenant, kind_of(path.get("bk_resource"))?, id_of(&path)?).await?;
    Ok(ok(Value::Null))
}

/// `GET /api/v3/resources/{bk_resource}/{id}`.
pub async fn show(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let tenant = tenant(&headers, None, params.get("bk_supplier_account"));
    authorize(&engine, &headers, None, &tenant).await?;
    Ok(ok(engine.resource(&tenant, kind_of(path.get("bk_resource"))?, id_of(&path)?).await?))
}

/// `GET /api/v3/resources/{bk_resource}?start=&limit=`: `data` is `{"count", "info"}`.
pub async fn list(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    path: Path,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let tenant = tenant(&headers, None, params.get("bk_supplier_account"));
    authorize(&engine, &headers, None, &tenant).await?;
    let kind = kind_of(path.get("bk_resource"))?;
    let start = match params.get("start") {
        Some(s) => s.parse().map_err(|_| Error::invalid("start", "must be an integer of at least 0"))?,
        None => 0,
    };
    let limit = match params.get("limit") {
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| Error::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    let (count, info) = engine.list_resources(&tenant, kind, start, limit).await?;
    Ok(ok(json!({ "count": count, "info": info })))
}

/// `POST /api/v3/hosts/transfer` with `{bk_host_id, bk_biz_id, bk_set_id, bk_module_id}`: moves a
/// host; `data` is its new relation.
pub async fn transfer(
    State(engine): State<Engine>,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<Json<Envelope<Value>>, CmdbError> {
    let (tenant, body) = caller_body(&engine, &headers, &params, &body).await?;
    let id = |field: &str| {
        body.get(field)
            .and_then(Value::as_u64)
            .filter(|v| *v > 0)
            .ok_or_else(|| Error::invalid(field, "must be a positive integer id"))
    };
    let (host, biz, set, module) = (id("bk_host_id")?, id("bk_biz_id")?, id("bk_set_id")?, id("bk_module_id")?);
    Ok(ok(engine.transfer_host(&tenant, host, biz, set, module).await?))
}
