//! [`Client::guard`]: run a closure under the daemon's rate limit and circuit breaker, retrying
//! its failures with the core's [`RetryPolicy`].
//!
//! Every decision is the core's guarded-call machine (`heidi_core::guard`), the one the gRPC
//! sidecar and the browser simulator drive too; here its rate limiter and breaker are daemon
//! calls. Order: one `RATE_LIMIT_CONSUME` for the whole guarded call; then per attempt
//! `BREAKER_ACQUIRE`, the closure, `BREAKER_RECORD` with the permit and the outcome. A failed
//! attempt is retried when [`RetryPolicy::next`] says so (exponential delay, jitter ≤ cap, from
//! the core); an open breaker is never retried into: a `CIRCUIT_OPEN` answer to the next
//! acquire, or a record reply saying the breaker opened for longer than the retry delay, ends
//! the guarded call with [`GuardError::CircuitOpen`]. (Today's daemon answers a record with
//! `"state":"open"` but no open time, so in practice the next acquire is what stops it.)
//!
//! With a [`GuardSpec::deadline`], no attempt starts at or after it, and a retry whose time
//! falls at or after it is not waited for ([`GuardError::Deadline`]).
//!
//! When the daemon cannot be reached (unavailable or timed out) the guard fails closed with
//! [`GuardError::Unavailable`], unless [`GuardSpec::fail_open`] is set: then the closure runs
//! (and is retried per the policy) without rate limit or breaker.
//!
//! A `BREAKER_RECORD` that fails (after the client's own transport retries) never changes the
//! result: the closure already ran, and its outcome is what the caller gets.

use std::fmt;

use heidi_core::guard::{Action, Answer, GaveUp, Guard, GuardConfig, Permission};
use heidi_core::proto::ErrorCode;
use heidi_core::retry::{GiveUpReason, RetryPolicy};
use heidi_core::upstream::Class;

use super::methods::{BreakerOutcome, breaker_open_for_ms, id_of, limit_allowed};
use super::result::codes;
use super::{CallResult, CallStatus, Client, pause};

/// What to guard a call with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardSpec<'a> {
    /// The rate-limit key.
    pub limit_key: &'a str,
    /// The rate-limited operation.
    pub operation: &'a str,
    /// Tokens the call costs.
    pub cost: u32,
    /// The rate-limit tier (`RATE_LIMIT_CONSUME`'s `tier`; default none: the policy's
    /// `default_tier`, else its top-level limits).
    pub tier: Option<&'a str>,
    /// The circuit breaker's name.
    pub breaker: &'a str,
    /// How the closure's failures are retried.
    pub retry: RetryPolicy,
    /// Run the closure unguarded when the daemon is unreachable (default false: fail closed).
    pub fail_open: bool,
    /// Time for the whole guarded call, from its start (default none: only the policy bounds
    /// it). No attempt starts at or after it, and a retry that would come at or after it is
    /// not waited for: the call ends with [`GuardError::Deadline`].
    pub deadline: Option<std::time::Duration>,
}

