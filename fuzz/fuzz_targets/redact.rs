//! Arbitrary text through the redactor. Invariants: no panic; at most 500 characters, and a
//! closing `…` only when cut; redacting the output again changes nothing unless it was cut.
#![no_main]

use heidi_core::journal::redact::{MESSAGE_MAX_CHARS, REDACTED_MAX_BYTES, redact};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut out = [0u8; REDACTED_MAX_BYTES];
    let once = redact(text, &mut out);
    let chars = once.chars().count();
    assert!(chars <= MESSAGE_MAX_CHARS, "{chars} characters");
    if chars < MESSAGE_MAX_CHARS {
        let mut again = [0u8; REDACTED_MAX_BYTES];
        assert_eq!(redact(once, &mut again), once, "redaction is idempotent");
    }
});
