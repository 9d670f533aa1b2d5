//! Lease ids: unique for the life of a lease table, not sequential, never zero.

use core::fmt;

/// The id of one lease, minted by the table's [`IdMinter`](crate::id::IdMinter): unique among
/// all leases a [`Leases`](super::Leases) table ever issues, not sequential, never zero.
///
/// Ids are unpredictable without the table's secret key (see [`crate::id`]), so one id tells
/// nothing about the others. Who may refresh or release a key's leases is still decided by the
/// key (the host binds keys to authenticated peers); an id stops a holder whose lease ended.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_fixed_width_hex() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(LeaseId::from_raw(0xab).to_string(), "00000000000000ab");
    }
}
