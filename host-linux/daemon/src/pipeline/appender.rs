//! [`Appender`]: the driver's journal appends, submitted in order without a wait per event, so
//! the events of one step (and of steps that follow quickly) share a group commit.
//!
//! Order is the journal's order of submission: an entry the journal's queue has no room for
//! (`AppendError::Overloaded`) waits in `unsent`, and every later entry waits behind it; the
//! driver itself waits (backpressure) until it is accepted, so at most one step's entries are
//! ever unsent. Answers are checked oldest first; a failure is logged (the pipeline's state is
//! the core's, the journal only records it).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot::{self, error::TryRecvError};

use heidi_common::JournalEntry;
use heidi_store::{AppendError, Appended, Journal, durable};

/// How long to wait before offering an entry again when the journal's queue is full of other
/// writers' entries (none of ours to wait for).
const FULL_RETRY: Duration = Duration::from_millis(1);

type Answer = oneshot::Receiver<Result<Appended, AppendError>>;

/// Ordered, pipelined appends to the run journal.
pub(super) struct Appender {
    journal: Journal,
    /// Entries not yet accepted by the journal's queue, oldest first.
    unsent: VecDeque<JournalEntry>,
    /// `(event_type, answer)` of accepted entries not yet known durable, oldest first.
    inflight: VecDeque<(String, Answer)>,
    /// Entries queued so far.
    queued: u64,
    /// Entries whose answer was checked (durable or failed); always the oldest ones.
    settled: u64,
    /// Times the journal's queue was full (for tests and diagnostics).
    overloaded: u64,
}

impl Appender {
    pub(super) fn new(journal: Journal) -> Appender {
        Appender {
            journal,
            unsent: VecDeque::new(),
            inflight: VecDeque::new(),
            queued: 0,
            settled: 0,
            overloaded: 0,
        }
    }

    /// Queues `entry` after every earlier one without waiting for it to be durable; waits
    /// only while the journal's queue is full.
    pub(super) async fn push(&mut self, entry: JournalEntry) {
        self.enqueue(entry);
        while !self.unsent.is_empty() {
            self.make_room().await;
            self.submit_unsent();
        }
    }

    /// Queues `entry` and offers the unsent entries to the journal, never waiting.
    pub(super) fn enqueue(&mut self, entry: JournalEntry) {
        self.queued += 1;
        self.unsent.push_back(entry);
        self.submit_unsent();
        self.reap();
    }

    /// Waits until every entry queued so far is durable (or has failed, logged).
    pub(super) async fn flush(&mut self) {
        loop {
            self.submit_unsent();
            if self.unsent.is_empty() && self.inflight.is_empty() {
                return;
            }
            self.make_room().await;
        }
    }

    /// Checks the answers that have already arrived, oldest first, without waiting.
    pub(super) fn reap(&mut self) {
        while let Some((_, answer)) = self.inflight.front_mut() {
            let result = match answer.try_recv() {
                Ok(result) => result,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => Err(writer_stopped()),
            };
            if let Some((what, _)) = self.inflight.pop_front() {
                self.settle(&what, result);
            }
        }
    }

    /// Waits for the oldest answer in flight (forever if there is none); cancel-safe: an
    /// answer is taken only when it has arrived.
    pub(super) async fn next_answer(&mut self) {
        let Some((_, answer)) = self.inflight.front_mut() else {
            return std::future::pending().await;
        };
        let result = answer.await.unwrap_or_else(|_| Err(writer_stopped()));
        if let Some((what, _)) = self.inflight.pop_front() {
            self.settle(&what, result);
        }
    }

    /// Entries queued so far (the number a status must wait for).
    pub(super) fn queued(&self) -> u64 {
        self.queued
    }

    /// Whether the first `queued` entries are all settled (durable, or failed and logged).
    pub(super) fn settled(&self, queued: u64) -> bool {
        self.settled >= queued
    }

