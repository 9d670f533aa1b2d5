//! Idempotency keys: run a piece of work once per key, and answer duplicates from the record.
//!
//! A key is *new*, *in progress* (someone began it and has not completed it) or *done* (with
//! the digest of its result, e.g. a SHA-256 the host computed; the core only stores it). The
//! table is a fixed-capacity [`Table`] keyed by [`KeyHash`], so its memory is bounded whatever
//! keys clients send.
//!
//! # Call order
//!
//! 1. [`IdempotencyTable::begin`] with the key. [`Begin::Started`] makes the caller the owner
//!    and hands it a [`Token`]; a duplicate gets [`Begin::InProgress`] (do not run it twice),
//!    [`Begin::Done`] (answer with the stored digest) or, when failures are remembered,
//!    [`Begin::Failed`].
//! 2. The owner runs the work and calls [`IdempotencyTable::complete`] with the token and
//!    [`Outcome::Success`]`(digest)` or [`Outcome::Failure`].
//!
//! # Time
//!
//! - A done record lives for [`IdempotencyConfig::ttl`] (default 24 h), then the key is new.
//! - An in-progress record lives for [`IdempotencyConfig::in_progress_timeout`] (default
//!   5 min), so a crashed owner does not block its key forever. After the timeout the key may
//!   be begun again, and the old owner's `complete` fails with [`CompleteError::Expired`]
//!   (or [`CompleteError::NotOwner`] once someone else began it): a late result is never
//!   recorded, because a new owner may already be running the same work.
//! - Only successes are remembered by default: a failure frees the key
//!   ([`Completed::Released`]) so a retry runs. With
//!   [`IdempotencyConfig::remember_failures`] a failure is remembered for the TTL like a
//!   success.
//!
//! - At the end of the clock: a record always gets its full timeout, so when
//!   `now + in_progress_timeout` is past [`Instant::MAX`], `begin` on a new key fails with
//!   [`BeginError::ExpiryOverflow`] (a live record is still answered). Otherwise a record begun
//!   at `Instant::MAX` would be expired at birth and every duplicate would start too. A
//!   completion's `now + ttl` saturates instead: the result is kept (until `Instant::MAX`, as
//!   `Completed::Remembered` says) rather than lost, and no key can be begun past then anyway.
//!
//! Expired records are reclaimable: the table hands their slots to new keys when it needs room,
//! and never evicts a live record; when no slot can be had, `begin` fails with
//! [`BeginError::TableFull`], which says when one frees up.
//!
//! # Tokens
//!
//! Every `Started` carries a fresh token from the table's [`IdMinter`], keyed by a secret the
//! host draws at each start; `complete` must present it. This stops a stale worker, whose
//! in-progress record expired and was begun again by another, from completing the new owner's
//! record, including a worker of an earlier run of the host (its tokens come from another
//! key), unless the host persisted that worker's in-progress record and
//! [restored](IdempotencyTable::restore) it: then the record keeps its token and the worker
//! may complete it.
//!
//! # Restarts
//!
//! The table lives in memory. A host that must keep records across restarts persists each
//! `Started` and each completion (with wall-clock times) before it answers, and at start
//! hands them back through [`IdempotencyTable::restore`] as [`Saved`] records on its new
//! clock. Tokens are unpredictable without the key (see [`crate::id`]), so a client cannot
//! forge another's token from its own; still, a token is a capability, and the host binds keys
//! to authenticated clients.

mod answer;
mod config;
mod record;
#[cfg(test)]
mod tests;

pub use answer::{Begin, BeginError, CompleteError, Completed, Outcome};
pub use config::{IdempotencyConfig, IdempotencyConfigError};
pub use record::{Record, Saved, Token};

use crate::id::IdMinter;
use crate::key::KeyHash;
use crate::table::{Slot, Table, TableFull};
use crate::time::Instant;

/// A fixed-capacity idempotency table over storage `S` (`[Slot<Record>; N]` or a boxed slice,
/// a non-zero multiple of [`GROUP`](crate::table::GROUP) slots).
#[derive(Clone, Debug)]
pub struct IdempotencyTable<S> {
    table: Table<Record, S>,
    config: IdempotencyConfig,
    tokens: IdMinter,
}

