//! The embedded backend: store and queue in one redb database, file-backed for the local runner
//! (a restart loses nothing) or in memory for tests.

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
    /// Opens the database file at `path` (created when missing) with the given queues.
    pub async fn open_file(path: &Path, clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        let db = Db::open_file(path, Arc::clone(&clock), Box::new(store::purge_expired))?;
        Self::start(db, clock, queues).await
    }

    /// Opens a database that lives in memory only.
    pub async fn in_memory(clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        let db = Db::in_memory(Arc::clone(&clock), Box::new(store::purge_expired))?;
        Self::start(db, clock, queues).await
    }

    async fn start(db: Db, clock: Arc<dyn Clock>, queues: Vec<QueueSpec>) -> anyhow::Result<Self> {
        store::create_tables(&db).await?;
        let queue = EmbeddedQueue::open(db.clone(), queues).await?;
        Ok(Self { store: EmbeddedStore::new(db, clock), queue })
    }
}
