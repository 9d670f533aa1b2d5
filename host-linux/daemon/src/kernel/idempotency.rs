//! The daemon's side of the idempotency records the core's service keeps: the store of
//! responses (a map on the heap, bounded by the table's size), the records to persist
//! ([`IdemPersist`], from the service's [`Durable`]) and restoring saved records.

use std::collections::HashMap;

use heidi_core::Instant;
use heidi_core::idempotency::Record;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::service::{Durable, IdemRecord, Idempotency, LineScratch, Responses, WallAnchor};
use heidi_core::table::Slot;
use heidi_store::IdemEntry;

mod persist;

use persist::Change;
pub use persist::{IdemChange, IdemPersist, IdemRestored};

/// The daemon's idempotency records: made at the first call, responses in a map.
pub(crate) type DaemonIdempotency = Idempotency<Box<[Slot<Record>]>, StoredResponses>;

/// The storage of the records, made at the first idempotency call (or restored record) so
/// that a daemon that never uses them does not keep the table resident.
pub(crate) fn record_slots(n: usize) -> Box<[Slot<Record>]> {
    vec![Slot::empty(); n].into_boxed_slice()
}

/// Responses stored with done records, until the record's expiry. Expired responses are
/// dropped when the map reaches `bound` (the table's size), so it holds no more than the
/// table's live done records (each at most
/// [`IDEMPOTENCY_RESPONSE_MAX_BYTES`](heidi_core::service::IDEMPOTENCY_RESPONSE_MAX_BYTES)).
#[derive(Debug, Default)]
pub(crate) struct StoredResponses {
    map: HashMap<KeyHash, (Instant, String)>,
    bound: usize,
}

impl StoredResponses {
    /// An empty store for a table of `bound` records.
    pub(crate) fn new(bound: usize) -> StoredResponses {
        StoredResponses {
            map: HashMap::new(),
            bound,
        }
    }
}

impl Responses for StoredResponses {
    fn get(&self, key: KeyHash) -> Option<&str> {
        self.map.get(&key).map(|(_, r)| r.as_str())
    }

    fn insert(&mut self, now: Instant, key: KeyHash, expires_at: Instant, response: &str) {
        if self.map.len() >= self.bound {
            self.map.retain(|_, (e, _)| *e > now);
        }
        self.map.insert(key, (expires_at, response.to_owned()));
    }

    fn remove(&mut self, key: KeyHash) {
        self.map.remove(&key);
    }
}

/// What the service says must be durable, as the daemon persists it.
pub(crate) fn persist_of(durable: Durable<'_>) -> IdemPersist {
    let record = match durable {
        Durable::Barrier => return IdemPersist::Barrier,
        Durable::Record(record) => record,
    };
    let (key, change) = match record {
        IdemRecord::Begun {
            key,
            token,
            since,
            expires_at,
        } => (
            key,
            Change::Begun {
                token,
                since,
                expires_at,
            },
        ),
        IdemRecord::Done {
            key,
            token,
            digest,
            response,
            completed_at,
            expires_at,
        } => (
            key,
            Change::Done {
                token,
                digest,
                response: response.map(str::to_owned),
                completed_at,
                expires_at,
            },
        ),
        IdemRecord::Released { key } => (key, Change::Released),
    };
    IdemPersist::Record(IdemChange {
        key: key.to_owned(),
        change,
    })
}

/// Puts back the records saved before a restart (oldest first, as read), newest first so
/// that the oldest are the ones dropped when the table has no room; their times come onto
/// this run's clock through `anchor`.
pub(crate) fn restore(
    idempotency: &mut DaemonIdempotency,
    anchor: WallAnchor,
    hasher: &KeyHasher,
    entries: &[IdemEntry],
) -> IdemRestored {
    let mut report = IdemRestored::default();
    let mut scratch = Box::new(LineScratch::new());
    for entry in entries.iter().rev() {
        let Ok(line) = entry.record(&mut scratch) else {
            report.invalid += 1;
            continue;
        };
        let Some(saved) = line.saved(anchor) else {
            continue;
        };
        match idempotency.restore(anchor.now, hasher, line.key, saved, line.response()) {
            Ok(true) => report.restored += 1,
            Ok(false) => {}
            Err(_) => report.no_room += 1,
        }
    }
    report
}
