//! What the idempotency table answers, and its errors.

use super::record::Token;
use crate::table::TableFull;
use crate::time::Instant;
use core::fmt;

/// How a run under a key ended, as reported to
/// [`IdempotencyTable::complete`](super::IdempotencyTable::complete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// The run succeeded; the digest of its result (e.g. a SHA-256 the host computed) is kept
    /// and handed to every duplicate until the TTL passes.
    Success([u8; 32]),
    /// The run failed.
    Failure,
}

/// The answer to [`IdempotencyTable::begin`](super::IdempotencyTable::begin).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Begin {
    /// The key was new (or its old record had expired): the caller now owns it and must run
    /// the work, then complete it with `token` before `expires_at`.
    Started {
        /// Proof of ownership, required by `complete`.
        token: Token,
        /// When the in-progress record times out and another caller may begin the key.
        expires_at: Instant,
    },
    /// Another caller owns the key and is running it; do not run it again.
    InProgress {
        /// When the owner began.
        since: Instant,
        /// When the owner is presumed crashed and the key may be begun again.
        expires_at: Instant,
    },
    /// The key already ran successfully; here is the digest of its result.
    Done {
        /// The digest the owner reported.
        digest: [u8; 32],
        /// When the owner completed it.
        completed_at: Instant,
        /// When the record expires and the key is new again.
        expires_at: Instant,
    },
    /// The key already ran and failed (only with `remember_failures`).
    Failed {
        /// When the owner completed it.
        completed_at: Instant,
        /// When the record expires and the key is new again.
        expires_at: Instant,
    },
}

/// Why [`IdempotencyTable::begin`](super::IdempotencyTable::begin) could not start a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BeginError {
    /// The key is new and no slot is free or reclaimable among the ones it may use.
    TableFull {
        /// When one of its candidate slots becomes reclaimable ([`Instant::MAX`]: never alone).
        retry_at: Instant,
    },
    /// The key is new, but `now + in_progress_timeout` is past [`Instant::MAX`]: an
    /// in-progress record could not get its timeout (and one begun at `Instant::MAX` would be
    /// expired at birth, letting every duplicate start too). Only a shorter timeout helps;
    /// waiting never does, so [`retry_at`](Self::retry_at) is [`Instant::MAX`].
    ExpiryOverflow,
}

impl BeginError {
    /// When to try again ([`Instant::MAX`]: never, by waiting alone).
    pub const fn retry_at(&self) -> Instant {
        match *self {
            BeginError::TableFull { retry_at } => retry_at,
            BeginError::ExpiryOverflow => Instant::MAX,
        }
    }
}

impl From<TableFull> for BeginError {
    fn from(full: TableFull) -> BeginError {
        BeginError::TableFull {
            retry_at: full.retry_at,
        }
    }
}

impl fmt::Display for BeginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BeginError::TableFull { retry_at } => {
                write!(f, "idempotency table full; retry at {retry_at}")
            }
            BeginError::ExpiryOverflow => {
                f.write_str("now + in_progress_timeout is past the end of the clock (Instant::MAX)")
            }
        }
    }
}

impl core::error::Error for BeginError {}

/// The answer to a successful [`IdempotencyTable::complete`](super::IdempotencyTable::complete).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Completed {
    /// The outcome is remembered; duplicates are answered from it until `expires_at`.
    Remembered {
        /// When the record expires and the key is new again.
        expires_at: Instant,
    },
    /// The failure was not remembered: the key is free and the next `begin` starts it.
    Released,
}

/// Why [`IdempotencyTable::complete`](super::IdempotencyTable::complete) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CompleteError {
    /// The table holds no record for the key: it was never begun, its failure was released,
    /// or its expired record was reclaimed for another key.
    Unknown,
    /// The key's record belongs to another begin than the token's: the caller's in-progress
    /// record expired and someone else began the key (or completed it) since.
    NotOwner,
    /// The caller's in-progress record timed out at `expired_at`; the result is not recorded
    /// and the key may be begun again.
    Expired {
        /// When the in-progress record timed out.
        expired_at: Instant,
    },
    /// The caller already completed the key, at `completed_at`.
    AlreadyCompleted {
        /// When the first completion was recorded.
        completed_at: Instant,
    },
}

impl fmt::Display for CompleteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompleteError::Unknown => f.write_str("no record for this idempotency key"),
            CompleteError::NotOwner => {
                f.write_str("idempotency key is owned by a later begin (token is stale)")
            }
            CompleteError::Expired { expired_at } => {
                write!(
                    f,
                    "idempotency key's in-progress record expired at {expired_at}"
                )
            }
            CompleteError::AlreadyCompleted { completed_at } => {
                write!(f, "idempotency key was already completed at {completed_at}")
            }
        }
    }
}

impl core::error::Error for CompleteError {}
