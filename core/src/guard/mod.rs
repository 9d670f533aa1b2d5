//! One guarded call as a sans-IO state machine: rate limit, breaker permit, attempt,
//! classification, record, retry within the budget, all under an overall deadline.
//!
//! Every host that calls something unreliable does the same dance: ask the rate limiter,
//! count the call in the retry budget, take a permit from the circuit breaker, make the
//! attempt, classify its result ([`upstream::classify`](crate::upstream::classify)), tell the
//! breaker, then retry after a jittered backoff ([`RetryPolicy`]) if the verdict, the
//! attempts left, the breaker, the deadline and the [retry budget](crate::retry::RetryBudget)
//! allow it. [`Guard`] makes those decisions, once, for every host: the gRPC sidecar (local
//! breaker and budget), the client library (rate limit and breaker are daemon calls) and the
//! browser simulator (a virtual clock). It owns no I/O, reads no clock and draws no random
//! number; it holds no permit either: the driver keeps whatever its breaker handed out.
//!
//! # The contract
//!
//! The driver loops: [`Guard::poll`]`(now)` says what to do next ([`Action`]); the driver
//! does it and feeds the result back with [`Guard::handle`]`(now, answer)` ([`Answer`]), until
//! [`Action::Done`]. Each action has exactly one kind of answer:
//!
//! | action | the driver | answer |
//! |---|---|---|
//! | [`Action::Limit`] | asks its rate limiter for the call's tokens | [`Answer::Limit`] |
//! | [`Action::CountRequest`] | `RetryBudget::record_request(now)` | [`Answer::Counted`] |
//! | [`Action::Acquire`] | asks its breaker for a permit | [`Answer::Acquire`] |
//! | [`Action::Attempt`] | makes the call, by `deadline` | [`Answer::Succeeded`], [`Answer::Failed`], [`Answer::Partial`] |
//! | [`Action::Record`] | returns the permit with the input (`Neutral`: abandon) | [`Answer::Recorded`] with the breaker's open time |
//! | [`Action::TakeRetry`] | `RetryBudget::try_retry(now)` | [`Answer::Budget`] |
//! | [`Action::Wait`] | sleeps until then (or serves others), then polls again | none |
//! | [`Action::Done`] | reports success or the [`GaveUp`] reason | none |
//!
//! The order within a call is fixed: `Limit` (when [`GuardConfig::limit`]), `CountRequest`
//! (when [`GuardConfig::budget`]), then per attempt `Acquire`, `Attempt`, `Record`, and after a
//! retryable failure `TakeRetry` (when budgeted) and `Wait`. The rules:
//!
//! - A refusal by the limiter ends the call ([`GaveUp::RateLimited`]) before any attempt;
//!   a refusal by the breaker ends it ([`GaveUp::BreakerRefused`]) before or between attempts:
//!   an open breaker is never called into, and never waited for.
//! - A limiter or breaker that cannot be asked ([`Permission::Unavailable`], a daemon that is
//!   down) ends the call with [`GaveUp::Unavailable`] (fail closed), unless
//!   [`GuardConfig::fail_open`]: then the call goes on without limiter or breaker, and no
//!   `Acquire` or `Record` follows.
//! - A failed attempt carries its [`Verdict`]: what the breaker is
//!   told, and whether it is worth a retry. A verdict that is not retryable ends the call
//!   ([`GaveUp::NotRetryable`]). A retryable one goes to [`RetryPolicy::next`] with the
//!   breaker's open time from `Recorded`: attempts spent, or a breaker still open at the retry
//!   time, give up ([`GaveUp::Retry`]); a retry time at or past the deadline gives up
//!   ([`GaveUp::Deadline`]); otherwise a budgeted call takes a retry from the budget
//!   (refused: [`GaveUp::Retry`] with `BudgetExhausted`) and waits until the retry time.
//! - [`Answer::Partial`] says part of a call was answered (a batch whose upstream refused or
//!   answered only some items): the rest goes again as a *re-submission*, which is not an
//!   attempt, takes nothing from the budget, but does take a breaker permit.
//! - No attempt starts at or after the deadline: a poll at the deadline gives up
//!   ([`GaveUp::Deadline`]), returning an unused permit first (`Record(Neutral)`).
//!   [`Action::Attempt::deadline`](Action::Attempt) is the instant the call itself must end by.
//! - Randomness is an argument: [`Answer::Failed`] carries the `random` value the jitter of
//!   the next delay uses.
//! - An answer that does not fit the pending action is refused ([`UnexpectedAnswer`]) and
//!   changes nothing. A driver may drop a guard at any point; it must then return a permit
//!   it holds itself.
//!
//! A driver that owns its breaker answers `Acquire` and `Record` with [`local::acquire`] and
//! [`local::record`].
//! A driver whose limiter and breaker are a daemon's reads the daemon's replies into the
//! answers with [`remote::limit`], [`remote::acquire`] and [`remote::recorded`].
//!
//! Work is bounded: each `poll` and `handle` is O(1), and a call makes at most
//! `max_attempts` attempts (re-submissions are bounded by the driver's items).
//!
//! # A driver loop on a virtual clock
//!
//! A local breaker and budget, an upstream that fails twice with UNAVAILABLE and then
//! succeeds, each call taking 10 ms:
//!
//! ```
//! use heidi_core::breaker::{Breaker, BreakerConfig};
//! use heidi_core::guard::{Action, Answer, Guard, GuardConfig, Permission, local};
//! use heidi_core::retry::{RetryBudget, RetryPolicy};
//! use heidi_core::upstream::{Reason, classify, code};
//! use heidi_core::{Duration, Instant};
//!
//! let mut breaker = Breaker::new(BreakerConfig::DEFAULT).unwrap();
//! let mut budget = RetryBudget::<10>::default();
//! let config = GuardConfig::new(RetryPolicy::DEFAULT).with_budget(true);
//! let mut now = Instant::from_secs(1);
//! let mut guard = Guard::new(config, Some(now + Duration::from_secs(5)));
//! let (mut permit, mut failures_left, mut calls) = (None, 2, 0);
//! let finish = loop {
//!     let answer = match guard.poll(now) {
//!         Action::Limit => Answer::Limit(Permission::Granted),
//!         Action::CountRequest => {
//!             budget.record_request(now);
//!             Answer::Counted
//!         }
//!         Action::Acquire => {
//!             let (granted, answer) = local::acquire(&mut breaker, now);
//!             permit = granted;
//!             answer
//!         }
//!         Action::Attempt { .. } => {
//!             calls += 1;
//!             now += Duration::from_millis(10); // the call takes 10 ms
//!             if failures_left > 0 {
//!                 failures_left -= 1;
//!                 let verdict = classify(code::UNAVAILABLE, Reason::None);
//!                 Answer::Failed { verdict, random: 0x9e37_79b9_7f4a_7c15 }
//!             } else {
//!                 Answer::Succeeded
//!             }
//!         }
//!         Action::Record(input) => {
//!             let permit = permit.take().expect("acquired before the attempt");
//!             local::record(&mut breaker, now, permit, input, Duration::from_millis(10))
//!         }
//!         Action::TakeRetry => Answer::Budget(budget.try_retry(now)),
//!         Action::Wait(at) => {
//!             now = at; // a virtual clock jumps; a real host sleeps
//!             continue;
//!         }
//!         Action::Done(finish) => break finish,
//!     };
//!     guard.handle(now, answer).expect("each answer fits its action");
//! };
//! assert_eq!(finish.result, Ok(()));
//! assert_eq!((finish.attempts, calls), (3, 3));
//! assert_eq!(budget.window_totals(now), (1, 2)); // one request, two retries
//! ```

