//! The embedded backend: the store and the queues in two redb databases (each with its own writer
//! thread, so their commits and fsyncs run side by side), file-backed for the local runner (a
//! restart loses nothing) or in memory for tests.

mod db;
mod queue;
mod store;

use std::path::Path;
use std::sync::Arc;

pub use db::Db;
pub use queue::EmbeddedQueue;
pub use store::EmbeddedStore;

use crate::ports::{Clock, QueueSpec};

/// The store and queue of one embedded database.
#[derive(Clone, Debug)]
pub struct Embedded {
    /// The store.
    pub store: EmbeddedStore,
    /// The queues.
    pub queue: EmbeddedQueue,
}

impl Embedded {
    /// Opens the databases in directory `dir` (created when missing) with the given queues.
    pub async fn open_dir(dir: &Path, clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        let store = Db::open_file(&dir.join("store.redb"), Arc::clone(&clock), Box::new(store::purge_expired))?;
        let queue = Db::open_file(&dir.join("queue.redb"), Arc::clone(&clock), Box::new(|_, _| Ok(())))?;
        Self::start(store, queue, clock, queues).await
    }

    /// Opens databases that live in memory only.
    pub async fn in_memory(clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        let store = Db::in_memory(Arc::clone(&clock), Box::new(store::purge_expired))?;
        let queue = Db::in_memory(Arc::clone(&clock), Box::new(|_, _| Ok(())))?;
        Self::start(store, queue, clock, queues).await
    }

    async fn start(store: Db, queue: Db, clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        store::create_tables(&store).await?;
        let queue = EmbeddedQueue::open(queue, queues).await?;
        Ok(Self { store: EmbeddedStore::new(store, clock), queue })
    }
}
