//! Configuration of the pipeline and its validation.

use super::types::Stage;
use crate::governor::{GovernorConfig, GovernorConfigError};
use crate::time::Duration;
use core::fmt;

/// The most rounds a run may have.
pub const MAX_ROUNDS: u32 = 10_000;

/// How long each stage may run before the host kills it. Default 300 s each (the seed's
/// subprocess timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StageTimeouts {
    /// `generate`.
    pub generate: Duration,
    /// `validate`.
    pub validate: Duration,
    /// `unit_test`.
    pub unit_test: Duration,
    /// `train`.
    pub train: Duration,
    /// `eval`.
    pub eval: Duration,
}

impl StageTimeouts {
    /// The default timeout of every stage: 300 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// 300 s for every stage.
    pub const DEFAULT: StageTimeouts = StageTimeouts::all(StageTimeouts::DEFAULT_TIMEOUT);

    /// The same timeout for every stage.
    pub const fn all(timeout: Duration) -> StageTimeouts {
        StageTimeouts {
            generate: timeout,
            validate: timeout,
            unit_test: timeout,
            train: timeout,
            eval: timeout,
        }
    }

    /// The timeout of `stage`.
    pub const fn get(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Generate => self.generate,
            Stage::Validate => self.validate,
            Stage::UnitTest => self.unit_test,
            Stage::Train => self.train,
            Stage::Eval => self.eval,
        }
    }
}

impl StageTimeouts {
    /// Sets the timeout of `stage`.
    pub fn set(&mut self, stage: Stage, timeout: Duration) {
        let slot = match stage {
            Stage::Generate => &mut self.generate,
            Stage::Validate => &mut self.validate,
            Stage::UnitTest => &mut self.unit_test,
            Stage::Train => &mut self.train,
            Stage::Eval => &mut self.eval,
        };
        *slot = timeout;
    }
}

impl Default for StageTimeouts {
    fn default() -> StageTimeouts {
        StageTimeouts::DEFAULT
    }
}

/// Rounds, gates, timeouts and budgets of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PipelineConfig {
    /// Rounds per run (`ROUNDS`), 1..=[`MAX_ROUNDS`]. Default 3.
    pub rounds: u32,
    /// Run the unit-test gate (TESTING) after validation. Default off: the gate runs generated
    /// code and is opted into.
    pub unit_tests: bool,
    /// Per-stage run timeouts, carried by every `RunStage`. Default 300 s each.
    pub stage_timeouts: StageTimeouts,
    /// How long after a stage's timeout the core waits for the host's report before it declares
    /// the stage timed out itself (kill, ERROR). Covers the host's SIGTERM→SIGKILL grace.
    /// Default 10 s.
    pub report_grace: Duration,
    /// Wall-time budget for waiting on the resource governor, summed over a run
    /// (`MAX_WALL_TIME_MINUTES`). When spent, the run ends in ERROR. Default 60 min.
    pub max_wait: Duration,
    /// The governor's limits.
    pub governor: GovernorConfig,
}

impl PipelineConfig {
    /// The default number of rounds.
    pub const DEFAULT_ROUNDS: u32 = 3;
    /// The default report grace.
    pub const DEFAULT_REPORT_GRACE: Duration = Duration::from_secs(10);
    /// The default waiting budget (60 minutes).
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60 * 60);

    /// 3 rounds, no unit-test gate, 300 s per stage, 10 s report grace, 60 min waiting budget,
    /// the governor's defaults.
    pub const DEFAULT: PipelineConfig = PipelineConfig {
        rounds: PipelineConfig::DEFAULT_ROUNDS,
        unit_tests: false,
        stage_timeouts: StageTimeouts::DEFAULT,
        report_grace: PipelineConfig::DEFAULT_REPORT_GRACE,
        max_wait: PipelineConfig::DEFAULT_MAX_WAIT,
        governor: GovernorConfig::DEFAULT,
    };

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), PipelineConfigError> {
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(PipelineConfigError::Rounds);
        }
        if let Some(stage) = Stage::ALL
            .into_iter()
            .find(|s| self.stage_timeouts.get(*s).is_zero())
        {
            return Err(PipelineConfigError::StageTimeout(stage));
        }
        if self.max_wait.is_zero() {
            return Err(PipelineConfigError::MaxWait);
        }
        self.governor
            .validate()
            .map_err(PipelineConfigError::Governor)
    }
}

impl Default for PipelineConfig {
    fn default() -> PipelineConfig {
        PipelineConfig::DEFAULT
    }
}

/// An invalid [`PipelineConfig`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PipelineConfigError {
    /// `rounds` is outside 1..=[`MAX_ROUNDS`].
    Rounds,
    /// The timeout of this stage is zero.
    StageTimeout(Stage),
    /// `max_wait` is zero: any hold would end the run.
    MaxWait,
    /// A governor field.
    Governor(GovernorConfigError),
}

impl fmt::Display for PipelineConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineConfigError::Rounds => write!(f, "rounds must be in 1..={MAX_ROUNDS}"),
            PipelineConfigError::StageTimeout(s) => {
                write!(f, "stage_timeouts.{s} must be greater than zero")
            }
            PipelineConfigError::MaxWait => f.write_str("max_wait must be greater than zero"),
            PipelineConfigError::Governor(e) => write!(f, "governor: {e}"),
        }
    }
}

impl core::error::Error for PipelineConfigError {}
