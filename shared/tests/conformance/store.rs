//! Store cases: each takes a fresh store and checks one part of the port's contract.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard::ports::store::{LOG_HEAD_SK, log_sk, parse_log_sk};
use switchyard::ports::{AppendListener, Appended, Clock, Cond, Item, Order, Query, SkRange, StoreError, Write};

use crate::harness::StoreHarness;

fn item(pk: &str, sk: &str, n: i64) -> Item {
    Item::new(pk, sk, json!({ "n": n, "name": format!("{pk}/{sk}"), "nested": { "list": [1, 2.5, "x", null] } }))
}

fn failed_index(e: StoreError) -> usize {
    match e {
        StoreError::ConditionFailed { index } => index,
        other => panic!("expected a condition failure, got {other}"),
    }
}

pub async fn put_then_get_round_trips(h: StoreHarness) {
    let s = &h.store;
    assert_eq!(s.get("p", "missing").await.unwrap(), None);
    let written = item("p", "a", 1);
    s.put(written.clone(), Cond::Any).await.unwrap();
    let read = s.get("p", "a").await.unwrap().expect("item");
    assert_eq!(read.data, written.data);
    assert_eq!(read.expires_at, None);
    assert!(read.version > 0);
    // Replacing gives a new version and the new document.
    s.put(item("p", "a", 2), Cond::Any).await.unwrap();
    let again = s.get("p", "a").await.unwrap().expect("item");
    assert_eq!(again.data["n"], 2);
    assert_ne!(again.version, read.version);
}

pub async fn absent_condition_guards_creation(h: StoreHarness) {
    let s = &h.store;
    s.put(item("p", "a", 1), Cond::Absent).await.unwrap();
    let e = s.put(item("p", "a", 2), Cond::Absent).await.unwrap_err();
    assert_eq!(failed_index(e), 0);
    assert_eq!(s.get("p", "a").await.unwrap().unwrap().data["n"], 1, "a failed write changes nothing");
}

pub async fn version_condition_detects_concurrent_change(h: StoreHarness) {
    let s = &h.store;
    s.put(item("p", "a", 1), Cond::Absent).await.unwrap();
    let seen = s.get("p", "a").await.unwrap().unwrap();
    s.put(item("p", "a", 2), Cond::Version(seen.version)).await.unwrap();
    // A second writer holding the old version loses.
    let e = s.put(item("p", "a", 3), Cond::Version(seen.version)).await.unwrap_err();
    assert_eq!(failed_index(e), 0);
    assert_eq!(s.get("p", "a").await.unwrap().unwrap().data["n"], 2);
    // A version condition on a missing item fails.
    assert!(s.put(item("p", "none", 1), Cond::Version(1)).await.is_err());
}

pub async fn present_condition_and_conditional_delete(h: StoreHarness) {
    let s = &h.store;
    assert_eq!(failed_index(s.put(item("p", "a", 1), Cond::Present).await.unwrap_err()), 0);
    s.put(item("p", "a", 1), Cond::Absent).await.unwrap();
    s.put(item("p", "a", 2), Cond::Present).await.unwrap();
    let v = s.get("p", "a").await.unwrap().unwrap().version;
    assert!(s.delete("p", "a", Cond::Version(v + 1000)).await.is_err());
    assert!(s.get("p", "a").await.unwrap().is_some());
    s.delete("p", "a", Cond::Version(v)).await.unwrap();
    assert_eq!(s.get("p", "a").await.unwrap(), None);
    // Deleting what is not there is fine without a condition, and fails with Present.
    s.delete("p", "a", Cond::Any).await.unwrap();
    assert!(s.delete("p", "a", Cond::Present).await.is_err());
}

