//! [`IdMinter`]: 64-bit ids that are unique for the minter's life, never zero, and
//! unpredictable to anyone without the host's secret key. Lease ids
//! ([`LeaseId`](crate::lease::LeaseId)) and idempotency tokens
//! ([`Token`](crate::idempotency::Token)) both come from it.
//!
//! # Construction
//!
//! An id is `P_k(counter)`, where `counter` counts the ids minted so far and `P_k` is a
//! permutation of `u64` keyed by a 128-bit secret `k` the host draws from its RNG at each
//! start: a four-round balanced Feistel network over two 32-bit halves whose round function is
//! SipHash-1-3 keyed with `k` (with the round number mixed in). A Feistel network is a
//! bijection whatever its round function, and four rounds of a pseudo-random function give a
//! strong pseudo-random permutation (Luby–Rackoff). The one counter value that maps to zero is
//! skipped.
//!
//! # What an id guarantees
//!
//! - **Unique for the minter's life.** `P_k` is a bijection and the counter does not repeat
//!   within 2^64 calls, so one minter never hands out the same id twice. A released or
//!   expired lease can therefore never be matched by a later one.
//! - **Never zero.** Zero is free to mean "no id" (a free slot, a missing field).
//! - **Unpredictable without the key.** Seeing any number of ids tells nothing useful about
//!   the next or the previous ones, so a client cannot name a live id it was not given except
//!   by guessing, with a chance of about `live ids / 2^64` per guess. Ids from an earlier
//!   run (another key) match this run's only by such chance.
//!
//! An id is still a capability, not an identity: whoever holds it may use it. Deciding who may
//! act on a key is the host's job (it binds keys to authenticated peers).

use crate::key::KeyHasher;

/// Mints ids: a keyed permutation of a counter, skipping the one value that maps to zero. See
/// the [module docs](self) for what the ids guarantee.
///
/// Its `Debug` output hides the key.
#[derive(Clone, Copy, Debug)]
pub struct IdMinter {
    /// The round function's key (SipHash-1-3 keyed with the host's 16 secret bytes).
    hasher: KeyHasher,
    counter: u64,
}

const ROUNDS: u64 = 4;

impl IdMinter {
    /// A minter keyed with `key`: 16 bytes the host draws afresh from its RNG at each start.
    pub const fn new(key: [u8; 16]) -> IdMinter {
        IdMinter {
            hasher: KeyHasher::new(key),
            counter: 0,
        }
    }

    /// The next id: never zero, never one this minter issued before. At most two rounds of
    /// the permutation.
    pub fn next_id(&mut self) -> u64 {
        loop {
            let id = self.permute(self.counter);
            self.counter = self.counter.wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    /// The next id that carries `index` (below `2^bits`, `bits` at most 32): `P_k` of the
    /// counter shifted left by `bits` with `index` in the low bits, so [`IdMinter::index_of`]
    /// reads `index` back while the id stays as unpredictable as any other. Unique for the
    /// minter's life as long as it mints fewer than `2^(64 - bits)` ids; never zero.
    pub fn next_id_carrying(&mut self, index: u32, bits: u32) -> u64 {
        debug_assert!(bits <= 32 && u64::from(index) < 1u64 << bits);
        loop {
            let id = self.permute((self.counter << bits) | u64::from(index));
            self.counter = self.counter.wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    /// The `index` an id from [`IdMinter::next_id_carrying`] with the same `bits` carries. Any
    /// other `u64` gives some index below `2^bits`: compare the id stored there.
    pub fn index_of(&self, id: u64, bits: u32) -> u32 {
        let mask = (1u64 << bits) - 1;
        (self.invert(id) & mask) as u32
    }

    /// The Feistel round function: 32 pseudo-random bits of (round, half).
    fn round(&self, round: u64, half: u32) -> u32 {
        let hash = self
            .hasher
            .hash_parts(&[&round.to_le_bytes(), &half.to_le_bytes()]);
        hash.get() as u32
    }

    fn permute(&self, x: u64) -> u64 {
        let (mut left, mut right) = ((x >> 32) as u32, x as u32);
        for r in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(r, right));
        }
        (u64::from(left) << 32) | u64::from(right)
    }

    fn invert(&self, y: u64) -> u64 {
        let (mut left, mut right) = ((y >> 32) as u32, y as u32);
        for r in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(r, left), left);
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_index() {
        let mut m = IdMinter::new([3; 16]);
        let mut seen = [0u64; 64];
        for (i, slot) in seen.iter_mut().enumerate() {
            let index = (i % 8) as u32;
            *slot = m.next_id_carrying(index, 3);
            assert_eq!(m.index_of(*slot, 3), index);
        }
        seen.sort_unstable();
        assert!(seen.windows(2).all(|w| w[0] != w[1]) && seen[0] != 0);
    }

    #[test]
    fn the_permutation_inverts() {
        let m = IdMinter::new([7; 16]);
        for x in [0, 1, 2, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(m.invert(m.permute(x)), x);
        }
    }

    #[test]
    fn ids_are_distinct_non_zero_keyed_and_not_sequential() {
        let mut a = IdMinter::new([1; 16]);
        let mut seen = [0u64; 512];
        for slot in seen.iter_mut() {
            *slot = a.next_id();
        }
        assert!(seen.windows(2).all(|w| w[1] != w[0].wrapping_add(1)));
        assert!(seen.windows(2).all(|w| w[1] != w[0].wrapping_sub(1)));
        seen.sort_unstable();
        assert!(seen.windows(2).all(|w| w[0] != w[1]));
        assert!(seen[0] != 0);
        assert_ne!(
            IdMinter::new([1; 16]).next_id(),
            IdMinter::new([2; 16]).next_id()
        );
    }

    #[test]
    fn the_counter_that_maps_to_zero_is_skipped() {
        let key = [9; 16];
        let probe = IdMinter::new(key);
        let zero_at = probe.invert(0);
        let mut m = IdMinter {
            counter: zero_at.wrapping_sub(1),
            ..probe
        };
        assert_eq!(m.next_id(), probe.permute(zero_at.wrapping_sub(1)));
        assert_eq!(m.next_id(), probe.permute(zero_at.wrapping_add(1)));
    }

    #[test]
    fn debug_hides_the_key() {
        use core::fmt::Write;
        let mut s: heapless::String<96> = heapless::String::new();
        write!(s, "{:?}", IdMinter::new([0xab; 16])).unwrap();
        assert_eq!(
            s.as_str(),
            "IdMinter { hasher: KeyHasher { seed: <redacted> }, counter: 0 }"
        );
    }
}
