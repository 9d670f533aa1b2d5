//! Tests of the pipeline driver against a real journal in a temporary `OUT_DIR`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use heidi_core::pipeline::{Mode, Refusal, Stage};
use serde_json::{Map, Value};
use tempfile::TempDir;

use super::*;
use heidi_common::clock::Clock;
use heidi_store::paths::{JOURNAL_FILE, SEALS_FILE, STATE_FILE};
use heidi_store::verify::{VerifyOptions, verify_journal};
use heidi_store::{Journal, JournalConfig};

pub(super) mod durability;

/// How long any condition may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(20);

struct Rig {
    tmp: TempDir,
    journal: Journal,
    handle: PipelineHandle,
}

impl Rig {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
}

fn journal_config(tmp: &Path) -> JournalConfig {
    JournalConfig::new(tmp.join("out"), tmp.join("keys/seal.key"))
}

async fn open_journal(tmp: &Path) -> Journal {
    let config = journal_config(tmp);
    tokio::task::spawn_blocking(move || Journal::open(config).unwrap().0)
        .await
        .unwrap()
}

fn settings(vars: &[(&str, &str)]) -> PipelineSettings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut s = PipelineSettings::from_vars(&map).unwrap();
    s.start_gap = heidi_core::Duration::ZERO;
    s
}

async fn start_driver(
    tmp: TempDir,
    settings: &PipelineSettings,
    runner: MockRunner,
    load: (u16, u16),
) -> Rig {
    let journal = open_journal(tmp.path()).await;
    let runner = Arc::new(runner);
    start_with(tmp, journal, settings, runner, load, serde_json::Map::new()).await
}

/// Starts a driver on an open `journal` in `tmp`.
async fn start_with(
    tmp: TempDir,
    journal: Journal,
    settings: &PipelineSettings,
    runner: Arc<dyn StageRunner>,
    load: (u16, u16),
    state_extra: serde_json::Map<String, Value>,
) -> Rig {
    let options = DriverOptions {
        out_dir: tmp.path().join("out"),
        journal: journal.clone(),
        runner,
        sampler: Box::new(move || Some(load)),
        load_interval: Duration::from_millis(50),
        clock: Clock::start(),
        state_extra,
    };
    let handle = spawn(settings, options).await.unwrap();
    Rig {
        tmp,
        journal,
        handle,
    }
}

async fn rig(settings: &PipelineSettings, runner: MockRunner) -> Rig {
    start_driver(tempfile::tempdir().unwrap(), settings, runner, (0, 0)).await
}

/// Waits (bounded) until the status satisfies `pred`; returns it.
async fn wait_status(handle: &PipelineHandle, pred: impl Fn(&Value) -> bool) -> Value {
    let mut rx = handle.subscribe();
    let found = tokio::time::timeout(DEADLINE, rx.wait_for(|v| pred(v.value()))).await;
    match found {
        Ok(Ok(v)) => v.value().clone(),
        _ => panic!("status never matched; last: {}", handle.status()),
    }
}