pub async fn transaction_is_all_or_nothing_and_names_failed_write(h: StoreHarness) {
    let s = &h.store;
    s.put(item("p", "taken", 0), Cond::Absent).await.unwrap();
    s.put(item("p", "doomed", 0), Cond::Absent).await.unwrap();
    let writes = vec![
        Write::Put { item: item("p", "x", 1), cond: Cond::Absent },
        Write::Delete { pk: "p".into(), sk: "doomed".into(), cond: Cond::Any },
        Write::Put { item: item("p", "taken", 1), cond: Cond::Absent },
    ];
    assert_eq!(failed_index(s.transact(writes).await.unwrap_err()), 2);
    assert_eq!(s.get("p", "x").await.unwrap(), None, "no write of a failed transaction lands");
    assert!(s.get("p", "doomed").await.unwrap().is_some());
    // A check that fails stops the transaction too.
    let writes = vec![
        Write::Check { pk: "p".into(), sk: "missing".into(), cond: Cond::Present },
        Write::Put { item: item("p", "x", 1), cond: Cond::Any },
    ];
    assert_eq!(failed_index(s.transact(writes).await.unwrap_err()), 0);
    assert_eq!(s.get("p", "x").await.unwrap(), None);
    // And one that holds lets it through.
    let writes = vec![
        Write::Check { pk: "p".into(), sk: "taken".into(), cond: Cond::Present },
        Write::Put { item: item("p", "x", 1), cond: Cond::Absent },
        Write::Delete { pk: "p".into(), sk: "doomed".into(), cond: Cond::Present },
    ];
    s.transact(writes).await.unwrap();
    assert!(s.get("p", "x").await.unwrap().is_some());
    assert_eq!(s.get("p", "doomed").await.unwrap(), None);
}

pub async fn limits_are_enforced(h: StoreHarness) {
    let s = &h.store;
    let limits = s.tx_limits();
    assert!(limits.writes >= 99 && limits.bytes >= 4 * 1024 * 1024, "at least DynamoDB's limits: {limits:?}");
    let too_many: Vec<Write> = (0..=limits.writes as i64)
        .map(|i| Write::Put { item: item("p", &format!("k{i}"), i), cond: Cond::Any })
        .collect();
    assert!(matches!(s.transact(too_many).await, Err(StoreError::Invalid(_))));
    let twice = vec![
        Write::Put { item: item("p", "k", 1), cond: Cond::Any },
        Write::Delete { pk: "p".into(), sk: "k".into(), cond: Cond::Any },
    ];
    assert!(matches!(s.transact(twice).await, Err(StoreError::Invalid(_))));
    let big = Item::new("p", "big", json!({ "blob": "x".repeat(410 * 1024) }));
    assert!(matches!(s.put(big, Cond::Any).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.get("p", "big").await.unwrap(), None);
    // The declared number of writes is allowed, and so is a log append with 98 more writes.
    let most: Vec<Write> = (0..limits.writes.min(500) as i64)
        .map(|i| Write::Put { item: item("p", &format!("k{i:04}"), i), cond: Cond::Any })
        .collect();
    let n = most.len();
    s.transact(most).await.unwrap();
    assert_eq!(s.query(Query::prefix("p", "k", 1000)).await.unwrap().items.len(), n);
    let mut with_append: Vec<Write> =
        (0..98).map(|i| Write::Put { item: item("q", &format!("k{i:04}"), i), cond: Cond::Any }).collect();
    with_append.push(Write::Append { pk: "log".into(), data: json!({}), expires_at: None });
    s.transact(with_append).await.unwrap();
}

pub async fn query_ranges_orders_and_pages(h: StoreHarness) {
    let s = &h.store;
    for i in 0..25 {
        s.put(item("q", &format!("a#{i:02}"), i), Cond::Any).await.unwrap();
    }
    s.put(item("q", "b#1", 100), Cond::Any).await.unwrap();
    s.put(item("q2", "a#00", 200), Cond::Any).await.unwrap();

    let all = s.query(Query::partition("q", 100)).await.unwrap();
    assert_eq!(all.items.len(), 26);
    assert!(all.resume.is_none());
    let sks: Vec<&str> = all.items.iter().map(|i| i.sk.as_str()).collect();
    let mut sorted = sks.clone();
    sorted.sort_unstable();
    assert_eq!(sks, sorted, "ascending sort-key order");

    let prefixed = s.query(Query::prefix("q", "a#", 100)).await.unwrap();
    assert_eq!(prefixed.items.len(), 25);
    assert!(prefixed.items.iter().all(|i| i.sk.starts_with("a#")));

    let between = Query { range: SkRange::Between("a#05".into(), "a#09".into()), ..Query::partition("q", 100) };
    let between = s.query(between).await.unwrap();
    assert_eq!(between.items.iter().map(|i| i.data["n"].as_i64().unwrap()).collect::<Vec<_>>(), vec![5, 6, 7, 8, 9]);

    let desc = Query { order: Order::Desc, ..Query::prefix("q", "a#", 3) };
    let desc = s.query(desc).await.unwrap();
    assert_eq!(desc.items.iter().map(|i| i.data["n"].as_i64().unwrap()).collect::<Vec<_>>(), vec![24, 23, 22]);

    // Paging through with resume keys visits every item once, in order, in either direction.
    for order in [Order::Asc, Order::Desc] {
        let mut seen = Vec::new();
        let mut resume = None;
        loop {
            let q = Query { order, resume: resume.clone(), ..Query::prefix("q", "a#", 7) };
            let page = s.query(q).await.unwrap();
            assert!(page.items.len() <= 7);
            seen.extend(page.items.iter().map(|i| i.data["n"].as_i64().unwrap()));
            resume = page.resume;
            if resume.is_none() {
                break;
            }
        }
        let mut expected: Vec<i64> = (0..25).collect();
        if order == Order::Desc {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}");
    }
}

pub async fn expired_items_are_absent_everywhere(h: StoreHarness) {
    let s = &h.store;
    let now = h.clock.now_secs();
    s.put(item("e", "soon", 1).expiring(now + 10), Cond::Any).await.unwrap();
    s.put(item("e", "later", 2).expiring(now + 1000), Cond::Any).await.unwrap();
    s.put(item("e", "never", 3), Cond::Any).await.unwrap();
    assert!(s.get("e", "soon").await.unwrap().is_some());
    assert_eq!(s.get("e", "soon").await.unwrap().unwrap().expires_at, Some(now + 10));

    h.clock.advance(Duration::from_secs(11));
    assert_eq!(s.get("e", "soon").await.unwrap(), None, "get skips an expired item");
    let page = s.query(Query::partition("e", 10)).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), vec!["later", "never"]);
    let many = s.get_many(&[("e".into(), "soon".into()), ("e".into(), "later".into())]).await.unwrap();
    assert!(many[0].is_none() && many[1].is_some());
    // Conditions see it as absent: Present fails, Absent succeeds and recreates it.
    assert!(s.put(item("e", "soon", 9), Cond::Present).await.is_err());
    s.put(item("e", "soon", 9), Cond::Absent).await.unwrap();
    assert_eq!(s.get("e", "soon").await.unwrap().unwrap().data["n"], 9);
    // A query whose whole first page has expired still finds what lies beyond it.
    for i in 0..12 {
        s.put(item("f", &format!("{i:02}"), i).expiring(h.clock.now_secs() + 5), Cond::Any).await.unwrap();
    }
    s.put(item("f", "99", 99), Cond::Any).await.unwrap();
    h.clock.advance(Duration::from_secs(6));
    let page = s.query(Query::partition("f", 5)).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), vec!["99"]);
}

