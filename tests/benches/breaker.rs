//! Breaker and retry benchmarks: `heidi_core::breaker` and `heidi_core::retry` against
//! `failsafe` 1.x (default features off), measured in the same run.
//!
//! 1. `breaker/closed`: one admitted call in the Closed state, recorded as a success.
//!    Ours: `acquire(now)` + `record(now, permit, Outcome::Success(d))`. Failsafe:
//!    `is_call_permitted()` + `on_success()`, and `CircuitBreaker::call(|| Ok(()))`.
//!    Two configurations, each matched on both sides:
//!    - `consecutive`: trip on 5 consecutive failures only (our default; failsafe
//!      `consecutive_failures(5, constant(60 s))`);
//!    - `rate`: failsafe's default (`Config::new()`: success rate below 80 % over 30 s with at
//!      least 5 requests, or 5 consecutive failures) against ours with the same rule
//!      (failures ≥ 200 ‰ over a 30 s time window, at least 5 calls, or 5 consecutive).
//!
//!    Not like for like in one respect: failsafe's breaker is shared (`&self`, a
//!    `parking_lot` mutex inside) and reads the clock itself where it needs time (its
//!    success-rate window); ours is owned (`&mut self`) and takes `now` as an argument, so a
//!    host that shares one breaker between threads adds its own lock.
//! 2. `retry/schedule`: the delays of a 4-retry schedule with equal jitter. Ours: 4 calls of
//!    `RetryPolicy::next(now, n, random, None)` (EXPENSIVE: 1 s base, 10 s cap), the random
//!    values from an in-loop xorshift (the host's cost of randomness). Failsafe: a fresh
//!    `backoff::equal_jittered(1 s, 10 s)` iterator (cloned) and 4 `next()`, which draw from
//!    `thread_rng`.
//!
//! Each comparison ends with `ours X ns, failsafe Y ns, ratio X/Y`, from the median of the
//! per-iteration time of criterion's timed batches (each longer than 100 µs).
//!
//! Run: `cargo bench -p heidi-tests --bench breaker` (add `-- --warm-up-time 1
//! --measurement-time 3` for a short run).

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::Criterion;
use failsafe::failure_policy::consecutive_failures;
use failsafe::{CircuitBreaker, Config, backoff};
use heidi_core::breaker::{Breaker, BreakerConfig, Outcome, RateTrip, RateWindow};
use heidi_core::retry::{RetryDecision, RetryPolicy};
use heidi_core::{Duration, Instant};
use heidi_tests::bench::{Recorder, fixed3};

/// Ours with failsafe's default rule: ≥ 20 % failures over 30 s (≥ 5 calls), or 5 in a row.
fn rate_config() -> BreakerConfig {
    BreakerConfig {
        rate: Some(RateTrip {
            threshold_permille: 200,
            min_calls: 5,
            window: RateWindow::Time(Duration::from_secs(30)),
        }),
        ..BreakerConfig::DEFAULT
    }
}

/// Times ours: one acquire + record(success) per iteration, time advancing 1 µs per call.
fn bench_ours(c: &mut Criterion, rec: &Recorder, name: &str, config: BreakerConfig) {
    let mut breaker = Breaker::new(config).unwrap();
    let mut now = Instant::from_secs(1);
    let took = Outcome::Success(Duration::from_millis(2));
    let id = format!("closed/ours/{name}");
    c.bench_function(&format!("breaker/{id}"), |b| {
        b.iter_custom(|iters| {
            rec.time(&id, iters, || {
                now += Duration::from_micros(1);
                let permit = breaker.acquire(black_box(now)).unwrap();
                black_box(breaker.record(now, permit, black_box(took)));
            })
        })
    });
}

/// Times failsafe: `is_call_permitted` + `on_success`, and `call`.
fn bench_failsafe<B: CircuitBreaker>(
    c: &mut Criterion,
    rec: &Recorder,
    name: &str,
    on_success: impl Fn(&B),
    cb: &B,
) {
    let id = format!("closed/failsafe/{name}");
    c.bench_function(&format!("breaker/{id}"), |b| {
        b.iter_custom(|iters| {
            rec.time(&id, iters, || {
                assert!(black_box(cb.is_call_permitted()));
                on_success(cb);
            })
        })
    });
    let id = format!("closed/failsafe_call/{name}");
    c.bench_function(&format!("breaker/{id}"), |b| {
        b.iter_custom(|iters| {
            rec.time(&id, iters, || {
                let r: Result<(), failsafe::Error<()>> = cb.call(|| Ok(()));
                black_box(r).unwrap();
            })
        })
    });
}

fn closed(c: &mut Criterion, rec: &Recorder) {
    bench_ours(c, rec, "consecutive", BreakerConfig::DEFAULT);
    let policy = consecutive_failures(5, backoff::constant(StdDuration::from_secs(60)));
    let cb = Config::new().failure_policy(policy).build();
    bench_failsafe(c, rec, "consecutive", |cb| cb.on_success(), &cb);

    bench_ours(c, rec, "rate", rate_config());
    let cb = Config::new().build();
    bench_failsafe(c, rec, "rate", |cb| cb.on_success(), &cb);
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn retry(c: &mut Criterion, rec: &Recorder) {
    let policy = RetryPolicy::EXPENSIVE.with_jitter(heidi_core::retry::Jitter::Equal);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let now = Instant::from_secs(100);
    c.bench_function("retry/schedule/ours", |b| {
        b.iter_custom(|iters| {
            rec.time("retry/ours", iters, || {
                for n in 1..=4 {
                    let d = policy.next(black_box(now), n, xorshift(&mut seed), None);
                    assert!(matches!(black_box(d), RetryDecision::RetryAt(_)));
                }
            })
        })
    });
    let proto = backoff::equal_jittered(StdDuration::from_secs(1), StdDuration::from_secs(10));
    c.bench_function("retry/schedule/failsafe", |b| {
        b.iter_custom(|iters| {
            rec.time("retry/failsafe", iters, || {
                let mut it = black_box(&proto).clone();
                for _ in 0..4 {
                    black_box(it.next().unwrap());
                }
            })
        })
    });
}

fn main() {
    let rec = Recorder::default();
    let mut c = Criterion::default().configure_from_args();
    closed(&mut c, &rec);
    retry(&mut c, &rec);
    c.final_summary();
    println!();
    let ours = "closed/ours/consecutive";
    rec.compare(
        "closed acquire+record, consecutive rule (vs is_call_permitted+on_success)",
        ours,
        "failsafe",
        "closed/failsafe/consecutive",
    );
    let peer = "closed/failsafe_call/consecutive";
    rec.compare(
        "closed acquire+record, consecutive rule (vs call)",
        ours,
        "failsafe",
        peer,
    );
    rec.compare(
        "closed acquire+record, rate rule over 30 s (vs is_call_permitted+on_success)",
        "closed/ours/rate",
        "failsafe",
        "closed/failsafe/rate",
    );
    let peer = "closed/failsafe_call/rate";
    rec.compare(
        "closed acquire+record, rate rule (vs call)",
        "closed/ours/rate",
        "failsafe",
        peer,
    );
    rec.compare(
        "retry schedule, 4 jittered delays",
        "retry/ours",
        "failsafe",
        "retry/failsafe",
    );
    if let Some(ps) = rec.median_ps(ours) {
        let verdict = if ps <= 10_000 { "met" } else { "missed" };
        println!(
            "target ≤ 10 ns for acquire + record: {verdict} ({} ns)",
            fixed3(ps, 1_000)
        );
    }
}
