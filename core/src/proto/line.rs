//! Splitting a line-mode stream into length-limited lines.
//!
//! A line ends with `\n`; a `\r` right before it is stripped. The limit counts the bytes of
//! the line without its `\n` and without that stripped `\r`. A longer line is reported as
//! [`LineTooLong`] as soon as its byte `N + 1` arrives; the host answers
//! `ERR LINE_TOO_LONG` and the decoder **resynchronizes by discarding everything up to and
//! including the next `\n`**, so the next line is read normally and every line gets exactly
//! one answer.

use core::fmt;

/// Default limit on a command line: 256 bytes.
pub const LINE_MAX_BYTES: usize = 256;

/// A line was longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineTooLong {
    /// The decoder's limit.
    pub limit_bytes: usize,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line longer than {} bytes", self.limit_bytes)
    }
}

impl core::error::Error for LineTooLong {}

/// What one [`LineDecoder::feed`] call did.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "advance the input by `consumed` and handle `line`"]
pub struct LineStep<'a> {
    /// How many input bytes were consumed; feed the rest again.
    pub consumed: usize,
    /// A complete line without its terminator, or the news that the current line is too long.
    pub line: Option<Result<&'a [u8], LineTooLong>>,
}

/// An incremental line splitter with a fixed buffer of `N` bytes (the line limit).
///
/// Each [`feed`](Self::feed) call scans at most its input once and yields at most one line.
#[derive(Debug, Clone)]
pub struct LineDecoder<const N: usize = LINE_MAX_BYTES> {
    buf: [u8; N],
    len: usize,
    /// A `\r` was read and not yet stored: it is stripped if `\n` follows.
    pending_cr: bool,
    /// After an over-long line: drop bytes through the next `\n`.
    discarding: bool,
}

impl<const N: usize> Default for LineDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineDecoder<N> {
    /// An empty decoder; lines of up to `N` bytes pass.
    pub const fn new() -> Self {
        LineDecoder {
            buf: [0; N],
            len: 0,
            pending_cr: false,
            discarding: false,
        }
    }

    /// Consumes bytes from `input` through the end of at most one line (or the byte that made
    /// the current line too long). Call it again with `&input[step.consumed..]`.
    pub fn feed(&mut self, input: &[u8]) -> LineStep<'_> {
        for (i, &b) in input.iter().enumerate() {
            if let Some(line) = self.byte(b) {
                let line = match line {
                    Ok(len) => Ok(&self.buf[..len]),
                    Err(e) => Err(e),
                };
                return LineStep {
                    consumed: i + 1,
                    line: Some(line),
                };
            }
        }
        LineStep {
            consumed: input.len(),
            line: None,
        }
    }

    /// At the end of the stream: the unterminated last line, if any bytes of one (that was not
    /// too long) are buffered. The host may answer it or drop it.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.discarding || (self.len == 0 && !self.pending_cr) {
            return None;
        }
        // A trailing lone `\r` is stripped as if `\n` had followed.
        let len = core::mem::take(&mut self.len);
        self.pending_cr = false;
        Some(&self.buf[..len])
    }

    /// Handles one byte: `Some(Ok(len))` when a line of `len` bytes ended.
    fn byte(&mut self, b: u8) -> Option<Result<usize, LineTooLong>> {
        if self.discarding {
            self.discarding = b != b'\n';
            return None;
        }
        if b == b'\n' {
            self.pending_cr = false;
            return Some(Ok(core::mem::take(&mut self.len)));
        }
        if core::mem::take(&mut self.pending_cr) {
            if let Err(e) = self.push(b'\r') {
                self.discarding = true; // `b` is not `\n`, so the line goes on
                return Some(Err(e));
            }
        }
        if b == b'\r' {
            self.pending_cr = true;
            return None;
        }
        self.push(b).err().map(|e| {
            self.discarding = true;
            Err(e)
        })
    }

    fn push(&mut self, b: u8) -> Result<(), LineTooLong> {
        let Some(slot) = self.buf.get_mut(self.len) else {
            self.len = 0;
            return Err(LineTooLong { limit_bytes: N });
        };
        *slot = b;
        self.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input` fed in `chunk`-byte pieces; records lines and errors as strings.
    fn split<const N: usize>(input: &[u8], chunk: usize) -> heapless::Vec<heapless::String<16>, 8> {
        let mut d = LineDecoder::<N>::new();
        let mut out = heapless::Vec::new();
        for mut piece in input.chunks(chunk) {
            while !piece.is_empty() {
                let step = d.feed(piece);
                piece = &piece[step.consumed..];
                let s = match step.line {
                    Some(Ok(l)) => core::str::from_utf8(l).unwrap(),
                    Some(Err(_)) => "<too long>",
                    None => continue,
                };
                out.push(heapless::String::try_from(s).unwrap()).unwrap();
            }
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_cr_under_any_chunking() {
        for chunk in 1..=9 {
            let lines = split::<8>(b"ping\r\nversion\n\nst\ratus\r\n", chunk);
            assert_eq!(lines, ["ping", "version", "", "st\ratus"], "chunk {chunk}");
        }
    }

    #[test]
    fn line_exactly_at_the_limit_passes_one_over_fails() {
        assert_eq!(split::<4>(b"abcd\n", 1), ["abcd"]);
        assert_eq!(
            split::<4>(b"abcd\r\n", 1),
            ["abcd"],
            "a stripped \\r does not count"
        );
        assert_eq!(split::<4>(b"abcde\nok\n", 1), ["<too long>", "ok"]);
        assert_eq!(split::<4>(b"abcd\rx\nok\n", 2), ["<too long>", "ok"]);
    }

    #[test]
    fn too_long_is_reported_at_once_and_the_rest_of_the_line_is_discarded() {
        let mut d = LineDecoder::<4>::new();
        let step = d.feed(b"abcdefgh");
        assert_eq!(step.consumed, 5, "reported on byte N + 1");
        assert_eq!(step.line, Some(Err(LineTooLong { limit_bytes: 4 })));
        assert_eq!(
            d.feed(b"xyz"),
            LineStep {
                consumed: 3,
                line: None
            }
        );
        assert_eq!(d.finish(), None);
        let step = d.feed(b"zz\nping\n");
        assert_eq!((step.consumed, step.line), (8, Some(Ok(&b"ping"[..]))));
    }

    #[test]
    fn finish_returns_an_unterminated_line() {
        let mut d = LineDecoder::<8>::new();
        assert_eq!(d.feed(b"ping\r").line, None);
        assert_eq!(d.finish(), Some(&b"ping"[..]));
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn default_limit_is_256() {
        let mut line = [b'a'; LINE_MAX_BYTES + 1];
        line[LINE_MAX_BYTES] = b'\n';
        let mut d = LineDecoder::<LINE_MAX_BYTES>::new();
        assert_eq!(d.feed(&line).line.unwrap().unwrap().len(), LINE_MAX_BYTES);
    }
}
