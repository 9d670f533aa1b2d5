//! Scenario `pipeline`: heidi-core's pipeline state machine runs rounds of stages whose
//! durations and failures are drawn from the PRNG, and every event it emits is written to a
//! hash-chained journal (heidi-core's encoder and [`ChainWriter`]) that heidi-core's
//! [`Verifier`] checks at the end.
//!
//! The simulator plays the host: it runs each `RunStage` for its drawn duration (killing it
//! at its timeout and reporting `TimedOut` when the draw exceeds it), reports the outcome with
//! the run's token, honours `KillStage` by dropping the run (its late outcome is refused as
//! stale by the core), and drives `handle_timeout` at `poll_timeout`. It plays the operator
//! too: in `collect` mode it sends `train_now` `train_now_delay_ms` after a round waits for
//! it, and after an ERROR it resets and restarts the pipeline up to `restarts` times.
//! Journal timestamps are virtual time after 2026-01-01T00:00:00Z.

use super::{encode, parse};
use crate::engine::{Class, Engine};
use crate::error::{SimError, check_range};
use crate::json::Value;
use crate::rng::Rng;
use crate::trace::{EventLog, RunInfo, Ticker, Trace, check_timeline};
use heidi_core::journal::{ChainWriter, MAX_LINE_BYTES, Verifier};
use heidi_core::pipeline::{
    Mode, Output, Pipeline, PipelineConfig, PipelineEvent, Refusal, RunToken, Stage, StageOutcome,
    StageResult, StageTimeouts, State, UsageDelta,
};
use heidi_core::{Duration, Instant, WallTime};

/// Most rounds per run in the simulation.
pub const MAX_ROUNDS: u32 = 100;
/// Most operator restarts after an ERROR.
pub const MAX_RESTARTS: u32 = 10;
/// Longest stage duration or delay, ms (one day).
pub const MAX_STAGE_MS: u64 = 86_400_000;
/// Wall-clock time of virtual time zero, for the journal's `ts` (2026-01-01T00:00:00Z).
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

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

/// One tick's aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// Pipeline state at the tick's end (`IDLE`, `COLLECTING`, …).
    pub state: &'static str,
    /// Round at the tick's end.
    pub round: u32,
    /// Stage running at the tick's end.
    pub stage: Option<&'static str>,
    /// Stage runs started in the tick.
    pub stage_starts: u64,
    /// Stage runs that failed or timed out in the tick.
    pub stage_failures: u64,
    /// Journal lines written in the tick.
    pub journal_lines: u64,
}

/// A notable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The pipeline emitted a journal event.
    Pipeline {
        /// When, µs.
        t_us: u64,
        /// `pipeline_start`, `stage_start`, `stage_end`, `pipeline_error`, …
        event_type: &'static str,
        /// The stage, or `pipeline`.
        stage: &'static str,
        /// The round.
        round: u32,
        /// The error, if any.
        error: Option<&'static str>,
    },
    /// The pipeline refused an input, or the journal could not encode an event (a simulator
    /// bug if it ever appears).
    Refused {
        /// When, µs.
        t_us: u64,
        /// The core's refusal reason, or `journal_encode_error`.
        reason: &'static str,
    },
    /// The run stopped at the step cap.
    StepCap {
        /// When, µs.
        t_us: u64,
    },
}

/// Totals of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The journal's run id (`sim-<seed>`).
    pub run_id: String,
    /// State at the end.
    pub final_state: &'static str,
    /// Whether a `pipeline_complete` was reached.
    pub complete: bool,
    /// Stage runs started.
    pub stage_runs: u64,
    /// Stage runs that succeeded.
    pub stage_successes: u64,
    /// Stage runs that failed.
    pub stage_failures: u64,
    /// Stage runs killed at their timeout.
    pub stage_timeouts: u64,
    /// Restarts the operator made.
    pub restarts: u64,
    /// Journal lines.
    pub journal_lines: u64,
    /// Journal size, bytes.
    pub journal_bytes: u64,
    /// Whether heidi-core's verifier accepted the whole journal.
    pub journal_verified: bool,
    /// Lines the verifier accepted.
    pub journal_verified_lines: u64,
    /// The verifier's complaint, if any.
    pub journal_fault: Option<String>,
    /// SHA-256 of the last line, hex.
    pub journal_last_hash: Option<String>,
}

