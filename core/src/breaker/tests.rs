//! Unit tests of the breaker: every transition, every error path.

use super::*;
use crate::time::{Duration, Instant};
use core::fmt::Write;

const MS: fn(u64) -> Duration = Duration::from_millis;
const FAIL: Outcome = Outcome::Failure(Duration::from_millis(1));
const OK: Outcome = Outcome::Success(Duration::from_millis(1));

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn breaker(config: BreakerConfig) -> Breaker {
    Breaker::new(config).unwrap()
}

fn call(b: &mut Breaker, now: Instant, outcome: Outcome) -> Recorded {
    let permit = b.acquire(now).expect("admitted");
    b.record(now, permit, outcome)
}

fn events(b: &mut Breaker) -> heapless::Vec<(State, State, Instant), 8> {
    core::iter::from_fn(|| b.poll_event())
        .map(|e| (e.from, e.to, e.at))
        .collect()
}

/// A breaker tripped at `t(0)` with the default 5 failures (open until 60 s).
fn tripped(config: BreakerConfig) -> Breaker {
    let mut b = breaker(config);
    for _ in 0..config.failure_threshold {
        assert_eq!(call(&mut b, t(0), FAIL), Recorded::Counted);
    }
    assert_eq!(b.state(), State::Open);
    let _ = events(&mut b);
    b
}

fn render(x: impl core::fmt::Display) -> heapless::String<128> {
    let mut s = heapless::String::new();
    write!(s, "{x}").unwrap();
    s
}

#[test]
fn defaults_follow_the_design() {
    let c = BreakerConfig::default();
    assert_eq!(c, BreakerConfig::DEFAULT);
    assert_eq!(c.failure_threshold, 5);
    assert_eq!(c.reset_timeout, Duration::from_secs(60));
    assert_eq!((c.half_open_max_probes, c.success_threshold), (1, 1));
    assert_eq!((c.rate, c.slow_call_threshold), (None, None));
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(RateTrip::DEFAULT.validate(), Ok(()));
    let b = breaker(c);
    assert_eq!(
        (b.state(), b.open_until(), b.poll_timeout()),
        (State::Closed, None, None)
    );
}

#[test]
fn five_consecutive_failures_trip_and_a_success_resets_the_count() {
    let mut b = breaker(BreakerConfig::DEFAULT);
    for _ in 0..4 {
        call(&mut b, t(0), FAIL);
    }
    assert_eq!(b.consecutive_failures(), 4);
    call(&mut b, t(1), OK);
    assert_eq!(b.consecutive_failures(), 0);
    for _ in 0..4 {
        call(&mut b, t(2), FAIL);
    }
    assert_eq!(b.state(), State::Closed);
    call(&mut b, t(3), FAIL);
    assert_eq!(b.state(), State::Open);
    assert_eq!(events(&mut b), [(State::Closed, State::Open, t(3))]);
    assert_eq!(b.open_until(), Some(t(60_003)));
}

#[test]
fn open_rejects_until_the_reset_timeout_then_half_opens_on_time() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    assert_eq!(b.acquire(t(1)), Err(Rejected { until: t(60_000) }));
    assert_eq!(b.poll_timeout(), Some(t(60_000)));
    b.handle_timeout(t(59_999));
    assert_eq!(b.state(), State::Open);
    // No call arrives: the timeout alone half-opens the breaker.
    b.handle_timeout(t(60_000));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(events(&mut b), [(State::Open, State::HalfOpen, t(60_000))]);
    assert_eq!((b.open_until(), b.poll_timeout()), (None, None));
}

#[test]
fn acquire_applies_a_due_half_open_first() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    let probe = b.acquire(t(70_000)).unwrap();
    assert!(probe.is_probe());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.probes_in_flight(), 1);
    assert_eq!(b.record(t(70_001), probe, OK), Recorded::Counted);
    assert_eq!(
        events(&mut b),
        [
            (State::Open, State::HalfOpen, t(70_000)),
            (State::HalfOpen, State::Closed, t(70_001))
        ]
    );
}

