//! Configuration of the resource governor and its validation.

use crate::time::Duration;
use core::fmt;

/// Limits and waits of the resource governor. Loads are integers: CPU and memory in permille
/// (‰, tenths of a percent: 85 % is 850).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GovernorConfig {
    /// Reject when this many jobs are already queued. Default 100.
    pub queue_max: u32,
    /// Hold when this many jobs are already running (so at most this many run). Default 10.
    pub running_max: u32,
    /// Hold when CPU use is at or above this, in permille. Default 850 (85 %); 0 turns the
    /// CPU watermark off (never hold for CPU).
    pub cpu_hold_permille: u16,
    /// Hold when memory use is at or above this, in permille. Default 900 (90 %); 0 turns
    /// the memory watermark off (never hold for memory).
    pub mem_hold_permille: u16,
    /// How long a job held for load (running, CPU, memory) waits before asking again.
    /// Default 1000 ms.
    pub cooldown: Duration,
    /// Minimum time between two starts. Default 100 ms; zero disables the gap.
    pub start_gap: Duration,
}

impl GovernorConfig {
    /// The defaults: queue 100, running 10, CPU 85 %, memory 90 %, cooldown
    /// 1000 ms, start gap 100 ms.
    pub const DEFAULT: GovernorConfig = GovernorConfig {
        queue_max: 100,
        running_max: 10,
        cpu_hold_permille: 850,
        mem_hold_permille: 900,
        cooldown: Duration::from_millis(1_000),
        start_gap: Duration::from_millis(100),
    };

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), GovernorConfigError> {
        if self.queue_max == 0 {
            return Err(GovernorConfigError::QueueMax);
        }
        if self.running_max == 0 {
            return Err(GovernorConfigError::RunningMax);
        }
        if self.cpu_hold_permille > 1_000 {
            return Err(GovernorConfigError::CpuHoldPermille);
        }
        if self.mem_hold_permille > 1_000 {
            return Err(GovernorConfigError::MemHoldPermille);
        }
        if self.cooldown.is_zero() {
            return Err(GovernorConfigError::Cooldown);
        }
        Ok(())
    }
}

impl Default for GovernorConfig {
    fn default() -> GovernorConfig {
        GovernorConfig::DEFAULT
    }
}

/// An invalid [`GovernorConfig`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GovernorConfigError {
    /// `queue_max` is zero: every job would be rejected.
    QueueMax,
    /// `running_max` is zero: every job would be held forever.
    RunningMax,
    /// `cpu_hold_permille` is above 1000.
    CpuHoldPermille,
    /// `mem_hold_permille` is above 1000.
    MemHoldPermille,
    /// `cooldown` is zero: a held job would be told to retry at once, in a busy loop.
    Cooldown,
}

impl fmt::Display for GovernorConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GovernorConfigError::QueueMax => "queue_max must be at least 1",
            GovernorConfigError::RunningMax => "running_max must be at least 1",
            GovernorConfigError::CpuHoldPermille => {
                "cpu_hold_permille must be in 0..=1000 (0: off)"
            }
            GovernorConfigError::MemHoldPermille => {
                "mem_hold_permille must be in 0..=1000 (0: off)"
            }
            GovernorConfigError::Cooldown => "cooldown must be greater than zero",
        })
    }
}

impl core::error::Error for GovernorConfigError {}
