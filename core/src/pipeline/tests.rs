use super::*;
use crate::governor::{Admission, GovernorConfig, HoldReason, Load};
use crate::journal::Level;
use crate::time::{Duration, Instant};

type Outs = heapless::Vec<Output, 16>;

const BUSY: Load = Load {
    running: 0,
    queued: 0,
    cpu_permille: 900,
    mem_permille: 0,
};

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn pipe(config: PipelineConfig) -> Pipeline {
    Pipeline::new(config).unwrap()
}

fn drain(p: &mut Pipeline) -> Outs {
    let mut outs = Outs::new();
    while let Some(o) = p.poll_output() {
        outs.push(o).unwrap();
    }
    outs
}

fn kinds(outs: &Outs) -> heapless::Vec<EventType, 16> {
    outs.iter()
        .filter_map(|o| match o {
            Output::AppendEvent(e) => Some(e.event_type),
            _ => None,
        })
        .collect()
}

fn run_token(outs: &Outs) -> Option<RunToken> {
    outs.iter().find_map(|o| match o {
        Output::RunStage { token, .. } => Some(*token),
        _ => None,
    })
}

fn outcome(token: RunToken, result: StageResult) -> StageOutcome {
    let usage = UsageDelta {
        memory_mb_delta: -3,
        cpu_pct: 140,
    };
    StageOutcome {
        token,
        result,
        usage,
    }
}

/// Reports success of the running stage at `now` and returns the outputs.
fn succeed(p: &mut Pipeline, now: Instant) -> Outs {
    let (_, token) = p.running().expect("a stage runs");
    p.handle_outcome(now, outcome(token, StageResult::Success))
        .unwrap();
    drain(p)
}

/// Runs a whole run with every stage succeeding; returns the states entered.
fn full_run(p: &mut Pipeline, mode: Mode) -> heapless::Vec<State, 64> {
    let mut states = heapless::Vec::new();
    let mut now = 1;
    p.handle_start(t(now), mode).unwrap();
    drain(p);
    states.push(p.state()).unwrap();
    loop {
        now += 1;
        if p.state() == State::Idle && p.status().awaiting_train {
            p.handle_train_now(t(now)).unwrap();
            drain(p);
        } else if p.state() == State::Idle {
            return states;
        } else {
            succeed(p, t(now));
        }
        states.push(p.state()).unwrap();
    }
}

#[test]
fn defaults_follow_the_design_and_the_seed() {
    let c = PipelineConfig::default();
    assert_eq!(c.rounds, 3);
    assert!(!c.unit_tests);
    for s in Stage::ALL {
        assert_eq!(c.stage_timeouts.get(s), Duration::from_secs(300));
        assert_eq!(s.state().stage(), Some(s));
        assert_eq!(Stage::ALL[s.index()], s);
    }
    assert_eq!(c.max_wait, Duration::from_secs(3_600));
    assert_eq!(
        Stage::Generate.default_script(),
        "scripts/01_teacher_generate.py"
    );
    assert_eq!(Stage::Eval.default_script(), "scripts/05_eval.py");
    let p = pipe(c);
    assert_eq!(
        (p.state(), p.round(), p.poll_timeout()),
        (State::Idle, 1, None)
    );
}

#[test]
fn config_errors_name_the_field() {
    let bad = |f: fn(&mut PipelineConfig)| {
        let mut c = PipelineConfig::DEFAULT;
        f(&mut c);
        Pipeline::new(c).unwrap_err()
    };
    assert_eq!(bad(|c| c.rounds = 0), PipelineConfigError::Rounds);
    assert_eq!(
        bad(|c| c.rounds = MAX_ROUNDS + 1),
        PipelineConfigError::Rounds
    );
    let e = bad(|c| c.stage_timeouts.train = Duration::ZERO);
    assert_eq!(e, PipelineConfigError::StageTimeout(Stage::Train));
    assert_eq!(
        bad(|c| c.max_wait = Duration::ZERO),
        PipelineConfigError::MaxWait
    );
    let e = bad(|c| c.governor.queue_max = 0);
    assert!(matches!(e, PipelineConfigError::Governor(_)));
    let mut c = PipelineConfig::DEFAULT;
    c.rounds = MAX_ROUNDS;
    assert!(Pipeline::new(c).is_ok());
}

