//! Rebuilding a pipeline from the status persisted before a restart.

use super::config::PipelineConfig;
use super::machine::Pipeline;
use super::output::Status;
use super::refusal::RecoverError;
use super::types::{ErrorReason, Mode, State};
use crate::time::Instant;

impl Pipeline {
    /// A pipeline continuing from `status`, the last status the host wrote before it stopped.
    ///
    /// Nothing is re-run silently. A status in a stage state (its stage was running, or waiting
    /// for admission, when the host went down) becomes ERROR with `pipeline_error`, reason
    /// [`ErrorReason::Interrupted`]; the queued outputs carry that event and the new status.
    /// IDLE (also waiting for `train_now`), PAUSED and ERROR are restored as they were, since
    /// leaving them takes an explicit command. The waiting budget starts afresh.
    pub fn recover(
        config: PipelineConfig,
        status: &Status,
        now: Instant,
    ) -> Result<Pipeline, RecoverError> {
        let mut p = Pipeline::new(config).map_err(RecoverError::Config)?;
        if !(1..=config.rounds).contains(&status.round) {
            return Err(RecoverError::Round);
        }
        p.mode = status.mode;
        p.round = status.round;
        p.last_error = status.last_error;
        match status.state {
            State::Idle => {
                p.awaiting_train = status.awaiting_train && p.mode == Mode::Collect;
                p.completed = status.completed && !p.awaiting_train;
            }
            State::Error => p.state = State::Error,
            State::Paused => {
                let target = status.resume_to.filter(|s| s.stage().is_some());
                p.resume_to = Some(target.ok_or(RecoverError::ResumeTo)?);
                p.state = State::Paused;
            }
            running => {
                let stage = running.stage().expect("the other states are matched above");
                p.step(|p| p.fail(now, ErrorReason::Interrupted(stage)));
            }
        }
        Ok(p)
    }
}
