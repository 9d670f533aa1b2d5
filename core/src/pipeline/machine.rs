//! The [`Pipeline`] value: its fields, the output queue, the timer and the single-input entry.

use super::config::{PipelineConfig, PipelineConfigError};
use super::output::{EventType, Output, PipelineEvent, Status};
use super::refusal::Refusal;
use super::types::{ErrorReason, Mode, RunToken, Stage, StageOutcome, State, UsageDelta};
use crate::governor::{Admission, Governor, Load};
use crate::journal::Level;
use crate::time::{Duration, Instant};
use heapless::Deque;

/// How many outputs the queue holds.
pub const OUTPUT_CAPACITY: usize = 16;

/// The most outputs one step emits; an input is refused unless this much room is free.
pub(super) const STEP_OUTPUTS_MAX: usize = 5;

/// One input to the pipeline, for hosts (and fuzzers) that prefer a single entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Input {
    /// [`Pipeline::handle_start`].
    Start(Mode),
    /// [`Pipeline::handle_stop`].
    Stop,
    /// [`Pipeline::handle_pause`].
    Pause,
    /// [`Pipeline::handle_resume`].
    Resume,
    /// [`Pipeline::handle_reset`].
    Reset,
    /// [`Pipeline::handle_train_now`].
    TrainNow,
    /// [`Pipeline::handle_outcome`].
    Outcome(StageOutcome),
    /// [`Pipeline::handle_load`].
    Load(Load),
    /// [`Pipeline::handle_timeout`].
    Timeout,
}

/// A stage run handed to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Run {
    pub(super) stage: Stage,
    pub(super) token: RunToken,
    pub(super) started_at: Instant,
    /// Timeout plus report grace: without an outcome by then, the core kills the run.
    pub(super) deadline: Instant,
}

/// A stage waiting for the governor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Hold {
    /// Start of this hold episode.
    pub(super) since: Instant,
    /// When to ask the governor again.
    pub(super) retry_at: Instant,
}

/// The training pipeline's state machine. See the [module docs](super) for the call order.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub(super) config: PipelineConfig,
    pub(super) governor: Governor,
    pub(super) load: Load,
    pub(super) state: State,
    pub(super) mode: Mode,
    pub(super) round: u32,
    pub(super) run: Option<Run>,
    pub(super) hold: Option<Hold>,
    pub(super) pause_requested: bool,
    pub(super) resume_to: Option<State>,
    pub(super) awaiting_train: bool,
    /// Time spent waiting for admission in this run, over ended hold episodes.
    pub(super) wait_spent: Duration,
    pub(super) last_error: Option<ErrorReason>,
    /// The last run ended with `pipeline_complete`.
    pub(super) completed: bool,
    pub(super) next_token: u32,
    pub(super) outputs: Deque<Output, OUTPUT_CAPACITY>,
}

impl Pipeline {
    /// An IDLE pipeline, round 1, mode collect, with `config`.
    pub fn new(config: PipelineConfig) -> Result<Pipeline, PipelineConfigError> {
        config.validate()?;
        let governor = Governor::new(config.governor).map_err(PipelineConfigError::Governor)?;
        Ok(Pipeline {
            config,
            governor,
            load: Load::default(),
            state: State::Idle,
            mode: Mode::Collect,
            round: 1,
            run: None,
            hold: None,
            pause_requested: false,
            resume_to: None,
            awaiting_train: false,
            wait_spent: Duration::ZERO,
            last_error: None,
            completed: false,
            next_token: 0,
            outputs: Deque::new(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The round, 1-based.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The token of the running stage, if one runs.
    pub fn running(&self) -> Option<(Stage, RunToken)> {
        self.run.map(|r| (r.stage, r.token))
    }

    /// The status as [`Output::WriteStatus`] would carry it now.
    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            round: self.round,
            mode: self.mode,
            stage: self.state.stage(),
            stage_started_at: self.run.map(|r| r.started_at),
            awaiting_train: self.awaiting_train,
            resume_to: self.resume_to,
            pause_requested: self.pause_requested,
            last_error: self.last_error,
            completed: self.completed,
        }
    }

    /// The next effect to carry out, in order. Drain to `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Pipeline::handle_timeout) next has work: the governor's retry
    /// time or the waiting budget's end while a stage is held, or the report deadline (timeout
    /// plus grace) of a running stage.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(h) = self.hold {
            return Some(h.retry_at.min(self.budget_deadline(h)));
        }
        self.run.map(|r| r.deadline)
    }

