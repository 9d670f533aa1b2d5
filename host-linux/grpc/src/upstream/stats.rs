//! The upstream's counters, and the snapshot tests and the `stats` query read.

use heidi_core::batcher::MAX_BATCH_ITEMS;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, bumped by the service (relaxed atomics: each is exact, a snapshot of several
/// is not one instant).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub calls: AtomicU64,
    pub batches: AtomicU64,
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub failures_injected: AtomicU64,
    pub outage_failures: AtomicU64,
    pub invalid: AtomicU64,
    pub exhausted: AtomicU64,
    pub queries: AtomicU64,
    pub batch_sizes: [AtomicU64; MAX_BATCH_ITEMS + 1],
}

/// Adds 1 to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the counters, as the `stats` query returns it (JSON, these field names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `ApplyBatch` calls received (every outcome).
    pub calls: u64,
    /// Calls that were applied (answered with receipts).
    pub batches: u64,
    /// Transactions applied (new keys).
    pub transactions_applied: u64,
    /// Transactions answered from an earlier apply (`duplicate = true`).
    pub duplicates: u64,
    /// Calls failed with `UNAVAILABLE` on purpose: by the failure rate or an outage.
    pub failures_injected: u64,
    /// Of those, the calls that fell in an outage window or while set down.
    pub outage_failures: u64,
    /// Calls refused with `INVALID_ARGUMENT`.
    pub invalid: u64,
    /// Calls refused with `RESOURCE_EXHAUSTED` (dedupe table full).
    pub exhausted: u64,
    /// `Query` calls.
    pub queries: u64,
    /// Applied calls by batch size: `batch_sizes[n]` calls carried `n` transactions.
    pub batch_sizes: Vec<u64>,
    /// Distinct keys applied (entries of the apply log).
    pub distinct_keys: u64,
    /// Keys applied more than once (0 unless exactly-once is broken).
    pub keys_applied_more_than_once: u64,
    /// Slots of the dedupe table.
    pub capacity: u64,
}

impl Counters {
    /// The counters' values, the store's figures filled in by the caller.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            calls: get(&self.calls),
            batches: get(&self.batches),
            transactions_applied: get(&self.applied),
            duplicates: get(&self.duplicates),
            failures_injected: get(&self.failures_injected),
            outage_failures: get(&self.outage_failures),
            invalid: get(&self.invalid),
            exhausted: get(&self.exhausted),
            queries: get(&self.queries),
            batch_sizes: self.batch_sizes.iter().map(get).collect(),
            ..Stats::default()
        }
    }
}