#[test]
fn full_mode_visits_the_design_sequence() {
    use State::*;
    let mut p = pipe(PipelineConfig {
        rounds: 2,
        ..PipelineConfig::DEFAULT
    });
    let seq = full_run(&mut p, Mode::Full);
    let round = [Collecting, Validating, Finalizing, Evaluating];
    let expect: heapless::Vec<State, 16> =
        round.iter().chain(&round).chain(&[Idle]).copied().collect();
    assert_eq!(seq.as_slice(), expect.as_slice());
}

#[test]
fn unit_tests_add_testing_after_validating() {
    use State::*;
    let mut p = pipe(PipelineConfig {
        rounds: 1,
        unit_tests: true,
        ..PipelineConfig::DEFAULT
    });
    let seq = full_run(&mut p, Mode::Full);
    assert_eq!(
        seq.as_slice(),
        &[
            Collecting, Validating, Testing, Finalizing, Evaluating, Idle
        ]
    );
}

#[test]
fn collect_mode_waits_for_train_now_each_round() {
    use State::*;
    let mut p = pipe(PipelineConfig {
        rounds: 2,
        ..PipelineConfig::DEFAULT
    });
    let seq = full_run(&mut p, Mode::Collect);
    let round = [Collecting, Validating, Idle, Finalizing, Evaluating];
    let expect: heapless::Vec<State, 16> =
        round.iter().chain(&round).chain(&[Idle]).copied().collect();
    assert_eq!(seq.as_slice(), expect.as_slice());
}

#[test]
fn last_eval_completes_and_a_new_run_can_start() {
    let mut p = pipe(PipelineConfig {
        rounds: 1,
        ..PipelineConfig::DEFAULT
    });
    p.handle_start(t(1), Mode::Full).unwrap();
    let outs = drain(&mut p);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::PipelineStart, EventType::StageStart]
    );
    for s in 2..=4 {
        succeed(&mut p, t(s));
    }
    let outs = succeed(&mut p, t(5));
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::StageEnd, EventType::PipelineComplete]
    );
    assert!(matches!(outs.last(), Some(Output::WriteStatus(s)) if s.state == State::Idle));
    assert_eq!(p.handle_train_now(t(6)), Err(Refusal::TrainNowInFullMode));
    p.handle_start(t(6), Mode::Collect).unwrap();
    assert_eq!(p.state(), State::Collecting);
}

#[test]
fn run_stage_carries_the_configured_timeout_and_round() {
    let mut c = PipelineConfig::DEFAULT;
    c.stage_timeouts.validate = Duration::from_secs(7);
    let mut p = pipe(c);
    p.handle_start(t(1), Mode::Full).unwrap();
    drain(&mut p);
    let outs = succeed(&mut p, t(2));
    let run = outs.iter().find(|o| matches!(o, Output::RunStage { .. }));
    let expect = Output::RunStage {
        stage: Stage::Validate,
        round: 1,
        timeout: Duration::from_secs(7),
        token: RunToken(1),
    };
    assert_eq!(run, Some(&expect));
}

#[test]
fn failure_is_fail_closed_and_reset_leaves_error() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    p.handle_outcome(t(2), outcome(token, StageResult::Failed))
        .unwrap();
    let outs = drain(&mut p);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::StageEnd, EventType::PipelineError]
    );
    let Output::AppendEvent(end) = outs[0] else {
        panic!("stage_end first")
    };
    assert_eq!((end.level, end.usage.unwrap().cpu_pct), (Level::Error, 140));
    let reason = ErrorReason::StageFailed(Stage::Generate);
    assert_eq!(
        (p.state(), p.status().last_error),
        (State::Error, Some(reason))
    );
    assert_eq!(p.handle_start(t(3), Mode::Full), Err(Refusal::InError));
    p.handle_reset(t(3)).unwrap();
    assert_eq!(
        kinds(&drain(&mut p)).as_slice(),
        &[EventType::PipelineReset]
    );
    assert_eq!((p.state(), p.round()), (State::Idle, 1));
    p.handle_start(t(4), Mode::Full).unwrap();
    assert_eq!(p.state(), State::Collecting);
}

#[test]
fn host_timeout_is_a_failure() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    p.handle_outcome(t(301), outcome(token, StageResult::TimedOut))
        .unwrap();
    let reason = ErrorReason::StageTimedOut(Stage::Generate);
    assert_eq!(
        (p.state(), p.status().last_error),
        (State::Error, Some(reason))
    );
}

