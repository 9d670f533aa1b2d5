//! Stage flow: admission by the governor, running a stage, its outcome, and the timer.

use super::machine::{Hold, Pipeline, Run};
use super::output::{EventType, Output};
use super::refusal::Refusal;
use super::types::{
    ErrorReason, Mode, RunToken, Stage, StageOutcome, StageResult, State, UsageDelta,
};
use crate::governor::Admission;
use crate::journal::Level;
use crate::time::Instant;

impl Pipeline {
    /// Reports the end of the running stage. Success moves on; failure or timeout
    /// goes to ERROR with `pipeline_error`. Refused when no stage runs or the token is not the
    /// running stage's.
    pub fn handle_outcome(&mut self, now: Instant, outcome: StageOutcome) -> Result<(), Refusal> {
        let run = self.run.ok_or(Refusal::NoStageRunning)?;
        if run.token != outcome.token {
            return Err(Refusal::StaleOutcome);
        }
        self.check_room()?;
        self.step(|p| {
            p.run = None;
            let error = match outcome.result {
                StageResult::Success => None,
                StageResult::Failed => Some(ErrorReason::StageFailed(run.stage)),
                StageResult::TimedOut => Some(ErrorReason::StageTimedOut(run.stage)),
            };
            p.stage_end(now, run.stage, Some(outcome.usage), error);
            match error {
                None => p.advance(now, run.stage),
                Some(reason) => p.fail(now, reason),
            }
        });
        Ok(())
    }

    /// Does what is due at `now`: asks the governor again for a held stage, ends the run in
    /// ERROR when the waiting budget is spent, or kills a stage the host has not reported by
    /// its deadline (timeout plus grace) and ends the run in ERROR. Early calls do nothing.
    ///
    /// A killed stage's `stage_end` still carries `memory_mb_delta` and `cpu_pct`:
    /// the host measured nothing, and unknown usage is reported as 0.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Refusal> {
        self.check_room()?;
        self.step(|p| {
            if let Some(h) = p.hold {
                let stage = p.current_stage();
                if now >= p.budget_deadline(h) {
                    p.fail(now, ErrorReason::Budget(stage));
                } else if now >= h.retry_at {
                    p.try_admit(now);
                }
            } else if let Some(run) = p.run.filter(|r| now >= r.deadline) {
                p.run = None;
                p.push(Output::KillStage {
                    stage: run.stage,
                    token: run.token,
                });
                let reason = ErrorReason::StageTimedOut(run.stage);
                let unknown = UsageDelta::default();
                p.stage_end(now, run.stage, Some(unknown), Some(reason));
                p.fail(now, reason);
            }
        });
        Ok(())
    }

    /// Enters stage state `state` and asks for admission.
    pub(super) fn enter_stage(&mut self, now: Instant, state: State) {
        self.state = state;
        self.try_admit(now);
    }

    /// The stage of the current stage state.
    fn current_stage(&self) -> Stage {
        self.state.stage().expect("called in a stage state")
    }

    /// Asks the governor; starts the stage or holds it.
    fn try_admit(&mut self, now: Instant) {
        let stage = self.current_stage();
        match self.governor.admit(now, self.load) {
            Admission::Start => {
                self.end_hold(now);
                self.start_run(now, stage);
            }
            held @ Admission::Hold { retry_at, .. } => self.hold_until(now, stage, retry_at, held),
            rejected @ Admission::Reject { .. } => {
                let retry_at = now + self.config.governor.cooldown;
                self.hold_until(now, stage, retry_at, rejected);
            }
        }
    }

    /// Holds `stage` until `retry_at`; a new hold episode emits `pipeline_throttled`.
    fn hold_until(&mut self, now: Instant, stage: Stage, retry_at: Instant, answer: Admission) {
        let since = match self.hold {
            Some(h) => h.since,
            None => {
                self.throttled(now, stage, answer);
                now
            }
        };
        let hold = Hold { since, retry_at };
        self.hold = Some(hold);
        if now >= self.budget_deadline(hold) {
            self.fail(now, ErrorReason::Budget(stage));
        }
    }

    /// Ends a hold episode, adding its length to the run's waiting time.
    pub(super) fn end_hold(&mut self, now: Instant) {
        if let Some(h) = self.hold.take() {
            self.wait_spent += now.saturating_duration_since(h.since);
        }
    }

    /// Hands `stage` to the host with a fresh token.
    fn start_run(&mut self, now: Instant, stage: Stage) {
        let token = RunToken(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        let timeout = self.config.stage_timeouts.get(stage);
        let deadline = now + timeout + self.config.report_grace;
        self.run = Some(Run {
            stage,
            token,
            started_at: now,
            deadline,
        });
        self.event(
            now,
            EventType::StageStart,
            Level::Info,
            Some(stage),
            "Starting stage",
        );
        let round = self.round;
        self.push(Output::RunStage {
            stage,
            round,
            timeout,
            token,
        });
    }

    /// Moves on after `stage` succeeded.
    fn advance(&mut self, now: Instant, stage: Stage) {
        let next = match stage {
            Stage::Generate => Some(State::Validating),
            Stage::Validate if self.config.unit_tests => Some(State::Testing),
            Stage::Validate | Stage::UnitTest => self.after_gate(),
            Stage::Train => Some(State::Evaluating),
            Stage::Eval => self.after_eval(now),
        };
        match next {
            Some(target) if self.pause_requested => self.pause_into(now, target),
            Some(target) => self.enter_stage(now, target),
            None => {
                self.state = State::Idle;
                self.pause_requested = false;
            }
        }
    }

    /// After validation (and the gate): train in full mode, wait for `train_now` in collect.
    fn after_gate(&mut self) -> Option<State> {
        match self.mode {
            Mode::Full => Some(State::Finalizing),
            Mode::Collect => {
                self.awaiting_train = true;
                None
            }
        }
    }

    /// After evaluation: the next round, or `pipeline_complete`.
    fn after_eval(&mut self, now: Instant) -> Option<State> {
        if self.round < self.config.rounds {
            self.round += 1;
            return Some(State::Collecting);
        }
        self.completed = true;
        let message = "Pipeline complete";
        self.event(now, EventType::PipelineComplete, Level::Info, None, message);
        None
    }

    /// Enters ERROR with `pipeline_error` (fail-closed); nothing keeps running.
    pub(super) fn fail(&mut self, now: Instant, reason: ErrorReason) {
        self.end_hold(now);
        self.run = None;
        self.state = State::Error;
        self.pause_requested = false;
        self.awaiting_train = false;
        self.resume_to = None;
        self.last_error = Some(reason);
        let stage = Some(reason.stage());
        let e = self.event(
            now,
            EventType::PipelineError,
            Level::Error,
            stage,
            "Pipeline error",
        );
        e.error = Some(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineConfig;

    #[test]
    fn killed_stage_end_reports_zero_usage() {
        let mut p = Pipeline::new(PipelineConfig::DEFAULT).unwrap();
        p.handle_start(Instant::from_secs(1), Mode::Full).unwrap();
        while p.poll_output().is_some() {}
        p.handle_timeout(Instant::from_secs(1 + 300 + 10)).unwrap();
        let mut stage_end = None;
        while let Some(o) = p.poll_output() {
            if let Output::AppendEvent(e) = o {
                if e.event_type == EventType::StageEnd {
                    stage_end = Some(e);
                }
            }
        }
        assert_eq!(stage_end.unwrap().usage, Some(UsageDelta::default()));
    }
}
