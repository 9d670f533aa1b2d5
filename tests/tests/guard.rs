//! Property tests of `heidi_core::guard`: a driver with a real breaker and retry budget, an
//! upstream whose answers, latencies and randomness are generated, and a limiter and breaker
//! that may be unreachable.
//!
//! Invariants: a call never makes more attempts than the policy allows; no attempt is made
//! without a permit granted since the last record (unless the guard failed open); no retry
//! waits without a grant from the budget when budgeted; no attempt starts at or after the
//! deadline; every wait lies within the jittered delay's bounds for the attempts made; every
//! call ends within a bounded number of steps, and its give-up reason fits what happened.

use heidi_core::breaker::{Breaker, BreakerConfig};
use heidi_core::guard::{Action, Answer, GaveUp, Guard, GuardConfig, Permission, local};
use heidi_core::retry::{BudgetConfig, Jitter, RetryBudget, RetryPolicy};
use heidi_core::upstream::{BreakerInput, Reason, classify, code};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    let jitter = prop_oneof![Just(Jitter::None), Just(Jitter::Equal), Just(Jitter::Full)];
    (1..6u32, 0..200_000u64, 0..400_000u64, 1..4u32, jitter).prop_map(
        |(max_attempts, base, extra, multiplier, jitter)| RetryPolicy {
            max_attempts,
            base_delay: Duration::from_micros(base),
            max_delay: Duration::from_micros(base + extra),
            multiplier,
            jitter,
        },
    )
}

/// One call's answer from the upstream: a code (0 = success), a latency, a random value.
fn reply() -> impl Strategy<Value = (i32, u64, u64)> {
    let code = prop_oneof![
        3 => Just(0),
        3 => Just(code::UNAVAILABLE),
        1 => Just(code::DEADLINE_EXCEEDED),
        1 => Just(code::RESOURCE_EXHAUSTED),
        1 => Just(code::INVALID_ARGUMENT),
        1 => Just(code::DATA_LOSS),
        1 => Just(-1), // a partial answer
    ];
    (code, 0..300_000u64, any::<u64>())
}

#[derive(Clone, Debug)]
struct Case {
    policy: RetryPolicy,
    limit: bool,
    budget: bool,
    fail_open: bool,
    ratio_permille: u32,
    deadline_ms: Option<u64>,
    /// Per call: the limiter's answer (0 granted, 1 refused, 2 down).
    limiter: u8,
    /// Per acquire: the breaker is unreachable.
    breaker_down: Vec<bool>,
    replies: Vec<(i32, u64, u64)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        policy(),
        any::<(bool, bool, bool)>(),
        0..300u32,
        proptest::option::of(0..2_000u64),
        0..3u8,
        proptest::collection::vec(prop::bool::weighted(0.1), 16),
        proptest::collection::vec(reply(), 16),
    )
        .prop_map(
            |(policy, (limit, budget, fail_open), ratio, deadline_ms, limiter, down, replies)| {
                Case {
                    policy,
                    limit,
                    budget,
                    fail_open,
                    ratio_permille: ratio,
                    deadline_ms,
                    limiter,
                    breaker_down: down,
                    replies,
                }
            },
        )
}

/// What the driver saw.
#[derive(Default)]
struct Seen {
    attempts: u32,
    permit: bool,
    budget_granted: bool,
    budget_refused: bool,
    breaker_refused: bool,
    last_failure_at: Option<Instant>,
}

