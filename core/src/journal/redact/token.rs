//! Token-shaped secrets: a known prefix, then a body of a known alphabet.
//!
//! The rules are grouped by the first byte of their prefix; the scanner looks a rule up only
//! where that byte is, so the catalogue's size does not add a pass over the text.

use super::rules::{Expect, Hit, Tail, is_word, skip_blanks};
use super::window::{LOOKAHEAD, Window};

/// Minimum length of a bearer or basic credential.
const CREDENTIAL_MIN: usize = 8;

/// `[A-Za-z0-9_-]`: the alphabet of most generated keys.
fn is_key_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// SendGrid keys: `[A-Za-z0-9._=-]`.
fn is_sendgrid_byte(b: u8) -> bool {
    is_key_byte(b) || b == b'.' || b == b'='
}

/// The path of a Slack webhook URL.
fn is_path_byte(b: u8) -> bool {
    is_key_byte(b) || b == b'/' || b == b'+'
}

/// The base64url alphabet of a JWT segment.
fn is_b64url(b: u8) -> bool {
    is_key_byte(b)
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

/// A prefixed token rule: `prefix` (lowercase; matched ignoring ASCII case), then at least
/// `min` bytes of `class` that look random; the whole token becomes `placeholder`.
pub(super) struct Rule {
    /// The prefix, lowercase.
    pub(super) prefix: &'static [u8],
    /// The body's alphabet; the token runs on while its bytes are of it.
    pub(super) class: fn(u8) -> bool,
    /// The least body length.
    pub(super) min: usize,
    /// Whether the token is found inside a word too (`key%3Dsk-ant-…`): only prefixes no
    /// ordinary word contains.
    pub(super) glued: bool,
    /// The replacement.
    pub(super) placeholder: &'static str,
}

const fn rule(
    prefix: &'static [u8],
    class: fn(u8) -> bool,
    min: usize,
    glued: bool,
    placeholder: &'static str,
) -> Rule {
    Rule {
        prefix,
        class,
        min,
        glued,
        placeholder,
    }
}

const GITHUB: &str = "[GITHUB_TOKEN]";
const GITLAB: &str = "[GITLAB_TOKEN]";
const OPENAI: &str = "[OPENAI_KEY]";
const STRIPE: &str = "[STRIPE_KEY]";
const HF: &str = "[HUGGINGFACE_TOKEN]";
const SLACK: &str = "[SLACK_TOKEN]";

/// Prefixed rules by the first byte of their prefix (lowercase). Longer prefixes that share a
/// start with a shorter one come first.
const RULES_G: &[Rule] = &[
    rule(b"github_pat_", is_word, 20, true, GITHUB),
    rule(b"ghp_", is_word, 20, true, GITHUB),
    rule(b"gho_", is_word, 20, true, GITHUB),
    rule(b"ghu_", is_word, 20, true, GITHUB),
    rule(b"ghs_", is_word, 20, true, GITHUB),
    rule(b"ghr_", is_word, 20, true, GITHUB),
    rule(b"glpat-", is_key_byte, 20, true, GITLAB),
    rule(b"glptt-", is_key_byte, 20, true, GITLAB),
    rule(b"gldt-", is_key_byte, 20, true, GITLAB),
    rule(b"glrt-", is_key_byte, 20, true, GITLAB),
    rule(b"glft-", is_key_byte, 20, true, GITLAB),
    rule(b"glsoat-", is_key_byte, 20, true, GITLAB),
];
const RULES_S: &[Rule] = &[
    rule(b"sk-ant-", is_key_byte, 20, true, "[ANTHROPIC_KEY]"),
    rule(b"sk-proj-", is_key_byte, 20, true, OPENAI),
    rule(b"sk-svcacct-", is_key_byte, 20, true, OPENAI),
    rule(b"sk-admin-", is_key_byte, 20, true, OPENAI),
    rule(b"sk-", is_key_byte, 20, false, OPENAI),
    rule(b"sk_live_", is_alnum, 16, true, STRIPE),
    rule(b"sk_test_", is_alnum, 16, true, STRIPE),
    rule(b"sk_prod_", is_alnum, 16, true, STRIPE),
    rule(b"sg.", is_sendgrid_byte, 60, true, "[SENDGRID_KEY]"),
    rule(b"sk", is_hex, 32, false, "[TWILIO_KEY]"),
];
const RULES_R: &[Rule] = &[
    rule(b"rk_live_", is_alnum, 16, true, STRIPE),
    rule(b"rk_test_", is_alnum, 16, true, STRIPE),
    rule(b"rk_prod_", is_alnum, 16, true, STRIPE),
];
const RULES_A: &[Rule] = &[
    rule(b"aiza", is_key_byte, 30, true, "[GOOGLE_API_KEY]"),
    rule(b"api_org_", is_alnum, 30, true, HF),
];
const RULES_H: &[Rule] = &[rule(b"hf_", is_alnum, 30, true, HF)];
const RULES_X: &[Rule] = &[
    rule(b"xoxb-", is_key_byte, 20, true, SLACK),
    rule(b"xoxp-", is_key_byte, 20, true, SLACK),
    rule(b"xoxa-", is_key_byte, 20, true, SLACK),
    rule(b"xoxr-", is_key_byte, 20, true, SLACK),
    rule(b"xoxs-", is_key_byte, 20, true, SLACK),
    rule(b"xoxe-", is_key_byte, 20, true, SLACK),
    rule(b"xapp-", is_key_byte, 20, true, SLACK),
];
const RULES_N: &[Rule] = &[rule(b"npm_", is_alnum, 36, true, "[NPM_TOKEN]")];
const RULES_P: &[Rule] = &[rule(b"pypi-", is_key_byte, 50, true, "[PYPI_TOKEN]")];
const RULES_D: &[Rule] = &[
    rule(b"dapi", is_hex, 32, true, "[DATABRICKS_TOKEN]"),
    rule(b"dckr_pat_", is_key_byte, 20, true, "[DOCKER_TOKEN]"),
];

/// The prefixed rules whose prefix starts with `b` (any case).
fn rules_for(b: u8) -> &'static [Rule] {
    match b.to_ascii_lowercase() {
        b'g' => RULES_G,
        b's' => RULES_S,
        b'r' => RULES_R,
        b'a' => RULES_A,
        b'h' => RULES_H,
        b'x' => RULES_X,
        b'n' => RULES_N,
        b'p' => RULES_P,
        b'd' => RULES_D,
        _ => &[],
    }
}

