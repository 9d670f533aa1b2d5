//! Arbitrary text through the redactor. Invariants: no panic; at most 500 characters; and an
//! independent oracle finds no GitHub token in the output: a `ghp_`/`gho_`/`ghu_`/`ghs_`/
//! `ghr_`/`github_pat_` prefix at a word boundary followed by 20 or more `[A-Za-z0-9_]` that
//! look random (a digit, or both letter cases) — the documented rule for that class.
#![no_main]

use heidi_core::journal::redact::{MESSAGE_MAX_CHARS, REDACTED_MAX_BYTES, redact};
use libfuzzer_sys::fuzz_target;

const PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The first GitHub token in `text` by the documented rule, if any.
fn github_token(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase().into_bytes();
    for start in 0..bytes.len() {
        if start > 0 && is_word(bytes[start - 1]) {
            continue;
        }
        let Some(prefix) = PREFIXES.iter().find(|p| lower[start..].starts_with(p.as_bytes())) else {
            continue;
        };
        let body_start = start + prefix.len();
        let body_len = bytes[body_start..].iter().take_while(|&&b| is_word(b)).count();
        let body = &bytes[body_start..body_start + body_len];
        let digit = body.iter().any(u8::is_ascii_digit);
        let mixed = body.iter().any(u8::is_ascii_lowercase) && body.iter().any(u8::is_ascii_uppercase);
        if body_len >= 20 && (digit || mixed) {
            return Some(&text[start..body_start + body_len]);
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
});
