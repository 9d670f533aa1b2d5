//! The `Upstream` gRPC service: latency, validation, injected faults, service cost, then the
//! atomic apply; and the `Query` texts `stats` and `applied KEY`.

use heidi_core::txn_check::{check_batch_len, check_idempotency_key};
use heidi_core::upstream::{REASON_METADATA, REFUSED_INDEX_METADATA, Reason};
use std::sync::{Arc, Mutex};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::config::UpstreamConfig;
use super::faults::{Fault, Faults, Lanes};
use super::stats::{Counters, Stats, bump};
use super::store::{Store, StoreError};
use crate::proto::upstream_server::Upstream;
use crate::proto::{BatchReceipt, Query, QueryResponse, TransactionBatch};
use heidi_common::clock::Clock;

/// The `Query` text that returns the counters as JSON ([`Stats`]).
pub const QUERY_STATS: &str = "stats";
/// The `Query` text prefix `applied KEY`: returns `{"key", "applies", "receipt_id"}`.
pub const QUERY_APPLIED: &str = "applied ";

/// Everything the service and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: UpstreamConfig,
    pub clock: Clock,
    pub started: std::time::Instant,
    pub faults: Faults,
    pub lanes: Lanes,
    pub counters: Counters,
    pub store: Mutex<Store>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("capacity", &self.capacity())
            .field("distinct_keys", &self.distinct_keys())
            .finish()
    }
}

impl Shared {
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters with the store's figures.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.counters.snapshot();
        let store = self.store();
        s.distinct_keys = store.distinct_keys() as u64;
        s.keys_applied_more_than_once = store.over_applied().len() as u64;
        s.capacity = store.capacity() as u64;
        s
    }

    async fn delay(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }

    async fn apply_batch(&self, batch: TransactionBatch) -> Result<BatchReceipt, Status> {
        let c = &self.counters;
        bump(&c.calls);
        self.delay().await;
        if let Err(e) = validate(&batch) {
            bump(&c.invalid);
            return Err(e);
        }
        if let Some(fault) = self.faults.decide(&self.config, self.started.elapsed()) {
            bump(&c.failures_injected);
            if fault == Fault::Outage {
                bump(&c.outage_failures);
                return Err(Status::unavailable("upstream outage (injected)"));
            }
            return Err(Status::unavailable("upstream failure (injected)"));
        }
        let now = tokio::time::Instant::now();
        let done = self.lanes.book(now);
        // tokio's timer rounds up to whole milliseconds: a zero cost must not sleep at all.
        if done > now {
            tokio::time::sleep_until(done).await;
        }
        let result = self.store().apply(self.clock.now(), &batch.transactions);
        match result {
            Ok(applies) => {
                bump(&c.batches);
                bump(&c.batch_sizes[batch.transactions.len()]);
                c.applied
                    .fetch_add(applies.applied, std::sync::atomic::Ordering::Relaxed);
                c.duplicates
                    .fetch_add(applies.duplicates, std::sync::atomic::Ordering::Relaxed);
                Ok(BatchReceipt {
                    receipts: applies.receipts,
                })
            }
            Err(StoreError::Full { index }) => {
                bump(&c.exhausted);
                let mut status = Status::resource_exhausted(format!(
                    "dedupe table full: no new key can be recorded (transaction {index}, key {:?}); \
                     nothing of the batch was applied",
                    batch.transactions[index].idempotency_key
                ));
                let reason = MetadataValue::from_static(Reason::KeyCapacity.as_str());
                status.metadata_mut().insert(REASON_METADATA, reason);
                status
                    .metadata_mut()
                    .insert(REFUSED_INDEX_METADATA, MetadataValue::from(index as u64));
                Err(status)
            }
            Err(StoreError::Internal(e)) => Err(Status::internal(e)),
        }
    }

    fn query(&self, text: &str) -> QueryResponse {
        let text = text.trim();
        let result = if text == QUERY_STATS {
            serde_json::to_vec(&self.stats()).map_err(|e| e.to_string())
        } else if let Some(key) = text.strip_prefix(QUERY_APPLIED) {
            let store = self.store();
            let v = serde_json::json!({
                "key": key,
                "applies": store.applies(key),
                "receipt_id": store.receipt_of(key),
            });
            Ok(v.to_string().into_bytes())
        } else {
            Err(format!(
                "unsupported query {text:?}: the reference upstream answers `{QUERY_STATS}` and `{QUERY_APPLIED}KEY`"
            ))
        };
        match result {
            Ok(result) => QueryResponse {
                success: true,
                result,
                error: String::new(),
            },
            Err(error) => QueryResponse {
                success: false,
                result: Vec::new(),
                error,
            },
        }
    }
}

/// Checks the batch length and every key with the core's rules.
fn validate(batch: &TransactionBatch) -> Result<(), Status> {
    check_batch_len(batch.transactions.len())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    for (i, tx) in batch.transactions.iter().enumerate() {
        check_idempotency_key(tx.idempotency_key.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("transaction {i}: {e}")))?;
    }
    Ok(())
}

/// The tonic service over the shared state (see [`ReferenceUpstream::service`](super::ReferenceUpstream::service)).
#[derive(Clone, Debug)]
pub struct UpstreamService {
    pub(crate) shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Upstream for UpstreamService {
    async fn apply_batch(
        &self,
        request: Request<TransactionBatch>,
    ) -> Result<Response<BatchReceipt>, Status> {
        self.shared
            .apply_batch(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn query(&self, request: Request<Query>) -> Result<Response<QueryResponse>, Status> {
        bump(&self.shared.counters.queries);
        self.shared.delay().await;
        Ok(Response::new(self.shared.query(&request.into_inner().text)))
    }
}