#[test]
fn core_kills_a_stage_never_reported() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    let deadline = t(1 + 300 + 10);
    assert_eq!(p.poll_timeout(), Some(deadline));
    p.handle_timeout(deadline - Duration::from_micros(1))
        .unwrap();
    assert!(drain(&mut p).is_empty());
    p.handle_timeout(deadline).unwrap();
    let outs = drain(&mut p);
    let kill = Output::KillStage {
        stage: Stage::Generate,
        token,
    };
    assert_eq!(outs[0], kill);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::StageEnd, EventType::PipelineError]
    );
    assert_eq!(p.state(), State::Error);
    let late = p.handle_outcome(deadline, outcome(token, StageResult::Success));
    assert_eq!(late, Err(Refusal::NoStageRunning));
}

#[test]
fn stop_kills_the_stage_and_its_outcome_is_stale() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let old = run_token(&drain(&mut p)).unwrap();
    p.handle_stop(t(2)).unwrap();
    let outs = drain(&mut p);
    let kill = Output::KillStage {
        stage: Stage::Generate,
        token: old,
    };
    assert_eq!(outs[0], kill);
    assert_eq!(kinds(&outs).as_slice(), &[EventType::PipelineStop]);
    assert_eq!((p.state(), p.poll_timeout()), (State::Idle, None));
    p.handle_start(t(3), Mode::Full).unwrap();
    let new = run_token(&drain(&mut p)).unwrap();
    assert_ne!(old, new);
    let stale = p.handle_outcome(t(4), outcome(old, StageResult::Failed));
    assert_eq!(stale, Err(Refusal::StaleOutcome));
    assert_eq!(p.state(), State::Collecting);
    assert!(drain(&mut p).is_empty());
}

#[test]
fn stop_applies_to_paused_and_awaiting_train() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Collect).unwrap();
    drain(&mut p);
    succeed(&mut p, t(2));
    succeed(&mut p, t(3));
    assert!(p.status().awaiting_train);
    p.handle_stop(t(4)).unwrap();
    assert!(!p.status().awaiting_train);
    assert_eq!(p.handle_train_now(t(5)), Err(Refusal::NothingToTrain));
    assert_eq!(p.handle_stop(t(5)), Err(Refusal::NotRunning));
    drain(&mut p);
    p.handle_load(BUSY);
    p.handle_start(t(6), Mode::Full).unwrap();
    p.handle_pause(t(6)).unwrap();
    assert_eq!(p.state(), State::Paused);
    p.handle_stop(t(7)).unwrap();
    assert_eq!((p.state(), p.status().resume_to), (State::Idle, None));
}

#[test]
fn pause_of_a_running_stage_takes_effect_when_it_succeeds() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    drain(&mut p);
    p.handle_pause(t(2)).unwrap();
    assert_eq!(
        kinds(&drain(&mut p)).as_slice(),
        &[EventType::PipelinePause]
    );
    assert_eq!(
        (p.state(), p.status().pause_requested),
        (State::Collecting, true)
    );
    assert_eq!(p.handle_pause(t(2)), Err(Refusal::PauseAlreadyRequested));
    let outs = succeed(&mut p, t(3));
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::StageEnd, EventType::PipelinePause]
    );
    assert_eq!(run_token(&outs), None);
    assert_eq!(
        (p.state(), p.status().resume_to),
        (State::Paused, Some(State::Validating))
    );
    assert_eq!(p.handle_pause(t(4)), Err(Refusal::AlreadyPaused));
    p.handle_resume(t(4)).unwrap();
    let outs = drain(&mut p);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::PipelineResume, EventType::StageStart]
    );
    assert_eq!(p.running().map(|r| r.0), Some(Stage::Validate));
}

#[test]
fn resume_cancels_a_requested_pause() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    p.handle_pause(t(2)).unwrap();
    p.handle_resume(t(3)).unwrap();
    drain(&mut p);
    assert!(!p.status().pause_requested);
    succeed(&mut p, t(4));
    assert_eq!(p.state(), State::Validating);
    assert_eq!(p.handle_resume(t(5)), Err(Refusal::NotPaused));
}

#[test]
fn failure_after_a_requested_pause_still_errors() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    p.handle_pause(t(2)).unwrap();
    p.handle_outcome(t(3), outcome(token, StageResult::Failed))
        .unwrap();
    assert_eq!(
        (p.state(), p.status().pause_requested),
        (State::Error, false)
    );
}

