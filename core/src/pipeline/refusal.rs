//! Typed refusals of commands and outcomes the pipeline cannot accept in its state.

use super::config::PipelineConfigError;
use core::fmt;

/// Why an input was refused. A refused input changes nothing.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Refusal {
    /// `start`, `train_now` or `reset` while a stage state or PAUSED.
    Running,
    /// `start` while a collect round waits for `train_now` (stop it first).
    AwaitingTrainNow,
    /// A command other than `reset` in ERROR.
    InError,
    /// `stop` or `pause` with no run in progress.
    NotRunning,
    /// `train_now` in a `full`-mode run (it trains by itself).
    TrainNowInFullMode,
    /// `train_now` in IDLE with no collected round waiting.
    NothingToTrain,
    /// `pause` in PAUSED.
    AlreadyPaused,
    /// `pause` while a pause is already requested.
    PauseAlreadyRequested,
    /// `resume` when not paused and no pause is requested.
    NotPaused,
    /// `reset` outside ERROR.
    NotInError,
    /// A stage outcome while no stage runs.
    NoStageRunning,
    /// A stage outcome whose token is not the running stage's (a killed or older run).
    StaleOutcome,
    /// The output queue lacks room for this step: drain `poll_output` to `None` first.
    OutputsPending,
}

impl Refusal {
    /// A short fixed reason, for HTTP and socket replies.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::Running => "a run is in progress",
            Refusal::AwaitingTrainNow => "a collect round waits for train_now; stop it first",
            Refusal::InError => "the pipeline is in ERROR; reset it first",
            Refusal::NotRunning => "no run is in progress",
            Refusal::TrainNowInFullMode => "train_now applies to collect mode only",
            Refusal::NothingToTrain => "no collected round waits for training",
            Refusal::AlreadyPaused => "the pipeline is already paused",
            Refusal::PauseAlreadyRequested => "a pause is already requested",
            Refusal::NotPaused => "the pipeline is not paused",
            Refusal::NotInError => "reset applies to ERROR only",
            Refusal::NoStageRunning => "no stage is running",
            Refusal::StaleOutcome => "the outcome is for a stage run that is no longer current",
            Refusal::OutputsPending => "outputs are pending; drain poll_output first",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for Refusal {}

/// Why [`Pipeline::recover`](super::Pipeline::recover) could not rebuild a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecoverError {
    /// The configuration is invalid.
    Config(PipelineConfigError),
    /// The status's round is outside 1..=`rounds` of the configuration.
    Round,
    /// The status says PAUSED but not which stage state to resume.
    ResumeTo,
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Config(e) => write!(f, "config: {e}"),
            RecoverError::Round => f.write_str("status round is outside 1..=rounds"),
            RecoverError::ResumeTo => f.write_str("status is PAUSED without a stage to resume"),
        }
    }
}

impl core::error::Error for RecoverError {}
