//! Delivery: one step per delivery queue message ([`Engine::deliver_one`]). The SQS worker and the
//! local runner's loop both call it; it makes one attempt, records it, and decides what happens to
//! the message.
//!
//! An attempt makes the payload from the event (the target's transform: the event itself in
//! CloudEvents structured mode, or under a `CONSTANT` or `VARIABLE` transform the rendered body in
//! binary mode, see `transform`) and sends it by the target's kind (`super::send`): a webhook or
//! HTTP POST with Standard Webhooks headers (`webhook-id` is the event's `id`, the receivers'
//! idempotency key; a 2xx answer is a success), a forward into another channel, or a queue
//! message. Each attempt times out after `delivery.timeout` (10 s by default). A payload the
//! transform cannot render fails the attempt with the reason in the trace.
//!
//! After a failed attempt, while retries remain (`retry_times`, 0 to 64, default 16, retries after
//! the first attempt), the message is hidden for the backoff delay ([`RetrySchedule`]: 1 s, 2 s,
//! 4 s … doubling to at most 300 s, ±20 % jitter) and comes back. When they are spent, or when
//! another attempt cannot help (the payload is refused, the hop limit is reached, the target is
//! unusable, which also puts the subscription in `ERROR`), the delivery goes to the dead-letter
//! queue, and also to the target's own `dead_letter_queue` when it names one. Every attempt is
//! recorded in the trace.
//!
//! Deliveries to one target are bounded ([`DeliveryConfig::per_target_in_flight`] at once in a
//! process): a delivery to a target at its bound waits up to [`SLOT_WAIT`] for a slot, which a
//! fast receiver frees long before; failing that it is sent back to the queue for about
//! [`DEFER_DELAY`] without counting as an attempt, so a slow receiver cannot take every worker
//! slot. A deferred delivery is a new message carrying the attempts made so far.
//!
//! A delivery of an event logged before its subscription was last enabled, or made while the
//! subscription does not receive (disabled, in error), is discarded and recorded as such.
//!
//! [`RetrySchedule`]: crate::config::RetrySchedule
//! [`DeliveryConfig::per_target_in_flight`]: crate::config::DeliveryConfig::per_target_in_flight
//! [`SLOT_WAIT`]: crate::config::SLOT_WAIT

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Engine;
use super::routing::DeliveryJob;
use super::send::Next;
use super::trace::{Attempt, AttemptStatus};
use crate::config::{DEFER_DELAY, SLOT_WAIT, queues};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::subscription::{Subscription, SubscriptionTarget};
use crate::ports::store::log_sk;
use crate::ports::{Message, Received};

/// How long a delivery worker trusts a subscription it read: a change (disable, delete, new URL)
/// reaches deliveries that are already queued within this time. Reading and decoding the
/// subscription for every delivery cost a third of a delivery's CPU. A write in this process
/// drops the cached copy at once. A delivery that the cached
/// copy would drop (no such target, not receiving) reads the subscription again first, so an added
/// target or an enable takes effect at once.
const SUBSCRIPTION_TTL: Duration = Duration::from_secs(1);

/// A subscription as read at some instant (`None`: it did not exist).
type Seen = (Option<Arc<Subscription>>, Instant);

/// Subscriptions recently read by the delivery worker, by (project, id).
#[derive(Default)]
pub(crate) struct SubscriptionCache {
    entries: Mutex<HashMap<(String, String), Seen>>,
}

impl SubscriptionCache {
    /// Drops what is known of a subscription (this process just wrote it).
    pub(crate) fn forget(&self, project: &str, id: &str) {
        self.entries.lock().remove(&(project.to_owned(), id.to_owned()));
    }
}

/// Largest event copied into a dead-letter message (larger ones are referenced only).
const MAX_DEAD_LETTER_EVENT_BYTES: usize = 200 * 1024;

/// The body of a delivery queue message: the job, and the attempts made before this message was
/// sent (a deferred delivery is sent again as a new message, whose receive count starts afresh).
#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(flatten)]
    job: DeliveryJob,
    #[serde(default, rename = "a", skip_serializing_if = "is_zero")]
    prior: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

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
pub(super) struct Tried {
    pub(super) status: AttemptStatus,
    pub(super) code: Option<u16>,
    pub(super) elapsed: Duration,
    pub(super) error: Option<String>,
}

