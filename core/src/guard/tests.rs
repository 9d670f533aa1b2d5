use super::*;
use crate::retry::{BudgetConfig, Jitter, RetryBudget};
use crate::time::Duration;
use crate::upstream::{Reason, classify, code};

const fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// 3 attempts, 100 ms then 200 ms, no jitter.
const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_millis(1_000),
    multiplier: 2,
    jitter: Jitter::None,
};

fn unavailable() -> Answer {
    let verdict = classify(code::UNAVAILABLE, Reason::None);
    Answer::Failed { verdict, random: 0 }
}

fn feed(g: &mut Guard, now: Instant, expected: Action, answer: Answer) {
    assert_eq!(g.poll(now), expected);
    g.handle(now, answer).unwrap();
}

fn attempt(n: u32) -> Action {
    Action::Attempt {
        attempt: n,
        resubmission: false,
        deadline: None,
    }
}

/// The guard is done at `now` after `attempts` attempts with `result`.
fn assert_done(g: &mut Guard, now: Instant, attempts: u32, result: Result<(), GaveUp>) {
    assert_eq!(g.poll(now), Action::Done(Finish { attempts, result }));
    assert_eq!(g.finish(), Some(Finish { attempts, result }));
}

const GRANTED: Permission = Permission::Granted;
const CLOSED: Answer = Answer::Recorded { open_until: None };

/// Acquire, attempt `n` failing with UNAVAILABLE, record, at `now`.
fn failed_attempt(g: &mut Guard, now: Instant, n: u32) {
    feed(g, now, Action::Acquire, Answer::Acquire(GRANTED));
    feed(g, now, attempt(n), unavailable());
    feed(g, now, Action::Record(BreakerInput::Failure), CLOSED);
}

#[test]
fn retries_on_the_policys_schedule_then_gives_up_with_the_attempts_spent() {
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    failed_attempt(&mut g, at(0), 1);
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
    assert_eq!(g.poll(at(99)), Action::Wait(at(100)), "not before its time");
    failed_attempt(&mut g, at(100), 2);
    assert_eq!(g.poll(at(100)), Action::Wait(at(300)));
    failed_attempt(&mut g, at(300), 3);
    let spent = GiveUpReason::AttemptsExhausted { attempts: 3 };
    let finish = Finish {
        attempts: 3,
        result: Err(GaveUp::Retry(spent)),
    };
    assert_eq!(g.poll(at(300)), Action::Done(finish));
    assert_eq!(g.finish(), Some(finish));
}

#[test]
fn a_success_is_recorded_then_done() {
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    feed(&mut g, at(0), attempt(1), Answer::Succeeded);
    feed(&mut g, at(5), Action::Record(BreakerInput::Success), CLOSED);
    let done = Finish {
        attempts: 1,
        result: Ok(()),
    };
    assert_eq!(g.poll(at(5)), Action::Done(done));
}

#[test]
fn the_rate_limit_is_asked_first_and_its_refusal_ends_the_call() {
    let config = GuardConfig::new(POLICY).with_limit(true).with_budget(true);
    let mut g = Guard::new(config, None);
    let refused = Permission::Refused {
        retry_at: Some(at(50)),
    };
    feed(&mut g, at(0), Action::Limit, Answer::Limit(refused));
    let gave_up = GaveUp::RateLimited {
        retry_at: Some(at(50)),
    };
    let result = Err(gave_up);
    assert_done(&mut g, at(0), 0, result);
    // Granted: the budget counts the call next, then the breaker.
    let mut g = Guard::new(config, None);
    feed(&mut g, at(0), Action::Limit, Answer::Limit(GRANTED));
    feed(&mut g, at(0), Action::CountRequest, Answer::Counted);
    assert_eq!(g.poll(at(0)), Action::Acquire);
}

#[test]
fn an_open_breaker_is_never_called_into_before_the_first_attempt_or_a_retry() {
    let until = Some(at(5_000));
    let refused = Answer::Acquire(Permission::Refused { retry_at: until });
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, refused);
    let result = Err(GaveUp::BreakerRefused { until });
    assert_done(&mut g, at(0), 0, result);

    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    failed_attempt(&mut g, at(0), 1);
    assert_eq!(g.poll(at(100)), Action::Acquire);
    g.handle(at(100), refused).unwrap();
    assert_done(&mut g, at(100), 1, result);
}

