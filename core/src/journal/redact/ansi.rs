//! ANSI escape stripping: the clean text the redaction rules read.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// The input's bytes with ANSI escape sequences removed, produced one byte at a time; every
/// input byte is read once.
///
/// Removed: CSI (`ESC [` parameters and intermediates, then one final byte `@`..`~`); the
/// string sequences OSC (`ESC ]`), DCS (`ESC P`), SOS (`ESC X`), PM (`ESC ^`) and APC (`ESC _`)
/// up to BEL or `ESC \` (an `ESC` not followed by `\` ends the string and starts a new
/// sequence; with no terminator the string runs to the end of the input); `ESC` plus
/// intermediates plus one final byte (nF, Fp, Fe, Fs); and a lone `ESC`. A sequence cut by an
/// unexpected byte ends before that byte. Only ASCII bytes or whole runs ending before an ASCII
/// terminator are removed, so the clean text of a `str` is valid UTF-8.
#[derive(Clone, Debug)]
pub(super) struct Clean<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Clean<'a> {
    /// Clean text of `raw`.
    pub(super) fn new(raw: &'a [u8]) -> Self {
        Self { raw, pos: 0 }
    }

    /// The next byte of clean text, or `None` at the end of the input.
    pub(super) fn next_byte(&mut self) -> Option<u8> {
        loop {
            let b = self.at()?;
            if b != ESC {
                self.pos += 1;
                return Some(b);
            }
            self.skip_escape();
        }
    }

    fn at(&self) -> Option<u8> {
        self.raw.get(self.pos).copied()
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.at().is_some_and(&keep) {
            self.pos += 1;
        }
    }

    fn skip_one_in(&mut self, range: core::ops::RangeInclusive<u8>) {
        if self.at().is_some_and(|b| range.contains(&b)) {
            self.pos += 1;
        }
    }

    /// Skips the sequence that starts with the `ESC` at the current position.
    fn skip_escape(&mut self) {
        self.pos += 1;
        match self.at() {
            Some(b'[') => {
                self.pos += 1;
                self.skip_while(|b| (0x20..=0x3f).contains(&b));
                self.skip_one_in(0x40..=0x7e);
            }
            Some(b']' | b'P' | b'X' | b'^' | b'_') => {
                self.pos += 1;
                self.skip_string();
            }
            Some(0x20..=0x2f) => {
                self.skip_while(|b| (0x20..=0x2f).contains(&b));
                self.skip_one_in(0x30..=0x7e);
            }
            Some(0x30..=0x7e) => self.pos += 1,
            _ => {}
        }
    }

    /// Skips a control string up to and including its terminator.
    fn skip_string(&mut self) {
        while let Some(b) = self.at() {
            match b {
                BEL => {
                    self.pos += 1;
                    return;
                }
                ESC => {
                    if self.raw.get(self.pos + 1) == Some(&b'\\') {
                        self.pos += 2;
                    }
                    return;
                }
                _ => self.pos += 1,
            }
        }
    }
}
