//! The output buffer with the character cap.

use super::{MESSAGE_MAX_CHARS, REDACTED_MAX_BYTES};

const ELLIPSIS: &[u8] = "…".as_bytes();

/// Writes UTF-8 bytes into the caller's buffer, keeping at most [`MESSAGE_MAX_CHARS`]
/// characters: when a character beyond the cap arrives, the text is cut to one less than the
/// cap and ends with `…`, and the writer is full.
pub(super) struct Capped<'a> {
    buf: &'a mut [u8; REDACTED_MAX_BYTES],
    len: usize,
    chars: usize,
    /// Byte length of the first `MESSAGE_MAX_CHARS - 1` characters, once known.
    cut: usize,
    full: bool,
}

impl<'a> Capped<'a> {
    /// An empty text over `buf`.
    pub(super) fn new(buf: &'a mut [u8; REDACTED_MAX_BYTES]) -> Self {
        Self {
            buf,
            len: 0,
            chars: 0,
            cut: 0,
            full: false,
        }
    }

    /// Whether the cap has been passed; nothing more is written.
    pub(super) fn is_full(&self) -> bool {
        self.full
    }

    /// Appends one byte of UTF-8 text.
    pub(super) fn push(&mut self, b: u8) {
        if self.full {
            return;
        }
        let starts_char = b & 0xc0 != 0x80;
        if starts_char {
            if self.chars == MESSAGE_MAX_CHARS {
                self.len = self.cut;
                ELLIPSIS.iter().for_each(|&e| self.write(e));
                self.full = true;
                return;
            }
            if self.chars == MESSAGE_MAX_CHARS - 1 {
                self.cut = self.len;
            }
            self.chars += 1;
        }
        self.write(b);
    }

    /// Appends UTF-8 text (whole characters, or the rest of one and whole ones).
    pub(super) fn push_slice(&mut self, s: &[u8]) {
        // Each byte is at most one character: well below the cap, no check is needed per byte.
        if self.full || self.chars + s.len() >= MESSAGE_MAX_CHARS - 1 {
            return s.iter().for_each(|&b| self.push(b));
        }
        let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) else {
            return s.iter().for_each(|&b| self.push(b));
        };
        dst.copy_from_slice(s);
        self.len += s.len();
        self.chars += s.iter().filter(|&&b| b & 0xc0 != 0x80).count();
    }

    /// Appends ASCII text.
    pub(super) fn push_str(&mut self, s: &str) {
        s.bytes().for_each(|b| self.push(b));
    }

    fn write(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The text written.
    pub(super) fn finish(self) -> &'a str {
        let buf: &'a [u8] = self.buf;
        let text = buf.get(..self.len).unwrap_or_default();
        debug_assert!(
            core::str::from_utf8(text).is_ok(),
            "redaction wrote invalid UTF-8"
        );
        core::str::from_utf8(text).unwrap_or_default()
    }
}
