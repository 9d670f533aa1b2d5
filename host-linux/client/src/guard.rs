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
//! the guarded call with [`GuardError::CircuitOpen`]. What each daemon reply means to the
//! guard is the core's too (`heidi_core::guard::remote`); this module reads the fields.
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

use heidi_core::guard::remote::{self, Reply, Said, Unusable};
use heidi_core::guard::{Action, Answer, GaveUp, Guard, GuardConfig};
use heidi_core::retry::{GiveUpReason, RetryPolicy};
use heidi_core::upstream::Class;
use serde_json::Value;

use super::methods::{breaker_record_params, id_of};
use super::result::codes;
use super::{CallResult, CallStatus, Client, pause};
use heidi_core::proto::Method;

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

/// The fields of the daemon's reply the core's rules read (`heidi_core::guard::remote`).
fn reply_of(result: &CallResult) -> Reply<'_> {
    match (result.status, &result.payload, &result.error_code) {
        (CallStatus::Ok, Some(p), _) => Reply::Success(Said {
            allowed: p.get("allowed").and_then(Value::as_bool),
            permit: id_of(p, "permit").and_then(|id| id.parse().ok()),
            state: p.get("state").and_then(Value::as_str),
            retry_after_ms: result.retry_after_ms(),
        }),
        (CallStatus::Error, _, Some(code)) => Reply::Error {
            code,
            retry_after_ms: result.retry_after_ms(),
        },
        _ => Reply::Down,
    }
}

/// The guarded call's error for a reply it cannot go on with.
fn daemon_error<E>(method: Method, result: &CallResult, unusable: Unusable<'_>) -> GuardError<E> {
    match unusable {
        Unusable::Error { code } => GuardError::Daemon {
            code: code.to_owned(),
            message: result.reason.clone().unwrap_or_default(),
        },
        Unusable::NoPermit => GuardError::Daemon {
            code: codes::BAD_REPLY.into(),
            message: format!("{method} reply has no permit"),
        },
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
    permit: Option<u64>,
    /// `retry_after_ms` of a refused limit.
    limited_after_ms: Option<u64>,
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
                Action::Limit => self.limit(spec, now, &mut heard)?,
                Action::Acquire => self.acquire(spec, now, &mut heard)?,
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
                    let record = heard.permit.take().map(|permit| {
                        let outcome = remote::outcome(input);
                        let params =
                            breaker_record_params(spec.breaker, &permit.to_string(), outcome, None);
                        self.call(Method::BreakerRecord.as_str(), params)
                    });
                    now = self.clock.now().max(now);
                    decided = now;
                    let answer = remote::recorded(now, record.as_ref().map(reply_of));
                    heard.open_for_ms = match answer {
                        Answer::Recorded {
                            open_until: Some(until),
                        } => Some(until.saturating_duration_since(now).as_millis()),
                        _ => None,
                    };
                    answer
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
            (Err(GaveUp::RateLimited { .. }), _, _) => Err(GuardError::RateLimited {
                retry_after_ms: heard.limited_after_ms,
            }),
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

    /// `RATE_LIMIT_CONSUME`, as the guard's answer; a daemon error ends the guarded call here.
    fn limit<E>(
        &self,
        spec: &GuardSpec<'_>,
        now: heidi_core::Instant,
        heard: &mut Heard,
    ) -> Result<Answer, GuardError<E>> {
        let limit = self.rate_limit_consume(spec.limit_key, spec.operation, spec.cost, spec.tier);
        let reply = reply_of(&limit);
        heard.note(&limit, reply);
        heard.limited_after_ms = limit.retry_after_ms();
        remote::limit(now, reply).map_err(|u| daemon_error(Method::RateLimitConsume, &limit, u))
    }

    /// `BREAKER_ACQUIRE`, as the guard's answer (the permit kept in `heard`); a daemon error
    /// ends the guarded call here.
    fn acquire<E>(
        &self,
        spec: &GuardSpec<'_>,
        now: heidi_core::Instant,
        heard: &mut Heard,
    ) -> Result<Answer, GuardError<E>> {
        let acquired = self.breaker_acquire(spec.breaker);
        let reply = reply_of(&acquired);
        heard.note(&acquired, reply);
        heard.refused_after_ms = acquired.retry_after_ms();
        let (permit, answer) = remote::acquire(now, reply)
            .map_err(|u| daemon_error(Method::BreakerAcquire, &acquired, u))?;
        heard.permit = permit;
        Ok(answer)
    }
}

impl Heard {
    /// Keeps why the daemon could not be reached, when it could not (the guard decides what
    /// that means: fail open, or closed).
    fn note(&mut self, result: &CallResult, reply: Reply<'_>) {
        if reply == Reply::Down {
            self.down = Some(unavailable(result));
        }
    }
}
