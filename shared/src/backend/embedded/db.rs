//! The embedded database: one redb file (or memory), one writer thread doing group commit.
//!
//! Every write is a job: a closure run inside a redb write transaction. The writer thread takes
//! all jobs waiting, runs them one after another in one transaction and commits once, so many
//! concurrent writers share each fsync. A job either writes everything it means to or nothing
//! (jobs check their conditions before writing); a job that hits a storage error fails the whole
//! batch, which is then rolled back and reported to every job in it. Reads use redb's MVCC read
//! transactions directly from any thread and never wait for the writer.
//!
//! The writer thread also purges expired store items now and then (readers already skip them).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use tokio::sync::oneshot;

use crate::ports::Clock;

/// How often the writer thread purges expired items.
const PURGE_EVERY: Duration = Duration::from_secs(30);
/// Most jobs committed together.
const MAX_BATCH: usize = 4096;
/// A batch at least this large means the writer is busy: the next one waits a little for more
/// jobs, because each commit rewrites the pages it touches and bigger batches share them. Under
/// light load nothing waits.
const BUSY_BATCH: usize = 16;
/// How long a busy writer waits to fill a batch.
const LINGER: Duration = Duration::from_micros(400);

/// Why a job did not complete.
#[derive(Debug)]
pub(crate) enum JobError<E> {
    /// The job refused (a condition, a limit); it wrote nothing.
    Rejected(E),
    /// Storage failed; the whole batch was rolled back.
    Storage(String),
}

impl<E> From<redb::Error> for JobError<E> {
    fn from(e: redb::Error) -> Self {
        JobError::Storage(e.to_string())
    }
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl<E> From<$t> for JobError<E> {
            fn from(e: $t) -> Self {
                JobError::Storage(e.to_string())
            }
        }
    )*};
}
storage_errors!(redb::StorageError, redb::TableError, redb::TransactionError, redb::CommitError);

type Completion = Box<dyn FnOnce(Option<String>) + Send>;
type Job = Box<dyn FnOnce(&WriteTransaction) -> (bool, Completion) + Send>;
/// A purge step run by the writer thread: deletes what expired before the given Unix second.
pub(crate) type Purge = Box<dyn Fn(&WriteTransaction, i64) -> Result<(), redb::Error> + Send>;

struct Inner {
    database: Arc<Database>,
    sender: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer thread, which drops its handle on the database;
        // joining it means the file is closed when the last handle goes.
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// A shared handle on the embedded database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (or creates) the database file at `path`.
    pub fn open_file(path: &Path, clock: Arc<dyn Clock>, purge: Purge) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let database = Database::builder().create(path)?;
        Self::start(database, clock, purge)
    }

    /// Creates a database that lives in memory only.
    pub fn in_memory(clock: Arc<dyn Clock>, purge: Purge) -> anyhow::Result<Self> {
        let database = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::start(database, clock, purge)
    }

    fn start(database: Database, clock: Arc<dyn Clock>, purge: Purge) -> anyhow::Result<Self> {
        let database = Arc::new(database);
        let (sender, receiver) = mpsc::channel::<Job>();
        let db = Arc::clone(&database);
        let writer = std::thread::Builder::new()
            .name("switchyard-db-writer".into())
            .spawn(move || writer_loop(&db, &receiver, clock.as_ref(), &purge))?;
        Ok(Self { inner: Arc::new(Inner { database, sender: Some(sender), writer: Some(writer) }) })
    }

    /// Starts a read transaction (a consistent snapshot of everything committed so far).
    pub(crate) fn read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        self.inner.database.begin_read()
    }

    /// Runs `f` in a coming group commit without waiting for it (failures are logged). Jobs run
    /// in the order they are submitted, so a later awaited write lands after this one.
    pub(crate) fn write_detached<E>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), JobError<E>> + Send + 'static,
    ) where
        E: std::fmt::Debug + Send + 'static,
    {
        let job: Job = Box::new(move |txn| {
            let result = catch_unwind(AssertUnwindSafe(|| f(txn)))
                .unwrap_or_else(|_| Err(JobError::Storage("a write job panicked".into())));
            let failed = matches!(result, Err(JobError::Storage(_)));
            let completion: Completion = Box::new(move |batch_error| {
                if let Some(e) = batch_error.or_else(|| result.err().map(|e| format!("{e:?}"))) {
                    tracing::warn!(error = %e, "a background write failed");
                }
            });
            (failed, completion)
        });
        if let Some(sender) = self.inner.sender.as_ref() {
            let _ = sender.send(job);
        }
    }

    /// Runs `f` in the next group commit and returns its result once the commit is durable.
    pub(crate) async fn write<R, E>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, JobError<E>> + Send + 'static,
    ) -> Result<R, JobError<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
    {
        self.write_then(f, |_| {}).await
    }

    /// Like [`Db::write`], and runs `committed` with the result on the writer thread once the
    /// commit is durable and before the caller hears of it: commits reach `committed` in commit
    /// order, even when the caller has stopped waiting.
    pub(crate) async fn write_then<R, E>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, JobError<E>> + Send + 'static,
        committed: impl FnOnce(&R) + Send + 'static,
    ) -> Result<R, JobError<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, JobError<E>>>();
        let job: Job = Box::new(move |txn| {
            let result = catch_unwind(AssertUnwindSafe(|| f(txn)))
                .unwrap_or_else(|_| Err(JobError::Storage("a write job panicked".into())));
            let failed = matches!(result, Err(JobError::Storage(_)));
            let completion: Completion = Box::new(move |batch_error| {
                let out = match batch_error {
                    Some(e) => Err(JobError::Storage(e)),
                    None => result,
                };
                if let Ok(r) = &out
                    && catch_unwind(AssertUnwindSafe(|| committed(r))).is_err()
                {
                    tracing::error!("a commit listener panicked");
                }
                let _ = tx.send(out);
            });
            (failed, completion)
        });
        let sender = self.inner.sender.as_ref().ok_or_else(|| JobError::Storage("database closed".into()))?;
        sender.send(job).map_err(|_| JobError::Storage("database writer stopped".into()))?;
        rx.await.map_err(|_| JobError::Storage("database writer stopped".into()))?
    }
}

