//! Property tests of `heidi_core::journal::redact::redact`.
//!
//! The reference model: redaction of text without secrets is the identity followed by the cap
//! (at most 500 characters, ellipsis included: 499 kept plus `…` when longer); ANSI escapes are
//! removed before anything else, so inserting escape sequences anywhere changes nothing.
//! Secrets of every class, in random case, with ANSI noise around and inside them, embedded at
//! random places in prose and code: no 8-character piece of a secret's body ever reaches the
//! output, the output is at most 500 characters (and ends with `…` exactly when cut), the
//! text before the first secret is kept as written, and redacting twice equals redacting once.
//! Assignments come in escaped JSON (`\"name\": \"value\"`), with escaped quotes inside the
//! value, with camelCase names and with long runs of blanks around the separator.

use heidi_core::journal::redact::{MESSAGE_MAX_CHARS, REDACTED_MAX_BYTES, redact};
use proptest::prelude::*;

/// Prose and code, near misses included; no juxtaposition of two entries with a separator
/// forms a secret.
const VOCAB: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "token",
    "is",
    "valid",
    "the token is valid",
    "task-123",
    "desk-lamp",
    "risk-free",
    "ask-me",
    "tokenizer=bpe",
    "max_tokens=512",
    "sk-learn",
    "sk-1234",
    "ghp",
    "gho_short",
    "AKIA",
    "AKIAIOSFODNN7EXAMPLE2",
    "glpat",
    "the bearer of bad news",
    "password",
    "secret",
    "api",
    "key",
    "apikey",
    "fn main() {}",
    "let x = 1;",
    "x == y",
    "use_token=true",
    "token: str",
    "def f(token: str) -> bool:",
    "api_key=None",
    "# TODO: fix",
    "http://example.com/a?b=1&c=2",
    "-----",
    "BEGIN",
    "-----BEGIN PUBLIC KEY-----",
    "PRIVATE",
    "café",
    "naïve",
    "日本語",
    "😀",
    "—",
    "“quoted”",
    "{\"n\": 1}",
    "[1, 2, 3]",
    "0.5",
    "v2",
    "GITHUB_TOKEN",
    "OPENAI_API_KEY is unset",
    "Authorization",
    "Bearer <token>",
    "stage_end",
    "round=3",
    "loss=0.1234",
    "tokens/s",
    "--verbose",
    "$HOME",
    "C:\\tmp",
];

/// Pieces of tokens, names and separators for the fast-path property.
const FRAGMENTS: &[&str] = &[
    "sk-ant-",
    "sk-",
    "sk_live_",
    "hf_",
    "ghp_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "Bearer ",
    "Basic ",
    "x-",
    "--",
    "-----BEGIN PRIVATE KEY-----",
    "://",
    "@",
    ":",
    "token",
    "api_key",
    "=",
    "A1b2C3d4",
    "abcdefgh",
    "DEF",
    "9",
    ".",
    "/",
    " ",
    "\n",
    "eyJ",
    "AIza",
    "pypi-",
    "npm_",
    "AKIA",
    "_",
    "hooks.slack.com/services/",
    "dapi",
    "SG.",
    "0123456789abcdef",
    "é",
    "+",
    "'",
    "\"",
    "https",
    "user",
    "the",
    "pass",
];

const SEPS: &[&str] = &[" ", " ", " ", "\n", ", ", "; ", " - ", "\t"];
const BEFORE: &[&str] = &[" ", "\n", " (", ": ", " '", " \""];
const AFTER: &[&str] = &[" ", "\n", ". ", ", ", ") ", "' ", "\" "];

/// Escape sequences, all terminated.
const NOISE: &[&str] = &[
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[1;4;38;2;10;20;30m",
    "\x1b[2K",
    "\x1b]8;;http://example.com/x\x07",
    "\x1b]0;a title\x1b\\",
    "\x1b(B",
    "\x1b7",
];

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A source of choices drawn from proptest's bytes.
struct Draw<'a>(&'a [u8], usize);

