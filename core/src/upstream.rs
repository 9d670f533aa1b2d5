//! Forwarding calls to an upstream (the gRPC sidecar): what a failed call means, whether a
//! batch reply answers its batch, and what the callers are told.
//!
//! - [`classify`] maps a gRPC status code of a failed upstream call to a [`Verdict`]: is it
//!   worth retrying (with the same idempotency keys), and does it count against the breaker.
//!   Only server-side trouble counts (the upstream is down, slow, overloaded or broken); a
//!   request the upstream refuses on its merits is the caller's problem and is neither
//!   retried nor held against the upstream.
//! - [`check_reply`] verifies that a batch reply holds exactly one result per transaction,
//!   in the batch's order (matched by idempotency key). A reply that does not is a broken
//!   upstream: the whole batch fails ([`ReplyMismatch::VERDICT`]), and no caller ever receives
//!   another caller's result.
//! - Idempotency keys are checked by [`txn_check`](crate::txn_check), shared with the
//!   reference upstream.
//! - [`give_up_code`] picks the status code callers get when a batch is given up, and
//!   [`serving`] the health a host reports for a breaker state.
//!
//! Codes are the numeric gRPC codes of the wire (`0` OK … `16` UNAUTHENTICATED), so this
//! module needs no gRPC library.

use crate::breaker::State;
use crate::retry::GiveUpReason;
use core::fmt;

/// gRPC status codes used by this module (the numbering of `grpc/status.proto`).
pub mod code {
    /// The call was cancelled, usually by the caller.
    pub const CANCELLED: i32 = 1;
    /// An unknown error.
    pub const UNKNOWN: i32 = 2;
    /// The request is invalid whatever the upstream's state.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The deadline passed before the call completed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// A resource (a quota, a queue) is exhausted.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// The operation was aborted (a concurrency conflict).
    pub const ABORTED: i32 = 10;
    /// The method is not implemented by the server.
    pub const UNIMPLEMENTED: i32 = 12;
    /// An internal error of the server.
    pub const INTERNAL: i32 = 13;
    /// The service is unavailable (down, unreachable, refusing connections).
    pub const UNAVAILABLE: i32 = 14;
    /// Unrecoverable data loss.
    pub const DATA_LOSS: i32 = 15;
}

/// What a failed upstream call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Verdict {
    /// Worth another attempt with the same idempotency keys (subject to the retry policy,
    /// the retry budget and the breaker).
    pub retryable: bool,
    /// Counts as a failure of the upstream for its circuit breaker. When `false` the call is
    /// recorded as a success: the upstream answered, it just refused the request.
    pub breaker_failure: bool,
}

/// The verdict on a failed call whose gRPC status code is `code`.
///
/// | code | retryable | breaker failure |
/// |---|---|---|
/// | UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN | yes | yes |
/// | UNIMPLEMENTED, DATA_LOSS | no | yes |
/// | anything else (INVALID_ARGUMENT, CANCELLED, NOT_FOUND, PERMISSION_DENIED, …) | no | no |
///
/// Retrying is safe for every retryable code because a repeated transaction carries the same
/// idempotency key and the upstream applies a key at most once.
pub const fn classify(code: i32) -> Verdict {
    use code::*;
    match code {
        UNAVAILABLE | DEADLINE_EXCEEDED | RESOURCE_EXHAUSTED | ABORTED | INTERNAL | UNKNOWN => {
            Verdict {
                retryable: true,
                breaker_failure: true,
            }
        }
        UNIMPLEMENTED | DATA_LOSS => Verdict {
            retryable: false,
            breaker_failure: true,
        },
        _ => Verdict {
            retryable: false,
            breaker_failure: false,
        },
    }
}

/// A batch reply that does not answer its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyMismatch {
    /// The reply holds `got` results for `sent` transactions.
    Count {
        /// Transactions sent.
        sent: usize,
        /// Results received.
        got: usize,
    },
    /// The result at `position` carries another idempotency key than the transaction there.
    Key {
        /// Zero-based position in the batch.
        position: usize,
    },
}

impl ReplyMismatch {
    /// A mismatched reply fails the whole batch without a retry (the upstream is broken, not
    /// overloaded) and counts against the breaker.
    pub const VERDICT: Verdict = Verdict {
        retryable: false,
        breaker_failure: true,
    };

    /// The gRPC code callers get for a batch whose reply did not match: INTERNAL.
    pub const CODE: i32 = code::INTERNAL;
}

impl fmt::Display for ReplyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyMismatch::Count { sent, got } => write!(
                f,
                "upstream returned {got} receipts for {sent} transactions"
            ),
            ReplyMismatch::Key { position } => write!(
                f,
                "upstream receipt {position} carries another idempotency key than its transaction"
            ),
        }
    }
}

impl core::error::Error for ReplyMismatch {}

/// Checks that `received` (the keys of the reply's results, in order) answers `sent` (the
/// keys of the batch's transactions, in order): same count, same key at every position.
pub fn check_reply<'a, 'b>(
    sent: impl ExactSizeIterator<Item = &'a str>,
    received: impl ExactSizeIterator<Item = &'b str>,
) -> Result<(), ReplyMismatch> {
    let (sent_len, got) = (sent.len(), received.len());
    if sent_len != got {
        return Err(ReplyMismatch::Count {
            sent: sent_len,
            got,
        });
    }
    match sent.zip(received).position(|(s, r)| s != r) {
        Some(position) => Err(ReplyMismatch::Key { position }),
        None => Ok(()),
    }
}