pub async fn appends_are_dense_and_ordered(h: StoreHarness) {
    let s = &h.store;
    assert_eq!(s.log_head("log").await.unwrap(), 0);
    for i in 1..=3 {
        let r = s
            .transact(vec![Write::Append { pk: "log".into(), data: json!({ "i": i }), expires_at: None }])
            .await
            .unwrap();
        assert_eq!(r.appended, vec![i]);
    }
    let r = s
        .transact(vec![
            Write::Append { pk: "log".into(), data: json!({ "i": 4 }), expires_at: None },
            Write::Put { item: item("other", "x", 1), cond: Cond::Absent },
            Write::Append { pk: "log".into(), data: json!({ "i": 5 }), expires_at: None },
            Write::Append { pk: "log2".into(), data: json!({ "i": 1 }), expires_at: None },
        ])
        .await
        .unwrap();
    assert_eq!(r.appended, vec![4, 5, 1]);
    assert_eq!(s.log_head("log").await.unwrap(), 5);
    assert_eq!(s.log_head("log2").await.unwrap(), 1);
    let entries = s.query(Query::log("log", 2, u64::MAX, 100)).await.unwrap();
    let seqs: Vec<u64> = entries.items.iter().map(|i| parse_log_sk(&i.sk).unwrap()).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5], "the head item is not an entry");
    assert!(entries.items.iter().all(|i| i.data["i"].as_u64() == parse_log_sk(&i.sk)));
    assert!(s.get("log", &log_sk(1)).await.unwrap().is_some());
    assert!(s.get("log", LOG_HEAD_SK).await.unwrap().is_some());
}