#[test]
fn refusals_change_nothing() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    let check = |p: &mut Pipeline, input: Input, refusal: Refusal| {
        let before = p.status();
        assert_eq!(p.handle(t(9), input), Err(refusal), "{input:?}");
        assert_eq!(p.status(), before);
        assert!(p.poll_output().is_none());
    };
    // IDLE
    check(&mut p, Input::Stop, Refusal::NotRunning);
    check(&mut p, Input::Pause, Refusal::NotRunning);
    check(&mut p, Input::Resume, Refusal::NotPaused);
    check(&mut p, Input::Reset, Refusal::NotInError);
    check(&mut p, Input::TrainNow, Refusal::NothingToTrain);
    let stray = Input::Outcome(outcome(RunToken(0), StageResult::Success));
    check(&mut p, stray, Refusal::NoStageRunning);
    // running, collect mode
    p.handle_start(t(1), Mode::Collect).unwrap();
    drain(&mut p);
    check(&mut p, Input::Start(Mode::Full), Refusal::Running);
    check(&mut p, Input::TrainNow, Refusal::Running);
    check(&mut p, Input::Reset, Refusal::NotInError);
    check(&mut p, Input::Resume, Refusal::NotPaused);
    let stale = Input::Outcome(outcome(RunToken(7), StageResult::Success));
    check(&mut p, stale, Refusal::StaleOutcome);
    // awaiting train_now
    succeed(&mut p, t(2));
    succeed(&mut p, t(3));
    check(
        &mut p,
        Input::Start(Mode::Collect),
        Refusal::AwaitingTrainNow,
    );
    check(&mut p, Input::Pause, Refusal::NotRunning);
    // ERROR
    p.handle_train_now(t(4)).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    p.handle_outcome(t(5), outcome(token, StageResult::Failed))
        .unwrap();
    drain(&mut p);
    for input in [
        Input::Start(Mode::Full),
        Input::Stop,
        Input::Pause,
        Input::TrainNow,
    ] {
        check(&mut p, input, Refusal::InError);
    }
    check(&mut p, Input::Resume, Refusal::NotPaused);
}

#[test]
fn inputs_are_refused_while_outputs_are_pending() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let mut n = 0;
    while p.handle_pause(t(2)).is_ok() && p.handle_resume(t(2)).is_ok() {
        n += 1;
    }
    assert!(n > 0);
    let before = p.status();
    assert_eq!(p.handle_stop(t(3)), Err(Refusal::OutputsPending));
    assert_eq!(p.handle_timeout(t(3)), Err(Refusal::OutputsPending));
    assert_eq!(p.status(), before);
    let outs = drain(&mut p);
    assert!(outs.len() > OUTPUT_CAPACITY - 5);
    p.handle_stop(t(3)).unwrap();
}

#[test]
fn governor_hold_throttles_once_per_episode() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_load(BUSY);
    p.handle_start(t(1), Mode::Full).unwrap();
    let outs = drain(&mut p);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[EventType::PipelineStart, EventType::PipelineThrottled]
    );
    let Output::AppendEvent(e) = outs[1] else {
        panic!("throttled")
    };
    let held = Admission::Hold {
        retry_at: t(2),
        reason: HoldReason::Cpu,
    };
    assert_eq!((e.admission, e.level), (Some(held), Level::Warning));
    assert_eq!(
        (p.state(), p.running(), p.poll_timeout()),
        (State::Collecting, None, Some(t(2)))
    );
    for s in 2..6 {
        p.handle_timeout(t(s)).unwrap();
        assert!(drain(&mut p).is_empty(), "no event storm");
        assert_eq!(p.poll_timeout(), Some(t(s + 1)));
    }
    p.handle_load(Load::default());
    p.handle_timeout(t(6)).unwrap();
    let outs = drain(&mut p);
    assert_eq!(kinds(&outs).as_slice(), &[EventType::StageStart]);
    assert_eq!(p.running().map(|r| r.0), Some(Stage::Generate));
}

#[test]
fn queue_full_is_held_for_one_cooldown() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_load(Load {
        queued: 100,
        ..Load::default()
    });
    p.handle_start(t(1), Mode::Full).unwrap();
    assert_eq!(p.poll_timeout(), Some(t(2)));
    assert_eq!(p.state(), State::Collecting);
}

