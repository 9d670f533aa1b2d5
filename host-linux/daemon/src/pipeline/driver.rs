//! The driver task: owns the core [`Pipeline`], feeds it commands, stage outcomes, timer
//! expiries and load samples, and carries out its outputs in order. Journal appends are
//! pipelined ([`Appender`]) and `state.json` is written in the background ([`StateFile`]); the
//! durability rules are in the [module docs](super#durability).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use heidi_core::WallTime;
use heidi_core::governor::Load;
use heidi_core::pipeline::{
    EventType, Input, Mode, Output, Pipeline, Refusal, RunToken, Stage, StageOutcome, StageResult,
    Status,
};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::appender::Appender;
use super::events::{entry_for, orphans_entry, output_entry, uncontained_entry};
use super::recovery::recover_from_journal;
use super::runner::{StageReport, StageRequest, StageRunner};
use super::settings::PipelineSettings;
use super::state_file::StateFile;
use super::status::StatusDoc;
use crate::runner::reap_orphans;
use heidi_common::JournalEntry;
use heidi_common::clock::{Clock, wall_now};
use heidi_store::Journal;

/// Reads the machine's load: `(cpu_permille, mem_permille)`, or `None` when unknown (the last
/// reading stays in force).
pub type LoadSampler = Box<dyn FnMut() -> Option<(u16, u16)> + Send>;

/// How long shutdown waits for cancelled stages to be terminated and cleaned up: above the
/// runner's worst case with its default timings (SIGTERM, 2 s grace, SIGKILL, then three
/// waits of at most 5 s each).
const SHUTDOWN_STAGE_WAIT: Duration = Duration::from_secs(20);

/// Awaits every task (a panicked or aborted one counts as finished).
async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// How long the start-up clean-up of one interrupted stage may take.
const ORPHAN_REAP_LIMIT: Duration = Duration::from_secs(5);

/// An operator command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `start(mode)`.
    Start(Mode),
    /// `stop`.
    Stop,
    /// `pause`.
    Pause,
    /// `resume`.
    Resume,
    /// `reset`.
    Reset,
    /// `train_now`.
    TrainNow,
}

impl Command {
    fn input(self) -> Input {
        match self {
            Command::Start(mode) => Input::Start(mode),
            Command::Stop => Input::Stop,
            Command::Pause => Input::Pause,
            Command::Resume => Input::Resume,
            Command::Reset => Input::Reset,
            Command::TrainNow => Input::TrainNow,
        }
    }
}

/// Why a command was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The core refused it in the current state (HTTP 409); nothing changed.
    Refused(Refusal),
    /// The driver has shut down.
    Stopped,
}

impl CommandError {
    /// The reason, for replies.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandError::Refused(r) => r.reason(),
            CommandError::Stopped => "the pipeline driver has stopped",
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for CommandError {}

/// What the driver works with besides the settings.
pub struct DriverOptions {
    /// `OUT_DIR`: `state.json` is written here.
    pub out_dir: PathBuf,
    /// The open run journal (`OUT_DIR/events.jsonl`); pipeline state is recovered from it.
    pub journal: Journal,
    /// Runs the stages ([`MockRunner`](super::MockRunner) or
    /// [`ProcessRunner`](super::ProcessRunner)).
    pub runner: Arc<dyn StageRunner>,
    /// Load readings for the governor, taken at start and every `load_interval`.
    pub sampler: LoadSampler,
    /// How often to sample the load (the governor's cooldown, 1 s, is a good value).
    pub load_interval: Duration,
    /// The daemon's monotonic clock.
    pub clock: Clock,
    /// Fields merged into every `state.json` document after the status fields (theirs win),
    /// e.g. `pid` and `version`; not part of [`PipelineHandle::status`].
    pub state_extra: Map<String, Value>,
}

enum Request {
    Command(Command, oneshot::Sender<Result<(), CommandError>>),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to the driver task; see the [module docs](super).
#[derive(Clone)]
pub struct PipelineHandle {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<StatusDoc>,
    state_file: Arc<StateFile>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl PipelineHandle {
    /// Carries out `command`; resolves once every event of its step is durable in the
    /// journal and its status is published ([`status`](Self::status)), or with the core's
    /// refusal. `state.json` follows in the background.
    pub async fn command(&self, command: Command) -> Result<(), CommandError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Command(command, reply))
            .await
            .map_err(|_| CommandError::Stopped)?;
        answer.await.unwrap_or(Err(CommandError::Stopped))
    }

