//! The resource governor: admission of pipeline stages and jobs by load.
//!
//! Given the current [`Load`] (jobs running and queued, CPU and memory in permille) and `now`,
//! [`Governor::admit`] answers, in this order of precedence:
//!
//! 1. [`Admission::Reject`] with [`RejectReason::QueueFull`] when `queued ≥ queue_max` (100):
//!    the job would be one too many to wait, so it is refused outright.
//! 2. [`Admission::Hold`] when `running ≥ running_max` (10), `cpu ≥ cpu_hold_permille`
//!    (850 ‰ = 85 %) or `mem ≥ mem_hold_permille` (900 ‰ = 90 %; a watermark of 0 is off and
//!    never holds), with the first of these
//!    as the reason and `retry_at = now + cooldown` (1000 ms) — but never before the start gap
//!    ends.
//! 3. [`Admission::Hold`] with [`HoldReason::StartGap`] when the last start was less than
//!    `start_gap` (100 ms) ago, with `retry_at = last_start + start_gap`.
//! 4. Otherwise [`Admission::Start`]; the governor records `now` as the last start, so two
//!    admissions at one instant cannot both start. ([`Governor::decide`] answers the same
//!    without recording; [`Governor::record_start`] records a start made without asking.)
//!
//! `queued` and `running` count the *other* jobs, not the one asking. Loads above 1000 ‰ are
//! accepted (a multi-core CPU reading can exceed 100 %) and simply hold.

mod config;
#[cfg(test)]
mod tests;

pub use config::{GovernorConfig, GovernorConfigError};

use crate::time::Instant;

/// The load the host measured, at the moment a job asks to start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Load {
    /// Jobs running now (not counting the one asking).
    pub running: u32,
    /// Jobs waiting to start (not counting the one asking).
    pub queued: u32,
    /// CPU use in permille (850 = 85 %).
    pub cpu_permille: u16,
    /// Memory use in permille (900 = 90 %).
    pub mem_permille: u16,
}

/// Why a job must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HoldReason {
    /// `running_max` jobs are running.
    Running,
    /// CPU use is at or above `cpu_hold_permille`.
    Cpu,
    /// Memory use is at or above `mem_hold_permille`.
    Mem,
    /// The previous start was less than `start_gap` ago.
    StartGap,
}

/// Why a job is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RejectReason {
    /// `queue_max` jobs are already waiting.
    QueueFull,
}

/// The governor's answer.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Admission {
    /// Start the job now.
    Start,
    /// Keep the job waiting and ask again at `retry_at`.
    Hold {
        /// When to ask again.
        retry_at: Instant,
        /// What held it.
        reason: HoldReason,
    },
    /// Refuse the job.
    Reject {
        /// Why.
        reason: RejectReason,
    },
}

/// Admission control by load, remembering the last start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Governor {
    config: GovernorConfig,
    last_start: Option<Instant>,
}

impl Governor {
    /// A governor with `config` that has not started anything yet.
    pub fn new(config: GovernorConfig) -> Result<Governor, GovernorConfigError> {
        config.validate()?;
        Ok(Governor {
            config,
            last_start: None,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &GovernorConfig {
        &self.config
    }

    /// When the last start was recorded, if ever.
    pub fn last_start(&self) -> Option<Instant> {
        self.last_start
    }

    /// Decides on a job at `now` under `load`, and records the start when it is
    /// [`Admission::Start`].
    pub fn admit(&mut self, now: Instant, load: Load) -> Admission {
        let answer = self.decide(now, load);
        if answer == Admission::Start {
            self.record_start(now);
        }
        answer
    }

    /// The answer [`admit`](Governor::admit) would give, without recording anything.
    pub fn decide(&self, now: Instant, load: Load) -> Admission {
        if load.queued >= self.config.queue_max {
            return Admission::Reject {
                reason: RejectReason::QueueFull,
            };
        }
        let gap_end = self.gap_end(now);
        if let Some(reason) = self.load_hold(load) {
            let retry_at = (now + self.config.cooldown).max(gap_end.unwrap_or(Instant::ZERO));
            return Admission::Hold { retry_at, reason };
        }
        match gap_end {
            Some(retry_at) => Admission::Hold {
                retry_at,
                reason: HoldReason::StartGap,
            },
            None => Admission::Start,
        }
    }

    /// Records a start at `now` (one the host made without [`admit`](Governor::admit)).
    pub fn record_start(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// The first load limit `load` reaches, in order running, CPU, memory.
    fn load_hold(&self, load: Load) -> Option<HoldReason> {
        let c = &self.config;
        if load.running >= c.running_max {
            Some(HoldReason::Running)
        } else if reached(load.cpu_permille, c.cpu_hold_permille) {
            Some(HoldReason::Cpu)
        } else if reached(load.mem_permille, c.mem_hold_permille) {
            Some(HoldReason::Mem)
        } else {
            None
        }
    }

    /// When the start gap after the last start ends, if it has not ended by `now`.
    fn gap_end(&self, now: Instant) -> Option<Instant> {
        let end = self.last_start? + self.config.start_gap;
        (now < end).then_some(end)
    }
}

/// Whether a load reached its watermark; a watermark of 0 is off and is never reached.
fn reached(load_permille: u16, hold_permille: u16) -> bool {
    hold_permille != 0 && load_permille >= hold_permille
}
