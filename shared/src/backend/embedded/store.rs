//! The embedded store: items in a redb table keyed by `(pk, sk)`, an expiry index for purging,
//! and conditions checked inside the group commit, so concurrent writers are serialized exactly.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde_json::{Value, json};

use super::db::{Db, JobError};
use crate::ports::Clock;
use crate::ports::store::{
    Cond, Item, LOG_HEAD_SK, Order, Page, Query, SkRange, Store, StoreError, TxResult, Write, check_key,
    check_transaction, fill_receipt, log_sk,
};

/// `(pk, sk)` → encoded record.
pub(crate) const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
/// `(expires_at, pk, sk)` → nothing: which items to purge when.
pub(crate) const EXPIRY: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("expiry");

/// Sorts after every sort key the engine writes.
const SK_MAX: &str = "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}";
/// Most items purged in one batch.
const PURGE_BATCH: usize = 10_000;

/// One stored record.
struct Record {
    version: u64,
    expires_at: Option<i64>,
    data: Vec<u8>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.data.len());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.expires_at.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() < 16 {
            return Err(StoreError::Other(anyhow::anyhow!("corrupt record of {} bytes", bytes.len())));
        }
        let version = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        let expires = i64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
        Ok(Self { version, expires_at: (expires != i64::MIN).then_some(expires), data: bytes[16..].to_vec() })
    }

    fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn into_item(self, pk: &str, sk: &str) -> Result<Item, StoreError> {
        let data: Value = serde_json::from_slice(&self.data)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("corrupt document at {pk}/{sk}: {e}")))?;
        Ok(Item { pk: pk.to_owned(), sk: sk.to_owned(), data, expires_at: self.expires_at, version: self.version })
    }
}

/// The embedded implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl EmbeddedStore {
    /// A store over an open database.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
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
            Some(bytes) => Record::decode(bytes.value()).map(|r| !r.live(now)).unwrap_or(true),
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

/// The live record at a key, read inside the write transaction.
fn live_record(items: &Items<'_>, pk: &str, sk: &str, now: i64) -> Result<Option<Record>, JobError<StoreError>> {
    let Some(bytes) = items.get((pk, sk))? else { return Ok(None) };
    let record = Record::decode(bytes.value()).map_err(JobError::Rejected)?;
    Ok(record.live(now).then_some(record))
}

fn holds(cond: Cond, current: Option<&Record>) -> bool {
    match cond {
        Cond::Any => true,
        Cond::Absent => current.is_none(),
        Cond::Present => current.is_some(),
        Cond::Version(v) => current.is_some_and(|r| r.version == v),
    }
}

/// Writes a record, keeping the expiry index in step; the version follows any previous one.
fn write_record(
    items: &mut Items<'_>,
    expiry: &mut Expiry<'_>,
    pk: &str,
    sk: &str,
    data: &Value,
    expires_at: Option<i64>,
) -> Result<(), JobError<StoreError>> {
    let previous = items.get((pk, sk))?.map(|b| Record::decode(b.value())).transpose().map_err(JobError::Rejected)?;
    if let Some(at) = previous.as_ref().and_then(|p| p.expires_at) {
        expiry.remove((at, pk, sk))?;
    }
    let version = previous.map_or(1, |p| p.version + 1);
    let data = serde_json::to_vec(data).map_err(|e| JobError::Rejected(StoreError::Invalid(e.to_string())))?;
    let record = Record { version, expires_at, data };
    items.insert((pk, sk), record.encode().as_slice())?;
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
        items.remove((pk, sk))?.map(|b| Record::decode(b.value())).transpose().map_err(JobError::Rejected)?;
    if let Some(at) = previous.and_then(|p| p.expires_at) {
        expiry.remove((at, pk, sk))?;
    }
    Ok(())
}

fn apply(txn: &WriteTransaction, writes: &[Write], now: i64) -> Result<TxResult, JobError<StoreError>> {
    let mut items = txn.open_table(ITEMS)?;
    let mut expiry = txn.open_table(EXPIRY)?;
    for (index, write) in writes.iter().enumerate() {
        let cond = match write {
            Write::Put { cond, .. } | Write::Delete { cond, .. } | Write::Check { cond, .. } => *cond,
            Write::Append { .. } | Write::Receipt { .. } => continue,
        };
        let (pk, sk) = write.key();
        let current = live_record(&items, pk, sk, now)?;
        if !holds(cond, current.as_ref()) {
            return Err(JobError::Rejected(StoreError::ConditionFailed { index }));
        }
    }
    let mut result = TxResult::default();
    let mut ranges: HashMap<&str, (u64, u64)> = HashMap::new();
    for write in writes {
        match write {
            Write::Put { item, .. } => {
                write_record(&mut items, &mut expiry, &item.pk, &item.sk, &item.data, item.expires_at)?;
            }
            Write::Delete { pk, sk, .. } => remove_record(&mut items, &mut expiry, pk, sk)?,
            Write::Check { .. } | Write::Receipt { .. } => {}
            Write::Append { pk, data, expires_at } => {
                let head = items
                    .get((pk.as_str(), LOG_HEAD_SK))?
                    .map(|b| Record::decode(b.value()))
                    .transpose()
                    .map_err(JobError::Rejected)?;
                let last = head
                    .and_then(|h| serde_json::from_slice::<Value>(&h.data).ok())
                    .and_then(|v| v.get("seq").and_then(Value::as_u64))
                    .unwrap_or(0);
                let seq = last + 1;
                write_record(&mut items, &mut expiry, pk, &log_sk(seq), data, *expires_at)?;
                write_record(&mut items, &mut expiry, pk, LOG_HEAD_SK, &json!({ "seq": seq }), None)?;
                result.appended.push(seq);
                ranges.entry(pk.as_str()).and_modify(|r| r.1 = seq).or_insert((seq, seq));
            }
        }
    }
    for write in writes {
        if let Write::Receipt { item, log } = write {
            let mut data = item.data.clone();
            fill_receipt(&mut data, ranges.get(log.as_str()).copied());
            write_record(&mut items, &mut expiry, &item.pk, &item.sk, &data, item.expires_at)?;
        }
    }
    Ok(result)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        check_key(pk, sk)?;
        let txn = self.db.read().map_err(Self::read_err)?;
        let table = txn.open_table(ITEMS).map_err(Self::read_err)?;
        let Some(bytes) = table.get((pk, sk)).map_err(Self::read_err)? else { return Ok(None) };
        let record = Record::decode(bytes.value())?;
        if !record.live(self.clock.now_secs()) {
            return Ok(None);
        }
        record.into_item(pk, sk).map(Some)
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let txn = self.db.read().map_err(Self::read_err)?;
        let table = txn.open_table(ITEMS).map_err(Self::read_err)?;
        let now = self.clock.now_secs();
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            check_key(pk, sk)?;
            let item = match table.get((pk.as_str(), sk.as_str())).map_err(Self::read_err)? {
                Some(bytes) => {
                    let record = Record::decode(bytes.value())?;
                    if record.live(now) { Some(record.into_item(pk, sk)?) } else { None }
                }
                None => None,
            };
            out.push(item);
        }
        Ok(out)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<TxResult, StoreError> {
        check_transaction(&writes)?;
        let now = self.clock.now_secs();
        self.db.write(move |txn| apply(txn, &writes, now)).await.map_err(to_store_error)
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
            let record = Record::decode(value.value())?;
            if record.live(now) {
                page.items.push(record.into_item(pk, sk)?);
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