/// The trace of this scenario.
pub type PipelineTrace = Trace<Params, Tick, Event, Summary>;

enum Ev {
    Tick,
    Start,
    StageEnd(StageOutcome),
    Timeout,
    TrainNow,
    Restart,
}

/// Parses `params` and runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn run(seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    Ok(encode(&simulate(seed, max_steps, parse(params)?)?))
}

fn check(p: &Params) -> Result<(Mode, Pipeline), SimError> {
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
    check_range("rounds", p.rounds.into(), 1, MAX_ROUNDS.into())?;
    for (field, v) in [
        ("generate_ms", p.generate_ms),
        ("validate_ms", p.validate_ms),
        ("unit_test_ms", p.unit_test_ms),
        ("train_ms", p.train_ms),
        ("eval_ms", p.eval_ms),
        ("stage_timeout_ms", p.stage_timeout_ms),
    ] {
        check_range(field, v, 1, MAX_STAGE_MS)?;
    }
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
    let pipeline = Pipeline::new(config).map_err(|e| SimError::param("pipeline", e))?;
    Ok((mode, pipeline))
}

/// Runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<PipelineTrace, SimError> {
    let (mode, pipeline) = check(&p)?;
    let chain = ChainWriter::new(&format!("sim-{seed}")).map_err(|e| SimError::param("seed", e))?;
    let mut w = World::new(&p, mode, pipeline, seed, chain);
    let mut engine = Engine::new(max_steps);
    let mut ticker = Ticker::new(p.duration_ms, p.tick_ms);
    engine.at(ticker.boundary(), Class::Boundary, Ev::Tick);
    engine.at(Instant::ZERO, Class::Normal, Ev::Start);
    while let Some(ev) = engine.next_event() {
        let now = engine.now();
        match ev {
            Ev::Tick => {
                w.close_tick(&ticker);
                if w.done || !ticker.advance() {
                    break;
                }
                engine.at(ticker.boundary(), Class::Boundary, Ev::Tick);
                continue;
            }
            Ev::Start => {
                let r = w.pipeline.handle_start(now, w.mode);
                w.refused(now, r);
            }
            Ev::StageEnd(outcome) => match w.pipeline.handle_outcome(now, outcome) {
                // A run the core killed: its late outcome is stale, as it should be.
                Err(Refusal::StaleOutcome) => {}
                r => w.refused(now, r),
            },
            Ev::Timeout => {
                w.timeout_at = None;
                let r = w.pipeline.handle_timeout(now);
                w.refused(now, r);
            }
            Ev::TrainNow => {
                w.train_pending = false;
                let r = w.pipeline.handle_train_now(now);
                w.refused(now, r);
            }
            Ev::Restart => {
                w.restart_pending = false;
                w.s.restarts += 1;
                let r = w.pipeline.handle_reset(now);
                w.refused(now, r);
                let r = w.pipeline.handle_start(now, w.mode);
                w.refused(now, r);
            }
        }
        w.drain(&mut engine);
        w.operator(&mut engine);
    }
    if engine.cap_reached() {
        let t_us = engine.now().as_micros();
        w.events.push(Event::StepCap { t_us });
    }
    let (summary, journal) = w.finish();
    let info = RunInfo {
        scenario: "pipeline",
        seed,
        max_steps,
        tick_ms: p.tick_ms,
    };
    let mut trace = info.finish(&engine, p, w.ticks, w.events, summary);
    trace.journal = Some(journal);
    Ok(trace)
}

struct World {
    rng: Rng,
    p: Params,
    mode: Mode,
    pipeline: Pipeline,
    chain: ChainWriter,
    line: Vec<u8>,
    journal: Vec<u8>,
    timeout_at: Option<Instant>,
    train_pending: bool,
    restart_pending: bool,
    restarts_left: u32,
    done: bool,
    tick: Tick,
    ticks: Vec<Tick>,
    events: EventLog<Event>,
    s: Summary,
}

