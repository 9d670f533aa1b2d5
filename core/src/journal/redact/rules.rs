//! What a rule found, how the scanner applies it, and the byte classes the rules share.

use super::capped::Capped;
use super::window::Window;
use super::{assign, pem, token, url};

/// A secret found at the current position: emit `keep` clean bytes verbatim, drop the next
/// `drop`, then drop whatever `tail` covers, then emit `placeholder`; the scanner then expects
/// `next`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hit {
    pub(super) keep: usize,
    pub(super) drop: usize,
    pub(super) tail: Tail,
    pub(super) placeholder: &'static str,
    pub(super) next: Expect,
}

/// What the scanner looks for after a hit, past any run of blanks: an assignment is read in
/// steps (name, separator, value) so that blank runs of any length between them are copied
/// once, not looked ahead over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// Nothing in particular: the ordinary rules.
    Nothing,
    /// The separator of an assignment whose secret name was just kept.
    Separator,
    /// The value of an assignment whose separator was just kept.
    Value,
}

/// A quote token around a name or value: a quote byte, or, in text that holds escaped JSON or
/// shell, a backslash and a quote byte.
#[derive(Clone, Copy, Debug)]
pub(super) struct Quote {
    pub(super) byte: u8,
    pub(super) escaped: bool,
}

impl Quote {
    /// Bytes of the token.
    pub(super) fn len(self) -> usize {
        1 + usize::from(self.escaped)
    }
}

/// How an assignment's value ends.
#[derive(Clone, Copy, Debug)]
pub(super) enum ValueEnd {
    /// At the first blank or delimiter ([`is_value_end`]) outside brackets the value opened.
    Unquoted,
    /// At the closing quote token or the end of the line; backslash escapes are stepped over.
    Quoted(Quote),
}

/// How far a secret runs past the part a rule has seen.
#[derive(Clone, Copy, Debug)]
pub(super) enum Tail {
    /// The secret ends where the rule's lookahead ended.
    None,
    /// The secret goes on while its bytes are of this class.
    While(fn(u8) -> bool),
    /// An assignment's value, up to its end.
    Value(ValueEnd),
    /// A PEM body: up to and including the END line, or to the end of the input.
    Pem,
    /// A PEM body that is an assignment's value, then the rest of that value.
    PemValue(ValueEnd),
}

/// The ordinary rules at the current position, whose byte is `b`: one dispatch on `b`, so
/// each byte costs one table lookup unless it can start a rule.
pub(super) fn at(win: &mut Window<'_>, b: u8) -> Option<Hit> {
    match b {
        b'-' => pem::block(win, 0),
        b':' => url::credentials(win),
        _ if is_word_start(b) => {
            if is_word(win.last()) {
                token::glued(win)
            } else {
                token::at_boundary(win).or_else(|| assign::name(win))
            }
        }
        _ => None,
    }
}

/// How many bytes at the start of `s` (clean text whose previous byte is `prev`) no rule can
/// start in, so the scanner copies them in one go. It errs towards stopping: the scanner then
/// asks [`at`] about the byte and copies it when no rule starts there. A byte stops the run when
/// it is an `ESC`, or may start a PEM line (`--`), a URL's userinfo (`:/`), a token ([`token::may_start`]) or
/// a secret name (a run of name bytes ending as one does, [`assign::may_be_name`]). A word is
/// read once: its end is found, the name judged, and its letters checked for glued tokens.
/// The scan stops after about `limit` bytes (more than the output can hold), and a run of
/// name bytes longer than a name stops it, so repeated calls over one input stay linear.
pub(super) fn inert_prefix(s: &[u8], prev: u8, limit: usize) -> usize {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut prev_word = is_word(prev);
    let mut i = 0;
    while let Some(&b) = s.get(i).filter(|_| i < limit) {
        let class = CLASS[usize::from(b)];
        if class & WORD_START == 0 {
            if class & PUNCT != 0 && (b == ESC || at(i + 1) == b'-' || at(i + 1) == b'/') {
                return i;
            }
            prev_word = class & WORD != 0;
            i += 1;
            continue;
        }
        if token::may_start(b, at(i + 1), at(i + 2), !prev_word) {
            return i;
        }
        if prev_word {
            i += 1;
            continue;
        }
        // A word start: its run of name bytes, judged as a name first. A token inside the
        // run needs a body that looks random (a digit or an uppercase letter in the run) or
        // that goes on past it (`.`, `=`, `/`, `+` after it, or a `-` in it, after which
        // `Bearer` and `Basic` take a credential from beyond the run): other runs (words and
        // snake_case in lowercase) need no look at their letters.
        let mut plain = true;
        let mut len = 1;
        for &c in s.iter().skip(i + 1) {
            let class = CLASS[usize::from(c)];
            if class & NAME == 0 {
                break;
            }
            plain &= class & PLAIN != 0;
            len += 1;
            if len > assign::NAME_MAX {
                return i;
            }
        }
        let j = i + len;
        if j - i > assign::NAME_MAX || assign::may_be_name(&s[i..j]) {
            return i;
        }
        if !plain || matches!(at(j), b'.' | b'=' | b'/' | b'+') {
            for (k, &c) in s.iter().enumerate().take(j).skip(i + 1) {
                let maybe = if c == b'-' {
                    let d = at(k + 1);
                    d == b'-' || token::may_start(d, at(k + 2), at(k + 3), true)
                } else {
                    token::may_start(c, at(k + 1), at(k + 2), false)
                };
                if maybe {
                    return k;
                }
            }
        }
        prev_word = is_word(s[j - 1]);
        i = j;
    }
    i.min(s.len())
}

