//! The training pipeline's state machine, as a sans-IO step function.
//!
//! States IDLE, COLLECTING, VALIDATING, TESTING, FINALIZING, EVALUATING, PAUSED and ERROR;
//! modes `collect` and `full`; rounds 1..=`rounds`. Each stage state runs one
//! [`Stage`] (generate, validate, unit_test, train, eval); the core only names it, and the host
//! maps it to a command ([`Stage::default_script`] gives the seed's scripts).
//!
//! | from | input | to |
//! |---|---|---|
//! | IDLE | `start(mode)` | COLLECTING, round 1 |
//! | COLLECTING | success | VALIDATING |
//! | VALIDATING | success | TESTING if unit tests are on, else as after TESTING |
//! | TESTING | success | FINALIZING (full) or IDLE waiting for `train_now` (collect) |
//! | IDLE (waiting) | `train_now` | FINALIZING |
//! | FINALIZING | success | EVALUATING |
//! | EVALUATING | success | COLLECTING, round + 1; after the last round IDLE + `pipeline_complete` |
//! | stage state | failure, timeout, spent waiting budget | ERROR + `pipeline_error` |
//! | stage state, PAUSED, IDLE (waiting) | `stop` | IDLE + `pipeline_stop` (running stage killed) |
//! | stage state | `pause` / `resume` | PAUSED / back (see *Pause* below) |
//! | ERROR | `reset` | IDLE, round 1 |
//!
//! # Call order
//!
//! Feed inputs in through `handle_*` (or [`Pipeline::handle`] with one [`Input`]); after every
//! input drain [`Pipeline::poll_output`] to `None` and carry the [`Output`]s out in order (run
//! or kill a stage, append a journal event, write the status file); then sleep until the next
//! input or [`Pipeline::poll_timeout`] and call [`Pipeline::handle_timeout`]. Commands that do
//! not apply in the current state return a [`Refusal`] and change nothing; so does any input
//! while fewer than five output slots are free ([`Refusal::OutputsPending`]).
//!
//! ```
//! use heidi_core::pipeline::{Mode, Output, Pipeline, PipelineConfig, StageOutcome, StageResult, UsageDelta};
//! use heidi_core::Instant;
//!
//! let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
//! let now = Instant::from_secs(1);
//! p.handle_start(now, Mode::Full).unwrap();
//! let mut token = None;
//! while let Some(out) = p.poll_output() {
//!     if let Output::RunStage { stage, timeout, token: t, .. } = out {
//!         assert_eq!(stage.default_script(), "scripts/01_teacher_generate.py");
//!         assert_eq!(timeout.as_secs(), 300);
//!         token = Some(t); // the host spawns the script here
//!     }
//! }
//! let done = StageOutcome { token: token.unwrap(), result: StageResult::Success, usage: UsageDelta::default() };
//! p.handle_outcome(Instant::from_secs(60), done).unwrap();
//! assert_eq!(p.state().name(), "VALIDATING");
//! // Reporting the same run twice is refused, not ignored:
//! assert!(p.handle_outcome(Instant::from_secs(61), done).is_err());
//! ```
//!
//! # Decisions
//!
//! - **Admission.** Before each stage the machine asks the [`Governor`](crate::governor::Governor)
//!   with the last [`Load`](crate::governor::Load) the host reported ([`Pipeline::handle_load`]).
//!   On a hold it emits `pipeline_throttled` once per hold episode and asks again at
//!   `retry_at`; a rejection (queue full) is held for one cooldown. The time spent held is
//!   summed over the run; when it reaches `max_wait` (`MAX_WALL_TIME_MINUTES`) the run ends in
//!   ERROR with reason `budget`.
//! - **Pause.** A stage waiting for admission pauses at once. A running stage is not killed
//!   (generation costs money, training hours): the pause is requested and takes effect when
//!   the stage succeeds, and PAUSED then resumes with the next stage. `resume` before that
//!   cancels the request; a failure still goes to ERROR.
//! - **Stage deadline.** Every `RunStage` carries its timeout; if no outcome arrives within
//!   timeout + `report_grace`, the core kills the run itself and enters ERROR (a lost child
//!   never hangs the pipeline).
//! - **Stale outcomes.** Each run has a fresh [`RunToken`]; an outcome of a killed or older run
//!   is refused with [`Refusal::StaleOutcome`].
//! - **Recovery.** [`Pipeline::recover`] never re-runs a stage silently: an interrupted stage
//!   becomes ERROR, reason `interrupted`.
//! - **Events.** `pipeline_start`, `stage_start`, `stage_end` (with `usage_delta`),
//!   `pipeline_error`, `pipeline_throttled`, `pipeline_complete`, `pipeline_stop`, plus
//!   `pipeline_pause`, `pipeline_resume` and `pipeline_reset` for the operator's actions.

mod commands;
mod config;
mod flow;
mod machine;
mod output;
mod process_end;
mod recover;
mod refusal;
mod replay;
mod stage_events;
mod status_doc;
mod types;

#[cfg(test)]
mod tests;

pub use config::{MAX_ROUNDS, PipelineConfig, PipelineConfigError, StageTimeouts};
pub use machine::{Input, OUTPUT_CAPACITY, Pipeline};
pub use output::{EventType, Output, PipelineEvent, RunStatus, Status};
pub use process_end::{ProcessEnd, UNCONTAINED_REFUSAL, may_start};
pub use refusal::{RecoverError, Refusal};
pub use replay::{Replay, ReplayError, ReplayLine, start_message};
pub use stage_events::{
    Leftovers, STAGE_ORPHANS_EVENT, STAGE_OUTPUT_EVENT, STAGE_UNCONTAINED_EVENT, StageOutput,
    UNCONTAINED_LEVEL, UNCONTAINED_MESSAGE,
};
pub use status_doc::write_status;
pub use types::{ErrorReason, Mode, RunToken, Stage, StageOutcome, StageResult, State, UsageDelta};
