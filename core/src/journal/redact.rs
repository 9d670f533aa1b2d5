//! Secret redaction applied to free text before a journal line is encoded and hashed.
//!
//! [`redact`] is one bounded pass over the input: an ANSI stripper feeds clean bytes into a
//! 256-byte lookahead window; at each position the rules below peek into
//! the window to decide, and the scanner then copies the byte or replaces the secret. An
//! assignment is read in steps (name, separator, value) with the blank runs between them
//! copied as they pass, so blanks of any length do not hide a value. Every input byte is read
//! once by the stripper; each rule looks at most 256 bytes ahead; the scan stops as soon as
//! the output is full. Work is O(input) and the output fits the caller's fixed buffer;
//! nothing allocates and nothing panics.
//!
//! # Order
//!
//! 1. ANSI escape sequences are removed first (CSI `ESC [ … final`, OSC `ESC ] … BEL` or
//!    `ESC \`, and the other `ESC` sequences); the rules see only the clean text, so colour
//!    codes inside or around a secret do not hide it.
//! 2. Secrets are replaced (table below). Matching ignores ASCII case. A placeholder can
//!    complete a pattern the text did not hold (a URL's userinfo is valid once a `/` inside it
//!    went with an assignment's value), so the scan runs again over its own output until
//!    nothing changes (at most four passes; the second runs only when the first replaced
//!    something and the cap did not cut the text): redacting twice changes nothing.
//! 3. The result is capped at [`MESSAGE_MAX_CHARS`] characters. Redaction comes before the
//!    cap, so the cap can cut a placeholder but never exposes part of a secret.
//!
//! # Rules
//!
//! A rule marked *word* starts only at a word boundary: the previous clean byte is not
//! `[A-Za-z0-9_]` (so `task-123`, `desk-lamp`, `risk-free`, `ask-me` are prose, not keys).
//! A rule marked *anywhere* also starts inside a word (`key%3Dsk-ant-…`, `x_ghp_…`): only
//! prefixes that no ordinary word holds. Token bodies must be long enough and *look random*
//! (hold a digit, or both letter cases, anywhere in the run), which generated keys do and
//! words and kebab-case identifiers do not; a run longer than the lookahead is taken for a key
//! whatever its shape. The facts (prefixes, lengths, alphabets) follow gitleaks' default
//! rules; `docs/JOURNAL.md` has the same catalogue as a table.
//!
//! | class | pattern | output |
//! |---|---|---|
//! | GitHub (anywhere) | `ghp_` `gho_` `ghu_` `ghs_` `ghr_` `github_pat_` + ≥ 20 `[A-Za-z0-9_]` | `[GITHUB_TOKEN]` |
//! | GitLab (anywhere) | `glpat-` `glptt-` `gldt-` `glrt-` `glft-` `glsoat-` + ≥ 20 `[A-Za-z0-9_-]` | `[GITLAB_TOKEN]` |
//! | HuggingFace (anywhere) | `hf_`, `api_org_` + ≥ 30 `[A-Za-z0-9]` | `[HUGGINGFACE_TOKEN]` |
//! | OpenAI (word) | `sk-` + ≥ 20 `[A-Za-z0-9_-]` (anywhere: `sk-proj-`, `sk-svcacct-`, `sk-admin-`) | `[OPENAI_KEY]` |
//! | Anthropic (anywhere) | `sk-ant-` + as above | `[ANTHROPIC_KEY]` |
//! | AWS key id (word) | `AKIA`/`ASIA`/`ABIA`/`ACCA` + exactly 16 `[A-Z0-9]` (with a digit, or no lowercase), then a non-word byte or a token found anywhere | `[AWS_ACCESS_KEY]` |
//! | Google (anywhere) | `AIza` + ≥ 30 `[A-Za-z0-9_-]` | `[GOOGLE_API_KEY]` |
//! | Slack (anywhere) | `xoxb-` `xoxp-` `xoxa-` `xoxr-` `xoxs-` `xoxe-` `xapp-` + ≥ 20 `[A-Za-z0-9_-]` | `[SLACK_TOKEN]` |
//! | Slack webhook (anywhere) | `hooks.slack.com/` + `services/`, `workflows/` or `triggers/` (kept) + ≥ 20 `[A-Za-z0-9_/+-]` | `[SLACK_WEBHOOK]` |
//! | Stripe (anywhere) | `sk_`/`rk_` + `live_`/`test_`/`prod_` + ≥ 16 `[A-Za-z0-9]` | `[STRIPE_KEY]` |
//! | SendGrid (anywhere) | `SG.` + ≥ 60 `[A-Za-z0-9._=-]` | `[SENDGRID_KEY]` |
//! | Twilio (word) | `SK` + ≥ 32 hex digits | `[TWILIO_KEY]` |
//! | npm (anywhere) | `npm_` + ≥ 36 `[A-Za-z0-9]` | `[NPM_TOKEN]` |
//! | PyPI (anywhere) | `pypi-` + ≥ 50 `[A-Za-z0-9_-]` | `[PYPI_TOKEN]` |
//! | Databricks (anywhere) | `dapi` + ≥ 32 hex digits | `[DATABRICKS_TOKEN]` |
//! | Docker Hub (anywhere) | `dckr_pat_` + ≥ 20 `[A-Za-z0-9_-]` | `[DOCKER_TOKEN]` |
//! | JWT (anywhere) | `eyJ` and ≥ 10 more base64url bytes, `.`, `ey` and ≥ 10 more, then an optional `.` and signature | `[JWT]` |
//! | URL credentials | at `://` after a word: `user:password@` in the authority; the password goes, or the whole userinfo when the user part holds a token | `scheme://user:[REDACTED]@host` |
//! | Bearer, Basic (word) | `Bearer` or `Basic`, blanks, ≥ 8 bytes of token68 | `Bearer [BEARER_TOKEN]`, `Basic [BASIC_AUTH]` |
//! | PEM key | `-----BEGIN …PRIVATE KEY…-----` (label: ≤ 40 printable bytes other than `-`) through the next `-----END …PRIVATE KEY…-----`, or to the end of the input | `[PRIVATE_KEY]` |
//! | assignment (word) | a secret name, `=` `:` `:=` or `=>` with any blanks and optional quotes, a non-empty value | `name=[REDACTED]` |
//!
//! Speed: text in which no rule can start is copied in runs (the inert scan): a byte
//! table finds what may start a rule, the first three bytes of a candidate token are looked up
//! in a table of the catalogue's starts (no token rule runs without that), and a word is
//! judged as a secret name by its last three letters first. Input with nothing to redact is
//! returned as it is. Input holding an `ESC` goes byte by byte through the ANSI stripper.
//!
//! *Bearer* keeps the scheme word and its blanks (`Authorization: Bearer [BEARER_TOKEN]`):
//! they are no secret and tell the reader what was there.
//!
//! *Secret names* are `api_key`, `apikey`, `secret_key`, `secret`, `token`, `password`,
//! `passwd`, `access_key`, `private_key`, `account_key` (Azure's `AccountKey=`), or any
//! identifier ending in `_` plus one of them,
//! with `-` read as `_` and a change of case read as `_` too (`accessToken` as
//! `access_token`, `OpenAIApiKey` as `open_ai_api_key`; `PassWord` matches as written): this
//! covers the environment names `OPENAI_API_KEY`, `GITHUB_TOKEN`, `ANTHROPIC_API_KEY`,
//! `AWS_SECRET_ACCESS_KEY`, `HF_TOKEN`, the header `X-Api-Key` and the JSON fields
//! `accessToken`, `clientSecret`, `apiKey`, but not `tokenizer`, `max_tokens`, `maxTokens` or
//! `tokenCount`. The name, separator and quotes are kept (`"api_key": "[REDACTED]"`). A
//! quote is `"`, `'` or `` ` ``, or one of them after a backslash, so escaped JSON inside a
//! message (`{\"api_key\": \"…\"}`) reads as JSON. An unquoted value ends at whitespace, a
//! quote or one of `& , ; ) ] } < >` (a `]` closing a `[` of the value does not end it); a
//! quoted one at its closing quote or the end of the line, and backslash escapes inside it
//! are stepped over (`"p4ss\"w0rd"` is one value; in an escaped value, `\\\"` is a quote of
//! the inner text). Values that are literals or type names (`true`, `false`, `null`, `none`,
//! `str`, `string`, `boolean`, `Optional` …) are left alone, so `use_token=true` and
//! `def f(token: str)` read as written, as are comparisons (`token == x`, `token === x`; but
//! `NAME==x` assigns `=x`). A value that is exactly a placeholder this module writes
//! (`[REDACTED]`, `[BEARER_TOKEN]`, … followed by the value's end) is left as it is, so
//! redacting twice changes nothing; any other bracketed text is a value. A value that is a PEM
//! key becomes `[PRIVATE_KEY]` (and the rest of the value after its END line goes too); a
//! value that starts with the scheme word `Bearer` keeps it and its blanks and the rest of
//! the value becomes `[BEARER_TOKEN]`, random-looking or not; a value that is itself a secret
//! name and separator (`password: token: x`) is left to that inner assignment.
//!
//! # Known limits
//!
//! Names longer than 64 bytes are not checked; an unterminated OSC string hides the rest of
//! the input (as a terminal would); outside an assignment, a key whose body is all one letter
//! case without digits is taken for a word unless it runs past the 256-byte lookahead; an
//! unquoted value stops at `,` `;` `&` and unmatched closing brackets, so a password
//! containing them shows its rest; prose such as `the token: it expired` loses the word after
//! the colon. A *word* token glued to a word (`xsk-…`, `xAKIA…`, and so `\nsk-…` where `\n`
//! is an escape written out) is not at a boundary and stays; likewise a name right after a
//! written-out escape (`\ntoken=x`). A URL password is found only when the `@` is within the
//! lookahead. Blanks after `Bearer` (alone or in a value), and blanks inside a
//! value that is itself an assignment (`password: token: x`), are looked at only within the
//! lookahead: more than about 250 of them hide the credential or the inner assignment.
//! Escapes nested deeper than one level are not decoded; such a value is redacted up to the
//! next one-level closing quote or the end of the line, which can take more than the value.
//! A name that holds a token after a `-` (`run-ghp_…-api-key=x`)
//! is not an assignment: the token is redacted, and the assignment is found again at the
//! name's last segment; but when the token's alphabet takes `-` too (`run-sk-…-token=x`), the
//! token swallows that segment and the value after it stays.
//!
//! # The cap
//!
//! The output holds at most [`MESSAGE_MAX_CHARS`] characters *including* the ellipsis: text
//! of up to 500 characters is returned whole; longer text keeps its first 499 characters and
//! ends with `…` (U+2026), 500 in all. So "a message has at most 500 characters" holds for
//! every journal line.

