//! Unit tests of [`Breaker::reconfigure`]: the state is kept, permits turn stale, the open
//! period never grows, and windows reset only when their shape changes.

use super::*;
use crate::time::{Duration, Instant};

const FAIL: Outcome = Outcome::Failure(Duration::from_millis(1));
const OK: Outcome = Outcome::Success(Duration::from_millis(1));

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn call(b: &mut Breaker, now: Instant, outcome: Outcome) -> Recorded {
    let permit = b.acquire(now).expect("admitted");
    b.record(now, permit, outcome)
}

fn config(failure_threshold: u32, reset_ms: u64) -> BreakerConfig {
    BreakerConfig {
        failure_threshold,
        reset_timeout: Duration::from_millis(reset_ms),
        reset_timeout_max: Duration::from_millis(reset_ms.max(600_000)),
        ..BreakerConfig::DEFAULT
    }
}

/// Tripped at `t(0)` and drained of events.
fn tripped(c: BreakerConfig) -> Breaker {
    let mut b = Breaker::new(c).unwrap();
    for _ in 0..c.failure_threshold {
        call(&mut b, t(0), FAIL);
    }
    assert_eq!(b.state(), State::Open);
    while b.poll_event().is_some() {}
    b
}

#[test]
fn an_open_breaker_stays_open_under_a_new_probe_timeout() {
    // The daemon repro: threshold 2, open 10 min, then the same plus probe_timeout 1 s.
    let old = config(2, 600_000);
    let mut b = tripped(old);
    let new = BreakerConfig {
        probe_timeout: Duration::from_secs(1),
        ..old
    };
    assert_eq!(b.reconfigure(t(5), new), Ok(()));
    assert_eq!(b.config(), &new);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.open_until(), Some(t(600_000)), "the deadline is kept");
    assert_eq!(b.acquire(t(6)), Err(Rejected { until: t(600_000) }));
    assert_eq!(b.poll_event(), None, "no transition");
    b.handle_timeout(t(600_000));
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn the_open_period_shrinks_to_the_new_reset_timeout_but_never_grows() {
    let mut b = tripped(config(2, 600_000));
    assert_eq!(b.reconfigure(t(10_000), config(2, 5_000)), Ok(()));
    assert_eq!(b.open_until(), Some(t(15_000)), "min(600 s, 10 s + 5 s)");
    assert_eq!(b.reconfigure(t(11_000), config(2, 900_000)), Ok(()));
    assert_eq!(
        b.open_until(),
        Some(t(15_000)),
        "a longer timeout does not extend it"
    );
    assert_eq!(b.poll_timeout(), Some(t(15_000)));
    assert_eq!(b.poll_event(), None);
    b.handle_timeout(t(15_000));
    let e = b.poll_event().unwrap();
    assert_eq!(
        (e.from, e.to, e.at),
        (State::Open, State::HalfOpen, t(15_000))
    );
}

