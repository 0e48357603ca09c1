//! The embedded queue: messages persisted in the embedded database (so a restart loses none),
//! with the visibility bookkeeping kept in memory and written through on every change.
//!
//! Timing uses the system clock, not the engine's clock port: delays and visibility timeouts are
//! real waits.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::Notify;

use super::db::{Db, JobError};
use crate::ports::queue::{Message, Queue, QueueError, QueueSpec, Received, check_messages};
use crate::ports::{Clock, SystemClock};

/// `(queue, message id)` → encoded message.
pub(crate) const MESSAGES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("queue_messages");

/// The longest a receive waits, as SQS allows.
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
struct Stored {
    body: Arc<str>,
    visible_at: i64,
    receive_count: u32,
}

impl Stored {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.body.len());
        out.extend_from_slice(&self.visible_at.to_le_bytes());
        out.extend_from_slice(&self.receive_count.to_le_bytes());
        out.extend_from_slice(self.body.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let visible_at = i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let receive_count = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        let body = std::str::from_utf8(bytes.get(12..)?).ok()?;
        Some(Self { body: Arc::from(body), visible_at, receive_count })
    }
}

#[derive(Default)]
struct QueueState {
    ready: BTreeSet<(i64, String)>,
    messages: HashMap<String, Stored>,
}

impl QueueState {
    fn insert(&mut self, id: String, message: Stored) {
        self.ready.insert((message.visible_at, id.clone()));
        self.messages.insert(id, message);
    }

    fn remove(&mut self, id: &str) -> Option<Stored> {
        let message = self.messages.remove(id)?;
        self.ready.remove(&(message.visible_at, id.to_owned()));
        Some(message)
    }

    fn next_visible_at(&self) -> Option<i64> {
        self.ready.first().map(|(at, _)| *at)
    }
}

struct Named {
    spec: QueueSpec,
    state: Mutex<QueueState>,
    arrived: Notify,
    /// Messages whose receive count and visibility changed since they were last written.
    unsaved: Mutex<HashSet<String>>,
}

/// A change to persist.
enum Persist {
    Upsert(String, String, Vec<u8>),
    Remove(String, String),
}

fn apply(txn: &WriteTransaction, changes: Vec<Persist>) -> Result<(), JobError<QueueError>> {
    let mut table = txn.open_table(MESSAGES)?;
    for change in changes {
        match change {
            Persist::Upsert(queue, id, bytes) => {
                table.insert((queue.as_str(), id.as_str()), bytes.as_slice())?;
            }
            Persist::Remove(queue, id) => {
                table.remove((queue.as_str(), id.as_str()))?;
            }
        }
    }
    Ok(())
}

/// How often receive counts and visibility changes are written (a message deleted before then
/// never costs that write; were they lost in a crash, a message would come back a receive early).
const SAVE_RECEIPTS_EVERY: Duration = Duration::from_secs(1);

struct Shared {
    db: Db,
    queues: HashMap<String, Named>,
}

impl Shared {
    /// Writes the bookkeeping of every message received since the last save.
    fn save_receipts(&self) {
        let mut changes = Vec::new();
        for named in self.queues.values() {
            let unsaved = std::mem::take(&mut *named.unsaved.lock());
            let state = named.state.lock();
            for id in unsaved {
                if let Some(message) = state.messages.get(&id) {
                    changes.push(Persist::Upsert(named.spec.name.clone(), id, message.encode()));
                }
            }
        }
        if !changes.is_empty() {
            self.db.write_detached::<QueueError>(move |txn| apply(txn, changes));
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.save_receipts();
    }
}

/// The embedded implementation of [`Queue`].
#[derive(Clone)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue").field("queues", &self.shared.queues.keys().collect::<Vec<_>>()).finish()
    }
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_queue_error(e: JobError<QueueError>) -> QueueError {
    match e {
        JobError::Rejected(e) => e,
        JobError::Storage(e) => QueueError::Unavailable(e),
    }
}