impl Draw<'_> {
    fn next(&mut self) -> usize {
        let b = self.0[self.1 % self.0.len()];
        self.1 += 1;
        usize::from(b)
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.next() % from.len()]
    }

    fn len(&mut self, min: usize, max: usize) -> usize {
        min + self.next() % (max - min + 1)
    }

    /// A random string over alphanumerics plus `extra`, holding at least one digit.
    fn body(&mut self, len: usize, extra: &[u8]) -> String {
        let alphabet: Vec<u8> = ALNUM.iter().chain(extra).copied().collect();
        let mut body: Vec<u8> = (0..len)
            .map(|_| alphabet[self.next() % alphabet.len()])
            .collect();
        let at = self.next() % len;
        body[at] = b'0' + (self.next() % 10) as u8;
        String::from_utf8(body).unwrap()
    }

    fn random_case(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.next() % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
}

/// A secret as it appears in the text, and the parts of it that must never show.
#[derive(Clone, Debug)]
struct Secret {
    text: String,
    bodies: Vec<String>,
}

fn secret(class: usize, bytes: &[u8]) -> Secret {
    let mut d = Draw(bytes, 0);
    let token = |d: &mut Draw<'_>, prefixes: &[&str], min, max, extra: &[u8]| {
        let prefix = d.pick(prefixes).to_owned();
        let len = d.len(min, max);
        let body = d.body(len, extra);
        let body = d.random_case(&body);
        (d.random_case(&prefix) + &body, vec![body])
    };
    let (text, bodies) = match class {
        0 => token(
            &mut d,
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            20,
            82,
            b"_",
        ),
        1 => token(&mut d, &["sk-", "sk-proj-", "sk-ant-api03-"], 20, 64, b"_-"),
        2 => token(&mut d, &["glpat-"], 20, 30, b"_-"),
        3 => token(&mut d, &["AKIA", "ASIA"], 16, 16, b""),
        4 => {
            let blanks = d.pick(&[" ", "  ", "\t"]);
            let (t, b) = token(&mut d, &["Bearer"], 8, 64, b"-._~+/");
            let (scheme, cred) = t.split_at(6);
            (format!("{scheme}{blanks}{cred}"), b)
        }
        5 => assignment(&mut d),
        8 => token(&mut d, &["hf_", "api_org_"], 30, 40, b""),
        9 => token(
            &mut d,
            &["xoxb-", "xoxp-", "xoxa-", "xoxe-", "xapp-"],
            20,
            60,
            b"-",
        ),
        10 => token(&mut d, &["sk_live_", "rk_live_", "sk_test_"], 16, 60, b""),
        11 => {
            let (t, b) = token(&mut d, &["AIza"], 35, 35, b"_-");
            (format!("AIza{}", &t[4..]), b)
        }
        12 => token(&mut d, &["npm_"], 36, 36, b""),
        13 => token(&mut d, &["pypi-"], 50, 120, b"_-"),
        14 => token(&mut d, &["dckr_pat_", "glpat-", "gldt-"], 20, 40, b"_-"),
        15 => {
            let len = d.len(10, 60);
            let head = d.body(len, b"_-");
            let len = d.len(10, 60);
            let payload = d.body(len, b"_-");
            let len = d.len(0, 60);
            let sig = if len == 0 {
                String::new()
            } else {
                d.body(len, b"_-")
            };
            let text = format!("eyJ{head}.ey{payload}.{sig}");
            (
                text,
                vec![head, payload]
                    .into_iter()
                    .chain(Some(sig).filter(|s| s.len() >= 8))
                    .collect(),
            )
        }
        16 => {
            let scheme = d.pick(&["https", "postgres", "redis", "mongodb+srv", "amqp"]);
            let len = d.len(8, 40);
            let pass = d.body(len, b"!$%*+.~");
            (
                format!("{scheme}://user:{pass}@host.example:5432/db"),
                vec![pass],
            )
        }
        17 => {
            let len = d.len(12, 60);
            let cred = d.body(len, b"+/");
            (format!("Authorization: Basic {cred}"), vec![cred])
        }
        18 => {
            let glue = d.pick(&["key%3D", "x", "9", "_"]);
            let (t, b) = token(
                &mut d,
                &["sk-ant-api03-", "ghp_", "hf_", "xoxb-"],
                30,
                60,
                b"",
            );
            (format!("{glue}{t}"), b)
        }
        6 => {
            let names = [
                "OPENAI_API_KEY",
                "GITHUB_TOKEN",
                "ANTHROPIC_API_KEY",
                "HF_TOKEN",
            ];
            let name = d.pick(
                &[
                    names.as_slice(),
                    &["AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "GH_TOKEN"],
                ]
                .concat(),
            );
            let len = d.len(8, 40);
            let value = d.body(len, b"/+=!@#$%^*");
            (format!("{}={value}", d.random_case(name)), vec![value])
        }
        _ => pem(&mut d),
    };
    Secret { text, bodies }
}

