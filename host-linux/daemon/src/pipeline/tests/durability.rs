//! Tests of the driver's durability rules (see the module docs of `pipeline`): a command's
//! stage starts after its events are durable, other stages do not wait and recovery from any
//! durable prefix still reruns nothing, statuses never run ahead of the journal, `state.json`
//! carries the extra fields and the final document, and a long run at zero stage delay.

use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};

use heidi_core::journal::Level;
use heidi_core::pipeline::StageResult;
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::*;
use heidi_common::JournalEntry;
use heidi_store::FsyncHook;

/// Blocks the journal writer after an fsync while closed (nothing it wrote after that is
/// durable or answered); reports each time it blocks.
pub(in crate::pipeline) struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    entered: mpsc::SyncSender<()>,
}

impl Gate {
    /// An open gate and the receiver of its "writer blocked" signals.
    pub(in crate::pipeline) fn new() -> (Arc<Gate>, mpsc::Receiver<()>) {
        let (entered, rx) = mpsc::sync_channel(16);
        let gate = Gate {
            closed: Mutex::new(false),
            opened: Condvar::new(),
            entered,
        };
        (Arc::new(gate), rx)
    }

    /// The journal's `on_fsync` hook for this gate.
    pub(in crate::pipeline) fn hook(self: &Arc<Self>) -> FsyncHook {
        let gate = self.clone();
        Arc::new(move |_, _| gate.pass())
    }

    /// Closes (`true`) or opens the gate.
    pub(in crate::pipeline) fn set(&self, closed: bool) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            let _ = self.entered.try_send(());
        }
        while *closed {
            closed = self
                .opened
                .wait(closed)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What a [`Probe`] saw at each stage start: the stage, and whether the journal's durable
/// tail ended with that stage's `stage_start`.
type Starts = Arc<Mutex<Vec<(Stage, bool)>>>;

/// A runner that records what was durable when each stage started; `generate` succeeds when
/// `release` is notified, every stage (generate too) otherwise runs until cancelled.
struct Probe {
    journal: Journal,
    starts: Starts,
    release: Arc<Notify>,
}

impl StageRunner for Probe {
    fn run(&self, request: StageRequest, mut cancel: watch::Receiver<bool>) -> StageFuture {
        let last = self.journal.tail(1);
        let durable = last.first().is_some_and(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["event_type"] == "stage_start" && v["stage"] == request.stage.name()
        });
        let mut starts = self.starts.lock().unwrap_or_else(PoisonError::into_inner);
        starts.push((request.stage, durable));
        let release = self.release.clone();
        Box::pin(async move {
            let released = async {
                match request.stage {
                    Stage::Generate => release.notified().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = released => StageReport::success(),
                _ = cancel.wait_for(|c| *c) => {
                    StageReport::failed(StageResult::Failed, b"", "cancelled")
                }
            }
        })
    }
}

fn marker() -> JournalEntry {
    JournalEntry {
        round: 1,
        stage: "kernel".into(),
        level: Level::Info,
        event_type: "test_marker".into(),
        message: "the writer stalls after this line".into(),
        counters_delta: Vec::new(),
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: None,
    }
}

async fn gated_journal(tmp: &Path, gate: &Arc<Gate>) -> Journal {
    let mut config = journal_config(tmp);
    config.on_fsync = Some(gate.hook());
    tokio::task::spawn_blocking(move || Journal::open(config).unwrap().0)
        .await
        .unwrap()
}

async fn wait_entered(entered: mpsc::Receiver<()>) -> mpsc::Receiver<()> {
    tokio::task::spawn_blocking(move || {
        entered.recv_timeout(DEADLINE).expect("the writer to stall");
        entered
    })
    .await
    .unwrap()
}

fn copy_run(from: &Path, to: &Path) {
    for dir in ["out", "keys"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for file in std::fs::read_dir(from.join(dir)).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), to.join(dir).join(file.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn a_command_starts_its_stage_only_after_its_events_are_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = open_journal(tmp.path()).await;
    let starts = Starts::default();
    let release = Arc::new(Notify::new());
    let probe = Probe {
        journal: journal.clone(),
        starts: starts.clone(),
        release: release.clone(),
    };
    let s = settings(&[]);
    let r = start_with(tmp, journal, &s, Arc::new(probe), (0, 0), Map::new()).await;
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    assert_eq!(*starts.lock().unwrap(), [(Stage::Generate, true)]);
    // A pause requested during generate takes effect at its end; resume starts validate.
    r.handle.command(Command::Pause).await.unwrap();
    release.notify_one();
    wait_status(&r.handle, |v| v["state"] == "PAUSED").await;
    r.handle.command(Command::Resume).await.unwrap();
    assert_eq!(
        *starts.lock().unwrap(),
        [(Stage::Generate, true), (Stage::Validate, true)]
    );
    r.handle.command(Command::Stop).await.unwrap();
    close(r).await;
}

#[tokio::test]
async fn a_stage_started_before_its_events_are_durable_is_recovered_as_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let (gate, entered) = Gate::new();
    let journal = gated_journal(tmp.path(), &gate).await;
    let starts = Starts::default();
    let release = Arc::new(Notify::new());
    let probe = Probe {
        journal: journal.clone(),
        starts: starts.clone(),
        release: release.clone(),
    };
    let s = settings(&[("PIPELINE_MODE", "full")]);
    let r = start_with(tmp, journal, &s, Arc::new(probe), (0, 0), Map::new()).await;
    r.handle.command(Command::Start(Mode::Full)).await.unwrap();

    // Stall the journal writer: the marker is on disk, nothing after it is.
    gate.set(true);
    let stalled = tokio::spawn({
        let journal = r.journal.clone();
        async move { journal.append(marker()).await.map(|_| ()) }
    });
    let _entered = wait_entered(entered).await;
    release.notify_one();
    wait_until("validate to start", || starts.lock().unwrap().len() == 2).await;
    assert_eq!(
        *starts.lock().unwrap(),
        [(Stage::Generate, true), (Stage::Validate, false)],
        "an outcome's stage starts before its events are durable"
    );
    let status = r.handle.status();
    assert_eq!(
        status["stage"], "generate",
        "the status waits for the journal"
    );

    // kill -9 now: what is on disk is the journal a restart finds.
    let crashed = tempfile::tempdir().unwrap();
    copy_run(r.tmp.path(), crashed.path());
    gate.set(false);
    stalled.await.unwrap().unwrap();
    close(r).await;

    let runner = MockRunner::new(Duration::ZERO);
    let log = runner.log();
    let r = start_driver(crashed, &s, runner, (0, 0)).await;
    let status = r.handle.status();
    assert_eq!(status["state"], "ERROR");
    assert_eq!(status["last_error"], "interrupted in stage generate");
    let last = events(&r.out()).pop().unwrap();
    assert_eq!(
        (&last["event_type"], &last["error"]),
        (&"pipeline_error".into(), &"interrupted".into())
    );
    assert!(log.lock().unwrap().is_empty(), "nothing re-run");
    let tmp = close(r).await;
    verify(tmp.path());
}

#[tokio::test]
async fn state_json_carries_the_extra_fields_and_the_final_document() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = open_journal(tmp.path()).await;
    // The daemon's own fields; they must not hide the pipeline's `status`.
    let mut extra = crate::stages::daemon_fields();
    extra.insert("pid".into(), 42.into());
    let runner = Arc::new(MockRunner::new(Duration::ZERO));
    let r = start_with(tmp, journal, &settings(&[]), runner, (0, 0), extra).await;
    let read = |out: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(out.join(STATE_FILE)).unwrap()).unwrap()
    };
    let doc = read(&r.out());
    assert_eq!((&doc["pid"], &doc["status"]), (&42.into(), &"idle".into()));
    assert_eq!(doc["state"], "IDLE");
    r.handle
        .command(Command::Start(Mode::Collect))
        .await
        .unwrap();
    wait_status(&r.handle, |v| v["awaiting_train"] == true).await;
    r.handle.shutdown().await;
    // Shutdown waited for the last status to reach the file.
    let doc = read(&r.out());
    assert_eq!(
        (&doc["state"], &doc["awaiting_train"]),
        (&"IDLE".into(), &true.into())
    );
    assert_eq!(doc["status"], "awaiting_train");
    let Value::Object(last) = json!({"status": "stopped"}) else {
        unreachable!()
    };
    r.handle.write_final_state(last).await.unwrap();
    let doc = read(&r.out());
    assert_eq!(
        (&doc["pid"], &doc["status"]),
        (&42.into(), &"stopped".into())
    );
    assert_eq!(doc["awaiting_train"], true);
    assert_eq!(doc["current_round"], 1);
    close(r).await;
}

