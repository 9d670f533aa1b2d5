//! Operation sequences against a circuit breaker. Invariants: half-open probes never exceed
//! the configured maximum, a rejection always says a future instant, and every transition
//! made without an admin call follows an automatic edge (Closed→Open, Open→HalfOpen,
//! HalfOpen→Closed, HalfOpen→Open).
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::breaker::{Breaker, BreakerConfig, Outcome, Permit, State};
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u32),
    Acquire,
    Succeed { which: u8, took_ms: u16 },
    Fail { which: u8 },
    Abandon { which: u8 },
    Timeout,
    ForceOpen,
    Disable,
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Run {
    threshold: u8,
    probes: u8,
    reset_s: u8,
    slow_ms: Option<u16>,
    ops: Vec<Op>,
}

fn automatic(from: State, to: State) -> bool {
    matches!(
        (from, to),
        (State::Closed, State::Open)
            | (State::Open, State::HalfOpen)
            | (State::HalfOpen, State::Closed)
            | (State::HalfOpen, State::Open)
    )
}

fuzz_target!(|run: Run| {
    let config = BreakerConfig {
        failure_threshold: u32::from(run.threshold.clamp(1, 20)),
        half_open_max_probes: run.probes.clamp(1, 4),
        reset_timeout: Duration::from_secs(u64::from(run.reset_s.max(1))),
        slow_call_threshold: run
            .slow_ms
            .map(|ms| Duration::from_millis(u64::from(ms.max(1)))),
        ..BreakerConfig::DEFAULT
    };
    let Ok(mut breaker) = Breaker::new(config) else {
        return;
    };
    let mut now = Instant::from_secs(1);
    let mut permits: Vec<Permit> = Vec::new();
    for op in run.ops.iter().take(3_000) {
        let mut admin = false;
        match *op {
            Op::Advance(ms) => now += Duration::from_millis(u64::from(ms % 200_000)),
            Op::Acquire => match breaker.acquire(now) {
                Ok(p) => permits.push(p),
                Err(rejected) => assert!(rejected.until > now, "rejection says a future time"),
            },
            Op::Succeed { which, took_ms } if !permits.is_empty() => {
                let p = permits.remove(usize::from(which) % permits.len());
                let took = Duration::from_millis(u64::from(took_ms));
                let _ = breaker.record(now, p, Outcome::Success(took));
            }
            Op::Fail { which } if !permits.is_empty() => {
                let p = permits.remove(usize::from(which) % permits.len());
                let _ = breaker.record(now, p, Outcome::Failure(Duration::from_millis(1)));
            }
            Op::Abandon { which } if !permits.is_empty() => {
                let p = permits.remove(usize::from(which) % permits.len());
                breaker.abandon(now, p);
            }
            Op::Timeout => {
                if let Some(t) = breaker.poll_timeout() {
                    now = now.max(t);
                    breaker.handle_timeout(now);
                }
            }
            Op::ForceOpen => (admin = true, breaker.force_open(now)).1,
            Op::Disable => (admin = true, breaker.disable(now)).1,
            Op::Reset => (admin = true, breaker.reset(now)).1,
            _ => {}
        }
        assert!(breaker.probes_in_flight() <= usize::from(config.half_open_max_probes));
        while let Some(t) = breaker.poll_event() {
            assert!(
                admin || automatic(t.from, t.to),
                "illegal edge {:?} -> {:?}",
                t.from,
                t.to
            );
        }
    }
});
