//! The gRPC statuses callers get, built from the core's answers.

use heidi_core::Instant;
use heidi_core::batcher::TooLarge;
use heidi_core::breaker::State;
use heidi_core::retry::GiveUpReason;
use heidi_core::txn_check::KeyError;
use heidi_core::upstream::{BreakerRefused, REASON_METADATA, Refusal, give_up_code};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata key of the retry-after hint, in whole milliseconds (rounded up).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// Milliseconds from `now` until `until`, rounded up (a client that waits that long is never
/// early).
pub fn retry_after_ms(now: Instant, until: Instant) -> u64 {
    BreakerRefused {
        now,
        state: State::Open,
        until,
    }
    .retry_after_ms()
}

/// UNAVAILABLE: the breaker, in `state`, rejects calls until `until` (the end of the open
/// period, or the deadline of the half-open probe that is out); the message names the state,
/// and the hint is in the message and in the `retry-after-ms` metadata.
pub fn breaker_refused(now: Instant, state: State, until: Instant) -> Status {
    let message = BreakerRefused { now, state, until }.to_string();
    with_retry_after(refused(Refusal::BreakerOpen, message), now, until)
}

/// A call the sidecar refuses itself, with the core's code for it.
fn refused(refusal: Refusal, message: impl Into<String>) -> Status {
    Status::new(Code::from_i32(refusal.code()), message)
}

fn with_retry_after(mut status: Status, now: Instant, until: Instant) -> Status {
    if until != Instant::MAX {
        let value = MetadataValue::from(retry_after_ms(now, until));
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

/// RESOURCE_EXHAUSTED: the submission queue holds `capacity` transactions already.
pub fn queue_full(capacity: usize) -> Status {
    let message = format!("submission queue full ({capacity} transactions waiting); retry later");
    refused(Refusal::QueueFull, message)
}

/// INVALID_ARGUMENT for a bad idempotency key.
pub fn bad_key(e: KeyError) -> Status {
    refused(Refusal::BadKey, format!("idempotency_key: {e}"))
}

/// INVALID_ARGUMENT for a transaction that can never fit in a batch message.
pub fn too_large(e: TooLarge) -> Status {
    let message = format!(
        "transaction is {} bytes encoded, above the batch byte cap of {} bytes \
         (BATCH_MAX_BYTES); it can never be sent upstream",
        e.bytes, e.max_bytes
    );
    refused(Refusal::TooLarge, message)
}

/// UNAVAILABLE: the sidecar is shutting down.
pub fn shutting_down() -> Status {
    refused(Refusal::ShuttingDown, "sidecar is shutting down")
}

/// The status of a batch given up after `attempts` attempts, the last failing with `last`.
pub fn gave_up(last: &Status, reason: GiveUpReason, attempts: u32, now: Instant) -> Status {
    let code = Code::from_i32(give_up_code(last.code() as i32, reason));
    let status = Status::new(
        code,
        format!(
            "upstream call failed after {attempts} attempt(s), not retried ({}): {}",
            reason_text(reason, now),
            last.message()
        ),
    );
    match reason {
        GiveUpReason::BreakerOpen { until } => with_retry_after(status, now, until),
        _ => status,
    }
}

fn reason_text(reason: GiveUpReason, now: Instant) -> String {
    match reason {
        GiveUpReason::AttemptsExhausted { attempts } => format!("max_attempts {attempts} reached"),
        GiveUpReason::BreakerOpen { until } => format!(
            "circuit breaker open; retry after {} ms",
            retry_after_ms(now, until)
        ),
        GiveUpReason::BudgetExhausted { .. } => "retry budget exhausted".to_owned(),
    }
}

/// A failed call that is not retried (the upstream refused it on its merits, or its reply
/// was malformed), reported after `attempts` attempts.
/// The upstream's `heidi-reason` metadata is passed on.
pub fn not_retried(last: &Status, attempts: u32) -> Status {
    let mut status = Status::new(
        last.code(),
        format!(
            "upstream call failed after {attempts} attempt(s): {}",
            last.message()
        ),
    );
    if let Some(reason) = last.metadata().get(REASON_METADATA) {
        status
            .metadata_mut()
            .insert(REASON_METADATA, reason.clone());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_open_carries_the_hint_in_metadata_and_message() {
        let (now, until) = (Instant::from_millis(10), Instant::from_micros(1_510_001));
        let s = breaker_refused(now, State::Open, until);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(
            s.message().contains("is open; retry after 1501 ms"),
            "{}",
            s.message()
        );
        assert_eq!(s.metadata().get(RETRY_AFTER_MS).unwrap(), "1501");
        let probing = breaker_refused(now, State::HalfOpen, until);
        assert!(
            probing.message().contains("is half_open"),
            "{}",
            probing.message()
        );
        assert!(probing.message().contains("retry after 1501 ms"));
        let forced = breaker_refused(Instant::ZERO, State::ForcedOpen, Instant::MAX);
        assert!(forced.metadata().get(RETRY_AFTER_MS).is_none());
    }

    #[test]
    fn give_up_keeps_the_last_code_unless_the_breaker_is_open() {
        let now = Instant::from_millis(0);
        let slow = Status::deadline_exceeded("slow");
        let s = gave_up(
            &slow,
            GiveUpReason::AttemptsExhausted { attempts: 4 },
            4,
            now,
        );
        assert_eq!(s.code(), Code::DeadlineExceeded);
        assert!(s.message().contains("4 attempt"));
        let until = Instant::from_millis(50);
        let s = gave_up(&slow, GiveUpReason::BreakerOpen { until }, 2, now);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.metadata().get(RETRY_AFTER_MS).unwrap(), "50");
        let s = gave_up(
            &slow,
            GiveUpReason::BudgetExhausted { retry_at: until },
            1,
            now,
        );
        assert!(s.message().contains("budget"));
    }

    #[test]
    fn simple_statuses() {
        assert_eq!(queue_full(3).code(), Code::ResourceExhausted);
        assert_eq!(bad_key(KeyError::Empty).code(), Code::InvalidArgument);
        assert_eq!(shutting_down().code(), Code::Unavailable);
        let s = not_retried(&Status::invalid_argument("no"), 1);
        assert_eq!(s.code(), Code::InvalidArgument);
    }
}
