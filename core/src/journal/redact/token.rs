//! Token-shaped secrets: a known prefix, then a body of a known alphabet.

use super::rules::{Expect, Hit, Tail, is_word, skip_blanks};
use super::window::{LOOKAHEAD, Window};

/// Minimum body length of GitHub, OpenAI and GitLab tokens.
const TOKEN_BODY_MIN: usize = 20;

/// Minimum length of a bearer token.
const BEARER_MIN: usize = 8;

const GITHUB_PREFIXES: [&[u8]; 6] = [b"github_pat_", b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"];

/// `[A-Za-z0-9_-]`: the alphabet of OpenAI and GitLab keys.
fn is_key_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

/// The token68 alphabet of HTTP credentials, padding included.
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Which kinds of character a body holds.
#[derive(Default)]
struct Shape {
    digit: bool,
    upper: bool,
    lower: bool,
}

impl Shape {
    fn see(&mut self, b: u8) {
        self.digit |= b.is_ascii_digit();
        self.upper |= b.is_ascii_uppercase();
        self.lower |= b.is_ascii_lowercase();
    }

    /// A digit, or both letter cases: true of generated keys, rarely of words and identifiers.
    fn looks_random(&self) -> bool {
        self.digit || (self.upper && self.lower)
    }
}

/// Reads a body of `class` from offset `start`; returns the offset at which it is known to be
/// a secret: at least `min` bytes, and the run looks random up to there, or it runs past the
/// whole lookahead (no word is that long). "Looks random" is judged over the whole run.
fn body(win: &mut Window<'_>, start: usize, class: fn(u8) -> bool, min: usize) -> Option<usize> {
    let mut shape = Shape::default();
    let mut i = start;
    loop {
        let long_enough = i - start >= min;
        if long_enough && shape.looks_random() {
            return Some(i);
        }
        match win.peek(i) {
            Some(b) if class(b) => shape.see(b),
            None if i >= LOOKAHEAD && long_enough => return Some(i),
            _ => return None,
        }
        i += 1;
    }
}

/// One of `prefixes` at `at`, then a body: the whole token is the secret.
fn prefixed(
    win: &mut Window<'_>,
    at: usize,
    prefixes: &[&[u8]],
    class: fn(u8) -> bool,
    placeholder: &'static str,
) -> Option<Hit> {
    let prefix = prefixes.iter().find(|p| win.starts_with_ci(at, p))?;
    let decided = body(win, at + prefix.len(), class, TOKEN_BODY_MIN)?;
    Some(Hit {
        keep: at,
        drop: decided - at,
        tail: Tail::While(class),
        placeholder,
        next: Expect::Nothing,
    })
}

/// Whether a prefixed token (GitHub, OpenAI, GitLab, AWS) starts at `at`.
pub(super) fn any_at(win: &mut Window<'_>, at: usize) -> bool {
    github(win, at).is_some()
        || openai(win, at).is_some()
        || gitlab(win, at).is_some()
        || aws(win, at).is_some()
}

/// GitHub tokens: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`, then ≥ 20 of
/// `[A-Za-z0-9_]`.
pub(super) fn github(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    prefixed(win, at, &GITHUB_PREFIXES, is_word, "[GITHUB_TOKEN]")
}

/// OpenAI keys: `sk-` (so `sk-proj-` too), then ≥ 20 of `[A-Za-z0-9_-]`. Anthropic's
/// `sk-ant-` keys have the same shape and get their own placeholder.
pub(super) fn openai(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    let placeholder = if win.starts_with_ci(at, b"sk-ant-") {
        "[ANTHROPIC_KEY]"
    } else {
        "[OPENAI_KEY]"
    };
    prefixed(win, at, &[b"sk-"], is_key_byte, placeholder)
}

/// GitLab personal access tokens: `glpat-`, then ≥ 20 of `[A-Za-z0-9_-]`.
pub(super) fn gitlab(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    prefixed(win, at, &[b"glpat-"], is_key_byte, "[GITLAB_TOKEN]")
}

/// AWS access key ids: `AKIA` or `ASIA`, then exactly 16 of `[A-Z0-9]` holding a digit or no
/// lowercase letter, then a non-word byte.
pub(super) fn aws(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    if !(win.starts_with_ci(at, b"akia") || win.starts_with_ci(at, b"asia")) {
        return None;
    }
    let mut shape = Shape::default();
    for i in at + 4..at + 20 {
        shape.see(win.peek(i).filter(u8::is_ascii_alphanumeric)?);
    }
    let ends = !win.peek(at + 20).is_some_and(is_word);
    let keyish = shape.digit || !shape.lower;
    (ends && keyish).then_some(Hit {
        keep: at,
        drop: 20,
        tail: Tail::None,
        placeholder: "[AWS_ACCESS_KEY]",
        next: Expect::Nothing,
    })
}

/// `Bearer`, blanks, then a token68 credential of ≥ 8 bytes that looks random: the scheme and
/// blanks are kept, the credential replaced.
pub(super) fn bearer(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    if !win.starts_with_ci(at, b"bearer") {
        return None;
    }
    let scheme_end = at + b"bearer".len();
    let i = skip_blanks(win, scheme_end);
    if i == scheme_end {
        return None;
    }
    let decided = body(win, i, is_token68, BEARER_MIN)?;
    Some(Hit {
        keep: i,
        drop: decided - i,
        tail: Tail::While(is_token68),
        placeholder: "[BEARER_TOKEN]",
        next: Expect::Nothing,
    })
}
