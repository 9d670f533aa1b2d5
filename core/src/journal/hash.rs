//! The SHA-256 of a journal line and its lowercase hex form.

use core::fmt;
use sha2::{Digest, Sha256};

/// SHA-256 of one journal line's exact bytes, including its trailing `\n`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LineHash(pub [u8; 32]);

/// The 64 lowercase hex digits of a [`LineHash`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexHash([u8; 64]);

impl LineHash {
    /// The hash of `line` (which should end with `\n`).
    pub fn of(line: &[u8]) -> LineHash {
        LineHash(Sha256::digest(line).into())
    }

    /// Lowercase hex, as written in `prev_hash` and in seals.
    pub fn hex(&self) -> HexHash {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        HexHash(out)
    }

    /// Parses 64 lowercase hex digits; anything else (upper case included) is `None`.
    pub fn from_hex(hex: &[u8]) -> Option<LineHash> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(LineHash(out))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl HexHash {
    /// The hex digits as bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The hex digits as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for LineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Display for LineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for HexHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_upper_case() {
        let h = LineHash::of(b"x\n");
        assert_eq!(LineHash::from_hex(h.hex().as_bytes()), Some(h));
        let mut upper = *h.hex().as_bytes();
        upper[..8].copy_from_slice(b"ABCDEF01");
        assert_eq!(LineHash::from_hex(&upper), None);
        assert_eq!(LineHash::from_hex(b"abc"), None);
        assert_eq!(LineHash::from_hex(&[b'A'; 64]), None);
    }
}