#[test]
fn half_open_admits_only_the_configured_probes() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    let probe = b.acquire(t(60_000)).unwrap();
    // The slot frees at the probe's deadline at the latest.
    assert_eq!(b.acquire(t(60_001)), Err(Rejected { until: t(90_000) }));
    assert_eq!(b.poll_timeout(), Some(t(90_000)));
    assert_eq!(b.record(t(60_002), probe, OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);

    let config = BreakerConfig {
        half_open_max_probes: 3,
        success_threshold: 2,
        ..BreakerConfig::DEFAULT
    };
    let mut b = tripped(config);
    let p1 = b.acquire(t(60_000)).unwrap();
    let p2 = b.acquire(t(60_010)).unwrap();
    let p3 = b.acquire(t(60_020)).unwrap();
    assert_eq!(b.acquire(t(60_030)), Err(Rejected { until: t(90_000) }));
    assert_eq!(b.probes_in_flight(), 3);
    assert_eq!(b.record(t(60_040), p1, OK), Recorded::Counted);
    assert_eq!(b.poll_timeout(), Some(t(90_010)));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.record(t(60_050), p3, OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.record(t(60_060), p2, FAIL), Recorded::Stale);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn a_failed_probe_reopens_with_backoff_capped_and_reset_on_close() {
    let config = BreakerConfig {
        reset_backoff: 2,
        reset_timeout_max: Duration::from_secs(150),
        ..BreakerConfig::DEFAULT
    };
    let mut b = tripped(config);
    let mut now = 60_000;
    for open_ms in [120_000, 150_000, 150_000] {
        assert_eq!(call(&mut b, t(now), FAIL), Recorded::Counted);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.open_until(), Some(t(now + open_ms)));
        now += open_ms;
    }
    assert_eq!(call(&mut b, t(now), OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);
    for _ in 0..5 {
        call(&mut b, t(now), FAIL);
    }
    assert_eq!(b.open_until(), Some(t(now + 60_000)), "backoff restarts");
}

#[test]
fn a_probe_that_never_reports_times_out_as_a_failure() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    let lost = b.acquire(t(60_000)).unwrap();
    let _ = events(&mut b);
    assert_eq!(b.poll_timeout(), Some(t(90_000)));
    b.handle_timeout(t(89_999));
    assert_eq!(b.state(), State::HalfOpen);
    b.handle_timeout(t(90_000));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.open_until(), Some(t(150_000)));
    assert_eq!(events(&mut b), [(State::HalfOpen, State::Open, t(90_000))]);
    // Its late report is stale and does not close the breaker.
    assert_eq!(b.record(t(90_001), lost, OK), Recorded::Stale);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_late_probe_report_is_stale_even_without_handle_timeout() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    let late = b.acquire(t(60_000)).unwrap();
    assert_eq!(b.record(t(90_000), late, OK), Recorded::Stale);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.open_until(), Some(t(150_000)));
}

#[test]
fn abandon_frees_a_probe_slot_without_counting() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    let probe = b.acquire(t(60_000)).unwrap();
    b.abandon(t(60_000), probe);
    assert_eq!((b.state(), b.probes_in_flight()), (State::HalfOpen, 0));
    assert_eq!(b.poll_timeout(), None);
    let again = b.acquire(t(60_001)).unwrap();
    assert_eq!(b.record(t(60_002), again, OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);
    // In Closed, and for stale permits, abandon changes nothing.
    let p = b.acquire(t(60_003)).unwrap();
    b.abandon(t(60_003), p);
    assert_eq!((b.state(), b.consecutive_failures()), (State::Closed, 0));
}

#[test]
fn stale_permits_do_not_corrupt_the_new_state() {
    let mut b = breaker(BreakerConfig::DEFAULT);
    let old: heapless::Vec<Permit, 8> = (0..8).map(|_| b.acquire(t(0)).unwrap()).collect();
    for _ in 0..5 {
        call(&mut b, t(1), FAIL);
    }
    b.handle_timeout(t(60_001));
    let probe = b.acquire(t(60_001)).unwrap();
    let mut old = old.into_iter();
    // A closed-state failure must not re-open the half-open breaker, nor a success close it.
    assert_eq!(
        b.record(t(60_002), old.next().unwrap(), FAIL),
        Recorded::Stale
    );
    assert_eq!(
        b.record(t(60_002), old.next().unwrap(), OK),
        Recorded::Stale
    );
    b.abandon(t(60_002), old.next().unwrap());
    assert_eq!((b.state(), b.probes_in_flight()), (State::HalfOpen, 1));
    assert_eq!(b.record(t(60_003), probe, OK), Recorded::Counted);
    // Nor count in the next Closed period.
    for p in old {
        assert_eq!(b.record(t(60_004), p, FAIL), Recorded::Stale);
    }
    assert_eq!((b.state(), b.consecutive_failures()), (State::Closed, 0));
}