/// [`CLASS`] bit: `[A-Za-z0-9_]`.
const WORD: u8 = 1;
/// [`CLASS`] bit: `[A-Za-z_]`.
const WORD_START: u8 = 2;
/// [`CLASS`] bit: a byte of a name, `[A-Za-z0-9_-]`.
const NAME: u8 = 4;
/// [`CLASS`] bit: `-` or `:`, which start a PEM line or a URL's userinfo, and `ESC`, which
/// starts an escape sequence (the scan stops at it).
const PUNCT: u8 = 8;
/// [`CLASS`] bit: `[a-z_]`, the bytes of a run that cannot hold a token's body.
const PLAIN: u8 = 16;

const ESC: u8 = 0x1b;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let word = c.is_ascii_alphanumeric() || c == b'_';
        let start = c.is_ascii_alphabetic() || c == b'_';
        t[b] = if word { WORD | NAME } else { 0 }
            | if start { WORD_START } else { 0 }
            | if c == b'-' { NAME | PUNCT } else { 0 }
            | if c == b':' || c == ESC { PUNCT } else { 0 }
            | if c.is_ascii_lowercase() || c == b'_' {
                PLAIN
            } else {
                0
            };
        b += 1;
    }
    t
}

/// Byte classes of the inert scan.
static CLASS: [u8; 256] = class_table();

/// Consumes the hit from `win`, writing the kept text and the placeholder to `text`; returns
/// what the scanner expects next.
pub(super) fn apply(win: &mut Window<'_>, text: &mut Capped<'_>, hit: &Hit) -> Expect {
    for _ in 0..hit.keep {
        if let Some(b) = win.bump() {
            text.push(b);
        }
    }
    for _ in 0..hit.drop {
        win.bump();
    }
    match hit.tail {
        Tail::None => {}
        Tail::While(class) => win.bump_while(class),
        Tail::Value(end) => consume_value(win, end),
        Tail::Pem => pem::consume_body(win),
        Tail::PemValue(end) => {
            pem::consume_body(win);
            consume_value(win, end);
        }
    }
    text.push_str(hit.placeholder);
    if let Some(&b) = hit.placeholder.as_bytes().last() {
        win.replaced_by(b);
    }
    hit.next
}

/// Consumes the rest of a value that ends as `end` says.
fn consume_value(win: &mut Window<'_>, end: ValueEnd) {
    let ValueEnd::Quoted(quote) = end else {
        return consume_unquoted(win);
    };
    while let Some(b) = win.peek(0) {
        if b == b'\n' || closes_at(win, 0, quote) {
            return;
        }
        let step = if b != b'\\' {
            1
        } else if quote.escaped
            && win.peek(1) == Some(b'\\')
            && win.peek(2) == Some(b'\\')
            && win.peek(3) == Some(quote.byte)
        {
            // `\\\"` inside an escaped string: an escaped quote of the inner text.
            4
        } else {
            2
        };
        for _ in 0..step {
            if win.peek(0) == Some(b'\n') {
                return;
            }
            win.bump();
        }
    }
}

/// Consumes an unquoted value up to a value end; a `]` that closes a `[` inside the value
/// (`[X]hunter2`) does not end it.
fn consume_unquoted(win: &mut Window<'_>) {
    let mut depth = 0usize;
    while let Some(b) = win.peek(0) {
        match b {
            b'[' => depth += 1,
            b']' if depth > 0 => depth -= 1,
            _ if is_value_end(b) => return,
            _ => {}
        }
        win.bump();
    }
}

/// The quote token at `i`, if any.
pub(super) fn quote_at(win: &mut Window<'_>, i: usize) -> Option<Quote> {
    match win.peek(i)? {
        b if is_quote(b) => Some(Quote {
            byte: b,
            escaped: false,
        }),
        b'\\' => win.peek(i + 1).filter(|&b| is_quote(b)).map(|byte| Quote {
            byte,
            escaped: true,
        }),
        _ => None,
    }
}

/// Whether the closing token of a value opened by `quote` is at `i`.
pub(super) fn closes_at(win: &mut Window<'_>, i: usize, quote: Quote) -> bool {
    if quote.escaped {
        win.peek(i) == Some(b'\\') && win.peek(i + 1) == Some(quote.byte)
    } else {
        win.peek(i) == Some(quote.byte)
    }
}

/// Whether a value that ends as `end` says ends at `i` (or the input does).
pub(super) fn ends_value(win: &mut Window<'_>, i: usize, end: ValueEnd) -> bool {
    match (win.peek(i), end) {
        (None, _) => true,
        (Some(b), ValueEnd::Unquoted) => is_value_end(b),
        (Some(b), ValueEnd::Quoted(quote)) => b == b'\n' || closes_at(win, i, quote),
    }
}

/// `[A-Za-z0-9_]`: a byte of a word; a rule starts only where the previous byte is not one.
pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[A-Za-z_]`: a byte that may start a word-rule.
pub(super) fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Space or tab.
pub(super) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A quote that may surround a key or a value.
pub(super) fn is_quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

/// A byte that ends an unquoted value: ASCII whitespace or control, a quote, or one of
/// `& , ; ) ] } < >`.
pub(super) fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || is_quote(b)
        || matches!(b, b'&' | b',' | b';' | b')' | b']' | b'}' | b'<' | b'>')
}

/// Offset of the first non-blank at or after `i`, or the end of the lookahead.
pub(super) fn skip_blanks(win: &mut Window<'_>, mut i: usize) -> usize {
    while win.peek(i).is_some_and(is_blank) {
        i += 1;
    }
    i
}
