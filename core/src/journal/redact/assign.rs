//! Assignments to secret names: `api_key=…`, `"password": "…"`, `OPENAI_API_KEY=…`.

use super::rules::{
    Expect, Hit, Tail, ValueEnd, ends_value, is_blank, is_value_end, is_word, quote_at, skip_blanks,
};
use super::window::Window;
use super::{pem, token};

/// Longest name read; a longer identifier is not checked.
pub(super) const NAME_MAX: usize = 64;

/// Secret names, lowercase with `-` as `_`. A name matches when it is one of these or ends
/// with `_` and one of these (`GITHUB_TOKEN`, `x-api-key`, `AWS_SECRET_ACCESS_KEY`).
const SECRET_NAMES: [&[u8]; 10] = [
    b"api_key",
    b"apikey",
    b"secret_key",
    b"secret",
    b"token",
    b"password",
    b"passwd",
    b"access_key",
    b"private_key",
    b"account_key",
];

/// The last three bytes of every secret name: a name ending otherwise is rejected before it is
/// split and compared.
const SECRET_ENDINGS: [&[u8; 3]; 5] = [b"key", b"ret", b"ken", b"ord", b"swd"];

/// Values that are no secret: literals and type names (`use_token=true`, `token: str`).
const PLAIN_VALUES: [&[u8]; 15] = [
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
    b"boolean",
    b"number",
    b"bytes",
    b"optional",
    b"any",
];

fn is_name_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

/// The placeholders this module writes: a value that is one of them is already redacted.
const PLACEHOLDERS: [&[u8]; 21] = [
    b"[REDACTED]",
    b"[BEARER_TOKEN]",
    b"[BASIC_AUTH]",
    b"[PRIVATE_KEY]",
    b"[GITHUB_TOKEN]",
    b"[OPENAI_KEY]",
    b"[ANTHROPIC_KEY]",
    b"[GITLAB_TOKEN]",
    b"[AWS_ACCESS_KEY]",
    b"[STRIPE_KEY]",
    b"[SENDGRID_KEY]",
    b"[TWILIO_KEY]",
    b"[GOOGLE_API_KEY]",
    b"[HUGGINGFACE_TOKEN]",
    b"[SLACK_TOKEN]",
    b"[SLACK_WEBHOOK]",
    b"[NPM_TOKEN]",
    b"[PYPI_TOKEN]",
    b"[DATABRICKS_TOKEN]",
    b"[DOCKER_TOKEN]",
    b"[JWT]",
];

fn is_secret_name(name: &[u8]) -> bool {
    SECRET_NAMES.iter().any(|secret| {
        name == *secret
            || (name.ends_with(secret) && name[..name.len() - secret.len()].ends_with(b"_"))
    })
}

/// A secret name at the start of the window, with its closing quote: kept, and the scanner
/// looks for a separator after it. The value comes in [`value`].
pub(super) fn name(win: &mut Window<'_>) -> Option<Hit> {
    let n = secret_name_len(win, 0)?;
    let quote = quote_at(win, n).map_or(0, |q| q.len());
    Some(Hit {
        keep: n + quote,
        drop: 0,
        tail: Tail::None,
        placeholder: "",
        next: Expect::Separator,
    })
}

/// A separator at the start of the window: kept, and the scanner looks for a value after it.
pub(super) fn separator(win: &mut Window<'_>) -> Option<Hit> {
    Some(Hit {
        keep: separator_end(win, 0)?,
        drop: 0,
        tail: Tail::None,
        placeholder: "",
        next: Expect::Value,
    })
}

/// The value at the start of the window (or its opening quote), unless it is empty, plain,
/// already a placeholder, or itself an assignment (`password: token: x` is read from the
/// inner name, which the scanner reaches next). The value becomes `[REDACTED]`, or the
/// placeholder of the PEM key it holds; after a `Bearer` scheme word the scheme and blanks
/// are kept and the rest of the value becomes `[BEARER_TOKEN]`.
pub(super) fn value(win: &mut Window<'_>) -> Option<Hit> {
    let quote = quote_at(win, 0);
    let i = quote.map_or(0, |q| q.len());
    let end = quote.map_or(ValueEnd::Unquoted, ValueEnd::Quoted);
    if let Some(hit) = pem::block(win, i) {
        return Some(Hit {
            tail: Tail::PemValue(end),
            ..hit
        });
    }
    let (start, placeholder) = match after_scheme(win, i) {
        Some(found) => found,
        None if is_inner_assignment(win, i) || is_plain(win, i) => return None,
        None => (i, "[REDACTED]"),
    };
    if ends_value(win, start, end) || is_placeholder(win, start, end) {
        return None;
    }
    Some(Hit {
        keep: start,
        drop: 0,
        tail: Tail::Value(end),
        placeholder,
        next: Expect::Nothing,
    })
}

