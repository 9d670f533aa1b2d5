//! Assignments to secret names: `api_key=…`, `"password": "…"`, `OPENAI_API_KEY=…`.

use super::rules::{Hit, Tail, is_blank, is_quote, is_value_end, is_word, skip_blanks};
use super::window::Window;
use super::{pem, token};

/// Longest name read; a longer identifier is not checked.
const NAME_MAX: usize = 64;

/// Secret names, lowercase with `-` as `_`. A name matches when it is one of these or ends
/// with `_` and one of these (`GITHUB_TOKEN`, `x-api-key`, `AWS_SECRET_ACCESS_KEY`).
const SECRET_NAMES: [&[u8]; 9] = [
    b"api_key",
    b"apikey",
    b"secret_key",
    b"secret",
    b"token",
    b"password",
    b"passwd",
    b"access_key",
    b"private_key",
];

/// Values that are no secret: literals and type names (`use_token=true`, `token: str`).
const PLAIN_VALUES: [&[u8]; 13] = [
    b"true",
    b"false",
    b"null",
    b"none",
    b"nil",
    b"undefined",
    b"str",
    b"string",
    b"int",
    b"bool",
    b"bytes",
    b"optional",
    b"any",
];

fn is_name_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

fn is_secret_name(name: &[u8]) -> bool {
    SECRET_NAMES.iter().any(|secret| {
        name == *secret
            || (name.ends_with(secret) && name[..name.len() - secret.len()].ends_with(b"_"))
    })
}

/// An assignment at the start of the window: a secret name, an optional closing quote,
/// `=`, `=>`, `:` or `:=` with blanks around, an optional opening quote, and a non-empty
/// value. The name, separator and quotes are kept; the value becomes `[REDACTED]` (or the
/// placeholder of a bearer credential or PEM key it holds).
pub(super) fn assignment(win: &mut Window<'_>) -> Option<Hit> {
    let mut i = name_and_separator(win, 0)?;
    let quote = win.peek(i).filter(|&b| is_quote(b));
    if quote.is_some() {
        i += 1;
    }
    if let Some(hit) = pem::block(win, i).or_else(|| token::bearer(win, i)) {
        return Some(hit);
    }
    // `password: token: x` is read from the inner name, which the scanner reaches next.
    if is_scheme(win, i) || name_and_separator(win, i).is_some() {
        return None;
    }
    value(win, i, quote)
}

/// The offset of the value (or its opening quote) when a secret name, an optional closing
/// quote, blanks and a separator start at `at`.
fn name_and_separator(win: &mut Window<'_>, at: usize) -> Option<usize> {
    let mut name = [0u8; NAME_MAX];
    let mut n = 0;
    while let Some(b) = win.peek(at + n).filter(|&b| is_name_byte(b)) {
        *name.get_mut(n)? = if b == b'-' {
            b'_'
        } else {
            b.to_ascii_lowercase()
        };
        n += 1;
    }
    if !is_secret_name(&name[..n]) || holds_token(win, at, n) {
        return None;
    }
    let mut i = at + n;
    if win.peek(i).is_some_and(is_quote) {
        i += 1;
    }
    i = skip_blanks(win, i);
    i = separator(win, i)?;
    Some(skip_blanks(win, i))
}

/// Whether a prefixed token starts after a `-` inside the `n`-byte name at `at`. Such a name
/// is not taken as an assignment (the name would be kept verbatim, token and all); the scanner
/// then meets the token at that boundary and redacts it, and meets the assignment again at
/// the name's last segment (`ghp_…-token=x` → `[GITHUB_TOKEN]-token=[REDACTED]`).
fn holds_token(win: &mut Window<'_>, at: usize, n: usize) -> bool {
    (at + 1..at + n).any(|j| win.peek(j - 1) == Some(b'-') && token::any_at(win, j))
}

/// The offset after `=`, `=>`, `:` or `:=` at `i`. A comparison (`==`, `===` followed by a
/// blank or the end) is none; `NAME==x` assigns the value `=x`.
fn separator(win: &mut Window<'_>, i: usize) -> Option<usize> {
    match (win.peek(i)?, win.peek(i + 1)) {
        (b'=', Some(b'=')) => {
            let mut end = i + 2;
            while end < i + 4 && win.peek(end) == Some(b'=') {
                end += 1;
            }
            let compares = win.peek(end).is_none_or(|b| b.is_ascii_whitespace());
            (!compares).then_some(i + 1)
        }
        (b'=', Some(b'>')) | (b':', Some(b'=')) => Some(i + 2),
        (b'=' | b':', _) => Some(i + 1),
        _ => None,
    }
}

/// The value at `i` (after its opening `quote`, if any), unless it is empty or plain.
fn value(win: &mut Window<'_>, i: usize, quote: Option<u8>) -> Option<Hit> {
    let first = win.peek(i)?;
    let empty = match quote {
        Some(q) => first == q || first == b'\n',
        None => is_value_end(first),
    };
    if empty || is_plain(win, i) || is_placeholder(win, i) {
        return None;
    }
    Some(Hit {
        keep: i,
        drop: 0,
        tail: Tail::Value(quote),
        placeholder: "[REDACTED]",
    })
}

/// Whether a `Bearer` scheme word starts at `i`; the bearer rule alone judges what follows
/// it (here it found no credential, e.g. `token: Bearer [BEARER_TOKEN]`).
fn is_scheme(win: &mut Window<'_>, i: usize) -> bool {
    win.starts_with_ci(i, b"bearer") && win.peek(i + 6).is_some_and(is_blank)
}

/// Whether a placeholder such as `[REDACTED]` starts at `i`, so redacting twice changes
/// nothing.
fn is_placeholder(win: &mut Window<'_>, i: usize) -> bool {
    let mut n = 1;
    while n < 20
        && win
            .peek(i + n)
            .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
    {
        n += 1;
    }
    win.peek(i) == Some(b'[') && n > 1 && win.peek(i + n) == Some(b']')
}

/// Whether the word at `i` is one of [`PLAIN_VALUES`] and ends the value (or opens a type
/// parameter: `Optional[str]`, `str | None`); `true!x` is a value, not a literal.
fn is_plain(win: &mut Window<'_>, i: usize) -> bool {
    let mut word = [0u8; 9];
    let mut n = 0;
    while let Some(b) = win.peek(i + n).filter(|&b| is_word(b)) {
        let Some(slot) = word.get_mut(n) else {
            return false;
        };
        *slot = b.to_ascii_lowercase();
        n += 1;
    }
    let after = win.peek(i + n);
    let whole = match after {
        None => true,
        Some(b'.') => win.peek(i + n + 1).is_none_or(|b| b.is_ascii_whitespace()),
        Some(b) => is_value_end(b) || b == b'[' || b == b'|',
    };
    whole && PLAIN_VALUES.contains(&&word[..n])
}
