//! The CMDB dialect (specs `000`/`001`): the resource API that makes changes, and the resource
//! watch that reads them, in the CMDB envelope.
//!
//! The tenant is the supplier account: `bk_supplier_account` in the body (or query), else the
//! `HTTP_BLUEKING_SUPPLIER_ID` header, else `0`. It shares the event grid's namespace of project
//! ids: a project token for `0` acts as supplier account `0`. Besides `X-Auth-Token` and
//! `Authorization: Bearer`, a token is accepted as `bk_app_secret` (in the body, or in the
//! `X-Bkapi-Authorization` header), where BlueKing clients put their credential.

pub mod error;
pub mod resources;
pub mod watch;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderMap;
use serde_json::Value;

pub use error::CmdbError;

use crate::api::extract::token_of_headers;
use crate::engine::Engine;
use crate::engine::auth::Principal;
use crate::error::{Error, Result};

/// Fields BlueKing clients send with every call, which are not resource fields.
const CALL_FIELDS: &[&str] = &["bk_app_code", "bk_app_secret", "bk_username", "bk_token", "bk_supplier_account"];

/// The supplier account of a call.
pub fn tenant(headers: &HeaderMap, body: Option<&Value>, query: Option<&str>) -> String {
    let from_body = body.and_then(|b| b.get("bk_supplier_account")).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let from_header = ["HTTP_BLUEKING_SUPPLIER_ID", "http-blueking-supplier-id", "bk-supplier-account"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()));
    from_body
        .or(query.filter(|q| !q.is_empty()).map(str::to_owned))
        .or(from_header.map(str::to_owned))
        .unwrap_or_else(|| "0".into())
}

/// The caller, allowed to act for `tenant`.
pub async fn authorize(engine: &Engine, headers: &HeaderMap, body: Option<&Value>, tenant: &str) -> Result<Principal> {
    let mut token = token_of_headers(headers);
    if token.is_empty()
        && let Some(secret) = body.and_then(|b| b.get("bk_app_secret")).and_then(Value::as_str)
    {
        secret.clone_into(&mut token);
    }
    let principal = engine.authenticate(&token).await?;
    principal
        .authorize(tenant)
        .map_err(|_| Error::Forbidden(format!("this token may not act for supplier account {tenant}")))?;
    Ok(principal)
}

/// A body's resource fields (the call's own fields taken out).
pub fn resource_fields(body: Value) -> Result<serde_json::Map<String, Value>> {
    let Value::Object(mut fields) = body else { return Err(Error::invalid("body", "must be a JSON object")) };
    for f in CALL_FIELDS {
        fields.remove(*f);
    }
    Ok(fields)
}

tokio::task_local! {
    /// The id of the request being answered, for its envelope.
    static REQUEST_ID: String;
}

/// The id of the request being answered (empty outside [`fill_request_id`]).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Runs a CMDB handler knowing its request's id (the `X-Request-Id` header), which its envelope
/// carries as `request_id`.
pub async fn fill_request_id(request: Request, next: Next) -> Response {
    let id = request.headers().get(crate::api::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    REQUEST_ID.scope(id, next.run(request)).await
}
