//! Operation sequences against the keyed limiter. Invariants: over any prefix of the run, a
//! key is granted no more than capacity + capacity × elapsed / window tokens (policy fixed per
//! run), a denial's `retry_at` is in the future, and the table's invariants hold.
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::key::KeyHash;
use heidi_core::limit::{ArrayLimiter, KeyedAcquire, LimitPolicy};
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u32),
    Acquire { key: u8, cost: u8 },
    Check { key: u8, cost: u8 },
    Sweep { cursor: u8, max: u8 },
}

#[derive(Arbitrary, Debug)]
struct Run {
    capacity: u8,
    window_ms: u16,
    ops: Vec<Op>,
}

fuzz_target!(|run: Run| {
    let capacity = u32::from(run.capacity.max(1));
    let window = Duration::from_millis(u64::from(run.window_ms.max(1)));
    let policy = LimitPolicy::new(capacity, window).expect("valid policy");
    let mut limiter = ArrayLimiter::<32>::new_array();
    let start = Instant::from_secs(1);
    let mut now = start;
    let mut granted = [0u64; 256];
    for op in run.ops.iter().take(2_000) {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(u64::from(us)),
            Op::Acquire { key, cost } => {
                let k = KeyHash::from_raw(u64::from(key) + 1);
                match limiter.acquire(now, k, &policy, u32::from(cost)) {
                    Ok(KeyedAcquire::Granted { remaining }) => {
                        assert!(remaining < capacity || cost == 0);
                        granted[usize::from(key)] += u64::from(cost);
                    }
                    Ok(KeyedAcquire::Denied { retry_at }) => assert!(retry_at > now),
                    Ok(KeyedAcquire::TableFull { retry_at }) => assert!(retry_at > now),
                    Err(e) => assert!(e.cost_tokens > capacity),
                }
            }
            Op::Check { key, cost } => {
                let k = KeyHash::from_raw(u64::from(key) + 1);
                let _ = limiter.check(now, k, &policy, u32::from(cost));
            }
            Op::Sweep { cursor, max } => {
                let _ = limiter.sweep(now, usize::from(cursor), usize::from(max));
            }
        }
        let elapsed = now.saturating_duration_since(start).as_micros();
        let bound = u64::from(capacity) + u64::from(capacity) * elapsed / window.as_micros();
        assert!(
            granted.iter().all(|&g| g <= bound),
            "granted above the rate bound"
        );
        assert!(limiter.len() <= limiter.capacity());
    }
    limiter.assert_invariants();
});