pub mod local;
mod machine;
pub mod remote;
#[cfg(test)]
mod tests;

pub use machine::Guard;

use crate::retry::{BudgetExhausted, GiveUpReason, RetryPolicy};
use crate::time::Instant;
use crate::upstream::{BreakerInput, Class, Verdict};
use core::fmt;

/// What a [`Guard`] does besides the breaker and the retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GuardConfig {
    /// How failed attempts are retried (`max_attempts: 1`: never).
    pub retry: RetryPolicy,
    /// Ask the rate limiter once, before anything else.
    pub limit: bool,
    /// Count the call in a retry budget, and take every retry from it.
    pub budget: bool,
    /// When the limiter or the breaker cannot be asked, go on without them (fail open)
    /// instead of giving up (fail closed).
    pub fail_open: bool,
}

impl GuardConfig {
    /// `retry`, no rate limit, no budget, fail closed.
    pub const fn new(retry: RetryPolicy) -> GuardConfig {
        GuardConfig {
            retry,
            limit: false,
            budget: false,
            fail_open: false,
        }
    }

    /// A call that is made once and never retried (a forwarding host's query: it is not
    /// idempotent on the upstream's side the way a keyed transaction is), under `retry`'s other
    /// settings.
    pub const fn once(retry: RetryPolicy) -> GuardConfig {
        GuardConfig::new(RetryPolicy {
            max_attempts: 1,
            ..retry
        })
    }

    /// This configuration with or without the rate limit.
    pub const fn with_limit(self, limit: bool) -> GuardConfig {
        GuardConfig { limit, ..self }
    }

