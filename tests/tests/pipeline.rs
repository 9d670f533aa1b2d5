//! Model-based property tests of `heidi_core::pipeline::Pipeline`.
//!
//! Random sequences of commands, loads, stage outcomes (success, failure, timeout, stale
//! tokens) and time jumps (small ticks and jumps to `poll_timeout`) are fed to the machine.
//! After every step:
//! - accepted/refused matches a reference model of the refusal rules written from docs/CORE.md
//!   and the issue; a refusal changes nothing (status, timer) and emits nothing;
//! - the (before, after) state pair is an edge of [`EDGES`], the allowed transition graph;
//! - every `RunStage` carries the configured, non-zero timeout of its stage and the round;
//! - ERROR is entered only right after a failed/timed-out outcome of the running stage, the
//!   core's report deadline, or a spent waiting budget (with the matching reason);
//! - after a success the machine is where the model's successor function says;
//! - `pipeline_throttled` is emitted once per hold episode (never on a re-ask);
//! - `Pipeline::recover` from the status lands in ERROR exactly when a stage state was saved.
//!
//! A second property runs whole runs with every stage succeeding and checks the exact state
//! sequence of docs/CORE.md for both modes, unit tests on and off, 1–4 rounds.

use heidi_core::governor::Load;
use heidi_core::pipeline::{
    ErrorReason, EventType, Input, Mode, Output, Pipeline, PipelineConfig, Refusal, RunToken,
    Stage, StageOutcome, StageResult, StageTimeouts, State, Status, UsageDelta,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

use State::{
    Collecting as Col, Error as Err_, Evaluating as Eva, Finalizing as Fin, Idle, Paused,
    Testing as Tst, Validating as Val,
};

/// The allowed transition graph, per step (one input may pass through a stage state on its
/// way, e.g. a success that enters the next stage and is held there; the pairs below are the
/// state before and after one input). Self-loops are allowed for every state.
const EDGES: &[(State, &[State])] = &[
    (Idle, &[Col, Fin]),
    (Col, &[Val, Err_, Idle, Paused]),
    (Val, &[Tst, Fin, Idle, Err_, Paused]),
    (Tst, &[Fin, Idle, Err_, Paused]),
    (Fin, &[Eva, Err_, Idle, Paused]),
    (Eva, &[Col, Idle, Err_, Paused]),
    (Paused, &[Col, Val, Tst, Fin, Eva, Idle]),
    (Err_, &[Idle]),
];

fn allowed(from: State, to: State) -> bool {
    from == to || EDGES.iter().any(|(f, tos)| *f == from && tos.contains(&to))
}

#[derive(Clone, Debug)]
enum Op {
    Cmd(Input),
    /// Outcome of the running stage (if any) with this result.
    Current(StageResult),
    /// Outcome with an arbitrary token (usually stale).
    Stale(u32, StageResult),
    Load(Load),
    Tick(u64),
    Jump,
}

fn result() -> impl Strategy<Value = StageResult> {
    prop_oneof![
        8 => Just(StageResult::Success),
        1 => Just(StageResult::Failed),
        1 => Just(StageResult::TimedOut),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Collect), Just(Mode::Full)]
}

