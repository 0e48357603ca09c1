//! The SQS queue: logical queue names map to queue URLs; dead-lettering is SQS's own redrive
//! policy, set on the queue (in `template.yaml`, or by [`super::provision`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use crate::ports::queue::{MAX_MESSAGE_BYTES, Message, Queue, QueueError, Received, check_messages};

/// Most entries SQS takes in one batch call.
const BATCH_ENTRIES: usize = 10;
/// How often failed batch entries are sent again before the call fails.
const SEND_ATTEMPTS: u32 = 5;

/// The SQS implementation of [`Queue`].
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    urls: HashMap<String, String>,
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i32::MAX)
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> QueueError {
    let code = e.code().unwrap_or_default().to_owned();
    if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || code.contains("Throttl")
        || code.contains("RequestThrottled")
        || code.contains("ServiceUnavailable")
        || code.contains("InternalError")
    {
        return QueueError::Unavailable(format!("{code}: {}", e.message().unwrap_or_default()));
    }
    if code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist") {
        return QueueError::NotFound(format!("{code}: {}", e.message().unwrap_or_default()));
    }
    if code.contains("ReceiptHandleIsInvalid")
        || code.contains("MessageNotInflight")
        || code.contains("InvalidParameterValue")
    {
        return QueueError::Invalid(format!("{code}: {}", e.message().unwrap_or_default()));
    }
    QueueError::Other(anyhow::anyhow!("{}", DisplayErrorContext(&e)))
}

impl SqsQueue {
    /// A queue service where each logical name maps to a queue URL.
    pub fn new(client: Client, urls: HashMap<String, String>) -> Self {
        Self { client, urls }
    }

    fn url<'a>(&'a self, queue: &'a str) -> Result<&'a str, QueueError> {
        if queue.starts_with("https://") || queue.starts_with("http://") {
            return Ok(queue);
        }
        self.urls.get(queue).map(String::as_str).ok_or_else(|| QueueError::NotFound(format!("unknown queue {queue}")))
    }
}

/// Splits messages into SQS batches: at most ten entries and [`MAX_MESSAGE_BYTES`] each.
fn batches(messages: Vec<Message>) -> Vec<Vec<Message>> {
    let mut out: Vec<Vec<Message>> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let fits = out.last().is_some_and(|b| b.len() < BATCH_ENTRIES && bytes + m.body.len() <= MAX_MESSAGE_BYTES);
        if !fits {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += m.body.len();
        if let Some(last) = out.last_mut() {
            last.push(m);
        }
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, queue: &str, messages: Vec<Message>) -> Result<(), QueueError> {
        check_messages(&messages)?;
        let url = self.url(queue)?.to_owned();
        for batch in batches(messages) {
            let mut pending: Vec<(String, Message)> =
                batch.into_iter().enumerate().map(|(i, m)| (i.to_string(), m)).collect();
            for attempt in 1..=SEND_ATTEMPTS {
                let entries = pending
                    .iter()
                    .map(|(id, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(&m.body)
                            .delay_seconds(secs(m.delay))
                            .build()
                            .map_err(|e| QueueError::Other(e.into()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let failed: Vec<_> =
                    out.failed().iter().map(|f| (f.id().to_owned(), f.sender_fault(), f.code().to_owned())).collect();
                if let Some((_, _, code)) = failed.iter().find(|(_, sender_fault, _)| *sender_fault) {
                    return Err(QueueError::Invalid(format!("SQS refused a message: {code}")));
                }
                pending.retain(|(id, _)| failed.iter().any(|(f, _, _)| f == id));
                if pending.is_empty() {
                    break;
                }
                if attempt == SEND_ATTEMPTS {
                    return Err(QueueError::Unavailable(format!("{} messages kept failing", pending.len())));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let url = self.url(queue)?;
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, BATCH_ENTRIES)).unwrap_or(1))
            .wait_time_seconds(secs(wait).min(20))
            .visibility_timeout(secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue)?;
        let sent = self.client.delete_message().queue_url(url).receipt_handle(receipt).send().await;
        match sent.map_err(sdk_error) {
            Ok(_) | Err(QueueError::Invalid(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn change_visibility(&self, queue: &str, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        let url = self.url(queue)?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
