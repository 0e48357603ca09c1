//! The engine's one error type. Every dialect maps it once to its own envelope
//! (`api::eg::error`, …); the ports' errors convert into it in one place each.

use crate::ports::{QueueError, StoreError};

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field failed validation; the message names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path, e.g. `targets[0].detail.url`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A subscription filter is invalid; the message names the key and operator.
    #[error("{field}: {reason}")]
    InvalidFilter {
        /// The filter key's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A target address is invalid or not allowed.
    #[error("{field}: {reason}")]
    InvalidTarget {
        /// The field holding the address.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A name that must be unique is taken.
    #[error("{kind} name {name} is already used")]
    NameTaken {
        /// What kind of resource.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The resource does not exist (in this tenant).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of resource.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The resource is bound to others and cannot be deleted or changed so.
    #[error("{kind} {id} is in use: {reason}")]
    InUse {
        /// What kind of resource.
        kind: &'static str,
        /// Its id.
        id: String,
        /// By what.
        reason: String,
    },
    /// The resource is managed by the system and may not be modified.
    #[error("{kind} {id} may not be modified: {reason}")]
    ReadOnly {
        /// What kind of resource.
        kind: &'static str,
        /// Its id.
        id: String,
        /// Why.
        reason: String,
    },
    /// No valid credential.
    #[error("{0}")]
    Unauthorized(String),
    /// The credential does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A per-tenant limit is reached.
    #[error("{kind} quota of {limit} reached")]
    QuotaExceeded {
        /// What is counted.
        kind: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A watch cursor is older than the change log keeps; the client must restart from a time or
    /// from now.
    #[error("{0}")]
    CursorExpired(String),
    /// A backend is overloaded or unreachable; the request may be retried.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged with its cause, never shown to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Shorthand for results of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error of `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }

    /// A filter error of `field`.
    pub fn filter(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidFilter { field: field.into(), reason: reason.into() }
    }

    /// A target address error of `field`.
    pub fn target(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidTarget { field: field.into(), reason: reason.into() }
    }

    /// A missing resource.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { kind, id: id.into() }
    }

    /// An internal error with a message.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Invalid(m) => Error::Internal(anyhow::anyhow!("store refused a request: {m}")),
            other => Error::Internal(other.into()),
        }
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => Error::Unavailable(m),
            other => Error::Internal(other.into()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(e.into())
    }
}
