//! Delivery: one step per delivery queue message ([`Engine::deliver_one`]). The SQS worker and the
//! local runner's loop both call it; it makes one attempt, records it, and decides what happens to
//! the message.
//!
//! A webhook delivery POSTs the event in CloudEvents structured mode (or, under a `CONSTANT` or
//! `VARIABLE` transform, the rendered body in binary mode: see `transform`) with Standard Webhooks
//! headers (`webhook-id` is the event's `id`, the receivers' idempotency key). A 2xx answer is a
//! success. Otherwise, while attempts remain (`retry_times` retries after the first attempt), the
//! message is hidden for the next backoff delay and comes back; when they are spent, the delivery
//! goes to the dead-letter queue. Every attempt is recorded in the trace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::Engine;
use super::routing::DeliveryJob;
use super::subscriptions::TargetKind;
use super::trace::{Attempt, AttemptStatus};
use super::transform::Payload;
use crate::config::queues;
use crate::error::{Error, Result};
use crate::keys;
use crate::model::subscription::{Subscription, SubscriptionTarget};
use crate::ports::store::log_sk;
use crate::ports::{Message, OutboundRequest, Received};

/// How long a delivery worker trusts a subscription it read: a change (disable, delete, new URL)
/// reaches deliveries that are already queued within this time. Reading and decoding the
/// subscription for every delivery cost a third of a delivery's CPU.
const SUBSCRIPTION_TTL: Duration = Duration::from_secs(1);

/// A subscription as read at some instant (`None`: it did not exist).
type Seen = (Option<Arc<Subscription>>, Instant);

/// Subscriptions recently read by the delivery worker, by (project, id).
#[derive(Default)]
pub(crate) struct SubscriptionCache {
    entries: Mutex<HashMap<(String, String), Seen>>,
}

/// Largest event copied into a dead-letter message (larger ones are referenced only).
const MAX_DEAD_LETTER_EVENT_BYTES: usize = 200 * 1024;

/// What to do with a delivery message after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished (delivered, dead-lettered or discarded): delete the message.
    Done,
    /// Attempted and failed; the message has been hidden until the next attempt is due: keep it.
    RetryLater(Duration),
}

/// What a step is about.
struct Context<'a> {
    job: &'a DeliveryJob,
    subscription: &'a Subscription,
    target: &'a SubscriptionTarget,
    attempt: u32,
    started_ms: i64,
}

/// The result of one attempt.
struct Tried {
    status: AttemptStatus,
    code: Option<u16>,
    elapsed: Duration,
    error: Option<String>,
}

