//! [`BreakerConfig`]: when a breaker trips, how long it stays open, how it probes.

use crate::time::Duration;
use core::fmt;

/// Most half-open probes a breaker can admit at once.
pub const MAX_PROBES: u8 = 8;
/// Longest count window ([`RateWindow::LastCalls`]): the window is a 128-bit ring.
pub const MAX_LAST_CALLS: u8 = 128;
/// Buckets in a time window ([`RateWindow::Time`]); each covers `window / TIME_BUCKETS`.
pub const TIME_BUCKETS: usize = 10;

/// Over which calls a failure rate is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RateWindow {
    /// The last `n` calls (1 ..= [`MAX_LAST_CALLS`]).
    LastCalls(u8),
    /// The calls of the last `window`, kept in [`TIME_BUCKETS`] buckets of
    /// `⌊window / TIME_BUCKETS⌋`; the oldest bucket leaves whole, so the effective window is
    /// between 9/10 and 10/10 of it.
    Time(Duration),
}

/// Trip when the failure rate over a window reaches a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RateTrip {
    /// Trip when failures × 1000 ≥ `threshold_permille` × calls (1 ..= 1000).
    pub threshold_permille: u16,
    /// No rate trip before the window holds this many calls (at least 1).
    pub min_calls: u32,
    /// The window.
    pub window: RateWindow,
}

impl RateTrip {
    /// 50 % failures over the last 100 calls, once at least 20 calls are in the window.
    pub const DEFAULT: RateTrip = RateTrip {
        threshold_permille: 500,
        min_calls: 20,
        window: RateWindow::LastCalls(100),
    };
}

/// The parameters of a [`Breaker`](super::Breaker); defaults in docs/CORE.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BreakerConfig {
    /// Trip after this many consecutive failures (default 5; 0 turns the rule off).
    pub failure_threshold: u32,
    /// Trip on a failure rate as well (default `None`: consecutive failures only).
    pub rate: Option<RateTrip>,
    /// Calls that take at least this long count as failures (default `None`: off).
    pub slow_call_threshold: Option<Duration>,
    /// How long the breaker stays open after a trip (default 60 s).
    pub reset_timeout: Duration,
    /// Growth of the open time per consecutive trip without closing in between
    /// (default 1: constant). The k-th consecutive trip opens for
    /// `min(reset_timeout × reset_backoff^(k−1), reset_timeout_max)`.
    pub reset_backoff: u32,
    /// Cap on the open time (default 10 min).
    pub reset_timeout_max: Duration,
    /// Probes admitted at once when half-open (default 1, at most [`MAX_PROBES`]).
    pub half_open_max_probes: u8,
    /// Successful probes that close the breaker (default 1).
    pub success_threshold: u8,
    /// A probe that has not reported after this long counts as failed and re-opens the
    /// breaker (default 30 s), so a lost permit cannot wedge the breaker half-open.
    pub probe_timeout: Duration,
}

impl BreakerConfig {
    /// The defaults: 5 consecutive failures, 60 s open, one probe, one success.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: 5,
        rate: None,
        slow_call_threshold: None,
        reset_timeout: Duration::from_secs(60),
        reset_backoff: 1,
        reset_timeout_max: Duration::from_secs(600),
        half_open_max_probes: 1,
        success_threshold: 1,
        probe_timeout: Duration::from_secs(30),
    };

    /// Checks every field; the error names the first one out of range.
    pub const fn validate(&self) -> Result<(), BreakerConfigError> {
        use BreakerConfigError as E;
        if self.failure_threshold == 0 && self.rate.is_none() {
            return Err(E::NoTripRule);
        }
        if self.reset_timeout.is_zero() {
            return Err(E::ZeroResetTimeout);
        }
        if self.reset_backoff == 0 {
            return Err(E::ZeroResetBackoff);
        }
        if self.reset_timeout_max.as_micros() < self.reset_timeout.as_micros() {
            return Err(E::ResetMaxBelowReset);
        }
        if self.half_open_max_probes == 0 || self.half_open_max_probes > MAX_PROBES {
            return Err(E::ProbesOutOfRange);
        }
        if self.success_threshold == 0 {
            return Err(E::ZeroSuccessThreshold);
        }
        if self.probe_timeout.is_zero() {
            return Err(E::ZeroProbeTimeout);
        }
        match self.rate {
            Some(rate) => rate.validate(),
            None => Ok(()),
        }
    }
}