/// Pipeline events (what the core emits) among the journal's lines.
fn pipeline_events(evs: &[Value]) -> Vec<&str> {
    evs.iter()
        .filter_map(|e| e["event_type"].as_str())
        .filter(|t| {
            (t.starts_with("pipeline_") || t.starts_with("stage_")) && *t != STAGE_OUTPUT_EVENT
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_full_rounds_at_zero_delay_complete_and_the_journal_verifies() {
    let s = settings(&[("ROUNDS", "100"), ("PIPELINE_MODE", "full")]);
    let r = rig(&s, MockRunner::new(Duration::ZERO)).await;
    let started = std::time::Instant::now();
    r.handle.command(Command::Start(Mode::Full)).await.unwrap();
    wait_status(&r.handle, |v| is_idle(v) && v["round"] == 100).await;
    let elapsed = started.elapsed();
    let out = r.out();
    let tmp = close(r).await;
    let evs = events(&out);
    let kinds = pipeline_events(&evs);
    // pipeline_start, 4 stages × (stage_start, stage_end) × 100 rounds, pipeline_complete.
    assert_eq!(kinds.len(), 2 + 100 * 4 * 2);
    assert_eq!(kinds.last(), Some(&"pipeline_complete"));
    assert!(!kinds.contains(&"pipeline_error"));
    let per = elapsed / u32::try_from(kinds.len()).unwrap();
    eprintln!(
        "100 full rounds: {} pipeline events in {elapsed:?}: {per:?} per transition, {:.0} transitions/s",
        kinds.len(),
        kinds.len() as f64 / elapsed.as_secs_f64()
    );
    verify(tmp.path());
}
