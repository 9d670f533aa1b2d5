//! One named check and the statuses it and the aggregate can have.

use super::HealthConfig;
use crate::time::Instant;

/// Longest check name, in bytes.
pub const NAME_MAX_BYTES: usize = 64;

/// A check's name, stored exactly (up to [`NAME_MAX_BYTES`] bytes).
pub type CheckName = heapless::String<NAME_MAX_BYTES>;

/// The status of one check at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CheckStatus {
    /// Reporting, with fewer consecutive failures than the threshold (1–2 failures by default
    /// still count as healthy), or registered less than two intervals ago and not yet
    /// reporting.
    Healthy,
    /// Its last `failure_threshold` reports (3 by default) all failed.
    Unhealthy,
    /// Silent for two intervals since its last report (or since registration, if it never
    /// reported). Counts as not healthy in the aggregate.
    Unknown,
}

/// The status of the whole set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AggregateStatus {
    /// Every check is healthy, or there are no checks.
    Healthy,
    /// Some checks are healthy and some are not (unhealthy or unknown).
    Degraded,
    /// There are checks and none is healthy.
    Unhealthy,
}

/// What the set knows about one check.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckInfo {
    /// Status at the instant asked about.
    pub status: CheckStatus,
    /// Failed reports since the last pass.
    pub consecutive_failures: u32,
    /// When it last reported, if ever.
    pub last_report: Option<Instant>,
    /// When it turns (or turned) unknown unless it reports before.
    pub unknown_at: Instant,
}

/// One registered check.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Check {
    pub(super) name: CheckName,
    registered_at: Instant,
    last_report: Option<Instant>,
    consecutive_failures: u32,
}

impl Check {
    pub(super) fn new(name: CheckName, now: Instant) -> Check {
        Check {
            name,
            registered_at: now,
            last_report: None,
            consecutive_failures: 0,
        }
    }

    pub(super) fn report(&mut self, now: Instant, pass: bool) {
        self.last_report = Some(now);
        self.consecutive_failures = if pass {
            0
        } else {
            self.consecutive_failures.saturating_add(1)
        };
    }

    pub(super) fn unknown_at(&self, config: &HealthConfig) -> Instant {
        self.last_report.unwrap_or(self.registered_at) + config.silence_limit()
    }

    pub(super) fn status(&self, now: Instant, config: &HealthConfig) -> CheckStatus {
        if now >= self.unknown_at(config) {
            CheckStatus::Unknown
        } else if self.consecutive_failures >= config.failure_threshold {
            CheckStatus::Unhealthy
        } else {
            CheckStatus::Healthy
        }
    }

    pub(super) fn info(&self, now: Instant, config: &HealthConfig) -> CheckInfo {
        CheckInfo {
            status: self.status(now, config),
            consecutive_failures: self.consecutive_failures,
            last_report: self.last_report,
            unknown_at: self.unknown_at(config),
        }
    }
}
