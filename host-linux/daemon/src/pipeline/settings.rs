//! [`PipelineSettings`]: the seed's environment names, stage commands, and the core
//! [`PipelineConfig`] they build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use heidi_core::Duration;
use heidi_core::pipeline::{MAX_ROUNDS, Mode, PipelineConfig, Stage, StageTimeouts};

/// `ROUNDS`: rounds per run (default 3).
pub const ROUNDS_VAR: &str = "ROUNDS";
/// `RUN_UNIT_TESTS`: `1`/`true` runs the unit-test gate (default off).
pub const RUN_UNIT_TESTS_VAR: &str = "RUN_UNIT_TESTS";
/// `MAX_CPU_PCT`: hold stages while CPU use is at or above this percentage (default 85; 0
/// turns the CPU watermark off).
pub const MAX_CPU_PCT_VAR: &str = "MAX_CPU_PCT";
/// `MAX_MEM_PCT`: hold stages while memory use is at or above this percentage (default 90;
/// 0 turns the memory watermark off).
pub const MAX_MEM_PCT_VAR: &str = "MAX_MEM_PCT";
/// `MAX_WALL_TIME_MINUTES`: the run's budget for waiting on the governor (default 60).
pub const MAX_WALL_TIME_MINUTES_VAR: &str = "MAX_WALL_TIME_MINUTES";
/// `HEIDI_MOCK_SUBPROCESSES`: `1` simulates stages instead of running scripts.
pub const MOCK_VAR: &str = "HEIDI_MOCK_SUBPROCESSES";
/// `HEIDI_REPO_ROOT`: where the stage scripts live (default `.`).
pub const REPO_ROOT_VAR: &str = "HEIDI_REPO_ROOT";
/// `PIPELINE_MODE`: `collect` (default) or `full`, the mode of the run started at boot.
pub const MODE_VAR: &str = "PIPELINE_MODE";

/// The longest `MAX_WALL_TIME_MINUTES` accepted: one year.
pub const MAX_WALL_TIME_MINUTES_LIMIT: u64 = 366 * 24 * 60;

/// How one stage is run as a subprocess: `program args…` in `cwd`, with the run's variables
/// (`RUN_ID`, `OUT_DIR`, `ROUND`, `STAGE`, `HEIDI_REPO_ROOT`) added to the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageCommand {
    /// The program (looked up in `PATH` when it has no `/`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (the repository root by default).
    pub cwd: PathBuf,
}

impl StageCommand {
    /// The seed's command for `stage`: `python3 <repo_root>/scripts/0N_….py`, run in
    /// `repo_root`.
    pub fn default_for(stage: Stage, repo_root: &Path) -> StageCommand {
        StageCommand {
            program: "python3".into(),
            args: vec![script_path(stage, repo_root).display().to_string()],
            cwd: repo_root.to_path_buf(),
        }
    }
}

/// Everything the pipeline driver needs to know about the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Rounds per run (`ROUNDS`).
    pub rounds: u32,
    /// Mode of the run started at boot (`PIPELINE_MODE`).
    pub mode: Mode,
    /// Run the unit-test gate (`RUN_UNIT_TESTS`).
    pub run_unit_tests: bool,
    /// CPU watermark in percent, 0..=100, 0 off (`MAX_CPU_PCT`).
    pub max_cpu_pct: u8,
    /// Memory watermark in percent, 0..=100, 0 off (`MAX_MEM_PCT`).
    pub max_mem_pct: u8,
    /// Waiting budget per run, in minutes (`MAX_WALL_TIME_MINUTES`).
    pub max_wall_time_minutes: u64,
    /// Simulate stages (`HEIDI_MOCK_SUBPROCESSES=1`).
    pub mock: bool,
    /// The repository root (`HEIDI_REPO_ROOT`).
    pub repo_root: PathBuf,
    /// The command of each stage, indexed by [`Stage::index`].
    pub commands: [StageCommand; 5],
    /// The timeout of each stage (300 s by default).
    pub timeouts: StageTimeouts,
    /// The governor's minimum time between two stage starts (100 ms by default; zero
    /// disables it, e.g. for fast mock runs and benchmarks).
    pub start_gap: Duration,
}

impl PipelineSettings {
    /// The core's defaults (3 rounds, collect, no unit tests, 85 % CPU, 90 % memory, 60
    /// minutes, 300 s per stage), real stages, the seed's scripts under `repo_root`.
    pub fn new(repo_root: PathBuf) -> PipelineSettings {
        let d = PipelineConfig::DEFAULT;
        PipelineSettings {
            rounds: d.rounds,
            mode: Mode::default(),
            run_unit_tests: d.unit_tests,
            max_cpu_pct: percent(d.governor.cpu_hold_permille),
            max_mem_pct: percent(d.governor.mem_hold_permille),
            max_wall_time_minutes: d.max_wait.as_secs() / 60,
            mock: false,
            commands: Stage::ALL.map(|s| StageCommand::default_for(s, &repo_root)),
            repo_root,
            timeouts: d.stage_timeouts,
            start_gap: d.governor.start_gap,
        }
    }

