//! [`LeaseSet`]: one key's leases, a fixed inline array of `K` slots.

use super::id::LeaseId;
use crate::table::Reclaim;
use crate::time::Instant;

/// One slot: a lease id (0 when free) and its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Held {
    id: u64,
    expires_at: Instant,
}

impl Held {
    const FREE: Held = Held {
        id: 0,
        expires_at: Instant::ZERO,
    };

    /// A lease counts from its grant until just before `expires_at`.
    fn is_live(&self, now: Instant) -> bool {
        self.id != 0 && now < self.expires_at
    }
}

/// The leases of one key: up to `K` (id, expiry) slots, 16 bytes each. A slot is free when its
/// lease was released or has expired; expired slots are reused without a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeaseSet<const K: usize> {
    held: [Held; K],
}

impl<const K: usize> Default for LeaseSet<K> {
    fn default() -> LeaseSet<K> {
        LeaseSet {
            held: [Held::FREE; K],
        }
    }
}

impl<const K: usize> Reclaim for LeaseSet<K> {
    /// The latest expiry of the leases still held; [`Instant::ZERO`] when none is.
    fn reclaimable_at(&self) -> Instant {
        let held = self.held.iter().filter(|h| h.id != 0);
        held.map(|h| h.expires_at).max().unwrap_or(Instant::ZERO)
    }
}

impl<const K: usize> LeaseSet<K> {
    /// Number of leases live at `now`.
    pub fn active(&self, now: Instant) -> usize {
        self.held.iter().filter(|h| h.is_live(now)).count()
    }

    /// The earliest expiry among the leases live at `now`.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let live = self.held.iter().filter(|h| h.is_live(now));
        live.map(|h| h.expires_at).min()
    }

    /// When fewer than `limit` leases will be live, given that `limit` or more are at `now`
    /// (the limit may have been lowered below the number held): the `(live - limit + 1)`-th
    /// earliest expiry.
    pub(crate) fn retry_at(&self, now: Instant, limit: usize) -> Instant {
        let mut expiries = [Instant::MAX; K];
        let mut live = 0;
        for h in self.held.iter().filter(|h| h.is_live(now)) {
            expiries[live] = h.expires_at;
            live += 1;
        }
        expiries[..live].sort_unstable();
        let index = live.saturating_sub(limit.max(1));
        expiries.get(index).copied().unwrap_or(Instant::MAX)
    }

    /// Stores a new lease in a free or expired slot; `false` if all `K` are live.
    pub(crate) fn insert(&mut self, now: Instant, id: LeaseId, expires_at: Instant) -> bool {
        match self.held.iter_mut().find(|h| !h.is_live(now)) {
            Some(slot) => {
                *slot = Held {
                    id: id.get(),
                    expires_at,
                };
                true
            }
            None => false,
        }
    }

    /// Moves the expiry of lease `id`, if it is live at `now`.
    pub(crate) fn extend(&mut self, now: Instant, id: LeaseId, expires_at: Instant) -> bool {
        match self.live_mut(now, id) {
            Some(h) => {
                h.expires_at = expires_at;
                true
            }
            None => false,
        }
    }

    /// Frees lease `id`, if it is live at `now`.
    pub(crate) fn remove(&mut self, now: Instant, id: LeaseId) -> bool {
        match self.live_mut(now, id) {
            Some(h) => {
                *h = Held::FREE;
                true
            }
            None => false,
        }
    }

    fn live_mut(&mut self, now: Instant, id: LeaseId) -> Option<&mut Held> {
        let id = id.get();
        self.held.iter_mut().find(|h| h.id == id && h.is_live(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u64) -> Instant {
        Instant::from_secs(v)
    }

    fn id(v: u64) -> LeaseId {
        LeaseId::from_raw(v)
    }

    #[test]
    fn live_means_before_expiry() {
        let mut set = LeaseSet::<2>::default();
        assert!(set.insert(s(0), id(1), s(10)));
        assert_eq!(set.active(s(9)), 1);
        assert_eq!(set.active(s(10)), 0);
        assert_eq!(set.next_expiry(s(0)), Some(s(10)));
        assert_eq!(set.next_expiry(s(10)), None);
    }

    #[test]
    fn expired_slots_are_reused_and_full_sets_refuse() {
        let mut set = LeaseSet::<2>::default();
        assert!(set.insert(s(0), id(1), s(10)));
        assert!(set.insert(s(0), id(2), s(20)));
        assert!(!set.insert(s(5), id(3), s(25)));
        assert!(set.insert(s(10), id(3), s(30)));
        assert!(!set.extend(s(10), id(1), s(40)), "expired lease revived");
        assert_eq!(set.active(s(10)), 2);
    }

    #[test]
    fn zero_never_matches_a_free_slot() {
        let mut set = LeaseSet::<2>::default();
        assert!(!set.remove(s(0), id(0)));
        assert!(!set.extend(s(0), id(0), s(9)));
    }

    #[test]
    fn retry_at_accounts_for_a_lowered_limit() {
        let mut set = LeaseSet::<4>::default();
        for (i, exp) in [(1, 40), (2, 10), (3, 30), (4, 20)] {
            assert!(set.insert(s(0), id(i), s(exp)));
        }
        assert_eq!(set.retry_at(s(0), 4), s(10));
        assert_eq!(set.retry_at(s(0), 2), s(30));
        assert_eq!(set.retry_at(s(0), 1), s(40));
    }

    #[test]
    fn reclaimable_after_the_last_expiry() {
        let mut set = LeaseSet::<3>::default();
        assert_eq!(set.reclaimable_at(), Instant::ZERO);
        assert!(set.insert(s(0), id(1), s(10)));
        assert!(set.insert(s(0), id(2), s(30)));
        assert_eq!(set.reclaimable_at(), s(30));
        assert!(set.remove(s(0), id(2)));
        assert_eq!(set.reclaimable_at(), s(10));
    }
}