impl Engine {
    /// The subscription a delivery is for (`None` when it was deleted), read at most once per
    /// [`SUBSCRIPTION_TTL`].
    async fn delivering_subscription(&self, project: &str, id: &str, fresh: bool) -> Result<Option<Arc<Subscription>>> {
        let key = (project.to_owned(), id.to_owned());
        if let Some((cached, at)) = self.delivery_cache().entries.lock().get(&key)
            && at.elapsed() < SUBSCRIPTION_TTL
            && !fresh
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
        let Envelope { job, prior } = match serde_json::from_str(&message.body) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::error!(error = %e, "malformed delivery message; dead-lettered");
                let body = json!({ "reason": format!("malformed delivery message: {e}"), "message": message.body });
                self.queue().send(queues::DEAD_LETTER, Message::now(body.to_string())).await?;
                return Ok(Outcome::Done);
            }
        };
        let attempt = prior + message.receive_count.max(1);
        let mut subscription = self.delivering_subscription(&job.project, &job.subscription_id, false).await?;
        if subscription.as_ref().is_some_and(|s| s.target(&job.target_id).is_none() || !s.status.receives_events()) {
            subscription = self.delivering_subscription(&job.project, &job.subscription_id, true).await?;
        }
        let Some(subscription) = subscription else {
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
            self.dead_letter(&job, &target, None, &tried, attempt).await?;
            self.trace(&ctx, &tried, true).await?;
            return Ok(Outcome::Done);
        };
        if entry.data.get("time_ms").and_then(Value::as_i64).unwrap_or_default() < subscription.resumed_ms {
            let tried = Tried {
                status: AttemptStatus::Discarded,
                code: None,
                elapsed: Duration::ZERO,
                error: Some("published before the subscription was last enabled".into()),
            };
            self.trace(&ctx, &tried, false).await?;
            return Ok(Outcome::Done);
        }
        let key = format!("{}#{}#{}", job.project, job.subscription_id, job.target_id);
        let Some(_slot) = self.in_flight().acquire(&key, self.config().delivery.per_target_in_flight, SLOT_WAIT).await
        else {
            self.defer(job, attempt - 1).await?;
            return Ok(Outcome::Done);
        };
        let event = entry.data.get("event").cloned().unwrap_or(Value::Null);
        let mut next = Next::Retry;
        let tried = self.attempt(&job, &target, &event, &mut next).await?;
        let spent = attempt > target.retry_times || next != Next::Retry;
        let failed = tried.status != AttemptStatus::Success;
        if failed && spent {
            if let Next::Broken(reason) = &next {
                let reason = format!("target {}: {reason}", target.id);
                self.mark_subscription_error(&job.project, &job.subscription_id, &reason).await?;
            }
            self.dead_letter(&job, &target, Some(&event), &tried, attempt).await?;
        }
        self.trace(&ctx, &tried, failed && spent).await?;
        if failed && !spent {
            let delay = self.config().delivery.retry.jittered(attempt);
            self.queue().change_visibility(queues::DELIVERY, &message.receipt, delay).await?;
            return Ok(Outcome::RetryLater(delay));
        }
        Ok(Outcome::Done)
    }

    /// Sends a delivery back to the queue for about [`DEFER_DELAY`], with the attempts made so far.
    async fn defer(&self, job: DeliveryJob, prior: u32) -> Result<()> {
        let body = serde_json::to_string(&Envelope { job, prior })?;
        let delay = DEFER_DELAY.mul_f64(rand::random::<f64>() * 0.4 + 0.8);
        self.queue().send(queues::DELIVERY, Message { body, delay }).await?;
        Ok(())
    }

    /// Sends the event to the target once; `next` says what may follow a failure.
    async fn attempt(
        &self,
        job: &DeliveryJob,
        target: &SubscriptionTarget,
        event: &Value,
        next: &mut Next,
    ) -> Result<Tried> {
        let payload = match self.payload(&job.subscription_id, target, event) {
            Ok(payload) => payload,
            Err(reason) => {
                // The same event and transform render the same way: another attempt cannot help.
                *next = Next::GiveUp;
                return Ok(Tried {
                    status: AttemptStatus::Failed,
                    code: None,
                    elapsed: Duration::ZERO,
                    error: Some(reason),
                });
            }
        };
        self.send(job, target, event, payload, next).await
    }

    /// Dead-letters a delivery: to the service's dead-letter queue, and to the target's own when it
    /// names one (a failure there is logged; the service's queue has the delivery).
    async fn dead_letter(
        &self,
        job: &DeliveryJob,
        target: &SubscriptionTarget,
        event: Option<&Value>,
        tried: &Tried,
        attempts: u32,
    ) -> Result<()> {
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
        let body = body.to_string();
        if let Some(queue) = target.dead_letter_queue_name()
            && let Err(e) = self.queue().send(queue, Message::now(body.clone())).await
        {
            tracing::warn!(queue, error = %e, "the target's dead-letter queue refused a delivery");
        }
        self.queue().send(queues::DEAD_LETTER, Message::now(body)).await?;
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
