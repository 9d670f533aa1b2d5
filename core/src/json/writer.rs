//! A bounded writer over a caller's buffer that keeps counting past the end, so an encoder
//! that runs out of room can still say how many bytes it needed.
//!
//! Appends never fail; [`Writer::finish`] says at the end whether everything fitted. A piece
//! that does not fit is dropped whole, and so is every piece after it, so the bytes in the
//! buffer are always a prefix of the full output made of whole pieces.

/// Writes into `buf`; bytes past its end are counted but dropped.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// The output did not fit: it needs `needed_bytes` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow {
    /// Bytes the whole output needs.
    pub(crate) needed_bytes: usize,
}

impl<'b> Writer<'b> {
    /// A writer at the start of `buf`.
    pub(crate) fn new(buf: &'b mut [u8]) -> Writer<'b> {
        Writer { buf, len: 0 }
    }

    /// Appends `bytes`.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// Appends `src[..len]` (`len` at most `N`). When the buffer has room for all of `src`,
    /// it copies all `N` bytes, a copy of a known size that needs no call; the bytes past
    /// `len` lie past the output or are overwritten by the next pieces.
    #[inline]
    pub(crate) fn prefix_of<const N: usize>(&mut self, src: &[u8; N], len: usize) {
        let len = len.min(N);
        match self.buf.get_mut(self.len..self.len + N) {
            Some(dst) => dst.copy_from_slice(src),
            None => {
                if let Some(dst) = self.buf.get_mut(self.len..self.len + len) {
                    dst.copy_from_slice(&src[..len]);
                }
            }
        }
        self.len += len;
    }

    /// Appends one byte.
    pub(crate) fn byte(&mut self, b: u8) {
        if let Some(dst) = self.buf.get_mut(self.len) {
            *dst = b;
        }
        self.len += 1;
    }

    /// Appends `n` in decimal: below 100 (most counts in replies) written in place, inlined
    /// where it is called, else by `itoa` (two digits per step).
    #[inline]
    pub(crate) fn u64(&mut self, n: u64) {
        match n {
            0..=9 => self.byte(b'0' + n as u8),
            10..=99 => self.bytes(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]),
            _ => self.u64_itoa(n),
        }
    }

    #[inline(never)]
    fn u64_itoa(&mut self, n: u64) {
        self.bytes(itoa::Buffer::new().format(n).as_bytes());
    }

    /// Appends `n` in decimal, with a leading `-` when negative.
    pub(crate) fn i64(&mut self, n: i64) {
        if n < 0 {
            self.byte(b'-');
        }
        self.u64(n.unsigned_abs());
    }

    /// Appends `n` as exactly `width` decimal digits, zero-padded (higher digits are dropped).
    pub(crate) fn padded(&mut self, n: u32, width: u32) {
        for k in (0..width).rev() {
            self.byte(b'0' + (n / 10u32.pow(k) % 10) as u8);
        }
    }

    /// The number of bytes written when everything fitted, else how many were needed.
    pub(crate) fn finish(&self) -> Result<usize, Overflow> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(Overflow {
                needed_bytes: self.len,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        let mut buf = [0u8; 64];
        let mut o = Writer::new(&mut buf);
        o.i64(i64::MIN);
        o.byte(b' ');
        o.u64(0);
        o.byte(b' ');
        o.u64(u64::MAX);
        o.byte(b' ');
        o.padded(7, 3);
        o.byte(b' ');
        o.padded(12345, 2);
        for n in [9, 10, 99, 100] {
            o.byte(b' ');
            o.u64(n);
        }
        let n = o.finish().unwrap();
        assert_eq!(
            &buf[..n],
            b"-9223372036854775808 0 18446744073709551615 007 45 9 10 99 100"
        );
    }

    #[test]
    fn prefix_of_appends_the_prefix_only() {
        let src = *b"abcdefgh";
        // Room for all 8 bytes: copied whole, the output is the prefix.
        let mut buf = [b'.'; 16];
        let mut o = Writer::new(&mut buf);
        o.prefix_of(&src, 3);
        o.byte(b'|');
        o.prefix_of(&src, 8);
        assert_eq!(o.finish(), Ok(12));
        assert_eq!(&buf[..12], b"abc|abcdefgh");
        // Room for the prefix but not for all 8: the prefix alone.
        let mut buf = [b'.'; 6];
        let mut o = Writer::new(&mut buf);
        o.byte(b'|');
        o.prefix_of(&src, 5);
        assert_eq!(o.finish(), Ok(6));
        assert_eq!(&buf, b"|abcde");
        // No room: dropped, and counted.
        let mut buf = [b'.'; 4];
        let mut o = Writer::new(&mut buf);
        o.byte(b'|');
        o.prefix_of(&src, 4);
        o.byte(b'!');
        assert_eq!(o.finish(), Err(Overflow { needed_bytes: 6 }));
        assert_eq!(&buf, b"|...");
    }

    #[test]
    fn overflow_counts_and_keeps_a_prefix_of_whole_pieces() {
        let mut small = [0u8; 5];
        let mut o = Writer::new(&mut small);
        o.bytes(b"abc");
        o.bytes(b"def");
        o.byte(b'g');
        o.u64(1234);
        assert_eq!(o.finish(), Err(Overflow { needed_bytes: 11 }));
        assert_eq!(&small, b"abc\0\0");
        let mut exact = [0u8; 4];
        let mut o = Writer::new(&mut exact);
        o.bytes(b"ab");
        o.u64(12);
        assert_eq!(o.finish(), Ok(4));
    }
}