/// The first three bytes (lowercase) of every token found inside a word.
const GLUED_STARTS: &[&[u8; 3]] = &[
    b"git", b"ghp", b"gho", b"ghu", b"ghs", b"ghr", b"glp", b"gld", b"glr", b"glf", b"gls", b"sk-",
    b"sk_", b"sg.", b"rk_", b"aiz", b"api", b"hf_", b"hoo", b"xox", b"xap", b"npm", b"pyp", b"dap",
    b"dck", b"eyj",
];

/// The first three bytes (lowercase) of the tokens found only at a word start.
const BOUNDARY_STARTS: &[&[u8; 3]] = &[
    b"bea", b"bas", b"aki", b"asi", b"abi", b"acc", b"sk0", b"sk1", b"sk2", b"sk3", b"sk4", b"sk5",
    b"sk6", b"sk7", b"sk8", b"sk9", b"ska", b"skb", b"skc", b"skd", b"ske", b"skf",
];

/// The bit of a third byte in a [`start_table`] entry: one per letter (either case), then
/// `-`, `_`, `.` and the digits; 0 for other bytes.
const fn third_bit(b: u8) -> u64 {
    match b {
        b'a'..=b'z' => 1 << (b - b'a'),
        b'A'..=b'Z' => 1 << (b - b'A'),
        b'-' => 1 << 26,
        b'_' => 1 << 27,
        b'.' => 1 << 28,
        b'0'..=b'9' => 1 << (29 + b - b'0'),
        _ => 0,
    }
}

/// Rows and columns of a [`start_table`]: one per letter, one for every other byte, and
/// padding to 32 so that any 5-bit row and column index the table without a bounds check.
const LETTERS: usize = 32;

/// The row or column of `b` in a [`start_table`]: its letter (either case), or the last.
const fn letter_index(b: u8) -> u8 {
    let l = b.to_ascii_lowercase();
    if l.is_ascii_lowercase() { l - b'a' } else { 26 }
}

/// Rows of a [`start_table`]: row 0 stays empty (every byte that begins no start), then one
/// per letter that begins some start (11 today), padded to 16 so that a 4-bit row indexes
/// the table without a bounds check. Keeping only those rows keeps the tables at 8 KiB in
/// all, which the simulator's `.wasm` size budget needs.
const ROWS: usize = 16;

/// The start at `k` of the glued starts followed by the boundary-only ones.
const fn start_at(k: usize) -> &'static [u8; 3] {
    if k < GLUED_STARTS.len() {
        GLUED_STARTS[k]
    } else {
        BOUNDARY_STARTS[k - GLUED_STARTS.len()]
    }
}