fn writer_loop(database: &Database, receiver: &mpsc::Receiver<Job>, clock: &dyn Clock, purge: &Purge) {
    let mut last_purge = Instant::now();
    let mut busy = false;
    loop {
        let first = match receiver.recv_timeout(PURGE_EVERY) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut jobs: Vec<Job> = first.into_iter().collect();
        let linger_until = Instant::now() + LINGER;
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::TryRecvError::Empty) if busy && !jobs.is_empty() => {
                    let left = linger_until.saturating_duration_since(Instant::now());
                    match receiver.recv_timeout(left) {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            }
        }
        busy = jobs.len() >= BUSY_BATCH;
        let purge_due = last_purge.elapsed() >= PURGE_EVERY;
        if purge_due {
            last_purge = Instant::now();
        }
        commit_batch(database, jobs, purge_due.then(|| (purge, clock.now_secs())));
    }
}

fn commit_batch(database: &Database, jobs: Vec<Job>, purge: Option<(&Purge, i64)>) {
    let txn = match database.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let error = e.to_string();
            for job in jobs {
                // The job never ran; complete it with the failure through a throwaway call path.
                fail_unrun(job, &error);
            }
            return;
        }
    };
    let mut completions = Vec::with_capacity(jobs.len());
    let mut failed = false;
    for job in jobs {
        let (job_failed, completion) = job(&txn);
        failed |= job_failed;
        completions.push(completion);
    }
    if let Some((purge, now)) = purge
        && !failed
        && let Err(e) = purge(&txn, now)
    {
        tracing::warn!(error = %e, "purging expired items failed");
        failed = true;
    }
    let batch_error = if failed {
        let _ = txn.abort();
        Some("storage failure; the batch was rolled back".to_owned())
    } else {
        txn.commit().err().map(|e| e.to_string())
    };
    if let Some(e) = &batch_error {
        tracing::error!(error = %e, "embedded database commit failed");
    }
    for completion in completions {
        completion(batch_error.clone());
    }
}

/// Completes a job that could not run because no write transaction could be started.
fn fail_unrun(job: Job, error: &str) {
    // A job only reports through its completion, which needs a transaction to produce; without
    // one, dropping the job drops its sender and the waiting caller sees "writer stopped".
    tracing::error!(error, "could not start a write transaction");
    drop(job);
}
