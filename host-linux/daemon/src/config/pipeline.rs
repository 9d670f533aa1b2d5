//! The pipeline's settings: the seed's environment names (`ROUNDS`, `RUN_UNIT_TESTS`,
//! `MAX_CPU_PCT`, `MAX_MEM_PCT`, `MAX_WALL_TIME_MINUTES`, `HEIDI_MOCK_SUBPROCESSES`,
//! `HEIDI_REPO_ROOT`, `PIPELINE_MODE`) over the file's `[pipeline]` section, whose keys name
//! the same settings in lower case; per-stage commands and timeouts come from
//! `[pipeline.stages.<stage>]`.

use super::file::{PipelineSection, StageSection};
use super::{ConfigError, err};
use crate::pipeline::{
    MAX_CPU_PCT_VAR, MAX_MEM_PCT_VAR, MAX_WALL_TIME_MINUTES_VAR, MOCK_VAR, MODE_VAR,
    PipelineSettings, REPO_ROOT_VAR, ROUNDS_VAR, RUN_UNIT_TESTS_VAR, StageCommand,
};
use crate::runner::SuperviseOptions;
use heidi_core::pipeline::Stage;
use std::collections::HashMap;

/// Every variable the pipeline reads from the environment.
pub const PIPELINE_VARS: [&str; 8] = [
    ROUNDS_VAR,
    RUN_UNIT_TESTS_VAR,
    MAX_CPU_PCT_VAR,
    MAX_MEM_PCT_VAR,
    MAX_WALL_TIME_MINUTES_VAR,
    MOCK_VAR,
    REPO_ROOT_VAR,
    MODE_VAR,
];

/// The pipeline variables set in the process environment.
pub fn vars_from_process() -> HashMap<String, String> {
    PIPELINE_VARS
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect()
}

/// The pipeline's configuration: the driver's settings and how each stage is supervised.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Rounds, mode, governor watermarks, stage commands and timeouts.
    pub settings: PipelineSettings,
    /// Rlimits and output capture of each stage, indexed by `Stage::index` (the timeout
    /// comes from the settings).
    pub supervise: [SuperviseOptions; 5],
    /// How long a simulated stage takes (`mock`).
    pub mock_stage: std::time::Duration,
}

/// The default duration of a simulated stage.
pub const MOCK_STAGE_DEFAULT: std::time::Duration = std::time::Duration::from_millis(10);

/// The longest `mock_stage_ms` and `start_gap_ms` accepted: one minute.
const MS_SETTING_MAX: u64 = 60_000;

