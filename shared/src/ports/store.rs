//! The store port: single-table items addressed by a partition key and a sort key.
//!
//! Contract, shared by both backends and checked by the conformance suite:
//! - An item is `(pk, sk)` with a JSON document, an optional expiry (Unix seconds) and a version.
//!   An item whose `expires_at <= now` is **absent** for every read and every condition, even when
//!   the backend has not physically removed it yet (DynamoDB's TTL deletes late).
//! - Every write of a key gives it a new version; a create starts a fresh version. `Cond::Version`
//!   compares with the version last read, which is how read-modify-write stays correct under
//!   concurrent writers (optimistic concurrency).
//! - `transact` applies all its writes or none, within the backend's [`TxLimits`] (DynamoDB's are
//!   100 writes and 4 MiB, the embedded store's larger); one key at most once. A failed condition
//!   names the write's index.
//! - `Write::Append` appends one entry to a log partition: the store assigns the next dense sequence
//!   number (1, 2, 3, … per partition, never reused) atomically with the rest of the transaction,
//!   stores the entry under [`log_sk`]`(seq)` and keeps the head at [`LOG_HEAD_SK`]. Entries of one
//!   partition become visible in sequence order: a reader that sees entry `n` sees every entry
//!   below `n` that has not expired. `Write::Receipt` puts an item that records, in its document's
//!   `first` and `last` fields, the range this same transaction appended to one log partition
//!   (both 0 when it appended none), so a caller can keep a durable note of what it appended.
//!   Appends to one partition get consecutive numbers in the order of the writes (the `k`-th gets
//!   `first + k`), and several receipts of one transaction may name the same log: each records
//!   the same range, so an item per appended entry can locate its entry.
//! - Reads are strongly consistent: a read that starts after a write returned sees it.
//! - `query` reads one partition in sort-key order, with a range, an order, a limit and a resume
//!   key; it returns `resume` only when more items may follow.
//! - A backend whose writers all live in this process may report appends as they commit
//!   ([`Store::listen_appends`]): each committed append once, in commit order, with its document,
//!   before the transaction's caller hears of the commit; nothing of a failed transaction. Watchers
//!   then need neither poll nor read the store to learn of new entries. A backend that cannot
//!   (DynamoDB: other processes write too) says so, and watchers poll.

use std::sync::Weak;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Largest item (key, document and metadata), as DynamoDB allows.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// How large a transaction a backend takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLimits {
    /// Most writes (a log append counts once, its head included).
    pub writes: usize,
    /// Most bytes.
    pub bytes: usize,
}

/// DynamoDB's transaction limits (the log head of an append counts as a write there).
pub const DYNAMODB_TX_LIMITS: TxLimits = TxLimits { writes: 100, bytes: 4 * 1024 * 1024 };
/// Longest sort key in bytes, as DynamoDB allows.
pub const MAX_SK_BYTES: usize = 1024;
/// Longest partition key in bytes, as DynamoDB allows.
pub const MAX_PK_BYTES: usize = 2048;
/// Sort key of a log partition's head item (sorts after every entry key).
pub const LOG_HEAD_SK: &str = "~head";

/// The sort key of log entry `seq`: zero-padded so that string order is numeric order.
pub fn log_sk(seq: u64) -> String {
    format!("{seq:020}")
}

/// The sequence number of a log entry's sort key, if `sk` is one.
pub fn parse_log_sk(sk: &str) -> Option<u64> {
    if sk.len() == 20 { sk.parse().ok() } else { None }
}

/// One stored item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The document.
    pub data: Value,
    /// When the item expires (Unix seconds); `None` keeps it forever.
    pub expires_at: Option<i64>,
    /// Assigned by the store on every write; ignored in writes.
    pub version: u64,
}

impl Item {
    /// A new item that never expires.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Value) -> Self {
        Self { pk: pk.into(), sk: sk.into(), data, expires_at: None, version: 0 }
    }

    /// The same item, expiring at `at` (Unix seconds).
    pub fn expiring(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Decodes the document into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        T::deserialize(&self.data)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("item {}/{} does not decode: {e}", self.pk, self.sk)))
    }

    /// Whether the item has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Approximate stored size, as counted against [`MAX_ITEM_BYTES`].
    pub fn size(&self) -> usize {
        self.pk.len() + self.sk.len() + json_size(&self.data) + 32
    }
}

