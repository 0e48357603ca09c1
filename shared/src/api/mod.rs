//! The HTTP surface: the route table ([`ops`]), the shared extractors, and one module per dialect.
//! Dialects parse and validate their requests, call the engine and render their envelopes; no
//! business rule lives here.

pub mod cmdb;
pub mod eg;
pub mod error;
pub mod extract;
pub mod ops;
pub mod system;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use http::{HeaderName, Method, Uri};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::engine::Engine;
use crate::error::Error;
use ops::{Dialect, OPS, Op};

/// The header carrying each request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives each request a random UUID (v4) as its id, drawn from the thread's generator rather
/// than the operating system's (one system call per request otherwise).
#[derive(Clone, Copy, Debug, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        http::HeaderValue::from_str(id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))
            .ok()
            .map(RequestId::new)
    }
}

/// One operation's handler with its own body limit and panic envelope.
fn op_method_router(op: &Op) -> MethodRouter<Engine> {
    let route = (op.route)().layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(op.body_limit));
    match op.dialect {
        Dialect::EventGrid => route.layer(CatchPanicLayer::custom(eg::error::panic_response)),
        Dialect::Cmdb => route
            .layer(CatchPanicLayer::custom(cmdb::error::panic_response))
            .layer(axum::middleware::from_fn(cmdb::fill_request_id)),
    }
}

/// A router over some operations, with the layers every route shares.
fn router_of<'a>(ops: impl IntoIterator<Item = &'a Op>, engine: Engine) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter<Engine>> = BTreeMap::new();
    for op in ops {
        let handler = op_method_router(op);
        let merged = match by_path.remove(op.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(op.path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .with_state(engine)
}

/// Every operation: the local runner's router.
pub fn router(engine: Engine) -> Router {
    router_of(OPS, engine)
}

/// One operation: a Lambda function's router (routing the one path again costs nothing and keeps
/// the extractors exactly as they behave locally).
pub fn op_router(op: &Op, engine: Engine) -> Router {
    router_of([op], engine)
}

async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    let body = serde_json::json!({
        "error_code": "EG.00513000",
        "error_msg": format!("method {method} is not allowed on {}", uri.path()),
    });
    (http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

async fn not_found(method: Method, uri: Uri) -> axum::response::Response {
    let error = Error::not_found("route", format!("{method} {}", uri.path()));
    if uri.path().starts_with("/api/") {
        cmdb::CmdbError(error).into_response()
    } else {
        eg::error::EgError(error).into_response()
    }
}
