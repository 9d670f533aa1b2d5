//! Property tests of `heidi_core::retry`: the policy's delays against their closed form, and
//! the retry budget against a reference model that keeps every event.
//!
//! Invariants: delays are monotone non-decreasing without jitter and never above
//! `max_delay` with any random value; no run makes more than `max_attempts` attempts, and an
//! open breaker is never retried into; the budget grants exactly what the model grants, so
//! at every grant, retries ≤ ratio × requests + floor in the window it measures, and over any
//! such window retries ≤ ratio × (requests of that window and the one before) + floor
//! (requests may age out before the retries they paid for); its `retry_at` is the first
//! instant a retry is allowed when nothing else happens.

use heidi_core::retry::{
    BudgetConfig, GiveUpReason, Jitter, RetryBudget, RetryDecision, RetryPolicy,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![Just(Jitter::None), Just(Jitter::Equal), Just(Jitter::Full)]
}

/// Any valid policy, including extreme ones.
fn policy() -> impl Strategy<Value = RetryPolicy> {
    let micros = prop_oneof![0..2_000_000u64, any::<u64>()];
    let multiplier = prop_oneof![1..5u32, any::<u32>().prop_map(|m| m.max(1))];
    (1..12u32, micros.clone(), micros, multiplier, jitter()).prop_map(
        |(max_attempts, a, b, multiplier, jitter)| RetryPolicy {
            max_attempts,
            base_delay: Duration::from_micros(a.min(b)),
            max_delay: Duration::from_micros(a.max(b)),
            multiplier,
            jitter,
        },
    )
}

fn named() -> impl Strategy<Value = RetryPolicy> {
    prop_oneof![
        Just(RetryPolicy::DEFAULT),
        Just(RetryPolicy::EXPENSIVE),
        Just(RetryPolicy::QUICK),
        Just(RetryPolicy::CONSERVATIVE),
        Just(RetryPolicy::KERNEL_BRIDGE),
    ]
}

/// `min(base × m^(n−1), max)` in u128, saturating the power at the cap.
fn closed_form(p: &RetryPolicy, failed: u32) -> u64 {
    let (base, max) = (
        p.base_delay.as_micros() as u128,
        p.max_delay.as_micros() as u128,
    );
    let mut d = base;
    for _ in 1..failed {
        if d >= max {
            break;
        }
        d *= p.multiplier as u128;
    }
    d.min(max) as u64
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn delays_follow_the_closed_form_and_never_shrink(
        p in prop_oneof![policy(), named()],
        n in 1..200u32,
    ) {
        prop_assert_eq!(p.validate(), Ok(()));
        let (now, next) = (p.backoff(n), p.backoff(n + 1));
        prop_assert!(now <= next, "{:?}: {} then {}", p, now, next);
        prop_assert_eq!(now.as_micros(), closed_form(&p, n));
        prop_assert_eq!(p.backoff(u32::MAX), p.max_delay.min(p.backoff(u32::MAX)));
    }

    #[test]
    fn jitter_stays_within_its_range_and_under_the_cap(
        p in prop_oneof![policy(), named()],
        n in prop_oneof![1..70u32, any::<u32>()],
        random in prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
    ) {
        let d = p.backoff(n);
        let j = p.delay(n, random);
        prop_assert!(j <= d && d <= p.max_delay);
        let floor = match p.jitter {
            Jitter::None => d,
            Jitter::Equal => Duration::from_micros(d.as_micros() / 2),
            Jitter::Full => Duration::ZERO,
        };
        prop_assert!(j >= floor, "{:?} n={} r={}: {} < {}", p, n, random, j, floor);
        if random == 0 {
            prop_assert_eq!(j, floor);
        }
        if random == u64::MAX {
            prop_assert_eq!(j, d);
        }
    }

    #[test]
    fn a_run_never_exceeds_max_attempts_nor_retries_into_an_open_breaker(
        p in prop_oneof![policy(), named()],
        start in 0..u64::MAX / 2,
        randoms in prop::collection::vec(any::<u64>(), 12),
        open_for in prop::option::of(0..20_000_000u64),
    ) {
        let mut now = Instant::from_micros(start);
        let open_until = open_for.map(|us| now + Duration::from_micros(us));
        let mut attempts = 1;
        loop {
            match p.next(now, attempts, randoms[attempts as usize % 12], open_until) {
                RetryDecision::RetryAt(at) => {
                    prop_assert!(at >= now);
                    prop_assert!(at.saturating_duration_since(now) <= p.max_delay);
                    prop_assert!(open_until.is_none_or(|u| u <= at), "retried into the breaker");
                    attempts += 1;
                    now = at;
                }
                RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted { attempts: a }) => {
                    prop_assert_eq!(a, attempts);
                    prop_assert_eq!(attempts, p.max_attempts);
                    break;
                }
                RetryDecision::GiveUp(GiveUpReason::BreakerOpen { until }) => {
                    prop_assert_eq!(Some(until), open_until);
                    prop_assert!(attempts < p.max_attempts && until > now);
                    break;
                }
                RetryDecision::GiveUp(other) => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert!(attempts <= p.max_attempts);
    }
}

/// One step of a budget run.
#[derive(Clone, Debug)]
enum Op {
    /// Let this many milliseconds pass.
    Wait(u64),
    /// An original request.
    Request,
    /// A retry attempt.
    Retry,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..1_500u64).prop_map(Op::Wait),
        5 => Just(Op::Request),
        5 => Just(Op::Retry),
    ]
}

