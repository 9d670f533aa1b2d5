//! Health aggregation: named checks report pass or fail; the set says how each check and the
//! whole are doing.
//!
//! # Rules
//!
//! - A check is [`CheckStatus::Unhealthy`] after `failure_threshold` (3) consecutive failed
//!   reports; one pass resets the count. With 1–2 consecutive failures it is still
//!   [`CheckStatus::Healthy`]: a single blip does not degrade the service.
//! - A check is [`CheckStatus::Unknown`] once it has not reported for two intervals (2 × 30 s
//!   by default) since its last report, or since its registration if it never reported. Until
//!   then a newly registered check counts as healthy (a start-up grace period, so that a
//!   service is not reported degraded while its checks run for the first time). A report
//!   ends the silence at once; the failure count carries over it.
//! - Aggregate: no checks → [`AggregateStatus::Healthy`]; all healthy → healthy; none
//!   healthy → [`AggregateStatus::Unhealthy`]; otherwise [`AggregateStatus::Degraded`].
//!   Unknown counts as not healthy.
//!
//! The set has a fixed capacity `N`; every call scans at most `N` checks. Names are stored
//! exactly, up to [`NAME_MAX_BYTES`] bytes, one entry per name.
//!
//! # Time
//!
//! Checks turn unknown on time, without a call. [`Health::poll_timeout`] says when the next one
//! does, so a host that publishes the aggregate can wake up then.

mod check;
mod config;
mod error;
#[cfg(test)]
mod tests;

pub use check::{AggregateStatus, CheckInfo, CheckName, CheckStatus, NAME_MAX_BYTES};
pub use config::{HealthConfig, HealthConfigError};
pub use error::{RegisterError, UnknownCheck};

use crate::time::Instant;
use check::Check;

/// What a readiness check says at an instant ([`Health::readiness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Readiness {
    /// The check is healthy.
    Ready,
    /// The check is unhealthy.
    Unhealthy,
    /// The check has been silent for two intervals.
    Unknown,
    /// The check never reported (it is not in the set).
    Unreported,
}

impl Readiness {
    /// `ready`, `unhealthy`, `unknown` or `unreported` (the daemon's `/readyz` names).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Unhealthy => "unhealthy",
            Readiness::Unknown => "unknown",
            Readiness::Unreported => "unreported",
        }
    }
}

/// The aggregate at an instant, with the counts behind it.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Summary {
    /// The aggregate status.
    pub status: AggregateStatus,
    /// Checks that are healthy.
    pub healthy: usize,
    /// Checks that are unhealthy.
    pub unhealthy: usize,
    /// Checks that are unknown.
    pub unknown: usize,
}

/// A fixed-capacity set of up to `N` named health checks.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Health<const N: usize> {
    config: HealthConfig,
    checks: heapless::Vec<Check, N>,
}

impl<const N: usize> Health<N> {
    /// An empty set with `config`.
    pub fn new(config: HealthConfig) -> Result<Self, HealthConfigError> {
        config.validate()?;
        Ok(Health {
            config,
            checks: heapless::Vec::new(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Registers a check called `name` at `now`; it has two intervals to report.
    pub fn register(&mut self, now: Instant, name: &str) -> Result<(), RegisterError> {
        let name = CheckName::try_from(name).map_err(|()| RegisterError::NameTooLong)?;
        if self.find(&name).is_some() {
            return Err(RegisterError::AlreadyRegistered);
        }
        self.checks
            .push(Check::new(name, now))
            .map_err(|_| RegisterError::Full)
    }

    /// Removes the check called `name`.
    pub fn unregister(&mut self, name: &str) -> Result<(), UnknownCheck> {
        let i = self.find(name).ok_or(UnknownCheck)?;
        let _ = self.checks.swap_remove(i);
        Ok(())
    }

    /// Records a report of the check called `name` at `now`; returns its new status.
    pub fn report(
        &mut self,
        now: Instant,
        name: &str,
        pass: bool,
    ) -> Result<CheckStatus, UnknownCheck> {
        let i = self.find(name).ok_or(UnknownCheck)?;
        let check = &mut self.checks[i];
        check.report(now, pass);
        Ok(check.status(now, &self.config))
    }

    /// What the set knows about the check called `name` at `now`.
    pub fn check(&self, now: Instant, name: &str) -> Result<CheckInfo, UnknownCheck> {
        let i = self.find(name).ok_or(UnknownCheck)?;
        Ok(self.checks[i].info(now, &self.config))
    }

    /// Whether the check `name` lets a host report ready at `now` (a readiness check):
    /// only a healthy check does; one that never reported is [`Readiness::Unreported`].
    pub fn readiness(&self, now: Instant, name: &str) -> Readiness {
        match self.check(now, name) {
            Ok(info) => match info.status {
                CheckStatus::Healthy => Readiness::Ready,
                CheckStatus::Unhealthy => Readiness::Unhealthy,
                CheckStatus::Unknown => Readiness::Unknown,
            },
            Err(UnknownCheck) => Readiness::Unreported,
        }
    }

    /// Every check's name and status at `now`, in no particular order.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = (&str, CheckStatus)> + '_ {
        self.checks
            .iter()
            .map(move |c| (c.name.as_str(), c.status(now, &self.config)))
    }

    /// The aggregate status at `now`, with the counts per status.
    pub fn aggregate(&self, now: Instant) -> Summary {
        let (mut healthy, mut unhealthy, mut unknown) = (0, 0, 0);
        for (_, status) in self.iter(now) {
            match status {
                CheckStatus::Healthy => healthy += 1,
                CheckStatus::Unhealthy => unhealthy += 1,
                CheckStatus::Unknown => unknown += 1,
            }
        }
        let status = match healthy {
            h if h == self.checks.len() => AggregateStatus::Healthy,
            0 => AggregateStatus::Unhealthy,
            _ => AggregateStatus::Degraded,
        };
        Summary {
            status,
            healthy,
            unhealthy,
            unknown,
        }
    }

    /// The next instant after `now` at which a check turns unknown (if no report comes
    /// first), or `None` if none will.
    ///
    /// Takes `now` because a check that is already unknown has its deadline in the past;
    /// returning that would make a host that sleeps until the deadline spin.
    #[must_use]
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.checks
            .iter()
            .map(|c| c.unknown_at(&self.config))
            .filter(|&at| at > now)
            .min()
    }

    /// This set under `config`: every check keeps its registration or last report and its
    /// consecutive failures, replayed up to the new threshold (all its status depends on).
    /// `self` is unchanged; the host puts the result in force.
    pub fn reconfigured(&self, config: HealthConfig) -> Result<Health<N>, HealthConfigError> {
        let mut new = Health::new(config)?;
        let silence = self.config.silence_limit();
        for check in &self.checks {
            let name = check.name.as_str();
            let info = check.info(Instant::ZERO, &self.config);
            match info.last_report {
                Some(at) => {
                    let _ = new.register(at, name);
                    let fails = info.consecutive_failures.min(config.failure_threshold);
                    if fails == 0 {
                        let _ = new.report(at, name, true);
                    }
                    for _ in 0..fails {
                        let _ = new.report(at, name, false);
                    }
                }
                None => {
                    let _ = new.register(info.unknown_at.saturating_sub(silence), name);
                }
            }
        }
        Ok(new)
    }

    /// Number of registered checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether no check is registered.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Capacity of the set: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.checks.iter().position(|c| c.name.as_str() == name)
    }
}
