//! [`EngineClient`]: how the gRPC service (and tests) hand work to the engine.

use super::{QueryJob, QueryResult, Snapshot, Submission, TxResult};
use crate::proto::{Query, Transaction};
use crate::sidecar::metrics::SidecarMetrics;
use crate::sidecar::status;
use heidi_common::clock::Clock;
use heidi_core::Instant;
use heidi_core::batcher::check_item_bytes;
use heidi_core::txn_check::check_idempotency_key;
use heidi_core::upstream::{self, Refusal};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// Transactions waiting for a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// In the submission channel (not yet read by the engine).
    pub channel: usize,
    /// In the batcher.
    pub batched: usize,
}

impl Queued {
    /// Both together.
    pub fn total(&self) -> usize {
        self.channel + self.batched
    }
}

/// A handle on the engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct EngineClient {
    submit: mpsc::Sender<Submission>,
    query: mpsc::Sender<QueryJob>,
    snapshot: Arc<Mutex<Snapshot>>,
    clock: Clock,
    metrics: Arc<SidecarMetrics>,
    batch_max_bytes: usize,
}

impl EngineClient {
    pub(super) fn new(
        submit: mpsc::Sender<Submission>,
        query: mpsc::Sender<QueryJob>,
        snapshot: Arc<Mutex<Snapshot>>,
        clock: Clock,
        metrics: Arc<SidecarMetrics>,
        batch_max_bytes: usize,
    ) -> EngineClient {
        EngineClient {
            submit,
            query,
            snapshot,
            clock,
            metrics,
            batch_max_bytes,
        }
    }

    /// The engine's state as of its last turn.
    pub fn snapshot(&self) -> Snapshot {
        match self.snapshot.lock() {
            Ok(s) => *s,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// The engine clock's reading now.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Transactions waiting for a batch.
    pub fn queued(&self) -> Queued {
        Queued {
            channel: self.submit.max_capacity() - self.submit.capacity(),
            batched: self.snapshot().batched,
        }
    }

    /// The metrics the engine updates.
    pub fn metrics(&self) -> &SidecarMetrics {
        &self.metrics
    }

    /// Refuses at once what cannot be served now: a sidecar shutting down, an open breaker
    /// (until [`Snapshot::open_until`], the core breaker's own answer).
    fn refuse_now(&self) -> Result<(), Status> {
        let snap = self.snapshot();
        let now = self.clock.now();
        upstream::admit(now, snap.closing, snap.open_until).map_err(|refusal| {
            self.metrics.rejected(refusal.label());
            match (refusal, snap.open_until) {
                (Refusal::BreakerOpen, Some(until)) => {
                    status::breaker_refused(now, snap.breaker, until)
                }
                _ => status::shutting_down(),
            }
        })
    }

    /// Submits one transaction and waits for its own receipt.
    pub async fn submit(&self, tx: Transaction) -> TxResult {
        if let Err(e) = check_idempotency_key(tx.idempotency_key.as_bytes()) {
            self.metrics.rejected(Refusal::BadKey.label());
            return Err(status::bad_key(e));
        }
        // Its share of a batch message: the field's tag and length, then the transaction.
        let bytes = prost::encoding::message::encoded_len(1, &tx);
        if let Err(e) = check_item_bytes(bytes, self.batch_max_bytes) {
            self.metrics.rejected(Refusal::TooLarge.label());
            return Err(status::too_large(e));
        }
        self.refuse_now()?;
        let (reply, answer) = oneshot::channel();
        match self.submit.try_send(Submission { tx, bytes, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.rejected(Refusal::QueueFull.label());
                return Err(status::queue_full(self.submit.max_capacity()));
            }
            Err(TrySendError::Closed(_)) => {
                self.metrics.rejected(Refusal::ShuttingDown.label());
                return Err(status::shutting_down());
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Status::internal("sidecar engine stopped before answering")))
    }

    /// Forwards one query and waits for the upstream's answer.
    pub async fn query(&self, query: Query) -> QueryResult {
        self.refuse_now()?;
        let (reply, answer) = oneshot::channel();
        match self.query.try_send(QueryJob { query, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.rejected(Refusal::QueueFull.label());
                return Err(status::queue_full(self.query.max_capacity()));
            }
            Err(TrySendError::Closed(_)) => return Err(status::shutting_down()),
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Status::internal("sidecar engine stopped before answering")))
    }
}
