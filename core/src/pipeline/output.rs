//! What the pipeline asks the host to do: run or kill a stage, append an event, write status.

use super::types::{ErrorReason, Mode, RunToken, Stage, State, UsageDelta};
use crate::governor::Admission;
use crate::journal::{Event, Level};
use crate::time::WallTime;
use crate::time::{Duration, Instant};

/// The journal's `event_type`, in the seed's vocabulary plus the three operator actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EventType {
    /// `start(mode)` accepted.
    PipelineStart,
    /// A stage run was admitted and handed to the host.
    StageStart,
    /// A stage run ended (success or failure); carries `usage_delta`.
    StageEnd,
    /// The run entered ERROR.
    PipelineError,
    /// The governor held a stage (once per hold episode).
    PipelineThrottled,
    /// The last round's evaluation succeeded.
    PipelineComplete,
    /// `stop` ended the run.
    PipelineStop,
    /// `pause` accepted (ours; not in the seed).
    PipelinePause,
    /// `resume` accepted (ours; not in the seed).
    PipelineResume,
    /// `reset` left ERROR (ours; not in the seed).
    PipelineReset,
}

impl EventType {
    /// The journal's spelling (`pipeline_start`, `stage_end`, …).
    pub const fn name(self) -> &'static str {
        match self {
            EventType::PipelineStart => "pipeline_start",
            EventType::StageStart => "stage_start",
            EventType::StageEnd => "stage_end",
            EventType::PipelineError => "pipeline_error",
            EventType::PipelineThrottled => "pipeline_throttled",
            EventType::PipelineComplete => "pipeline_complete",
            EventType::PipelineStop => "pipeline_stop",
            EventType::PipelinePause => "pipeline_pause",
            EventType::PipelineResume => "pipeline_resume",
            EventType::PipelineReset => "pipeline_reset",
        }
    }
}

/// One event for the journal. The host adds `ts`, `run_id` and the chain.
///
/// With `serde` it is `Serialize` only: its message is a `&'static str`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PipelineEvent {
    /// When it happened, on the host's monotonic clock.
    pub at: Instant,
    /// What happened.
    pub event_type: EventType,
    /// How serious it is.
    pub level: Level,
    /// The stage concerned; `None` for whole-pipeline events (journal stage `pipeline`).
    pub stage: Option<Stage>,
    /// The round, 1-based.
    pub round: u32,
    /// A short fixed message.
    pub message: &'static str,
    /// For `stage_end`: the usage the host reported (`memory_mb_delta`, `cpu_pct`).
    pub usage: Option<UsageDelta>,
    /// For `pipeline_error` (and a failed `stage_end`): why.
    pub error: Option<ErrorReason>,
    /// For `pipeline_throttled`: the governor's answer (hold reason and `retry_at`, or the
    /// rejection, which the pipeline treats as a hold for one cooldown).
    pub admission: Option<Admission>,
}

impl PipelineEvent {
    /// The journal's `stage` field: the stage's name, or `pipeline`.
    pub const fn stage_name(&self) -> &'static str {
        match self.stage {
            Some(s) => s.name(),
            None => "pipeline",
        }
    }

    /// The journal's `usage_delta`: a stage end's usage as `memory_mb_delta` and `cpu_pct`,
    /// written into `usage` (the result borrows it); empty for other events.
    pub fn usage_delta<'a>(
        &self,
        usage: &'a mut [(&'static str, i64); 2],
    ) -> &'a [(&'static str, i64)] {
        match self.usage {
            Some(u) => {
                *usage = [
                    ("memory_mb_delta", u.memory_mb_delta),
                    ("cpu_pct", i64::from(u.cpu_pct)),
                ];
                &usage[..]
            }
            None => &[],
        }
    }

    /// The journal event for this pipeline event, stamped `ts` by the host. Its usage goes
    /// to `usage_delta` ([`usage_delta`](PipelineEvent::usage_delta), written into `usage`,
    /// which the event borrows); the reason of an error goes to `error`.
    pub fn to_journal<'a>(
        &self,
        ts: WallTime,
        usage: &'a mut [(&'static str, i64); 2],
    ) -> Event<'a> {
        let usage_delta = self.usage_delta(usage);
        Event {
            ts,
            round: self.round,
            stage: self.stage_name(),
            level: self.level,
            event_type: self.event_type.name(),
            message: self.message,
            counters_delta: &[],
            usage_delta,
            artifact_paths: &[],
            error: self.error.map(ErrorReason::name),
        }
    }
}

