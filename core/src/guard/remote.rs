//! The answers of a rate limiter and breaker that live in a daemon: what a driver whose
//! [`Action::Limit`](super::Action::Limit), [`Action::Acquire`](super::Action::Acquire) and
//! [`Action::Record`](super::Action::Record) are `RATE_LIMIT_CONSUME`, `BREAKER_ACQUIRE` and
//! `BREAKER_RECORD` calls (the client library) gives the guard for the daemon's replies.
//!
//! The driver reads the few fields the guard needs off the reply ([`Reply`]); the rules of
//! what they mean are here:
//!
//! - a limit reply grants unless it says `"allowed":false` or is a `RATE_LIMITED` error;
//! - an acquire reply grants with its `permit`, and a `CIRCUIT_OPEN` error refuses;
//! - either refusal comes back at `retry_after_ms`, when the reply names it;
//! - a daemon that could not be reached is [`Permission::Unavailable`] (the guard then fails
//!   open or closed);
//! - any other error, or a grant without a permit, ends the guarded call ([`Unusable`]);
//! - a record reply saying `"state":"open"` with `retry_after_ms` is the breaker's open time;
//!   a record that failed tells the guard nothing (the call already ran).
//!
//! ```
//! use heidi_core::guard::remote::{self, Reply, Said};
//! use heidi_core::guard::{Answer, Permission};
//! use heidi_core::{Duration, Instant};
//!
//! let now = Instant::from_millis(1_000);
//! let denied = Reply::Success(Said { allowed: Some(false), retry_after_ms: Some(250), ..Said::NONE });
//! let retry_at = Some(now + Duration::from_millis(250));
//! assert_eq!(remote::limit(now, denied), Ok(Answer::Limit(Permission::Refused { retry_at })));
//! assert_eq!(remote::limit(now, Reply::Down), Ok(Answer::Limit(Permission::Unavailable)));
//! ```

use super::{Answer, Permission};
use crate::proto::ErrorCode;
use crate::time::{Duration, Instant};
use crate::upstream::BreakerInput;

/// A daemon's reply to one of the guard's calls, as the driver read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A success reply, with the fields the guard reads.
    Success(Said<'a>),
    /// An error reply: its `code` as on the wire, and `retry_after_ms` when it has one.
    Error {
        /// The error code.
        code: &'a str,
        /// When to come back, in milliseconds from the reply.
        retry_after_ms: Option<u64>,
    },
    /// No usable reply: the daemon could not be reached, or did not answer in time.
    Down,
}

/// The fields of a success reply the guard reads (absent: `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Said<'a> {
    /// `allowed` (`RATE_LIMIT_CONSUME`).
    pub allowed: Option<bool>,
    /// `permit` (`BREAKER_ACQUIRE`), read as a number from its decimal string.
    pub permit: Option<u64>,
    /// `state` (`BREAKER_RECORD`): the breaker's state after the record.
    pub state: Option<&'a str>,
    /// `retry_after_ms`.
    pub retry_after_ms: Option<u64>,
}

impl Said<'_> {
    /// No field.
    pub const NONE: Said<'static> = Said {
        allowed: None,
        permit: None,
        state: None,
        retry_after_ms: None,
    };
}

/// A reply that ends the guarded call: the daemon answered, but not with anything the guard
/// can go on with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable<'a> {
    /// An error the guard has no rule for (`BAD_REQUEST`, `FORBIDDEN`, `OVERLOADED`, …).
    Error {
        /// The error code, as on the wire.
        code: &'a str,
    },
    /// A `BREAKER_ACQUIRE` grant without a permit.
    NoPermit,
}

fn after(now: Instant, ms: Option<u64>) -> Option<Instant> {
    ms.map(|ms| now.saturating_add(Duration::from_millis(ms)))
}