fn load() -> impl Strategy<Value = Load> {
    prop_oneof![
        3 => Just(Load::default()),
        1 => Just(Load { cpu_permille: 950, ..Load::default() }),
        1 => Just(Load { queued: 100, ..Load::default() }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => mode().prop_map(|m| Op::Cmd(Input::Start(m))),
        1 => Just(Op::Cmd(Input::Stop)),
        1 => Just(Op::Cmd(Input::Pause)),
        1 => Just(Op::Cmd(Input::Resume)),
        1 => Just(Op::Cmd(Input::Reset)),
        2 => Just(Op::Cmd(Input::TrainNow)),
        8 => result().prop_map(Op::Current),
        1 => (0u32..8, result()).prop_map(|(t, r)| Op::Stale(t, r)),
        2 => load().prop_map(Op::Load),
        2 => (0u64..3_000).prop_map(Op::Tick),
        3 => Just(Op::Jump),
    ]
}

fn config() -> impl Strategy<Value = PipelineConfig> {
    (1u32..=3, any::<bool>(), 1u64..=20, 1u64..=60, 0u64..=5).prop_map(
        |(rounds, unit_tests, wait_s, timeout_s, grace_s)| PipelineConfig {
            rounds,
            unit_tests,
            stage_timeouts: StageTimeouts {
                train: Duration::from_secs(timeout_s * 2),
                ..StageTimeouts::all(Duration::from_secs(timeout_s))
            },
            report_grace: Duration::from_secs(grace_s),
            max_wait: Duration::from_secs(wait_s),
            ..PipelineConfig::DEFAULT
        },
    )
}

/// The reference model of the refusal rules, over the observable status.
fn expected(st: &Status, running: Option<RunToken>, input: &Input) -> Option<Refusal> {
    let idle = st.state == Idle;
    match input {
        Input::Start(_) if st.state == Err_ => Some(Refusal::InError),
        Input::Start(_) if idle && st.awaiting_train => Some(Refusal::AwaitingTrainNow),
        Input::Start(_) => (!idle).then_some(Refusal::Running),
        Input::Stop if st.state == Err_ => Some(Refusal::InError),
        Input::Stop => (idle && !st.awaiting_train).then_some(Refusal::NotRunning),
        Input::Pause => match st.state {
            Err_ => Some(Refusal::InError),
            Idle => Some(Refusal::NotRunning),
            Paused => Some(Refusal::AlreadyPaused),
            _ => st.pause_requested.then_some(Refusal::PauseAlreadyRequested),
        },
        Input::Resume => (st.state != Paused && !st.pause_requested).then_some(Refusal::NotPaused),
        Input::Reset => (st.state != Err_).then_some(Refusal::NotInError),
        Input::TrainNow if st.state == Err_ => Some(Refusal::InError),
        Input::TrainNow if st.mode == Mode::Full => Some(Refusal::TrainNowInFullMode),
        Input::TrainNow if idle && !st.awaiting_train => Some(Refusal::NothingToTrain),
        Input::TrainNow => (!idle).then_some(Refusal::Running),
        Input::Outcome(o) => match running {
            None => Some(Refusal::NoStageRunning),
            Some(t) => (t != o.token).then_some(Refusal::StaleOutcome),
        },
        Input::Load(_) | Input::Timeout => None,
    }
}

/// The model's successor of a succeeded stage: `None` means IDLE.
fn successor(c: &PipelineConfig, st: &Status) -> Option<State> {
    match st.state {
        Col => Some(Val),
        Val if c.unit_tests => Some(Tst),
        Val | Tst => (st.mode == Mode::Full).then_some(Fin),
        Fin => Some(Eva),
        Eva => (st.round < c.rounds).then_some(Col),
        _ => unreachable!("a stage ran"),
    }
}

fn drain(p: &mut Pipeline) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).take(64).collect()
}

struct Checker {
    config: PipelineConfig,
    p: Pipeline,
    now: Instant,
}

impl Checker {
    fn input(&mut self, op: &Op) -> Input {
        let usage = UsageDelta {
            memory_mb_delta: 12,
            cpu_pct: 80,
        };
        let outcome = |token, result| {
            Input::Outcome(StageOutcome {
                token,
                result,
                usage,
            })
        };
        match *op {
            Op::Cmd(i) => i,
            Op::Current(r) => outcome(self.p.running().map_or(RunToken(99), |x| x.1), r),
            Op::Stale(t, r) => outcome(RunToken(t), r),
            Op::Load(l) => Input::Load(l),
            Op::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                Input::Timeout
            }
            Op::Jump => {
                self.now = self.p.poll_timeout().unwrap_or(self.now).max(self.now);
                Input::Timeout
            }
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let input = self.input(op);
        let before = self.p.status();
        let running = self.p.running();
        let timer = self.p.poll_timeout();
        let held = before.stage.is_some() && running.is_none();
        let answer = self.p.handle(self.now, input);
        prop_assert_eq!(
            answer.err(),
            expected(&before, running.map(|r| r.1), &input)
        );
        let outs = drain(&mut self.p);
        let after = self.p.status();
        if answer.is_err() {
            prop_assert!(outs.is_empty(), "a refusal emitted {:?}", outs);
            prop_assert_eq!(after, before);
            prop_assert_eq!(self.p.poll_timeout(), timer);
            return Ok(());
        }
        prop_assert!(
            allowed(before.state, after.state),
            "{:?} -> {:?}",
            before.state,
            after.state
        );
        self.check_outputs(&outs, held, &input)?;
        self.check_error(&before, &after, running.is_some(), &input)?;
        if let Input::Outcome(o) = input {
            if o.result == StageResult::Success {
                self.check_success(&before, &after)?;
            }
        }
        self.check_recover(&after)
    }

    fn check_outputs(
        &self,
        outs: &[Output],
        held: bool,
        input: &Input,
    ) -> Result<(), TestCaseError> {
        prop_assert!(outs.len() <= 5);
        for o in outs {
            match *o {
                Output::RunStage {
                    stage,
                    round,
                    timeout,
                    ..
                } => {
                    prop_assert!(timeout > Duration::ZERO);
                    prop_assert_eq!(timeout, self.config.stage_timeouts.get(stage));
                    prop_assert_eq!(round, self.p.round());
                    prop_assert!((1..=self.config.rounds).contains(&round));
                }
                Output::AppendEvent(e) if e.event_type == EventType::PipelineThrottled => {
                    let reask = held && matches!(input, Input::Timeout | Input::Load(_));
                    prop_assert!(!reask, "throttled twice in one hold episode");
                }
                Output::AppendEvent(e) if e.event_type == EventType::StageEnd => {
                    prop_assert!(e.stage.is_some());
                }
                _ => {}
            }
        }
        let statuses = outs
            .iter()
            .filter(|o| matches!(o, Output::WriteStatus(_)))
            .count();
        prop_assert!(statuses <= 1);
        Ok(())
    }