#[test]
fn spent_waiting_budget_ends_in_error() {
    let mut p = pipe(PipelineConfig {
        max_wait: Duration::from_millis(4_500),
        ..PipelineConfig::DEFAULT
    });
    p.handle_load(BUSY);
    p.handle_start(t(0), Mode::Full).unwrap();
    drain(&mut p);
    let mut steps = 0;
    while let Some(at) = p.poll_timeout() {
        p.handle_timeout(at).unwrap();
        steps += 1;
        if p.state() == State::Error {
            assert_eq!(at, Instant::from_millis(4_500));
            break;
        }
        assert!(drain(&mut p).is_empty());
    }
    assert_eq!(steps, 5);
    let reason = ErrorReason::Budget(Stage::Generate);
    assert_eq!(p.status().last_error, Some(reason));
    assert_eq!(
        kinds(&drain(&mut p)).as_slice(),
        &[EventType::PipelineError]
    );
}

#[test]
fn budget_sums_hold_episodes_over_the_run() {
    let mut p = pipe(PipelineConfig {
        max_wait: Duration::from_secs(3),
        ..PipelineConfig::DEFAULT
    });
    p.handle_load(BUSY);
    p.handle_start(t(0), Mode::Full).unwrap();
    p.handle_timeout(t(1)).unwrap();
    p.handle_load(Load::default());
    p.handle_timeout(t(2)).unwrap();
    drain(&mut p);
    p.handle_load(BUSY);
    succeed(&mut p, t(3));
    assert_eq!(
        p.poll_timeout(),
        Some(t(4)),
        "1 s left of the budget, equal to retry_at"
    );
    p.handle_timeout(t(4)).unwrap();
    assert_eq!(p.state(), State::Error);
}

#[test]
fn pause_while_held_is_immediate_and_resume_asks_again() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_load(BUSY);
    p.handle_start(t(1), Mode::Full).unwrap();
    drain(&mut p);
    p.handle_pause(t(2)).unwrap();
    assert_eq!((p.state(), p.poll_timeout()), (State::Paused, None));
    p.handle_resume(t(3)).unwrap();
    let outs = drain(&mut p);
    assert_eq!(
        kinds(&outs).as_slice(),
        &[
            EventType::PipelinePause,
            EventType::PipelineResume,
            EventType::PipelineThrottled
        ]
    );
    p.handle_load(Load::default());
    p.handle_timeout(t(4)).unwrap();
    assert!(p.running().is_some());
}

#[test]
fn recovery_of_a_running_stage_is_an_error() {
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    drain(&mut p);
    succeed(&mut p, t(2));
    let saved = p.status();
    let mut q = Pipeline::recover(PipelineConfig::DEFAULT, &saved, t(0)).unwrap();
    let outs = drain(&mut q);
    assert_eq!(kinds(&outs).as_slice(), &[EventType::PipelineError]);
    let reason = ErrorReason::Interrupted(Stage::Validate);
    assert_eq!(
        (q.state(), q.status().last_error),
        (State::Error, Some(reason))
    );
    assert!(matches!(outs.last(), Some(Output::WriteStatus(s)) if s.state == State::Error));
    q.handle_reset(t(1)).unwrap();
    assert_eq!(q.state(), State::Idle);
}

#[test]
fn recovery_restores_idle_paused_and_error() {
    let c = PipelineConfig::DEFAULT;
    let mut p = pipe(c);
    p.handle_start(t(1), Mode::Collect).unwrap();
    drain(&mut p);
    succeed(&mut p, t(2));
    succeed(&mut p, t(3));
    let mut q = Pipeline::recover(c, &p.status(), t(0)).unwrap();
    assert!(q.poll_output().is_none());
    assert_eq!(q.status(), p.status());
    q.handle_train_now(t(1)).unwrap();
    assert_eq!(q.state(), State::Finalizing);

    let paused = Status {
        state: State::Paused,
        resume_to: Some(State::Evaluating),
        round: 2,
        ..p.status()
    };
    let mut q = Pipeline::recover(c, &paused, t(0)).unwrap();
    q.handle_resume(t(1)).unwrap();
    assert_eq!((q.state(), q.round()), (State::Evaluating, 2));

    let bad = Status {
        resume_to: None,
        ..paused
    };
    assert_eq!(
        Pipeline::recover(c, &bad, t(0)).unwrap_err(),
        RecoverError::ResumeTo
    );
    let bad = Status { round: 4, ..paused };
    assert_eq!(
        Pipeline::recover(c, &bad, t(0)).unwrap_err(),
        RecoverError::Round
    );
}

