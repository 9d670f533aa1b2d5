//! Shared helpers for heidi-kernel's property, simulation and end-to-end tests.
//!
//! The tests themselves live in `tests/tests/`, the criterion benchmarks in `tests/benches/`.

/// Number of proptest cases to run: `default`, or the value of `HEIDI_PROPTEST_CASES` when set
/// (raise it for a longer soak, e.g. `HEIDI_PROPTEST_CASES=100000 cargo test -p heidi-tests`).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("HEIDI_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub mod bench;
