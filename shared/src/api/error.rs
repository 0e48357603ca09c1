//! How an engine error reaches a client: each dialect renders [`crate::Error`] into its own
//! envelope, once, here and in its own module. Internal errors are logged with their cause and
//! never shown.

use crate::error::Error;

/// Logs an internal error with its cause chain (the client sees only a generic message).
pub fn log_internal(error: &Error) {
    if let Error::Internal(cause) = error {
        tracing::error!(error = %format!("{cause:#}"), "internal error");
    }
}
