//! Keys: client-chosen byte strings hashed with a secret, host-injected seed.
//!
//! Every keyed table in the core stores a 64-bit [`KeyHash`] rather than the key bytes, so its
//! memory is fixed whatever the clients send. The hash is SipHash-1-3 keyed with a 128-bit seed
//! that the host draws from its RNG at start-up ([`KeyHasher::new`]); without the seed a client
//! cannot aim many keys at one slot of a table. Two distinct keys share a hash with probability
//! about 2⁻⁶⁴ per pair; tables treat equal hashes as the same key.

use core::hash::Hasher;
use siphasher::sip::SipHasher13;

/// The 64-bit keyed hash of a key. Never zero (zero marks an empty table slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "u64", into = "u64")
)]
pub struct KeyHash(u64);

impl From<u64> for KeyHash {
    /// Same as [`KeyHash::from_raw`]: zero becomes one, so even a deserialized hash is never
    /// zero.
    fn from(raw: u64) -> KeyHash {
        KeyHash::from_raw(raw)
    }
}

impl From<KeyHash> for u64 {
    fn from(key: KeyHash) -> u64 {
        key.get()
    }
}

impl KeyHash {
    /// Wraps a precomputed hash; zero is mapped to one so the value is never zero.
    pub const fn from_raw(raw: u64) -> KeyHash {
        KeyHash(if raw == 0 { 1 } else { raw })
    }

    /// The hash value (never zero).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Hashes keys with a secret seed injected by the host.
///
/// Its `Debug` output hides the seed, so logging host state cannot leak it.
#[derive(Clone, Copy)]
pub struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl KeyHasher {
    /// A hasher keyed with `seed` (16 random bytes from the host).
    pub const fn new(seed: [u8; 16]) -> KeyHasher {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            lo[i] = seed[i];
            hi[i] = seed[i + 8];
            i += 1;
        }
        KeyHasher {
            k0: u64::from_le_bytes(lo),
            k1: u64::from_le_bytes(hi),
        }
    }

    /// The hash of `key`.
    pub fn hash(&self, key: &[u8]) -> KeyHash {
        self.hash_parts(&[key])
    }

    /// The hash of `key` in the key space named `tag`: one tag byte, then the key. The tag's
    /// fixed width keeps `(tag, key)` pairs apart without a length word, so a short key costs
    /// one SipHash block (the hot rate-limit check uses this).
    pub fn hash_tagged(&self, tag: u8, key: &[u8]) -> KeyHash {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u8(tag);
        h.write(key);
        KeyHash::from_raw(h.finish())
    }

    /// The hash of several byte strings taken together as one key, with each part's length
    /// mixed in so that `("ab", "c")` and `("a", "bc")` differ. Used for compound keys such as
    /// (operation, client key).
    pub fn hash_parts(&self, parts: &[&[u8]]) -> KeyHash {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        for part in parts {
            h.write_u64(part.len() as u64);
            h.write(part);
        }
        KeyHash::from_raw(h.finish())
    }
}

impl core::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyHasher { seed: <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_changes_the_hash() {
        let a = KeyHasher::new([1; 16]);
        let b = KeyHasher::new([2; 16]);
        assert_ne!(a.hash(b"user:1"), b.hash(b"user:1"));
        assert_eq!(a.hash(b"user:1"), a.hash(b"user:1"));
    }

    #[test]
    fn parts_are_length_delimited() {
        let h = KeyHasher::new([7; 16]);
        assert_ne!(h.hash_parts(&[b"ab", b"c"]), h.hash_parts(&[b"a", b"bc"]));
        assert_eq!(h.hash(b"abc"), h.hash_parts(&[b"abc"]));
    }

    #[test]
    fn tags_separate_key_spaces() {
        let h = KeyHasher::new([7; 16]);
        assert_ne!(h.hash_tagged(0, b"k1"), h.hash_tagged(1, b"k1"));
        assert_ne!(h.hash_tagged(0, b"k1"), h.hash_tagged(0, b"k2"));
        assert_eq!(h.hash_tagged(3, b"k1"), h.hash_tagged(3, b"k1"));
        // A tag byte is not confused with a key that starts with it.
        assert_ne!(h.hash_tagged(b'a', b"b"), h.hash_tagged(b'a', b"ab"));
    }

    #[test]
    fn zero_is_never_a_hash() {
        assert_eq!(KeyHash::from_raw(0).get(), 1);
        assert_eq!(KeyHash::from_raw(42).get(), 42);
        assert_eq!(KeyHash::from(0).get(), 1);
        assert_eq!(u64::from(KeyHash::from_raw(42)), 42);
    }

    #[test]
    fn debug_hides_the_seed() {
        use core::fmt::Write;
        let mut s: heapless::String<64> = heapless::String::new();
        write!(s, "{:?}", KeyHasher::new([0xab; 16])).unwrap();
        assert_eq!(s.as_str(), "KeyHasher { seed: <redacted> }");
    }
}
