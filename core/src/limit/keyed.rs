//! Many buckets, one per key, in a fixed-capacity [`Table`].
//!
//! Each slot is 16 bytes: the key's 8-byte hash and the bucket's 8-byte [`Tat`]. The policy is
//! an argument of each call, so a policy change reaches every existing key at once, and keys
//! under different policies can share one table (see [`crate::limit::ops`]).
//!
//! A bucket is reclaimable once it has refilled (its TAT has passed): it is then equal to a
//! fresh one, so giving its slot to another key loses nothing. A bucket that is still short of
//! full is never evicted, so a client cannot reset its limit by flooding the table with other
//! keys; when both of a new key's groups hold only live buckets the call answers
//! [`KeyedAcquire::TableFull`], with the instant the first of them refills.

use super::bucket::{Acquire, CostOverCapacity, LimitPolicy, Tat};
use crate::key::KeyHash;
use crate::table::{GROUP, Reclaim, Slot, Table};
use crate::time::Instant;

impl Reclaim for Tat {
    fn reclaimable_at(&self) -> Instant {
        self.full_at()
    }
}

/// The answer to [`KeyedLimiter::acquire`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KeyedAcquire {
    /// The call may proceed.
    Granted {
        /// Whole tokens left in the key's bucket after this grant.
        remaining: u32,
    },
    /// The key's bucket is short of tokens.
    Denied {
        /// The earliest instant at which the same call would be granted ([`Instant::MAX`]:
        /// never).
        retry_at: Instant,
    },
    /// The key has no bucket and no slot is free for one: every candidate slot holds a bucket
    /// that has not refilled.
    TableFull {
        /// When the first candidate slot's bucket refills and can be reused.
        retry_at: Instant,
    },
}

impl KeyedAcquire {
    /// Whether the call was granted.
    pub const fn is_granted(&self) -> bool {
        matches!(self, KeyedAcquire::Granted { .. })
    }

    /// When to retry a refused call; `None` when granted.
    pub const fn retry_at(&self) -> Option<Instant> {
        match self {
            KeyedAcquire::Granted { .. } => None,
            KeyedAcquire::Denied { retry_at } | KeyedAcquire::TableFull { retry_at } => {
                Some(*retry_at)
            }
        }
    }
}

impl From<Acquire> for KeyedAcquire {
    fn from(a: Acquire) -> KeyedAcquire {
        match a {
            Acquire::Granted { remaining } => KeyedAcquire::Granted { remaining },
            Acquire::Denied { retry_at } => KeyedAcquire::Denied { retry_at },
        }
    }
}

/// A keyed limiter whose slots live in an array of `N` slots (`N` a non-zero multiple of 8).
pub type ArrayLimiter<const N: usize> = KeyedLimiter<[Slot<Tat>; N]>;

/// One token bucket per key, in fixed storage `S`: an array ([`ArrayLimiter`]) or a boxed
/// slice from the host (`vec![Slot::empty(); n].into_boxed_slice()`).
#[derive(Clone, Debug)]
pub struct KeyedLimiter<S> {
    table: Table<Tat, S>,
}

impl<const N: usize> KeyedLimiter<[Slot<Tat>; N]> {
    /// A limiter over an array of `N` slots; `N` must be a non-zero multiple of 8 (checked at
    /// compile time).
    pub fn new_array() -> KeyedLimiter<[Slot<Tat>; N]> {
        const {
            assert!(
                N > 0 && N % GROUP == 0,
                "N must be a non-zero multiple of 8"
            )
        };
        KeyedLimiter::new([Slot::empty(); N])
    }
}

