//! [`PermitTable`]: the breaker permits handed to clients and not yet recorded, in the host's
//! fixed storage of [`PermitSlot`]s.
//!
//! A core [`Permit`] cannot travel over the wire, so the service keeps it and hands the client
//! a 64-bit id from a keyed [`IdMinter`]: unpredictable without the host's seed, never reused
//! for the minter's life. The id carries its slot's index
//! ([`IdMinter::next_id_carrying`]), so a lookup is one inversion and one comparison.
//!
//! Every permit lives [`PERMIT_TTL_MS`], so expiry order is issue order: the live slots form a
//! list from the oldest to the newest, and the freed ones a stack. Slots never used yet lie
//! past a watermark and are taken in index order, so the table never reads a slot it has not
//! written: the host's storage may be zero pages nobody has touched. Every operation is O(1).

use crate::Instant;
use crate::breaker::{BreakerId, Permit};
use crate::id::IdMinter;

/// A permit not recorded within this long is abandoned (it counts for nothing): 10 minutes.
pub const PERMIT_TTL_MS: u64 = 10 * 60 * 1_000;

/// Most permit slots a service takes (the id carries the index in at most 24 bits).
pub const PERMIT_SLOTS_MAX: usize = 1 << 24;

const NIL: u32 = u32::MAX;

/// One permit slot of the host's storage (`[PermitSlot::EMPTY; N]` or a boxed slice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PermitSlot {
    /// The permit id; 0 when free.
    id: u64,
    breaker: BreakerId,
    generation: u32,
    tag: u16,
    probe_slot: u8,
    issued_at: Instant,
    expires_at: Instant,
    /// The previous (older) live slot, or the next free slot when free.
    prev: u32,
    /// The next (newer) live slot.
    next: u32,
}

impl PermitSlot {
    /// A free slot: all zero bytes, so storage of free slots may be memory the system gives
    /// as zero pages and nobody has touched.
    pub const EMPTY: PermitSlot = PermitSlot {
        id: 0,
        breaker: BreakerId(0),
        generation: 0,
        tag: 0,
        probe_slot: 0,
        issued_at: Instant::ZERO,
        expires_at: Instant::ZERO,
        prev: 0,
        next: 0,
    };
}

/// A permit taken out of the table.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) breaker: BreakerId,
    pub(crate) permit: Permit,
    pub(crate) issued_at: Instant,
    pub(crate) expires_at: Instant,
}

/// The table is full; the oldest permit expires at `oldest_expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PermitsFull {
    pub(crate) oldest_expires_at: Instant,
}

/// The held permits over the host's slots `P`.
#[derive(Debug, Clone)]
pub(crate) struct PermitTable<P> {
    slots: P,
    ids: IdMinter,
    bits: u32,
    /// The last freed slot (a stack through `prev`), or [`NIL`].
    free: u32,
    /// Slots from here on were never used: free, and never read before they are written.
    fresh: u32,
    oldest: u32,
    newest: u32,
    len: usize,
}

