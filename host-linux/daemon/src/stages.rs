//! Starting the pipeline driver at boot: the stage runner (simulated or supervised
//! subprocesses), the load sampler, and the run started when the stages are available.

use super::config::Config;
use super::pipeline::{
    self, Command, DriverOptions, MockRunner, PipelineHandle, StageCommand, StageRunner,
};
use heidi_common::clock::Clock;
use heidi_core::pipeline::{RunStatus, Stage};
use heidi_store::Journal;
use std::sync::Arc;
use std::time::Duration;

/// How often the governor's load reading is refreshed (its cooldown).
const LOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Spawns the driver (recovering the pipeline from the journal), then starts a run in the
/// configured mode when the stages can run; otherwise logs why once and stays IDLE. With
/// simulated stages it returns once the boot run is at rest ([`settle`]), before the
/// daemon serves: connections made meanwhile wait in the listeners' backlog.
pub(crate) async fn start(
    config: &Config,
    journal: &Journal,
    clock: Clock,
) -> Result<PipelineHandle, String> {
    let settings = &config.pipeline.settings;
    let runner: Arc<dyn StageRunner> = if settings.mock {
        Arc::new(MockRunner::new(config.pipeline.mock_stage))
    } else {
        super::supervisor::runner(&config.pipeline)
    };
    let options = DriverOptions {
        out_dir: config.journal.out_dir.clone(),
        journal: journal.clone(),
        runner,
        sampler: load_sampler(settings.mock),
        load_interval: LOAD_INTERVAL,
        clock,
        state_extra: daemon_fields(),
    };
    let handle = pipeline::spawn(settings, options).await?;
    // Configured commands are trusted (a missing program fails its stage, journaled); the
    // seed's default scripts are checked, so a host without them stays IDLE quietly.
    let configured = Stage::ALL.iter().any(|s| {
        settings.commands[s.index()] != StageCommand::default_for(*s, &settings.repo_root)
    });
    let ready = if configured {
        Ok(())
    } else {
        settings.autostart_check()
    };
    match ready {
        Ok(()) => match handle.command(Command::Start(settings.mode)).await {
            Ok(()) if settings.mock => settle(&handle, BOOT_SETTLE).await,
            Ok(()) => {}
            Err(e) => tracing::info!(reason = e.reason(), "no pipeline run started at boot"),
        },
        Err(warning) => tracing::warn!("{warning}; the pipeline stays IDLE"),
    }
    Ok(handle)
}

/// How long the boot run of simulated stages may take to come to rest before the listeners
/// serve anyway.
const BOOT_SETTLE: Duration = Duration::from_secs(5);

/// Waits until the pipeline is at rest (no stage runs or waits: IDLE, PAUSED or ERROR), at
/// most `limit`; logs a warning if it is still running then. Used for the boot run of
/// simulated stages, so the first request sees its resting state (a collect run: IDLE,
/// round 1, awaiting `train_now`) whatever the machine's load. Real stages may run for
/// hours: the daemon serves while they run.
async fn settle(handle: &PipelineHandle, limit: Duration) {
    let mut status = handle.subscribe();
    let rested = status.wait_for(|s| s.status().run_status() != RunStatus::Running);
    if tokio::time::timeout(limit, rested).await.is_err() {
        tracing::warn!(
            limit_ms = limit.as_millis() as u64,
            "the simulated boot run is still running; serving anyway"
        );
    }
}

/// The governor's load reading. Simulated stages use no CPU or memory, so holding them for
/// the machine's load would protect nothing and make a mock run's timing depend on whatever
/// else the machine does: they see no load (the running limit still applies, and the start
/// gap when one is configured: it is off by default for them). Real stages see `/proc/stat`
/// and `/proc/meminfo`.
fn load_sampler(mock: bool) -> pipeline::LoadSampler {
    if mock {
        return Box::new(|| Some((0, 0)));
    }
    let mut sampler = crate::runner::SystemSampler::new();
    Box::new(move || {
        let load = sampler.sample().ok()?;
        Some((load.cpu_permille, load.mem_permille))
    })
}

/// The daemon's own fields of `state.json`: `pid`, `version`. (`status` is the pipeline's
/// word while the daemon runs, and `stopped` in the document written at shutdown.)
pub(crate) fn daemon_fields() -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    extra.insert("pid".into(), std::process::id().into());
    extra.insert("version".into(), super::state::VERSION.into());
    extra
}