mod ansi;
mod assign;
mod capped;
mod pem;
mod rules;
mod stream;
#[cfg(test)]
mod tests;
mod token;
mod url;
mod window;

pub use stream::PemFilter;

use capped::Capped;
use rules::{Expect, is_blank};
use window::Window;

/// The most bytes [`redact`] ever writes: 500 characters of up to 4 UTF-8 bytes each, plus
/// the ellipsis, rounded up.
pub const REDACTED_MAX_BYTES: usize = 2048;

/// The most characters [`redact`] returns, the closing `…` of cut text included.
pub const MESSAGE_MAX_CHARS: usize = 500;

/// Whether `input` is short (at most [`MESSAGE_MAX_CHARS`] bytes), holds no `ESC` and no rule
/// can start in it, so that it is its own redaction: the check [`redact`] makes before
/// anything else. A caller may skip [`redact`] (and its output buffer) when it holds.
///
/// ```
/// use heidi_core::journal::redact::is_inert;
///
/// assert!(is_inert("Stage generate finished: 1024 rows written"));
/// assert!(!is_inert("api_key=abc123"));
/// ```
pub fn is_inert(input: &str) -> bool {
    let bytes = input.as_bytes();
    // The scan stops at an `ESC` too.
    bytes.len() <= MESSAGE_MAX_CHARS
        && rules::inert_prefix(bytes, 0, REDACTED_MAX_BYTES) == bytes.len()
}

