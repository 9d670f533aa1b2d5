//! The values a breaker hands out and takes back: [`State`], [`Permit`], [`Outcome`],
//! [`Rejected`], [`Recorded`] and [`Transition`].

use crate::time::{Duration, Instant};
use core::fmt;

/// Where a breaker is.
///
/// The automatic edges are Closed → Open (trip), Open → HalfOpen (reset timeout, on time),
/// HalfOpen → Closed (enough successful probes) and HalfOpen → Open (a probe failed or timed
/// out). The admin edges lead from any state to ForcedOpen, Disabled or Closed (reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Calls pass; results are counted.
    Closed,
    /// Calls are rejected until the reset timeout.
    Open,
    /// A bounded number of probe calls pass; their results decide.
    HalfOpen,
    /// Admin: every call is rejected until an admin reset.
    ForcedOpen,
    /// Admin: every call passes and nothing is counted until an admin reset.
    Disabled,
}

impl State {
    /// The lowercase name (`"closed"`, `"open"`, `"half_open"`, `"forced_open"`,
    /// `"disabled"`), for journals and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, for the host to journal ([`Breaker::poll_event`](super::Breaker::poll_event)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// The `now` of the call that performed the change.
    pub at: Instant,
}

/// Leave to make one call, from [`Breaker::acquire`](super::Breaker::acquire).
///
/// Hand it back to the breaker that issued it with [`Breaker::record`](super::Breaker::record)
/// once the call is done, or [`Breaker::abandon`](super::Breaker::abandon) if it never ran. It
/// is neither `Clone` nor `Copy`, so each permit reports once. It carries the issuing
/// breaker's [tag](super::Breaker::tag) and the generation it was issued in: a permit
/// returned after a state change or an admin call of its breaker is stale, and one returned
/// to a breaker with another tag is foreign; neither counts.
#[must_use = "a permit must be returned with `record` or `abandon`"]
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Permit {
    pub(crate) generation: u32,
    pub(crate) tag: u16,
    pub(crate) slot: u8,
}

/// `slot` of a permit that is not a half-open probe.
pub(crate) const NO_SLOT: u8 = u8::MAX;

impl Permit {
    /// Whether this permit is a half-open probe.
    pub const fn is_probe(&self) -> bool {
        self.slot != NO_SLOT
    }

    /// The [tag](super::Breaker::tag) of the breaker that issued it.
    pub const fn tag(&self) -> u16 {
        self.tag
    }
}

/// How a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// The call succeeded after this long (still a failure if it was slow).
    Success(Duration),
    /// The call failed after this long.
    Failure(Duration),
}

/// The breaker refuses a call.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Rejected {
    /// When to ask again: the end of the open period, the deadline of the half-open probe
    /// that holds the slot, or [`Instant::MAX`] when forced open.
    pub until: Instant,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.until == Instant::MAX {
            f.write_str("circuit breaker forced open")
        } else {
            write!(f, "circuit breaker open until {}", self.until)
        }
    }
}

impl core::error::Error for Rejected {}

/// What [`Breaker::record`](super::Breaker::record) did with a result. Informational: hosts
/// may ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Recorded {
    /// The result counted.
    Counted,
    /// The permit was issued before the latest state change or admin call of this breaker;
    /// the result was ignored.
    Stale,
    /// The breaker is disabled; nothing is counted.
    Ignored,
    /// The permit was issued by another breaker (its [tag](Permit::tag) differs); the result
    /// was ignored. A host bug: the permit went back to the wrong breaker.
    Foreign,
}
