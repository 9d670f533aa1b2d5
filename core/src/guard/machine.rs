//! [`Guard`]: the state machine of one guarded call (see the module docs for the contract).

use super::{Action, Answer, Finish, GaveUp, GuardConfig, Permission, UnexpectedAnswer};
use crate::retry::RetryDecision;
use crate::time::Instant;
use crate::upstream::{BreakerInput, Class};

/// What follows a recorded attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// The call is over.
    Finish(Result<(), GaveUp>),
    /// The rest of a partly answered call goes again (not an attempt).
    Resubmit,
    /// A failed attempt: retry or give up, as the policy, the breaker, the deadline and the
    /// budget decide.
    Decide {
        class: Class,
        retryable: bool,
        random: u64,
    },
}

/// Where the call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Limit,
    Count,
    Acquire { resubmission: bool },
    Attempt { resubmission: bool },
    Calling { resubmission: bool },
    Record { input: BreakerInput, then: Then },
    Budget { at: Instant },
    Wait { at: Instant },
    Done(Finish),
}

/// One guarded call: rate limit, retry-budget count, then per attempt breaker permit, call,
/// classification, record, and a retry decision, until success or a typed give-up reason.
///
/// Drive it with [`Guard::poll`] and [`Guard::handle`]; it owns no I/O, no clock and no
/// randomness (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    config: GuardConfig,
    deadline: Instant,
    phase: Phase,
    attempts: u32,
    /// Whether the breaker takes part (false once the guard fails open).
    guarded: bool,
}

