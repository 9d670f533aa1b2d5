//! The upstream's state: which idempotency keys were applied, under which receipt, and how
//! many times each was applied.
//!
//! The dedupe decision is the core's [`IdempotencyTable`] (fixed capacity, records that never
//! expire: a key applied once is never applied again). Beside it, the apply log counts how
//! many times each key's transaction was actually applied; it is what tests read to prove
//! exactly-once, so it is kept apart from the table that decides. A batch is applied
//! atomically: either every new key in it is applied, or (table full) none is.

use heidi_core::idempotency::{Begin, BeginError, IdempotencyConfig, IdempotencyTable, Outcome};
use heidi_core::idempotency::{Record, Token};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::table::{GROUP, Slot};
use heidi_core::{Duration, Instant};
use std::collections::HashMap;

use crate::proto::{Receipt, Transaction};

type Table = IdempotencyTable<Box<[Slot<Record>]>>;

/// One applied key: its receipt number and how many times it was applied (1 unless broken).
#[derive(Clone, Copy, Debug)]
struct Applied {
    receipt: u64,
    applies: u32,
}

/// Why a batch was not applied (nothing of it was).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The new key at position `index` of the batch (the first that did not fit) found no
    /// free slot in the dedupe table.
    Full {
        /// Zero-based position in the batch.
        index: usize,
    },
    /// The table answered something a locked, synchronous apply cannot produce.
    Internal(String),
}

/// What one applied batch did.
#[derive(Debug)]
pub(crate) struct Applies {
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Transactions applied now.
    pub applied: u64,
    /// Transactions answered from an earlier apply (or an earlier copy in the same batch).
    pub duplicates: u64,
}

/// How one transaction of a batch is answered.
enum Step {
    New(KeyHash),
    Duplicate(u64),
    SameBatch(usize),
    Collision,
}

/// The dedupe table and the apply log.
pub(crate) struct Store {
    table: Table,
    hasher: KeyHasher,
    log: HashMap<String, Applied>,
    next_receipt: u64,
}

/// The receipt id shown to clients for receipt number `n`.
pub(crate) fn receipt_id(n: u64) -> String {
    format!("r-{n}")
}

fn digest(n: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&n.to_le_bytes());
    d
}