fn assignment(d: &mut Draw<'_>) -> (String, Vec<String>) {
    let names = [
        "api_key",
        "apikey",
        "secret_key",
        "token",
        "password",
        "passwd",
        "secret",
        "access_key",
        "private_key",
        "API-KEY",
        "x-api-key",
        "client_secret",
        "refresh_token",
    ];
    let name = d.pick(&names);
    let name = d.random_case(name);
    // camelCase names keep their case: it marks the word boundary.
    let name = match d.next() % 4 {
        0 => d
            .pick(&["accessToken", "clientSecret", "apiKey", "OpenAIApiKey"])
            .to_owned(),
        _ => name,
    };
    let len = d.len(8, 40);
    let value = d.body(len, b"/+=!@#$%^*.~");
    let blanks = " ".repeat(d.len(0, 300));
    let text = match d.next() % 9 {
        0 => format!("{name}={value}"),
        1 => format!("{name}: {value}"),
        2 => format!("{name} = \"{value}\""),
        3 => format!("\"{name}\": \"{value}\""),
        4 => format!("'{name}' => '{value}'"),
        5 => format!("\\\"{name}\\\": \\\"{value}\\\""),
        6 => format!("{name}{blanks}={blanks}{value}"),
        7 => format!("\"{name}\": \"p\\\"{value}\""),
        _ => format!("{name}:={value}"),
    };
    (text, vec![value])
}

fn pem(d: &mut Draw<'_>) -> (String, Vec<String>) {
    let label = d.pick(&["RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED ", "DSA "]);
    let label = d.random_case(&format!("{label}PRIVATE KEY"));
    let lines: Vec<String> = (0..d.len(1, 4))
        .map(|_| {
            let len = d.len(16, 64);
            d.body(len, b"+/")
        })
        .collect();
    let footer = if d.next() % 4 == 0 {
        String::new()
    } else {
        format!("\n-----END {label}-----")
    };
    (
        format!("-----BEGIN {label}-----\n{}{footer}", lines.join("\n")),
        lines,
    )
}

fn words(picks: &[(usize, usize)]) -> String {
    picks
        .iter()
        .map(|&(w, s)| format!("{}{}", VOCAB[w], SEPS[s]))
        .collect()
}

fn picks(max: usize) -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..VOCAB.len(), 0..SEPS.len()), 0..max)
}

/// Prose before a secret, the secret, and the bytes its placement is drawn from.
type Part = (Vec<(usize, usize)>, Secret, Vec<u8>);

fn secrets() -> impl Strategy<Value = Vec<Part>> {
    let one = (
        picks(30),
        0..19usize,
        prop::collection::vec(any::<u8>(), 64..256),
    )
        .prop_map(|(before, class, bytes)| (before, secret(class, &bytes), bytes));
    prop::collection::vec(one, 1..4)
}

/// The text (secrets with, if `noisy`, escapes around and inside them), and the text before
/// the first secret.
fn compose(parts: &[Part], tail: &[(usize, usize)], noisy: bool) -> (String, String) {
    let mut text = String::new();
    let mut lead = None;
    for (before, secret, bytes) in parts {
        let mut d = Draw(bytes, 200);
        text += &words(before);
        text += d.pick(BEFORE);
        lead.get_or_insert_with(|| text.clone());
        let split = d.next() % (secret.text.len() + 1);
        let (a, b) = secret.text.split_at(split);
        let mut noise = || {
            let escape = d.pick(NOISE);
            if noisy { escape } else { "" }
        };
        text += &format!("{}{a}{}{b}{}", noise(), noise(), noise());
        text += d.pick(AFTER);
    }
    text += &words(tail);
    (text, lead.unwrap_or_default())
}

