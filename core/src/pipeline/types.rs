//! The vocabulary of the pipeline: modes, states, stages, stage outcomes and error reasons.

use core::fmt;

/// How a run proceeds after a round's data is collected and validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// Stop in IDLE after each validated round and wait for `train_now`.
    #[default]
    Collect,
    /// Train and evaluate every round without waiting.
    Full,
}

impl Mode {
    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Collect, Mode::Full];

    /// The seed's name: `collect` or `full`.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Collect => "collect",
            Mode::Full => "full",
        }
    }

    /// The mode named `name` ([`Mode::name`]), if any.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A state of the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Nothing runs; a collect run may be waiting for `train_now`.
    #[default]
    Idle,
    /// Generating data (stage `generate`).
    Collecting,
    /// Validating and cleaning it (stage `validate`).
    Validating,
    /// The unit-test gate (stage `unit_test`), when enabled.
    Testing,
    /// Training (stage `train`).
    Finalizing,
    /// Evaluating (stage `eval`).
    Evaluating,
    /// Paused by the operator between stages; nothing runs.
    Paused,
    /// A stage failed, its budget was spent or it was interrupted; `reset` leaves it.
    Error,
}

impl State {
    /// The seed's upper-case name (`IDLE`, `COLLECTING`, …).
    pub const fn name(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::Collecting => "COLLECTING",
            State::Validating => "VALIDATING",
            State::Testing => "TESTING",
            State::Finalizing => "FINALIZING",
            State::Evaluating => "EVALUATING",
            State::Paused => "PAUSED",
            State::Error => "ERROR",
        }
    }

    /// The stage this state runs, if it is a stage state.
    pub const fn stage(self) -> Option<Stage> {
        match self {
            State::Collecting => Some(Stage::Generate),
            State::Validating => Some(Stage::Validate),
            State::Testing => Some(Stage::UnitTest),
            State::Finalizing => Some(Stage::Train),
            State::Evaluating => Some(Stage::Eval),
            State::Idle | State::Paused | State::Error => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a round. The core only names it; the host maps it to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Stage {
    /// Teacher generation.
    Generate,
    /// Validation and cleaning.
    Validate,
    /// The unit-test gate.
    UnitTest,
    /// Training.
    Train,
    /// Evaluation.
    Eval,
}

impl Stage {
    /// Every stage, in run order.
    pub const ALL: [Stage; 5] = [
        Stage::Generate,
        Stage::Validate,
        Stage::UnitTest,
        Stage::Train,
        Stage::Eval,
    ];

    /// The name used in journal events (`generate`, `validate`, `unit_test`, `train`, `eval`).
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Generate => "generate",
            Stage::Validate => "validate",
            Stage::UnitTest => "unit_test",
            Stage::Train => "train",
            Stage::Eval => "eval",
        }
    }

    /// The seed's script for this stage, relative to the repository root: the host's default
    /// command.
    pub const fn default_script(self) -> &'static str {
        match self {
            Stage::Generate => "scripts/01_teacher_generate.py",
            Stage::Validate => "scripts/02_validate_clean.py",
            Stage::UnitTest => "scripts/03_unit_test_gate.py",
            Stage::Train => "scripts/04_train_qlora.py",
            Stage::Eval => "scripts/05_eval.py",
        }
    }

    /// The state that runs this stage.
    pub const fn state(self) -> State {
        match self {
            Stage::Generate => State::Collecting,
            Stage::Validate => State::Validating,
            Stage::UnitTest => State::Testing,
            Stage::Train => State::Finalizing,
            Stage::Eval => State::Evaluating,
        }
    }

    /// The stage's index in [`Stage::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies one stage run. A [`StageOutcome`] must carry the token of the run it reports;
/// every run gets a fresh one, so an outcome of a run that was killed (by `stop`, or by the
/// core's report deadline) is refused as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunToken(pub u32);

/// Resource use of one stage run, measured by the host (the journal's `usage_delta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UsageDelta {
    /// Change of resident memory over the run, in MiB (may be negative).
    pub memory_mb_delta: i64,
    /// Average CPU use over the run, in percent of one core (may exceed 100).
    pub cpu_pct: u32,
}

/// How a stage run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StageResult {
    /// Exit status 0.
    Success,
    /// Non-zero exit, a signal, or a failure to start.
    Failed,
    /// The host killed it at its timeout.
    TimedOut,
}

/// The host's report of a finished stage run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StageOutcome {
    /// The token of the [`Output::RunStage`](super::Output::RunStage) it answers.
    pub token: RunToken,
    /// How it ended.
    pub result: StageResult,
    /// What it used.
    pub usage: UsageDelta,
}

/// Why the pipeline entered ERROR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ErrorReason {
    /// The stage ended with a failure.
    StageFailed(Stage),
    /// The stage ran past its timeout (reported by the host, or no report by the core's
    /// deadline).
    StageTimedOut(Stage),
    /// Waiting for resources spent the run's wall-time budget (`max_wait`).
    Budget(Stage),
    /// The host restarted while the stage was running or waiting to run.
    Interrupted(Stage),
}

impl ErrorReason {
    /// The stage concerned.
    pub const fn stage(self) -> Stage {
        match self {
            ErrorReason::StageFailed(s)
            | ErrorReason::StageTimedOut(s)
            | ErrorReason::Budget(s)
            | ErrorReason::Interrupted(s) => s,
        }
    }

    /// A short fixed description, for the journal's `error` field.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorReason::StageFailed(_) => "stage_failed",
            ErrorReason::StageTimedOut(_) => "stage_timeout",
            ErrorReason::Budget(_) => "budget",
            ErrorReason::Interrupted(_) => "interrupted",
        }
    }
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in stage {}", self.name(), self.stage())
    }
}
