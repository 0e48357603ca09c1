//! The DynamoDB store: one table with `pk` (S, hash) and `sk` (S, range); the document in `d` (a
//! JSON string, so any JSON round-trips exactly), the version in `v`, the expiry in `expires_at`
//! (the table's TTL attribute). Reads are strongly consistent and skip items whose TTL has passed
//! (DynamoDB deletes them late); conditions treat such items as absent.
//!
//! Appends read the log head and write it back with a condition on its sequence number; a
//! concurrent append makes the transaction fail on the head, and it is retried with fresh heads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, KeysAndAttributes, TransactWriteItem, Update};
use serde_json::Value;

use crate::ports::Clock;
use crate::ports::store::{
    Cond, DYNAMODB_TX_LIMITS, Item, LOG_HEAD_SK, Order, Page, Query, SkRange, Store, StoreError, TxLimits, TxResult,
    Write, check_key, check_transaction, fill_receipt, log_sk,
};

/// How many times a transaction is retried after losing a race on a log head or a conflict.
const MAX_ATTEMPTS: u32 = 500;
/// The longest pause between attempts.
const MAX_PAUSE_MS: u64 = 100;

/// The DynamoDB implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A condition expression with its names and values.
struct Expr {
    text: Option<String>,
    names: HashMap<String, String>,
    values: Attrs,
}

const LIVE: &str = "(attribute_not_exists(#e) OR #e > :now)";

fn condition(cond: Cond, now: i64) -> Expr {
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let text = match cond {
        Cond::Any => None,
        Cond::Absent => {
            names.insert("#pk".into(), "pk".into());
            Some("(attribute_not_exists(#pk) OR #e <= :now)".to_owned())
        }
        Cond::Present => {
            names.insert("#pk".into(), "pk".into());
            Some(format!("attribute_exists(#pk) AND {LIVE}"))
        }
        Cond::Version(v) => {
            names.insert("#v".into(), "v".into());
            values.insert(":ver".into(), n(v));
            Some(format!("#v = :ver AND {LIVE}"))
        }
    };
    if text.is_some() {
        names.insert("#e".into(), "expires_at".into());
        values.insert(":now".into(), n(now));
    }
    Expr { text, names, values }
}

/// The parts of an update that writes a whole document (and the head's numeric `seq`).
struct PutParts {
    key: Attrs,
    update: String,
    expr: Expr,
}

fn put_parts(item: &Item, mut expr: Expr, seq: Option<u64>) -> PutParts {
    expr.names.insert("#d".into(), "d".into());
    expr.names.insert("#v".into(), "v".into());
    expr.names.insert("#e".into(), "expires_at".into());
    expr.values.insert(":d".into(), s(item.data.to_string()));
    expr.values.insert(":zero".into(), n(0));
    expr.values.insert(":one".into(), n(1));
    let mut set = vec!["#d = :d".to_owned(), "#v = if_not_exists(#v, :zero) + :one".to_owned()];
    if let Some(seq) = seq {
        expr.names.insert("#s".into(), "seq".into());
        expr.values.insert(":seq".into(), n(seq));
        set.push("#s = :seq".into());
    }
    let mut update = format!("SET {}", set.join(", "));
    match item.expires_at {
        Some(at) => {
            expr.values.insert(":exp".into(), n(at));
            update.push_str(", #e = :exp");
        }
        None => update.push_str(" REMOVE #e"),
    }
    PutParts { key: key(&item.pk, &item.sk), update, expr }
}

fn transact_update(table: &str, parts: PutParts) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(parts.key))
        .update_expression(parts.update)
        .set_condition_expression(parts.expr.text)
        .set_expression_attribute_names(Some(parts.expr.names))
        .set_expression_attribute_values(Some(parts.expr.values))
        .build()
        .map_err(|e| StoreError::Other(e.into()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn decode_item(attrs: &Attrs, now: i64) -> Result<Option<Item>, StoreError> {
    let get_s = |name: &str| match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Other(anyhow::anyhow!("item lacks string attribute {name}"))),
    };
    let get_n = |name: &str| match attrs.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
        _ => None,
    };
    let expires_at = get_n("expires_at");
    if expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let (pk, sk) = (get_s("pk")?, get_s("sk")?);
    let data: Value = serde_json::from_str(&get_s("d")?)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("corrupt document at {pk}/{sk}: {e}")))?;
    let version = get_n("v").and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(Some(Item { pk, sk, data, expires_at, version }))
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError {
    let code = e.code().unwrap_or_default().to_owned();
    if matches!(
        code.as_str(),
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
    ) || matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
    {
        return StoreError::Unavailable(format!("{code}: {}", e.message().unwrap_or_default()));
    }
    if code == "ValidationException" {
        return StoreError::Invalid(e.message().unwrap_or_default().to_owned());
    }
    StoreError::Other(anyhow::anyhow!("{}", DisplayErrorContext(&e)))
}

