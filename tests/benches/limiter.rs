//! Limiter benchmarks: `heidi_core::limit` against `governor` 0.6, measured in the same run.
//!
//! 1. `limiter/direct`: one bucket, one decision. Ours `TokenBucket::acquire(now, 1)` vs
//!    governor `RateLimiter::direct_with_clock(..).check()` with governor's
//!    `FakeRelativeClock` (an atomic load: no real clock read on either side; our `now` is an
//!    argument). Two paths: `granted` (a bucket large enough that every call of a sample is
//!    granted; both clocks jump ahead between samples to refill) and `denied` (a drained
//!    bucket).
//! 2. `limiter/keyed_100k`: 100k keys already present, visited in a fixed shuffled order.
//!    Ours: `KeyedLimiter` over 131,072 boxed slots, with pre-hashed keys and with string keys
//!    (hashing with `KeyHasher`, SipHash-1-3, inside the timed loop: the fair headline, since
//!    governor hashes internally). Governor: `RateLimiter::dashmap_with_clock` (its default
//!    keyed store) with `String` keys and with `u64` keys.
//! 3. Bytes per key: see `limiter_memory.rs`, which counts allocations.
//!
//! Each comparison ends with a line `ours X ns, governor Y ns, ratio X/Y`, from the median of
//! criterion's samples (per-iteration time of each timed batch longer than 100 µs).
//!
//! Run: `cargo bench -p heidi-tests --bench limiter` (add `-- --warm-up-time 1
//! --measurement-time 3` for a short run).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use criterion::Criterion;
use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{KeyedLimiter, LimitPolicy, Tat, TokenBucket};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use heidi_tests::bench::{Cycle, Recorder, shuffled};

const KEYS: usize = 100_000;
const SLOTS: usize = 131_072;
/// A burst no sample can exhaust: 2^31 per hour (one token per ~1.7 µs).
const BIG_BURST: u32 = 1 << 31;
/// Time jumped between samples so that every bucket is full again.
const REFILL: StdDuration = StdDuration::from_secs(2 * 3600);

fn direct(c: &mut Criterion, rec: &Recorder) {
    let mut g = c.benchmark_group("limiter/direct");
    let big = LimitPolicy::new(BIG_BURST, Duration::from_secs(3600)).unwrap();
    let small = LimitPolicy::new(10, Duration::from_secs(60)).unwrap();
    let big_quota = Quota::per_hour(NonZeroU32::new(BIG_BURST).unwrap());
    let small_quota = Quota::per_minute(NonZeroU32::new(10).unwrap());

    let mut bucket = TokenBucket::new(big);
    let mut now = Instant::ZERO;
    g.bench_function("ours/granted", |b| {
        b.iter_custom(|iters| {
            now += Duration::from(REFILL);
            rec.time("direct/ours/granted", iters, || {
                let _ = black_box(bucket.acquire(black_box(now), black_box(1)).unwrap());
            })
        })
    });
    let clock = FakeRelativeClock::default();
    let lim = RateLimiter::direct_with_clock(big_quota, &clock);
    g.bench_function("governor/granted", |b| {
        b.iter_custom(|iters| {
            clock.advance(REFILL);
            rec.time("direct/governor/granted", iters, || {
                let _ = black_box(lim.check());
            })
        })
    });

    let mut bucket = TokenBucket::new(small);
    let now = Instant::from_secs(1);
    let _ = bucket.acquire(now, 10).unwrap();
    g.bench_function("ours/denied", |b| {
        b.iter_custom(|iters| {
            rec.time("direct/ours/denied", iters, || {
                let _ = black_box(bucket.acquire(black_box(now), black_box(1)).unwrap());
            })
        })
    });
    let clock = FakeRelativeClock::default();
    let lim = RateLimiter::direct_with_clock(small_quota, &clock);
    let _ = lim.check_n(NonZeroU32::new(10).unwrap());
    g.bench_function("governor/denied", |b| {
        b.iter_custom(|iters| {
            rec.time("direct/governor/denied", iters, || {
                let _ = black_box(lim.check());
            })
        })
    });
    g.finish();
}

