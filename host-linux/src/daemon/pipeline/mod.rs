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
//! | `status` | the status document |
//! | `recovery` | replaying the journal into the core's `recover` |
//!
//! # Wiring (for `run.rs`)
//!
//! ```text
//! let settings = PipelineSettings::from_vars(&env_map)?;          // error names the variable
//! let runner: Arc<dyn StageRunner> = if settings.mock {
//!     Arc::new(MockRunner::new(MockRunner::DEFAULT_DELAY))
//! } else {
//!     Arc::new(ProcessRunner::new(&settings, supervisor))
//! };
//! let handle = pipeline::spawn(&settings, DriverOptions { out_dir, journal, runner,
//!     sampler: Box::new(move || system_sampler.sample()), load_interval: 1 s, clock }).await?;
//! match settings.autostart_check() {
//!     Ok(()) => { let _ = handle.command(Command::Start(settings.mode)).await; }
//!     Err(warning) => tracing::warn!("{warning}"),                 // stays IDLE
//! }
//! // STATUS / GET /api/v1/status: handle.status()
//! // train_now etc.: handle.command(Command::TrainNow).await → Ok (202) | Err(e) (409, e.reason())
//! // shutdown: handle.shutdown().await before closing the journal
//! ```
//!
//! A stage running at shutdown is cancelled; the next start finds its `stage_start` without
//! an end in the journal and records `pipeline_error` with reason `interrupted`.

mod driver;
mod events;
mod process;
mod recovery;
mod runner;
mod settings;
mod status;

#[cfg(test)]
mod tests;

pub use driver::{Command, CommandError, DriverOptions, LoadSampler, PipelineHandle, spawn};
pub use events::{OUTPUT_EXCERPT_CHARS, STAGE_OUTPUT_EVENT};
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
pub use status::{state_file_json, status_json};
