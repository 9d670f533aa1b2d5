//! What a rule found, how the scanner applies it, and the byte classes the rules share.

use super::capped::Capped;
use super::window::Window;
use super::{assign, pem, token};

/// Blanks allowed between parts of a pattern (`Bearer   x`, `token  =  x`).
pub(super) const BLANKS_MAX: usize = 8;

/// A secret found at the current position: emit `keep` clean bytes verbatim, drop the next
/// `drop`, then drop whatever `tail` covers, then emit `placeholder`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hit {
    pub(super) keep: usize,
    pub(super) drop: usize,
    pub(super) tail: Tail,
    pub(super) placeholder: &'static str,
}

/// How far a secret runs past the part a rule has seen.
#[derive(Clone, Copy, Debug)]
pub(super) enum Tail {
    /// The secret ends where the rule's lookahead ended.
    None,
    /// The secret goes on while its bytes are of this class.
    While(fn(u8) -> bool),
    /// An assignment's value: up to the closing quote or end of line when quoted, else up to
    /// the first blank or delimiter.
    Value(Option<u8>),
    /// A PEM body: up to and including the END line, or to the end of the input.
    Pem,
}

/// The rules that may start at a word boundary whose first byte is `[A-Za-z_]`; the token
/// rules run only when the first byte can start their prefix.
pub(super) fn at_word(win: &mut Window<'_>) -> Option<Hit> {
    let token = match win.peek(0)?.to_ascii_lowercase() {
        b'g' => token::github(win, 0).or_else(|| token::gitlab(win, 0)),
        b's' => token::openai(win, 0),
        b'a' => token::aws(win, 0),
        b'b' => token::bearer(win, 0),
        _ => None,
    };
    token.or_else(|| assign::assignment(win))
}

/// Consumes the hit from `win`, writing the kept text and the placeholder to `text`.
pub(super) fn apply(win: &mut Window<'_>, text: &mut Capped<'_>, hit: &Hit) {
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
        Tail::Value(Some(quote)) => win.bump_while(|b| b != quote && b != b'\n'),
        Tail::Value(None) => win.bump_while(|b| !is_value_end(b)),
        Tail::Pem => pem::consume_body(win),
    }
    text.push_str(hit.placeholder);
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

/// Offset of the first non-blank at or after `i`, skipping at most [`BLANKS_MAX`].
pub(super) fn skip_blanks(win: &mut Window<'_>, mut i: usize) -> usize {
    let end = i + BLANKS_MAX;
    while i < end && win.peek(i).is_some_and(is_blank) {
        i += 1;
    }
    i
}