impl<P> PermitTable<P>
where
    P: AsRef<[PermitSlot]> + AsMut<[PermitSlot]>,
{
    /// A table over `slots`, minting ids keyed with `key`. Their contents do not matter: a
    /// slot is used in index order the first time and written before it is read, so the
    /// host's storage may be memory nobody has touched.
    ///
    /// # Panics
    /// If there are more than [`PERMIT_SLOTS_MAX`] slots (a programmer error).
    pub(crate) fn new(slots: P, key: [u8; 16]) -> PermitTable<P> {
        let n = slots.as_ref().len();
        assert!(n <= PERMIT_SLOTS_MAX, "at most 2^24 permit slots");
        PermitTable {
            slots,
            ids: IdMinter::new(key),
            bits: n.max(1).next_power_of_two().trailing_zeros(),
            free: NIL,
            fresh: 0,
            oldest: NIL,
            newest: NIL,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// When the oldest permit expires.
    pub(crate) fn oldest_expires_at(&self) -> Option<Instant> {
        let slot = self.slots.as_ref().get(self.oldest as usize)?;
        Some(slot.expires_at)
    }

    /// The oldest permit's id.
    pub(crate) fn oldest_id(&self) -> Option<u64> {
        Some(self.slots.as_ref().get(self.oldest as usize)?.id)
    }

    /// Holds `permit` of `breaker` until `expires_at`; returns its id.
    pub(crate) fn insert(
        &mut self,
        breaker: BreakerId,
        permit: Permit,
        issued_at: Instant,
        expires_at: Instant,
    ) -> Result<u64, (Permit, PermitsFull)> {
        let index = match self.slots.as_ref().get(self.free as usize) {
            Some(slot) => core::mem::replace(&mut self.free, slot.prev),
            // At most 2^24 slots: the count fits.
            None if (self.fresh as usize) < self.capacity() => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => {
                let oldest_expires_at = self.oldest_expires_at().unwrap_or(Instant::MAX);
                return Err((permit, PermitsFull { oldest_expires_at }));
            }
        };
        let id = self.ids.next_id_carrying(index, self.bits);
        let newest = self.newest;
        self.slots.as_mut()[index as usize] = PermitSlot {
            id,
            breaker,
            generation: permit.generation,
            tag: permit.tag,
            probe_slot: permit.slot,
            issued_at,
            expires_at,
            prev: newest,
            next: NIL,
        };
        match self.slots.as_mut().get_mut(newest as usize) {
            Some(prev) => prev.next = index,
            None => self.oldest = index,
        }
        self.newest = index;
        self.len += 1;
        Ok(id)
    }

    /// The breaker that issued the live permit `id`.
    pub(crate) fn breaker_of(&self, id: u64) -> Option<BreakerId> {
        let index = self.index(id)?;
        Some(self.slots.as_ref()[index].breaker)
    }

    /// Takes the live permit `id` out of the table.
    pub(crate) fn take(&mut self, id: u64) -> Option<Held> {
        let index = self.index(id)?;
        let slot = self.slots.as_ref()[index];
        let slots = self.slots.as_mut();
        match slots.get_mut(slot.prev as usize) {
            Some(prev) => prev.next = slot.next,
            None => self.oldest = slot.next,
        }
        match slots.get_mut(slot.next as usize) {
            Some(next) => next.prev = slot.prev,
            None => self.newest = slot.prev,
        }
        slots[index] = PermitSlot {
            prev: self.free,
            ..PermitSlot::EMPTY
        };
        self.free = index as u32;
        self.len -= 1;
        Some(Held {
            breaker: slot.breaker,
            permit: Permit {
                generation: slot.generation,
                tag: slot.tag,
                slot: slot.probe_slot,
            },
            issued_at: slot.issued_at,
            expires_at: slot.expires_at,
        })
    }

    fn index(&self, id: u64) -> Option<usize> {
        if id == 0 {
            return None;
        }
        let index = self.ids.index_of(id, self.bits) as usize;
        if index >= self.fresh as usize {
            return None;
        }
        let slot = self.slots.as_ref().get(index)?;
        (slot.id == id).then_some(index)
    }

    /// Checks the lists against the slots (tests).
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        let slots = self.slots.as_ref();
        let (mut live, mut at, mut prev) = (0, self.oldest, NIL);
        while let Some(slot) = slots.get(at as usize) {
            assert_ne!(slot.id, 0);
            assert_eq!(slot.prev, prev);
            if let Some(p) = slots.get(prev as usize) {
                assert!(p.expires_at <= slot.expires_at);
            }
            (prev, at) = (at, slot.next);
            live += 1;
        }
        assert_eq!(prev, self.newest);
        assert_eq!(live, self.len);
        let (mut free, mut at) = (0, self.free);
        while let Some(slot) = slots.get(at as usize) {
            assert!(at < self.fresh);
            assert_eq!(slot.id, 0);
            at = slot.prev;
            free += 1;
        }
        let fresh = slots.len() - self.fresh as usize;
        assert_eq!(live + free + fresh, slots.len());
    }
}
