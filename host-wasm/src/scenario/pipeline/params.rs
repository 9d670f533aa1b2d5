//! The `pipeline` scenario's parameters and their checks.

use crate::error::{SimError, check_range};
use crate::trace::check_timeline;
use heidi_core::Duration;
use heidi_core::pipeline::{Mode, Pipeline, PipelineConfig, PipelineConfigError, StageTimeouts};

/// Most rounds per run in the simulation.
pub const MAX_ROUNDS: u32 = 100;
/// Most operator restarts after an ERROR.
pub const MAX_RESTARTS: u32 = 10;
/// Longest stage duration or delay, ms (one day).
pub const MAX_STAGE_MS: u64 = 86_400_000;
/// The scenario's parameters (defaults: mode `full`, 3 rounds, generate 30 s, validate 5 s,
/// unit tests off (10 s), train 120 s, eval 20 s, ±20 % jitter, 5 % failures per stage run,
/// 300 s stage timeout, one restart after 10 s, at most one hour in ticks of 10 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Longest simulated time, ms; the run ends earlier when the pipeline is done.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// `full` or `collect`.
    pub mode: String,
    /// Rounds (1..=[`MAX_ROUNDS`]).
    pub rounds: u32,
    /// Run the unit-test gate.
    pub unit_tests: bool,
    /// Mean duration of `generate`, ms.
    pub generate_ms: u64,
    /// Mean duration of `validate`, ms.
    pub validate_ms: u64,
    /// Mean duration of `unit_test`, ms.
    pub unit_test_ms: u64,
    /// Mean duration of `train`, ms.
    pub train_ms: u64,
    /// Mean duration of `eval`, ms.
    pub eval_ms: u64,
    /// Durations vary uniformly by ± this permille of the mean.
    pub jitter_permille: u32,
    /// Probability that a stage run fails, permille.
    pub fail_permille: u32,
    /// Timeout of every stage, ms.
    pub stage_timeout_ms: u64,
    /// Collect mode: delay before the operator sends `train_now`, ms.
    pub train_now_delay_ms: u64,
    /// Resets and restarts after an ERROR (0..=[`MAX_RESTARTS`]).
    pub restarts: u32,
    /// Delay before a restart, ms.
    pub restart_delay_ms: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 3_600_000,
            tick_ms: 10_000,
            mode: "full".into(),
            rounds: 3,
            unit_tests: false,
            generate_ms: 30_000,
            validate_ms: 5_000,
            unit_test_ms: 10_000,
            train_ms: 120_000,
            eval_ms: 20_000,
            jitter_permille: 200,
            fail_permille: 50,
            stage_timeout_ms: 300_000,
            train_now_delay_ms: 5_000,
            restarts: 1,
            restart_delay_ms: 10_000,
        }
    }
}

/// Checks the simulator's own caps; the rounds' lower bound and the stage timeout are
/// core's rules, whose errors reach the user naming the parameter.
pub(super) fn check(p: &Params) -> Result<(Mode, Pipeline), SimError> {
    check_timeline(p.duration_ms, p.tick_ms)?;
    let mode = match p.mode.as_str() {
        "full" => Mode::Full,
        "collect" => Mode::Collect,
        other => {
            return Err(SimError::param(
                "mode",
                format!("{other:?} is not \"full\" or \"collect\""),
            ));
        }
    };
    check_range("rounds", p.rounds.into(), 0, MAX_ROUNDS.into())?;
    for (field, v) in [
        ("generate_ms", p.generate_ms),
        ("validate_ms", p.validate_ms),
        ("unit_test_ms", p.unit_test_ms),
        ("train_ms", p.train_ms),
        ("eval_ms", p.eval_ms),
    ] {
        check_range(field, v, 1, MAX_STAGE_MS)?;
    }
    check_range("stage_timeout_ms", p.stage_timeout_ms, 0, MAX_STAGE_MS)?;
    check_range("jitter_permille", p.jitter_permille.into(), 0, 1_000)?;
    check_range("fail_permille", p.fail_permille.into(), 0, 1_000)?;
    check_range("train_now_delay_ms", p.train_now_delay_ms, 0, MAX_STAGE_MS)?;
    check_range("restarts", p.restarts.into(), 0, MAX_RESTARTS.into())?;
    check_range("restart_delay_ms", p.restart_delay_ms, 0, MAX_STAGE_MS)?;
    let config = PipelineConfig {
        rounds: p.rounds,
        unit_tests: p.unit_tests,
        stage_timeouts: StageTimeouts::all(Duration::from_millis(p.stage_timeout_ms)),
        ..PipelineConfig::DEFAULT
    };
    let pipeline = Pipeline::new(config).map_err(|e| match e {
        PipelineConfigError::Rounds => SimError::param("rounds", e),
        PipelineConfigError::StageTimeout(_) => SimError::param("stage_timeout_ms", e),
        other => SimError::internal(format_args!("pipeline config: {other}")),
    })?;
    Ok((mode, pipeline))
}

crate::json_object!(Params {
    duration_ms,
    tick_ms,
    mode,
    rounds,
    unit_tests,
    generate_ms,
    validate_ms,
    unit_test_ms,
    train_ms,
    eval_ms,
    jitter_permille,
    fail_permille,
    stage_timeout_ms,
    train_now_delay_ms,
    restarts,
    restart_delay_ms
});