impl World {
    fn new(p: &Params, mode: Mode, pipeline: Pipeline, seed: u64, chain: ChainWriter) -> World {
        let run_id = chain.run_id().to_owned();
        World {
            rng: Rng::new(seed),
            p: p.clone(),
            mode,
            pipeline,
            chain,
            line: vec![0; MAX_LINE_BYTES],
            journal: Vec::new(),
            timeout_at: None,
            train_pending: false,
            restart_pending: false,
            restarts_left: p.restarts,
            done: false,
            tick: Tick::default(),
            ticks: Vec::new(),
            events: EventLog::default(),
            s: Summary {
                run_id,
                ..Summary::default()
            },
        }
    }

    fn mean_ms(&self, stage: Stage) -> u64 {
        match stage {
            Stage::Generate => self.p.generate_ms,
            Stage::Validate => self.p.validate_ms,
            Stage::UnitTest => self.p.unit_test_ms,
            Stage::Train => self.p.train_ms,
            Stage::Eval => self.p.eval_ms,
        }
    }

    /// Carries out the pipeline's outputs, in order.
    fn drain(&mut self, engine: &mut Engine<Ev>) {
        while let Some(out) = self.pipeline.poll_output() {
            match out {
                Output::RunStage {
                    stage,
                    timeout,
                    token,
                    ..
                } => self.run_stage(engine, stage, timeout, token),
                // The simulated process is gone; its scheduled end will be refused as stale.
                Output::KillStage { .. } | Output::WriteStatus(_) => {}
                Output::AppendEvent(e) => self.append(engine.now(), &e),
            }
        }
        let due = self.pipeline.poll_timeout();
        if due.is_some() && due != self.timeout_at {
            self.timeout_at = due;
            if let Some(at) = due {
                engine.at(at, Class::Normal, Ev::Timeout);
            }
        }
    }

    fn run_stage(
        &mut self,
        engine: &mut Engine<Ev>,
        stage: Stage,
        timeout: Duration,
        token: RunToken,
    ) {
        self.s.stage_runs += 1;
        self.tick.stage_starts += 1;
        let mean_us = self.mean_ms(stage) * 1_000;
        let spread = mean_us * u64::from(self.p.jitter_permille) / 1_000;
        let took =
            Duration::from_micros(self.rng.between(mean_us - spread, mean_us + spread).max(1));
        let failed = self.rng.chance_permille(self.p.fail_permille);
        let usage = UsageDelta {
            memory_mb_delta: self.rng.between(0, 1_024) as i64 - 512,
            cpu_pct: self.rng.between(50, 400) as u32,
        };
        let (after, result) = if took > timeout {
            self.s.stage_timeouts += 1;
            (timeout, StageResult::TimedOut)
        } else if failed {
            self.s.stage_failures += 1;
            (took, StageResult::Failed)
        } else {
            self.s.stage_successes += 1;
            (took, StageResult::Success)
        };
        if result != StageResult::Success {
            self.tick.stage_failures += 1;
        }
        engine.after(
            after,
            Ev::StageEnd(StageOutcome {
                token,
                result,
                usage,
            }),
        );
    }

    fn append(&mut self, now: Instant, e: &PipelineEvent) {
        let ts = WallTime::from_unix_millis(EPOCH_UNIX_MS + now.as_micros() / 1_000);
        let mut usage = [("", 0); 2];
        let event = e.to_journal(ts, &mut usage);
        match self.chain.append(&event, &mut self.line) {
            Ok(bytes) => {
                self.journal.extend_from_slice(bytes);
                self.tick.journal_lines += 1;
            }
            Err(_) => {
                let t_us = now.as_micros();
                self.events.push(Event::Refused {
                    t_us,
                    reason: "journal_encode_error",
                });
            }
        }
        self.s.complete |= e.event_type.name() == "pipeline_complete";
        self.events.push(Event::Pipeline {
            t_us: now.as_micros(),
            event_type: e.event_type.name(),
            stage: e.stage_name(),
            round: e.round,
            error: e.error.map(|r| r.name()),
        });
    }