    fn check_error(
        &self,
        before: &Status,
        after: &Status,
        was_running: bool,
        input: &Input,
    ) -> Result<(), TestCaseError> {
        if after.state != Err_ || before.state == Err_ {
            return Ok(());
        }
        let reason = after.last_error.expect("ERROR has a reason");
        match (input, reason) {
            (Input::Outcome(o), ErrorReason::StageFailed(_)) => {
                prop_assert_eq!(o.result, StageResult::Failed)
            }
            (Input::Outcome(o), ErrorReason::StageTimedOut(_)) => {
                prop_assert_eq!(o.result, StageResult::TimedOut)
            }
            (Input::Timeout, ErrorReason::StageTimedOut(_)) => prop_assert!(was_running),
            (Input::Timeout, ErrorReason::Budget(_)) => prop_assert!(!was_running),
            other => prop_assert!(false, "ERROR entered by {:?}", other),
        }
        Ok(())
    }

    fn check_success(&self, before: &Status, after: &Status) -> Result<(), TestCaseError> {
        let next = successor(&self.config, before);
        let round = match (before.state, next) {
            (Eva, Some(Col)) => before.round + 1,
            _ => before.round,
        };
        prop_assert_eq!(after.round, round);
        match next {
            None => {
                prop_assert_eq!(after.state, Idle);
                let waits = before.state != Eva;
                prop_assert_eq!(after.awaiting_train, waits);
            }
            Some(s) if before.pause_requested => {
                prop_assert_eq!((after.state, after.resume_to), (Paused, Some(s)))
            }
            Some(s) => prop_assert_eq!(after.state, s),
        }
        Ok(())
    }

    fn check_recover(&self, saved: &Status) -> Result<(), TestCaseError> {
        let mut q = Pipeline::recover(self.config, saved, self.now).expect("own status");
        let interrupted = saved.stage.is_some();
        prop_assert_eq!(q.state() == Err_, interrupted || saved.state == Err_);
        if interrupted {
            let outs = drain(&mut q);
            let error = outs.iter().any(
                |o| matches!(o, Output::AppendEvent(e) if e.event_type == EventType::PipelineError),
            );
            prop_assert!(error);
            prop_assert!(matches!(
                q.status().last_error,
                Some(ErrorReason::Interrupted(_))
            ));
        } else {
            prop_assert_eq!(q.status(), *saved);
        }
        Ok(())
    }
}

/// The state sequence of docs/CORE.md for a run where every stage succeeds.
fn design_sequence(c: &PipelineConfig, mode: Mode) -> Vec<State> {
    let mut seq = Vec::new();
    for _ in 0..c.rounds {
        seq.push(Col);
        seq.push(Val);
        if c.unit_tests {
            seq.push(Tst);
        }
        if mode == Mode::Collect {
            seq.push(Idle);
        }
        seq.extend([Fin, Eva]);
    }
    seq.push(Idle);
    seq
}

proptest! {
    #![proptest_config(heidi_tests::proptest_config(256))]

    #[test]
    fn random_inputs_stay_in_the_graph(c in config(), ops in proptest::collection::vec(op(), 1..120)) {
        let mut ch = Checker { config: c, p: Pipeline::new(c).unwrap(), now: Instant::from_secs(1) };
        for op in &ops {
            ch.step(op)?;
        }
    }

    #[test]
    fn all_successes_visit_the_design_sequence(
        rounds in 1u32..=4,
        unit_tests in any::<bool>(),
        mode in mode(),
    ) {
        let c = PipelineConfig { rounds, unit_tests, ..PipelineConfig::DEFAULT };
        let mut p = Pipeline::new(c).unwrap();
        let mut now = Instant::from_secs(1);
        p.handle_start(now, mode).unwrap();
        let mut seq = vec![p.state()];
        let mut complete = 0;
        for _ in 0..64 {
            for o in drain(&mut p) {
                if matches!(o, Output::AppendEvent(e) if e.event_type == EventType::PipelineComplete) {
                    complete += 1;
                }
            }
            now += Duration::from_secs(1);
            match p.running() {
                Some((_, token)) => {
                    let usage = UsageDelta::default();
                    let done = StageOutcome { token, result: StageResult::Success, usage };
                    p.handle_outcome(now, done).unwrap();
                }
                None if p.status().awaiting_train => p.handle_train_now(now).unwrap(),
                None => break,
            }
            seq.push(p.state());
        }
        prop_assert_eq!(seq, design_sequence(&c, mode));
        prop_assert_eq!(complete, 1);
        prop_assert_eq!(p.status().last_error, None);
        prop_assert!(Stage::ALL.iter().all(|s| c.stage_timeouts.get(*s) > Duration::ZERO));
    }
}
