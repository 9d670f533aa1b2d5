//! Arbitrary text through the redactor. Invariants: no panic; at most 500 characters;
//! redacting twice changes nothing unless the cap cut the text; the in-place path for text without `ESC` agrees
//! with the byte-by-byte scan (a lone `ESC` appended is removed, but sends the text through
//! the ANSI stripper); and independent oracles find no token in the output:
//! - GitHub: a `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_` prefix at a word boundary
//!   followed by 20 or more `[A-Za-z0-9_]` that look random (a digit, or both letter cases);
//! - the tokens found anywhere, glued to a word or not (HuggingFace, Slack, Anthropic, Google,
//!   npm, PyPI, Stripe, GitLab): the prefix, then at least the rule's length of its alphabet,
//!   looking random within the first 200 bytes.
#![no_main]

use heidi_core::journal::redact::{MESSAGE_MAX_CHARS, REDACTED_MAX_BYTES, redact};
use libfuzzer_sys::fuzz_target;

const PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_key(b: u8) -> bool {
    is_word(b) || b == b'-'
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A token kind of the oracle: prefix (lowercase), body alphabet, least body length.
type Kind = (&'static str, fn(u8) -> bool, usize);

/// Tokens found anywhere.
const ANYWHERE: [Kind; 9] = [
    ("hf_", is_alnum, 30),
    ("xoxb-", is_key, 20),
    ("xoxp-", is_key, 20),
    ("sk-ant-", is_key, 20),
    ("aiza", is_key, 30),
    ("npm_", is_alnum, 36),
    ("pypi-", is_key, 50),
    ("sk_live_", is_alnum, 16),
    ("glpat-", is_key, 20),
];

fn looks_random(body: &[u8]) -> bool {
    let digit = body.iter().any(u8::is_ascii_digit);
    let mixed = body.iter().any(u8::is_ascii_lowercase) && body.iter().any(u8::is_ascii_uppercase);
    digit || mixed
}

/// The first GitHub token in `text` by the documented rule, if any.
fn github_token(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase().into_bytes();
    for start in 0..bytes.len() {
        if start > 0 && is_word(bytes[start - 1]) {
            continue;
        }
        let Some(prefix) = PREFIXES
            .iter()
            .find(|p| lower[start..].starts_with(p.as_bytes()))
        else {
            continue;
        };
        let body_start = start + prefix.len();
        let body_len = bytes[body_start..]
            .iter()
            .take_while(|&&b| is_word(b))
            .count();
        let body = &bytes[body_start..body_start + body_len];
        if body_len >= 20 && looks_random(body) {
            return Some(&text[start..body_start + body_len]);
        }
    }
    None
}

/// The first token found anywhere, by the table above.
fn anywhere_token(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase().into_bytes();
    for start in 0..bytes.len() {
        for (prefix, class, min) in ANYWHERE {
            if !lower[start..].starts_with(prefix.as_bytes()) {
                continue;
            }
            let body_start = start + prefix.len();
            let run = bytes[body_start..]
                .iter()
                .take(200)
                .take_while(|&&b| class(b))
                .count();
            let body = &bytes[body_start..body_start + run];
            if run >= min && looks_random(body) {
                return Some(String::from_utf8_lossy(&bytes[start..body_start + run]).into_owned());
            }
        }
    }
    None
}

fuzz_target!(|text: &str| {
    let mut out = [0u8; REDACTED_MAX_BYTES];
    let once = redact(text, &mut out);
    assert!(once.chars().count() <= MESSAGE_MAX_CHARS);
    if let Some(token) = github_token(once) {
        panic!("a GitHub token survived: {token:?} in {once:?}");
    }
    if let Some(token) = anywhere_token(once) {
        panic!("a token survived: {token:?} in {once:?}");
    }
    let mut again = [0u8; REDACTED_MAX_BYTES];
    if !once.ends_with('…') {
        assert_eq!(redact(once, &mut again), once, "redacting twice differs");
    }
    let scanned = format!("{text}\x1b");
    assert_eq!(
        redact(&scanned, &mut again),
        once,
        "the in-place path differs"
    );
});