    /// This configuration with or without the retry budget.
    pub const fn with_budget(self, budget: bool) -> GuardConfig {
        GuardConfig { budget, ..self }
    }

    /// This configuration failing open or closed.
    pub const fn with_fail_open(self, fail_open: bool) -> GuardConfig {
        GuardConfig { fail_open, ..self }
    }
}

/// What the driver must do next ([`Guard::poll`]).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Ask the rate limiter for the call's tokens; answer [`Answer::Limit`].
    Limit,
    /// Count the call as one request in the retry budget; answer [`Answer::Counted`].
    CountRequest,
    /// Ask the breaker for a permit; answer [`Answer::Acquire`].
    Acquire,
    /// Make the call; answer [`Answer::Succeeded`], [`Answer::Failed`] or [`Answer::Partial`].
    Attempt {
        /// Attempts started, this one included (1 is the first try).
        attempt: u32,
        /// The rest of a partly answered call: not an attempt, not a retry.
        resubmission: bool,
        /// The call must end by then (the guarded call's deadline).
        deadline: Option<Instant>,
    },
    /// Return the permit to the breaker with this input ([`BreakerInput::Neutral`]: unused);
    /// answer [`Answer::Recorded`].
    Record(BreakerInput),
    /// Take one retry from the retry budget; answer [`Answer::Budget`].
    TakeRetry,
    /// Nothing to do before this instant; poll again then.
    Wait(Instant),
    /// The call is over.
    Done(Finish),
}

/// The driver's answer to an [`Action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Answer {
    /// The rate limiter's answer.
    Limit(Permission),
    /// The request is counted in the budget.
    Counted,
    /// The breaker's answer.
    Acquire(Permission),
    /// The call succeeded.
    Succeeded,
    /// The call failed.
    Failed {
        /// What the failure means ([`classify`](crate::upstream::classify), or
        /// `Class::Failure.verdict()` for a host without status codes).
        verdict: Verdict,
        /// A uniformly random value for the jitter of the next delay.
        random: u64,
    },
    /// Part of the call was answered; the rest goes again. The input is what the breaker
    /// hears about this call.
    Partial(BreakerInput),
    /// The permit is back; the breaker is open until then (`None`: not open, or unknown).
    Recorded {
        /// [`Breaker::open_until`](crate::breaker::Breaker::open_until) after the record.
        open_until: Option<Instant>,
    },
    /// The budget's answer to [`Action::TakeRetry`].
    Budget(Result<(), BudgetExhausted>),
}

/// A rate limiter's or breaker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Permission {
    /// Go on.
    Granted,
    /// Refused; come back then, if it said.
    Refused {
        /// When a new request may pass.
        retry_at: Option<Instant>,
    },
    /// It could not be asked (a remote limiter or breaker that is down).
    Unavailable,
}

/// How a guarded call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Finish {
    /// Attempts made (re-submissions not counted).
    pub attempts: u32,
    /// Success, or why the guard gave up.
    pub result: Result<(), GaveUp>,
}

/// Why a guarded call gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GaveUp {
    /// The rate limiter refused the call; no attempt was made.
    RateLimited {
        /// When it would pass, if the limiter said.
        retry_at: Option<Instant>,
    },
    /// The breaker refused a permit, before the first attempt or before a retry.
    BreakerRefused {
        /// When it half-opens, if it said.
        until: Option<Instant>,
    },
    /// The limiter or the breaker could not be asked, and the guard fails closed.
    Unavailable,
    /// The last failure is not worth a retry.
    NotRetryable(Class),
    /// The retry policy or the budget refused a retry: attempts spent, the breaker still
    /// open at the retry time, or the budget exhausted.
    Retry(GiveUpReason),
    /// The deadline came before the next attempt could start.
    Deadline,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaveUp::RateLimited { .. } => f.write_str("rate limited"),
            GaveUp::BreakerRefused { .. } => f.write_str("circuit breaker open"),
            GaveUp::Unavailable => f.write_str("rate limiter or breaker unavailable"),
            GaveUp::NotRetryable(class) => write!(f, "not retried ({class})"),
            GaveUp::Retry(reason) => fmt::Display::fmt(reason, f),
            GaveUp::Deadline => f.write_str("deadline reached before the next attempt"),
        }
    }
}

impl core::error::Error for GaveUp {}

/// An [`Answer`] that does not answer the pending [`Action`]; the guard is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnexpectedAnswer;

impl fmt::Display for UnexpectedAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("guard: the answer does not fit the pending action")
    }
}

impl core::error::Error for UnexpectedAnswer {}