/// Whether redaction would change `text` other than by the cap or ANSI stripping: whether a
/// rule finds a secret in it. The journal refuses such text where it is not free text
/// (names), since a name is never rewritten.
///
/// ```
/// use heidi_core::journal::redact::holds_secret;
///
/// assert!(holds_secret("hf_FakeTokenForTestsOnlyAbcdefghijklm9"));
/// assert!(holds_secret("token:abc123"));
/// assert!(!holds_secret("stage_end"));
/// assert!(!holds_secret("api_key"));
/// ```
pub fn holds_secret(text: &str) -> bool {
    if is_inert(text) {
        return false;
    }
    let mut out = [0u8; REDACTED_MAX_BYTES];
    let mut clean = [0u8; REDACTED_MAX_BYTES];
    let redacted = redact(text, &mut out);
    // The text as redaction would leave it if no rule fired: ANSI stripped, capped.
    let mut win = Window::new(text.as_bytes());
    let mut plain = Capped::new(&mut clean);
    while let Some(b) = win.bump() {
        if plain.is_full() {
            break;
        }
        plain.push(b);
    }
    redacted != plain.finish()
}

/// Writes `input` with ANSI escapes removed, secrets replaced by placeholders and the length
/// capped (see the [module docs](self)), and returns the result: `input` itself when nothing
/// in it needs changing, otherwise the text written into `out`.
///
/// ```
/// use heidi_core::journal::redact::{REDACTED_MAX_BYTES, redact};
///
/// let mut out = [0; REDACTED_MAX_BYTES];
/// let line = "push with GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a failed";
/// assert_eq!(redact(line, &mut out), "push with GITHUB_TOKEN=[REDACTED] failed");
/// ```
pub fn redact<'a>(input: &'a str, out: &'a mut [u8; REDACTED_MAX_BYTES]) -> &'a str {
    if is_inert(input) {
        return input;
    }
    let first = pass(input, out);
    let mut len = first.text.len();
    // Nothing replaced: nothing can complete a pattern. A cut text ends inside a word or a
    // placeholder (`token: st…`): scanning it again would judge what the cap made.
    if !first.replaced || first.cut {
        return as_text(out, len);
    }
    let mut scratch = [0u8; REDACTED_MAX_BYTES];
    for _ in 1..PASSES_MAX {
        let text = as_text(out, len);
        let again = pass(text, &mut scratch);
        if !again.replaced || again.text == text {
            break;
        }
        len = again.text.len();
        if let (Some(dst), Some(src)) = (out.get_mut(..len), scratch.get(..len)) {
            dst.copy_from_slice(src);
        }
    }
    as_text(out, len)
}