pub async fn concurrent_appends_never_collide(h: StoreHarness) {
    let s = Arc::clone(&h.store);
    let (writers, each) = h.contention;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..each {
                let data = json!({ "writer": w, "i": i });
                let r = s.transact(vec![Write::Append { pk: "hot".into(), data, expires_at: None }]).await.unwrap();
                mine.extend(r.appended);
            }
            mine
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        for seq in t.await.unwrap() {
            assert!(all.insert(seq), "sequence {seq} assigned twice");
        }
    }
    let expected: HashSet<u64> = (1..=writers * each).collect();
    assert_eq!(all, expected, "sequences are dense");
    let entries = s.query(Query::log("hot", 1, u64::MAX, 1000)).await.unwrap();
    assert_eq!(entries.items.len() as u64, writers * each);
    // Each writer's own entries appear in the order it wrote them.
    for w in 0..writers {
        let mine: Vec<u64> =
            entries.items.iter().filter(|i| i.data["writer"] == w).map(|i| i.data["i"].as_u64().unwrap()).collect();
        assert_eq!(mine, (0..each).collect::<Vec<_>>());
    }
}

pub async fn failed_transaction_appends_nothing(h: StoreHarness) {
    let s = &h.store;
    s.put(item("p", "taken", 1), Cond::Absent).await.unwrap();
    s.transact(vec![Write::Append { pk: "log".into(), data: json!({}), expires_at: None }]).await.unwrap();
    let e = s
        .transact(vec![
            Write::Append { pk: "log".into(), data: json!({}), expires_at: None },
            Write::Put { item: item("p", "taken", 2), cond: Cond::Absent },
        ])
        .await
        .unwrap_err();
    assert_eq!(failed_index(e), 1, "the index names the caller's write");
    assert_eq!(s.log_head("log").await.unwrap(), 1);
    assert_eq!(s.query(Query::log("log", 1, u64::MAX, 10)).await.unwrap().items.len(), 1);
    // Expiring entries count like any other item.
    let at = h.clock.now_secs() + 5;
    s.transact(vec![Write::Append { pk: "log".into(), data: json!({}), expires_at: Some(at) }]).await.unwrap();
    h.clock.advance(Duration::from_secs(6));
    assert_eq!(s.query(Query::log("log", 1, u64::MAX, 10)).await.unwrap().items.len(), 1);
    assert_eq!(s.log_head("log").await.unwrap(), 2, "the head never goes back");
}

pub async fn get_many_returns_slots_in_order(h: StoreHarness) {
    let s = &h.store;
    for i in 0..150 {
        s.put(item("m", &format!("{i:03}"), i), Cond::Any).await.unwrap();
    }
    let mut keys: Vec<(String, String)> = (0..150).rev().map(|i| ("m".to_owned(), format!("{i:03}"))).collect();
    keys.insert(3, ("m".into(), "missing".into()));
    keys.push(("m".into(), "010".into()));
    let got = s.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len());
    for ((_, sk), slot) in keys.iter().zip(&got) {
        match slot {
            Some(item) => assert_eq!(&item.sk, sk),
            None => assert_eq!(sk, "missing"),
        }
    }
}

pub async fn receipts_record_appended_range(h: StoreHarness) {
    let s = &h.store;
    s.transact(vec![Write::Append { pk: "log".into(), data: json!({}), expires_at: None }]).await.unwrap();
    let receipt =
        |sk: &str, log: &str| Write::Receipt { item: Item::new("outbox", sk, json!({ "note": sk })), log: log.into() };
    let writes = vec![
        receipt("r1", "log"),
        Write::Append { pk: "log".into(), data: json!({ "i": 2 }), expires_at: None },
        Write::Append { pk: "other".into(), data: json!({}), expires_at: None },
        Write::Append { pk: "log".into(), data: json!({ "i": 3 }), expires_at: None },
        receipt("r2", "nothing-appended"),
    ];
    s.transact(writes).await.unwrap();
    let r1 = s.get("outbox", "r1").await.unwrap().unwrap().data;
    assert_eq!((r1["first"].as_u64(), r1["last"].as_u64(), r1["note"].as_str()), (Some(2), Some(3), Some("r1")));
    let r2 = s.get("outbox", "r2").await.unwrap().unwrap().data;
    assert_eq!((r2["first"].as_u64(), r2["last"].as_u64()), (Some(0), Some(0)));
    // A failed transaction leaves no receipt.
    s.put(item("p", "taken", 1), Cond::Absent).await.unwrap();
    let writes = vec![
        receipt("r3", "log"),
        Write::Append { pk: "log".into(), data: json!({}), expires_at: None },
        Write::Put { item: item("p", "taken", 2), cond: Cond::Absent },
    ];
    assert_eq!(failed_index(s.transact(writes).await.unwrap_err()), 2);
    assert_eq!(s.get("outbox", "r3").await.unwrap(), None);
}