/// The row of each byte in a [`start_table`]: 1.. for a letter (either case) that begins
/// some start, in order of first use; 0 for every other byte.
const fn row_index_table() -> [u8; 256] {
    let mut letter_rows = [0u8; 26];
    let mut next = 1u8;
    let mut k = 0;
    while k < GLUED_STARTS.len() + BOUNDARY_STARTS.len() {
        let first = start_at(k)[0].to_ascii_lowercase();
        assert!(
            first.is_ascii_lowercase(),
            "every start begins with a letter"
        );
        let l = (first - b'a') as usize;
        if letter_rows[l] == 0 {
            letter_rows[l] = next;
            next += 1;
        }
        k += 1;
    }
    assert!((next as usize) <= ROWS, "more first letters than rows");
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let l = (b as u8).to_ascii_lowercase();
        if l.is_ascii_lowercase() {
            t[b] = letter_rows[(l - b'a') as usize];
        }
        b += 1;
    }
    t
}

/// For each pair of first bytes: the set of third bytes ([`third_bit`]) that start a token.
/// Row 0 and the column of non-letters stay empty.
const fn start_table(boundary: bool) -> [u64; ROWS * LETTERS] {
    let rows = row_index_table();
    let mut t = [0u64; ROWS * LETTERS];
    let mut k = 0;
    while k < GLUED_STARTS.len() + BOUNDARY_STARTS.len() {
        let start = if k < GLUED_STARTS.len() {
            Some(GLUED_STARTS[k])
        } else if boundary {
            Some(BOUNDARY_STARTS[k - GLUED_STARTS.len()])
        } else {
            None
        };
        if let Some(start) = start {
            let row = rows[start[0] as usize] as usize;
            let i = row * LETTERS + letter_index(start[1]) as usize;
            t[i] |= third_bit(start[2]);
        }
        k += 1;
    }
    t
}

const fn third_table() -> [u64; 256] {
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = third_bit(b as u8);
        b += 1;
    }
    t
}

const fn letter_index_table() -> [u8; 256] {
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = letter_index(b as u8);
        b += 1;
    }
    t
}

static GLUED_TABLE: [u64; ROWS * LETTERS] = start_table(false);
static BOUNDARY_TABLE: [u64; ROWS * LETTERS] = start_table(true);
static THIRD: [u64; 256] = third_table();
static LETTER_INDEX: [u8; 256] = letter_index_table();
static ROW_INDEX: [u8; 256] = row_index_table();

/// Whether a token may start with the bytes `b0 b1 b2`; `boundary` says whether `b0` starts
/// a word (otherwise only tokens found inside words count). Four table lookups; the scanner
/// asks it before any token rule, so a rule whose start is not listed never runs.
#[inline]
pub(super) fn may_start(b0: u8, b1: u8, b2: u8, boundary: bool) -> bool {
    let row = usize::from(ROW_INDEX[usize::from(b0)]);
    let col = usize::from(LETTER_INDEX[usize::from(b1)]);
    let table = if boundary {
        &BOUNDARY_TABLE
    } else {
        &GLUED_TABLE
    };
    table[((row & (ROWS - 1)) << 5) | (col & 31)] & THIRD[usize::from(b2)] != 0
}

/// The hit of `rule` at `at`, if its prefix and a body are there.
fn prefixed(win: &mut Window<'_>, at: usize, rule: &Rule) -> Option<Hit> {
    if !win.starts_with_ci(at, rule.prefix) {
        return None;
    }
    let decided = body(win, at + rule.prefix.len(), rule.class, rule.min)?;
    Some(Hit {
        keep: at,
        drop: decided - at,
        tail: Tail::While(rule.class),
        placeholder: rule.placeholder,
        next: Expect::Nothing,
    })
}

/// A token of any kind at `at`; `boundary` says whether `at` starts a word (otherwise only
/// the rules that are found inside words apply).
fn token_at(win: &mut Window<'_>, at: usize, boundary: bool) -> Option<Hit> {
    let b0 = win.peek(at)?;
    let (b1, b2) = (win.peek(at + 1)?, win.peek(at + 2)?);
    if !may_start(b0, b1, b2, boundary) {
        return None;
    }
    let found = rules_for(b0)
        .iter()
        .filter(|r| boundary || r.glued)
        .find_map(|r| prefixed(win, at, r));
    if found.is_some() {
        return found;
    }
    match b0.to_ascii_lowercase() {
        b'a' if boundary => aws(win, at),
        b'e' => jwt(win, at),
        b'h' => slack_webhook(win, at),
        b'b' if boundary => bearer(win, at).or_else(|| basic(win, at)),
        _ => None,
    }
}

/// A token at the current position, which starts a word.
pub(super) fn at_boundary(win: &mut Window<'_>) -> Option<Hit> {
    token_at(win, 0, true)
}

/// A token that starts inside a word at the current position (`key%3Dsk-ant-…`).
pub(super) fn glued(win: &mut Window<'_>) -> Option<Hit> {
    token_at(win, 0, false)
}

