//! Starting the pipeline driver at boot: the stage runner (simulated or supervised
//! subprocesses), the load sampler, and the run started when the stages are available.

use super::config::Config;
use super::pipeline::{
    self, Command, DriverOptions, MockRunner, PipelineHandle, StageCommand, StageRunner,
};
use crate::clock::Clock;
use crate::store::Journal;
use heidi_core::pipeline::Stage;
use std::sync::Arc;
use std::time::Duration;

/// How often the governor's load reading is refreshed (its cooldown).
const LOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Spawns the driver (recovering the pipeline from the journal), then starts a run in the
/// configured mode when the stages can run; otherwise logs why once and stays IDLE.
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
        Ok(()) => {
            if let Err(e) = handle.command(Command::Start(settings.mode)).await {
                tracing::info!(reason = e.reason(), "no pipeline run started at boot");
            }
        }
        Err(warning) => tracing::warn!("{warning}; the pipeline stays IDLE"),
    }
    Ok(handle)
}

/// The governor's load reading. Simulated stages use no CPU or memory, so holding them for
/// the machine's load would protect nothing and make a mock run's timing depend on whatever
/// else the machine does: they see no load (the running limit and the start gap still
/// apply). Real stages see `/proc/stat` and `/proc/meminfo`.
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