    fn refused(&mut self, now: Instant, r: Result<(), Refusal>) {
        if let Err(refusal) = r {
            let t_us = now.as_micros();
            self.events.push(Event::Refused {
                t_us,
                reason: refusal.reason(),
            });
        }
    }

    /// The simulated operator: `train_now` in collect mode, restarts after ERROR; and the
    /// end of the run once nothing more will happen.
    fn operator(&mut self, engine: &mut Engine<Ev>) {
        let status = self.pipeline.status();
        if status.awaiting_train && !self.train_pending {
            self.train_pending = true;
            engine.after(
                Duration::from_millis(self.p.train_now_delay_ms),
                Ev::TrainNow,
            );
        }
        if status.state == State::Error && !self.restart_pending && self.restarts_left > 0 {
            self.restarts_left -= 1;
            self.restart_pending = true;
            engine.after(Duration::from_millis(self.p.restart_delay_ms), Ev::Restart);
        }
        let idle_done = status.state == State::Idle && !status.awaiting_train;
        let error_done = status.state == State::Error && !self.restart_pending;
        self.done = idle_done || error_done;
    }

    fn close_tick(&mut self, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        tick.t_ms = ticker.start_ms();
        let status = self.pipeline.status();
        tick.state = status.state.name();
        tick.round = status.round;
        tick.stage = self.pipeline.running().map(|(s, _)| s.name());
        self.ticks.push(tick);
    }

    /// The summary (with the journal verified by heidi-core) and the journal's lines.
    fn finish(&mut self) -> (Summary, Vec<String>) {
        let mut s = core::mem::take(&mut self.s);
        s.final_state = self.pipeline.state().name();
        s.journal_lines = self.chain.lines();
        s.journal_bytes = self.journal.len() as u64;
        s.journal_last_hash = self.chain.last_hash().map(|h| h.hex().as_str().to_owned());
        let mut verifier = Box::new(Verifier::new());
        let verified = verifier
            .feed(&self.journal)
            .and_then(|()| verifier.finish());
        match verified {
            Ok(v) => {
                s.journal_verified = v.lines == s.journal_lines;
                s.journal_verified_lines = v.lines;
            }
            Err(fault) => {
                s.journal_verified_lines = verifier.verified().lines;
                s.journal_fault = Some(fault.to_string());
            }
        }
        let lines = self
            .journal
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        (s, lines)
    }
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
crate::json_fields!(Tick {
    t_ms,
    state,
    round,
    stage,
    stage_starts,
    stage_failures,
    journal_lines
});
crate::json_fields!(Summary {
    run_id,
    final_state,
    complete,
    stage_runs,
    stage_successes,
    stage_failures,
    stage_timeouts,
    restarts,
    journal_lines,
    journal_bytes,
    journal_verified,
    journal_verified_lines,
    journal_fault,
    journal_last_hash
});
crate::json_enum!(Event {
    Pipeline "pipeline" { t_us, event_type, stage, round, error },
    Refused "refused" { t_us, reason },
    StepCap "step_cap" { t_us },
});

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(seed: u64, p: Params) -> PipelineTrace {
        simulate(seed, 10_000_000, p).unwrap()
    }

