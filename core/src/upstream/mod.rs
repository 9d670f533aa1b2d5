//! Forwarding calls to an upstream (the gRPC sidecar): what a failed call means, whether a
//! batch reply answers its batch, and what the callers are told.
//!
//! - [`classify`] maps the gRPC status code and reason of a failed upstream call to a
//!   [`Verdict`] (the table is in its docs and in docs/SIDECAR.md): a refusal of the request
//!   fails its transactions and is neither retried nor held against the upstream; overload is
//!   retried with backoff without tripping the breaker; only transport and server failures
//!   count against the breaker.
//! - [`split_refusal`] decides which transactions of a refused call the refusal is about:
//!   the one the upstream names in [`REFUSED_INDEX_METADATA`] fails, the others are sent
//!   again without it (not a retry, nothing for the breaker); when the upstream names none,
//!   each transaction is sent alone once.
//! - [`check_reply`] verifies that a batch reply holds exactly one result per transaction,
//!   in the batch's order (matched by idempotency key). A reply that does not is a broken
//!   upstream: the whole batch fails ([`ReplyMismatch::VERDICT`]), and no caller ever receives
//!   another caller's result.
//! - Idempotency keys are checked by [`txn_check`](crate::txn_check), shared with the
//!   reference upstream.
//! - [`give_up_code`] picks the status code callers get when a batch is given up,
//!   [`Refusal::code`] the one of a call the host refuses itself, [`failed_call_code`] what
//!   a CANCELLED past its deadline counts as, and [`serving`] the health a host reports for a
//!   breaker state.
//!
//! Codes are the numeric gRPC codes of the wire (`0` OK … `16` UNAUTHENTICATED), so this
//! module needs no gRPC library.

mod batch_call;
mod classify;
mod split;

pub use batch_call::{CallOutcome, judge_call};
pub use classify::{BreakerInput, Class, REASON_METADATA, Reason, Verdict, classify, code};
pub use split::{
    MAX_SPLIT, Positions, REFUSED_INDEX_METADATA, Split, parse_refused_index, split_refusal,
};

use crate::Instant;
use crate::breaker::State;
use crate::retry::GiveUpReason;
use core::fmt;

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
    pub const VERDICT: Verdict = Class::Broken.verdict();

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

/// The message of a call the upstream's breaker refuses ([`Refusal::BreakerOpen`]): the
/// breaker's `state` and, but when it is forced open (`until` is [`Instant::MAX`]), how long
/// to wait (milliseconds from `now` to `until`, rounded up, so a client that waits that long
/// is never early).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerRefused {
    /// When the host refused.
    pub now: Instant,
    /// The breaker's state.
    pub state: State,
    /// When it may let a call through (the end of the open period, the deadline of the probe
    /// that is out).
    pub until: Instant,
}

impl BreakerRefused {
    /// Milliseconds to wait, rounded up.
    pub fn retry_after_ms(&self) -> u64 {
        self.until
            .saturating_duration_since(self.now)
            .as_millis_ceil()
    }
}

impl fmt::Display for BreakerRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.retry_after_ms();
        match self.state {
            _ if self.until == Instant::MAX => {
                f.write_str("circuit breaker to the upstream is forced open")
            }
            State::HalfOpen => write!(
                f,
                "circuit breaker to the upstream is half_open (its probe call is out); retry \
                 after {ms} ms"
            ),
            _ => write!(
                f,
                "circuit breaker to the upstream is open; retry after {ms} ms"
            ),
        }
    }
}

/// A call a forwarding host refuses itself, before it reaches the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// The upstream's breaker rejects calls now (open, forced open, or probing).
    BreakerOpen,
    /// The submission queue is full.
    QueueFull,
    /// The call's idempotency key is not a valid key.
    BadKey,
    /// The transaction can never fit in a batch message.
    TooLarge,
    /// The host is shutting down.
    ShuttingDown,
}

impl Refusal {
    /// The gRPC code the caller gets: UNAVAILABLE for what passes (the breaker, a host
    /// going away: try again, maybe elsewhere), RESOURCE_EXHAUSTED for a full queue (back
    /// off), INVALID_ARGUMENT for a call that will never be accepted as it is.
    #[must_use]
    pub const fn code(self) -> i32 {
        match self {
            Refusal::BreakerOpen | Refusal::ShuttingDown => code::UNAVAILABLE,
            Refusal::QueueFull => code::RESOURCE_EXHAUSTED,
            Refusal::BadKey | Refusal::TooLarge => code::INVALID_ARGUMENT,
        }
    }

