//! Shared helpers for heidi-kernel's property, simulation and end-to-end tests.
//!
//! The tests themselves live in `tests/tests/`, the criterion benchmarks in `tests/benches/`.

use proptest::test_runner::{Config as ProptestConfig, RngSeed};

pub mod bench;

/// Number of proptest cases to run: `default`, or the value of `HEIDI_PROPTEST_CASES` when set
/// (raise it for a longer soak, e.g. `HEIDI_PROPTEST_CASES=100000 cargo test -p heidi-tests`).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("HEIDI_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The proptest configuration every property test uses: [`proptest_cases`]`(default)` cases
/// and an explicit RNG seed, printed to stderr so that a failing test shows it (the test
/// harness shows a test's output only when it fails). The seed is `PROPTEST_RNG_SEED` when set,
/// which replays a printed run exactly; otherwise a fresh one per test.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(fresh_seed);
    eprintln!("proptest seed {seed}: replay with PROPTEST_RNG_SEED={seed}");
    ProptestConfig {
        rng_seed: RngSeed::Fixed(seed),
        ..ProptestConfig::with_cases(proptest_cases(default_cases))
    }
}

/// A seed that differs between runs and between tests running at once.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