/// Serialized size of a JSON document.
pub fn json_size(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// A condition on the current state of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// No condition.
    Any,
    /// The key holds no live item.
    Absent,
    /// The key holds a live item.
    Present,
    /// The key holds a live item with exactly this version.
    Version(u64),
}

/// One write of a transaction.
#[derive(Clone, Debug)]
pub enum Write {
    /// Create or replace an item.
    Put {
        /// The item (its `version` is ignored).
        item: Item,
        /// Condition on the key's current state.
        cond: Cond,
    },
    /// Delete an item (deleting an absent key is not an error unless the condition says so).
    Delete {
        /// Partition key.
        pk: String,
        /// Sort key.
        sk: String,
        /// Condition on the key's current state.
        cond: Cond,
    },
    /// Check a condition without writing.
    Check {
        /// Partition key.
        pk: String,
        /// Sort key.
        sk: String,
        /// The condition.
        cond: Cond,
    },
    /// Put an item recording the sequence range this transaction appends to log partition `log`
    /// (the store sets `first` and `last` in the item's document).
    Receipt {
        /// The item (its `version` is ignored).
        item: Item,
        /// The log partition whose appends it records.
        log: String,
    },
    /// Append an entry to the log partition `pk`, at the next sequence number.
    Append {
        /// The log partition.
        pk: String,
        /// The entry's document.
        data: Value,
        /// When the entry expires (Unix seconds).
        expires_at: Option<i64>,
    },
}

impl Write {
    /// The key this write touches (for an append, the log head).
    pub fn key(&self) -> (&str, &str) {
        match self {
            Write::Put { item, .. } | Write::Receipt { item, .. } => (&item.pk, &item.sk),
            Write::Delete { pk, sk, .. } | Write::Check { pk, sk, .. } => (pk, sk),
            Write::Append { pk, .. } => (pk, LOG_HEAD_SK),
        }
    }

    /// Approximate size counted against [`MAX_TX_BYTES`].
    pub fn size(&self) -> usize {
        match self {
            Write::Put { item, .. } | Write::Receipt { item, .. } => item.size() + 48,
            Write::Delete { pk, sk, .. } | Write::Check { pk, sk, .. } => pk.len() + sk.len(),
            Write::Append { pk, data, .. } => pk.len() + 20 + json_size(data) + 32,
        }
    }
}

/// Sets the range fields of a receipt's document.
pub fn fill_receipt(data: &mut Value, range: Option<(u64, u64)>) {
    let (first, last) = range.unwrap_or((0, 0));
    if let Value::Object(map) = data {
        map.insert("first".into(), Value::from(first));
        map.insert("last".into(), Value::from(last));
    }
}

/// What a transaction returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxResult {
    /// The sequence number assigned to each `Append`, in the order of the writes.
    pub appended: Vec<u64>,
}

/// A log entry a store just committed, as reported to an [`AppendListener`].
#[derive(Clone, Copy, Debug)]
pub struct Appended<'a> {
    /// The log partition.
    pub pk: &'a str,
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's document.
    pub data: &'a Value,
    /// When the entry expires (Unix seconds).
    pub expires_at: Option<i64>,
}

/// Hears of every append a store commits, so that watchers learn of new entries without reading
/// the store. Called on the store's own thread: it must be quick and must not block.
pub trait AppendListener: Send + Sync {
    /// The appends of one committed transaction (or of several, committed together), in commit
    /// order.
    fn appended(&self, entries: &[Appended<'_>]);
}

/// Which sort keys a query reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkRange {
    /// Every item of the partition.
    All,
    /// Sort keys starting with this prefix.
    Prefix(String),
    /// Sort keys from the first to the second, both included.
    Between(String, String),
}

/// Sort-key order of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A read of one partition.
#[derive(Clone, Debug)]
pub struct Query {
    /// The partition.
    pub pk: String,
    /// Which sort keys.
    pub range: SkRange,
    /// Order of the results.
    pub order: Order,
    /// At most this many items.
    pub limit: usize,
    /// Continue after this sort key (from a previous page's `resume`).
    pub resume: Option<String>,
}

impl Query {
    /// Every item of `pk` in ascending order, at most `limit`.
    pub fn partition(pk: impl Into<String>, limit: usize) -> Self {
        Self { pk: pk.into(), range: SkRange::All, order: Order::Asc, limit, resume: None }
    }

    /// The items of `pk` whose sort key starts with `prefix`, ascending, at most `limit`.
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>, limit: usize) -> Self {
        let prefix = prefix.into();
        let range = if prefix.is_empty() { SkRange::All } else { SkRange::Prefix(prefix) };
        Self { range, ..Self::partition(pk, limit) }
    }