#[test]
fn slow_successes_count_as_failures() {
    let config = BreakerConfig {
        slow_call_threshold: Some(MS(500)),
        ..BreakerConfig::DEFAULT
    };
    let mut b = breaker(config);
    call(&mut b, t(0), Outcome::Success(MS(499)));
    assert_eq!(b.consecutive_failures(), 0);
    for _ in 0..5 {
        call(&mut b, t(0), Outcome::Success(MS(500)));
    }
    assert_eq!(b.state(), State::Open);
    // A slow probe re-opens, too.
    assert_eq!(
        call(&mut b, t(60_000), Outcome::Success(MS(900))),
        Recorded::Counted
    );
    assert_eq!(b.state(), State::Open);
    // Without the option a slow success is a success.
    let mut b = breaker(BreakerConfig::DEFAULT);
    call(&mut b, t(0), FAIL);
    call(&mut b, t(0), Outcome::Success(Duration::MAX));
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn failure_rate_over_the_last_calls_trips() {
    let config = BreakerConfig {
        failure_threshold: 0,
        rate: Some(RateTrip {
            threshold_permille: 500,
            min_calls: 10,
            window: RateWindow::LastCalls(10),
        }),
        ..BreakerConfig::DEFAULT
    };
    let mut b = breaker(config);
    // Alternating results: never 5 in a row, but 50 % once 10 calls are in.
    for i in 0..9 {
        call(&mut b, t(i), if i % 2 == 1 { FAIL } else { OK });
        assert_eq!(b.state(), State::Closed, "call {i}");
    }
    call(&mut b, t(9), OK);
    assert_eq!(b.state(), State::Closed, "4 failures of 10");
    call(&mut b, t(10), FAIL);
    assert_eq!(b.state(), State::Open, "5 of the last 10");
    // After closing again the window starts empty.
    call(&mut b, t(60_010), OK);
    for i in 0..9 {
        call(&mut b, t(60_011), FAIL);
        assert_eq!(b.state(), State::Closed, "call {i} below min_calls");
    }
}

#[test]
fn failure_rate_over_time_trips_and_forgets_old_buckets() {
    let config = BreakerConfig {
        rate: Some(RateTrip {
            threshold_permille: 500,
            min_calls: 3,
            window: RateWindow::Time(Duration::from_secs(10)),
        }),
        ..BreakerConfig::DEFAULT
    };
    let mut b = breaker(config);
    for _ in 0..3 {
        call(&mut b, t(0), OK);
    }
    call(&mut b, t(5_000), FAIL);
    call(&mut b, t(5_000), FAIL);
    call(&mut b, t(9_999), OK);
    assert_eq!(b.state(), State::Closed, "2 of 6 failed");
    // At 10 s the first bucket (3 successes) has left: 3 failures of 4, not 3 of 7.
    call(&mut b, t(10_000), FAIL);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.consecutive_failures(), 1, "not the consecutive rule");
}

#[test]
fn forced_open_rejects_until_reset() {
    let mut b = breaker(BreakerConfig::DEFAULT);
    let before = b.acquire(t(0)).unwrap();
    b.force_open(t(1));
    assert_eq!(
        b.acquire(t(2)),
        Err(Rejected {
            until: Instant::MAX
        })
    );
    assert_eq!(
        b.acquire(Instant::MAX),
        Err(Rejected {
            until: Instant::MAX
        })
    );
    assert_eq!(
        (b.open_until(), b.poll_timeout()),
        (Some(Instant::MAX), None)
    );
    assert_eq!(b.record(t(3), before, OK), Recorded::Stale);
    b.reset(t(4));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        events(&mut b),
        [
            (State::Closed, State::ForcedOpen, t(1)),
            (State::ForcedOpen, State::Closed, t(4))
        ]
    );
}

