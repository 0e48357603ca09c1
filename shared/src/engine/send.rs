//! Sending one payload to one target, by kind, and the bound on deliveries in flight per target.
//!
//! - `WEBHOOK` and `HTTP`: POST with the Standard Webhooks headers (and an HTTP target's own
//!   headers, secret values opened); a 2xx answer is a success.
//! - `EG`: the payload, which must be a CloudEvent, is published into the target channel through
//!   PutEvents with its [`HOPS_ATTRIBUTE`] counted up; past [`MAX_HOPS`] it is dropped instead.
//! - `SQS`: the payload is sent as one message.
//!
//! Each send says what may follow a failure ([`Next`]): another attempt, none (the failure will not
//! go away: the payload is refused, the hop limit is reached), or none and the target is unusable
//! (its channel or queue is gone, its grant no longer holds), which puts the subscription in
//! `ERROR`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::Engine;
use super::delivery::Tried;
use super::routing::DeliveryJob;
use super::targets::TargetKind;
use super::trace::AttemptStatus;
use super::transform::Payload;
use crate::error::{Error, Result};
use crate::model::event::{HOPS_ATTRIBUTE, MAX_HOPS, hops_of};
use crate::model::subscription::SubscriptionTarget;
use crate::ports::{Message, OutboundRequest, QueueError};

/// What may follow a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Another attempt, while retries remain.
    Retry,
    /// No other attempt: dead-letter now.
    GiveUp,
    /// No other attempt, and the target is unusable: dead-letter now and put the subscription in
    /// `ERROR` for this reason.
    Broken(String),
}

/// Deliveries in flight per target, in this process.
#[derive(Default)]
pub(crate) struct InFlight {
    targets: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl InFlight {
    /// A slot for a delivery to the target `key`: at once if fewer than `limit` deliveries to it
    /// are in flight, else the first one freed within `wait` (waiters are served in order), else
    /// none.
    pub(crate) async fn acquire(&self, key: &str, limit: usize, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut targets = self.targets.lock();
            if targets.len() > 10_000 {
                // Permits hold their semaphore: one held only by the map has nothing in flight.
                targets.retain(|_, s| Arc::strong_count(s) > 1);
            }
            Arc::clone(targets.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(limit.max(1)))))
        };
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            return Some(permit);
        }
        tokio::time::timeout(wait, semaphore.acquire_owned()).await.ok()?.ok()
    }
}

fn failed(error: impl Into<String>, elapsed: Duration) -> Tried {
    Tried { status: AttemptStatus::Failed, code: None, elapsed, error: Some(error.into()) }
}

fn succeeded(code: Option<u16>, elapsed: Duration) -> Tried {
    Tried { status: AttemptStatus::Success, code, elapsed, error: None }
}

impl Engine {
    /// Sends a payload made from `event` to the target once; `next` says what may follow.
    pub(super) async fn send(
        &self,
        job: &DeliveryJob,
        target: &SubscriptionTarget,
        event: &Value,
        payload: Payload,
        next: &mut Next,
    ) -> Result<Tried> {
        let kind = match target.kind("target") {
            Ok(kind) => kind,
            Err(e) => {
                *next = Next::Broken(e.to_string());
                return Ok(failed(e.to_string(), Duration::ZERO));
            }
        };
        match kind {
            TargetKind::Webhook { url } => self.post(job, target, event, url, payload, next).await,
            TargetKind::Http { url, .. } => match target.open_headers(&job.project, &self.sealer().await?) {
                Ok(headers) => {
                    let mut payload = payload;
                    payload.headers.extend(headers);
                    self.post(job, target, event, url, payload, next).await
                }
                Err(e) => {
                    *next = Next::Broken(e.to_string());
                    Ok(failed(e.to_string(), Duration::ZERO))
                }
            },
            TargetKind::Channel { project, channel_id } => {
                self.forward(target, &project, &channel_id, &payload.body, next).await
            }
            TargetKind::Queue { queue } => self.send_to_queue(&queue, payload.body, next).await,
        }
    }

    async fn post(
        &self,
        job: &DeliveryJob,
        target: &SubscriptionTarget,
        event: &Value,
        url: Url,
        payload: Payload,
        next: &mut Next,
    ) -> Result<Tried> {
        let Payload { body, mut headers } = payload;
        let secret = match target.signing_secret(&job.project, &self.sealer().await?) {
            Ok(Some(s)) => s,
            Ok(None) => self.project_signing_secret(&job.project).await?,
            Err(e) => {
                *next = Next::Broken(format!("detail.secret: {e}"));
                return Ok(failed(format!("detail.secret: {e}"), Duration::ZERO));
            }
        };
        let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let timestamp = self.now_secs();
        headers.extend([
            ("webhook-signature".to_owned(), secret.sign(&id, timestamp, &body)),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-id".to_owned(), id),
        ]);
        let request = OutboundRequest { url, headers, body, timeout: self.config().delivery.timeout };
        Ok(match self.outbound().post(request).await {
            Ok(r) if (200..300).contains(&r.status) => succeeded(Some(r.status), r.elapsed),
            Ok(r) => Tried { code: Some(r.status), ..failed(format!("the target answered {}", r.status), r.elapsed) },
            Err(e) => failed(e.to_string(), Duration::ZERO),
        })
    }

