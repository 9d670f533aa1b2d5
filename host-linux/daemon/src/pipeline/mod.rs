//! The pipeline driver: the thin host loop around `heidi_core::pipeline::Pipeline`.
//!
//! The core decides every transition; this module executes its outputs: it runs and kills
//! stages through a [`StageRunner`], appends the core's events to the journal, writes
//! `OUT_DIR/state.json`, and keeps a status snapshot for `STATUS` / `GET /api/v1/status`.
//!
//! | file | what it holds |
//! |---|---|
//! | `settings` | [`PipelineSettings`]: the seed's variables (`ROUNDS`, `RUN_UNIT_TESTS`, `MAX_CPU_PCT`, …), stage commands, the core config |
//! | `driver` | [`spawn`], [`PipelineHandle`], [`Command`]: the task and its control API |
//! | `runner` | the [`StageRunner`] trait, [`StageReport`], [`MockRunner`] |
//! | `process` | [`ProcessRunner`]: real stages through a [`Supervisor`] (the `runner` module) |
//! | `events` | journal entries for core events and a failed stage's output tail |
//! | `appender` | pipelined journal appends: in order, one group commit for many events |
//! | `status` | the status document |
//! | `state_file` | the coalescing background writer of `state.json` |
//! | `recovery` | replaying the journal into the core's `recover` |
//!
//! # Wiring
//!
//! `stages.rs` builds the runner ([`MockRunner`] for `HEIDI_MOCK_SUBPROCESSES=1`, else
//! [`ProcessRunner`] over `supervisor.rs`), calls [`spawn`] and starts the boot run;
//! `pipeline_api.rs` turns the `PIPELINE_*` methods and `train_now` into [`Command`]s;
//! `run.rs` writes the final `state.json` with [`PipelineHandle::write_final_state`] before
//! closing the journal.
//!
//! A stage running at shutdown is cancelled; the next start finds its `stage_start` without
//! an end in the journal and records `pipeline_error` with reason `interrupted`. If the daemon
//! died instead (`kill -9`), [`spawn`] first kills what the stage left running
//! ([`crate::runner::reap_orphans`]) and journals a `stage_orphans_killed` event before that
//! `pipeline_error`. A stage that ran with nothing bounding its process count
//! (`allow_uncontained`) gets a `stage_uncontained` warning before its `stage_end`.
//!
//! # Durability
//!
//! A transition costs no `fdatasync` of its own. Events are submitted to the journal in the
//! core's order without waiting (the journal's writer makes the events of many steps durable
//! in one group commit), and `state.json` is written by a background task that skips the
//! statuses published while it writes. A status is published ([`PipelineHandle::status`],
//! then `state.json`) only once every event before it is durable, so no reader sees a state
//! the journal does not hold yet; a status overtaken while it waits is skipped. Three points
//! wait:
//!
//! - **An operator's command** ([`PipelineHandle::command`]) resolves only after every event
//!   of its step is durable and its status is published; a stage its step starts
//!   (`start`, `resume`, `train_now`) is started only after every event before it, its own
//!   `stage_start` included, is durable.
//! - **Shutdown** waits until every event is durable and the last status is in `state.json`.
//! - **Backpressure**: when the journal's queue is full the driver waits for room; events
//!   are never reordered or dropped for it.
//!
//! Stages started by a stage's outcome or by the governor's timer do *not* wait for the events
//! before them. Recovery still never re-runs anything silently after `kill -9`:
//!
//! 1. The journal on disk is always a prefix of the submitted events: they are written in
//!    submission order and `Journal::open` cuts a torn last line.
//! 2. [`Replay`](heidi_core::pipeline::Replay) of any prefix that ends inside a chain of
//!    outcome and timer steps (after a command's stage start, which was durable) leaves a
//!    *stage* state: `stage_start`, `stage_end` of a failed stage, `pipeline_throttled` and a
//!    successful `stage_end` that leads to another stage all leave one. `Pipeline::recover`
//!    turns a stage state into ERROR, `pipeline_error` with reason `interrupted` (the core's
//!    "running or waiting to run"), which takes an operator's `reset` and `start` to leave.
//!    The stage named may be one whose end was lost; the run is stopped either way.
//! 3. A prefix can leave IDLE, PAUSED or ERROR only by ending with an event after which the
//!    core starts no stage without an operator's command (`pipeline_error`, a `pipeline_pause`
//!    that takes effect, the `stage_end` that finishes a run or a collect round), and every
//!    stage a command starts waits for durability (above). So a stage that ran is never
//!    hidden behind a durable IDLE or PAUSED from which it could be started again unnoticed.
//!
//! Waiting before every stage instead would cost one `fdatasync` (about 0.5 ms here) per
//! stage, five times the per-transition budget.
//!
//! `state.json` is a cache for people and tools; recovery reads only the journal, so a
//! document behind the journal after a crash is harmless (the next start rewrites it).

mod appender;
mod driver;
mod events;
mod process;
mod recovery;
mod runner;
mod settings;
mod state_file;
mod status;

#[cfg(test)]
mod tests;

pub use driver::{Command, CommandError, DriverOptions, LoadSampler, PipelineHandle, spawn};
pub use events::{
    OUTPUT_EXCERPT_CHARS, STAGE_ORPHANS_EVENT, STAGE_OUTPUT_EVENT, STAGE_UNCONTAINED_EVENT,
};
pub use process::{ProcessCommand, ProcessRunner, Supervisor};
pub use recovery::replay_journal;
pub use runner::{
    MockBehaviour, MockLog, MockRunner, StageFuture, StageReport, StageRequest, StageRunner,
};
pub use settings::{
    MAX_CPU_PCT_VAR, MAX_MEM_PCT_VAR, MAX_WALL_TIME_MINUTES_LIMIT, MAX_WALL_TIME_MINUTES_VAR,
    MOCK_VAR, MODE_VAR, PipelineSettings, REPO_ROOT_VAR, ROUNDS_VAR, RUN_UNIT_TESTS_VAR,
    StageCommand, stages_available,
};
pub use status::{StatusDoc, state_file_json};