impl Guard {
    /// A call under `config` that must end by `deadline` (none: only the policy bounds it).
    pub const fn new(config: GuardConfig, deadline: Option<Instant>) -> Guard {
        let phase = match (config.limit, config.budget) {
            (true, _) => Phase::Limit,
            (false, true) => Phase::Count,
            (false, false) => Phase::Acquire {
                resubmission: false,
            },
        };
        let deadline = match deadline {
            Some(d) => d,
            None => Instant::MAX,
        };
        Guard {
            config,
            deadline,
            phase,
            attempts: 0,
            guarded: true,
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Attempts started so far (re-submissions not counted).
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The call's overall deadline ([`Instant::MAX`] when it has none).
    pub const fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the breaker still takes part (false once the guard failed open).
    pub const fn guarded(&self) -> bool {
        self.guarded
    }

    /// How the call ended, once it has.
    pub const fn finish(&self) -> Option<Finish> {
        match self.phase {
            Phase::Done(f) => Some(f),
            _ => None,
        }
    }

    /// What the driver must do next at `now`. It answers the same until the driver
    /// [handles](Guard::handle) the answer, except that a [`Action::Wait`] whose time has
    /// come moves on, and a call that reaches its deadline before an attempt gives up
    /// ([`GaveUp::Deadline`]), returning its permit first if it holds one.
    pub fn poll(&mut self, now: Instant) -> Action {
        if matches!(self.phase, Phase::Wait { at } if now >= at) {
            self.phase = self.next_attempt(false);
        }
        if now >= self.deadline {
            match self.phase {
                Phase::Acquire { .. } | Phase::Wait { .. } => self.end(Err(GaveUp::Deadline)),
                Phase::Attempt { .. } if self.guarded => {
                    let then = Then::Finish(Err(GaveUp::Deadline));
                    let input = BreakerInput::Neutral;
                    self.phase = Phase::Record { input, then };
                }
                Phase::Attempt { .. } => self.end(Err(GaveUp::Deadline)),
                _ => {}
            }
        }
        self.action()
    }

    /// The action of the current phase (entering an attempt counts it).
    fn action(&mut self) -> Action {
        match self.phase {
            Phase::Limit => Action::Limit,
            Phase::Count => Action::CountRequest,
            Phase::Acquire { .. } => Action::Acquire,
            Phase::Attempt { resubmission } => {
                if !resubmission {
                    self.attempts = self.attempts.saturating_add(1);
                }
                self.phase = Phase::Calling { resubmission };
                self.action()
            }
            Phase::Calling { resubmission } => Action::Attempt {
                attempt: self.attempts,
                resubmission,
                deadline: (self.deadline != Instant::MAX).then_some(self.deadline),
            },
            Phase::Record { input, .. } => Action::Record(input),
            Phase::Budget { .. } => Action::TakeRetry,
            Phase::Wait { at } => Action::Wait(at),
            Phase::Done(f) => Action::Done(f),
        }
    }

    /// Feeds in the driver's answer to the last action, at `now`.
    ///
    /// # Errors
    /// [`UnexpectedAnswer`] when `answer` does not answer the pending action (the state is
    /// unchanged).
    pub fn handle(&mut self, now: Instant, answer: Answer) -> Result<(), UnexpectedAnswer> {
        let phase = match (self.phase, answer) {
            (Phase::Limit, Answer::Limit(p)) => match self.permission(p, true) {
                Ok(()) if self.config.budget => Phase::Count,
                Ok(()) => self.next_attempt(false),
                Err(e) => Phase::Done(self.finished(Err(e))),
            },
            (Phase::Count, Answer::Counted) => self.next_attempt(false),
            (Phase::Acquire { resubmission }, Answer::Acquire(p)) => {
                match self.permission(p, false) {
                    Ok(()) => Phase::Attempt { resubmission },
                    Err(e) => Phase::Done(self.finished(Err(e))),
                }
            }
            (Phase::Calling { .. }, Answer::Succeeded) => {
                self.record(BreakerInput::Success, Then::Finish(Ok(())), now)
            }
            (Phase::Calling { .. }, Answer::Partial(input)) => {
                self.record(input, Then::Resubmit, now)
            }
            (Phase::Calling { .. }, Answer::Failed { verdict, random }) => {
                let then = Then::Decide {
                    class: verdict.class,
                    retryable: verdict.retryable,
                    random,
                };
                self.record(verdict.breaker, then, now)
            }
            (Phase::Record { then, .. }, Answer::Recorded { open_until }) => {
                self.after_record(now, then, open_until)
            }
            (Phase::Budget { at }, Answer::Budget(Ok(()))) => Phase::Wait { at },
            (Phase::Budget { .. }, Answer::Budget(Err(e))) => {
                let reason = crate::retry::GiveUpReason::BudgetExhausted {
                    retry_at: e.retry_at,
                };
                Phase::Done(self.finished(Err(GaveUp::Retry(reason))))
            }
            _ => return Err(UnexpectedAnswer),
        };
        self.phase = phase;
        Ok(())
    }

    /// The rate limiter's (`limit`) or the breaker's answer: go on, go on unguarded (fail
    /// open), or give up.
    fn permission(&mut self, p: Permission, limit: bool) -> Result<(), GaveUp> {
        match p {
            Permission::Granted => Ok(()),
            Permission::Refused { retry_at } if limit => Err(GaveUp::RateLimited { retry_at }),
            Permission::Refused { retry_at } => Err(GaveUp::BreakerRefused { until: retry_at }),
            Permission::Unavailable if self.config.fail_open => {
                self.guarded = false;
                Ok(())
            }
            Permission::Unavailable => Err(GaveUp::Unavailable),
        }
    }

    /// The phase that starts the next call: a permit first while guarded.
    const fn next_attempt(&self, resubmission: bool) -> Phase {
        match self.guarded {
            true => Phase::Acquire { resubmission },
            false => Phase::Attempt { resubmission },
        }
    }

    /// The breaker hears `input` (when guarded), then `then` follows.
    fn record(&mut self, input: BreakerInput, then: Then, now: Instant) -> Phase {
        match self.guarded {
            true => Phase::Record { input, then },
            false => self.after_record(now, then, None),
        }
    }

    fn after_record(&mut self, now: Instant, then: Then, open_until: Option<Instant>) -> Phase {
        match then {
            Then::Finish(result) => Phase::Done(self.finished(result)),
            Then::Resubmit => self.next_attempt(true),
            Then::Decide {
                class,
                retryable: false,
                ..
            } => Phase::Done(self.finished(Err(GaveUp::NotRetryable(class)))),
            Then::Decide { random, .. } => {
                let policy = &self.config.retry;
                match policy.next(now, self.attempts, random, open_until) {
                    RetryDecision::GiveUp(r) => Phase::Done(self.finished(Err(GaveUp::Retry(r)))),
                    RetryDecision::RetryAt(at) if at >= self.deadline => {
                        Phase::Done(self.finished(Err(GaveUp::Deadline)))
                    }
                    RetryDecision::RetryAt(at) if self.config.budget => Phase::Budget { at },
                    RetryDecision::RetryAt(at) => Phase::Wait { at },
                }
            }
        }
    }

    const fn finished(&self, result: Result<(), GaveUp>) -> Finish {
        Finish {
            attempts: self.attempts,
            result,
        }
    }

    fn end(&mut self, result: Result<(), GaveUp>) {
        self.phase = Phase::Done(self.finished(result));
    }
}
