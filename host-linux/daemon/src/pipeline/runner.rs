//! [`StageRunner`]: how the driver runs one stage, and [`MockRunner`], the simulated stages of
//! `HEIDI_MOCK_SUBPROCESSES=1`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use heidi_core::pipeline::{Stage, StageResult, UsageDelta};
use tokio::sync::watch;

/// A boxed stage future, `'static` so the driver can spawn it.
pub type StageFuture = Pin<Box<dyn Future<Output = StageReport> + Send + 'static>>;

/// One stage run the core asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageRequest {
    /// The stage.
    pub stage: Stage,
    /// Its round, 1-based (`ROUND`).
    pub round: u32,
    /// Kill it after this long and report [`StageResult::TimedOut`].
    pub timeout: Duration,
    /// The journal's run id (`RUN_ID`).
    pub run_id: String,
    /// The output directory (`OUT_DIR`).
    pub out_dir: PathBuf,
}

/// How a stage run ended, as the runner measured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageReport {
    /// Success, failure or timeout.
    pub result: StageResult,
    /// Memory and CPU use over the run.
    pub usage: UsageDelta,
    /// The last bytes of the merged stdout/stderr.
    pub output_tail: Vec<u8>,
    /// How many earlier output bytes were dropped to keep the tail bounded.
    pub output_dropped: u64,
    /// What went wrong (exit status, signal, spawn error), for a result other than success.
    pub failure: Option<String>,
    /// The stage ran with nothing bounding its process count (root without a writable pids
    /// cgroup), which only `allow_uncontained = true` permits. Journaled as a warning.
    pub uncontained: bool,
}

impl StageReport {
    /// A success with no usage and no output.
    pub fn success() -> StageReport {
        StageReport {
            result: StageResult::Success,
            usage: UsageDelta::default(),
            output_tail: Vec::new(),
            output_dropped: 0,
            failure: None,
            uncontained: false,
        }
    }

    /// A failure with `result`, the captured `output` and a description.
    pub fn failed(result: StageResult, output: &[u8], failure: impl Into<String>) -> StageReport {
        StageReport {
            result,
            usage: UsageDelta::default(),
            output_tail: output.to_vec(),
            output_dropped: 0,
            failure: Some(failure.into()),
            uncontained: false,
        }
    }
}

/// Runs stages. `run` must return within the request's timeout plus a short grace (the core
/// kills a run it has not heard of by timeout + its report grace), and must stop the stage
/// soon after `cancel` turns `true` (its report is then ignored).
pub trait StageRunner: Send + Sync {
    /// Starts `request`; the future resolves when the stage has ended.
    fn run(&self, request: StageRequest, cancel: watch::Receiver<bool>) -> StageFuture;
}

/// How a [`MockRunner`] stage behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MockBehaviour {
    /// Succeeds after the runner's delay.
    Succeed,
    /// Fails (exit 1) after the delay, printing this output.
    Fail(String),
    /// Runs until cancelled or timed out.
    Hang,
}

/// What a [`MockRunner`] did, for tests: `(stage, round, what)` with `what` one of
/// `started`, `finished`, `cancelled`, `timed_out`.
pub type MockLog = Arc<Mutex<Vec<(Stage, u32, &'static str)>>>;

/// Simulated stages (`HEIDI_MOCK_SUBPROCESSES=1`, like the seed's mock mode): each succeeds
/// after a short delay, unless told otherwise per stage.
#[derive(Clone, Debug)]
pub struct MockRunner {
    delay: Duration,
    behaviours: [MockBehaviour; 5],
    log: MockLog,
}

impl MockRunner {
    /// The default delay of a simulated stage.
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(10);

    /// Every stage succeeds after `delay` (zero: at once).
    pub fn new(delay: Duration) -> MockRunner {
        MockRunner {
            delay,
            behaviours: Stage::ALL.map(|_| MockBehaviour::Succeed),
            log: MockLog::default(),
        }
    }

    /// `stage` behaves as `behaviour`.
    pub fn with(mut self, stage: Stage, behaviour: MockBehaviour) -> MockRunner {
        self.behaviours[stage.index()] = behaviour;
        self
    }

    /// The log of what this runner (and its clones) did.
    pub fn log(&self) -> MockLog {
        self.log.clone()
    }
}

impl StageRunner for MockRunner {
    fn run(&self, request: StageRequest, mut cancel: watch::Receiver<bool>) -> StageFuture {
        let behaviour = self.behaviours[request.stage.index()].clone();
        let (delay, log) = (self.delay, self.log.clone());
        let note = move |what| {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            log.push((request.stage, request.round, what));
        };
        Box::pin(async move {
            note("started");
            let work = match behaviour {
                MockBehaviour::Hang => request.timeout,
                _ => delay.min(request.timeout),
            };
            // A zero delay ends at once (a timer would round it up to the next millisecond).
            let cancelled = if work.is_zero() {
                *cancel.borrow()
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(work) => false,
                    _ = cancel.wait_for(|c| *c) => true,
                }
            };
            if cancelled {
                note("cancelled");
                return StageReport::failed(StageResult::Failed, b"", "cancelled");
            }
            if work >= request.timeout {
                note("timed_out");
                return StageReport::failed(StageResult::TimedOut, b"", "timed out");
            }
            note("finished");
            match behaviour {
                MockBehaviour::Fail(output) => {
                    StageReport::failed(StageResult::Failed, output.as_bytes(), "exit status 1")
                }
                _ => StageReport::success(),
            }
        })
    }
}