    /// Publishes the payload into another channel, one hop further.
    async fn forward(
        &self,
        target: &SubscriptionTarget,
        project: &str,
        channel_id: &str,
        body: &[u8],
        next: &mut Next,
    ) -> Result<Tried> {
        let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) else {
            *next = Next::GiveUp;
            return Ok(failed("the payload is not a JSON object, so not a CloudEvent to forward", Duration::ZERO));
        };
        let hops = hops_of(&doc);
        if hops >= MAX_HOPS {
            *next = Next::GiveUp;
            return Ok(failed(
                format!(
                    "hop limit reached: forwarded {hops} times already (at most {MAX_HOPS}); not forwarded to channel {channel_id}"
                ),
                Duration::ZERO,
            ));
        }
        if !target.granted_by.as_ref().is_some_and(|p| p.may_act_in(project)) {
            let reason = format!("the target may not publish to project {project}");
            *next = Next::Broken(reason.clone());
            return Ok(failed(reason, Duration::ZERO));
        }
        doc.insert(HOPS_ATTRIBUTE.to_owned(), json!(hops + 1));
        let started = Instant::now();
        let published = self.put_events(project, channel_id, vec![Value::Object(doc)]).await;
        let elapsed = started.elapsed();
        Ok(match published {
            Ok(result) => match result.events.into_iter().next().and_then(|o| o.error) {
                None => succeeded(None, elapsed),
                Some(e) => {
                    *next = Next::GiveUp;
                    failed(format!("channel {channel_id} refused the event: {e}"), elapsed)
                }
            },
            Err(Error::NotFound { .. }) => {
                let reason = format!("channel {channel_id} of project {project} no longer exists");
                *next = Next::Broken(reason.clone());
                failed(reason, elapsed)
            }
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                tracing::warn!(error = %e, channel = channel_id, "forwarding failed; will retry");
                failed(format!("channel {channel_id} is unavailable: {e}"), elapsed)
            }
            Err(e) => {
                *next = Next::GiveUp;
                failed(format!("channel {channel_id} refused the event: {e}"), elapsed)
            }
        })
    }

    /// Sends the payload as one queue message.
    async fn send_to_queue(&self, queue: &str, body: Bytes, next: &mut Next) -> Result<Tried> {
        let Ok(text) = String::from_utf8(body.to_vec()) else {
            *next = Next::GiveUp;
            return Ok(failed("the payload is not UTF-8 text", Duration::ZERO));
        };
        if self.is_internal_queue(queue) {
            let reason = format!("{queue} is one of Switchyard's own queues");
            *next = Next::Broken(reason.clone());
            return Ok(failed(reason, Duration::ZERO));
        }
        let started = Instant::now();
        let timeout = self.config().delivery.timeout;
        let sent = tokio::time::timeout(timeout, self.queue().send(queue, Message::now(text))).await;
        let elapsed = started.elapsed();
        Ok(match sent {
            Ok(Ok(())) => succeeded(None, elapsed),
            Err(_) => failed(format!("the queue did not answer within {timeout:?}"), elapsed),
            Ok(Err(QueueError::NotFound(_))) => {
                let reason = format!("queue {queue} does not exist");
                *next = Next::Broken(reason.clone());
                failed(reason, elapsed)
            }
            Ok(Err(e @ QueueError::Invalid(_))) => {
                *next = Next::GiveUp;
                failed(e.to_string(), elapsed)
            }
            Ok(Err(e)) => failed(e.to_string(), elapsed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_WAIT: Duration = Duration::ZERO;

    #[tokio::test]
    async fn a_target_has_at_most_its_limit_in_flight() {
        let in_flight = InFlight::default();
        let a1 = in_flight.acquire("a", 2, NO_WAIT).await.expect("first");
        let _a2 = in_flight.acquire("a", 2, NO_WAIT).await.expect("second");
        assert!(in_flight.acquire("a", 2, NO_WAIT).await.is_none(), "the third is refused");
        assert!(in_flight.acquire("b", 2, NO_WAIT).await.is_some(), "another target is not held up");
        drop(a1);
        assert!(in_flight.acquire("a", 2, NO_WAIT).await.is_some(), "a finished delivery frees its slot");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_at_the_bound_gets_a_slot_freed_within_the_wait_and_none_after() {
        let in_flight = Arc::new(InFlight::default());
        let held = in_flight.acquire("a", 1, NO_WAIT).await.expect("first");
        let waiter = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move { in_flight.acquire("a", 1, Duration::from_millis(50)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "the slot freed after 20 ms goes to the waiter");

        let _held = in_flight.acquire("a", 1, NO_WAIT).await.expect("free again");
        let started = tokio::time::Instant::now();
        assert!(in_flight.acquire("a", 1, Duration::from_millis(50)).await.is_none(), "nothing freed in time");
        assert_eq!(started.elapsed(), Duration::from_millis(50), "it waited the whole wait, no longer");
    }
}
