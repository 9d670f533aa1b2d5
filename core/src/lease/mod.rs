//! Concurrency leases (a bulkhead): at most `limit_per_key` live leases per key, each expiring
//! after a TTL unless refreshed.
//!
//! A client [`acquire`](Leases::acquire)s a [`Lease`] before starting work for a key (a user,
//! a tenant), [`refresh`](Leases::refresh)es it while the work runs longer than the TTL, and
//! [`release`](Leases::release)s it when done. A client that dies simply stops refreshing: its
//! lease stops counting at `expires_at`.
//!
//! # Semantics
//!
//! - **Defaults**: 5 leases per key ([`DEFAULT_LIMIT_PER_KEY`]), TTL 180 s
//!   ([`DEFAULT_LEASE_TTL`]). Each key has `K` slots (a const generic, default 5): the hard cap
//!   on the runtime limit.
//! - **Expiry on time.** A lease is live from its grant until just before `expires_at`: at that
//!   instant it stops counting toward the limit, without any sweep or timer, because every call
//!   compares with `now`. A refusal's `retry_at` is exactly the instant an acquire would succeed
//!   if nothing else happened.
//! - **No revival.** Refreshing or releasing a lease that was released or has expired answers
//!   `Unknown` and changes nothing. Ids are unique for the table's lifetime (see [`LeaseId`]
//!   and [`crate::id`]), so an old id can never match a newer lease of the same key.
//! - **A full TTL or nothing.** When `now + ttl` is past [`Instant::MAX`], acquire and refresh
//!   are refused with `ExpiryOverflow` (retry at `Instant::MAX`: never by waiting) rather than
//!   granting a shortened lease, or at `Instant::MAX` itself a lease that is dead at birth and
//!   would never count toward the limit.
//! - **Bounded memory.** Keys live in a fixed [`Table`](crate::table::Table). A key's slot is
//!   freed when its last live lease is released, and becomes reclaimable (may be handed to a new
//!   key) once all its leases have expired. A key with a live lease is never evicted: when no
//!   slot can be had, acquire answers [`AcquireError::TableFull`] with `retry_at`.
//!
//! # Bounded work
//!
//! Every call touches one key: at most 16 table slots and that key's `K` lease slots. Nothing
//! scans the table; [`Leases::sweep`] empties expired keys a few slots at a time if the host
//! wants [`Leases::keys`] to track live keys. For the same reason there is no table-wide
//! `poll_timeout` (it would be a scan, and no action is due at an expiry anyway);
//! [`Leases::next_expiry`] gives one key's next expiry.
//!
//! ```
//! use heidi_core::key::KeyHasher;
//! use heidi_core::lease::{AcquireError, LeaseConfig, Leases};
//! use heidi_core::table::Slot;
//! use heidi_core::{Duration, Instant};
//!
//! let mut leases: Leases<_> = Leases::new([Slot::empty(); 64], LeaseConfig::default(), [42; 16]).unwrap();
//! let user = KeyHasher::new([7; 16]).hash(b"user:1");
//! let t0 = Instant::from_secs(0);
//! let first = leases.acquire(t0, user).unwrap();
//! for _ in 1..5 {
//!     let _ = leases.acquire(t0, user).unwrap();
//! }
//! let sixth = leases.acquire(t0, user);
//! assert_eq!(sixth, Err(AcquireError::AtLimit { retry_at: first.expires_at }));
//! leases.release(t0, user, first.id).unwrap();
//! assert_eq!(leases.active(t0, user), 4);
//! // Everything else expires after 180 s.
//! assert_eq!(leases.active(t0 + Duration::from_secs(180), user), 0);
//! ```

mod error;
mod id;
mod leases;
mod set;
#[cfg(test)]
mod tests;

pub use error::{AcquireError, LeaseConfigError, RefreshError, ReleaseError};
pub use id::LeaseId;
pub use leases::Leases;
pub use set::LeaseSet;

use crate::time::{Duration, Instant};

/// Default live leases per key (5 per user).
pub const DEFAULT_LIMIT_PER_KEY: u16 = 5;

/// Default lease slots per key, `K` (the hard cap on `limit_per_key`).
pub const DEFAULT_SLOTS_PER_KEY: usize = 5;

/// The largest `K` a [`Leases`] table accepts (bounds the work per call).
pub const MAX_SLOTS_PER_KEY: usize = 64;

/// Default lease TTL (180 s).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(180);

/// Configuration of a [`Leases`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeaseConfig {
    /// Live leases allowed per key, `1 ..= K` ([`DEFAULT_LIMIT_PER_KEY`]).
    pub limit_per_key: u16,
    /// How long a lease lives after its acquire or last refresh ([`DEFAULT_LEASE_TTL`]).
    pub ttl: Duration,
}

impl LeaseConfig {
    /// The defaults: 5 per key, 180 s.
    pub const DEFAULT: LeaseConfig = LeaseConfig {
        limit_per_key: DEFAULT_LIMIT_PER_KEY,
        ttl: DEFAULT_LEASE_TTL,
    };

    /// Checks the configuration against `slots` lease slots per key.
    pub const fn validate(&self, slots: usize) -> Result<(), LeaseConfigError> {
        if self.limit_per_key == 0 {
            Err(LeaseConfigError::LimitZero)
        } else if self.limit_per_key as usize > slots {
            Err(LeaseConfigError::LimitAboveSlots {
                limit: self.limit_per_key,
                slots,
            })
        } else if self.ttl.is_zero() {
            Err(LeaseConfigError::TtlZero)
        } else {
            Ok(())
        }
    }
}

impl Default for LeaseConfig {
    fn default() -> LeaseConfig {
        LeaseConfig::DEFAULT
    }
}

/// A granted lease: hand `id` to the client, which refreshes or releases it by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[must_use = "a lease counts toward the key's limit until released or expired"]
pub struct Lease {
    /// The lease's id, unique for the table's lifetime.
    pub id: LeaseId,
    /// When the lease stops counting unless refreshed.
    pub expires_at: Instant,
}