    /// The current status document (cheap: a copy of the last one published; a status is
    /// published once the journal holds every event before it).
    pub fn status(&self) -> StatusDoc {
        self.status.borrow().clone()
    }

    /// A receiver of the published status (a status overtaken before it was published is
    /// skipped; `wait_for` sees the newest).
    pub fn subscribe(&self) -> watch::Receiver<StatusDoc> {
        self.status.clone()
    }

    /// Stops the driver: a running stage is cancelled (after a restart it is recorded as
    /// interrupted); waits until every pipeline event is durable and the last status is in
    /// `state.json`, and for the task to end. Idempotent.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Stops the driver ([`shutdown`](Self::shutdown)), then writes the final `state.json`:
    /// the last status with [`DriverOptions::state_extra`] and then `extra` merged in (its
    /// fields win), e.g. `{"status": "stopped"}`. Resolves once the document is on disk, with
    /// the write error if it failed. Call it after `shutdown` or instead of it; a second call
    /// writes again with its own `extra`.
    pub async fn write_final_state(&self, extra: Map<String, Value>) -> Result<(), String> {
        self.shutdown().await;
        let seq = self.state_file.finish(extra);
        self.state_file.written(seq).await
    }
}

/// Starts the driver: rebuilds the pipeline from the journal (a stage that was running is
/// journaled as `pipeline_error`, reason `interrupted`; nothing is re-run), writes
/// `state.json`, and spawns the task on the current runtime. It does not start a run; the
/// daemon sends `Command::Start(settings.mode)` when
/// [`PipelineSettings::autostart_check`] allows.
pub async fn spawn(
    settings: &PipelineSettings,
    mut options: DriverOptions,
) -> Result<PipelineHandle, String> {
    let config = settings.config()?;
    let path = options.journal.path().to_path_buf();
    // What a stage interrupted by the daemon's death left running is killed before the
    // journal says `interrupted`, and journaled before that event.
    let out_dir = options.out_dir.clone();
    let orphans = tokio::task::spawn_blocking(move || reap_orphans(&out_dir, ORPHAN_REAP_LIMIT))
        .await
        .map_err(|e| format!("stage orphan clean-up failed: {e}"))?;
    for report in &orphans {
        tracing::warn!(
            stage = %report.stage,
            found = report.found.processes_found,
            killed = report.found.processes_killed,
            cgroup_removed = report.found.cgroup_removed,
            all_gone = report.found.all_gone,
            "leftovers of an interrupted stage killed"
        );
    }
    let now = options.clock.now();
    let mut pipeline =
        tokio::task::spawn_blocking(move || recover_from_journal(&path, config, now))
            .await
            .map_err(|e| format!("pipeline recovery failed: {e}"))??;
    if let Some(load) = sample(&mut options.sampler) {
        pipeline.handle_load(load);
    }
    let initial = pipeline.status();
    let run_id = options.journal.run_id().to_owned();
    let (status_tx, status_rx) = watch::channel(StatusDoc::of(&initial, &run_id, None, None));
    let state_file = Arc::new(StateFile::spawn(
        options.out_dir.clone(),
        options.state_extra,
        status_rx.clone(),
    ));
    let (done_tx, done_rx) = mpsc::channel(16);
    let mut driver = Driver {
        pipeline,
        clock: options.clock,
        appender: Appender::new(options.journal),
        state_file: state_file.clone(),
        out_dir: options.out_dir,
        runner: options.runner,
        sampler: options.sampler,
        run_id,
        status_tx,
        runs: HashMap::new(),
        done_tx,
        stage_started: None,
        failure_detail: None,
        failed_output: None,
        unpublished: None,
        stage_tasks: Vec::new(),
    };
    for report in &orphans {
        driver.appender.push(orphans_entry(report)).await;
    }
    driver.publish(&initial);
    driver.drain(true).await;
    driver.flush().await;
    if let Err(e) = state_file.written(state_file.latest()).await {
        tracing::error!("cannot write the first state.json: {e}");
    }
    let (requests, requests_rx) = mpsc::channel(64);
    let interval = options.load_interval.max(Duration::from_millis(1));
    let task = tokio::spawn(driver.run(requests_rx, done_rx, interval));
    Ok(PipelineHandle {
        requests,
        status: status_rx,
        state_file,
        task: Arc::new(std::sync::Mutex::new(Some(task))),
    })
}

fn sample(sampler: &mut LoadSampler) -> Option<Load> {
    sampler().map(|(cpu_permille, mem_permille)| Load {
        running: 0,
        queued: 0,
        cpu_permille,
        mem_permille,
    })
}

/// A stage run handed to the runner.
struct Run {
    cancel: watch::Sender<bool>,
    stage: Stage,
    round: u32,
}

struct Driver {
    pipeline: Pipeline,
    clock: Clock,
    appender: Appender,
    state_file: Arc<StateFile>,
    out_dir: PathBuf,
    runner: Arc<dyn StageRunner>,
    sampler: LoadSampler,
    run_id: String,
    status_tx: watch::Sender<StatusDoc>,
    runs: HashMap<RunToken, Run>,
    done_tx: mpsc::Sender<(RunToken, StageReport)>,
    /// Wall time the running stage started, for the status.
    stage_started: Option<WallTime>,
    /// The runner's description of the last failure, for the status.
    failure_detail: Option<String>,
    /// The `stage_output` entry to journal after the failed stage's `stage_end`.
    failed_output: Option<JournalEntry>,
    /// The newest status not yet published, with the number of events that must be durable
    /// first.
    unpublished: Option<(u64, StatusDoc)>,
    /// The tasks of stages started and maybe not finished (also killed ones), awaited at
    /// shutdown.
    stage_tasks: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut done: mpsc::Receiver<(RunToken, StageReport)>,
        load_interval: Duration,
    ) {
        let mut ticker = tokio::time::interval(load_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = loop {
            let deadline = self.pipeline.poll_timeout().map(|t| self.clock.to_std(t));
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Command(command, reply)) => {
                        let answer = self.command(command).await;
                        let _ = reply.send(answer);
                    }
                    Some(Request::Shutdown(done)) => break Some(done),
                    None => break None,
                },
                Some((token, report)) = done.recv() => self.outcome(token, report).await,
                () = self.appender.next_answer() => {
                    self.appender.reap();
                    self.publish_settled();
                }
                () = timer => {
                    let now = self.clock.now();
                    if let Err(r) = self.pipeline.handle_timeout(now) {
                        tracing::error!("pipeline timer refused: {r}");
                    }
                    self.drain(false).await;
                }
                _ = ticker.tick() => {
                    if let Some(load) = sample(&mut self.sampler) {
                        self.pipeline.handle_load(load);
                    }
                }
            }
        };
        for (_, run) in self.runs.drain() {
            let _ = run.cancel.send(true);
        }
        // A cancelled stage is terminated and cleaned up (its processes killed and reaped,
        // its cgroup and record removed) before the daemon exits; bounded.
        let stages = join_all(std::mem::take(&mut self.stage_tasks));
        if tokio::time::timeout(SHUTDOWN_STAGE_WAIT, stages)
            .await
            .is_err()
        {
            tracing::warn!(
                limit_s = SHUTDOWN_STAGE_WAIT.as_secs(),
                "a cancelled stage was not cleaned up in time; the next start kills what is left"
            );
        }
        self.flush().await;
        if let Err(e) = self.state_file.written(self.state_file.latest()).await {
            tracing::error!("last state.json not written: {e}");
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    async fn command(&mut self, command: Command) -> Result<(), CommandError> {
        let now = self.clock.now();
        self.pipeline
            .handle(now, command.input())
            .map_err(CommandError::Refused)?;
        self.drain(true).await;
        self.flush().await;
        Ok(())
    }

    async fn outcome(&mut self, token: RunToken, report: StageReport) {
        let run = self.runs.remove(&token);
        if let (Some(run), true) = (&run, report.uncontained) {
            self.appender
                .push(uncontained_entry(run.stage, run.round))
                .await;
        }
        let outcome = StageOutcome {
            token,
            result: report.result,
            usage: report.usage,
        };
        let now = self.clock.now();
        match self.pipeline.handle_outcome(now, outcome) {
            Ok(()) => {
                if let (Some(run), false) = (run, report.result == StageResult::Success) {
                    self.failed_output = Some(output_entry(
                        run.stage,
                        run.round,
                        &report.output_tail,
                        report.output_dropped,
                        report.failure.as_deref(),
                    ));
                    self.failure_detail = report.failure;
                }
                self.drain(false).await;
            }
            // A run that was killed (stop, or the core's deadline) reports late: ignored.
            Err(r) => tracing::debug!("stage outcome ignored: {r}"),
        }
    }

    /// Carries out every queued output, in order. Events are submitted without waiting for
    /// them to be durable; in a step of an operator's `command` a stage starts only once
    /// every event before it is durable (see the [module docs](super#durability)).
    async fn drain(&mut self, command: bool) {
        while let Some(output) = self.pipeline.poll_output() {
            match output {
                Output::RunStage {
                    stage,
                    round,
                    timeout,
                    token,
                } => {
                    if command {
                        self.appender.flush().await;
                    }
                    let timeout = Duration::from_micros(timeout.as_micros());
                    self.start(stage, round, timeout, token);
                }
                Output::KillStage { token, .. } => {
                    if let Some(run) = self.runs.remove(&token) {
                        let _ = run.cancel.send(true);
                    }
                }
                Output::AppendEvent(event) => {
                    if event.event_type == EventType::PipelineStart {
                        self.failure_detail = None;
                    }
                    let entry = entry_for(&event);
                    self.appender.push(entry).await;
                    let failed_end =
                        event.event_type == EventType::StageEnd && event.error.is_some();
                    if let Some(entry) = self.failed_output.take().filter(|_| failed_end) {
                        self.appender.push(entry).await;
                    }
                }
                Output::WriteStatus(status) => self.publish(&status),
            }
        }
        self.appender.reap();
        self.publish_settled();
    }

    /// Waits until every event so far is durable; publishes the newest status.
    async fn flush(&mut self) {
        self.appender.flush().await;
        self.publish_settled();
    }

    fn start(&mut self, stage: Stage, round: u32, timeout: Duration, token: RunToken) {
        self.stage_started = Some(wall_now());
        self.failure_detail = None;
        let (cancel, cancelled) = watch::channel(false);
        let request = StageRequest {
            stage,
            round,
            timeout,
            run_id: self.run_id.clone(),
            out_dir: self.out_dir.clone(),
        };
        let future = self.runner.run(request, cancelled);
        let done = self.done_tx.clone();
        let task = tokio::spawn(async move {
            let report = future.await;
            let _ = done.send((token, report)).await;
        });
        self.stage_tasks.retain(|t| !t.is_finished());
        self.stage_tasks.push(task);
        self.runs.insert(
            token,
            Run {
                cancel,
                stage,
                round,
            },
        );
    }

    /// Publishes `status` to [`PipelineHandle::status`] and to the `state.json` writer once
    /// every event queued before it is durable; until then it waits in `unpublished`,
    /// replacing an older status that waits there (statuses never run ahead of the journal).
    fn publish(&mut self, status: &Status) {
        let doc = StatusDoc::of(
            status,
            &self.run_id,
            self.stage_started,
            self.failure_detail.as_deref(),
        );
        self.unpublished = Some((self.appender.queued(), doc));
        self.publish_settled();
    }

    /// Publishes the waiting status if its events are durable.
    fn publish_settled(&mut self) {
        let ready = matches!(&self.unpublished, Some((n, _)) if self.appender.settled(*n));
        if !ready {
            return;
        }
        if let Some((_, doc)) = self.unpublished.take() {
            self.status_tx.send_replace(doc);
            self.state_file.changed();
        }
    }
}
