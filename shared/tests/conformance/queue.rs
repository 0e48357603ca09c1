//! Queue cases: each takes fresh queues (`main` dead-letters into `dlq` after two receives).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use switchyard::ports::{Message, QueueError, Received};

use crate::harness::QueueHarness;

const VIS: Duration = Duration::from_secs(30);

async fn receive_all(h: &QueueHarness, queue: &str, want: usize, within: Duration) -> Vec<Received> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        got.extend(h.queue.receive(queue, 10, Duration::from_secs(1), VIS).await.unwrap());
    }
    got
}

pub async fn sent_message_is_received_once_and_deleted(h: QueueHarness) {
    h.queue.send("main", Message::now("hello")).await.unwrap();
    let got = receive_all(&h, "main", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "hello");
    assert_eq!(got[0].receive_count, 1);
    assert!(h.queue.receive("main", 10, Duration::ZERO, VIS).await.unwrap().is_empty(), "hidden while in flight");
    h.queue.delete("main", &got[0].receipt).await.unwrap();
    h.queue.delete("main", &got[0].receipt).await.unwrap();
}

pub async fn a_queue_that_does_not_exist_is_not_found(h: QueueHarness) {
    for missing in &h.missing {
        let sent = h.queue.send(missing, Message::now("x")).await;
        assert!(matches!(sent, Err(QueueError::NotFound(_))), "{missing}: {sent:?}");
    }
}

pub async fn delayed_message_stays_hidden_until_due(h: QueueHarness) {
    let sent = Instant::now();
    h.queue.send("main", Message { body: "later".into(), delay: Duration::from_secs(2) }).await.unwrap();
    assert!(h.queue.receive("main", 10, Duration::ZERO, VIS).await.unwrap().is_empty());
    let got = receive_all(&h, "main", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(sent.elapsed() >= Duration::from_millis(1900), "arrived after {:?}", sent.elapsed());
}

pub async fn visibility_hides_and_then_returns_message(h: QueueHarness) {
    h.queue.send("main", Message::now("v")).await.unwrap();
    let first = h.queue.receive("main", 1, Duration::from_secs(5), Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    let again = receive_all(&h, "main", 1, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    h.queue.delete("main", &again[0].receipt).await.unwrap();
    assert!(receive_all(&h, "main", 1, Duration::from_secs(2)).await.is_empty());
}

pub async fn change_visibility_reschedules_message(h: QueueHarness) {
    h.queue.send("main", Message::now("c")).await.unwrap();
    let first = h.queue.receive("main", 1, Duration::from_secs(5), VIS).await.unwrap();
    h.queue.change_visibility("main", &first[0].receipt, Duration::ZERO).await.unwrap();
    let again = h.queue.receive("main", 1, Duration::from_secs(5), VIS).await.unwrap();
    assert_eq!(again.len(), 1, "visible at once after a zero visibility");
    h.queue.delete("main", &again[0].receipt).await.unwrap();
    // A longer visibility set on a receipt holds the message back that long.
    h.queue.send("main", Message::now("d")).await.unwrap();
    let first = h.queue.receive("main", 1, Duration::from_secs(5), VIS).await.unwrap();
    let started = Instant::now();
    h.queue.change_visibility("main", &first[0].receipt, Duration::from_secs(2)).await.unwrap();
    let later = receive_all(&h, "main", 1, Duration::from_secs(10)).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].body, "d");
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

pub async fn over_received_message_moves_to_dead_letter_queue(h: QueueHarness) {
    h.queue.send("main", Message::now("poison")).await.unwrap();
    for n in 1..=2 {
        let got = receive_all(&h, "main", 1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, n);
        h.queue.change_visibility("main", &got[0].receipt, Duration::ZERO).await.unwrap();
    }
    assert!(receive_all(&h, "main", 1, Duration::from_secs(3)).await.is_empty(), "no third receive");
    let dead = receive_all(&h, "dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}

pub async fn waiting_receive_wakes_on_send(h: QueueHarness) {
    let queue = h.queue.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        queue.send("main", Message::now("wake")).await.unwrap();
    });
    let started = Instant::now();
    let got = h.queue.receive("main", 1, Duration::from_secs(10), VIS).await.unwrap();
    sender.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "woke after {:?}", started.elapsed());
}

pub async fn batches_larger_than_ten_are_sent_whole(h: QueueHarness) {
    let messages: Vec<Message> = (0..25).map(|i| Message::now(format!("m{i}"))).collect();
    h.queue.send_batch("main", messages).await.unwrap();
    let got = receive_all(&h, "main", 25, Duration::from_secs(15)).await;
    let bodies: HashSet<String> = got.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, (0..25).map(|i| format!("m{i}")).collect());
}

pub async fn oversized_message_is_refused(h: QueueHarness) {
    let big = Message::now("x".repeat(256 * 1024 + 1));
    assert!(matches!(h.queue.send("main", big).await, Err(QueueError::Invalid(_))));
    assert!(h.queue.receive("main", 10, Duration::ZERO, VIS).await.unwrap().is_empty());
}
