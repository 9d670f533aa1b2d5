//! Real pipeline stages: the driver's [`ProcessRunner`] connected to the [`runner`]
//! supervisor (process group, rlimits, pids cgroup, timeout with SIGTERM → grace → SIGKILL,
//! bounded output capture, usage from /proc).
//!
//! [`runner`]: crate::runner

use super::config::pipeline::PipelineConfig;
use super::pipeline::{
    ProcessCommand, ProcessRunner, StageFuture, StageReport, StageRunner, Supervisor,
};
use crate::runner::{self, Containment, Exit, SuperviseOptions};
use std::sync::Arc;
use tokio::sync::watch;

/// Runs each stage's command under [`runner::run_stage`] with its stage's options (the
/// timeout comes from the core, per stage).
pub(crate) struct RunnerSupervisor {
    options: [SuperviseOptions; 5],
}

/// The stage runner for the configuration.
pub(crate) fn runner(config: &PipelineConfig) -> Arc<dyn StageRunner> {
    let supervisor = RunnerSupervisor {
        options: config.supervise,
    };
    Arc::new(ProcessRunner::new(&config.settings, supervisor))
}

impl Supervisor for RunnerSupervisor {
    fn run(&self, command: ProcessCommand, cancel: watch::Receiver<bool>) -> StageFuture {
        let options = SuperviseOptions {
            timeout: command.timeout,
            ..self.options[command.stage.index()]
        };
        let command = runner::StageCommand {
            program: command.program.into(),
            args: command.args.into_iter().map(Into::into).collect(),
            env: command
                .env
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd: Some(command.cwd),
            record: Some(runner::RecordSpec {
                dir: command.out_dir,
                stage: command.stage.name().to_owned(),
                round: command.round,
            }),
        };
        Box::pin(async move {
            let report = runner::run_stage(&command, &options, cancel).await;
            StageReport {
                result: report.result(),
                usage: report.usage,
                failure: report.exit.end().failure().map(ToString::to_string),
                output_tail: report.output_tail,
                output_dropped: report.output_dropped_bytes,
                uncontained: report.containment == Containment::Uncontained
                    && !matches!(report.exit, Exit::SpawnFailed(_)),
            }
        })
    }
}
