//! The embedded store: items in a redb table keyed by `(pk, sk)`, an expiry index for purging,
//! and conditions checked inside the group commit, so concurrent writers are serialized exactly.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use parking_lot::RwLock;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde_json::{Value, json};

use super::db::{Db, JobError};
use crate::ports::Clock;
use crate::ports::store::{
    AppendListener, Appended, Cond, Item, LOG_HEAD_SK, Order, Page, Query, SkRange, Store, StoreError, TxLimits,
    TxResult, Write, check_key, check_transaction, fill_receipt, log_sk,
};

/// The embedded store's transaction limits: one commit, so larger than DynamoDB's, which spares
/// callers splitting work into several commits (each one a wait for the disk).
pub const EMBEDDED_TX_LIMITS: TxLimits = TxLimits { writes: 10_000, bytes: 64 * 1024 * 1024 };

/// `(pk, sk)` → encoded record.
pub(crate) const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
/// `(expires_at, pk, sk)` → nothing: which items to purge when.
pub(crate) const EXPIRY: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("expiry");

/// Sorts after every sort key the engine writes.
const SK_MAX: &str = "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}";
/// Most items purged in one batch.
const PURGE_BATCH: usize = 10_000;

/// A stored record: version, expiry, then the JSON document.
struct Record;

/// The fixed part of a record.
#[derive(Clone, Copy)]
struct Header {
    version: u64,
    expires_at: Option<i64>,
}

