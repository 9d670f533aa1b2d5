//! Rebuilding the pipeline's [`Status`] from its journal events, for
//! [`Pipeline::recover`](super::Pipeline::recover) after a restart.
//!
//! The journal is the durable record; the status file is only a cache written after it. A host
//! feeds [`Replay`] the pipeline events of the journal in order (one [`ReplayLine`] per line;
//! events of other components are ignored) and passes [`Replay::status`] to `recover`.
//!
//! The mode is in no field of the events, so the machine's `pipeline_start` message is
//! [`start_message`] (the seed's message plus the mode in parentheses, in the style of the
//! seed's `Starting training pipeline (C++)`); [`Replay`] reads the mode back from it and takes
//! `collect` when the message names none.
//!
//! Replay mirrors the machine's transitions with the configuration in force now
//! (`rounds`, `unit_tests`). A restart in the middle of a step (some of its events written,
//! the rest lost) leaves the status in the stage state being entered or run, which `recover`
//! turns into ERROR with reason `interrupted`: a cut step is never taken for a finished one.

use super::config::PipelineConfig;
use super::output::{EventType, Status};
use super::types::{ErrorReason, Mode, Stage, State};
use core::fmt;

/// The `pipeline_start` message for `mode`: `Starting training pipeline (collect)` or
/// `Starting training pipeline (full)`.
pub const fn start_message(mode: Mode) -> &'static str {
    match mode {
        Mode::Collect => "Starting training pipeline (collect)",
        Mode::Full => "Starting training pipeline (full)",
    }
}

/// The fields of one journal line that replay reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayLine<'a> {
    /// `event_type`.
    pub event_type: &'a str,
    /// `stage` (`pipeline` for whole-pipeline events).
    pub stage: &'a str,
    /// `round`.
    pub round: u32,
    /// `message`.
    pub message: &'a str,
    /// `error`.
    pub error: Option<&'a str>,
}

/// A pipeline event [`Replay`] cannot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// A stage event names no known stage.
    UnknownStage,
    /// A `pipeline_error` carries no known reason, or no stage.
    UnknownError,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::UnknownStage => "pipeline event with an unknown stage",
            ReplayError::UnknownError => "pipeline_error with an unknown reason or stage",
        })
    }
}

impl core::error::Error for ReplayError {}

/// Folds journal events into the [`Status`] they leave behind.
#[derive(Clone, Debug)]
pub struct Replay {
    rounds: u32,
    unit_tests: bool,
    status: Status,
    running: bool,
    events: u64,
}

impl Replay {
    /// Nothing replayed yet: IDLE, round 1, mode collect.
    pub fn new(config: &PipelineConfig) -> Replay {
        Replay {
            rounds: config.rounds,
            unit_tests: config.unit_tests,
            status: Status::IDLE,
            running: false,
            events: 0,
        }
    }

    /// How many pipeline events were replayed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The status the events replayed so far leave (`stage_started_at` is `None`: the old
    /// process's clock means nothing now).
    pub fn status(&self) -> Status {
        let mut status = self.status;
        status.stage = status.state.stage();
        status
    }

    /// Applies one journal line; lines that are not pipeline events are ignored. An error
    /// changes nothing.
    pub fn feed(&mut self, line: &ReplayLine<'_>) -> Result<(), ReplayError> {
        let Some(kind) = event_type(line.event_type) else {
            return Ok(());
        };
        let stage = match line.stage {
            "pipeline" => None,
            name => Some(stage_named(name).ok_or(ReplayError::UnknownStage)?),
        };
        let error = match kind {
            EventType::PipelineError => Some(error_reason(line.error, stage)?),
            _ => None,
        };
        self.events += 1;
        let s = &mut self.status;
        s.round = line.round;
        match kind {
            EventType::PipelineStart => {
                s.mode = mode_of(line.message);
                s.state = State::Collecting;
                s.awaiting_train = false;
                s.pause_requested = false;
                s.resume_to = None;
                s.last_error = None;
                s.completed = false;
                self.running = false;
            }
            EventType::StageStart => {
                let stage = stage.ok_or(ReplayError::UnknownStage)?;
                s.state = stage.state();
                s.awaiting_train = false;
                self.running = true;
            }
            EventType::StageEnd => {
                let stage = stage.ok_or(ReplayError::UnknownStage)?;
                self.running = false;
                if line.error.is_none() {
                    self.after_success(stage);
                }
            }
            EventType::PipelineThrottled => {
                if let Some(stage) = stage {
                    s.state = stage.state();
                }
                s.awaiting_train = false;
                self.running = false;
            }
            EventType::PipelineError => {
                s.state = State::Error;
                s.last_error = error;
                s.awaiting_train = false;
                s.pause_requested = false;
                s.resume_to = None;
                self.running = false;
            }
            EventType::PipelineComplete => {
                s.state = State::Idle;
                s.awaiting_train = false;
                s.completed = true;
            }
            EventType::PipelineStop => {
                s.state = State::Idle;
                s.awaiting_train = false;
                s.pause_requested = false;
                s.resume_to = None;
                self.running = false;
            }
            EventType::PipelinePause if self.running => s.pause_requested = true,
            EventType::PipelinePause => {
                if s.state.stage().is_some() {
                    s.resume_to = Some(s.state);
                    s.state = State::Paused;
                }
                s.pause_requested = false;
            }
            EventType::PipelineResume => {
                s.pause_requested = false;
                if let (State::Paused, Some(target)) = (s.state, s.resume_to.take()) {
                    s.state = target;
                }
            }
            EventType::PipelineReset => {
                s.state = State::Idle;
                s.round = 1;
            }
        }
        Ok(())
    }

