//! A fixed-capacity hash table keyed by [`KeyHash`], with bounded work per call and eviction
//! of entries that no longer carry information.
//!
//! The limiter, the lease table and the idempotency table all keep per-key state for keys
//! chosen by clients. This table holds that state in caller-provided storage whose size never
//! changes, so memory is bounded whatever keys arrive.
//!
//! # Layout and bounded work
//!
//! Slots form groups of [`GROUP`] (8). A key may live in one of two groups, picked by two
//! independent halves of its hash ("two choices"), so every operation looks at no more than 16
//! slots, and the table stays usable up to high load. A new key goes to the emptier of its two
//! groups.
//!
//! # Eviction
//!
//! A value says, through [`Reclaim::reclaimable_at`], from when on it carries no information: a
//! token bucket that has refilled, a lease set whose leases have all expired, an idempotency
//! record past its TTL. When both of a new key's groups are full, a slot whose value is
//! reclaimable is handed to the new key. A live entry is never evicted, so a client cannot
//! reset another key's state (or its own) by flooding the table with fresh keys; when no slot
//! can be reclaimed the insert fails with [`TableFull`], which says when a slot frees up.

use crate::key::KeyHash;
use crate::time::Instant;
use core::fmt;
use core::marker::PhantomData;

/// Slots per group; storage length must be a non-zero multiple of this.
pub const GROUP: usize = 8;

/// Values that can tell when they stop carrying information.
pub trait Reclaim {
    /// The instant from which this value is equivalent to a fresh one and its slot may be
    /// given to another key. [`Instant::MAX`] means never.
    fn reclaimable_at(&self) -> Instant;
}

/// One slot of a [`Table`]: a key hash (0 when empty) and its value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slot<V> {
    key: u64,
    value: V,
}

impl<V: Default> Slot<V> {
    /// An empty slot, for building storage (`[Slot::empty(); N]`, `vec![Slot::empty(); n]`).
    pub fn empty() -> Slot<V> {
        Slot {
            key: 0,
            value: V::default(),
        }
    }
}

/// No slot is free or reclaimable among the ones a key may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TableFull {
    /// The earliest instant at which one of the key's candidate slots becomes reclaimable
    /// ([`Instant::MAX`] if none ever will on its own).
    pub retry_at: Instant,
}

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table full until {}", self.retry_at)
    }
}

impl core::error::Error for TableFull {}

/// The result of [`Table::entry`]: a slot for the key, and whether it was just taken.
#[derive(Debug)]
pub struct Entry<'a, V> {
    /// The key's value. For a new entry this is `V::default()`, to be filled in by the caller.
    pub value: &'a mut V,
    /// `true` if the key was not in the table (or was evicted) and the slot is new to it.
    pub inserted: bool,
}

/// A fixed-capacity table over storage `S` (an array, or a boxed slice from the host).
#[derive(Clone, Debug)]
pub struct Table<V, S> {
    slots: S,
    len: usize,
    groups: usize,
    _value: PhantomData<V>,
}

