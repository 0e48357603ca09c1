//! The tails of watched logs: per stream, the wake-up of its waiting watchers and, when the store
//! reports every append it commits (the embedded backend), the stream's head and its most recent
//! entries. A watcher then learns of a new entry, and reads it, without touching the store: what
//! makes one write cheap to fan out to many watchers. Otherwise (DynamoDB, where other processes
//! write too) a tail only carries the wake-ups of writes made in this process, and watchers read
//! the store.
//!
//! A tail holds immutable, committed entries only, so serving from it is the same as reading the
//! store; it is filled in commit order by the store's reports, and keeps entries only while the
//! stream is watched.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

use super::LogEntry;
use crate::ports::{AppendListener, Appended};

/// Most recent entries kept per stream.
const KEPT: usize = 1024;
/// A stream no watcher read for this long keeps no entries.
const IDLE: Duration = Duration::from_secs(60);

/// What a tail knows of a stream after a position.
#[derive(Debug)]
pub(crate) enum Known {
    /// The entries after the position, contiguous, oldest first (at least one).
    Entries(Vec<Arc<LogEntry>>),
    /// Nothing was appended after the position.
    UpToDate,
    /// The tail cannot tell: read the store.
    Unknown,
}

/// An entry kept in a tail.
struct Kept {
    entry: Arc<LogEntry>,
    expires_at: Option<i64>,
}

#[derive(Default)]
struct State {
    /// The last sequence number appended, when known.
    head: Option<u64>,
    /// Recent entries, contiguous, oldest first.
    entries: VecDeque<Kept>,
    /// When a watcher last read the stream.
    read_at: Option<Instant>,
}

impl State {
    fn watched(&self) -> bool {
        self.read_at.is_some_and(|at| at.elapsed() < IDLE)
    }

    fn append(&mut self, entry: &Appended<'_>) {
        self.head = Some(self.head.map_or(entry.seq, |h| h.max(entry.seq)));
        if !self.watched() {
            self.entries.clear();
            return;
        }
        if self.entries.back().is_some_and(|k| k.entry.seq + 1 != entry.seq) {
            self.entries.clear();
        }
        let time_ms = entry.data.get("time_ms").and_then(Value::as_i64).unwrap_or_default();
        let kept = LogEntry::new(entry.seq, time_ms, entry.data.clone());
        self.entries.push_back(Kept { entry: Arc::new(kept), expires_at: entry.expires_at });
        if self.entries.len() > KEPT {
            self.entries.pop_front();
        }
    }

    fn after(&self, after: u64, limit: usize, now_secs: i64) -> Known {
        let first = self.entries.front().map(|k| k.entry.seq);
        if let Some(first) = first
            && first <= after + 1
        {
            let skip = usize::try_from(after + 1 - first).unwrap_or(usize::MAX);
            let live: Vec<Arc<LogEntry>> = self
                .entries
                .iter()
                .skip(skip)
                .take(limit)
                .take_while(|k| k.expires_at.is_none_or(|at| at > now_secs))
                .map(|k| Arc::clone(&k.entry))
                .collect();
            if !live.is_empty() {
                return Known::Entries(live);
            }
        }
        match self.head {
            Some(head) if head == after => Known::UpToDate,
            _ => Known::Unknown,
        }
    }
}

/// One stream's tail.
#[derive(Default)]
pub(crate) struct Stream {
    /// Wakes the stream's waiting watchers.
    pub(crate) notify: Notify,
    state: Mutex<State>,
}

/// The tails of the streams watched in this process.
#[derive(Default)]
pub(crate) struct Tails {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    /// Whether the store reports every append (set once, when the engine starts listening).
    complete: AtomicBool,
}

impl Tails {
    /// Records whether the store reports every append to these tails.
    pub(crate) fn set_complete(&self, complete: bool) {
        self.complete.store(complete, Ordering::Release);
    }

    /// Whether the store reports every append (so the tails wake watchers themselves).
    pub(crate) fn complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// A stream's tail, created on first use (by its first watcher).
    pub(crate) fn stream(&self, stream: &str) -> Arc<Stream> {
        let mut streams = self.streams.lock();
        if let Some(s) = streams.get(stream) {
            return Arc::clone(s);
        }
        let s = Arc::new(Stream::default());
        streams.insert(stream.to_owned(), Arc::clone(&s));
        s
    }

    /// The stream's tail, if it has watchers.
    pub(crate) fn existing(&self, stream: &str) -> Option<Arc<Stream>> {
        self.streams.lock().get(stream).cloned()
    }

    /// What the tail knows of `stream` after position `after` (at most `limit` entries).
    pub(crate) fn after(&self, stream: &Stream, after: u64, limit: usize, now_secs: i64) -> Known {
        let mut state = stream.state.lock();
        state.read_at = Some(Instant::now());
        if !self.complete() {
            return Known::Unknown;
        }
        state.after(after, limit, now_secs)
    }

    /// Records that the store's head of the stream was read as `head`.
    pub(crate) fn saw_head(&self, stream: &Stream, head: u64) {
        if self.complete() {
            let mut state = stream.state.lock();
            state.head = Some(state.head.map_or(head, |h| h.max(head)));
        }
    }
}

