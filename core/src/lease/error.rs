//! The errors of the lease operations, one enum per operation.

use crate::table::TableFull;
use crate::time::Instant;
use core::fmt;

const UNKNOWN_LEASE: &str = "no live lease with this id: released, expired or never issued";
const EXPIRY_OVERFLOW: &str = "now + ttl is past the end of the clock (Instant::MAX)";

/// Why [`Leases::acquire`](super::Leases::acquire) granted nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AcquireError {
    /// The key holds its limit of live leases; one expires at `retry_at` (earlier if released).
    AtLimit {
        /// When the key's live leases drop below the limit by expiry alone.
        retry_at: Instant,
    },
    /// The key has no state and the table has no free or reclaimable slot for it.
    TableFull {
        /// When a slot the key could use becomes reclaimable ([`Instant::MAX`]: never alone).
        retry_at: Instant,
    },
    /// `now + ttl` is past [`Instant::MAX`]: a lease granted now could not get its TTL (and
    /// one granted at `Instant::MAX` would be dead at birth). Only a shorter TTL helps; time
    /// alone never does, so [`retry_at`](Self::retry_at) is [`Instant::MAX`].
    ExpiryOverflow,
}

impl AcquireError {
    /// When to try again ([`Instant::MAX`]: never, by waiting alone).
    pub const fn retry_at(&self) -> Instant {
        match *self {
            AcquireError::AtLimit { retry_at } | AcquireError::TableFull { retry_at } => retry_at,
            AcquireError::ExpiryOverflow => Instant::MAX,
        }
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::AtLimit { retry_at } => {
                write!(f, "lease limit reached for this key; retry at {retry_at}")
            }
            AcquireError::TableFull { retry_at } => {
                write!(f, "lease table full; retry at {retry_at}")
            }
            AcquireError::ExpiryOverflow => f.write_str(EXPIRY_OVERFLOW),
        }
    }
}

impl core::error::Error for AcquireError {}

impl From<TableFull> for AcquireError {
    fn from(full: TableFull) -> AcquireError {
        AcquireError::TableFull {
            retry_at: full.retry_at,
        }
    }
}

/// Why [`Leases::refresh`](super::Leases::refresh) extended nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RefreshError {
    /// No live lease of the key has this id: released, expired, or never issued.
    Unknown,
    /// `now + ttl` is past [`Instant::MAX`]; the lease (if live) keeps its current expiry.
    /// Only a shorter TTL helps: retry at [`Instant::MAX`], i.e. never by waiting.
    ExpiryOverflow,
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Unknown => f.write_str(UNKNOWN_LEASE),
            RefreshError::ExpiryOverflow => f.write_str(EXPIRY_OVERFLOW),
        }
    }
}

impl core::error::Error for RefreshError {}

/// Why [`Leases::release`](super::Leases::release) released nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ReleaseError {
    /// No live lease of the key has this id: released already, expired (it stopped counting at
    /// its expiry), or never issued.
    Unknown,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(UNKNOWN_LEASE)
    }
}

impl core::error::Error for ReleaseError {}

/// A [`LeaseConfig`](super::LeaseConfig) that cannot be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LeaseConfigError {
    /// `limit_per_key` is zero: no lease could ever be granted.
    LimitZero,
    /// `limit_per_key` exceeds the `K` slots each key has.
    LimitAboveSlots {
        /// The configured limit.
        limit: u16,
        /// The compile-time slots per key, `K`.
        slots: usize,
    },
    /// `ttl` is zero: every lease would expire as it is granted.
    TtlZero,
}

impl fmt::Display for LeaseConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseConfigError::LimitZero => f.write_str("limit_per_key must be at least 1"),
            LeaseConfigError::LimitAboveSlots { limit, slots } => write!(
                f,
                "limit_per_key {limit} exceeds the {slots} lease slots per key"
            ),
            LeaseConfigError::TtlZero => f.write_str("ttl must be longer than zero"),
        }
    }
}

impl core::error::Error for LeaseConfigError {}
