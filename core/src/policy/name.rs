//! [`Name`]: an operation or tier name, stored inline.

use core::cmp::Ordering;
use core::fmt;

use crate::journal::{NAME_MAX_BYTES, is_valid_name};

/// A validated name: 1 to [`NAME_MAX_BYTES`] bytes of `A-Z a-z 0-9 _ . : -` (the protocol's
/// rule for every name), held inline in 65 bytes. Ordered by its bytes, as a sorted table
/// wants.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    len: u8,
    bytes: [u8; NAME_MAX_BYTES],
}

impl Name {
    /// The placeholder of an unused table slot (never handed out).
    pub(crate) const EMPTY: Name = Name {
        len: 0,
        bytes: [0; NAME_MAX_BYTES],
    };

    /// `name` if it follows the rule, else `None`.
    #[must_use]
    pub fn new(name: &str) -> Option<Name> {
        if !is_valid_name(name.as_bytes()) {
            return None;
        }
        let mut bytes = [0; NAME_MAX_BYTES];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(Name {
            // At most 64 by the rule just checked.
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name's bytes (ASCII).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ever filled from a `&str` of ASCII (see `new`).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Name {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}