#[test]
fn disabled_lets_everything_through_and_counts_nothing() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    b.disable(t(1));
    for _ in 0..100 {
        assert_eq!(call(&mut b, t(2), FAIL), Recorded::Ignored);
    }
    assert_eq!((b.state(), b.open_until()), (State::Disabled, None));
    b.force_open(t(3));
    b.disable(t(4));
    b.reset(t(5));
    assert_eq!(
        events(&mut b),
        [
            (State::Open, State::Disabled, t(1)),
            (State::Disabled, State::ForcedOpen, t(3)),
            (State::ForcedOpen, State::Disabled, t(4)),
            (State::Disabled, State::Closed, t(5)),
        ]
    );
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn admin_changes_to_the_current_state_are_silent_but_start_a_new_generation() {
    let mut b = breaker(BreakerConfig::DEFAULT);
    call(&mut b, t(0), FAIL);
    let permit = b.acquire(t(0)).unwrap();
    b.reset(t(1));
    assert_eq!(b.consecutive_failures(), 0, "reset clears counts");
    assert_eq!(b.record(t(1), permit, FAIL), Recorded::Stale);
    assert_eq!(b.consecutive_failures(), 0);
    b.force_open(t(2));
    b.force_open(t(3));
    b.disable(t(4));
    b.disable(t(5));
    assert_eq!(events(&mut b).len(), 2);
}

#[test]
fn reset_from_open_and_half_open_closes() {
    let mut b = tripped(BreakerConfig::DEFAULT);
    b.reset(t(1));
    assert_eq!(b.state(), State::Closed);
    let mut b = tripped(BreakerConfig::DEFAULT);
    let probe = b.acquire(t(60_000)).unwrap();
    b.reset(t(60_001));
    assert_eq!((b.state(), b.probes_in_flight()), (State::Closed, 0));
    assert_eq!(b.record(t(60_002), probe, FAIL), Recorded::Stale);
}

#[test]
fn an_undrained_event_queue_drops_and_counts_the_oldest() {
    let mut b = breaker(BreakerConfig::DEFAULT);
    for i in 0..3 {
        b.force_open(t(i * 2));
        b.disable(t(i * 2 + 1));
    }
    assert_eq!(b.dropped_events(), 2);
    let kept = events(&mut b);
    assert_eq!(kept.len(), EVENT_CAPACITY);
    assert_eq!(kept[0], (State::Disabled, State::ForcedOpen, t(2)));
    assert_eq!(kept[3], (State::ForcedOpen, State::Disabled, t(5)));
    assert_eq!(b.poll_event(), None);
}

#[test]
fn config_errors_name_the_field() {
    let d = BreakerConfig::DEFAULT;
    let rate = RateTrip::DEFAULT;
    let with_rate = |r: RateTrip| BreakerConfig { rate: Some(r), ..d };
    let cases: [(BreakerConfig, &str); 14] = [
        (
            BreakerConfig {
                failure_threshold: 0,
                ..d
            },
            "failure_threshold",
        ),
        (
            BreakerConfig {
                reset_timeout: Duration::ZERO,
                ..d
            },
            "reset_timeout",
        ),
        (
            BreakerConfig {
                reset_backoff: 0,
                ..d
            },
            "reset_backoff",
        ),
        (
            BreakerConfig {
                reset_timeout_max: MS(59_999),
                ..d
            },
            "reset_timeout_max",
        ),
        (
            BreakerConfig {
                half_open_max_probes: 0,
                ..d
            },
            "half_open_max_probes",
        ),
        (
            BreakerConfig {
                half_open_max_probes: 9,
                ..d
            },
            "half_open_max_probes",
        ),
        (
            BreakerConfig {
                success_threshold: 0,
                ..d
            },
            "success_threshold",
        ),
        (
            BreakerConfig {
                probe_timeout: Duration::ZERO,
                ..d
            },
            "probe_timeout",
        ),
        (
            with_rate(RateTrip {
                threshold_permille: 0,
                ..rate
            }),
            "rate.threshold_permille",
        ),
        (
            with_rate(RateTrip {
                threshold_permille: 1_001,
                ..rate
            }),
            "rate.threshold_permille",
        ),
        (
            with_rate(RateTrip {
                min_calls: 0,
                ..rate
            }),
            "rate.min_calls",
        ),
        (
            with_rate(RateTrip {
                min_calls: 101,
                ..rate
            }),
            "rate.min_calls",
        ),
        (
            with_rate(RateTrip {
                window: RateWindow::LastCalls(129),
                ..rate
            }),
            "rate.window",
        ),
        (
            with_rate(RateTrip {
                window: RateWindow::Time(Duration::from_micros(9)),
                ..rate
            }),
            "rate.window",
        ),
    ];
    for (config, field) in cases {
        let e = Breaker::new(config).unwrap_err();
        assert_eq!(e.field(), field, "{e:?}");
        assert!(render(e).contains(field));
    }
    let empty = with_rate(RateTrip {
        window: RateWindow::LastCalls(0),
        ..rate
    });
    assert_eq!(empty.validate().unwrap_err().field(), "rate.window");
    let only_rate = BreakerConfig {
        failure_threshold: 0,
        ..with_rate(rate)
    };
    assert!(Breaker::new(only_rate).is_ok());
    let longest = with_rate(RateTrip {
        window: RateWindow::LastCalls(128),
        ..rate
    });
    assert!(Breaker::new(longest).is_ok());
    let e = BreakerConfigError::NoTripRule;
    assert_eq!(
        render(e).as_str(),
        "breaker config: `failure_threshold` is 0 and no rate rule is set, so the breaker could never trip"
    );
}

