//! The event grid dialect (spec `003`): paths under `/v1/{project_id}/…`, plain JSON bodies, list
//! responses `{"total","size","items"}`, times as `2021-12-09 09:00:00` (UTC), errors
//! `{"error_code","error_msg"}`.

pub mod channels;
pub mod error;
pub mod events;
pub mod subscriptions;
pub mod targets;
pub mod traces;

use serde_json::{Value, json};

pub use error::EgError;

use super::extract::{Body, Params, PathParams, ProjectAuth};
use crate::engine::list::{ListQuery, Listing};
use crate::error::Result;

/// A caller allowed in the path's project, with event grid rejections.
pub type Auth = ProjectAuth<EgError>;
/// A JSON body with event grid rejections.
pub type EgJson<T> = Body<T, EgError>;
/// Path parameters with event grid rejections.
pub type Path = PathParams<EgError>;

/// The common list parameters of a query string.
pub fn list_query(p: &Params) -> Result<ListQuery> {
    ListQuery::parse(p.get("offset"), p.get("limit"), p.get("sort"), p.get("name"), p.get("fuzzy_name"))
}

/// A list response.
pub fn list_body<T>(listing: Listing<T>, render: impl Fn(T) -> Value) -> Value {
    let items: Vec<Value> = listing.items.into_iter().map(render).collect();
    json!({ "total": listing.total, "size": items.len(), "items": items })
}