    /// Reads the seed's variables from `vars` (for example the process environment collected
    /// into a map); unset variables keep their defaults, other keys are ignored. The error
    /// names the variable, its value and what is expected; the result is checked with
    /// [`PipelineSettings::config`].
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<PipelineSettings, String> {
        let get = |name: &str| vars.get(name).map(|v| v.trim());
        let root = get(REPO_ROOT_VAR).filter(|v| !v.is_empty()).unwrap_or(".");
        let mut s = PipelineSettings::new(PathBuf::from(root));
        if let Some(v) = get(ROUNDS_VAR) {
            s.rounds = parse_int(ROUNDS_VAR, v, 1, u64::from(MAX_ROUNDS))? as u32;
        }
        if let Some(v) = get(RUN_UNIT_TESTS_VAR) {
            s.run_unit_tests = parse_bool(RUN_UNIT_TESTS_VAR, v)?;
        }
        if let Some(v) = get(MAX_CPU_PCT_VAR) {
            s.max_cpu_pct = parse_int(MAX_CPU_PCT_VAR, v, 0, 100)? as u8;
        }
        if let Some(v) = get(MAX_MEM_PCT_VAR) {
            s.max_mem_pct = parse_int(MAX_MEM_PCT_VAR, v, 0, 100)? as u8;
        }
        if let Some(v) = get(MAX_WALL_TIME_MINUTES_VAR) {
            let max = MAX_WALL_TIME_MINUTES_LIMIT;
            s.max_wall_time_minutes = parse_int(MAX_WALL_TIME_MINUTES_VAR, v, 0, max)?;
        }
        if let Some(v) = get(MOCK_VAR) {
            s.mock = parse_bool(MOCK_VAR, v)?;
        }
        if let Some(v) = get(MODE_VAR) {
            s.mode = Mode::from_name(v)
                .ok_or_else(|| format!("{MODE_VAR}={v:?}: expected collect or full"))?;
        }
        s.config()?;
        Ok(s)
    }

    /// The core configuration, validated by the core. Percentages become permille; a
    /// watermark of 0 % stays 0, which the core reads as off (never hold for it). A budget of
    /// 0 minutes (no waiting at all) becomes the core's smallest, 1 µs: the first hold ends
    /// the run in ERROR at the next timer.
    pub fn config(&self) -> Result<PipelineConfig, String> {
        let mut c = PipelineConfig::DEFAULT;
        c.rounds = self.rounds;
        c.unit_tests = self.run_unit_tests;
        c.stage_timeouts = self.timeouts;
        c.governor.cpu_hold_permille = permille(self.max_cpu_pct);
        c.governor.mem_hold_permille = permille(self.max_mem_pct);
        c.governor.start_gap = self.start_gap;
        c.max_wait = match self.max_wall_time_minutes {
            0 => Duration::from_micros(1),
            m => Duration::from_secs(60)
                .checked_mul(m)
                .ok_or_else(|| format!("{MAX_WALL_TIME_MINUTES_VAR}={m}: too large"))?,
        };
        c.validate().map_err(|e| format!("pipeline: {e}"))?;
        Ok(c)
    }

    /// Whether a run may start at boot: `Ok` in mock mode or when every stage script is
    /// present, else the one warning to log (the daemon then stays IDLE).
    pub fn autostart_check(&self) -> Result<(), String> {
        if self.mock {
            return Ok(());
        }
        stages_available(&self.repo_root)
    }
}

/// Checks that the seed's five stage scripts exist under `repo_root`; the error lists the
/// missing ones.
pub fn stages_available(repo_root: &Path) -> Result<(), String> {
    let missing: Vec<String> = Stage::ALL
        .into_iter()
        .map(|s| script_path(s, repo_root))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "pipeline stage scripts missing (set {REPO_ROOT_VAR} or {MOCK_VAR}=1): {}",
        missing.join(", ")
    ))
}

fn script_path(stage: Stage, repo_root: &Path) -> PathBuf {
    repo_root.join(stage.default_script())
}

fn permille(pct: u8) -> u16 {
    u16::from(pct) * 10
}

/// A permille watermark as the seed's whole percent (rounded down).
fn percent(permille: u16) -> u8 {
    u8::try_from(permille / 10).unwrap_or(u8::MAX)
}

fn parse_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{name}={value:?}: expected an integer in {min}..={max}"))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{name}={value:?}: expected 1/0, true/false")),
    }
}