impl<'a> GuardSpec<'a> {
    /// Cost 1, no tier, [`RetryPolicy::DEFAULT`], fail closed, no deadline.
    pub fn new(limit_key: &'a str, operation: &'a str, breaker: &'a str) -> GuardSpec<'a> {
        GuardSpec {
            limit_key,
            operation,
            cost: 1,
            tier: None,
            breaker,
            retry: RetryPolicy::DEFAULT,
            fail_open: false,
            deadline: None,
        }
    }
}

/// Why a guarded call did not return the closure's value.
#[derive(Debug, PartialEq, Eq)]
pub enum GuardError<E> {
    /// The rate limit denied the call; the closure did not run.
    RateLimited {
        /// When to retry, if the daemon said.
        retry_after_ms: Option<u64>,
    },
    /// The breaker is open: before the first attempt (`last_error` is `None`), or before a
    /// retry (`last_error` is the closure's last failure).
    CircuitOpen {
        /// When the breaker half-opens, if the daemon said.
        retry_after_ms: Option<u64>,
        /// The closure's last failure, when it ran at least once.
        last_error: Option<E>,
    },
    /// The daemon could not be reached and the guard fails closed.
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The daemon answered the rate-limit or breaker call with an unexpected error.
    Daemon {
        /// The error code.
        code: String,
        /// The daemon's message.
        message: String,
    },
    /// The deadline ([`GuardSpec::deadline`]) came before the next attempt could start.
    Deadline {
        /// The closure's last failure, when it ran at least once.
        last_error: Option<E>,
        /// Attempts made.
        attempts: u32,
    },
    /// The closure failed on every attempt the policy allowed.
    Failed {
        /// Its last failure.
        error: E,
        /// Attempts made.
        attempts: u32,
    },
}

impl<E: fmt::Display> fmt::Display for GuardError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let after = |ms: &Option<u64>| ms.map(|ms| format!(" (retry after {ms} ms)"));
        match self {
            GuardError::RateLimited { retry_after_ms } => {
                write!(
                    f,
                    "rate limited{}",
                    after(retry_after_ms).unwrap_or_default()
                )
            }
            GuardError::CircuitOpen {
                retry_after_ms,
                last_error,
            } => {
                write!(
                    f,
                    "circuit open{}",
                    after(retry_after_ms).unwrap_or_default()
                )?;
                match last_error {
                    Some(e) => write!(f, "; last error: {e}"),
                    None => Ok(()),
                }
            }
            GuardError::Unavailable { reason } => write!(f, "kernel daemon unavailable: {reason}"),
            GuardError::Daemon { code, message } => write!(f, "daemon error {code}: {message}"),
            GuardError::Deadline {
                last_error,
                attempts,
            } => {
                write!(f, "deadline reached after {attempts} attempts")?;
                match last_error {
                    Some(e) => write!(f, "; last error: {e}"),
                    None => Ok(()),
                }
            }
            GuardError::Failed { error, attempts } => {
                write!(f, "failed after {attempts} attempts: {error}")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GuardError<E> {}

/// A guard step's answer from the daemon, classified.
enum Step<'r> {
    /// A success reply.
    Granted(&'r serde_json::Value),
    /// An error reply with this code (and maybe `retry_after_ms`).
    Refused(&'r str),
    /// No usable reply: unreachable or timed out.
    Down,
}

fn step(result: &CallResult) -> Step<'_> {
    match (result.status, &result.payload, &result.error_code) {
        (CallStatus::Ok, Some(payload), _) => Step::Granted(payload),
        (CallStatus::Error, _, Some(code)) => Step::Refused(code),
        _ => Step::Down,
    }
}

fn daemon_error<E>(result: &CallResult) -> GuardError<E> {
    GuardError::Daemon {
        code: result
            .error_code
            .clone()
            .unwrap_or_else(|| "UNKNOWN".into()),
        message: result.reason.clone().unwrap_or_default(),
    }
}

/// Why the daemon could not be reached.
fn unavailable(result: &CallResult) -> String {
    result
        .reason
        .clone()
        .unwrap_or_else(|| result.status.to_string())
}

/// What the daemon's breaker said to the last `BREAKER_ACQUIRE` or `BREAKER_RECORD`, kept for
/// the caller's error.
#[derive(Default)]
struct Heard {
    /// The permit of the attempt in progress.
    permit: Option<String>,
    /// `retry_after_ms` of a refused acquire.
    refused_after_ms: Option<u64>,
    /// How long the breaker stays open, from the last record reply.
    open_for_ms: Option<u64>,
    /// Why the daemon could not be reached, when it could not.
    down: Option<String>,
}

impl Client {
    /// Runs `f` under `spec`'s rate limit and breaker, retrying its failures (see the module
    /// docs for the order of calls and the fail-open rule).
    pub fn guard<T, E>(
        &self,
        spec: &GuardSpec<'_>,
        mut f: impl FnMut() -> Result<T, E>,
    ) -> Result<T, GuardError<E>> {
        let config = GuardConfig::new(spec.retry)
            .with_limit(true)
            .with_fail_open(spec.fail_open);
        let mut now = self.clock.now();
        let deadline = spec
            .deadline
            .map(|d| now.saturating_add(heidi_core::Duration::from_micros(d.as_micros() as u64)));
        let mut guard = Guard::new(config, deadline);
        let mut heard = Heard::default();
        let (mut value, mut last_error) = (None, None);
        // When the guard last decided (after a record): retry delays count from there.
        let mut decided = now;
        let finish = loop {
            // The daemon calls and the closure take time; a test's sleeper does not.
            now = self.clock.now().max(now);
            let answer = match guard.poll(now) {
                Action::Limit => Answer::Limit(self.limit(spec, &mut heard)?),
                Action::Acquire => Answer::Acquire(self.acquire(spec, now, &mut heard)?),
                Action::Attempt { .. } => match f() {
                    Ok(v) => {
                        value = Some(v);
                        Answer::Succeeded
                    }
                    Err(e) => {
                        last_error = Some(e);
                        let verdict = Class::Failure.verdict();
                        let random = pause::random_u64();
                        Answer::Failed { verdict, random }
                    }
                },
                Action::Record(input) => {
                    let kind = match input {
                        heidi_core::upstream::BreakerInput::Success => BreakerOutcome::Success,
                        _ => BreakerOutcome::Failure,
                    };
                    heard.open_for_ms = heard.permit.take().and_then(|p| {
                        let record = self.breaker_record(spec.breaker, &p, kind, None);
                        record.payload.as_ref().and_then(breaker_open_for_ms)
                    });
                    now = self.clock.now().max(now);
                    decided = now;
                    let open_until = heard
                        .open_for_ms
                        .map(|ms| now.saturating_add(heidi_core::Duration::from_millis(ms)));
                    Answer::Recorded { open_until }
                }
                // The client has no retry budget: the guard never asks.
                Action::CountRequest => Answer::Counted,
                Action::TakeRetry => Answer::Budget(Ok(())),
                Action::Wait(at) => {
                    let wait = at.saturating_duration_since(decided);
                    self.sleeper.sleep(pause::to_std(wait));
                    // The sleeper slept until `at` (a test's sleeper only records the delay).
                    now = self.clock.now().max(at);
                    continue;
                }
                Action::Done(finish) => break finish,
            };
            if guard.handle(now, answer).is_err() {
                // Not reached: every answer above fits its action.
                return Err(GuardError::Daemon {
                    code: codes::BAD_REPLY.into(),
                    message: "guard: unexpected step".into(),
                });
            }
        };
        match (finish.result, value, last_error) {
            (Ok(()), Some(v), _) => Ok(v),
            (Err(GaveUp::BreakerRefused { .. }), _, last_error) => Err(GuardError::CircuitOpen {
                retry_after_ms: heard.refused_after_ms,
                last_error,
            }),
            (Err(GaveUp::Retry(GiveUpReason::BreakerOpen { .. })), _, last_error) => {
                Err(GuardError::CircuitOpen {
                    retry_after_ms: heard.open_for_ms,
                    last_error,
                })
            }
            (Err(GaveUp::Deadline), _, last_error) => Err(GuardError::Deadline {
                last_error,
                attempts: finish.attempts,
            }),
            (Err(GaveUp::Unavailable), _, _) => Err(GuardError::Unavailable {
                reason: heard.down.unwrap_or_default(),
            }),
            (_, _, Some(error)) => Err(GuardError::Failed {
                error,
                attempts: finish.attempts,
            }),
            // Not reached: a call that gave up without running the closure stopped above.
            (result, _, None) => Err(GuardError::Daemon {
                code: codes::BAD_REPLY.into(),
                message: format!("guard ended without a result: {result:?}"),
            }),
        }
    }

    /// `RATE_LIMIT_CONSUME`, as the guard's permission (the guard decides what an
    /// unreachable daemon means); a refusal or a daemon error ends the guarded call here.
    fn limit<E>(
        &self,
        spec: &GuardSpec<'_>,
        heard: &mut Heard,
    ) -> Result<Permission, GuardError<E>> {
        let limit = self.rate_limit_consume(spec.limit_key, spec.operation, spec.cost, spec.tier);
        let limited = || GuardError::RateLimited {
            retry_after_ms: limit.retry_after_ms(),
        };
        match step(&limit) {
            Step::Granted(p) if limit_allowed(p) => Ok(Permission::Granted),
            Step::Granted(_) => Err(limited()),
            Step::Refused(code) if code == ErrorCode::RateLimited.as_str() => Err(limited()),
            Step::Refused(_) => Err(daemon_error(&limit)),
            Step::Down => {
                heard.down = Some(unavailable(&limit));
                Ok(Permission::Unavailable)
            }
        }
    }

    /// `BREAKER_ACQUIRE`, as the guard's permission (the permit kept in `heard`); a daemon
    /// error ends the guarded call here.
    fn acquire<E>(
        &self,
        spec: &GuardSpec<'_>,
        now: heidi_core::Instant,
        heard: &mut Heard,
    ) -> Result<Permission, GuardError<E>> {
        let acquired = self.breaker_acquire(spec.breaker);
        match step(&acquired) {
            Step::Granted(p) => match id_of(p, "permit") {
                Some(permit) => {
                    heard.permit = Some(permit);
                    Ok(Permission::Granted)
                }
                None => Err(GuardError::Daemon {
                    code: codes::BAD_REPLY.into(),
                    message: "BREAKER_ACQUIRE reply has no permit".into(),
                }),
            },
            Step::Refused(code) if code == ErrorCode::CircuitOpen.as_str() => {
                heard.refused_after_ms = acquired.retry_after_ms();
                let retry_at = heard
                    .refused_after_ms
                    .map(|ms| now.saturating_add(heidi_core::Duration::from_millis(ms)));
                Ok(Permission::Refused { retry_at })
            }
            Step::Refused(_) => Err(daemon_error(&acquired)),
            // The guard decides: fail open (go on unguarded) or closed.
            Step::Down => {
                heard.down = Some(unavailable(&acquired));
                Ok(Permission::Unavailable)
            }
        }
    }
}
