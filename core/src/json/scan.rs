//! A strict, non-recursive JSON scanner: validates RFC 8259 syntax and reports value spans.
//!
//! serde-json-core parses typed fields, but it cannot hand out the raw span of a nested value,
//! it skips ignored scalars leniently, and it recurses once per nesting level. This scanner
//! walks a value with a fixed-size depth stack, so a hostile `[[[[…` costs no stack, and
//! finds each value's bytes without allocating. It never panics on any input.
//!
//! Two modes share every other rule: [`Scanner::new`] accepts JSON whitespace between tokens
//! and every RFC 8259 escape (the protocol's requests). [`Scanner::compact`] is the journal's
//! mode, whose hash covers exact bytes, so it accepts exactly what the one escaping rule
//! ([`quoted`](super::escape::quoted)) writes: no whitespace between tokens, and in strings
//! only `\"` `\\` `\n` `\r` `\t` `\b` `\f` and `\u00xx` (lowercase hex) for the other
//! control characters; no `\/` and no other `\u`.

use core::ops::Range;

/// The deepest nesting of arrays and objects (empty ones included) accepted in one value,
/// e.g. inside a request's `params` or a journal field's value.
pub const JSON_MAX_DEPTH: usize = 32;

/// Why a document is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Not valid JSON at this byte offset.
    Syntax(usize),
    /// Nested deeper than [`JSON_MAX_DEPTH`] at this byte offset.
    TooDeep(usize),
}

/// The bytes that end a run of plain string content: `"`, `\\` and the control characters.
static STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);
/// `0x80` in every byte of a word.
const HIGHS: u64 = ONES << 7;