fn key_names() -> Vec<String> {
    (0..KEYS).map(|i| format!("client-{i:06}")).collect()
}

fn ours_keyed(hasher: &KeyHasher, names: &[String]) -> KeyedLimiter<Box<[Slot<Tat>]>> {
    let policy = LimitPolicy::new(BIG_BURST, Duration::from_secs(3600)).unwrap();
    let mut lim = KeyedLimiter::new(vec![Slot::<Tat>::empty(); SLOTS].into_boxed_slice());
    let refused = names
        .iter()
        .filter(|k| {
            !lim.acquire(Instant::ZERO, hasher.hash(k.as_bytes()), &policy, 1)
                .unwrap()
                .is_granted()
        })
        .count();
    println!(
        "ours: {} keys in {SLOTS} slots ({refused} refused as TableFull)",
        lim.len()
    );
    lim
}

fn keyed(c: &mut Criterion, rec: &Recorder) {
    let hasher = KeyHasher::new([0x5a; 16]);
    let names = key_names();
    let hashes: Vec<KeyHash> = names.iter().map(|k| hasher.hash(k.as_bytes())).collect();
    let order = shuffled(KEYS);
    let policy = LimitPolicy::new(BIG_BURST, Duration::from_secs(3600)).unwrap();
    let quota = Quota::per_hour(NonZeroU32::new(BIG_BURST).unwrap());
    let mut g = c.benchmark_group("limiter/keyed_100k");

    let mut lim = ours_keyed(&hasher, &names);
    let mut now = Instant::ZERO;
    let mut cycle = Cycle::new(&order);
    g.bench_function("ours/prehashed", |b| {
        b.iter_custom(|iters| {
            now += Duration::from(REFILL);
            rec.time("keyed/ours/prehashed", iters, || {
                let key = hashes[cycle.next()];
                let _ = black_box(lim.acquire(now, black_box(key), &policy, 1).unwrap());
            })
        })
    });
    g.bench_function("ours/string", |b| {
        b.iter_custom(|iters| {
            now += Duration::from(REFILL);
            rec.time("keyed/ours/string", iters, || {
                let key = hasher.hash(black_box(names[cycle.next()].as_bytes()));
                let _ = black_box(lim.acquire(now, key, &policy, 1).unwrap());
            })
        })
    });
    drop(lim);

    let clock = FakeRelativeClock::default();
    let gov = RateLimiter::dashmap_with_clock(quota, &clock);
    for k in &names {
        let _ = gov.check_key(k);
    }
    g.bench_function("governor/dashmap_string", |b| {
        b.iter_custom(|iters| {
            clock.advance(REFILL);
            rec.time("keyed/governor/string", iters, || {
                let _ = black_box(gov.check_key(black_box(&names[cycle.next()])));
            })
        })
    });
    drop(gov);

    let ids: Vec<u64> = (0..KEYS as u64).collect();
    let gov = RateLimiter::dashmap_with_clock(quota, &clock);
    for k in &ids {
        let _ = gov.check_key(k);
    }
    g.bench_function("governor/dashmap_u64", |b| {
        b.iter_custom(|iters| {
            clock.advance(REFILL);
            rec.time("keyed/governor/u64", iters, || {
                let _ = black_box(gov.check_key(black_box(&ids[cycle.next()])));
            })
        })
    });
    g.finish();
}

fn main() {
    let rec = Recorder::default();
    let mut c = Criterion::default().configure_from_args();
    direct(&mut c, &rec);
    keyed(&mut c, &rec);
    c.final_summary();
    println!();
    rec.compare(
        "direct decision, granted",
        "direct/ours/granted",
        "governor",
        "direct/governor/granted",
    );
    rec.compare(
        "direct decision, denied",
        "direct/ours/denied",
        "governor",
        "direct/governor/denied",
    );
    rec.compare(
        "keyed 100k, string keys (hashing included)",
        "keyed/ours/string",
        "governor",
        "keyed/governor/string",
    );
    rec.compare(
        "keyed 100k, pre-hashed (ours) vs u64 keys (governor)",
        "keyed/ours/prehashed",
        "governor",
        "keyed/governor/u64",
    );
}