impl<V, S> Table<V, S>
where
    V: Reclaim + Default,
    S: AsRef<[Slot<V>]> + AsMut<[Slot<V>]>,
{
    /// A table over `storage`, which is cleared: each occupied slot (key hash ≠ 0) is emptied.
    /// An empty slot is only read, never written, so storage whose pages the host has not
    /// touched yet (or has given back to the system) stays untouched.
    ///
    /// # Panics
    /// If the storage length is zero or not a multiple of [`GROUP`] (a programmer error).
    pub fn new(mut storage: S) -> Table<V, S> {
        let n = storage.as_ref().len();
        assert!(
            n > 0 && n % GROUP == 0,
            "table storage must be a non-zero multiple of {GROUP} slots, got {n}"
        );
        for slot in storage.as_mut() {
            if slot.key != 0 {
                *slot = Slot::empty();
            }
        }
        Table {
            slots: storage,
            len: 0,
            groups: n / GROUP,
            _value: PhantomData,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// Number of occupied slots (including ones that are reclaimable but not yet reused).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value stored for `key`, if any.
    pub fn get(&self, key: KeyHash) -> Option<&V> {
        let i = self.find(key)?;
        Some(&self.slots.as_ref()[i].value)
    }

    /// The value stored for `key`, mutably, if any.
    pub fn get_mut(&mut self, key: KeyHash) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots.as_mut()[i].value)
    }

    /// The slot for `key`: its existing entry, else an empty slot, else a slot reclaimable at
    /// `now` (whose old value is dropped). Looks at no more than `2 × GROUP` slots.
    pub fn entry(&mut self, now: Instant, key: KeyHash) -> Result<Entry<'_, V>, TableFull> {
        if let Some(i) = self.find(key) {
            return Ok(Entry {
                value: &mut self.slots.as_mut()[i].value,
                inserted: false,
            });
        }
        let i = self.vacancy(now, key)?;
        let slot = &mut self.slots.as_mut()[i];
        if slot.key == 0 {
            self.len += 1;
        }
        debug_assert!(self.len <= self.groups * GROUP, "more entries than slots");
        *slot = Slot {
            key: key.get(),
            value: V::default(),
        };
        Ok(Entry {
            value: &mut slot.value,
            inserted: true,
        })
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: KeyHash) -> Option<V> {
        let i = self.find(key)?;
        let slot = core::mem::replace(&mut self.slots.as_mut()[i], Slot::empty());
        self.len -= 1;
        Some(slot.value)
    }

    /// Empties up to `max_slots` slots starting at `cursor` whose values are reclaimable at
    /// `now`, and returns the cursor to continue from. A host that wants `len()` to track live
    /// entries calls this with a small budget on each tick; correctness never depends on it.
    #[must_use = "the returned cursor is where the next sweep continues"]
    pub fn sweep(&mut self, now: Instant, cursor: usize, max_slots: usize) -> usize {
        let n = self.capacity();
        let mut i = cursor % n;
        for _ in 0..max_slots.min(n) {
            let slot = &mut self.slots.as_mut()[i];
            if slot.key != 0 && slot.value.reclaimable_at() <= now {
                *slot = Slot::empty();
                self.len -= 1;
            }
            i = (i + 1) % n;
        }
        i
    }

    /// Checks the table's invariants: `len` counts exactly the occupied slots, and no key
    /// is stored twice within its candidate groups. O(capacity): for tests and debug
    /// tooling, not for every call.
    ///
    /// # Panics
    /// If an invariant does not hold (a bug in this module).
    pub fn assert_invariants(&self) {
        let slots = self.slots.as_ref();
        let occupied = slots.iter().filter(|s| s.key != 0).count();
        assert_eq!(occupied, self.len, "len must count the occupied slots");
        for s in slots.iter().filter(|s| s.key != 0) {
            let key = KeyHash::from_raw(s.key);
            let copies: usize = self
                .groups_of(key)
                .into_iter()
                .enumerate()
                .filter(|&(n, g)| n == 0 || g != self.groups_of(key)[0])
                .map(|(_, g)| {
                    self.group_slots(g)
                        .filter(|&i| slots[i].key == s.key)
                        .count()
                })
                .sum();
            assert_eq!(copies, 1, "a key must be stored once, in one of its groups");
        }
    }

    /// Occupied slots, as (key, value).
    pub fn iter(&self) -> impl Iterator<Item = (KeyHash, &V)> {
        self.slots
            .as_ref()
            .iter()
            .filter(|s| s.key != 0)
            .map(|s| (KeyHash::from_raw(s.key), &s.value))
    }

    /// The key's two candidate groups (the same group twice in a one-group table).
    fn groups_of(&self, key: KeyHash) -> [usize; 2] {
        let h = key.get();
        let reduce = |x: u64| (((x & 0xffff_ffff) * self.groups as u64) >> 32) as usize;
        [reduce(h), reduce(h >> 32)]
    }

    fn group_slots(&self, group: usize) -> core::ops::Range<usize> {
        group * GROUP..(group + 1) * GROUP
    }

    fn find(&self, key: KeyHash) -> Option<usize> {
        debug_assert_ne!(key.get(), 0, "a KeyHash is never zero");
        let slots = self.slots.as_ref();
        self.groups_of(key).into_iter().find_map(|g| {
            let range = self.group_slots(g);
            let start = range.start;
            let group = slots.get(range)?;
            group
                .iter()
                .position(|s| s.key == key.get())
                .map(|i| start + i)
        })
    }

    /// Picks the slot a new key takes: an empty slot in the emptier group, else the first
    /// reclaimable slot, else reports when the first slot frees up.
    fn vacancy(&self, now: Instant, key: KeyHash) -> Result<usize, TableFull> {
        let slots = self.slots.as_ref();
        let [a, b] = self.groups_of(key);
        let empties = |g: usize| self.group_slots(g).filter(|&i| slots[i].key == 0).count();
        let (first, second) = if empties(b) > empties(a) {
            (b, a)
        } else {
            (a, b)
        };
        let candidates = || self.group_slots(first).chain(self.group_slots(second));
        if let Some(i) = candidates().find(|&i| slots[i].key == 0) {
            return Ok(i);
        }
        let mut retry_at = Instant::MAX;
        for i in candidates() {
            let at = slots[i].value.reclaimable_at();
            if at <= now {
                return Ok(i);
            }
            retry_at = retry_at.min(at);
        }
        Err(TableFull { retry_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyHasher;

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct Until(Instant);

    impl Reclaim for Until {
        fn reclaimable_at(&self) -> Instant {
            self.0
        }
    }

    fn table<const N: usize>() -> Table<Until, [Slot<Until>; N]> {
        Table::new([Slot::empty(); N])
    }

    #[test]
    fn new_empties_occupied_slots_and_only_those() {
        let h = KeyHasher::new([3; 16]);
        let mut storage = [Slot::<Until>::empty(); 16];
        storage[3] = Slot {
            key: h.hash(b"stale").get(),
            value: Until(Instant::from_secs(9)),
        };
        {
            let t = Table::new(&mut storage[..]);
            assert_eq!(t.len(), 0);
            assert!(t.get(h.hash(b"stale")).is_none());
            t.assert_invariants();
        }
        assert_eq!((storage[3].key, storage[3].value), (0, Until::default()));
    }

    #[test]
    fn insert_find_remove() {
        let h = KeyHasher::new([3; 16]);
        let mut t = table::<64>();
        let now = Instant::from_secs(1);
        let e = t.entry(now, h.hash(b"a")).unwrap();
        assert!(e.inserted);
        *e.value = Until(Instant::from_secs(10));
        let e = t.entry(now, h.hash(b"a")).unwrap();
        assert!(!e.inserted);
        assert_eq!(*e.value, Until(Instant::from_secs(10)));
        assert_eq!(t.len(), 1);
        t.assert_invariants();
        assert_eq!(t.remove(h.hash(b"a")), Some(Until(Instant::from_secs(10))));
        assert_eq!(t.get(h.hash(b"a")), None);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_reports_when_a_slot_frees_and_never_evicts_live_entries() {
        let h = KeyHasher::new([9; 16]);
        let mut t = table::<8>();
        let now = Instant::from_secs(1);
        for k in 0u32..8 {
            let e = t.entry(now, h.hash(&k.to_le_bytes())).unwrap();
            *e.value = Until(Instant::from_secs(100 + u64::from(k)));
        }
        let err = t.entry(now, h.hash(b"new")).unwrap_err();
        assert_eq!(err.retry_at, Instant::from_secs(100));
        for k in 0u32..8 {
            assert!(t.get(h.hash(&k.to_le_bytes())).is_some());
        }
        // At the hinted instant, the reclaimable slot is handed over.
        let e = t.entry(err.retry_at, h.hash(b"new")).unwrap();
        assert!(e.inserted);
        assert_eq!(*e.value, Until::default());
        assert_eq!(t.len(), 8);
        t.assert_invariants();
        assert!(t.get(h.hash(&0u32.to_le_bytes())).is_none());
    }

    #[test]
    fn sweep_empties_reclaimable_slots_within_budget() {
        let h = KeyHasher::new([5; 16]);
        let mut t = table::<32>();
        for k in 0u32..20 {
            let e = t.entry(Instant::ZERO, h.hash(&k.to_le_bytes())).unwrap();
            *e.value = Until(Instant::from_secs(u64::from(k % 2)));
        }
        let cursor = t.sweep(Instant::ZERO, 0, 32);
        assert_eq!(cursor, 0);
        assert_eq!(t.len(), 10);
        t.assert_invariants();
        let cursor = t.sweep(Instant::from_secs(1), 0, 16);
        assert_eq!(cursor, 16);
        let _ = t.sweep(Instant::from_secs(1), cursor, 16);
        assert!(t.is_empty());
    }

    #[test]
    fn high_load_inserts_succeed() {
        let h = KeyHasher::new([1; 16]);
        let mut t = table::<1024>();
        let mut ok = 0;
        for k in 0u32..1024 {
            if let Ok(e) = t.entry(Instant::ZERO, h.hash(&k.to_le_bytes())) {
                *e.value = Until(Instant::MAX);
                ok += 1;
            }
        }
        // Two-choice groups of 8 keep the table usable well past 85 % load.
        assert!(ok >= 870, "only {ok} of 1024 keys fitted");
        assert_eq!(t.len(), ok);
        t.assert_invariants();
    }

    #[test]
    #[should_panic(expected = "multiple of 8")]
    fn storage_must_be_whole_groups() {
        let _ = Table::<Until, _>::new([Slot::<Until>::empty(); 12]);
    }
}