#[test]
fn an_overdue_open_period_is_left_to_the_next_call() {
    let mut b = tripped(config(2, 1_000));
    assert_eq!(b.reconfigure(t(5_000), config(3, 1_000)), Ok(()));
    assert_eq!((b.state(), b.poll_event()), (State::Open, None));
    assert!(b.acquire(t(5_000)).is_ok(), "the next call half-opens it");
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn the_open_time_keeps_the_trip_backoff() {
    let c = BreakerConfig {
        reset_backoff: 2,
        ..config(1, 1_000)
    };
    let mut b = tripped(c);
    b.handle_timeout(t(1_000));
    call(&mut b, t(1_000), FAIL); // second trip: open 2 s, until 3 s
    assert_eq!(b.open_until(), Some(t(3_000)));
    let shorter = BreakerConfig {
        reset_timeout: Duration::from_millis(100),
        ..c
    };
    assert_eq!(b.reconfigure(t(1_000), shorter), Ok(()));
    assert_eq!(
        b.open_until(),
        Some(t(1_200)),
        "100 ms × 2 for the second trip"
    );
}

#[test]
fn half_open_stays_half_open_and_its_probes_turn_stale() {
    let c = config(1, 1_000);
    let mut b = tripped(c);
    let probe = b.acquire(t(1_000)).expect("probe");
    assert!(probe.is_probe());
    while b.poll_event().is_some() {}
    let two_probes = BreakerConfig {
        half_open_max_probes: 2,
        ..c
    };
    assert_eq!(b.reconfigure(t(1_001), two_probes), Ok(()));
    assert_eq!((b.state(), b.probes_in_flight()), (State::HalfOpen, 0));
    assert_eq!(b.poll_timeout(), None, "no probe deadline left");
    assert_eq!(b.record(t(1_002), probe, FAIL), Recorded::Stale);
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "a stale failure does not re-open"
    );
    let p1 = b.acquire(t(1_003)).expect("probe 1");
    let p2 = b.acquire(t(1_003)).expect("probe 2 under the new limit");
    assert!(b.acquire(t(1_003)).is_err());
    b.abandon(t(1_004), p2);
    assert_eq!(b.record(t(1_004), p1, OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn closed_keeps_its_failures_capped_below_the_new_threshold() {
    let mut b = Breaker::new(config(5, 1_000)).unwrap();
    for _ in 0..3 {
        call(&mut b, t(0), FAIL);
    }
    assert_eq!(b.reconfigure(t(1), config(10, 1_000)), Ok(()));
    assert_eq!((b.state(), b.consecutive_failures()), (State::Closed, 3));
    assert_eq!(b.reconfigure(t(1), config(2, 1_000)), Ok(()));
    assert_eq!((b.state(), b.consecutive_failures()), (State::Closed, 1));
    assert_eq!(b.poll_event(), None);
    call(&mut b, t(2), FAIL);
    assert_eq!(b.state(), State::Open, "the next failure trips");
}

#[test]
fn outstanding_permits_turn_stale_unless_the_config_is_unchanged() {
    let c = config(2, 1_000);
    let mut b = Breaker::new(c).unwrap();
    let kept = b.acquire(t(0)).unwrap();
    assert_eq!(b.reconfigure(t(0), c), Ok(()), "identical: changes nothing");
    assert_eq!(b.record(t(0), kept, FAIL), Recorded::Counted);
    let old = b.acquire(t(0)).unwrap();
    assert_eq!(b.reconfigure(t(0), config(3, 1_000)), Ok(()));
    assert_eq!(b.record(t(0), old, FAIL), Recorded::Stale);
    assert_eq!(b.consecutive_failures(), 1);
}

#[test]
fn the_rate_window_is_kept_only_when_its_shape_is_unchanged() {
    let rate = |threshold_permille, window| BreakerConfig {
        failure_threshold: 0,
        rate: Some(RateTrip {
            threshold_permille,
            min_calls: 4,
            window,
        }),
        ..BreakerConfig::DEFAULT
    };
    let last4 = RateWindow::LastCalls(4);
    let mut b = Breaker::new(rate(1_000, last4)).unwrap();
    for outcome in [FAIL, FAIL, OK] {
        call(&mut b, t(0), outcome);
    }
    // Same window, lower threshold: the three calls are kept; 2 of 4 failed = 50 %.
    assert_eq!(b.reconfigure(t(0), rate(500, last4)), Ok(()));
    call(&mut b, t(0), OK);
    assert_eq!(b.state(), State::Open, "the kept calls counted");

    let mut b = Breaker::new(rate(1_000, last4)).unwrap();
    for outcome in [FAIL, FAIL, OK] {
        call(&mut b, t(0), outcome);
    }
    // Another size: the window starts empty, so one more call is below min_calls.
    assert_eq!(
        b.reconfigure(t(0), rate(500, RateWindow::LastCalls(5))),
        Ok(())
    );
    call(&mut b, t(0), FAIL);
    assert_eq!(b.state(), State::Closed, "the old calls were dropped");
    // Another kind: empty again.
    let time = RateWindow::Time(Duration::from_secs(10));
    assert_eq!(b.reconfigure(t(0), rate(500, time)), Ok(()));
    for _ in 0..3 {
        call(&mut b, t(0), FAIL);
    }
    assert_eq!(b.state(), State::Closed);
    call(&mut b, t(0), FAIL);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn an_invalid_config_is_refused_and_changes_nothing() {
    let c = config(2, 1_000);
    let mut b = Breaker::new(c).unwrap();
    let permit = b.acquire(t(0)).unwrap();
    let bad = BreakerConfig {
        probe_timeout: Duration::ZERO,
        ..c
    };
    assert_eq!(
        b.reconfigure(t(0), bad),
        Err(BreakerConfigError::ZeroProbeTimeout)
    );
    assert_eq!(b.config(), &c);
    assert_eq!(
        b.record(t(0), permit, FAIL),
        Recorded::Counted,
        "same generation"
    );
}

#[test]
fn admin_modes_are_kept() {
    let mut b = Breaker::new(config(2, 1_000)).unwrap();
    b.force_open(t(0));
    assert_eq!(b.reconfigure(t(1), config(3, 10)), Ok(()));
    assert_eq!(b.state(), State::ForcedOpen);
    assert_eq!(
        b.acquire(t(5_000)),
        Err(Rejected {
            until: Instant::MAX
        })
    );
    b.disable(t(2));
    while b.poll_event().is_some() {}
    assert_eq!(b.reconfigure(t(3), config(4, 10)), Ok(()));
    assert_eq!((b.state(), b.poll_event()), (State::Disabled, None));
}

/// xorshift64: a deterministic stream for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random configuration, valid or not.
fn random_config(r: &mut Rng) -> BreakerConfig {
    let reset = 1 + r.below(5_000);
    let rate = match r.below(3) {
        0 => None,
        1 => Some(RateTrip {
            threshold_permille: 1 + r.below(1_000) as u16,
            min_calls: 1 + r.below(4) as u32,
            window: RateWindow::LastCalls(4 + r.below(3) as u8),
        }),
        _ => Some(RateTrip {
            threshold_permille: 1 + r.below(1_000) as u16,
            min_calls: 1 + r.below(4) as u32,
            window: RateWindow::Time(Duration::from_millis(100 + r.below(3) * 100)),
        }),
    };
    BreakerConfig {
        failure_threshold: r.below(4) as u32,
        rate,
        slow_call_threshold: None,
        reset_timeout: Duration::from_millis(reset),
        reset_backoff: 1 + r.below(3) as u32,
        reset_timeout_max: Duration::from_millis(reset + r.below(20_000)),
        half_open_max_probes: 1 + r.below(3) as u8,
        success_threshold: 1 + r.below(2) as u8,
        probe_timeout: Duration::from_millis(r.below(2_000)),
    }
}

#[test]
fn property_reconfigure_never_changes_the_state_on_its_own() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut checked, mut refused, mut open) = (0, 0, 0);
    for _ in 0..300 {
        let start = loop {
            let c = random_config(&mut r);
            if c.validate().is_ok() {
                break c;
            }
        };
        let mut b = Breaker::new(start).unwrap();
        let mut now = 0;
        let mut held: heapless::Vec<Permit, 8> = heapless::Vec::new();
        for _ in 0..60 {
            now += r.below(700);
            match r.below(6) {
                0 | 1 => {
                    if let Ok(p) = b.acquire(t(now)) {
                        if let Err(p) = held.push(p) {
                            b.abandon(t(now), p);
                        }
                    }
                }
                2 => {
                    if let Some(p) = held.pop() {
                        let outcome = if r.below(3) == 0 { OK } else { FAIL };
                        let _ = b.record(t(now), p, outcome);
                    }
                }
                3 => b.handle_timeout(t(now)),
                4 => {
                    if r.below(10) == 0 {
                        b.reset(t(now));
                    }
                }
                _ => {
                    while b.poll_event().is_some() {}
                    let new = random_config(&mut r);
                    let (state, until) = (b.state(), b.open_until());
                    let (config, failures) = (*b.config(), b.consecutive_failures());
                    let result = b.reconfigure(t(now), new);
                    assert_eq!(result, new.validate(), "refused exactly when invalid");
                    assert_eq!(b.state(), state, "state kept");
                    assert_eq!(b.poll_event(), None, "no transition queued");
                    match result {
                        Ok(()) => {
                            assert_eq!(b.config(), &new);
                            let later =
                                matches!((b.open_until(), until), (Some(a), Some(c)) if a > c);
                            assert!(!later, "the open period never grows");
                            assert!(b.consecutive_failures() <= failures);
                            if new != config {
                                while let Some(p) = held.pop() {
                                    assert_eq!(b.record(t(now), p, FAIL), Recorded::Stale);
                                }
                            }
                            open += (state == State::Open) as u32;
                            checked += 1;
                        }
                        Err(_) => {
                            assert_eq!((b.config(), b.open_until()), (&config, until));
                            refused += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 500 && refused > 100 && open > 50,
        "{checked} {refused} {open}"
    );
}