    /// Records the host's latest load reading; the governor uses it at the next admission.
    pub fn handle_load(&mut self, load: Load) {
        self.load = load;
    }

    /// Feeds one [`Input`] in.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), Refusal> {
        match input {
            Input::Start(mode) => self.handle_start(now, mode),
            Input::Stop => self.handle_stop(now),
            Input::Pause => self.handle_pause(now),
            Input::Resume => self.handle_resume(now),
            Input::Reset => self.handle_reset(now),
            Input::TrainNow => self.handle_train_now(now),
            Input::Outcome(o) => self.handle_outcome(now, o),
            Input::Load(load) => {
                self.handle_load(load);
                Ok(())
            }
            Input::Timeout => self.handle_timeout(now),
        }
    }

    /// Refuses with [`Refusal::OutputsPending`] unless one step's outputs fit.
    pub(super) fn check_room(&self) -> Result<(), Refusal> {
        if OUTPUT_CAPACITY - self.outputs.len() < STEP_OUTPUTS_MAX {
            return Err(Refusal::OutputsPending);
        }
        Ok(())
    }

    /// Runs an accepted step: applies `f`, then queues the status if it changed.
    pub(super) fn step(&mut self, f: impl FnOnce(&mut Pipeline)) {
        let before = self.status();
        f(self);
        let after = self.status();
        if after != before {
            self.push(Output::WriteStatus(after));
        }
        self.debug_check();
    }

    /// Queues an output; room was checked before the step. (A plain `panic!` rather than
    /// `expect`, which would carry `Output`'s `Debug` code into every build: 6 KB of the
    /// simulator's wasm module.)
    pub(super) fn push(&mut self, output: Output) {
        if self.outputs.push_back(output).is_err() {
            panic!("check_room reserves STEP_OUTPUTS_MAX slots per step");
        }
    }

    /// Queues an event about `stage` (or the whole pipeline).
    pub(super) fn event(
        &mut self,
        now: Instant,
        event_type: EventType,
        level: Level,
        stage: Option<Stage>,
        message: &'static str,
    ) -> &mut PipelineEvent {
        self.push(Output::AppendEvent(PipelineEvent {
            at: now,
            event_type,
            level,
            stage,
            round: self.round,
            message,
            usage: None,
            error: None,
            admission: None,
        }));
        match self.outputs.back_mut() {
            Some(Output::AppendEvent(e)) => e,
            _ => unreachable!("just pushed an event"),
        }
    }

    /// Queues a `stage_end` event with the usage and, for a failure, the reason.
    pub(super) fn stage_end(
        &mut self,
        now: Instant,
        stage: Stage,
        usage: Option<UsageDelta>,
        error: Option<ErrorReason>,
    ) {
        let (level, message) = match error {
            None => (Level::Info, "stage succeeded"),
            Some(_) => (Level::Error, "stage failed"),
        };
        let e = self.event(now, EventType::StageEnd, level, Some(stage), message);
        e.usage = usage;
        e.error = error;
    }

    /// Queues a `pipeline_throttled` event for the governor's answer.
    pub(super) fn throttled(&mut self, now: Instant, stage: Stage, admission: Admission) {
        let message = "stage held by the resource governor";
        let e = self.event(
            now,
            EventType::PipelineThrottled,
            Level::Warning,
            Some(stage),
            message,
        );
        e.admission = Some(admission);
    }

    /// When the waiting budget runs out during hold `h`.
    pub(super) fn budget_deadline(&self, h: Hold) -> Instant {
        h.since + self.config.max_wait.saturating_sub(self.wait_spent)
    }

    /// Checks the machine's invariants (debug builds).
    fn debug_check(&self) {
        let stage_state = self.state.stage().is_some();
        debug_assert_eq!(stage_state, self.run.is_some() || self.hold.is_some());
        debug_assert!(!(self.run.is_some() && self.hold.is_some()));
        debug_assert_eq!(self.state == State::Paused, self.resume_to.is_some());
        debug_assert!(!self.awaiting_train || self.state == State::Idle);
        debug_assert!(!self.pause_requested || self.run.is_some());
        debug_assert!((1..=self.config.rounds).contains(&self.round));
    }
}