#[test]
fn messages_and_names() {
    assert_eq!(
        render(Rejected { until: t(5) }).as_str(),
        "circuit breaker open until T+5ms"
    );
    assert_eq!(
        render(Rejected {
            until: Instant::MAX
        })
        .as_str(),
        "circuit breaker forced open"
    );
    assert_eq!(render(State::HalfOpen).as_str(), "half_open");
    assert_eq!(State::ForcedOpen.as_str(), "forced_open");
    assert_eq!(State::Disabled.as_str(), "disabled");
    assert_eq!(State::Open.as_str(), "open");
    assert_eq!(State::Closed.as_str(), "closed");
}

#[test]
fn registry_hands_out_one_breaker_per_name() {
    let mut r: BreakerRegistry<2, 8> = BreakerRegistry::new();
    assert!(r.is_empty());
    let d = BreakerConfig::DEFAULT;
    let a = r.get_or_insert("search", &d).unwrap();
    let other = BreakerConfig {
        failure_threshold: 2,
        ..d
    };
    assert_eq!(
        r.get_or_insert("search", &other),
        Ok(a),
        "first config wins"
    );
    assert_eq!(r.get(a).unwrap().config(), &d);
    let b = r.get_or_insert("search ", &other).unwrap();
    assert_ne!(a, b, "names compare exactly");
    assert_eq!((r.len(), r.capacity()), (2, 2));
    assert_eq!(
        r.get_or_insert("embed", &d),
        Err(RegistryError::Full { capacity: 2 })
    );
    assert_eq!(
        r.get_or_insert("search", &d),
        Ok(a),
        "known names still resolve when full"
    );
    assert_eq!((r.find("search "), r.find("embed")), (Some(b), None));
    assert_eq!(r.name(b), Some("search "));
    let names: heapless::Vec<&str, 2> = r.iter().map(|(_, n, _)| n).collect();
    assert_eq!(names, ["search", "search "]);
    assert_eq!(r.get(BreakerId(7)).map(Breaker::state), None);
}

#[test]
fn registry_errors() {
    let mut r: BreakerRegistry<4, 4> = BreakerRegistry::default();
    let d = BreakerConfig::DEFAULT;
    assert_eq!(
        r.get_or_insert("abcde", &d),
        Err(RegistryError::NameTooLong { max_len: 4 })
    );
    assert!(r.get_or_insert("abcd", &d).is_ok());
    let bad = BreakerConfig {
        success_threshold: 0,
        ..d
    };
    let e = r.get_or_insert("x", &bad).unwrap_err();
    assert_eq!(
        e,
        RegistryError::InvalidConfig(BreakerConfigError::ZeroSuccessThreshold)
    );
    assert_eq!(r.len(), 1);
    assert_eq!(
        render(RegistryError::Full { capacity: 4 }).as_str(),
        "breaker registry full (4 breakers)"
    );
    assert_eq!(
        render(RegistryError::NameTooLong { max_len: 4 }).as_str(),
        "breaker name longer than 4 bytes"
    );
    assert!(render(e).starts_with("breaker config: `success_threshold`"));
}

