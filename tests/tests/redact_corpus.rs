//! False positives of `heidi_core::journal::redact::redact` over ordinary text: prose, code
//! and logs of an ML pipeline (`tests/corpus/*.txt`, written by `tests/corpus/generate.py`;
//! about 400 KB holding hex digests, UUIDs, base64 checksums, git hashes, model ids, URLs
//! without credentials, and the words token, secret, password, Basic and Bearer in prose).
//! Each line is redacted on its own, as a journal message would be; the test prints the
//! lines changed and the redactions per MB, and asserts bounds: token rules (every
//! placeholder but `[REDACTED]`) at most [`MAX_TOKEN_PER_MB`], and assignments (`[REDACTED]`,
//! whose known false positive is prose such as `the token: it expires`, and an image tag
//! after a name ending in `_token`) at most [`MAX_ASSIGNMENT_PER_MB`].
//!
//! Run: `cargo test -p heidi-tests --test redact_corpus -- --nocapture`.

use heidi_core::journal::redact::{REDACTED_MAX_BYTES, redact};

/// The most token-rule redactions per MB of ordinary text (measured: 0).
const MAX_TOKEN_PER_MB: f64 = 5.0;

/// The most assignment redactions per MB of ordinary text (measured: about 440, nearly all
/// from one prose template).
const MAX_ASSIGNMENT_PER_MB: f64 = 600.0;

struct Count {
    bytes: usize,
    lines: usize,
    changed: usize,
    tokens: usize,
    assignments: usize,
    examples: Vec<(String, String)>,
}

/// Placeholders in `text`: (`[REDACTED]`, any other `[A-Z_]+]`).
fn placeholders(text: &str) -> (usize, usize) {
    let assignments = text.matches("[REDACTED]").count();
    let all = text
        .match_indices('[')
        .filter(|(i, _)| {
            let rest = &text[i + 1..];
            let name = rest.split(']').next().unwrap_or("");
            rest.contains(']')
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .count();
    (assignments, all - assignments)
}

fn count(text: &str) -> Count {
    let mut out = [0u8; REDACTED_MAX_BYTES];
    let mut c = Count {
        bytes: text.len(),
        lines: 0,
        changed: 0,
        tokens: 0,
        assignments: 0,
        examples: Vec::new(),
    };
    for line in text.lines() {
        c.lines += 1;
        let red = redact(line, &mut out);
        // The cap is no redaction: compare within the kept part.
        let kept = red.strip_suffix('…').unwrap_or(red);
        if !line.starts_with(kept) {
            c.changed += 1;
            let (a0, t0) = placeholders(line);
            let (a1, t1) = placeholders(red);
            c.assignments += a1.saturating_sub(a0);
            c.tokens += t1.saturating_sub(t0);
            if c.examples.len() < 5 {
                c.examples.push((line.to_owned(), red.to_owned()));
            }
        }
    }
    c
}

#[test]
fn ordinary_text_is_rarely_redacted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (mut total_bytes, mut tokens, mut assignments) = (0, 0, 0);
    for name in ["prose.txt", "code.txt", "logs.txt"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let c = count(&text);
        assert!(
            c.bytes > 100_000,
            "{name}: corpus too small ({} bytes)",
            c.bytes
        );
        let per_mb = (c.tokens + c.assignments) as f64 * 1e6 / c.bytes as f64;
        println!(
            "{name}: {} bytes, {} lines, {} lines changed, {} token and {} assignment \
             redactions ({per_mb:.1} per MB)",
            c.bytes, c.lines, c.changed, c.tokens, c.assignments
        );
        for (line, red) in &c.examples {
            println!("  {line:?}\n  -> {red:?}");
        }
        total_bytes += c.bytes;
        tokens += c.tokens;
        assignments += c.assignments;
    }
    let per_mb = |n: usize| n as f64 * 1e6 / total_bytes as f64;
    println!(
        "all: {total_bytes} bytes; token rules {tokens} ({:.1} per MB), assignments \
         {assignments} ({:.1} per MB)",
        per_mb(tokens),
        per_mb(assignments)
    );
    assert!(per_mb(tokens) <= MAX_TOKEN_PER_MB, "token rules: {tokens}");
    assert!(
        per_mb(assignments) <= MAX_ASSIGNMENT_PER_MB,
        "assignments: {assignments}"
    );
}