pub async fn receipts_of_one_log_each_locate_their_entry(h: StoreHarness) {
    let s = &h.store;
    s.transact(vec![Write::Append { pk: "log".into(), data: json!({ "n": "before" }), expires_at: None }])
        .await
        .unwrap();
    // One receipt per appended entry, each knowing its position among this transaction's appends.
    let mut writes = Vec::new();
    for k in 0..3 {
        writes.push(Write::Append { pk: "log".into(), data: json!({ "n": k }), expires_at: None });
        writes.push(Write::Append { pk: "other".into(), data: json!({}), expires_at: None });
    }
    for k in 0..3u64 {
        let item = Item::new("index", format!("e{k}"), json!({ "k": k }));
        writes.push(Write::Receipt { item, log: "log".into() });
    }
    let appended = s.transact(writes).await.unwrap().appended;
    for k in 0..3u64 {
        let receipt = s.get("index", &format!("e{k}")).await.unwrap().unwrap().data;
        assert_eq!((receipt["first"].as_u64(), receipt["last"].as_u64()), (Some(2), Some(4)), "{receipt}");
        let seq = receipt["first"].as_u64().unwrap() + k;
        assert_eq!(appended[usize::try_from(k).unwrap() * 2], seq);
        let entry = s.get("log", &log_sk(seq)).await.unwrap().unwrap();
        assert_eq!(entry.data["n"], k, "the k-th append of the log is entry first + k");
    }
}

type Reports = Arc<parking_lot::Mutex<Vec<(String, u64, serde_json::Value, Option<i64>)>>>;

/// Collects what a store reports of its appends (into a list that outlives it).
#[derive(Default)]
struct Heard(Reports);

impl AppendListener for Heard {
    fn appended(&self, entries: &[Appended<'_>]) {
        let mut heard = self.0.lock();
        heard.extend(entries.iter().map(|e| (e.pk.to_owned(), e.seq, e.data.clone(), e.expires_at)));
    }
}

pub async fn listened_appends_are_reported_once_in_commit_order(h: StoreHarness) {
    let s = Arc::clone(&h.store);
    let heard = Reports::default();
    let listener: Arc<dyn AppendListener> = Arc::new(Heard(Arc::clone(&heard)));
    let reports = s.listen_appends(Arc::downgrade(&listener));
    let at = h.clock.now_secs() + 3600;
    let first = s.transact(vec![Write::Append { pk: "a".into(), data: json!({ "n": 0 }), expires_at: Some(at) }]);
    let first = first.await.unwrap();
    if !reports {
        assert!(heard.lock().is_empty(), "a store that cannot report appends reports none");
        return;
    }
    // Heard before the writer hears of its commit.
    assert_eq!(heard.lock().as_slice(), &[("a".to_owned(), first.appended[0], json!({ "n": 0 }), Some(at))]);
    // A failed transaction is not reported.
    s.put(item("p", "taken", 1), Cond::Absent).await.unwrap();
    let failed = s.transact(vec![
        Write::Append { pk: "a".into(), data: json!({ "n": -1 }), expires_at: None },
        Write::Put { item: item("p", "taken", 2), cond: Cond::Absent },
    ]);
    failed.await.unwrap_err();
    let (writers, each) = h.contention;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let writes = vec![
                    Write::Append { pk: "a".into(), data: json!({ "w": w, "i": i }), expires_at: None },
                    Write::Append { pk: format!("b{w}"), data: json!({ "w": w, "i": i }), expires_at: None },
                ];
                s.transact(writes).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let heard_now = heard.lock().clone();
    assert_eq!(heard_now.len() as u64, 1 + 2 * writers * each, "each committed append is heard once");
    // In commit order: per log, sequence numbers come one after another, and each report carries
    // the document the store holds.
    let mut last: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (pk, seq, data, _) in &heard_now {
        let previous = last.insert(pk, *seq).unwrap_or(0);
        assert_eq!(*seq, previous + 1, "log {pk}: {seq} heard after {previous}");
        let stored = s.get(pk, &log_sk(*seq)).await.unwrap().unwrap();
        assert_eq!(&stored.data, data);
    }
    // A dropped listener hears nothing more.
    drop(listener);
    s.transact(vec![Write::Append { pk: "a".into(), data: json!({}), expires_at: None }]).await.unwrap();
    assert_eq!(heard.lock().len(), heard_now.len());
}
