//! The answers of a local [`Breaker`]: what a driver that owns its breaker (the sidecar, the
//! simulator) does for [`Action::Acquire`](super::Action::Acquire) and
//! [`Action::Record`](super::Action::Record).

use super::{Answer, Permission};
use crate::breaker::{Breaker, Outcome, Permit};
use crate::time::{Duration, Instant};
use crate::upstream::BreakerInput;

/// Asks `breaker` for a permit at `now`: the permit to keep (if granted) and the answer.
pub fn acquire(breaker: &mut Breaker, now: Instant) -> (Option<Permit>, Answer) {
    match breaker.acquire(now) {
        Ok(permit) => (Some(permit), Answer::Acquire(Permission::Granted)),
        Err(rejected) => {
            let retry_at = Some(rejected.until);
            (None, Answer::Acquire(Permission::Refused { retry_at }))
        }
    }
}

/// Returns `permit` to `breaker` at `now` with `input` for a call that took `took`
/// ([`BreakerInput::Neutral`]: unused), and answers with the breaker's open time.
pub fn record(
    breaker: &mut Breaker,
    now: Instant,
    permit: Permit,
    input: BreakerInput,
    took: Duration,
) -> Answer {
    match input {
        BreakerInput::Success => {
            let _ = breaker.record(now, permit, Outcome::Success(took));
        }
        BreakerInput::Failure => {
            let _ = breaker.record(now, permit, Outcome::Failure(took));
        }
        BreakerInput::Neutral => breaker.abandon(now, permit),
    }
    Answer::Recorded {
        open_until: breaker.open_until(),
    }
}