    /// The label a host counts it under (`breaker_open`, `queue_full`, `invalid_argument`,
    /// `shutting_down`).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Refusal::BreakerOpen => "breaker_open",
            Refusal::QueueFull => "queue_full",
            Refusal::BadKey | Refusal::TooLarge => "invalid_argument",
            Refusal::ShuttingDown => "shutting_down",
        }
    }
}

/// Whether a forwarding host takes a call at `now`: not while it is `closing`, nor while
/// the last snapshot of its breaker says calls are rejected until after `now`
/// (`open_until`: the end of the open period, or of the probe that is out).
///
/// # Errors
/// The [`Refusal`] the caller gets.
pub fn admit(now: Instant, closing: bool, open_until: Option<Instant>) -> Result<(), Refusal> {
    if closing {
        return Err(Refusal::ShuttingDown);
    }
    match open_until {
        Some(until) if until > now => Err(Refusal::BreakerOpen),
        _ => Ok(()),
    }
}

/// The code a failed upstream call counts as: a CANCELLED that came once the call's
/// deadline had passed (`past_deadline`), or from the host's own timer for that deadline
/// (`timer_expired`), ran out of time, so it is DEADLINE_EXCEEDED (retryable, an upstream
/// failure); every other code stands.
#[must_use]
pub const fn failed_call_code(code: i32, past_deadline: bool, timer_expired: bool) -> i32 {
    if code == code::CANCELLED && (past_deadline || timer_expired) {
        code::DEADLINE_EXCEEDED
    } else {
        code
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
    fn breaker_refusals_say_the_state_and_the_wait() {
        extern crate std;
        use std::string::ToString;
        let now = Instant::from_millis(1_000);
        let open = BreakerRefused {
            now,
            state: State::Open,
            until: Instant::from_micros(1_500_001),
        };
        assert_eq!(open.retry_after_ms(), 501, "rounded up");
        assert_eq!(
            open.to_string(),
            "circuit breaker to the upstream is open; retry after 501 ms"
        );
        let probing = BreakerRefused {
            state: State::HalfOpen,
            ..open
        };
        assert!(
            probing
                .to_string()
                .contains("half_open (its probe call is out)")
        );
        let forced = BreakerRefused {
            state: State::ForcedOpen,
            until: Instant::MAX,
            ..open
        };
        assert_eq!(
            forced.to_string(),
            "circuit breaker to the upstream is forced open"
        );
    }

    #[test]
    fn refusals_get_their_codes() {
        assert_eq!(Refusal::BreakerOpen.code(), code::UNAVAILABLE);
        assert_eq!(Refusal::ShuttingDown.code(), code::UNAVAILABLE);
        assert_eq!(Refusal::QueueFull.code(), code::RESOURCE_EXHAUSTED);
        assert_eq!(Refusal::BadKey.code(), code::INVALID_ARGUMENT);
        assert_eq!(Refusal::TooLarge.code(), code::INVALID_ARGUMENT);
    }

    #[test]
    fn a_closing_host_or_an_open_breaker_refuses() {
        let now = Instant::from_secs(10);
        assert_eq!(admit(now, false, None), Ok(()));
        assert_eq!(admit(now, true, None), Err(Refusal::ShuttingDown));
        let later = Instant::from_secs(11);
        assert_eq!(admit(now, true, Some(later)), Err(Refusal::ShuttingDown));
        assert_eq!(admit(now, false, Some(later)), Err(Refusal::BreakerOpen));
        assert_eq!(admit(now, false, Some(now)), Ok(()), "open until now: over");
        assert_eq!(Refusal::TooLarge.label(), Refusal::BadKey.label());
    }

    #[test]
    fn a_cancelled_call_out_of_time_is_a_deadline() {
        let cancelled = code::CANCELLED;
        assert_eq!(
            failed_call_code(cancelled, true, false),
            code::DEADLINE_EXCEEDED
        );
        assert_eq!(
            failed_call_code(cancelled, false, true),
            code::DEADLINE_EXCEEDED
        );
        assert_eq!(failed_call_code(cancelled, false, false), cancelled);
        assert_eq!(
            failed_call_code(code::UNAVAILABLE, true, true),
            code::UNAVAILABLE
        );
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
        assert!(!verdict.retryable && verdict.breaker == BreakerInput::Failure);
        assert_eq!(ReplyMismatch::CODE, code::INTERNAL);
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