impl RateTrip {
    /// Checks every field; the error names the first one out of range.
    pub const fn validate(&self) -> Result<(), BreakerConfigError> {
        use BreakerConfigError as E;
        if self.threshold_permille == 0 || self.threshold_permille > 1_000 {
            return Err(E::RateThresholdOutOfRange);
        }
        if self.min_calls == 0 {
            return Err(E::RateMinCallsUnreachable);
        }
        match self.window {
            RateWindow::LastCalls(n) if n == 0 || n > MAX_LAST_CALLS => {
                Err(E::RateWindowOutOfRange)
            }
            RateWindow::LastCalls(n) if self.min_calls > n as u32 => {
                Err(E::RateMinCallsUnreachable)
            }
            RateWindow::Time(w) if w.as_micros() < TIME_BUCKETS as u64 => {
                Err(E::RateWindowOutOfRange)
            }
            _ => Ok(()),
        }
    }
}

impl Default for BreakerConfig {
    /// [`BreakerConfig::DEFAULT`].
    fn default() -> BreakerConfig {
        BreakerConfig::DEFAULT
    }
}

/// A [`BreakerConfig`] field is out of range; [`BreakerConfigError::field`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerConfigError {
    /// `failure_threshold` is 0 and `rate` is `None`: the breaker could never trip.
    NoTripRule,
    /// `reset_timeout` is zero.
    ZeroResetTimeout,
    /// `reset_backoff` is zero.
    ZeroResetBackoff,
    /// `reset_timeout_max` is shorter than `reset_timeout`.
    ResetMaxBelowReset,
    /// `half_open_max_probes` is 0 or above [`MAX_PROBES`].
    ProbesOutOfRange,
    /// `success_threshold` is 0.
    ZeroSuccessThreshold,
    /// `probe_timeout` is zero.
    ZeroProbeTimeout,
    /// `rate.threshold_permille` is 0 or above 1000.
    RateThresholdOutOfRange,
    /// `rate.min_calls` is 0 or more than a count window holds.
    RateMinCallsUnreachable,
    /// `rate.window` is an empty or too-long count window, or a time window shorter than one
    /// microsecond per bucket.
    RateWindowOutOfRange,
}

impl BreakerConfigError {
    /// The name of the offending field.
    pub const fn field(self) -> &'static str {
        use BreakerConfigError as E;
        match self {
            E::NoTripRule => "failure_threshold",
            E::ZeroResetTimeout => "reset_timeout",
            E::ZeroResetBackoff => "reset_backoff",
            E::ResetMaxBelowReset => "reset_timeout_max",
            E::ProbesOutOfRange => "half_open_max_probes",
            E::ZeroSuccessThreshold => "success_threshold",
            E::ZeroProbeTimeout => "probe_timeout",
            E::RateThresholdOutOfRange => "rate.threshold_permille",
            E::RateMinCallsUnreachable => "rate.min_calls",
            E::RateWindowOutOfRange => "rate.window",
        }
    }

    const fn problem(self) -> &'static str {
        use BreakerConfigError as E;
        match self {
            E::NoTripRule => "is 0 and no rate rule is set, so the breaker could never trip",
            E::ResetMaxBelowReset => "is shorter than reset_timeout",
            E::ProbesOutOfRange => "must be 1 ..= 8",
            E::RateThresholdOutOfRange => "must be 1 ..= 1000",
            E::RateMinCallsUnreachable => "must be at least 1 and fit in the window",
            E::RateWindowOutOfRange => "must hold 1 ..= 128 calls or 10 µs or more",
            _ => "must not be zero",
        }
    }
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "breaker config: `{}` {}", self.field(), self.problem())
    }
}

impl core::error::Error for BreakerConfigError {}