/// Waits (bounded) until `check` holds, polling.
async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn events(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn types(out: &Path) -> Vec<String> {
    events(out)
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn is_idle(v: &Value) -> bool {
    v["state"] == "IDLE"
}

async fn close(rig: Rig) -> TempDir {
    rig.handle.shutdown().await;
    let journal = rig.journal;
    tokio::task::spawn_blocking(move || journal.close().unwrap())
        .await
        .unwrap();
    rig.tmp
}

fn verify(tmp: &Path) {
    let out = tmp.join("out");
    let opts = VerifyOptions {
        journal: out.join(JOURNAL_FILE),
        seals: Some(out.join(SEALS_FILE)),
        seals_explicit: true,
        key: Some(tmp.join("keys/seal.key")),
        anchor: None,
    };
    let report = verify_journal(&opts, &mut |_| {}).unwrap();
    assert!(report.lines > 0);
    assert_eq!(report.seals.unwrap().unsealed_lines, 0);
}

fn ran(log: &MockLog, stage: Stage, round: u32) -> bool {
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.iter()
        .any(|(s, r, what)| (*s, *r, *what) == (stage, round, "finished"))
}

#[tokio::test]
async fn before_any_run_status_is_idle_round_1_and_state_json_is_written() {
    let r = rig(&settings(&[]), MockRunner::new(Duration::from_millis(1))).await;
    let s = r.handle.status();
    assert_eq!(
        (&s["state"], &s["round"], &s["mode"]),
        (&"IDLE".into(), &1.into(), &"collect".into())
    );
    assert_eq!(s["run_id"], r.journal.run_id());
    let file: Value =
        serde_json::from_slice(&std::fs::read(r.out().join(STATE_FILE)).unwrap()).unwrap();
    assert_eq!(file["state"], "IDLE");
    assert_eq!(file["current_round"], 1);
    assert!(file["current_stage"].is_null());
    close(r).await;
}

#[tokio::test]
async fn collect_run_ends_idle_then_train_now_trains_and_reaches_round_2() {
    let runner = MockRunner::new(Duration::from_millis(2));
    let log = runner.log();
    let r = rig(&settings(&[("ROUNDS", "3")]), runner).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    wait_status(&r.handle, |v| is_idle(v) && v["awaiting_train"] == true).await;
    assert!(ran(&log, Stage::Validate, 1));
    assert!(!ran(&log, Stage::Train, 1));
    r.handle.command(Command::TrainNow).await.unwrap();
    let s = wait_status(&r.handle, |v| {
        is_idle(v) && v["round"] == 2 && v["awaiting_train"] == true
    })
    .await;
    assert_eq!(s["mode"], "collect");
    assert!(ran(&log, Stage::Train, 1) && ran(&log, Stage::Eval, 1));
    assert!(!ran(&log, Stage::Train, 2));
    let t = types(&r.out());
    assert_eq!(t[0], "pipeline_start");
    assert!(!t.contains(&"pipeline_error".to_owned()));
    // stage_end carries usage_delta with both fields.
    let ends: Vec<Value> = events(&r.out())
        .into_iter()
        .filter(|e| e["event_type"] == "stage_end")
        .collect();
    assert!(
        ends.iter()
            .all(|e| e["usage_delta"]["memory_mb_delta"].is_i64()
                && e["usage_delta"]["cpu_pct"].is_i64())
    );
    close(r).await;
}

#[tokio::test]
async fn full_mode_three_rounds_completes_and_the_journal_verifies() {
    let runner = MockRunner::new(Duration::from_millis(1));
    let log = runner.log();
    let s = settings(&[("ROUNDS", "3"), ("PIPELINE_MODE", "full")]);
    let r = rig(&s, runner).await;
    r.handle.command(Command::Start(s.mode)).await.unwrap();
    let out = r.out();
    wait_until("pipeline_complete", || {
        types(&out).contains(&"pipeline_complete".to_owned())
    })
    .await;
    let st = wait_status(&r.handle, is_idle).await;
    assert_eq!((&st["round"], &st["mode"]), (&3.into(), &"full".into()));
    for round in 1..=3 {
        assert!(ran(&log, Stage::Eval, round));
    }
    assert!(!ran(&log, Stage::UnitTest, 1), "the gate is off by default");
    let tmp = close(r).await;
    verify(tmp.path());
}

#[tokio::test]
async fn unit_test_gate_runs_when_enabled() {
    let runner = MockRunner::new(Duration::from_millis(1));
    let log = runner.log();
    let s = settings(&[("ROUNDS", "1"), ("RUN_UNIT_TESTS", "1")]);
    let r = rig(&s, runner).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    wait_status(&r.handle, |v| v["awaiting_train"] == true).await;
    assert!(ran(&log, Stage::UnitTest, 1));
    close(r).await;
}

#[tokio::test]
async fn failing_stage_errors_with_redacted_output_then_reset_and_start_work() {
    let secret_output = format!(
        "{}\nTraceback: auth failed for sk-proj-{} with ghp_{}\n",
        "noise ".repeat(300),
        "A1b2C3d4E5f6G7h8I9j0K1l2",
        "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2"
    );
    let runner = MockRunner::new(Duration::from_millis(1))
        .with(Stage::Validate, MockBehaviour::Fail(secret_output));
    let r = rig(&settings(&[]), runner).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    let s = wait_status(&r.handle, |v| v["state"] == "ERROR").await;
    let last = s["last_error"].as_str().unwrap();
    assert!(last.starts_with("stage_failed in stage validate"), "{last}");
    let text = std::fs::read_to_string(r.out().join(JOURNAL_FILE)).unwrap();
    assert!(
        !text.contains("A1b2C3d4") && !text.contains("Zz9Yy8"),
        "{text}"
    );
    let evs = events(&r.out());
    let pos = |t: &str| evs.iter().position(|e| e["event_type"] == t).unwrap();
    let output = &evs[pos(STAGE_OUTPUT_EVENT)];
    let message = output["message"].as_str().unwrap();
    assert!(message.contains("[OPENAI_KEY]") && message.contains("[GITHUB_TOKEN]"));
    assert!(
        output["counters_delta"]["output_dropped_bytes"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(output["error"], "exit status 1");
    assert!(pos("stage_end") < pos(STAGE_OUTPUT_EVENT));
    assert!(pos(STAGE_OUTPUT_EVENT) < pos("pipeline_error"));
    // ERROR refuses start until reset.
    let refused = r.handle.command(Command::Start(Mode::Collect)).await;
    assert_eq!(refused, Err(CommandError::Refused(Refusal::InError)));
    r.handle.command(Command::Reset).await.unwrap();
    let s = wait_status(&r.handle, is_idle).await;
    assert_eq!(s["round"], 1);
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    wait_status(&r.handle, |v| v["state"] == "ERROR").await;
    let starts = types(&r.out())
        .iter()
        .filter(|t| *t == "pipeline_start")
        .count();
    assert_eq!(starts, 2);
    let tmp = close(r).await;
    verify(tmp.path());
}

#[tokio::test]
async fn high_load_with_no_waiting_budget_throttles_then_errors() {
    // A 1 % watermark under a fake load of 100 % CPU: held.
    let s = settings(&[("MAX_CPU_PCT", "1"), ("MAX_WALL_TIME_MINUTES", "0")]);
    let runner = MockRunner::new(Duration::from_millis(1));
    let log = runner.log();
    let r = start_driver(tempfile::tempdir().unwrap(), &s, runner, (1000, 100)).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    let st = wait_status(&r.handle, |v| v["state"] == "ERROR").await;
    assert_eq!(st["last_error"], "budget in stage generate");
    let t = types(&r.out());
    assert_eq!(
        t,
        ["pipeline_start", "pipeline_throttled", "pipeline_error"].map(String::from)
    );
    assert!(log.lock().unwrap().is_empty(), "no stage ran");
    close(r).await;
}

#[tokio::test]
async fn stop_during_a_stage_cancels_it() {
    let runner =
        MockRunner::new(Duration::from_millis(1)).with(Stage::Generate, MockBehaviour::Hang);
    let log = runner.log();
    let r = rig(&settings(&[]), runner).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    let s = wait_status(&r.handle, |v| v["stage"] == "generate").await;
    assert!(s["stage_started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["state"], "COLLECTING");
    r.handle.command(Command::Stop).await.unwrap();
    assert_eq!(r.handle.status()["state"], "IDLE");
    wait_until("the stage to be cancelled", || {
        log.lock()
            .unwrap()
            .contains(&(Stage::Generate, 1, "cancelled"))
    })
    .await;
    assert!(types(&r.out()).contains(&"pipeline_stop".to_owned()));
    close(r).await;
}

#[tokio::test]
async fn restart_during_a_stage_records_the_interruption_and_reruns_nothing() {
    let runner =
        MockRunner::new(Duration::from_millis(1)).with(Stage::Validate, MockBehaviour::Hang);
    let r = rig(&settings(&[("PIPELINE_MODE", "full")]), runner).await;
    r.handle.command(Command::Start(Mode::Full)).await.unwrap();
    wait_status(&r.handle, |v| {
        v["stage"] == "validate" && !v["stage_started_at"].is_null()
    })
    .await;
    let tmp = close(r).await;
    assert_eq!(
        types(&tmp.path().join("out")).last().unwrap(),
        "stage_start"
    );

    let runner = MockRunner::new(Duration::from_millis(1));
    let log = runner.log();
    let r = start_driver(tmp, &settings(&[]), runner, (0, 0)).await;
    let s = r.handle.status();
    assert_eq!(s["state"], "ERROR");
    assert_eq!(s["mode"], "full");
    assert_eq!(s["last_error"], "interrupted in stage validate");
    let evs = events(&r.out());
    let last = evs.last().unwrap();
    assert_eq!(
        (&last["event_type"], &last["error"]),
        (&"pipeline_error".into(), &"interrupted".into())
    );
    assert_eq!(last["stage"], "validate");
    assert!(log.lock().unwrap().is_empty(), "nothing re-run");
    // A second restart finds the ERROR and records nothing more.
    let tmp = close(r).await;
    let lines = events(&tmp.path().join("out")).len();
    let r = start_driver(tmp, &settings(&[]), MockRunner::new(Duration::ZERO), (0, 0)).await;
    assert_eq!(r.handle.status()["state"], "ERROR");
    assert_eq!(events(&r.out()).len(), lines);
    let tmp = close(r).await;
    verify(tmp.path());
}

#[tokio::test]
async fn commands_that_do_not_apply_are_refused_with_a_reason() {
    let runner =
        MockRunner::new(Duration::from_millis(1)).with(Stage::Generate, MockBehaviour::Hang);
    let r = rig(&settings(&[]), runner).await;
    let e = r.handle.command(Command::TrainNow).await.unwrap_err();
    assert_eq!(e, CommandError::Refused(Refusal::NothingToTrain));
    assert_eq!(e.to_string(), "no collected round waits for training");
    let e = r.handle.command(Command::Reset).await.unwrap_err();
    assert_eq!(e.reason(), "reset applies to ERROR only");
    r.handle.command(Command::Start(Mode::Full)).await.unwrap();
    let e = r.handle.command(Command::TrainNow).await.unwrap_err();
    assert_eq!(e, CommandError::Refused(Refusal::TrainNowInFullMode));
    let e = r
        .handle
        .command(Command::Start(Mode::Full))
        .await
        .unwrap_err();
    assert_eq!(e, CommandError::Refused(Refusal::Running));
    // Pause while the stage runs is only requested; resume cancels the request.
    r.handle.command(Command::Pause).await.unwrap();
    assert_eq!(r.handle.status()["pause_requested"], true);
    r.handle.command(Command::Resume).await.unwrap();
    assert_eq!(r.handle.status()["pause_requested"], false);
    let before = types(&r.out()).len();
    let e = r.handle.command(Command::Resume).await.unwrap_err();
    assert_eq!(e, CommandError::Refused(Refusal::NotPaused));
    assert_eq!(types(&r.out()).len(), before, "a refusal journals nothing");
    let handle = r.handle.clone();
    close(r).await;
    let e = handle.command(Command::Stop).await.unwrap_err();
    assert_eq!(e, CommandError::Stopped);
}

#[test]
fn settings_read_the_seed_names_and_errors_name_the_variable() {
    let s = settings(&[
        ("ROUNDS", "5"),
        ("RUN_UNIT_TESTS", "true"),
        ("MAX_CPU_PCT", "50"),
        ("MAX_MEM_PCT", "70"),
        ("MAX_WALL_TIME_MINUTES", "2"),
        ("HEIDI_MOCK_SUBPROCESSES", "1"),
        ("HEIDI_REPO_ROOT", "/srv/heidi"),
        ("PIPELINE_MODE", "full"),
        ("UNRELATED", "x"),
    ]);
    assert_eq!(
        (s.rounds, s.mode, s.run_unit_tests, s.mock),
        (5, Mode::Full, true, true)
    );
    let c = s.config().unwrap();
    assert_eq!(c.governor.cpu_hold_permille, 500);
    assert_eq!(c.governor.mem_hold_permille, 700);
    assert_eq!(c.max_wait.as_secs(), 120);
    let train = &s.commands[Stage::Train.index()];
    assert_eq!(train.program, "python3");
    assert_eq!(train.args, ["/srv/heidi/scripts/04_train_qlora.py"]);
    assert!(s.autostart_check().is_ok(), "mock mode needs no scripts");

    let bad = |k: &str, v: &str| {
        let map = HashMap::from([(k.to_owned(), v.to_owned())]);
        PipelineSettings::from_vars(&map).unwrap_err()
    };
    assert!(bad("ROUNDS", "0").starts_with("ROUNDS=\"0\""));
    assert!(bad("ROUNDS", "10001").starts_with("ROUNDS="));
    assert!(bad("MAX_CPU_PCT", "101").starts_with("MAX_CPU_PCT="));
    assert!(bad("MAX_MEM_PCT", "-1").starts_with("MAX_MEM_PCT="));
    assert!(bad("MAX_WALL_TIME_MINUTES", "x").starts_with("MAX_WALL_TIME_MINUTES="));
    let limit = (MAX_WALL_TIME_MINUTES_LIMIT + 1).to_string();
    assert!(bad("MAX_WALL_TIME_MINUTES", &limit).starts_with("MAX_WALL_TIME_MINUTES="));
    assert!(bad("RUN_UNIT_TESTS", "maybe").starts_with("RUN_UNIT_TESTS="));
    assert!(bad("HEIDI_MOCK_SUBPROCESSES", "2").starts_with("HEIDI_MOCK_SUBPROCESSES="));
    assert!(bad("PIPELINE_MODE", "fast").starts_with("PIPELINE_MODE="));
    let d = settings(&[]);
    assert_eq!((d.rounds, d.max_cpu_pct, d.max_mem_pct), (3, 85, 90));
    assert_eq!(d.max_wall_time_minutes, 60);
}

#[test]
fn missing_scripts_give_one_warning_and_present_ones_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let err = stages_available(tmp.path()).unwrap_err();
    assert!(
        err.contains("01_teacher_generate.py") && err.contains("05_eval.py"),
        "{err}"
    );
    let mut s = PipelineSettings::new(tmp.path().to_path_buf());
    assert!(s.autostart_check().is_err());
    std::fs::create_dir(tmp.path().join("scripts")).unwrap();
    for stage in Stage::ALL {
        std::fs::write(tmp.path().join(stage.default_script()), "").unwrap();
    }
    assert!(stages_available(tmp.path()).is_ok());
    s.mock = false;
    assert!(s.autostart_check().is_ok());
}

struct Echo;

impl Supervisor for Echo {
    fn run(&self, command: ProcessCommand, _: tokio::sync::watch::Receiver<bool>) -> StageFuture {
        Box::pin(async move {
            let mut r = StageReport::success();
            r.output_tail = format!("{command:?}").into_bytes();
            r
        })
    }
}

#[tokio::test]
async fn process_runner_passes_the_stage_command_and_run_environment() {
    let s = settings(&[("HEIDI_REPO_ROOT", "/repo")]);
    let runner = ProcessRunner::new(&s, Echo);
    let request = StageRequest {
        stage: Stage::Eval,
        round: 2,
        timeout: Duration::from_secs(7),
        run_id: "run-1".into(),
        out_dir: PathBuf::from("/out"),
    };
    let c = runner.command(&request);
    assert_eq!(
        (c.program.as_str(), c.cwd.as_path()),
        ("python3", Path::new("/repo"))
    );
    assert_eq!(c.args, ["/repo/scripts/05_eval.py"]);
    assert_eq!(c.timeout, Duration::from_secs(7));
    for kv in [
        ("RUN_ID", "run-1"),
        ("OUT_DIR", "/out"),
        ("ROUND", "2"),
        ("STAGE", "eval"),
    ] {
        assert!(
            c.env.contains(&(kv.0.to_owned(), kv.1.to_owned())),
            "{kv:?}"
        );
    }
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = runner.run(request, rx).await;
    assert!(
        String::from_utf8(report.output_tail)
            .unwrap()
            .contains("05_eval.py")
    );
}

#[tokio::test]
async fn a_stage_past_its_timeout_ends_the_run_in_error() {
    let mut s = settings(&[]);
    s.timeouts = heidi_core::pipeline::StageTimeouts::all(heidi_core::Duration::from_millis(20));
    let runner =
        MockRunner::new(Duration::from_millis(1)).with(Stage::Generate, MockBehaviour::Hang);
    let log = runner.log();
    let r = rig(&s, runner).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    let st = wait_status(&r.handle, |v| v["state"] == "ERROR").await;
    assert_eq!(
        st["last_error"],
        "stage_timeout in stage generate: timed out"
    );
    assert!(
        log.lock()
            .unwrap()
            .contains(&(Stage::Generate, 1, "timed_out"))
    );
    close(r).await;
}

#[test]
fn the_pipeline_status_is_replayed_across_segments() {
    use heidi_common::JournalEntry;
    use heidi_core::pipeline::{PipelineConfig, State, start_message};
    let tmp = tempfile::tempdir().unwrap();
    let mut config = journal_config(tmp.path());
    config.segment_max_bytes = JournalConfig::SEGMENT_MIN_BYTES;
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let start = JournalEntry::info("pipeline", "pipeline_start", start_message(Mode::Collect));
    journal.append_blocking(start).unwrap();
    for i in 1..30 {
        let entry = JournalEntry::info("test", "tick", format!("entry {i}"));
        journal.append_blocking(entry).unwrap();
    }
    journal.close().unwrap();
    let first = std::fs::read_to_string(config.dir.join(heidi_store::segment_file(1))).unwrap();
    assert!(first.contains("pipeline_start"));
    let open = std::fs::read(config.dir.join(JOURNAL_FILE)).unwrap();
    assert!(!open.windows(14).any(|w| w == b"pipeline_start"));
    let status =
        replay_journal(&config.dir.join(JOURNAL_FILE), &PipelineConfig::default()).unwrap();
    assert_eq!(status.state, State::Collecting);
}