#[test]
fn registry_drives_timeouts_and_events_of_all_breakers() {
    let mut r: BreakerRegistry<3> = BreakerRegistry::new();
    let d = BreakerConfig::DEFAULT;
    let quick = BreakerConfig {
        reset_timeout: MS(1_000),
        ..d
    };
    let a = r.get_or_insert("a", &d).unwrap();
    let b = r.get_or_insert("b", &quick).unwrap();
    assert_eq!(r.poll_timeout(), None);
    for id in [a, b] {
        for _ in 0..5 {
            let br = r.get_mut(id).unwrap();
            call(br, t(0), FAIL);
        }
    }
    assert_eq!(r.poll_timeout(), Some(t(1_000)));
    assert_eq!(
        r.poll_event().map(|(id, e)| (id, e.to)),
        Some((a, State::Open))
    );
    assert_eq!(
        r.poll_event().map(|(id, e)| (id, e.to)),
        Some((b, State::Open))
    );
    assert_eq!(r.poll_event(), None);
    r.handle_timeout(t(1_000));
    assert_eq!(r.get(b).unwrap().state(), State::HalfOpen);
    assert_eq!(r.get(a).unwrap().state(), State::Open);
    assert_eq!(r.poll_timeout(), Some(t(60_000)));
    let e = r.poll_event().unwrap();
    assert_eq!(
        (e.0.index(), e.1.from, e.1.to),
        (1, State::Open, State::HalfOpen)
    );
}

#[test]
fn reset_makes_every_outstanding_permit_stale() {
    // Finding 2: a reset while Closed must start a new generation, like any other reset.
    let mut b = breaker(BreakerConfig::DEFAULT);
    let before: heapless::Vec<Permit, 5> = (0..5).map(|_| b.acquire(t(0)).unwrap()).collect();
    b.reset(t(10));
    for p in before {
        assert_eq!(b.record(t(20), p, FAIL), Recorded::Stale);
    }
    assert_eq!((b.state(), b.consecutive_failures()), (State::Closed, 0));
    // The same for the other admin calls repeated in their own state.
    b.disable(t(30));
    let p = b.acquire(t(31)).unwrap();
    b.disable(t(32));
    assert_eq!(b.record(t(33), p, FAIL), Recorded::Stale);
}

#[test]
fn a_permit_from_another_breaker_never_counts() {
    // Finding 3: A's half-open probe recorded on B must not close B.
    let mut r: BreakerRegistry<2> = BreakerRegistry::new();
    let c = BreakerConfig {
        failure_threshold: 1,
        ..BreakerConfig::DEFAULT
    };
    let ids = [
        r.get_or_insert("a", &c).unwrap(),
        r.get_or_insert("b", &c).unwrap(),
    ];
    for id in ids {
        let br = r.get_mut(id).unwrap();
        call(br, t(0), FAIL);
        br.handle_timeout(t(60_000));
    }
    let pa = r.get_mut(ids[0]).unwrap().acquire(t(60_000)).unwrap();
    let pb = r.get_mut(ids[1]).unwrap().acquire(t(60_000)).unwrap();
    let b = r.get_mut(ids[1]).unwrap();
    assert_eq!(pa.tag(), 1);
    assert_eq!((b.tag(), pb.tag()), (2, 2));
    assert_eq!(b.record(t(60_001), pa, OK), Recorded::Foreign);
    assert_eq!((b.state(), b.probes_in_flight()), (State::HalfOpen, 1));
    // Abandoning A's probe on B does not free B's slot either.
    let pa = r.get_mut(ids[0]).unwrap().acquire(t(60_000));
    assert!(
        pa.is_err(),
        "A's slot is still taken by the misrouted probe"
    );
    let mut a2 = Breaker::with_tag(c, 7).unwrap();
    let foreign = a2.acquire(t(60_003)).unwrap();
    let b = r.get_mut(ids[1]).unwrap();
    assert_eq!(b.record(t(60_003), foreign, FAIL), Recorded::Foreign);
    let foreign = a2.acquire(t(60_003)).unwrap();
    b.abandon(t(60_003), foreign);
    assert_eq!((b.state(), b.probes_in_flight()), (State::HalfOpen, 1));
    assert_eq!(b.record(t(60_004), pb, OK), Recorded::Counted);
    assert_eq!(b.state(), State::Closed);
    // Breakers made by `new` share tag 0 and cannot tell each other's permits apart.
    assert_eq!(breaker(c).tag(), 0);
}

#[test]
fn abandoning_a_probe_after_its_deadline_reopens() {
    // Finding 6: the probe timed out before it was abandoned; the breaker must not sit
    // half-open with no deadline.
    let mut b = tripped(BreakerConfig::DEFAULT);
    let probe = b.acquire(t(60_000)).unwrap();
    let _ = events(&mut b);
    b.abandon(t(90_000), probe);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.open_until(), Some(t(150_000)));
    assert_eq!(events(&mut b), [(State::HalfOpen, State::Open, t(90_000))]);
}
