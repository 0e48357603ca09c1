//! The CMDB dialect's envelope: `{"result","code","message","permission","request_id","data"}`.
//! Errors use BlueKing CMDB's codes, so that existing clients recognise them: notably `1103007`
//! (the cursor's event no longer exists: watch again from a time or from now). As in CMDB, a
//! refused request is answered with HTTP 200 and `result: false`, except credentials (401/403) and
//! server failures (500/503).

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::api::error::log_internal;
use crate::error::Error;

/// The CMDB code of a watch cursor whose event is gone (`CCErrEventChainNodeNotExist`).
pub const CURSOR_EXPIRED: i64 = 1_103_007;

/// An engine error rendered for the CMDB dialect.
#[derive(Debug)]
pub struct CmdbError(pub Error);

impl From<Error> for CmdbError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// The HTTP status and CMDB code of an error.
pub fn status_and_code(e: &Error) -> (StatusCode, i64) {
    match e {
        Error::Invalid { field, .. } if field == "body" => (StatusCode::OK, 1_199_000),
        Error::Invalid { .. } | Error::InvalidFilter { .. } | Error::InvalidTarget { .. } => {
            (StatusCode::OK, 1_199_006)
        }
        Error::NameTaken { .. } => (StatusCode::OK, 1_199_014),
        Error::QuotaExceeded { .. } => (StatusCode::OK, 1_199_015),
        Error::NotFound { .. } => (StatusCode::OK, 1_199_019),
        Error::ReadOnly { .. } => (StatusCode::OK, 1_199_054),
        Error::InUse { .. } => (StatusCode::OK, 1_199_056),
        Error::CursorExpired(_) => (StatusCode::OK, CURSOR_EXPIRED),
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, 1_199_048),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, 1_199_047),
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, -1),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 1_199_999),
    }
}

/// The CMDB envelope, for answers and refusals alike.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    result: bool,
    code: i64,
    message: Cow<'static, str>,
    permission: Option<Value>,
    request_id: String,
    data: T,
}

impl<T> Envelope<T> {
    fn new(code: i64, message: Cow<'static, str>, data: T) -> Self {
        Self { result: code == 0, code, message, permission: None, request_id: super::request_id(), data }
    }
}

/// A successful envelope around `data`.
pub fn ok<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope::new(0, Cow::Borrowed("success"), data))
}

impl IntoResponse for CmdbError {
    fn into_response(self) -> Response {
        log_internal(&self.0);
        let (status, code) = status_and_code(&self.0);
        let message = crate::api::eg::error::message(&self.0);
        (status, Json(Envelope::new(code, Cow::Owned(message), Value::Null))).into_response()
    }
}

/// The response to a panic in a CMDB handler.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    CmdbError(Error::internal("panic")).into_response()
}