/// Whether the run of name bytes `name` may be a secret name: 3 to [`NAME_MAX`] bytes ending
/// as one of [`SECRET_NAMES`] does. A cheap gate in front of the name rule; a run that starts
/// inside `name` at a `-` has the same ending.
pub(super) fn may_be_name(name: &[u8]) -> bool {
    match name {
        [.., a, b, c] if name.len() <= NAME_MAX => {
            // The three bytes, lowercased (`| 0x20` lowercases letters and leaves `_`, digits
            // and `-` unable to match a letter).
            let end = u32::from_be_bytes([0, a | 0x20, b | 0x20, c | 0x20]);
            SECRET_ENDINGS
                .iter()
                .any(|e| end == u32::from_be_bytes([0, e[0], e[1], e[2]]))
        }
        _ => false,
    }
}

/// Length of the secret name at `at`. A name matches as written (`PassWord`) or split at its
/// case changes (`accessToken` as `access_token`, `OpenAIApiKey` as `open_ai_api_key`).
fn secret_name_len(win: &mut Window<'_>, at: usize) -> Option<usize> {
    let mut len = 0;
    while win.peek(at + len).is_some_and(is_name_byte) {
        len += 1;
    }
    if !(3..=NAME_MAX).contains(&len) {
        return None;
    }
    let mut ending = |k: usize| win.peek(at + len - k).map_or(0, |b| b.to_ascii_lowercase());
    let last = [ending(3), ending(2), ending(1)];
    if !SECRET_ENDINGS.contains(&&last) {
        return None;
    }
    let mut plain = [0u8; NAME_MAX];
    let mut split = [0u8; 2 * NAME_MAX];
    let (mut n, mut s) = (0, 0);
    let mut prev = 0u8;
    while let Some(b) = win.peek(at + n).filter(|&b| is_name_byte(b)) {
        let next_lower = win.peek(at + n + 1).is_some_and(|c| c.is_ascii_lowercase());
        let hump = b.is_ascii_uppercase()
            && (prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower));
        if hump {
            *split.get_mut(s)? = b'_';
            s += 1;
        }
        let lower = if b == b'-' {
            b'_'
        } else {
            b.to_ascii_lowercase()
        };
        *split.get_mut(s)? = lower;
        *plain.get_mut(n)? = lower;
        s += 1;
        n += 1;
        prev = b;
    }
    let secret = is_secret_name(&plain[..n]) || is_secret_name(&split[..s]);
    (secret && !holds_token(win, at, n)).then_some(n)
}

/// Whether a secret name, its closing quote, blanks and a separator start at `at`.
fn is_inner_assignment(win: &mut Window<'_>, at: usize) -> bool {
    let Some(n) = secret_name_len(win, at) else {
        return false;
    };
    if token::any_at(win, at, true) || holds_token(win, at, n) {
        // Not a clean name: the whole value is redacted instead (`token:ghp_…-passwd=x` →
        // `token:[REDACTED]`), which a second pass leaves as it is.
        return false;
    }
    let i = at + n + quote_at(win, at + n).map_or(0, |q| q.len());
    let i = skip_blanks(win, i);
    separator_end(win, i).is_some()
}

/// Whether a token starts inside the `n`-byte name at `at`: after a `-` (a word start), or
/// glued to the bytes before it. Such a name is not taken as an assignment (the name would be
/// kept verbatim, token and all); the scanner then meets the token and redacts it, and meets
/// the assignment again at the name's last segment (`ghp_…-token=x` →
/// `[GITHUB_TOKEN]-token=[REDACTED]`).
fn holds_token(win: &mut Window<'_>, at: usize, n: usize) -> bool {
    (at + 1..at + n).any(|j| {
        let boundary = win.peek(j - 1) == Some(b'-');
        token::any_at(win, j, boundary)
    })
}

/// The offset after `=`, `=>`, `:` or `:=` at `i`. A comparison (`==`, `===` followed by a
/// blank or the end) is none; `NAME==x` assigns the value `=x`.
fn separator_end(win: &mut Window<'_>, i: usize) -> Option<usize> {
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

/// The offset of the credential and its placeholder when a `Bearer` or `Basic` scheme word
/// and blanks start at `i`.
fn after_scheme(win: &mut Window<'_>, i: usize) -> Option<(usize, &'static str)> {
    [
        (&b"bearer"[..], "[BEARER_TOKEN]"),
        (b"basic", "[BASIC_AUTH]"),
    ]
    .into_iter()
    .find(|(word, _)| win.starts_with_ci(i, word) && win.peek(i + word.len()).is_some_and(is_blank))
    .map(|(word, placeholder)| (skip_blanks(win, i + word.len()), placeholder))
}

/// Whether one of [`PLACEHOLDERS`] starts at `i` and the value ends after it, so redacting
/// twice changes nothing (`token=[X]hunter2` is no placeholder).
fn is_placeholder(win: &mut Window<'_>, i: usize, end: ValueEnd) -> bool {
    PLACEHOLDERS.iter().any(|p| {
        p.iter()
            .enumerate()
            .all(|(k, &c)| win.peek(i + k) == Some(c))
            && ends_value(win, i + p.len(), end)
    })
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
        Some(b'\\') => quote_at(win, i + n).is_some(),
        Some(b) => is_value_end(b) || b == b'[' || b == b'|',
    };
    whole && PLAIN_VALUES.contains(&&word[..n])
}