/// The reference: every event with its counter index, and the budget rule over them.
struct Model {
    counter_us: u64,
    counters: u64,
    ratio_permille: u64,
    floor_milli: u64,
    /// (counter index, is retry)
    log: Vec<(u64, bool)>,
}

impl Model {
    fn new(c: &BudgetConfig, counters: u64) -> Model {
        let counter_us = c.window.as_micros() / counters;
        Model {
            counter_us,
            counters,
            ratio_permille: c.ratio_permille as u64,
            floor_milli: c.min_retries_per_sec as u64 * counter_us * counters / 1_000,
            log: Vec::new(),
        }
    }

    fn index(&self, now: Instant) -> u64 {
        now.as_micros() / self.counter_us
    }

    /// (requests, retries) with index in (index − counters, index].
    fn window(&self, index: u64) -> (u64, u64) {
        let live = self
            .log
            .iter()
            .filter(|(i, _)| *i <= index && i + self.counters > index);
        live.fold(
            (0, 0),
            |(q, r), (_, retry)| if *retry { (q, r + 1) } else { (q + 1, r) },
        )
    }

    /// (requests, retries) with index in (index − 2 × counters, index].
    fn window2(&self, index: u64) -> (u64, u64) {
        let live = self
            .log
            .iter()
            .filter(|(i, _)| *i <= index && i + 2 * self.counters > index);
        live.fold(
            (0, 0),
            |(q, r), (_, retry)| if *retry { (q, r + 1) } else { (q + 1, r) },
        )
    }

    fn allows(&self, index: u64) -> bool {
        let (q, r) = self.window(index);
        (r + 1) * 1_000 <= self.ratio_permille * q + self.floor_milli
    }

    /// The first counter boundary after `index` where `allows` holds, if any within a window.
    fn retry_at(&self, index: u64) -> Instant {
        (index + 1..=index + self.counters)
            .find(|&i| self.allows(i))
            .map_or(Instant::MAX, |i| Instant::from_micros(i * self.counter_us))
    }
}

