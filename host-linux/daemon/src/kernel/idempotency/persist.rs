//! What the host persists for the idempotency table: the record changes ([`IdemChange`]),
//! owned until they are queued, and written as the core's record-file lines.

use heidi_core::Instant;
use heidi_core::idempotency::Token;
use heidi_core::service::{IdemRecord, WallAnchor};
use heidi_store::IdemEntry;

/// What must be durable before an idempotency reply is sent (see
/// [`Handled::Idempotency`](crate::kernel::Handled::Idempotency)).
#[derive(Debug)]
pub enum IdemPersist {
    /// Write this record (`OUT_DIR/idempotency.jsonl`), then send the reply.
    Record(IdemChange),
    /// The reply says `done` or `failed`: send it once every record written before is
    /// durable (the completion it reports may still be on its way to disk).
    Barrier,
}

/// A change of one key's record, in the core's time; [`IdemChange::entry`] writes its line.
#[derive(Debug)]
pub struct IdemChange {
    pub(super) key: String,
    pub(super) change: Change,
}

#[derive(Debug)]
pub(super) enum Change {
    Begun {
        token: Token,
        since: Instant,
        expires_at: Instant,
    },
    Done {
        token: Token,
        digest: Option<[u8; 32]>,
        response: Option<String>,
        completed_at: Instant,
        expires_at: Instant,
    },
    Released,
}

impl IdemChange {
    /// The record as the core's record-file writer takes it.
    pub fn record(&self) -> IdemRecord<'_> {
        let key = self.key.as_str();
        match &self.change {
            Change::Begun {
                token,
                since,
                expires_at,
            } => IdemRecord::Begun {
                key,
                token: *token,
                since: *since,
                expires_at: *expires_at,
            },
            Change::Done {
                token,
                digest,
                response,
                completed_at,
                expires_at,
            } => IdemRecord::Done {
                key,
                token: *token,
                digest: *digest,
                response: response.as_deref(),
                completed_at: *completed_at,
                expires_at: *expires_at,
            },
            Change::Released => IdemRecord::Released { key },
        }
    }

    /// The record file's line, its times converted to Unix milliseconds through `anchor` (the
    /// core's clock and the wall clock read together).
    pub fn entry(&self, anchor: WallAnchor) -> IdemEntry {
        IdemEntry::of(&self.record(), anchor)
    }
}

/// What restoring the saved records did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdemRestored {
    /// Records put back.
    pub restored: usize,
    /// Records that found no slot (the oldest of a file larger than the table), dropped.
    pub no_room: usize,
    /// Records the core's reader refused (not reached: the log keeps only lines it read),
    /// dropped.
    pub invalid: usize,
}
