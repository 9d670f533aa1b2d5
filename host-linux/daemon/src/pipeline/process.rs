//! [`ProcessRunner`]: real stages, as supervised subprocesses.
//!
//! It turns a [`StageRequest`] into a [`ProcessCommand`] (the stage's configured command plus
//! the run's environment) and hands it to a [`Supervisor`], which owns process groups,
//! rlimits, the timeout, the SIGTERM→SIGKILL escalation, output capture and usage sampling.
//!
//! The daemon connects it to the `runner` module's supervisor (`supervisor.rs`), which
//! picks the stage's rlimits by [`ProcessCommand::stage`].

use std::path::PathBuf;
use std::time::Duration;

use heidi_core::pipeline::Stage;
use tokio::sync::watch;

use super::runner::{StageFuture, StageRequest, StageRunner};
use super::settings::{PipelineSettings, REPO_ROOT_VAR, StageCommand};

/// A fully resolved subprocess to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCommand {
    /// The stage it runs.
    pub stage: Stage,
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Kill it after this long.
    pub timeout: Duration,
    /// Its round.
    pub round: u32,
    /// The output directory (`OUT_DIR`), where the running stage is recorded.
    pub out_dir: PathBuf,
}

/// Runs one supervised subprocess (see the module docs).
pub trait Supervisor: Send + Sync {
    /// Runs `command`; stops it when `cancel` turns `true`.
    fn run(&self, command: ProcessCommand, cancel: watch::Receiver<bool>) -> StageFuture;
}

/// Real stages: each stage's [`StageCommand`] run through a [`Supervisor`].
pub struct ProcessRunner<S> {
    commands: [StageCommand; 5],
    repo_root: PathBuf,
    supervisor: S,
}

impl<S: Supervisor> ProcessRunner<S> {
    /// Runs `settings.commands` through `supervisor`.
    pub fn new(settings: &PipelineSettings, supervisor: S) -> ProcessRunner<S> {
        ProcessRunner {
            commands: settings.commands.clone(),
            repo_root: settings.repo_root.clone(),
            supervisor,
        }
    }

    /// The subprocess for `request`: its stage's command with `RUN_ID`, `OUT_DIR`, `ROUND`,
    /// `STAGE` and `HEIDI_REPO_ROOT` set.
    pub fn command(&self, request: &StageRequest) -> ProcessCommand {
        let c = &self.commands[request.stage.index()];
        let env = vec![
            ("RUN_ID".to_owned(), request.run_id.clone()),
            ("OUT_DIR".to_owned(), request.out_dir.display().to_string()),
            ("ROUND".to_owned(), request.round.to_string()),
            ("STAGE".to_owned(), request.stage.name().to_owned()),
            (
                REPO_ROOT_VAR.to_owned(),
                self.repo_root.display().to_string(),
            ),
        ];
        ProcessCommand {
            stage: request.stage,
            program: c.program.clone(),
            args: c.args.clone(),
            cwd: c.cwd.clone(),
            env,
            timeout: request.timeout,
            round: request.round,
            out_dir: request.out_dir.clone(),
        }
    }
}

impl<S: Supervisor> StageRunner for ProcessRunner<S> {
    fn run(&self, request: StageRequest, cancel: watch::Receiver<bool>) -> StageFuture {
        self.supervisor.run(self.command(&request), cancel)
    }
}