#[test]
fn a_breaker_still_open_at_the_retry_time_gives_up_at_once() {
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    feed(&mut g, at(0), attempt(1), unavailable());
    let open = Answer::Recorded {
        open_until: Some(at(101)),
    };
    feed(&mut g, at(0), Action::Record(BreakerInput::Failure), open);
    let reason = GiveUpReason::BreakerOpen { until: at(101) };
    let result = Err(GaveUp::Retry(reason));
    assert_done(&mut g, at(0), 1, result);
    // Half-open by the retry time: the retry goes ahead.
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    feed(&mut g, at(0), attempt(1), unavailable());
    let open = Answer::Recorded {
        open_until: Some(at(100)),
    };
    feed(&mut g, at(0), Action::Record(BreakerInput::Failure), open);
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
}

#[test]
fn the_limiter_or_breaker_down_fails_closed_unless_fail_open() {
    let config = GuardConfig::new(POLICY).with_limit(true);
    let down = Answer::Limit(Permission::Unavailable);
    let mut g = Guard::new(config, None);
    feed(&mut g, at(0), Action::Limit, down);
    let result = Err(GaveUp::Unavailable);
    assert_done(&mut g, at(0), 0, result);

    // Fail open: the calls go on without limiter or breaker (no Acquire, no Record).
    let mut g = Guard::new(config.with_fail_open(true), None);
    feed(&mut g, at(0), Action::Limit, down);
    assert!(!g.guarded());
    feed(&mut g, at(0), attempt(1), unavailable());
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
    feed(&mut g, at(100), attempt(2), Answer::Succeeded);
    let done = Finish {
        attempts: 2,
        result: Ok(()),
    };
    assert_eq!(g.poll(at(100)), Action::Done(done));

    // The breaker down after a granted limit: the same rule.
    let mut g = Guard::new(GuardConfig::new(POLICY).with_fail_open(true), None);
    let down = Answer::Acquire(Permission::Unavailable);
    feed(&mut g, at(0), Action::Acquire, down);
    assert_eq!(g.poll(at(0)), attempt(1));
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, down);
    let result = Err(GaveUp::Unavailable);
    assert_done(&mut g, at(0), 0, result);
}

#[test]
fn a_verdict_decides_what_the_breaker_hears_and_whether_to_retry() {
    // A refusal: a success for the breaker, never retried.
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    let verdict = classify(code::INVALID_ARGUMENT, Reason::None);
    let failed = Answer::Failed { verdict, random: 0 };
    feed(&mut g, at(0), attempt(1), failed);
    feed(&mut g, at(0), Action::Record(BreakerInput::Success), CLOSED);
    let result = Err(GaveUp::NotRetryable(Class::Refusal));
    assert_done(&mut g, at(0), 1, result);
    // Overload: the permit goes back unused, and the call is retried.
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    let verdict = classify(code::RESOURCE_EXHAUSTED, Reason::Overloaded);
    let failed = Answer::Failed { verdict, random: 0 };
    feed(&mut g, at(0), attempt(1), failed);
    feed(&mut g, at(0), Action::Record(BreakerInput::Neutral), CLOSED);
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
}

#[test]
fn every_retry_is_taken_from_the_budget_and_a_refusal_gives_up() {
    let config = GuardConfig::new(POLICY).with_budget(true);
    let mut budget = RetryBudget::<10>::new(BudgetConfig {
        window: Duration::from_secs(10),
        ratio_permille: 0,
        min_retries_per_sec: 0,
    })
    .unwrap();
    let mut g = Guard::new(config, None);
    feed(&mut g, at(0), Action::CountRequest, Answer::Counted);
    failed_attempt(&mut g, at(0), 1);
    assert_eq!(g.poll(at(0)), Action::TakeRetry);
    let refused = budget.try_retry(at(0));
    g.handle(at(0), Answer::Budget(refused)).unwrap();
    let reason = GiveUpReason::BudgetExhausted {
        retry_at: Instant::MAX,
    };
    let result = Err(GaveUp::Retry(reason));
    assert_done(&mut g, at(0), 1, result);
    // Granted: wait, then the next attempt.
    let mut g = Guard::new(config, None);
    feed(&mut g, at(0), Action::CountRequest, Answer::Counted);
    failed_attempt(&mut g, at(0), 1);
    feed(&mut g, at(0), Action::TakeRetry, Answer::Budget(Ok(())));
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
    assert_eq!(g.poll(at(100)), Action::Acquire);
}