/// The gRPC code callers get when a batch is given up after a failure with code
/// `last_code`: UNAVAILABLE when the breaker is open (come back after the hint), else the
/// last failure's own code (DEADLINE_EXCEEDED for a slow upstream, UNAVAILABLE for one that
/// is down, …), whether the attempts or the retry budget ran out.
pub const fn give_up_code(last_code: i32, reason: GiveUpReason) -> i32 {
    match reason {
        GiveUpReason::BreakerOpen { .. } => code::UNAVAILABLE,
        GiveUpReason::AttemptsExhausted { .. } | GiveUpReason::BudgetExhausted { .. } => last_code,
    }
}

/// How a forwarding host reports its own health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Serving {
    /// Serving; the upstream breaker lets calls through.
    Serving,
    /// Serving, but the breaker is open or probing: submissions may be refused.
    Degraded,
    /// Not serving (shutting down).
    NotServing,
}

/// The health of a forwarding host whose upstream breaker is in `state`, while it is
/// `closing` (shutting down) or not.
pub const fn serving(state: State, closing: bool) -> Serving {
    match (closing, state) {
        (true, _) => Serving::NotServing,
        (false, State::Closed | State::Disabled) => Serving::Serving,
        (false, State::Open | State::HalfOpen | State::ForcedOpen) => Serving::Degraded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instant;

    #[test]
    fn server_trouble_is_retried_and_counted() {
        for c in [
            code::UNAVAILABLE,
            code::DEADLINE_EXCEEDED,
            code::RESOURCE_EXHAUSTED,
            code::ABORTED,
            code::INTERNAL,
            code::UNKNOWN,
        ] {
            assert_eq!(
                classify(c),
                Verdict {
                    retryable: true,
                    breaker_failure: true
                },
                "code {c}"
            );
        }
        for c in [code::UNIMPLEMENTED, code::DATA_LOSS] {
            let v = classify(c);
            assert!(!v.retryable && v.breaker_failure, "code {c}");
        }
        for c in [
            code::CANCELLED,
            code::INVALID_ARGUMENT,
            5,
            6,
            7,
            9,
            11,
            16,
            0,
            -1,
            99,
        ] {
            let v = classify(c);
            assert!(!v.retryable && !v.breaker_failure, "code {c}");
        }
    }

    #[test]
    fn replies_must_match_count_and_keys_in_order() {
        let sent = ["a", "b", "c"];
        assert_eq!(
            check_reply(sent.into_iter(), ["a", "b", "c"].into_iter()),
            Ok(())
        );
        assert_eq!(
            check_reply(sent.into_iter(), ["a", "b"].into_iter()),
            Err(ReplyMismatch::Count { sent: 3, got: 2 })
        );
        assert_eq!(
            check_reply(sent.into_iter(), ["a", "b", "c", "d"].into_iter()),
            Err(ReplyMismatch::Count { sent: 3, got: 4 })
        );
        assert_eq!(
            check_reply(sent.into_iter(), ["a", "c", "b"].into_iter()),
            Err(ReplyMismatch::Key { position: 1 })
        );
        assert_eq!(check_reply([].into_iter(), [].into_iter()), Ok(()));
        let verdict = ReplyMismatch::VERDICT;
        assert!(!verdict.retryable && verdict.breaker_failure);
        assert_eq!(classify(ReplyMismatch::CODE), classify(code::INTERNAL));
    }

    #[test]
    fn give_up_codes() {
        let until = Instant::from_secs(5);
        let open = GiveUpReason::BreakerOpen { until };
        assert_eq!(
            give_up_code(code::DEADLINE_EXCEEDED, open),
            code::UNAVAILABLE
        );
        let spent = GiveUpReason::BudgetExhausted { retry_at: until };
        assert_eq!(
            give_up_code(code::DEADLINE_EXCEEDED, spent),
            code::DEADLINE_EXCEEDED
        );
        let tried = GiveUpReason::AttemptsExhausted { attempts: 4 };
        assert_eq!(give_up_code(code::UNAVAILABLE, tried), code::UNAVAILABLE);
    }

    #[test]
    fn serving_follows_the_breaker() {
        assert_eq!(serving(State::Closed, false), Serving::Serving);
        assert_eq!(serving(State::Disabled, false), Serving::Serving);
        for s in [State::Open, State::HalfOpen, State::ForcedOpen] {
            assert_eq!(serving(s, false), Serving::Degraded);
        }
        assert_eq!(serving(State::Closed, true), Serving::NotServing);
    }

    #[test]
    fn displays() {
        extern crate std;
        use std::string::ToString;
        assert!(
            ReplyMismatch::Count { sent: 3, got: 2 }
                .to_string()
                .contains("2 receipts for 3")
        );
        assert!(ReplyMismatch::Key { position: 1 }.to_string().contains('1'));
    }
}