/// Where an item of a DynamoDB transaction came from.
#[derive(Clone, Copy)]
enum Origin {
    Caller(usize),
    Log,
}

/// Outcome of one transaction attempt.
enum Attempt {
    Done(TxResult),
    Retry,
}

/// A growing pause between attempts with full jitter, so that writers that lost a race do not
/// collide again in step (and a writer that lost often is not starved by fresh ones).
async fn pause(attempt: u32) {
    let cap = (4u64 << attempt.min(10)).min(MAX_PAUSE_MS);
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % cap + 1)).await;
}

impl DynamoStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self { client, table: table.into(), clock }
    }

    async fn heads(&self, writes: &[Write]) -> Result<HashMap<String, u64>, StoreError> {
        let mut heads = HashMap::new();
        for w in writes {
            if let Write::Append { pk, .. } = w
                && !heads.contains_key(pk)
            {
                heads.insert(pk.clone(), self.log_head(pk).await?);
            }
        }
        Ok(heads)
    }

    async fn attempt(&self, writes: &[Write]) -> Result<Attempt, StoreError> {
        let now = self.clock.now_secs();
        let heads = self.heads(writes).await?;
        let mut next: HashMap<String, u64> = heads.clone();
        let mut ranges: HashMap<&str, (u64, u64)> = HashMap::new();
        for w in writes {
            if let Write::Append { pk, .. } = w {
                let seq = next.get(pk).copied().unwrap_or(0) + 1;
                next.insert(pk.clone(), seq);
                ranges.entry(pk.as_str()).and_modify(|r| r.1 = seq).or_insert((seq, seq));
            }
        }
        let mut assigned: HashMap<String, u64> = heads.clone();
        let mut items = Vec::new();
        let mut origins = Vec::new();
        let mut result = TxResult::default();
        for (index, w) in writes.iter().enumerate() {
            let item = match w {
                Write::Put { item, cond } => {
                    transact_update(&self.table, put_parts(item, condition(*cond, now), None))?
                }
                Write::Delete { pk, sk, cond } => {
                    let expr = condition(*cond, now);
                    let has = expr.text.is_some();
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .set_condition_expression(expr.text)
                        .set_expression_attribute_names(has.then_some(expr.names))
                        .set_expression_attribute_values(has.then_some(expr.values))
                        .build()
                        .map_err(|e| StoreError::Other(e.into()))?;
                    TransactWriteItem::builder().delete(delete).build()
                }
                Write::Check { pk, sk, cond } => {
                    let mut expr = condition(*cond, now);
                    let text = expr.text.take().unwrap_or_else(|| {
                        expr.names.insert("#pk".into(), "pk".into());
                        "attribute_exists(#pk) OR attribute_not_exists(#pk)".into()
                    });
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .condition_expression(text)
                        .set_expression_attribute_names(Some(expr.names))
                        .set_expression_attribute_values((!expr.values.is_empty()).then_some(expr.values))
                        .build()
                        .map_err(|e| StoreError::Other(e.into()))?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
                Write::Receipt { item, log } => {
                    let mut filled = item.clone();
                    fill_receipt(&mut filled.data, ranges.get(log.as_str()).copied());
                    transact_update(&self.table, put_parts(&filled, condition(Cond::Any, now), None))?
                }
                Write::Append { pk, data, expires_at } => {
                    let seq = assigned.get(pk).copied().unwrap_or(0) + 1;
                    assigned.insert(pk.clone(), seq);
                    result.appended.push(seq);
                    let entry = Item { expires_at: *expires_at, ..Item::new(pk.clone(), log_sk(seq), data.clone()) };
                    items.push(transact_update(&self.table, put_parts(&entry, condition(Cond::Absent, now), None))?);
                    origins.push(Origin::Log);
                    continue;
                }
            };
            items.push(item);
            origins.push(Origin::Caller(index));
        }
        for (pk, last) in &next {
            let before = heads.get(pk).copied().unwrap_or(0);
            let head = Item::new(pk.clone(), LOG_HEAD_SK, serde_json::json!({ "seq": last }));
            let mut expr = Expr { text: None, names: HashMap::new(), values: HashMap::new() };
            if before == 0 {
                expr.text = Some("attribute_not_exists(#s)".to_owned());
            } else {
                expr.text = Some("#s = :before".to_owned());
                expr.values.insert(":before".into(), n(before));
            }
            items.push(transact_update(&self.table, put_parts(&head, expr, Some(*last)))?);
            origins.push(Origin::Log);
        }
        let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let error = match sent {
            Ok(_) => return Ok(Attempt::Done(result)),
            Err(e) => e,
        };
        if let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c),
        ) = error.as_service_error()
        {
            let reasons = c.cancellation_reasons();
            for (i, reason) in reasons.iter().enumerate() {
                match (reason.code(), origins.get(i)) {
                    (Some("ConditionalCheckFailed"), Some(Origin::Caller(index))) => {
                        return Err(StoreError::ConditionFailed { index: *index });
                    }
                    (Some("ConditionalCheckFailed"), Some(Origin::Log)) => return Ok(Attempt::Retry),
                    (Some("ValidationError"), _) => {
                        return Err(StoreError::Invalid(reason.message().unwrap_or_default().to_owned()));
                    }
                    _ => {}
                }
            }
            // Conflicts with concurrent transactions, throttling: retry.
            return Ok(Attempt::Retry);
        }
        if error.code() == Some("TransactionConflictException") {
            return Ok(Attempt::Retry);
        }
        match sdk_error(error) {
            StoreError::Unavailable(_) => Ok(Attempt::Retry),
            other => Err(other),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        check_key(pk, sk)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item() {
            Some(attrs) => decode_item(attrs, self.clock.now_secs()),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut unique: Vec<Attrs> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (pk, sk) in chunk {
                check_key(pk, sk)?;
                if seen.insert((pk.as_str(), sk.as_str())) {
                    unique.push(key(pk, sk));
                }
            }
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(unique))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Other(e.into()))?,
            );
            let mut attempt = 0;
            while let Some(keys_and_attrs) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys_and_attrs)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let now = self.clock.now_secs();
                for attrs in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(item) = decode_item(attrs, now)? {
                        found.insert((item.pk.clone(), item.sk.clone()), item);
                    }
                }
                request = out.unprocessed_keys().and_then(|u| u.get(&self.table)).cloned();
                if request.is_some() {
                    attempt += 1;
                    if attempt > MAX_ATTEMPTS {
                        return Err(StoreError::Unavailable("batch get kept leaving keys unprocessed".into()));
                    }
                    pause(attempt).await;
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        check_transaction(std::slice::from_ref(&Write::Put { item: item.clone(), cond }), DYNAMODB_TX_LIMITS)?;
        let parts = put_parts(&item, condition(cond, self.clock.now_secs()), None);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(parts.key))
            .update_expression(parts.update)
            .set_condition_expression(parts.expr.text)
            .set_expression_attribute_names(Some(parts.expr.names))
            .set_expression_attribute_values(Some(parts.expr.values))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(StoreError::ConditionFailed { index: 0 })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<TxResult, StoreError> {
        check_transaction(&writes, self.tx_limits())?;
        let extra = writes
            .iter()
            .filter_map(|w| if let Write::Append { pk, .. } = w { Some(pk) } else { None })
            .collect::<std::collections::HashSet<_>>()
            .len();
        if writes.len() + extra > DYNAMODB_TX_LIMITS.writes {
            return Err(StoreError::Invalid("transaction too large once log heads are counted".into()));
        }
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(&writes).await? {
                Attempt::Done(result) => return Ok(result),
                Attempt::Retry => pause(attempt).await,
            }
        }
        Err(StoreError::Unavailable("transaction kept conflicting with concurrent writers".into()))
    }

    fn tx_limits(&self) -> TxLimits {
        // The head of each log appended to is one more write.
        TxLimits { writes: DYNAMODB_TX_LIMITS.writes - 1, ..DYNAMODB_TX_LIMITS }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        check_key(&query.pk, "-")?;
        let mut page = Page::default();
        if query.limit == 0 {
            return Ok(page);
        }
        let mut names =
            HashMap::from([("#pk".to_owned(), "pk".to_owned()), ("#e".to_owned(), "expires_at".to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), s(&query.pk))]);
        let key_condition = match &query.range {
            SkRange::All => "#pk = :pk".to_owned(),
            SkRange::Prefix(p) if p.is_empty() => "#pk = :pk".to_owned(),
            SkRange::Prefix(p) => {
                names.insert("#sk".into(), "sk".into());
                values.insert(":p".into(), s(p));
                "#pk = :pk AND begins_with(#sk, :p)".to_owned()
            }
            SkRange::Between(a, b) => {
                names.insert("#sk".into(), "sk".into());
                values.insert(":a".into(), s(a));
                values.insert(":b".into(), s(b));
                "#pk = :pk AND #sk BETWEEN :a AND :b".to_owned()
            }
        };
        let mut start = query.resume.as_deref().map(|sk| key(&query.pk, sk));
        loop {
            values.insert(":now".into(), n(self.clock.now_secs()));
            let remaining = query.limit - page.items.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .filter_expression(LIVE)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(query.order == Order::Asc)
                .consistent_read(true)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            let now = self.clock.now_secs();
            for attrs in out.items() {
                if let Some(item) = decode_item(attrs, now)? {
                    page.items.push(item);
                }
            }
            if page.items.len() >= query.limit {
                page.resume = page.items.last().map(|i| i.sk.clone());
                return Ok(page);
            }
            match out.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(page),
            }
        }
    }
}