/// Drives one guarded call; several calls run one after the other on one breaker and budget.
fn run(case: &Case) -> Result<(), TestCaseError> {
    let breaker_config = BreakerConfig {
        failure_threshold: 2,
        reset_timeout: Duration::from_millis(150),
        ..BreakerConfig::DEFAULT
    };
    let mut breaker = Breaker::new(breaker_config).unwrap();
    let budget_config = BudgetConfig {
        window: Duration::from_secs(1),
        ratio_permille: case.ratio_permille,
        min_retries_per_sec: 0,
    };
    let mut budget = RetryBudget::<10>::new(budget_config).unwrap();
    let config = GuardConfig::new(case.policy)
        .with_limit(case.limit)
        .with_budget(case.budget)
        .with_fail_open(case.fail_open);
    let mut now = Instant::from_secs(1);
    let (mut replies, mut downs) = (
        case.replies.iter().cycle(),
        case.breaker_down.iter().cycle(),
    );
    for _call in 0..4 {
        let deadline = case.deadline_ms.map(|ms| now + Duration::from_millis(ms));
        let mut guard = Guard::new(config, deadline);
        let mut seen = Seen::default();
        let mut permit = None;
        let mut steps = 0;
        let finish = loop {
            steps += 1;
            prop_assert!(steps < 200, "the call ends in a bounded number of steps");
            let action = guard.poll(now);
            let answer = match action {
                Action::Limit => Answer::Limit(match case.limiter {
                    0 => Permission::Granted,
                    1 => Permission::Refused { retry_at: None },
                    _ => Permission::Unavailable,
                }),
                Action::CountRequest => {
                    budget.record_request(now);
                    Answer::Counted
                }
                Action::Acquire => {
                    prop_assert!(permit.is_none());
                    if *downs.next().unwrap() {
                        Answer::Acquire(Permission::Unavailable)
                    } else {
                        match breaker.acquire(now) {
                            Ok(p) => {
                                permit = Some(p);
                                seen.permit = true;
                                Answer::Acquire(Permission::Granted)
                            }
                            Err(r) => {
                                seen.breaker_refused = true;
                                let retry_at = Some(r.until);
                                Answer::Acquire(Permission::Refused { retry_at })
                            }
                        }
                    }
                }
                Action::Attempt {
                    attempt,
                    resubmission,
                    deadline: d,
                } => {
                    prop_assert_eq!(d, deadline);
                    if let Some(d) = deadline {
                        prop_assert!(now < d, "no attempt at or past the deadline");
                    }
                    prop_assert!(
                        seen.permit || !guard.guarded(),
                        "no attempt without a permit"
                    );
                    seen.permit = false;
                    if !resubmission {
                        seen.attempts += 1;
                    }
                    prop_assert_eq!(attempt, seen.attempts);
                    prop_assert!(attempt <= case.policy.max_attempts);
                    let &(c, latency_us, random) = replies.next().unwrap();
                    now += Duration::from_micros(latency_us);
                    match c {
                        0 => Answer::Succeeded,
                        -1 => Answer::Partial(BreakerInput::Success),
                        c => {
                            seen.last_failure_at = Some(now);
                            let verdict = classify(c, Reason::None);
                            Answer::Failed { verdict, random }
                        }
                    }
                }
                Action::Record(input) => {
                    let p = permit.take();
                    prop_assert!(p.is_some(), "a record returns a permit");
                    let p = p.unwrap();
                    local::record(&mut breaker, now, p, input, Duration::from_millis(1))
                }
                Action::TakeRetry => {
                    prop_assert!(case.budget);
                    let r = budget.try_retry(now);
                    seen.budget_granted = r.is_ok();
                    seen.budget_refused = r.is_err();
                    Answer::Budget(r)
                }
                Action::Wait(at) => {
                    prop_assert!(
                        !case.budget || seen.budget_granted,
                        "a budgeted retry waits only with a grant"
                    );
                    seen.budget_granted = false;
                    let failed = seen.last_failure_at.unwrap();
                    let wait = at.saturating_duration_since(failed);
                    let full = case.policy.backoff(seen.attempts);
                    prop_assert!(wait <= full && wait <= case.policy.max_delay);
                    let low = match case.policy.jitter {
                        Jitter::None => full,
                        Jitter::Equal => Duration::from_micros(full.as_micros() / 2),
                        Jitter::Full => Duration::ZERO,
                    };
                    prop_assert!(wait >= low, "wait {:?} below {:?}", wait, low);
                    if let Some(d) = deadline {
                        prop_assert!(at < d);
                    }
                    now = at;
                    continue;
                }
                Action::Done(finish) => break finish,
            };
            guard
                .handle(now, answer)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        };
        prop_assert!(permit.is_none(), "no permit is left behind");
        prop_assert_eq!(finish.attempts, seen.attempts);
        prop_assert!(finish.attempts <= case.policy.max_attempts);
        match finish.result {
            Ok(()) => {}
            Err(GaveUp::RateLimited { .. }) => prop_assert_eq!(case.limiter, 1),
            Err(GaveUp::Unavailable) => prop_assert!(!case.fail_open),
            Err(GaveUp::BreakerRefused { .. }) => prop_assert!(seen.breaker_refused),
            Err(GaveUp::Retry(heidi_core::retry::GiveUpReason::BudgetExhausted { .. })) => {
                prop_assert!(seen.budget_refused)
            }
            Err(GaveUp::Retry(heidi_core::retry::GiveUpReason::AttemptsExhausted { attempts })) => {
                prop_assert_eq!(attempts, case.policy.max_attempts)
            }
            Err(GaveUp::Deadline) => prop_assert!(deadline.is_some()),
            Err(_) => {}
        }
        now += Duration::from_millis(50);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_guard_keeps_its_rules(case in case()) {
        run(&case)?;
    }
}