    /// The entries of log partition `pk` with sequence numbers in `from..=to`.
    pub fn log(pk: impl Into<String>, from: u64, to: u64, limit: usize) -> Self {
        Self { range: SkRange::Between(log_sk(from), log_sk(to)), ..Self::partition(pk, limit) }
    }

    /// Whether `sk` lies in this query's range (ignoring `resume`).
    pub fn in_range(&self, sk: &str) -> bool {
        match &self.range {
            SkRange::All => true,
            SkRange::Prefix(p) => sk.starts_with(p.as_str()),
            SkRange::Between(a, b) => a.as_str() <= sk && sk <= b.as_str(),
        }
    }
}

/// One page of a query.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The items, in the query's order.
    pub items: Vec<Item>,
    /// The sort key to resume after, when more items may follow.
    pub resume: Option<String>,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's condition did not hold; nothing was written.
    #[error("condition failed on write {index}")]
    ConditionFailed {
        /// Index of the write whose condition failed.
        index: usize,
    },
    /// The request breaks a limit of the store (size, count, duplicate key).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The store is overloaded or unreachable; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The store.
#[async_trait]
pub trait Store: Send + Sync {
    /// Reads one live item.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Reads several items at once; the result has one slot per key, in order.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            out.push(self.get(pk, sk).await?);
        }
        Ok(out)
    }

    /// Writes one item if `cond` holds.
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.transact(vec![Write::Put { item, cond }]).await.map(|_| ())
    }

    /// Deletes one item if `cond` holds.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let write = Write::Delete { pk: pk.to_owned(), sk: sk.to_owned(), cond };
        self.transact(vec![write]).await.map(|_| ())
    }

    /// Applies all writes atomically, or none.
    async fn transact(&self, writes: Vec<Write>) -> Result<TxResult, StoreError>;

    /// How large a transaction this backend takes.
    fn tx_limits(&self) -> TxLimits;

    /// Reads one page of one partition.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;

    /// Reports every append committed from now on to `listener` (until it is dropped), and returns
    /// true; or returns false, when this backend cannot see every append (writers in other
    /// processes), and then reports nothing.
    fn listen_appends(&self, listener: Weak<dyn AppendListener>) -> bool {
        let _ = listener;
        false
    }

    /// The last sequence number appended to log partition `pk` (0 when none).
    async fn log_head(&self, pk: &str) -> Result<u64, StoreError> {
        let head = self.get(pk, LOG_HEAD_SK).await?;
        Ok(head.and_then(|h| h.data.get("seq").and_then(Value::as_u64)).unwrap_or(0))
    }
}

/// Checks a transaction against a backend's limits and the rules every backend shares.
pub fn check_transaction(writes: &[Write], limits: TxLimits) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Err(StoreError::Invalid("a transaction needs at least one write".into()));
    }
    if writes.len() > limits.writes {
        return Err(StoreError::Invalid(format!(
            "a transaction holds at most {} writes, not {}",
            limits.writes,
            writes.len()
        )));
    }
    let mut total = 0usize;
    let mut keys = std::collections::HashSet::new();
    let mut appended = std::collections::HashSet::new();
    for w in writes {
        let size = w.size();
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::Invalid(format!("item of {size} bytes exceeds {MAX_ITEM_BYTES}")));
        }
        total += size;
        let (pk, sk) = w.key();
        check_key(pk, sk)?;
        if let Write::Append { pk, .. } = w {
            appended.insert(pk.clone());
            continue;
        }
        if !keys.insert((pk.to_owned(), sk.to_owned())) {
            return Err(StoreError::Invalid(format!("key {pk}/{sk} appears twice in one transaction")));
        }
    }
    if keys.iter().any(|(pk, sk)| sk == LOG_HEAD_SK && appended.contains(pk)) {
        return Err(StoreError::Invalid("a transaction may not write a log head it appends to".into()));
    }
    if total > limits.bytes {
        return Err(StoreError::Invalid(format!("transaction of {total} bytes exceeds {}", limits.bytes)));
    }
    Ok(())
}

/// Checks key lengths.
pub fn check_key(pk: &str, sk: &str) -> Result<(), StoreError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(StoreError::Invalid("keys may not be empty".into()));
    }
    if pk.len() > MAX_PK_BYTES || sk.len() > MAX_SK_BYTES {
        return Err(StoreError::Invalid(format!("key {pk}/{sk} is too long")));
    }
    Ok(())
}
