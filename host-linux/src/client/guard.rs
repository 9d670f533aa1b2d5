//! [`Client::guard`]: run a closure under the daemon's rate limit and circuit breaker, retrying
//! its failures with the core's [`RetryPolicy`].
//!
//! Order: one `RATE_LIMIT_CONSUME` for the whole guarded call; then per attempt
//! `BREAKER_ACQUIRE`, the closure, `BREAKER_RECORD` with the permit and the outcome. A failed
//! attempt is retried when [`RetryPolicy::next`] says so (exponential delay, jitter ≤ cap, from
//! the core); an open breaker is never retried into: a `CIRCUIT_OPEN` answer to the next
//! acquire, or a record reply saying the breaker opened for longer than the retry delay, ends
//! the guarded call with [`GuardError::CircuitOpen`].
//!
//! When the daemon cannot be reached (unavailable or timed out) the guard fails closed with
//! [`GuardError::Unavailable`], unless [`GuardSpec::fail_open`] is set: then the closure runs
//! (and is retried per the policy) without rate limit or breaker.
//!
//! A `BREAKER_RECORD` that fails (after the client's own transport retries) never changes the
//! result: the closure already ran, and its outcome is what the caller gets.

use std::fmt;

use heidi_core::proto::ErrorCode;
use heidi_core::retry::{GiveUpReason, RetryDecision, RetryPolicy};

use super::methods::{BreakerOutcome, breaker_open_for_ms, limit_allowed, permit_of};
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
    /// The circuit breaker's name.
    pub breaker: &'a str,
    /// How the closure's failures are retried.
    pub retry: RetryPolicy,
    /// Run the closure unguarded when the daemon is unreachable (default false: fail closed).
    pub fail_open: bool,
}

impl<'a> GuardSpec<'a> {
    /// Cost 1, [`RetryPolicy::DEFAULT`], fail closed.
    pub fn new(limit_key: &'a str, operation: &'a str, breaker: &'a str) -> GuardSpec<'a> {
        GuardSpec {
            limit_key,
            operation,
            cost: 1,
            breaker,
            retry: RetryPolicy::DEFAULT,
            fail_open: false,
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

fn unavailable<E>(result: &CallResult) -> GuardError<E> {
    GuardError::Unavailable {
        reason: result
            .reason
            .clone()
            .unwrap_or_else(|| result.status.to_string()),
    }
}

impl Client {
    /// Runs `f` under `spec`'s rate limit and breaker, retrying its failures (see the module
    /// docs for the order of calls and the fail-open rule).
    pub fn guard<T, E>(
        &self,
        spec: &GuardSpec<'_>,
        mut f: impl FnMut() -> Result<T, E>,
    ) -> Result<T, GuardError<E>> {
        let mut unguarded = false;
        let limit = self.rate_limit_consume(spec.limit_key, spec.operation, spec.cost);
        match step(&limit) {
            Step::Granted(p) if limit_allowed(p) => {}
            Step::Granted(_) => {
                let retry_after_ms = limit.retry_after_ms();
                return Err(GuardError::RateLimited { retry_after_ms });
            }
            Step::Refused(code) if code == ErrorCode::RateLimited.as_str() => {
                let retry_after_ms = limit.retry_after_ms();
                return Err(GuardError::RateLimited { retry_after_ms });
            }
            Step::Refused(_) => return Err(daemon_error(&limit)),
            Step::Down if spec.fail_open => unguarded = true,
            Step::Down => return Err(unavailable(&limit)),
        }
        let mut attempts = 0u32;
        let mut last_error = None;
        loop {
            let permit = if unguarded {
                None
            } else {
                match self.acquire_permit(spec, last_error.take()) {
                    Ok(permit) => permit,
                    Err(Some(e)) => return Err(e),
                    Err(None) => {
                        unguarded = true;
                        None
                    }
                }
            };
            attempts += 1;
            let outcome = f();
            let kind = match outcome {
                Ok(_) => BreakerOutcome::Success,
                Err(_) => BreakerOutcome::Failure,
            };
            let open_for_ms = permit.and_then(|p| {
                let record = self.breaker_record(spec.breaker, &p, kind);
                record.payload.as_ref().and_then(breaker_open_for_ms)
            });
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            let now = self.clock.now();
            let open_until =
                open_for_ms.map(|ms| now.saturating_add(heidi_core::Duration::from_millis(ms)));
            match spec
                .retry
                .next(now, attempts, pause::random_u64(), open_until)
            {
                RetryDecision::RetryAt(at) => {
                    last_error = Some(error);
                    self.sleeper
                        .sleep(pause::to_std(at.saturating_duration_since(now)));
                }
                RetryDecision::GiveUp(GiveUpReason::BreakerOpen { .. }) => {
                    return Err(GuardError::CircuitOpen {
                        retry_after_ms: open_for_ms,
                        last_error: Some(error),
                    });
                }
                RetryDecision::GiveUp(_) => return Err(GuardError::Failed { error, attempts }),
            }
        }
    }

    /// `BREAKER_ACQUIRE`: `Ok(Some(permit))`; `Err(Some(e))` to stop; `Err(None)` when the
    /// daemon is down and the guard fails open.
    fn acquire_permit<E>(
        &self,
        spec: &GuardSpec<'_>,
        last_error: Option<E>,
    ) -> Result<Option<String>, Option<GuardError<E>>> {
        let acquired = self.breaker_acquire(spec.breaker);
        match step(&acquired) {
            Step::Granted(p) => match permit_of(p) {
                Some(permit) => Ok(Some(permit)),
                None => Err(Some(GuardError::Daemon {
                    code: codes::BAD_REPLY.into(),
                    message: "BREAKER_ACQUIRE reply has no permit".into(),
                })),
            },
            Step::Refused(code) if code == ErrorCode::CircuitOpen.as_str() => {
                Err(Some(GuardError::CircuitOpen {
                    retry_after_ms: acquired.retry_after_ms(),
                    last_error,
                }))
            }
            Step::Refused(_) => Err(Some(daemon_error(&acquired))),
            Step::Down if spec.fail_open => Err(None),
            Step::Down => Err(Some(unavailable(&acquired))),
        }
    }
}