/// The pipeline's status, for `state.json` and `GET /api/v1/status`, and for
/// [`Pipeline::recover`](super::Pipeline::recover) after a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Status {
    /// The state.
    pub state: State,
    /// The round, 1-based.
    pub round: u32,
    /// The mode of the current (or last) run.
    pub mode: Mode,
    /// The stage running or waiting for admission, if any.
    pub stage: Option<Stage>,
    /// When the running stage started (`None` while it waits for admission).
    pub stage_started_at: Option<Instant>,
    /// A collect round is done and `train_now` would train it.
    pub awaiting_train: bool,
    /// In PAUSED: the stage state `resume` continues with.
    pub resume_to: Option<State>,
    /// A pause was requested while a stage runs; it takes effect when the stage ends.
    pub pause_requested: bool,
    /// Why the last run entered ERROR, if it did (kept until the next `start`).
    pub last_error: Option<ErrorReason>,
    /// The last run ran every round (`pipeline_complete`); cleared by the next `start`.
    pub completed: bool,
}

impl Status {
    /// A pipeline that never ran: idle in round 1, collect mode, nothing pending.
    pub const IDLE: Status = Status {
        state: State::Idle,
        round: 1,
        mode: Mode::Collect,
        stage: None,
        stage_started_at: None,
        awaiting_train: false,
        resume_to: None,
        pause_requested: false,
        last_error: None,
        completed: false,
    };

    /// The one word a dashboard reads: what the pipeline is doing ([`RunStatus`]).
    pub const fn run_status(&self) -> RunStatus {
        match self.state {
            State::Error => RunStatus::Error,
            State::Paused => RunStatus::Paused,
            State::Idle if self.awaiting_train => RunStatus::AwaitingTrain,
            State::Idle if self.completed => RunStatus::Completed,
            State::Idle => RunStatus::Idle,
            State::Collecting
            | State::Validating
            | State::Testing
            | State::Finalizing
            | State::Evaluating => RunStatus::Running,
        }
    }
}

/// What the pipeline is doing, in one word: the `status` of `state.json`
/// ([`Status::run_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RunStatus {
    /// IDLE: no run started yet, or the last one was stopped (or reset after an error).
    Idle,
    /// A stage state: a stage runs or waits for admission (also with a pause requested).
    Running,
    /// PAUSED by the operator between stages.
    Paused,
    /// IDLE after a collect round, waiting for `train_now`.
    AwaitingTrain,
    /// IDLE after the last run ran every round.
    Completed,
    /// ERROR: a stage failed, timed out, spent the waiting budget or was interrupted.
    Error,
}

impl RunStatus {
    /// The word: `idle`, `running`, `paused`, `awaiting_train`, `completed` or `error`.
    pub const fn name(self) -> &'static str {
        match self {
            RunStatus::Idle => "idle",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::AwaitingTrain => "awaiting_train",
            RunStatus::Completed => "completed",
            RunStatus::Error => "error",
        }
    }
}

/// An effect for the host to carry out (with `serde`: `Serialize` only), from [`Pipeline::poll_output`](super::Pipeline::poll_output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Output {
    /// Start `stage` for `round`; kill it after `timeout` and report
    /// [`StageResult::TimedOut`](super::StageResult::TimedOut). Report the end with `token`.
    RunStage {
        /// The stage to run.
        stage: Stage,
        /// The round it belongs to.
        round: u32,
        /// How long it may run.
        timeout: Duration,
        /// The token its outcome must carry.
        token: RunToken,
    },
    /// Kill the run with `token` (SIGTERM, then SIGKILL); do not report its outcome (it would be
    /// refused as stale).
    KillStage {
        /// The stage being killed.
        stage: Stage,
        /// The run's token.
        token: RunToken,
    },
    /// Append this event to the journal.
    AppendEvent(PipelineEvent),
    /// Write this status (atomically) to the state file.
    WriteStatus(Status),
}
