//! Command and outcome sequences against the pipeline state machine. Invariants: no input
//! panics; every `RunStage` carries a timeout; a refused input changes nothing; ERROR is only
//! entered on an outcome, a timeout or a recovery, never on an operator command; and the
//! output queue is always drained to `None` within a bounded number of polls.
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::governor::Load;
use heidi_core::pipeline::{
    Input, Mode, Output, Pipeline, PipelineConfig, RunToken, StageOutcome, StageResult, State,
    UsageDelta,
};
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Start(bool),
    Stop,
    Pause,
    Resume,
    Reset,
    TrainNow,
    /// An outcome for the current run (`current`), or for an arbitrary token.
    Outcome {
        current: bool,
        token: u32,
        result: u8,
        mem: i16,
        cpu: u16,
    },
    Load {
        running: u8,
        queued: u8,
        cpu: u16,
        mem: u16,
    },
    Advance(u32),
    Timeout,
}

fuzz_target!(|input: (u8, bool, Vec<Op>)| {
    let (rounds, unit_tests, ops) = input;
    let config = PipelineConfig {
        rounds: u32::from(rounds % 5).max(1),
        unit_tests,
        ..PipelineConfig::default()
    };
    let Ok(mut p) = Pipeline::new(config) else {
        return;
    };
    let mut now = Instant::from_secs(1);
    let mut current: Option<RunToken> = None;
    for op in ops.iter().take(2_000) {
        let before = p.status();
        let command = !matches!(op, Op::Outcome { .. } | Op::Advance(_) | Op::Timeout);
        let input = match *op {
            Op::Start(full) => Input::Start(if full { Mode::Full } else { Mode::Collect }),
            Op::Stop => Input::Stop,
            Op::Pause => Input::Pause,
            Op::Resume => Input::Resume,
            Op::Reset => Input::Reset,
            Op::TrainNow => Input::TrainNow,
            Op::Outcome {
                current: cur,
                token,
                result,
                mem,
                cpu,
            } => {
                let token = if cur {
                    current.unwrap_or(RunToken(token))
                } else {
                    RunToken(token)
                };
                let result = match result % 3 {
                    0 => StageResult::Success,
                    1 => StageResult::Failed,
                    _ => StageResult::TimedOut,
                };
                let usage = UsageDelta {
                    memory_mb_delta: i64::from(mem),
                    cpu_pct: u32::from(cpu),
                };
                Input::Outcome(StageOutcome {
                    token,
                    result,
                    usage,
                })
            }
            Op::Load {
                running,
                queued,
                cpu,
                mem,
            } => Input::Load(Load {
                running: u32::from(running),
                queued: u32::from(queued),
                cpu_permille: cpu % 1_200,
                mem_permille: mem % 1_200,
            }),
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms % 3_600_000));
                Input::Timeout
            }
            Op::Timeout => {
                now = p.poll_timeout().map_or(now, |t| now.max(t));
                Input::Timeout
            }
        };
        if p.handle(now, input).is_err() {
            assert_eq!(p.status(), before, "a refusal changes nothing");
        }
        if command && p.state() == State::Error {
            assert_eq!(
                before.state,
                State::Error,
                "an operator command never causes ERROR"
            );
        }
        let mut drained = 0;
        while let Some(out) = p.poll_output() {
            drained += 1;
            assert!(drained <= 64, "outputs drain in bounded steps");
            match out {
                Output::RunStage { timeout, token, .. } => {
                    assert!(timeout > Duration::ZERO, "every stage run has a timeout");
                    current = Some(token);
                }
                Output::KillStage { .. } => current = None,
                Output::AppendEvent(_) | Output::WriteStatus(_) => {}
            }
        }
    }
});