/// Resolves the settings: `env` (the variables) wins over `file`.
pub fn resolve(
    file: &PipelineSection,
    env: &HashMap<String, String>,
) -> Result<PipelineConfig, ConfigError> {
    let mut vars = HashMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            vars.insert(name.to_owned(), v);
        }
    };
    put(ROUNDS_VAR, file.rounds.map(|v| v.to_string()));
    put(
        RUN_UNIT_TESTS_VAR,
        file.run_unit_tests.map(|v| v.to_string()),
    );
    put(MAX_CPU_PCT_VAR, file.max_cpu_pct.map(|v| v.to_string()));
    put(MAX_MEM_PCT_VAR, file.max_mem_pct.map(|v| v.to_string()));
    put(
        MAX_WALL_TIME_MINUTES_VAR,
        file.max_wall_time_minutes.map(|v| v.to_string()),
    );
    put(MOCK_VAR, file.mock.map(|v| v.to_string()));
    put(
        REPO_ROOT_VAR,
        file.repo_root.as_ref().map(|p| p.display().to_string()),
    );
    put(MODE_VAR, file.mode.clone());
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut settings = PipelineSettings::from_vars(&vars).map_err(|e| err("pipeline", e))?;
    let mut supervise = [SuperviseOptions::default(); 5];
    for stage in Stage::ALL {
        let Some(section) = file.stages.get(stage.name()) else {
            continue;
        };
        apply_stage(&mut settings, stage, section)?;
        supervise[stage.index()] = stage_limits(stage, section)?;
    }
    if let Some(name) = file
        .stages
        .keys()
        .find(|k| !Stage::ALL.iter().any(|s| s.name() == k.as_str()))
    {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        return Err(err(
            &format!("pipeline.stages.{name}"),
            format!("unknown stage; the stages are {}", names.join(", ")),
        ));
    }
    let ms = |key: &str, v: Option<u64>| match v {
        Some(n) if n > MS_SETTING_MAX => Err(err(
            &format!("pipeline.{key}"),
            format!("must be at most {MS_SETTING_MAX} ms"),
        )),
        v => Ok(v),
    };
    // Simulated stages use no CPU or memory: a gap between their starts protects nothing and
    // would only slow a mock run, so it is off unless set.
    match ms("start_gap_ms", file.start_gap_ms)? {
        Some(gap) => settings.start_gap = heidi_core::Duration::from_millis(gap),
        None if settings.mock => settings.start_gap = heidi_core::Duration::ZERO,
        None => {}
    }
    let allow_uncontained = file.allow_uncontained.unwrap_or(false);
    for options in &mut supervise {
        options.allow_uncontained = allow_uncontained;
    }
    let mock_stage = ms("mock_stage_ms", file.mock_stage_ms)?
        .map_or(MOCK_STAGE_DEFAULT, std::time::Duration::from_millis);
    settings.config().map_err(|e| err("pipeline", e))?;
    Ok(PipelineConfig {
        settings,
        supervise,
        mock_stage,
    })
}

fn stage_limits(stage: Stage, section: &StageSection) -> Result<SuperviseOptions, ConfigError> {
    let field = |key: &str| format!("pipeline.stages.{}.{key}", stage.name());
    let mut options = SuperviseOptions::default();
    let positive = |key: &str, v: Option<u64>| match v {
        Some(0) => Err(err(&field(key), "must be at least 1")),
        v => Ok(v),
    };
    if let Some(mb) = positive("address_space_mb", section.address_space_mb)? {
        let bytes = mb
            .checked_mul(1 << 20)
            .ok_or_else(|| err(&field("address_space_mb"), "too large"))?;
        options.limits.address_space_bytes = Some(bytes);
    }
    if let Some(n) = positive("open_files", section.open_files)? {
        options.limits.open_files = Some(n);
    }
    if let Some(n) = positive("cpu_seconds", section.cpu_seconds)? {
        options.limits.cpu_seconds = Some(n);
    }
    if let Some(n) = positive("processes", section.processes)? {
        options.limits.processes = Some(n);
    }
    if let Some(n) = section.capture_bytes {
        if !(1024..=16 << 20).contains(&n) {
            return Err(err(&field("capture_bytes"), "must be 1024 to 16777216"));
        }
        options.capture_max_bytes = n;
    }
    Ok(options)
}

fn apply_stage(
    settings: &mut PipelineSettings,
    stage: Stage,
    section: &StageSection,
) -> Result<(), ConfigError> {
    let field = |key: &str| format!("pipeline.stages.{}.{key}", stage.name());
    if let Some(command) = &section.command {
        let Some((program, args)) = command.split_first() else {
            return Err(err(&field("command"), "must name a program"));
        };
        let cwd = settings.commands[stage.index()].cwd.clone();
        settings.commands[stage.index()] = StageCommand {
            program: program.clone(),
            args: args.to_vec(),
            cwd,
        };
    }
    if let Some(secs) = section.timeout_s {
        if !(1..=7 * 24 * 3600).contains(&secs) {
            return Err(err(&field("timeout_s"), "must be 1 to 604800 seconds"));
        }
        let timeout = heidi_core::Duration::from_secs(secs);
        settings.timeouts.set(stage, timeout);
    }
    Ok(())
}