#[test]
fn displays_are_fixed_strings() {
    extern crate std;
    use std::string::ToString;
    assert_eq!(
        Refusal::TrainNowInFullMode.to_string(),
        "train_now applies to collect mode only"
    );
    let e = PipelineConfigError::StageTimeout(Stage::UnitTest).to_string();
    assert_eq!(e, "stage_timeouts.unit_test must be greater than zero");
    assert_eq!(
        ErrorReason::Budget(Stage::Train).to_string(),
        "budget in stage train"
    );
    assert_eq!(State::Finalizing.to_string(), "FINALIZING");
    assert_eq!(EventType::PipelineThrottled.name(), "pipeline_throttled");
    let _ = GovernorConfig::DEFAULT;
}

#[test]
fn events_become_journal_lines_that_verify() {
    use crate::WallTime;
    use crate::journal::{ChainWriter, MAX_LINE_BYTES, Verifier};
    let mut p = pipe(PipelineConfig::DEFAULT);
    p.handle_start(t(1), Mode::Full).unwrap();
    let token = run_token(&drain(&mut p)).unwrap();
    p.handle_outcome(t(2), outcome(token, StageResult::Failed))
        .unwrap();
    let mut chain = ChainWriter::new("run-1").unwrap();
    let mut verifier = Verifier::new();
    let mut line = [0u8; MAX_LINE_BYTES];
    let mut saw_stage_end = false;
    for out in drain(&mut p) {
        let Output::AppendEvent(e) = out else {
            continue;
        };
        let mut usage = [("", 0); 2];
        let event = e.to_journal(WallTime::from_unix_millis(1_771_573_538_307), &mut usage);
        let bytes = chain.append(&event, &mut line).unwrap();
        verifier.feed(bytes).unwrap();
        if e.event_type == EventType::StageEnd {
            saw_stage_end = true;
            let text = core::str::from_utf8(bytes).unwrap();
            assert!(
                text.contains(r#""stage":"generate","level":"error","event_type":"stage_end""#)
            );
            assert!(
                text.contains(r#""usage_delta":{"memory_mb_delta":"#),
                "{text}"
            );
            assert!(text.contains(r#","cpu_pct":140}"#), "{text}");
            assert!(text.contains(r#""error":"stage_failed""#), "{text}");
        }
    }
    assert!(saw_stage_end);
    assert_eq!(verifier.finish().unwrap().lines, chain.lines());
}

/// Each state maps to its `state.json` word, driven through a run: idle, running, paused,
/// awaiting_train, completed (until the next start), error (until reset, then idle).
#[test]
fn run_status_follows_the_pipeline() {
    let word = |p: &Pipeline| p.status().run_status().name();
    let mut p = pipe(PipelineConfig {
        rounds: 1,
        ..PipelineConfig::DEFAULT
    });
    assert_eq!(word(&p), "idle");
    p.handle_start(t(1), Mode::Collect).unwrap();
    drain(&mut p);
    assert_eq!(word(&p), "running");
    p.handle_pause(t(2)).unwrap();
    assert_eq!(word(&p), "running", "a requested pause lets the stage run");
    succeed(&mut p, t(3));
    assert_eq!((p.state(), word(&p)), (State::Paused, "paused"));
    p.handle_resume(t(4)).unwrap();
    drain(&mut p);
    succeed(&mut p, t(5));
    assert_eq!(word(&p), "awaiting_train");
    p.handle_train_now(t(6)).unwrap();
    drain(&mut p);
    assert_eq!(word(&p), "running");
    succeed(&mut p, t(7));
    succeed(&mut p, t(8));
    assert_eq!((p.state(), word(&p)), (State::Idle, "completed"));
    let recovered = Pipeline::recover(*p.config(), &p.status(), t(0)).unwrap();
    assert_eq!(word(&recovered), "completed");
    p.handle_start(t(9), Mode::Full).unwrap();
    drain(&mut p);
    assert_eq!(word(&p), "running");
    let (_, token) = p.running().unwrap();
    p.handle_outcome(t(10), outcome(token, StageResult::Failed))
        .unwrap();
    drain(&mut p);
    assert_eq!((p.state(), word(&p)), (State::Error, "error"));
    p.handle_reset(t(11)).unwrap();
    drain(&mut p);
    assert_eq!(word(&p), "idle");
    p.handle_start(t(12), Mode::Full).unwrap();
    p.handle_stop(t(13)).unwrap();
    drain(&mut p);
    assert_eq!(word(&p), "idle", "a stopped run is not completed");
}