    /// The machine's move after `stage` succeeded (a pause that takes effect is its own
    /// `pipeline_pause` event, which follows).
    fn after_success(&mut self, stage: Stage) {
        let s = &mut self.status;
        let gate = |s: &mut Status| match s.mode {
            Mode::Full => Some(State::Finalizing),
            Mode::Collect => {
                s.awaiting_train = true;
                None
            }
        };
        let next = match stage {
            Stage::Generate => Some(State::Validating),
            Stage::Validate if self.unit_tests => Some(State::Testing),
            Stage::Validate | Stage::UnitTest => gate(s),
            Stage::Train => Some(State::Evaluating),
            Stage::Eval if s.round < self.rounds => {
                s.round += 1;
                Some(State::Collecting)
            }
            Stage::Eval => None,
        };
        match next {
            Some(state) => s.state = state,
            None => {
                s.state = State::Idle;
                s.pause_requested = false;
            }
        }
    }
}

fn event_type(name: &str) -> Option<EventType> {
    const ALL: [EventType; 10] = [
        EventType::PipelineStart,
        EventType::StageStart,
        EventType::StageEnd,
        EventType::PipelineError,
        EventType::PipelineThrottled,
        EventType::PipelineComplete,
        EventType::PipelineStop,
        EventType::PipelinePause,
        EventType::PipelineResume,
        EventType::PipelineReset,
    ];
    ALL.into_iter().find(|e| e.name() == name)
}

fn stage_named(name: &str) -> Option<Stage> {
    Stage::ALL.into_iter().find(|s| s.name() == name)
}

fn mode_of(message: &str) -> Mode {
    if message == start_message(Mode::Full) {
        Mode::Full
    } else {
        Mode::Collect
    }
}