/// The answer to [`Action::Limit`](super::Action::Limit) for the daemon's `RATE_LIMIT_CONSUME`
/// reply, received at `now`.
pub fn limit(now: Instant, reply: Reply<'_>) -> Result<Answer, Unusable<'_>> {
    let permission = match reply {
        Reply::Success(said) if said.allowed == Some(false) => Permission::Refused {
            retry_at: after(now, said.retry_after_ms),
        },
        Reply::Success(_) => Permission::Granted,
        Reply::Error {
            code,
            retry_after_ms,
        } if code == ErrorCode::RateLimited.as_str() => Permission::Refused {
            retry_at: after(now, retry_after_ms),
        },
        Reply::Error { code, .. } => return Err(Unusable::Error { code }),
        Reply::Down => Permission::Unavailable,
    };
    Ok(Answer::Limit(permission))
}

/// The answer to [`Action::Acquire`](super::Action::Acquire) for the daemon's
/// `BREAKER_ACQUIRE` reply, received at `now`, and the permit to return with the record.
pub fn acquire(now: Instant, reply: Reply<'_>) -> Result<(Option<u64>, Answer), Unusable<'_>> {
    let (permit, permission) = match reply {
        Reply::Success(Said {
            permit: Some(permit),
            ..
        }) => (Some(permit), Permission::Granted),
        Reply::Success(_) => return Err(Unusable::NoPermit),
        Reply::Error {
            code,
            retry_after_ms,
        } if code == ErrorCode::CircuitOpen.as_str() => {
            let retry_at = after(now, retry_after_ms);
            (None, Permission::Refused { retry_at })
        }
        Reply::Error { code, .. } => return Err(Unusable::Error { code }),
        Reply::Down => (None, Permission::Unavailable),
    };
    Ok((permit, Answer::Acquire(permission)))
}

/// The answer to [`Action::Record`](super::Action::Record) for the daemon's `BREAKER_RECORD`
/// reply, received at `now` (`None`: no record was sent, there was no permit to return).
pub fn recorded(now: Instant, reply: Option<Reply<'_>>) -> Answer {
    let open_for = match reply {
        Some(Reply::Success(said)) if said.state == Some("open") => said.retry_after_ms,
        _ => None,
    };
    Answer::Recorded {
        open_until: after(now, open_for),
    }
}

/// `BREAKER_RECORD`'s `outcome` for what the guard tells the breaker: `success`, `failure`,
/// or `abandoned` for a permit returned unused.
pub fn outcome(input: BreakerInput) -> &'static str {
    match input {
        BreakerInput::Success => "success",
        BreakerInput::Failure => "failure",
        BreakerInput::Neutral => "abandoned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Instant = Instant::from_millis(5_000);

    fn at(ms: u64) -> Option<Instant> {
        Some(NOW + Duration::from_millis(ms))
    }

    fn error(code: &str, retry_after_ms: Option<u64>) -> Reply<'_> {
        Reply::Error {
            code,
            retry_after_ms,
        }
    }

    #[test]
    fn limit_replies() {
        let said = |allowed, retry_after_ms| {
            Reply::Success(Said {
                allowed,
                retry_after_ms,
                ..Said::NONE
            })
        };
        let refused = |retry_at| Ok(Answer::Limit(Permission::Refused { retry_at }));
        let granted = Ok(Answer::Limit(Permission::Granted));
        assert_eq!(limit(NOW, said(None, None)), granted);
        assert_eq!(limit(NOW, said(Some(true), Some(9))), granted);
        assert_eq!(limit(NOW, said(Some(false), Some(40))), refused(at(40)));
        assert_eq!(limit(NOW, said(Some(false), None)), refused(None));
        assert_eq!(limit(NOW, error("RATE_LIMITED", Some(7))), refused(at(7)));
        assert_eq!(
            limit(NOW, error("OVERLOADED", Some(7))),
            Err(Unusable::Error { code: "OVERLOADED" })
        );
        assert_eq!(
            limit(NOW, Reply::Down),
            Ok(Answer::Limit(Permission::Unavailable))
        );
    }

    #[test]
    fn acquire_replies() {
        let with = |permit| {
            Reply::Success(Said {
                permit,
                ..Said::NONE
            })
        };
        let granted = Answer::Acquire(Permission::Granted);
        assert_eq!(acquire(NOW, with(Some(42))), Ok((Some(42), granted)));
        assert_eq!(acquire(NOW, with(None)), Err(Unusable::NoPermit));
        let refused = |retry_at| Ok((None, Answer::Acquire(Permission::Refused { retry_at })));
        assert_eq!(
            acquire(NOW, error("CIRCUIT_OPEN", Some(300))),
            refused(at(300))
        );
        assert_eq!(acquire(NOW, error("CIRCUIT_OPEN", None)), refused(None));
        assert_eq!(
            acquire(NOW, error("RATE_LIMITED", None)),
            Err(Unusable::Error {
                code: "RATE_LIMITED"
            })
        );
        assert_eq!(
            acquire(NOW, Reply::Down),
            Ok((None, Answer::Acquire(Permission::Unavailable)))
        );
    }

    #[test]
    fn record_replies() {
        let state = |state, retry_after_ms| {
            Some(Reply::Success(Said {
                state: Some(state),
                retry_after_ms,
                ..Said::NONE
            }))
        };
        let open_until = |o| Answer::Recorded { open_until: o };
        assert_eq!(recorded(NOW, state("open", Some(30))), open_until(at(30)));
        assert_eq!(recorded(NOW, state("open", None)), open_until(None));
        assert_eq!(recorded(NOW, state("closed", Some(30))), open_until(None));
        assert_eq!(recorded(NOW, Some(Reply::Down)), open_until(None));
        assert_eq!(
            recorded(NOW, Some(error("INTERNAL", Some(1)))),
            open_until(None)
        );
        assert_eq!(recorded(NOW, None), open_until(None));
        let names = [
            BreakerInput::Success,
            BreakerInput::Failure,
            BreakerInput::Neutral,
        ]
        .map(outcome);
        assert_eq!(names, ["success", "failure", "abandoned"]);
    }
}
