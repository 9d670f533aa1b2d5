//! [`Leases`]: per-key lease sets in a fixed [`Table`].

use super::error::{AcquireError, LeaseConfigError, RefreshError, ReleaseError};
use super::id::LeaseId;
use super::set::LeaseSet;
use super::{DEFAULT_SLOTS_PER_KEY, Lease, LeaseConfig, MAX_SLOTS_PER_KEY};
use crate::id::IdMinter;
use crate::key::KeyHash;
use crate::table::{Reclaim, Slot, Table};
use crate::time::Instant;

/// Per-key concurrency leases with a TTL, over table storage `S` (`[Slot<LeaseSet<K>>; n]` or
/// a boxed slice), with at most `K` leases per key (default 5, at most 64).
///
/// Every call looks at one key only: up to 16 table slots and its `K` lease slots.
#[derive(Clone, Debug)]
pub struct Leases<S, const K: usize = DEFAULT_SLOTS_PER_KEY> {
    table: Table<LeaseSet<K>, S>,
    config: LeaseConfig,
    ids: IdMinter,
}

impl<S, const K: usize> Leases<S, K>
where
    S: AsRef<[Slot<LeaseSet<K>>]> + AsMut<[Slot<LeaseSet<K>>]>,
{
    /// A lease table over `storage` (cleared). `id_key` keys the lease-id minter ([`IdMinter`]):
    /// 16 bytes the host draws afresh from its RNG at each start, so that ids are unpredictable
    /// and ids from an earlier run do not match this run's leases.
    /// Fails to compile unless `1 ≤ K ≤ 64`.
    ///
    /// # Panics
    /// If the storage length is not a non-zero multiple of [`GROUP`](crate::table::GROUP).
    pub fn new(
        storage: S,
        config: LeaseConfig,
        id_key: [u8; 16],
    ) -> Result<Self, LeaseConfigError> {
        const {
            assert!(
                K >= 1 && K <= MAX_SLOTS_PER_KEY,
                "Leases needs 1 <= K <= 64"
            )
        };
        config.validate(K)?;
        Ok(Leases {
            table: Table::new(storage),
            config,
            ids: IdMinter::new(id_key),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// Replaces the configuration, for every key at once: a new limit applies to the next
    /// acquire, a new TTL to the next acquire or refresh. Held leases keep their expiry.
    pub fn set_config(&mut self, config: LeaseConfig) -> Result<(), LeaseConfigError> {
        config.validate(K)?;
        self.config = config;
        Ok(())
    }

    /// A new lease for `key`, expiring at `now + ttl`, unless the key holds its limit of live
    /// leases or the table has no room for a new key. Expired leases never count.
    ///
    /// A lease always gets its full TTL: when `now + ttl` is past [`Instant::MAX`] the call is
    /// refused with [`AcquireError::ExpiryOverflow`] (checked first, touching nothing).
    pub fn acquire(&mut self, now: Instant, key: KeyHash) -> Result<Lease, AcquireError> {
        let expires_at = self.expiry(now).ok_or(AcquireError::ExpiryOverflow)?;
        let limit = usize::from(self.config.limit_per_key);
        let set = self.table.entry(now, key)?.value;
        if set.active(now) >= limit {
            return Err(AcquireError::AtLimit {
                retry_at: set.retry_at(now, limit),
            });
        }
        let lease = Lease {
            id: LeaseId::from_raw(self.ids.next_id()),
            expires_at,
        };
        let stored = set.insert(now, lease.id, lease.expires_at);
        debug_assert!(stored, "a set below its limit has a free slot");
        Ok(lease)
    }

    /// Extends the live lease `id` of `key` to `now + ttl` and returns the new expiry. A
    /// released or expired lease stays dead. When `now + ttl` is past [`Instant::MAX`] the
    /// call is refused with [`RefreshError::ExpiryOverflow`] and the lease keeps its expiry.
    pub fn refresh(
        &mut self,
        now: Instant,
        key: KeyHash,
        id: LeaseId,
    ) -> Result<Instant, RefreshError> {
        let expires_at = self.expiry(now).ok_or(RefreshError::ExpiryOverflow)?;
        let set = self.table.get_mut(key).ok_or(RefreshError::Unknown)?;
        if set.extend(now, id, expires_at) {
            Ok(expires_at)
        } else {
            Err(RefreshError::Unknown)
        }
    }

    /// `now + ttl`, or `None` past [`Instant::MAX`]: a saturated expiry would be a shorter
    /// lease than configured, and one granted at `Instant::MAX` would be dead at birth and not
    /// count toward the limit.
    fn expiry(&self, now: Instant) -> Option<Instant> {
        now.checked_add(self.config.ttl)
    }

    /// Ends the live lease `id` of `key`. The key's slot is freed once it holds no live lease.
    pub fn release(&mut self, now: Instant, key: KeyHash, id: LeaseId) -> Result<(), ReleaseError> {
        let set = self.table.get_mut(key).ok_or(ReleaseError::Unknown)?;
        if !set.remove(now, id) {
            return Err(ReleaseError::Unknown);
        }
        if set.reclaimable_at() <= now {
            let _ = self.table.remove(key);
        }
        Ok(())
    }

    /// Number of leases of `key` live at `now` (0 for an unknown key).
    #[must_use]
    pub fn active(&self, now: Instant, key: KeyHash) -> usize {
        self.table.get(key).map_or(0, |set| set.active(now))
    }

    /// When the earliest live lease of `key` expires, i.e. the next instant at which its
    /// [`active`](Self::active) count drops by itself; `None` if it holds none. There is no
    /// table-wide deadline: expiry needs no timer, because every call compares with `now`.
    #[must_use]
    pub fn next_expiry(&self, now: Instant, key: KeyHash) -> Option<Instant> {
        self.table.get(key)?.next_expiry(now)
    }

    /// Frees up to `max_slots` table slots, from `cursor` on, whose leases have all expired, and
    /// returns the cursor to continue from (see [`Table::sweep`]). Optional: only keeps
    /// [`keys`](Self::keys) close to the number of keys with live leases.
    pub fn sweep(&mut self, now: Instant, cursor: usize, max_slots: usize) -> usize {
        self.table.sweep(now, cursor, max_slots)
    }

    /// Number of keys holding a table slot (including ones whose leases have all expired but
    /// that no call has reclaimed yet).
    pub fn keys(&self) -> usize {
        self.table.len()
    }

    /// Number of table slots, i.e. the most keys that can hold leases at once.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }
}