fn error_reason(error: Option<&str>, stage: Option<Stage>) -> Result<ErrorReason, ReplayError> {
    let stage = stage.ok_or(ReplayError::UnknownError)?;
    let reasons = [
        ErrorReason::StageFailed(stage),
        ErrorReason::StageTimedOut(stage),
        ErrorReason::Budget(stage),
        ErrorReason::Interrupted(stage),
    ];
    let name = error.ok_or(ReplayError::UnknownError)?;
    reasons
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or(ReplayError::UnknownError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::Load;
    use crate::pipeline::{Output, Pipeline, RunToken, StageOutcome, StageResult, UsageDelta};
    use crate::time::{Duration, Instant};

    /// Drives a real machine and a replay of its events side by side.
    struct Twin {
        p: Pipeline,
        r: Replay,
        token: Option<RunToken>,
        now: u64,
    }

    impl Twin {
        fn new(config: PipelineConfig) -> Twin {
            Twin {
                p: Pipeline::new(config).unwrap(),
                r: Replay::new(&config),
                token: None,
                now: 1,
            }
        }

        fn at(&mut self) -> Instant {
            self.now += 1;
            Instant::from_secs(self.now)
        }

        /// Feeds the outputs' events to the replay; checks both agree.
        fn sync(&mut self) {
            while let Some(o) = self.p.poll_output() {
                match o {
                    Output::RunStage { token, .. } => self.token = Some(token),
                    Output::AppendEvent(e) => {
                        let message = e.message;
                        let line = ReplayLine {
                            event_type: e.event_type.name(),
                            stage: e.stage_name(),
                            round: e.round,
                            message,
                            error: e.error.map(ErrorReason::name),
                        };
                        self.r.feed(&line).unwrap();
                    }
                    _ => {}
                }
            }
            let mut want = self.p.status();
            want.stage_started_at = None;
            assert_eq!(self.r.status(), want);
        }

        fn ok(&mut self, result: StageResult) {
            let now = self.at();
            let token = self.token.take().unwrap();
            let usage = UsageDelta::default();
            self.p
                .handle_outcome(
                    now,
                    StageOutcome {
                        token,
                        result,
                        usage,
                    },
                )
                .unwrap();
            self.sync();
        }
    }

    fn config(rounds: u32, unit_tests: bool) -> PipelineConfig {
        let mut c = PipelineConfig::DEFAULT;
        c.rounds = rounds;
        c.unit_tests = unit_tests;
        c.governor.start_gap = Duration::ZERO;
        c
    }

    #[test]
    fn replay_follows_a_full_run_to_completion() {
        let mut t = Twin::new(config(2, true));
        let now = t.at();
        t.p.handle_start(now, Mode::Full).unwrap();
        t.sync();
        for _ in 0..10 {
            t.ok(StageResult::Success);
        }
        assert_eq!(t.r.status().state, State::Idle);
        assert_eq!(t.r.status().mode, Mode::Full);
    }

    #[test]
    fn replay_follows_collect_train_now_pause_resume_and_errors() {
        let mut t = Twin::new(config(3, false));
        let now = t.at();
        t.p.handle_start(now, Mode::Collect).unwrap();
        t.sync();
        t.ok(StageResult::Success);
        t.ok(StageResult::Success);
        assert!(t.r.status().awaiting_train);
        let now = t.at();
        t.p.handle_train_now(now).unwrap();
        t.sync();
        let now = t.at();
        t.p.handle_pause(now).unwrap(); // requested while train runs
        t.sync();
        t.ok(StageResult::Success); // takes effect: PAUSED before eval
        assert_eq!(t.r.status().resume_to, Some(State::Evaluating));
        let now = t.at();
        t.p.handle_resume(now).unwrap();
        t.sync();
        t.ok(StageResult::Success);
        assert_eq!(t.r.status().round, 2);
        t.ok(StageResult::Failed);
        assert_eq!(
            t.r.status().last_error,
            Some(ErrorReason::StageFailed(Stage::Generate))
        );
        let now = t.at();
        t.p.handle_reset(now).unwrap();
        t.sync();
        let now = t.at();
        t.p.handle_start(now, Mode::Full).unwrap();
        t.sync();
        let now = t.at();
        t.p.handle_stop(now).unwrap();
        t.sync();
    }

    #[test]
    fn replay_follows_throttling_and_the_budget() {
        let mut c = config(1, false);
        c.max_wait = Duration::from_secs(3);
        let mut t = Twin::new(c);
        t.p.handle_load(Load {
            running: 0,
            queued: 0,
            cpu_permille: 1000,
            mem_permille: 0,
        });
        let now = t.at();
        t.p.handle_start(now, Mode::Full).unwrap();
        t.sync();
        assert_eq!(t.r.status().state, State::Collecting);
        let now = t.at();
        t.p.handle_pause(now).unwrap(); // held: pauses at once
        t.sync();
        let now = t.at();
        t.p.handle_resume(now).unwrap();
        t.sync();
        for _ in 0..5 {
            let now = t.at();
            t.p.handle_timeout(now).unwrap();
            t.sync();
        }
        assert_eq!(
            t.r.status().last_error,
            Some(ErrorReason::Budget(Stage::Generate))
        );
    }

    #[test]
    fn a_cut_step_replays_as_the_stage_being_entered() {
        let c = config(3, false);
        let mut r = Replay::new(&c);
        let line = |event_type, stage, message| ReplayLine {
            event_type,
            stage,
            round: 1,
            message,
            error: None,
        };
        r.feed(&line(
            "pipeline_start",
            "pipeline",
            start_message(Mode::Full),
        ))
        .unwrap();
        r.feed(&line("stage_start", "generate", "")).unwrap();
        r.feed(&line("stage_end", "generate", "")).unwrap();
        // The stage_start of validate was lost with the process.
        assert_eq!(r.status().state, State::Validating);
        let p = Pipeline::recover(c, &r.status(), Instant::from_secs(9)).unwrap();
        assert_eq!(p.state(), State::Error);
        assert_eq!(p.status().mode, Mode::Full);
    }

    #[test]
    fn unknown_names_are_errors_and_other_events_are_ignored() {
        let mut r = Replay::new(&PipelineConfig::DEFAULT);
        let mut line = ReplayLine {
            event_type: "policy_applied",
            stage: "kernel",
            round: 1,
            message: "",
            error: None,
        };
        r.feed(&line).unwrap();
        assert_eq!(r.events(), 0);
        line.event_type = "stage_start";
        assert_eq!(r.feed(&line), Err(ReplayError::UnknownStage));
        line.event_type = "pipeline_error";
        line.stage = "train";
        line.error = Some("gremlins");
        assert_eq!(r.feed(&line), Err(ReplayError::UnknownError));
        assert_eq!(r.events(), 0);
        assert_eq!(r.status().state, State::Idle);
    }
}
