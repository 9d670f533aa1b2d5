//! A bounded lookahead over the clean text.

use super::ansi::Clean;

/// How far ahead of the current position the rules may look, in clean bytes.
pub(super) const LOOKAHEAD: usize = 256;

const ESC: u8 = 0x1b;

/// The next [`LOOKAHEAD`] clean bytes: the rules peek into it to decide, then the scanner
/// consumes. Input without an `ESC` byte is its own clean text and is read in place; other
/// input goes through the ANSI stripper into a ring buffer, each byte once.
#[derive(Clone, Debug)]
pub(super) struct Window<'a> {
    /// The input, read in place when `direct`.
    raw: &'a [u8],
    /// Offset of the current position in `raw` (direct mode).
    pos: usize,
    direct: bool,
    src: Clean<'a>,
    ring: [u8; LOOKAHEAD],
    head: usize,
    len: usize,
    last: u8,
}

impl<'a> Window<'a> {
    /// A window at the start of `raw`.
    pub(super) fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            pos: 0,
            direct: !raw.contains(&ESC),
            src: Clean::new(raw),
            ring: [0; LOOKAHEAD],
            head: 0,
            len: 0,
            last: 0,
        }
    }

    /// The clean byte `i` positions ahead, or `None` past the end of the input or beyond the
    /// lookahead.
    #[inline]
    pub(super) fn peek(&mut self, i: usize) -> Option<u8> {
        if i >= LOOKAHEAD {
            return None;
        }
        if self.direct {
            return self.raw.get(self.pos + i).copied();
        }
        while self.len <= i {
            let b = self.src.next_byte()?;
            self.ring[(self.head + self.len) % LOOKAHEAD] = b;
            self.len += 1;
        }
        Some(self.ring[(self.head + i) % LOOKAHEAD])
    }

    /// Consumes and returns the next clean byte.
    #[inline]
    pub(super) fn bump(&mut self) -> Option<u8> {
        let b = self.peek(0)?;
        if self.direct {
            self.pos += 1;
        } else {
            self.head = (self.head + 1) % LOOKAHEAD;
            self.len -= 1;
        }
        self.last = b;
        Some(b)
    }

    /// Consumes bytes while `keep` holds.
    pub(super) fn bump_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek(0).is_some_and(&keep) {
            self.bump();
        }
    }

    /// The input not yet consumed, when it is read in place (no `ESC` in it).
    pub(super) fn rest(&self) -> Option<&'a [u8]> {
        if self.direct {
            self.raw.get(self.pos..)
        } else {
            None
        }
    }

    /// Consumes `n` bytes of [`rest`](Self::rest) (`n` ≥ 1, within it).
    pub(super) fn advance(&mut self, n: usize) {
        debug_assert!(self.direct && n >= 1 && self.pos + n <= self.raw.len());
        self.pos += n;
        if let Some(&b) = self.raw.get(self.pos - 1) {
            self.last = b;
        }
    }

    /// The last byte consumed (0 before the first), or the last byte written in place of a
    /// secret since ([`Window::replaced_by`]).
    pub(super) fn last(&self) -> u8 {
        self.last
    }

    /// Records that the bytes just consumed were replaced by text ending in `b`: the rules'
    /// word boundaries are then judged against what the output holds, as a second pass over
    /// the output would judge them (so redacting twice changes nothing).
    pub(super) fn replaced_by(&mut self, b: u8) {
        self.last = b;
    }

    /// Whether the clean text at offset `at` starts with `lower` (lowercase ASCII), ignoring
    /// ASCII case.
    #[inline]
    pub(super) fn starts_with_ci(&mut self, at: usize, lower: &[u8]) -> bool {
        lower.iter().enumerate().all(|(i, &c)| {
            self.peek(at + i)
                .is_some_and(|b| b.to_ascii_lowercase() == c)
        })
    }
}
