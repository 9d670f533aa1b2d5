//! Operator commands: start, stop, pause, resume, reset, train_now.

use super::machine::Pipeline;
use super::output::{EventType, Output};
use super::refusal::Refusal;
use super::replay::start_message;
use super::types::{Mode, State};
use crate::journal::Level;
use crate::time::{Duration, Instant};

impl Pipeline {
    /// `start(mode)`: IDLE → COLLECTING, round 1. Refused while a run is in progress (also a
    /// collect run waiting for `train_now`) and in ERROR.
    pub fn handle_start(&mut self, now: Instant, mode: Mode) -> Result<(), Refusal> {
        match self.state {
            State::Error => return Err(Refusal::InError),
            State::Idle if self.awaiting_train => return Err(Refusal::AwaitingTrainNow),
            State::Idle => {}
            _ => return Err(Refusal::Running),
        }
        self.check_room()?;
        self.step(|p| {
            p.mode = mode;
            p.round = 1;
            p.wait_spent = Duration::ZERO;
            p.last_error = None;
            p.completed = false;
            let message = start_message(mode);
            p.event(now, EventType::PipelineStart, Level::Info, None, message);
            p.enter_stage(now, State::Collecting);
        });
        Ok(())
    }

    /// `stop`: any run in progress (a stage state, PAUSED, or a collect round waiting for
    /// `train_now`) → IDLE with `pipeline_stop`; a running stage is killed
    /// ([`Output::KillStage`]); its late outcome is refused with [`Refusal::NoStageRunning`]
    /// (no stage runs any more), or with [`Refusal::StaleOutcome`] once a new run's stage is
    /// running (its token is not the current one).
    pub fn handle_stop(&mut self, now: Instant) -> Result<(), Refusal> {
        match self.state {
            State::Error => return Err(Refusal::InError),
            State::Idle if !self.awaiting_train => return Err(Refusal::NotRunning),
            _ => {}
        }
        self.check_room()?;
        self.step(|p| {
            if let Some(run) = p.run.take() {
                p.push(Output::KillStage {
                    stage: run.stage,
                    token: run.token,
                });
            }
            p.end_hold(now);
            p.state = State::Idle;
            p.awaiting_train = false;
            p.pause_requested = false;
            p.resume_to = None;
            let message = "Pipeline stopped by operator";
            p.event(now, EventType::PipelineStop, Level::Warning, None, message);
        });
        Ok(())
    }

    /// `pause`: a stage waiting for admission → PAUSED at once; a running stage finishes first
    /// (the pause is *requested* and takes effect when its success is reported; a failure still
    /// goes to ERROR). Refused when nothing runs, in PAUSED, and when already requested.
    pub fn handle_pause(&mut self, now: Instant) -> Result<(), Refusal> {
        match self.state {
            State::Error => return Err(Refusal::InError),
            State::Idle => return Err(Refusal::NotRunning),
            State::Paused => return Err(Refusal::AlreadyPaused),
            _ if self.pause_requested => return Err(Refusal::PauseAlreadyRequested),
            _ => {}
        }
        self.check_room()?;
        self.step(|p| {
            if p.run.is_some() {
                p.pause_requested = true;
                let message = "Pause requested; takes effect when the stage ends";
                p.event(now, EventType::PipelinePause, Level::Warning, None, message);
            } else {
                p.end_hold(now);
                p.pause_into(now, p.state);
            }
        });
        Ok(())
    }

    /// `resume`: PAUSED → the stage state it was paused before (which asks the governor
    /// again); with a pause only requested, cancels the request. Refused otherwise.
    pub fn handle_resume(&mut self, now: Instant) -> Result<(), Refusal> {
        let target = match (self.state, self.resume_to) {
            (State::Paused, Some(target)) => Some(target),
            _ if self.pause_requested => None,
            _ => return Err(Refusal::NotPaused),
        };
        self.check_room()?;
        self.step(|p| {
            p.pause_requested = false;
            let message = "Pipeline resumed";
            p.event(now, EventType::PipelineResume, Level::Info, None, message);
            if let Some(target) = target {
                p.resume_to = None;
                p.enter_stage(now, target);
            }
        });
        Ok(())
    }

    /// `reset`: ERROR → IDLE, round 1. Refused outside ERROR.
    pub fn handle_reset(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.state != State::Error {
            return Err(Refusal::NotInError);
        }
        self.check_room()?;
        self.step(|p| {
            p.state = State::Idle;
            p.round = 1;
            let message = "Pipeline reset after error";
            p.event(now, EventType::PipelineReset, Level::Info, None, message);
        });
        Ok(())
    }

    /// `train_now`: IDLE after a collect round → FINALIZING. Refused while running, in full
    /// mode, with nothing collected, and in ERROR.
    pub fn handle_train_now(&mut self, now: Instant) -> Result<(), Refusal> {
        match self.state {
            State::Error => return Err(Refusal::InError),
            _ if self.mode == Mode::Full => return Err(Refusal::TrainNowInFullMode),
            State::Idle if !self.awaiting_train => return Err(Refusal::NothingToTrain),
            State::Idle => {}
            _ => return Err(Refusal::Running),
        }
        self.check_room()?;
        self.step(|p| {
            p.awaiting_train = false;
            p.enter_stage(now, State::Finalizing);
        });
        Ok(())
    }

    /// Enters PAUSED, to resume with `target`.
    pub(super) fn pause_into(&mut self, now: Instant, target: State) {
        self.state = State::Paused;
        self.resume_to = Some(target);
        self.pause_requested = false;
        let message = "Pipeline paused";
        self.event(now, EventType::PipelinePause, Level::Warning, None, message);
    }
}