/// The cap as the model has it.
fn capped(s: &str) -> String {
    if s.chars().count() <= MESSAGE_MAX_CHARS {
        return s.to_owned();
    }
    s.chars().take(MESSAGE_MAX_CHARS - 1).chain(['…']).collect()
}

fn redacted(s: &str) -> String {
    let mut out = [0; REDACTED_MAX_BYTES];
    redact(s, &mut out).to_owned()
}

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(512)
}

proptest! {
    #![proptest_config(config())]

    /// Text without an `ESC` is read in place and copied in runs; a lone `ESC` at the end is
    /// removed, but sends the text through the ANSI stripper and the byte-by-byte scan: both
    /// paths agree on any input.
    #[test]
    fn the_fast_path_agrees_with_the_scan(
        parts in secrets(),
        tail in picks(30),
        junk in "[ -~]{0,200}",
    ) {
        let (text, _) = compose(&parts, &tail, false);
        for t in [text, junk] {
            prop_assert_eq!(redacted(&t), redacted(&(t.clone() + "\x1b")));
        }
    }

    /// The same over text assembled from pieces of tokens, names and separators, which puts
    /// rule starts in every context (glued, after `-`, at the cut of a word).
    #[test]
    fn the_fast_path_agrees_on_token_fragments(
        picks in prop::collection::vec(0..FRAGMENTS.len(), 0..80),
    ) {
        let t: String = picks.iter().map(|&i| FRAGMENTS[i]).collect();
        let once = redacted(&t);
        prop_assert_eq!(&once, &redacted(&(t.clone() + "\x1b")));
        if !once.ends_with('…') {
            prop_assert_eq!(redacted(&once), once.clone(), "redacting twice differs");
        }
    }

    #[test]
    fn prose_and_code_pass_unchanged(text in picks(160).prop_map(|p| words(&p))) {
        prop_assert_eq!(redacted(&text), capped(&text));
    }

    #[test]
    fn escapes_change_nothing(
        text in picks(120).prop_map(|p| words(&p)),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), 0..NOISE.len()), 0..20),
    ) {
        let chars: Vec<char> = text.chars().collect();
        let mut at: Vec<(usize, usize)> = cuts.iter().map(|(i, n)| (i.index(chars.len() + 1), *n)).collect();
        at.sort();
        let mut noisy = String::new();
        let mut next = at.iter().peekable();
        for i in 0..=chars.len() {
            while let Some(&(_, n)) = next.next_if(|(pos, _)| *pos == i) {
                noisy += NOISE[n];
            }
            if let Some(c) = chars.get(i) {
                noisy.push(*c);
            }
        }
        prop_assert_eq!(redacted(&noisy), redacted(&text));
    }

    #[test]
    fn secrets_never_show(parts in secrets(), tail in picks(30)) {
        let (text, lead) = compose(&parts, &tail, true);
        let out = redacted(&text);
        let count = out.chars().count();
        prop_assert!(count <= MESSAGE_MAX_CHARS, "{} chars", count);
        prop_assert!(!out.ends_with('…') || count == MESSAGE_MAX_CHARS, "{:?}", out);
        let (clean, _) = compose(&parts, &tail, false);
        prop_assert_eq!(&out, &redacted(&clean), "escapes changed the result");
        let lower = out.to_lowercase();
        for (_, secret, _) in &parts {
            for body in &secret.bodies {
                let body = body.to_lowercase();
                for piece in body.as_bytes().windows(8) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    prop_assert!(!lower.contains(piece), "{:?} shows {:?} of {:?}", out, piece, secret.text);
                }
            }
            prop_assert!(!lower.contains("private key-----"), "{:?}", out);
        }
        let lead = capped(&lead);
        let kept = lead.strip_suffix('…').unwrap_or(&lead);
        prop_assert!(out.starts_with(kept), "{:?} does not start with {:?}", out, kept);
        if !out.ends_with('…') {
            prop_assert_eq!(redacted(&out), out.clone(), "redacting twice differs");
        }
    }
}
