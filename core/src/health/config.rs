//! Configuration of health aggregation and its validation.

use crate::time::Duration;
use core::fmt;

/// How often checks are expected to report and when failures make a check unhealthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HealthConfig {
    /// The expected time between two reports of a check. A check that has not reported for
    /// two intervals counts as unknown. Default [`HealthConfig::DEFAULT_INTERVAL`], 30 s.
    pub interval: Duration,
    /// Consecutive failed reports after which a check is unhealthy. Default
    /// [`HealthConfig::DEFAULT_FAILURE_THRESHOLD`], 3.
    pub failure_threshold: u32,
}

impl HealthConfig {
    /// Default report interval: 30 s.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    /// Default number of consecutive failures that make a check unhealthy: 3.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
    /// How many intervals of silence make a check unknown: 2.
    pub const SILENT_INTERVALS: u64 = 2;

    /// The defaults: 30 s interval, unhealthy after 3 consecutive failures.
    pub const DEFAULT: HealthConfig = HealthConfig {
        interval: Self::DEFAULT_INTERVAL,
        failure_threshold: Self::DEFAULT_FAILURE_THRESHOLD,
    };

    /// Checks that the interval and the threshold are non-zero.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if self.interval.is_zero() {
            return Err(HealthConfigError::Interval);
        }
        if self.failure_threshold == 0 {
            return Err(HealthConfigError::FailureThreshold);
        }
        Ok(())
    }

    /// How long a check may stay silent before it counts as unknown: two intervals.
    pub fn silence_limit(&self) -> Duration {
        self.interval.saturating_mul(Self::SILENT_INTERVALS)
    }
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig::DEFAULT
    }
}

/// An invalid [`HealthConfig`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HealthConfigError {
    /// `interval` is zero: every check would be unknown at once.
    Interval,
    /// `failure_threshold` is zero: every check would be unhealthy before any report.
    FailureThreshold,
}

impl fmt::Display for HealthConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthConfigError::Interval => f.write_str("interval must be greater than zero"),
            HealthConfigError::FailureThreshold => {
                f.write_str("failure_threshold must be at least 1")
            }
        }
    }
}

impl core::error::Error for HealthConfigError {}