impl EmbeddedQueue {
    /// Opens the queues named by `specs`, loading every message stored for them.
    pub async fn open(db: Db, specs: Vec<QueueSpec>) -> anyhow::Result<Self> {
        let mut queues = HashMap::new();
        for spec in specs {
            let state = Mutex::new(QueueState::default());
            let named = Named { spec, state, arrived: Notify::new(), unsaved: Mutex::new(HashSet::new()) };
            queues.insert(named.spec.name.clone(), named);
        }
        for named in queues.values() {
            if let Some((dlq, _)) = &named.spec.dead_letter {
                anyhow::ensure!(queues.contains_key(dlq), "dead-letter queue {dlq} is not declared");
            }
        }
        db.write(|txn: &WriteTransaction| {
            txn.open_table(MESSAGES)?;
            Ok::<_, JobError<QueueError>>(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", to_queue_error(e)))?;
        let txn = db.read()?;
        let table = txn.open_table(MESSAGES)?;
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (queue, id) = key.value();
            let (Some(named), Some(message)) = (queues.get(queue), Stored::decode(value.value())) else {
                continue;
            };
            named.state.lock().insert(id.to_owned(), message);
        }
        let shared = Arc::new(Shared { db, queues });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SAVE_RECEIPTS_EVERY).await;
                match weak.upgrade() {
                    Some(shared) => shared.save_receipts(),
                    None => return,
                }
            }
        });
        Ok(Self { shared })
    }

    fn named(&self, queue: &str) -> Result<&Named, QueueError> {
        self.shared.queues.get(queue).ok_or_else(|| QueueError::NotFound(format!("unknown queue {queue}")))
    }

    async fn persist(&self, changes: Vec<Persist>) -> Result<(), QueueError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.shared.db.write(move |txn| apply(txn, changes)).await.map_err(to_queue_error)
    }

    /// Persists the dead-letter moves of a receive without making the receiver wait (were they lost
    /// in a crash, the message would be moved again). Sends and deletes are always awaited.
    fn persist_later(&self, changes: Vec<Persist>) {
        if !changes.is_empty() {
            self.shared.db.write_detached::<QueueError>(move |txn| apply(txn, changes));
        }
    }

    /// Takes up to `max` visible messages, moving over-received ones to the dead-letter queue.
    fn take_visible(&self, named: &Named, max: usize, visibility: Duration) -> (Vec<Received>, Vec<Persist>) {
        let now = now_ms();
        let mut received = Vec::new();
        let mut changes = Vec::new();
        let mut dead = Vec::new();
        {
            let mut state = named.state.lock();
            while received.len() < max {
                let Some((at, id)) = state.ready.first().cloned() else { break };
                if at > now {
                    break;
                }
                let Some(mut message) = state.remove(&id) else { continue };
                message.receive_count += 1;
                if let Some((dlq, max_receives)) = &named.spec.dead_letter
                    && message.receive_count > *max_receives
                {
                    changes.push(Persist::Remove(named.spec.name.clone(), id.clone()));
                    dead.push((dlq.clone(), id, message));
                    continue;
                }
                message.visible_at = now + ms(visibility);
                named.unsaved.lock().insert(id.clone());
                received.push(Received {
                    receipt: format!("{id}.{}", message.receive_count),
                    message_id: id.clone(),
                    body: message.body.to_string(),
                    receive_count: message.receive_count,
                });
                state.insert(id, message);
            }
        }
        for (dlq, id, message) in dead {
            let moved = Stored { body: message.body, visible_at: now, receive_count: 0 };
            changes.push(Persist::Upsert(dlq.clone(), id.clone(), moved.encode()));
            if let Some(target) = self.shared.queues.get(&dlq) {
                target.state.lock().insert(id, moved);
                target.arrived.notify_waiters();
            }
        }
        (received, changes)
    }

    /// The message a receipt refers to, if it is still the latest receipt of a stored message.
    fn current<'a>(state: &'a mut QueueState, receipt: &str) -> Option<(String, &'a mut Stored)> {
        let (id, count) = receipt.rsplit_once('.')?;
        let count: u32 = count.parse().ok()?;
        let message = state.messages.get_mut(id)?;
        (message.receive_count == count).then(|| (id.to_owned(), message))
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send_batch(&self, queue: &str, messages: Vec<Message>) -> Result<(), QueueError> {
        check_messages(&messages)?;
        let named = self.named(queue)?;
        let now = now_ms();
        let stored: Vec<(String, Stored)> = messages
            .into_iter()
            .map(|m| {
                let id = uuid::Uuid::now_v7().simple().to_string();
                (id, Stored { body: Arc::from(m.body), visible_at: now + ms(m.delay), receive_count: 0 })
            })
            .collect();
        let changes = stored.iter().map(|(id, m)| Persist::Upsert(queue.to_owned(), id.clone(), m.encode())).collect();
        self.persist(changes).await?;
        {
            let mut state = named.state.lock();
            for (id, message) in stored {
                state.insert(id, message);
            }
        }
        named.arrived.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let named = self.named(queue)?;
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            let arrived = named.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let (received, changes) = self.take_visible(named, max.max(1), visibility);
            self.persist_later(changes);
            if !received.is_empty() {
                return Ok(received);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let next = named.state.lock().next_visible_at();
            let until_visible = next.map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
            let sleep_until = match until_visible {
                Some(d) => deadline.min(now + d),
                None => deadline,
            };
            tokio::select! {
                () = &mut arrived => {}
                () = tokio::time::sleep_until(sleep_until) => {}
            }
        }
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        let named = self.named(queue)?;
        let removed = {
            let mut state = named.state.lock();
            match Self::current(&mut state, receipt) {
                Some((id, _)) => state.remove(&id).map(|_| id),
                None => None,
            }
        };
        match removed {
            Some(id) => {
                named.unsaved.lock().remove(&id);
                self.persist(vec![Persist::Remove(queue.to_owned(), id)]).await
            }
            None => Ok(()),
        }
    }

    async fn change_visibility(&self, queue: &str, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        let named = self.named(queue)?;
        let change = {
            let mut state = named.state.lock();
            let found = Self::current(&mut state, receipt).map(|(id, m)| (id, m.clone()));
            let Some((id, mut message)) = found else {
                return Err(QueueError::Invalid(format!("receipt {receipt} is not current")));
            };
            state.remove(&id);
            message.visible_at = now_ms() + ms(visibility);
            let bytes = message.encode();
            state.insert(id.clone(), message);
            named.unsaved.lock().remove(&id);
            Persist::Upsert(queue.to_owned(), id, bytes)
        };
        named.arrived.notify_waiters();
        self.persist(vec![change]).await
    }
}
