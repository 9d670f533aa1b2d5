//! [`Effect`]s: what the host must carry out for the service, queued in a bounded
//! [`EffectQueue`] until it drains them with [`Service::poll_effect`](super::Service::poll_effect).
//!
//! The service never drops an effect. A call that could make one runs only when the queue has
//! room for it; otherwise it is refused before it changes anything (see
//! [`EFFECTS_MAX`] and the module docs of [`service`](super)).

use heapless::{Deque, String};

use core::fmt;

use crate::Instant;
use crate::breaker::{BreakerId, State};
use crate::journal::{Level, NAME_MAX_BYTES};

/// Effects the service holds for the host. A host that drains after every call holds at
/// most one; the rest is slack for a host whose journal is slow.
pub const EFFECTS_MAX: usize = 64;

/// `retry_after_ms` of the `OVERLOADED` answer to a breaker call refused because the effect
/// queue is full: the queue empties when the host drains it, which the service cannot time.
pub const EFFECTS_FULL_RETRY_AFTER_MS: u64 = 1_000;

/// Something the host must carry out: a typed record it turns into its own form. Not
/// `non_exhaustive` on purpose: a new kind of effect must fail to compile in a host that
/// does not carry it out, rather than be skipped.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Effect {
    /// A breaker changed state: append it to the journal (the daemon writes a
    /// `breaker_transition` event, stage `kernel`).
    BreakerTransition(BreakerTransition),
}

/// One state change of a named breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerTransition {
    /// The breaker's place in the service's registry.
    pub breaker: BreakerId,
    /// Its name.
    pub name: String<NAME_MAX_BYTES>,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// When.
    pub at: Instant,
    /// Why.
    pub reason: TransitionReason,
}

impl BreakerTransition {
    /// The journal stage of the event a transition becomes.
    pub const STAGE: &'static str = "kernel";
    /// The journal event type of a transition.
    pub const EVENT_TYPE: &'static str = "breaker_transition";

    /// The event's level: a warning when the breaker enters open (or forced open), else
    /// info (open → half-open is not a warning).
    #[must_use]
    pub fn level(&self) -> Level {
        match self.to {
            State::Open | State::ForcedOpen => Level::Warning,
            _ => Level::Info,
        }
    }
}

/// The event's message: `breaker <name>: <from> -> <to>`.
impl fmt::Display for BreakerTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "breaker {}: {} -> {}", self.name, self.from, self.to)
    }
}

/// Why a breaker changed state, read from the states it left and entered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransitionReason {
    /// Closed → open: the failures reached the trip rule.
    Tripped,
    /// Open → half-open: the open period ended.
    OpenPeriodEnded,
    /// Half-open → open: a probe failed, or did not report within `probe_timeout`.
    ProbeFailed,
    /// Half-open → closed: enough probes succeeded.
    Recovered,
    /// An admin change (forced open, disabled, reset).
    Admin,
}

impl TransitionReason {
    /// The reason for a change from `from` to `to`.
    pub const fn of(from: State, to: State) -> TransitionReason {
        match (from, to) {
            (State::Closed, State::Open) => TransitionReason::Tripped,
            (State::Open, State::HalfOpen) => TransitionReason::OpenPeriodEnded,
            (State::HalfOpen, State::Open) => TransitionReason::ProbeFailed,
            (State::HalfOpen, State::Closed) => TransitionReason::Recovered,
            _ => TransitionReason::Admin,
        }
    }

    /// A short name: `tripped`, `open_period_ended`, `probe_failed`, `recovered`, `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransitionReason::Tripped => "tripped",
            TransitionReason::OpenPeriodEnded => "open_period_ended",
            TransitionReason::ProbeFailed => "probe_failed",
            TransitionReason::Recovered => "recovered",
            TransitionReason::Admin => "admin",
        }
    }
}

/// The bounded queue of effects waiting for the host.
#[derive(Debug, Clone)]
pub(crate) struct EffectQueue {
    queue: Deque<Effect, EFFECTS_MAX>,
}

impl EffectQueue {
    pub(crate) const fn new() -> EffectQueue {
        EffectQueue {
            queue: Deque::new(),
        }
    }

    /// Whether one more effect fits.
    pub(crate) fn has_room(&self) -> bool {
        !self.queue.is_full()
    }

    /// Queues `effect`; `Err` gives it back when the queue is full (callers check
    /// [`EffectQueue::has_room`] first, so this does not happen).
    pub(crate) fn push(&mut self, effect: Effect) -> Result<(), Effect> {
        self.queue.push_back(effect)
    }

    pub(crate) fn pop(&mut self) -> Option<Effect> {
        self.queue.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn a_transition_is_a_warning_only_when_it_opens() {
        let t = |from, to| BreakerTransition {
            breaker: BreakerId(0),
            name: String::try_from("db").unwrap(),
            from,
            to,
            at: Instant::ZERO,
            reason: TransitionReason::of(from, to),
        };
        let opened = t(State::Closed, State::Open);
        assert_eq!(opened.to_string(), "breaker db: closed -> open");
        assert_eq!(opened.level(), Level::Warning);
        assert_eq!(t(State::Closed, State::ForcedOpen).level(), Level::Warning);
        assert_eq!(t(State::Open, State::HalfOpen).level(), Level::Info);
        assert_eq!(t(State::HalfOpen, State::Closed).level(), Level::Info);
    }
}