/// The most passes [`redact`] makes. A placeholder can complete a pattern the text did not
/// hold before (a URL's userinfo becomes valid once a `/` inside it went with a value), so
/// the scan repeats over its own output until nothing changes; two passes settle every
/// input seen so far, the rest is margin.
const PASSES_MAX: usize = 4;

/// The first `len` bytes of `buf`, which a pass wrote as UTF-8.
fn as_text(buf: &[u8; REDACTED_MAX_BYTES], len: usize) -> &str {
    core::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default()
}

/// What one scan wrote.
struct Pass<'a> {
    text: &'a str,
    /// Whether the cap cut the text.
    cut: bool,
    /// Whether a placeholder replaced anything.
    replaced: bool,
}

/// One scan of `input` (see the [module docs](self)) into `out`.
fn pass<'a>(input: &str, out: &'a mut [u8; REDACTED_MAX_BYTES]) -> Pass<'a> {
    let mut win = Window::new(input.as_bytes());
    let mut text = Capped::new(out);
    let mut expect = Expect::Nothing;
    let mut replaced = false;
    while !text.is_full() {
        if expect == Expect::Nothing {
            if let Some(rest) = win.rest() {
                let n = rules::inert_prefix(rest, win.last(), REDACTED_MAX_BYTES);
                if n > 0 {
                    text.push_slice(rest.get(..n).unwrap_or_default());
                    win.advance(n);
                    continue;
                }
            }
        }
        let Some(b) = win.peek(0) else { break };
        if expect != Expect::Nothing && is_blank(b) {
            win.bump();
            text.push(b);
            continue;
        }
        let hit = match core::mem::replace(&mut expect, Expect::Nothing) {
            Expect::Separator => assign::separator(&mut win),
            Expect::Value => assign::value(&mut win),
            Expect::Nothing => None,
        };
        match hit.or_else(|| rules::at(&mut win, b)) {
            Some(hit) => {
                replaced |= !hit.placeholder.is_empty();
                expect = rules::apply(&mut win, &mut text, &hit);
            }
            None => {
                win.bump();
                text.push(b);
            }
        }
    }
    let cut = text.is_full();
    Pass {
        text: text.finish(),
        cut,
        replaced,
    }
}