impl AppendListener for Tails {
    fn appended(&self, entries: &[Appended<'_>]) {
        let mut woken: Vec<Arc<Stream>> = Vec::new();
        for entry in entries {
            let Some(stream) = self.existing(entry.pk) else { continue };
            stream.state.lock().append(entry);
            if !woken.iter().any(|w| Arc::ptr_eq(w, &stream)) {
                woken.push(stream);
            }
        }
        for stream in woken {
            stream.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn append(tails: &Tails, pk: &str, seq: u64, expires_at: Option<i64>) {
        let data = json!({ "n": seq, "time_ms": 1000 + seq });
        tails.appended(&[Appended { pk, seq, data: &data, expires_at }]);
    }

    /// A stream's tail, with a first read that makes it watched.
    fn watched(tails: &Tails, pk: &str) -> Arc<Stream> {
        let s = tails.stream(pk);
        let _ = tails.after(&s, 0, 1, 0);
        s
    }

    fn seqs(known: Known) -> Vec<u64> {
        match known {
            Known::Entries(e) => e.iter().map(|e| e.seq).collect(),
            other => panic!("expected entries, got {other:?}"),
        }
    }

    #[test]
    fn serves_what_was_appended_once_watched() {
        let tails = Tails::default();
        tails.set_complete(true);
        append(&tails, "s", 1, None);
        let s = tails.stream("s");
        // Entry 1 came before anyone watched: the tail does not know the head yet.
        assert!(matches!(tails.after(&s, 1, 10, 0), Known::Unknown));
        tails.saw_head(&s, 1);
        assert!(matches!(tails.after(&s, 1, 10, 0), Known::UpToDate));
        for seq in 2..=4 {
            append(&tails, "s", seq, None);
        }
        assert_eq!(seqs(tails.after(&s, 1, 10, 0)), vec![2, 3, 4]);
        assert_eq!(seqs(tails.after(&s, 2, 1, 0)), vec![3]);
        assert!(matches!(tails.after(&s, 4, 10, 0), Known::UpToDate));
        // Before what is kept: the store must be read.
        assert!(matches!(tails.after(&s, 0, 10, 0), Known::Unknown));
    }

    #[test]
    fn an_older_head_read_never_moves_the_head_back() {
        let tails = Tails::default();
        tails.set_complete(true);
        let s = watched(&tails, "s");
        append(&tails, "s", 7, None);
        tails.saw_head(&s, 6);
        assert!(matches!(tails.after(&s, 7, 10, 0), Known::UpToDate));
        assert!(matches!(tails.after(&s, 6, 10, 0), Known::Entries(_)));
    }

    #[test]
    fn expired_entries_are_not_served() {
        let tails = Tails::default();
        tails.set_complete(true);
        let s = watched(&tails, "s");
        tails.saw_head(&s, 0);
        append(&tails, "s", 1, Some(100));
        append(&tails, "s", 2, Some(200));
        // Entry 1 has expired: the store, not the tail, answers for it (with the expired error).
        assert!(matches!(tails.after(&s, 0, 10, 150), Known::Unknown));
        assert_eq!(seqs(tails.after(&s, 1, 10, 150)), vec![2]);
        assert_eq!(seqs(tails.after(&s, 0, 10, 99)), vec![1, 2]);
    }

    #[test]
    fn a_gap_restarts_the_kept_entries() {
        let tails = Tails::default();
        tails.set_complete(true);
        let s = watched(&tails, "s");
        tails.saw_head(&s, 0);
        append(&tails, "s", 1, None);
        append(&tails, "s", 3, None);
        assert!(matches!(tails.after(&s, 0, 10, 0), Known::Unknown));
        assert_eq!(seqs(tails.after(&s, 2, 10, 0)), vec![3]);
        assert!(matches!(tails.after(&s, 3, 10, 0), Known::UpToDate));
    }

    #[test]
    fn an_unwatched_stream_keeps_only_its_head() {
        let tails = Tails::default();
        tails.set_complete(true);
        let s = tails.stream("s");
        append(&tails, "s", 1, None);
        assert!(matches!(tails.after(&s, 0, 10, 0), Known::Unknown));
        assert!(matches!(tails.after(&s, 1, 10, 0), Known::UpToDate));
    }

    #[test]
    fn without_complete_reports_the_store_is_read() {
        let tails = Tails::default();
        let s = tails.stream("s");
        tails.saw_head(&s, 5);
        assert!(matches!(tails.after(&s, 5, 10, 0), Known::Unknown));
    }

    #[test]
    fn the_tail_keeps_a_bounded_number_of_entries() {
        let tails = Tails::default();
        tails.set_complete(true);
        let s = watched(&tails, "s");
        tails.saw_head(&s, 0);
        for seq in 1..=(KEPT as u64 + 10) {
            append(&tails, "s", seq, None);
        }
        assert!(matches!(tails.after(&s, 5, 10, 0), Known::Unknown));
        assert_eq!(seqs(tails.after(&s, 10, 2, 0)), vec![11, 12]);
    }
}