    #[test]
    fn a_clean_run_completes_every_round_with_a_verified_journal() {
        let t = sim(
            1,
            Params {
                fail_permille: 0,
                ..Params::default()
            },
        );
        let s = &t.summary;
        assert!(s.complete, "{s:?}");
        assert_eq!(s.final_state, "IDLE");
        assert_eq!(s.stage_runs, 3 * 4);
        assert_eq!((s.stage_failures, s.stage_timeouts, s.restarts), (0, 0, 0));
        assert!(s.journal_verified, "{s:?}");
        assert_eq!(s.journal_verified_lines, s.journal_lines);
        // pipeline_start + 12 × (stage_start + stage_end) + pipeline_complete.
        assert_eq!(s.journal_lines, 1 + 24 + 1);
        let journal = t.journal.as_ref().unwrap();
        assert_eq!(journal.len() as u64, s.journal_lines);
        assert!(
            journal[0].starts_with(
                r#"{"event_version":"1.0","ts":"2026-01-01T00:00:00.000Z","run_id":"sim-1""#
            ),
            "{}",
            journal[0]
        );
        assert!(journal[0].ends_with(r#""prev_hash":"sim-1"}"#));
        assert!(
            t.events.iter().all(|e| !matches!(e, Event::Refused { .. })),
            "{:?}",
            t.events
        );
        assert!(!t.step_cap_reached);
        assert_eq!(t.ticks.last().unwrap().state, "IDLE");
    }

    #[test]
    fn a_failure_errors_then_the_operator_restarts() {
        let t = sim(
            2,
            Params {
                fail_permille: 1_000,
                restarts: 2,
                ..Params::default()
            },
        );
        let s = &t.summary;
        assert!(!s.complete);
        assert_eq!(s.final_state, "ERROR");
        assert_eq!(s.restarts, 2);
        assert_eq!(s.stage_runs, 3, "each start fails in generate");
        assert!(s.journal_verified);
        let errors = t
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Pipeline {
                        event_type: "pipeline_error",
                        error: Some("stage_failed"),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(errors, 3);
        assert!(
            t.events.iter().all(|e| !matches!(e, Event::Refused { .. })),
            "{:?}",
            t.events
        );
    }

    #[test]
    fn a_stage_past_its_timeout_is_killed() {
        let p = Params {
            fail_permille: 0,
            train_ms: 400_000,
            restarts: 0,
            ..Params::default()
        };
        let t = sim(3, p);
        assert_eq!(t.summary.stage_timeouts, 1);
        assert_eq!(t.summary.final_state, "ERROR");
        assert!(t.events.iter().any(|e| matches!(
            e,
            Event::Pipeline {
                error: Some("stage_timeout"),
                ..
            }
        )));
        assert!(t.summary.journal_verified);
    }

    #[test]
    fn collect_mode_waits_for_train_now() {
        let p = Params {
            mode: "collect".into(),
            fail_permille: 0,
            rounds: 2,
            unit_tests: true,
            ..Params::default()
        };
        let t = sim(4, p);
        let s = &t.summary;
        assert!(s.complete, "{:?}", t.events);
        assert_eq!(s.stage_runs, 2 * 5);
        assert!(s.journal_verified);
        assert!(
            t.ticks.iter().any(|k| k.state == "IDLE" && k.round == 1)
                || t.ticks.iter().any(|k| k.stage == Some("unit_test"))
        );
    }

    #[test]
    fn the_journal_is_tamper_evident() {
        let t = sim(
            5,
            Params {
                fail_permille: 0,
                ..Params::default()
            },
        );
        let mut journal: Vec<u8> = t.journal.unwrap().join("\n").into_bytes();
        journal.push(b'\n');
        let mut v = Verifier::new();
        assert!(v.feed(&journal).and_then(|()| v.finish()).is_ok());
        let at = journal.iter().position(|&b| b == b'3').unwrap();
        journal[at] = b'4';
        let mut v = Verifier::new();
        assert!(v.feed(&journal).and_then(|()| v.finish()).is_err());
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let cases = [
            (serde_json::json!({"mode": "turbo"}), "mode"),
            (serde_json::json!({"rounds": 0}), "rounds"),
            (serde_json::json!({"rounds": MAX_ROUNDS + 1}), "rounds"),
            (serde_json::json!({"train_ms": 0}), "train_ms"),
            (
                serde_json::json!({"stage_timeout_ms": MAX_STAGE_MS + 1}),
                "stage_timeout_ms",
            ),
            (
                serde_json::json!({"jitter_permille": 1_001}),
                "jitter_permille",
            ),
            (
                serde_json::json!({"restarts": MAX_RESTARTS + 1}),
                "restarts",
            ),
        ];
        for (params, field) in cases {
            let e = run(
                1,
                1_000,
                &crate::json::parse(params.to_string().as_bytes()).unwrap(),
            )
            .unwrap_err();
            assert_eq!(e.code, "bad_params", "{e}");
            assert!(e.message.starts_with(field), "{field}: {e}");
        }
    }
}