impl<S> IdempotencyTable<S>
where
    S: AsRef<[Slot<Record>]> + AsMut<[Slot<Record>]>,
{
    /// A table with `config` over `storage` (which is cleared). `token_key` keys the
    /// table's [`IdMinter`]: 16 bytes drawn afresh from the host's RNG at each start, so that
    /// tokens are unpredictable and tokens of an earlier run do not match this run's records.
    ///
    /// # Panics
    /// If the storage length is zero or not a multiple of [`GROUP`](crate::table::GROUP).
    pub fn new(
        config: IdempotencyConfig,
        storage: S,
        token_key: [u8; 16],
    ) -> Result<Self, IdempotencyConfigError> {
        config.validate()?;
        Ok(IdempotencyTable {
            table: Table::new(storage),
            config,
            tokens: IdMinter::new(token_key),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// Begins `key` at `now`: starts it if it is new (or its record expired), else says who
    /// has it. Fails only when the key is new and either no slot is free or reclaimable, or
    /// `now + in_progress_timeout` is past [`Instant::MAX`] (then nothing is changed).
    pub fn begin(&mut self, now: Instant, key: KeyHash) -> Result<Begin, BeginError> {
        let Some(expires_at) = now.checked_add(self.config.in_progress_timeout) else {
            return self.peek(now, key).ok_or(BeginError::ExpiryOverflow);
        };
        let entry = self.table.entry(now, key)?;
        if let Some(existing) = entry.value.existing(now) {
            return Ok(existing);
        }
        let token = Token::from_raw(self.tokens.next_id());
        *entry.value = Record::in_progress(token, now, expires_at);
        Ok(Begin::Started { token, expires_at })
    }

    /// Completes `key`, begun with `token`, with `outcome` at `now`.
    ///
    /// A success (or, with `remember_failures`, a failure) is remembered until `now + ttl`
    /// (saturating at [`Instant::MAX`]); a failure otherwise frees the key. Refused, leaving the table unchanged, unless the key is
    /// in progress under `token` and its in-progress timeout has not passed.
    pub fn complete(
        &mut self,
        now: Instant,
        key: KeyHash,
        token: Token,
        outcome: Outcome,
    ) -> Result<Completed, CompleteError> {
        let record = self.table.get_mut(key).ok_or(CompleteError::Unknown)?;
        record.check_owner(now, token)?;
        if outcome == Outcome::Failure && !self.config.remember_failures {
            let _ = self.table.remove(key);
            return Ok(Completed::Released);
        }
        let expires_at = now + self.config.ttl;
        *record = Record::done(token, outcome, now, expires_at);
        Ok(Completed::Remembered { expires_at })
    }

    /// Puts back a record saved before a restart ([`Saved`], its times on this run's clock),
    /// replacing the key's record if it has one. A record already expired at `now` is not
    /// restored (`Ok(false)`). Fails, changing nothing, when no slot is free or reclaimable
    /// among the key's candidates: a host restoring more records than fit restores the newest
    /// first and drops the rest.
    ///
    /// A restored in-progress record keeps its token, so an owner that began the key before
    /// the restart can still complete it (or its record times out as usual).
    pub fn restore(&mut self, now: Instant, key: KeyHash, saved: Saved) -> Result<bool, TableFull> {
        if saved.expires_at() <= now {
            return Ok(false);
        }
        let entry = self.table.entry(now, key)?;
        *entry.value = saved.into();
        Ok(true)
    }

    /// What [`begin`](Self::begin) would answer for `key` at `now`, without changing
    /// anything: `None` if it would start the key (it is new), else the existing record's
    /// answer (never [`Begin::Started`]).
    pub fn peek(&self, now: Instant, key: KeyHash) -> Option<Begin> {
        self.table.get(key).and_then(|record| record.existing(now))
    }

    /// Number of slots (the table's fixed capacity).
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Number of occupied slots, including expired records not yet reused or swept.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Empties up to `max_slots` slots from `cursor` whose records expired by `now`; returns
    /// the cursor to continue from (see [`Table::sweep`]). Optional: expired slots are reused
    /// on demand anyway.
    pub fn sweep(&mut self, now: Instant, cursor: usize, max_slots: usize) -> usize {
        self.table.sweep(now, cursor, max_slots)
    }
}
