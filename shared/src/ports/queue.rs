//! The queue port: at-least-once message queues with delays, visibility timeouts and
//! dead-lettering, with SQS semantics.
//!
//! Contract, shared by both backends and checked by the conformance suite:
//! - `send_batch` stores every message or fails; a message with a delay is invisible until the
//!   delay has passed. A sent message survives a restart of the process.
//! - `receive` returns up to `max` visible messages (waiting up to `wait` for the first one) and
//!   hides each for `visibility`; each receive increments the message's receive count.
//! - A message that is not deleted becomes visible again when its visibility ends. When a queue has
//!   a dead-letter queue, a message received more than `max_receives` times moves there instead
//!   of being returned.
//! - `delete` removes a received message (deleting an already deleted one is not an error);
//!   `change_visibility` sets how long a received message stays hidden from now.
//! - A queue is named by its logical name; the AWS backend also accepts a queue URL. Naming a
//!   queue that does not exist fails with [`QueueError::NotFound`].

use std::time::Duration;

use async_trait::async_trait;

/// Largest message body, as SQS allows.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Longest delay of a send, as SQS allows.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// Longest visibility timeout, as SQS allows.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The body (UTF-8 text, JSON by convention).
    pub body: String,
    /// How long the message stays invisible after the send.
    pub delay: Duration,
}

impl Message {
    /// A message visible at once.
    pub fn now(body: impl Into<String>) -> Self {
        Self { body: body.into(), delay: Duration::ZERO }
    }
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Stable identity of the message.
    pub message_id: String,
    /// Handle for `delete` and `change_visibility` of this receipt.
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// How a queue is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// Logical name.
    pub name: String,
    /// Where messages go after `max_receives` receives: (queue name, max receives).
    pub dead_letter: Option<(String, u32)>,
}

/// What can go wrong in a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The request breaks a limit or refers to a message that is gone.
    #[error("invalid queue request: {0}")]
    Invalid(String),
    /// The named queue does not exist.
    #[error("queue not found: {0}")]
    NotFound(String),
    /// The queue service is overloaded or unreachable; the request may be retried.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A message queue service.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends messages; all are stored or the call fails.
    async fn send_batch(&self, queue: &str, messages: Vec<Message>) -> Result<(), QueueError>;

    /// Sends one message.
    async fn send(&self, queue: &str, message: Message) -> Result<(), QueueError> {
        self.send_batch(queue, vec![message]).await
    }

    /// Receives up to `max` messages, waiting up to `wait` for the first.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError>;

    /// Deletes a received message.
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError>;

    /// Hides a received message for `visibility` from now.
    async fn change_visibility(&self, queue: &str, receipt: &str, visibility: Duration) -> Result<(), QueueError>;
}

/// Checks the limits every backend enforces on a send.
pub fn check_messages(messages: &[Message]) -> Result<(), QueueError> {
    for m in messages {
        if m.body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::Invalid(format!("message of {} bytes exceeds {MAX_MESSAGE_BYTES}", m.body.len())));
        }
        if m.delay > MAX_DELAY {
            return Err(QueueError::Invalid(format!("delay {:?} exceeds {MAX_DELAY:?}", m.delay)));
        }
    }
    Ok(())
}
