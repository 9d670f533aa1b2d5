//! The daemon's side of the idempotency records the core's service keeps: the store of
//! responses (a map on the heap, bounded by the table's size), the records to persist
//! ([`IdemPersist`], from the service's [`Durable`]) and restoring saved records.

use std::collections::HashMap;

use heidi_core::Instant;
use heidi_core::idempotency::Record;
use heidi_core::journal::LineHash;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::service::{Durable, IdemRecord, Idempotency, Responses};
use heidi_core::table::Slot;

mod persist;

use persist::{Change, saved_of};
pub use persist::{IdemChange, IdemPersist, IdemRestored};

use heidi_common::IdemLine;

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
/// that the oldest are the ones dropped when the table has no room.
pub(crate) fn restore(
    idempotency: &mut DaemonIdempotency,
    now: Instant,
    now_wall_ms: u64,
    hasher: &KeyHasher,
    lines: &[IdemLine],
) -> IdemRestored {
    let mut report = IdemRestored::default();
    for line in lines.iter().rev() {
        let Some((saved, response)) = saved_of(now, now_wall_ms, line) else {
            report.invalid += usize::from(!matches!(line, IdemLine::Released { .. }));
            continue;
        };
        match idempotency.restore(now, hasher, line.key(), saved, response.as_deref()) {
            Ok(true) => report.restored += 1,
            Ok(false) => {}
            Err(_) => report.no_room += 1,
        }
    }
    report
}

/// A result digest as the record file writes it: lowercase hex.
fn hex(digest: &[u8; 32]) -> String {
    LineHash(*digest).hex().as_str().to_owned()
}

/// A result digest read back from the record file (lowercase hex, as [`hex`] writes it).
fn parse_hex(s: &str) -> Option<[u8; 32]> {
    LineHash::from_hex(s.as_bytes()).map(|h| h.0)
}
