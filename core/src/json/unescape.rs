//! Unescaping a JSON string into a fixed buffer with serde-json-core.

use core::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// An unescaped JSON string of at most `N` bytes, held inline.
pub(crate) struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    pub(crate) fn as_str(&self) -> &str {
        // Only ever filled from a `&str` (see `visit_str`).
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// `quoted` (a JSON string, quotes included) unescaped, or `None` when the escapes are invalid
/// or the text is longer than `N` bytes.
pub(crate) fn unescape<const N: usize>(quoted: &[u8]) -> Option<FixedStr<N>> {
    let mut scratch = [0u8; N];
    serde_json_core::from_slice_escaped::<FixedStr<N>>(quoted, &mut scratch)
        .ok()
        .map(|(s, _)| s)
}

impl<'de, const N: usize> Deserialize<'de> for FixedStr<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FixedStrVisitor::<N>)
    }
}

struct FixedStrVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for FixedStrVisitor<N> {
    type Value = FixedStr<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {N} bytes")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<FixedStr<N>, E> {
        let mut buf = [0u8; N];
        buf.get_mut(..s.len())
            .ok_or_else(|| E::invalid_length(s.len(), &self))?
            .copy_from_slice(s.as_bytes());
        Ok(FixedStr { buf, len: s.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_into_the_buffer() {
        let s = unescape::<8>(br#""a\"\u00e9\n""#).unwrap();
        assert_eq!(s.as_str(), "a\"é\n");
        assert_eq!(unescape::<8>(br#""plain""#).unwrap().as_str(), "plain");
    }

    #[test]
    fn too_long_or_bad_is_none() {
        assert!(unescape::<4>(br#""abcde""#).is_none());
        assert!(unescape::<4>(br#""\u0061bcde""#).is_none());
        assert!(unescape::<4>(br#""abcd""#).is_some());
        assert!(unescape::<4>(b"12").is_none());
    }
}