/// Whether a prefixed token starts at `at` (`boundary`: at a word start).
pub(super) fn any_at(win: &mut Window<'_>, at: usize, boundary: bool) -> bool {
    token_at(win, at, boundary).is_some()
}

/// AWS access key ids, at a word start: `AKIA`, `ASIA`, `ABIA` or `ACCA`, then exactly 16 of
/// `[A-Z0-9]` holding a digit or no lowercase letter, then a non-word byte or a token found
/// inside words.
fn aws(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    let prefixed = [b"akia", b"asia", b"abia", b"acca"]
        .iter()
        .any(|p| win.starts_with_ci(at, *p));
    if !prefixed {
        return None;
    }
    let mut shape = Shape::default();
    for i in at + 4..at + 20 {
        shape.see(win.peek(i).filter(u8::is_ascii_alphanumeric)?);
    }
    // A glued token right after it is redacted too, which leaves a boundary there: taking the
    // key now keeps a second pass from finding it then.
    let ends = !win.peek(at + 20).is_some_and(is_word) || any_at(win, at + 20, false);
    let keyish = shape.digit || !shape.lower;
    (ends && keyish).then_some(Hit {
        keep: at,
        drop: 20,
        tail: Tail::None,
        placeholder: "[AWS_ACCESS_KEY]",
        next: Expect::Nothing,
    })
}

/// Length of a run of `class` at `i`, up to the lookahead.
fn run(win: &mut Window<'_>, i: usize, class: fn(u8) -> bool) -> usize {
    let mut n = 0;
    while win.peek(i + n).is_some_and(class) {
        n += 1;
    }
    n
}

/// JSON Web Tokens: `eyJ` and ≥ 10 base64url bytes, `.`, `ey` and ≥ 10 more, then an
/// optional `.` and signature.
fn jwt(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    let header = win.peek(at) == Some(b'e')
        && win.peek(at + 1) == Some(b'y')
        && win.peek(at + 2) == Some(b'J');
    if !header {
        return None;
    }
    let head = run(win, at, is_b64url);
    if head < 13 || win.peek(at + head) != Some(b'.') {
        return None;
    }
    let p = at + head + 1;
    if win.peek(p) != Some(b'e') || win.peek(p + 1) != Some(b'y') {
        return None;
    }
    let payload = run(win, p, is_b64url);
    if payload < 12 {
        return None;
    }
    let mut end = p + payload;
    if win.peek(end) == Some(b'.') && win.peek(end + 1).is_some_and(is_b64url) {
        end += 1;
    }
    Some(Hit {
        keep: at,
        drop: end - at,
        tail: Tail::While(is_b64url),
        placeholder: "[JWT]",
        next: Expect::Nothing,
    })
}

/// Slack webhook URLs: `hooks.slack.com/services/`, `/workflows/` or `/triggers/`, then a
/// path of ≥ 20 bytes; the host and path kind are kept, the rest of the path replaced.
fn slack_webhook(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    const HOST: &[u8] = b"hooks.slack.com/";
    if !win.starts_with_ci(at, HOST) {
        return None;
    }
    let kind = [&b"services/"[..], b"workflows/", b"triggers/"]
        .into_iter()
        .find(|k| win.starts_with_ci(at + HOST.len(), k))?;
    let start = at + HOST.len() + kind.len();
    let decided = body(win, start, is_path_byte, 20)?;
    Some(Hit {
        keep: start,
        drop: decided - start,
        tail: Tail::While(is_path_byte),
        placeholder: "[SLACK_WEBHOOK]",
        next: Expect::Nothing,
    })
}

/// An HTTP authorization `scheme` word, blanks, then a token68 credential of ≥ 8 bytes that
/// looks random: the scheme and blanks are kept, the credential replaced.
fn scheme(
    win: &mut Window<'_>,
    at: usize,
    scheme: &[u8],
    placeholder: &'static str,
) -> Option<Hit> {
    if !win.starts_with_ci(at, scheme) {
        return None;
    }
    let scheme_end = at + scheme.len();
    let i = skip_blanks(win, scheme_end);
    if i == scheme_end {
        return None;
    }
    let decided = body(win, i, is_token68, CREDENTIAL_MIN)?;
    Some(Hit {
        keep: i,
        drop: decided - i,
        tail: Tail::While(is_token68),
        placeholder,
        next: Expect::Nothing,
    })
}

/// `Bearer`, blanks, then a credential.
fn bearer(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    scheme(win, at, b"bearer", "[BEARER_TOKEN]")
}

/// `Basic`, blanks, then a credential (base64 of `user:password`).
fn basic(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    scheme(win, at, b"basic", "[BASIC_AUTH]")
}