/// Where the plain string content that starts at `at` ends: the first `"`, `\\` or control
/// character at or after `at`, or the end of `s`. Eight bytes per step while eight are left,
/// then one table lookup per byte.
// Inlined into every string scan natively (a call costs more than most strings); one copy in
// the size-optimised wasm module.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
#[cfg_attr(target_arch = "wasm32", inline(never))]
fn plain_run_end(s: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = s.get(at..at + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let stops = stop_bytes(u64::from_le_bytes(chunk));
        if stops != 0 {
            // Whole bytes: at most 7.
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = s.get(at) {
        if STRING_STOP[usize::from(b)] {
            break;
        }
        at += 1;
    }
    at
}

/// The high bit of the first byte of `w` (in memory order) that ends plain string content
/// (a control character, `"` or `\\`) is set, no lower bit is; 0 when there is none. A bit
/// above the first may be set without its byte being one (a borrow runs on), so only the
/// lowest counts.
#[inline(always)]
fn stop_bytes(w: u64) -> u64 {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGHS
}

/// What [`Scanner::scalar_or_open`] found.
enum Item {
    Scalar,
    /// `{}` or `[]`: one nesting level, already closed.
    Empty,
    Open {
        is_object: bool,
    },
}

/// A cursor over a JSON document. Copy it to remember a position.
#[derive(Clone, Copy)]
pub(crate) struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    /// Lenient mode: whitespace between tokens and every RFC 8259 escape.
    whitespace: bool,
}

impl<'a> Scanner<'a> {
    /// A scanner that skips JSON whitespace between tokens.
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Scanner {
            s,
            pos: 0,
            whitespace: true,
        }
    }

    /// A scanner for the journal's compact JSON: any whitespace between tokens, and any escape
    /// the encoder does not write, is a syntax error.
    pub(crate) fn compact(s: &'a [u8]) -> Self {
        Scanner {
            s,
            pos: 0,
            whitespace: false,
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    pub(crate) fn syntax(&self) -> ScanError {
        ScanError::Syntax(self.pos)
    }

    /// Skips JSON whitespace (nothing in compact mode).
    #[inline]
    pub(crate) fn ws(&mut self) {
        // Most tokens follow one another directly, so one compare usually decides: every JSON
        // whitespace byte is at most 0x20 (the end of the document reads as 0 here).
        if self.s.get(self.pos).copied().unwrap_or(0) > b' ' || !self.whitespace {
            return;
        }
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The cursor's byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Consumes `b` if it is next (no whitespace skipped).
    #[inline]
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    /// Consumes `b` (after whitespace) or fails.
    #[inline]
    pub(crate) fn expect(&mut self, b: u8) -> Result<(), ScanError> {
        // The usual case, `b` right here, takes one load and compare (`b` is never
        // whitespace, so looking for it first changes nothing).
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            return Ok(());
        }
        self.ws();
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// After a member or element (and whitespace): `,` (consumed; `true`, another follows) or
    /// `close` (consumed; `false`, the container ends). Anything else fails. One look at the
    /// next byte decides the usual case.
    #[inline]
    pub(crate) fn comma_or_close(&mut self, close: u8) -> Result<bool, ScanError> {
        self.ws();
        match self.s.get(self.pos) {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(&b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.syntax()),
        }
    }

    /// Trailing whitespace, then the end of the document.
    pub(crate) fn end(&mut self) -> Result<(), ScanError> {
        self.ws();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// An object key (after whitespace) and its colon; returns whether the key holds an
    /// escape. The key's text lies between the cursor after [`Scanner::ws`] and the cursor
    /// after the closing quote; callers that need it use [`Scanner::skip_string`].
    #[inline]
    pub(crate) fn key(&mut self) -> Result<bool, ScanError> {
        self.ws();
        let escaped = self.skip_string()?;
        self.expect(b':')?;
        Ok(escaped)
    }

    /// One value of any kind (after whitespace), nested at most [`JSON_MAX_DEPTH`] deep;
    /// returns its span.
    pub(crate) fn value(&mut self) -> Result<Range<usize>, ScanError> {
        self.value_within(JSON_MAX_DEPTH)
    }

    /// [`Scanner::value`] nested at most `max_depth` deep (a value inside a container that
    /// already counts as one level gets `JSON_MAX_DEPTH - 1`); `max_depth` is at most
    /// [`JSON_MAX_DEPTH`].
    #[inline(always)]
    pub(crate) fn value_within(&mut self, max_depth: usize) -> Result<Range<usize>, ScanError> {
        self.ws();
        let start = self.pos;
        // Scalars, the common case, skip the container machinery.
        match self.peek() {
            Some(b'"') => self.skip_string().map(|_| start..self.pos),
            Some(b'-' | b'0'..=b'9') => self.number().map(|()| start..self.pos),
            _ => self.nested(start, max_depth),
        }
    }

    /// The rest of [`Scanner::value_within`]: a literal or a container, starting at `start`.
    fn nested(&mut self, start: usize, max_depth: usize) -> Result<Range<usize>, ScanError> {
        let max_depth = max_depth.min(JSON_MAX_DEPTH);
        // Bit 0 is the innermost open container: 1 for an object, 0 for an array.
        let (mut stack, mut depth) = (0u32, 0usize);
        loop {
            match self.scalar_or_open()? {
                Item::Scalar => {}
                Item::Empty if depth < max_depth => {}
                Item::Open { is_object } if depth < max_depth => {
                    stack = (stack << 1) | u32::from(is_object);
                    depth += 1;
                    if is_object {
                        self.key()?;
                    }
                    continue;
                }
                Item::Empty | Item::Open { .. } => return Err(ScanError::TooDeep(self.pos)),
            }
            // A value ended: close containers until one continues with `,`.
            loop {
                if depth == 0 {
                    return Ok(start..self.pos);
                }
                self.ws();
                let in_object = stack & 1 == 1;
                match (self.peek(), in_object) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        if in_object {
                            self.key()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return Err(self.syntax()),
                }
            }
        }
    }

    /// Consumes a scalar or an empty container, or opens a non-empty container (then the
    /// cursor is at its first key or element).
    fn scalar_or_open(&mut self) -> Result<Item, ScanError> {
        self.ws();
        match self.peek() {
            Some(open @ (b'{' | b'[')) => {
                self.pos += 1;
                self.ws();
                let close = if open == b'{' { b'}' } else { b']' };
                if self.eat(close) {
                    return Ok(Item::Empty);
                }
                return Ok(Item::Open {
                    is_object: open == b'{',
                });
            }
            Some(b'"') => self.string().map(drop)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            _ => return Err(self.syntax()),
        }
        Ok(Item::Scalar)
    }

    /// Consumes `word` (`true`, `false` or `null`) if it is next.
    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        if !self.s[self.pos..].starts_with(word) {
            return Err(self.syntax());
        }
        self.pos += word.len();
        Ok(())
    }

    /// A string at the cursor; returns its raw body (no quotes, escapes as written). The
    /// caller checks UTF-8 (a `&str` is valid already).
    pub(crate) fn string(&mut self) -> Result<&'a [u8], ScanError> {
        let start = self.pos + 1;
        self.skip_string()?;
        Ok(&self.s[start..self.pos - 1])
    }

    /// Consumes a string at the cursor; returns whether it holds any escape.
    #[inline(always)]
    pub(crate) fn skip_string(&mut self) -> Result<bool, ScanError> {
        let s = self.s;
        let mut at = self.pos;
        if s.get(at) != Some(&b'"') {
            return Err(ScanError::Syntax(at));
        }
        at += 1;
        let mut escaped = false;
        loop {
            at = plain_run_end(s, at);
            match s.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos = at + 1;
                    self.escape()?;
                    at = self.pos;
                }
                _ => return Err(ScanError::Syntax(at)),
            }
        }
    }

    fn escape(&mut self) -> Result<(), ScanError> {
        let b = self.peek().ok_or_else(|| self.syntax())?;
        self.pos += 1;
        match b {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'/' if self.whitespace => Ok(()),
            b'u' if self.whitespace => self.hex4(),
            b'u' => self.control_escape(),
            _ => Err(ScanError::Syntax(self.pos - 1)),
        }
    }

    /// Four hex digits of either case (lenient mode).
    fn hex4(&mut self) -> Result<(), ScanError> {
        for _ in 0..4 {
            if !self.peek().is_some_and(|h| h.is_ascii_hexdigit()) {
                return Err(self.syntax());
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// `00xx` in lowercase hex naming a control character without a short escape (compact
    /// mode: the only `\u` the encoder writes).
    fn control_escape(&mut self) -> Result<(), ScanError> {
        let start = self.pos;
        let digits = self.s.get(start..start + 4).ok_or_else(|| self.syntax())?;
        let lower_hex = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        };
        let code = match digits {
            [b'0', b'0', hi @ (b'0' | b'1'), lo] => {
                lower_hex(*lo).map(|lo| ((hi - b'0') << 4) | lo)
            }
            _ => None,
        };
        match code {
            Some(c) if !matches!(c, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) => {
                self.pos += 4;
                Ok(())
            }
            _ => Err(ScanError::Syntax(start)),
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    #[inline]
    fn number(&mut self) -> Result<(), ScanError> {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.skip_digits();
            }
            _ => return Err(self.syntax()),
        }
        // An integer, the common case, ends here.
        if !matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Ok(());
        }
        if self.eat(b'.') {
            self.some_digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            self.some_digits()?;
        }
        Ok(())
    }

    /// Consumes a run of ASCII digits (maybe empty) and returns it.
    #[inline]
    pub(crate) fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        self.skip_digits();
        &self.s[start..self.pos]
    }

    /// Consumes a run of ASCII digits (maybe empty); returns whether there was one.
    #[inline]
    fn skip_digits(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn some_digits(&mut self) -> Result<(), ScanError> {
        if !self.skip_digits() {
            return Err(self.syntax());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn whole(doc: &str) -> Result<Range<usize>, ScanError> {
        let mut sc = Scanner::new(doc.as_bytes());
        let span = sc.value()?;
        sc.end()?;
        Ok(span)
    }

    /// Skips one value in compact mode; returns where it ended.
    fn skip_compact(json: &[u8]) -> Result<usize, ScanError> {
        let mut sc = Scanner::compact(json);
        sc.value().map(|r| r.end)
    }

    #[test]
    fn accepts_valid_documents() {
        for doc in [
            "{}",
            "[]",
            " { \"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, \"x\\\"\\u00e9\\/\"] } ",
            "{\"a\":{\"b\":{}},\"c\":[[],[{}]]}",
            "\"é\"",
            "-0",
        ] {
            assert!(whole(doc).is_ok(), "{doc}");
        }
        assert_eq!(whole("  [1] "), Ok(2..5));
    }

    #[test]
    fn rejects_invalid_documents() {
        for doc in [
            "",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[tru]",
            "[nul]",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "\"abc",
            "[1]]",
            "'a'",
        ] {
            assert!(whole(doc).is_err(), "{doc:?}");
        }
    }

    #[test]
    fn error_offsets() {
        assert_eq!(whole("[1,]"), Err(ScanError::Syntax(3)));
        assert_eq!(whole("\"\\x\""), Err(ScanError::Syntax(2)));
        assert_eq!(whole("\"a\nb\""), Err(ScanError::Syntax(2)));
        assert_eq!(whole("{ a:1}"), Err(ScanError::Syntax(2)));
        assert_eq!(whole("[1] x"), Err(ScanError::Syntax(4)));
    }

    #[test]
    fn compact_skip() {
        for ok in [
            &br#"{"a":[1,-2.5e+3,true,false,null,{"b":{}}],"c":"\u001f\"x"}"#[..],
            b"[]",
            b"[[[]],[]]",
            b"0",
            b"\"\"",
        ] {
            let doc = core::str::from_utf8(ok);
            assert_eq!(skip_compact(ok), Ok(ok.len()), "{doc:?}");
        }
        for bad in [
            &b"[}"[..],
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"[1,]",
            b"01x",
            b"-",
            b"1.",
            b"1e",
            b"tru",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\"a",
            b"{",
            b"",
            b"[1, 2]",
            b" 1",
            b"{\"a\" :1}",
        ] {
            let r = skip_compact(bad);
            let doc = core::str::from_utf8(bad);
            assert!(r.is_err() || r.is_ok_and(|n| n < bad.len()), "{doc:?}");
        }
        // Escapes the encoder never writes (compact mode only).
        for bad in [
            &br#""\/""#[..],
            br#""\u001B""#,
            br#""\u0050""#,
            br#""\u000a""#,
            br#""\u0008""#,
            br#""\u0020""#,
            br#""\u00e9""#,
            br#""\ud83d\ude80""#,
            br#""\u001""#,
        ] {
            let doc = core::str::from_utf8(bad);
            assert!(skip_compact(bad).is_err(), "{doc:?}");
        }
        for lenient in [&br#""\/""#[..], br#""\u001B""#, br#""\ud83d\ude80""#] {
            assert!(Scanner::new(lenient).value().is_ok());
        }
        for ok in [
            &br#""\u0000\u001b\u001f\u000b""#[..],
            br#""\"\\\n\r\t\b\f""#,
        ] {
            assert_eq!(skip_compact(ok), Ok(ok.len()));
        }
        assert!(matches!(
            skip_compact(&[b'['; 40]),
            Err(ScanError::TooDeep(_))
        ));
    }

    /// The first stop byte the slow way.
    fn run_end_by_table(s: &[u8], at: usize) -> usize {
        (at..s.len())
            .find(|&i| STRING_STOP[usize::from(s[i])])
            .unwrap_or(s.len())
    }

    #[test]
    fn plain_runs_end_at_the_first_stop_byte_at_every_offset() {
        // Bytes next to the stops (0x1f/0x20, 0x21/0x22/0x23, 0x5b/0x5c/0x5d), 0x7f, and
        // UTF-8 lead and continuation bytes, which must never stop a run.
        let values: [u8; 14] = [
            0x00, 0x01, 0x1f, 0x20, 0x21, b'"', 0x23, 0x5b, b'\\', 0x5d, 0x7f, 0x80, 0xc3, 0xff,
        ];
        for fill in [b'a', 0x20, 0x21, 0x23, 0x5d, 0x7f, 0xa9, 0xff] {
            for len in 0..20 {
                for p1 in 0..len {
                    for v1 in values {
                        for p2 in p1..len {
                            for v2 in values {
                                let mut buf = std::vec![fill; len];
                                buf[p2] = v2;
                                buf[p1] = v1;
                                for at in 0..=len.min(3) {
                                    assert_eq!(
                                        plain_run_end(&buf, at),
                                        run_end_by_table(&buf, at),
                                        "{buf:x?} from {at}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        // Every byte value alone, at every offset of two words.
        for v in 0..=255u8 {
            for p in 0..16 {
                let mut buf = [b'x'; 16];
                buf[p] = v;
                assert_eq!(
                    plain_run_end(&buf, 0),
                    run_end_by_table(&buf, 0),
                    "{v:#x} at {p}"
                );
            }
        }
    }

    #[test]
    fn depth_limit_is_exact_and_costs_no_recursion() {
        let mut doc = [0u8; 2 * (JSON_MAX_DEPTH + 1)];
        let (open, close) = doc.split_at_mut(JSON_MAX_DEPTH + 1);
        open.fill(b'[');
        close.fill(b']');
        let at_limit = core::str::from_utf8(&doc[1..doc.len() - 1]).unwrap();
        assert!(whole(at_limit).is_ok());
        assert_eq!(skip_compact(at_limit.as_bytes()), Ok(at_limit.len()));
        let over = core::str::from_utf8(&doc).unwrap();
        assert!(matches!(whole(over), Err(ScanError::TooDeep(_))));
        assert!(matches!(skip_compact(&doc), Err(ScanError::TooDeep(_))));
        let deep = [b'['; 8192];
        let deep = core::str::from_utf8(&deep).unwrap();
        assert!(matches!(whole(deep), Err(ScanError::TooDeep(_))));
    }
}