    /// Entries waiting for room in the journal's queue.
    #[cfg(test)]
    pub(super) fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Times the journal's queue was found full.
    #[cfg(test)]
    pub(super) fn overloaded(&self) -> u64 {
        self.overloaded
    }

    /// Submits unsent entries in order until the queue is full.
    fn submit_unsent(&mut self) {
        while let Some(entry) = self.unsent.front() {
            // `submit` consumes its entry and a full queue does not give it back: offer a copy.
            let result = self.journal.submit(entry.clone());
            if matches!(result, Err(AppendError::Overloaded)) {
                self.overloaded += 1;
                return;
            }
            let Some(entry) = self.unsent.pop_front() else {
                return;
            };
            match result {
                Ok(answer) => self.inflight.push_back((entry.event_type, answer)),
                Err(e) => self.settle(&entry.event_type, Err(e)),
            }
        }
    }

    /// Waits for the oldest answer (the journal's queue then has room), or a moment when
    /// none of ours is in flight.
    async fn make_room(&mut self) {
        match self.inflight.pop_front() {
            Some((what, answer)) => {
                let result = durable(answer).await;
                self.settle(&what, result);
            }
            None => tokio::time::sleep(FULL_RETRY).await,
        }
    }

    /// Counts the oldest unsettled entry as settled; logs its failure.
    fn settle(&mut self, what: &str, result: Result<Appended, AppendError>) {
        self.settled += 1;
        if let Err(e) = result {
            tracing::error!(event = %what, "pipeline event not journaled: {e:?}");
        }
    }
}

/// The answer of an append whose writer went away without answering.
fn writer_stopped() -> AppendError {
    AppendError::Io("journal writer stopped".to_owned())
}

#[cfg(test)]
mod tests {
    use heidi_core::journal::Level;

    use super::*;
    use crate::pipeline::tests::durability::Gate;
    use heidi_store::JournalConfig;

    fn entry(n: usize) -> JournalEntry {
        JournalEntry {
            round: 1,
            stage: "pipeline".into(),
            level: Level::Info,
            event_type: "test_event".into(),
            message: format!("entry {n}"),
            counters_delta: Vec::new(),
            usage_delta: Vec::new(),
            artifact_paths: Vec::new(),
            error: None,
        }
    }

    #[tokio::test]
    async fn a_full_journal_queue_keeps_the_order_and_flush_waits_for_all() {
        let tmp = tempfile::tempdir().unwrap();
        let (gate, entered) = Gate::new();
        let mut config = JournalConfig::new(tmp.path().join("out"), tmp.path().join("k/seal.key"));
        config.queue_capacity = 1;
        config.max_batch = 1;
        config.on_fsync = Some(gate.hook());
        let (journal, _) = tokio::task::spawn_blocking(move || Journal::open(config).unwrap())
            .await
            .unwrap();
        let mut appender = Appender::new(journal.clone());
        gate.set(true);
        appender.enqueue(entry(0));
        // The writer took entry 0 and is blocked after its fsync; the queue holds one more.
        entered.recv_timeout(Duration::from_secs(20)).unwrap();
        for n in 1..5 {
            appender.enqueue(entry(n));
        }
        assert!(appender.overloaded() >= 1);
        assert_eq!(appender.unsent(), 3, "entries 2, 3, 4 wait for room");
        gate.set(false);
        appender.push(entry(5)).await;
        appender.flush().await;
        assert_eq!((appender.unsent(), appender.inflight.len()), (0, 0));
        assert!(appender.settled(6) && !appender.settled(7));
        let messages: Vec<String> = journal
            .tail(6)
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].to_string())
            .collect();
        let want: Vec<String> = (0..6).map(|n| format!("\"entry {n}\"")).collect();
        assert_eq!(messages, want);
        tokio::task::spawn_blocking(move || journal.close().unwrap())
            .await
            .unwrap();
    }
}
