//! The one JSON string escaping rule, for the journal's lines and the protocol's replies.
//!
//! `"` → `\"`, `\` → `\\`; the control characters U+0000–U+001F → `\n`, `\r`, `\t`, `\b`, `\f`
//! where JSON has a short form, else `\u00XX` with lowercase hex digits. Everything else,
//! including DEL and all non-ASCII, is written as raw UTF-8 (the input is a `&str`, so it is
//! valid UTF-8). A byte becomes at most 6 bytes. `serde_json` and every RFC 8259 parser read
//! it back to the same string.

use core::fmt;

use super::writer::Writer;

/// Where escaped text goes: the journal's fixed [`Writer`], or a [`fmt::Write`] through
/// [`Escaping`]. Every piece handed to it is whole UTF-8 (it is cut only next to ASCII).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.bytes(bytes);
    }
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn quoted(out: &mut Writer<'_>, s: &str) {
    out.byte(b'"');
    escaped(out, s);
    out.byte(b'"');
}

/// A [`fmt::Write`] that escapes everything written through it by the rule above (the body
/// of a JSON string: the caller writes the quotes), for replies the core writes with
/// `write!`.
pub(crate) struct Escaping<'w, W: fmt::Write> {
    out: &'w mut W,
    result: fmt::Result,
}

impl<'w, W: fmt::Write> Escaping<'w, W> {
    /// Escapes into `out`.
    pub(crate) fn new(out: &'w mut W) -> Escaping<'w, W> {
        Escaping {
            out,
            result: Ok(()),
        }
    }
}

impl<W: fmt::Write> Sink for Escaping<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        if self.result.is_ok() {
            self.result = match core::str::from_utf8(bytes) {
                Ok(text) => self.out.write_str(text),
                Err(_) => Err(fmt::Error),
            };
        }
    }
}

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escaped(self, s);
        self.result
    }
}

/// Writes `s` as a quoted JSON string into `w`.
pub(crate) fn write_quoted<W: fmt::Write>(w: &mut W, s: &str) -> fmt::Result {
    w.write_char('"')?;
    fmt::Write::write_str(&mut Escaping::new(w), s)?;
    w.write_char('"')
}

/// Appends the escaped body of `s` (no quotes), copying runs that need no escape in one go.
/// Eight bytes are checked at a time ([`word_needs_escape`]); only a word that holds a byte
/// to escape is walked byte by byte.
fn escaped(out: &mut impl Sink, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let word = bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok());
        if let Some(word) = word {
            if !word_needs_escape(u64::from_le_bytes(word)) {
                at += 8;
                continue;
            }
        }
        let end = (at + 8).min(bytes.len());
        for (i, &b) in bytes.iter().enumerate().take(end).skip(at) {
            if needs_escape(b) {
                out.put(&bytes[start..i]);
                escape_byte(out, b);
                start = i + 1;
            }
        }
        at = end;
    }
    out.put(&bytes[start..]);
}

/// Whether `b` is written escaped: a control character, `"` or `\`.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any of the eight bytes of `word` [`needs_escape`] (exact as a yes/no answer; which
/// byte it is may be misreported, so the caller looks byte by byte). Bytes ≥ 0x80 never do.
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n ≤ 128) sets its high bit in (x - n·ONES) & !x.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
}

fn escape_byte(out: &mut impl Sink, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => 0,
    };
    if short != 0 {
        out.put(&[b'\\', short]);
    } else {
        out.put(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fmt_writer_escapes_as_the_journal_does() {
        extern crate std;
        let samples = [
            "plain",
            "q\"b\\n\nt\tc\u{1}é€😀 longer than eight bytes\u{1f}",
            "",
        ];
        for s in samples {
            let mut text = std::string::String::new();
            write_quoted(&mut text, s).unwrap();
            assert_eq!(text.as_bytes(), &esc(s)[..], "{s:?}");
            let mut piecewise = std::string::String::new();
            let mut e = Escaping::new(&mut piecewise);
            for c in s.chars() {
                fmt::Write::write_char(&mut e, c).unwrap();
            }
            assert_eq!(&piecewise, &text[1..text.len() - 1]);
        }
    }

    fn esc(s: &str) -> heapless::Vec<u8, 128> {
        let mut buf = [0u8; 128];
        let mut o = Writer::new(&mut buf);
        quoted(&mut o, s);
        let n = o.finish().unwrap();
        heapless::Vec::from_slice(&buf[..n]).unwrap()
    }

    #[test]
    fn a_word_needs_escape_exactly_when_one_of_its_bytes_does() {
        let fills = [
            b'a', 0x00, b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[',
        ];
        for fill in fills {
            for pos in 0..8 {
                for b in 0..=255u8 {
                    let mut word = [fill; 8];
                    word[pos] = b;
                    let expected = word.iter().any(|&c| needs_escape(c));
                    assert_eq!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        expected,
                        "{word:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_at_every_offset_of_a_long_string() {
        for at in 0..24 {
            let mut s = heapless::String::<32>::new();
            for i in 0..24 {
                s.push(if i == at { '"' } else { 'x' }).unwrap();
            }
            let got = esc(&s);
            assert_eq!(got.len(), 24 + 3, "{at}");
            assert_eq!(&got[at + 1..at + 3], b"\\\"", "{at}");
        }
    }

    #[test]
    fn quotes_and_backslash() {
        assert_eq!(&esc(r#"a"b\c"#)[..], br#""a\"b\\c""#);
        assert_eq!(&esc(r"\\")[..], br#""\\\\""#);
        assert_eq!(&esc("")[..], br#""""#);
    }

    #[test]
    fn control_characters() {
        assert_eq!(&esc("\n\r\t\u{8}\u{c}")[..], br#""\n\r\t\b\f""#);
        assert_eq!(
            &esc("\u{0}\u{1b}[0m\u{1f}")[..],
            br#""\u0000\u001b[0m\u001f""#
        );
        assert_eq!(&esc("\u{7f}")[..], "\"\u{7f}\"".as_bytes());
    }

    #[test]
    fn mixed_runs() {
        assert_eq!(
            &esc("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}é")[..],
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\u{7f}é\"".as_bytes()
        );
    }

    #[test]
    fn non_ascii_stays_raw_utf8() {
        assert_eq!(
            &esc("Grüße … 日本 🚀")[..],
            "\"Grüße … 日本 🚀\"".as_bytes()
        );
        assert_eq!(&esc("\u{2028}")[..], "\"\u{2028}\"".as_bytes());
    }

    #[test]
    fn worst_case_is_six_bytes_a_byte() {
        let mut buf = [0u8; 2 + 6 * 8];
        let mut o = Writer::new(&mut buf);
        quoted(&mut o, "\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}");
        assert_eq!(o.finish(), Ok(2 + 6 * 8));
    }
}