impl Engine {
    /// The subscription a delivery is for (`None` when it was deleted), read at most once per
    /// [`SUBSCRIPTION_TTL`].
    async fn delivering_subscription(&self, project: &str, id: &str) -> Result<Option<Arc<Subscription>>> {
        let key = (project.to_owned(), id.to_owned());
        if let Some((cached, at)) = self.delivery_cache().entries.lock().get(&key)
            && at.elapsed() < SUBSCRIPTION_TTL
        {
            return Ok(cached.clone());
        }
        let found = match self.subscription(project, id).await {
            Ok((s, _)) => Some(Arc::new(s)),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut entries = self.delivery_cache().entries.lock();
        if entries.len() > 100_000 {
            entries.retain(|_, (_, at)| at.elapsed() < SUBSCRIPTION_TTL);
        }
        entries.insert(key, (found.clone(), Instant::now()));
        Ok(found)
    }

    /// How long a received delivery message stays hidden while it is being attempted.
    pub fn delivery_visibility(&self) -> Duration {
        self.config().delivery.timeout + Duration::from_secs(30)
    }

    /// Makes one attempt at the delivery `message` describes.
    pub async fn deliver_one(&self, message: &Received) -> Result<Outcome> {
        let job: DeliveryJob = match serde_json::from_str(&message.body) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "malformed delivery message; dead-lettered");
                let body = json!({ "reason": format!("malformed delivery message: {e}"), "message": message.body });
                self.queue().send(queues::DEAD_LETTER, Message::now(body.to_string())).await?;
                return Ok(Outcome::Done);
            }
        };
        let attempt = message.receive_count.max(1);
        let Some(subscription) = self.delivering_subscription(&job.project, &job.subscription_id).await? else {
            return Ok(Outcome::Done);
        };
        let Some(target) = subscription.target(&job.target_id).cloned() else {
            return Ok(Outcome::Done);
        };
        let ctx =
            Context { job: &job, subscription: &subscription, target: &target, attempt, started_ms: self.now_ms() };
        if !subscription.status.receives_events() {
            let tried = Tried {
                status: AttemptStatus::Discarded,
                code: None,
                elapsed: Duration::ZERO,
                error: Some(format!("subscription is {}", subscription.status.as_str())),
            };
            self.trace(&ctx, &tried, false).await?;
            return Ok(Outcome::Done);
        }
        let log = keys::channel_log(&job.project, &job.channel_id);
        let Some(entry) = self.store().get(&log, &log_sk(job.seq)).await? else {
            let tried = Tried {
                status: AttemptStatus::Failed,
                code: None,
                elapsed: Duration::ZERO,
                error: Some("the event is no longer retained".into()),
            };
            self.dead_letter(&job, None, &tried, attempt).await?;
            self.trace(&ctx, &tried, true).await?;
            return Ok(Outcome::Done);
        };
        let event = entry.data.get("event").cloned().unwrap_or(Value::Null);
        let tried = self.attempt(&job, &target, &event).await?;
        let spent = attempt > target.retry_times;
        let failed = tried.status != AttemptStatus::Success;
        if failed && spent {
            self.dead_letter(&job, Some(&event), &tried, attempt).await?;
        }
        self.trace(&ctx, &tried, failed && spent).await?;
        if failed && !spent {
            let delay = self.config().delivery.retry.jittered(attempt);
            self.queue().change_visibility(queues::DELIVERY, &message.receipt, delay).await?;
            return Ok(Outcome::RetryLater(delay));
        }
        Ok(Outcome::Done)
    }

    /// Sends the event to the target once.
    async fn attempt(&self, job: &DeliveryJob, target: &SubscriptionTarget, event: &Value) -> Result<Tried> {
        let TargetKind::Webhook { url } = target.kind("target")?;
        let Payload { body, mut headers } = match self.payload(&job.subscription_id, target, event) {
            Ok(payload) => payload,
            Err(reason) => {
                return Ok(Tried {
                    status: AttemptStatus::Failed,
                    code: None,
                    elapsed: Duration::ZERO,
                    error: Some(reason),
                });
            }
        };
        let secret = match target.signing_secret() {
            Some(s) => s,
            None => self.project_signing_secret(&job.project).await?,
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
            Ok(r) if (200..300).contains(&r.status) => {
                Tried { status: AttemptStatus::Success, code: Some(r.status), elapsed: r.elapsed, error: None }
            }
            Ok(r) => Tried {
                status: AttemptStatus::Failed,
                code: Some(r.status),
                elapsed: r.elapsed,
                error: Some(format!("the target answered {}", r.status)),
            },
            Err(e) => {
                Tried { status: AttemptStatus::Failed, code: None, elapsed: Duration::ZERO, error: Some(e.to_string()) }
            }
        })
    }

    async fn dead_letter(&self, job: &DeliveryJob, event: Option<&Value>, tried: &Tried, attempts: u32) -> Result<()> {
        let mut body = json!({
            "delivery": job,
            "reason": tried.error,
            "last_response_code": tried.code,
            "attempts": attempts,
            "dead_lettered_ms": self.now_ms(),
        });
        if let Some(event) = event
            && serde_json::to_vec(event).map_or(usize::MAX, |b| b.len()) <= MAX_DEAD_LETTER_EVENT_BYTES
        {
            body["event"] = event.clone();
        }
        self.queue().send(queues::DEAD_LETTER, Message::now(body.to_string())).await?;
        tracing::warn!(project = %job.project, channel = %job.channel_id, seq = job.seq, target = %job.target_id, attempts, "delivery dead-lettered");
        Ok(())
    }

    async fn trace(&self, ctx: &Context<'_>, tried: &Tried, dead_lettered: bool) -> Result<()> {
        let record = Attempt {
            subscription_id: ctx.subscription.id.clone(),
            subscription_name: ctx.subscription.name.clone(),
            target_id: ctx.target.id.clone(),
            target_name: ctx.target.name.clone(),
            attempt: ctx.attempt,
            time_ms: ctx.started_ms,
            status: tried.status,
            response_code: tried.code,
            duration_ms: u64::try_from(tried.elapsed.as_millis()).unwrap_or(u64::MAX),
            error: tried.error.clone(),
            dead_lettered,
        };
        self.record_attempt(&ctx.job.project, &ctx.job.channel_id, ctx.job.seq, &record).await
    }
}