impl<S> KeyedLimiter<S>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    /// Bytes of storage per slot: an 8-byte key hash and an 8-byte [`Tat`].
    pub const SLOT_BYTES: usize = core::mem::size_of::<Slot<Tat>>();

    /// A limiter over `storage`, which is cleared.
    ///
    /// # Panics
    /// If the storage length is zero or not a multiple of 8 (a programmer error).
    pub fn new(storage: S) -> KeyedLimiter<S> {
        KeyedLimiter {
            table: Table::new(storage),
        }
    }

    /// Takes `cost` tokens from `key`'s bucket under `policy`, making the bucket (full) if the
    /// key has none. Cost 0 asks whether the bucket is usable and takes nothing, and never
    /// takes a slot.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    #[inline]
    pub fn acquire(
        &mut self,
        now: Instant,
        key: KeyHash,
        policy: &LimitPolicy,
        cost: u32,
    ) -> Result<KeyedAcquire, CostOverCapacity> {
        if cost == 0 || cost > policy.capacity_tokens() {
            // A peek, or an error: neither takes a slot.
            return self.check(now, key, policy, cost).map(KeyedAcquire::from);
        }
        match self.table.entry(now, key) {
            Ok(entry) => entry
                .value
                .acquire(now, policy, cost)
                .map(KeyedAcquire::from),
            Err(full) => Ok(KeyedAcquire::TableFull {
                retry_at: full.retry_at,
            }),
        }
    }

    /// What the bucket of `key` would answer to [`KeyedLimiter::acquire`], taking nothing and
    /// no slot. A key without a bucket is answered as a full bucket; its `acquire` can still
    /// meet [`KeyedAcquire::TableFull`].
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    pub fn check(
        &self,
        now: Instant,
        key: KeyHash,
        policy: &LimitPolicy,
        cost: u32,
    ) -> Result<Acquire, CostOverCapacity> {
        self.bucket(key).check(now, policy, cost)
    }

    /// The bucket [`KeyedLimiter::check`] reads for `key`: its own, or a full one when it has
    /// none. A host asking several questions of one key looks it up once this way.
    pub fn bucket(&self, key: KeyHash) -> Tat {
        self.table.get(key).copied().unwrap_or(Tat::FULL)
    }

    /// The state of `key`'s bucket, if it has one.
    pub fn get(&self, key: KeyHash) -> Option<Tat> {
        self.table.get(key).copied()
    }

    /// Forgets `key`'s bucket (an operator's reset); returns whether it had one.
    pub fn reset(&mut self, key: KeyHash) -> bool {
        self.table.remove(key).is_some()
    }

    /// Frees up to `max_slots` slots from `cursor` on whose buckets have refilled by `now`, and
    /// returns the cursor to continue from. Optional: it only makes [`KeyedLimiter::len`]
    /// track live buckets; full slots are reused on demand anyway.
    #[must_use = "the returned cursor is where the next sweep continues"]
    pub fn sweep(&mut self, now: Instant, cursor: usize, max_slots: usize) -> usize {
        self.table.sweep(now, cursor, max_slots)
    }

    /// The buckets held, as (key, state); refilled buckets not yet reused are included.
    pub fn iter(&self) -> impl Iterator<Item = (KeyHash, Tat)> + '_ {
        self.table.iter().map(|(k, tat)| (k, *tat))
    }

    /// Checks the underlying table's invariants (see [`Table::assert_invariants`]); O(capacity).
    pub fn assert_invariants(&self) {
        self.table.assert_invariants();
    }

    /// Number of slots, the most keys held at once.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Number of occupied slots, including refilled buckets not yet reused.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes of slot storage: `capacity() × SLOT_BYTES`, fixed for the limiter's life.
    pub fn storage_bytes(&self) -> usize {
        self.capacity() * Self::SLOT_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyHasher;
    use crate::time::Duration;

    const HASHER: KeyHasher = KeyHasher::new([42; 16]);

    fn key(i: u32) -> KeyHash {
        HASHER.hash(&i.to_le_bytes())
    }

    fn policy(capacity: u32, window_secs: u64) -> LimitPolicy {
        LimitPolicy::new(capacity, Duration::from_secs(window_secs)).unwrap()
    }

    #[test]
    fn slots_are_sixteen_bytes() {
        assert_eq!(ArrayLimiter::<8>::SLOT_BYTES, 16);
        let l = ArrayLimiter::<64>::new_array();
        assert_eq!(l.storage_bytes(), 64 * 16);
        assert_eq!(core::mem::size_of::<ArrayLimiter<64>>(), 64 * 16 + 16);
    }

    #[test]
    fn keys_have_separate_buckets() {
        let mut l = ArrayLimiter::<64>::new_array();
        let p = policy(60, 60);
        let now = Instant::from_secs(1);
        let a = (0..70)
            .filter(|_| l.acquire(now, key(1), &p, 1).unwrap().is_granted())
            .count();
        assert_eq!(a, 60);
        assert_eq!(
            l.acquire(now, key(2), &p, 5),
            Ok(KeyedAcquire::Granted { remaining: 55 })
        );
        assert_eq!(
            l.acquire(now, key(1), &p, 1),
            Ok(KeyedAcquire::Denied {
                retry_at: now + Duration::from_secs(1)
            })
        );
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn check_and_cost_zero_take_no_slot() {
        let mut l = ArrayLimiter::<8>::new_array();
        let p = policy(10, 60);
        let now = Instant::from_secs(1);
        assert_eq!(
            l.check(now, key(1), &p, 3),
            Ok(Acquire::Granted { remaining: 7 })
        );
        assert_eq!(
            l.acquire(now, key(1), &p, 0),
            Ok(KeyedAcquire::Granted { remaining: 10 })
        );
        assert!(l.is_empty());
        assert_eq!(l.get(key(1)), None);
    }

    #[test]
    fn a_live_key_is_never_evicted_by_a_flood() {
        let mut l = ArrayLimiter::<8>::new_array();
        let p = policy(2, 60);
        let now = Instant::from_secs(10);
        assert!(l.acquire(now, key(0), &p, 2).unwrap().is_granted());
        let mut full = 0;
        for k in 1..1_000 {
            match l.acquire(now, key(k), &p, 1).unwrap() {
                KeyedAcquire::TableFull { retry_at } => {
                    assert_eq!(retry_at, now + Duration::from_secs(30));
                    full += 1;
                }
                other => assert!(other.is_granted()),
            }
        }
        assert_eq!(full, 999 - 7);
        assert_eq!(l.len(), 8);
        assert!(matches!(
            l.acquire(now, key(0), &p, 1),
            Ok(KeyedAcquire::Denied { .. })
        ));
    }

    #[test]
    fn refilled_buckets_are_reused() {
        let mut l = ArrayLimiter::<8>::new_array();
        let p = policy(2, 60);
        let t0 = Instant::from_secs(10);
        for k in 0..8 {
            assert!(l.acquire(t0, key(k), &p, 1).unwrap().is_granted());
        }
        let retry_at = l.acquire(t0, key(100), &p, 1).unwrap().retry_at().unwrap();
        assert_eq!(retry_at, t0 + Duration::from_secs(30));
        assert!(l.acquire(retry_at, key(100), &p, 1).unwrap().is_granted());
        assert_eq!(l.len(), 8);
    }

    #[test]
    fn cost_over_capacity_is_an_error_even_when_full() {
        let mut l = ArrayLimiter::<8>::new_array();
        let p = policy(2, 60);
        let now = Instant::ZERO;
        for k in 0..8 {
            let _ = l.acquire(now, key(k), &p, 1).unwrap();
        }
        assert!(l.acquire(now, key(100), &p, 3).is_err());
        assert!(l.acquire(now, key(0), &p, 3).is_err());
        let mut l = ArrayLimiter::<8>::new_array();
        assert!(l.acquire(now, key(1), &p, 3).is_err());
        assert!(l.is_empty());
    }

    #[test]
    fn a_policy_change_reaches_existing_keys() {
        let mut l = ArrayLimiter::<16>::new_array();
        let now = Instant::from_secs(5);
        for k in 0..4 {
            assert!(
                l.acquire(now, key(k), &policy(60, 60), 30)
                    .unwrap()
                    .is_granted()
            );
        }
        let smaller = policy(10, 60);
        for k in 0..4 {
            assert_eq!(
                l.acquire(now, key(k), &smaller, 5),
                Ok(KeyedAcquire::Granted { remaining: 0 })
            );
            assert!(!l.acquire(now, key(k), &smaller, 1).unwrap().is_granted());
        }
    }

    #[test]
    fn sweep_and_reset() {
        let mut l = ArrayLimiter::<16>::new_array();
        let p = policy(10, 10);
        for k in 0..6 {
            let _ = l.acquire(Instant::ZERO, key(k), &p, 1 + k).unwrap();
        }
        assert!(l.reset(key(5)));
        assert!(!l.reset(key(5)));
        // Cost k+1 refills at (k+1) s.
        let _ = l.sweep(Instant::from_secs(3), 0, 16);
        assert_eq!(l.len(), 2);
        assert_eq!(
            l.get(key(3)),
            Some(Tat::from_full_at(Instant::from_secs(4)))
        );
    }
}
