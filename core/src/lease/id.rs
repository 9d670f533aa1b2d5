//! Lease ids: unique for the life of a lease table, not sequential, never zero.

use core::fmt;

/// The id of one lease. Unique among all leases a [`Leases`](super::Leases) table ever issues
/// (a counter passed through a seeded bijection), and never zero.
///
/// Ids are not secrets: a client that sees several ids could predict others. Who may refresh or
/// release a key's leases is decided by the key (the host binds keys to authenticated peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeaseId(u64);

impl LeaseId {
    /// An id as received back from a client. Zero is never issued, so it never matches.
    pub const fn from_raw(raw: u64) -> LeaseId {
        LeaseId(raw)
    }

    /// The id as a number, for the wire.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Mints ids: `mix(seed + counter)`, skipping the one counter value that maps to zero.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdMint {
    seed: u64,
    counter: u64,
}

impl IdMint {
    pub(crate) const fn new(seed: u64) -> IdMint {
        IdMint { seed, counter: 0 }
    }

    /// The next id. `mix` is a bijection and the counter never repeats (2^64 ids would take
    /// 584,000 years at a million per second), so ids never repeat; at most two rounds.
    pub(crate) fn next(&mut self) -> LeaseId {
        loop {
            let raw = mix(self.seed.wrapping_add(self.counter));
            self.counter = self.counter.wrapping_add(1);
            if raw != 0 {
                return LeaseId(raw);
            }
        }
    }
}

/// The splitmix64 finalizer: xor-shifts and odd multiplications, each invertible.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_non_zero_and_seeded() {
        let mut a = IdMint::new(1);
        let mut b = IdMint::new(2);
        let mut seen = [0u64; 256];
        for slot in seen.iter_mut() {
            *slot = a.next().get();
        }
        seen.sort_unstable();
        assert!(seen.windows(2).all(|w| w[0] != w[1]));
        assert!(seen[0] != 0);
        assert_ne!(IdMint::new(1).next(), b.next());
    }

    #[test]
    fn the_counter_that_maps_to_zero_is_skipped() {
        // mix(0) == 0, so a zero seed's first counter value is skipped.
        assert_eq!(mix(0), 0);
        let mut m = IdMint::new(0);
        assert_eq!(m.next().get(), mix(1));
        assert_eq!(m.next().get(), mix(2));
    }

    #[test]
    fn display_is_fixed_width_hex() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(LeaseId::from_raw(0xab).to_string(), "00000000000000ab");
    }
}