fn budget_config() -> impl Strategy<Value = BudgetConfig> {
    (1..20u64, 0..600u32, 0..4u32).prop_map(|(secs, ratio_permille, min_retries_per_sec)| {
        BudgetConfig {
            window: Duration::from_secs(secs),
            ratio_permille,
            min_retries_per_sec,
        }
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_budget_matches_its_model_and_bound(
        c in prop_oneof![Just(BudgetConfig::DEFAULT), budget_config()],
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let mut budget = RetryBudget::<10>::new(c).unwrap();
        let mut model = Model::new(&c, 10);
        let mut now = Instant::from_secs(1);
        for op in ops {
            let index = model.index(now);
            match op {
                Op::Wait(ms) => now += Duration::from_millis(ms),
                Op::Request => {
                    budget.record_request(now);
                    model.log.push((index, false));
                }
                Op::Retry => {
                    let got = budget.try_retry(now);
                    prop_assert_eq!(got.is_ok(), model.allows(index), "at {}", now);
                    match got {
                        Ok(()) => {
                            model.log.push((index, true));
                            // The bound at the grant, in the window the budget measures.
                            let (q, r) = model.window(index);
                            prop_assert!(r * 1_000 <= model.ratio_permille * q + model.floor_milli);
                        }
                        Err(e) => prop_assert_eq!(e.retry_at, model.retry_at(index)),
                    }
                }
            }
            let index = model.index(now);
            prop_assert_eq!(budget.window_totals(now), model.window(index));
            // The bound over any window the budget measures: its retries were each granted
            // against the requests of the window that ended at the grant, so within this
            // window and the one before it.
            let (_, r) = model.window(index);
            let (q2, _) = model.window2(index);
            prop_assert!(r * 1_000 <= model.ratio_permille * q2 + model.floor_milli);
        }
    }

    #[test]
    fn retry_at_is_when_the_budget_reopens(
        c in budget_config(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut budget = RetryBudget::<10>::new(c).unwrap();
        let mut now = Instant::from_secs(3);
        for op in ops {
            match op {
                Op::Wait(ms) => now += Duration::from_millis(ms),
                Op::Request => budget.record_request(now),
                Op::Retry => {
                    let Err(e) = budget.try_retry(now) else { continue };
                    if e.retry_at == Instant::MAX {
                        let far = now + c.window + c.window;
                        prop_assert!(budget.clone().try_retry(far).is_err());
                        continue;
                    }
                    prop_assert!(e.retry_at > now);
                    let just_before = e.retry_at - Duration::from_micros(1);
                    prop_assert!(budget.clone().try_retry(just_before).is_err());
                    prop_assert!(budget.clone().try_retry(e.retry_at).is_ok());
                }
            }
        }
    }
}

#[test]
fn a_storm_with_every_call_failing_stays_within_the_budget() {
    // 200 requests per second for two minutes, each failing and retried up to 3 times.
    let mut budget = RetryBudget::<10>::default();
    let policy = RetryPolicy::DEFAULT.with_jitter(Jitter::None);
    let mut log: Vec<(u64, bool)> = Vec::new();
    for step in 0..24_000u64 {
        let now = Instant::from_millis(step * 5);
        budget.record_request(now);
        log.push((step * 5 / 1_000, false));
        for attempts in 1..policy.max_attempts {
            match policy.next_with_budget(now, attempts, 0, None, &mut budget) {
                RetryDecision::RetryAt(_) => log.push((step * 5 / 1_000, true)),
                RetryDecision::GiveUp(GiveUpReason::BudgetExhausted { retry_at }) => {
                    assert!(retry_at > now);
                    break;
                }
                RetryDecision::GiveUp(other) => panic!("{other:?}"),
            }
        }
    }
    for end in 9..120 {
        let live = log.iter().filter(|(s, _)| *s + 10 > end && *s <= end);
        let (q, r) = live.fold(
            (0, 0),
            |(q, r), (_, t)| if *t { (q, r + 1) } else { (q + 1, r) },
        );
        assert_eq!(q, 2_000);
        assert!(r <= q / 5 + 100, "window ending {end}s: {r} retries");
    }
    let retries = log.iter().filter(|(_, t)| *t).count();
    assert!(
        retries <= 12 * 500,
        "{retries} retries in 120 s vs 48,000 without a budget"
    );
}
