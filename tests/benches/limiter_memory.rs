//! Bytes of limiter state per key at 100k keys: `heidi_core::limit::KeyedLimiter` against
//! `governor`'s keyed limiter (its default `DashMapStateStore`), in the same run.
//!
//! Memory is counted by a counting global allocator (`stats_alloc`), as the net bytes still
//! allocated after 100k distinct keys have each made one call, with the limiter alive. This
//! lives in its own bench binary so the counting allocator cannot slow the timed benchmarks in
//! `limiter.rs`.
//!
//! Run: `cargo bench -p heidi-tests --bench limiter_memory`

use std::alloc::System;
use std::num::NonZeroU32;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use heidi_core::key::KeyHasher;
use heidi_core::limit::{KeyedAcquire, KeyedLimiter, LimitPolicy, Tat};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEYS: usize = 100_000;
/// Slots for our table: the next multiple of the group size at about 76 % load.
const SLOTS: usize = 131_072;

/// Net heap bytes held by what `build` returns (allocated − freed while building).
fn net_bytes<T>(build: impl FnOnce() -> T) -> (T, u64) {
    let region = Region::new(GLOBAL);
    let value = build();
    let s = region.change();
    let net = s.bytes_allocated as i128 - s.bytes_deallocated as i128 + s.bytes_reallocated as i128;
    (value, u64::try_from(net).unwrap_or(0))
}

/// `bytes / KEYS` with three decimals, in integer arithmetic.
fn per_key(bytes: u64) -> String {
    let milli = u128::from(bytes) * 1000 / KEYS as u128;
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

fn ours() -> (u64, usize) {
    let hasher = KeyHasher::new([0x33; 16]);
    let policy = LimitPolicy::new(60, Duration::from_secs(60)).expect("valid policy");
    let (lim, bytes) = net_bytes(|| {
        let mut lim = KeyedLimiter::new(vec![Slot::<Tat>::empty(); SLOTS].into_boxed_slice());
        let mut refused = 0;
        for i in 0..KEYS {
            let key = format!("client-{i:06}");
            let answer = lim.acquire(Instant::ZERO, hasher.hash(key.as_bytes()), &policy, 1);
            if let Ok(KeyedAcquire::TableFull { .. }) = answer {
                refused += 1;
            }
        }
        (lim, refused)
    });
    assert_eq!(
        lim.0.storage_bytes() as u64,
        bytes,
        "storage is the only allocation"
    );
    (bytes, lim.1)
}

fn governor_u64() -> u64 {
    let quota = Quota::per_minute(NonZeroU32::new(60).expect("non-zero"));
    let clock = FakeRelativeClock::default();
    let (lim, bytes) = net_bytes(|| {
        let lim = RateLimiter::dashmap_with_clock(quota, &clock);
        for i in 0..KEYS as u64 {
            let _ = lim.check_key(&i);
        }
        lim
    });
    drop(lim);
    bytes
}

fn governor_string() -> u64 {
    let quota = Quota::per_minute(NonZeroU32::new(60).expect("non-zero"));
    let clock = FakeRelativeClock::default();
    let (lim, bytes) = net_bytes(|| {
        let lim = RateLimiter::dashmap_with_clock(quota, &clock);
        for i in 0..KEYS {
            let _ = lim.check_key(&format!("client-{i:06}"));
        }
        lim
    });
    drop(lim);
    bytes
}

fn main() {
    // `cargo test --benches` and `cargo bench --no-run` style invocations pass `--test`/`--list`.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let (ours_bytes, refused) = ours();
    let gov_u64 = governor_u64();
    let gov_string = governor_string();
    println!("limiter state at {KEYS} keys (net heap bytes per key, counting allocator)");
    println!(
        "  ours, {SLOTS} slots of 16 B (keys stored as 64-bit keyed hashes): {} B/key ({refused} keys refused as TableFull)",
        per_key(ours_bytes)
    );
    println!(
        "  governor dashmap, u64 keys:    {} B/key",
        per_key(gov_u64)
    );
    println!(
        "  governor dashmap, String keys: {} B/key (includes the key strings)",
        per_key(gov_string)
    );
    println!(
        "ratio ours/governor: {} (u64 keys), {} (String keys)",
        ratio(ours_bytes, gov_u64),
        ratio(ours_bytes, gov_string)
    );
}

fn ratio(a: u64, b: u64) -> String {
    let milli = u128::from(a) * 1000 / u128::from(b.max(1));
    format!("{}.{:03}", milli / 1000, milli % 1000)
}
