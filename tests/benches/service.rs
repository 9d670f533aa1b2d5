//! The core's request machine against the raw limiter decision under it, in the same run.
//!
//! 1. `service/check`: one `RATE_LIMIT_CHECK` as the daemon serves it, minus the socket:
//!    `Request::parse` of the frame, `Service::handle` (params read, operation looked up, key
//!    hashed, decision, reply written into the reply buffer). The target is ≤ 400 ns.
//! 2. `service/consume`: the same for `RATE_LIMIT_CONSUME` (granted: every bucket is refilled
//!    between samples).
//! 3. `service/parse`: `Request::parse` of the same frames alone, the part of (1) that is the
//!    codec's rather than the service's.
//! 4. `limiter/check_string` and `limiter/check_prehashed`: the decision alone, the same keys in
//!    the same table: `KeyedLimiter::check` after hashing (operation, key) with `KeyHasher`,
//!    and with the hash computed beforehand.
//!
//! Each is run on two working sets, in 147,456 slots (the daemon's default table), visited in a
//! fixed shuffled order, frames built beforehand:
//!
//! - `hot`: 1,024 client keys. Frames, key strings and buckets stay in the CPU's caches, as the
//!   frame a daemon just read from its socket does: this is the machine's own work.
//! - `cold`: 100k client keys. Every request reads a frame, a key string and a bucket that
//!   are not in cache: most of the time is memory latency, on both sides.
//!
//! Each comparison ends with a line `ours X ns, <peer> Y ns, ratio X/Y`, from the medians of
//! criterion's samples (per-iteration time of each timed batch longer than 100 µs).
//!
//! Run: `cargo bench -p heidi-tests --bench service -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::Criterion;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{Operation, PolicyTable, Tat};
use heidi_core::proto::Request;
use heidi_core::service::{REPLY_MAX_BYTES, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use heidi_tests::bench::{Cycle, Recorder, shuffled};

const SLOTS: usize = 147_456;
/// Time jumped between samples so that every bucket is full again (search: 30 per 60 s).
const REFILL: StdDuration = StdDuration::from_secs(120);

fn frames(method: &str, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|k| {
            format!(
                r#"{{"method":"{method}","params":{{"key":"{k}","operation":"search","cost":1}}}}"#
            )
        })
        .collect()
}

fn main() {
    let rec = Recorder::default();
    let mut c = Criterion::default().configure_from_args();
    for (set, keys) in [("hot", 1_024), ("cold", 100_000)] {
        run(&mut c, &rec, set, keys);
    }
    c.final_summary();
    println!();
    for set in ["hot", "cold"] {
        let id = |what: &str| format!("{set}/{what}");
        rec.compare(
            &format!("[{set}] RATE_LIMIT_CHECK (parse + service + reply) vs the limiter's check (hashing included)"),
            &id("service/check"),
            "limiter",
            &id("limiter/check_string"),
        );
        rec.compare(
            &format!("[{set}] RATE_LIMIT_CHECK (parse + service + reply) vs the limiter's check (pre-hashed)"),
            &id("service/check"),
            "limiter",
            &id("limiter/check_prehashed"),
        );
        rec.compare(
            &format!(
                "[{set}] RATE_LIMIT_CHECK (parse + service + reply) vs its frame's parse alone"
            ),
            &id("service/check"),
            "parse",
            &id("service/parse"),
        );
        rec.compare(
            &format!("[{set}] RATE_LIMIT_CONSUME (parse + service + reply) vs the limiter's check (hashing included)"),
            &id("service/consume"),
            "limiter",
            &id("limiter/check_string"),
        );
    }
}

/// The service and the limiter under it, on `keys` client keys; benchmark ids start with `set/`.
fn run(c: &mut Criterion, rec: &Recorder, set: &str, keys: usize) {
    let hasher = KeyHasher::new([0x5a; 16]);
    let names: Vec<String> = (0..keys).map(|i| format!("client-{i:06}")).collect();
    let checks = frames("RATE_LIMIT_CHECK", &names);
    let consumes = frames("RATE_LIMIT_CONSUME", &names);
    let order = shuffled(keys);
    let mut cycle = Cycle::new(&order);
    let slots = vec![Slot::<Tat>::empty(); SLOTS].into_boxed_slice();
    let mut service = Service::new(hasher, PolicyTable::DEFAULT, slots);
    let mut out = Box::new([0u8; REPLY_MAX_BYTES]);
    let mut now = Instant::from_secs(1);
    for frame in &consumes {
        let request = Request::parse(frame).unwrap();
        assert!(matches!(
            service.handle(now, &request, &mut out),
            Served::Reply(_)
        ));
    }
    println!(
        "service [{set}]: {} keys in {SLOTS} slots",
        service.limiter_keys()
    );

    let id = |what: &str| format!("{set}/{what}");
    let mut g = c.benchmark_group(id("service"));
    g.bench_function("check", |b| {
        b.iter_custom(|iters| {
            rec.time(&id("service/check"), iters, || {
                let frame = &checks[cycle.next()];
                let request = Request::parse(black_box(frame)).unwrap();
                let _ = black_box(service.handle(now, &request, &mut out));
            })
        })
    });
    g.bench_function("parse", |b| {
        b.iter_custom(|iters| {
            rec.time(&id("service/parse"), iters, || {
                let frame = &checks[cycle.next()];
                let _ = black_box(Request::parse(black_box(frame)).unwrap());
            })
        })
    });
    g.bench_function("consume", |b| {
        b.iter_custom(|iters| {
            now += Duration::from(REFILL);
            rec.time(&id("service/consume"), iters, || {
                let frame = &consumes[cycle.next()];
                let request = Request::parse(black_box(frame)).unwrap();
                let _ = black_box(service.handle(now, &request, &mut out));
            })
        })
    });
    g.finish();

    // The same table state, decided directly.
    let mut limiter =
        heidi_core::limit::KeyedLimiter::new(vec![Slot::<Tat>::empty(); SLOTS].into_boxed_slice());
    let op = Operation::Search;
    let policy = *PolicyTable::DEFAULT.get(op);
    let hashes: Vec<KeyHash> = names
        .iter()
        .map(|k| op.key(&hasher, k.as_bytes()))
        .collect();
    for &key in &hashes {
        let _ = limiter.acquire(now, key, &policy, 1).unwrap();
    }
    let mut g = c.benchmark_group(id("limiter"));
    g.bench_function("check_string", |b| {
        b.iter_custom(|iters| {
            rec.time(&id("limiter/check_string"), iters, || {
                let key = op.key(&hasher, black_box(names[cycle.next()].as_bytes()));
                let _ = black_box(limiter.check(now, key, &policy, 1).unwrap());
            })
        })
    });
    g.bench_function("check_prehashed", |b| {
        b.iter_custom(|iters| {
            rec.time(&id("limiter/check_prehashed"), iters, || {
                let key = black_box(hashes[cycle.next()]);
                let _ = black_box(limiter.check(now, key, &policy, 1).unwrap());
            })
        })
    });
    g.finish();
}