fn undigest(d: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

impl Store {
    /// A store for `capacity` keys (rounded up to a multiple of 8); hashing and tokens are
    /// keyed from `seed` (this is a test fixture: reproducible placement beats secrecy).
    pub(crate) fn new(capacity: usize, seed: u64) -> Store {
        let slots = capacity.div_ceil(GROUP).max(1) * GROUP;
        let storage: Box<[Slot<Record>]> = (0..slots).map(|_| Slot::empty()).collect();
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..].copy_from_slice(&(!seed).to_le_bytes());
        let config = IdempotencyConfig {
            ttl: Duration::MAX,
            ..IdempotencyConfig::DEFAULT
        };
        let table = IdempotencyTable::new(config, storage, key).expect("non-zero durations");
        Store {
            table,
            hasher: KeyHasher::new(key),
            log: HashMap::new(),
            next_receipt: 1,
        }
    }

    /// Slots of the dedupe table.
    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Keys applied so far.
    pub(crate) fn distinct_keys(&self) -> usize {
        self.log.len()
    }

    /// How many times `key` was applied (0: never).
    pub(crate) fn applies(&self, key: &str) -> u32 {
        self.log.get(key).map_or(0, |a| a.applies)
    }

    /// The receipt id `key` was applied under, if it was.
    pub(crate) fn receipt_of(&self, key: &str) -> Option<String> {
        self.log.get(key).map(|a| receipt_id(a.receipt))
    }

    /// Keys applied more than once, with their counts (empty unless dedupe is broken).
    pub(crate) fn over_applied(&self) -> Vec<(String, u32)> {
        let mut v: Vec<_> = self
            .log
            .iter()
            .filter(|(_, a)| a.applies > 1)
            .map(|(k, a)| (k.clone(), a.applies))
            .collect();
        v.sort();
        v
    }

    /// Applies `batch` (already validated) at `now`: new keys are applied and recorded,
    /// repeats are answered from the record. All or nothing.
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        batch: &[Transaction],
    ) -> Result<Applies, StoreError> {
        let steps = self.plan(now, batch)?;
        let started = self.begin_new(now, &steps)?;
        let mut numbers = vec![0u64; batch.len()];
        for (i, hash, token) in started {
            let n = self.next_receipt;
            self.next_receipt += 1;
            numbers[i] = n;
            let entry = self
                .log
                .entry(batch[i].idempotency_key.clone())
                .or_insert(Applied {
                    receipt: n,
                    applies: 0,
                });
            entry.applies += 1;
            let _remembered = self
                .table
                .complete(now, hash, token, Outcome::Success(digest(n)))
                .map_err(|e| StoreError::Internal(format!("complete: {e}")))?;
        }
        Ok(self.receipts(batch, &steps, &numbers))
    }

    fn plan(&self, now: Instant, batch: &[Transaction]) -> Result<Vec<Step>, StoreError> {
        let mut steps: Vec<Step> = Vec::with_capacity(batch.len());
        for (i, tx) in batch.iter().enumerate() {
            let key = &tx.idempotency_key;
            let earlier = batch[..i]
                .iter()
                .position(|t| &t.idempotency_key == key)
                .filter(|&j| matches!(steps[j], Step::New(_)));
            if let Some(j) = earlier {
                steps.push(Step::SameBatch(j));
                continue;
            }
            let hash = self.hasher.hash(key.as_bytes());
            let step = match self.table.peek(now, hash) {
                None => Step::New(hash),
                Some(Begin::Done { digest, .. }) => match self.log.get(key) {
                    Some(a) if a.receipt == undigest(&digest) => Step::Duplicate(a.receipt),
                    _ => Step::Collision,
                },
                Some(other) => {
                    return Err(StoreError::Internal(format!("key {key:?}: {other:?}")));
                }
            };
            steps.push(step);
        }
        Ok(steps)
    }

    /// Begins every new key; on any refusal releases the ones begun and changes nothing.
    fn begin_new(
        &mut self,
        now: Instant,
        steps: &[Step],
    ) -> Result<Vec<(usize, KeyHash, Token)>, StoreError> {
        let mut started = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let Step::New(hash) = *step else { continue };
            let refusal = match self.table.begin(now, hash) {
                Ok(Begin::Started { token, .. }) => {
                    started.push((i, hash, token));
                    continue;
                }
                Err(BeginError::TableFull { .. }) => StoreError::Full { index: i },
                other => StoreError::Internal(format!("begin: {other:?}")),
            };
            for (_, hash, token) in started {
                let _ = self.table.complete(now, hash, token, Outcome::Failure);
            }
            return Err(refusal);
        }
        Ok(started)
    }

    fn receipts(&self, batch: &[Transaction], steps: &[Step], numbers: &[u64]) -> Applies {
        let mut out = Applies {
            receipts: Vec::with_capacity(batch.len()),
            applied: 0,
            duplicates: 0,
        };
        for (i, (tx, step)) in batch.iter().zip(steps).enumerate() {
            let key = tx.idempotency_key.clone();
            let receipt = match *step {
                Step::New(_) => {
                    out.applied += 1;
                    committed(key, numbers[i], false)
                }
                Step::Duplicate(n) => {
                    out.duplicates += 1;
                    committed(key, n, true)
                }
                Step::SameBatch(j) => {
                    out.duplicates += 1;
                    committed(key, numbers[j], true)
                }
                Step::Collision => Receipt {
                    idempotency_key: key,
                    committed: false,
                    receipt_id: String::new(),
                    error: "idempotency key collides with another key's hash".to_owned(),
                    duplicate: false,
                },
            };
            out.receipts.push(receipt);
        }
        out
    }
}

fn committed(key: String, n: u64, duplicate: bool) -> Receipt {
    Receipt {
        idempotency_key: key,
        committed: true,
        receipt_id: receipt_id(n),
        error: String::new(),
        duplicate,
    }
}
