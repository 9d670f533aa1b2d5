//! Scenario `pipeline`: heidi-core's pipeline state machine runs rounds of stages whose
//! durations and failures are drawn from the PRNG, and every event it emits is written to a
//! hash-chained journal (heidi-core's encoder and [`ChainWriter`]) that heidi-core's
//! [`Verifier`] checks at the end.
//!
//! The simulator plays the host: it runs each `RunStage` for its drawn duration, reports the
//! outcome with the run's token, and drives `handle_timeout` at `poll_timeout`. A draw past
//! the stage's timeout is killed by the simulator itself, which reports `TimedOut` at the
//! timeout; that report is scheduled before core's own deadline at the same instant, so core
//! never needs to emit `KillStage` (were it to, the simulator would drop the run and the late
//! outcome would show as a `refused` event, like any refusal). It plays the operator
//! too: in `collect` mode it sends `train_now` `train_now_delay_ms` after a round waits for
//! it, and after an ERROR it resets and restarts the pipeline up to `restarts` times.
//! Journal timestamps are virtual time after 2026-01-01T00:00:00Z.
//!
//! Parameters and their checks are in `params.rs`, the tests in `tests.rs`.

mod params;
#[cfg(test)]
mod tests;

pub use params::{MAX_RESTARTS, MAX_ROUNDS, MAX_STAGE_MS, Params};

use super::{encode, parse};
use crate::driver::{self, Parts, Run};
use crate::engine::{Engine, Timer};
use crate::error::SimError;
use crate::json::Value;
use crate::rng::Rng;
use crate::trace::{EventLog, Ticker, Trace};
use heidi_core::journal::{ChainWriter, MAX_LINE_BYTES, Verifier};
use heidi_core::pipeline::{
    Mode, Output, Pipeline, PipelineEvent, Refusal, RunToken, Stage, StageOutcome, StageResult,
    State, UsageDelta,
};
use heidi_core::{Duration, Instant, WallTime};

/// Wall-clock time of virtual time zero, for the journal's `ts` (2026-01-01T00:00:00Z).
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

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

/// The engine's events.
pub enum Ev {
    /// The operator starts the pipeline.
    Start,
    /// A stage run ended.
    StageEnd(StageOutcome),
    /// The pipeline's deadline (`poll_timeout`).
    Timeout(Instant),
    /// The operator sends `train_now`.
    TrainNow,
    /// The operator resets and restarts the pipeline.
    Restart,
}

/// Parses `params` and runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn run(seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    Ok(encode(&simulate(seed, max_steps, parse(params)?)?))
}

/// Runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<PipelineTrace, SimError> {
    let (mode, pipeline) = params::check(&p)?;
    let chain = ChainWriter::new(&format!("sim-{seed}")).map_err(|e| SimError::param("seed", e))?;
    let world = World::new(&p, mode, pipeline, seed, chain);
    let run = Run {
        scenario: "pipeline",
        seed,
        max_steps,
        duration_ms: p.duration_ms,
        tick_ms: p.tick_ms,
    };
    driver::drive(run, p, world)
}

struct World {
    rng: Rng,
    p: Params,
    mode: Mode,
    pipeline: Pipeline,
    chain: ChainWriter,
    line: Vec<u8>,
    journal: Vec<u8>,
    timer: Timer,
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
            timer: Timer::default(),
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
                // Never emitted here (see the module docs); a late outcome would be refused.
                Output::KillStage { .. } | Output::WriteStatus(_) => {}
                Output::AppendEvent(e) => self.append(engine.now(), &e),
            }
        }
        let due = self.pipeline.poll_timeout();
        self.timer.sync(engine, due, Ev::Timeout);
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
}

impl driver::World for World {
    type Ev = Ev;
    type Tick = Tick;
    type Event = Event;
    type Summary = Summary;

    fn start(&mut self, engine: &mut Engine<Ev>) {
        engine.at(Instant::ZERO, Ev::Start);
    }

    fn handle(&mut self, engine: &mut Engine<Ev>, ev: Ev) -> Result<(), SimError> {
        let now = engine.now();
        match ev {
            Ev::Start => {
                let r = self.pipeline.handle_start(now, self.mode);
                self.refused(now, r);
            }
            Ev::StageEnd(outcome) => {
                let r = self.pipeline.handle_outcome(now, outcome);
                self.refused(now, r);
            }
            Ev::Timeout(at) => {
                if self.timer.fire(at) {
                    let r = self.pipeline.handle_timeout(now);
                    self.refused(now, r);
                }
            }
            Ev::TrainNow => {
                self.train_pending = false;
                let r = self.pipeline.handle_train_now(now);
                self.refused(now, r);
            }
            Ev::Restart => {
                self.restart_pending = false;
                self.s.restarts += 1;
                let r = self.pipeline.handle_reset(now);
                self.refused(now, r);
                let r = self.pipeline.handle_start(now, self.mode);
                self.refused(now, r);
            }
        }
        self.drain(engine);
        self.operator(engine);
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn step_cap_event(t_us: u64) -> Event {
        Event::StepCap { t_us }
    }

    fn events(&mut self) -> &mut EventLog<Event> {
        &mut self.events
    }

    fn finish(mut self, _end: Instant) -> Parts<Tick, Event, Summary> {
        let (summary, journal) = self.summary_and_journal();
        Parts {
            ticks: self.ticks,
            events: self.events,
            summary,
            journal: Some(journal),
        }
    }

    fn close_tick(&mut self, _now: Instant, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        tick.t_ms = ticker.start_ms();
        let status = self.pipeline.status();
        tick.state = status.state.name();
        tick.round = status.round;
        tick.stage = self.pipeline.running().map(|(s, _)| s.name());
        self.ticks.push(tick);
    }
}

impl World {
    /// The summary (with the journal verified by heidi-core) and the journal's lines.
    fn summary_and_journal(&mut self) -> (Summary, Vec<String>) {
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
