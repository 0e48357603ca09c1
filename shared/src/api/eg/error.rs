//! The event grid dialect's error envelope: `{"error_code": "EG.005xxxxx", "error_msg": …}` with
//! the HTTP status of the specification's error table. Credentials are checked by the gateway in
//! that API, so their failures use the gateway's `APIGW.0301`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::api::error::log_internal;
use crate::error::Error;

/// An engine error rendered for the event grid dialect.
#[derive(Debug)]
pub struct EgError(pub Error);

impl From<Error> for EgError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// The status and code of an error, per the specification's table.
pub fn status_and_code(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "EG.00513000"),
        Error::NameTaken { .. } => (StatusCode::BAD_REQUEST, "EG.00513001"),
        Error::InvalidTarget { .. } => (StatusCode::BAD_REQUEST, "EG.00513003"),
        Error::InvalidFilter { .. } => (StatusCode::BAD_REQUEST, "EG.00513004"),
        Error::CursorExpired(_) => (StatusCode::BAD_REQUEST, "EG.00513000"),
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "APIGW.0301"),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "EG.00512000"),
        Error::QuotaExceeded { .. } => (StatusCode::FORBIDDEN, "EG.00514003"),
        Error::ReadOnly { .. } => (StatusCode::FORBIDDEN, "EG.00514004"),
        Error::NotFound { .. } => (StatusCode::NOT_FOUND, "EG.00514001"),
        Error::InUse { .. } => (StatusCode::CONFLICT, "EG.00514002"),
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "EG.00511001"),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "EG.00511000"),
    }
}

/// The message shown to the client.
pub fn message(e: &Error) -> String {
    match e {
        Error::Internal(_) => "internal server error".to_owned(),
        Error::Unavailable(_) => "service unavailable; retry later".to_owned(),
        other => other.to_string(),
    }
}

impl IntoResponse for EgError {
    fn into_response(self) -> Response {
        log_internal(&self.0);
        let (status, code) = status_and_code(&self.0);
        (status, Json(json!({ "error_code": code, "error_msg": message(&self.0) }))).into_response()
    }
}

/// The response to a panic in an event grid handler.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    EgError(Error::internal("panic")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GIVEN an invalid filter, WHEN the dialect renders it, THEN it is a 400 `EG.00513004` whose
    /// message names the key and the operator.
    #[test]
    fn invalid_filters_are_eg_00513004() {
        let filter = serde_json::json!({ "data": { "n": [{ "op": "Nope", "values": [1] }] } });
        let e = crate::engine::filter::Filter::compile("sources[0].filter", &filter).unwrap_err();
        assert_eq!(status_and_code(&e), (StatusCode::BAD_REQUEST, "EG.00513004"));
        assert_eq!(message(&e), "sources[0].filter.data.n[0].op: unknown operator Nope");
    }
}