impl Header {
    fn live(self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl Record {
    fn encode(header: Header, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + data.len());
        out.extend_from_slice(&header.version.to_le_bytes());
        out.extend_from_slice(&header.expires_at.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn header(bytes: &[u8]) -> Result<Header, StoreError> {
        let (Some(version), Some(expires)) = (bytes.get(..8), bytes.get(8..16)) else {
            return Err(StoreError::Other(anyhow::anyhow!("corrupt record of {} bytes", bytes.len())));
        };
        let version = u64::from_le_bytes(version.try_into().unwrap_or_default());
        let expires = i64::from_le_bytes(expires.try_into().unwrap_or_default());
        Ok(Header { version, expires_at: (expires != i64::MIN).then_some(expires) })
    }

    /// The item in `bytes`, if it is live at `now`.
    fn item(bytes: &[u8], pk: &str, sk: &str, now: i64) -> Result<Option<Item>, StoreError> {
        let header = Self::header(bytes)?;
        if !header.live(now) {
            return Ok(None);
        }
        let data: Value = serde_json::from_slice(&bytes[16..])
            .map_err(|e| StoreError::Other(anyhow::anyhow!("corrupt document at {pk}/{sk}: {e}")))?;
        Ok(Some(Item {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            data,
            expires_at: header.expires_at,
            version: header.version,
        }))
    }
}

/// Who hears of appends (see [`Store::listen_appends`]).
#[derive(Clone, Default)]
struct Listeners(Arc<RwLock<Vec<Weak<dyn AppendListener>>>>);

impl Listeners {
    fn add(&self, listener: Weak<dyn AppendListener>) {
        let mut all = self.0.write();
        all.retain(|l| l.strong_count() > 0);
        all.push(listener);
    }

    fn live(&self) -> Vec<Arc<dyn AppendListener>> {
        self.0.read().iter().filter_map(Weak::upgrade).collect()
    }
}

/// The embedded implementation of [`Store`]. Its database file is locked to this process, so it
/// sees every append and reports them to listeners.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Db,
    clock: Arc<dyn Clock>,
    listeners: Listeners,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

impl EmbeddedStore {
    /// A store over an open database.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock, listeners: Listeners::default() }
    }

    fn read_err(e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(e.to_string())
    }
}

fn to_store_error(e: JobError<StoreError>) -> StoreError {
    match e {
        JobError::Rejected(e) => e,
        JobError::Storage(e) => StoreError::Unavailable(e),
    }
}

/// Creates the store's tables and purges what expired (run by the writer thread).
pub(crate) fn purge_expired(txn: &WriteTransaction, now: i64) -> Result<(), redb::Error> {
    let mut expiry = txn.open_table(EXPIRY)?;
    let mut items = txn.open_table(ITEMS)?;
    let mut due = Vec::new();
    for entry in expiry.range((i64::MIN, "", "")..(now + 1, "", ""))? {
        let (key, _) = entry?;
        let (at, pk, sk) = key.value();
        due.push((at, pk.to_owned(), sk.to_owned()));
        if due.len() >= PURGE_BATCH {
            break;
        }
    }
    for (at, pk, sk) in due {
        expiry.remove((at, pk.as_str(), sk.as_str()))?;
        let still_due = match items.get((pk.as_str(), sk.as_str()))? {
            Some(bytes) => Record::header(bytes.value()).map(|h| !h.live(now)).unwrap_or(true),
            None => false,
        };
        if still_due {
            items.remove((pk.as_str(), sk.as_str()))?;
        }
    }
    Ok(())
}

type Items<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;
type Expiry<'t> = Table<'t, (i64, &'static str, &'static str), ()>;

fn holds(cond: Cond, current: Option<Header>) -> bool {
    match cond {
        Cond::Any => true,
        Cond::Absent => current.is_none(),
        Cond::Present => current.is_some(),
        Cond::Version(v) => current.is_some_and(|r| r.version == v),
    }
}

/// Writes a record, keeping the expiry index in step; the version follows any previous one.
/// The header stored at a key, live or expired.
fn stored_header(items: &Items<'_>, pk: &str, sk: &str) -> Result<Option<Header>, JobError<StoreError>> {
    items.get((pk, sk))?.map(|b| Record::header(b.value())).transpose().map_err(JobError::Rejected)
}

/// Where the header of the record a write replaces comes from.
enum Previous {
    /// Read when the conditions were checked.
    Known(Option<Header>),
    /// Not read yet.
    Unknown,
}

fn write_record(
    items: &mut Items<'_>,
    expiry: &mut Expiry<'_>,
    pk: &str,
    sk: &str,
    data: &Value,
    expires_at: Option<i64>,
    previous: Previous,
) -> Result<(), JobError<StoreError>> {
    let previous = match previous {
        Previous::Known(h) => h,
        Previous::Unknown => stored_header(items, pk, sk)?,
    };
    if let Some(at) = previous.and_then(|p| p.expires_at) {
        expiry.remove((at, pk, sk))?;
    }
    let version = previous.map_or(1, |p| p.version + 1);
    let data = serde_json::to_vec(data).map_err(|e| JobError::Rejected(StoreError::Invalid(e.to_string())))?;
    items.insert((pk, sk), Record::encode(Header { version, expires_at }, &data).as_slice())?;
    if let Some(at) = expires_at {
        expiry.insert((at, pk, sk), ())?;
    }
    Ok(())
}

fn remove_record(
    items: &mut Items<'_>,
    expiry: &mut Expiry<'_>,
    pk: &str,
    sk: &str,
) -> Result<(), JobError<StoreError>> {
    let previous =
        items.remove((pk, sk))?.map(|b| Record::header(b.value())).transpose().map_err(JobError::Rejected)?;
    if let Some(at) = previous.and_then(|p| p.expires_at) {
        expiry.remove((at, pk, sk))?;
    }
    Ok(())
}

fn apply(txn: &WriteTransaction, writes: &[Write], now: i64) -> Result<TxResult, JobError<StoreError>> {
    let mut items = txn.open_table(ITEMS)?;
    let mut expiry = txn.open_table(EXPIRY)?;
    // Read each touched key once: its header decides the condition and is replaced by the write.
    let mut previous = Vec::with_capacity(writes.len());
    for (index, write) in writes.iter().enumerate() {
        let cond = match write {
            Write::Put { cond, .. } | Write::Delete { cond, .. } | Write::Check { cond, .. } => *cond,
            Write::Append { .. } | Write::Receipt { .. } => {
                previous.push(None);
                continue;
            }
        };
        let (pk, sk) = write.key();
        let stored = stored_header(&items, pk, sk)?;
        if !holds(cond, stored.filter(|h| h.live(now))) {
            return Err(JobError::Rejected(StoreError::ConditionFailed { index }));
        }
        previous.push(stored);
    }
    let mut result = TxResult::default();
    let mut ranges: HashMap<&str, (u64, u64)> = HashMap::new();
    for (write, previous) in writes.iter().zip(previous) {
        match write {
            Write::Put { item, .. } => {
                let known = Previous::Known(previous);
                write_record(&mut items, &mut expiry, &item.pk, &item.sk, &item.data, item.expires_at, known)?;
            }
            Write::Delete { pk, sk, .. } => remove_record(&mut items, &mut expiry, pk, sk)?,
            Write::Check { .. } | Write::Receipt { .. } => {}
            Write::Append { pk, data, expires_at } => {
                let last = match ranges.get(pk.as_str()) {
                    Some((_, last)) => *last,
                    None => match items.get((pk.as_str(), LOG_HEAD_SK))? {
                        Some(b) => serde_json::from_slice::<Value>(b.value().get(16..).unwrap_or_default())
                            .ok()
                            .and_then(|v| v.get("seq").and_then(Value::as_u64))
                            .unwrap_or(0),
                        None => 0,
                    },
                };
                let seq = last + 1;
                // Sequence numbers are never reused, so the entry's key is new.
                write_record(&mut items, &mut expiry, pk, &log_sk(seq), data, *expires_at, Previous::Known(None))?;
                result.appended.push(seq);
                ranges.entry(pk.as_str()).and_modify(|r| r.1 = seq).or_insert((seq, seq));
            }
        }
    }
    // Each log head is written once, with the last sequence number this transaction assigned.
    for (pk, (_, last)) in &ranges {
        write_record(&mut items, &mut expiry, pk, LOG_HEAD_SK, &json!({ "seq": last }), None, Previous::Unknown)?;
    }
    for write in writes {
        if let Write::Receipt { item, log } = write {
            let mut data = item.data.clone();
            fill_receipt(&mut data, ranges.get(log.as_str()).copied());
            write_record(&mut items, &mut expiry, &item.pk, &item.sk, &data, item.expires_at, Previous::Unknown)?;
        }
    }
    Ok(result)
}

/// Tells `listeners` what a committed transaction appended.
fn report_appends(listeners: &[Arc<dyn AppendListener>], writes: &[Write], result: &TxResult) {
    let appends = writes.iter().filter_map(|w| match w {
        Write::Append { pk, data, expires_at } => Some((pk, data, *expires_at)),
        _ => None,
    });
    let entries: Vec<Appended<'_>> = appends
        .zip(&result.appended)
        .map(|((pk, data, expires_at), seq)| Appended { pk, seq: *seq, data, expires_at })
        .collect();
    for listener in listeners {
        listener.appended(&entries);
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        check_key(pk, sk)?;
        let txn = self.db.read().map_err(Self::read_err)?;
        let table = txn.open_table(ITEMS).map_err(Self::read_err)?;
        let Some(bytes) = table.get((pk, sk)).map_err(Self::read_err)? else { return Ok(None) };
        Record::item(bytes.value(), pk, sk, self.clock.now_secs())
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let txn = self.db.read().map_err(Self::read_err)?;
        let table = txn.open_table(ITEMS).map_err(Self::read_err)?;
        let now = self.clock.now_secs();
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            check_key(pk, sk)?;
            let item = match table.get((pk.as_str(), sk.as_str())).map_err(Self::read_err)? {
                Some(bytes) => Record::item(bytes.value(), pk, sk, now)?,
                None => None,
            };
            out.push(item);
        }
        Ok(out)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<TxResult, StoreError> {
        check_transaction(&writes, self.tx_limits())?;
        let now = self.clock.now_secs();
        let listeners =
            if writes.iter().any(|w| matches!(w, Write::Append { .. })) { self.listeners.live() } else { Vec::new() };
        if listeners.is_empty() {
            return self.db.write(move |txn| apply(txn, &writes, now)).await.map_err(to_store_error);
        }
        let writes = Arc::new(writes);
        let applied = Arc::clone(&writes);
        let committed = move |result: &TxResult| report_appends(&listeners, &writes, result);
        self.db.write_then(move |txn| apply(txn, &applied, now), committed).await.map_err(to_store_error)
    }

    fn listen_appends(&self, listener: Weak<dyn AppendListener>) -> bool {
        self.listeners.add(listener);
        true
    }

    fn tx_limits(&self) -> TxLimits {
        EMBEDDED_TX_LIMITS
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        check_key(&query.pk, "-")?;
        if query.limit == 0 {
            return Ok(Page::default());
        }
        let txn = self.db.read().map_err(Self::read_err)?;
        let table = txn.open_table(ITEMS).map_err(Self::read_err)?;
        let now = self.clock.now_secs();
        let pk = query.pk.as_str();
        let (low, high) = match &query.range {
            SkRange::All => ("", SK_MAX),
            SkRange::Prefix(p) => (p.as_str(), SK_MAX),
            SkRange::Between(a, b) => (a.as_str(), b.as_str()),
        };
        let (mut lower, mut upper) = (Bound::Included((pk, low)), Bound::Included((pk, high)));
        if let Some(resume) = query.resume.as_deref() {
            match query.order {
                Order::Asc => lower = Bound::Excluded((pk, resume)),
                Order::Desc => upper = Bound::Excluded((pk, resume)),
            }
        }
        let range = table.range::<(&str, &str)>((lower, upper)).map_err(Self::read_err)?;
        let mut page = Page::default();
        let mut visit = |entry: Result<
            (redb::AccessGuard<'_, (&str, &str)>, redb::AccessGuard<'_, &[u8]>),
            redb::StorageError,
        >|
         -> Result<bool, StoreError> {
            let (key, value) = entry.map_err(Self::read_err)?;
            let (_, sk) = key.value();
            if !query.in_range(sk) {
                // Prefix ranges are read up to SK_MAX; stop at the first key past the prefix
                // in ascending order, skip keys above it in descending order.
                return Ok(query.order == Order::Desc);
            }
            if let Some(item) = Record::item(value.value(), pk, sk, now)? {
                page.items.push(item);
            }
            Ok(page.items.len() < query.limit)
        };
        match query.order {
            Order::Asc => {
                for entry in range {
                    if !visit(entry)? {
                        break;
                    }
                }
            }
            Order::Desc => {
                for entry in range.rev() {
                    if !visit(entry)? {
                        break;
                    }
                }
            }
        }
        if page.items.len() >= query.limit {
            page.resume = page.items.last().map(|i| i.sk.clone());
        }
        Ok(page)
    }
}

/// Creates the store's tables, so that readers never meet a missing table.
pub(crate) async fn create_tables(db: &Db) -> anyhow::Result<()> {
    db.write(|txn: &WriteTransaction| {
        txn.open_table(ITEMS)?;
        txn.open_table(EXPIRY)?;
        Ok::<_, JobError<StoreError>>(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", to_store_error(e)))
}