#[test]
fn no_attempt_starts_at_or_past_the_deadline() {
    // The retry would come at 100 ms; the deadline is 100 ms: give up at once, no budget
    // taken.
    let config = GuardConfig::new(POLICY).with_budget(true);
    let mut g = Guard::new(config, Some(at(100)));
    feed(&mut g, at(0), Action::CountRequest, Answer::Counted);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    let with_deadline = Action::Attempt {
        attempt: 1,
        resubmission: false,
        deadline: Some(at(100)),
    };
    feed(&mut g, at(0), with_deadline, unavailable());
    feed(&mut g, at(0), Action::Record(BreakerInput::Failure), CLOSED);
    let result = Err(GaveUp::Deadline);
    assert_done(&mut g, at(0), 1, result);

    // A permit granted, but the deadline passed meanwhile: it goes back unused.
    let mut g = Guard::new(GuardConfig::new(POLICY), Some(at(100)));
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    assert_eq!(g.poll(at(100)), Action::Record(BreakerInput::Neutral));
    g.handle(at(100), CLOSED).unwrap();
    assert_done(&mut g, at(100), 0, result);
    assert_eq!(g.attempts(), 0);

    // Past the deadline before even asking the breaker.
    let mut g = Guard::new(GuardConfig::new(POLICY), Some(at(100)));
    assert_done(&mut g, at(100), 0, result);
    assert_eq!(g.deadline(), at(100));
}

#[test]
fn a_partial_answer_resubmits_without_using_an_attempt() {
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    feed(
        &mut g,
        at(0),
        attempt(1),
        Answer::Partial(BreakerInput::Success),
    );
    feed(&mut g, at(0), Action::Record(BreakerInput::Success), CLOSED);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    let again = Action::Attempt {
        attempt: 1,
        resubmission: true,
        deadline: None,
    };
    assert_eq!(g.poll(at(0)), again);
    assert_eq!(g.poll(at(0)), again, "polling again repeats the action");
    g.handle(at(0), unavailable()).unwrap();
    feed(&mut g, at(0), Action::Record(BreakerInput::Failure), CLOSED);
    // The first retry's delay: one attempt failed so far.
    assert_eq!(g.poll(at(0)), Action::Wait(at(100)));
    assert_eq!(g.attempts(), 1);
}

#[test]
fn an_answer_that_does_not_fit_is_refused_and_changes_nothing() {
    let mut g = Guard::new(GuardConfig::new(POLICY), None);
    let before = g.clone();
    assert_eq!(g.handle(at(0), Answer::Succeeded), Err(UnexpectedAnswer));
    assert_eq!(g.handle(at(0), Answer::Counted), Err(UnexpectedAnswer));
    assert_eq!(g, before);
    feed(&mut g, at(0), Action::Acquire, Answer::Acquire(GRANTED));
    assert_eq!(
        g.handle(at(0), Answer::Acquire(GRANTED)),
        Err(UnexpectedAnswer)
    );
    assert_eq!(g.poll(at(0)), attempt(1));
    assert_eq!(*g.config(), GuardConfig::new(POLICY));
}

#[test]
fn displays() {
    extern crate std;
    use std::string::ToString;
    assert_eq!(
        GaveUp::Deadline.to_string(),
        "deadline reached before the next attempt"
    );
    let not = GaveUp::NotRetryable(Class::Broken).to_string();
    assert_eq!(not, "not retried (broken)");
    let spent = GaveUp::Retry(GiveUpReason::AttemptsExhausted { attempts: 2 });
    assert_eq!(spent.to_string(), "gave up after 2 attempts");
    assert!(UnexpectedAnswer.to_string().contains("pending action"));
    for g in [
        GaveUp::RateLimited { retry_at: None },
        GaveUp::BreakerRefused { until: None },
        GaveUp::Unavailable,
    ] {
        assert!(!g.to_string().is_empty());
    }
}

#[test]
fn once_keeps_the_policy_but_its_attempts() {
    let retry = RetryPolicy::DEFAULT;
    let once = GuardConfig::once(retry);
    assert_eq!(once.retry.max_attempts, 1);
    assert_eq!(
        (once.retry.base_delay, once.retry.jitter),
        (retry.base_delay, retry.jitter)
    );
    assert_eq!(
        (once.limit, once.budget, once.fail_open),
        (false, false, false)
    );
}
